//! Property 1: a reference model of the task lifecycle, run against the real [`Task`] with
//! random command sequences drawn from every task command.

use std::collections::BTreeSet;

use maos_domain::{
    AttemptOutcome, AttemptStart, DurationMs, Exit, FailureKind, FencingToken, Gate, Integration,
    Risk, RunReport, Task, TaskEvent, TaskId, TaskState, Tier, Timestamp, TransitionError,
};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use crate::support::{self, ALL_CAPS, AgentGen};

/// The task under test.
pub(crate) const TASK_ID: TaskId = TaskId::from_bits(1_000);
/// The lease every assignment gets.
pub(crate) const LEASE_MS: u64 = 60_000;

/// The task a dependency target stands for: the task itself or one of four others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dep {
    Itself,
    Other(u8),
}

impl Dep {
    pub(crate) fn id(self) -> TaskId {
        match self {
            Dep::Itself => TASK_ID,
            Dep::Other(n) => dep_id(n),
        }
    }
}

pub(crate) fn dep_id(n: u8) -> TaskId {
    TaskId::from_bits(u128::from(n) + 1)
}

/// Every task command, with its arguments.
#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    MakeReady,
    AddDependency {
        on: Dep,
        satisfied: bool,
    },
    Assign(AgentGen),
    Start {
        fencing: u64,
    },
    Succeed {
        fencing: u64,
        summary: Option<String>,
    },
    Fail {
        fencing: u64,
        /// The runtime stopped the attempt because it would overrun the budget.
        budget: bool,
    },
    Heartbeat {
        fencing: u64,
    },
    /// The running agent asks a person about a tool call.
    AskTool {
        fencing: u64,
    },
    Session {
        fencing: u64,
        session: u8,
    },
    /// The attempt is stopped; `refund`: it does not count.
    Interrupt {
        refund: bool,
    },
    PassVerification,
    FailVerification,
    Approve,
    Reject,
    ScheduleRetry,
    Escalate,
    /// A person grants more attempts (`maos task retry`).
    RetryByPerson {
        granted: u32,
    },
    Block,
    Cancel,
}

/// Runs one command on the real task.
pub(crate) fn exec(
    task: &mut Task,
    cmd: &Cmd,
    now: Timestamp,
) -> Result<Vec<TaskEvent>, TransitionError> {
    let lease = DurationMs::from_millis(LEASE_MS).expect("lease");
    match cmd {
        Cmd::MakeReady => task.make_ready(now),
        Cmd::AddDependency { on, satisfied } => task.add_dependency(on.id(), *satisfied, now),
        Cmd::Assign(agent) => task.assign(&agent.build(7), lease, now),
        Cmd::Start { fencing } => task.start_attempt(
            FencingToken::new(*fencing),
            AttemptStart {
                pid: Some(42),
                checkpoint: Some("c0ffee".into()),
                port: Some(4000),
            },
            now,
        ),
        Cmd::AskTool { fencing } => task.request_tool_approval(
            FencingToken::new(*fencing),
            "Bash".into(),
            Some("rm -rf target".into()),
            now,
        ),
        Cmd::Succeed { fencing, summary } => task.succeed_attempt(
            FencingToken::new(*fencing),
            summary.clone(),
            RunReport::default(),
            now,
        ),
        Cmd::Fail { fencing, budget } => {
            let report = RunReport {
                exit: Some(Exit::Code(1)),
                failure: Some(if *budget {
                    FailureKind::Budget
                } else {
                    FailureKind::Exit
                }),
                ..RunReport::default()
            };
            task.fail_attempt(FencingToken::new(*fencing), "boom".into(), report, now)
        }
        Cmd::Heartbeat { fencing } => task
            .check_lease(FencingToken::new(*fencing))
            .map(|()| Vec::new()),
        Cmd::Session { fencing, session } => {
            task.record_session(FencingToken::new(*fencing), format!("s{session}"), now)
        }
        Cmd::Interrupt { refund } => task.interrupt_attempt("lease expired".into(), *refund, now),
        Cmd::PassVerification => task.pass_verification(Integration::None, now),
        Cmd::FailVerification => task.fail_verification("1 test failed".into(), now),
        Cmd::Approve => task.approve(Integration::None, now),
        Cmd::Reject => task.reject("not like this".into(), now),
        Cmd::ScheduleRetry => task.schedule_retry(Some(now), now),
        Cmd::RetryByPerson { granted } => task.retry_by_person(*granted, now),
        Cmd::Escalate => task.escalate(now),
        Cmd::Block => task.block(maos_domain::BlockReason::RejectedBeforeRun, now),
        Cmd::Cancel => task.cancel("no longer needed".into(), now),
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model

/// The model's own lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum St {
    Pending,
    Ready,
    Assigned,
    Running,
    Verifying,
    AwaitingApproval,
    Completed,
    Failed,
    Retrying,
    Blocked,
    Cancelled,
    Escalated,
}

impl St {
    fn terminal(self) -> bool {
        matches!(self, St::Completed | St::Cancelled)
    }

    fn holds_slot(self) -> bool {
        matches!(self, St::Assigned | St::Running | St::Verifying)
    }

    fn domain(self) -> TaskState {
        match self {
            St::Pending => TaskState::Pending,
            St::Ready => TaskState::Ready,
            St::Assigned => TaskState::Assigned,
            St::Running => TaskState::Running,
            St::Verifying => TaskState::Verifying,
            St::AwaitingApproval => TaskState::AwaitingApproval,
            St::Completed => TaskState::Completed,
            St::Failed => TaskState::Failed,
            St::Retrying => TaskState::Retrying,
            St::Blocked => TaskState::Blocked,
            St::Cancelled => TaskState::Cancelled,
            St::Escalated => TaskState::Escalated,
        }
    }
}

/// Why the model expects a command to be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No lifecycle edge from the current state.
    Task,
    /// The fencing token is not the current one.
    Stale { presented: u64, current: u64 },
    /// The agent does not take work (draining, removed).
    Agent,
    /// The agent lacks a capability, has the wrong tier or no free slot.
    Unfit,
}

