//! Dependency graphs between tasks (and between a workflow's stages): the path that a new edge
//! would close into a cycle, a dependency order, strongly connected components and the cycles
//! they hold. The one home of these algorithms: every caller of the workspace uses them.
//!
//! Graphs over indexes are given as `edges[i]`, the edges leaving node `i` (for task graphs: the
//! tasks `i` depends on). An edge is a target index ([`usize`]) or a target with a label
//! (`(usize, L)`, see [`Edge`]), so that a caller can tell which of its edges closes a cycle;
//! targets out of range are ignored. Every function here is iterative, so a chain of any length
//! cannot overflow the stack, and visits each edge a bounded number of times: components and
//! cycles are linear, O(V + E); the dependency order keeps the lowest ready node first, which
//! costs a heap, O(V log V + E).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use crate::ids::TaskId;

/// An edge of a graph over indexes: where it leads. A bare `usize` is an edge without a label;
/// `(target, label)` carries what the caller needs to name the edge (a handoff's index, a span).
pub trait Edge {
    /// The node the edge leads to.
    fn target(&self) -> usize;
}

impl Edge for usize {
    fn target(&self) -> usize {
        *self
    }
}

impl<L> Edge for (usize, L) {
    fn target(&self) -> usize {
        self.0
    }
}

/// Looks for a path of dependencies from `from` to `to`, asking `depends_on` for the direct
/// dependencies of each task it visits (breadth first, so the path found is a shortest one).
/// Returns the path `from, …, to` if there is one.
///
/// Adding the edge "`to` depends on `from`" would close a cycle exactly when such a path exists;
/// the path, followed by `from` again, is the cycle to report.
pub fn find_path<E>(
    from: TaskId,
    to: TaskId,
    mut depends_on: impl FnMut(TaskId) -> Result<Vec<TaskId>, E>,
) -> Result<Option<Vec<TaskId>>, E> {
    if from == to {
        return Ok(Some(vec![from]));
    }
    // Each node reached, with the node it was reached from (`from` has none).
    let mut parent: BTreeMap<TaskId, Option<TaskId>> = BTreeMap::from([(from, None)]);
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        for next in depends_on(node)? {
            if parent.contains_key(&next) {
                continue;
            }
            parent.insert(next, Some(node));
            if next == to {
                let mut path = vec![to];
                let mut cur = to;
                while let Some(Some(p)) = parent.get(&cur) {
                    cur = *p;
                    path.push(cur);
                }
                path.reverse();
                return Ok(Some(path));
            }
            queue.push_back(next);
        }
    }
    Ok(None)
}

/// The nodes that one of `starts` reaches (the starts included), as a flag per node: breadth
/// first, each edge looked at once, O(V + E). Starts out of range are ignored.
pub fn reachable<D: AsRef<[E]>, E: Edge>(
    edges: &[D],
    starts: impl IntoIterator<Item = usize>,
) -> Vec<bool> {
    let n = edges.len();
    let mut reached = vec![false; n];
    let mut queue = VecDeque::new();
    for s in starts {
        if s < n && !reached[s] {
            reached[s] = true;
            queue.push_back(s);
        }
    }
    while let Some(u) = queue.pop_front() {
        for v in edges[u].as_ref().iter().map(Edge::target) {
            if v < n && !reached[v] {
                reached[v] = true;
                queue.push_back(v);
            }
        }
    }
    reached
}

