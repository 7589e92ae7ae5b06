//! The MAOS domain: agents, tasks with their attempts, orchestrations, the events they emit and
//! the pure policies (capability matching, scheduling, load balancing) that decide who does what.
//!
//! Nothing here performs I/O, reads a clock or draws a random number: time and identifiers come
//! in as values, so every rule is a deterministic function that can be tested exhaustively.

pub mod agent;
pub mod briefing;
pub mod error;
pub mod event;
pub mod graph;
pub mod ids;
pub mod lesson;
pub mod memory;
pub mod orchestration;
pub mod plan;
pub mod plan_key;
pub mod policy;
pub mod reasons;
pub mod run;
pub mod settings;
pub mod task;
pub mod values;
pub mod workflow;

pub use agent::{Agent, AgentEvent, AgentStatus};
pub use error::{TransitionError, ValueError};
pub use event::{AggregateKind, DomainEvent};
pub use ids::{AgentId, MemoryId, OrchestrationId, TaskId};
pub use memory::{
    Memory, MemoryData, MemoryEvent, MemoryQuery, MemoryScope, MemorySpec, MemoryState, MemoryText,
    MemoryTier, Provenance, RepoPath, Tag, Tags,
};
pub use orchestration::{
    Orchestration, OrchestrationEvent, OrchestrationSpec, OrchestrationStatus,
};
pub use plan::{
    AtWork, Plan, PlanDiff, PlanOrigin, PlanRuleBroken, PlanVersion, PlannedTask, Revision,
    RevisionProblem,
};
pub use plan_key::{PlanKey, PlanKeyError};
pub use reasons::{BlockReason, NextStep, WaitKind, WaitReason};
pub use run::{Exit, FailureKind, RunReport, Usage, Usd, Verification};
pub use settings::{AgentSettings, EnvName, Price, PromptVia, ResourceLimits};
pub use task::{
    ApprovalDecision, Attempt, AttemptOutcome, AttemptStart, Gate, Integration, MAX_SUBTASK_DEPTH,
    MAX_SUBTASKS, ParentLink, PendingApproval, Subtask, Task, TaskEvent, TaskSpec, TaskState,
    TaskWorkspace, WorkspaceSpec,
};
pub use values::{
    AdapterKind, AgentName, Capability, CapabilitySet, DurationMs, FencingToken, IdempotencyKey,
    MaxAttempts, Priority, ProgressNote, Risk, Slots, Tier, Timestamp, Title,
};
