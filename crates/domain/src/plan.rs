//! Plans as data: what a planner proposes for a goal (the tasks that carry it out, with their
//! dependencies, concerns, risk and verification), the versions an orchestration's plan goes
//! through and where each came from, the plan read out of a planner's answer, and the rules a
//! plan keeps beyond its file's format (a bounded size, concerns that leave room to work in
//! parallel).

use serde::{Deserialize, Serialize};

use crate::graph;
use crate::ids::TaskId;
use crate::plan_key::PlanKey;
use crate::policy::concerns::Concern;
use crate::run::Usd;
use crate::values::{
    AgentName, CapabilitySet, DurationMs, MaxAttempts, Priority, Risk, Tier, Timestamp, Title,
};

/// The most characters of a planner's answer kept (and so read for its plan).
pub const ANSWER_CHARS: usize = 256 * 1024;

/// A checked plan: a goal and the tasks that carry it out, every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan achieves.
    pub goal: String,
    /// A short name (none: the goal, cut).
    #[serde(default)]
    pub name: Option<Title>,
    /// Notes pinned to every task's briefing.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The command that verifies the plan's work as a whole.
    #[serde(default)]
    pub verify: Option<String>,
    /// The tasks, in the order the plan gives them.
    pub tasks: Vec<PlannedTask>,
}

/// One task of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// Its key in the plan (`id` in a plan file).
    pub key: PlanKey,
    pub title: Title,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub capabilities: CapabilitySet,
    /// Keys of other tasks of the plan, without repeats.
    #[serde(default)]
    pub depends_on: Vec<PlanKey>,
    #[serde(default)]
    pub concerns: Vec<Concern>,
    #[serde(default)]
    pub risk: Risk,
    #[serde(default)]
    pub verify: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub max_attempts: MaxAttempts,
    #[serde(default)]
    pub budget: Option<Usd>,
    #[serde(default)]
    pub timeout: Option<DurationMs>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub wants_port: bool,
}

/// Where a version of a plan came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanOrigin {
    /// A planner's answer: the attempt of the planning task that gave it (its briefing is the
    /// brief the plan came from).
    Planner {
        task: TaskId,
        attempt: u32,
        agent: AgentName,
    },
    /// A person wrote or edited it.
    Person,
}

/// A version of an orchestration's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVersion {
    /// 1 for the first, then 2, 3…
    pub number: u32,
    pub plan: Plan,
    pub origin: PlanOrigin,
    /// The planner's reasons, in its words (the text of its answer around the plan).
    #[serde(default)]
    pub rationale: Option<String>,
    pub proposed_at: Timestamp,
}

/// A plan's text found in a planner's answer, and the words around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlan<'a> {
    /// The plan file's text (JSON or TOML).
    pub text: &'a str,
    /// What the planner said besides, trimmed (its rationale).
    pub rationale: String,
}

/// The plan in a planner's answer: the last fenced block (```` ```json ````, ```` ```toml ````
/// or without a language) that is not empty, else the whole answer when it is a JSON object.
/// `None` when the answer has neither.
pub fn plan_in_answer(answer: &str) -> Option<FoundPlan<'_>> {
    let mut found: Option<(usize, usize, usize, usize)> = None;
    let mut open: Option<(usize, usize, usize)> = None;
    let mut offset = 0;
    for line in answer.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        match open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.trim().to_ascii_lowercase();
                    if !info.contains('`') && matches!(lang.as_str(), "" | "json" | "toml") {
                        open = Some((start, offset, start));
                    }
                }
            }
            Some((fence, body, _)) => {
                if trimmed == "```" {
                    if !answer[body..start].trim().is_empty() {
                        found = Some((fence, body, start, offset));
                    }
                    open = None;
                }
            }
        }
    }
    if let Some((fence, body, end, after)) = found {
        let mut rationale = answer[..fence].trim().to_owned();
        let rest = answer[after..].trim();
        if !rest.is_empty() {
            if !rationale.is_empty() {
                rationale.push_str("\n\n");
            }
            rationale.push_str(rest);
        }
        return Some(FoundPlan {
            text: &answer[body..end],
            rationale,
        });
    }
    let whole = answer.trim();
    (whole.starts_with('{') && whole.ends_with('}')).then(|| FoundPlan {
        text: whole,
        rationale: String::new(),
    })
}

