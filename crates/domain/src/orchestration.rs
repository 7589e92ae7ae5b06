//! The Orchestration aggregate: a goal and the task graph that carries it out, with its lifecycle
//! `draft → awaiting_plan_approval → running ⇄ paused → completed | failed | cancelled`.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::error::TransitionError;
use crate::ids::{OrchestrationId, TaskId};
use crate::plan::PlanVersion;
use crate::task::WorkspaceSpec;
use crate::values::{Timestamp, Title, keyword_enum};

keyword_enum!(
    /// Where an orchestration stands.
    OrchestrationStatus, "orchestration status" {
        Draft => "draft",
        AwaitingPlanApproval => "awaiting_plan_approval",
        Running => "running",
        Paused => "paused",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl OrchestrationStatus {
    /// True for states that never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// What a new orchestration says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestrationSpec {
    pub name: Title,
    pub goal: Option<String>,
    /// The repository its tasks work in, and the branch they start from.
    #[serde(default)]
    pub workspace: Option<WorkspaceSpec>,
    /// The verification command its tasks inherit.
    #[serde(default)]
    pub verify: Option<String>,
    /// Notes pinned to every task's briefing.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Made from a plan or a workflow: its tasks are all known, so it completes once they
    /// have (an orchestration made empty may get tasks at any time, and stays open).
    #[serde(default)]
    pub planned: bool,
}

/// The state of an orchestration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestrationData {
    pub id: OrchestrationId,
    pub name: Title,
    pub goal: Option<String>,
    #[serde(default)]
    pub workspace: Option<WorkspaceSpec>,
    #[serde(default)]
    pub verify: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Made from a plan or a workflow (see [`OrchestrationSpec::planned`]).
    #[serde(default)]
    pub planned: bool,
    pub status: OrchestrationStatus,
    /// The number of its plan's newest version (0: none yet). The versions themselves are in
    /// the event log (`orchestration.plan_proposed`).
    #[serde(default)]
    pub plan_version: u32,
    /// The planning task at work on a version of its plan, if any.
    #[serde(default)]
    pub planning: Option<Planning>,
    /// The number of the version its tasks carry out (0: none approved).
    #[serde(default)]
    pub approved_version: u32,
    /// The newest version a decision was made on, approved or rejected (a newer one waits).
    #[serde(default)]
    pub decided_version: u32,
    /// Its tasks that a revision of the plan replaced or dropped: cancelled, and not counted
    /// against it when it ends.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub superseded: std::collections::BTreeSet<TaskId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// A planner at work on an orchestration's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planning {
    /// The planning task (its answer is the plan).
    pub task: TaskId,
    /// The most tasks the plan may have.
    pub max_tasks: u32,
    /// The discussion with the person the goal came from (a discussion before planning), if any: a
    /// task whose attempts hold the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discussion: Option<TaskId>,
}

keyword_enum!(
    /// Who approved a plan: a person (or `--yes` on their behalf), or the configuration, which
    /// approves plans without asking.
    PlanApprover, "plan approver" {
        Person => "person",
        Config => "config",
    }
);

/// Something that happened to an orchestration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrchestrationEvent {
    Created {
        name: Title,
        goal: Option<String>,
        #[serde(default)]
        workspace: Option<WorkspaceSpec>,
        #[serde(default)]
        verify: Option<String>,
        #[serde(default)]
        notes: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        planned: bool,
    },
    /// Its integration branch was merged into a branch of the user's.
    Merged {
        into: String,
        commit: String,
    },
    PlanApprovalRequested,
    /// A planner started on a version of its plan (the first, or one a person asked for).
    PlanningStarted {
        planning: Planning,
    },
    /// A version of its plan, from a planner or a person, awaits approval.
    PlanProposed {
        version: Box<PlanVersion>,
    },
    /// The planner gave no plan that passed the checks: the last answer's plan text (if one
    /// was found) and its problems, kept for a person to fix.
    PlanningFailed {
        task: TaskId,
        #[serde(default)]
        text: Option<String>,
        problems: Vec<String>,
    },
    /// A version of its plan was approved (its tasks are created in the same transaction; for a
    /// revision of a running plan, the tasks it replaces or drops are cancelled in it too).
    PlanApproved {
        version: u32,
        by: PlanApprover,
        /// Each task of the version by its key in the plan.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        tasks: std::collections::BTreeMap<crate::plan_key::PlanKey, TaskId>,
        /// The tasks of the previous version this one replaces or drops.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        superseded: Vec<TaskId>,
    },
    /// A person rejected a version of its plan: before it ran, the orchestration is cancelled in
    /// the same transaction; a revision of a running plan is set aside and the plan runs on.
    PlanRejected {
        version: u32,
        #[serde(default)]
        reason: Option<String>,
    },
    Started,
    Paused,
    Resumed,
    Completed,
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

impl OrchestrationEvent {
    /// Every name [`Self::kind`] gives, in the order of `kind`'s arms.
    pub const KINDS: &'static [&'static str] = &[
        "orchestration.created",
        "orchestration.merged",
        "orchestration.plan_approval_requested",
        "orchestration.planning_started",
        "orchestration.plan_proposed",
        "orchestration.planning_failed",
        "orchestration.plan_approved",
        "orchestration.plan_rejected",
        "orchestration.started",
        "orchestration.paused",
        "orchestration.resumed",
        "orchestration.completed",
        "orchestration.failed",
        "orchestration.cancelled",
    ];

    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Created { .. } => "orchestration.created",
            Self::Merged { .. } => "orchestration.merged",
            Self::PlanApprovalRequested => "orchestration.plan_approval_requested",
            Self::PlanningStarted { .. } => "orchestration.planning_started",
            Self::PlanProposed { .. } => "orchestration.plan_proposed",
            Self::PlanningFailed { .. } => "orchestration.planning_failed",
            Self::PlanApproved { .. } => "orchestration.plan_approved",
            Self::PlanRejected { .. } => "orchestration.plan_rejected",
            Self::Started => "orchestration.started",
            Self::Paused => "orchestration.paused",
            Self::Resumed => "orchestration.resumed",
            Self::Completed => "orchestration.completed",
            Self::Failed { .. } => "orchestration.failed",
            Self::Cancelled { .. } => "orchestration.cancelled",
        }
    }
}

