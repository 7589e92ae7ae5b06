//! Workflow files: a workflow's stages and the handoffs between them, in TOML (or JSON of the
//! same shape, when the file's name ends in `.json` or its text starts with `{`), parsed and
//! checked in full into a [`Workflow`].
//!
//! ```toml
//! name = "tdd-strict"            # lowercase letters, digits, '-' and '_', starting with a letter
//! version = 2                    # 1 or more; raise it with every change
//! description = "…"              # optional
//! lessons = true                 # optional; false (the default): after failed attempts, the
//!                                # agent that succeeds is asked for a lesson, kept in memory
//!
//! [[stage]]                      # or `stages = [...]`: in JSON, "stages": [{...}, ...]
//! key = "plan"                   # unique; as the name
//! title = "Plan"                 # optional; default: the key
//! capabilities = ["plan"]        # optional; what the agent must offer
//! tier = "strategic"             # optional: tactical | strategic | any (the default)
//! risk = "low"                   # optional: low (the default) | medium | high
//! verify = "cargo test"          # optional; the command that checks the stage's work
//! lessons = false                # optional; this stage's own choice over the workflow's
//! prompt = "Plan: {goal}"        # what the stage must do; {goal} is replaced by the goal
//!
//! [[handoff]]                    # or `handoffs = [...]`: in JSON, "handoffs": [{...}, ...]
//! from = "plan"                  # `to` starts once `from` is done, with its output
//! to = "tests"
//! ```
//!
//! Every problem is reported at once, each as `file:line:column: message`: unknown keys and
//! values of the wrong type, bad names, keys, capabilities and keywords, a blank prompt, and what
//! [`Workflow::new`] finds (duplicate stage keys, handoffs naming an unknown stage or the stage
//! itself, cycles, stages that no entry stage reaches, ...), placed at the offending stage or
//! handoff. Two exceptions:
//!
//! - A syntax error, an unknown key or a value of the wrong type ends the reading (the TOML and
//!   JSON readers stop at the first), so it is the only problem reported.
//! - In a JSON file, the problems found after reading are located by their JSON path
//!   (`wf.json:stages[2].key: ...`), since serde_json keeps no positions for values; syntax and
//!   type errors carry line and column as in TOML.
//!
//! No I/O: the caller reads the file.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use maos_domain::workflow::{Stage, StageKey, Workflow, WorkflowName, WorkflowProblem};
use maos_domain::{Capability, CapabilitySet, Risk, Tier};
use maos_plans::diagnostics::{self, Diagnostics, Place, Problem};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

// ---------------------------------------------------------------------------------------------
// Problems and where they are.

/// Every problem found in a workflow file. Displayed one per line, as
/// `file:line:column: message` (or `file:json.path: message`, or `file: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkflowFileError {
    /// The file, as given.
    pub(crate) path: PathBuf,
    /// The problems, in the order of the file (problems of the file as a whole first).
    pub(crate) problems: Vec<Problem>,
}

impl WorkflowFileError {
    /// Each problem as `file:line:column: message`.
    pub(crate) fn lines(&self) -> Vec<String> {
        diagnostics::render(&self.path, &self.problems)
    }
}

impl fmt::Display for WorkflowFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for WorkflowFileError {}

// ---------------------------------------------------------------------------------------------
// Reading both formats with the same structs.

thread_local! {
    /// True while [`read_toml`] reads a document: [`At`] then keeps its value's span.
    static TOML_SPANS: Cell<bool> = const { Cell::new(false) };
}

/// Reads a TOML document whose [`At`] values keep their spans.
fn read_toml<T: DeserializeOwned>(text: &str) -> Result<T, toml::de::Error> {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            TOML_SPANS.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(TOML_SPANS.with(|s| s.replace(true)));
    toml::from_str(text)
}

