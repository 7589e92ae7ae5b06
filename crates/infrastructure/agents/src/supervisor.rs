//! The supervisor: the daemon's agent runtime (the application's `AgentRuntime` port). It runs
//! every launched attempt — a child process in its own process group (`command`, `claude-code`,
//! `codex`), MAOS's own loop over a model endpoint (`openai`, `ollama`), or a simulated agent
//! (`sim`) — with a timeout, resource limits, a capped log and heartbeats that renew the lease,
//! and reports its start, session and end through the application API.
//!
//! Threads: one runner thread per process or model attempt (it spawns the child, so the child's
//! parent-death signal stays armed exactly as long as the child runs), a stderr reader beside
//! it, one timer thread (timeouts, the grace before SIGKILL, simulated agents' delays), one
//! heartbeat thread, and a few reporter threads for the simulated agents' writes.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use maos_application::{AgentRuntime, Heartbeat, Launch, MaosApi, Workspace, Workspaces};
use maos_domain::{
    AdapterKind, AgentName, AttemptStart, DurationMs, Exit, FailureKind, FencingToken, RunReport,
    TaskId, Usage, Usd,
};
use tracing::{debug, info, warn};

use crate::contain::{Containment, ContainmentKind};
use crate::logs::{LogWriter, SharedLog, log_path};
use crate::plan::{Paths, ProcessPlan, Stdin, process_plan, prompt_of};
use crate::redact::Redactor;
use crate::stream::StreamAction;
use crate::sys;

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
    /// A simulated agent: no process, no runner thread.
    sim: bool,
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
    SimDone(SimRun),
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

/// A write a reporter thread makes for a simulated agent.
#[derive(Debug)]
enum Report {
    Start(Box<Launch>),
    Finish(SimRun),
}

/// What a running simulated attempt keeps until it ends: only what its end needs, so that a
/// hundred thousand of them fit in little memory (docs/benchmarks.md).
#[derive(Debug)]
struct SimRun {
    key: Key,
    fencing: FencingToken,
    agent: AgentName,
    usage: Usage,
    /// The budget's total and what was left at launch, when the attempt overruns it.
    overrun: Option<(Usd, Usd)>,
    fail_every: Option<u32>,
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
    sim_runs: Mutex<HashMap<AgentName, u32>>,
    shutting_down: AtomicBool,
    observer: OnceLock<StartObserver>,
    workspaces: OnceLock<Arc<dyn Workspaces>>,
    /// Ports given to running attempts.
    ports: Mutex<HashSet<u16>>,
    /// Runner threads still running, to wait for at shutdown.
    runners: Mutex<usize>,
    runners_done: Condvar,
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

/// How many threads make the simulated agents' durable writes.
const REPORTERS: usize = 8;

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
            sim_runs: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            observer: OnceLock::new(),
            workspaces: OnceLock::new(),
            ports: Mutex::new(HashSet::new()),
            runners: Mutex::new(0),
            runners_done: Condvar::new(),
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