/// The goal a discussion agreed on, in a planner's answer: the last fenced block marked
/// `goal`, its first line the goal, each further non-empty line a note (a leading `- ` or `* `
/// dropped). `None` when the answer has no such block (the planner asks more).
pub fn goal_in_answer(answer: &str) -> Option<(String, Vec<String>)> {
    let mut found = None;
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in answer.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        match open {
            None if trimmed.strip_prefix("```").map(str::trim) == Some("goal") => {
                open = Some(offset);
            }
            Some(body) if trimmed == "```" => {
                found = Some(&answer[body..start]);
                open = None;
            }
            _ => {}
        }
    }
    let mut lines = found?.lines().map(str::trim).filter(|l| !l.is_empty());
    let goal = lines.next()?.to_owned();
    let notes = lines
        .map(|l| {
            l.strip_prefix("- ")
                .or_else(|| l.strip_prefix("* "))
                .unwrap_or(l)
                .to_owned()
        })
        .collect();
    Some((goal, notes))
}

/// What is wrong with a plan beyond its file's format: rules a planner can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanRuleBroken {
    /// More tasks than allowed.
    TooManyTasks { count: usize, max: usize },
    /// Every two tasks that the dependencies would let run at the same time share a concern,
    /// so nothing can: the concerns serialise the whole plan.
    ConcernsSerialiseEverything {
        /// A concern two such tasks share.
        example: String,
    },
}

impl Plan {
    /// The rules this plan breaks (none: it may be proposed). At most `max_tasks` tasks; when
    /// it has more, the other rules are not checked (their cost grows with the tasks).
    pub fn broken_rules(&self, max_tasks: usize) -> Vec<PlanRuleBroken> {
        let count = self.tasks.len();
        if count > max_tasks {
            return vec![PlanRuleBroken::TooManyTasks {
                count,
                max: max_tasks,
            }];
        }
        let mut broken = Vec::new();
        if let Some(example) = self.serialising_concern() {
            broken.push(PlanRuleBroken::ConcernsSerialiseEverything { example });
        }
        broken
    }

    /// A concern shared by every two tasks that may run in parallel, when there are such pairs
    /// and all of them share one (quadratic in the tasks: called on plans of bounded size).
    fn serialising_concern(&self) -> Option<String> {
        let n = self.tasks.len();
        let index: std::collections::HashMap<&PlanKey, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (&t.key, i))
            .collect();
        let deps: Vec<Vec<usize>> = self
            .tasks
            .iter()
            .map(|t| {
                t.depends_on
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect()
            })
            .collect();
        // before[i][j]: j comes before i (i depends on j, directly or not).
        let before: Vec<Vec<bool>> = (0..n).map(|i| graph::reachable(&deps, [i])).collect();
        let mut example = None;
        for (i, before_i) in before.iter().enumerate() {
            for (j, before_j) in before.iter().enumerate().skip(i + 1) {
                if before_i[j] || before_j[i] {
                    continue;
                }
                let shared = self.tasks[i]
                    .concerns
                    .iter()
                    .find(|a| self.tasks[j].concerns.iter().any(|b| a.overlaps(b)))?;
                example.get_or_insert_with(|| shared.as_str().to_owned());
            }
        }
        example
    }
}

/// A task of the plan at work, as a revision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtWork {
    pub task: TaskId,
    /// It completed: a revision keeps it exactly as it is.
    pub completed: bool,
    /// It ended (completed or cancelled): nothing to stop.
    pub ended: bool,
    /// It is blocked: kept as it is, it would stay blocked, so a revision starts it over.
    pub blocked: bool,
}

/// What a revision of a plan at work does to its tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    /// Tasks that stay as they are (completed ones among them), by key.
    pub keep: std::collections::BTreeMap<PlanKey, TaskId>,
    /// Keys of the new version whose tasks are created, in an order where each comes after
    /// its dependencies.
    pub create: Vec<PlanKey>,
    /// Tasks of the plan at work that the revision replaces or drops, still live: cancelled.
    pub superseded: Vec<TaskId>,
}

/// Why a revision cannot apply to the plan at work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RevisionProblem {
    /// A completed task is missing from the revision.
    CompletedDropped { key: PlanKey },
    /// A completed task differs in the revision.
    CompletedChanged { key: PlanKey },
}

