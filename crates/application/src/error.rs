//! Errors of the use cases, one enum per family (agents, tasks, orchestrations, queries), each
//! able to say what kind of failure it is (for exit codes and wire errors) and carrying the facts
//! a front end needs to say what to do about it (the hints are written in presentation, ADR 0015).

use maos_domain::policy::concerns::Concern;
use maos_domain::{
    OrchestrationId, OrchestrationStatus, TaskId, TaskState, TransitionError, ValueError,
};
use thiserror::Error;

use crate::ports::StoreError;

/// The kind of a failure, as front ends need it: the CLI maps each to an exit code, the daemon
/// sends it over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed or ambiguous.
    InvalidInput,
    /// Something named does not exist.
    NotFound,
    /// The request contradicts stored state: a duplicate, an illegal transition, a stale attempt.
    Conflict,
    /// The store failed or holds something that is not MAOS data.
    Storage,
    /// The daemon cannot be reached, is shutting down, or speaks another protocol version.
    Unavailable,
    /// A bug: something could not be encoded or decoded between a client and the daemon.
    Internal,
    /// The caller may not do this: an agent's credential that is unknown or whose attempt is no
    /// longer current, or a call beyond what the credential allows.
    Denied,
}

impl ErrorKind {
    /// The stable lowercase name used in JSON and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Storage => "storage",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::Denied => "denied",
        }
    }
}

/// What a front end needs to know about an error besides its message and its facts.
pub trait ErrorInfo: std::error::Error {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
}

/// How a front end says what to do about an error: the hint for any error of the application
/// (or none). The daemon's composition hands the CLI's to the IPC server, so that an error sent
/// over the wire carries the same hint as one met in process.
pub type Hints = fn(&(dyn std::error::Error + 'static)) -> Option<String>;

/// An error as it came back from the other side of a connection (the daemon), or the failure to
/// reach it at all: its kind, message and the hint the other side's front end gave it, without
/// the typed detail of the original error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl RemoteError {
    /// An error of this kind with this message and no hint.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What a front end would report for `e`: its kind, message, and the hint `hints` gives it.
    pub fn from_error<E: ErrorInfo + 'static>(e: &E, hints: Hints) -> Self {
        RemoteError {
            kind: e.kind(),
            message: e.to_string(),
            hint: hints(e),
        }
    }
}

impl ErrorInfo for RemoteError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Errors of agent commands.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("an agent with adapter `command` needs the program to run")]
    MissingCommand,
    #[error("no agent named {name:?}")]
    NotFound { name: String },
    #[error("an agent named {name:?} is already registered")]
    AlreadyExists { name: String },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for AgentError {
    fn kind(&self) -> ErrorKind {
        match self {
            AgentError::Invalid(_) | AgentError::MissingCommand => ErrorKind::InvalidInput,
            AgentError::NotFound { .. } => ErrorKind::NotFound,
            AgentError::AlreadyExists { .. } | AgentError::Transition(_) => ErrorKind::Conflict,
            AgentError::Store(_) => ErrorKind::Storage,
            AgentError::Remote(e) => e.kind(),
        }
    }
}

/// Errors of task commands.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("no task with id {reference:?}")]
    NotFound { reference: String },
    #[error("the id prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("dependency {reference:?} does not exist")]
    DependencyNotFound { reference: String },
    #[error("that dependency would close a cycle: {}", cycle.join(" -> "))]
    DependencyCycle { cycle: Vec<String> },
    /// A page of no items was asked for (a limit of 0).
    #[error("a limit of 0 asks for nothing: a page holds 1 to {max} items")]
    ZeroLimit { max: usize },
    #[error("no orchestration with id {reference:?}")]
    OrchestrationNotFound { reference: String },
    #[error("no agent named {name:?}")]
    AgentNotFound { name: String },
    #[error("no available agent can take task {task} now (it needs capabilities [{needs}]{tier})")]
    NoCapableAgent {
        task: String,
        needs: String,
        tier: String,
    },
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error("task {task} has no worktree{because}")]
    NoWorkspace { task: String, because: NoWorktree },
    /// The state of something else forbids it: a concern another task holds, an orchestration
    /// that does not run, a dependency that did not complete.
    #[error("{0}")]
    Refused(Box<Refusal>),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// An agent's credential was refused.
    #[error("{0}")]
    Denied(Denial),
}

