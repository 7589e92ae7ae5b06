//! The tasks file of `maos task create --from-file` (JSON Lines, documented in docs/cli.md): one
//! task per line, a JSON object whose keys are `task create`'s options; every line checked in
//! full, with every problem reported at once by line and column, before a single task is
//! created.

use std::path::PathBuf;

use maos_application::{CreateTask, IdRef};
use maos_domain::{CapabilitySet, Priority, Risk, Tier, Title};
use maos_plans::diagnostics::{Place, Problem, closest, shorten};
use serde_json::{Map, Value};

use crate::cli::{self, Keyword};

/// The keys a line may have: `task create`'s options, spelt as in JSON.
const KEYS: &[&str] = &[
    "title",
    "prompt",
    "capabilities",
    "priority",
    "risk",
    "tier",
    "depends_on",
    "orchestration",
    "max_attempts",
    "timeout",
    "idempotency_key",
    "budget_usd",
    "repo",
    "no_repo",
    "base",
    "verify",
    "port",
    "concerns",
    "agent",
    "lessons",
];

/// One task of the file: what to create, and where its repository is to be found (the
/// command resolves it as `--repo`, `--no-repo` and `--base` would be).
#[derive(Debug)]
pub(crate) struct TaskLine {
    /// Its line in the file, from 1.
    pub(crate) line: usize,
    /// The task, without its workspace.
    pub(crate) task: CreateTask,
    pub(crate) repo: Option<PathBuf>,
    pub(crate) no_repo: bool,
    pub(crate) base: Option<String>,
}

/// Every task of `text` (blank lines skipped), or every problem found in it, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<TaskLine>, Vec<Problem>> {
    let mut tasks = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let mut found = Line {
            line,
            raw,
            problems: &mut problems,
        };
        if let Some(t) = found.task() {
            tasks.push(t);
        }
    }
    if tasks.is_empty() && problems.is_empty() {
        problems.push(Problem::file(
            "no tasks: write one JSON object per line, such as {\"title\": \"Fix the login bug\"}",
        ));
    }
    if problems.is_empty() {
        Ok(tasks)
    } else {
        // In file order: a line's problems by column (they were found by key).
        problems.sort_by_key(|p| match p.place {
            Place::At { line, column } => (line, column),
            _ => (0, 0),
        });
        Err(problems)
    }
}

