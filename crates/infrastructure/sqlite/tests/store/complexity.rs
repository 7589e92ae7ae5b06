//! What one task's steps cost as the stored work grows, counted rather than timed: the SQLite
//! virtual-machine steps (`WorkMeter`) of creating, assigning, starting, completing and reading
//! (with what it waits for) a task with 100 and with 10,000 tasks stored, standalone and in one orchestration, and of creating a
//! plan of 100 and of 10,000 tasks, per task. A step that reads the orchestration's tasks, or
//! all tasks, makes the larger cost grow with them and fails here.

use maos_application::{
    AssignTask, CreateOrchestration, CreatePlan, CreateTask, IdRef, MaosApi, PlanTask,
    RegisterAgent, TaskFilter,
};
use maos_domain::policy::concerns::Concern;
use maos_domain::{AdapterKind, RunReport, Slots, Task, TaskState, Tier, WaitReason};
use maos_sqlite::WorkMeter;

use crate::support::{Db, agent_name, all_tasks, caps, daemon_agent, task, title};

/// How much more an operation may cost with 100 times the tasks stored: the B-trees are a
/// level or two deeper, which SQLite counts as the same number of steps, so anything near
/// 100 times is a scan.
const FACTOR: f64 = 1.5;

/// The small and the large store.
const SMALL: usize = 100;
const LARGE: usize = 10_000;

/// Where the stored tasks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Tasks of no orchestration.
    Standalone,
    /// Tasks of one running orchestration.
    Orchestration,
}

/// The steps of each operation on one task.
#[derive(Debug, Clone, Copy)]
struct Costs {
    create: u64,
    assign: u64,
    start: u64,
    complete: u64,
    /// Explaining what a task that waits for another waits for.
    read: u64,
}

/// A task that needs `rust` and holds a file of its own while it runs (so the concern locks
/// are consulted at every assignment).
fn work(i: usize) -> CreateTask {
    CreateTask {
        capabilities: caps(&["rust"]),
        concerns: vec![Concern::parse(&format!("src/t{i}.rs")).unwrap()],
        ..task(&format!("task {i}"))
    }
}

/// A plan of `n` tasks: the first half depend on nothing, each of the second half on one of
/// the first (so completing a task makes another ready).
fn plan(n: usize) -> CreatePlan {
    let half = n / 2;
    CreatePlan {
        orchestration: CreateOrchestration {
            name: title("Many tasks"),
            goal: Some("Count the work".into()),
            workspace: None,
            verify: None,
            notes: Vec::new(),
        },
        tasks: (0..n)
            .map(|i| PlanTask {
                key: format!("t{i}"),
                task: work(i),
                depends_on: if i < half {
                    Vec::new()
                } else {
                    vec![format!("t{}", i - half)]
                },
            })
            .collect(),
        start: true,
    }
}

/// `n` tasks stored in `shape`, half of them waiting for another; answers the orchestration's
/// id, if any.
fn fill(db: &Db, shape: Shape, n: usize) -> Option<IdRef> {
    match shape {
        Shape::Standalone => {
            let first: Vec<Task> = db
                .svc
                .create_tasks((0..n / 2).map(work).collect())
                .unwrap()
                .into_iter()
                .map(|c| c.task)
                .collect();
            db.svc
                .create_tasks(
                    first
                        .iter()
                        .enumerate()
                        .map(|(i, t)| CreateTask {
                            depends_on: vec![IdRef::from(t.id)],
                            ..work(n / 2 + i)
                        })
                        .collect(),
                )
                .unwrap();
            None
        }
        Shape::Orchestration => {
            let made = db.svc.create_plan(plan(n)).unwrap();
            Some(made.orchestration.id.into())
        }
    }
}

/// Registers an external agent for `rust` tasks: only a manual assignment gives it work.
fn external(db: &Db, name: &str) {
    db.svc
        .register_agent(RegisterAgent {
            name: agent_name(name),
            adapter: AdapterKind::External,
            capabilities: caps(&["rust"]),
            tier: Tier::Tactical,
            slots: Slots::new(4).unwrap(),
            command: None,
            settings: maos_domain::AgentSettings::default(),
        })
        .unwrap();
}

fn tasks_in(db: &Db, state: TaskState) -> Vec<Task> {
    let filter = TaskFilter {
        statuses: vec![state],
        ..Default::default()
    };
    all_tasks(&db.svc, &filter, 1_000)
}

