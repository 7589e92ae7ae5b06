//! `PlanFiles`, the application's `PlanReader`: a planner's plan checked by the plan file's own
//! checker (as a planner's, so `repo` and `base` are refused) and turned into the domain's
//! `Plan`; a `Plan` written back as a JSON plan file; the JSON Schema and an example that show a
//! planner the format.

use std::path::Path;

use maos_application::{PlanProblem, PlanReader};
use maos_domain::plan::{Plan, PlannedTask};
use maos_domain::{CapabilitySet, MaxAttempts, Priority, Risk};
use serde::Serialize;

use crate::diagnostics::{Place, Problem};
use crate::plan_file::{self, Author, PlanFile};
use crate::schema;

/// Plans read and written as plan files.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanFiles;

/// A short plan that `read` accepts whatever the registered agents offer (its tasks require no
/// capability): three tasks, one dependency, concerns, and verify commands.
const EXAMPLE: &str = r#"{
  "goal": "Add a greet(name) function with tests, and document it in the README",
  "name": "greeting",
  "notes": ["Keep functions small and documented."],
  "verify": "cargo test",
  "tasks": [
    {
      "id": "greet",
      "title": "Write greet()",
      "prompt": "Add src/greet.rs with `pub fn greet(name: &str) -> String` returning \"Hello, {name}!\", and export it from src/lib.rs.",
      "concerns": ["src/greet.rs", "src/lib.rs"],
      "verify": "cargo build"
    },
    {
      "id": "tests",
      "title": "Test greet()",
      "prompt": "Add tests/greet.rs: greet(\"Ada\") is \"Hello, Ada!\", and an empty name still greets.",
      "depends_on": ["greet"],
      "concerns": ["tests/greet.rs"],
      "timeout": "15m"
    },
    {
      "id": "docs",
      "title": "Document greet() in the README",
      "prompt": "Add a short Usage section to README.md with one example of greet().",
      "concerns": ["README.md"],
      "risk": "low"
    }
  ]
}
"#;

impl PlanReader for PlanFiles {
    fn read(&self, text: &str, offered: &CapabilitySet) -> Result<Plan, Vec<PlanProblem>> {
        // The checker tells JSON from TOML by the text; the name only shows in messages that
        // point at a second place ("the task at plan.json:4:13 has it already").
        let json = text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{');
        let path = Path::new(if json { "plan.json" } else { "plan.toml" });
        plan_file::parse_with(path, text, offered, Author::Planner)
            .map(plan_of)
            .map_err(|e| e.problems.into_iter().map(problem).collect())
    }

    fn write(&self, plan: &Plan) -> String {
        let file = FileOut::of(plan);
        // Strings, numbers and lists of them: serialising cannot fail.
        let mut text = serde_json::to_string_pretty(&file)
            .expect("a plan file of strings, numbers and lists always serialises");
        text.push('\n');
        text
    }

    fn schema(&self) -> String {
        let mut text = serde_json::to_string_pretty(&schema::schema())
            .expect("a JSON value always serialises");
        text.push('\n');
        text
    }

    fn example(&self) -> String {
        EXAMPLE.to_owned()
    }
}

/// The domain's plan of a checked plan file (a planner's: without `repo` and `base`).
fn plan_of(file: PlanFile) -> Plan {
    Plan {
        goal: file.goal,
        name: file.named.then_some(file.name),
        notes: file.notes,
        verify: file.verify,
        tasks: file.tasks,
    }
}

/// A problem as the port gives it: line and column from 1, or 0 and 0 for the text as a whole
/// (a JSON path, where a reader keeps one, goes into the message).
fn problem(p: Problem) -> PlanProblem {
    let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match p.place {
        Place::At { line, column } => PlanProblem {
            line: at(line),
            column: at(column),
            message: p.message,
        },
        Place::Path(path) => PlanProblem {
            line: 0,
            column: 0,
            message: format!("at {path}: {}", p.message),
        },
        Place::File | Place::Start => PlanProblem {
            line: 0,
            column: 0,
            message: p.message,
        },
    }
}

// -- writing -------------------------------------------------------------------------------------

/// A plan file as JSON, in the order of the format; what is at its default is left out.
#[derive(Serialize)]
struct FileOut<'a> {
    goal: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<&'a str>,
    tasks: Vec<TaskOut<'a>>,
}