/// What the model expects of the last command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No command yet.
    Created,
    /// Accepted, emitting exactly these events, in order.
    Accepted(Vec<&'static str>),
    /// Accepted, with nothing to change (no event).
    Unchanged,
    Refused(Refusal),
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    st: St,
    risk: Risk,
    caps: u8,
    tier: Option<Tier>,
    max_attempts: u32,
    /// Attempts granted beyond `max_attempts` (escalation, a person's retry).
    extra: u32,
    attempts: u32,
    fencing: u64,
    deps: BTreeSet<u8>,
    /// The agent holding the task's slot, if any.
    slot: Option<String>,
    /// How many attempts may have been used: `max_attempts`, raised by one past the attempts used
    /// each time a person unblocks the task or it is escalated.
    budget: u32,
    /// Events applied since creation.
    events: u64,
    /// The session the current attempt recorded.
    session: Option<u8>,
    /// The current attempt was stopped for overrunning the budget (no retry then).
    over_budget: bool,
    /// What the task waits for a person to decide.
    gate: Option<Gate>,
    /// A person approved a high-risk task to run.
    run_approved: bool,
    last: Outcome,
}

impl Model {
    fn go(&mut self, st: St, kind: &'static str) -> Outcome {
        self.go_all(st, vec![kind])
    }

    fn go_all(&mut self, st: St, kinds: Vec<&'static str>) -> Outcome {
        self.st = st;
        if !st.holds_slot() {
            self.slot = None;
        }
        self.events += kinds.len() as u64;
        Outcome::Accepted(kinds)
    }

    /// Ready, or (a high-risk task no person has approved to run) waiting for that approval.
    fn ready_or_gated(&mut self) -> Outcome {
        if self.risk == Risk::High && !self.run_approved {
            self.gate = Some(Gate::Run);
            self.go(St::AwaitingApproval, "task.approval_requested")
        } else {
            self.go(St::Ready, "task.ready")
        }
    }

    fn fencing_ok(&self, presented: u64) -> Result<(), Outcome> {
        if presented == self.fencing {
            Ok(())
        } else {
            Err(Outcome::Refused(Refusal::Stale {
                presented,
                current: self.fencing,
            }))
        }
    }

