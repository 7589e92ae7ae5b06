//! Concern locks under random workloads, on the real service over a real database file with a
//! recording agent runtime (so that the scheduler runs inside every transaction, as in the
//! daemon): tasks with random concerns, scopes, risks, dependencies and attempts, agents with
//! several slots, then a random sequence of starts, successes, failures, approvals,
//! cancellations, retries and pauses. After every step: no two tasks that hold their concerns
//! (assigned, running, verifying or awaiting approval) have overlapping ones in the same scope,
//! every assigned attempt was handed to the runtime, and nothing is left waiting that could run
//! (a ready task clashing with no holder, with a free capable agent, is assigned).
//!
//! maos-sqlite has no proptest dev-dependency: the cases are a deterministic randomized loop with
//! fixed seeds (`MAOS_CONCERN_CASES` runs more of them); a failure prints its seed and the steps
//! that led to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use maos_application::{
    AgentRuntime, CreateOrchestration, CreateTask, FailurePolicy, IdRef, Launch, MaosApi, Page,
    Service, ServiceConfig, TaskFilter,
};
use maos_domain::policy::concerns::Concern;
use maos_domain::policy::matcher;
use maos_domain::policy::retry::{CircuitBreaker, RetryPolicy};
use maos_domain::{
    Agent, AgentStatus, AttemptStart, CapabilitySet, MaxAttempts, OrchestrationId,
    OrchestrationStatus, Risk, RunReport, Task, TaskId, TaskState,
};
use maos_sqlite::SqliteStore;

use crate::support::{Rng, TestClock, TestIds, agent_name, caps, daemon_agent, title};

/// The states in which a task holds its concerns.
const HOLDING: [TaskState; 4] = [
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Verifying,
    TaskState::AwaitingApproval,
];

/// The concerns tasks draw theirs from: overlapping globs, disjoint ones, named resources.
const UNIVERSE: [&str; 10] = [
    "src/a.rs",
    "src/*",
    "src/**",
    "src/b/**",
    "src/b/c.rs",
    "docs/x.md",
    "docs",
    "port:1",
    "port:2",
    "db:main",
];

/// An agent runtime that only records what it is asked to do.
#[derive(Debug, Default)]
struct Recorder {
    launches: Mutex<Vec<Launch>>,
    stops: Mutex<Vec<(TaskId, u32)>>,
}

impl AgentRuntime for Recorder {
    fn launch(&self, launch: Launch) {
        self.launches.lock().unwrap().push(launch);
    }

    fn stop(&self, task: TaskId, attempt: u32, _reason: &str) {
        self.stops.lock().unwrap().push((task, attempt));
    }
}

/// A service that schedules, over a fresh database file.
struct World {
    _dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    runtime: Arc<Recorder>,
    svc: Service<SqliteStore>,
}

impl World {
    fn new(seed: u64, config: ServiceConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("maos.db")).unwrap();
        let clock = Arc::new(TestClock::new(1_700_000_000_000, 1));
        let runtime = Arc::new(Recorder::default());
        let svc = Service::new(
            Arc::new(store),
            clock.clone(),
            Arc::new(TestIds::new(seed)),
            config,
        )
        .with_runtime(runtime.clone());
        World {
            _dir: dir,
            clock,
            runtime,
            svc,
        }
    }

    fn tasks(&self) -> Vec<Task> {
        let page = Page {
            limit: Page::MAX_LIMIT,
            cursor: None,
        };
        let p = self.svc.list_tasks(&TaskFilter::default(), &page).unwrap();
        assert!(p.next_cursor.is_none(), "more tasks than one page");
        p.tasks
    }

    fn agents(&self) -> Vec<Agent> {
        self.svc
            .list_agents(&maos_application::AgentFilter {
                statuses: AgentStatus::ALL.to_vec(),
                capability: None,
            })
            .unwrap()
    }

    fn orchestration_status(&self, id: OrchestrationId) -> OrchestrationStatus {
        self.svc.get_orchestration(&IdRef::from(id)).unwrap().status
    }
}

/// Where a task's path concerns apply: its repository, else its orchestration, else the space of
/// every task with neither.
fn scope(t: &Task) -> String {
    match (&t.spec.workspace, t.spec.orchestration) {
        (Some(ws), _) => format!("repo:{}", ws.repo),
        (None, Some(o)) => format!("orchestration:{o}"),
        (None, None) => String::new(),
    }
}

/// The pair of overlapping concerns of `a` and `b`, if any: paths only within one scope, named
/// resources everywhere.
fn clash(a: &Task, b: &Task) -> Option<(Concern, Concern)> {
    let same_scope = scope(a) == scope(b);
    for x in &a.spec.concerns {
        for y in &b.spec.concerns {
            let comparable = same_scope
                || (matches!(x, Concern::Resource(_)) && matches!(y, Concern::Resource(_)));
            if comparable && x.overlaps(y) {
                return Some((x.clone(), y.clone()));
            }
        }
    }
    None
}

