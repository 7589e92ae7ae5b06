//! The set-up of the supervisor's end-to-end tests: a temporary data directory with a real SQLite
//! store, the real application service scheduling into a real [`Supervisor`] (which reports to
//! the service through a recorder, so tests can tell what it reported), and helpers to register
//! agents, create tasks, wait for their outcome and read their logs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maos_agents::{FileLogs, Supervisor, SupervisorConfig};
use maos_application::{
    AgentError, AgentFilter, AssignTask, Assignment, CreateTask, Created, EventFollower,
    FailurePolicy, Heartbeat, IdRef, LogChunk, LogRequest, MaosApi, MemoryError,
    OrchestrationError, Page, QueryError, RegisterAgent, Service, ServiceConfig, StatusReport,
    StoredEvent, TaskError, TaskFilter, TaskPage,
};
use maos_domain::{
    AdapterKind, Agent, AgentName, AgentSettings, Capability, CapabilitySet, DomainEvent,
    DurationMs, FencingToken, Orchestration, RunReport, Slots, Task, TaskEvent, TaskId, TaskState,
    Tier, Title,
};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

/// How long a test waits for an outcome before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// The grace between SIGTERM and SIGKILL in these tests.
pub(crate) const GRACE: Duration = Duration::from_millis(300);

/// The lease of an assignment in these tests.
pub(crate) const LEASE_MS: u64 = 1_000;

/// One data directory with its store, service and supervisor.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) service: Service<SqliteStore>,
    pub(crate) supervisor: Supervisor,
    /// What the supervisor reported, in order.
    pub(crate) reports: Arc<Mutex<Vec<Reported>>>,
}

/// A call the supervisor made to report on an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reported {
    Started(TaskId, FencingToken),
    Session(TaskId, FencingToken),
    Heartbeat(TaskId, FencingToken),
    Completed(TaskId, FencingToken),
    Failed(TaskId, FencingToken),
}

impl Reported {
    /// The task it is about.
    pub(crate) fn task(&self) -> TaskId {
        match self {
            Reported::Started(t, _)
            | Reported::Session(t, _)
            | Reported::Heartbeat(t, _)
            | Reported::Completed(t, _)
            | Reported::Failed(t, _) => *t,
        }
    }
}

/// The API the supervisor reports to: the service, with every attempt report recorded.
struct Recorder {
    service: Service<SqliteStore>,
    reports: Arc<Mutex<Vec<Reported>>>,
}

impl Recorder {
    fn record(&self, r: Reported) {
        self.reports.lock().unwrap().push(r);
    }
}

