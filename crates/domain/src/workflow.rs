//! Workflows as data: named, versioned templates of stages (each with the capabilities, tier and
//! risk of its work) and the handoffs between them, such as `plan → tests → implement → review`.
//!
//! A [`Workflow`] is checked in full when it is made ([`Workflow::new`]): it has stages, their
//! keys are unique, every handoff joins two different stages of the workflow, the handoffs have
//! no cycle and every stage is reachable from an entry stage (one that no handoff leads to).
//! Every problem is reported at once, as a [`WorkflowProblem`] that says how to fix it.
//!
//! An orchestration instantiates a workflow for a goal: one task per stage, in [`Workflow::order`],
//! each depending on the stages that hand off to it ([`Workflow::inputs_of`]), with the stage's
//! prompt rendered for the goal ([`Workflow::render_prompt`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::error::ValueError;
use crate::graph;
use crate::values::{Capability, CapabilitySet, Risk, Tier, Title, string_value};

/// The placeholder in a stage's prompt that [`Workflow::render_prompt`] replaces with the goal.
pub const GOAL_PLACEHOLDER: &str = "{goal}";

/// Checks a workflow name or stage key: 1–64 lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter.
fn parse_key(what: &'static str, raw: &str) -> Result<String, ValueError> {
    const ALLOWED: &str = "use lowercase letters, digits, '-' and '_', such as plan or tdd-strict";
    if raw.is_empty() {
        return Err(ValueError::new(
            what,
            raw,
            format!("it is empty; {ALLOWED}"),
        ));
    }
    if raw.len() > 64 {
        return Err(ValueError::new(
            what,
            raw,
            format!("it is {} bytes long; the limit is 64", raw.len()),
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let lower = raw.to_ascii_lowercase();
    if let Some(bad) = lower.chars().find(|c| !allowed(*c)) {
        return Err(ValueError::new(
            what,
            raw,
            format!("{bad:?} is not allowed; {ALLOWED}"),
        ));
    }
    if raw != lower {
        let reason = if parse_key(what, &lower).is_ok() {
            format!("uppercase is not allowed; use {lower:?}")
        } else {
            "uppercase letters are not allowed; use lowercase".to_owned()
        };
        return Err(ValueError::new(what, raw, reason));
    }
    if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(ValueError::new(
            what,
            raw,
            "it must start with a lowercase letter",
        ));
    }
    Ok(raw.to_owned())
}

string_value!(
    /// A workflow's name, such as `tdd` or `tdd-strict`: 1–64 lowercase ASCII letters, digits,
    /// `-` and `_`, starting with a letter.
    WorkflowName
);

impl WorkflowName {
    /// Parses a workflow name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_key("workflow name", raw).map(Self)
    }
}

string_value!(
    /// A stage's key, unique within its workflow, such as `plan` or `review`: 1–64 lowercase
    /// ASCII letters, digits, `-` and `_`, starting with a letter.
    StageKey
);

impl StageKey {
    /// Parses a stage key.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_key("stage key", raw).map(Self)
    }
}

/// One stage of a workflow: the work one task does when the workflow runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Its key, unique within the workflow; handoffs name stages by it.
    pub key: StageKey,
    /// A one-line title (the task's title is made from it): not blank, at most 200 characters,
    /// no line break.
    pub title: String,
    /// What an agent must offer to do the stage.
    #[serde(default)]
    pub capabilities: CapabilitySet,
    /// The tier of agent it needs; `None`: any tier.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// How much damage the stage could do: decides the approval its task needs.
    #[serde(default)]
    pub risk: Risk,
    /// The command that checks the stage's work, run in its worktree after the agent succeeds.
    #[serde(default)]
    pub verify: Option<String>,
    /// The instructions for the agent. Every `{goal}` in it is replaced by the goal
    /// ([`Workflow::render_prompt`]).
    pub prompt: String,
    /// Whether its task asks for a lesson after failed attempts (`crate::lesson`); `None`: as
    /// the workflow says ([`Workflow::lessons_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lessons: Option<bool>,
}

