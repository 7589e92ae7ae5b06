//! Property 2: folding an aggregate's events (with their timestamps) gives the aggregate, for
//! random command sequences on Task, Agent and Orchestration. Along the way: a refused command
//! leaves the aggregate unchanged, an accepted one emits events and bumps the version by as many.

use maos_domain::agent::AgentSpec;
use maos_domain::{
    AdapterKind, Agent, AgentEvent, AgentId, AgentName, AgentStatus, Orchestration,
    OrchestrationEvent, OrchestrationId, OrchestrationStatus, Slots, Task, TaskEvent, TaskId,
    Timestamp, Title, TransitionError,
};
use proptest::prelude::*;

use crate::lifecycle::{Cmd, Dep, TASK_ID, exec};
use crate::support::{self, ALL_CAPS};

/// Runs one command, checks what every command must do, and logs the events it emitted.
fn step<A: Clone + PartialEq + std::fmt::Debug, E>(
    aggregate: &mut A,
    log: &mut Vec<(E, Timestamp)>,
    now: Timestamp,
    version: impl Fn(&A) -> u64,
    run: impl FnOnce(&mut A) -> Result<Vec<E>, TransitionError>,
) -> bool {
    let before = aggregate.clone();
    match run(aggregate) {
        Ok(events) => {
            // An accepted command that emits nothing is an idempotent repeat (the same session
            // recorded twice, the same worktree): it must change nothing either.
            if events.is_empty() {
                assert_eq!(
                    *aggregate, before,
                    "a command changed state without an event"
                );
            }
            assert_eq!(version(aggregate), version(&before) + events.len() as u64);
            log.extend(events.into_iter().map(|e| (e, now)));
            true
        }
        Err(_) => {
            assert_eq!(
                *aggregate, before,
                "a refused command changed the aggregate"
            );
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task

/// Any task command, chosen without looking at the task's state.
fn task_cmd() -> impl Strategy<Value = Cmd> {
    let name = (0..4u8).prop_map(|n| format!("agent-{n}"));
    let agent = prop_oneof![
        name.clone().prop_flat_map(support::agent_gen),
        name.prop_flat_map(|n| support::fitting_agent_gen(n, ALL_CAPS, None)),
    ];
    let token = 0..4u64;
    let dep = prop_oneof![Just(Dep::Itself), (0..4u8).prop_map(Dep::Other)];
    prop_oneof![
        2 => Just(Cmd::MakeReady),
        1 => (dep, any::<bool>()).prop_map(|(on, satisfied)| Cmd::AddDependency { on, satisfied }),
        3 => agent.prop_map(Cmd::Assign),
        2 => token.clone().prop_map(|fencing| Cmd::Start { fencing }),
        2 => (token.clone(), proptest::option::of(Just("ok".to_owned())))
            .prop_map(|(fencing, summary)| Cmd::Succeed { fencing, summary }),
        1 => (token.clone(), any::<bool>()).prop_map(|(fencing, budget)| Cmd::Fail { fencing, budget }),
        1 => token.clone().prop_map(|fencing| Cmd::Heartbeat { fencing }),
        1 => token.clone().prop_map(|fencing| Cmd::AskTool { fencing }),
        1 => (token, 0..2u8).prop_map(|(fencing, session)| Cmd::Session { fencing, session }),
        1 => any::<bool>().prop_map(|refund| Cmd::Interrupt { refund }),
        2 => Just(Cmd::PassVerification),
        1 => Just(Cmd::FailVerification),
        1 => Just(Cmd::Approve),
        1 => Just(Cmd::Reject),
        2 => Just(Cmd::ScheduleRetry),
        1 => Just(Cmd::Escalate),
        1 => Just(Cmd::Block),
        1 => Just(Cmd::Cancel),
    ]
}

// ---------------------------------------------------------------------------------------------
// Agent

#[derive(Debug, Clone)]
enum AgentCmd {
    Claim {
        task: u8,
        attempt: u32,
    },
    Release {
        task: u8,
        attempt: u32,
        failed: Option<bool>,
    },
    Drain,
    Resume,
    Remove,
}

fn agent_cmd() -> impl Strategy<Value = AgentCmd> {
    prop_oneof![
        3 => (0..4u8, 1..4u32).prop_map(|(task, attempt)| AgentCmd::Claim { task, attempt }),
        2 => (0..4u8, 1..4u32, proptest::option::of(any::<bool>()))
            .prop_map(|(task, attempt, failed)| AgentCmd::Release { task, attempt, failed }),
        1 => Just(AgentCmd::Drain),
        1 => Just(AgentCmd::Resume),
        1 => Just(AgentCmd::Remove),
    ]
}

/// Oracle: the agent's slots in use and status after the command, or `None` if it is refused.
fn agent_next(
    active: u32,
    status: AgentStatus,
    slots: u32,
    cmd: &AgentCmd,
) -> Option<(u32, AgentStatus)> {
    use AgentStatus::*;
    match cmd {
        AgentCmd::Claim { .. } => match status {
            Available | Busy if active < slots => {
                let status = if active + 1 == slots { Busy } else { status };
                Some((active + 1, status))
            }
            _ => None,
        },
        AgentCmd::Release { .. } if active > 0 => {
            let status = if status == Busy { Available } else { status };
            Some((active - 1, status))
        }
        AgentCmd::Release { .. } => None,
        AgentCmd::Drain => match status {
            Available | Busy | Offline => Some((active, Draining)),
            Draining | Removed => None,
        },
        AgentCmd::Resume => match status {
            Draining if active >= slots => Some((active, Busy)),
            Draining => Some((active, Available)),
            _ => None,
        },
        AgentCmd::Remove => match status {
            Removed => None,
            _ if active > 0 => None,
            _ => Some((active, Removed)),
        },
    }
}

fn agent_spec() -> impl Strategy<Value = AgentSpec> {
    (
        "[a-z][a-z0-9-]{0,8}",
        0..=ALL_CAPS,
        support::tier(),
        1..=4u32,
        proptest::option::of(Just("run-agent".to_owned())),
    )
        .prop_map(|(name, caps, tier, slots, command)| AgentSpec {
            name: AgentName::parse(&name).expect("agent name"),
            adapter: AdapterKind::Command,
            capabilities: support::caps(caps),
            tier,
            slots: Slots::new(slots).expect("slots"),
            command,
            settings: maos_domain::AgentSettings {
                model: Some("m".to_owned()),
                ..maos_domain::AgentSettings::default()
            },
        })
}

// ---------------------------------------------------------------------------------------------
// Orchestration

#[derive(Debug, Clone, Copy)]
enum OrchCmd {
    RequestPlanApproval,
    /// A planner starts (task number `n`).
    StartPlanning(u8),
    /// A plan version follows the newest (`skip`: one out of order instead).
    Propose {
        skip: bool,
    },
    /// Planner `n` ends without a plan.
    FailPlanning(u8),
    /// Approve version newest + `behind` (0: the newest).
    Approve {
        behind: bool,
    },
    Reject,
    Start,
    Pause,
    Resume,
    Complete,
    Fail,
    Cancel,
}

/// Oracle: the orchestration's status after the command, or `None` if it is refused.
fn orch_next(o: &Orchestration, cmd: OrchCmd) -> Option<OrchestrationStatus> {
    use OrchestrationStatus::*;
    let status = o.status;
    let planning = o.planning.map(|p| p.task);
    // Before the plan runs, a planner makes versions; once a version runs, revisions of it.
    let revising = o.approved_version > 0;
    let planning_states = |s| {
        if revising {
            matches!(s, Running | Paused)
        } else {
            matches!(s, Draft | AwaitingPlanApproval)
        }
    };
    let undecided = o.plan_version > o.decided_version;
    match (cmd, status) {
        (OrchCmd::StartPlanning(_), s) if planning.is_none() && planning_states(s) => Some(s),
        (OrchCmd::Propose { skip: false }, s) if planning_states(s) => {
            Some(if revising { s } else { AwaitingPlanApproval })
        }
        (OrchCmd::FailPlanning(n), _) if planning == Some(planner(n)) => Some(status),
        (OrchCmd::Approve { behind: false }, s)
            if planning.is_none()
                && undecided
                && planning_states(s)
                && (revising || s == AwaitingPlanApproval) =>
        {
            Some(if revising { s } else { Running })
        }
        (OrchCmd::Reject, s) if !revising && matches!(s, Draft | AwaitingPlanApproval) => {
            Some(Cancelled)
        }
        (OrchCmd::Reject, s) if revising && undecided && matches!(s, Running | Paused) => Some(s),
        (OrchCmd::RequestPlanApproval, Draft) => Some(AwaitingPlanApproval),
        (OrchCmd::Start, Draft | AwaitingPlanApproval) if planning.is_none() => Some(Running),
        (OrchCmd::Pause, Running) => Some(Paused),
        (OrchCmd::Resume, Paused) => Some(Running),
        (OrchCmd::Complete, Running) => Some(Completed),
        (OrchCmd::Fail, Running | Paused) => Some(Failed),
        (OrchCmd::Cancel, Draft | AwaitingPlanApproval | Running | Paused) => Some(Cancelled),
        _ => None,
    }
}

fn planner(n: u8) -> TaskId {
    TaskId::from_bits(1000 + u128::from(n))
}

fn plan_version(number: u32, at: Timestamp) -> maos_domain::PlanVersion {
    maos_domain::PlanVersion {
        number,
        plan: maos_domain::Plan {
            goal: "g".into(),
            name: None,
            notes: Vec::new(),
            verify: None,
            tasks: Vec::new(),
        },
        origin: maos_domain::PlanOrigin::Person,
        rationale: None,
        proposed_at: at,
    }
}

fn orch_cmd() -> impl Strategy<Value = OrchCmd> {
    prop_oneof![
        1 => Just(OrchCmd::RequestPlanApproval),
        2 => (0..3u8).prop_map(OrchCmd::StartPlanning),
        2 => any::<bool>().prop_map(|skip| OrchCmd::Propose { skip }),
        1 => (0..3u8).prop_map(OrchCmd::FailPlanning),
        2 => any::<bool>().prop_map(|behind| OrchCmd::Approve { behind }),
        1 => Just(OrchCmd::Reject),
        2 => Just(OrchCmd::Start),
        2 => Just(OrchCmd::Pause),
        2 => Just(OrchCmd::Resume),
        1 => Just(OrchCmd::Complete),
        1 => Just(OrchCmd::Fail),
        1 => Just(OrchCmd::Cancel),
    ]
}

proptest! {
    #![proptest_config(crate::support::config(256, "proptest-regressions/folding.txt"))]

    #[test]
    fn task_folds_from_its_events(
        cap_mask in 0..=ALL_CAPS,
        tier in support::opt_tier(),
        risk in support::risk(),
        max_attempts in 1..=3u32,
        cmds in prop::collection::vec(task_cmd(), 0..40),
    ) {
        let spec = support::spec(
            cap_mask, tier, risk, maos_domain::Priority::High, max_attempts, Default::default(),
        );
        let (mut task, events) = Task::create(TASK_ID, spec, support::at(5));
        let mut log: Vec<(TaskEvent, Timestamp)> =
            events.into_iter().map(|e| (e, support::at(5))).collect();
        for (i, cmd) in cmds.iter().enumerate() {
            let now = support::at(10 + i as i64);
            let _ = step(&mut task, &mut log, now, |t: &Task| t.version, |t| exec(t, cmd, now));
            let folded = Task::from_events(TASK_ID, log.iter().map(|(e, at)| (e, *at)));
            prop_assert_eq!(folded.as_ref(), Some(&task), "after {:?}", cmd);
        }
        prop_assert_eq!(task.version, log.len() as u64);
    }

    #[test]
    fn agent_folds_from_its_events(
        spec in agent_spec(),
        cmds in prop::collection::vec(agent_cmd(), 0..40),
    ) {
        let id = AgentId::from_bits(42);
        let (mut agent, events) = Agent::register(id, spec, support::at(3));
        let mut log: Vec<(AgentEvent, Timestamp)> =
            events.into_iter().map(|e| (e, support::at(3))).collect();
        let mut removed: Option<Agent> = None;
        for (i, cmd) in cmds.iter().enumerate() {
            let now = support::at(10 + i as i64);
            let expected = agent_next(agent.active, agent.status, agent.slots.get(), cmd);
            let accepted = step(&mut agent, &mut log, now, |a: &Agent| a.version, |a| match *cmd {
                AgentCmd::Claim { task, attempt } => {
                    a.claim_slot(TaskId::from_bits(u128::from(task)), attempt, now)
                }
                AgentCmd::Release {
                    task,
                    attempt,
                    failed,
                } => a.release_slot(TaskId::from_bits(u128::from(task)), attempt, failed, now),
                AgentCmd::Drain => a.drain(now),
                AgentCmd::Resume => a.resume(now),
                AgentCmd::Remove => a.remove(now),
            });
            prop_assert_eq!(accepted, expected.is_some(), "{:?} accepted?", cmd);
            if let Some((active, status)) = expected {
                prop_assert_eq!((agent.active, agent.status), (active, status), "after {:?}", cmd);
            }
            // Slot accounting and status agree.
            prop_assert!(agent.active <= agent.slots.get());
            match agent.status {
                AgentStatus::Available => prop_assert!(agent.active < agent.slots.get()),
                AgentStatus::Busy => prop_assert_eq!(agent.active, agent.slots.get()),
                AgentStatus::Removed => prop_assert_eq!(agent.active, 0),
                AgentStatus::Draining | AgentStatus::Offline => {}
            }
            // Removal is final.
            if let Some(r) = &removed {
                prop_assert_eq!(r, &agent);
            } else if agent.status == AgentStatus::Removed {
                removed = Some(agent.clone());
            }
            let folded = Agent::from_events(id, log.iter().map(|(e, at)| (e, *at)));
            prop_assert_eq!(folded.as_ref(), Some(&agent), "after {:?}", cmd);
        }
        prop_assert_eq!(agent.version, log.len() as u64);
    }

    #[test]
    fn orchestration_folds_from_its_events(
        name in "[a-z][a-z ]{0,20}",
        goal in proptest::option::of("[a-z ]{0,20}"),
        cmds in prop::collection::vec(orch_cmd(), 0..40),
    ) {
        let id = OrchestrationId::from_bits(9);
        let title = Title::parse(&name).expect("title");
        let spec = maos_domain::OrchestrationSpec {
            name: title,
            goal,
            workspace: Some(maos_domain::WorkspaceSpec {
                repo: "/src/app".into(),
                base: Some("main".into()),
            }),
            verify: Some("make test".into()),
            notes: vec!["pinned".into()],
            planned: true,
        };
        let (mut o, events) = Orchestration::create(id, spec, support::at(1));
        let mut log: Vec<(OrchestrationEvent, Timestamp)> =
            events.into_iter().map(|e| (e, support::at(1))).collect();
        let mut frozen: Option<Orchestration> = None;
        for (i, cmd) in cmds.iter().enumerate() {
            let now = support::at(10 + i as i64);
            let expected = orch_next(&o, *cmd);
            let accepted = step(&mut o, &mut log, now, |o: &Orchestration| o.version, |o| match cmd {
                OrchCmd::RequestPlanApproval => o.request_plan_approval(now),
                OrchCmd::StartPlanning(n) => o.start_planning(
                    maos_domain::orchestration::Planning { task: planner(*n), max_tasks: 9, discussion: None },
                    now,
                ),
                OrchCmd::Propose { skip } => {
                    let n = o.plan_version + if *skip { 2 } else { 1 };
                    o.propose_plan(plan_version(n, now), now)
                }
                OrchCmd::FailPlanning(n) => o.fail_planning(planner(*n), None, vec!["p".into()], now),
                OrchCmd::Approve { behind } => o.approve_plan(
                    o.plan_version + u32::from(*behind),
                    maos_domain::orchestration::PlanApprover::Person,
                    Default::default(),
                    vec![planner(9)],
                    now,
                ),
                OrchCmd::Reject => o.reject_plan(None, now),
                OrchCmd::Start => o.start(now),
                OrchCmd::Pause => o.pause(now),
                OrchCmd::Resume => o.resume(now),
                OrchCmd::Complete => o.complete(now),
                OrchCmd::Fail => o.fail("it broke".into(), now),
                OrchCmd::Cancel => o.cancel("stop".into(), now),
            });
            prop_assert_eq!(accepted, expected.is_some(), "{:?} accepted?", cmd);
            if let Some(status) = expected {
                prop_assert_eq!(o.status, status, "after {:?}", cmd);
            }
            // A planner works before the plan runs, or on a revision of a plan at work.
            if o.planning.is_some() {
                prop_assert!(
                    !o.status.is_terminal(),
                    "a planner at work in {:?}", o.status
                );
            }
            prop_assert!(o.decided_version <= o.plan_version && o.approved_version <= o.decided_version);
            if let Some(f) = &frozen {
                prop_assert_eq!(f, &o, "a finished orchestration changed");
            } else if o.status.is_terminal() {
                frozen = Some(o.clone());
            }
            let folded = Orchestration::from_events(id, log.iter().map(|(e, at)| (e, *at)));
            prop_assert_eq!(folded.as_ref(), Some(&o), "after {:?}", cmd);
        }
        prop_assert_eq!(o.version, log.len() as u64);
    }
}
