//! Domain events: every state change of every aggregate, as one enum that the event log stores
//! and every live stream is made of.

use serde::{Deserialize, Serialize};

use crate::agent::AgentEvent;
use crate::ids::{AgentId, MemoryId, OrchestrationId, TaskId};
use crate::memory::MemoryEvent;
use crate::orchestration::OrchestrationEvent;
use crate::task::TaskEvent;
use crate::values::keyword_enum;

keyword_enum!(
    /// The kind of aggregate an event belongs to.
    AggregateKind, "aggregate" {
        Agent => "agent",
        Task => "task",
        Orchestration => "orchestration",
        Memory => "memory",
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
    Memory {
        id: MemoryId,
        event: MemoryEvent,
    },
}

impl DomainEvent {
    /// The event's name, such as `task.assigned`.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::Agent { event, .. } => event.kind(),
            DomainEvent::Task { event, .. } => event.kind(),
            DomainEvent::Orchestration { event, .. } => event.kind(),
            DomainEvent::Memory { event, .. } => event.kind(),
        }
    }

    /// Every event name [`DomainEvent::kind`] gives: agents', tasks', orchestrations', then
    /// memory entries'.
    pub fn kinds() -> impl Iterator<Item = &'static str> {
        AgentEvent::KINDS
            .iter()
            .chain(TaskEvent::KINDS)
            .chain(OrchestrationEvent::KINDS)
            .chain(MemoryEvent::KINDS)
            .copied()
    }

    /// The kind of aggregate.
    pub fn aggregate_kind(&self) -> AggregateKind {
        match self {
            DomainEvent::Agent { .. } => AggregateKind::Agent,
            DomainEvent::Task { .. } => AggregateKind::Task,
            DomainEvent::Orchestration { .. } => AggregateKind::Orchestration,
            DomainEvent::Memory { .. } => AggregateKind::Memory,
        }
    }

    /// The aggregate's id, as text.
    pub fn aggregate_id(&self) -> String {
        match self {
            DomainEvent::Agent { id, .. } => id.to_string(),
            DomainEvent::Task { id, .. } => id.to_string(),
            DomainEvent::Orchestration { id, .. } => id.to_string(),
            DomainEvent::Memory { id, .. } => id.to_string(),
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

    /// Wraps memory events.
    pub fn memories(id: MemoryId, events: Vec<MemoryEvent>) -> impl Iterator<Item = DomainEvent> {
        events
            .into_iter()
            .map(move |event| DomainEvent::Memory { id, event })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::agent::AgentSpec;
    use crate::briefing::Briefing;
    use crate::reasons::BlockReason;
    use crate::run::RunReport;
    use crate::settings::AgentSettings;
    use crate::task::{Gate, TaskSpec, TaskWorkspace};
    use crate::values::{
        AdapterKind, AgentName, CapabilitySet, FencingToken, MaxAttempts, Priority, Risk, Slots,
        Tier, Timestamp, Title,
    };

    /// The number of `TaskEvent` variants. The match in [`task_variant`] is exhaustive, so a new
    /// variant does not compile until it is numbered there, this is raised, and it has a sample.
    const TASK_VARIANTS: usize = 29;
    const AGENT_VARIANTS: usize = 6;
    const ORCHESTRATION_VARIANTS: usize = 14;
    const MEMORY_VARIANTS: usize = 5;

    fn memory_variant(e: &MemoryEvent) -> usize {
        match e {
            MemoryEvent::Added { .. } => 0,
            MemoryEvent::Pinned => 1,
            MemoryEvent::Unpinned => 2,
            MemoryEvent::Forgotten { .. } => 3,
            MemoryEvent::Expired => 4,
        }
    }

    fn memory_events() -> Vec<MemoryEvent> {
        use crate::memory::{MemoryScope, MemorySpec, MemoryText, MemoryTier, Provenance, Tags};
        vec![
            MemoryEvent::Added {
                spec: Box::new(MemorySpec {
                    tier: MemoryTier::Routine,
                    scope: MemoryScope::Global,
                    text: MemoryText::parse("t").unwrap(),
                    tags: Tags::empty(),
                    provenance: Provenance::Person,
                }),
                expires_at: None,
            },
            MemoryEvent::Pinned,
            MemoryEvent::Unpinned,
            MemoryEvent::Forgotten { reason: None },
            MemoryEvent::Expired,
        ]
    }

    fn task_variant(e: &TaskEvent) -> usize {
        match e {
            TaskEvent::Created { .. } => 0,
            TaskEvent::Ready => 1,
            TaskEvent::DependencyAdded { .. } => 2,
            TaskEvent::Assigned { .. } => 3,
            TaskEvent::AttemptStarted { .. } => 4,
            TaskEvent::WorkspacePrepared { .. } => 5,
            TaskEvent::SessionRecorded { .. } => 6,
            TaskEvent::Briefed { .. } => 7,
            TaskEvent::LeaseRenewed { .. } => 8,
            TaskEvent::AttemptSucceeded { .. } => 9,
            TaskEvent::AttemptFailed { .. } => 10,
            TaskEvent::AttemptInterrupted { .. } => 11,
            TaskEvent::VerificationFailed { .. } => 12,
            TaskEvent::ApprovalRequested { .. } => 13,
            TaskEvent::ApprovalGranted { .. } => 14,
            TaskEvent::ApprovalRejected { .. } => 15,
            TaskEvent::Integrated { .. } => 16,
            TaskEvent::IntegrationConflict { .. } => 17,
            TaskEvent::IntegrationFailed { .. } => 18,
            TaskEvent::RolledBack { .. } => 19,
            TaskEvent::WorkspaceRemoved => 20,
            TaskEvent::Completed => 21,
            TaskEvent::RetryScheduled { .. } => 22,
            TaskEvent::Escalated => 23,
            TaskEvent::RetryRequested { .. } => 24,
            TaskEvent::Blocked { .. } => 25,
            TaskEvent::Cancelled { .. } => 26,
            TaskEvent::ProgressReported { .. } => 27,
            TaskEvent::SubtasksCreated { .. } => 28,
        }
    }

    fn agent_variant(e: &AgentEvent) -> usize {
        match e {
            AgentEvent::Registered { .. } => 0,
            AgentEvent::SlotClaimed { .. } => 1,
            AgentEvent::SlotReleased { .. } => 2,
            AgentEvent::Drained { .. } => 3,
            AgentEvent::Resumed => 4,
            AgentEvent::Removed => 5,
        }
    }

    fn orchestration_variant(e: &OrchestrationEvent) -> usize {
        match e {
            OrchestrationEvent::Created { .. } => 0,
            OrchestrationEvent::Merged { .. } => 1,
            OrchestrationEvent::PlanApprovalRequested => 2,
            OrchestrationEvent::PlanningStarted { .. } => 3,
            OrchestrationEvent::PlanProposed { .. } => 4,
            OrchestrationEvent::PlanningFailed { .. } => 5,
            OrchestrationEvent::PlanApproved { .. } => 6,
            OrchestrationEvent::PlanRejected { .. } => 7,
            OrchestrationEvent::Started => 8,
            OrchestrationEvent::Paused => 9,
            OrchestrationEvent::Resumed => 10,
            OrchestrationEvent::Completed => 11,
            OrchestrationEvent::Failed { .. } => 12,
            OrchestrationEvent::Cancelled { .. } => 13,
        }
    }

    fn task_events() -> Vec<TaskEvent> {
        let at = Timestamp::from_millis(1);
        let text = |s: &str| s.to_owned();
        let spec = TaskSpec {
            title: Title::parse("a task").unwrap(),
            prompt: text("do it"),
            capabilities: CapabilitySet::empty(),
            priority: Priority::Normal,
            risk: Risk::Low,
            tier: None,
            depends_on: BTreeSet::new(),
            orchestration: None,
            max_attempts: MaxAttempts::default(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: None,
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: None,
            parent: None,
            lessons: false,
        };
        vec![
            TaskEvent::Created {
                spec: Box::new(spec),
            },
            TaskEvent::Ready,
            TaskEvent::DependencyAdded {
                on: TaskId::from_bits(1),
                satisfied: false,
            },
            TaskEvent::Assigned {
                attempt: 1,
                agent: AgentName::parse("a").unwrap(),
                fencing: FencingToken::new(1),
                lease_expires_at: at,
            },
            TaskEvent::AttemptStarted {
                attempt: 1,
                pid: None,
                checkpoint: None,
                port: None,
            },
            TaskEvent::WorkspacePrepared {
                workspace: TaskWorkspace {
                    repo: text("r"),
                    path: text("p"),
                    branch: text("b"),
                    base: text("c"),
                    removed: false,
                },
            },
            TaskEvent::SessionRecorded {
                attempt: 1,
                session: text("s"),
            },
            TaskEvent::Briefed {
                attempt: 1,
                briefing: Briefing {
                    text: text("t"),
                    tokens: 1,
                    cut: Vec::new(),
                },
            },
            TaskEvent::LeaseRenewed {
                attempt: 1,
                lease_expires_at: at,
            },
            TaskEvent::AttemptSucceeded {
                attempt: 1,
                summary: None,
                report: RunReport::default(),
            },
            TaskEvent::AttemptFailed {
                attempt: 1,
                error: text("e"),
                report: RunReport::default(),
            },
            TaskEvent::AttemptInterrupted {
                attempt: 1,
                reason: text("r"),
                refunded: false,
            },
            TaskEvent::VerificationFailed { output: text("o") },
            TaskEvent::ApprovalRequested {
                gate: Gate::Result,
                attempt: None,
                tool: None,
                subject: None,
            },
            TaskEvent::ApprovalGranted { gate: Gate::Run },
            TaskEvent::ApprovalRejected {
                reason: text("r"),
                gate: Gate::Result,
            },
            TaskEvent::Integrated {
                into: text("i"),
                commit: text("c"),
            },
            TaskEvent::IntegrationConflict {
                into: text("i"),
                paths: Vec::new(),
            },
            TaskEvent::IntegrationFailed {
                into: text("i"),
                reason: text("r"),
            },
            TaskEvent::RolledBack {
                to_attempt: 1,
                commit: text("c"),
            },
            TaskEvent::WorkspaceRemoved,
            TaskEvent::Completed,
            TaskEvent::RetryScheduled { at: None },
            TaskEvent::Escalated,
            TaskEvent::RetryRequested { granted: 1 },
            TaskEvent::Blocked {
                reason: BlockReason::RejectedBeforeRun,
            },
            TaskEvent::Cancelled { reason: text("r") },
            TaskEvent::ProgressReported {
                attempt: 1,
                note: crate::ProgressNote::parse("halfway").unwrap(),
            },
            TaskEvent::SubtasksCreated {
                attempt: 1,
                tasks: vec![TaskId::from_bits(2)],
                waits: true,
            },
        ]
    }

    fn agent_events() -> Vec<AgentEvent> {
        let spec = AgentSpec {
            name: AgentName::parse("a").unwrap(),
            adapter: AdapterKind::Sim,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::default(),
            command: None,
            settings: AgentSettings::default(),
        };
        let task = TaskId::from_bits(1);
        vec![
            AgentEvent::Registered {
                spec: Box::new(spec),
            },
            AgentEvent::SlotClaimed { task, attempt: 1 },
            AgentEvent::SlotReleased {
                task,
                attempt: 1,
                failed: None,
            },
            AgentEvent::Drained { reason: None },
            AgentEvent::Resumed,
            AgentEvent::Removed,
        ]
    }

    fn orchestration_events() -> Vec<OrchestrationEvent> {
        vec![
            OrchestrationEvent::Created {
                name: Title::parse("o").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
                planned: false,
            },
            OrchestrationEvent::Merged {
                into: "main".into(),
                commit: "c".into(),
            },
            OrchestrationEvent::PlanApprovalRequested,
            OrchestrationEvent::PlanningStarted {
                planning: crate::orchestration::Planning {
                    task: TaskId::from_bits(3),
                    max_tasks: 30,
                    discussion: None,
                },
            },
            OrchestrationEvent::PlanProposed {
                version: Box::new(crate::plan::PlanVersion {
                    number: 1,
                    plan: crate::plan::Plan {
                        goal: "g".into(),
                        name: None,
                        notes: Vec::new(),
                        verify: None,
                        tasks: Vec::new(),
                    },
                    origin: crate::plan::PlanOrigin::Person,
                    rationale: None,
                    proposed_at: Timestamp::from_millis(1),
                }),
            },
            OrchestrationEvent::PlanningFailed {
                task: TaskId::from_bits(3),
                text: None,
                problems: vec!["p".into()],
            },
            OrchestrationEvent::PlanApproved {
                version: 1,
                by: crate::orchestration::PlanApprover::Person,
                tasks: Default::default(),
                superseded: Vec::new(),
            },
            OrchestrationEvent::PlanRejected {
                version: 1,
                reason: None,
            },
            OrchestrationEvent::Started,
            OrchestrationEvent::Paused,
            OrchestrationEvent::Resumed,
            OrchestrationEvent::Completed,
            OrchestrationEvent::Failed { reason: "r".into() },
            OrchestrationEvent::Cancelled { reason: "r".into() },
        ]
    }

    /// `samples` hold one event of each of `variants` variants (numbered by `variant`), and
    /// `kinds` is exactly their names, each once.
    fn check<E: std::fmt::Debug>(
        samples: &[E],
        variants: usize,
        variant: impl Fn(&E) -> usize,
        kind: impl Fn(&E) -> &'static str,
        kinds: &[&str],
    ) {
        let numbered: BTreeSet<usize> = samples.iter().map(&variant).collect();
        assert_eq!(
            numbered,
            (0..variants).collect(),
            "a sample of every variant, once"
        );
        assert_eq!(samples.len(), variants);
        for e in samples {
            assert!(
                kinds.contains(&kind(e)),
                "{} is not in KINDS ({e:?})",
                kind(e)
            );
        }
        let named: BTreeSet<&str> = samples.iter().map(&kind).collect();
        assert_eq!(named.len(), variants, "each variant has a name of its own");
        assert_eq!(kinds.len(), variants, "KINDS names nothing else: {kinds:?}");
    }

    #[test]
    fn kinds_lists_the_name_of_every_variant_and_nothing_else() {
        check(
            &task_events(),
            TASK_VARIANTS,
            task_variant,
            TaskEvent::kind,
            TaskEvent::KINDS,
        );
        check(
            &agent_events(),
            AGENT_VARIANTS,
            agent_variant,
            AgentEvent::kind,
            AgentEvent::KINDS,
        );
        check(
            &orchestration_events(),
            ORCHESTRATION_VARIANTS,
            orchestration_variant,
            OrchestrationEvent::kind,
            OrchestrationEvent::KINDS,
        );
        check(
            &memory_events(),
            MEMORY_VARIANTS,
            memory_variant,
            MemoryEvent::kind,
            MemoryEvent::KINDS,
        );
        let all: Vec<&str> = DomainEvent::kinds().collect();
        assert_eq!(
            all.len(),
            TASK_VARIANTS + AGENT_VARIANTS + ORCHESTRATION_VARIANTS + MEMORY_VARIANTS
        );
        for k in &all {
            let (aggregate, _) = k.split_once('.').unwrap();
            assert!(AggregateKind::parse(aggregate).is_ok(), "{k}");
        }
    }
}
