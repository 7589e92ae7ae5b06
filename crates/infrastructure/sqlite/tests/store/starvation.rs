//! The scheduler never starves a free agent: however many ready tasks no free agent can take (a
//! backlog for an `external` agent, which MAOS never schedules onto, or for a capability nobody
//! offers), a free agent gets a ready task it can take, and finding it costs the same whatever
//! the size of that backlog (counted in SQLite's steps, not timed). On the real service over a
//! real database file, with a recording agent runtime so that the scheduler runs inside every
//! transaction, as in the daemon.

use std::sync::Arc;

use maos_application::{CreateTask, IdRef, MaosApi, Service, ServiceConfig};
use maos_domain::policy::matcher;
use maos_domain::{
    AdapterKind, Agent, AgentStatus, AttemptStart, Priority, RunReport, Task, TaskState, Tier,
};
use maos_sqlite::SqliteStore;

use crate::support::{Recorder, Rng, TestClock, TestIds, caps, daemon_agent, title};

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    svc: Service<SqliteStore>,
}

impl World {
    fn new(seed: u64) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).unwrap());
        let svc = Service::new(
            Arc::clone(&store),
            Arc::new(TestClock::new(1_700_000_000_000, 1)),
            Arc::new(TestIds::new(seed)),
            ServiceConfig::default(),
        )
        .with_runtime(Arc::new(Recorder::default()));
        World {
            _dir: dir,
            store,
            svc,
        }
    }

    fn register(&self, name: &str, offers: &[&str], slots: u32, adapter: AdapterKind) {
        let mut a = daemon_agent(name, offers, slots);
        a.adapter = adapter;
        self.svc.register_agent(a).unwrap();
    }

    fn agents(&self) -> Vec<Agent> {
        self.svc
            .list_agents(&maos_application::AgentFilter {
                statuses: AgentStatus::ALL.to_vec(),
                capability: None,
            })
            .unwrap()
    }

    /// Creates `n` tasks needing `needs` (of `tier`, if any) at `priority`, in one call.
    fn backlog(
        &self,
        n: usize,
        needs: &[&str],
        tier: Option<Tier>,
        priority: Priority,
    ) -> Vec<maos_domain::TaskId> {
        let cmds = (0..n)
            .map(|i| {
                let mut c = CreateTask::titled(title(&format!("backlog {i}")));
                c.capabilities = caps(needs);
                c.tier = tier;
                c.priority = priority;
                c
            })
            .collect();
        let created = self.svc.create_tasks(cmds).unwrap();
        created.into_iter().map(|c| c.task.id).collect()
    }

    fn create(&self, name: &str, needs: &[&str], priority: Priority) -> Task {
        let mut c = CreateTask::titled(title(name));
        c.capabilities = caps(needs);
        c.priority = priority;
        self.svc.create_task(c).unwrap().task
    }

    /// Starts and completes the attempt of `t` (assigned): its agent's slot frees.
    fn finish(&self, t: &Task) {
        self.svc
            .start_attempt(t.id, t.fencing, AttemptStart::default())
            .unwrap();
        self.svc
            .complete_attempt(t.id, t.fencing, Some("done".into()), RunReport::default())
            .unwrap();
    }

    fn task(&self, t: &Task) -> Task {
        self.svc.get_task(&IdRef::from(t.id)).unwrap()
    }

    /// No agent the daemon runs that takes work has a free slot while a ready task of `tasks` it
    /// can take waits. (These tasks have no concerns, budget or orchestration.)
    fn assert_no_idle_agent_with(&self, tasks: &[maos_domain::TaskId], context: &str) {
        let ready: Vec<Task> = tasks
            .iter()
            .map(|id| self.svc.get_task(&IdRef::from(*id)).unwrap())
            .filter(|t| t.state == TaskState::Ready)
            .collect();
        for a in self.agents() {
            if !a.adapter.is_run_by_daemon() || !a.accepts_work() || a.free_slots() == 0 {
                continue;
            }
            if let Some(t) = ready
                .iter()
                .find(|t| matcher::is_capable(&a, t.spec.needs()))
            {
                panic!(
                    "{context}: agent {} has {} free slot(s) while ready task {} ({}) waits",
                    a.name,
                    a.free_slots(),
                    t.id.short(),
                    t.spec.title,
                );
            }
        }
    }
}

/// The reported case: a busy agent the daemon runs, then 2,000 ready tasks only an external agent can
/// take (and some nobody can), then tasks for that agent. When its slot frees, it takes
/// the next of those, behind the whole backlog. Answers how much work finding it took.
fn behind_a_backlog(backlog: usize) -> u64 {
    let w = World::new(7);
    w.register("outside", &["gpu"], 4, AdapterKind::External);
    w.register("runner", &[], 1, AdapterKind::Command);
    let first = w.create("first", &[], Priority::Normal);
    assert_eq!(w.task(&first).state, TaskState::Assigned);
    w.backlog(backlog, &["gpu"], None, Priority::Urgent);
    w.backlog(backlog / 10, &["quantum"], None, Priority::High);
    let second = w.create("second", &[], Priority::Low);
    let third = w.create("third", &[], Priority::Low);
    assert_eq!(w.task(&second).state, TaskState::Ready, "the agent is busy");

    let before = w.store.ready_queue_steps().unwrap();
    w.finish(&first);
    let steps = w.store.ready_queue_steps().unwrap() - before;
    assert_eq!(
        w.task(&second).state,
        TaskState::Assigned,
        "the free agent did not get the task it can take behind {backlog} it cannot"
    );
    assert_eq!(w.task(&third).state, TaskState::Ready);
    w.finish(&w.task(&second));
    assert_eq!(w.task(&third).state, TaskState::Assigned);
    w.assert_no_idle_agent_with(&[second.id, third.id], "after the backlog");
    steps
}