/// A problem that makes a workflow invalid. Each message says how to fix it.
///
/// Stage and handoff numbers (`stage`, `handoff`) are indexes into the lists given to
/// [`Workflow::new`], so that a front end can point at the offending line of a file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkflowProblem {
    /// The workflow has no stages.
    #[error("the workflow has no stages: add at least one stage")]
    NoStages,
    /// The version is 0.
    #[error("version 0 is not allowed: versions start at 1 (raise it with every change)")]
    VersionZero,
    /// Two stages have the same key: the later one, `stage`, repeats the key of `first`.
    #[error(
        "stage key \"{key}\" is already used by stage {first_no}: give each stage its own key",
        first_no = first + 1
    )]
    DuplicateStage {
        key: StageKey,
        /// The index of the stage that repeats the key.
        stage: usize,
        /// The index of the first stage with this key.
        first: usize,
    },
    /// A stage's title is blank, too long or more than one line.
    #[error("the title of stage \"{key}\" is not valid: {reason}")]
    InvalidTitle {
        key: StageKey,
        stage: usize,
        /// Why, as [`Title::parse`] says.
        reason: String,
    },
    /// A handoff names a stage that the workflow does not have.
    #[error(
        "the handoff {from} → {to} names \"{unknown}\", which is not a stage of this workflow: \
         add the stage or correct the key"
    )]
    UnknownStage {
        from: StageKey,
        to: StageKey,
        /// The end of the handoff that is not a stage (`from` or `to`).
        unknown: StageKey,
        handoff: usize,
    },
    /// A stage hands off to itself.
    #[error("stage \"{key}\" hands off to itself: remove this handoff")]
    SelfHandoff { key: StageKey, handoff: usize },
    /// The same handoff is given twice.
    #[error("the handoff {from} → {to} is given twice: remove the repeat")]
    DuplicateHandoff {
        from: StageKey,
        to: StageKey,
        /// The index of the repeat.
        handoff: usize,
    },
    /// The handoffs form a cycle, so none of its stages could ever start. `path` is the cycle,
    /// starting and ending at the same stage: `[a, b, a]`.
    #[error(
        "the handoffs form a cycle, so none of these stages could start: {}; remove one of \
         these handoffs",
        arrows(path)
    )]
    Cycle {
        path: Vec<StageKey>,
        /// The index of the handoff that closes the cycle (the one back to its first stage).
        handoff: usize,
    },
    /// No entry stage (one that no handoff leads to) reaches this stage.
    #[error(
        "stage \"{key}\" cannot be reached from an entry stage (a stage no handoff leads to): \
         hand off to it from a stage that can, or remove it"
    )]
    Unreachable { key: StageKey, stage: usize },
}

/// `a → b → a`.
fn arrows(path: &[StageKey]) -> String {
    let keys: Vec<&str> = path.iter().map(StageKey::as_str).collect();
    keys.join(" → ")
}

/// A checked workflow: stages and the handoffs between them. Only [`Workflow::new`] makes one
/// (deserializing goes through it too), so every `Workflow` is valid.
///
/// Serialized as `{name, version, description, stages, handoffs: [{from, to}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    name: WorkflowName,
    version: u32,
    description: String,
    stages: Vec<Stage>,
    handoffs: Vec<(StageKey, StageKey)>,
    /// Its stages ask for lessons after failed attempts, unless a stage says otherwise.
    lessons: bool,
}

impl Workflow {
    /// Checks and makes a workflow. `handoffs` are `(from, to)` pairs: `to` starts once `from`
    /// is done, with its output. Returns every problem found: no stages, version 0, duplicate
    /// stage keys, invalid titles, handoffs naming an unknown stage or the stage itself,
    /// repeated handoffs, cycles (one per group of stages that reach each other), and stages
    /// that no entry stage reaches.
    pub fn new(
        name: WorkflowName,
        version: u32,
        description: impl Into<String>,
        stages: Vec<Stage>,
        handoffs: Vec<(StageKey, StageKey)>,
    ) -> Result<Workflow, Vec<WorkflowProblem>> {
        let problems = check(version, &stages, &handoffs);
        if problems.is_empty() {
            Ok(Workflow {
                name,
                version,
                description: description.into(),
                stages,
                handoffs,
                lessons: false,
            })
        } else {
            Err(problems)
        }
    }