/// An orchestration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orchestration(OrchestrationData);

impl Deref for Orchestration {
    type Target = OrchestrationData;
    fn deref(&self) -> &OrchestrationData {
        &self.0
    }
}

use OrchestrationStatus as O;

impl Orchestration {
    /// Creates an orchestration in `draft`.
    pub fn create(
        id: OrchestrationId,
        spec: OrchestrationSpec,
        at: Timestamp,
    ) -> (Orchestration, Vec<OrchestrationEvent>) {
        let o = Orchestration(OrchestrationData {
            id,
            name: spec.name.clone(),
            goal: spec.goal.clone(),
            workspace: spec.workspace.clone(),
            verify: spec.verify.clone(),
            notes: spec.notes.clone(),
            planned: spec.planned,
            status: O::Draft,
            plan_version: 0,
            planning: None,
            approved_version: 0,
            decided_version: 0,
            superseded: Default::default(),
            created_at: at,
            updated_at: at,
            version: 1,
        });
        let event = OrchestrationEvent::Created {
            name: spec.name,
            goal: spec.goal,
            workspace: spec.workspace,
            verify: spec.verify,
            notes: spec.notes,
            planned: spec.planned,
        };
        (o, vec![event])
    }

    /// The branch its tasks' accepted work is merged into: `maos/orch-<short id>`.
    pub fn integration_branch(&self) -> String {
        integration_branch_of(self.id)
    }

    /// Records that its integration branch was merged into `into`.
    pub fn record_merge(
        &mut self,
        into: String,
        commit: String,
        at: Timestamp,
    ) -> Vec<OrchestrationEvent> {
        let event = OrchestrationEvent::Merged { into, commit };
        self.apply(&event, at);
        vec![event]
    }

    /// Rebuilds an orchestration from stored state (for repositories).
    pub fn restore(data: OrchestrationData) -> Orchestration {
        Orchestration(data)
    }

    /// The stored state.
    pub fn data(&self) -> &OrchestrationData {
        &self.0
    }

    /// Rebuilds an orchestration by folding its events, oldest first.
    pub fn from_events<'a>(
        id: OrchestrationId,
        events: impl IntoIterator<Item = (&'a OrchestrationEvent, Timestamp)>,
    ) -> Option<Orchestration> {
        let mut it = events.into_iter();
        let (first, at) = it.next()?;
        let OrchestrationEvent::Created {
            name,
            goal,
            workspace,
            verify,
            notes,
            planned,
        } = first
        else {
            return None;
        };
        let spec = OrchestrationSpec {
            name: name.clone(),
            goal: goal.clone(),
            workspace: workspace.clone(),
            verify: verify.clone(),
            notes: notes.clone(),
            planned: *planned,
        };
        let (mut o, _) = Orchestration::create(id, spec, at);
        for (e, at) in it {
            o.apply(e, at);
        }
        Some(o)
    }

