//! The supervisor: the daemon's agent runtime (the application's `AgentRuntime` port). It runs
//! every launched attempt — a child process in its own process group (`command`, `claude-code`,
//! `codex`), MAOS's own loop over a model endpoint (`openai`, `ollama`), or a simulated agent
//! (`sim`) — with a timeout, resource limits, a capped log and heartbeats that renew the lease,
//! and reports its start, session and end through the application API.
//!
//! Threads: one attempt thread per process or model attempt (it spawns the child, so the child's
//! parent-death signal stays armed exactly as long as the child runs), a stderr reader beside
//! it, one timer thread (timeouts, the grace before SIGKILL, simulated agents' delays), one
//! heartbeat thread, and a few reporter threads for the simulated agents' writes.
//!
//! This module schedules attempts and keeps their leases, heartbeats, timers and results; how
//! each kind of agent runs is beside it: `process` (spawning and waiting for a child process),
//! `model` (driving MAOS's own model loop), `sim` (simulated agents) and `lesson` (asking the
//! agent of a success after failed attempts for a lesson, kept in memory).

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use maos_application::{
    AgentCredential, AgentRuntime, AgentToolbox, Heartbeat, Launch, MaosApi, Workspace, Workspaces,
};
use maos_domain::{
    AdapterKind, AgentName, AttemptOutcome, AttemptStart, DurationMs, FailureKind, FencingToken,
    ProgressNote, RunReport, TaskId, Usage, Usd,
};
use tracing::{debug, info, warn};

use crate::contain::{Containment, ContainmentKind};
use crate::logs::{LogWriter, SharedLog, log_path};
use crate::plan::{Paths, prompt_of};
use crate::redact::Redactor;

mod lesson;
mod model;
mod process;
mod sim;

use sim::{REPORTERS, Report, SimAttempt, reporter};

/// How the supervisor runs attempts.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The data directory: logs under `logs/`, working directories under `work/`, prompts and
    /// results under `runs/`.
    pub data_dir: PathBuf,
    /// The most one attempt's log keeps.
    pub log_cap: u64,
    /// How long a process gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// How often leases are renewed (a third of the lease, so two beats may be lost).
    pub heartbeat_every: Duration,
    /// The timeout of an attempt whose task and agent set none.
    pub default_timeout: Duration,
    /// How long a `sim` attempt takes when its agent sets no delay.
    pub sim_delay: Duration,
    /// The daemon's environment, from which agents inherit the allowlisted and named variables.
    pub env: Vec<(OsString, OsString)>,
    /// How long a tool call waits for a person's decision before it is denied.
    pub approval_timeout: Duration,
    /// MAOS's MCP server, for the agents that can use one (Claude Code, Codex); none: agents
    /// are given no MCP configuration.
    pub mcp: Option<McpLaunch>,
    /// How long the agent of a success after failed attempts may take to answer for its lesson
    /// before it is killed (and no lesson kept).
    pub lesson_timeout: Duration,
}

/// How an agent starts MAOS's MCP server: `<program> mcp --data-dir <data_dir>`, with the
/// attempt's credential in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpLaunch {
    /// The `maos` binary.
    pub program: PathBuf,
    /// The data directory of the daemon the server talks to.
    pub data_dir: PathBuf,
    /// Variables the server needs to find that daemon (its `XDG_RUNTIME_DIR`, where its socket
    /// is), given to it whatever the agent's own environment holds.
    pub env: Vec<(String, String)>,
}

impl SupervisorConfig {
    /// Defaults for a data directory, with this process's environment.
    pub fn new(data_dir: impl Into<PathBuf>) -> SupervisorConfig {
        SupervisorConfig {
            data_dir: data_dir.into(),
            log_cap: crate::logs::DEFAULT_LOG_CAP,
            grace: Duration::from_secs(5),
            heartbeat_every: Duration::from_millis(3_333),
            default_timeout: Duration::from_secs(3_600),
            sim_delay: Duration::from_millis(100),
            env: std::env::vars_os().collect(),
            approval_timeout: Duration::from_secs(600),
            mcp: None,
            lesson_timeout: lesson::DEFAULT_TIMEOUT,
        }
    }