    /// Its name.
    pub fn name(&self) -> &WorkflowName {
        &self.name
    }

    /// Its version, 1 or more.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// What it is for, in a few words (may be empty).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Its stages, in the order they were declared.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Its handoffs `(from, to)`, in the order they were declared.
    pub fn handoffs(&self) -> &[(StageKey, StageKey)] {
        &self.handoffs
    }

    /// The same workflow whose stages ask for lessons after failed attempts (`on`), unless a
    /// stage says otherwise.
    #[must_use]
    pub fn with_lessons(mut self, on: bool) -> Workflow {
        self.lessons = on;
        self
    }

    /// Whether its stages ask for lessons, unless a stage says otherwise.
    pub fn lessons(&self) -> bool {
        self.lessons
    }

    /// Whether the task of `stage` asks for a lesson after failed attempts: the stage's own
    /// setting, else the workflow's.
    pub fn lessons_of(&self, stage: &Stage) -> bool {
        stage.lessons.unwrap_or(self.lessons)
    }

    /// The stage with this key.
    pub fn stage(&self, key: &StageKey) -> Option<&Stage> {
        self.stages.iter().find(|s| &s.key == key)
    }

    /// The stages in an order where every handoff's `from` comes before its `to`; among the
    /// stages that could come next, the one declared first.
    pub fn order(&self) -> Vec<&Stage> {
        let edges = edges(&self.stages, &self.handoffs);
        graph::topological_order_forward(&edges)
            .into_iter()
            .filter_map(|i| self.stages.get(i))
            .collect()
    }

    /// The stages that hand off to `key`, in the order of the handoffs.
    pub fn inputs_of(&self, key: &StageKey) -> Vec<&StageKey> {
        self.handoffs
            .iter()
            .filter(|(_, to)| to == key)
            .map(|(from, _)| from)
            .collect()
    }

    /// The stage's prompt with every `{goal}` replaced by `goal`. A prompt without `{goal}` is
    /// returned as it is: the goal reaches the agent through its briefing anyway.
    pub fn render_prompt(stage: &Stage, goal: &str) -> String {
        stage.prompt.replace(GOAL_PLACEHOLDER, goal)
    }
}

