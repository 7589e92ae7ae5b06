//! Why a task stopped, and what a person can do about it, as data: the facts (which attempt,
//! which dependency, which branch, what failed) that every front end renders in its own words.
//! Nothing here is a sentence or a command line; the CLI, the dashboard and the MCP server each
//! say it their way (ADR 0015).

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{OrchestrationId, TaskId};
use crate::orchestration::OrchestrationStatus;
use crate::policy::concerns::Concern;
use crate::run::{FailureKind, Usd};
use crate::task::{Gate, TaskState};
use crate::values::{AgentName, CapabilitySet, Tier, Timestamp, Title, keyword_enum};

/// Why a task is blocked: it stays put until a person acts.
///
/// Stored in the `task.blocked` event and on the task. Events written before reasons were data
/// hold a sentence instead; they read back as [`BlockReason::Text`] ([`data_or_sentence`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BlockReason {
    /// Attempt `attempt` could not start (its agent's program, or its workspace): it fails the
    /// same way every time, so no retry helps until someone fixes it.
    CannotStart { attempt: u32, failure: FailureKind },
    /// Its attempts failed (`failed` of them, and `interrupted` more were interrupted), the last
    /// being `attempt`, and nobody can take it over: it ran on the strategic tier already, or no
    /// agent of that tier offers what it needs.
    AttemptsFailed {
        attempt: u32,
        failed: u32,
        interrupted: u32,
        /// It ran on the strategic tier (else: no strategic agent could take it over).
        strategic: bool,
    },
    /// Its budget is spent: `spent` of `budget`, the last attempt being `attempt`.
    BudgetSpent {
        attempt: u32,
        budget: Usd,
        spent: Usd,
    },
    /// Its dependency `dependency` was cancelled, so it can never run as it is.
    DependencyCancelled { dependency: TaskId },
    /// A person rejected it before it ran (their words are the task's decision).
    RejectedBeforeRun,
    /// Merging its accepted work into `into` conflicts in `paths`.
    MergeConflict { into: String, paths: Vec<String> },
    /// Merging its accepted work into `into` failed for another reason (`error`, from git).
    MergeFailed { into: String, error: String },
    /// A reason stored as a sentence, before reasons were data.
    Text { text: String },
}

impl BlockReason {
    /// Every name [`BlockReason::kind`] gives, in the order of its arms.
    pub const KINDS: &'static [&'static str] = &[
        "cannot_start",
        "attempts_failed",
        "budget_spent",
        "dependency_cancelled",
        "rejected_before_run",
        "merge_conflict",
        "merge_failed",
        "text",
    ];

    /// The reason's name in JSON (`kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            BlockReason::CannotStart { .. } => "cannot_start",
            BlockReason::AttemptsFailed { .. } => "attempts_failed",
            BlockReason::BudgetSpent { .. } => "budget_spent",
            BlockReason::DependencyCancelled { .. } => "dependency_cancelled",
            BlockReason::RejectedBeforeRun => "rejected_before_run",
            BlockReason::MergeConflict { .. } => "merge_conflict",
            BlockReason::MergeFailed { .. } => "merge_failed",
            BlockReason::Text { .. } => "text",
        }
    }

    /// True when running the task again cannot help until something else changes (a cancelled
    /// dependency, a spent budget): a person can only cancel it, or change what it depends on.
    pub fn retry_is_futile(&self) -> bool {
        matches!(
            self,
            BlockReason::DependencyCancelled { .. } | BlockReason::BudgetSpent { .. }
        )
    }
}

/// Reads a stored block reason in either shape: data, or the sentence an older MAOS wrote in
/// the `task.blocked` event (read as [`BlockReason::Text`]).
pub(crate) fn data_or_sentence<'de, D: Deserializer<'de>>(d: D) -> Result<BlockReason, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Data(BlockReason),
        Text(String),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Data(reason) => reason,
        Stored::Text(text) => BlockReason::Text { text },
    })
}

