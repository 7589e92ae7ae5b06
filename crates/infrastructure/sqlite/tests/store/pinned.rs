//! Tasks pinned to one agent (`TaskSpec::agent`): the store's ready queue offers a free agent
//! only what it may take, and the scheduler (the real service, with a recording runtime so that
//! it schedules inside every transaction, as in the daemon) never gives a pinned task to another
//! agent: not when that agent is free and its own is busy, not on a retry, not on escalation.

use std::sync::{Arc, Mutex};

use maos_application::{
    AgentRuntime, CreateTask, IdRef, Launch, MaosApi, Service, ServiceConfig, StoreError,
    Transaction, UnitOfWork,
};
use maos_domain::policy::matcher::Needs;
use maos_domain::{AttemptStart, Priority, RunReport, Task, TaskId, TaskState, Tier};

use crate::support::{Db, TestClock, TestIds, agent_name, caps, daemon_agent, task};

fn pinned(title: &str, to: &str, priority: Priority) -> CreateTask {
    let mut cmd = task(title);
    cmd.agent = Some(agent_name(to));
    cmd.priority = priority;
    cmd
}

fn titles(tasks: &[Task]) -> Vec<String> {
    tasks.iter().map(|t| t.spec.title.to_string()).collect()
}

#[test]
fn a_free_agent_skips_a_task_pinned_to_another_and_takes_its_own() {
    let db = Db::new();
    let planner = db.register("planner", &[], 1);
    let other = db.register("other", &["rust"], 1);
    db.create(pinned("for the planner", "planner", Priority::Urgent));
    db.create(pinned("for nobody there", "ghost", Priority::Urgent));
    db.create(task("anyone"));

    // Stored and read back with its pin; tasks from before the pin read back without one.
    let stored = db.tasks();
    let pin_of = |title: &str| {
        stored
            .iter()
            .find(|t| t.spec.title.as_str() == title)
            .and_then(|t| t.spec.agent.clone())
    };
    assert_eq!(pin_of("for the planner"), Some(agent_name("planner")));
    assert_eq!(pin_of("anyone"), None);

    let (for_planner, for_other) = db
        .store()
        .write(move |tx: &mut dyn Transaction| {
            let load = |tx: &mut dyn Transaction, ids: Vec<TaskId>| {
                let mut out = Vec::new();
                for id in ids {
                    out.extend(tx.task(id)?);
                }
                Ok::<_, StoreError>(out)
            };
            let for_planner = tx.ready_tasks_for(&planner, 10)?;
            let for_other = tx.ready_tasks_for(&other, 10)?;
            Ok::<_, StoreError>((load(tx, for_planner)?, load(tx, for_other)?))
        })
        .unwrap();
    assert_eq!(titles(&for_planner), ["for the planner", "anyone"]);
    assert_eq!(titles(&for_other), ["anyone"]);

    // The agents' side: only the pinned agent is a candidate, busy or not.
    let none = caps(&[]);
    let ghost = agent_name("ghost");
    let planner_name = agent_name("planner");
    let (candidates, capable, ghost_capable) = db
        .store()
        .write(move |tx: &mut dyn Transaction| {
            let needs = Needs {
                capabilities: &none,
                tier: None,
                agent: Some(&planner_name),
            };
            let to_ghost = Needs {
                agent: Some(&ghost),
                ..needs
            };
            Ok::<_, StoreError>((
                tx.candidate_agents(needs, 10, false)?,
                tx.has_capable_agent(needs)?,
                tx.has_capable_agent(to_ghost)?,
            ))
        })
        .unwrap();
    let names: Vec<&str> = candidates.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["planner"]);
    assert!(capable);
    assert!(!ghost_capable);

    // A pinned task can be given to its agent by hand, not to another.
    let own = db.tasks();
    let for_planner = own
        .iter()
        .find(|t| t.spec.title.as_str() == "for the planner")
        .unwrap()
        .id;
    let refused = db.svc.assign_task(maos_application::AssignTask {
        task: IdRef::from(for_planner),
        agent: Some(agent_name("other")),
    });
    let err = refused.expect_err("pinned to the planner");
    assert!(err.to_string().contains("only the agent planner"), "{err}");
    assert_eq!(db.assign(for_planner, None).agent, agent_name("planner"));
}

/// An agent runtime that only records what it is asked to run.
#[derive(Debug, Default)]
struct Recorder {
    launches: Mutex<Vec<Launch>>,
}

impl AgentRuntime for Recorder {
    fn launch(&self, launch: Launch) {
        self.launches.lock().unwrap().push(launch);
    }

    fn stop(&self, _task: TaskId, _attempt: u32, _reason: &str) {}
}

