//! The JSON Schema (draft 2020-12) of a plan file in JSON, as a planner may write it: generated
//! from the table of keys that the checker reads ([`crate::keys`]), so that the schema and the
//! checker accept the same keys. The keys only a person may give (`repo`, `base`) are left out.

use serde_json::{Map, Value, json};

use crate::keys::{self, Key, Need, Shape, Table};

/// A task's key in the plan (`PlanKey`), as a pattern.
const PLAN_KEY_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
/// A duration as `DurationMs::parse` reads it: numbers with units, surrounding spaces allowed.
const DURATION_PATTERN: &str = "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$";
/// Dollars given as a string, as `Usd::parse` reads them: `0.50`, `12`, `$3.25`.
const DOLLARS_PATTERN: &str = "^\\s*\\$?([0-9]+(\\.[0-9]{0,6})?|\\.[0-9]{1,6})\\s*$";

/// The schema of the JSON plan file a planner writes.
pub(crate) fn schema() -> Value {
    let (properties, required, one_of) = object_of(Table::Top);
    let mut top = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MAOS plan",
        "description": "A plan for a goal: the tasks that carry it out, with their \
            dependencies, concerns, risk and verification. It is checked in full when it is \
            read: every problem is reported with its line and column. The keys `repo` and \
            `base` of a plan file are left out: a planner does not choose the repository or \
            the branch the tasks start from, and a plan that gives them is refused.",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required,
    });
    if !one_of.is_empty() {
        top["oneOf"] = Value::Array(one_of);
    }
    let (properties, required, _) = object_of(Table::Task);
    top["$defs"] = json!({
        "task": {
            "type": "object",
            "description": "One task of the plan.",
            "additionalProperties": false,
            "properties": properties,
            "required": required,
        }
    });
    top
}

/// The properties of a table's object, its required keys, and one `oneOf` of `required` per
/// group of keys of which exactly one must be given.
fn object_of(table: Table) -> (Map<String, Value>, Vec<Value>, Vec<Value>) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut groups: Vec<(&str, Vec<Value>)> = Vec::new();
    for k in keys::keys(table).filter(|k| k.for_planners()) {
        properties.insert(k.name.to_owned(), property(k));
        match k.need {
            Need::Required => required.push(json!(k.name)),
            Need::Optional => {}
            Need::OneOf(group) => match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, names)) => names.push(json!(k.name)),
                None => groups.push((group, vec![json!(k.name)])),
            },
        }
    }
    let one_of = groups
        .into_iter()
        .flat_map(|(_, names)| names)
        .map(|name| json!({ "required": [name] }))
        .collect();
    (properties, required, one_of)
}

/// The schema of one key: its shape, description and example.
fn property(k: &Key) -> Value {
    let mut p = shape(k.shape);
    p["description"] = json!(k.about);
    if let Ok(example) = serde_json::from_str::<Value>(k.example) {
        p["examples"] = json!([example]);
    }
    p
}

fn shape(shape: Shape) -> Value {
    match shape {
        Shape::Text => json!({ "type": "string" }),
        Shape::Texts => json!({ "type": "array", "items": { "type": "string" } }),
        Shape::PlanKey => json!({ "type": "string", "pattern": PLAN_KEY_PATTERN }),
        Shape::PlanKeys => json!({
            "type": "array",
            "items": { "type": "string", "pattern": PLAN_KEY_PATTERN },
        }),
        Shape::Flag => json!({ "type": "boolean" }),
        Shape::Whole { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Shape::Keyword(words) => json!({ "type": "string", "enum": words }),
        Shape::KeywordOrRank(words) => json!({
            "oneOf": [
                { "type": "string", "enum": words },
                { "type": "integer", "minimum": 0, "maximum": words.len().saturating_sub(1) },
            ]
        }),
        // `minimum` and `maximum` bind numbers only, `pattern` strings only.
        Shape::Dollars => json!({
            "type": ["number", "string"],
            "minimum": 0,
            "maximum": 1_000_000,
            "pattern": DOLLARS_PATTERN,
        }),
        Shape::Duration => json!({ "type": "string", "pattern": DURATION_PATTERN }),
        Shape::Defaults => {
            let (properties, _, _) = object_of(Table::Defaults);
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": properties,
            })
        }
        Shape::Tasks => json!({
            "type": "array",
            "minItems": 1,
            "items": { "$ref": "#/$defs/task" },
        }),
    }
}

#[cfg(test)]
mod tests {
    use maos_application::PlanReader;
    use maos_domain::CapabilitySet;

    use super::*;
    use crate::PlanFiles;

