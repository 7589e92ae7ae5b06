//! Plan files: a goal and the tasks that carry it out, with their dependencies, in TOML (or JSON
//! of the same shape, when the file's name ends in `.json` or its text starts with `{`), parsed
//! and checked in full before anything is created.
//!
//! ```toml
//! goal = "Add a greeting module and its tests"  # required
//! name = "greeting"                # optional; default: the goal, cut to 60 characters
//! repo = "."                       # optional; relative to the plan file's directory
//! base = "main"                    # optional; the branch the tasks start from
//! notes = ["Keep functions small."]  # optional; pinned to every task's briefing
//! verify = "make test"             # optional; the verification of every task that names none
//!
//! [defaults]                       # optional; what every task gets unless it says otherwise
//! risk = "low"                     # low | medium | high
//! verify = "cargo test"            # a task's verify = "" turns it off for that task
//! max_attempts = 3                 # 1 to 100
//! budget_usd = 0.50                # per task; a number or a string ("0.50", "$2")
//! tier = "tactical"                # tactical | strategic | any
//! timeout = "10m"                  # per attempt: 500ms, 30s, 10m, 2h, 1d, 1h30m
//! priority = "normal"              # low | normal | high | urgent (or their ranks 0 to 3)
//!
//! [[task]]
//! id = "greet"                     # required: [a-z0-9][a-z0-9_-]{0,63}, unique in the plan
//! title = "Write greet()"          # required: one line
//! prompt = "..."                   # optional
//! capabilities = ["code"]          # optional; empty: the routing rules decide
//! depends_on = ["plan"]            # ids of other tasks of this plan
//! concerns = ["src/greet.*", "port:8080"]  # what the task will touch
//! port = true                      # the task needs a TCP port of its own
//! # and risk, verify, tier, max_attempts, budget_usd, timeout, priority as in [defaults]
//! ```
//!
//! Every problem is reported at once, each as `file:line:column: message`, sorted by place:
//! syntax errors, unknown keys (all of them, with a "did you mean"), values of the wrong type or
//! that do not parse, missing required keys, duplicate task ids, dependencies on ids the plan
//! does not have, tasks that depend on themselves, dependency cycles, capabilities that no
//! registered agent offers, and a plan without tasks.
//!
//! The TOML text is read with `toml`'s recovering parser into a tree of spanned values and
//! checked by walking that tree, so that every unknown key and every bad value is found (serde
//! stops at the first). JSON is read by `serde_json` into the same tree (`toml_doc::read_json`),
//! with the place of every key and value. Problems are collected and placed by
//! [`crate::diagnostics`]: when the text has syntax errors, the problems that need the whole
//! document (missing keys, unknown dependencies, cycles, no tasks) are left out, since they may
//! only be echoes of the syntax error.
//!
//! The keys each table may have come from one table of descriptors ([`crate::keys`]), which the
//! JSON Schema given to planners is generated from too. A planner's plan is checked the same
//! way ([`parse_with`], [`Author::Planner`]), but for `repo` and `base`, which only a person
//! may give.
//!
//! No I/O: the caller reads the file and gives the capabilities of the registered agents.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use maos_domain::graph;
use maos_domain::policy::concerns::Concern;
use maos_domain::{
    Capability, CapabilitySet, DurationMs, MaxAttempts, PlanKey, PlanKeyError, Priority, Risk,
    Tier, Title, Usd,
};

use crate::diagnostics::{Diagnostics, Place, Problem, closest, is_close, shorten};
use crate::keys::{self, Table};
use crate::toml_doc::{self, Entry, Node, NodeKind, get};

// ---------------------------------------------------------------------------------------------
// The checked plan.

/// A checked plan, with the defaults applied to every task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// What the plan achieves, without surrounding whitespace.
    pub goal: String,
    /// Its `name`, or the goal cut to 60 characters.
    pub name: Title,
    /// Whether the file gives `name` (else `name` is made from the goal).
    pub named: bool,
    /// The repository, resolved against the plan file's directory (not canonicalised).
    pub repo: Option<PathBuf>,
    /// The branch the tasks start from.
    pub base: Option<String>,
    /// Notes pinned to every task's briefing, trimmed.
    pub notes: Vec<String>,
    /// The command that verifies the plan as a whole.
    pub verify: Option<String>,
    /// The tasks, in the order of the file (see [`order`] for an order to create them in).
    pub tasks: Vec<PlanFileTask>,
}

/// One task of a plan, with the plan's defaults applied: the domain's task of a plan (its `key`
/// is the file's `id`; `verify` is none when neither the task nor the defaults give one, or the
/// task gives `""`).
pub type PlanFileTask = maos_domain::PlannedTask;

/// Every problem found in a plan file, sorted by place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFileError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for PlanFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let path = self.path.display();
        write!(
            f,
            "{n} problem{} in the plan file {path}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n{}", p.shown(&self.path))?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanFileError {}

// ---------------------------------------------------------------------------------------------
// Reading and checking.

/// Who wrote a plan's text: the checks are the same, but for the keys a planner may not give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A person (a plan file given to the CLI): every key of the format.
    Person,
    /// A planner agent: `repo` and `base` are refused (the person who runs the plan chooses
    /// them), and problems name no command to run.
    Planner,
}

/// The plan in `text`, read from `path`, or every problem found in it. `offered` is the union of
/// the capabilities of the registered agents: a task may only require capabilities from it.
pub fn parse(path: &Path, text: &str, offered: &CapabilitySet) -> Result<PlanFile, PlanFileError> {
    parse_with(path, text, offered, Author::Person)
}

/// [`parse`], for a text written by `author`.
pub fn parse_with(
    path: &Path,
    text: &str,
    offered: &CapabilitySet,
    author: Author,
) -> Result<PlanFile, PlanFileError> {
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{');
    let mut c = Checker {
        path,
        text,
        json,
        author,
        found: Diagnostics::new(path, text),
    };
    let root = if json { c.read_json() } else { c.read_toml() };
    let plan = root.and_then(|root| c.plan(&root, offered));
    // With syntax errors, the problems that need the whole document, and the others on a line
    // with a syntax error, may only be its echoes: `finish` leaves them out.
    let mut problems = c.found.finish();
    match plan {
        Some(plan) if problems.is_empty() => Ok(plan),
        _ => {
            if problems.is_empty() {
                // Not reached: every way to a missing plan records a problem.
                problems.push(Problem {
                    place: Place::At { line: 1, column: 1 },
                    message: "the plan could not be read".to_owned(),
                });
            }
            Err(PlanFileError {
                path: path.to_path_buf(),
                problems,
            })
        }
    }
}

/// The tasks in an order where each comes after the tasks it depends on; among the tasks that
/// could come next, the one that comes first in the file. (Tasks of a cycle, which a checked
/// plan has none of, come last, in file order.)
pub fn order(plan: &PlanFile) -> Vec<&PlanFileTask> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        index.entry(t.key.as_str()).or_insert(i);
    }
    let deps: Vec<Vec<usize>> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    graph::topological_order(&deps)
        .into_iter()
        .filter_map(|i| plan.tasks.get(i))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks.

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    json: bool,
    author: Author,
    found: Diagnostics<'a>,
}