/// Every problem of these parts (see [`Workflow::new`]).
fn check(
    version: u32,
    stages: &[Stage],
    handoffs: &[(StageKey, StageKey)],
) -> Vec<WorkflowProblem> {
    let mut problems = Vec::new();
    if stages.is_empty() {
        problems.push(WorkflowProblem::NoStages);
    }
    if version == 0 {
        problems.push(WorkflowProblem::VersionZero);
    }
    // The first stage with each key.
    let mut index: BTreeMap<&StageKey, usize> = BTreeMap::new();
    for (i, stage) in stages.iter().enumerate() {
        if let Some(&first) = index.get(&stage.key) {
            problems.push(WorkflowProblem::DuplicateStage {
                key: stage.key.clone(),
                stage: i,
                first,
            });
        } else {
            index.insert(&stage.key, i);
        }
        if let Err(e) = Title::parse(&stage.title) {
            problems.push(WorkflowProblem::InvalidTitle {
                key: stage.key.clone(),
                stage: i,
                reason: e.reason,
            });
        }
    }
    // The handoffs between two different known stages, once each, as (from, to, handoff).
    let mut edges: Vec<(usize, usize, usize)> = Vec::new();
    let mut seen: BTreeSet<(&StageKey, &StageKey)> = BTreeSet::new();
    for (h, (from, to)) in handoffs.iter().enumerate() {
        if from != to && !seen.insert((from, to)) {
            problems.push(WorkflowProblem::DuplicateHandoff {
                from: from.clone(),
                to: to.clone(),
                handoff: h,
            });
            continue;
        }
        let ends: &[&StageKey] = if from == to { &[from] } else { &[from, to] };
        for &end in ends {
            if !index.contains_key(end) {
                problems.push(WorkflowProblem::UnknownStage {
                    from: from.clone(),
                    to: to.clone(),
                    unknown: end.clone(),
                    handoff: h,
                });
            }
        }
        if from == to {
            problems.push(WorkflowProblem::SelfHandoff {
                key: from.clone(),
                handoff: h,
            });
        } else if let (Some(&f), Some(&t)) = (index.get(from), index.get(to)) {
            edges.push((f, t, h));
        }
    }
    // The handoffs leaving each stage, labelled with their index, for the cycles.
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); stages.len()];
    for &(f, t, h) in &edges {
        out[f].push((t, h));
    }
    for cycle in graph::cycle_edges(&out) {
        let (Some(&(first, _)), Some(&(u, k))) = (cycle.first(), cycle.last()) else {
            continue;
        };
        let Some(&(_, handoff)) = out[u].get(k) else {
            continue;
        };
        let mut path: Vec<StageKey> = cycle.iter().map(|&(i, _)| stages[i].key.clone()).collect();
        path.push(stages[first].key.clone());
        problems.push(WorkflowProblem::Cycle { path, handoff });
    }
    // Reachability from the entries, over the first stage of each key (a repeated key is
    // reported above, and its repeats are not separate stages of the graph).
    let firsts: Vec<usize> = index.values().copied().collect();
    let mut incoming = vec![false; stages.len()];
    for &(_, t, _) in &edges {
        incoming[t] = true;
    }
    let reached = graph::reachable(&out, firsts.iter().copied().filter(|&i| !incoming[i]));
    let mut unreachable: Vec<usize> = firsts.into_iter().filter(|&i| !reached[i]).collect();
    unreachable.sort_unstable();
    for i in unreachable {
        problems.push(WorkflowProblem::Unreachable {
            key: stages[i].key.clone(),
            stage: i,
        });
    }
    problems
}

/// The handoffs of a valid workflow as the stages each stage hands off to, by index.
fn edges(stages: &[Stage], handoffs: &[(StageKey, StageKey)]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&StageKey, usize> = stages
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (&s.key, i))
        .collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
    for (f, t) in handoffs {
        if let (Some(&f), Some(&t)) = (index.get(f), index.get(t)) {
            out[f].push(t);
        }
    }
    out
}

/// A handoff as serialized.
#[derive(Serialize, Deserialize)]
struct HandoffRepr<K> {
    from: K,
    to: K,
}

#[derive(Serialize)]
struct WorkflowRef<'a> {
    name: &'a WorkflowName,
    version: u32,
    description: &'a str,
    stages: &'a [Stage],
    handoffs: Vec<HandoffRepr<&'a StageKey>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lessons: bool,
}

#[derive(Deserialize)]
struct WorkflowRepr {
    name: WorkflowName,
    version: u32,
    #[serde(default)]
    description: String,
    stages: Vec<Stage>,
    #[serde(default)]
    handoffs: Vec<HandoffRepr<StageKey>>,
    #[serde(default)]
    lessons: bool,
}

impl Serialize for Workflow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WorkflowRef {
            name: &self.name,
            version: self.version,
            description: &self.description,
            stages: &self.stages,
            handoffs: self
                .handoffs
                .iter()
                .map(|(from, to)| HandoffRepr { from, to })
                .collect(),
            lessons: self.lessons,
        }
        .serialize(s)
    }
}

/// Deserializing checks the workflow with [`Workflow::new`]: a stored workflow that is no
/// longer valid is refused with every problem, rather than read into an invalid value.
impl<'de> Deserialize<'de> for Workflow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = WorkflowRepr::deserialize(d)?;
        let handoffs = r.handoffs.into_iter().map(|h| (h.from, h.to)).collect();
        let lessons = r.lessons;
        Workflow::new(r.name, r.version, r.description, r.stages, handoffs)
            .map(|w| w.with_lessons(lessons))
            .map_err(|problems| {
                let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
                serde::de::Error::custom(format!("invalid workflow: {}", all.join("; ")))
            })
    }
}