    /// Decides a command, updating the model when it is accepted.
    fn decide(&mut self, cmd: &Cmd) -> Outcome {
        use St::*;
        let refuse = Outcome::Refused(Refusal::Task);
        match cmd {
            Cmd::MakeReady => match self.st {
                Pending | Retrying => self.ready_or_gated(),
                Blocked | Escalated => {
                    self.budget = self.budget.max(self.attempts + 1);
                    self.ready_or_gated()
                }
                _ => refuse,
            },
            Cmd::AskTool { fencing } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match (self.st, self.gate) {
                    (Running, None) => {
                        self.gate = Some(Gate::Tool);
                        self.go(Running, "task.approval_requested")
                    }
                    _ => refuse,
                }
            }
            Cmd::AddDependency { on, satisfied } => match (on, self.st) {
                (Dep::Itself, _) => refuse,
                (Dep::Other(n), Pending | Ready) => {
                    self.deps.insert(*n);
                    let next = if *satisfied { self.st } else { Pending };
                    self.go(next, "task.dependency_added")
                }
                _ => refuse,
            },
            Cmd::Assign(agent) => {
                if self.st != Ready {
                    return refuse;
                }
                if !agent.accepts_work() {
                    return Outcome::Refused(Refusal::Agent);
                }
                if !agent.capable(self.caps, self.tier) || agent.active >= agent.slots {
                    return Outcome::Refused(Refusal::Unfit);
                }
                self.attempts += 1;
                self.fencing += 1;
                self.slot = Some(agent.name.clone());
                self.session = None;
                self.over_budget = false;
                self.go(Assigned, "task.assigned")
            }
            Cmd::Start { fencing } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match self.st {
                    Assigned => self.go(Running, "task.attempt_started"),
                    _ => refuse,
                }
            }
            Cmd::Succeed { fencing, .. } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match self.st {
                    Running => {
                        self.gate = None;
                        self.go(Verifying, "task.attempt_succeeded")
                    }
                    _ => refuse,
                }
            }
            Cmd::Fail { fencing, budget } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match self.st {
                    Assigned | Running => {
                        self.over_budget = *budget;
                        self.gate = None;
                        self.go(Failed, "task.attempt_failed")
                    }
                    _ => refuse,
                }
            }
            Cmd::Heartbeat { fencing } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match self.st {
                    // Renewals are kept in memory by the daemon: nothing changes here.
                    Assigned | Running => Outcome::Unchanged,
                    _ => refuse,
                }
            }
            Cmd::Session { fencing, session } => {
                if let Err(o) = self.fencing_ok(*fencing) {
                    return o;
                }
                match self.st {
                    Assigned | Running if self.session == Some(*session) => Outcome::Unchanged,
                    Assigned | Running => {
                        self.session = Some(*session);
                        self.go(self.st, "task.session_recorded")
                    }
                    _ => refuse,
                }
            }
            Cmd::Interrupt { refund } => match self.st {
                Assigned | Running => {
                    if *refund {
                        self.extra += 1;
                        self.budget = self.budget.max(self.max_attempts + self.extra);
                    }
                    self.over_budget = false;
                    self.gate = None;
                    self.go(Failed, "task.attempt_interrupted")
                }
                _ => refuse,
            },
            Cmd::PassVerification => match (self.st, self.risk) {
                (Verifying, Risk::Low) => self.go(Completed, "task.completed"),
                (Verifying, Risk::Medium | Risk::High) => {
                    self.gate = Some(Gate::Result);
                    self.go(AwaitingApproval, "task.approval_requested")
                }
                _ => refuse,
            },
            Cmd::FailVerification => match self.st {
                Verifying => self.go(Failed, "task.verification_failed"),
                _ => refuse,
            },
            Cmd::Approve => match (self.gate, self.st) {
                (Some(Gate::Tool), Running) => {
                    self.gate = None;
                    self.go(Running, "task.approval_granted")
                }
                (Some(Gate::Run), AwaitingApproval) => {
                    self.gate = None;
                    self.run_approved = true;
                    self.go(Ready, "task.approval_granted")
                }
                (Some(Gate::Result) | None, AwaitingApproval) => {
                    self.gate = None;
                    self.go_all(Completed, vec!["task.approval_granted", "task.completed"])
                }
                _ => refuse,
            },
            Cmd::Reject => match (self.gate, self.st) {
                (Some(Gate::Tool), Running) => {
                    self.gate = None;
                    self.go(Running, "task.approval_rejected")
                }
                (Some(Gate::Run), AwaitingApproval) => {
                    self.gate = None;
                    self.go(Blocked, "task.approval_rejected")
                }
                (Some(Gate::Result) | None, AwaitingApproval) => {
                    self.gate = None;
                    self.go(Failed, "task.approval_rejected")
                }
                _ => refuse,
            },
            Cmd::ScheduleRetry => match self.st {
                Failed if self.attempts < self.max_attempts + self.extra && !self.over_budget => {
                    self.go(Retrying, "task.retry_scheduled")
                }
                _ => refuse,
            },
            Cmd::Escalate => match self.st {
                Failed if self.tier != Some(Tier::Strategic) => {
                    self.tier = Some(Tier::Strategic);
                    self.extra += 1;
                    self.budget = self.budget.max(self.max_attempts + self.extra);
                    self.go(Escalated, "task.escalated")
                }
                _ => refuse,
            },
            Cmd::RetryByPerson { granted } => match self.st {
                Failed | Blocked if !self.over_budget => {
                    let allowed = self.max_attempts + self.extra;
                    self.extra += (self.attempts + (*granted).max(1)).saturating_sub(allowed);
                    self.budget = self.budget.max(self.max_attempts + self.extra);
                    self.gate = None;
                    let mut kinds = vec!["task.retry_requested"];
                    if self.st == Failed {
                        kinds.push("task.retry_scheduled");
                    }
                    let gated = self.risk == Risk::High && !self.run_approved;
                    if gated {
                        self.gate = Some(Gate::Run);
                        kinds.push("task.approval_requested");
                        self.go_all(AwaitingApproval, kinds)
                    } else {
                        kinds.push("task.ready");
                        self.go_all(Ready, kinds)
                    }
                }
                _ => refuse,
            },
            Cmd::Block => match self.st {
                Pending | Ready | Failed | AwaitingApproval => {
                    self.gate = None;
                    self.go(Blocked, "task.blocked")
                }
                _ => refuse,
            },
            Cmd::Cancel => {
                if self.st.terminal() {
                    refuse
                } else {
                    self.gate = None;
                    self.go(Cancelled, "task.cancelled")
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command generation

fn agent_name() -> impl Strategy<Value = String> {
    (0..4u8).prop_map(|n| format!("agent-{n}"))
}

fn any_agent() -> BoxedStrategy<AgentGen> {
    agent_name().prop_flat_map(support::agent_gen).boxed()
}

fn fitting_agent(m: &Model) -> BoxedStrategy<AgentGen> {
    let (caps, tier) = (m.caps, m.tier);
    agent_name()
        .prop_flat_map(move |name| support::fitting_agent_gen(name, caps, tier))
        .boxed()
}

/// Mostly the current token; sometimes an older (stale) one or one from the future.
fn token(m: &Model) -> BoxedStrategy<u64> {
    let f = m.fencing;
    let stale = if f > 0 {
        (0..f).boxed()
    } else {
        Just(f + 1).boxed()
    };
    prop_oneof![3 => Just(f), 1 => stale, 1 => Just(f + 1)].boxed()
}

fn summary() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some("done".to_owned()))]
}

