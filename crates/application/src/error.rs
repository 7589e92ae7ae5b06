//! Errors of the use cases, one enum per family (agents, tasks, orchestrations, queries), each
//! able to say what kind of failure it is (for exit codes and wire errors) and what to do about it.

use maos_domain::{TransitionError, ValueError};
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
        }
    }
}

/// What a front end needs to know about an error besides its message.
pub trait ErrorInfo: std::error::Error {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
    /// What the user can do about it, when there is something to say.
    fn hint(&self) -> Option<String>;
}

/// An error as it came back from the other side of a connection (the daemon), or the failure to
/// reach it at all: its kind, message and hint, without the typed detail of the original error.
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

    /// What a front end would report for `e`: its kind, message and hint.
    pub fn from_info(e: &dyn ErrorInfo) -> Self {
        RemoteError {
            kind: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl ErrorInfo for RemoteError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

fn store_hint(e: &StoreError) -> Option<String> {
    Some(match e {
        StoreError::NotMaos { .. } => {
            "point --data-dir (or MAOS_DATA_DIR) at a MAOS data directory, or at an empty one to start afresh".into()
        }
        StoreError::Damaged { path, .. } => format!(
            "stop the daemon (`maos daemon stop`); see what is damaged with `sqlite3 '{path}' 'PRAGMA integrity_check'`; \
             then restore {path} from a backup, or move it away (with its -wal and -shm files) to start with an empty database"
        ),
        StoreError::Open { .. } => "check that the data directory exists and is writable, or choose another with --data-dir".into(),
        StoreError::Lost { path, .. } => format!(
            "the daemon stops and acknowledged nothing after this; find out what removed or replaced {path} \
             (a cleanup job, a restore, a sync tool), put the right file back, and run the command again"
        ),
        StoreError::Corrupt(_) => "the database was changed outside MAOS; restore it from a backup".into(),
        StoreError::WriterGone | StoreError::Backend(_) => return None,
    })
}

fn transition_hint(e: &TransitionError) -> Option<String> {
    match e {
        TransitionError::StaleAttempt { .. } => Some(
            "this attempt was superseded (its lease expired or the task was reassigned); its result is discarded".into(),
        ),
        TransitionError::Task { task, .. } => Some(format!(
            "`maos task show {}` shows the task's state and history",
            task.short()
        )),
        TransitionError::AgentBusy { agent, .. } => Some(format!(
            "run `maos agent drain {agent}` so it takes no new work, and remove it once its attempts finish"
        )),
        TransitionError::Agent { agent, .. } | TransitionError::AgentUnfit { agent, .. } => {
            Some(format!("`maos agent show {agent}` shows its status and slots"))
        }
        TransitionError::Orchestration { id, .. } => Some(format!(
            "`maos orchestrate show {}` shows its status",
            id.short()
        )),
    }
}

/// Errors of agent commands.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("{0}")]
    InvalidInput(String),
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
            AgentError::Invalid(_) | AgentError::InvalidInput(_) => ErrorKind::InvalidInput,
            AgentError::NotFound { .. } => ErrorKind::NotFound,
            AgentError::AlreadyExists { .. } | AgentError::Transition(_) => ErrorKind::Conflict,
            AgentError::Store(_) => ErrorKind::Storage,
            AgentError::Remote(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            AgentError::Invalid(_) | AgentError::InvalidInput(_) => None,
            AgentError::NotFound { .. } => {
                Some("`maos agent list` shows the registered agents".into())
            }
            AgentError::AlreadyExists { name } => Some(format!(
                "choose another name, or run `maos agent remove {name}` first to replace it"
            )),
            AgentError::Transition(e) => transition_hint(e),
            AgentError::Store(e) => store_hint(e),
            AgentError::Remote(e) => e.hint(),
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
    #[error("task {task} has no worktree{why}")]
    NoWorkspace { task: String, why: String },
    /// The state of something else forbids it: a concern another task holds, an orchestration
    /// that does not run, a dependency that did not complete.
    #[error("{why}")]
    Refused { why: String, hint: String },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for TaskError {
    fn kind(&self) -> ErrorKind {
        match self {
            TaskError::Invalid(_) | TaskError::Ambiguous { .. } => ErrorKind::InvalidInput,
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
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            TaskError::Invalid(_) => None,
            TaskError::NotFound { .. } | TaskError::DependencyNotFound { .. } => {
                Some("`maos task list` shows the tasks and their ids".into())
            }
            TaskError::Ambiguous { .. } => Some("type more characters of the id".into()),
            TaskError::DependencyCycle { .. } => Some("a task cannot depend, directly or not, on itself; drop one of the dependencies".into()),
            TaskError::OrchestrationNotFound { .. } => Some("`maos orchestrate list` shows the orchestrations".into()),
            TaskError::AgentNotFound { .. } => Some("`maos agent list` shows the registered agents".into()),
            TaskError::NoCapableAgent { .. } => Some(
                "register an agent with those capabilities (`maos agent register`), or wait for a busy one to free a slot".into(),
            ),
            TaskError::Transition(e) => transition_hint(e),
            TaskError::Refused { hint, .. } => Some(hint.clone()),
            TaskError::Workspace(e) => e.hint(),
            TaskError::NoWorkspace { .. } => Some(
                "only tasks created with --repo (or in an orchestration with one) have a worktree"
                    .into(),
            ),
            TaskError::Store(e) => store_hint(e),
            TaskError::Remote(e) => e.hint(),
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
    #[error("{0}")]
    Refused(String),
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
            OrchestrationError::Refused(_) => ErrorKind::Conflict,
            OrchestrationError::Transition(_) => ErrorKind::Conflict,
            OrchestrationError::Store(_) => ErrorKind::Storage,
            OrchestrationError::Remote(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            OrchestrationError::Invalid(_) | OrchestrationError::Refused(_) => None,
            OrchestrationError::Query(e) => e.hint(),
            OrchestrationError::Task(e) => e.hint(),
            OrchestrationError::Workspace(e) => e.hint(),
            OrchestrationError::Transition(e) => transition_hint(e),
            OrchestrationError::Store(e) => store_hint(e),
            OrchestrationError::Remote(e) => e.hint(),
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

/// The kind of thing a query looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Agent,
    Task,
    Orchestration,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Agent => "agent named",
            Entity::Task => "task with id",
            Entity::Orchestration => "orchestration with id",
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
    #[error("{}", no_attempt(task, *attempt, *made))]
    NoAttempt {
        task: String,
        attempt: Option<u32>,
        made: u32,
    },
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error("task {task} has no worktree{why}")]
    NoWorkspace { task: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl ErrorInfo for QueryError {
    fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Invalid(_) | QueryError::Ambiguous { .. } => ErrorKind::InvalidInput,
            QueryError::NotFound { .. } | QueryError::NoAttempt { .. } => ErrorKind::NotFound,
            QueryError::Workspace(e) => workspace_kind(e),
            QueryError::NoWorkspace { .. } => ErrorKind::Conflict,
            QueryError::Store(_) => ErrorKind::Storage,
            QueryError::Remote(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            QueryError::Invalid(_) => None,
            QueryError::NotFound { what, .. } => Some(
                match what {
                    Entity::Agent => "`maos agent list` shows the registered agents",
                    Entity::Orchestration => "`maos orchestrate list` shows the orchestrations",
                    Entity::Task => "`maos task list` shows the tasks and their ids",
                }
                .into(),
            ),
            QueryError::Ambiguous { .. } => Some("type more characters of the id".into()),
            QueryError::NoAttempt { task, made, .. } => Some(if *made == 0 {
                format!(
                    "task {task} has not been assigned yet; `maos task show {task}` says what it waits for"
                )
            } else {
                format!("`maos task show {task}` lists its attempts")
            }),
            QueryError::Workspace(e) => e.hint(),
            QueryError::NoWorkspace { .. } => Some(
                "only tasks created with --repo (or in an orchestration with one) have a worktree"
                    .into(),
            ),
            QueryError::Store(e) => store_hint(e),
            QueryError::Remote(e) => e.hint(),
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
            QueryError::Workspace(w) => TaskError::Workspace(w),
            QueryError::NoWorkspace { task, why } => TaskError::NoWorkspace { task, why },
            QueryError::Store(s) => TaskError::Store(s),
            QueryError::Remote(r) => TaskError::Remote(r),
        }
    }
}