fn describe(t: &Task) -> String {
    let concerns: Vec<String> = t.spec.concerns.iter().map(ToString::to_string).collect();
    format!(
        "{} \"{}\" ({}, scope {:?}, concerns [{}])",
        t.id.short(),
        t.spec.title,
        t.state,
        scope(t),
        concerns.join(" ")
    )
}

/// Checks the invariants after a step; `log` says how the case got here.
fn check(w: &World, log: &[String]) {
    let tasks = w.tasks();
    let agents = w.agents();
    let fail = |what: String| -> ! {
        panic!("{what}\n\nsteps:\n  {}", log.join("\n  "));
    };

    // Safety: no two holders overlap.
    let holders: Vec<&Task> = tasks
        .iter()
        .filter(|t| HOLDING.contains(&t.state))
        .collect();
    for (i, a) in holders.iter().enumerate() {
        for b in &holders[i + 1..] {
            if let Some((x, y)) = clash(a, b) {
                fail(format!(
                    "two tasks hold overlapping concerns (`{x}` and `{y}`) at once:\n  {}\n  {}",
                    describe(a),
                    describe(b)
                ));
            }
        }
    }

    // Every assigned or running attempt was handed to the runtime, with its fencing token.
    {
        let launches = w.runtime.launches.lock().unwrap();
        for t in tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Assigned | TaskState::Running))
        {
            let launched = launches.iter().any(|l| {
                l.task.id == t.id && l.attempt == t.attempts_used() && l.fencing == t.fencing
            });
            if !launched {
                fail(format!(
                    "{} has attempt {} but the runtime was never asked to run it",
                    describe(t),
                    t.attempts_used()
                ));
            }
        }
    }

    // Slots: every agent's active count is the number of attempts that hold one of its slots.
    for a in &agents {
        let held = tasks
            .iter()
            .filter(|t| t.state.holds_slot())
            .filter(|t| t.current_attempt().is_some_and(|at| at.agent == a.name))
            .count();
        if held != a.active as usize {
            fail(format!(
                "agent {} has {} active, but {held} tasks hold its slots",
                a.name, a.active
            ));
        }
    }

    // Progress: a ready task that clashes with no holder, whose orchestration runs, with a free
    // capable agent, has been assigned.
    for t in tasks.iter().filter(|t| t.state == TaskState::Ready) {
        if let Some(o) = t.spec.orchestration
            && w.orchestration_status(o) != OrchestrationStatus::Running
        {
            continue;
        }
        if holders
            .iter()
            .any(|h| h.id != t.id && clash(t, h).is_some())
        {
            continue;
        }
        if let Some(a) = agents.iter().find(|a| matcher::can_take(a, t.spec.needs())) {
            let waiting = w.svc.task_waiting(&IdRef::from(t.id)).unwrap();
            fail(format!(
                "{} is ready and clashes with no holder, agent {} has {} free slot(s), but it \
                 was not assigned (task show says it waits for: {waiting:?})",
                describe(t),
                a.name,
                a.free_slots()
            ));
        }
    }
}

/// A random task to create.
fn random_task(
    rng: &mut Rng,
    n: usize,
    orchestrations: &[OrchestrationId],
    w: &World,
    earlier: &[TaskId],
) -> CreateTask {
    let mut concerns = Vec::new();
    for _ in 0..rng.below(3) {
        let c = Concern::parse(rng.pick(&UNIVERSE)).unwrap();
        if !concerns.contains(&c) {
            concerns.push(c);
        }
    }
    // A third of the tasks in no orchestration, the rest in one of them (while it has not
    // finished).
    let pick = rng.below(orchestrations.len() as u64 + 1) as usize;
    let orchestration = orchestrations
        .get(pick)
        .copied()
        .filter(|o| !w.orchestration_status(*o).is_terminal())
        .map(IdRef::from);
    let capabilities = match rng.below(4) {
        0 => caps(&["x"]),
        1 => caps(&["y"]),
        _ => CapabilitySet::empty(),
    };
    let depends_on = if !earlier.is_empty() && rng.below(5) == 0 {
        vec![IdRef::from(rng.pick(earlier))]
    } else {
        Vec::new()
    };
    CreateTask {
        concerns,
        orchestration,
        capabilities,
        depends_on,
        risk: if rng.below(3) == 0 {
            Risk::Medium
        } else {
            Risk::Low
        },
        max_attempts: MaxAttempts::new(1 + rng.below(3) as u32).unwrap(),
        ..CreateTask::titled(title(&format!("task {n}")))
    }
}

