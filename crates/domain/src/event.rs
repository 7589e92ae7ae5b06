//! Domain events: every state change of every aggregate, as one enum that the event log stores
//! and every live stream is made of.

use serde::{Deserialize, Serialize};

use crate::agent::AgentEvent;
use crate::ids::{AgentId, OrchestrationId, TaskId};
use crate::orchestration::OrchestrationEvent;
use crate::task::TaskEvent;
use crate::values::keyword_enum;

keyword_enum!(
    /// The kind of aggregate an event belongs to.
    AggregateKind, "aggregate" {
        Agent => "agent",
        Task => "task",
        Orchestration => "orchestration",
    }
);

/// An event together with the aggregate it happened to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "aggregate", rename_all = "snake_case")]
pub enum DomainEvent {
    Agent {
        id: AgentId,
        event: AgentEvent,
    },
    Task {
        id: TaskId,
        event: TaskEvent,
    },
    Orchestration {
        id: OrchestrationId,
        event: OrchestrationEvent,
    },
}

impl DomainEvent {
    /// The event's name, such as `task.assigned`.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::Agent { event, .. } => event.kind(),
            DomainEvent::Task { event, .. } => event.kind(),
            DomainEvent::Orchestration { event, .. } => event.kind(),
        }
    }

    /// The kind of aggregate.
    pub fn aggregate_kind(&self) -> AggregateKind {
        match self {
            DomainEvent::Agent { .. } => AggregateKind::Agent,
            DomainEvent::Task { .. } => AggregateKind::Task,
            DomainEvent::Orchestration { .. } => AggregateKind::Orchestration,
        }
    }

    /// The aggregate's id, as text.
    pub fn aggregate_id(&self) -> String {
        match self {
            DomainEvent::Agent { id, .. } => id.to_string(),
            DomainEvent::Task { id, .. } => id.to_string(),
            DomainEvent::Orchestration { id, .. } => id.to_string(),
        }
    }

    /// Wraps agent events.
    pub fn agents(id: AgentId, events: Vec<AgentEvent>) -> impl Iterator<Item = DomainEvent> {
        events
            .into_iter()
            .map(move |event| DomainEvent::Agent { id, event })
    }

    /// Wraps task events.
    pub fn tasks(id: TaskId, events: Vec<TaskEvent>) -> impl Iterator<Item = DomainEvent> {
        events
            .into_iter()
            .map(move |event| DomainEvent::Task { id, event })
    }

    /// Wraps orchestration events.
    pub fn orchestrations(
        id: OrchestrationId,
        events: Vec<OrchestrationEvent>,
    ) -> impl Iterator<Item = DomainEvent> {
        events
            .into_iter()
            .map(move |event| DomainEvent::Orchestration { id, event })
    }
}
