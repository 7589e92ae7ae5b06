//! Shared fixtures: a deterministic clock and id source, a service over a real database file in a
//! temporary directory, command builders, and a snapshot of everything stored (API views, the
//! event log and the raw rows of every table) to prove that a refused command wrote nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use maos_application::{
    AgentFilter, AgentRuntime, AssignTask, Assignment, Clock, CreateTask, IdRef, IdSource, Launch,
    MaosApi, Page, ReadStore, RegisterAgent, Service, ServiceConfig, StatusReport, StoredEvent,
    TaskFilter,
};
use maos_domain::{
    AdapterKind, Agent, AgentName, AgentStatus, CapabilitySet, DomainEvent, MaxAttempts,
    Orchestration, Priority, Risk, Slots, Task, TaskId, TaskSpec, Tier, Timestamp, Title,
};
use maos_sqlite::{SqliteStore, WorkMeter};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;

/// The service as the tests use it.
pub(crate) type Svc = Service<SqliteStore>;

/// A clock that the test controls: every reading advances it by `step` milliseconds.
#[derive(Debug)]
pub(crate) struct TestClock {
    now: AtomicI64,
    step: AtomicI64,
}

impl TestClock {
    pub(crate) fn new(start: i64, step: i64) -> Self {
        TestClock {
            now: AtomicI64::new(start),
            step: AtomicI64::new(step),
        }
    }

    /// Moves the clock `ms` milliseconds ahead.
    pub(crate) fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// From now on every reading advances the clock by `step` (0 freezes it).
    pub(crate) fn set_step(&self, step: i64) {
        self.step.store(step, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let step = self.step.load(Ordering::SeqCst);
        Timestamp::from_millis(self.now.fetch_add(step, Ordering::SeqCst))
    }
}

/// Deterministic pseudo-random ids (splitmix64), or scripted ones when the test queued some.
#[derive(Debug)]
pub(crate) struct TestIds {
    state: Mutex<(u64, VecDeque<u128>)>,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl TestIds {
    pub(crate) fn new(seed: u64) -> Self {
        TestIds {
            state: Mutex::new((seed, VecDeque::new())),
        }
    }

    /// The next ids drawn will be exactly these (written as 25-character ids).
    pub(crate) fn script(&self, ids: &[&str]) {
        let mut s = self.state.lock().unwrap();
        s.1.extend(ids.iter().map(|i| TaskId::parse(i).unwrap().bits()));
    }
}

impl IdSource for TestIds {
    fn next_bits(&self) -> u128 {
        let mut s = self.state.lock().unwrap();
        if let Some(bits) = s.1.pop_front() {
            return bits;
        }
        let hi = u128::from(splitmix(&mut s.0));
        let lo = u128::from(splitmix(&mut s.0));
        (hi << 64) | lo
    }
}

/// An agent runtime that only records what it is asked to run: with it, the service schedules
/// inside every transaction, as in the daemon.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    launches: Mutex<Vec<Launch>>,
}

impl AgentRuntime for Recorder {
    fn launch(&self, launch: Launch) {
        self.launches.lock().unwrap().push(launch);
    }

    fn stop(&self, _task: TaskId, _attempt: u32, _reason: &str) {}
}

/// A MAOS database in a fresh temporary directory with a service over it.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) dir: TempDir,
    pub(crate) path: PathBuf,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) ids: Arc<TestIds>,
    pub(crate) svc: Svc,
}

/// Opens the store at `path` with a service over it.
pub(crate) fn service_at(path: &Path, clock: Arc<TestClock>, ids: Arc<TestIds>) -> Svc {
    let store = SqliteStore::open(path).expect("open the store");
    Service::new(Arc::new(store), clock, ids, ServiceConfig::default())
}

impl Db {
    /// Lets every retry's backoff run out (the clock jumps past the longest one) and makes the
    /// retrying tasks ready; returns how many.
    pub(crate) fn retries_due(&self) -> usize {
        self.clock.advance(600_000);
        self.svc.promote_due_retries().unwrap()
    }

    /// A new database; the clock starts at 1_700_000_000_000 and ticks 1 ms per reading.
    pub(crate) fn new() -> Db {
        Db::with_seed(1)
    }

    pub(crate) fn with_seed(seed: u64) -> Db {
        Db::opened(seed, None)
    }

    /// A new database whose SQLite work `meter` counts, with a runtime that records launches
    /// (so the service schedules, as in the daemon).
    pub(crate) fn metered(meter: &WorkMeter) -> Db {
        Db::opened(1, Some(meter))
    }

    fn opened(seed: u64, meter: Option<&WorkMeter>) -> Db {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("maos.db");
        let clock = Arc::new(TestClock::new(1_700_000_000_000, 1));
        let ids = Arc::new(TestIds::new(seed));
        let svc = match meter {
            None => service_at(&path, Arc::clone(&clock), Arc::clone(&ids)),
            Some(m) => {
                let store = SqliteStore::open_metered(&path, m).expect("open the store");
                Service::new(
                    Arc::new(store),
                    Arc::clone(&clock) as Arc<dyn Clock>,
                    Arc::clone(&ids) as Arc<dyn IdSource>,
                    ServiceConfig::default(),
                )
                .with_runtime(Arc::new(Recorder::default()))
            }
        };
        Db {
            dir,
            path,
            clock,
            ids,
            svc,
        }
    }