#[test]
fn a_free_agent_gets_the_task_it_can_take_behind_two_thousand_it_cannot() {
    behind_a_backlog(2_000);
}

#[test]
fn finding_work_for_a_free_agent_costs_the_same_whatever_the_backlog_it_cannot_take() {
    let small = behind_a_backlog(10);
    let large = behind_a_backlog(3_000);
    assert!(small > 0, "the ready queue was not consulted");
    assert_eq!(
        small, large,
        "steps to find work: {small} with 10 tasks in the backlog, {large} with 3,000"
    );
}

/// Random workloads: backlogs (external-only capabilities, capabilities nobody offers, a tier
/// nobody has) created in batches of up to 1,000, tasks the agents the daemon runs can take, finished
/// attempts, cancelled tasks, agents registered and drained. After every step no agent run by the
/// daemon is idle while a ready task it can take waits. (Only the tasks made for them can go to
/// the agents the daemon runs, so those are the ones checked: listing thousands of ready tasks after
/// every step would make the test slow, not stronger.)
#[test]
fn randomized_backlogs_never_leave_a_free_agent_idle_with_work_it_can_take() {
    let cases: u64 = std::env::var("MAOS_STARVATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    for case in 0..cases {
        let seed = 0x5EED_0000 + case;
        let mut rng = Rng(seed);
        let w = World::new(seed);
        w.register("outside", &["gpu"], 2, AdapterKind::External);
        w.register("runner-0", &["rust"], 1, AdapterKind::Command);
        let mut agents = 1;
        let mut backlog: Vec<maos_domain::TaskId> = Vec::new();
        let mut work: Vec<maos_domain::TaskId> = Vec::new();
        let mut log: Vec<String> = Vec::new();
        for step in 0..50 {
            match rng.below(100) {
                0..20 if backlog.len() < 5_000 => {
                    let n = rng.below(1_000) as usize;
                    let needs = rng.pick(&[&["gpu"][..], &["quantum"], &["rust", "gpu"]]);
                    let tier = rng.pick(&[None, Some(Tier::Strategic)]);
                    let p = rng.pick(&priorities);
                    backlog.extend(w.backlog(n, needs, tier, p));
                    log.push(format!(
                        "backlog {n} needing {needs:?} tier {tier:?} at {p:?}"
                    ));
                }
                0..50 => {
                    let needs = rng.pick(&[&[][..], &["rust"]]);
                    let p = rng.pick(&priorities);
                    let t = w.create(&format!("work {step}"), needs, p);
                    work.push(t.id);
                    log.push(format!(
                        "create {} needing {needs:?} at {p:?}",
                        t.id.short()
                    ));
                }
                50..80 => {
                    let busy: Vec<Task> = work
                        .iter()
                        .map(|id| w.svc.get_task(&IdRef::from(*id)).unwrap())
                        .filter(|t| t.state == TaskState::Assigned)
                        .collect();
                    if !busy.is_empty() {
                        let t = &busy[rng.below(busy.len() as u64) as usize];
                        w.finish(t);
                        log.push(format!("finish {}", t.id.short()));
                    }
                }
                80..90 => {
                    let n = rng.below(30) as usize;
                    for _ in 0..n {
                        let from = if rng.below(4) == 0 { &work } else { &backlog };
                        if from.is_empty() {
                            continue;
                        }
                        let id = from[rng.below(from.len() as u64) as usize];
                        // Refused when it is finished already.
                        let _ = w.svc.cancel_task(&IdRef::from(id), None);
                    }
                    log.push(format!("cancel up to {n} tasks"));
                }
                90..95 => {
                    let name = format!("runner-{agents}");
                    let offers = rng.pick(&[&[][..], &["rust"]]);
                    w.register(&name, offers, 1 + rng.below(2) as u32, AdapterKind::Command);
                    agents += 1;
                    log.push(format!("register {name} offering {offers:?}"));
                }
                _ => {
                    let name = format!("runner-{}", rng.below(agents));
                    let a = maos_domain::AgentName::parse(&name).unwrap();
                    if w.svc.drain_agent(&a).is_ok() {
                        w.svc.resume_agent(&a).unwrap();
                        log.push(format!("drain and resume {name}"));
                    }
                }
            }
            let context = format!("seed {seed:#x}, step {step}; steps:\n{}", log.join("\n"));
            w.assert_no_idle_agent_with(&work, &context);
        }
    }
}
