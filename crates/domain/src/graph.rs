//! Dependency graphs between tasks: the path that a new edge would close into a cycle, a
//! dependency order, strongly connected components and the cycles they hold.
//!
//! Graphs over indexes are given as `edges[i]`, the nodes `i` points at (for task graphs: the
//! tasks `i` depends on); indexes out of range are ignored. Every function here is linear in
//! nodes and edges (the dependency order adds a logarithm for its ties) and iterative, so a
//! chain of any length cannot overflow the stack.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use crate::ids::TaskId;

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

/// The nodes `0..deps.len()` in dependency order: each node after every node it depends on
/// (`deps[i]`); when several could come next, the lowest index first, so an acyclic graph
/// keeps its given order wherever the dependencies allow. Nodes on a cycle, and the nodes that
/// wait for them, cannot be ordered: they come last, in index order. Kahn's algorithm with a
/// heap of the ready nodes: O((n + e) log n).
pub fn topological_order<D: AsRef<[usize]>>(deps: &[D]) -> Vec<usize> {
    let n = deps.len();
    let mut waits_for = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d.as_ref() {
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

/// The strongly connected components of the graph (`edges[i]`: the nodes `i` points at): sets
/// of nodes that all reach one another. Each component's nodes are in ascending order; the
/// components are in the order of their lowest node. Tarjan's algorithm with an explicit stack:
/// linear in nodes and edges (plus sorting each component), no recursion.
pub fn strongly_connected<D: AsRef<[usize]>>(edges: &[D]) -> Vec<Vec<usize>> {
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
            if let Some(&w) = edges[v].as_ref().get(top.1) {
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
pub fn cycles<D: AsRef<[usize]>>(edges: &[D]) -> Vec<Vec<usize>> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let components = strongly_connected(edges);
    let mut component_of = vec![NONE; n];
    for (c, nodes) in components.iter().enumerate() {
        for &v in nodes {
            component_of[v] = c;
        }
    }
    let mut parent = vec![NONE; n];
    let mut found = Vec::new();
    for (c, nodes) in components.iter().enumerate() {
        let Some(&s) = nodes.first() else { continue };
        if nodes.len() == 1 && !edges[s].as_ref().contains(&s) {
            continue;
        }
        let mut queue = VecDeque::from([s]);
        'search: while let Some(u) = queue.pop_front() {
            for &v in edges[u].as_ref() {
                if v >= n || component_of[v] != c {
                    continue;
                }
                if v == s {
                    // Walk back from u to s, then close the cycle.
                    let mut path = vec![u];
                    let mut cur = u;
                    while cur != s {
                        match parent.get(cur) {
                            Some(&p) if p != NONE => cur = p,
                            _ => break,
                        }
                        path.push(cur);
                    }
                    path.reverse();
                    path.push(s);
                    found.push(path);
                    break 'search;
                }
                if parent[v] == NONE {
                    parent[v] = u;
                    queue.push_back(v);
                }
            }
        }
        for &v in nodes {
            parent[v] = NONE;
        }
    }
    found
}

#[cfg(test)]
mod tests {
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
        assert_eq!(topological_order::<Vec<usize>>(&[]), Vec::<usize>::new());
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
