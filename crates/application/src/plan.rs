//! The service's own check of a plan before anything of it is created (`create_plan`): keys that
//! are well formed and unique, dependencies on keys of the plan, no cycle. Clients check their
//! files first (with positions); this guards every client, in time linear in the plan's tasks
//! and dependencies.

use std::collections::HashMap;

use maos_domain::{PlanKey, graph};

use crate::api::PlanTask;
use crate::error::OrchestrationError;

/// The dependencies of each task of `tasks`, as indexes into `tasks`, once the plan is sound.
pub(crate) fn check(tasks: &[PlanTask]) -> Result<Vec<Vec<usize>>, OrchestrationError> {
    let refuse = |why: String| Err(OrchestrationError::Refused(why));
    if tasks.is_empty() {
        return refuse("the plan has no tasks; give it at least one".into());
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        if PlanKey::parse(&t.key).is_err() {
            return refuse(format!(
                "the plan's task id {:?} is not valid: 1 to 64 lowercase letters, digits, '-' \
                 and '_', starting with a letter or digit",
                t.key
            ));
        }
        if index.insert(t.key.as_str(), i).is_some() {
            return refuse(format!("the plan has two tasks with id {:?}", t.key));
        }
    }
    let mut deps = Vec::with_capacity(tasks.len());
    for t in tasks {
        let mut mine = Vec::with_capacity(t.depends_on.len());
        let mut seen = std::collections::HashSet::with_capacity(t.depends_on.len());
        for d in &t.depends_on {
            match index.get(d.as_str()) {
                Some(&j) => {
                    if seen.insert(j) {
                        mine.push(j);
                    }
                }
                None => {
                    return refuse(format!(
                        "task {:?} depends on {d:?}, which the plan does not have",
                        t.key
                    ));
                }
            }
        }
        deps.push(mine);
    }
    if let Some(cycle) = graph::cycles(&deps).into_iter().next() {
        let keys: Vec<&str> = cycle.iter().map(|&i| tasks[i].key.as_str()).collect();
        return refuse(format!(
            "the plan's dependencies form a cycle: {}",
            keys.join(" -> ")
        ));
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use maos_domain::Title;

    use super::*;
    use crate::api::CreateTask;

    fn task(key: &str, deps: &[&str]) -> PlanTask {
        PlanTask {
            key: key.into(),
            task: CreateTask::titled(
                Title::parse(key).unwrap_or_else(|_| Title::parse("t").unwrap()),
            ),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn refusal(tasks: &[PlanTask]) -> String {
        match check(tasks) {
            Err(e) => e.to_string(),
            Ok(d) => panic!("accepted: {d:?}"),
        }
    }

    #[test]
    fn a_sound_plan_gives_each_task_its_dependencies() {
        let deps = check(&[
            task("a", &[]),
            task("b", &["a"]),
            task("c", &["a", "b", "a"]),
        ]);
        assert_eq!(deps.unwrap(), vec![vec![], vec![0], vec![0, 1]]);
    }

    #[test]
    fn empty_plans_bad_and_duplicate_keys_and_unknown_dependencies_are_refused() {
        assert!(refusal(&[]).contains("no tasks"));
        assert!(refusal(&[task("", &[])]).contains("not valid"));
        assert!(refusal(&[task("Big", &[])]).contains("not valid"));
        assert!(refusal(&[task("a", &[]), task("a", &[])]).contains("two tasks with id \"a\""));
        assert!(refusal(&[task("a", &["z"])]).contains("depends on \"z\""));
    }

    #[test]
    fn a_cycle_is_refused_and_printed() {
        let text = refusal(&[task("a", &["c"]), task("b", &["a"]), task("c", &["b"])]);
        assert!(text.contains("a -> c -> b -> a"), "{text}");
        let text = refusal(&[task("a", &["a"])]);
        assert!(text.contains("a -> a"), "{text}");
    }

    #[test]
    fn a_long_chain_is_checked_without_recursion() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("t{i}")).collect();
        let tasks: Vec<PlanTask> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let deps: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![keys[i - 1].as_str()]
                };
                task(k, &deps)
            })
            .collect();
        assert_eq!(check(&tasks).unwrap().len(), 20_000);
    }
}
