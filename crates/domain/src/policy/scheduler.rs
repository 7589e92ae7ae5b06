//! The scheduler: which ready task goes next (highest priority, then oldest, then id), with
//! dependencies respected, and a greedy plan that pairs ready tasks with agents. The store's
//! ready queue breaks the last tie by creation order instead (a number the domain does not
//! see); these functions are the model the property tests check the rest of the order against.

use std::cmp::Ordering;

use crate::agent::Agent;
use crate::ids::TaskId;
use crate::policy::balancer;
use crate::task::{Task, TaskState};
use crate::values::AgentName;

/// Orders tasks from first to last served: priority (urgent first), then age, then id.
pub fn by_urgency(a: &Task, b: &Task) -> Ordering {
    b.spec
        .priority
        .cmp(&a.spec.priority)
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// True when the task can be scheduled: it is `ready` and each of its dependencies is completed.
pub fn is_schedulable(task: &Task, is_completed: &impl Fn(TaskId) -> bool) -> bool {
    task.state == TaskState::Ready && task.spec.depends_on.iter().all(|d| is_completed(*d))
}

/// The next task to serve, if any is schedulable.
pub fn next<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    is_completed: impl Fn(TaskId) -> bool,
) -> Option<&'a Task> {
    tasks
        .into_iter()
        .filter(|t| is_schedulable(t, &is_completed))
        .min_by(|a, b| by_urgency(a, b))
}

/// Pairs schedulable tasks with agents, most urgent task first, each to the least-loaded agent
/// that can take it at that point (counting the slots already handed out in this plan).
pub fn plan(
    tasks: &[Task],
    agents: &[Agent],
    is_completed: impl Fn(TaskId) -> bool,
) -> Vec<(TaskId, AgentName)> {
    let mut order: Vec<&Task> = tasks
        .iter()
        .filter(|t| is_schedulable(t, &is_completed))
        .collect();
    order.sort_by(|a, b| by_urgency(a, b));
    let mut pool: Vec<Agent> = agents.to_vec();
    let mut out = Vec::new();
    for task in order {
        let Some(agent) = balancer::choose(pool.iter(), task.spec.needs()) else {
            continue;
        };
        let name = agent.name.clone();
        if let Some(a) = pool.iter_mut().find(|a| a.name == name) {
            // Count the slot as taken for the rest of the plan.
            let _ = a.claim_slot(task.id, task.attempts_used() + 1, task.updated_at);
        }
        out.push((task.id, name));
    }
    out
}