    /// Where attempts' logs are.
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// Why the supervisor stopped an attempt itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stop {
    None = 0,
    Timeout = 1,
    Budget = 2,
    /// Cancelled, superseded or the daemon is stopping: nothing is reported.
    Requested = 3,
}

impl Stop {
    fn from_u8(v: u8) -> Stop {
        match v {
            1 => Stop::Timeout,
            2 => Stop::Budget,
            3 => Stop::Requested,
            _ => Stop::None,
        }
    }
}

/// A live attempt, as the timer, heartbeat and stop paths see it.
#[derive(Debug)]
struct Live {
    fencing: FencingToken,
    /// The process group, once the process runs.
    pgid: Option<u32>,
    /// Why it was stopped (a [`Stop`]), first reason wins.
    stop: Arc<AtomicU8>,
    /// Set to stop an in-process agent.
    halt: Arc<AtomicBool>,
    /// A simulated agent: no process, no attempt thread.
    sim: bool,
    /// The secret the attempt's agent was given (none for simulated and external agents): it
    /// stands for the attempt as long as this record lives.
    credential: Option<AgentCredential>,
    /// The attempt's log, once it is open (where agents' progress notes go).
    log: Option<SharedLog>,
}

type Key = (TaskId, u32);

/// An attempt and the pid of its first process, for the containment's walks.
type Tree = (TaskId, u32, Option<u32>);

/// Something the timer thread does at a given instant.
#[derive(Debug)]
enum Timer {
    /// The attempt ran past its timeout: SIGTERM, then SIGKILL after the grace.
    Timeout(Key),
    /// The grace after SIGTERM is over.
    Kill(Key),
    /// A simulated agent is done.
    SimDone(SimAttempt),
}

struct Due {
    at: Instant,
    seq: u64,
    what: Timer,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        // A max-heap: the earliest instant is the greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Called when an attempt's agent has started (for benchmarks and tests).
pub type StartObserver = Box<dyn Fn(TaskId, u32) + Send + Sync>;

struct Inner {
    config: SupervisorConfig,
    api: OnceLock<Arc<dyn MaosApi>>,
    /// Launches that came before the API was attached.
    waiting: Mutex<Vec<Launch>>,
    live: Mutex<HashMap<Key, Live>>,
    timers: Mutex<BinaryHeap<Due>>,
    timers_changed: Condvar,
    timer_seq: AtomicU64,
    reports: Mutex<Option<mpsc::Sender<Report>>>,
    /// Attempts each `sim` agent has run (for `fail_every`).
    sim_attempts: Mutex<HashMap<AgentName, u32>>,
    shutting_down: AtomicBool,
    observer: OnceLock<StartObserver>,
    workspaces: OnceLock<Arc<dyn Workspaces>>,
    /// MAOS's own tools, for the models of `openai` and `ollama` agents.
    toolbox: OnceLock<Arc<dyn AgentToolbox>>,
    /// Ports given to running attempts.
    ports: Mutex<HashSet<u16>>,
    /// Runner threads still running, to wait for at shutdown.
    attempt_threads: Mutex<usize>,
    attempt_threads_done: Condvar,
    /// How every attempt's processes are kept together and killed (cgroup or process tree).
    containment: Containment,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// The daemon's agent runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor; it runs nothing until [`Supervisor::attach`] gives it the API to report to.
    pub fn new(config: SupervisorConfig) -> Supervisor {
        let (tx, rx) = mpsc::channel::<Report>();
        let containment = Containment::set_up(&config.data_dir);
        let inner = Arc::new(Inner {
            config,
            api: OnceLock::new(),
            waiting: Mutex::new(Vec::new()),
            live: Mutex::new(HashMap::new()),
            timers: Mutex::new(BinaryHeap::new()),
            timers_changed: Condvar::new(),
            timer_seq: AtomicU64::new(0),
            reports: Mutex::new(Some(tx)),
            sim_attempts: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            observer: OnceLock::new(),
            workspaces: OnceLock::new(),
            toolbox: OnceLock::new(),
            ports: Mutex::new(HashSet::new()),
            attempt_threads: Mutex::new(0),
            attempt_threads_done: Condvar::new(),
            containment,
        });
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..REPORTERS {
            let inner = Arc::clone(&inner);
            let rx = Arc::clone(&rx);
            spawn_named(format!("maos-report-{n}"), move || reporter(&inner, &rx));
        }
        {
            let inner = Arc::clone(&inner);
            spawn_named("maos-timers".into(), move || timer_loop(&inner));
        }
        {
            let inner = Arc::clone(&inner);
            spawn_named("maos-heartbeat".into(), move || heartbeat_loop(&inner));
        }
        Supervisor { inner }
    }

