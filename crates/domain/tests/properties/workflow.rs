//! Workflows on random stage graphs: acyclic ones validate and `order` respects every handoff; a
//! back edge gives a `Cycle` problem whose path is a real cycle; the `Unreachable` stages are
//! exactly those that no entry reaches; every repeated stage key is reported.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use maos_domain::workflow::{Stage, StageKey, Workflow, WorkflowName, WorkflowProblem};
use maos_domain::{CapabilitySet, Risk};
use proptest::prelude::*;

use crate::support::config;

fn key(n: usize) -> StageKey {
    StageKey::parse(&format!("s{n}")).expect("stage key")
}

fn stage(key: StageKey) -> Stage {
    Stage {
        title: format!("Stage {key}"),
        key,
        capabilities: CapabilitySet::empty(),
        tier: None,
        risk: Risk::Low,
        verify: None,
        prompt: "Work on {goal}".to_owned(),
        lessons: None,
    }
}

fn build(
    stages: Vec<StageKey>,
    handoffs: &[(StageKey, StageKey)],
) -> Result<Workflow, Vec<WorkflowProblem>> {
    Workflow::new(
        WorkflowName::parse("random").expect("name"),
        1,
        "a random workflow",
        stages.into_iter().map(stage).collect(),
        handoffs.to_vec(),
    )
}

/// A random DAG on `n` nodes: an edge only goes from a lower to a higher index, each pair at
/// most once. Returns `n` and the edges as index pairs.
fn dag(max: usize) -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (1..=max)
        .prop_flat_map(|n| {
            (
                Just(n),
                prop::collection::vec(prop::bool::weighted(0.3), n * n),
            )
        })
        .prop_map(|(n, bits)| {
            let edges = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .filter(|&(i, j)| i < j && bits[i * n + j])
                .collect();
            (n, edges)
        })
}

fn keyed(edges: &[(usize, usize)]) -> Vec<(StageKey, StageKey)> {
    edges.iter().map(|&(f, t)| (key(f), key(t))).collect()
}

/// Oracle: the nodes reachable from `start` (itself included) over `edges`.
fn reach(start: usize, edges: &[(usize, usize)]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for &(f, t) in edges {
            if f == n && seen.insert(t) {
                queue.push_back(t);
            }
        }
    }
    seen
}

