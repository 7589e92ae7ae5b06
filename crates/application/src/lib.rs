//! MAOS use cases: the commands and queries the outside world may run, the [`MaosApi`] trait
//! that every front end (the in-process CLI, the daemon) calls, and the ports ([`ports`]) that
//! adapters implement. Depends on the domain only.

pub mod api;
mod brief;
pub mod error;
mod leases;
mod locks;
pub mod metrics;
mod plan;
mod planning;
pub mod ports;
mod recovery;
mod report;
mod schedule;
pub mod service;
pub mod text;
pub mod verify;
mod waiting;
pub mod workspace;

pub use api::*;
pub use error::{
    AgentError, Denial, Entity, ErrorInfo, ErrorKind, Hints, MemoryError, NoWorktree,
    OrchestrationError, QueryError, Refusal, RemoteError, TaskError,
};
pub use ports::{
    AgentRuntime, AgentToolbox, AttemptLogs, Clock, IdSource, Launch, PlanProblem, PlanReader,
    ReadStore, Store, StoreError, ToolAnswer, ToolSpec, Transaction, UnitOfWork,
};
pub use recovery::FailurePolicy;
pub use service::{
    FOLLOW_BATCH, FORGET_REASON_MAX, MEMORY_PAGE_MAX, Reconciled, Service, ServiceConfig,
};
pub use workspace::{
    CommandPurpose, DetectedCommand, MergeOutcome, RepoSummary, Setup, SummaryLimits, Trailer,
    Workspace, WorkspaceError, Workspaces,
};
