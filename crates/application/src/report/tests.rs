use std::collections::BTreeSet;

use maos_domain::orchestration::OrchestrationData;
use maos_domain::policy::concerns::Concern;
use maos_domain::task::TaskData;
use maos_domain::{
    AgentName, Attempt, AttemptOutcome, BlockReason, CapabilitySet, FencingToken, Gate,
    MaxAttempts, OrchestrationId, OrchestrationStatus, PendingApproval, Priority, Risk, TaskSpec,
    Title, Usage, WorkspaceSpec,
};
use proptest::prelude::*;

use super::*;

const O: OrchestrationId = OrchestrationId::from_bits(1_000);

fn id(n: u128) -> TaskId {
    TaskId::from_bits(n)
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn orchestration(status: OrchestrationStatus) -> Orchestration {
    Orchestration::restore(OrchestrationData {
        id: O,
        name: Title::parse("Plan").unwrap(),
        goal: None,
        workspace: None,
        verify: None,
        notes: Vec::new(),
        planned: true,
        status,
        plan_version: 0,
        planning: None,
        approved_version: 0,
        decided_version: 0,
        superseded: Default::default(),
        created_at: at(1_000),
        updated_at: at(1_000),
        version: 1,
    })
}

fn running() -> Orchestration {
    orchestration(OrchestrationStatus::Running)
}

/// Task `n` of the orchestration in `state`, after the tasks `deps`, last updated at `n` s.
fn task(n: u128, state: TaskState, deps: &[u128]) -> Task {
    Task::restore(TaskData {
        id: id(n),
        spec: TaskSpec {
            title: Title::parse(&format!("task {n}")).unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::default(),
            risk: Risk::default(),
            tier: None,
            depends_on: deps.iter().map(|d| id(*d)).collect::<BTreeSet<_>>(),
            orchestration: Some(O),
            max_attempts: MaxAttempts::default(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: None,
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: None,
            parent: None,
            lessons: false,
        },
        state,
        reason: None,
        blocked: None,
        attempts: Vec::new(),
        fencing: FencingToken::new(0),
        created_at: at(1_000),
        updated_at: at(1_000 + i64::try_from(n).unwrap() * 1_000),
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

fn with_attempt(t: Task, usage: Usage) -> Task {
    let mut data = t.data().clone();
    let number = u32::try_from(data.attempts.len()).unwrap() + 1;
    data.attempts.push(Attempt {
        number,
        agent: AgentName::parse("a").unwrap(),
        fencing: FencingToken::new(u64::from(number)),
        status: AttemptOutcome::Succeeded,
        assigned_at: at(1_000),
        lease_expires_at: at(2_000),
        started_at: Some(at(1_000)),
        ended_at: Some(at(2_000)),
        summary: None,
        error: None,
        pid: None,
        session: None,
        exit: None,
        usage,
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
    Task::restore(data)
}

fn no_agent() -> WaitReason {
    WaitReason::NoCapableAgent {
        capabilities: CapabilitySet::empty(),
        tier: None,
        draining: Vec::new(),
    }
}

fn busy() -> WaitReason {
    WaitReason::AgentsBusy { agents: Vec::new() }
}

fn concern_held_by(holder: u128) -> WaitReason {
    WaitReason::Concern {
        mine: Concern::parse("src/a.rs").unwrap(),
        theirs: Concern::parse("src/**").unwrap(),
        holder: id(holder),
    }
}

fn blocked_wait(cancelled_dependency: Option<TaskId>) -> WaitReason {
    WaitReason::Blocked {
        reason: None,
        words: None,
        cancelled_dependency,
        budget_spent: false,
    }
}

fn approval_wait() -> WaitReason {
    WaitReason::Approval { gate: Gate::Result }
}

fn waits(entries: &[(u128, Vec<WaitReason>)]) -> Waits {
    entries.iter().map(|(n, w)| (id(*n), w.clone())).collect()
}

#[test]
fn every_state_is_counted_zero_included_with_attempts_tokens_and_cost() {
    let usage = |input, cached, output, micros| Usage {
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
        cost: Usd::from_micros(micros),
    };
    let tasks = [
        with_attempt(
            with_attempt(task(1, TaskState::Completed, &[]), usage(10, 2, 5, 300)),
            usage(1, 0, 1, 700),
        ),
        with_attempt(task(2, TaskState::Running, &[1]), usage(100, 0, 50, 1_000)),
        task(3, TaskState::Pending, &[2]),
    ];
    let r = report(&running(), &tasks, &Waits::new(), at(50_000));
    assert_eq!(r.by_state.len(), TaskState::ALL.len());
    assert_eq!(r.by_state[&TaskState::Completed], 1);
    assert_eq!(r.by_state[&TaskState::Running], 1);
    assert_eq!(r.by_state[&TaskState::Pending], 1);
    assert_eq!(r.by_state[&TaskState::Blocked], 0);
    assert_eq!(r.by_state.values().sum::<u64>(), 3);
    assert_eq!((r.tasks, r.completed, r.attempts), (3, 1, 3));
    // Input tokens include the cached ones already: they are not counted twice.
    assert_eq!((r.input_tokens, r.output_tokens), (111, 56));
    assert_eq!(r.cost, Usd::from_micros(2_000));
    assert_eq!(r.orchestration, running());
    assert_eq!(r.integration_branch, None);
    assert!(r.can_move);
    assert!(r.needs_a_person.is_empty());
}

#[test]
fn an_orchestration_with_a_repository_names_its_integration_branch() {
    let mut data = running().data().clone();
    data.workspace = Some(WorkspaceSpec {
        repo: "/repo".into(),
        base: None,
    });
    let o = Orchestration::restore(data);
    let r = report(&o, &[], &Waits::new(), at(5_000));
    assert_eq!(r.integration_branch, Some(o.integration_branch()));
}

#[test]
fn wall_time_ends_at_the_last_update_once_settled_and_at_now_while_running() {
    let settled = [
        task(1, TaskState::Completed, &[]),
        task(4, TaskState::Blocked, &[]),
        task(2, TaskState::AwaitingApproval, &[]),
        task(3, TaskState::Cancelled, &[]),
    ];
    let r = report(&running(), &settled, &Waits::new(), at(99_000));
    // Created at 1 s, task 4 updated last at 5 s.
    assert_eq!(r.wall_ms, 4_000);
    let moving = [
        task(1, TaskState::Completed, &[]),
        task(2, TaskState::Ready, &[]),
    ];
    let r = report(&running(), &moving, &Waits::new(), at(99_000));
    assert_eq!(r.wall_ms, 98_000);
    // No task: nothing to wait for, the wall time is 0.
    assert_eq!(
        report(&running(), &[], &Waits::new(), at(99_000)).wall_ms,
        0
    );
}

#[test]
fn a_task_awaiting_approval_needs_an_approval_or_a_rejection() {
    let mut data = task(1, TaskState::AwaitingApproval, &[]).data().clone();
    data.pending = Some(PendingApproval {
        gate: Gate::Result,
        attempt: None,
        tool: None,
        subject: None,
        requested_at: at(2_000),
    });
    let tasks = [Task::restore(data)];
    let r = report(
        &running(),
        &tasks,
        &waits(&[(1, vec![approval_wait()])]),
        at(9_000),
    );
    assert_eq!(
        r.needs_a_person,
        [NeedsPerson {
            task: id(1),
            title: Title::parse("task 1").unwrap(),
            state: TaskState::AwaitingApproval,
            waits: vec![approval_wait()],
            blocked: None,
            next_steps: vec![
                NextStep::Approve { task: id(1) },
                NextStep::Reject { task: id(1) }
            ],
        }]
    );
    assert!(!r.can_move);
}

#[test]
fn a_blocked_task_offers_a_retry_unless_it_is_futile() {
    let mut data = task(2, TaskState::Blocked, &[1]).data().clone();
    data.blocked = Some(BlockReason::RejectedBeforeRun);
    let tasks = [task(1, TaskState::Completed, &[]), Task::restore(data)];
    let r = report(
        &running(),
        &tasks,
        &waits(&[(2, vec![blocked_wait(None)])]),
        at(9_000),
    );
    let [n] = r.needs_a_person.as_slice() else {
        panic!("one task needs a person: {:?}", r.needs_a_person)
    };
    assert_eq!(n.blocked, Some(BlockReason::RejectedBeforeRun));
    assert_eq!(
        n.next_steps,
        [
            NextStep::Retry { task: id(2) },
            NextStep::Cancel { task: id(2) }
        ]
    );
    // Behind a cancelled dependency, only cancelling helps.
    let tasks = [
        task(1, TaskState::Cancelled, &[]),
        task(2, TaskState::Blocked, &[1]),
    ];
    let r = report(
        &running(),
        &tasks,
        &waits(&[(2, vec![blocked_wait(Some(id(1)))])]),
        at(9_000),
    );
    assert_eq!(
        r.needs_a_person[0].next_steps,
        [NextStep::Cancel { task: id(2) }]
    );
    assert!(!r.can_move);
}

#[test]
fn a_ready_task_needs_a_person_only_when_every_wait_does() {
    let o = running();
    let paused = WaitReason::Orchestration {
        orchestration: O,
        status: OrchestrationStatus::Paused,
    };
    let tasks = [task(1, TaskState::Ready, &[])];
    let r = report(
        &o,
        &tasks,
        &waits(&[(1, vec![paused.clone(), no_agent()])]),
        at(9_000),
    );
    assert_eq!(
        r.needs_a_person[0].next_steps,
        [
            NextStep::ResumeOrchestration { orchestration: O },
            NextStep::RegisterAgent,
            NextStep::ShowTask { task: id(1) },
            NextStep::Cancel { task: id(1) },
        ]
    );
    assert_eq!(r.needs_a_person[0].waits, [paused, no_agent()]);
    assert!(!r.can_move);
    // Busy agents free up on their own.
    let r = report(
        &o,
        &tasks,
        &waits(&[(1, vec![no_agent(), busy()])]),
        at(9_000),
    );
    assert!(r.needs_a_person.is_empty());
    assert!(r.can_move);
    // A ready task that waits for nothing runs at the next pass.
    let r = report(&o, &tasks, &waits(&[(1, vec![])]), at(9_000));
    assert!(r.needs_a_person.is_empty());
    assert!(r.can_move);
}

#[test]
fn what_needs_a_person_comes_in_dependency_order() {
    // Task 2 is listed first but depends on task 3.
    let tasks = [
        task(2, TaskState::Blocked, &[3]),
        task(3, TaskState::AwaitingApproval, &[]),
        task(1, TaskState::Blocked, &[]),
    ];
    let r = report(&running(), &tasks, &Waits::new(), at(9_000));
    let order: Vec<TaskId> = r.needs_a_person.iter().map(|n| n.task).collect();
    assert_eq!(order, [id(3), id(2), id(1)]);
}

#[test]
fn an_ended_orchestration_cannot_move() {
    for status in [
        OrchestrationStatus::Completed,
        OrchestrationStatus::Cancelled,
    ] {
        let tasks = [task(1, TaskState::Running, &[])];
        assert!(!can_move(&orchestration(status), &tasks, &Waits::new()));
    }
}

#[test]
fn a_running_task_can_move_and_finished_work_cannot() {
    let o = running();
    assert!(can_move(
        &o,
        &[task(1, TaskState::Running, &[])],
        &Waits::new()
    ));
    assert!(!can_move(
        &o,
        &[
            task(1, TaskState::Completed, &[]),
            task(2, TaskState::Cancelled, &[])
        ],
        &Waits::new()
    ));
    // No task at all: nothing will move.
    assert!(!can_move(&o, &[], &Waits::new()));
}

#[test]
fn a_pending_task_behind_a_blocked_one_however_indirectly_cannot_move() {
    let tasks = [
        task(1, TaskState::Blocked, &[]),
        task(2, TaskState::Pending, &[1]),
        task(3, TaskState::Pending, &[2]),
        task(4, TaskState::Completed, &[]),
    ];
    let w = waits(&[(1, vec![blocked_wait(None)])]);
    assert!(!can_move(&running(), &tasks, &w));
    // Once its other dependency runs, it is the running one that moves.
    let tasks = [
        task(1, TaskState::Completed, &[]),
        task(2, TaskState::Running, &[]),
        task(3, TaskState::Pending, &[1, 2]),
    ];
    assert!(can_move(&running(), &tasks, &Waits::new()));
    // A pending task whose dependencies all completed is about to become ready.
    let tasks = [
        task(1, TaskState::Completed, &[]),
        task(2, TaskState::Pending, &[1]),
    ];
    assert!(can_move(&running(), &tasks, &Waits::new()));
}

#[test]
fn a_ready_task_whose_concern_a_stopped_task_holds_cannot_move() {
    let tasks = [
        task(1, TaskState::Blocked, &[]),
        task(2, TaskState::Ready, &[]),
    ];
    let w = waits(&[(2, vec![concern_held_by(1), busy()])]);
    // Busy agents do not make it movable while the concern stays held.
    assert!(can_move(&running(), &tasks, &w));
    let w = waits(&[(2, vec![concern_held_by(1)])]);
    assert!(!can_move(&running(), &tasks, &w));
    // Behind a task awaiting approval, the same.
    let tasks = [
        task(1, TaskState::AwaitingApproval, &[]),
        task(2, TaskState::Ready, &[]),
        task(3, TaskState::Pending, &[2]),
    ];
    let w = waits(&[(2, vec![concern_held_by(1), no_agent()])]);
    assert!(!can_move(&running(), &tasks, &w));
    // Held by a running task, it moves once that task's work is in.
    let tasks = [
        task(1, TaskState::Running, &[]),
        task(2, TaskState::Ready, &[]),
    ];
    let w = waits(&[(2, vec![concern_held_by(1)])]);
    assert!(can_move(&running(), &tasks, &w));
}

#[test]
fn a_ready_task_whose_waits_are_unknown_is_taken_to_move() {
    let tasks = [task(1, TaskState::Ready, &[])];
    assert!(can_move(&running(), &tasks, &Waits::new()));
}

/// One task of a random orchestration: its state, the earlier tasks it depends on, and (when
/// ready) what it waits for, by code: 0 a person, 1 busy agents, 2 + j a concern task j holds.
#[derive(Debug, Clone)]
struct Spec {
    state: TaskState,
    deps: Vec<usize>,
    waits: Vec<usize>,
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    let states = prop::sample::select(vec![
        TaskState::Pending,
        TaskState::Ready,
        TaskState::Running,
        TaskState::Completed,
        TaskState::Cancelled,
        TaskState::Blocked,
        TaskState::AwaitingApproval,
    ]);
    prop::collection::vec(
        (
            states,
            prop::collection::vec(0usize..8, 0..3),
            prop::collection::vec(0usize..10, 0..3),
        ),
        0..8,
    )
    .prop_map(|raw| {
        let holds = |s: TaskState| {
            matches!(
                s,
                TaskState::Running | TaskState::AwaitingApproval | TaskState::Blocked
            )
        };
        let states: Vec<TaskState> = raw.iter().map(|r| r.0).collect();
        raw.into_iter()
            .enumerate()
            .map(|(i, (state, deps, waits))| Spec {
                state,
                // Dependencies point to earlier tasks only: the domain refuses cycles.
                deps: deps.into_iter().filter(|d| *d < i).collect(),
                // Only a task in flight, blocked or awaiting approval holds a concern here.
                waits: waits
                    .into_iter()
                    .map(|w| match w.checked_sub(2) {
                        Some(j) if j != i && states.get(j).is_some_and(|s| holds(*s)) => w,
                        Some(_) => 1,
                        None => w,
                    })
                    .collect(),
            })
            .collect()
    })
}

fn build(specs: &[Spec]) -> (Vec<Task>, Waits) {
    let n = |i: usize| u128::try_from(i).unwrap() + 1;
    let tasks = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let deps: Vec<u128> = s.deps.iter().map(|d| n(*d)).collect();
            task(n(i), s.state, &deps)
        })
        .collect();
    let waits = specs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.state == TaskState::Ready)
        .map(|(i, s)| {
            let list = s
                .waits
                .iter()
                .map(|w| match w {
                    0 => no_agent(),
                    1 => busy(),
                    j => concern_held_by(n(j - 2)),
                })
                .collect();
            (id(n(i)), list)
        })
        .collect();
    (tasks, waits)
}

/// The model: a task moves without a person, now or once the tasks it waits for have moved,
/// when it is in flight; ready, and waiting for nothing, or for something that ends with time
/// (busy agents) or with a task that itself moves (a concern it holds), since what it waits for
/// then changes; or pending with every dependency completed or able to move. Computed as the
/// least fixpoint of what moves, the dual of how `can_move` grows what is stopped.
fn model_can_move(specs: &[Spec]) -> bool {
    let mut moves = vec![false; specs.len()];
    loop {
        let mut changed = false;
        for (i, s) in specs.iter().enumerate() {
            if moves[i] {
                continue;
            }
            let ok = match s.state {
                TaskState::Running => true,
                TaskState::Ready => {
                    s.waits.is_empty()
                        || s.waits.iter().any(|w| match w {
                            0 => false,
                            1 => true,
                            j => moves[j - 2],
                        })
                }
                TaskState::Pending => s
                    .deps
                    .iter()
                    .all(|d| specs[*d].state == TaskState::Completed || moves[*d]),
                _ => false,
            };
            if ok {
                moves[i] = true;
                changed = true;
            }
        }
        if !changed {
            return moves.iter().any(|m| *m);
        }
    }
}

proptest! {
    #[test]
    fn can_move_exactly_when_some_task_can_ever_change_without_a_person(specs in specs()) {
        let (tasks, waits) = build(&specs);
        prop_assert_eq!(can_move(&running(), &tasks, &waits), model_can_move(&specs));
        let r = report(&running(), &tasks, &waits, at(1));
        prop_assert_eq!(r.can_move, model_can_move(&specs));
        prop_assert_eq!(r.tasks, u64::try_from(tasks.len()).unwrap());
    }

    #[test]
    fn a_blocked_dependency_never_makes_an_orchestration_movable(specs in specs()) {
        let (mut tasks, waits) = build(&specs);
        let before = can_move(&running(), &tasks, &waits);
        // A new blocked task, and every pending task depending on it too.
        let blocker = task(99, TaskState::Blocked, &[]);
        tasks = tasks
            .into_iter()
            .map(|t| {
                if t.state == TaskState::Pending {
                    let mut data = t.data().clone();
                    data.spec.depends_on.insert(blocker.id);
                    Task::restore(data)
                } else {
                    t
                }
            })
            .collect();
        tasks.push(blocker);
        prop_assert!(!can_move(&running(), &tasks, &waits) || before);
    }
}