/// The values that `[defaults]` and a task can both give.
#[derive(Debug, Default)]
struct Settings {
    risk: Option<Risk>,
    /// `Some(None)`: turned off with `verify = ""`.
    verify: Option<Option<String>>,
    /// `Some(None)`: any tier (`tier = "any"`).
    tier: Option<Option<Tier>>,
    max_attempts: Option<MaxAttempts>,
    budget: Option<Usd>,
    timeout: Option<DurationMs>,
    priority: Option<Priority>,
}

/// What the cross-task checks need of a task, whether or not it is valid.
struct Draft<'n> {
    /// The id as written, when it is a string (even an invalid one).
    id: Option<(&'n str, Range<usize>)>,
    deps: Vec<(&'n str, Range<usize>)>,
    task: Option<PlanFileTask>,
}

#[derive(Clone, Copy)]
enum Level<'l> {
    Top,
    Defaults,
    Task(&'l str),
}

impl Checker<'_> {
    /// `file:line:column` of a span, for messages that point at a second place.
    fn place(&self, span: &Range<usize>) -> String {
        self.found.place_of(span)
    }

    fn add(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.found.add(span, message);
    }

    /// A problem that only a complete document can show (an unknown id, a cycle).
    fn add_whole(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.found.add_whole(span, message);
    }

    /// A problem of the text as a whole (a missing key), shown at its start.
    fn add_missing(&mut self, message: impl Into<String>) {
        self.found.add_whole_text(message);
    }

    fn read_toml(&mut self) -> Option<Node> {
        let (root, syntax) = toml_doc::read(self.text);
        for (span, message) in syntax {
            let place = self.found.place(span.start);
            self.found.syntax(place, message);
        }
        Some(root)
    }

    fn read_json(&mut self) -> Option<Node> {
        match toml_doc::read_json(self.text) {
            Ok(doc) => {
                for (span, key) in doc.duplicates {
                    self.add(
                        &span,
                        format!("the key `{key}` is given twice in this object; keep one"),
                    );
                }
                Some(doc.root)
            }
            Err(syntax) => {
                self.found.syntax(syntax.place, syntax.message);
                None
            }
        }
    }

    // -- values of the expected type -----------------------------------------------------------

    /// `key = value` in TOML, `"key": value` in JSON.
    fn key_value(&self, key: &str, value: &str) -> String {
        if self.json {
            format!("\"{key}\": {value}")
        } else {
            format!("{key} = {value}")
        }
    }

    fn wrong_type(&mut self, key: &str, node: &Node, want: &str, example: &str) {
        let example = self.key_value(key, example);
        self.add(
            &node.span,
            format!(
                "`{key}` must be {want}, not {}; for example {example}",
                node.kind.describe()
            ),
        );
    }

    fn string<'n>(&mut self, key: &str, node: &'n Node, example: &str) -> Option<&'n str> {
        match &node.kind {
            NodeKind::Str(s) => Some(s),
            _ => {
                self.wrong_type(key, node, "a string", example);
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, node, "true or false", "true");
                None
            }
        }
    }

    /// The strings of a list; every item that is not a string is a problem.
    fn strings<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
        example: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let NodeKind::Array(items) = &node.kind else {
            self.wrong_type(key, node, "a list of strings", example);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                NodeKind::Str(s) => out.push((s.as_str(), item)),
                other => {
                    let m = format!(
                        "each item of `{key}` must be a string, not {}; for example {}",
                        other.describe(),
                        self.key_value(key, example)
                    );
                    self.add(&item.span, m);
                }
            }
        }
        out
    }

    /// The value, or `None` with the error recorded at the node.
    fn parsed<T, E: fmt::Display>(&mut self, node: &Node, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(&node.span, toml_doc::echoed(node, e.to_string())))
            .ok()
    }

    /// `Some(None)` for a blank command (turned off), `Some(Some(cmd))` otherwise.
    fn verify(&mut self, node: &Node) -> Option<Option<String>> {
        let s = self.string("verify", node, "\"cargo test\"")?;
        let s = s.trim();
        Some((!s.is_empty()).then(|| s.to_owned()))
    }

    fn max_attempts(&mut self, node: &Node) -> Option<MaxAttempts> {
        let NodeKind::Int(n) = node.kind else {
            self.wrong_type("max_attempts", node, "a whole number", "3");
            return None;
        };
        let r = u32::try_from(n)
            .ok()
            .and_then(|n| MaxAttempts::new(n).ok())
            .ok_or_else(|| {
                format!(
                    "invalid max attempts {n}: it must be a whole number from {} to {}",
                    MaxAttempts::MIN,
                    MaxAttempts::MAX
                )
            });
        self.parsed(node, r)
    }

    fn budget(&mut self, node: &Node) -> Option<Usd> {
        let raw = match &node.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Int(n) => n.to_string(),
            // Display never uses an exponent: 5e-1 shows as 0.5.
            NodeKind::Float(x) => x.to_string(),
            _ => {
                self.wrong_type("budget_usd", node, "an amount of dollars", "0.50");
                return None;
            }
        };
        self.parsed(node, Usd::parse(&raw))
    }

    fn timeout(&mut self, node: &Node) -> Option<DurationMs> {
        match &node.kind {
            NodeKind::Str(s) => self.parsed(node, DurationMs::parse(s)),
            NodeKind::Int(n) => {
                let example = self.key_value("timeout", &format!("\"{n}s\""));
                self.add(
                    &node.span,
                    format!(
                        "`timeout` needs a unit: write it as a string such as {example} or \"{n}m\""
                    ),
                );
                None
            }
            _ => {
                self.wrong_type("timeout", node, "a duration", "\"10m\"");
                None
            }
        }
    }

    fn priority(&mut self, node: &Node) -> Option<Priority> {
        match &node.kind {
            NodeKind::Str(s) => self.parsed(node, Priority::parse(s)),
            NodeKind::Int(n) => {
                let p = u8::try_from(*n).ok().and_then(Priority::from_rank);
                let r = p.ok_or_else(|| {
                    format!(
                        "invalid priority {n}: use low, normal, high or urgent (or their ranks 0 to 3)"
                    )
                });
                self.parsed(node, r)
            }
            _ => {
                self.wrong_type("priority", node, "a priority", "\"high\"");
                None
            }
        }
    }

    fn settings(&mut self, t: &[Entry]) -> Settings {
        let mut s = Settings::default();
        if let Some(n) = get(t, "risk") {
            s.risk = self
                .string("risk", n, "\"medium\"")
                .and_then(|v| self.parsed(n, Risk::parse(v)));
        }
        if let Some(n) = get(t, "verify") {
            s.verify = self.verify(n);
        }
        if let Some(n) = get(t, "tier") {
            s.tier = self
                .string("tier", n, "\"strategic\"")
                .and_then(|v| self.parsed(n, tier_or_any(v)));
        }
        if let Some(n) = get(t, "max_attempts") {
            s.max_attempts = self.max_attempts(n);
        }
        if let Some(n) = get(t, "budget_usd") {
            s.budget = self.budget(n);
        }
        if let Some(n) = get(t, "timeout") {
            s.timeout = self.timeout(n);
        }
        if let Some(n) = get(t, "priority") {
            s.priority = self.priority(n);
        }
        s
    }

    /// Every key of `entries` that the format does not have at `level` is a problem, with a
    /// hint: where it belongs, a "did you mean", or the keys allowed there. A key that only a
    /// person may give, given by a planner, is a problem too.
    fn unknown_keys(&mut self, entries: &[Entry], level: Level<'_>) {
        let (table, place) = match level {
            Level::Top => (Table::Top, "at the top of the plan".to_owned()),
            Level::Defaults => (Table::Defaults, "in [defaults]".to_owned()),
            Level::Task(label) => (Table::Task, format!("in {label}")),
        };
        let planner = self.author == Author::Planner;
        let known = keys::names(table, planner);
        let is = |table: Table, key: &str| keys::find(table, key).is_some();
        for e in entries {
            let key = e.key.as_str();
            if let Some(k) = keys::find(table, key) {
                if let (true, Some(what)) = (planner, k.person_only) {
                    self.add(
                        &e.span,
                        format!(
                            "a version of a plan does not choose {what}: leave out `{key}` (the \
                             orchestration's is kept)"
                        ),
                    );
                }
                continue;
            }
            let hint = match level {
                Level::Top if is(Table::Defaults, key) => format!(
                    "to give every task a {key}, put it under [defaults]; for one task, in its [[task]]"
                ),
                Level::Top if is(Table::Task, key) => {
                    "it belongs to a task: put it under a [[task]] header".to_owned()
                }
                Level::Defaults | Level::Task(_) if is(Table::Top, key) => {
                    "it belongs at the top of the file, before the first [table] header".to_owned()
                }
                Level::Defaults if is(Table::Task, key) => {
                    format!("[defaults] cannot give a {key}; give it in each [[task]]")
                }
                _ => match closest(key, &known) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("the keys allowed here are {}", known.join(", ")),
                },
            };
            let key = shorten(key);
            self.add(&e.span, format!("unknown key `{key}` {place}; {hint}"));
        }
    }

    // -- the plan ------------------------------------------------------------------------------

    fn plan(&mut self, root: &Node, offered: &CapabilitySet) -> Option<PlanFile> {
        let NodeKind::Table(top) = &root.kind else {
            let m = format!(
                "a plan must be an object of keys (goal, task, ...), not {}",
                root.kind.describe()
            );
            self.add(&root.span, m);
            return None;
        };
        self.unknown_keys(top, Level::Top);

        let goal = match get(top, "goal") {
            None => {
                let m = format!(
                    "the plan has no goal: add {} at the top of the file, saying what the plan \
                     achieves",
                    self.key_value("goal", "\"...\"")
                );
                self.add_missing(m);
                None
            }
            Some(n) => self
                .string("goal", n, "\"Add a greeting module\"")
                .and_then(|g| {
                    let g = g.trim();
                    if g.is_empty() {
                        self.add(
                            &n.span,
                            "the goal is blank; say in a sentence what the plan achieves",
                        );
                        None
                    } else {
                        Some(g.to_owned())
                    }
                }),
        };
        let name = match get(top, "name") {
            Some(n) => self
                .string("name", n, "\"greeting\"")
                .and_then(|s| self.parsed(n, Title::parse(s))),
            None => {
                let name = goal.as_deref().and_then(name_from_goal);
                if let (None, Some(n)) = (&name, get(top, "goal"))
                    && goal.is_some()
                {
                    let m = format!(
                        "no name can be made from this goal; add {} (one line)",
                        self.key_value("name", "\"...\"")
                    );
                    self.add(&n.span, m);
                }
                name
            }
        };
        // A planner's `repo` and `base` are refused (`unknown_keys`), not read.
        let person = self.author == Author::Person;
        let repo = get(top, "repo").filter(|_| person).and_then(|n| {
            let s = self.string("repo", n, "\".\"")?;
            if s.trim().is_empty() {
                self.add(
                    &n.span,
                    "`repo` is blank; give the repository's path relative to the plan file \
                     (repo = \".\" is its directory), or leave the key out",
                );
                return None;
            }
            Some(resolve_repo(self.path, s))
        });
        let base = get(top, "base").filter(|_| person).and_then(|n| {
            let s = self.string("base", n, "\"main\"")?;
            self.parsed(n, check_base(s))
        });
        let mut notes = Vec::new();
        if let Some(n) = get(top, "notes") {
            for (s, item) in self.strings("notes", n, "[\"Keep functions small.\"]") {
                if s.trim().is_empty() {
                    self.add(&item.span, "this note is blank; write it or remove it");
                } else {
                    notes.push(s.trim().to_owned());
                }
            }
        }
        let verify = get(top, "verify").and_then(|n| self.verify(n)).flatten();

        let defaults = match get(top, "defaults") {
            None => Settings::default(),
            Some(n) => match &n.kind {
                NodeKind::Table(t) => {
                    self.unknown_keys(t, Level::Defaults);
                    self.settings(t)
                }
                _ => {
                    let example = if self.json {
                        "{ \"risk\": \"low\" }"
                    } else {
                        "{ risk = \"low\" }"
                    };
                    self.wrong_type("defaults", n, "a table", example);
                    Settings::default()
                }
            },
        };

        // `tasks` is accepted too: the natural name of the list in JSON.
        let task_key = match (get(top, "task"), get(top, "tasks")) {
            (Some(_), Some(_)) => {
                if let Some(e) = top.iter().find(|e| e.key == "tasks") {
                    self.add(
                        &e.span,
                        "both `task` and `tasks` are given; put all the tasks under one of them",
                    );
                }
                "task"
            }
            (None, Some(_)) => "tasks",
            _ => "task",
        };
        let items: &[Node] = match get(top, task_key) {
            None => {
                let m = if self.json {
                    "the plan has no tasks: add \"tasks\": [{ \"id\": ..., \"title\": ... }, ...]"
                } else {
                    "the plan has no tasks: add one or more [[task]] tables, each with an id and a \
                     title"
                };
                self.add_missing(m);
                &[]
            }
            Some(n) => match &n.kind {
                NodeKind::Array(items) => {
                    if items.is_empty() {
                        self.add_whole(
                            &n.span,
                            format!(
                                "`{task_key}` is an empty list: add one or more tasks, each with \
                                 an id and a title"
                            ),
                        );
                    }
                    items
                }
                NodeKind::Table(_) if !self.json => {
                    self.add(
                        &n.span,
                        "`task` must be a list of tables: write each task under a [[task]] \
                         header, with two brackets",
                    );
                    &[]
                }
                _ => {
                    let example = if self.json {
                        "[{ \"id\": \"a\", \"title\": \"A\" }]"
                    } else {
                        "[{ id = \"a\", title = \"A\" }]"
                    };
                    self.wrong_type(task_key, n, "a list of tables", example);
                    &[]
                }
            },
        };
        let drafts: Vec<Draft<'_>> = items
            .iter()
            .enumerate()
            .map(|(i, node)| self.task(i, node, &defaults, offered))
            .collect();
        self.links(&drafts);

        if self.found.count() > 0 {
            return None;
        }
        let tasks = drafts.into_iter().map(|d| d.task).collect::<Option<_>>()?;
        Some(PlanFile {
            goal: goal?,
            name: name?,
            named: get(top, "name").is_some(),
            repo,
            base,
            notes,
            verify,
            tasks,
        })
    }

    fn task<'n>(
        &mut self,
        index: usize,
        node: &'n Node,
        defaults: &Settings,
        offered: &CapabilitySet,
    ) -> Draft<'n> {
        let mut draft = Draft {
            id: None,
            deps: Vec::new(),
            task: None,
        };
        let NodeKind::Table(t) = &node.kind else {
            let m = format!(
                "task #{} must be a table with an id, a title and so on, not {}",
                index + 1,
                node.kind.describe()
            );
            self.add(&node.span, m);
            return draft;
        };
        let before = self.found.count();

        let id_node = get(t, "id");
        draft.id = id_node.and_then(|n| {
            self.string("id", n, "\"write-tests\"")
                .map(|s| (s, n.span.clone()))
        });
        let label = match &draft.id {
            Some((id, _)) => format!("task `{}`", shorten(id)),
            None => format!("task #{}", index + 1),
        };
        self.unknown_keys(t, Level::Task(&label));
        let id = match (&draft.id, id_node) {
            (Some((s, span)), _) => match check_id(s) {
                Ok(key) => Some(key),
                Err(m) => {
                    self.add(span, m);
                    None
                }
            },
            (None, None) => {
                let m = format!(
                    "{label} has no id: add {} (lowercase letters, digits, '-' and '_'), the name \
                     other tasks give in depends_on",
                    self.key_value("id", "\"...\"")
                );
                self.add_whole(&node.span, m);
                None
            }
            (None, Some(_)) => None,
        };
        let title = match get(t, "title") {
            None => {
                let m = format!(
                    "{label} has no title: add {}, a few words saying what it does",
                    self.key_value("title", "\"...\"")
                );
                self.add_whole(&node.span, m);
                None
            }
            Some(n) => self
                .string("title", n, "\"Write greet()\"")
                .and_then(|s| self.parsed(n, Title::parse(s))),
        };
        let prompt = match get(t, "prompt") {
            None => Some(String::new()),
            Some(n) => self.string("prompt", n, "\"...\"").map(str::to_owned),
        };
        let mut capabilities = Vec::new();
        if let Some(n) = get(t, "capabilities") {
            for (s, item) in self.strings("capabilities", n, "[\"code\"]") {
                let Some(c) = self.parsed(item, Capability::parse(s)) else {
                    continue;
                };
                if !offered.contains(&c) {
                    let m = unoffered(&c, offered, self.author);
                    self.add(&item.span, m);
                }
                capabilities.push(c);
            }
        }
        if let Some(n) = get(t, "depends_on") {
            draft.deps = self
                .strings("depends_on", n, "[\"plan\"]")
                .into_iter()
                .map(|(s, item)| (s, item.span.clone()))
                .collect();
        }
        // A dependency that is not a valid key is no task's id: `links` reports it.
        let mut depends_on: Vec<PlanKey> = Vec::new();
        let mut listed: HashSet<&str> = HashSet::with_capacity(draft.deps.len());
        for (d, _) in &draft.deps {
            if listed.insert(d)
                && let Ok(key) = PlanKey::parse(d)
            {
                depends_on.push(key);
            }
        }
        let mut concerns = Vec::new();
        if let Some(n) = get(t, "concerns") {
            for (s, item) in self.strings("concerns", n, "[\"src/api/**\", \"port:8080\"]") {
                if let Some(c) = self.parsed(item, Concern::parse(s)) {
                    concerns.push(c);
                }
            }
        }
        let own = self.settings(t);
        let wants_port = match get(t, "port") {
            None => Some(false),
            Some(n) => self.boolean("port", n),
        };

        if self.found.count() > before {
            return draft;
        }
        let (Some(id), Some(title), Some(prompt), Some(wants_port)) =
            (id, title, prompt, wants_port)
        else {
            return draft;
        };
        draft.task = Some(PlanFileTask {
            key: id,
            title,
            prompt,
            capabilities: capabilities.into_iter().collect(),
            depends_on,
            concerns,
            risk: own.risk.or(defaults.risk).unwrap_or_default(),
            verify: own
                .verify
                .unwrap_or_else(|| defaults.verify.clone().flatten()),
            tier: own.tier.unwrap_or(defaults.tier.flatten()),
            max_attempts: own
                .max_attempts
                .or(defaults.max_attempts)
                .unwrap_or_default(),
            budget: own.budget.or(defaults.budget),
            timeout: own.timeout.or(defaults.timeout),
            priority: own.priority.or(defaults.priority).unwrap_or_default(),
            wants_port,
        });
        draft
    }

    /// Duplicate ids, dependencies on unknown ids or on the task itself, and cycles.
    fn links(&mut self, drafts: &[Draft<'_>]) {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, d) in drafts.iter().enumerate() {
            let Some((id, span)) = &d.id else { continue };
            match first.get(id) {
                Some(&j) => {
                    let Some((_, other)) = &drafts[j].id else {
                        continue;
                    };
                    let m = format!(
                        "duplicate task id `{id}`: the task at {} has it already; give each task \
                         its own id",
                        self.place(other)
                    );
                    self.add(span, m);
                }
                None => {
                    first.insert(id, i);
                }
            }
        }
        let ids: Vec<&str> = first.keys().copied().collect();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
        // The task whose edge to `j` was pushed last, to keep each edge once.
        let mut last_from = vec![usize::MAX; drafts.len()];
        for (i, d) in drafts.iter().enumerate() {
            let own = d.id.as_ref().map(|(id, _)| *id);
            for (dep, span) in &d.deps {
                if own == Some(*dep) {
                    self.add(
                        span,
                        format!(
                            "task `{dep}` depends on itself; remove `{dep}` from its depends_on"
                        ),
                    );
                } else if let Some(&j) = first.get(dep) {
                    if last_from[j] != i {
                        last_from[j] = i;
                        edges[i].push(j);
                    }
                } else {
                    let label = own
                        .map_or_else(|| format!("#{}", i + 1), |id| format!("`{}`", shorten(id)));
                    let m = format!(
                        "task {label} depends on `{}`, which is not a task of this plan{}; fix \
                         the id or add a task with it",
                        shorten(dep),
                        suggest(dep, &ids)
                    );
                    self.add_whole(span, m);
                }
            }
        }
        // One shortest cycle per strongly connected component, through its first task.
        for cycle in graph::cycles(&edges) {
            let (Some(&s), Some(&next)) = (cycle.first(), cycle.get(1)) else {
                continue;
            };
            let name = |i: usize| drafts[i].id.as_ref().map_or("?", |(id, _)| *id);
            let text: Vec<&str> = cycle.iter().map(|&i| name(i)).collect();
            let next = name(next);
            let at = drafts[s]
                .deps
                .iter()
                .find(|(d, _)| *d == next)
                .map_or(0..0, |(_, span)| span.clone());
            self.add_whole(
                &at,
                format!(
                    "dependency cycle {}: each of these tasks waits for the next, so none can \
                     start; remove one of these depends_on entries",
                    text.join(" → ")
                ),
            );
        }
    }
}