struct Scheduling {
    _dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    svc: Service<maos_sqlite::SqliteStore>,
}

impl Scheduling {
    fn new() -> Scheduling {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock::new(1_700_000_000_000, 1));
        let store = maos_sqlite::SqliteStore::open(&dir.path().join("maos.db")).unwrap();
        let svc = Service::new(
            Arc::new(store),
            Arc::clone(&clock) as _,
            Arc::new(TestIds::new(3)),
            ServiceConfig::default(),
        )
        .with_runtime(Arc::new(Recorder::default()));
        Scheduling {
            _dir: dir,
            clock,
            svc,
        }
    }

    fn register(&self, name: &str, slots: u32, tier: Tier) {
        let mut a = daemon_agent(name, &[], slots);
        a.tier = tier;
        self.svc.register_agent(a).unwrap();
    }

    fn create(&self, cmd: CreateTask) -> Task {
        self.svc.create_task(cmd).unwrap().task
    }

    fn get(&self, t: &Task) -> Task {
        self.svc.get_task(&IdRef::from(t.id)).unwrap()
    }

    /// The agent of `t`'s newest attempt.
    fn agent_of(&self, t: &Task) -> Option<String> {
        self.get(t)
            .attempts
            .last()
            .map(|a| a.agent.as_str().to_owned())
    }

    fn finish(&self, t: &Task) {
        let t = self.get(t);
        self.svc
            .start_attempt(t.id, t.fencing, AttemptStart::default())
            .unwrap();
        self.svc
            .complete_attempt(t.id, t.fencing, Some("done".into()), RunReport::default())
            .unwrap();
    }

    fn fail(&self, t: &Task) -> Task {
        let t = self.get(t);
        self.svc
            .start_attempt(t.id, t.fencing, AttemptStart::default())
            .unwrap();
        self.svc
            .fail_attempt(t.id, t.fencing, "it broke".into(), RunReport::default())
            .unwrap()
    }
}

#[test]
fn the_scheduler_keeps_a_pinned_task_for_its_agent_through_retries_and_escalation() {
    let s = Scheduling::new();
    s.register("planner", 1, Tier::Tactical);
    s.register("other", 2, Tier::Tactical);
    s.register("boss", 2, Tier::Strategic);

    // The planner is busy with its first task; the second waits for it, however urgent, while
    // other agents are free; unpinned work goes to them meanwhile.
    let first = s.create(pinned("first plan", "planner", Priority::Normal));
    assert_eq!(s.agent_of(&first).as_deref(), Some("planner"));
    let second = s.create(pinned("second plan", "planner", Priority::Urgent));
    assert_eq!(s.get(&second).state, TaskState::Ready);
    let free = s.create(task("anyone"));
    assert_eq!(s.get(&free).state, TaskState::Assigned);
    assert_ne!(s.agent_of(&free).as_deref(), Some("planner"));
    assert_eq!(s.get(&second).state, TaskState::Ready, "still waiting");

    // Its slot frees: the pinned task goes to it.
    s.finish(&first);
    assert_eq!(s.get(&second).state, TaskState::Assigned);
    assert_eq!(s.agent_of(&second).as_deref(), Some("planner"));

    // It fails; its retry goes to the planner again, though others are free.
    let failed = s.fail(&second);
    assert_eq!(failed.state, TaskState::Retrying);
    s.clock.advance(600_000);
    s.svc.promote_due_retries().unwrap();
    assert_eq!(s.get(&second).state, TaskState::Assigned);
    assert_eq!(s.agent_of(&second).as_deref(), Some("planner"));

    // Out of attempts, an unpinned task would escalate to the strategic `boss`; a pinned one
    // keeps its pin and goes to a person instead.
    let mut once = pinned("last plan", "planner", Priority::Normal);
    once.max_attempts = maos_domain::MaxAttempts::new(1).unwrap();
    s.finish(&second);
    let last = s.create(once);
    assert_eq!(s.agent_of(&last).as_deref(), Some("planner"));
    let blocked = s.fail(&last);
    assert_eq!(blocked.state, TaskState::Blocked, "{:?}", blocked.blocked);
    assert_eq!(blocked.spec.agent, Some(agent_name("planner")));
    assert_eq!(blocked.spec.tier, None, "not escalated");

    let mut unpinned = task("unpinned");
    unpinned.max_attempts = maos_domain::MaxAttempts::new(1).unwrap();
    let unpinned = s.create(unpinned);
    assert!(s.agent_of(&unpinned).is_some());
    let escalated = s.fail(&unpinned);
    assert_eq!(escalated.spec.tier, Some(Tier::Strategic));
    assert_eq!(s.agent_of(&escalated).as_deref(), Some("boss"));
}