/// How the plan at work (`old`, its tasks by key in `at_work`) becomes `new`, a checked plan:
/// completed tasks stay exactly as they are (or the revision is refused); a task that is the
/// same, not blocked, and whose dependencies all stay, stays (running or not); every other task
/// of `new` is created (a blocked one starts over), and a live task it replaces, or one `new`
/// drops, is cancelled. Linear in the tasks
/// and dependencies (and a heap for the order).
pub fn revise(
    old: &Plan,
    at_work: &std::collections::BTreeMap<PlanKey, AtWork>,
    new: &Plan,
) -> Result<Revision, Vec<RevisionProblem>> {
    use std::collections::HashMap;
    let old_tasks: HashMap<&PlanKey, &PlannedTask> =
        old.tasks.iter().map(|t| (&t.key, t)).collect();
    let new_tasks: HashMap<&PlanKey, &PlannedTask> =
        new.tasks.iter().map(|t| (&t.key, t)).collect();
    let mut problems = Vec::new();
    for t in &old.tasks {
        if !at_work.get(&t.key).is_some_and(|w| w.completed) {
            continue;
        }
        match new_tasks.get(&t.key) {
            None => problems.push(RevisionProblem::CompletedDropped { key: t.key.clone() }),
            Some(n) if *n != t => {
                problems.push(RevisionProblem::CompletedChanged { key: t.key.clone() });
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let index: HashMap<&PlanKey, usize> = new
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.key, i))
        .collect();
    let deps: Vec<Vec<usize>> = new
        .tasks
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let mut revision = Revision::default();
    for i in graph::topological_order(&deps) {
        let t = &new.tasks[i];
        let same = old_tasks.get(&t.key).is_some_and(|o| *o == t);
        let work = at_work.get(&t.key);
        let usable = work.is_some_and(|w| w.completed || (!w.ended && !w.blocked));
        let deps_stay = t.depends_on.iter().all(|d| revision.keep.contains_key(d));
        match work {
            Some(w) if same && usable && deps_stay => {
                revision.keep.insert(t.key.clone(), w.task);
            }
            _ => {
                if let Some(w) = work.filter(|w| !w.ended) {
                    revision.superseded.push(w.task);
                }
                revision.create.push(t.key.clone());
            }
        }
    }
    for t in &old.tasks {
        if new_tasks.contains_key(&t.key) {
            continue;
        }
        if let Some(w) = at_work.get(&t.key).filter(|w| !w.ended) {
            revision.superseded.push(w.task);
        }
    }
    Ok(revision)
}

/// What changed from one version of a plan to another, by task key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanDiff {
    /// Tasks only the newer version has, in its order.
    pub added: Vec<PlanKey>,
    /// Tasks only the older version has, in its order.
    pub removed: Vec<PlanKey>,
    /// Tasks both have that differ, in the newer version's order, with the names of the fields
    /// that differ (as the plan file names them).
    pub changed: Vec<(PlanKey, Vec<&'static str>)>,
    /// The plan's own fields that differ (`goal`, `name`, `notes`, `verify`).
    pub plan_fields: Vec<&'static str>,
}

impl PlanDiff {
    /// The difference from `old` to `new`: linear in the tasks (a map by key).
    pub fn between(old: &Plan, new: &Plan) -> PlanDiff {
        let before: std::collections::HashMap<&PlanKey, &PlannedTask> =
            old.tasks.iter().map(|t| (&t.key, t)).collect();
        let after: std::collections::HashSet<&PlanKey> = new.tasks.iter().map(|t| &t.key).collect();
        let mut diff = PlanDiff::default();
        for t in &new.tasks {
            match before.get(&t.key) {
                None => diff.added.push(t.key.clone()),
                Some(was) => {
                    let fields = task_fields_changed(was, t);
                    if !fields.is_empty() {
                        diff.changed.push((t.key.clone(), fields));
                    }
                }
            }
        }
        diff.removed = old
            .tasks
            .iter()
            .filter(|t| !after.contains(&t.key))
            .map(|t| t.key.clone())
            .collect();
        for (name, differs) in [
            ("goal", old.goal != new.goal),
            ("name", old.name != new.name),
            ("notes", old.notes != new.notes),
            ("verify", old.verify != new.verify),
        ] {
            if differs {
                diff.plan_fields.push(name);
            }
        }
        diff
    }

    /// True when the versions are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.plan_fields.is_empty()
    }
}