/// A value of the file and its span in a TOML file (none in JSON, whose reader keeps no
/// positions: problems there are placed by their JSON path).
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    span: Option<Range<usize>>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if TOML_SPANS.with(Cell::get) {
            let spanned = Spanned::<T>::deserialize(d)?;
            let span = spanned.span();
            Ok(At {
                value: spanned.into_inner(),
                span: Some(span),
            })
        } else {
            T::deserialize(d).map(|value| At { value, span: None })
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: At<String>,
    version: At<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    stage: Vec<RawStage>,
    #[serde(default)]
    stages: Vec<RawStage>,
    #[serde(default)]
    handoff: Vec<RawHandoff>,
    #[serde(default)]
    handoffs: Vec<RawHandoff>,
    #[serde(default)]
    lessons: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    key: At<String>,
    title: Option<At<String>>,
    #[serde(default)]
    capabilities: Vec<At<String>>,
    tier: Option<At<String>>,
    risk: Option<At<String>>,
    verify: Option<String>,
    prompt: At<String>,
    lessons: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandoff {
    from: At<String>,
    to: At<String>,
}

/// A JSON reading error (syntax, unknown key, wrong type), placed by serde_json's line and
/// column.
fn json_error(e: &serde_json::Error) -> Problem {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    let place = if e.line() == 0 {
        Place::File
    } else {
        Place::At {
            line: e.line(),
            column: e.column(),
        }
    };
    Problem { place, message }
}

// ---------------------------------------------------------------------------------------------
// Checking.

/// The workflow in `text`, read from `path` (TOML, or JSON when the name ends in `.json` or the
/// text starts with `{`), or every problem found in it.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Workflow, WorkflowFileError> {
    let fail = |problems: Vec<Problem>| WorkflowFileError {
        path: path.to_path_buf(),
        problems,
    };
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    let mut problems = Diagnostics::new(path, text);
    let raw: RawWorkflow = if json {
        serde_json::from_str(text).map_err(|e| fail(vec![json_error(&e)]))?
    } else {
        read_toml(text).map_err(|e| {
            let place = e.span().map_or(Place::File, |s| problems.place(s.start));
            fail(vec![Problem {
                place,
                message: e.message().trim_end().to_owned(),
            }])
        })?
    };
    let workflow = check(path, &raw, &mut problems);
    // In the order of the file; problems of the file as a whole first, JSON paths last.
    let found = problems.finish();
    match workflow {
        Some(w) if found.is_empty() => Ok(w),
        _ if found.is_empty() => Err(fail(vec![Problem::file(
            "the file could not be read (no problem was recorded: this is a bug)",
        )])),
        _ => Err(fail(found)),
    }
}

/// Checks one file's values, and then the workflow they make.
struct Ctx<'p, 'a> {
    problems: &'p mut Diagnostics<'a>,
}

impl Ctx<'_, '_> {
    /// Where a value is: its span, or else the JSON path `path` makes.
    fn place<T>(&self, value: &At<T>, path: impl FnOnce() -> String) -> Place {
        match &value.span {
            Some(span) => self.problems.place(span.start),
            None => Place::Path(path()),
        }
    }

    /// Parses the string, recording the problem at its place when it does not parse.
    fn parse<T, E: fmt::Display>(
        &mut self,
        value: &At<String>,
        path: impl FnOnce() -> String,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let place = self.place(value, path);
        parse(&value.value)
            .map_err(|e| self.problems.add_at(place, e.to_string()))
            .ok()
    }
}

/// A tier keyword, or `any` (no tier required): `Some(None)`.
fn tier_or_any(raw: &str) -> Result<Option<Tier>, String> {
    if raw == "any" {
        return Ok(None);
    }
    Tier::parse(raw)
        .map(Some)
        .map_err(|e| format!("{e}, or any"))
}

/// A stage as checked: `None` where its value did not parse.
struct Checked {
    key: Option<StageKey>,
    capabilities: Option<CapabilitySet>,
    tier: Option<Option<Tier>>,
    risk: Option<Risk>,
}