/// Something a person can do next, as data: a front end turns it into a command line, a
/// button or a tool call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NextStep {
    /// Approve what task `task` waits for.
    Approve { task: TaskId },
    /// Reject it, with a reason.
    Reject { task: TaskId },
    /// Run the task again (more attempts).
    Retry { task: TaskId },
    /// Cancel the task.
    Cancel { task: TaskId },
    /// Look at the task (its state, history and what it waits for).
    ShowTask { task: TaskId },
    /// Hand the task to an external agent.
    Assign { task: TaskId, agent: AgentName },
    /// Start a draft orchestration (or approve its plan).
    StartOrchestration { orchestration: OrchestrationId },
    /// Resume a paused orchestration.
    ResumeOrchestration { orchestration: OrchestrationId },
    /// Take a drained agent back into work.
    ResumeAgent { agent: AgentName },
    /// Register an agent that offers what is needed.
    RegisterAgent,
}

keyword_enum!(
    /// What kind of thing a task waits for: the groups [`WaitReason`]s fall in.
    WaitKind, "wait kind" {
        /// A dependency has not completed.
        Dependency => "dependency",
        /// Another task holds a concern that overlaps one of its own.
        Concern => "concern",
        /// No registered agent that takes work has its capabilities and tier.
        NoCapableAgent => "no_capable_agent",
        /// Capable agents exist, but none takes it now.
        AgentsBusy => "agents_busy",
        /// Its budget is spent.
        Budget => "budget",
        /// A person must approve something.
        Approval => "approval",
        /// The backoff after a failed attempt.
        Backoff => "backoff",
        /// Its orchestration is not running.
        Orchestration => "orchestration",
        /// It is blocked: a person decides.
        Person => "person",
    }
);

/// One thing a task that does not run waits for, with the facts a front end needs to say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "wait", rename_all = "snake_case")]
pub enum WaitReason {
    /// Its dependency `task` (titled `title`) is `state`, not completed.
    Dependency {
        task: TaskId,
        title: Title,
        state: TaskState,
    },
    /// Its dependency `task` does not exist.
    MissingDependency { task: TaskId },
    /// The backoff after its failed attempt: the retry is due at `due`, `wait_ms` from now
    /// (none or zero: due; it becomes ready at the next scheduling pass).
    Backoff {
        due: Option<Timestamp>,
        wait_ms: u64,
    },
    /// A person must approve what `gate` guards.
    Approval { gate: Gate },
    /// It is blocked (`reason`; none for a task blocked by an older MAOS, whose words are
    /// `words`); `cancelled_dependency` when one of its dependencies is cancelled, and
    /// `budget_spent` when its budget is: then running it again cannot help.
    Blocked {
        reason: Option<BlockReason>,
        words: Option<String>,
        cancelled_dependency: Option<TaskId>,
        budget_spent: bool,
    },
    /// Its orchestration is `status`, not running.
    Orchestration {
        orchestration: OrchestrationId,
        status: OrchestrationStatus,
    },
    /// Its budget (`budget`) is spent.
    Budget { budget: Usd },
    /// Its concern `mine` overlaps `theirs`, held by `holder` until that task's work is accepted.
    Concern {
        mine: Concern,
        theirs: Concern,
        holder: TaskId,
    },
    /// No agent that takes work offers `capabilities` (of `tier`); `draining` could but are
    /// drained.
    NoCapableAgent {
        capabilities: CapabilitySet,
        tier: Option<Tier>,
        draining: Vec<AgentName>,
    },
    /// Every capable agent is busy.
    AgentsBusy { agents: Vec<AgentName> },
    /// `agents`, run by the daemon, can take it now: it is assigned at the next scheduling pass
    /// of a daemon (none assigns in a process without one).
    AssignsSoon { agents: Vec<AgentName> },
    /// Only external agents (`agents`) offer what it needs; MAOS never assigns work to them.
    ExternalOnly { agents: Vec<AgentName> },
    /// Every capable agent MAOS runs (`busy`) is busy; the external ones (`external`) could take
    /// it.
    BusyOrExternal {
        busy: Vec<AgentName>,
        external: Vec<AgentName>,
    },
    /// A capable agent is free: it runs at the next scheduling pass.
    NextPass,
}