/// The steps of each operation on one task with `n` tasks stored in `shape`. Each is done once
/// unmeasured first, so that every statement is prepared and every cache warm, as in a daemon
/// that has been running.
fn costs(shape: Shape, n: usize) -> Costs {
    let meter = WorkMeter::new();
    let db = Db::metered(&meter);
    let orchestration = fill(&db, shape, n);
    // An agent the daemon runs with one slot (the scheduler gives it work and takes its slot
    // back; it reports its start, as a process does), and an external one that only a manual
    // assignment gives work to.
    db.svc
        .register_agent(daemon_agent("runner", &["rust"], 1))
        .unwrap();
    external(&db, "outside");

    let mut create = 0;
    let mut assign = 0;
    let mut start = 0;
    let mut complete = 0;
    let mut read = 0;
    for round in 0..2 {
        let measured = round == 1;
        let keep = |total: &mut u64, steps: u64| {
            if measured {
                *total = steps;
            }
        };
        let (steps, _) = meter.count(|| {
            db.svc
                .create_task(CreateTask {
                    orchestration: orchestration.clone(),
                    ..work(n + round)
                })
                .unwrap()
        });
        keep(&mut create, steps);

        let ready = tasks_in(&db, TaskState::Ready);
        let target = ready.last().expect("a ready task").id;
        let (steps, _) = meter.count(|| {
            db.svc
                .assign_task(AssignTask {
                    task: IdRef::from(target),
                    agent: Some(agent_name("outside")),
                })
                .unwrap()
        });
        keep(&mut assign, steps);

        let mine: Vec<Task> = tasks_in(&db, TaskState::Assigned)
            .into_iter()
            .filter(|t| {
                t.current_attempt()
                    .is_some_and(|a| a.agent.as_str() == "runner")
            })
            .collect();
        let [t] = mine.as_slice() else {
            panic!("the runner should hold one task, holds {mine:?}");
        };
        let (steps, started) =
            meter.count(|| db.svc.start_attempt(t.id, t.fencing, Default::default()));
        started.unwrap();
        keep(&mut start, steps);
        let (steps, done) = meter.count(|| {
            db.svc
                .complete_attempt(t.id, t.fencing, Some("done".into()), RunReport::default())
        });
        assert_eq!(done.unwrap().state, TaskState::Completed);
        keep(&mut complete, steps);

        let pending = tasks_in(&db, TaskState::Pending);
        let waiting = pending.first().expect("a task waiting for another");
        let (steps, why) = meter.count(|| db.svc.task_waiting(&IdRef::from(waiting.id)));
        assert!(
            matches!(why.unwrap().as_slice(), [WaitReason::Dependency { .. }]),
            "it waits for its dependency"
        );
        keep(&mut read, steps);
    }
    Costs {
        create,
        assign,
        start,
        complete,
        read,
    }
}

/// Fails when `large` (the cost with a hundred times the data) is more than `FACTOR` times
/// `small`.
fn assert_bounded(what: &str, small: u64, large: u64) {
    assert!(small > 0, "{what}: no SQLite work was counted");
    #[allow(clippy::cast_precision_loss)]
    let ratio = large as f64 / small as f64;
    assert!(
        ratio <= FACTOR,
        "{what}: {small} steps, and {large} with a hundred times the data ({ratio:.2}x)"
    );
}

fn compare(shape: Shape) {
    let small = costs(shape, SMALL);
    let large = costs(shape, LARGE);
    eprintln!("{shape:?}: {SMALL} tasks {small:?}; {LARGE} tasks {large:?}");
    assert_bounded(&format!("{shape:?} create"), small.create, large.create);
    assert_bounded(&format!("{shape:?} assign"), small.assign, large.assign);
    assert_bounded(&format!("{shape:?} start"), small.start, large.start);
    assert_bounded(
        &format!("{shape:?} complete"),
        small.complete,
        large.complete,
    );
    assert_bounded(&format!("{shape:?} read"), small.read, large.read);
}

#[test]
fn a_standalone_tasks_steps_cost_the_same_with_a_hundred_times_the_tasks() {
    compare(Shape::Standalone);
}

#[test]
fn a_tasks_steps_cost_the_same_in_an_orchestration_a_hundred_times_larger() {
    compare(Shape::Orchestration);
}

/// Steps per task of creating (checking and storing) a plan of `n` tasks.
fn plan_steps_per_task(n: usize) -> f64 {
    let meter = WorkMeter::new();
    let db = Db::metered(&meter);
    // Warm: the statements prepared, the schema read.
    db.svc.create_plan(plan(2)).unwrap();
    let (steps, made) = meter.count(|| db.svc.create_plan(plan(n)));
    assert_eq!(made.unwrap().tasks.len(), n);
    #[allow(clippy::cast_precision_loss)]
    let per = steps as f64 / n as f64;
    per
}

#[test]
fn a_plans_cost_per_task_is_the_same_for_a_hundred_times_the_tasks() {
    let small = plan_steps_per_task(SMALL);
    let large = plan_steps_per_task(LARGE);
    eprintln!("plan: {small:.1} steps per task of {SMALL}, {large:.1} of {LARGE}");
    assert!(small > 0.0);
    assert!(
        large <= small * FACTOR,
        "a plan of {LARGE} tasks costs {large:.1} steps per task, one of {SMALL} {small:.1}"
    );
}

/// Steps of creating a task the daemon could run, with `outside` external agents registered
/// (which MAOS never schedules onto) and one busy simulated agent.
fn create_steps_beside(outside: usize) -> u64 {
    let meter = WorkMeter::new();
    let db = Db::metered(&meter);
    for i in 0..outside {
        external(&db, &format!("outside-{i:05}"));
    }
    db.svc
        .register_agent(daemon_agent("runner", &["rust"], 1))
        .unwrap();
    let mut steps = 0;
    for i in 0..3 {
        let (s, made) = meter.count(|| db.svc.create_task(work(i)));
        made.unwrap();
        steps = s;
    }
    steps
}

#[test]
fn creating_a_task_costs_the_same_beside_a_hundred_times_the_external_agents() {
    let small = create_steps_beside(20);
    let large = create_steps_beside(2_000);
    eprintln!("create beside 20 external agents: {small} steps; beside 2,000: {large}");
    assert_bounded("create beside external agents", small, large);
}
