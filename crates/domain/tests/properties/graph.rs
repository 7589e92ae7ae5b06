//! Property 4: `graph::find_path` on random graphs, against a plain breadth-first oracle; the
//! dependency order (both edge directions), components and cycles of `graph` against brute-force
//! oracles; the edges of each cycle are real edges and the last one closes it; and the work
//! (looks at an edge) stays within a constant times the edges.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;

use maos_domain::TaskId;
use maos_domain::graph::{
    Edge, cycle_edges, cycles, find_path, reachable, strongly_connected, topological_order,
    topological_order_forward,
};
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

/// A random graph over indexes: `edges[i]` may repeat a node, point at `i` itself, or name an
/// index out of range (which the functions ignore).
fn index_graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (0..=9usize).prop_flat_map(|n| prop::collection::vec(prop::collection::vec(0..=n, 0..4), n))
}

/// Oracle: does `from` reach `to` (in zero or more steps)?
fn reaches(edges: &[Vec<usize>], from: usize, to: usize) -> bool {
    let n = edges.len();
    let mut seen = vec![false; n];
    let mut stack = vec![from];
    seen[from] = true;
    while let Some(u) = stack.pop() {
        if u == to {
            return true;
        }
        for &v in &edges[u] {
            if v < n && !seen[v] {
                seen[v] = true;
                stack.push(v);
            }
        }
    }
    false
}

/// Oracle: the dependency order as the plan preview used to compute it, by brute force: again
/// and again, the lowest unplaced node whose dependencies are all placed; the rest at the end.
fn order_oracle(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut order: Vec<usize> = Vec::new();
    while order.len() < n {
        let next = (0..n)
            .find(|i| !order.contains(i) && deps[*i].iter().all(|d| *d >= n || order.contains(d)));
        match next {
            Some(i) => order.push(i),
            None => {
                let rest: Vec<usize> = (0..n).filter(|i| !order.contains(i)).collect();
                order.extend(rest);
            }
        }
    }
    order
}

/// Oracle: the shortest cycle through `s` by a breadth-first search over the whole graph.
fn cycle_through_oracle(s: usize, edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = edges.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut queue = VecDeque::from([s]);
    while let Some(u) = queue.pop_front() {
        for &v in &edges[u] {
            if v >= n {
                continue;
            }
            if v == s {
                let mut path = vec![u];
                let mut cur = u;
                while let Some(p) = parent[cur] {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                path.push(s);
                return Some(path);
            }
            if parent[v].is_none() {
                parent[v] = Some(u);
                queue.push_back(v);
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(crate::support::config(512, "proptest-regressions/graph.txt"))]

    #[test]
    fn topological_order_matches_the_brute_force_order(deps in index_graph()) {
        let order = topological_order(&deps);
        prop_assert_eq!(&order, &order_oracle(&deps));
        // A permutation, and every node that could be ordered comes after its dependencies.
        let mut sorted = order.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..deps.len()).collect::<Vec<_>>());
    }

    #[test]
    fn components_are_exactly_the_mutually_reachable_nodes(edges in index_graph()) {
        let n = edges.len();
        let components = strongly_connected(&edges);
        let mut component_of = vec![usize::MAX; n];
        for (c, nodes) in components.iter().enumerate() {
            prop_assert!(nodes.windows(2).all(|w| w[0] < w[1]), "not ascending: {:?}", nodes);
            for &v in nodes {
                prop_assert_eq!(component_of[v], usize::MAX, "{} in two components", v);
                component_of[v] = c;
            }
        }
        prop_assert!(components.windows(2).all(|w| w[0][0] < w[1][0]));
        for a in 0..n {
            for b in 0..n {
                let together = reaches(&edges, a, b) && reaches(&edges, b, a);
                prop_assert_eq!(component_of[a] == component_of[b], together, "{} and {}", a, b);
            }
        }
    }

    #[test]
    fn one_shortest_cycle_per_component_through_its_lowest_node(edges in index_graph()) {
        // The plan check's former way: each node in turn, unless its component was reported.
        let n = edges.len();
        let mut expected = Vec::new();
        let mut reported = vec![false; n];
        for s in 0..n {
            if reported[s] {
                continue;
            }
            let Some(cycle) = cycle_through_oracle(s, &edges) else { continue };
            for (v, r) in reported.iter_mut().enumerate() {
                if reaches(&edges, s, v) && reaches(&edges, v, s) {
                    *r = true;
                }
            }
            expected.push(cycle);
        }
        prop_assert_eq!(cycles(&edges), expected);
    }
}

/// The same graph with every edge reversed (targets out of range dropped).
fn reversed(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut back = vec![Vec::new(); n];
    for (i, out) in edges.iter().enumerate() {
        for &j in out {
            if j < n {
                back[j].push(i);
            }
        }
    }
    back
}

/// An edge that counts how often it is asked where it leads.
struct Counted<'c> {
    to: usize,
    looks: &'c Cell<usize>,
}