fn dep() -> impl Strategy<Value = Dep> {
    prop_oneof![1 => Just(Dep::Itself), 4 => (0..4u8).prop_map(Dep::Other)]
}

/// Any command, legal or not from the current state.
fn any_cmd(m: &Model) -> BoxedStrategy<Cmd> {
    let agent = prop_oneof![any_agent(), fitting_agent(m)];
    prop_oneof![
        Just(Cmd::MakeReady),
        (dep(), any::<bool>()).prop_map(|(on, satisfied)| Cmd::AddDependency { on, satisfied }),
        agent.prop_map(Cmd::Assign),
        token(m).prop_map(|fencing| Cmd::Start { fencing }),
        (token(m), summary()).prop_map(|(fencing, summary)| Cmd::Succeed { fencing, summary }),
        (token(m), any::<bool>()).prop_map(|(fencing, budget)| Cmd::Fail { fencing, budget }),
        token(m).prop_map(|fencing| Cmd::Heartbeat { fencing }),
        token(m).prop_map(|fencing| Cmd::AskTool { fencing }),
        (token(m), 0..2u8).prop_map(|(fencing, session)| Cmd::Session { fencing, session }),
        any::<bool>().prop_map(|refund| Cmd::Interrupt { refund }),
        Just(Cmd::PassVerification),
        Just(Cmd::FailVerification),
        Just(Cmd::Approve),
        Just(Cmd::Reject),
        Just(Cmd::ScheduleRetry),
        Just(Cmd::Escalate),
        Just(Cmd::Block),
        Just(Cmd::Cancel),
    ]
    .boxed()
}