proptest! {
    #![proptest_config(config(256, "proptest-regressions/workflow.txt"))]

    /// An acyclic workflow, whatever order its stages are declared in, validates; `order` holds
    /// every stage once, puts each handoff's `from` before its `to`, and keeps the declaration
    /// order when that already respects the handoffs.
    #[test]
    fn acyclic_workflows_validate_and_order_respects_handoffs(
        (n, edges, declared) in dag(9).prop_flat_map(|(n, edges)| {
            (Just(n), Just(edges), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let w = build(declared.iter().map(|&i| key(i)).collect(), &keyed(&edges))
            .map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
        let order: Vec<&StageKey> = w.order().into_iter().map(|s| &s.key).collect();
        prop_assert_eq!(order.len(), n);
        let position: BTreeMap<&StageKey, usize> =
            order.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        prop_assert_eq!(position.len(), n);
        for (from, to) in w.handoffs() {
            prop_assert!(position[from] < position[to], "{} after {}", from, to);
        }
        // Declared in index order, the declaration is itself topological: `order` keeps it.
        let w = build((0..n).map(key).collect(), &keyed(&edges))
            .map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
        let order: Vec<StageKey> = w.order().into_iter().map(|s| s.key.clone()).collect();
        prop_assert_eq!(order, (0..n).map(key).collect::<Vec<_>>());
        // Inputs are exactly the handoffs' sources.
        for t in 0..n {
            let inputs: Vec<&StageKey> = w.inputs_of(&key(t));
            let expected: Vec<StageKey> =
                edges.iter().filter(|e| e.1 == t).map(|e| key(e.0)).collect();
            prop_assert_eq!(inputs.into_iter().cloned().collect::<Vec<_>>(), expected);
        }
    }

    /// A back edge `j → i` where `i` reaches `j` closes a cycle: it is reported, and every
    /// reported cycle is a real cycle of the handoffs, printed as `a → … → a`.
    #[test]
    fn a_back_edge_is_reported_as_a_real_cycle(
        (n, mut edges, i, j) in dag(8)
            .prop_filter("two stages at least", |(n, _)| *n >= 2)
            .prop_flat_map(|(n, edges)| {
                (Just(n), Just(edges), 0..n - 1)
                    .prop_flat_map(|(n, edges, i)| (Just(n), Just(edges), Just(i), i + 1..n))
            })
    ) {
        if !reach(i, &edges).contains(&j) {
            edges.push((i, j));
        }
        edges.push((j, i));
        let handoffs = keyed(&edges);
        let problems = build((0..n).map(key).collect(), &handoffs)
            .err()
            .ok_or_else(|| TestCaseError::fail("a workflow with a cycle was accepted"))?;
        let mut cycles = 0;
        for p in &problems {
            if let WorkflowProblem::Cycle { path, handoff } = p {
                cycles += 1;
                prop_assert!(path.len() >= 3, "{:?}", path);
                prop_assert_eq!(path.first(), path.last());
                for pair in path.windows(2) {
                    let edge = (pair[0].clone(), pair[1].clone());
                    prop_assert!(handoffs.contains(&edge), "{:?} is not a handoff", edge);
                }
                let closing = (path[path.len() - 2].clone(), path[0].clone());
                prop_assert_eq!(&handoffs[*handoff], &closing);
                let shown: Vec<&str> = path.iter().map(StageKey::as_str).collect();
                let text = p.to_string();
                prop_assert!(text.contains(&shown.join(" → ")), "{}", text);
            }
        }
        prop_assert!(cycles >= 1, "{:?}", problems);
    }

    /// A DAG plus a cycle of stages that no entry reaches (the cycle may hand off into the
    /// DAG): the `Unreachable` stages are exactly those the oracle finds unreached from the
    /// entries, and include the whole detached cycle.
    #[test]
    fn stages_no_entry_reaches_are_unreachable(
        (n, mut edges, ring, into) in dag(7).prop_flat_map(|(n, edges)| {
            (
                Just(n),
                Just(edges),
                2..=4usize,
                prop::collection::vec((0..4usize, 0..n), 0..=2),
            )
        })
    ) {
        let ring_nodes: Vec<usize> = (n..n + ring).collect();
        for (k, &r) in ring_nodes.iter().enumerate() {
            edges.push((r, ring_nodes[(k + 1) % ring]));
        }
        for &(r, d) in &into {
            let edge = (ring_nodes[r % ring], d);
            if !edges.contains(&edge) {
                edges.push(edge);
            }
        }
        let total = n + ring;
        let problems = build((0..total).map(key).collect(), &keyed(&edges))
            .err()
            .ok_or_else(|| TestCaseError::fail("a workflow with a detached cycle was accepted"))?;
        let entries: Vec<usize> = (0..total).filter(|&s| !edges.iter().any(|e| e.1 == s)).collect();
        let reached: BTreeSet<usize> = entries.iter().flat_map(|&e| reach(e, &edges)).collect();
        let expected: BTreeSet<StageKey> =
            (0..total).filter(|s| !reached.contains(s)).map(key).collect();
        let unreachable: BTreeSet<StageKey> = problems
            .iter()
            .filter_map(|p| match p {
                WorkflowProblem::Unreachable { key: k, stage } => {
                    assert_eq!(k, &key(*stage));
                    Some(k.clone())
                }
                _ => None,
            })
            .collect();
        for r in &ring_nodes {
            prop_assert!(unreachable.contains(&key(*r)), "{:?}", problems);
        }
        prop_assert_eq!(unreachable, expected);
    }

    /// Every key used by more than one stage is reported, at each repeat, and no other key is.
    #[test]
    fn every_duplicate_key_is_reported(raw in prop::collection::vec(0..5usize, 1..10)) {
        let stages: Vec<StageKey> = raw.iter().map(|&i| key(i)).collect();
        let result = build(stages.clone(), &[]);
        let mut count: BTreeMap<&StageKey, usize> = BTreeMap::new();
        for k in &stages {
            *count.entry(k).or_default() += 1;
        }
        let duplicated: BTreeSet<&StageKey> =
            count.iter().filter(|(_, c)| **c > 1).map(|(k, _)| *k).collect();
        match result {
            Ok(_) => prop_assert!(duplicated.is_empty()),
            Err(problems) => {
                let mut reported: Vec<usize> = Vec::new();
                for p in &problems {
                    match p {
                        WorkflowProblem::DuplicateStage { key, stage, first } => {
                            prop_assert_eq!(&stages[*stage], key);
                            prop_assert_eq!(&stages[*first], key);
                            prop_assert!(first < stage);
                            prop_assert!(
                                !stages[..*first].contains(key),
                                "{} is not the first {}", first, key
                            );
                            reported.push(*stage);
                        }
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                let repeats: Vec<usize> = (0..stages.len())
                    .filter(|&i| stages[..i].contains(&stages[i]))
                    .collect();
                prop_assert_eq!(reported, repeats);
                let keys: BTreeSet<&StageKey> = problems
                    .iter()
                    .filter_map(|p| match p {
                        WorkflowProblem::DuplicateStage { key, .. } => Some(key),
                        _ => None,
                    })
                    .collect();
                prop_assert_eq!(keys, duplicated);
            }
        }
    }
}