/// Why an agent's credential was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No running attempt holds it (it was never given, or its attempt ended).
    UnknownCredential,
    /// It was given to attempt `attempt` of `task`, which is no longer the task's running one.
    StaleAttempt { task: TaskId, attempt: u32 },
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::UnknownCredential => {
                f.write_str("the agent credential is not one a running attempt holds")
            }
            Denial::StaleAttempt { task, attempt } => write!(
                f,
                "the agent credential belongs to attempt {attempt} of task {}, which no longer runs",
                task.short()
            ),
        }
    }
}

impl ErrorInfo for TaskError {
    fn kind(&self) -> ErrorKind {
        match self {
            TaskError::Invalid(_) | TaskError::Ambiguous { .. } | TaskError::ZeroLimit { .. } => {
                ErrorKind::InvalidInput
            }
            TaskError::NotFound { .. }
            | TaskError::DependencyNotFound { .. }
            | TaskError::OrchestrationNotFound { .. }
            | TaskError::AgentNotFound { .. } => ErrorKind::NotFound,
            TaskError::DependencyCycle { .. }
            | TaskError::NoCapableAgent { .. }
            | TaskError::Transition(_)
            | TaskError::Refused { .. }
            | TaskError::NoWorkspace { .. } => ErrorKind::Conflict,
            TaskError::Workspace(e) => workspace_kind(e),
            TaskError::Store(_) => ErrorKind::Storage,
            TaskError::Remote(e) => e.kind(),
            TaskError::Denied(_) => ErrorKind::Denied,
        }
    }
}

/// The kind of a workspace error: the user's repository refused (conflict), or git failed.
fn workspace_kind(e: &crate::workspace::WorkspaceError) -> ErrorKind {
    use crate::workspace::WorkspaceError as W;
    match e {
        W::NotARepository { .. } | W::UnknownBase { .. } => ErrorKind::InvalidInput,
        W::Dirty { .. } | W::DetachedHead { .. } | W::Locked { .. } | W::Unsafe { .. } => {
            ErrorKind::Conflict
        }
        W::Setup { .. } | W::Git { .. } | W::NoGit(_) => ErrorKind::Storage,
    }
}

/// Errors of orchestration commands.
#[derive(Debug, Error)]
pub enum OrchestrationError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    /// A plan that cannot be created as it is (the checker's words).
    #[error("{0}")]
    Refused(String),
    #[error("orchestration {orchestration} has no repository to integrate its work into")]
    NoRepository { orchestration: String },
    #[error("orchestration {orchestration} names no base branch to merge into")]
    NoMergeTarget { orchestration: String },
    #[error(
        "orchestration {orchestration} has nothing to merge yet: no task's work was accepted, so \
         its branch {branch} does not exist"
    )]
    NothingToMerge {
        orchestration: String,
        branch: String,
    },
    #[error("merging {branch} into {into} conflicts in {}; nothing was changed", paths.join(", "))]
    MergeConflict {
        branch: String,
        into: String,
        paths: Vec<String>,
    },
    /// A plan's text with problems (every one, placed in the text).
    #[error("the plan has {} problem{}: {}", problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    PlanProblems {
        problems: Vec<crate::ports::PlanProblem>,
    },
    /// No registered agent can plan: none offers `plan` at the strategic tier (or the one
    /// named does not exist).
    #[error("no agent can plan: {}", match planner { Some(p) => format!("no agent is named {p}"), None => "no strategic agent offers the capability plan".to_owned() })]
    NoPlanner { planner: Option<String> },
    /// The orchestration has no plan (version) to act on.
    #[error("orchestration {orchestration} has no plan{}", match version { Some(v) => format!(" version {v}"), None => String::new() })]
    NoPlan {
        orchestration: String,
        version: Option<u32>,
    },
    /// A version that is not the newest was named for approval.
    #[error(
        "version {version} of orchestration {orchestration}'s plan is not its newest ({newest})"
    )]
    NotNewest {
        orchestration: String,
        version: u32,
        newest: u32,
    },
    /// This MAOS was built without a plan reader (never in the `maos` binary).
    #[error("this service cannot read plans")]
    NoPlanReader,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for OrchestrationError {
    fn kind(&self) -> ErrorKind {
        match self {
            OrchestrationError::Invalid(_) => ErrorKind::InvalidInput,
            OrchestrationError::Query(e) => e.kind(),
            OrchestrationError::Task(e) => e.kind(),
            OrchestrationError::Workspace(e) => workspace_kind(e),
            // A choice the command needs and nobody made: a usage error.
            OrchestrationError::NoMergeTarget { .. } | OrchestrationError::PlanProblems { .. } => {
                ErrorKind::InvalidInput
            }
            OrchestrationError::NoPlanner { .. } | OrchestrationError::NoPlan { .. } => {
                ErrorKind::NotFound
            }
            OrchestrationError::NoPlanReader | OrchestrationError::NotNewest { .. } => {
                ErrorKind::Conflict
            }
            OrchestrationError::Refused(_)
            | OrchestrationError::NoRepository { .. }
            | OrchestrationError::NothingToMerge { .. }
            | OrchestrationError::MergeConflict { .. } => ErrorKind::Conflict,
            OrchestrationError::Transition(_) => ErrorKind::Conflict,
            OrchestrationError::Store(_) => ErrorKind::Storage,
            OrchestrationError::Remote(e) => e.kind(),
        }
    }
}