/// Commands that make progress from the current state, so that sequences reach deep states.
fn likely_cmds(m: &Model) -> Vec<BoxedStrategy<Cmd>> {
    let f = m.fencing;
    let just = |c: Cmd| Just(c).boxed();
    match m.st {
        St::Pending => vec![
            just(Cmd::MakeReady),
            just(Cmd::MakeReady),
            (dep(), any::<bool>())
                .prop_map(|(on, satisfied)| Cmd::AddDependency { on, satisfied })
                .boxed(),
        ],
        St::Ready => vec![
            fitting_agent(m).prop_map(Cmd::Assign).boxed(),
            fitting_agent(m).prop_map(Cmd::Assign).boxed(),
            any_agent().prop_map(Cmd::Assign).boxed(),
            (dep(), any::<bool>())
                .prop_map(|(on, satisfied)| Cmd::AddDependency { on, satisfied })
                .boxed(),
            just(Cmd::Block),
        ],
        St::Assigned => vec![
            just(Cmd::Start { fencing: f }),
            just(Cmd::Start { fencing: f }),
            just(Cmd::Fail {
                fencing: f,
                budget: false,
            }),
            just(Cmd::Heartbeat { fencing: f }),
            any::<bool>()
                .prop_map(|refund| Cmd::Interrupt { refund })
                .boxed(),
        ],
        St::Running => vec![
            summary()
                .prop_map(move |summary| Cmd::Succeed {
                    fencing: f,
                    summary,
                })
                .boxed(),
            summary()
                .prop_map(move |summary| Cmd::Succeed {
                    fencing: f,
                    summary,
                })
                .boxed(),
            (any::<bool>())
                .prop_map(move |budget| Cmd::Fail { fencing: f, budget })
                .boxed(),
            just(Cmd::Heartbeat { fencing: f }),
            just(Cmd::AskTool { fencing: f }),
            just(Cmd::Approve),
            just(Cmd::Reject),
            (0..2u8)
                .prop_map(move |session| Cmd::Session {
                    fencing: f,
                    session,
                })
                .boxed(),
            any::<bool>()
                .prop_map(|refund| Cmd::Interrupt { refund })
                .boxed(),
        ],
        St::Verifying => vec![just(Cmd::PassVerification), just(Cmd::FailVerification)],
        St::AwaitingApproval => vec![just(Cmd::Approve), just(Cmd::Reject)],
        St::Failed => vec![
            just(Cmd::ScheduleRetry),
            just(Cmd::ScheduleRetry),
            just(Cmd::Escalate),
            just(Cmd::Block),
            (0..3u32)
                .prop_map(|granted| Cmd::RetryByPerson { granted })
                .boxed(),
        ],
        St::Blocked => vec![
            just(Cmd::MakeReady),
            (0..3u32)
                .prop_map(|granted| Cmd::RetryByPerson { granted })
                .boxed(),
        ],
        St::Retrying | St::Escalated => vec![just(Cmd::MakeReady)],
        St::Completed | St::Cancelled => Vec::new(),
    }
}