    /// Applies one event (already validated by the command that produced it).
    pub fn apply(&mut self, event: &OrchestrationEvent, at: Timestamp) {
        let d = &mut self.0;
        d.status = match event {
            OrchestrationEvent::Created { .. } | OrchestrationEvent::Merged { .. } => d.status,
            OrchestrationEvent::PlanApproved {
                version,
                superseded,
                ..
            } => {
                d.approved_version = *version;
                d.decided_version = *version;
                d.superseded.extend(superseded.iter().copied());
                d.status
            }
            OrchestrationEvent::PlanRejected { version, .. } => {
                d.decided_version = *version;
                d.status
            }
            OrchestrationEvent::PlanningStarted { planning } => {
                d.planning = Some(*planning);
                d.status
            }
            OrchestrationEvent::PlanningFailed { .. } => {
                d.planning = None;
                d.status
            }
            OrchestrationEvent::PlanProposed { version } => {
                d.planning = None;
                d.plan_version = version.number;
                match d.status {
                    // A revision of a plan at work: it runs on while the revision waits.
                    O::Running | O::Paused => d.status,
                    _ => O::AwaitingPlanApproval,
                }
            }
            OrchestrationEvent::PlanApprovalRequested => O::AwaitingPlanApproval,
            OrchestrationEvent::Started | OrchestrationEvent::Resumed => O::Running,
            OrchestrationEvent::Paused => O::Paused,
            // An orchestration that ends has no planner at work any more (the caller stops it).
            OrchestrationEvent::Completed => {
                d.planning = None;
                O::Completed
            }
            OrchestrationEvent::Failed { .. } => {
                d.planning = None;
                O::Failed
            }
            OrchestrationEvent::Cancelled { .. } => {
                d.planning = None;
                O::Cancelled
            }
        };
        d.updated_at = at;
        d.version += 1;
    }