    /// Closes the store (the writer commits what is queued and stops) and opens it again.
    pub(crate) fn reopen(self) -> Db {
        self.reopen_after(|_| {})
    }

    /// Closes the store, runs `meddle` on the closed database file (as another program, or an
    /// older MAOS, would), and opens it again.
    pub(crate) fn reopen_after(self, meddle: impl FnOnce(&Path)) -> Db {
        let Db {
            dir,
            path,
            clock,
            ids,
            svc,
        } = self;
        drop(svc);
        meddle(&path);
        let svc = service_at(&path, Arc::clone(&clock), Arc::clone(&ids));
        Db {
            dir,
            path,
            clock,
            ids,
            svc,
        }
    }

    pub(crate) fn store(&self) -> &SqliteStore {
        self.svc.store()
    }

    /// A separate read-only connection to the database file.
    pub(crate) fn raw(&self) -> Connection {
        raw_connection(&self.path)
    }

    /// Every event in the log.
    pub(crate) fn events(&self) -> Vec<StoredEvent> {
        self.store().events_after(0, 100_000).unwrap()
    }

    pub(crate) fn tasks(&self) -> Vec<Task> {
        all_tasks(&self.svc, &TaskFilter::default(), 1_000)
    }

    /// Every agent row, removed ones included, by name.
    pub(crate) fn agents(&self) -> Vec<Agent> {
        self.svc
            .list_agents(&AgentFilter {
                statuses: AgentStatus::ALL.to_vec(),
                capability: None,
            })
            .unwrap()
    }

    pub(crate) fn agent(&self, name: &str) -> Agent {
        self.svc.get_agent(&agent_name(name)).unwrap()
    }

    pub(crate) fn task(&self, id: TaskId) -> Task {
        self.svc.get_task(&IdRef::from(id)).unwrap()
    }

    /// Everything stored, seen through the API and as raw rows.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            events: self.events(),
            tasks: self.tasks(),
            agents: self.agents(),
            orchestrations: self.svc.list_orchestrations().unwrap(),
            status: self.svc.status().unwrap(),
            tables: dump_tables(&self.raw()),
        }
    }

    /// Runs a command that must be refused, and proves it wrote nothing: the event log (length
    /// and last sequence number), every list and every raw row are as before.
    pub(crate) fn refused<T: Debug, E: Debug>(
        &self,
        command: impl FnOnce(&Svc) -> Result<T, E>,
    ) -> E {
        let before = self.snapshot();
        let err = command(&self.svc).expect_err("the command should have been refused");
        self.assert_unchanged(&before);
        err
    }

    pub(crate) fn assert_unchanged(&self, before: &Snapshot) {
        let after = self.snapshot();
        assert_eq!(
            after.events.len(),
            before.events.len(),
            "events were appended"
        );
        assert_eq!(
            after.events.last().map(|e| e.seq),
            before.events.last().map(|e| e.seq),
            "the last event changed"
        );
        assert_eq!(after.tasks, before.tasks, "tasks changed");
        assert_eq!(after.agents, before.agents, "agents changed");
        assert_eq!(after.orchestrations, before.orchestrations);
        assert_eq!(after.status, before.status);
        assert_eq!(after.tables, before.tables, "raw rows changed");
        assert_eq!(after, *before);
    }

    // ------------------------------------------------------------------ commands, unwrapped

    pub(crate) fn register(&self, name: &str, capabilities: &[&str], slots: u32) -> Agent {
        self.svc
            .register_agent(agent(name, capabilities, slots))
            .unwrap()
    }

    pub(crate) fn create(&self, cmd: CreateTask) -> Task {
        let created = self.svc.create_task(cmd).unwrap();
        assert!(created.created);
        created.task
    }

    pub(crate) fn create_titled(&self, title: &str) -> Task {
        self.create(task(title))
    }

    pub(crate) fn assign(&self, task: TaskId, agent: Option<&str>) -> Assignment {
        self.svc
            .assign_task(AssignTask {
                task: IdRef::from(task),
                agent: agent.map(agent_name),
            })
            .unwrap()
    }

    /// Assigns and starts the task; returns the assignment.
    pub(crate) fn run(&self, task: TaskId, agent: Option<&str>) -> Assignment {
        let a = self.assign(task, agent);
        self.svc
            .start_attempt(task, a.fencing, Default::default())
            .unwrap();
        a
    }

    /// Assigns, starts and completes the task.
    pub(crate) fn finish(&self, task: TaskId, agent: Option<&str>) -> Task {
        let a = self.run(task, agent);
        self.svc
            .complete_attempt(
                task,
                a.fencing,
                Some("done".into()),
                maos_domain::RunReport::default(),
            )
            .unwrap()
    }
}