    /// Gives the supervisor the API it reports to, and runs what was launched before.
    pub fn attach(&self, api: Arc<dyn MaosApi>) {
        if self.inner.api.set(api).is_err() {
            return;
        }
        let waiting = std::mem::take(&mut *lock(&self.inner.waiting));
        for launch in waiting {
            self.launch(launch);
        }
    }

    /// Gives the supervisor git worktrees for tasks that name a repository.
    pub fn set_workspaces(&self, workspaces: Arc<dyn Workspaces>) {
        let _ = self.inner.workspaces.set(workspaces);
    }

    /// Gives the models of `openai` and `ollama` agents MAOS's own tools beside their workspace
    /// tools, called with their attempt's credential (with tool calling only).
    pub fn set_toolbox(&self, toolbox: Arc<dyn AgentToolbox>) {
        let _ = self.inner.toolbox.set(toolbox);
    }

    /// Calls `observer` whenever an attempt's agent starts.
    pub fn observe_starts(&self, observer: StartObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// How many attempts run now.
    pub fn running(&self) -> usize {
        lock(&self.inner.live).len()
    }

    /// Which containment keeps attempts' processes together (a cgroup per attempt, or the
    /// process tree with the daemon as child subreaper).
    pub fn containment(&self) -> ContainmentKind {
        self.inner.containment.kind()
    }

    /// Kills what a dead daemon of this data directory left running: everything in the cgroups
    /// it recorded, and every process whose environment names one of `attempts` (whether or
    /// not its pid was recorded). Call it before anything runs. Returns how many processes
    /// were killed.
    pub fn kill_leftovers(&self, attempts: &[(TaskId, u32, Option<u32>)]) -> usize {
        self.inner.containment.kill_leftovers(attempts)
    }

    /// Stops every attempt (SIGTERM, then SIGKILL after the grace) and waits for the attempt threads,
    /// at most `grace` plus a second. Nothing is reported: the next daemon start reconciles.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        let groups: Vec<(Key, u32)> = {
            let mut live = lock(&inner.live);
            for l in live.values_mut() {
                set_stop(&l.stop, Stop::Requested);
                l.halt.store(true, Ordering::SeqCst);
                // Nothing acts for an attempt of a daemon that is going away.
                l.credential = None;
            }
            live.iter()
                .filter_map(|(k, l)| l.pgid.map(|g| (*k, g)))
                .collect()
        };
        let contain = &inner.containment;
        for ((task, attempt), g) in &groups {
            contain.signal(*task, *attempt, Some(*g), libc::SIGTERM);
        }
        let deadline = Instant::now() + inner.config.grace;
        let mut attempt_threads = lock(&inner.attempt_threads);
        while *attempt_threads > 0 && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            attempt_threads = match inner
                .attempt_threads_done
                .wait_timeout(attempt_threads, left)
            {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        drop(attempt_threads);
        for ((task, attempt), g) in &groups {
            contain.kill(*task, *attempt, Some(*g));
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut attempt_threads = lock(&inner.attempt_threads);
        while *attempt_threads > 0 && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            attempt_threads = match inner
                .attempt_threads_done
                .wait_timeout(attempt_threads, left)
            {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        lock(&inner.reports).take();
        inner.timers_changed.notify_all();
        inner.containment.close();
    }
}

impl AgentRuntime for Supervisor {
    fn launch(&self, launch: Launch) {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            // Committed as assigned; the next daemon start reconciles it.
            return;
        }
        if inner.api.get().is_none() {
            lock(&inner.waiting).push(launch);
            return;
        }
        let key = (launch.task.id, launch.attempt);
        lock(&inner.live).insert(
            key,
            Live {
                fencing: launch.fencing,
                pgid: None,
                stop: Arc::new(AtomicU8::new(Stop::None as u8)),
                halt: Arc::new(AtomicBool::new(false)),
                sim: launch.agent.adapter == AdapterKind::Sim,
                credential: None,
                log: None,
            },
        );
        match launch.agent.adapter {
            AdapterKind::Sim => send_report(inner, Report::Start(Box::new(launch))),
            AdapterKind::External => {
                lock(&inner.live).remove(&key);
            }
            _ => {
                *lock(&inner.attempt_threads) += 1;
                let inner = Arc::clone(inner);
                let name = format!("maos-attempt-{}-{}", launch.task.id.short(), launch.attempt);
                spawn_named(name, move || {
                    attempt_thread(&inner, launch);
                    let mut n = lock(&inner.attempt_threads);
                    *n = n.saturating_sub(1);
                    inner.attempt_threads_done.notify_all();
                });
            }
        }
    }

    fn stop(&self, task: TaskId, attempt: u32, reason: &str) {
        stop_attempt(&self.inner, (task, attempt), Stop::Requested, reason);
    }

    fn credential_holder(&self, credential: &AgentCredential) -> Option<(TaskId, u32)> {
        // A walk over the live attempts (a few dozen at most) comparing each credential in
        // full, rather than a map keyed by the secret: how long it takes does not depend on how
        // much of a guess matches.
        let live = lock(&self.inner.live);
        let mut found = None;
        for (key, l) in live.iter() {
            if let Some(c) = &l.credential
                && maos_application::same_secret(c.expose(), credential.expose())
            {
                found = Some(*key);
            }
        }
        found
    }

    fn progress(&self, task: TaskId, attempt: u32, note: &ProgressNote) {
        // Under the live lock: the attempt thread takes the log out of the record (under the
        // same lock) before it closes it, so a note never holds the log open.
        let live = lock(&self.inner.live);
        if let Some(log) = live.get(&(task, attempt)).and_then(|l| l.log.as_ref()) {
            let mut log = lock(log);
            for line in note.as_str().lines().filter(|l| !l.trim().is_empty()) {
                let _ = log.note(&format!("progress: {}", line.trim_end()));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn spawn_named(name: String, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.clone()).spawn(f) {
        warn!(thread = %name, error = %e, "cannot start a supervisor thread");
    }
}

fn set_stop(flag: &AtomicU8, why: Stop) {
    let _ = flag.compare_exchange(
        Stop::None as u8,
        why as u8,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
}

fn schedule(inner: &Inner, at: Instant, what: Timer) {
    let seq = inner.timer_seq.fetch_add(1, Ordering::Relaxed);
    lock(&inner.timers).push(Due { at, seq, what });
    inner.timers_changed.notify_all();
}

fn send_report(inner: &Inner, report: Report) {
    if let Some(tx) = lock(&inner.reports).as_ref() {
        let _ = tx.send(report);
    }
}

/// Stops a live attempt: SIGTERM to its group and SIGKILL after the grace, or the halt flag of
/// an in-process agent, or forgetting a simulated one.
fn stop_attempt(inner: &Inner, key: Key, why: Stop, reason: &str) {
    let (pgid, sim) = {
        let mut live = lock(&inner.live);
        let Some(l) = live.get(&key) else { return };
        set_stop(&l.stop, why);
        // An in-process agent sees its halt flag at its next step.
        l.halt.store(true, Ordering::SeqCst);
        let (pgid, sim) = (l.pgid, l.sim);
        // A simulated attempt has neither process nor runner: forgetting it is stopping it.
        if sim {
            live.remove(&key);
        }
        (pgid, sim)
    };
    debug!(task = %key.0.short(), attempt = key.1, reason, "stopping attempt");
    // Its processes: the agent's while it runs, and afterwards its verification's (the agent's
    // pid is forgotten once it was waited for).
    if !sim {
        inner.containment.signal(key.0, key.1, pgid, libc::SIGTERM);
        schedule(inner, Instant::now() + inner.config.grace, Timer::Kill(key));
    }
}

// ---------------------------------------------------------------------------------------------
// background threads

fn timer_loop(inner: &Inner) {
    let mut timers = lock(&inner.timers);
    loop {
        if lock(&inner.reports).is_none() && timers.is_empty() {
            return;
        }
        let now = Instant::now();
        match timers.peek() {
            Some(d) if d.at <= now => {
                let Some(due) = timers.pop() else { continue };
                drop(timers);
                fire(inner, due.what);
                timers = lock(&inner.timers);
            }
            Some(d) => {
                let wait = d.at - now;
                timers = match inner.timers_changed.wait_timeout(timers, wait) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            None => {
                timers = match inner
                    .timers_changed
                    .wait_timeout(timers, Duration::from_secs(1))
                {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        }
    }
}

fn fire(inner: &Inner, what: Timer) {
    match what {
        Timer::Timeout(key) => stop_attempt(inner, key, Stop::Timeout, "timeout"),
        Timer::Kill(key) => {
            let live = lock(&inner.live).get(&key).map(|l| l.pgid);
            if let Some(pgid) = live {
                inner.containment.kill(key.0, key.1, pgid);
            }
        }
        Timer::SimDone(attempt) => send_report(inner, Report::Finish(attempt)),
    }
}

fn heartbeat_loop(inner: &Inner) {
    loop {
        thread::sleep(inner.config.heartbeat_every);
        if inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let Some(api) = inner.api.get() else { continue };
        let (beats, trees): (Vec<Heartbeat>, Vec<Tree>) = lock(&inner.live)
            .iter()
            .map(|((task, attempt), l)| {
                (
                    Heartbeat {
                        task: *task,
                        fencing: l.fencing,
                    },
                    (*task, *attempt, l.pgid),
                )
            })
            .unzip();
        inner.containment.watch(&trees);
        if beats.is_empty() {
            continue;
        }
        match api.heartbeat(&beats) {
            Ok(refused) => {
                for beat in refused {
                    let key = lock(&inner.live)
                        .iter()
                        .find(|((t, _), l)| *t == beat.task && l.fencing == beat.fencing)
                        .map(|(k, _)| *k);
                    if let Some(key) = key {
                        stop_attempt(
                            inner,
                            key,
                            Stop::Requested,
                            "its attempt is no longer current",
                        );
                    }
                }
            }
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
    }
}

/// Tells the observer (benchmarks, tests) that an attempt's agent begins: a process was
/// spawned, a model loop or a simulated agent is about to run.
fn observe_start(inner: &Inner, key: Key) {
    if let Some(observe) = inner.observer.get() {
        observe(key.0, key.1);
    }
}

fn budget_error(launch: &Launch, cost: Usd) -> String {
    overrun_error(
        cost,
        launch.task.budget_left().unwrap_or(Usd::ZERO),
        launch.task.spec.budget.unwrap_or(Usd::ZERO),
    )
}

fn overrun_error(cost: Usd, left: Usd, budget: Usd) -> String {
    format!(
        "stopped: this attempt cost ${cost}, more than the ${left} left of the task's ${budget} budget"
    )
}

// ---------------------------------------------------------------------------------------------
// process and model attempts

/// The timeout of an attempt: the task's, else the agent's, else the default.
fn timeout_of(inner: &Inner, launch: &Launch) -> Duration {
    launch
        .task
        .spec
        .timeout
        .or(launch.agent.settings.timeout)
        .map_or(inner.config.default_timeout, |d: DurationMs| {
            Duration::from_millis(d.as_millis())
        })
}

/// What an attempt's run came to, before it is reported.
struct Outcome {
    success: bool,
    summary: Option<String>,
    error: String,
    report: RunReport,
    /// The agent's answer when asked for a lesson (redacted), kept once the success is accepted.
    lesson: Option<String>,
}

/// The body of an attempt's thread: prepares its files, log, worktree and port, runs the agent
/// (a process or the model loop), checkpoints and verifies what it did, and reports the outcome.
fn attempt_thread(inner: &Arc<Inner>, launch: Launch) {
    let key = (launch.task.id, launch.attempt);
    let Some(api) = inner.api.get().cloned() else {
        return;
    };
    let mut paths = Paths::of(&inner.config.data_dir, &launch);
    // The agent's credential: it stands for the attempt while the attempt's record lives.
    let credential = match crate::credential::fresh() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot make the agent's credential from /dev/urandom: {e}");
            finish(inner, api.as_ref(), &launch, setup_failure(error));
            return;
        }
    };
    if let Some(l) = lock(&inner.live).get_mut(&key) {
        l.credential = Some(credential.clone());
    }
    paths.credential = Some(credential);
    let log_file = log_path(&inner.config.logs_dir(), key.0, key.1);
    let prepared = (|| -> Result<LogWriter, String> {
        crate::private::create_dir_all(&paths.workdir).map_err(|e| {
            format!(
                "cannot create the working directory {}: {e}",
                paths.workdir.display()
            )
        })?;
        if let Some(run_dir) = paths.prompt_file.parent() {
            crate::private::create_dir_all(run_dir)
                .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
        }
        crate::private::write(&paths.prompt_file, prompt_of(&launch).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", paths.prompt_file.display()))?;
        let _ = std::fs::remove_file(&paths.result_file);
        LogWriter::redacting(
            &log_file,
            inner.config.log_cap,
            Redactor::for_launch(&launch, &inner.config.env, paths.credential.as_ref()),
        )
        .map_err(|e| format!("cannot create the log {}: {e}", log_file.display()))
    })();
    let log = match prepared {
        Ok(log) => Arc::new(Mutex::new(log)),
        Err(e) => {
            finish(inner, api.as_ref(), &launch, setup_failure(e));
            return;
        }
    };
    if let Some(l) = lock(&inner.live).get_mut(&key) {
        l.log = Some(Arc::clone(&log));
    }
    // A task in a repository works in its own worktree, from a checkpoint.
    let workspace = match prepare_workspace(inner, api.as_ref(), &launch, &mut paths, &log) {
        Ok(ws) => ws,
        Err(e) => {
            note(&log, &e);
            close_log(inner, key, log);
            finish(inner, api.as_ref(), &launch, setup_failure(e));
            return;
        }
    };
    if launch.task.spec.wants_port {
        let mut ports = lock(&inner.ports);
        paths.port = crate::workspace::free_port(&ports);
        if let Some(p) = paths.port {
            ports.insert(p);
            note(&log, &format!("MAOS_PORT={p}"));
        }
    }
    let outcome = match launch.agent.adapter {
        AdapterKind::Openai | AdapterKind::Ollama => {
            model::drive_model_loop(inner, api.as_ref(), &launch, &paths, &log)
        }
        _ => process::spawn_and_wait(inner, api.as_ref(), &launch, &paths, &log).map(|mut o| {
            o.lesson = lesson::ask_process(inner, api.as_ref(), &launch, &paths, &log, &mut o);
            o
        }),
    };
    let outcome =
        outcome.map(|o| checkpoint_and_verify(inner, &launch, &paths, workspace.as_ref(), &log, o));
    if let Some(p) = paths.port {
        lock(&inner.ports).remove(&p);
    }
    close_log(inner, key, log);
    if let Some(outcome) = outcome {
        finish(inner, api.as_ref(), &launch, outcome);
    } else {
        lock(&inner.live).remove(&key);
    }
}

/// Closes an attempt's log, once no one else can write to it (the live record lets go of it).
fn close_log(inner: &Inner, key: Key, log: SharedLog) {
    if let Some(l) = lock(&inner.live).get_mut(&key) {
        l.log = None;
    }
    if let Ok(log) = Arc::try_unwrap(log).map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        && let Err(e) = log.finish()
    {
        warn!(error = %e, "cannot finish an attempt's log");
    }
}

/// The task's worktree and the checkpoint before the attempt, when the task names a repository
/// (the working directory becomes the worktree).
fn prepare_workspace(
    inner: &Inner,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &mut Paths,
    log: &SharedLog,
) -> Result<Option<Workspace>, String> {
    if launch.task.spec.workspace.is_none() {
        return Ok(None);
    }
    let Some(git) = inner.workspaces.get() else {
        return Err(
            "this daemon runs without git workspaces, and the task names a repository".into(),
        );
    };
    let ws = crate::workspace::prepare(
        git.as_ref(),
        api,
        launch,
        &inner.config.data_dir,
        &inner.config.env,
    )?;
    note(
        log,
        &format!("working in {} on branch {}", ws.path.display(), ws.branch),
    );
    let before = crate::workspace::checkpoint(git.as_ref(), &ws, launch, "before")?;
    note(log, &format!("checkpoint before the attempt: {before}"));
    paths.workdir.clone_from(&ws.path);
    paths.checkpoint_before = Some(before);
    Ok(Some(ws))
}

/// After the agent ended: the checkpoint of what it left in its worktree, then, when it
/// succeeded, the verification command.
fn checkpoint_and_verify(
    inner: &Inner,
    launch: &Launch,
    paths: &Paths,
    workspace: Option<&Workspace>,
    log: &SharedLog,
    mut outcome: Outcome,
) -> Outcome {
    if let (Some(ws), Some(git)) = (workspace, inner.workspaces.get()) {
        match crate::workspace::checkpoint(git.as_ref(), ws, launch, "after") {
            Ok(c) => {
                note(log, &format!("checkpoint after the attempt: {c}"));
                // What the task's branch changed so far: what later tasks are told it did.
                match git.shortstat(ws, &ws.base, &c) {
                    Ok(stat) if !stat.trim().is_empty() => {
                        outcome.report.diff_stat = Some(stat.trim().to_owned());
                    }
                    Ok(_) => outcome.report.diff_stat = Some("no changes".to_owned()),
                    Err(e) => note(log, &format!("cannot sum up the changes: {e}")),
                }
                outcome.report.checkpoint = Some(c);
            }
            Err(e) => note(log, &e),
        }
    }
    let command = launch
        .task
        .spec
        .verify
        .clone()
        .or_else(|| launch.agent.settings.verify.clone());
    if let (true, Some(command)) = (outcome.success, command) {
        note(log, &format!("verifying: {command}"));
        let (env, _) = crate::plan::environment(launch, paths, &inner.config.env);
        let v = crate::workspace::verify(
            &command,
            &paths.workdir,
            &env,
            &paths.verify_file,
            timeout_of(inner, launch),
            Some((&inner.containment, launch.task.id, launch.attempt)),
            &Redactor::for_launch(launch, &inner.config.env, paths.credential.as_ref()),
        );
        write_log(log, v.output.as_bytes());
        note(
            log,
            if v.passed {
                "verification passed"
            } else {
                "verification failed: its output goes to the next attempt"
            },
        );
        outcome.report.verification = Some(v);
    }
    outcome
}

/// The agent could not be started (its program is missing, its configuration incomplete): no
/// retry helps until a person fixes it.
fn start_failure(error: String) -> Outcome {
    not_run(error, FailureKind::Start)
}

/// The attempt's surroundings could not be prepared (the repository, its worktree, `.maos/`
/// setup, the data directory, the cgroup): not the agent's fault.
fn setup_failure(error: String) -> Outcome {
    not_run(error, FailureKind::Setup)
}

fn not_run(error: String, failure: FailureKind) -> Outcome {
    Outcome {
        success: false,
        summary: None,
        error,
        report: RunReport {
            exit: None,
            usage: Usage::NONE,
            failure: Some(failure),
            ..RunReport::default()
        },
        lesson: None,
    }
}

/// Reports the end of an attempt (unless it was stopped on request or the daemon is stopping).
fn finish(inner: &Inner, api: &dyn MaosApi, launch: &Launch, mut outcome: Outcome) {
    let key = (launch.task.id, launch.attempt);
    // Nothing the agent printed reaches the store (or any output) with its secrets in it.
    let redactor = redactor_of(inner, launch);
    outcome.summary = outcome.summary.map(|s| redactor.text(&s));
    outcome.error = redactor.text(&outcome.error);
    if let Some(v) = outcome.report.verification.as_mut() {
        v.output = redactor.text(&v.output);
    }
    for d in &mut outcome.report.permission_denials {
        *d = redactor.text(d);
    }
    let stop = lock(&inner.live).remove(&key).map_or(Stop::Requested, |l| {
        Stop::from_u8(l.stop.load(Ordering::SeqCst))
    });
    if stop == Stop::Requested || inner.shutting_down.load(Ordering::SeqCst) {
        return;
    }
    let result = if outcome.success {
        api.complete_attempt(key.0, launch.fencing, outcome.summary, outcome.report)
    } else {
        api.fail_attempt(key.0, launch.fencing, outcome.error, outcome.report)
    };
    match result {
        Ok(t) => {
            info!(task = %key.0.short(), attempt = key.1, state = %t.state, "attempt ended");
            // A lesson counts once its attempt's success does (verification passed).
            let succeeded = t
                .attempts
                .iter()
                .any(|a| a.number == key.1 && a.status == AttemptOutcome::Succeeded);
            if let (true, Some(answer)) = (succeeded, outcome.lesson.as_deref()) {
                lesson::keep(api, launch, answer);
            }
        }
        Err(e) => debug!(task = %key.0.short(), error = %e, "an attempt's result was refused"),
    }
}

/// Marks the attempt started (with its process, checkpoint and port); false when the attempt is
/// no longer current.
fn mark_started(
    inner: &Inner,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    pid: Option<u32>,
) -> bool {
    observe_start(inner, (launch.task.id, launch.attempt));
    let start = AttemptStart {
        pid,
        checkpoint: paths.checkpoint_before.clone(),
        port: paths.port,
    };
    match api.start_attempt(launch.task.id, launch.fencing, start) {
        Ok(_) => true,
        Err(e) => {
            debug!(task = %launch.task.id.short(), error = %e, "the attempt cannot start");
            false
        }
    }
}

/// The redactor of a live attempt: the secrets of its configuration and its credential.
fn redactor_of(inner: &Inner, launch: &Launch) -> Redactor {
    let key = (launch.task.id, launch.attempt);
    let credential = lock(&inner.live)
        .get(&key)
        .and_then(|l| l.credential.clone());
    Redactor::for_launch(launch, &inner.config.env, credential.as_ref())
}

fn write_log(log: &SharedLog, bytes: &[u8]) {
    if let Err(e) = lock(log).write(bytes) {
        warn!(error = %e, "cannot write an attempt's log");
    }
}

fn note(log: &SharedLog, line: &str) {
    let _ = lock(log).note(line);
}

/// The cost of `usage` as the agent reported it, or priced by the agent's table.
fn cost_of(launch: &Launch, usage: &crate::report::Usage) -> Usd {
    match usage.cost_usd {
        Some(c) => Usd::from_dollars_lossy(c),
        None => launch
            .agent
            .settings
            .price
            .map_or(Usd::ZERO, |p| p.cost(&domain_usage(usage, Usd::ZERO))),
    }
}

fn domain_usage(u: &crate::report::Usage, cost: Usd) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        cached_input_tokens: u.cached_input_tokens,
        output_tokens: u.output_tokens,
        cost,
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let skip = text.chars().count() - max;
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

/// The working directory of a task's attempts (kept across its attempts).
pub fn workdir_of(data_dir: &Path, task: TaskId) -> PathBuf {
    data_dir.join("work").join(task.to_string())
}
