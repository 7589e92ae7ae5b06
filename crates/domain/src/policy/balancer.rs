//! The load balancer: among the agents that can take a task now, the least loaded one.
//!
//! "Least loaded" is the lowest share of slots in use (`active / slots`), then the fewest active
//! attempts, then the name, so that the choice is deterministic for the same inputs.

use std::cmp::Ordering;

use crate::agent::Agent;
use crate::policy::matcher;

/// Orders agents from least to most loaded, ties broken by name.
pub fn by_load(a: &Agent, b: &Agent) -> Ordering {
    let share_a = u64::from(a.active) * u64::from(b.slots.get());
    let share_b = u64::from(b.active) * u64::from(a.slots.get());
    share_a
        .cmp(&share_b)
        .then(a.active.cmp(&b.active))
        .then_with(|| a.name.cmp(&b.name))
}

/// The least-loaded agent that can take a task with these `needs` now.
pub fn choose<'a>(
    agents: impl IntoIterator<Item = &'a Agent>,
    needs: matcher::Needs<'_>,
) -> Option<&'a Agent> {
    agents
        .into_iter()
        .filter(|a| matcher::can_take(a, needs))
        .min_by(|a, b| by_load(a, b))
}