fn run_case(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let config = ServiceConfig {
        failure: FailurePolicy {
            backoff: (rng.below(2) == 0).then(RetryPolicy::default),
            breaker: CircuitBreaker {
                threshold: rng.pick(&[0, 2, 3]),
            },
        },
        ..ServiceConfig::default()
    };
    let w = World::new(seed, config);
    let mut log = vec![format!(
        "seed {seed}: backoff {:?}, breaker {:?}",
        config.failure.backoff.is_some(),
        config.failure.breaker.threshold
    )];

    // Agents: one to three, with one to three slots, some offering `x` or `y`.
    for i in 0..1 + rng.below(3) {
        let offers: &[&str] = match rng.below(3) {
            0 => &["x"],
            1 => &["x", "y"],
            _ => &[],
        };
        let slots = 1 + rng.below(3) as u32;
        w.svc
            .register_agent(daemon_agent(&format!("agent-{i}"), offers, slots))
            .unwrap();
        log.push(format!("register agent-{i} {offers:?} with {slots} slots"));
    }
    // Two running orchestrations, each kept unfinished by a task no agent can take.
    let mut orchestrations = Vec::new();
    for i in 0..2 {
        let o = w
            .svc
            .create_orchestration(CreateOrchestration {
                name: title(&format!("orchestration {i}")),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            })
            .unwrap();
        w.svc.start_orchestration(&IdRef::from(o.id)).unwrap();
        w.svc
            .create_task(CreateTask {
                capabilities: caps(&["nobody"]),
                orchestration: Some(IdRef::from(o.id)),
                ..CreateTask::titled(title(&format!("keeper {i}")))
            })
            .unwrap();
        orchestrations.push(o.id);
    }
    check(&w, &log);

    let mut created: Vec<TaskId> = Vec::new();
    let new_task = |w: &World, rng: &mut Rng, log: &mut Vec<String>, created: &mut Vec<_>| {
        let n = created.len();
        let cmd = random_task(rng, n, &orchestrations, w, created);
        let t = w.svc.create_task(cmd).unwrap().task;
        log.push(format!("create {}", describe(&t)));
        created.push(t.id);
    };
    for _ in 0..3 + rng.below(8) {
        new_task(&w, &mut rng, &mut log, &mut created);
        check(&w, &log);
    }

    for _ in 0..60 {
        let tasks: BTreeMap<TaskId, Task> = w
            .tasks()
            .into_iter()
            .filter(|t| !t.spec.title.as_str().starts_with("keeper"))
            .map(|t| (t.id, t))
            .collect();
        let in_state = |s: TaskState| -> Vec<&Task> {
            tasks.values().filter(|t| t.state == s).collect::<Vec<_>>()
        };
        let assigned = in_state(TaskState::Assigned);
        let running = in_state(TaskState::Running);
        let awaiting = in_state(TaskState::AwaitingApproval);
        let blocked = in_state(TaskState::Blocked);
        let retrying = in_state(TaskState::Retrying);
        let drained: Vec<Agent> = w
            .agents()
            .into_iter()
            .filter(|a| a.status == AgentStatus::Draining)
            .collect();
        let live = tasks.values().any(|t| !t.state.is_terminal());
        if !live && created.len() > 20 {
            break;
        }
        match rng.below(100) {
            0..25 if !assigned.is_empty() => {
                let t = rng.pick(&assigned);
                w.svc
                    .start_attempt(t.id, t.fencing, AttemptStart::default())
                    .unwrap();
                log.push(format!("start {}", describe(t)));
            }
            25..45 if !running.is_empty() => {
                let t = rng.pick(&running);
                let done = w
                    .svc
                    .complete_attempt(t.id, t.fencing, Some("done".into()), RunReport::default())
                    .unwrap();
                log.push(format!("complete {} -> {}", describe(t), done.state));
            }
            45..60 if !running.is_empty() => {
                let t = rng.pick(&running);
                let failed = w
                    .svc
                    .fail_attempt(t.id, t.fencing, "boom".into(), RunReport::default())
                    .unwrap();
                log.push(format!("fail {} -> {}", describe(t), failed.state));
            }
            60..70 if !awaiting.is_empty() => {
                let t = rng.pick(&awaiting);
                let approved = w.svc.approve(&IdRef::from(t.id)).unwrap();
                log.push(format!("approve {} -> {}", describe(t), approved.state));
            }
            70..73 => {
                let open: Vec<&Task> = tasks.values().filter(|t| !t.state.is_terminal()).collect();
                if !open.is_empty() {
                    let t = rng.pick(&open);
                    w.svc.cancel_task(&IdRef::from(t.id), None).unwrap();
                    log.push(format!("cancel {}", describe(t)));
                    if t.state.holds_slot() {
                        let stopped = w
                            .runtime
                            .stops
                            .lock()
                            .unwrap()
                            .contains(&(t.id, t.attempts_used()));
                        assert!(
                            stopped,
                            "cancelled {} but its attempt was not stopped",
                            describe(t)
                        );
                    }
                }
            }
            73..78 if !retrying.is_empty() => {
                w.clock.advance(600_000);
                let n = w.svc.promote_due_retries().unwrap();
                log.push(format!("promote {n} due retries"));
            }
            78..82 if !drained.is_empty() => {
                let a = &drained[rng.below(drained.len() as u64) as usize].name;
                w.svc.resume_agent(a).unwrap();
                log.push(format!("resume {a}"));
            }
            82..85 if !blocked.is_empty() => {
                // Only tasks that ran out of attempts (not those whose dependency was cancelled).
                let spent: Vec<&Task> = blocked
                    .iter()
                    .copied()
                    .filter(|t| t.attempts_used() > 0)
                    .collect();
                if !spent.is_empty() {
                    let t = rng.pick(&spent);
                    let again = w.svc.retry_task(&IdRef::from(t.id), 1).unwrap();
                    log.push(format!("retry {} -> {}", describe(t), again.state));
                }
            }
            85..88 => {
                let id = rng.pick(&orchestrations);
                let o = IdRef::from(id);
                let now = rng.below(2) == 0;
                match w.orchestration_status(id) {
                    OrchestrationStatus::Running => {
                        w.svc.pause_orchestration(&o, now).unwrap();
                        log.push(format!("pause {o} (now: {now})"));
                    }
                    OrchestrationStatus::Paused => {
                        w.svc.resume_orchestration(&o).unwrap();
                        log.push(format!("resume {o}"));
                    }
                    _ => {}
                }
            }
            88..100 if created.len() < 24 => {
                new_task(&w, &mut rng, &mut log, &mut created);
            }
            _ => continue,
        }
        check(&w, &log);
    }
    // Whatever ran was stopped only after a cancellation or a pause: never twice the same attempt.
    let stops = w.runtime.stops.lock().unwrap();
    let mut seen = stops.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        stops.len(),
        "an attempt was stopped twice: {stops:?}"
    );
}