impl WaitReason {
    /// The group the reason falls in.
    pub fn kind(&self) -> WaitKind {
        match self {
            WaitReason::Dependency { .. } | WaitReason::MissingDependency { .. } => {
                WaitKind::Dependency
            }
            WaitReason::Backoff { .. } => WaitKind::Backoff,
            WaitReason::Approval { .. } => WaitKind::Approval,
            WaitReason::Blocked { .. } => WaitKind::Person,
            WaitReason::Orchestration { .. } => WaitKind::Orchestration,
            WaitReason::Budget { .. } => WaitKind::Budget,
            WaitReason::Concern { .. } => WaitKind::Concern,
            WaitReason::NoCapableAgent { .. } => WaitKind::NoCapableAgent,
            WaitReason::AgentsBusy { .. }
            | WaitReason::AssignsSoon { .. }
            | WaitReason::ExternalOnly { .. }
            | WaitReason::BusyOrExternal { .. }
            | WaitReason::NextPass => WaitKind::AgentsBusy,
        }
    }

    /// The other task involved (the dependency, the holder of the concern), if any.
    pub fn task(&self) -> Option<TaskId> {
        match self {
            WaitReason::Dependency { task, .. } | WaitReason::MissingDependency { task } => {
                Some(*task)
            }
            WaitReason::Concern { holder, .. } => Some(*holder),
            WaitReason::Blocked {
                cancelled_dependency,
                ..
            } => *cancelled_dependency,
            _ => None,
        }
    }

    /// True when nothing but a person can end the wait (time, other tasks and agents freeing up
    /// cannot).
    pub fn needs_a_person(&self) -> bool {
        matches!(
            self.kind(),
            WaitKind::NoCapableAgent
                | WaitKind::Budget
                | WaitKind::Orchestration
                | WaitKind::Approval
                | WaitKind::Person
        )
    }