// ---------------------------------------------------------------------------------------------
// The built-in workflows.

/// A key that is known to be valid (the built-ins' own).
fn key(raw: &'static str) -> StageKey {
    StageKey(raw.to_owned())
}

/// The capability set of one known-valid tag (the built-ins' own; tested below).
fn capability(raw: &'static str) -> CapabilitySet {
    Capability::parse(raw).into_iter().collect()
}

fn stage(
    key_: &'static str,
    title: &str,
    cap: &'static str,
    tier: Option<Tier>,
    risk: Risk,
    prompt: &str,
) -> Stage {
    Stage {
        key: key(key_),
        title: title.to_owned(),
        capabilities: capability(cap),
        tier,
        risk,
        verify: None,
        prompt: prompt.to_owned(),
        lessons: None,
    }
}

/// The built-in test-driven workflow `tdd`, version 1: `plan → tests → implement → review`.
///
/// - `plan` (capability `plan`, strategic, low risk): a short plan naming the files to change
///   and the tests that will prove it.
/// - `tests` (`test`, tactical, low): failing tests that pin down the goal.
/// - `implement` (`code`, tactical, low): the change that makes the tests pass. Low risk, so
///   that it auto-approves when its verification passes; a workflow that wants a person to
///   review the code before it merges (such as `examples/workflows/tdd-strict.toml`) gives
///   this stage `risk = "medium"`.
/// - `review` (`review`, strategic, low): reviews the diff of the earlier stages.
pub fn tdd() -> Workflow {
    let stages = vec![
        stage(
            "plan",
            "Plan",
            "plan",
            Some(Tier::Strategic),
            Risk::Low,
            "Write a short plan for: {goal}\n\nList the files to change and the tests that will \
             prove the change works. Do not change any code yet.",
        ),
        stage(
            "tests",
            "Write failing tests",
            "test",
            Some(Tier::Tactical),
            Risk::Low,
            "Following the plan, write the tests that prove this is done: {goal}\n\nThe tests \
             must fail now, for the right reason (the behaviour is missing, not a typo). Do not \
             change the code under test.",
        ),
        stage(
            "implement",
            "Make the tests pass",
            "code",
            Some(Tier::Tactical),
            Risk::Low,
            "Change the code so that the new tests pass, and every other test still passes: \
             {goal}\n\nDo not weaken or delete a test to make it pass; fix the code instead.",
        ),
        stage(
            "review",
            "Review",
            "review",
            Some(Tier::Strategic),
            Risk::Low,
            "Review the diff of the earlier stages (plan, tests, implementation) for: \
             {goal}\n\nCheck that the tests prove the goal and that the code is correct, clear \
             and no larger than it needs to be. Report every problem you find, with its file \
             and line; say plainly if there is none.",
        ),
    ];
    let handoffs = vec![
        (key("plan"), key("tests")),
        (key("tests"), key("implement")),
        (key("implement"), key("review")),
    ];
    Workflow {
        name: WorkflowName("tdd".to_owned()),
        version: 1,
        description: "Test-driven: plan, write failing tests, make them pass, review the diff"
            .to_owned(),
        stages,
        handoffs,
        lessons: false,
    }
}

/// The built-in workflow `single`, version 1: one stage `do` (capability `code`, any tier, low
/// risk) whose prompt is the goal itself.
pub fn single() -> Workflow {
    Workflow {
        name: WorkflowName("single".to_owned()),
        version: 1,
        description: "One agent does the whole goal".to_owned(),
        stages: vec![stage(
            "do",
            "Do it",
            "code",
            None,
            Risk::Low,
            GOAL_PLACEHOLDER,
        )],
        handoffs: Vec::new(),
        lessons: false,
    }
}

