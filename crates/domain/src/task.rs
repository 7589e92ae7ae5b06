//! The Task aggregate and its attempts: the full lifecycle
//! `pending → ready → assigned → running → verifying → (awaiting_approval) → completed`, with
//! `failed → retrying → ready`, `blocked`, `cancelled` and `escalated`. Every command checks the
//! current state, returns the events it caused, and applies them; an illegal command is a
//! [`TransitionError`], never a silent no-op.

use std::collections::BTreeSet;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::agent::Agent;
use crate::briefing::Briefing;
use crate::error::TransitionError;
use crate::ids::{OrchestrationId, TaskId};
use crate::policy::concerns::Concern;
use crate::policy::matcher;
use crate::reasons::BlockReason;
use crate::run::{Exit, FailureKind, RunReport, Usage, Usd, Verification};
use crate::values::{
    AgentName, CapabilitySet, DurationMs, FencingToken, IdempotencyKey, MaxAttempts, Priority,
    ProgressNote, Risk, Tier, Timestamp, Title, keyword_enum,
};

keyword_enum!(
    /// Where a task stands in its lifecycle.
    TaskState, "task status" {
        /// Waiting for its dependencies.
        Pending => "pending",
        /// Can be assigned.
        Ready => "ready",
        /// An agent holds it; the attempt has not started yet.
        Assigned => "assigned",
        /// The agent is working on it.
        Running => "running",
        /// The agent finished; its work is being checked.
        Verifying => "verifying",
        /// Verified; a person must approve it.
        AwaitingApproval => "awaiting_approval",
        /// Done and accepted.
        Completed => "completed",
        /// The last attempt failed; what happens next is being decided.
        Failed => "failed",
        /// Another attempt will be made.
        Retrying => "retrying",
        /// Needs a person before it can go on.
        Blocked => "blocked",
        /// Stopped for good.
        Cancelled => "cancelled",
        /// Handed to a strategic-tier agent after tactical attempts failed.
        Escalated => "escalated",
    }
);

impl TaskState {
    /// True for states that never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Cancelled)
    }

    /// True while the current attempt holds a lease: it is assigned or running, so a heartbeat
    /// keeps it alive and a lease that runs out interrupts it.
    pub fn holds_lease(self) -> bool {
        matches!(self, TaskState::Assigned | TaskState::Running)
    }

    /// True while an attempt holds an agent's slot.
    pub fn holds_slot(self) -> bool {
        matches!(
            self,
            TaskState::Assigned | TaskState::Running | TaskState::Verifying
        )
    }
}

keyword_enum!(
    /// Where one attempt stands.
    AttemptOutcome, "attempt status" {
        Assigned => "assigned",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Interrupted => "interrupted",
        Cancelled => "cancelled",
    }
);

keyword_enum!(
    /// What a task waits for a person to decide.
    #[derive(Default)]
    Gate, "approval gate" {
        /// A high-risk task, before it runs at all.
        Run => "run",
        /// Verified work of a medium- or high-risk task, before it is accepted.
        #[default]
        Result => "result",
        /// A tool call a running agent wants to make (a permission rule said `ask`).
        Tool => "tool",
    }
);

/// A decision a task waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub gate: Gate,
    /// The attempt that asks (tool approvals).
    pub attempt: Option<u32>,
    /// The tool and what it acts on (tool approvals).
    pub tool: Option<String>,
    pub subject: Option<String>,
    pub requested_at: Timestamp,
}

/// Where a task works: a repository, and the branch or commit to start from (none: the
/// repository's current branch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSpec {
    pub repo: String,
    pub base: Option<String>,
}

/// The worktree a task works in, once prepared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskWorkspace {
    pub repo: String,
    pub path: String,
    /// The task's branch, `maos/<short id>`.
    pub branch: String,
    /// The commit the branch started from.
    pub base: String,
    /// True once the worktree was removed (`maos gc`); the branch stays.
    #[serde(default)]
    pub removed: bool,
}

/// How a task's accepted work was integrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    /// Nothing to integrate (no workspace, or no orchestration to integrate into).
    None,
    /// Merged into the integration branch `into`, which is now at `commit`.
    Merged { into: String, commit: String },
    /// The merge conflicts on `paths`; nothing was merged.
    Conflict { into: String, paths: Vec<String> },
    /// The merge could not be made (`reason`, such as the branch being checked out); nothing was
    /// merged.
    Failed { into: String, reason: String },
}

/// What the runtime knows when an attempt starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptStart {
    /// The agent's process, when there is one.
    pub pid: Option<u32>,
    /// The checkpoint commit made in the task's worktree before it started.
    pub checkpoint: Option<String>,
    /// The port it was given.
    pub port: Option<u16>,
}

/// One run of a task by one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt, then 2, 3, ...
    pub number: u32,
    pub agent: AgentName,
    pub fencing: FencingToken,
    pub status: AttemptOutcome,
    pub assigned_at: Timestamp,
    pub lease_expires_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// The agent's summary of a successful attempt.
    pub summary: Option<String>,
    /// Why the attempt failed.
    pub error: Option<String>,
    /// The agent's process (its process group has the same id), while the daemon runs it.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The agent's own session id (a retry on the same agent resumes it).
    #[serde(default)]
    pub session: Option<String>,
    /// How the agent's process ended.
    #[serde(default)]
    pub exit: Option<Exit>,
    /// Tokens and money the attempt used.
    #[serde(default)]
    pub usage: Usage,
    /// Why it failed, when it did.
    #[serde(default)]
    pub failure: Option<FailureKind>,
    /// The checkpoint commit made before the attempt started, in the task's worktree.
    #[serde(default)]
    pub checkpoint_before: Option<String>,
    /// The checkpoint commit made after it ended.
    #[serde(default)]
    pub checkpoint_after: Option<String>,
    /// The port the attempt was given (`MAOS_PORT`).
    #[serde(default)]
    pub port: Option<u16>,
    /// The verification that ran after the agent succeeded.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// Exactly the prompt its agent received, as the briefing assembled it.
    #[serde(default)]
    pub briefing: Option<Briefing>,
    /// What the attempt changed, one line (`2 files changed, 10 insertions(+)`).
    #[serde(default)]
    pub diff_stat: Option<String>,
    /// Tool calls its agent was refused (`Tool(subject)`).
    #[serde(default)]
    pub permission_denials: Vec<String>,
    /// It was interrupted without counting against the task (a person's `pause --now`, the
    /// daemon's end): nothing the task did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refunded: bool,
}