fn check(path: &Path, raw: &RawWorkflow, problems: &mut Diagnostics<'_>) -> Option<Workflow> {
    let mut ctx = Ctx { problems };
    let name = ctx.parse(&raw.name, || "name".to_owned(), WorkflowName::parse);
    let version = match u32::try_from(raw.version.value) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            let place = ctx.place(&raw.version, || "version".to_owned());
            ctx.problems.add_at(
                place,
                format!(
                    "version must be a whole number from 1 to {}, not {}",
                    u32::MAX,
                    raw.version.value
                ),
            );
            None
        }
    };

    let (list, raw_stages) = pick(&mut ctx, "stage", &raw.stage, "stages", &raw.stages);
    let (hlist, raw_handoffs) = pick(&mut ctx, "handoff", &raw.handoff, "handoffs", &raw.handoffs);
    let checked: Vec<Checked> = raw_stages
        .iter()
        .enumerate()
        .map(|(i, s)| check_stage(&mut ctx, s, &format!("{list}[{i}]")))
        .collect();
    let mut ends: Vec<(Option<StageKey>, Option<StageKey>)> = Vec::new();
    for (i, h) in raw_handoffs.iter().enumerate() {
        let at = |field: &str| format!("{hlist}[{i}].{field}");
        let from = ctx.parse(&h.from, || at("from"), StageKey::parse);
        let to = ctx.parse(&h.to, || at("to"), StageKey::parse);
        ends.push((from, to));
    }

    // The structure, over the stages and handoffs whose keys parse. Leaving some out could make
    // stages look unreachable (or the workflow empty), so those problems are then not reported.
    let mut stages = Vec::new();
    let mut stage_of = Vec::new();
    for (i, (s, c)) in raw_stages.iter().zip(&checked).enumerate() {
        if let Some(key) = &c.key {
            stage_of.push(i);
            stages.push(Stage {
                key: key.clone(),
                title: s
                    .title
                    .as_ref()
                    .map_or_else(|| key.as_str().to_owned(), |t| t.value.clone()),
                capabilities: c.capabilities.clone().unwrap_or_default(),
                tier: c.tier.flatten(),
                risk: c.risk.unwrap_or_default(),
                verify: s.verify.as_ref().filter(|v| !v.trim().is_empty()).cloned(),
                prompt: s.prompt.value.clone(),
                lessons: s.lessons,
            });
        }
    }
    let mut handoffs = Vec::new();
    let mut handoff_of = Vec::new();
    for (i, (from, to)) in ends.iter().enumerate() {
        if let (Some(from), Some(to)) = (from, to) {
            handoff_of.push(i);
            handoffs.push((from.clone(), to.clone()));
        }
    }
    let partial = stages.len() < raw_stages.len() || handoffs.len() < raw_handoffs.len();
    let fallback_name = WorkflowName::parse("workflow").ok();
    let description = raw.description.clone().unwrap_or_default();
    let workflow_name = name.clone().or(fallback_name)?;
    let result = Workflow::new(
        workflow_name,
        version.unwrap_or(1),
        description,
        stages,
        handoffs,
    );
    let problems = match result {
        Ok(w) => return name.and(version).map(|_| w.with_lessons(raw.lessons)),
        Err(problems) => problems,
    };
    let keys: BTreeSet<&str> = raw_stages.iter().map(|s| s.key.value.as_str()).collect();
    let keys: Vec<&str> = keys.into_iter().collect();
    let stage_key = |ctx: &Ctx<'_, '_>, stage: usize| {
        let i = stage_of.get(stage).copied().unwrap_or(stage);
        match raw_stages.get(i) {
            Some(s) => ctx.place(&s.key, || format!("{list}[{i}].key")),
            None => Place::File,
        }
    };
    let handoff_end = |ctx: &Ctx<'_, '_>, handoff: usize, to: bool| {
        let i = handoff_of.get(handoff).copied().unwrap_or(handoff);
        match raw_handoffs.get(i) {
            Some(h) if to => ctx.place(&h.to, || format!("{hlist}[{i}].to")),
            Some(h) => ctx.place(&h.from, || format!("{hlist}[{i}].from")),
            None => Place::File,
        }
    };
    for problem in problems {
        match &problem {
            WorkflowProblem::NoStages => {
                if !partial {
                    ctx.problems.add_at(
                        Place::File,
                        "the workflow has no stages: add one or more [[stage]] tables (in JSON, \
                         a \"stages\" array)",
                    );
                }
            }
            WorkflowProblem::VersionZero => {
                let place = ctx.place(&raw.version, || "version".to_owned());
                ctx.problems.add_at(place, problem.to_string());
            }
            WorkflowProblem::DuplicateStage { key, stage, first } => {
                let first = stage_key(&ctx, *first).shown(path);
                let place = stage_key(&ctx, *stage);
                ctx.problems.add_at(
                    place,
                    format!(
                        "the stage key {:?} is already used at {first}: give each stage its \
                         own key",
                        key.as_str()
                    ),
                );
            }
            WorkflowProblem::InvalidTitle { stage, .. } => {
                let i = stage_of.get(*stage).copied().unwrap_or(*stage);
                let place = match raw_stages.get(i).and_then(|s| s.title.as_ref()) {
                    Some(t) => ctx.place(t, || format!("{list}[{i}].title")),
                    None => stage_key(&ctx, *stage),
                };
                ctx.problems.add_at(place, problem.to_string());
            }
            WorkflowProblem::UnknownStage {
                from,
                to,
                unknown,
                handoff,
            } => {
                let place = handoff_end(&ctx, *handoff, unknown != from || from == to);
                ctx.problems.add_at(
                    place,
                    format!("{problem} (its stages: {})", keys.join(", ")),
                );
            }
            WorkflowProblem::SelfHandoff { handoff, .. } => {
                let place = handoff_end(&ctx, *handoff, true);
                ctx.problems.add_at(place, problem.to_string());
            }
            WorkflowProblem::DuplicateHandoff { handoff, .. }
            | WorkflowProblem::Cycle { handoff, .. } => {
                let place = handoff_end(&ctx, *handoff, false);
                ctx.problems.add_at(place, problem.to_string());
            }
            WorkflowProblem::Unreachable { stage, .. } => {
                if !partial {
                    let place = stage_key(&ctx, *stage);
                    ctx.problems.add_at(place, problem.to_string());
                }
            }
        }
    }
    None
}