impl Edge for Counted<'_> {
    fn target(&self) -> usize {
        self.looks.set(self.looks.get() + 1);
        self.to
    }
}

proptest! {
    #![proptest_config(crate::support::config(512, "proptest-regressions/graph.txt"))]

    #[test]
    fn the_forward_order_is_the_order_of_the_reversed_graph(edges in index_graph()) {
        prop_assert_eq!(topological_order_forward(&edges), order_oracle(&reversed(&edges)));
    }

    #[test]
    fn cycle_edges_are_real_edges_around_the_cycles(edges in index_graph()) {
        // Labelled with their place, so the label says which edge was picked.
        let labelled: Vec<Vec<(usize, (usize, usize))>> = edges
            .iter()
            .enumerate()
            .map(|(i, out)| out.iter().enumerate().map(|(k, &j)| (j, (i, k))).collect())
            .collect();
        let found = cycle_edges(&labelled);
        let paths = cycles(&edges);
        prop_assert_eq!(found.len(), paths.len());
        for (cycle, path) in found.iter().zip(&paths) {
            let nodes: Vec<usize> = cycle.iter().map(|&(u, _)| u).collect();
            prop_assert_eq!(&nodes[..], &path[..path.len() - 1]);
            for (step, &(u, k)) in cycle.iter().enumerate() {
                let next = path[step + 1];
                prop_assert_eq!(labelled[u][k], (next, (u, k)));
            }
            // The closing edge is the first of its node's edges back to the cycle's start.
            let &(u, k) = cycle.last().expect("a cycle has an edge");
            let first_back = edges[u].iter().position(|&j| j == path[0]);
            prop_assert_eq!(Some(k), first_back);
        }
    }

    #[test]
    fn reachable_is_what_some_start_reaches(edges in index_graph(), starts in prop::collection::vec(0..12usize, 0..4)) {
        let n = edges.len();
        let got = reachable(&edges, starts.iter().copied());
        for (v, &got) in got.iter().enumerate() {
            let want = starts.iter().any(|&s| s < n && reaches(&edges, s, v));
            prop_assert_eq!(got, want, "node {}", v);
        }
    }

    #[test]
    fn the_work_is_linear_in_the_edges(edges in index_graph()) {
        let looks = Cell::new(0);
        let counted: Vec<Vec<Counted<'_>>> = edges
            .iter()
            .map(|out| out.iter().map(|&to| Counted { to, looks: &looks }).collect())
            .collect();
        let e: usize = edges.iter().map(Vec::len).sum();
        let _ = strongly_connected(&counted);
        prop_assert!(looks.get() <= e, "components: {} looks at {} edges", looks.get(), e);
        looks.set(0);
        let _ = cycles(&counted);
        prop_assert!(looks.get() <= 3 * e, "cycles: {} looks at {} edges", looks.get(), e);
        looks.set(0);
        let _ = topological_order(&counted);
        prop_assert!(looks.get() <= e, "order: {} looks at {} edges", looks.get(), e);
        looks.set(0);
        let _ = reachable(&counted, 0..edges.len());
        prop_assert!(looks.get() <= e, "reachable: {} looks at {} edges", looks.get(), e);
    }
}