/// The key, or what is wrong with it and, where one can be made, a valid key to use instead.
fn check_id(raw: &str) -> Result<PlanKey, String> {
    match PlanKey::parse(raw) {
        Ok(key) => Ok(key),
        Err(PlanKeyError::Empty) => {
            Err("the task id is empty; give a short name such as \"write-tests\"".to_owned())
        }
        Err(PlanKeyError::TooLong { len }) => Err(format!(
            "invalid task id {:?}: it is {len} bytes long; the limit is {}",
            shorten(raw),
            PlanKey::MAX_LEN
        )),
        Err(PlanKeyError::Invalid { .. }) => {
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
            let mut fixed = String::new();
            for c in raw.to_lowercase().chars() {
                let c = if ok(c) { c } else { '-' };
                if !(c == '-' && (fixed.is_empty() || fixed.ends_with('-'))) {
                    fixed.push(c);
                }
            }
            let fixed = fixed.trim_start_matches('_').trim_end_matches('-');
            let example = if PlanKey::parse(fixed).is_ok() {
                format!(", for example {fixed:?}")
            } else {
                String::new()
            };
            Err(format!(
                "invalid task id {:?}: use lowercase letters, digits, '-' and '_', starting with \
                 a letter or a digit{example}",
                shorten(raw)
            ))
        }
    }
}