impl MaosApi for Recorder {
    fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError> {
        self.service.register_agent(cmd)
    }
    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.service.drain_agent(name)
    }
    fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.service.resume_agent(name)
    }
    fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.service.remove_agent(name)
    }
    fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError> {
        self.service.get_agent(name)
    }
    fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError> {
        self.service.list_agents(filter)
    }
    fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError> {
        self.service.create_task(cmd)
    }
    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        self.service.create_tasks(cmds)
    }
    fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError> {
        self.service.add_dependency(task, on)
    }
    fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError> {
        self.service.assign_task(cmd)
    }
    fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: maos_domain::AttemptStart,
    ) -> Result<Task, TaskError> {
        self.record(Reported::Started(task, fencing));
        self.service.start_attempt(task, fencing, start)
    }
    fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: maos_domain::TaskWorkspace,
    ) -> Result<Task, TaskError> {
        self.service.record_workspace(task, fencing, workspace)
    }
    fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError> {
        self.service.request_approval(task, fencing, tool, subject)
    }
    fn approve(&self, task: &IdRef) -> Result<Task, TaskError> {
        self.service.approve(task)
    }
    fn reject(&self, task: &IdRef, reason: String, cancel: bool) -> Result<Task, TaskError> {
        self.service.reject(task, reason, cancel)
    }
    fn approvals(&self) -> Result<Vec<maos_application::ApprovalRequest>, QueryError> {
        self.service.approvals()
    }
    fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError> {
        self.service.diff_summary(task)
    }
    fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError> {
        self.service.task_diff(task, attempt, stat)
    }
    fn rollback(&self, task: &IdRef, to_attempt: Option<u32>) -> Result<Task, TaskError> {
        self.service.rollback(task, to_attempt)
    }
    fn gc(
        &self,
        req: &maos_application::GcRequest,
    ) -> Result<Vec<maos_application::GcEntry>, TaskError> {
        self.service.gc(req)
    }
    fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<maos_application::MergeReport, OrchestrationError> {
        self.service.merge_orchestration(id, into)
    }
    fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError> {
        self.record(Reported::Session(task, fencing));
        self.service.record_session(task, fencing, session)
    }
    fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError> {
        for b in beats {
            self.record(Reported::Heartbeat(b.task, b.fencing));
        }
        self.service.heartbeat(beats)
    }
    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        self.record(Reported::Completed(task, fencing));
        self.service
            .complete_attempt(task, fencing, summary, report)
    }
    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        self.record(Reported::Failed(task, fencing));
        self.service.fail_attempt(task, fencing, error, report)
    }
    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError> {
        self.service.cancel_task(task, reason)
    }
    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        self.service.get_task(task)
    }
    fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError> {
        self.service.retry_task(task, attempts)
    }
    fn task_waiting(&self, task: &IdRef) -> Result<Vec<maos_application::WaitReason>, QueryError> {
        self.service.task_waiting(task)
    }
    fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<maos_application::AttemptBriefing, QueryError> {
        self.service.task_briefing(task, attempt)
    }
    fn list_tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, QueryError> {
        self.service.list_tasks(filter, page)
    }
    fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError> {
        self.service.read_log(req)
    }
    fn create_orchestration(
        &self,
        cmd: maos_application::CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError> {
        self.service.create_orchestration(cmd)
    }
    fn create_plan(
        &self,
        plan: maos_application::CreatePlan,
    ) -> Result<maos_application::PlanCreated, OrchestrationError> {
        self.service.create_plan(plan)
    }
    fn plan_goal(
        &self,
        goal: maos_application::PlanGoal,
    ) -> Result<maos_application::PlanningStarted, OrchestrationError> {
        self.service.plan_goal(goal)
    }
    fn discuss_goal(&self, goal: maos_application::PlanGoal) -> Result<Task, OrchestrationError> {
        self.service.discuss_goal(goal)
    }
    fn plan_history(&self, id: &IdRef) -> Result<maos_application::PlanHistory, QueryError> {
        self.service.plan_history(id)
    }
    fn propose_plan(&self, id: &IdRef, text: String) -> Result<Orchestration, OrchestrationError> {
        self.service.propose_plan(id, text)
    }
    fn regenerate_plan(
        &self,
        id: &IdRef,
        feedback: String,
    ) -> Result<maos_application::PlanningStarted, OrchestrationError> {
        self.service.regenerate_plan(id, feedback)
    }
    fn approve_plan(
        &self,
        id: &IdRef,
        version: Option<u32>,
    ) -> Result<maos_application::PlanCreated, OrchestrationError> {
        self.service.approve_plan(id, version)
    }
    fn reject_plan(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        self.service.reject_plan(id, reason)
    }
    fn revise_plan(
        &self,
        id: &IdRef,
        feedback: Option<String>,
    ) -> Result<maos_application::PlanningStarted, OrchestrationError> {
        self.service.revise_plan(id, feedback)
    }
    fn start_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        self.service.start_orchestration(id)
    }
    fn metrics(
        &self,
        since: Option<maos_domain::Timestamp>,
    ) -> Result<maos_application::metrics::Metrics, QueryError> {
        self.service.metrics(since)
    }
    fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError> {
        self.service.pause_orchestration(id, now)
    }
    fn resume_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        self.service.resume_orchestration(id)
    }
    fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        self.service.cancel_orchestration(id, reason)
    }
    fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError> {
        self.service.get_orchestration(id)
    }
    fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError> {
        self.service.list_orchestrations()
    }
    fn orchestration_report(
        &self,
        id: &IdRef,
    ) -> Result<maos_application::OrchestrationReport, QueryError> {
        self.service.orchestration_report(id)
    }
    fn status(&self) -> Result<StatusReport, QueryError> {
        self.service.status()
    }
    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, QueryError> {
        self.service.read_events(after, limit)
    }
    fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError> {
        self.service.follow_events(since)
    }
    fn add_memory(
        &self,
        cmd: maos_application::AddMemory,
    ) -> Result<maos_domain::Memory, MemoryError> {
        self.service.add_memory(cmd)
    }
    fn get_memory(&self, id: &IdRef) -> Result<maos_domain::Memory, MemoryError> {
        self.service.get_memory(id)
    }
    fn list_memories(
        &self,
        filter: &maos_application::MemoryFilter,
        page: &maos_application::MemoryPage,
    ) -> Result<maos_application::MemoryList, MemoryError> {
        self.service.list_memories(filter, page)
    }
    fn search_memories(
        &self,
        search: &maos_application::MemorySearch,
    ) -> Result<maos_application::MemoryHits, MemoryError> {
        self.service.search_memories(search)
    }
    fn pin_memory(&self, id: &IdRef) -> Result<maos_domain::Memory, MemoryError> {
        self.service.pin_memory(id)
    }
    fn unpin_memory(&self, id: &IdRef) -> Result<maos_domain::Memory, MemoryError> {
        self.service.unpin_memory(id)
    }
    fn forget_memory(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<maos_domain::Memory, MemoryError> {
        self.service.forget_memory(id, reason)
    }
    fn authenticate_agent(
        &self,
        credential: &maos_application::AgentCredential,
    ) -> Result<maos_application::AgentScope, TaskError> {
        self.service.authenticate_agent(credential)
    }
    fn report_progress(
        &self,
        task: TaskId,
        fencing: FencingToken,
        note: maos_domain::ProgressNote,
    ) -> Result<Task, TaskError> {
        self.service.report_progress(task, fencing, note)
    }
    fn create_subtasks(
        &self,
        task: TaskId,
        fencing: FencingToken,
        cmd: maos_application::CreateSubtasks,
    ) -> Result<Vec<Created>, TaskError> {
        self.service.create_subtasks(task, fencing, cmd)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.supervisor.shutdown();
    }
}