    /// What a person can do to end the wait of task `task`, most useful first (empty: wait).
    pub fn next_steps(&self, task: TaskId) -> Vec<NextStep> {
        match self {
            WaitReason::Approval { .. } => {
                vec![NextStep::Approve { task }, NextStep::Reject { task }]
            }
            WaitReason::Blocked {
                reason,
                cancelled_dependency,
                budget_spent,
                ..
            } => {
                let futile = cancelled_dependency.is_some()
                    || *budget_spent
                    || reason.as_ref().is_some_and(BlockReason::retry_is_futile);
                if futile {
                    vec![NextStep::Cancel { task }]
                } else {
                    vec![NextStep::Retry { task }, NextStep::Cancel { task }]
                }
            }
            WaitReason::Orchestration {
                orchestration,
                status,
            } => match status {
                OrchestrationStatus::Draft | OrchestrationStatus::AwaitingPlanApproval => {
                    vec![NextStep::StartOrchestration {
                        orchestration: *orchestration,
                    }]
                }
                OrchestrationStatus::Paused => vec![NextStep::ResumeOrchestration {
                    orchestration: *orchestration,
                }],
                _ => Vec::new(),
            },
            WaitReason::Budget { .. } => vec![NextStep::Cancel { task }],
            WaitReason::NoCapableAgent { draining, .. } => draining
                .iter()
                .map(|a| NextStep::ResumeAgent { agent: a.clone() })
                .chain([NextStep::RegisterAgent])
                .collect(),
            WaitReason::ExternalOnly { agents }
            | WaitReason::BusyOrExternal {
                external: agents, ..
            } => agents
                .first()
                .map(|a| NextStep::Assign {
                    task,
                    agent: a.clone(),
                })
                .into_iter()
                .collect(),
            WaitReason::Dependency { .. }
            | WaitReason::MissingDependency { .. }
            | WaitReason::Backoff { .. }
            | WaitReason::Concern { .. }
            | WaitReason::AgentsBusy { .. }
            | WaitReason::AssignsSoon { .. }
            | WaitReason::NextPass => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_lists_the_name_of_every_block_reason_and_nothing_else() {
        // Exhaustive: a new reason does not compile until it is numbered here (and sampled).
        let number = |r: &BlockReason| match r {
            BlockReason::CannotStart { .. } => 0,
            BlockReason::AttemptsFailed { .. } => 1,
            BlockReason::BudgetSpent { .. } => 2,
            BlockReason::DependencyCancelled { .. } => 3,
            BlockReason::RejectedBeforeRun => 4,
            BlockReason::MergeConflict { .. } => 5,
            BlockReason::MergeFailed { .. } => 6,
            BlockReason::Text { .. } => 7,
        };
        let samples = [
            BlockReason::CannotStart {
                attempt: 1,
                failure: FailureKind::Start,
            },
            BlockReason::AttemptsFailed {
                attempt: 1,
                failed: 1,
                interrupted: 0,
                strategic: false,
            },
            BlockReason::BudgetSpent {
                attempt: 1,
                budget: Usd::ZERO,
                spent: Usd::ZERO,
            },
            BlockReason::DependencyCancelled {
                dependency: TaskId::from_bits(1),
            },
            BlockReason::RejectedBeforeRun,
            BlockReason::MergeConflict {
                into: "main".into(),
                paths: Vec::new(),
            },
            BlockReason::MergeFailed {
                into: "main".into(),
                error: "e".into(),
            },
            BlockReason::Text { text: "t".into() },
        ];
        let numbered: std::collections::BTreeSet<usize> = samples.iter().map(number).collect();
        assert_eq!(numbered, (0..8).collect());
        let named: Vec<&str> = samples.iter().map(BlockReason::kind).collect();
        assert_eq!(named, BlockReason::KINDS);
    }

    #[test]
    fn only_a_cancelled_dependency_or_a_spent_budget_make_a_retry_futile() {
        assert!(
            BlockReason::DependencyCancelled {
                dependency: TaskId::from_bits(1)
            }
            .retry_is_futile()
        );
        assert!(
            !BlockReason::AttemptsFailed {
                attempt: 1,
                failed: 1,
                interrupted: 0,
                strategic: true
            }
            .retry_is_futile()
        );
        assert!(!BlockReason::RejectedBeforeRun.retry_is_futile());
    }

    #[test]
    fn each_wait_offers_the_steps_that_end_it() {
        let t = TaskId::from_bits(1);
        let o = OrchestrationId::from_bits(2);
        let a = AgentName::parse("a").unwrap();
        let gate = WaitReason::Approval { gate: Gate::Result };
        assert_eq!(
            gate.next_steps(t),
            [NextStep::Approve { task: t }, NextStep::Reject { task: t }]
        );
        let blocked = |reason, cancelled_dependency, budget_spent| WaitReason::Blocked {
            reason,
            words: None,
            cancelled_dependency,
            budget_spent,
        };
        let retry_or_cancel = [NextStep::Retry { task: t }, NextStep::Cancel { task: t }];
        assert_eq!(
            blocked(Some(BlockReason::RejectedBeforeRun), None, false).next_steps(t),
            retry_or_cancel
        );
        assert_eq!(blocked(None, None, false).next_steps(t), retry_or_cancel);
        assert_eq!(
            blocked(None, Some(TaskId::from_bits(3)), false).next_steps(t),
            [NextStep::Cancel { task: t }]
        );
        assert_eq!(
            blocked(None, None, true).next_steps(t),
            [NextStep::Cancel { task: t }]
        );
        let paused = WaitReason::Orchestration {
            orchestration: o,
            status: OrchestrationStatus::Paused,
        };
        assert_eq!(
            paused.next_steps(t),
            [NextStep::ResumeOrchestration { orchestration: o }]
        );
        let none = WaitReason::NoCapableAgent {
            capabilities: CapabilitySet::empty(),
            tier: None,
            draining: vec![a.clone()],
        };
        assert_eq!(
            none.next_steps(t),
            [
                NextStep::ResumeAgent { agent: a.clone() },
                NextStep::RegisterAgent
            ]
        );
        let external = WaitReason::ExternalOnly {
            agents: vec![a.clone()],
        };
        assert_eq!(
            external.next_steps(t),
            [NextStep::Assign { task: t, agent: a }]
        );
        // Time and other tasks end these waits; a person is not needed.
        for w in [
            WaitReason::NextPass,
            WaitReason::Backoff {
                due: None,
                wait_ms: 0,
            },
            WaitReason::AgentsBusy { agents: vec![] },
        ] {
            assert!(w.next_steps(t).is_empty(), "{w:?}");
            assert!(!w.needs_a_person(), "{w:?}");
        }
        assert!(gate.needs_a_person() && paused.needs_a_person() && none.needs_a_person());
        assert!(!external.needs_a_person());
    }
}