#[derive(Serialize)]
struct TaskOut<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    prompt: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    capabilities: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    concerns: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<&'a str>,
    /// Left out: any tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    /// Dollars as a string ("0.50"): exact, where a number would be a float.
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_usd: Option<String>,
    /// A duration with its units ("1h30m").
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    port: bool,
}

impl<'a> FileOut<'a> {
    fn of(plan: &'a Plan) -> FileOut<'a> {
        FileOut {
            goal: &plan.goal,
            name: plan.name.as_ref().map(|n| n.as_str()),
            notes: plan.notes.iter().map(String::as_str).collect(),
            verify: plan.verify.as_deref(),
            tasks: plan.tasks.iter().map(TaskOut::of).collect(),
        }
    }
}

impl<'a> TaskOut<'a> {
    fn of(t: &'a PlannedTask) -> TaskOut<'a> {
        TaskOut {
            id: t.key.as_str(),
            title: t.title.as_str(),
            prompt: &t.prompt,
            capabilities: t.capabilities.iter().map(|c| c.as_str()).collect(),
            depends_on: t.depends_on.iter().map(|d| d.as_str()).collect(),
            concerns: t.concerns.iter().map(|c| c.as_str()).collect(),
            risk: (t.risk != Risk::default()).then(|| t.risk.as_str()),
            verify: t.verify.as_deref(),
            tier: t.tier.map(|tier| tier.as_str()),
            max_attempts: (t.max_attempts != MaxAttempts::default()).then(|| t.max_attempts.get()),
            budget_usd: t.budget.map(|b| b.to_string()),
            timeout: t.timeout.map(|d| d.to_string()),
            priority: (t.priority != Priority::default()).then(|| t.priority.as_str()),
            port: t.wants_port,
        }
    }
}

#[cfg(test)]
mod tests {
    use maos_domain::policy::concerns::Concern;
    use maos_domain::{Capability, DurationMs, PlanKey, Tier, Title, Usd};
    use proptest::prelude::*;

    use super::*;

    fn caps(list: &[&str]) -> CapabilitySet {
        CapabilitySet::parse(list.iter().copied()).unwrap()
    }

    fn read(text: &str, offered: &[&str]) -> Result<Plan, Vec<PlanProblem>> {
        PlanFiles.read(text, &caps(offered))
    }

    /// Every problem as `line:column: message`.
    fn problems(text: &str, offered: &[&str]) -> Vec<String> {
        read(text, offered)
            .unwrap_err()
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect()
    }