/// Every built-in workflow: [`tdd`] and [`single`].
pub fn builtins() -> Vec<Workflow> {
    vec![tdd(), single()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(raw: &str) -> StageKey {
        StageKey::parse(raw).unwrap()
    }

    fn st(key: &str) -> Stage {
        Stage {
            key: k(key),
            title: format!("Stage {key}"),
            capabilities: CapabilitySet::empty(),
            tier: None,
            risk: Risk::Low,
            verify: None,
            prompt: "Do {goal}".to_owned(),
            lessons: None,
        }
    }

    fn wf(stages: &[&str], handoffs: &[(&str, &str)]) -> Result<Workflow, Vec<WorkflowProblem>> {
        Workflow::new(
            WorkflowName::parse("w").unwrap(),
            1,
            "",
            stages.iter().map(|s| st(s)).collect(),
            handoffs.iter().map(|(f, t)| (k(f), k(t))).collect(),
        )
    }

    #[test]
    fn names_and_keys_parse_or_explain() {
        assert!(WorkflowName::parse("tdd-strict").is_ok());
        assert!(StageKey::parse("a_1").is_ok());
        assert!(StageKey::parse(&"a".repeat(64)).is_ok());
        assert!(StageKey::parse(&"a".repeat(65)).is_err());
        let e = StageKey::parse("Plan").unwrap_err();
        assert!(e.reason.contains("\"plan\""), "{e}");
        assert!(
            StageKey::parse("1st")
                .unwrap_err()
                .reason
                .contains("letter")
        );
        assert!(StageKey::parse("-a").is_err());
        assert!(StageKey::parse("").is_err());
        assert!(
            WorkflowName::parse("a.b")
                .unwrap_err()
                .reason
                .contains("'.'")
        );
        assert_eq!(WorkflowName::parse("tdd").unwrap().to_string(), "tdd");
    }

    #[test]
    fn a_stage_asks_for_lessons_as_it_says_else_as_its_workflow_says() {
        let mut quiet = st("b");
        quiet.lessons = Some(false);
        let mut keen = st("c");
        keen.lessons = Some(true);
        let w = Workflow::new(
            WorkflowName::parse("w").unwrap(),
            1,
            "",
            vec![st("a"), quiet, keen],
            Vec::new(),
        )
        .unwrap();
        let asks =
            |w: &Workflow| -> Vec<bool> { w.stages().iter().map(|s| w.lessons_of(s)).collect() };
        assert!(!w.lessons(), "off by default");
        assert_eq!(asks(&w), [false, false, true]);
        let w = w.with_lessons(true);
        assert_eq!(asks(&w), [true, false, true]);
    }

    #[test]
    fn builtins_are_valid_and_as_documented() {
        for w in builtins() {
            let again = Workflow::new(
                w.name().clone(),
                w.version(),
                w.description(),
                w.stages().to_vec(),
                w.handoffs().to_vec(),
            );
            assert_eq!(again.as_ref(), Ok(&w), "{}", w.name());
            for s in w.stages() {
                assert!(
                    !s.capabilities.is_empty(),
                    "{}: {} lost its capability",
                    w.name(),
                    s.key
                );
                assert!(StageKey::parse(s.key.as_str()).is_ok());
                assert!(s.prompt.contains(GOAL_PLACEHOLDER));
            }
            assert!(WorkflowName::parse(w.name().as_str()).is_ok());
        }
        let tdd = tdd();
        let order: Vec<&str> = tdd.order().iter().map(|s| s.key.as_str()).collect();
        assert_eq!(order, ["plan", "tests", "implement", "review"]);
        assert_eq!(tdd.stages()[0].tier, Some(Tier::Strategic));
        assert!(tdd.stages().iter().all(|s| s.risk == Risk::Low));
        assert_eq!(tdd.inputs_of(&k("review")), vec![&k("implement")]);
        assert!(tdd.inputs_of(&k("plan")).is_empty());
        let single = single();
        assert_eq!(single.stages().len(), 1);
        assert_eq!(
            Workflow::render_prompt(&single.stages()[0], "fix it"),
            "fix it"
        );
    }

    #[test]
    fn render_replaces_every_goal() {
        let mut s = st("a");
        s.prompt = "{goal}, then {goal} again".to_owned();
        assert_eq!(Workflow::render_prompt(&s, "G"), "G, then G again");
        s.prompt = "No placeholder".to_owned();
        assert_eq!(Workflow::render_prompt(&s, "G"), "No placeholder");
    }

    #[test]
    fn order_is_topological_then_by_declaration() {
        let w = wf(&["d", "b", "a", "c"], &[("a", "c"), ("b", "c"), ("c", "d")]).unwrap();
        let order: Vec<&str> = w.order().iter().map(|s| s.key.as_str()).collect();
        assert_eq!(order, ["b", "a", "c", "d"]);
        assert_eq!(w.inputs_of(&k("c")), vec![&k("a"), &k("b")]);
        assert_eq!(w.stage(&k("a")).map(|s| s.title.as_str()), Some("Stage a"));
    }

    #[test]
    fn every_problem_is_reported() {
        let problems =
            Workflow::new(WorkflowName::parse("w").unwrap(), 0, "", vec![], vec![]).unwrap_err();
        assert_eq!(
            problems,
            vec![WorkflowProblem::NoStages, WorkflowProblem::VersionZero]
        );

        let problems = wf(
            &["a", "b", "a", "c", "d", "e"],
            &[
                ("a", "b"),
                ("b", "x"),
                ("b", "b"),
                ("a", "b"),
                ("c", "d"),
                ("d", "e"),
                ("e", "c"),
            ],
        )
        .unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            vec![
                WorkflowProblem::DuplicateStage {
                    key: k("a"),
                    stage: 2,
                    first: 0
                },
                WorkflowProblem::UnknownStage {
                    from: k("b"),
                    to: k("x"),
                    unknown: k("x"),
                    handoff: 1
                },
                WorkflowProblem::SelfHandoff {
                    key: k("b"),
                    handoff: 2
                },
                WorkflowProblem::DuplicateHandoff {
                    from: k("a"),
                    to: k("b"),
                    handoff: 3
                },
                WorkflowProblem::Cycle {
                    path: vec![k("c"), k("d"), k("e"), k("c")],
                    handoff: 6
                },
                WorkflowProblem::Unreachable {
                    key: k("c"),
                    stage: 3
                },
                WorkflowProblem::Unreachable {
                    key: k("d"),
                    stage: 4
                },
                WorkflowProblem::Unreachable {
                    key: k("e"),
                    stage: 5
                },
            ],
            "{shown:#?}"
        );
        assert!(shown[4].contains("c → d → e → c"), "{}", shown[4]);
        assert!(shown[0].contains("stage 1"), "{}", shown[0]);
    }

    #[test]
    fn a_cycle_reached_from_an_entry_is_only_a_cycle() {
        let problems = wf(&["s", "a", "b"], &[("s", "a"), ("a", "b"), ("b", "a")]).unwrap_err();
        assert_eq!(
            problems,
            vec![WorkflowProblem::Cycle {
                path: vec![k("a"), k("b"), k("a")],
                handoff: 2
            }]
        );
    }

    #[test]
    fn bad_titles_are_reported() {
        let mut s = st("a");
        s.title = "  ".to_owned();
        let problems =
            Workflow::new(WorkflowName::parse("w").unwrap(), 1, "", vec![s], vec![]).unwrap_err();
        assert!(matches!(
            &problems[..],
            [WorkflowProblem::InvalidTitle { stage: 0, .. }]
        ));
    }

    #[test]
    fn unknown_ends_are_each_reported() {
        let problems = wf(&["a"], &[("x", "y"), ("z", "z")]).unwrap_err();
        let unknown: Vec<&str> = problems
            .iter()
            .filter_map(|p| match p {
                WorkflowProblem::UnknownStage { unknown, .. } => Some(unknown.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(unknown, ["x", "y", "z"]);
        assert!(problems.contains(&WorkflowProblem::SelfHandoff {
            key: k("z"),
            handoff: 1
        }));
    }
}