impl Attempt {
    /// How long it ran, once it has ended.
    pub fn duration_ms(&self) -> Option<u64> {
        let (start, end) = (self.started_at?, self.ended_at?);
        u64::try_from(end.as_millis() - start.as_millis()).ok()
    }

    fn record(&mut self, report: &RunReport) {
        self.exit = report.exit;
        self.usage = report.usage;
        self.failure = report.failure;
        self.checkpoint_after.clone_from(&report.checkpoint);
        self.verification.clone_from(&report.verification);
        self.diff_stat.clone_from(&report.diff_stat);
        self.permission_denials
            .clone_from(&report.permission_denials);
    }
}

/// What a task is asked to do, as given at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub title: Title,
    pub prompt: String,
    pub capabilities: CapabilitySet,
    pub priority: Priority,
    pub risk: Risk,
    /// The tier the task needs; `None` means any.
    pub tier: Option<Tier>,
    pub depends_on: BTreeSet<TaskId>,
    pub orchestration: Option<OrchestrationId>,
    pub max_attempts: MaxAttempts,
    pub timeout: Option<DurationMs>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The most the task may cost over all its attempts; the attempt that would overrun it is
    /// stopped.
    #[serde(default)]
    pub budget: Option<Usd>,
    /// The repository the task works in (its own worktree and branch).
    #[serde(default)]
    pub workspace: Option<WorkspaceSpec>,
    /// The command that checks the agent's work, run in the worktree after it succeeds.
    #[serde(default)]
    pub verify: Option<String>,
    /// The task needs a TCP port of its own (`MAOS_PORT`).
    #[serde(default)]
    pub wants_port: bool,
    /// What no other task may work on at the same time (path globs, named resources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concerns: Vec<Concern>,
    /// A planning task: its answer is a plan for this orchestration, checked before the task
    /// completes (the check is its verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<OrchestrationId>,
    /// Only this agent may take it (a planning task runs on the planner a person named, and
    /// its later attempts on the same agent, whose session resumes). `None`: any agent that
    /// fits. (Absent from the event log's JSON when none, as it was before pins.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentName>,
    /// The task whose agent made this one as a subtask (absent from the event log's JSON when
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentLink>,
    /// When an attempt succeeds after earlier ones failed, its agent is asked for a lesson (what
    /// went wrong, what to do differently), kept as a memory entry (`crate::lesson`). Off by
    /// default; absent from the event log's JSON when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lessons: bool,
}

/// A subtask's link to the task whose running attempt made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    pub task: TaskId,
    /// The parent may not complete before this subtask has (else it completes and the subtask
    /// goes on alone).
    pub waits: bool,
}

/// The most subtasks one task may make, over all its attempts.
pub const MAX_SUBTASKS: usize = 16;

/// How deep subtasks may nest: a task made by an agent is at depth 1, its own subtasks at 2.
pub const MAX_SUBTASK_DEPTH: u32 = 3;

impl TaskSpec {
    /// What the task asks of the agent that takes it, as [`matcher`] checks it.
    pub fn needs(&self) -> matcher::Needs<'_> {
        matcher::Needs {
            capabilities: &self.capabilities,
            tier: self.tier,
            agent: self.agent.as_ref(),
        }
    }
}

impl TaskSpec {
    /// The most characters of an agent's answer (its summary) kept for an attempt of this
    /// task: a planning task's answer is a whole plan.
    pub fn answer_limit(&self) -> usize {
        if self.plans.is_some() {
            crate::plan::ANSWER_CHARS
        } else {
            SUMMARY_CHARS
        }
    }
}

/// The most characters of an attempt's summary kept, for a task that is not a planning task.
pub const SUMMARY_CHARS: usize = 2_000;

/// The state of a task. Read it through [`Task`]; change it only through `Task`'s methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskData {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub state: TaskState,
    /// The words of its last failure or cancellation (an agent's error, a person's reason), when
    /// it failed, is blocked after failing, or was cancelled.
    pub reason: Option<String>,
    /// Why it is blocked, as data (none unless it is blocked; none too for a task blocked by an
    /// older MAOS, whose sentence is in `reason`).
    #[serde(default)]
    pub blocked: Option<BlockReason>,
    pub attempts: Vec<Attempt>,
    /// The token of the newest attempt (0 before the first).
    pub fencing: FencingToken,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Number of events applied since creation.
    pub version: u64,
    /// Its worktree, once prepared.
    #[serde(default)]
    pub workspace: Option<TaskWorkspace>,
    /// What it waits for a person to decide.
    #[serde(default)]
    pub pending: Option<PendingApproval>,
    /// A person approved it to run (high risk).
    #[serde(default)]
    pub run_approved: bool,
    /// The last decision a person made about it.
    #[serde(default)]
    pub decision: Option<ApprovalDecision>,
    /// When a task that is `retrying` becomes ready again (its backoff ends).
    #[serde(default)]
    pub retry_at: Option<Timestamp>,
    /// Attempts granted beyond `max_attempts`: one by an escalation, more by `maos task retry`.
    #[serde(default)]
    pub extra_attempts: u32,
    /// The subtasks its agents made, in the order they were made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtasks: Vec<Subtask>,
}