/// The list given as `[[single]]` tables or as a `plural` array; a problem when both are.
fn pick<'r, T>(
    ctx: &mut Ctx<'_, '_>,
    single: &'static str,
    one: &'r [T],
    plural: &'static str,
    other: &'r [T],
) -> (&'static str, &'r [T]) {
    match (one.is_empty(), other.is_empty()) {
        (false, false) => {
            ctx.problems.add_at(
                Place::File,
                format!(
                    "the workflow gives both [[{single}]] tables and a {plural} array; use one"
                ),
            );
            (single, one)
        }
        (true, false) => (plural, other),
        _ => (single, one),
    }
}

fn check_stage(ctx: &mut Ctx<'_, '_>, s: &RawStage, prefix: &str) -> Checked {
    let at = |field: &str| format!("{prefix}.{field}");
    let key = ctx.parse(&s.key, || at("key"), StageKey::parse);
    let parsed: Vec<Option<Capability>> = s
        .capabilities
        .iter()
        .enumerate()
        .map(|(j, c)| ctx.parse(c, || at(&format!("capabilities[{j}]")), Capability::parse))
        .collect();
    let capabilities = parsed.into_iter().collect::<Option<CapabilitySet>>();
    let tier = match &s.tier {
        Some(t) => ctx.parse(t, || at("tier"), tier_or_any),
        None => Some(None),
    };
    let risk = match &s.risk {
        Some(r) => ctx.parse(r, || at("risk"), Risk::parse),
        None => Some(Risk::default()),
    };
    if s.prompt.value.trim().is_empty() {
        let place = ctx.place(&s.prompt, || at("prompt"));
        ctx.problems.add_at(
            place,
            "the prompt is blank: say what the stage must do ({goal} stands for the goal)",
        );
    }
    Checked {
        key,
        capabilities,
        tier,
        risk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TDD_STRICT: &str = include_str!("../../../../examples/workflows/tdd-strict.toml");

    const GOOD: &str = r#"name = "tdd-strict"
version = 2
description = "Plan, test, implement, review"

[[stage]]
key = "plan"
title = "Plan"
capabilities = ["plan"]
tier = "strategic"
risk = "low"
prompt = "Plan: {goal}"

[[stage]]
key = "tests"
capabilities = ["test"]
verify = "cargo test --no-run"
prompt = "Write failing tests for: {goal}"

[[handoff]]
from = "plan"
to = "tests"
"#;

    fn problems(name: &str, text: &str) -> Vec<String> {
        match parse(Path::new(name), text) {
            Ok(w) => panic!("{name} parsed: {w:?}"),
            Err(e) => e.lines(),
        }
    }

    fn has(all: &[String], wanted: &str) {
        assert!(
            all.iter().any(|p| p.starts_with(wanted)),
            "no problem starting {wanted:?} in:\n{}",
            all.join("\n")
        );
    }

    fn key(raw: &str) -> StageKey {
        StageKey::parse(raw).unwrap()
    }

    #[test]
    fn a_good_file_gives_the_workflow() {
        let w = parse(Path::new("w.toml"), GOOD).unwrap();
        assert_eq!(w.name().as_str(), "tdd-strict");
        assert_eq!(w.version(), 2);
        assert_eq!(w.description(), "Plan, test, implement, review");
        let plan = &w.stages()[0];
        assert_eq!(plan.title, "Plan");
        assert_eq!(plan.tier, Some(Tier::Strategic));
        assert_eq!(plan.capabilities, CapabilitySet::parse(["plan"]).unwrap());
        assert_eq!(plan.verify, None);
        let tests = &w.stages()[1];
        assert_eq!(tests.title, "tests", "the title defaults to the key");
        assert_eq!(tests.tier, None);
        assert_eq!(tests.risk, Risk::Low);
        assert_eq!(tests.verify.as_deref(), Some("cargo test --no-run"));
        assert_eq!(w.handoffs(), [(key("plan"), key("tests"))]);
    }

    #[test]
    fn the_example_workflow_reads() {
        let w = parse(Path::new("examples/workflows/tdd-strict.toml"), TDD_STRICT).unwrap();
        assert_eq!(w.name().as_str(), "tdd-strict");
        let order: Vec<&str> = w.order().iter().map(|s| s.key.as_str()).collect();
        assert_eq!(order, ["plan", "tests", "implement", "review", "docs"]);
        let implement = w.stage(&key("implement")).unwrap();
        assert_eq!(implement.risk, Risk::Medium);
        assert!(w.stages().iter().all(|s| s.prompt.contains("{goal}")));
    }

    #[test]
    fn json_reads_the_same_and_the_stored_form_reads_back() {
        let toml = parse(Path::new("w.toml"), GOOD).unwrap();
        let json = r#"{"name": "tdd-strict", "version": 2,
            "description": "Plan, test, implement, review",
            "stages": [
              {"key": "plan", "title": "Plan", "capabilities": ["plan"], "tier": "strategic",
               "risk": "low", "prompt": "Plan: {goal}"},
              {"key": "tests", "capabilities": ["test"], "verify": "cargo test --no-run",
               "prompt": "Write failing tests for: {goal}"}],
            "handoffs": [{"from": "plan", "to": "tests"}]}"#;
        assert_eq!(parse(Path::new("w.json"), json).unwrap(), toml);
        // No extension: the leading `{` says JSON.
        assert_eq!(parse(Path::new("w"), json).unwrap(), toml);
        // What the domain stores (its serde form) is itself a workflow file.
        let stored = serde_json::to_string(&toml).unwrap();
        assert_eq!(parse(Path::new("stored.json"), &stored).unwrap(), toml);
        let back: Workflow = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, toml);
    }

    #[test]
    fn lessons_are_off_unless_the_workflow_or_a_stage_turns_them_on() {
        let off = parse(Path::new("w.toml"), GOOD).unwrap();
        assert!(!off.lessons());
        assert!(off.stages().iter().all(|s| !off.lessons_of(s)));
        let text = GOOD
            .replace(
                "description = \"Plan, test, implement, review\"\n",
                "description = \"Plan, test, implement, review\"\nlessons = true\n",
            )
            .replace(
                "verify = \"cargo test --no-run\"\n",
                "verify = \"cargo test --no-run\"\nlessons = false\n",
            );
        let on = parse(Path::new("w.toml"), &text).unwrap();
        assert!(on.lessons());
        let asks: Vec<bool> = on.stages().iter().map(|s| on.lessons_of(s)).collect();
        assert_eq!(asks, [true, false], "the stage's own choice wins");
        // The stored form keeps both.
        let stored = serde_json::to_string(&on).unwrap();
        assert_eq!(parse(Path::new("stored.json"), &stored).unwrap(), on);
        let all = problems(
            "w.toml",
            &text.replace("lessons = true", "lessons = \"yes\""),
        );
        has(
            &all,
            "w.toml:4:11: invalid type: string \"yes\", expected a boolean",
        );
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_placed() {
        let all = problems("w.toml", &GOOD.replace("risk = \"low\"", "risks = \"low\""));
        assert_eq!(all.len(), 1, "{all:?}");
        has(&all, "w.toml:10:1: unknown field `risks`");
        let all = problems("w.toml", "name = \"a\"\nversion = 1\n[[stage]\n");
        has(&all, "w.toml:3:");
        let all = problems("w.toml", "name = \"a\"\nversion = \"one\"\n");
        has(
            &all,
            "w.toml:2:11: invalid type: string \"one\", expected i64",
        );
    }

    #[test]
    fn a_duplicate_stage_is_placed_at_its_key() {
        let text = format!("{GOOD}\n[[stage]]\nkey = \"plan\"\nprompt = \"Again: {{goal}}\"\n");
        let all = problems("w.toml", &text);
        assert_eq!(
            all,
            [
                "w.toml:24:7: the stage key \"plan\" is already used at w.toml:6:7: give each \
              stage its own key"
            ]
        );
    }

    #[test]
    fn an_unknown_handoff_target_is_placed_at_it() {
        let all = problems("w.toml", &GOOD.replace("to = \"tests\"", "to = \"test\""));
        assert_eq!(
            all,
            [
                "w.toml:21:6: the handoff plan → test names \"test\", which is not a stage of this \
              workflow: add the stage or correct the key (its stages: plan, tests)"
            ]
        );
    }

    #[test]
    fn a_cycle_is_placed_at_the_handoff_that_closes_it() {
        let text = format!("{GOOD}\n[[handoff]]\nfrom = \"tests\"\nto = \"plan\"\n");
        let all = problems("w.toml", &text);
        assert_eq!(all.len(), 3, "{all:?}");
        has(
            &all,
            "w.toml:24:8: the handoffs form a cycle, so none of these stages could start: \
             plan → tests → plan; remove one of these handoffs",
        );
        // With no stage left that nothing hands off to, no stage is reachable.
        has(&all, "w.toml:6:7: stage \"plan\" cannot be reached");
        has(&all, "w.toml:14:7: stage \"tests\" cannot be reached");
    }

    #[test]
    fn every_problem_is_reported_at_once_in_file_order() {
        let text = "name = \"Strict\"\nversion = 0\n\
                    [[stage]]\nkey = \"plan\"\ntier = \"middle\"\nrisk = \"big\"\n\
                    capabilities = [\"ok\", \"Bad!\"]\ntitle = \"\"\nprompt = \" \"\n\
                    [[stage]]\nkey = \"Tests\"\nprompt = \"p\"\n\
                    [[stage]]\nkey = \"plan\"\nprompt = \"p\"\n\
                    [[handoff]]\nfrom = \"plan\"\nto = \"plan\"\n\
                    [[handoff]]\nfrom = \"plan\"\nto = \"nowhere\"\n";
        let all = problems("w.toml", text);
        let expected = [
            "w.toml:1:8: invalid workflow name \"Strict\": uppercase is not allowed; use \"strict\"",
            "w.toml:2:11: version must be a whole number from 1 to 4294967295, not 0",
            "w.toml:5:8: invalid tier \"middle\"",
            "w.toml:6:8: invalid risk \"big\"",
            "w.toml:7:23: invalid capability \"Bad!\"",
            "w.toml:8:9: the title of stage \"plan\" is not valid",
            "w.toml:9:10: the prompt is blank",
            "w.toml:11:7: invalid stage key \"Tests\"",
            "w.toml:14:7: the stage key \"plan\" is already used at w.toml:4:7",
            "w.toml:18:6: stage \"plan\" hands off to itself",
            "w.toml:21:6: the handoff plan → nowhere names \"nowhere\"",
        ];
        for (got, wanted) in all.iter().zip(expected) {
            assert!(
                got.starts_with(wanted),
                "{got:?} is not {wanted:?}\n{all:#?}"
            );
        }
        assert_eq!(all.len(), expected.len(), "{all:#?}");
    }

    #[test]
    fn json_problems_are_placed_by_line_and_column_or_by_path() {
        let all = problems(
            "w.json",
            "{\"name\": \"w\", \"version\": 1,\n \"stages\": [{\"key\": 3}]}",
        );
        assert_eq!(
            all,
            ["w.json:2:21: invalid type: integer `3`, expected a string"]
        );
        let all = problems("w.json", "{\"name\": \"w\", \"version\": 1, \"colour\": 1}");
        has(&all, "w.json:1:36: unknown field `colour`");
        let text = r#"{"name": "w", "version": 1,
          "stages": [{"key": "a", "prompt": "{goal}"}, {"key": "a", "prompt": "x"}],
          "handoffs": [{"from": "a", "to": "b"}]}"#;
        let all = problems("w.json", text);
        assert_eq!(
            all,
            [
                "w.json:stages[1].key: the stage key \"a\" is already used at \
                 w.json:stages[0].key: give each stage its own key",
                "w.json:handoffs[0].to: the handoff a → b names \"b\", which is not a stage of \
                 this workflow: add the stage or correct the key (its stages: a)",
            ]
        );
    }

    #[test]
    fn an_empty_workflow_and_both_list_forms_are_refused() {
        let all = problems("w.toml", "name = \"w\"\nversion = 1\n");
        assert_eq!(
            all,
            [
                "w.toml: the workflow has no stages: add one or more [[stage]] tables (in JSON, a \
              \"stages\" array)"
            ]
        );
        let all = problems(
            "w.toml",
            "name = \"w\"\nversion = 1\nstages = [{key = \"a\", prompt = \"p\"}]\n\
             [[stage]]\nkey = \"b\"\nprompt = \"p\"\n",
        );
        assert_eq!(
            all,
            ["w.toml: the workflow gives both [[stage]] tables and a stages array; use one"]
        );
    }
}
