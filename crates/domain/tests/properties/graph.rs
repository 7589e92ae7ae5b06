//! Property 4: `graph::find_path` on random graphs, against a plain breadth-first oracle.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;

use maos_domain::TaskId;
use maos_domain::graph::find_path;
use proptest::prelude::*;

type Graph = BTreeMap<TaskId, BTreeSet<TaskId>>;

fn node(n: usize) -> TaskId {
    TaskId::from_bits(500 + n as u128)
}

/// A random graph on `n` nodes (labels shuffled, so that edge direction is not tied to id
/// order), plus two query nodes, one of which may be outside the graph. With `acyclic`, an edge
/// only goes from an earlier to a later node of the shuffled order.
fn graph(acyclic: bool) -> impl Strategy<Value = (Graph, TaskId, TaskId)> {
    (1..=9usize)
        .prop_flat_map(move |n| {
            (
                Just(n),
                prop::collection::vec(prop::bool::weighted(0.3), n * n),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                0..=n,
                0..=n,
            )
        })
        .prop_map(move |(n, bits, labels, from, to)| {
            let mut g = Graph::new();
            for i in 0..n {
                let out = g.entry(node(labels[i])).or_default();
                for j in 0..n {
                    let allowed = if acyclic { i < j } else { true };
                    if allowed && bits[i * n + j] {
                        out.insert(node(labels[j]));
                    }
                }
            }
            // Index n is a node outside the graph.
            let pick = |k: usize| node(if k < n { labels[k] } else { n });
            (g, pick(from), pick(to))
        })
}

/// Oracle: the shortest distance (in edges) from `from` to every node it reaches.
fn distances(g: &Graph, from: TaskId) -> BTreeMap<TaskId, usize> {
    let mut dist = BTreeMap::from([(from, 0)]);
    let mut queue = VecDeque::from([from]);
    while let Some(x) = queue.pop_front() {
        let d = dist[&x];
        for y in g.get(&x).into_iter().flatten() {
            if !dist.contains_key(y) {
                dist.insert(*y, d + 1);
                queue.push_back(*y);
            }
        }
    }
    dist
}

fn check(g: &Graph, from: TaskId, to: TaskId) -> Result<(), TestCaseError> {
    // Breadth-first search asks for each node's edges at most once: every graph node, plus
    // `from` when it lies outside the graph. Panicking past that stops a search that loops.
    let limit = g.len() + 1;
    let mut calls = 0usize;
    let found = find_path(from, to, |t| {
        calls += 1;
        assert!(
            calls <= limit,
            "asked for edges {calls} times on {limit} nodes"
        );
        Ok::<_, Infallible>(
            g.get(&t)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
        )
    })
    .expect("infallible");
    let dist = distances(g, from);
    match (found, dist.get(&to)) {
        (None, None) => {}
        (Some(path), Some(d)) => {
            prop_assert_eq!(path.first(), Some(&from));
            prop_assert_eq!(path.last(), Some(&to));
            for w in path.windows(2) {
                prop_assert!(
                    g.get(&w[0]).is_some_and(|s| s.contains(&w[1])),
                    "{} -> {} is not an edge",
                    w[0],
                    w[1]
                );
            }
            prop_assert_eq!(path.len(), d + 1, "not a shortest path: {:?}", path);
        }
        (Some(path), None) => {
            prop_assert!(false, "found {:?} but {} does not reach {}", path, from, to)
        }
        (None, Some(d)) => prop_assert!(false, "missed a path of {} edges", d),
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::support::config(512, "proptest-regressions/graph.txt"))]

    #[test]
    fn find_path_on_dags_is_a_real_path_or_none_iff_unreachable((g, from, to) in graph(true)) {
        check(&g, from, to)?;
    }

    #[test]
    fn find_path_terminates_and_is_correct_on_graphs_with_cycles((g, from, to) in graph(false)) {
        check(&g, from, to)?;
    }

    #[test]
    fn find_path_passes_on_the_callers_error((_g, from, to) in graph(true)) {
        let failing = find_path(from, to, |_| Err::<Vec<TaskId>, &str>("store down"));
        if from == to {
            prop_assert_eq!(failing, Ok(Some(vec![from])));
        } else {
            prop_assert_eq!(failing, Err("store down"));
        }
    }
}