/// A subtask as its parent knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subtask {
    pub task: TaskId,
    /// The parent waits for it before it completes.
    pub waits: bool,
}

/// A person's decision on an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub gate: Gate,
    pub approved: bool,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// Something that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskEvent {
    Created {
        spec: Box<TaskSpec>,
    },
    Ready,
    DependencyAdded {
        on: TaskId,
        satisfied: bool,
    },
    Assigned {
        attempt: u32,
        agent: AgentName,
        fencing: FencingToken,
        lease_expires_at: Timestamp,
    },
    AttemptStarted {
        attempt: u32,
        /// The agent's process, when the daemon started one.
        #[serde(default)]
        pid: Option<u32>,
        /// The checkpoint made before it started.
        #[serde(default)]
        checkpoint: Option<String>,
        /// The port it was given.
        #[serde(default)]
        port: Option<u16>,
    },
    WorkspacePrepared {
        workspace: TaskWorkspace,
    },
    SessionRecorded {
        attempt: u32,
        session: String,
    },
    /// The prompt the attempt's agent receives, assembled when it was assigned.
    Briefed {
        attempt: u32,
        briefing: Briefing,
    },
    /// A heartbeat renewed the lease. Written by versions before leases were renewed in memory
    /// (ADR 0023); still read from older logs, no longer emitted.
    LeaseRenewed {
        attempt: u32,
        lease_expires_at: Timestamp,
    },
    AttemptSucceeded {
        attempt: u32,
        summary: Option<String>,
        #[serde(default)]
        report: RunReport,
    },
    AttemptFailed {
        attempt: u32,
        error: String,
        #[serde(default)]
        report: RunReport,
    },
    AttemptInterrupted {
        attempt: u32,
        reason: String,
        /// The attempt does not count against the task's attempts (it was stopped by a person's
        /// `pause --now` or by the daemon's end, not by anything the task did).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refunded: bool,
    },
    VerificationFailed {
        output: String,
    },
    ApprovalRequested {
        #[serde(default)]
        gate: Gate,
        #[serde(default)]
        attempt: Option<u32>,
        #[serde(default)]
        tool: Option<String>,
        #[serde(default)]
        subject: Option<String>,
    },
    ApprovalGranted {
        gate: Gate,
    },
    ApprovalRejected {
        reason: String,
        #[serde(default)]
        gate: Gate,
    },
    Integrated {
        into: String,
        commit: String,
    },
    IntegrationConflict {
        into: String,
        paths: Vec<String>,
    },
    IntegrationFailed {
        into: String,
        reason: String,
    },
    RolledBack {
        to_attempt: u32,
        commit: String,
    },
    WorkspaceRemoved,
    Completed,
    RetryScheduled {
        /// When the retry is due (the backoff after the failure); none: at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Timestamp>,
    },
    /// Handed to the strategic tier, with one more attempt.
    Escalated,
    /// A person asked for more attempts (`maos task retry`).
    RetryRequested {
        granted: u32,
    },
    Blocked {
        /// Why (an older MAOS stored a sentence: it reads back as [`BlockReason::Text`]).
        #[serde(deserialize_with = "crate::reasons::data_or_sentence")]
        reason: BlockReason,
    },
    Cancelled {
        reason: String,
    },
    /// The running attempt's agent said how it is getting on.
    ProgressReported {
        attempt: u32,
        note: ProgressNote,
    },
    /// The running attempt's agent split off subtasks.
    SubtasksCreated {
        attempt: u32,
        tasks: Vec<TaskId>,
        /// The task waits for them before it completes.
        waits: bool,
    },
}

impl TaskEvent {
    /// Every name [`Self::kind`] gives, in the order of `kind`'s arms.
    pub const KINDS: &'static [&'static str] = &[
        "task.created",
        "task.ready",
        "task.dependency_added",
        "task.assigned",
        "task.attempt_started",
        "task.session_recorded",
        "task.briefed",
        "task.lease_renewed",
        "task.attempt_succeeded",
        "task.attempt_failed",
        "task.attempt_interrupted",
        "task.verification_failed",
        "task.workspace_prepared",
        "task.approval_requested",
        "task.approval_granted",
        "task.approval_rejected",
        "task.integrated",
        "task.integration_conflict",
        "task.integration_failed",
        "task.rolled_back",
        "task.workspace_removed",
        "task.completed",
        "task.retry_scheduled",
        "task.retry_requested",
        "task.escalated",
        "task.blocked",
        "task.cancelled",
        "task.progress_reported",
        "task.subtasks_created",
    ];

    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskEvent::Created { .. } => "task.created",
            TaskEvent::Ready => "task.ready",
            TaskEvent::DependencyAdded { .. } => "task.dependency_added",
            TaskEvent::Assigned { .. } => "task.assigned",
            TaskEvent::AttemptStarted { .. } => "task.attempt_started",
            TaskEvent::SessionRecorded { .. } => "task.session_recorded",
            TaskEvent::Briefed { .. } => "task.briefed",
            TaskEvent::LeaseRenewed { .. } => "task.lease_renewed",
            TaskEvent::AttemptSucceeded { .. } => "task.attempt_succeeded",
            TaskEvent::AttemptFailed { .. } => "task.attempt_failed",
            TaskEvent::AttemptInterrupted { .. } => "task.attempt_interrupted",
            TaskEvent::VerificationFailed { .. } => "task.verification_failed",
            TaskEvent::WorkspacePrepared { .. } => "task.workspace_prepared",
            TaskEvent::ApprovalRequested { .. } => "task.approval_requested",
            TaskEvent::ApprovalGranted { .. } => "task.approval_granted",
            TaskEvent::ApprovalRejected { .. } => "task.approval_rejected",
            TaskEvent::Integrated { .. } => "task.integrated",
            TaskEvent::IntegrationConflict { .. } => "task.integration_conflict",
            TaskEvent::IntegrationFailed { .. } => "task.integration_failed",
            TaskEvent::RolledBack { .. } => "task.rolled_back",
            TaskEvent::WorkspaceRemoved => "task.workspace_removed",
            TaskEvent::Completed => "task.completed",
            TaskEvent::RetryScheduled { .. } => "task.retry_scheduled",
            TaskEvent::RetryRequested { .. } => "task.retry_requested",
            TaskEvent::Escalated => "task.escalated",
            TaskEvent::Blocked { .. } => "task.blocked",
            TaskEvent::Cancelled { .. } => "task.cancelled",
            TaskEvent::ProgressReported { .. } => "task.progress_reported",
            TaskEvent::SubtasksCreated { .. } => "task.subtasks_created",
        }
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task(TaskData);