/// One line being read, and where its problems go.
struct Line<'a> {
    line: usize,
    raw: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Line<'_> {
    /// Where `key` is written on the line (its first mention), else the line's start.
    fn at(&self, key: &str) -> Place {
        let quoted = format!("\"{key}\"");
        let column = self
            .raw
            .find(&quoted)
            .map_or(1, |byte| self.raw[..byte].chars().count() + 1);
        Place::At {
            line: self.line,
            column,
        }
    }

    fn problem(&mut self, key: &str, message: String) {
        let place = self.at(key);
        self.problems.push(Problem { place, message });
    }

    fn task(&mut self) -> Option<TaskLine> {
        let object: Map<String, Value> = match serde_json::from_str(self.raw) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                self.problems.push(Problem {
                    place: Place::At {
                        line: self.line,
                        column: 1,
                    },
                    message: "expected a JSON object, such as {\"title\": \"Fix the login bug\"}"
                        .into(),
                });
                return None;
            }
            Err(e) => {
                // serde_json places it on its one line; the place says where in the file.
                let mut why = e.to_string();
                if let Some(at) = why.rfind(" at line ") {
                    why.truncate(at);
                }
                self.problems.push(Problem {
                    place: Place::At {
                        line: self.line,
                        column: e.column().max(1),
                    },
                    message: format!("not valid JSON: {why}"),
                });
                return None;
            }
        };
        let before = self.problems.len();
        for key in object.keys() {
            if !KEYS.contains(&key.as_str()) {
                let hint = closest(key, KEYS).map_or_else(
                    || format!(" (the keys: {})", KEYS.join(", ")),
                    |k| format!(" (did you mean {k:?}?)"),
                );
                self.problem(key, format!("unknown key {:?}{hint}", shorten(key)));
            }
        }
        let title = match object.get("title") {
            None => {
                self.problems.push(Problem {
                    place: Place::At {
                        line: self.line,
                        column: 1,
                    },
                    message: "the task has no \"title\"; every line needs one".into(),
                });
                None
            }
            Some(_) => self.parsed(&object, "title", cli::title),
        };
        let prompt = self.text(&object, "prompt");
        let capabilities = self.list(&object, "capabilities", cli::capability);
        let priority = self.keyword::<Priority>(&object, "priority");
        let risk = self.keyword::<Risk>(&object, "risk");
        let tier = self.keyword::<Tier>(&object, "tier");
        let depends_on = self.list(&object, "depends_on", cli::id_ref);
        let orchestration = self.parsed(&object, "orchestration", cli::id_ref);
        let max_attempts = self.number(&object, "max_attempts").and_then(|n| {
            let parsed = cli::max_attempts(&n.to_string());
            self.kept("max_attempts", parsed)
        });
        let timeout = self.parsed(&object, "timeout", cli::duration);
        let idempotency_key = self.parsed(&object, "idempotency_key", cli::idempotency_key);
        let budget = match object.get("budget_usd") {
            Some(Value::Number(n)) => {
                let parsed = cli::budget(&n.to_string());
                self.kept("budget_usd", parsed)
            }
            _ => self.parsed(&object, "budget_usd", cli::budget),
        };
        let repo = self.text(&object, "repo").map(PathBuf::from);
        let no_repo = self.flag(&object, "no_repo");
        let base = self.text(&object, "base");
        if repo.is_some() && no_repo {
            self.problem(
                "no_repo",
                "\"repo\" and \"no_repo\": true cannot go together; keep one".into(),
            );
        }
        if no_repo && base.is_some() {
            self.problem(
                "base",
                "\"base\" names where a repository's work starts, and \"no_repo\" says there is \
                 none; keep one"
                    .into(),
            );
        }
        let verify = self.text(&object, "verify");
        let port = self.flag(&object, "port");
        let concerns = self.list(&object, "concerns", cli::concern);
        let agent = self.parsed(&object, "agent", cli::agent_name);
        let lessons = self.flag(&object, "lessons");
        if self.problems.len() > before {
            return None;
        }
        let title: Title = title?;
        Some(TaskLine {
            line: self.line,
            task: CreateTask {
                prompt: prompt.unwrap_or_default(),
                capabilities: capabilities.into_iter().collect::<CapabilitySet>(),
                priority: priority.unwrap_or_default(),
                risk: risk.unwrap_or_default(),
                tier,
                depends_on,
                orchestration,
                max_attempts: max_attempts.unwrap_or_default(),
                timeout,
                idempotency_key,
                budget,
                workspace: None,
                verify,
                wants_port: port,
                concerns,
                agent,
                lessons,
                ..CreateTask::titled(title)
            },
            repo,
            no_repo,
            base,
        })
    }

    /// `parsed` kept, or its reason recorded against `key`.
    fn kept<T>(&mut self, key: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(why) => {
                self.problem(key, format!("{key:?}: {why}"));
                None
            }
        }
    }

    /// A string value, if the key is there (and a string).
    fn text(&mut self, object: &Map<String, Value>, key: &str) -> Option<String> {
        match object.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    key,
                    format!("{key:?} must be a string, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// A string value parsed by `parse`.
    fn parsed<T>(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.text(object, key)?;
        self.kept(key, parse(&raw))
    }

    fn keyword<K: Keyword>(&mut self, object: &Map<String, Value>, key: &str) -> Option<K> {
        let raw = self.text(object, key)?;
        let parsed = K::parse_keyword(&raw).map_err(|_| {
            let all: Vec<&str> = K::ALL.iter().map(|k| k.keyword()).collect();
            format!("{:?} is not one of {}", shorten(&raw), all.join(", "))
        });
        self.kept(key, parsed)
    }

    /// A list of strings, each parsed by `parse` (a single string is a list of one).
    fn list<T>(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let items: Vec<&Value> = match object.get(key) {
            None => return Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::String(_)) => vec![one],
            Some(other) => {
                self.problem(
                    key,
                    format!("{key:?} must be a list of strings, not {}", kind_of(other)),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) => {
                    if let Some(v) = self.kept(key, parse(s)) {
                        out.push(v);
                    }
                }
                other => self.problem(
                    key,
                    format!("{key:?} must hold strings, not {}", kind_of(other)),
                ),
            }
        }
        out
    }

    fn flag(&mut self, object: &Map<String, Value>, key: &str) -> bool {
        match object.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    key,
                    format!("{key:?} must be true or false, not {}", kind_of(other)),
                );
                false
            }
        }
    }

    fn number(&mut self, object: &Map<String, Value>, key: &str) -> Option<u64> {
        match object.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                self.problem(
                    key,
                    format!("{key:?} must be a whole number, not {}", kind_of(other)),
                );
                None
            }
        }
    }
}