/// A tier, or `None` for `any`.
fn tier_or_any(raw: &str) -> Result<Option<Tier>, String> {
    if raw == "any" {
        return Ok(None);
    }
    Tier::parse(raw)
        .map(Some)
        .map_err(|_| format!("invalid tier {raw:?}: expected one of: tactical, strategic, any"))
}

fn check_base(raw: &str) -> Result<String, String> {
    let b = raw.trim();
    if b.is_empty() {
        return Err(
            "`base` is blank; name the branch to start from, e.g. base = \"main\", or leave the \
             key out"
                .to_owned(),
        );
    }
    if b.chars().any(|c| c.is_whitespace() || c.is_control()) || b.starts_with('-') {
        return Err(format!(
            "invalid base {raw:?}: a branch name has no spaces and does not start with '-'"
        ));
    }
    Ok(b.to_owned())
}

fn resolve_repo(plan: &Path, repo: &str) -> PathBuf {
    let repo = Path::new(repo.trim());
    if repo.is_absolute() {
        return repo.to_path_buf();
    }
    let dir = plan.parent().unwrap_or(Path::new(""));
    // Joining then collecting the components drops `.` segments (but keeps `..`).
    let joined: PathBuf = dir.join(repo).components().collect();
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

/// The goal on one line, without control characters, cut to 60 characters.
fn name_from_goal(goal: &str) -> Option<Title> {
    let words: Vec<&str> = goal.split_whitespace().collect();
    let line: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect();
    Title::parse(line.trim_end()).ok()
}

fn unoffered(cap: &Capability, offered: &CapabilitySet, author: Author) -> String {
    let known = if offered.is_empty() {
        " (no agent is registered yet)".to_owned()
    } else {
        let all: Vec<&str> = offered.iter().map(Capability::as_str).collect();
        format!(" (the registered agents offer {})", all.join(", "))
    };
    let fix = match author {
        Author::Person => "register one (maos agent register …) or change the task",
        Author::Planner if offered.is_empty() => "leave the capability out",
        Author::Planner => "use only those, or leave the capability out",
    };
    format!("no registered agent offers capability `{cap}`{known}; {fix}")
}

/// "; did you mean `a`?" for the ids close to `wrong`, or the list of ids when none is.
fn suggest(wrong: &str, ids: &[&str]) -> String {
    let mut close: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| is_close(wrong, id))
        .collect();
    close.sort_unstable();
    match close.as_slice() {
        [] if ids.is_empty() => String::new(),
        [] => {
            let mut all = ids.to_vec();
            all.sort_unstable();
            let shown: Vec<String> = all
                .iter()
                .take(10)
                .map(|i| format!("`{}`", shorten(i)))
                .collect();
            let more = if all.len() > 10 { ", …" } else { "" };
            format!(" (its tasks are {}{more})", shown.join(", "))
        }
        [one] => format!(" (did you mean `{}`?)", shorten(one)),
        many => {
            let shown: Vec<String> = many
                .iter()
                .take(3)
                .map(|i| format!("`{}`", shorten(i)))
                .collect();
            format!(" (did you mean one of {}?)", shown.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> CapabilitySet {
        CapabilitySet::parse(list.iter().copied()).unwrap()
    }

    fn offered() -> CapabilitySet {
        caps(&["code", "design", "docs", "review", "rust", "test"])
    }

    /// Every problem of `text` as `line:column: message`.
    fn problems(text: &str) -> Vec<String> {
        problems_in("plan.toml", text)
    }

    fn problems_in(path: &str, text: &str) -> Vec<String> {
        let e = parse(Path::new(path), text, &offered()).unwrap_err();
        e.problems
            .iter()
            .map(|p| match &p.place {
                Place::At { line, column } => {
                    format!("{line}:{column}: {}", p.message)
                }
                Place::Start => format!("1:1: {}", p.message),
                other => panic!("a plan problem without a line: {other:?}"),
            })
            .collect()
    }

    /// The only problem of `text`, which must start with `expected`.
    fn one_problem(text: &str, expected: &str) {
        let all = problems(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].starts_with(expected), "{all:#?}");
    }

    const HEAD: &str = "goal = \"g\"\n";

    const GOOD: &str = r#"
goal = """
  Add a greeting module
  and its tests.  """
repo = "../app"
base = "main"
notes = ["Keep functions small.", "  Use the 2024 edition. "]
verify = "make test"

[defaults]
risk = "medium"
verify = "cargo test"
max_attempts = 2
budget_usd = 0.50
tier = "tactical"
timeout = "10m"

[[task]]
id = "greet"
title = "Write greet()"
prompt = "In src/greet.rs."
capabilities = ["code", "rust"]
depends_on = ["plan", "plan"]
concerns = ["src/greet.*", "port:8080"]
risk = "high"
verify = ""
tier = "strategic"
max_attempts = 5
budget_usd = "$1.25"
timeout = "1h30m"
priority = "urgent"
port = true

[[task]]
id = "plan"
title = "  Sketch the module  "
"#;

    #[test]
    fn a_good_plan_parses_with_the_defaults_applied() {
        let plan = parse(Path::new("plans/greeting.toml"), GOOD, &offered()).unwrap();
        assert_eq!(plan.goal, "Add a greeting module\n  and its tests.");
        assert_eq!(plan.name.as_str(), "Add a greeting module and its tests.");
        assert_eq!(plan.repo, Some(PathBuf::from("plans/../app")));
        assert_eq!(plan.base.as_deref(), Some("main"));
        assert_eq!(
            plan.notes,
            ["Keep functions small.", "Use the 2024 edition."]
        );
        assert_eq!(plan.verify.as_deref(), Some("make test"));
        assert_eq!(plan.tasks.len(), 2);

        let greet = &plan.tasks[0];
        assert_eq!(greet.key.as_str(), "greet");
        assert_eq!(greet.title.as_str(), "Write greet()");
        assert_eq!(greet.prompt, "In src/greet.rs.");
        assert_eq!(greet.capabilities, caps(&["rust", "code"]));
        assert_eq!(greet.depends_on, [PlanKey::parse("plan").unwrap()]);
        let concerns: Vec<&str> = greet.concerns.iter().map(Concern::as_str).collect();
        assert_eq!(concerns, ["src/greet.*", "port:8080"]);
        assert_eq!(greet.risk, Risk::High);
        assert_eq!(greet.verify, None, "verify = \"\" turns the default off");
        assert_eq!(greet.tier, Some(Tier::Strategic));
        assert_eq!(greet.max_attempts.get(), 5);
        assert_eq!(greet.budget, Some(Usd::from_micros(1_250_000)));
        assert_eq!(greet.timeout.map(DurationMs::as_millis), Some(5_400_000));
        assert_eq!(greet.priority, Priority::Urgent);
        assert!(greet.wants_port);

        let plan_task = &plan.tasks[1];
        assert_eq!(plan_task.title.as_str(), "Sketch the module");
        assert_eq!(plan_task.prompt, "");
        assert!(plan_task.capabilities.is_empty());
        assert!(plan_task.depends_on.is_empty() && plan_task.concerns.is_empty());
        assert_eq!(plan_task.risk, Risk::Medium);
        assert_eq!(plan_task.verify.as_deref(), Some("cargo test"));
        assert_eq!(plan_task.tier, Some(Tier::Tactical));
        assert_eq!(plan_task.max_attempts.get(), 2);
        assert_eq!(plan_task.budget, Some(Usd::from_micros(500_000)));
        assert_eq!(plan_task.timeout.map(DurationMs::as_millis), Some(600_000));
        assert_eq!(plan_task.priority, Priority::Normal);
        assert!(!plan_task.wants_port);

        let ids: Vec<&str> = order(&plan).iter().map(|t| t.key.as_str()).collect();
        assert_eq!(ids, ["plan", "greet"]);
    }

    #[test]
    fn a_minimal_plan_gets_the_built_in_defaults() {
        let text = "goal = \"Make the login never fail, whatever the weather, the load or the \
                    phase of the moon\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n";
        let plan = parse(Path::new("p.toml"), text, &CapabilitySet::empty()).unwrap();
        assert_eq!(
            plan.name.as_str(),
            "Make the login never fail, whatever the weather, the load or"
        );
        assert_eq!(plan.name.as_str().chars().count(), 60);
        assert_eq!(plan.repo, None);
        assert!(plan.notes.is_empty() && plan.verify.is_none() && plan.base.is_none());
        let t = &plan.tasks[0];
        assert_eq!(t.risk, Risk::Low);
        assert_eq!(t.verify, None);
        assert_eq!(t.tier, None);
        assert_eq!(t.max_attempts, MaxAttempts::default());
        assert_eq!((t.budget, t.timeout), (None, None));
        assert_eq!(t.priority, Priority::Normal);
        assert!(!t.wants_port);
    }

    #[test]
    fn repo_is_resolved_against_the_plan_directory() {
        let p = |path: &str, repo: &str| resolve_repo(Path::new(path), repo);
        assert_eq!(p("plans/a.toml", "."), PathBuf::from("plans"));
        assert_eq!(p("a.toml", "."), PathBuf::from("."));
        assert_eq!(p("a.toml", "app"), PathBuf::from("app"));
        assert_eq!(p("/x/y/a.toml", "../z"), PathBuf::from("/x/y/../z"));
        assert_eq!(p("/x/a.toml", "/srv/repo"), PathBuf::from("/srv/repo"));
    }

    #[test]
    fn priorities_are_keywords_or_ranks() {
        let plan = |p: &str| {
            format!("{HEAD}[defaults]\npriority = {p}\n[[task]]\nid = \"a\"\ntitle = \"A\"\n")
        };
        let got = parse(Path::new("p.toml"), &plan("3"), &offered()).unwrap();
        assert_eq!(got.tasks[0].priority, Priority::Urgent);
        let got = parse(Path::new("p.toml"), &plan("\"low\""), &offered()).unwrap();
        assert_eq!(got.tasks[0].priority, Priority::Low);
        one_problem(&plan("5"), "3:12: invalid priority 5: use low, normal");
    }

    // -- each kind of problem, with its place --------------------------------------------------

    #[test]
    fn syntax_errors_are_placed() {
        let all = problems("goal = \"g\"\n[[task]\nid = \"a\"\n");
        assert!(all[0].starts_with("2:"), "{all:#?}");
        assert!(all[0].contains("TOML syntax error"), "{all:#?}");
        // A syntax error does not bring "missing goal" or "no tasks" echoes with it.
        let all = problems("goal = \"unterminated\n[[task]]\nid = \"a\"\ntitle = \"A\"\n");
        assert!(all.iter().all(|p| p.contains("syntax error")), "{all:#?}");
    }

    #[test]
    fn a_syntax_error_does_not_hide_the_other_problems() {
        let text = "goal = \"g\"\nname = \"x\n[[task]]\nid = \"a\"\ntitle = \"A\"\nrisk = \n\
                    [[task]]\nid = \"b\"\ntitle = \"B\"\nrisk = \"huge\"\nfoo = 1\n";
        let all = problems(text);
        let places: Vec<&str> = all.iter().filter_map(|p| p.split(": ").next()).collect();
        // Line 6's `risk = ` is a syntax error only: the empty risk it leaves is not reported.
        assert_eq!(places, ["2:10", "6:8", "10:8", "11:1"], "{all:#?}");
        assert!(all[0].contains("TOML syntax error"), "{all:#?}");
        assert!(all[2].contains("invalid risk \"huge\""), "{all:#?}");
        assert!(all[3].contains("unknown key `foo`"), "{all:#?}");
        one_problem(
            "goal = \"g\"\ngoal = \"h\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "2:1: TOML syntax error: the key `goal` is given twice in this table; keep one",
        );
    }

    #[test]
    fn tasks_may_be_listed_as_tasks_and_tier_may_be_any() {
        let text = "goal = \"g\"\n[defaults]\ntier = \"strategic\"\n\
                    [[tasks]]\nid = \"a\"\ntitle = \"A\"\ntier = \"any\"\n\
                    [[tasks]]\nid = \"b\"\ntitle = \"B\"\n";
        let plan = parse(Path::new("p.toml"), text, &offered()).unwrap();
        assert_eq!(plan.tasks[0].tier, None);
        assert_eq!(plan.tasks[1].tier, Some(Tier::Strategic));
        one_problem(
            "goal = \"g\"\ntask = [{ id = \"a\", title = \"A\" }]\ntasks = []\n",
            "3:1: both `task` and `tasks` are given; put all the tasks under one of them",
        );
        one_problem(
            "goal = \"g\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\ntier = \"top\"\n",
            "5:8: invalid tier \"top\": expected one of: tactical, strategic, any",
        );
    }

    #[test]
    fn every_unknown_key_is_reported_at_its_place() {
        let text = "goal = \"g\"\nrisk = \"low\"\ntaks = 1\n\n[defaults]\nretries = 2\n\
                    max_atempts = 2\n\n[[task]]\nid = \"a\"\ntitle = \"A\"\ncapabilites = []\n\
                    depends = []\nname = \"x\"\n";
        assert_eq!(
            problems(text),
            [
                "2:1: unknown key `risk` at the top of the plan; to give every task a risk, put \
                 it under [defaults]; for one task, in its [[task]]",
                "3:1: unknown key `taks` at the top of the plan; did you mean `task`?",
                "6:1: unknown key `retries` in [defaults]; the keys allowed here are risk, \
                 verify, max_attempts, budget_usd, tier, timeout, priority",
                "7:1: unknown key `max_atempts` in [defaults]; did you mean `max_attempts`?",
                "12:1: unknown key `capabilites` in task `a`; did you mean `capabilities`?",
                "13:1: unknown key `depends` in task `a`; did you mean `depends_on`?",
                "14:1: unknown key `name` in task `a`; it belongs at the top of the file, before \
                 the first [table] header",
            ]
        );
    }

    #[test]
    fn bad_values_are_reported_at_the_value() {
        let task = |line: &str| format!("{HEAD}[[task]]\nid = \"a\"\ntitle = \"A\"\n{line}\n");
        one_problem(
            &task("risk = \"huge\""),
            "5:8: invalid risk \"huge\": expected one of: low, medium, high",
        );
        one_problem(
            &task("tier = \"elite\""),
            "5:8: invalid tier \"elite\": expected one of",
        );
        one_problem(
            &task("max_attempts = 0"),
            "5:16: invalid max attempts 0: it must be a whole number from 1 to 100",
        );
        one_problem(
            &task("max_attempts = \"3\""),
            "5:16: `max_attempts` must be a whole number, not the string \"3\"; for example \
             max_attempts = 3",
        );
        one_problem(
            &task("budget_usd = -1"),
            "5:14: invalid amount in US dollars \"-1\"",
        );
        one_problem(
            &task("timeout = \"soon\""),
            "5:11: invalid duration \"soon\"",
        );
        one_problem(
            &task("timeout = 30"),
            "5:11: `timeout` needs a unit: write it as a string such as timeout = \"30s\"",
        );
        one_problem(
            &task("port = \"yes\""),
            "5:8: `port` must be true or false, not the string \"yes\"",
        );
        one_problem(
            &task("capabilities = [\"Rust!\"]"),
            "5:17: invalid capability \"Rust!\"",
        );
        one_problem(
            &task("capabilities = \"rust\""),
            "5:16: `capabilities` must be a list of strings, not the string \"rust\"",
        );
        one_problem(&task("concerns = [\"/etc/passwd\"]"), "5:13: invalid ");
        one_problem(
            &task("depends_on = [1]"),
            "5:15: each item of `depends_on` must be a string, not the number 1",
        );
        one_problem(
            "goal = \"g\"\nname = \"\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "2:8: invalid title \"\": it is blank",
        );
        one_problem(
            "goal = \"g\"\nbase = \"my branch\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "2:8: invalid base \"my branch\"",
        );
        one_problem(
            "goal = \"g\"\n[defaults]\nrisk = 3\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "3:8: `risk` must be a string, not the number 3; for example risk = \"medium\"",
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let text = format!(
            "goal = \"g\"\n{long} = 1\n[[task]]\nid = \"{long}\"\ntitle = \"t\"\n\
             [[task]]\nid = \"b\"\ntitle = \"t\"\ndepends_on = [\"{long}y\"]\n\
             capabilities = [\"{long}\"]\n"
        );
        let all = problems(&text);
        assert_eq!(all.len(), 4, "{all:#?}");
        for p in &all {
            assert!(p.contains("…(99"), "{p}");
            assert!(p.len() < 400, "{p}");
        }
    }

    #[test]
    fn bad_ids_are_explained_with_a_fix() {
        one_problem(
            "goal = \"g\"\n[[task]]\nid = \"Write Tests\"\ntitle = \"A\"\n",
            "3:6: invalid task id \"Write Tests\": use lowercase letters, digits, '-' and '_', \
             starting with a letter or a digit, for example \"write-tests\"",
        );
        one_problem(
            "goal = \"g\"\n[[task]]\nid = \"\"\ntitle = \"A\"\n",
            "3:6: the task id is empty",
        );
    }

    #[test]
    fn missing_required_keys_and_empty_goal() {
        one_problem(
            "[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "1:1: the plan has no goal: add goal = \"...\"",
        );
        one_problem(
            "goal = \"  \"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n",
            "1:8: the goal is blank; say in a sentence what the plan achieves",
        );
        one_problem(
            "goal = \"g\"\n\n[[task]]\ntitle = \"A\"\n",
            "3:1: task #1 has no id: add id = \"...\"",
        );
        one_problem(
            "goal = \"g\"\n\n[[task]]\nid = \"a\"\n",
            "3:1: task `a` has no title: add title = \"...\"",
        );
        one_problem(
            "goal = \"g\"\n",
            "1:1: the plan has no tasks: add one or more [[task]]",
        );
        one_problem(
            "goal = \"g\"\n[task]\nid = \"a\"\ntitle = \"A\"\n",
            "2:1: `task` must be a list of tables: write each task under a [[task]] header",
        );
    }

    #[test]
    fn duplicate_ids_name_both_places() {
        one_problem(
            "goal = \"g\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\n[[task]]\nid = \"a\"\ntitle = \"B\"\n",
            "6:6: duplicate task id `a`: the task at plan.toml:3:6 has it already; give each \
             task its own id",
        );
    }

    #[test]
    fn unknown_and_self_dependencies() {
        let text = "goal = \"g\"\n[[task]]\nid = \"greet\"\ntitle = \"A\"\n[[task]]\nid = \"b\"\n\
                    title = \"B\"\ndepends_on = [\"gret\", \"b\", \"zzz\"]\n";
        assert_eq!(
            problems(text),
            [
                "8:15: task `b` depends on `gret`, which is not a task of this plan (did you \
                 mean `greet`?); fix the id or add a task with it",
                "8:23: task `b` depends on itself; remove `b` from its depends_on",
                "8:28: task `b` depends on `zzz`, which is not a task of this plan (its tasks \
                 are `b`, `greet`); fix the id or add a task with it",
            ]
        );
    }

    #[test]
    fn capabilities_must_be_offered() {
        let text = "goal = \"g\"\n[[task]]\nid = \"a\"\ntitle = \"A\"\ncapabilities = [\"rust\", \"go\"]\n";
        assert_eq!(
            problems(text),
            [
                "5:25: no registered agent offers capability `go` (the registered agents offer \
              code, design, docs, review, rust, test); register one (maos agent register …) or \
              change the task"
            ]
        );
        let e = parse(Path::new("p.toml"), text, &CapabilitySet::empty()).unwrap_err();
        let messages: Vec<&str> = e.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(messages[0].starts_with(
            "no registered agent offers capability `rust` (no agent is registered yet)"
        ));
    }

    #[test]
    fn cycles_are_printed_once_at_their_first_task() {
        let text = "goal = \"g\"\n\
                    [[task]]\nid = \"a\"\ntitle = \"A\"\ndepends_on = [\"b\"]\n\
                    [[task]]\nid = \"b\"\ntitle = \"B\"\ndepends_on = [\"c\"]\n\
                    [[task]]\nid = \"c\"\ntitle = \"C\"\ndepends_on = [\"a\", \"d\"]\n\
                    [[task]]\nid = \"d\"\ntitle = \"D\"\n\
                    [[task]]\nid = \"x\"\ntitle = \"X\"\ndepends_on = [\"d\", \"y\"]\n\
                    [[task]]\nid = \"y\"\ntitle = \"Y\"\ndepends_on = [\"x\"]\n";
        assert_eq!(
            problems(text),
            [
                "5:15: dependency cycle a → b → c → a: each of these tasks waits for the next, so \
                 none can start; remove one of these depends_on entries",
                "20:20: dependency cycle x → y → x: each of these tasks waits for the next, so \
                 none can start; remove one of these depends_on entries",
            ]
        );
    }

    #[test]
    fn several_problems_are_all_reported_in_order() {
        let text = "goal = \"\"\ncolour = \"red\"\n\
                    [[task]]\nid = \"A\"\ntitle = \"A\"\nrisk = \"huge\"\n\
                    [[task]]\nid = \"b\"\ndepends_on = [\"c\"]\n";
        let e = parse(Path::new("p.toml"), text, &offered()).unwrap_err();
        let places: Vec<Place> = e.problems.iter().map(|p| p.place.clone()).collect();
        let at = |line, column| Place::At { line, column };
        assert_eq!(
            places,
            [at(1, 8), at(2, 1), at(4, 6), at(6, 8), at(7, 1), at(9, 15)]
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("6 problems in the plan file p.toml:\np.toml:1:8: "),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 7);
    }

    #[test]
    fn json_plans_have_the_same_shape_and_places() {
        let text = r#"{
  "goal": "Add a greeting",
  "defaults": { "risk": "medium", "budget_usd": 0.5 },
  "task": [
    { "id": "plan", "title": "Sketch", "capabilities": ["design"] },
    { "id": "greet", "title": "Write greet()", "depends_on": ["plan"], "port": true }
  ]
}"#;
        for path in ["plan.json", "plan.txt"] {
            let plan = parse(Path::new(path), text, &offered()).unwrap();
            assert_eq!(plan.tasks.len(), 2);
            assert_eq!(plan.tasks[1].risk, Risk::Medium);
            assert_eq!(plan.tasks[1].budget, Some(Usd::from_micros(500_000)));
            assert!(plan.tasks[1].wants_port);
        }
        let bad = r#"{
  "goal": "g",
  "task": [
    { "id": "a", "title": "A", "risk": "huge", "depends_on": ["b"], "titel": "x" },
    { "id": "a", "title": "A", "title": "B" }
  ]
}"#;
        assert_eq!(
            problems_in("plan.json", bad),
            [
                "4:40: invalid risk \"huge\": expected one of: low, medium, high",
                "4:63: task `a` depends on `b`, which is not a task of this plan (its tasks are \
                 `a`); fix the id or add a task with it",
                "4:69: unknown key `titel` in task `a`; did you mean `title`?",
                "5:13: duplicate task id `a`: the task at plan.json:4:13 has it already; give \
                 each task its own id",
                "5:32: the key `title` is given twice in this object; keep one",
            ]
        );
        assert_eq!(
            problems_in("plan.json", r#"{"goal": "g", "task": [{"id": "a"}]}"#),
            [
                "1:24: task `a` has no title: add \"title\": \"...\", a few words saying what it does"
            ]
        );
        let all = problems_in("plan.json", "{\n  \"goal\": \"g\",\n  \"task\": [\n}");
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].starts_with("4:1: JSON syntax error: "), "{all:#?}");
    }

    #[test]
    fn order_puts_dependencies_first_and_keeps_the_file_order_otherwise() {
        let text = "goal = \"g\"\n\
                    [[task]]\nid = \"docs\"\ntitle = \"Document greet()\"\ndepends_on = [\"greet\", \"tests\"]\n\
                    [[task]]\nid = \"greet\"\ntitle = \"Write greet()\"\ncapabilities = [\"code\"]\ndepends_on = [\"plan\"]\nrisk = \"medium\"\n\
                    [[task]]\nid = \"plan\"\ntitle = \"Sketch the module\"\ncapabilities = [\"design\"]\n\
                    [[task]]\nid = \"tests\"\ntitle = \"Test greet()\"\ncapabilities = [\"test\", \"rust\"]\ndepends_on = [\"plan\"]\nport = true\n";
        let plan = parse(Path::new("p.toml"), text, &offered()).unwrap();
        let ids: Vec<&str> = order(&plan).iter().map(|t| t.key.as_str()).collect();
        assert_eq!(ids, ["plan", "greet", "tests", "docs"]);
    }

    // -- the example plans ---------------------------------------------------------------------

    // Relative to this file, so that they are found whichever crate compiles it.
    const FEATURE: &str = include_str!("../../../../examples/plans/feature.toml");
    const BROKEN: &str = include_str!("../../../../examples/plans/broken.toml");

    #[test]
    fn the_feature_example_is_a_valid_plan() {
        let path = Path::new("examples/plans/feature.toml");
        let plan = parse(path, FEATURE, &offered()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.tasks.len(), 5);
        assert_eq!(
            plan.tasks.iter().filter(|t| t.risk == Risk::Medium).count(),
            1
        );
        assert!(plan.tasks.iter().any(|t| !t.concerns.is_empty()));
        let ids: Vec<&str> = order(&plan).iter().map(|t| t.key.as_str()).collect();
        assert_eq!(ids, ["design", "api", "store", "tests", "docs"]);
    }

    #[test]
    fn the_broken_example_shows_every_kind_of_problem() {
        let path = Path::new("examples/plans/broken.toml");
        let e = parse(path, BROKEN, &offered()).unwrap_err();
        let got: Vec<String> = e
            .problems
            .iter()
            .map(|p| match &p.place {
                Place::At { line, column } => {
                    format!("{line}:{column}: {}", p.message)
                }
                Place::Start => format!("1:1: {}", p.message),
                other => panic!("a plan problem without a line: {other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "6:1: unknown key `nmae` at the top of the plan; did you mean `name`?",
                "7:1: unknown key `risk` at the top of the plan; to give every task a risk, put it under [defaults]; for one task, in its [[task]]",
                "10:8: invalid risk \"severe\": expected one of: low, medium, high",
                "11:11: `timeout` needs a unit: write it as a string such as timeout = \"600s\" or \"600m\"",
                "18:6: invalid task id \"Write-Tests\": use lowercase letters, digits, '-' and '_', starting with a letter or a digit, for example \"write-tests\"",
                "20:25: no registered agent offers capability `go` (the registered agents offer code, design, docs, review, rust, test); register one (maos agent register …) or change the task",
                "25:15: task `greet` depends on `desing`, which is not a task of this plan (did you mean `design`?); fix the id or add a task with it",
                "25:25: task `greet` depends on itself; remove `greet` from its depends_on",
                "26:16: invalid max attempts 0: it must be a whole number from 1 to 100",
                "29:6: duplicate task id `greet`: the task at examples/plans/broken.toml:23:6 has it already; give each task its own id",
                "32:1: task `docs` has no title: add title = \"...\", a few words saying what it does",
                "34:15: dependency cycle docs → review → docs: each of these tasks waits for the next, so none can start; remove one of these depends_on entries",
                "40:8: `port` must be true or false, not the string \"yes\"; for example port = true",
            ],
            "{e}"
        );
    }
}