impl Deref for Task {
    type Target = TaskData;
    fn deref(&self) -> &TaskData {
        &self.0
    }
}

use TaskState as S;

impl Task {
    /// Creates a task in `pending`. The caller makes it `ready` once its dependencies are met.
    pub fn create(id: TaskId, spec: TaskSpec, at: Timestamp) -> (Task, Vec<TaskEvent>) {
        let task = Task::from_spec(id, spec.clone(), at);
        (
            task,
            vec![TaskEvent::Created {
                spec: Box::new(spec),
            }],
        )
    }

    fn from_spec(id: TaskId, spec: TaskSpec, at: Timestamp) -> Task {
        Task(TaskData {
            id,
            spec,
            state: S::Pending,
            reason: None,
            blocked: None,
            attempts: Vec::new(),
            fencing: FencingToken::new(0),
            created_at: at,
            updated_at: at,
            version: 1,
            workspace: None,
            pending: None,
            run_approved: false,
            decision: None,
            retry_at: None,
            extra_attempts: 0,
            subtasks: Vec::new(),
        })
    }

    /// Rebuilds a task from stored state (for repositories).
    pub fn restore(data: TaskData) -> Task {
        Task(data)
    }

    /// The stored state.
    pub fn data(&self) -> &TaskData {
        &self.0
    }

    /// Rebuilds a task by folding its events, oldest first. `None` if the first is not a creation.
    pub fn from_events<'a>(
        id: TaskId,
        events: impl IntoIterator<Item = (&'a TaskEvent, Timestamp)>,
    ) -> Option<Task> {
        let mut it = events.into_iter();
        let (first, at) = it.next()?;
        let TaskEvent::Created { spec } = first else {
            return None;
        };
        let mut task = Task::from_spec(id, (**spec).clone(), at);
        for (e, at) in it {
            task.apply(e, at);
        }
        Some(task)
    }

    /// The newest attempt, if any.
    pub fn current_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Attempts made so far.
    pub fn attempts_used(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    /// The agent holding the task's slot, while one does.
    pub fn slot_holder(&self) -> Option<&AgentName> {
        if self.state.holds_slot() {
            self.current_attempt().map(|a| &a.agent)
        } else {
            None
        }
    }

    fn attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.0.attempts.last_mut()
    }

