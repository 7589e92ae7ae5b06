//! Dependency graphs between tasks: finding the path that a new edge would close into a cycle.

use std::collections::{BTreeSet, VecDeque};

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
    let mut seen = BTreeSet::from([from]);
    let mut parent: Vec<(TaskId, TaskId)> = Vec::new();
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        for next in depends_on(node)? {
            if !seen.insert(next) {
                continue;
            }
            parent.push((next, node));
            if next == to {
                let mut path = vec![to];
                let mut cur = to;
                while cur != from {
                    let Some((_, p)) = parent.iter().find(|(c, _)| *c == cur) else {
                        break;
                    };
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
}
