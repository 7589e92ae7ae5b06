//! The Task aggregate and its attempts: the full lifecycle
//! `pending → ready → assigned → running → verifying → (awaiting_approval) → completed`, with
//! `failed → retrying → ready`, `blocked`, `cancelled` and `escalated`. Every command checks the
//! current state, returns the events it caused, and applies them; an illegal command is a
//! [`TransitionError`], never a silent no-op.

use std::collections::BTreeSet;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::agent::Agent;
use crate::error::TransitionError;
use crate::ids::{OrchestrationId, TaskId};
use crate::policy::matcher;
use crate::run::{Exit, FailureKind, RunReport, Usage, Usd};
use crate::values::{
    AgentName, CapabilitySet, DurationMs, FencingToken, IdempotencyKey, MaxAttempts, Priority,
    Risk, Tier, Timestamp, Title, keyword_enum,
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
}

/// The state of a task. Read it through [`Task`]; change it only through `Task`'s methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskData {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub state: TaskState,
    /// Why the task is blocked, cancelled or failed, when it is.
    pub reason: Option<String>,
    pub attempts: Vec<Attempt>,
    /// The token of the newest attempt (0 before the first).
    pub fencing: FencingToken,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Number of events applied since creation.
    pub version: u64,
}

/// Something that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskEvent {
    Created {
        spec: TaskSpec,
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
    },
    SessionRecorded {
        attempt: u32,
        session: String,
    },
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
    },
    VerificationFailed {
        output: String,
    },
    ApprovalRequested,
    ApprovalRejected {
        reason: String,
    },
    Completed,
    RetryScheduled,
    Escalated,
    Blocked {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

impl TaskEvent {
    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskEvent::Created { .. } => "task.created",
            TaskEvent::Ready => "task.ready",
            TaskEvent::DependencyAdded { .. } => "task.dependency_added",
            TaskEvent::Assigned { .. } => "task.assigned",
            TaskEvent::AttemptStarted { .. } => "task.attempt_started",
            TaskEvent::SessionRecorded { .. } => "task.session_recorded",
            TaskEvent::LeaseRenewed { .. } => "task.lease_renewed",
            TaskEvent::AttemptSucceeded { .. } => "task.attempt_succeeded",
            TaskEvent::AttemptFailed { .. } => "task.attempt_failed",
            TaskEvent::AttemptInterrupted { .. } => "task.attempt_interrupted",
            TaskEvent::VerificationFailed { .. } => "task.verification_failed",
            TaskEvent::ApprovalRequested => "task.approval_requested",
            TaskEvent::ApprovalRejected { .. } => "task.approval_rejected",
            TaskEvent::Completed => "task.completed",
            TaskEvent::RetryScheduled => "task.retry_scheduled",
            TaskEvent::Escalated => "task.escalated",
            TaskEvent::Blocked { .. } => "task.blocked",
            TaskEvent::Cancelled { .. } => "task.cancelled",
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
        (task, vec![TaskEvent::Created { spec }])
    }

    fn from_spec(id: TaskId, spec: TaskSpec, at: Timestamp) -> Task {
        Task(TaskData {
            id,
            spec,
            state: S::Pending,
            reason: None,
            attempts: Vec::new(),
            fencing: FencingToken::new(0),
            created_at: at,
            updated_at: at,
            version: 1,
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
        let mut task = Task::from_spec(id, spec.clone(), at);
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
                });
                t.0.fencing = *fencing;
                t.0.state = S::Assigned;
            }
            TaskEvent::AttemptStarted { pid, .. } => {
                if let Some(a) = t.attempt_mut() {
                    a.status = AttemptOutcome::Running;
                    a.started_at = Some(at);
                    a.pid = *pid;
                }
                t.0.state = S::Running;
            }
            TaskEvent::SessionRecorded { session, .. } => {
                if let Some(a) = t.attempt_mut() {
                    a.session = Some(session.clone());
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
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Succeeded);
                    a.summary.clone_from(summary);
                    a.record(report);
                }
                t.0.state = S::Verifying;
            }
            TaskEvent::AttemptFailed { error, report, .. } => {
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Failed);
                    a.error = Some(error.clone());
                    a.record(report);
                }
                t.0.state = S::Failed;
                t.0.reason = Some(error.clone());
            }
            TaskEvent::AttemptInterrupted { reason, .. } => {
                if let Some(a) = t.attempt_mut() {
                    end(a, AttemptOutcome::Interrupted);
                    a.error = Some(reason.clone());
                    a.failure = Some(FailureKind::Interrupted);
                }
                t.0.state = S::Failed;
                t.0.reason = Some(reason.clone());
            }
            TaskEvent::VerificationFailed { output } => {
                if let Some(a) = t.attempt_mut() {
                    a.status = AttemptOutcome::Failed;
                    a.error = Some(format!("verification failed: {output}"));
                }
                t.0.state = S::Failed;
                t.0.reason = Some(format!("verification failed: {output}"));
            }
            TaskEvent::ApprovalRequested => t.0.state = S::AwaitingApproval,
            TaskEvent::ApprovalRejected { reason } => {
                if let Some(a) = t.attempt_mut() {
                    a.status = AttemptOutcome::Failed;
                    a.error = Some(format!("rejected: {reason}"));
                }
                t.0.state = S::Failed;
                t.0.reason = Some(format!("rejected: {reason}"));
            }
            TaskEvent::Completed => {
                t.0.state = S::Completed;
                t.0.reason = None;
            }
            TaskEvent::RetryScheduled => t.0.state = S::Retrying,
            TaskEvent::Escalated => {
                t.0.state = S::Escalated;
                t.0.spec.tier = Some(Tier::Strategic);
            }
            TaskEvent::Blocked { reason } => {
                t.0.state = S::Blocked;
                t.0.reason = Some(reason.clone());
            }
            TaskEvent::Cancelled { reason } => {
                if t.0.state.holds_slot()
                    && let Some(a) = t.attempt_mut()
                {
                    end(a, AttemptOutcome::Cancelled);
                }
                t.0.state = S::Cancelled;
                t.0.reason = Some(reason.clone());
            }
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
    pub fn make_ready(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Pending | S::Retrying | S::Escalated | S::Blocked => {
                Ok(self.emit(TaskEvent::Ready, at))
            }
            _ => Err(self.refuse("made ready")),
        }
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
        matcher::check(agent, &self.spec.capabilities, self.spec.tier)?;
        let event = TaskEvent::Assigned {
            attempt: self.attempts_used() + 1,
            agent: agent.name.clone(),
            fencing: self.fencing.next(),
            lease_expires_at: at.plus(lease),
        };
        Ok(self.emit(event, at))
    }

    /// The agent has started the current attempt (`pid`: its process, when there is one).
    pub fn start_attempt(
        &mut self,
        fencing: FencingToken,
        pid: Option<u32>,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if self.state != S::Assigned {
            return Err(self.refuse("started"));
        }
        let attempt = self.attempts_used();
        Ok(self.emit(TaskEvent::AttemptStarted { attempt, pid }, at))
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

    /// A heartbeat: the current attempt's lease now runs until `at + lease`.
    pub fn renew_lease(
        &mut self,
        fencing: FencingToken,
        lease: DurationMs,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        self.check_fencing(fencing)?;
        if !matches!(self.state, S::Assigned | S::Running) {
            return Err(self.refuse("heartbeated by an attempt that is not running"));
        }
        let attempt = self.attempts_used();
        let lease_expires_at = at.plus(lease);
        Ok(self.emit(
            TaskEvent::LeaseRenewed {
                attempt,
                lease_expires_at,
            },
            at,
        ))
    }

    /// True when the current attempt holds a lease that ran out before `now`.
    pub fn lease_expired(&self, now: Timestamp) -> bool {
        matches!(self.state, S::Assigned | S::Running)
            && self
                .current_attempt()
                .is_some_and(|a| a.lease_expires_at < now)
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
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Assigned | S::Running => {
                let attempt = self.attempts_used();
                Ok(self.emit(TaskEvent::AttemptInterrupted { attempt, reason }, at))
            }
            _ => Err(self.refuse("interrupted")),
        }
    }

    /// Verification passed. By the approval policy a low-risk task completes; a medium- or
    /// high-risk one waits for a person.
    pub fn pass_verification(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Verifying {
            return Err(self.refuse("verified"));
        }
        let event = if crate::policy::approval::needs_review(self.spec.risk) {
            TaskEvent::ApprovalRequested
        } else {
            TaskEvent::Completed
        };
        Ok(self.emit(event, at))
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

    /// A person approved the work.
    pub fn approve(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::AwaitingApproval {
            return Err(self.refuse("approved"));
        }
        Ok(self.emit(TaskEvent::Completed, at))
    }

    /// A person rejected the work; the reason goes to the next attempt.
    pub fn reject(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::AwaitingApproval {
            return Err(self.refuse("rejected"));
        }
        Ok(self.emit(TaskEvent::ApprovalRejected { reason }, at))
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

    /// True when a failed task has attempts left and money for another one.
    pub fn can_retry(&self) -> bool {
        self.attempts_used() < self.spec.max_attempts.get()
            && self.budget_left().is_none_or(|left| left > Usd::ZERO)
            && self.current_attempt().and_then(|a| a.failure) != Some(FailureKind::Budget)
    }

    /// Schedules another attempt after a failure, if attempts are left.
    pub fn schedule_retry(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Failed {
            return Err(self.refuse("retried"));
        }
        if !self.can_retry() {
            return Err(self.refuse("retried: every attempt is used"));
        }
        Ok(self.emit(TaskEvent::RetryScheduled, at))
    }

    /// Hands a failed task to the strategic tier.
    pub fn escalate(&mut self, at: Timestamp) -> Result<Vec<TaskEvent>, TransitionError> {
        if self.state != S::Failed {
            return Err(self.refuse("escalated"));
        }
        if self.spec.tier == Some(Tier::Strategic) {
            return Err(self.refuse("escalated: it already needs the strategic tier"));
        }
        Ok(self.emit(TaskEvent::Escalated, at))
    }

    /// Stops the task until a person acts.
    pub fn block(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<TaskEvent>, TransitionError> {
        match self.state {
            S::Pending | S::Ready | S::Failed => Ok(self.emit(TaskEvent::Blocked { reason }, at)),
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