    /// Stops every attempt (SIGTERM, then SIGKILL after the grace) and waits for the runners,
    /// at most `grace` plus a second. Nothing is reported: the next daemon start reconciles.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        let groups: Vec<(Key, u32)> = {
            let live = lock(&inner.live);
            for l in live.values() {
                set_stop(&l.stop, Stop::Requested);
                l.halt.store(true, Ordering::SeqCst);
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
        let mut runners = lock(&inner.runners);
        while *runners > 0 && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            runners = match inner.runners_done.wait_timeout(runners, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        drop(runners);
        for ((task, attempt), g) in &groups {
            contain.kill(*task, *attempt, Some(*g));
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut runners = lock(&inner.runners);
        while *runners > 0 && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            runners = match inner.runners_done.wait_timeout(runners, left) {
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
            },
        );
        match launch.agent.adapter {
            AdapterKind::Sim => send_report(inner, Report::Start(Box::new(launch))),
            AdapterKind::External => {
                lock(&inner.live).remove(&key);
            }
            _ => {
                *lock(&inner.runners) += 1;
                let inner = Arc::clone(inner);
                let name = format!("maos-attempt-{}-{}", launch.task.id.short(), launch.attempt);
                spawn_named(name, move || {
                    run_attempt(&inner, launch);
                    let mut n = lock(&inner.runners);
                    *n = n.saturating_sub(1);
                    inner.runners_done.notify_all();
                });
            }
        }
    }

    fn stop(&self, task: TaskId, attempt: u32, reason: &str) {
        stop_attempt(&self.inner, (task, attempt), Stop::Requested, reason);
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
        Timer::SimDone(run) => send_report(inner, Report::Finish(run)),
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

fn reporter(inner: &Inner, rx: &Mutex<mpsc::Receiver<Report>>) {
    loop {
        let next = lock(rx).recv();
        let Ok(report) = next else { return };
        let Some(api) = inner.api.get() else { continue };
        match report {
            Report::Start(launch) => sim_start(inner, api.as_ref(), *launch),
            Report::Finish(run) => sim_finish(inner, api.as_ref(), run),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// simulated agents

fn sim_start(inner: &Inner, api: &dyn MaosApi, launch: Launch) {
    let key = (launch.task.id, launch.attempt);
    observe_start(inner, key);
    if let Err(e) = api.start_attempt(launch.task.id, launch.fencing, AttemptStart::default()) {
        debug!(task = %launch.task.id.short(), error = %e, "a simulated attempt could not start");
        lock(&inner.live).remove(&key);
        return;
    }
    let delay = launch
        .agent
        .settings
        .delay
        .map_or(inner.config.sim_delay, |d| {
            Duration::from_millis(d.as_millis())
        });
    let usage = sim_usage(&launch);
    let run = SimRun {
        key,
        fencing: launch.fencing,
        overrun: launch
            .task
            .budget_left()
            .filter(|left| usage.cost > *left)
            .map(|left| (launch.task.spec.budget.unwrap_or(Usd::ZERO), left)),
        fail_every: launch.agent.settings.fail_every.filter(|every| *every > 0),
        usage,
        agent: launch.agent.name.clone(),
    };
    schedule(inner, Instant::now() + delay, Timer::SimDone(run));
}

/// Tells the observer (benchmarks, tests) that an attempt's agent begins: a process was
/// spawned, a model loop or a simulated agent is about to run.
fn observe_start(inner: &Inner, key: Key) {
    if let Some(observe) = inner.observer.get() {
        observe(key.0, key.1);
    }
}

/// What a simulated attempt reports using: a fixed token count, priced by the agent's table.
fn sim_usage(launch: &Launch) -> Usage {
    let mut usage = Usage {
        input_tokens: 1_000,
        cached_input_tokens: 0,
        output_tokens: 200,
        cost: Usd::ZERO,
    };
    if let Some(price) = &launch.agent.settings.price {
        usage.cost = price.cost(&usage);
    }
    usage
}

fn sim_finish(inner: &Inner, api: &dyn MaosApi, sim: SimRun) {
    let key = sim.key;
    if lock(&inner.live).remove(&key).is_none() {
        return; // stopped meanwhile
    }
    let run = {
        let mut runs = lock(&inner.sim_runs);
        let n = runs.entry(sim.agent).or_insert(0);
        *n += 1;
        *n
    };
    let usage = sim.usage;
    let every = sim.fail_every;
    let fails = every.is_some_and(|every| run % every == 0);
    let result = if let Some((budget, left)) = sim.overrun {
        api.fail_attempt(
            key.0,
            sim.fencing,
            overrun_error(usage.cost, left, budget),
            RunReport {
                exit: None,
                usage,
                failure: Some(FailureKind::Budget),
                ..RunReport::default()
            },
        )
    } else if fails {
        api.fail_attempt(
            key.0,
            sim.fencing,
            format!(
                "simulated failure (this sim agent fails every {} attempts)",
                every.unwrap_or(0)
            ),
            RunReport {
                exit: None,
                usage,
                failure: Some(FailureKind::Agent),
                ..RunReport::default()
            },
        )
    } else {
        api.complete_attempt(
            key.0,
            sim.fencing,
            Some("simulated work done".into()),
            RunReport {
                exit: None,
                usage,
                failure: None,
                ..RunReport::default()
            },
        )
    };
    if let Err(e) = result {
        debug!(task = %key.0.short(), error = %e, "a simulated result was refused");
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
}

fn run_attempt(inner: &Arc<Inner>, launch: Launch) {
    let key = (launch.task.id, launch.attempt);
    let Some(api) = inner.api.get().cloned() else {
        return;
    };
    let paths = Paths::of(&inner.config.data_dir, &launch);
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
            Redactor::for_launch(&launch, &inner.config.env),
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
    let mut paths = paths;
    // A task in a repository works in its own worktree, from a checkpoint.
    let workspace = match prepare_workspace(inner, api.as_ref(), &launch, &mut paths, &log) {
        Ok(ws) => ws,
        Err(e) => {
            note(&log, &e);
            close_log(log);
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
            run_model(inner, api.as_ref(), &launch, &paths, &log)
        }
        _ => run_process(inner, api.as_ref(), &launch, &paths, &log),
    };
    let outcome = outcome.map(|o| after_run(inner, &launch, &paths, workspace.as_ref(), &log, o));
    if let Some(p) = paths.port {
        lock(&inner.ports).remove(&p);
    }
    close_log(log);
    if let Some(outcome) = outcome {
        finish(inner, api.as_ref(), &launch, outcome);
    } else {
        lock(&inner.live).remove(&key);
    }
}

fn close_log(log: SharedLog) {
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
fn after_run(
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
            &Redactor::for_launch(launch, &inner.config.env),
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
    }
}

/// Reports the end of an attempt (unless it was stopped on request or the daemon is stopping).
fn finish(inner: &Inner, api: &dyn MaosApi, launch: &Launch, mut outcome: Outcome) {
    let key = (launch.task.id, launch.attempt);
    // Nothing the agent printed reaches the store (or any output) with its secrets in it.
    let redactor = Redactor::for_launch(launch, &inner.config.env);
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
        Ok(t) => info!(task = %key.0.short(), attempt = key.1, state = %t.state, "attempt ended"),
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

/// The containment of a model attempt's commands: each runs in the attempt's cgroup (or is
/// found by its tree and marker), with the agent's limits, and what it leaves dies with it.
#[derive(Debug)]
struct AttemptScope {
    inner: Arc<Inner>,
    key: Key,
    limits: maos_domain::ResourceLimits,
}

impl crate::tools::CommandScope for AttemptScope {
    fn prepare(&self, cmd: &mut Command) -> std::io::Result<()> {
        let cgroup = self
            .inner
            .containment
            .prepare(self.key.0, self.key.1)
            .map_err(std::io::Error::other)?;
        sys::prepare(cmd, self.limits, cgroup);
        Ok(())
    }

    fn spawn(&self, cmd: &mut Command) -> std::io::Result<std::process::Child> {
        self.inner.containment.spawn(cmd)
    }

    fn done(&self, pid: u32) {
        self.inner.containment.forget(pid);
        self.inner
            .containment
            .kill(self.key.0, self.key.1, Some(pid));
    }
}

/// The last bytes of an agent's output, for a `command` agent's summary or error: redacted
/// before anything is cut from it, and starting at a whole line (so no cut can leave part of
/// a secret behind).
struct Tail {
    bytes: Vec<u8>,
    /// Bytes were dropped from the front.
    cut: bool,
    redactor: Redactor,
}

const TAIL: usize = 4096;

impl Tail {
    fn new(redactor: Redactor) -> Tail {
        Tail {
            bytes: Vec::new(),
            cut: false,
            redactor,
        }
    }

    fn push(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
        if self.bytes.len() > 2 * TAIL {
            let cut = self.bytes.len() - TAIL;
            self.bytes.drain(..cut);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let mut start = self.bytes.len().saturating_sub(TAIL);
        if self.cut || start > 0 {
            // Begin after the first newline: the line the cut went through is dropped whole.
            // In one long line, begin past what could be the end of a secret cut in two.
            start = match self.bytes[start..].iter().position(|b| *b == b'\n') {
                Some(i) => start + i + 1,
                None => self.redactor.past_a_cut(&self.bytes, start),
            };
        }
        let clean = self.redactor.bytes(&self.bytes[start..]);
        String::from_utf8_lossy(&clean).trim().to_owned()
    }

    fn last_line(&self) -> String {
        let text = self.text();
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect()
    }
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

fn run_process(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    log: &SharedLog,
) -> Option<Outcome> {
    let key = (launch.task.id, launch.attempt);
    let plan = match process_plan(launch, paths, &inner.config.env) {
        Ok(plan) => plan,
        Err(e) => return Some(start_failure(e)),
    };
    if !plan.missing_env.is_empty() {
        note(
            log,
            &format!(
                "not set in the daemon's environment, so not passed on: {}",
                plan.missing_env.join(", ")
            ),
        );
    }
    let ProcessPlan {
        program,
        args,
        env,
        stdin,
        mut parser,
        ..
    } = plan;
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .envs(env)
        .current_dir(&paths.workdir)
        .stdin(if stdin == Stdin::Null {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cgroup = match inner.containment.prepare(key.0, key.1) {
        Ok(c) => c,
        Err(e) => return Some(setup_failure(e)),
    };
    sys::prepare(&mut cmd, launch.agent.settings.limits, cgroup);
    let mut child = match inner.containment.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (is it installed, and on the PATH the daemon was started with?)"
            } else {
                ""
            };
            note(log, &format!("cannot start {program}: {e}"));
            return Some(start_failure(format!(
                "cannot start {program:?}: {e}{hint}"
            )));
        }
    };
    let pid = child.id();
    let stop_flag = {
        let mut live = lock(&inner.live);
        match live.get_mut(&key) {
            Some(l) => {
                l.pgid = Some(pid);
                Arc::clone(&l.stop)
            }
            None => Arc::new(AtomicU8::new(Stop::Requested as u8)),
        }
    };
    if Stop::from_u8(stop_flag.load(Ordering::SeqCst)) == Stop::Requested
        || !mark_started(inner, api, launch, paths, Some(pid))
    {
        set_stop(&stop_flag, Stop::Requested);
        inner.containment.kill(key.0, key.1, Some(pid));
        let _ = child.wait();
        inner.containment.forget(pid);
        return None;
    }
    schedule(
        inner,
        Instant::now() + timeout_of(inner, launch),
        Timer::Timeout(key),
    );

    // stdin: the prompt, then either end of file or the protocol's answers.
    let mut input: Option<ChildStdin> = child.stdin.take();
    match stdin {
        Stdin::Null => {}
        Stdin::Write(bytes) => {
            if let Some(mut pipe) = input.take() {
                spawn_named(format!("maos-stdin-{}", key.0.short()), move || {
                    let _ = pipe.write_all(&bytes);
                });
            }
        }
        Stdin::Stream(bytes) => {
            if let Some(pipe) = input.as_mut()
                && pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err()
            {
                input = None;
            }
        }
    }

    let tail = Arc::new(Mutex::new(Tail::new(Redactor::for_launch(
        launch,
        &inner.config.env,
    ))));
    let stderr_reader = child.stderr.take().map(|mut err| {
        let log = Arc::clone(log);
        let tail = Arc::clone(&tail);
        thread::Builder::new()
            .name(format!("maos-stderr-{}", key.0.short()))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    write_log(&log, &buf[..n]);
                    lock(&tail).push(&buf[..n]);
                }
            })
    });

    let budget_left = launch.task.budget_left();
    let mut usage = crate::report::Usage::default();
    let stdout = child.stdout.take();
    // The process group may outlive its leader (a grandchild in the background), holding the
    // output pipes open: when the leader exits, the group goes too, so that the pipes close and
    // the attempt ends with its agent.
    let waited = thread::scope(|scope| {
        let waiter = thread::Builder::new()
            .name(format!("maos-wait-{}", key.0.short()))
            .spawn_scoped(scope, || {
                let status = child.wait();
                // The pid is free for reuse now: nothing may signal it as this attempt's.
                if let Some(l) = lock(&inner.live).get_mut(&key) {
                    l.pgid = None;
                }
                inner.containment.forget(pid);
                // Whatever the agent started dies with it (its group, its cgroup, its tree).
                inner.containment.kill(key.0, key.1, Some(pid));
                status
            });
        if let Some(mut out) = stdout {
            let mut buf = vec![0u8; 64 * 1024];
            let mut line: Vec<u8> = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                write_log(log, chunk);
                lock(&tail).push(chunk);
                let Some(parser) = parser.as_mut() else {
                    continue;
                };
                for piece in chunk.split_inclusive(|b| *b == b'\n') {
                    line.extend_from_slice(piece);
                    let complete = line.last() == Some(&b'\n');
                    if !complete && line.len() < MAX_LINE {
                        continue;
                    }
                    let actions = parser.on_line(trim_newline(&line));
                    line.clear();
                    for action in actions {
                        handle_action(
                            inner,
                            api,
                            launch,
                            log,
                            &mut input,
                            &mut usage,
                            budget_left,
                            &stop_flag,
                            pid,
                            action,
                        );
                    }
                }
            }
            if let Some(parser) = parser.as_mut()
                && !line.is_empty()
            {
                for action in parser.on_line(trim_newline(&line)) {
                    if let StreamAction::Usage(u) = action {
                        usage = u;
                    }
                }
            }
        }
        drop(input);
        waiter.ok().and_then(|w| w.join().ok())
    });
    let status = waited.unwrap_or_else(|| {
        // No thread could wait: wait here.
        let status = child.wait();
        if let Some(l) = lock(&inner.live).get_mut(&key) {
            l.pgid = None;
        }
        inner.containment.forget(pid);
        inner.containment.kill(key.0, key.1, Some(pid));
        status
    });
    if let Some(Ok(handle)) = stderr_reader {
        let _ = handle.join();
    }
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return Some(Outcome {
                success: false,
                summary: None,
                error: format!("lost track of the agent's process: {e}"),
                report: RunReport {
                    exit: None,
                    usage: Usage::NONE,
                    failure: Some(FailureKind::Interrupted),
                    ..RunReport::default()
                },
            });
        }
    };
    let exit = exit_of(status);
    note(
        log,
        &format!("the agent's process ended: {}", describe_exit(exit)),
    );

    let stream = parser.as_ref().map(|p| p.outcome());
    if let Some(s) = &stream {
        usage = s.usage;
    }
    let cost = cost_of(launch, &usage);
    let report_usage = domain_usage(&usage, cost);
    let stop = Stop::from_u8(stop_flag.load(Ordering::SeqCst));
    let denials = stream
        .as_ref()
        .map(|s| s.permission_denials.clone())
        .unwrap_or_default();
    let tail = lock(&tail);
    let mk =
        |success: bool, summary: Option<String>, error: String, failure: Option<FailureKind>| {
            Outcome {
                success,
                summary,
                error,
                report: RunReport {
                    exit,
                    usage: report_usage,
                    failure,
                    permission_denials: denials.clone(),
                    ..RunReport::default()
                },
            }
        };
    let outcome = match stop {
        Stop::Requested => return None,
        Stop::Timeout => mk(
            false,
            None,
            format!(
                "timed out after {}: stopped with SIGTERM, then SIGKILL after {}s",
                DurationMs::from_millis(
                    u64::try_from(timeout_of(inner, launch).as_millis()).unwrap_or(1)
                )
                .map_or_else(|_| "its timeout".to_owned(), |d| d.to_string()),
                inner.config.grace.as_secs()
            ),
            Some(FailureKind::Timeout),
        ),
        Stop::Budget => mk(
            false,
            None,
            budget_error(launch, cost),
            Some(FailureKind::Budget),
        ),
        Stop::None if budget_left.is_some_and(|left| cost > left) => mk(
            false,
            None,
            budget_error(launch, cost),
            Some(FailureKind::Budget),
        ),
        Stop::None => match (exit, &stream) {
            (Some(Exit::Code(0)), None) => {
                let summary = std::fs::read_to_string(&paths.result_file)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| tail.text());
                mk(true, Some(clip(&summary, 2000)), String::new(), None)
            }
            (Some(Exit::Code(0)), Some(s)) if s.success == Some(true) => {
                mk(true, s.summary.clone(), String::new(), None)
            }
            (Some(Exit::Code(0)), Some(s)) => mk(
                false,
                None,
                s.error.clone().unwrap_or_else(|| {
                    "the agent exited without reporting a successful result".into()
                }),
                Some(FailureKind::Agent),
            ),
            (Some(Exit::Code(code)), s) => {
                let said = s
                    .as_ref()
                    .and_then(|s| s.error.clone())
                    .unwrap_or_else(|| tail.last_line());
                let error = if said.is_empty() {
                    format!("exited with status {code}")
                } else {
                    format!("exited with status {code}: {said}")
                };
                mk(false, None, error, Some(FailureKind::Exit))
            }
            (Some(Exit::Signal(sig)), _) => mk(
                false,
                None,
                format!("killed by signal {sig} ({})", signal_name(sig)),
                Some(FailureKind::Signal),
            ),
            (None, _) => mk(
                false,
                None,
                "ended in an unknown way".into(),
                Some(FailureKind::Exit),
            ),
        },
    };
    Some(outcome)
}

/// The longest line handed to a protocol parser; longer ones are cut there.
const MAX_LINE: usize = 16 << 20;

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[allow(clippy::too_many_arguments)]
fn handle_action(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    log: &SharedLog,
    input_pipe: &mut Option<ChildStdin>,
    usage: &mut crate::report::Usage,
    budget_left: Option<Usd>,
    stop_flag: &Arc<AtomicU8>,
    pid: u32,
    action: StreamAction,
) {
    match action {
        StreamAction::Write(bytes) => {
            if let Some(pipe) = input_pipe.as_mut()
                && pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err()
            {
                *input_pipe = None;
            }
        }
        StreamAction::CloseInput => *input_pipe = None,
        StreamAction::Session { id, .. } => {
            if let Err(e) = api.record_session(launch.task.id, launch.fencing, id) {
                debug!(error = %e, "cannot record the agent's session");
            }
        }
        StreamAction::Usage(u) => {
            *usage = u;
            let cost = cost_of(launch, usage);
            if budget_left.is_some_and(|left| cost > left) {
                note(
                    log,
                    &format!("stopping the agent: it has cost ${cost}, over the task's budget"),
                );
                set_stop(stop_flag, Stop::Budget);
                inner
                    .containment
                    .signal(launch.task.id, launch.attempt, Some(pid), libc::SIGTERM);
                schedule(
                    inner,
                    Instant::now() + inner.config.grace,
                    Timer::Kill((launch.task.id, launch.attempt)),
                );
            }
        }
        StreamAction::Permission {
            tool,
            subject,
            allowed,
            reason,
        } => note(
            log,
            &format!(
                "{} {tool}{}: {reason}",
                if allowed { "allowed" } else { "denied" },
                subject.map(|s| format!("({s})")).unwrap_or_default()
            ),
        ),
        StreamAction::Warning(w) => note(log, &format!("the agent warned: {w}")),
        StreamAction::AskPerson {
            tool,
            subject,
            why,
            request_id,
            input,
        } => {
            let call = match &subject {
                Some(s) => format!("{tool}({s})"),
                None => tool.clone(),
            };
            let (allowed, message) = ask_person(inner, api, launch, log, &tool, subject, &why);
            let message = if allowed {
                String::new()
            } else {
                format!("MAOS: `{call}` was not approved: {message}")
            };
            let answer = crate::claude::permission_answer(&request_id, allowed, &input, &message);
            if let Some(pipe) = input_pipe.as_mut()
                && pipe.write_all(&answer).and_then(|()| pipe.flush()).is_err()
            {
                *input_pipe = None;
            }
        }
        StreamAction::Malformed { error, .. } => {
            note(
                log,
                &format!("a line of the agent's output is not JSON: {error}"),
            );
        }
        StreamAction::Text(_)
        | StreamAction::ToolUse { .. }
        | StreamAction::ToolResult { .. }
        | StreamAction::Unknown { .. } => {}
    }
}

/// Asks a person about a tool call of the running attempt and waits for the decision (at most
/// the approval timeout; no decision is a rejection). Answers whether it is allowed, and why not.
fn ask_person(
    inner: &Inner,
    api: &dyn MaosApi,
    launch: &Launch,
    log: &SharedLog,
    tool: &str,
    subject: Option<String>,
    why: &str,
) -> (bool, String) {
    let call = match &subject {
        Some(s) => format!("{tool}({s})"),
        None => tool.to_owned(),
    };
    note(
        log,
        &format!(
            "`{call}` needs a person ({why}): waiting for `maos approve {0}` or `maos reject {0}`",
            launch.task.id.short()
        ),
    );
    let subject = subject.map(|s| Redactor::for_launch(launch, &inner.config.env).text(&s));
    if let Err(e) = api.request_approval(launch.task.id, launch.fencing, tool.to_owned(), subject) {
        note(log, &format!("cannot ask for an approval: {e}"));
        return (false, format!("no person could be asked ({e})"));
    }
    let key = (launch.task.id, launch.attempt);
    let id = maos_application::IdRef::from(launch.task.id);
    let deadline = Instant::now() + inner.config.approval_timeout;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let stopped = lock(&inner.live)
            .get(&key)
            .is_none_or(|l| Stop::from_u8(l.stop.load(Ordering::SeqCst)) != Stop::None);
        if stopped {
            return (false, "the attempt is stopping".into());
        }
        match api.get_task(&id) {
            Ok(t) if t.pending.is_none() => {
                return match t.decision.clone() {
                    Some(d) if d.approved => {
                        note(log, &format!("a person approved `{call}`"));
                        (true, String::new())
                    }
                    Some(d) => {
                        let reason = d.reason.unwrap_or_else(|| "rejected".into());
                        note(log, &format!("a person rejected `{call}`: {reason}"));
                        (false, format!("a person rejected it: {reason}"))
                    }
                    None => (false, "no decision was recorded".into()),
                };
            }
            Ok(_) => {}
            Err(e) => debug!(error = %e, "cannot read the task while waiting for an approval"),
        }
        if Instant::now() >= deadline {
            let reason = format!(
                "no decision within {}s",
                inner.config.approval_timeout.as_secs()
            );
            let _ = api.reject(&id, reason.clone(), false);
            note(log, &format!("`{call}` is denied: {reason}"));
            return (false, reason);
        }
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let skip = text.chars().count() - max;
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

fn exit_of(status: ExitStatus) -> Option<Exit> {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .map(Exit::Code)
        .or_else(|| status.signal().map(Exit::Signal))
}

fn describe_exit(exit: Option<Exit>) -> String {
    match exit {
        Some(Exit::Code(c)) => format!("exit status {c}"),
        Some(Exit::Signal(s)) => format!("signal {s} ({})", signal_name(s)),
        None => "unknown".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU: over its CPU time limit",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "a signal",
    }
}

// ---------------------------------------------------------------------------------------------
// model attempts

fn run_model(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    log: &SharedLog,
) -> Option<Outcome> {
    let key = (launch.task.id, launch.attempt);
    let settings = &launch.agent.settings;
    let ollama = launch.agent.adapter == AdapterKind::Ollama;
    let base_url = settings.base_url.clone().unwrap_or_else(|| {
        if ollama {
            "http://127.0.0.1:11434/v1".to_owned()
        } else {
            "https://api.openai.com/v1".to_owned()
        }
    });
    let Some(model) = settings.model.clone() else {
        return Some(start_failure(format!(
            "the {} agent {} names no model: register it with a model (`model = \"...\"` in \
             agents.toml, or --model)",
            launch.agent.adapter, launch.agent.name
        )));
    };
    let api_key = match &settings.api_key_env {
        None => None,
        Some(var) => match env_value(&inner.config.env, var.as_str()) {
            Some(v) => Some(v),
            None => {
                return Some(start_failure(format!(
                    "the API key variable {var} is not set in the daemon's environment: set it \
                     and restart the daemon (`maos daemon stop`; the next command starts it \
                     with your environment)"
                )));
            }
        },
    };
    let mut cfg = crate::openai::OpenAiConfig::new(base_url, model);
    cfg.api_key = api_key;
    if let Some(steps) = settings.max_steps {
        cfg.max_steps = steps;
    }
    cfg.tool_calls = settings.tool_calls.unwrap_or(true);
    cfg.extra_env = settings
        .env
        .iter()
        .filter_map(|n| env_value(&inner.config.env, n.as_str()).map(|v| (n.to_string(), v)))
        .collect();
    // The attempt's marker, as every process of an attempt carries it (containment finds
    // them by it when it cannot use a cgroup).
    cfg.extra_env.extend([
        ("MAOS_TASK_ID".to_owned(), launch.task.id.to_string()),
        ("MAOS_ATTEMPT".to_owned(), launch.attempt.to_string()),
    ]);
    let halt = lock(&inner.live)
        .get(&key)
        .map(|l| Arc::clone(&l.halt))
        .unwrap_or_else(|| Arc::new(AtomicBool::new(true)));
    if halt.load(Ordering::SeqCst) || !mark_started(inner, api, launch, paths, None) {
        return None;
    }
    let deadline = Instant::now() + timeout_of(inner, launch);
    {
        // The timeout of an in-process agent: the timer raises its halt flag.
        let stop = lock(&inner.live).get(&key).map(|l| Arc::clone(&l.stop));
        if stop.is_some() {
            schedule(inner, deadline, Timer::Timeout(key));
        }
    }
    let prompt = prompt_of(launch);
    let mut on_event = |event: crate::openai::LoopEvent| {
        use crate::openai::LoopEvent as E;
        let line = match event {
            E::Request { step } => format!("step {step}: asking the model"),
            E::Response {
                step,
                usage,
                finish_reason,
            } => format!(
                "step {step}: answered ({} tokens in, {} out{})",
                usage.input_tokens,
                usage.output_tokens,
                finish_reason.map(|r| format!(", {r}")).unwrap_or_default()
            ),
            E::Text(t) => format!("the model said: {}", clip(&t, 2000)),
            E::ToolCall { name, arguments } => format!("tool {name} {}", clip(&arguments, 500)),
            E::ToolResult { name, ok, summary } => {
                format!(
                    "tool {name} {}: {summary}",
                    if ok { "ok" } else { "failed" }
                )
            }
            E::FileWritten(p) => format!("wrote {}", p.display()),
        };
        note(log, &line);
    };
    let scope: Arc<dyn crate::tools::CommandScope> = Arc::new(AttemptScope {
        inner: Arc::clone(inner),
        key,
        limits: settings.limits,
    });
    let result = crate::openai::run_in(
        &cfg,
        &paths.workdir,
        &prompt,
        &halt,
        Some(scope),
        &mut on_event,
    );
    // Whatever the model's commands left behind dies with the attempt.
    inner.containment.kill(key.0, key.1, None);
    let stop = lock(&inner.live).get(&key).map_or(Stop::Requested, |l| {
        Stop::from_u8(l.stop.load(Ordering::SeqCst))
    });
    let (usage, outcome) = match &result {
        Ok(o) => (o.usage, None),
        Err(e) => (e.usage(), Some(e.to_string())),
    };
    let cost = cost_of(launch, &usage);
    let report_usage = domain_usage(&usage, cost);
    let report = |failure| RunReport {
        exit: None,
        usage: report_usage,
        failure,
        ..RunReport::default()
    };
    Some(match (stop, result) {
        (Stop::Requested, _) => return None,
        (Stop::Timeout, _) => Outcome {
            success: false,
            summary: None,
            error: "timed out: the model loop was stopped".into(),
            report: report(Some(FailureKind::Timeout)),
        },
        (_, _) if launch.task.budget_left().is_some_and(|left| cost > left) => Outcome {
            success: false,
            summary: None,
            error: budget_error(launch, cost),
            report: report(Some(FailureKind::Budget)),
        },
        (_, Ok(o)) => Outcome {
            success: true,
            summary: Some(clip(&o.summary, 2000)),
            error: String::new(),
            report: report(None),
        },
        (_, Err(_)) => Outcome {
            success: false,
            summary: None,
            error: outcome.unwrap_or_default(),
            report: report(Some(FailureKind::Agent)),
        },
    })
}

fn env_value(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .find(|(k, _)| k.to_str() == Some(name))
        .and_then(|(_, v)| v.to_str().map(str::to_owned))
}

/// The working directory of a task's attempts (kept across its attempts).
pub fn workdir_of(data_dir: &Path, task: TaskId) -> PathBuf {
    data_dir.join("work").join(task.to_string())
}