/// A test script's path (`tests/scripts/<name>`).
pub(crate) fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(name)
        .display()
        .to_string()
}

/// This process's environment, plus `extra`.
pub(crate) fn env_with(extra: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !extra.iter().any(|(name, _)| k.to_str() == Some(*name)))
        .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    env
}

impl Env {
    /// A fresh data directory with the tests' short durations.
    pub(crate) fn new() -> Env {
        Env::with(|_| {})
    }

    /// Like [`Env::new`], with the supervisor's configuration changed by `configure`.
    pub(crate) fn with(configure: impl FnOnce(&mut SupervisorConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).unwrap());
        let mut config = SupervisorConfig::new(dir.path());
        config.grace = GRACE;
        config.heartbeat_every = Duration::from_millis(200);
        config.sim_delay = Duration::from_millis(20);
        config.default_timeout = Duration::from_secs(30);
        config.env = std::env::vars_os().collect();
        configure(&mut config);
        let supervisor = Supervisor::new(config);
        let service = Service::new(
            store,
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            ServiceConfig {
                lease: DurationMs::from_millis(LEASE_MS).unwrap(),
                balancer_candidates: 4,
                approve_plans: false,
                // Retries at once: these tests are about the runtime, not the backoff.
                failure: FailurePolicy {
                    backoff: None,
                    ..FailurePolicy::default()
                },
                briefing_tokens: 8_000,
                ..ServiceConfig::default()
            },
        )
        .with_runtime(Arc::new(supervisor.clone()))
        .with_logs(Arc::new(FileLogs::new(dir.path().join("logs"))));
        let reports = Arc::new(Mutex::new(Vec::new()));
        supervisor.attach(Arc::new(Recorder {
            service: service.clone(),
            reports: Arc::clone(&reports),
        }));
        Env {
            dir,
            service,
            supervisor,
            reports,
        }
    }

    /// Registers an agent.
    pub(crate) fn register(&self, cmd: RegisterAgent) -> Agent {
        self.service.register_agent(cmd).unwrap()
    }

    /// Creates a task; the service assigns it at once when an agent is free.
    pub(crate) fn task(&self, title: &str, configure: impl FnOnce(&mut CreateTask)) -> Task {
        let mut cmd = CreateTask::titled(Title::parse(title).unwrap());
        configure(&mut cmd);
        self.service.create_task(cmd).unwrap().task
    }

    /// The task as stored now.
    pub(crate) fn get(&self, id: TaskId) -> Task {
        self.service.get_task(&IdRef::from(id)).unwrap()
    }

    /// Waits until `done` holds for the task; fails with its state and log after [`DEADLINE`].
    pub(crate) fn wait_until(&self, id: TaskId, what: &str, done: impl Fn(&Task) -> bool) -> Task {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let task = self.get(id);
            if done(&task) {
                return task;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}",
                    self.describe(&task, &format!("the task is not {what}"))
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the task settles: completed, blocked or cancelled.
    pub(crate) fn settled(&self, id: TaskId) -> Task {
        self.wait_until(id, "settled", |t| {
            matches!(
                t.state,
                TaskState::Completed | TaskState::Blocked | TaskState::Cancelled
            )
        })
    }

    /// Waits until the task's current attempt runs (its process started).
    pub(crate) fn running(&self, id: TaskId) -> Task {
        self.wait_until(id, "running", |t| t.state == TaskState::Running)
    }

    /// The whole log of `attempt` of `task`, read through the service.
    pub(crate) fn log(&self, task: TaskId, attempt: u32) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let chunk = self
                .service
                .read_log(&LogRequest {
                    task: IdRef::from(task),
                    attempt: Some(attempt),
                    offset: all.len() as u64,
                    max: LogRequest::MAX_CHUNK,
                    wait: Duration::ZERO,
                })
                .unwrap();
            if chunk.bytes.is_empty() {
                return all;
            }
            all.extend_from_slice(&chunk.bytes);
        }
    }

    /// The log as text (lossy).
    pub(crate) fn log_text(&self, task: TaskId, attempt: u32) -> String {
        String::from_utf8_lossy(&self.log(task, attempt)).into_owned()
    }

    /// Where the log of `attempt` of `task` is on disk.
    pub(crate) fn log_file(&self, task: TaskId, attempt: u32) -> PathBuf {
        self.dir
            .path()
            .join("logs")
            .join(task.to_string())
            .join(format!("{attempt}.log"))
    }

    /// What the supervisor reported about `task`, in order.
    pub(crate) fn reported(&self, task: TaskId) -> Vec<Reported> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.task() == task)
            .cloned()
            .collect()
    }

    /// The task's events, in order.
    pub(crate) fn events_of(&self, id: TaskId) -> Vec<TaskEvent> {
        self.service
            .read_events(0, 10_000)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.event {
                DomainEvent::Task { id: t, event } if t == id => Some(event),
                _ => None,
            })
            .collect()
    }

    /// A task's state, attempts and newest log, for a failure message.
    pub(crate) fn describe(&self, task: &Task, why: &str) -> String {
        let log = task
            .current_attempt()
            .map(|a| self.log_text(task.id, a.number))
            .unwrap_or_default();
        format!(
            "{why}: task {} is {} (reason: {:?})\nattempts: {:#?}\nlog of the newest attempt:\n{log}",
            task.id, task.state, task.reason, task.attempts
        )
    }
}

/// A `command` agent running `command`, with one slot and the given capabilities.
pub(crate) fn command_agent(name: &str, command: &str, caps: &[&str]) -> RegisterAgent {
    agent(name, AdapterKind::Command, Some(command), caps)
}

/// An agent of any adapter.
pub(crate) fn agent(
    name: &str,
    adapter: AdapterKind,
    command: Option<&str>,
    caps: &[&str],
) -> RegisterAgent {
    RegisterAgent {
        name: AgentName::parse(name).unwrap(),
        adapter,
        capabilities: CapabilitySet::parse(caps.iter().copied()).unwrap(),
        tier: Tier::Tactical,
        slots: Slots::new(1).unwrap(),
        command: command.map(str::to_owned),
        settings: AgentSettings::default(),
    }
}

/// The capabilities a task needs.
pub(crate) fn needs(caps: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(
        caps.iter()
            .map(|c| Capability::parse(c).unwrap().to_string()),
    )
    .unwrap()
}

/// A duration in milliseconds.
pub(crate) fn ms(n: u64) -> DurationMs {
    DurationMs::from_millis(n).unwrap()
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
pub(crate) fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Waits up to `within` for `cond`; true if it came.
pub(crate) fn eventually(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
