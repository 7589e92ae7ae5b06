//! Revising a plan at work (`maos_domain::plan::revise`) on random plans, task states and
//! revisions: a completed task is never touched, every task of the revision is kept or created
//! once, a kept task's dependencies are all kept, only live tasks are cancelled, and the
//! revised graph stays acyclic.

use std::collections::{BTreeMap, BTreeSet};

use maos_domain::graph;
use maos_domain::plan::{AtWork, Plan, PlannedTask, revise};
use maos_domain::{PlanKey, TaskId, Title};
use proptest::prelude::*;

/// A task of a random plan: its key index, title variant and dependencies (lower indexes: a
/// plan is acyclic).
#[derive(Debug, Clone)]
struct Spec {
    key: usize,
    variant: u8,
    deps: Vec<usize>,
}

fn key(i: usize) -> PlanKey {
    PlanKey::parse(&format!("t{i}")).expect("key")
}

fn planned(s: &Spec) -> PlannedTask {
    PlannedTask {
        key: key(s.key),
        title: Title::parse(&format!("task {} v{}", s.key, s.variant)).expect("title"),
        prompt: String::new(),
        capabilities: Default::default(),
        depends_on: s.deps.iter().map(|d| key(*d)).collect(),
        concerns: Vec::new(),
        risk: Default::default(),
        verify: None,
        tier: None,
        max_attempts: Default::default(),
        budget: None,
        timeout: None,
        priority: Default::default(),
        wants_port: false,
    }
}

fn plan_of(specs: &[Spec]) -> Plan {
    Plan {
        goal: "g".into(),
        name: None,
        notes: Vec::new(),
        verify: None,
        tasks: specs.iter().map(planned).collect(),
    }
}

/// Tasks `0..n` with dependencies on lower keys only.
fn specs(n: usize) -> impl Strategy<Value = Vec<Spec>> {
    (0..n)
        .map(|i| {
            (
                0..2u8,
                prop::collection::btree_set(0..i.max(1), 0..=i.min(3)),
            )
                .prop_map(move |(variant, deps)| Spec {
                    key: i,
                    variant,
                    deps: deps.into_iter().filter(|d| *d < i).collect(),
                })
        })
        .collect::<Vec<_>>()
}

/// 0 ready, 1 running, 2 completed, 3 blocked, 4 cancelled.
fn states(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0..5u8, n)
}

proptest! {
    #![proptest_config(crate::support::config(512, "proptest-regressions/revision.txt"))]

    #[test]
    fn a_revision_never_touches_a_completed_task_and_keeps_the_graph_acyclic(
        (old, new_raw, states, keep_completed) in (1..12usize).prop_flat_map(|n| {
            (specs(n), specs(n + 3), states(n), any::<bool>())
        }),
        dropped in prop::collection::btree_set(0..15usize, 0..4),
    ) {
        // A task completes only after its dependencies: make the states consistent.
        let mut state = states.clone();
        for s in &old {
            if state[s.key] == 2 && s.deps.iter().any(|d| state[*d] != 2) {
                state[s.key] = 0;
            }
        }
        let at_work: BTreeMap<PlanKey, AtWork> = old
            .iter()
            .map(|s| {
                (key(s.key), AtWork {
                    task: TaskId::from_bits(1000 + s.key as u128),
                    completed: state[s.key] == 2,
                    ended: matches!(state[s.key], 2 | 4),
                    blocked: state[s.key] == 3,
                })
            })
            .collect();
        // The revision: random tasks, minus some dropped ones, and (when the revision means
        // to be accepted) every completed task exactly as it was.
        let mut new: Vec<Spec> = new_raw
            .into_iter()
            .filter(|s| !dropped.contains(&s.key))
            .collect();
        let present: BTreeSet<usize> = new.iter().map(|s| s.key).collect();
        for s in &mut new {
            s.deps.retain(|d| present.contains(d));
        }
        if keep_completed {
            for s in old.iter().filter(|s| state[s.key] == 2) {
                match new.iter_mut().find(|n| n.key == s.key) {
                    Some(n) => *n = s.clone(),
                    None => new.push(s.clone()),
                }
            }
            // Completed tasks' dependencies are completed, so present: the plan stays whole.
        }
        new.sort_by_key(|s| s.key);
        let (old_plan, new_plan) = (plan_of(&old), plan_of(&new));
        let completed: BTreeSet<PlanKey> = at_work
            .iter()
            .filter(|(_, w)| w.completed)
            .map(|(k, _)| k.clone())
            .collect();
        match revise(&old_plan, &at_work, &new_plan) {
            Err(problems) => {
                // Refused only when a completed task was dropped or changed.
                prop_assert!(!problems.is_empty());
                let untouched = old_plan.tasks.iter().filter(|t| completed.contains(&t.key)).all(|t| {
                    new_plan.tasks.iter().any(|n| n == t)
                });
                prop_assert!(!untouched, "refused though every completed task is as it was");
            }
            Ok(r) => {
                // Completed tasks are kept, with their own task, and never cancelled.
                for k in &completed {
                    prop_assert_eq!(r.keep.get(k), Some(&at_work[k].task));
                    prop_assert!(!r.superseded.contains(&at_work[k].task));
                }
                // Each task of the revision is kept or created, once.
                let created: BTreeSet<&PlanKey> = r.create.iter().collect();
                prop_assert_eq!(created.len(), r.create.len());
                for t in &new_plan.tasks {
                    prop_assert!(r.keep.contains_key(&t.key) != created.contains(&t.key));
                }
                prop_assert_eq!(r.keep.len() + r.create.len(), new_plan.tasks.len());
                // A kept task's dependencies are kept, and a blocked task is never kept (it
                // would stay blocked); only live tasks are cancelled, once.
                for t in new_plan.tasks.iter().filter(|t| r.keep.contains_key(&t.key)) {
                    prop_assert!(t.depends_on.iter().all(|d| r.keep.contains_key(d)));
                    prop_assert!(!at_work.get(&t.key).is_some_and(|w| w.blocked));
                }
                let cancelled: BTreeSet<&TaskId> = r.superseded.iter().collect();
                prop_assert_eq!(cancelled.len(), r.superseded.len());
                for id in &r.superseded {
                    let w = at_work.values().find(|w| w.task == *id).expect("a task at work");
                    prop_assert!(!w.ended);
                }
                // Created tasks come after their dependencies, and the graph has no cycle.
                let position: BTreeMap<&PlanKey, usize> = r.create.iter().enumerate().map(|(i, k)| (k, i)).collect();
                let index: BTreeMap<&PlanKey, usize> = new_plan.tasks.iter().enumerate().map(|(i, t)| (&t.key, i)).collect();
                let mut edges = vec![Vec::new(); new_plan.tasks.len()];
                for (i, t) in new_plan.tasks.iter().enumerate() {
                    for d in &t.depends_on {
                        edges[i].push(index[d]);
                        if let (Some(a), Some(b)) = (position.get(&t.key), position.get(d)) {
                            prop_assert!(b < a, "{} created before its dependency {}", t.key, d);
                        }
                    }
                }
                prop_assert!(graph::cycles(&edges).is_empty());
            }
        }
    }
}