fn no_attempt(task: &str, attempt: Option<u32>, made: u32) -> String {
    match (attempt, made) {
        (_, 0) => format!("task {task} has no attempts yet"),
        (Some(n), 1) => format!("task {task} has no attempt {n}: it has made one"),
        (Some(n), made) => format!("task {task} has no attempt {n}: it has made {made}"),
        (None, _) => format!("task {task} has no such attempt"),
    }
}

/// Why the state of something else forbids a task command, with the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its orchestration is `status` and takes no more tasks.
    OrchestrationClosed {
        orchestration: OrchestrationId,
        status: OrchestrationStatus,
    },
    /// Task `task` belongs to `orchestration`, which is `status`: its tasks get no agent.
    OrchestrationNotRunning {
        task: TaskId,
        orchestration: OrchestrationId,
        status: OrchestrationStatus,
    },
    /// Task `task` has spent its budget.
    BudgetSpent { task: TaskId },
    /// Task `task`'s concern `mine` overlaps `theirs`, held by `holder` until its work is
    /// accepted.
    ConcernHeld {
        task: TaskId,
        mine: Concern,
        theirs: Concern,
        holder: TaskId,
    },
    /// Task `task` depends on `dependency`, which is `state`: it would run without its work.
    DependencyNotCompleted {
        task: TaskId,
        dependency: TaskId,
        state: TaskState,
    },
    /// The agent of `task` asked for subtasks that cannot be made: `why` (the plan check's
    /// words, or a limit).
    Subtasks { task: TaskId, why: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OrchestrationClosed {
                orchestration,
                status,
            } => write!(
                f,
                "orchestration {} is {status}: it takes no more tasks",
                orchestration.short()
            ),
            Refusal::OrchestrationNotRunning {
                task,
                orchestration,
                status,
            } => write!(
                f,
                "task {} belongs to orchestration {}, which is {status}: its tasks get no agent",
                task.short(),
                orchestration.short()
            ),
            Refusal::BudgetSpent { task } => {
                write!(f, "task {} has spent its budget", task.short())
            }
            Refusal::ConcernHeld {
                task,
                mine,
                theirs,
                holder,
            } => write!(
                f,
                "task {}'s concern `{mine}` overlaps `{theirs}`, held by task {} until its work \
                 is accepted",
                task.short(),
                holder.short()
            ),
            Refusal::DependencyNotCompleted {
                task,
                dependency,
                state,
            } => write!(
                f,
                "task {} depends on task {}, which is {state}: it would run without that task's \
                 work",
                task.short(),
                dependency.short()
            ),
            Refusal::Subtasks { task, why } => {
                write!(f, "task {} cannot have these subtasks: {why}", task.short())
            }
        }
    }
}

/// Why a task has no worktree, or not the checkpoint asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoWorktree {
    /// It names no repository (nor does its orchestration).
    NoRepository,
    /// Its first attempt has not started yet.
    NotYet,
    /// Its worktree was removed (its branch is still there).
    Removed,
    /// Attempt `n` did not start in a checkpoint.
    NoCheckpointFor(u32),
    /// Attempt `n` never ended in a checkpoint.
    NoCheckpointAfter(u32),
    /// There is no checkpoint before attempt `n`.
    NoCheckpointBefore(u32),
}