/// Everything stored, for before/after comparisons.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) events: Vec<StoredEvent>,
    pub(crate) tasks: Vec<Task>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) orchestrations: Vec<Orchestration>,
    pub(crate) status: StatusReport,
    /// Table name to its rows (each row's values printed), sorted.
    pub(crate) tables: BTreeMap<String, Vec<String>>,
}

pub(crate) fn raw_connection(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Every row of every table of the database, printed and sorted.
pub(crate) fn dump_tables(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .map(|name| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
            let width = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    (0..width)
                        .map(|i| r.get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|v| format!("{v:?}"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.sort();
            (name, rows)
        })
        .collect()
}

/// Every task matching `filter`, following the pages.
pub(crate) fn all_tasks(svc: &Svc, filter: &TaskFilter, limit: usize) -> Vec<Task> {
    let mut out = Vec::new();
    let mut page = Page {
        limit,
        cursor: None,
    };
    loop {
        let p = svc.list_tasks(filter, &page).unwrap();
        out.extend(p.tasks);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

// ---------------------------------------------------------------------- builders

pub(crate) fn agent_name(name: &str) -> AgentName {
    AgentName::parse(name).unwrap()
}

pub(crate) fn caps(list: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(list).unwrap()
}

pub(crate) fn title(t: &str) -> Title {
    Title::parse(t).unwrap()
}

/// A tactical simulated agent.
pub(crate) fn agent(name: &str, capabilities: &[&str], slots: u32) -> RegisterAgent {
    RegisterAgent {
        name: agent_name(name),
        adapter: AdapterKind::Sim,
        capabilities: caps(capabilities),
        tier: Tier::Tactical,
        slots: Slots::new(slots).unwrap(),
        command: None,
        settings: maos_domain::AgentSettings::default(),
    }
}

/// An agent the daemon runs that reports its own start, as a process does: a `command` agent
/// (the tests' runtimes only record launches; nothing runs). A `sim` agent's attempt starts
/// in the transaction that assigns it (ADR 0024), so it never waits in `assigned`.
pub(crate) fn daemon_agent(name: &str, capabilities: &[&str], slots: u32) -> RegisterAgent {
    RegisterAgent {
        adapter: AdapterKind::Command,
        command: Some("true".into()),
        ..agent(name, capabilities, slots)
    }
}

/// A task with this title and every default.
pub(crate) fn task(t: &str) -> CreateTask {
    CreateTask::titled(title(t))
}

/// A domain task spec with this title and every default (for writes through the port).
pub(crate) fn spec(t: &str) -> TaskSpec {
    TaskSpec {
        title: title(t),
        prompt: String::new(),
        capabilities: CapabilitySet::empty(),
        priority: Priority::default(),
        risk: Risk::default(),
        tier: None,
        depends_on: BTreeSet::new(),
        orchestration: None,
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
    }
}

/// An orchestration to create, with no repository.
pub(crate) fn orch(name: Title, goal: Option<String>) -> maos_application::CreateOrchestration {
    maos_application::CreateOrchestration {
        name,
        goal,
        workspace: None,
        verify: None,
        notes: Vec::new(),
    }
}

pub(crate) fn refs(ids: &[TaskId]) -> Vec<IdRef> {
    ids.iter().copied().map(IdRef::from).collect()
}

/// The kinds of these events (`task.created`, ...), for readable assertions.
pub(crate) fn kinds(events: &[StoredEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.kind()).collect()
}

/// Folds the stored events of a task.
pub(crate) fn fold_task(db: &Db, id: TaskId) -> Option<Task> {
    let events = db.store().events_of(&id.to_string()).unwrap();
    Task::from_events(
        id,
        events.iter().map(|e| match &e.event {
            DomainEvent::Task { id: of, event } => {
                assert_eq!(*of, id, "events_of returned another aggregate's event");
                (event, e.at)
            }
            other => panic!("a non-task event under a task id: {other:?}"),
        }),
    )
}

/// Folds the stored events of an agent.
pub(crate) fn fold_agent(db: &Db, agent: &Agent) -> Option<Agent> {
    let events = db.store().events_of(&agent.id.to_string()).unwrap();
    Agent::from_events(
        agent.id,
        events.iter().map(|e| match &e.event {
            DomainEvent::Agent { id: of, event } => {
                assert_eq!(*of, agent.id);
                (event, e.at)
            }
            other => panic!("a non-agent event under an agent id: {other:?}"),
        }),
    )
}

/// Folds the stored events of an orchestration.
pub(crate) fn fold_orchestration(db: &Db, o: &Orchestration) -> Option<Orchestration> {
    let events = db.store().events_of(&o.id.to_string()).unwrap();
    Orchestration::from_events(
        o.id,
        events.iter().map(|e| match &e.event {
            DomainEvent::Orchestration { id: of, event } => {
                assert_eq!(*of, o.id);
                (event, e.at)
            }
            other => panic!("a non-orchestration event under its id: {other:?}"),
        }),
    )
}

/// Asserts that sequence numbers are exactly 1..=N, in order.
pub(crate) fn assert_gapless(events: &[StoredEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "event log has a gap or a duplicate");
    }
}

/// A small deterministic generator for workloads (xorshift64).
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