/// What a JSON value is, in a message (never its text: it may be long or hold escapes).
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The references of the file that name existing things, checked once each: `(line, key,
/// reference)` of every task's dependencies and orchestration.
pub(crate) fn references(tasks: &[TaskLine]) -> Vec<(usize, &'static str, IdRef)> {
    let mut out = Vec::new();
    for t in tasks {
        for d in &t.task.depends_on {
            out.push((t.line, "depends_on", d.clone()));
        }
        if let Some(o) = &t.task.orchestration {
            out.push((t.line, "orchestration", o.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(t) => panic!("accepted: {t:?}"),
            Err(p) => p
                .iter()
                .map(|p| p.shown(std::path::Path::new("tasks.jsonl")))
                .collect(),
        }
    }

    #[test]
    fn every_line_is_a_task_with_the_options_of_task_create() {
        let tasks = parse(
            "{\"title\": \"One\"}\n\n\
             {\"title\": \"Two\", \"prompt\": \"p\", \"capabilities\": [\"rust\", \"test\"], \
              \"priority\": \"high\", \"risk\": \"medium\", \"tier\": \"strategic\", \
              \"depends_on\": [\"3kq9\"], \"max_attempts\": 5, \"timeout\": \"15m\", \
              \"idempotency_key\": \"k-2\", \"budget_usd\": 0.5, \"no_repo\": true, \
              \"verify\": \"make test\", \"port\": true, \"concerns\": \"src/**\", \
              \"agent\": \"claude\", \"lessons\": true}\n",
        )
        .unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!((tasks[0].line, tasks[1].line), (1, 3));
        let two = &tasks[1].task;
        assert_eq!(two.title.as_str(), "Two");
        assert_eq!(two.capabilities.len(), 2);
        assert_eq!(two.priority, Priority::High);
        assert_eq!(two.risk, Risk::Medium);
        assert_eq!(two.tier, Some(Tier::Strategic));
        assert_eq!(two.depends_on.len(), 1);
        assert_eq!(two.max_attempts.get(), 5);
        assert_eq!(two.timeout.map(|d| d.as_millis()), Some(900_000));
        assert_eq!(two.budget.map(|b| b.to_string()), Some("0.50".into()));
        assert!(tasks[1].no_repo && two.wants_port && two.lessons);
        assert_eq!(two.concerns.len(), 1);
        assert_eq!(two.agent.as_ref().map(|a| a.as_str()), Some("claude"));
    }

    #[test]
    fn every_problem_of_every_line_is_reported_with_its_place() {
        let found = problems(
            "{\"title\": \"Good\"}\n\
             {\"title\": \"\", \"priority\": \"soon\"}\n\
             not json\n\
             [1, 2]\n\
             {\"prompt\": \"no title\", \"capabilites\": [\"rust\"]}\n\
             {\"title\": \"T\", \"max_attempts\": \"3\", \"port\": \"yes\", \"repo\": \"x\", \"no_repo\": true}\n",
        );
        let text = found.join("\n");
        assert!(text.contains("tasks.jsonl:2:2: \"title\":"), "{text}");
        assert!(
            text.contains("tasks.jsonl:2:15: \"priority\": \"soon\" is not one of low, normal"),
            "{text}"
        );
        assert!(text.contains("tasks.jsonl:3:"), "{text}");
        assert!(text.contains("not valid JSON: expected ident"), "{text}");
        assert!(!text.contains("at line 1"), "{text}");
        assert!(
            text.contains("tasks.jsonl:4:1: expected a JSON object"),
            "{text}"
        );
        assert!(
            text.contains("tasks.jsonl:5:1: the task has no \"title\""),
            "{text}"
        );
        assert!(
            text.contains("unknown key \"capabilites\" (did you mean \"capabilities\"?)"),
            "{text}"
        );
        assert!(text.contains("\"max_attempts\" must be a whole number, not a string"));
        assert!(text.contains("\"port\" must be true or false, not a string"));
        assert!(text.contains("cannot go together"));
        assert_eq!(found.len(), 9, "{text}");
        assert!(
            found[4].contains(":5:1:") && found[5].contains(":5:24:"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(problems("\n  \n")[0].contains("no tasks"));
    }
}