    #[test]
    fn a_plan_with_problems_gives_every_problem_with_its_place() {
        let text = r#"{
  "name": "x",
  "colour": "red",
  "tasks": [
    { "id": "a", "title": "A", "risk": "huge", "depends_on": ["b"] },
    { "id": "c", "capabilities": ["go"], "timeout": 30 }
  ]
}"#;
        assert_eq!(
            problems(text, &["rust"]),
            [
                "0:0: the plan has no goal: add \"goal\": \"...\" at the top of the file, saying \
                 what the plan achieves",
                "3:3: unknown key `colour` at the top of the plan; the keys allowed here are \
                 goal, name, notes, verify, defaults, task, tasks",
                "5:40: invalid risk \"huge\": expected one of: low, medium, high",
                "5:63: task `a` depends on `b`, which is not a task of this plan (its tasks are \
                 `a`, `c`); fix the id or add a task with it",
                "6:5: task `c` has no title: add \"title\": \"...\", a few words saying what it \
                 does",
                "6:35: no registered agent offers capability `go` (the registered agents offer \
                 rust); use only those, or leave the capability out",
                "6:53: `timeout` needs a unit: write it as a string such as \"timeout\": \"30s\" \
                 or \"30m\"",
            ]
        );
        // TOML is read as well, with the same places.
        assert_eq!(
            problems(
                "goal = \"g\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\nport = 1\n",
                &[]
            ),
            ["5:8: `port` must be true or false, not the number 1; for example port = true"]
        );
        // A syntax error, at its place, hides its echoes (the missing goal, here).
        let all = problems("{\n  \"tasks\": [\n}", &[]);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].starts_with("3:1: JSON syntax error: "), "{all:#?}");
        // No capability at all: nothing to choose from.
        let all = problems(
            "{\"goal\": \"g\", \"tasks\": [{\"id\": \"a\", \"title\": \"A\", \"capabilities\": [\"go\"]}]}",
            &[],
        );
        assert_eq!(
            all,
            [
                "1:68: no registered agent offers capability `go` (no agent is registered yet); \
              leave the capability out"
            ]
        );
    }

    #[test]
    fn repo_and_base_are_refused_from_a_planner_and_accepted_from_a_person() {
        let text = r#"{
  "goal": "g",
  "repo": ".",
  "base": "main",
  "tasks": [{ "id": "a", "title": "A", "repo": "." }]
}"#;
        assert_eq!(
            problems(text, &[]),
            [
                "3:3: a version of a plan does not choose the repository: leave out `repo` (the \
                 orchestration's is kept)",
                "4:3: a version of a plan does not choose the branch the tasks start from: leave \
                 out `base` (the orchestration's is kept)",
                "5:40: unknown key `repo` in task `a`; it belongs at the top of the file, before \
                 the first [table] header",
            ]
        );
        let toml = "goal = \"g\"\nrepo = 3\nbase = \"-x\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n";
        assert_eq!(
            problems(toml, &[]),
            [
                "2:1: a version of a plan does not choose the repository: leave out `repo` (the \
                 orchestration's is kept)",
                "3:1: a version of a plan does not choose the branch the tasks start from: leave \
                 out `base` (the orchestration's is kept)",
            ],
            "the values of refused keys are not checked"
        );
        // A person's plan file may give them.
        let person = plan_file::parse(
            Path::new("p/plan.json"),
            text.replace(", \"repo\": \".\" }", " }").as_str(),
            &CapabilitySet::empty(),
        );
        let person = person.unwrap();
        assert_eq!(person.repo.as_deref(), Some(Path::new("p")));
        assert_eq!(person.base.as_deref(), Some("main"));
        // And a planner's misspelt key is not pointed at `repo`.
        assert_eq!(
            problems(
                "{\"goal\": \"g\", \"rpo\": 1, \"tasks\": [{\"id\": \"a\", \"title\": \"A\"}]}",
                &[]
            ),
            [
                "1:15: unknown key `rpo` at the top of the plan; the keys allowed here are goal, \
              name, notes, verify, defaults, task, tasks"
            ]
        );
    }

    #[test]
    fn every_field_of_a_plan_file_reaches_the_plan() {
        let text = r#"{
  "goal": "  Greet people  ",
  "notes": [" Be brief. "],
  "verify": "make test",
  "defaults": { "risk": "medium", "timeout": "10m", "budget_usd": 0.5, "verify": "cargo test" },
  "tasks": [
    { "id": "plan", "title": "Sketch", "capabilities": ["design"] },
    {
      "id": "greet", "title": " Write greet() ", "prompt": "In src/greet.rs.",
      "capabilities": ["rust", "code"], "depends_on": ["plan", "plan"],
      "concerns": ["src/greet.*", "port:8080"], "risk": "high", "verify": "",
      "tier": "strategic", "max_attempts": 5, "budget_usd": "$1.25", "timeout": "1h30m",
      "priority": 3, "port": true
    }
  ]
}"#;
        let plan = read(text, &["code", "design", "rust"]).unwrap();
        assert_eq!(plan.goal, "Greet people");
        assert_eq!(plan.name, None, "no `name`: the goal names the plan");
        assert_eq!(plan.notes, ["Be brief."]);
        assert_eq!(plan.verify.as_deref(), Some("make test"));
        let [sketch, greet] = plan.tasks.as_slice() else {
            panic!("two tasks: {plan:#?}")
        };
        assert_eq!(
            *sketch,
            PlannedTask {
                key: PlanKey::parse("plan").unwrap(),
                title: Title::parse("Sketch").unwrap(),
                prompt: String::new(),
                capabilities: caps(&["design"]),
                depends_on: Vec::new(),
                concerns: Vec::new(),
                risk: Risk::Medium,
                verify: Some("cargo test".into()),
                tier: None,
                max_attempts: MaxAttempts::default(),
                budget: Some(Usd::from_micros(500_000)),
                timeout: Some(DurationMs::parse("10m").unwrap()),
                priority: Priority::Normal,
                wants_port: false,
            }
        );
        assert_eq!(
            *greet,
            PlannedTask {
                key: PlanKey::parse("greet").unwrap(),
                title: Title::parse("Write greet()").unwrap(),
                prompt: "In src/greet.rs.".into(),
                capabilities: caps(&["code", "rust"]),
                depends_on: vec![PlanKey::parse("plan").unwrap()],
                concerns: vec![
                    Concern::parse("src/greet.*").unwrap(),
                    Concern::parse("port:8080").unwrap()
                ],
                risk: Risk::High,
                verify: None,
                tier: Some(Tier::Strategic),
                max_attempts: MaxAttempts::new(5).unwrap(),
                budget: Some(Usd::from_micros(1_250_000)),
                timeout: Some(DurationMs::from_millis(5_400_000).unwrap()),
                priority: Priority::Urgent,
                wants_port: true,
            }
        );
        let named = read(
            "goal = \"g\"\nname = \" Greeting \"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(named.name, Some(Title::parse("Greeting").unwrap()));
    }

    #[test]
    fn json_paths_and_whole_text_problems_have_no_line() {
        let p = |place: Place| {
            problem(Problem {
                place,
                message: "m".into(),
            })
        };
        let at = |line, column, message: &str| PlanProblem {
            line,
            column,
            message: message.into(),
        };
        assert_eq!(p(Place::At { line: 3, column: 7 }), at(3, 7, "m"));
        assert_eq!(
            p(Place::Path("tasks[2].id".into())),
            at(0, 0, "at tasks[2].id: m")
        );
        assert_eq!(p(Place::File), at(0, 0, "m"));
        assert_eq!(p(Place::Start), at(0, 0, "m"));
        assert_eq!(at(0, 0, "m").to_string(), "m");
        assert_eq!(at(3, 7, "m").to_string(), "3:7: m");
    }

    #[test]
    fn the_example_is_a_plan_a_planner_may_give() {
        let example = PlanFiles.example();
        let plan = read(&example, &[]).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(plan.tasks.len(), 3);
        let deps: usize = plan.tasks.iter().map(|t| t.depends_on.len()).sum();
        assert_eq!(deps, 1);
        assert!(plan.tasks.iter().all(|t| !t.concerns.is_empty()));
        assert!(plan.verify.is_some());
        assert!(
            plan.broken_rules(20).is_empty(),
            "{:?}",
            plan.broken_rules(20)
        );
        assert_eq!(read(&PlanFiles.write(&plan), &[]), Ok(plan));
    }

    #[test]
    fn a_plan_is_written_in_the_order_of_the_format_without_its_defaults() {
        let text = "goal = \"Greet\"\n\
                    [[task]]\nid = \"a\"\ntitle = \"A\"\n\
                    [[task]]\nid = \"b\"\ntitle = \"B\"\nprompt = \"Say \\\"hi\\\".\"\n\
                    capabilities = [\"code\"]\ndepends_on = [\"a\"]\nconcerns = [\"src/\"]\n\
                    risk = \"medium\"\nverify = \"make\"\ntier = \"tactical\"\nmax_attempts = 2\n\
                    budget_usd = 0.5\ntimeout = \"90m\"\npriority = \"low\"\nport = true\n";
        let plan = read(text, &["code"]).unwrap();
        assert_eq!(
            PlanFiles.write(&plan),
            r#"{
  "goal": "Greet",
  "tasks": [
    {
      "id": "a",
      "title": "A"
    },
    {
      "id": "b",
      "title": "B",
      "prompt": "Say \"hi\".",
      "capabilities": [
        "code"
      ],
      "depends_on": [
        "a"
      ],
      "concerns": [
        "src/**"
      ],
      "risk": "medium",
      "verify": "make",
      "tier": "tactical",
      "max_attempts": 2,
      "budget_usd": "0.50",
      "timeout": "1h30m",
      "priority": "low",
      "port": true
    }
  ]
}
"#
        );
    }

    // -- read(write(plan)) == plan ---------------------------------------------------------------

    const CAPABILITIES: &[&str] = &["code", "rust", "test", "docs", "lang:python"];
    const CONCERNS: &[&str] = &["src/**", "src/lib.rs", "docs/*.md", "port:8080", "db:main"];

    /// Text without surrounding whitespace, not blank; quotes, backslashes, braces, line breaks
    /// and non-ASCII letters inside.
    fn trimmed() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9é][a-zA-Z0-9 \"\\\\{}\n\té€:#=-]{0,30}[a-z0-9.)]"
    }

    fn title() -> impl Strategy<Value = Title> {
        "\\PC{1,40}".prop_filter_map("a title", |s| Title::parse(&s).ok())
    }

    fn subset(all: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
        proptest::sample::subsequence(all, 0..=all.len())
    }

    prop_compose! {
        /// A task of a plan, but for its key and dependencies (they depend on its place).
        fn task()(
            title in title(),
            prompt in any::<String>(),
            capabilities in subset(CAPABILITIES),
            concerns in subset(CONCERNS),
            risk in proptest::sample::select(Risk::ALL),
            verify in proptest::option::of(trimmed()),
            tier in proptest::option::of(proptest::sample::select(Tier::ALL)),
            max_attempts in MaxAttempts::MIN..=MaxAttempts::MAX,
            budget in proptest::option::of(0..=Usd::MAX_INPUT.micros()),
            timeout in proptest::option::of(1..=DurationMs::MAX.as_millis()),
            priority in proptest::sample::select(Priority::ALL),
            wants_port in any::<bool>(),
            // Which of the tasks before it this one depends on.
            deps in proptest::collection::vec(any::<bool>(), 8),
        ) -> (PlannedTask, Vec<bool>) {
            let task = PlannedTask {
                key: PlanKey::parse("placeholder").unwrap(),
                title,
                prompt,
                capabilities: capabilities
                    .into_iter()
                    .map(|c| Capability::parse(c).unwrap())
                    .collect(),
                depends_on: Vec::new(),
                concerns: concerns.into_iter().map(|c| Concern::parse(c).unwrap()).collect(),
                risk,
                verify,
                tier,
                max_attempts: MaxAttempts::new(max_attempts).unwrap(),
                budget: budget.map(Usd::from_micros),
                timeout: timeout.map(|ms| DurationMs::from_millis(ms).unwrap()),
                priority,
                wants_port,
            };
            (task, deps)
        }
    }

    prop_compose! {
        fn plan()(
            goal in trimmed(),
            name in proptest::option::of(title()),
            notes in proptest::collection::vec(trimmed(), 0..3),
            verify in proptest::option::of(trimmed()),
            keys in proptest::collection::vec("[a-z0-9][a-z0-9_-]{0,10}", 1..8),
            tasks in proptest::collection::vec(task(), 8),
        ) -> Plan {
            let mut seen = std::collections::HashSet::new();
            let keys: Vec<PlanKey> = keys
                .into_iter()
                .enumerate()
                .map(|(i, k)| if seen.insert(k.clone()) { k } else { format!("{k}-{i}") })
                .map(|k| PlanKey::parse(&k).unwrap())
                .collect();
            let tasks = keys
                .iter()
                .zip(tasks)
                .enumerate()
                .map(|(i, (key, (mut task, deps)))| {
                    task.key = key.clone();
                    task.depends_on = (0..i).filter(|&j| deps[j]).map(|j| keys[j].clone()).collect();
                    task
                })
                .collect();
            Plan { goal, name, notes, verify, tasks }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_written_plan_reads_back_as_the_same_plan(plan in plan()) {
            let text = PlanFiles.write(&plan);
            let back = PlanFiles.read(&text, &caps(CAPABILITIES));
            prop_assert_eq!(back, Ok(plan), "{}", text);
        }
    }
}