    fn names_of(properties: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = properties
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    fn sorted(mut names: Vec<&'static str>) -> Vec<&'static str> {
        names.sort_unstable();
        names
    }

    /// An object of every property of `object` (a schema), each with its example.
    fn example_of(object: &Value) -> Map<String, Value> {
        object["properties"]
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), p["examples"].get(0)?.clone())))
            .collect()
    }

    fn read(plan: &Map<String, Value>) -> Vec<String> {
        let text = serde_json::to_string_pretty(plan).unwrap();
        let offered = CapabilitySet::parse(["code"]).unwrap();
        match PlanFiles.read(&text, &offered) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    /// A plan made of every key of the schema, each with the example the schema gives.
    fn plan_of_every_key(schema: &Value, list: &str) -> Map<String, Value> {
        let mut plan = example_of(schema);
        plan.insert(
            "defaults".into(),
            Value::Object(example_of(&schema["properties"]["defaults"])),
        );
        let task = example_of(&schema["$defs"]["task"]);
        // The task the example `depends_on` names.
        let design = json!({ "id": "design", "title": "Design" });
        plan.insert(list.into(), json!([task, design]));
        plan
    }

    #[test]
    fn the_schema_has_the_keys_of_the_table_that_a_planner_may_give() {
        let s = schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let defaults = &s["properties"]["defaults"];
        let task = &s["$defs"]["task"];
        assert_eq!(
            names_of(&s["properties"]),
            sorted(keys::names(Table::Top, true))
        );
        assert_eq!(
            names_of(&defaults["properties"]),
            sorted(keys::names(Table::Defaults, true))
        );
        assert_eq!(
            names_of(&task["properties"]),
            sorted(keys::names(Table::Task, true))
        );
        for object in [&s, defaults, task] {
            assert_eq!(object["additionalProperties"], false, "{object:#}");
        }
        assert_eq!(s["required"], json!(["goal"]));
        assert_eq!(
            s["oneOf"],
            json!([{ "required": ["task"] }, { "required": ["tasks"] }])
        );
        assert_eq!(task["required"], json!(["id", "title"]));
        let about = s["description"].as_str().unwrap();
        assert!(
            about.contains("`repo`") && about.contains("`base`"),
            "{about}"
        );
        // Every key has its line of description, and every enum its words.
        for (name, p) in example_of(&s).keys().map(|k| (k, &s["properties"][k])) {
            assert!(p["description"].is_string(), "{name}: {p:#}");
        }
        assert_eq!(
            defaults["properties"]["risk"]["enum"],
            json!(["low", "medium", "high"])
        );
        assert_eq!(
            task["properties"]["tier"]["enum"],
            json!(["tactical", "strategic", "any"])
        );
        assert_eq!(
            task["properties"]["priority"]["oneOf"][0]["enum"],
            json!(["low", "normal", "high", "urgent"])
        );
        // The text the port gives is this schema.
        let text: Value = serde_json::from_str(&PlanFiles.schema()).unwrap();
        assert_eq!(text, s);
    }

    #[test]
    fn the_checker_accepts_every_key_of_the_schema_and_no_other() {
        let s = schema();
        // Every key of the schema, with the schema's example: no problem at all.
        for list in ["tasks", "task"] {
            let plan = plan_of_every_key(&s, list);
            assert_eq!(read(&plan), Vec::<String>::new(), "{plan:#?}");
        }
        // Each required key left out: a problem.
        let plan = plan_of_every_key(&s, "tasks");
        let mut without_goal = plan.clone();
        without_goal.remove("goal");
        assert_eq!(read(&without_goal).len(), 1);
        for key in ["id", "title"] {
            let mut without = plan.clone();
            without["tasks"][0].as_object_mut().unwrap().remove(key);
            assert!(
                read(&without)
                    .iter()
                    .any(|p| p.contains(&format!("no {key}"))),
                "{:?}",
                read(&without)
            );
        }
        let mut no_tasks = plan.clone();
        no_tasks.remove("tasks");
        assert_eq!(read(&no_tasks).len(), 1);
        // Every key the format has but the schema lacks, and a key of no table: refused, at
        // the top, in [defaults] and in a task.
        let top = names_of(&s["properties"]);
        let defaults = names_of(&s["properties"]["defaults"]["properties"]);
        let task = names_of(&s["$defs"]["task"]["properties"]);
        let candidates: Vec<&str> = keys::KEYS.iter().map(|k| k.name).chain(["bogus"]).collect();
        let mut refused = Vec::new();
        for key in candidates {
            for (at, known) in [("top", &top), ("defaults", &defaults), ("task", &task)] {
                let mut p = plan.clone();
                let object = match at {
                    "top" => &mut p,
                    "defaults" => p["defaults"].as_object_mut().unwrap(),
                    _ => p["tasks"][1].as_object_mut().unwrap(),
                };
                if object.contains_key(key) {
                    continue;
                }
                object.insert(key.to_owned(), json!("x"));
                let problems = read(&p);
                let is_refused = problems.iter().any(|m| {
                    m.contains(&format!("unknown key `{key}`"))
                        || m.contains(&format!("leave out `{key}`"))
                });
                assert_eq!(
                    is_refused,
                    !known.contains(&key),
                    "`{key}` in {at}: {problems:#?}"
                );
                if is_refused && at == "top" {
                    refused.push(key);
                }
            }
        }
        refused.sort_unstable();
        refused.dedup();
        assert!(
            refused.contains(&"repo") && refused.contains(&"base"),
            "{refused:?}"
        );
        assert!(
            refused.contains(&"bogus") && refused.contains(&"id"),
            "{refused:?}"
        );
    }
}