/// The nodes `0..deps.len()` in dependency order: each node after every node it depends on
/// (`deps[i]`); when several could come next, the lowest index first, so an acyclic graph
/// keeps its given order wherever the dependencies allow. Nodes on a cycle, and the nodes that
/// wait for them, cannot be ordered: they come last, in index order. Kahn's algorithm with a
/// heap of the ready nodes: each edge is looked at once, each node pushed and popped once,
/// O(V log V + E).
///
/// For edges that point the other way (`edges[i]`: the nodes that wait for `i`, such as a
/// workflow's handoffs), use [`topological_order_forward`].
pub fn topological_order<D: AsRef<[E]>, E: Edge>(deps: &[D]) -> Vec<usize> {
    let n = deps.len();
    let mut waits_for = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for j in d.as_ref().iter().map(Edge::target) {
            if j < n {
                waits_for[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waits_for[i] == 0).map(Reverse).collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        placed[i] = true;
        order.push(i);
        for &k in &dependents[i] {
            waits_for[k] -= 1;
            if waits_for[k] == 0 {
                ready.push(Reverse(k));
            }
        }
    }
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

/// [`topological_order`] of a graph whose edges lead from a node to the nodes that wait for it
/// (`edges[i]`: the nodes after `i`), such as handoffs `from → to`: every edge's source before
/// its target, the lowest ready node first, nodes on or after a cycle last. Linear apart from
/// the heap of [`topological_order`], which it calls on the reversed edges.
pub fn topological_order_forward<D: AsRef<[E]>, E: Edge>(edges: &[D]) -> Vec<usize> {
    let n = edges.len();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, out) in edges.iter().enumerate() {
        for j in out.as_ref().iter().map(Edge::target) {
            if j < n {
                deps[j].push(i);
            }
        }
    }
    topological_order(&deps)
}

/// The strongly connected components of the graph (`edges[i]`: the nodes `i` points at): sets
/// of nodes that all reach one another. Each component's nodes are in ascending order; the
/// components are in the order of their lowest node. Tarjan's algorithm with an explicit stack:
/// linear in nodes and edges (plus sorting each component), no recursion.
pub fn strongly_connected<D: AsRef<[E]>, E: Edge>(edges: &[D]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    // The depth-first path: (node, position of the next edge to follow).
    let mut path: Vec<(usize, usize)> = Vec::new();
    let mut next_index = 0usize;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        path.push((root, 0));
        while let Some(top) = path.last_mut() {
            let v = top.0;
            if let Some(w) = edges[v].as_ref().get(top.1).map(Edge::target) {
                top.1 += 1;
                if w >= n {
                    continue;
                }
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    path.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            path.pop();
            if let Some(&(u, _)) = path.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components.sort_unstable_by_key(|c| c.first().copied());
    components
}

/// One cycle per strongly connected component that holds one (two nodes or more, or a node
/// with an edge to itself): a shortest cycle through the component's lowest node `s`, as the
/// path `s, …, s`, in the order of those lowest nodes. Each component is searched breadth first
/// once, inside the component, so the whole is linear in nodes and edges.
pub fn cycles<D: AsRef<[E]>, E: Edge>(edges: &[D]) -> Vec<Vec<usize>> {
    cycle_edges(edges)
        .into_iter()
        .filter_map(|cycle| {
            let &(s, _) = cycle.first()?;
            let mut path: Vec<usize> = cycle.iter().map(|&(node, _)| node).collect();
            path.push(s);
            Some(path)
        })
        .collect()
}

/// The cycles of [`cycles`], each as the edges that make it: `(node, k)` for the `k`th edge of
/// `edges[node]`, from the component's lowest node around and back to it. The last edge is the
/// one that closes the cycle, the first of its node's edges (in the given order) that leads back;
/// with labelled edges, `edges[node][k]` says which of the caller's edges that is.
pub fn cycle_edges<D: AsRef<[E]>, E: Edge>(edges: &[D]) -> Vec<Vec<(usize, usize)>> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let components = strongly_connected(edges);
    let mut component_of = vec![NONE; n];
    for (c, nodes) in components.iter().enumerate() {
        for &v in nodes {
            component_of[v] = c;
        }
    }
    // The edge by which the search reached each node: (node it left, position of the edge).
    let mut parent = vec![(NONE, 0usize); n];
    let mut found = Vec::new();
    for (c, nodes) in components.iter().enumerate() {
        let Some(&s) = nodes.first() else { continue };
        let self_loop = edges[s].as_ref().iter().any(|e| e.target() == s);
        if nodes.len() == 1 && !self_loop {
            continue;
        }
        let mut queue = VecDeque::from([s]);
        'search: while let Some(u) = queue.pop_front() {
            for (k, v) in edges[u].as_ref().iter().map(Edge::target).enumerate() {
                if v >= n || component_of[v] != c {
                    continue;
                }
                if v == s {
                    // Walk back from u to s, then close the cycle with this edge.
                    let mut path = vec![(u, k)];
                    let mut cur = u;
                    while cur != s {
                        match parent.get(cur) {
                            Some(&(p, pk)) if p != NONE => {
                                path.push((p, pk));
                                cur = p;
                            }
                            _ => break,
                        }
                    }
                    path.reverse();
                    found.push(path);
                    break 'search;
                }
                if parent[v].0 == NONE {
                    parent[v] = (u, k);
                    queue.push_back(v);
                }
            }
        }
        for &v in nodes {
            parent[v] = (NONE, 0);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    use super::*;

    fn id(n: u128) -> TaskId {
        TaskId::from_bits(n)
    }

    #[test]
    fn finds_shortest_path_or_none() {
        // 1 -> 2 -> 3 -> 4, and 1 -> 4
        let g: BTreeMap<TaskId, Vec<TaskId>> = [
            (id(1), vec![id(2), id(4)]),
            (id(2), vec![id(3)]),
            (id(3), vec![id(4)]),
        ]
        .into();
        let deps = |t: TaskId| Ok::<_, Infallible>(g.get(&t).cloned().unwrap_or_default());
        assert_eq!(
            find_path(id(1), id(4), deps).unwrap(),
            Some(vec![id(1), id(4)])
        );
        assert_eq!(
            find_path(id(2), id(4), deps).unwrap(),
            Some(vec![id(2), id(3), id(4)])
        );
        assert_eq!(find_path(id(4), id(1), deps).unwrap(), None);
        assert_eq!(find_path(id(3), id(3), deps).unwrap(), Some(vec![id(3)]));
    }

    #[test]
    fn dependency_order_puts_the_lowest_ready_node_first_and_cycles_last() {
        // 0 waits for 1, 1 for 2; 3 is free; 4 and 5 wait for each other, 6 for 4.
        let deps: Vec<Vec<usize>> = vec![
            vec![1],
            vec![2],
            vec![],
            vec![],
            vec![5],
            vec![4],
            vec![4, 9],
        ];
        assert_eq!(topological_order(&deps), vec![2, 1, 0, 3, 4, 5, 6]);
        assert_eq!(
            topological_order::<Vec<usize>, usize>(&[]),
            Vec::<usize>::new()
        );
        // A node that depends on itself cannot be ordered either.
        assert_eq!(topological_order(&[vec![0], vec![]]), vec![1, 0]);
    }

    #[test]
    fn components_and_one_shortest_cycle_each() {
        // 0 -> 1 -> 2 -> 0 and 1 -> 0 (a shorter way back), 3 alone, 4 -> 4, 5 <-> 6.
        let edges: Vec<Vec<usize>> = vec![
            vec![1],
            vec![2, 0],
            vec![0],
            vec![0],
            vec![4],
            vec![6],
            vec![5, 7],
        ];
        assert_eq!(
            strongly_connected(&edges),
            vec![vec![0, 1, 2], vec![3], vec![4], vec![5, 6]]
        );
        assert_eq!(
            cycles(&edges),
            vec![vec![0, 1, 0], vec![4, 4], vec![5, 6, 5]]
        );
    }

    #[test]
    fn labelled_edges_name_the_edge_that_closes_each_cycle() {
        // Handoffs as (target, handoff number): 0 -> 1 (h0), 1 -> 2 (h1), 2 -> 0 (h2),
        // 1 -> 0 (h3, a shorter way back), 3 -> 3 (h4).
        let edges: Vec<Vec<(usize, char)>> = vec![
            vec![(1, 'a')],
            vec![(2, 'b'), (0, 'c')],
            vec![(0, 'd')],
            vec![(3, 'e')],
        ];
        let found = cycle_edges(&edges);
        assert_eq!(found, vec![vec![(0, 0), (1, 1)], vec![(3, 0)]]);
        let closing: Vec<char> = found
            .iter()
            .filter_map(|c| c.last().map(|&(u, k)| edges[u][k].1))
            .collect();
        assert_eq!(closing, vec!['c', 'e']);
        assert_eq!(cycles(&edges), vec![vec![0, 1, 0], vec![3, 3]]);
    }

    #[test]
    fn the_forward_order_puts_each_source_before_its_targets() {
        // 2 -> 0, 1 -> 0, 0 -> 3; 4 and 5 hand off to each other.
        let edges: Vec<Vec<usize>> = vec![vec![3], vec![0], vec![0], vec![], vec![5], vec![4]];
        assert_eq!(topological_order_forward(&edges), vec![1, 2, 0, 3, 4, 5]);
    }

    /// An edge that counts how often the algorithms ask where it leads.
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

    #[test]
    fn each_edge_is_looked_at_a_bounded_number_of_times() {
        // Every node points at the next ten (wrapping), so the graph is one component with
        // cycles everywhere: the worst case for a search that would restart per node.
        let n = 2_000;
        let looks = Cell::new(0);
        let edges: Vec<Vec<Counted<'_>>> = (0..n)
            .map(|i| {
                (1..=10)
                    .map(|d| Counted {
                        to: (i + d) % n,
                        looks: &looks,
                    })
                    .collect()
            })
            .collect();
        let e = n * 10;
        let count = |what: &str, work: &dyn Fn()| {
            looks.set(0);
            work();
            assert!(
                looks.get() <= 3 * e,
                "{what}: {} looks at {e} edges",
                looks.get()
            );
            assert!(looks.get() >= e, "{what}: not every edge was counted");
        };
        count("strongly_connected", &|| drop(strongly_connected(&edges)));
        count("cycles", &|| drop(cycles(&edges)));
        count("topological_order", &|| drop(topological_order(&edges)));
        count("topological_order_forward", &|| {
            drop(topological_order_forward(&edges))
        });
    }

    #[test]
    fn a_chain_of_a_million_nodes_needs_no_recursion() {
        let n = 1_000_000;
        let chain: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert_eq!(topological_order(&chain), (0..n).collect::<Vec<_>>());
        assert_eq!(strongly_connected(&chain).len(), n);
        assert!(cycles(&chain).is_empty());
        // Closing it makes one component and one cycle of every node.
        let mut ring = chain;
        ring[0].push(n - 1);
        let found = cycles(&ring);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), n + 1);
    }
}
