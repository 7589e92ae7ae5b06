//! The domain's error types: a value that does not parse, and a transition the lifecycle forbids.

use thiserror::Error;

/// A raw value was rejected by a value object's constructor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct ValueError {
    /// What kind of value it was meant to be ("agent name", "capability", ...).
    pub what: &'static str,
    /// The rejected input, as given.
    pub value: String,
    /// Why it was rejected, phrased so that it tells the user what a valid value looks like.
    pub reason: String,
}

impl ValueError {
    pub(crate) fn new(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// A command that the aggregate's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    /// The task lifecycle has no edge for this command from the current state.
    #[error("task {} is {from}; it cannot be {action}", task.short())]
    Task {
        task: crate::ids::TaskId,
        from: crate::task::TaskState,
        action: &'static str,
    },
    /// A result or heartbeat arrived from an attempt that is no longer the current one.
    #[error(
        "stale attempt on task {}: fencing token {presented} is not the current token {current}",
        task.short()
    )]
    StaleAttempt {
        task: crate::ids::TaskId,
        presented: u64,
        current: u64,
    },
    /// The agent's status does not allow this command.
    #[error("agent {agent} is {from}; it cannot be {action}")]
    Agent {
        agent: String,
        from: crate::agent::AgentStatus,
        action: &'static str,
    },
    /// The agent has no free slot or lacks a capability the task needs.
    #[error("agent {agent} cannot take this task: {reason}")]
    AgentUnfit { agent: String, reason: String },
    /// The agent still holds attempts, so it cannot be removed.
    #[error("agent {agent} still holds {active} running attempt(s)")]
    AgentBusy { agent: String, active: u32 },
    /// The orchestration's status does not allow this command.
    #[error("orchestration {} is {from}; it cannot be {action}", id.short())]
    Orchestration {
        id: crate::ids::OrchestrationId,
        from: crate::orchestration::OrchestrationStatus,
        action: &'static str,
    },
    /// The memory entry's state does not allow this command.
    #[error(
        "memory {} is {from}{}; it cannot be {action}",
        id.short(),
        if *pinned { " and pinned" } else { "" }
    )]
    Memory {
        id: crate::ids::MemoryId,
        from: crate::memory::MemoryState,
        pinned: bool,
        action: &'static str,
    },
}