/// The reference state machine of the task lifecycle.
#[derive(Debug)]
pub(crate) struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = Model;
    type Transition = Cmd;

    fn init_state() -> BoxedStrategy<Model> {
        (
            support::risk(),
            0..=ALL_CAPS,
            support::opt_tier(),
            1..=4u32,
            prop::collection::btree_set(0..4u8, 0..=2),
        )
            .prop_map(|(risk, caps, tier, max_attempts, deps)| Model {
                st: St::Pending,
                risk,
                caps,
                tier,
                max_attempts,
                extra: 0,
                attempts: 0,
                fencing: 0,
                deps,
                slot: None,
                budget: max_attempts,
                events: 0,
                session: None,
                over_budget: false,
                gate: None,
                run_approved: false,
                last: Outcome::Created,
            })
            .boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<Cmd> {
        let likely = likely_cmds(m);
        if likely.is_empty() {
            any_cmd(m)
        } else {
            prop_oneof![1 => any_cmd(m), 3 => Union::new(likely)].boxed()
        }
    }

    fn apply(mut m: Model, cmd: &Cmd) -> Model {
        m.last = m.decide(cmd);
        m
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test

#[derive(Debug)]
pub(crate) struct Sut {
    task: Task,
    /// Every event emitted so far, with its time, the creation first.
    log: Vec<(TaskEvent, Timestamp)>,
    clock: i64,
    /// The task as it was when it first reached a terminal state.
    frozen: Option<Task>,
}

fn refusal_matches(expected: &Refusal, got: &TransitionError, from: TaskState) -> bool {
    match (expected, got) {
        (Refusal::Task, TransitionError::Task { from: f, .. }) => *f == from,
        (
            Refusal::Stale { presented, current },
            TransitionError::StaleAttempt {
                presented: p,
                current: c,
                ..
            },
        ) => p == presented && c == current,
        (Refusal::Agent, TransitionError::Agent { .. })
        | (Refusal::Unfit, TransitionError::AgentUnfit { .. }) => true,
        _ => false,
    }
}

impl StateMachineTest for Lifecycle {
    type SystemUnderTest = Sut;
    type Reference = Lifecycle;

    fn init_test(m: &Model) -> Sut {
        let deps = m.deps.iter().map(|n| dep_id(*n)).collect();
        let spec = support::spec(
            m.caps,
            m.tier,
            m.risk,
            maos_domain::Priority::Normal,
            m.max_attempts,
            deps,
        );
        let (task, events) = Task::create(TASK_ID, spec, support::at(0));
        assert_eq!(task.state, TaskState::Pending);
        assert_eq!(task.version, 1);
        Sut {
            task,
            log: events.into_iter().map(|e| (e, support::at(0))).collect(),
            clock: 0,
            frozen: None,
        }
    }

    fn apply(mut sut: Sut, m: &Model, cmd: Cmd) -> Sut {
        let before = sut.task.clone();
        sut.clock += 1;
        let now = support::at(sut.clock);
        let result = exec(&mut sut.task, &cmd, now);
        match (&m.last, result) {
            (Outcome::Accepted(expected), Ok(events)) => {
                assert!(!before.state.is_terminal(), "a terminal task changed");
                let kinds: Vec<&str> = events.iter().map(TaskEvent::kind).collect();
                assert_eq!(&kinds, expected, "events of {cmd:?} from {}", before.state);
                assert_eq!(
                    sut.task.version,
                    before.version + events.len() as u64,
                    "version after {cmd:?}"
                );
                assert_eq!(sut.task.updated_at, now);
                sut.log.extend(events.into_iter().map(|e| (e, now)));
                if let Cmd::Assign(agent) = &cmd {
                    let a = sut.task.current_attempt().expect("an attempt after assign");
                    assert_eq!(a.agent.as_str(), agent.name);
                    assert_eq!(a.status, AttemptOutcome::Assigned);
                    assert_eq!(a.assigned_at, now);
                    assert_eq!(a.lease_expires_at.as_millis(), sut.clock + LEASE_MS as i64);
                }
                if let Cmd::Session { session, .. } = &cmd {
                    let a = sut
                        .task
                        .current_attempt()
                        .expect("an attempt with a session");
                    assert_eq!(a.session.as_deref(), Some(format!("s{session}").as_str()));
                }
                if let Cmd::Start { .. } = &cmd {
                    assert_eq!(sut.task.current_attempt().and_then(|a| a.pid), Some(42));
                }
            }
            (Outcome::Unchanged, Ok(events)) => {
                assert!(
                    events.is_empty(),
                    "{cmd:?} changed nothing but emitted {events:?}"
                );
                assert_eq!(sut.task, before, "{cmd:?} should have changed nothing");
            }
            (Outcome::Refused(why), Err(e)) => {
                assert!(
                    refusal_matches(why, &e, before.state),
                    "{cmd:?} from {}: expected {why:?}, got {e:?}",
                    before.state
                );
                assert_eq!(sut.task, before, "a refused {cmd:?} changed the task");
            }
            (expected, got) => panic!(
                "{cmd:?} from {}: the model expected {expected:?}, the task returned {got:?}",
                before.state
            ),
        }
        if sut.frozen.is_none() && sut.task.state.is_terminal() {
            sut.frozen = Some(sut.task.clone());
        }
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        let t = &sut.task;
        // The state matches the model.
        assert_eq!(t.state, m.st.domain());
        assert_eq!(t.attempts_used(), m.attempts);
        assert_eq!(t.fencing.get(), m.fencing);
        assert_eq!(t.spec.tier, m.tier);
        let deps: BTreeSet<TaskId> = m.deps.iter().map(|n| dep_id(*n)).collect();
        assert_eq!(t.spec.depends_on, deps);
        assert_eq!(t.slot_holder().map(|a| a.as_str()), m.slot.as_deref());
        assert_eq!(t.waiting_gate(), m.gate, "what it waits for");
        assert_eq!(t.run_approved, m.run_approved);
        // A blocked task says why, as data; no other task carries a block reason.
        assert_eq!(
            t.blocked.is_some(),
            t.state == maos_domain::TaskState::Blocked,
            "block reason {:?} in state {}",
            t.blocked,
            t.state
        );

        // Terminal states never change.
        if let Some(frozen) = &sut.frozen {
            assert_eq!(t, frozen, "a terminal task changed");
        }

        // Fencing token == number of attempts; attempts numbered 1..n with their own tokens.
        assert_eq!(t.fencing.get(), t.attempts.len() as u64);
        for (i, a) in t.attempts.iter().enumerate() {
            assert_eq!(a.number as usize, i + 1, "attempt numbering");
            assert_eq!(a.fencing.get(), (i + 1) as u64, "attempt fencing");
        }

        // At most the last attempt is live, and it is live exactly when the task says so.
        let live = |a: &maos_domain::Attempt| {
            matches!(a.status, AttemptOutcome::Assigned | AttemptOutcome::Running)
        };
        let n = t.attempts.len();
        for a in t.attempts.iter().take(n.saturating_sub(1)) {
            assert!(!live(a), "an earlier attempt is still live: {a:?}");
        }
        let last = t.current_attempt().map(|a| a.status);
        match t.state {
            TaskState::Assigned => assert_eq!(last, Some(AttemptOutcome::Assigned)),
            TaskState::Running => assert_eq!(last, Some(AttemptOutcome::Running)),
            TaskState::Verifying => assert_eq!(last, Some(AttemptOutcome::Succeeded)),
            _ => assert!(
                !t.current_attempt().is_some_and(live),
                "live attempt in {}",
                t.state
            ),
        }

        // A slot is held exactly in assigned, running and verifying.
        assert_eq!(
            t.slot_holder().is_some(),
            matches!(
                t.state,
                TaskState::Assigned | TaskState::Running | TaskState::Verifying
            )
        );

        // Attempts stay within max_attempts, except for the one extra attempt that each manual
        // unblock (blocked -> ready) or escalation (escalated -> ready) allows.
        assert!(
            t.attempts_used() <= m.budget,
            "{} attempts used of {} (budget {})",
            t.attempts_used(),
            t.spec.max_attempts,
            m.budget
        );

        // Version == 1 + events applied.
        assert_eq!(t.version, 1 + m.events);
        assert_eq!(t.version, sut.log.len() as u64);

        // Folding the events gives the task (property 2, checked after every step).
        let folded = Task::from_events(TASK_ID, sut.log.iter().map(|(e, at)| (e, *at)))
            .expect("the log starts with a creation");
        assert_eq!(&folded, t, "folding the events does not give the task");
    }
}

prop_state_machine! {
    #![proptest_config(support::config(256, "proptest-regressions/lifecycle.txt"))]

    #[test]
    fn task_lifecycle_follows_the_model(sequential 1..40 => Lifecycle);
}