    fn transition(
        &mut self,
        allowed: &[OrchestrationStatus],
        event: OrchestrationEvent,
        action: &'static str,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        if !allowed.contains(&self.status) {
            return Err(TransitionError::Orchestration {
                id: self.id,
                from: self.status,
                action,
            });
        }
        self.apply(&event, at);
        Ok(vec![event])
    }

    /// Asks a person to approve the plan before it runs.
    pub fn request_plan_approval(
        &mut self,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(
            &[O::Draft],
            OrchestrationEvent::PlanApprovalRequested,
            "sent for plan approval",
            at,
        )
    }

    /// A planner starts on a version of the plan: before the first, or when a person asks for
    /// another (regenerate). One planner at a time.
    pub fn start_planning(
        &mut self,
        planning: Planning,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        if let Some(busy) = self.planning {
            return Err(TransitionError::Orchestration {
                id: self.id,
                from: self.status,
                action: if busy.task == planning.task {
                    "given the same planner twice"
                } else {
                    "given another planner while one is at work"
                },
            });
        }
        // A plan at work is revised only when it came from versions (a plan file's has none).
        let allowed: &[OrchestrationStatus] = if self.approved_version > 0 {
            &[O::Running, O::Paused]
        } else {
            &[O::Draft, O::AwaitingPlanApproval]
        };
        self.transition(
            allowed,
            OrchestrationEvent::PlanningStarted { planning },
            "planned",
            at,
        )
    }

    /// A new version of the plan awaits approval; `version.number` must follow the newest.
    pub fn propose_plan(
        &mut self,
        version: PlanVersion,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        if version.number != self.plan_version + 1 {
            return Err(TransitionError::Orchestration {
                id: self.id,
                from: self.status,
                action: "given a plan version out of order",
            });
        }
        let allowed: &[OrchestrationStatus] = if self.approved_version > 0 {
            &[O::Running, O::Paused]
        } else {
            &[O::Draft, O::AwaitingPlanApproval]
        };
        self.transition(
            allowed,
            OrchestrationEvent::PlanProposed {
                version: Box::new(version),
            },
            "given a plan",
            at,
        )
    }

    /// The planner `task` gave no acceptable plan: its work ends, with what it left.
    pub fn fail_planning(
        &mut self,
        task: TaskId,
        text: Option<String>,
        problems: Vec<String>,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        if self.planning.map(|p| p.task) != Some(task) {
            return Err(TransitionError::Orchestration {
                id: self.id,
                from: self.status,
                action: "told of a planner that is not at work",
            });
        }
        let event = OrchestrationEvent::PlanningFailed {
            task,
            text,
            problems,
        };
        self.apply(&event, at);
        Ok(vec![event])
    }

    /// Approves the newest version of the plan (`version` must be it, undecided, and no planner
    /// at work on another): before it runs, it starts running; a revision of a plan at work
    /// takes effect (`tasks`: every task of the version by key; `superseded`: the tasks of the
    /// previous version it replaces or drops, which the caller cancels).
    pub fn approve_plan(
        &mut self,
        version: u32,
        by: PlanApprover,
        tasks: std::collections::BTreeMap<crate::plan_key::PlanKey, TaskId>,
        superseded: Vec<TaskId>,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        let refuse = |o: &Self, action| {
            Err(TransitionError::Orchestration {
                id: o.id,
                from: o.status,
                action,
            })
        };
        let revision = self.approved_version > 0;
        let allowed: &[OrchestrationStatus] = if revision {
            &[O::Running, O::Paused]
        } else {
            &[O::AwaitingPlanApproval]
        };
        if !allowed.contains(&self.status) {
            return refuse(self, "approved");
        }
        if self.planning.is_some() {
            return refuse(self, "approved while a planner works on a new version");
        }
        if version != self.plan_version {
            return refuse(self, "approved at a version that is not its newest");
        }
        if version <= self.decided_version {
            return refuse(self, "approved at a version already decided on");
        }
        let mut events = self.transition(
            allowed,
            OrchestrationEvent::PlanApproved {
                version,
                by,
                tasks,
                superseded,
            },
            "approved",
            at,
        )?;
        if !revision {
            events.extend(self.start(at)?);
        }
        Ok(events)
    }

    /// A person rejects the newest version of the plan: before the plan runs, the orchestration
    /// is cancelled; a revision of a plan at work is set aside (the plan runs on).
    pub fn reject_plan(
        &mut self,
        reason: Option<String>,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        let version = self.plan_version;
        if self.approved_version > 0 {
            if version <= self.decided_version {
                return Err(TransitionError::Orchestration {
                    id: self.id,
                    from: self.status,
                    action: "rejected with no revision waiting",
                });
            }
            return self.transition(
                &[O::Running, O::Paused],
                OrchestrationEvent::PlanRejected { version, reason },
                "rejected",
                at,
            );
        }
        let mut events = self.transition(
            &[O::Draft, O::AwaitingPlanApproval],
            OrchestrationEvent::PlanRejected {
                version,
                reason: reason.clone(),
            },
            "rejected",
            at,
        )?;
        let why = match reason {
            Some(r) => format!("its plan was rejected: {r}"),
            None => "its plan was rejected".to_owned(),
        };
        events.extend(self.cancel(why, at)?);
        Ok(events)
    }

    /// Starts running the plan.
    pub fn start(&mut self, at: Timestamp) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        if self.planning.is_some() {
            return Err(TransitionError::Orchestration {
                id: self.id,
                from: self.status,
                action: "started while a planner works on its plan",
            });
        }
        self.transition(
            &[O::Draft, O::AwaitingPlanApproval],
            OrchestrationEvent::Started,
            "started",
            at,
        )
    }

    /// Stops new assignments.
    pub fn pause(&mut self, at: Timestamp) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(&[O::Running], OrchestrationEvent::Paused, "paused", at)
    }

    /// Resumes assignments.
    pub fn resume(&mut self, at: Timestamp) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(&[O::Paused], OrchestrationEvent::Resumed, "resumed", at)
    }

    /// Every task completed.
    pub fn complete(&mut self, at: Timestamp) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(
            &[O::Running],
            OrchestrationEvent::Completed,
            "completed",
            at,
        )
    }

    /// The plan cannot be finished.
    pub fn fail(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(
            &[O::Running, O::Paused],
            OrchestrationEvent::Failed { reason },
            "failed",
            at,
        )
    }

    /// Stops the orchestration for good.
    pub fn cancel(
        &mut self,
        reason: String,
        at: Timestamp,
    ) -> Result<Vec<OrchestrationEvent>, TransitionError> {
        self.transition(
            &[O::Draft, O::AwaitingPlanApproval, O::Running, O::Paused],
            OrchestrationEvent::Cancelled { reason },
            "cancelled",
            at,
        )
    }
}

/// The integration branch of orchestration `id`: `maos/orch-<short id>`.
pub fn integration_branch_of(id: OrchestrationId) -> String {
    format!("maos/orch-{}", id.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_and_fold() {
        let t = |ms| Timestamp::from_millis(ms);
        let id = OrchestrationId::from_bits(7);
        let (mut o, mut events) = Orchestration::create(
            id,
            OrchestrationSpec {
                name: Title::parse("ship").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
                planned: true,
            },
            t(1),
        );
        let mut log: Vec<(OrchestrationEvent, Timestamp)> =
            events.drain(..).map(|e| (e, t(1))).collect();
        assert!(o.pause(t(2)).is_err());
        for (step, ms) in [
            Orchestration::request_plan_approval as fn(&mut Orchestration, Timestamp) -> _,
            Orchestration::start,
            Orchestration::pause,
            Orchestration::resume,
            Orchestration::complete,
        ]
        .into_iter()
        .zip(3..)
        {
            log.extend(step(&mut o, t(ms)).unwrap().into_iter().map(|e| (e, t(ms))));
        }
        assert_eq!(o.status, OrchestrationStatus::Completed);
        assert!(o.cancel("late".into(), t(9)).is_err());
        let folded = Orchestration::from_events(id, log.iter().map(|(e, at)| (e, *at))).unwrap();
        assert_eq!(folded, o);
    }
}