#[test]
fn tasks_with_overlapping_concerns_never_hold_them_at_once_and_free_work_is_never_left_waiting() {
    let cases: u64 = std::env::var("MAOS_CONCERN_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    for case in 0..cases {
        run_case(0xC0_4CE4 + case);
    }
}

/// The scheduler looks at a few more ready tasks than an agent has free slots; tasks held back
/// by concern locks must not hide one behind them that could run.
#[test]
fn a_free_agent_gets_a_runnable_task_however_many_locked_ones_are_ahead_of_it() {
    let w = World::new(7, ServiceConfig::default());
    w.svc.register_agent(daemon_agent("solo", &[], 1)).unwrap();
    // A medium-risk task holds `src/**` while it runs and then while it waits for a person.
    let holder = w
        .svc
        .create_task(CreateTask {
            concerns: vec![Concern::parse("src/**").unwrap()],
            risk: Risk::Medium,
            ..CreateTask::titled(title("holder"))
        })
        .unwrap()
        .task;
    assert_eq!(holder.state, TaskState::Assigned);
    w.svc
        .start_attempt(holder.id, holder.fencing, AttemptStart::default())
        .unwrap();
    // Twenty tasks that need a file under `src`, queued first, then one that needs nothing.
    for i in 0..20 {
        let t = w
            .svc
            .create_task(CreateTask {
                concerns: vec![Concern::parse("src/a.rs").unwrap()],
                ..CreateTask::titled(title(&format!("locked {i}")))
            })
            .unwrap()
            .task;
        assert_eq!(t.state, TaskState::Ready);
    }
    let free = w
        .svc
        .create_task(CreateTask::titled(title("free")))
        .unwrap()
        .task;
    assert_eq!(free.state, TaskState::Ready, "the only slot is taken");

    // The holder's work waits for a person: the slot is free, `src/**` is still held.
    let waiting = w
        .svc
        .complete_attempt(
            holder.id,
            holder.fencing,
            Some("done".into()),
            RunReport::default(),
        )
        .unwrap();
    assert_eq!(waiting.state, TaskState::AwaitingApproval);

    let free = w.svc.get_task(&IdRef::from(free.id)).unwrap();
    let solo = w.svc.get_agent(&agent_name("solo")).unwrap();
    let why = w.svc.task_waiting(&IdRef::from(free.id)).unwrap();
    assert_eq!(
        free.state,
        TaskState::Assigned,
        "agent solo was left with {} free slot(s): the task that clashes with nothing is {} and \
         `task show` says it waits for {why:?}",
        solo.free_slots(),
        free.state
    );
    assert_eq!(solo.free_slots(), 0);
}