fn task_fields_changed(a: &PlannedTask, b: &PlannedTask) -> Vec<&'static str> {
    [
        ("title", a.title != b.title),
        ("prompt", a.prompt != b.prompt),
        ("capabilities", a.capabilities != b.capabilities),
        ("depends_on", a.depends_on != b.depends_on),
        ("concerns", a.concerns != b.concerns),
        ("risk", a.risk != b.risk),
        ("verify", a.verify != b.verify),
        ("tier", a.tier != b.tier),
        ("max_attempts", a.max_attempts != b.max_attempts),
        ("budget_usd", a.budget != b.budget),
        ("timeout", a.timeout != b.timeout),
        ("priority", a.priority != b.priority),
        ("port", a.wants_port != b.wants_port),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, deps: &[&str], concerns: &[&str]) -> PlannedTask {
        PlannedTask {
            key: PlanKey::parse(key).unwrap(),
            title: Title::parse(key).unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            depends_on: deps.iter().map(|d| PlanKey::parse(d).unwrap()).collect(),
            concerns: concerns
                .iter()
                .map(|c| Concern::parse(c).unwrap())
                .collect(),
            risk: Risk::default(),
            verify: None,
            tier: None,
            max_attempts: MaxAttempts::default(),
            budget: None,
            timeout: None,
            priority: Priority::default(),
            wants_port: false,
        }
    }

    fn plan(tasks: Vec<PlannedTask>) -> Plan {
        Plan {
            goal: "g".into(),
            name: None,
            notes: Vec::new(),
            verify: None,
            tasks,
        }
    }

    #[test]
    fn the_last_fenced_block_is_the_plan_and_the_rest_its_rationale() {
        let answer =
            "Two steps.\n```json\n{\"a\": 1}\n```\nThen:\n```toml\ngoal = \"x\"\n```\nDone.";
        let found = plan_in_answer(answer).unwrap();
        assert_eq!(found.text, "goal = \"x\"\n");
        assert!(found.rationale.starts_with("Two steps."), "{found:?}");
        assert!(found.rationale.ends_with("Done."), "{found:?}");
    }

    #[test]
    fn a_bare_json_answer_is_the_plan_and_other_blocks_are_not() {
        assert_eq!(
            plan_in_answer("  {\"goal\": 1}\n").unwrap().text,
            "{\"goal\": 1}"
        );
        assert_eq!(plan_in_answer("```rust\nfn main() {}\n```"), None);
        assert_eq!(plan_in_answer("no plan here"), None);
        assert_eq!(plan_in_answer("```json\n\n```"), None);
        // An unclosed block is not a plan.
        assert_eq!(plan_in_answer("```json\n{}\n"), None);
    }

    #[test]
    fn a_diff_names_tasks_added_removed_and_changed_with_their_fields() {
        let old = plan(vec![
            task("a", &[], &[]),
            task("b", &["a"], &[]),
            task("c", &[], &[]),
        ]);
        let mut b2 = task("b", &[], &["src/**"]);
        b2.risk = Risk::High;
        let new = plan(vec![task("a", &[], &[]), b2, task("d", &["a"], &[])]);
        let d = PlanDiff::between(&old, &new);
        assert_eq!(d.added, vec![PlanKey::parse("d").unwrap()]);
        assert_eq!(d.removed, vec![PlanKey::parse("c").unwrap()]);
        assert_eq!(
            d.changed,
            vec![(
                PlanKey::parse("b").unwrap(),
                vec!["depends_on", "concerns", "risk"]
            )]
        );
        assert!(d.plan_fields.is_empty());
        assert!(PlanDiff::between(&new, &new).is_empty());
    }

    fn work(task: u128, completed: bool, ended: bool) -> AtWork {
        AtWork {
            task: TaskId::from_bits(task),
            completed,
            ended,
            blocked: false,
        }
    }

    fn key(k: &str) -> PlanKey {
        PlanKey::parse(k).unwrap()
    }

    #[test]
    fn a_revision_keeps_what_completed_and_what_stays_the_same_and_replaces_the_rest() {
        let old = plan(vec![
            task("a", &[], &[]),
            task("b", &["a"], &[]),
            task("c", &["b"], &[]),
            task("d", &[], &[]),
        ]);
        let at_work = [
            (key("a"), work(1, true, true)),
            (key("b"), work(2, false, false)),
            (key("c"), work(3, false, false)),
            (key("d"), work(4, false, false)),
        ]
        .into_iter()
        .collect();
        // b is replaced (new title), so c (same, but after b) is recreated; d is dropped; e is new.
        let mut b2 = task("b", &["a"], &[]);
        b2.title = Title::parse("b, done differently").unwrap();
        let new = plan(vec![
            task("a", &[], &[]),
            b2,
            task("c", &["b"], &[]),
            task("e", &["a"], &[]),
        ]);
        let r = revise(&old, &at_work, &new).unwrap();
        assert_eq!(
            r.keep,
            [(key("a"), TaskId::from_bits(1))].into_iter().collect()
        );
        assert_eq!(r.create, vec![key("b"), key("c"), key("e")]);
        assert_eq!(
            r.superseded,
            vec![
                TaskId::from_bits(2),
                TaskId::from_bits(3),
                TaskId::from_bits(4)
            ]
        );
        // Unchanged tasks stay, running or not.
        let r = revise(&old, &at_work, &old).unwrap();
        assert_eq!(r.keep.len(), 4);
        assert!(r.create.is_empty() && r.superseded.is_empty());
        // A blocked task kept as it is starts over, and so do the tasks after it.
        let mut stuck = at_work.clone();
        stuck.insert(
            key("b"),
            AtWork {
                blocked: true,
                ..work(2, false, false)
            },
        );
        let r = revise(&old, &stuck, &old).unwrap();
        assert_eq!(r.create, vec![key("b"), key("c")]);
        assert_eq!(
            r.superseded,
            vec![TaskId::from_bits(2), TaskId::from_bits(3)]
        );
    }

    #[test]
    fn a_revision_that_drops_or_changes_a_completed_task_is_refused() {
        let old = plan(vec![task("a", &[], &[]), task("b", &["a"], &[])]);
        let at_work = [
            (key("a"), work(1, true, true)),
            (key("b"), work(2, false, false)),
        ]
        .into_iter()
        .collect();
        let dropped = plan(vec![task("b", &[], &[])]);
        assert_eq!(
            revise(&old, &at_work, &dropped),
            Err(vec![RevisionProblem::CompletedDropped { key: key("a") }])
        );
        let changed = plan(vec![task("a", &[], &["x"]), task("b", &["a"], &[])]);
        assert_eq!(
            revise(&old, &at_work, &changed),
            Err(vec![RevisionProblem::CompletedChanged { key: key("a") }])
        );
    }

    #[test]
    fn an_agreed_goal_is_the_last_goal_block_with_its_notes() {
        let answer = "We agree.\n```goal\nAdd rate limiting to /api\n\n- per API key\n* 100 requests a minute\nkeep tests green\n```\nThanks.";
        assert_eq!(
            goal_in_answer(answer),
            Some((
                "Add rate limiting to /api".to_owned(),
                vec![
                    "per API key".to_owned(),
                    "100 requests a minute".to_owned(),
                    "keep tests green".to_owned()
                ]
            ))
        );
        assert_eq!(goal_in_answer("What limit do you want?"), None);
        assert_eq!(goal_in_answer("```json\n{}\n```"), None);
        assert_eq!(goal_in_answer("```goal\n\n```"), None);
    }

    #[test]
    fn too_many_tasks_is_a_broken_rule() {
        let p = plan(vec![task("a", &[], &[]), task("b", &[], &[])]);
        assert_eq!(
            p.broken_rules(1),
            vec![PlanRuleBroken::TooManyTasks { count: 2, max: 1 }]
        );
        assert!(p.broken_rules(2).is_empty());
    }

    #[test]
    fn concerns_shared_by_every_parallel_pair_serialise_the_plan() {
        let all = plan(vec![
            task("a", &[], &["src/**"]),
            task("b", &[], &["src/lib.rs"]),
            task("c", &[], &["src/**"]),
        ]);
        assert!(matches!(
            all.broken_rules(10).as_slice(),
            [PlanRuleBroken::ConcernsSerialiseEverything { .. }]
        ));
        // One pair free to run together is enough.
        let some = plan(vec![
            task("a", &[], &["src/**"]),
            task("b", &[], &["src/lib.rs"]),
            task("c", &[], &["docs/**"]),
        ]);
        assert!(some.broken_rules(10).is_empty());
        // A chain has no parallel pair: its concerns hold nothing back.
        let chain = plan(vec![
            task("a", &[], &["src/**"]),
            task("b", &["a"], &["src/**"]),
        ]);
        assert!(chain.broken_rules(10).is_empty());
    }
}
