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