    /// Applies one event (already validated by the command that produced it).
    pub fn apply(&mut self, event: &TaskEvent, at: Timestamp) {
        let t = self;
        let end = |a: &mut Attempt, status: AttemptOutcome| {
            a.status = status;
            a.ended_at = Some(at);
        };
        match event {
            TaskEvent::Created { .. } => {}
            TaskEvent::Ready => {
                t.0.state = S::Ready;
                t.0.reason = None;
                t.0.retry_at = None;
            }
            TaskEvent::DependencyAdded { on, satisfied } => {
                t.0.spec.depends_on.insert(*on);
                if !satisfied {
                    t.0.state = S::Pending;
                }
            }
            TaskEvent::Assigned {
                attempt,
                agent,
                fencing,
                lease_expires_at,
            } => {
                t.0.attempts.push(Attempt {
                    number: *attempt,
                    agent: agent.clone(),
                    fencing: *fencing,
                    status: AttemptOutcome::Assigned,
                    assigned_at: at,
                    lease_expires_at: *lease_expires_at,
                    started_at: None,
                    ended_at: None,
                    summary: None,
                    error: None,
                    pid: None,
                    session: None,
                    exit: None,
                    usage: Usage::NONE,
                    failure: None,
                    checkpoint_before: None,
                    checkpoint_after: None,
                    port: None,
                    verification: None,
                    briefing: None,
                    diff_stat: None,
                    permission_denials: Vec::new(),
                    refunded: false,
                });
                t.0.fencing = *fencing;
                t.0.state = S::Assigned;
            }
            TaskEvent::AttemptStarted {
                pid,
                checkpoint,
                port,
                ..
            } => {
                if let Some(a) = t.attempt_mut() {
                    a.status = AttemptOutcome::Running;
                    a.started_at = Some(at);
                    a.pid = *pid;
                    a.checkpoint_before.clone_from(checkpoint);
                    a.port = *port;
                }
                t.0.state = S::Running;
            }
            TaskEvent::WorkspacePrepared { workspace } => {
                t.0.workspace = Some(workspace.clone());
            }
            TaskEvent::SessionRecorded { session, .. } => {
                if let Some(a) = t.attempt_mut() {
                    a.session = Some(session.clone());
                }
            }
            TaskEvent::Briefed { briefing, .. } => {
                if let Some(a) = t.attempt_mut() {
                    a.briefing = Some(briefing.clone());
                }
            }
            TaskEvent::LeaseRenewed {
                lease_expires_at, ..
            } => {
                if let Some(a) = t.attempt_mut() {
                    a.lease_expires_at = *lease_expires_at;
                }
            }
            TaskEvent::AttemptSucceeded {
                summary, report, ..
            } => {
                t.0.pending = None;
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Succeeded);
                    a.summary.clone_from(summary);
                    a.record(report);
                }
                t.0.state = S::Verifying;
            }
            TaskEvent::AttemptFailed { error, report, .. } => {
                t.0.pending = None;
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Failed);
                    a.error = Some(error.clone());
                    a.record(report);
                }
                t.0.state = S::Failed;
                t.0.reason = Some(error.clone());
            }
            TaskEvent::AttemptInterrupted {
                reason, refunded, ..
            } => {
                if *refunded {
                    t.0.extra_attempts = t.0.extra_attempts.saturating_add(1);
                }
                t.0.pending = None;
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Interrupted);
                    a.error = Some(reason.clone());
                    a.failure = Some(FailureKind::Interrupted);
                    a.refunded = *refunded;
                }
                t.0.state = S::Failed;
                t.0.reason = Some(reason.clone());
            }
            TaskEvent::VerificationFailed { output } => {
                if let Some(a) = t.attempt_mut() {
                    a.status = AttemptOutcome::Failed;
                    a.error = Some(format!("verification failed: {output}"));
                    a.failure = Some(FailureKind::Verification);
                }
                t.0.state = S::Failed;
                t.0.reason = Some(format!("verification failed: {output}"));
            }
            TaskEvent::ApprovalRequested {
                gate,
                attempt,
                tool,
                subject,
            } => {
                t.0.pending = Some(PendingApproval {
                    gate: *gate,
                    attempt: *attempt,
                    tool: tool.clone(),
                    subject: subject.clone(),
                    requested_at: at,
                });
                if *gate != Gate::Tool {
                    t.0.state = S::AwaitingApproval;
                }
            }
            TaskEvent::ApprovalGranted { gate } => {
                t.0.pending = None;
                t.0.decision = Some(ApprovalDecision {
                    gate: *gate,
                    approved: true,
                    reason: None,
                    at,
                });
                if *gate == Gate::Run {
                    t.0.run_approved = true;
                    t.0.state = S::Ready;
                    t.0.reason = None;
                }
            }
            TaskEvent::ApprovalRejected { reason, gate } => {
                t.0.pending = None;
                t.0.decision = Some(ApprovalDecision {
                    gate: *gate,
                    approved: false,
                    reason: Some(reason.clone()),
                    at,
                });
                match gate {
                    Gate::Result => {
                        if let Some(a) = t.attempt_mut() {
                            a.status = AttemptOutcome::Failed;
                            a.error = Some(format!("rejected: {reason}"));
                        }
                        t.0.state = S::Failed;
                        t.0.reason = Some(format!("rejected: {reason}"));
                    }
                    Gate::Run => {
                        t.0.state = S::Blocked;
                        t.0.reason = Some(reason.clone());
                        t.0.blocked = Some(BlockReason::RejectedBeforeRun);
                    }
                    Gate::Tool => {}
                }
            }
            TaskEvent::Integrated { .. } | TaskEvent::RolledBack { .. } => {}
            TaskEvent::IntegrationConflict { .. } | TaskEvent::IntegrationFailed { .. } => {
                t.0.state = S::Blocked;
                t.0.reason = None;
                t.0.blocked = match event {
                    TaskEvent::IntegrationConflict { into, paths } => {
                        Some(BlockReason::MergeConflict {
                            into: into.clone(),
                            paths: paths.clone(),
                        })
                    }
                    TaskEvent::IntegrationFailed { into, reason } => {
                        Some(BlockReason::MergeFailed {
                            into: into.clone(),
                            error: reason.clone(),
                        })
                    }
                    _ => None,
                };
                t.0.pending = Some(PendingApproval {
                    gate: Gate::Result,
                    attempt: None,
                    tool: None,
                    subject: None,
                    requested_at: at,
                });
            }
            TaskEvent::WorkspaceRemoved => {
                if let Some(w) = t.0.workspace.as_mut() {
                    w.removed = true;
                }
            }
            TaskEvent::Completed => {
                t.0.state = S::Completed;
                t.0.reason = None;
            }
            TaskEvent::RetryScheduled { at: due } => {
                t.0.state = S::Retrying;
                t.0.retry_at = *due;
            }
            TaskEvent::Escalated => {
                t.0.state = S::Escalated;
                t.0.spec.tier = Some(Tier::Strategic);
                t.0.extra_attempts = t.0.extra_attempts.saturating_add(1);
            }
            TaskEvent::RetryRequested { granted } => {
                t.0.extra_attempts = t.0.extra_attempts.saturating_add(*granted);
                t.0.reason = None;
                // Whatever it waited for a person to decide, the person decided to run it again.
                t.0.pending = None;
            }
            TaskEvent::Blocked { reason } => {
                t.0.pending = None;
                t.0.state = S::Blocked;
                // A sentence of an older MAOS is the reason's words; data keeps the last
                // failure's words beside it.
                if let BlockReason::Text { text } = reason {
                    t.0.reason = Some(text.clone());
                    t.0.blocked = None;
                } else {
                    t.0.blocked = Some(reason.clone());
                }
            }
            TaskEvent::Cancelled { reason } => {
                t.0.pending = None;
                if t.0.state.holds_slot()
                    && let Some(a) = t.attempt_mut()
                {
                    end(a, AttemptOutcome::Cancelled);
                }
                t.0.state = S::Cancelled;
                t.0.reason = Some(reason.clone());
            }
            TaskEvent::ProgressReported { .. } => {}
            TaskEvent::SubtasksCreated { tasks, waits, .. } => {
                t.0.subtasks.extend(tasks.iter().map(|&task| Subtask {
                    task,
                    waits: *waits,
                }));
            }
        }
        if t.0.state != S::Blocked {
            t.0.blocked = None;
        }
        t.0.updated_at = at;
        t.0.version += 1;
    }

    fn emit(&mut self, event: TaskEvent, at: Timestamp) -> Vec<TaskEvent> {
        self.apply(&event, at);
        vec![event]
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError::Task {
            task: self.id,
            from: self.state,
            action,
        }
    }

    fn check_fencing(&self, presented: FencingToken) -> Result<(), TransitionError> {
        if presented != self.fencing {
            return Err(TransitionError::StaleAttempt {
                task: self.id,
                presented: presented.get(),
                current: self.fencing.get(),
            });
        }
        Ok(())
    }

    /// Makes the task assignable: its dependencies are met (`pending`), a retry is due
    /// (`retrying`), an escalation is ready (`escalated`) or a person unblocked it (`blocked`).
    /// A high-risk task a person has not approved yet waits for that approval instead.
    pub fn make_ready(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Pending | S::Retrying | S::Escalated | S::Blocked => {
                if crate::policy::approval::needs_approval_to_run(self.spec.risk)
                    && !self.run_approved
                {
                    let event = TaskEvent::ApprovalRequested {
                        gate: Gate::Run,
                        attempt: None,
                        tool: None,
                        subject: None,
                    };
                    return Ok(self.emit(event, at));
                }
                Ok(self.emit(TaskEvent::Ready, at))
            }
            _ => Err(self.refuse("made ready")),
        }
    }

    /// Records the worktree the task works in (once, before its first attempt starts).
    pub fn record_workspace(
        &mut self,
        workspace: TaskWorkspace,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if !matches!(self.state, S::Assigned | S::Running) {
            return Err(self.refuse("given a workspace"));
        }
        if self.workspace.as_ref() == Some(&workspace) {
            return Ok(Vec::new());
        }
        Ok(self.emit(TaskEvent::WorkspacePrepared { workspace }, at))
    }

    /// A running attempt's agent wants to make a tool call that needs a person.
    pub fn request_tool_approval(
        &mut self,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if self.state != S::Running {
            return Err(self.refuse("asked for a tool approval while not running"));
        }
        if self.pending.is_some() {
            return Err(self.refuse("asked for a second approval while one waits"));
        }
        let attempt = Some(self.attempts_used());
        Ok(self.emit(
            TaskEvent::ApprovalRequested {
                gate: Gate::Tool,
                attempt,
                tool: Some(tool),
                subject,
            },
            at,
        ))
    }

    /// The work was accepted (verified and, when the policy asks, approved): integrated, then
    /// completed; or blocked on a merge conflict.
    fn accept(&mut self, integration: Integration, at: Timestamp) -> Vec<TaskEvent> {
        match integration {
            Integration::None => self.emit(TaskEvent::Completed, at),
            Integration::Merged { into, commit } => {
                let mut events = self.emit(TaskEvent::Integrated { into, commit }, at);
                events.extend(self.emit(TaskEvent::Completed, at));
                events
            }
            Integration::Conflict { into, paths } => {
                self.emit(TaskEvent::IntegrationConflict { into, paths }, at)
            }
            Integration::Failed { into, reason } => {
                self.emit(TaskEvent::IntegrationFailed { into, reason }, at)
            }
        }
    }

    /// True when accepting the task's work now completes it (the policy asks no person): the
    /// caller integrates it first.
    pub fn completes_on_verification(&self) -> bool {
        !crate::policy::approval::needs_review(self.spec.risk)
    }

    /// The task's branch returns to a checkpoint.
    pub fn roll_back(
        &mut self,
        to_attempt: u32,
        commit: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.workspace.as_ref().is_none_or(|w| w.removed) {
            return Err(self.refuse("rolled back: it has no worktree"));
        }
        if self.state.holds_slot() {
            return Err(self.refuse("rolled back while an attempt runs"));
        }
        Ok(self.emit(TaskEvent::RolledBack { to_attempt, commit }, at))
    }

    /// Its worktree was removed (the branch stays).
    pub fn remove_workspace(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.workspace.as_ref().is_none_or(|w| w.removed) || self.state.holds_slot() {
            return Err(self.refuse("relieved of a worktree"));
        }
        Ok(self.emit(TaskEvent::WorkspaceRemoved, at))
    }

    /// Adds a dependency before the task is assigned; `satisfied` says whether `on` is completed.
    /// A ready task whose new dependency is not yet completed goes back to `pending`.
    pub fn add_dependency(
        &mut self,
        on: TaskId,
        satisfied: bool,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if on == self.id {
            return Err(self.refuse("made to depend on itself"));
        }
        match self.state {
            S::Pending | S::Ready => {
                Ok(self.emit(TaskEvent::DependencyAdded { on, satisfied }, at))
            }
            _ => Err(self.refuse("given a new dependency")),
        }
    }

    /// Assigns the task to an agent: a new attempt with the next fencing token and a lease.
    /// The agent must be able to do it (capabilities, tier, a free slot); the caller claims the
    /// agent's slot in the same transaction.
    pub fn assign(
        &mut self,
        agent: &Agent,
        lease: DurationMs,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Ready {
            return Err(self.refuse("assigned"));
        }
        matcher::check(agent, self.spec.needs())?;
        let event = TaskEvent::Assigned {
            attempt: self.attempts_used() + 1,
            agent: agent.name.clone(),
            fencing: self.fencing.next(),
            lease_expires_at: at.plus(lease),
        };
        Ok(self.emit(event, at))
    }

    /// The agent has started the current attempt.
    pub fn start_attempt(
        &mut self,
        fencing: FencingToken,
        start: AttemptStart,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if self.state != S::Assigned {
            return Err(self.refuse("started"));
        }
        let attempt = self.attempts_used();
        Ok(self.emit(
            TaskEvent::AttemptStarted {
                attempt,
                pid: start.pid,
                checkpoint: start.checkpoint,
                port: start.port,
            },
            at,
        ))
    }

    /// Records the agent's own session id for the current attempt.
    pub fn record_session(
        &mut self,
        fencing: FencingToken,
        session: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if !matches!(self.state, S::Assigned | S::Running) {
            return Err(self.refuse("given a session by an attempt that is not running"));
        }
        if self.current_attempt().and_then(|a| a.session.as_deref()) == Some(session.as_str()) {
            return Ok(Vec::new());
        }
        let attempt = self.attempts_used();
        Ok(self.emit(TaskEvent::SessionRecorded { attempt, session }, at))
    }

    /// The running attempt's agent reports how it is getting on.
    pub fn report_progress(
        &mut self,
        fencing: FencingToken,
        note: ProgressNote,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if !matches!(self.state, S::Assigned | S::Running) {
            return Err(self.refuse("given progress by an attempt that is not running"));
        }
        let attempt = self.attempts_used();
        Ok(self.emit(TaskEvent::ProgressReported { attempt, note }, at))
    }

    /// The running attempt's agent made `tasks` its subtasks (created in the same transaction);
    /// refused beyond [`MAX_SUBTASKS`] over the task's life.
    pub fn add_subtasks(
        &mut self,
        fencing: FencingToken,
        tasks: Vec<TaskId>,
        waits: bool,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if !matches!(self.state, S::Assigned | S::Running) {
            return Err(self.refuse("given subtasks by an attempt that is not running"));
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        if self.subtasks.len().saturating_add(tasks.len()) > MAX_SUBTASKS {
            return Err(self.refuse("given more subtasks than a task may have"));
        }
        let attempt = self.attempts_used();
        Ok(self.emit(
            TaskEvent::SubtasksCreated {
                attempt,
                tasks,
                waits,
            },
            at,
        ))
    }

    /// The subtasks it waits for before it completes.
    pub fn awaited_subtasks(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.subtasks.iter().filter(|s| s.waits).map(|s| s.task)
    }

    /// Records the briefing of the attempt just assigned: exactly what its agent will get.
    pub fn brief(
        &mut self,
        briefing: Briefing,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Assigned {
            return Err(self.refuse("briefed"));
        }
        let attempt = self.attempts_used();
        Ok(self.emit(TaskEvent::Briefed { attempt, briefing }, at))
    }

    /// A heartbeat from the attempt holding `fencing`: accepted when that attempt is the
    /// current one and holds a lease (assigned or running). It changes nothing stored: the
    /// daemon keeps renewals in memory (ADR 0023), so this emits no event.
    pub fn check_lease(&self, fencing: FencingToken) -> Result<(), TransitionError> {
        self.check_fencing(fencing)?;
        if !self.state.holds_lease() {
            return Err(self.refuse("heartbeated by an attempt that is not running"));
        }
        Ok(())
    }

    /// The task as seen with the lease of the attempt holding `fencing` renewed until `until`
    /// (renewals are kept in memory, not stored: ADR 0023). Unchanged when that attempt is
    /// not the current one, holds no lease, or already holds a later one.
    #[must_use]
    pub fn with_lease_renewed(mut self, fencing: FencingToken, until: Timestamp) -> Self {
        if self.check_lease(fencing).is_ok()
            && let Some(a) = self.attempt_mut()
        {
            a.lease_expires_at = a.lease_expires_at.max(until);
        }
        self
    }

    /// The agent finished the current attempt successfully; the task moves to `verifying`.
    pub fn succeed_attempt(
        &mut self,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if self.state != S::Running {
            return Err(self.refuse("completed by an attempt that is not running"));
        }
        let attempt = self.attempts_used();
        let report = RunReport {
            failure: None,
            ..report
        };
        Ok(self.emit(
            TaskEvent::AttemptSucceeded {
                attempt,
                summary,
                report,
            },
            at,
        ))
    }

    /// The current attempt failed.
    pub fn fail_attempt(
        &mut self,
        fencing: FencingToken,
        error: String,
        report: RunReport,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        match self.state {
            S::Assigned | S::Running => {
                let attempt = self.attempts_used();
                Ok(self.emit(
                    TaskEvent::AttemptFailed {
                        attempt,
                        error,
                        report,
                    },
                    at,
                ))
            }
            _ => Err(self.refuse("failed by an attempt that is not running")),
        }
    }

    /// The current attempt was lost (its process or daemon died, or its lease expired).
    pub fn interrupt_attempt(
        &mut self,
        reason: String,
        refunded: bool,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Assigned | S::Running => {
                let attempt = self.attempts_used();
                let event = TaskEvent::AttemptInterrupted {
                    attempt,
                    reason,
                    refunded,
                };
                Ok(self.emit(event, at))
            }
            _ => Err(self.refuse("interrupted")),
        }
    }

    /// Verification passed. By the approval policy a low-risk task is accepted (`integration`
    /// is how its work was integrated); a medium- or high-risk one waits for a person.
    pub fn pass_verification(
        &mut self,
        integration: Integration,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Verifying {
            return Err(self.refuse("verified"));
        }
        if crate::policy::approval::needs_review(self.spec.risk) {
            let event = TaskEvent::ApprovalRequested {
                gate: Gate::Result,
                attempt: Some(self.attempts_used()),
                tool: None,
                subject: None,
            };
            return Ok(self.emit(event, at));
        }
        Ok(self.accept(integration, at))
    }

    /// Verification failed; its output becomes the failure context.
    pub fn fail_verification(
        &mut self,
        output: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Verifying {
            return Err(self.refuse("failed verification"));
        }
        Ok(self.emit(TaskEvent::VerificationFailed { output }, at))
    }

    /// What the task waits for a person to decide, if anything.
    pub fn waiting_gate(&self) -> Option<Gate> {
        self.pending.as_ref().map(|p| p.gate)
    }

    /// A person approved what the task waits for: running it (high risk), its result (then it
    /// is integrated as `integration` says and completed), or a tool call.
    pub fn approve(
        &mut self,
        integration: Integration,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        let gate = match (self.waiting_gate(), self.state) {
            (Some(Gate::Tool), S::Running) => Gate::Tool,
            (Some(Gate::Run), S::AwaitingApproval) => Gate::Run,
            (Some(Gate::Result) | None, S::AwaitingApproval) => Gate::Result,
            (Some(Gate::Result), S::Blocked) => Gate::Result,
            _ => return Err(self.refuse("approved: it waits for no approval")),
        };
        let mut events = self.emit(TaskEvent::ApprovalGranted { gate }, at);
        if gate == Gate::Result {
            events.extend(self.accept(integration, at));
        }
        Ok(events)
    }

    /// A person rejected what the task waits for. A rejected result fails the attempt (its
    /// reason goes to the next one); a rejected run blocks the task; a rejected tool call is
    /// refused to the agent.
    pub fn reject(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        let gate = match (self.waiting_gate(), self.state) {
            (Some(Gate::Tool), S::Running) => Gate::Tool,
            (Some(Gate::Run), S::AwaitingApproval) => Gate::Run,
            (Some(Gate::Result) | None, S::AwaitingApproval) => Gate::Result,
            // Accepted work that could not be integrated waits for a person too.
            (Some(Gate::Result), S::Blocked) => Gate::Result,
            _ => return Err(self.refuse("rejected: it waits for no approval")),
        };
        Ok(self.emit(TaskEvent::ApprovalRejected { reason, gate }, at))
    }

    /// What every attempt so far cost together.
    pub fn spent(&self) -> Usd {
        self.attempts
            .iter()
            .fold(Usd::ZERO, |sum, a| sum + a.usage.cost)
    }

    /// Tokens and money of every attempt so far.
    pub fn usage(&self) -> Usage {
        self.attempts
            .iter()
            .fold(Usage::NONE, |sum, a| sum + a.usage)
    }

    /// What is left of the budget (none: no budget).
    pub fn budget_left(&self) -> Option<Usd> {
        self.spec
            .budget
            .map(|b| Usd::from_micros(b.micros().saturating_sub(self.spent().micros())))
    }

    /// Attempts the task may make in all: `max_attempts` plus any granted since.
    pub fn attempts_allowed(&self) -> u32 {
        self.spec
            .max_attempts
            .get()
            .saturating_add(self.extra_attempts)
    }

    /// True when a failed task has attempts left and money for another one.
    pub fn can_retry(&self) -> bool {
        self.attempts_used() < self.attempts_allowed()
            && self.budget_left().is_none_or(|left| left > Usd::ZERO)
            && self.current_attempt().and_then(|a| a.failure) != Some(FailureKind::Budget)
    }

    /// Schedules another attempt after a failure, if attempts are left; `due` is when the
    /// backoff ends (none: at once). The task is `retrying` until it is made ready.
    pub fn schedule_retry(
        &mut self,
        due: Option<Timestamp>,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Failed {
            return Err(self.refuse("retried"));
        }
        if !self.can_retry() {
            return Err(self.refuse("retried: every attempt is used"));
        }
        Ok(self.emit(TaskEvent::RetryScheduled { at: due }, at))
    }

    /// True when a `retrying` task's backoff has ended at `now`.
    pub fn retry_due(&self, now: Timestamp) -> bool {
        self.state == S::Retrying && self.retry_at.is_none_or(|due| due <= now)
    }

    /// Hands a failed task to the strategic tier, with one more attempt.
    pub fn escalate(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Failed {
            return Err(self.refuse("escalated"));
        }
        if self.spec.tier == Some(Tier::Strategic) {
            return Err(self.refuse("escalated: it already needs the strategic tier"));
        }
        Ok(self.emit(TaskEvent::Escalated, at))
    }

    /// A person makes a blocked or failed task ready again with `more` attempts left (at least
    /// one; `maos task retry`). Refused when its budget is spent: more attempts would be stopped
    /// at once. (The caller checks that its dependencies completed.)
    pub fn retry_by_person(
        &mut self,
        more: u32,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if !matches!(self.state, S::Blocked | S::Failed) {
            return Err(self.refuse("retried (only a blocked or failed task can be)"));
        }
        let spent = self.budget_left().is_some_and(|left| left == Usd::ZERO)
            || self.current_attempt().and_then(|a| a.failure) == Some(FailureKind::Budget);
        if spent {
            return Err(self.refuse(
                "retried: its budget is spent (cancel it and create it again with a larger budget)",
            ));
        }
        let used = self.attempts_used();
        let allowed = self.attempts_allowed();
        // Exactly `more` attempts are left afterwards.
        let granted = used.saturating_add(more.max(1)).saturating_sub(allowed);
        let mut events = self.emit(TaskEvent::RetryRequested { granted }, at);
        if self.state == S::Failed {
            // A failed task goes through `retrying` like any retry.
            events.extend(self.emit(TaskEvent::RetryScheduled { at: None }, at));
        }
        events.extend(self.make_ready(at)?);
        Ok(events)
    }

    /// Stops the task until a person acts.
    pub fn block(
        &mut self,
        reason: BlockReason,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Pending | S::Ready | S::Failed | S::AwaitingApproval => {
                Ok(self.emit(TaskEvent::Blocked { reason }, at))
            }
            _ => Err(self.refuse("blocked")),
        }
    }

    /// Cancels the task for good. A running attempt is marked cancelled; the caller releases the
    /// agent's slot.
    pub fn cancel(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state.is_terminal() {
            return Err(self.refuse("cancelled"));
        }
        Ok(self.emit(TaskEvent::Cancelled { reason }, at))
    }
}