impl std::fmt::Display for NoWorktree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoWorktree::NoRepository => Ok(()),
            NoWorktree::NotYet => f.write_str(" yet: its first attempt has not started"),
            NoWorktree::Removed => {
                f.write_str(" any more: it was removed (its branch is still there)")
            }
            NoWorktree::NoCheckpointFor(n) => {
                write!(f, " checkpoint for attempt {n}: it did not start in one")
            }
            NoWorktree::NoCheckpointAfter(n) => {
                write!(f, " checkpoint after attempt {n}: it never ended in one")
            }
            NoWorktree::NoCheckpointBefore(n) => write!(f, " checkpoint before attempt {n}"),
        }
    }
}

/// The kind of thing a query looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Agent,
    Task,
    Orchestration,
    Memory,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Agent => "agent named",
            Entity::Task => "task with id",
            Entity::Orchestration => "orchestration with id",
            Entity::Memory => "memory entry with id",
        })
    }
}

/// Errors of queries.
#[derive(Debug, Error)]
pub enum QueryError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("no {what} {reference:?}")]
    NotFound { what: Entity, reference: String },
    #[error("the id prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    /// A page of no items was asked for (a limit of 0).
    #[error("a limit of 0 asks for nothing: a page holds 1 to {max} items")]
    ZeroLimit { max: usize },
    #[error("{}", no_attempt(task, *attempt, *made))]
    NoAttempt {
        task: String,
        attempt: Option<u32>,
        made: u32,
    },
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error("task {task} has no worktree{because}")]
    NoWorkspace { task: String, because: NoWorktree },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for QueryError {
    fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Invalid(_)
            | QueryError::Ambiguous { .. }
            | QueryError::ZeroLimit { .. } => ErrorKind::InvalidInput,
            QueryError::NotFound { .. } | QueryError::NoAttempt { .. } => ErrorKind::NotFound,
            QueryError::Workspace(e) => workspace_kind(e),
            QueryError::NoWorkspace { .. } => ErrorKind::Conflict,
            QueryError::Store(_) => ErrorKind::Storage,
            QueryError::Remote(e) => e.kind(),
        }
    }
}

impl From<QueryError> for TaskError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(v) => TaskError::Invalid(v),
            QueryError::NotFound { reference, .. } => TaskError::NotFound { reference },
            QueryError::Ambiguous { prefix, candidates } => {
                TaskError::Ambiguous { prefix, candidates }
            }
            QueryError::NoAttempt { task, .. } => TaskError::NotFound { reference: task },
            QueryError::ZeroLimit { max } => TaskError::ZeroLimit { max },
            QueryError::Workspace(w) => TaskError::Workspace(w),
            QueryError::NoWorkspace { task, because } => TaskError::NoWorkspace { task, because },
            QueryError::Store(s) => TaskError::Store(s),
            QueryError::Remote(r) => TaskError::Remote(r),
        }
    }
}

/// Errors of memory commands and queries.
#[derive(Debug, Error)]
pub enum MemoryError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("no memory entry with id {reference:?}")]
    NotFound { reference: String },
    #[error("the id prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    /// A page or search of no items was asked for, or of more than `max`.
    #[error("a limit of {limit} is out of range: ask for 1 to {max} items")]
    Limit { limit: usize, max: usize },
    /// The scope names an orchestration that does not exist.
    #[error("no orchestration with id {orchestration} (the entry's scope)")]
    ScopeNotFound { orchestration: OrchestrationId },
    /// The provenance names an attempt that does not exist.
    #[error("task {} has no attempt {attempt} (the entry's provenance)", task.short())]
    AttemptNotFound { task: TaskId, attempt: u32 },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for MemoryError {
    fn kind(&self) -> ErrorKind {
        match self {
            MemoryError::Invalid(_) | MemoryError::Ambiguous { .. } | MemoryError::Limit { .. } => {
                ErrorKind::InvalidInput
            }
            MemoryError::NotFound { .. }
            | MemoryError::ScopeNotFound { .. }
            | MemoryError::AttemptNotFound { .. } => ErrorKind::NotFound,
            MemoryError::Transition(_) => ErrorKind::Conflict,
            MemoryError::Store(_) => ErrorKind::Storage,
            MemoryError::Remote(e) => e.kind(),
        }
    }
}
