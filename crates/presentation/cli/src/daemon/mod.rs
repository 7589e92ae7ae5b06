//! The daemon, as the `maos` command runs and controls it: `maos daemon` serves the data
//! directory's database over the IPC socket in the foreground; `start`, `stop` and `status`
//! control it from outside; [`connect_or_start`] gives every other command a client, starting
//! the daemon on first need.

pub(crate) mod lock;
pub(crate) mod paths;
pub(crate) mod ui;

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use maos_application::{Clock, MaosApi, StatusReport};
use maos_ipc::{DaemonControl, DaemonInfo, IpcClient, Server, UiRequest, UiServing};
use maos_system::SystemClock;
use serde::Serialize;

use crate::compose;
use crate::error::{CliError, FailureClass};
use crate::human;
use crate::json;
use crate::output::{Output, Render};

use self::lock::{DaemonLock, LockError};
use self::paths::{DaemonPaths, PathError};

/// How the CLI names itself in the handshake.
const CLIENT_NAME: &str = concat!("maos-cli ", env!("CARGO_PKG_VERSION"));

/// How long `maos daemon start` (and the first command) waits for a new daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `maos daemon stop` waits for the daemon to let go of its lock.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How often the daemon checks that its data directory and its database files are still there
/// (and still the files it opened).
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// How long a probe of an existing socket may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl From<PathError> for CliError {
    fn from(e: PathError) -> Self {
        let hint = match &e {
            PathError::DataDir { path, source } => return compose::data_dir_error(path, source),
            PathError::SocketDir { .. } | PathError::Unsafe { .. } => {
                "set XDG_RUNTIME_DIR to a directory only you can enter, or remove the directory named above"
            }
        };
        CliError::new(FailureClass::DaemonUnavailable, e.to_string()).with_hint(hint)
    }
}

fn unavailable(message: impl Into<String>) -> CliError {
    CliError::new(FailureClass::DaemonUnavailable, message)
}

/// The daemon's own description, and the switch that stops it.
#[derive(Debug)]
struct Control {
    paths: DaemonPaths,
    started_at: maos_domain::Timestamp,
    started: Instant,
    stop: tokio::sync::Notify,
    containment: maos_agents::ContainmentKind,
    ui: ui::UiHost,
}

impl DaemonControl for Control {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: maos_ipc::PROTOCOL_VERSION,
            socket: self.paths.socket.clone(),
            database: self.paths.data_dir.join(compose::DB_FILE),
            started_at: self.started_at,
            uptime: self.started.elapsed(),
            containment: match &self.containment {
                maos_agents::ContainmentKind::Cgroup(_) => "cgroup".to_owned(),
                maos_agents::ContainmentKind::ProcessTree => "process_tree".to_owned(),
            },
            containment_root: match &self.containment {
                maos_agents::ContainmentKind::Cgroup(root) => Some(root.clone()),
                maos_agents::ContainmentKind::ProcessTree => None,
            },
            ui: self.ui.url(),
        }
    }

    fn shutdown(&self) {
        tracing::info!("shutdown requested over IPC");
        self.stop.notify_one();
    }

    fn serve_ui(&self, request: &UiRequest) -> Result<UiServing, maos_application::RemoteError> {
        self.ui.serve(request)
    }
}

/// `maos daemon`: serves `data_dir` in the foreground until SIGTERM, SIGINT or `daemon stop`.
pub(crate) fn foreground(data_dir: &Path) -> Result<(), CliError> {
    let paths = paths::prepare(data_dir)?;
    let _lock = DaemonLock::acquire(&paths.lock, std::process::id(), &paths.socket).map_err(
        |e| match e {
            LockError::Held { pid } => CliError::new(
                FailureClass::Conflict,
                format!(
                    "another daemon (pid {pid}) already serves {}",
                    paths.data_dir.display()
                ),
            )
            .with_hint("`maos daemon status` shows it; `maos daemon stop` stops it"),
            LockError::Io { .. } => unavailable(e.to_string()),
        },
    )?;
    // We hold the lock, so no live daemon serves this data directory: a socket file left here
    // belongs to one that died without cleaning up.
    if paths.socket.exists() {
        tracing::warn!(socket = %paths.socket.display(), "replacing a stale socket left by a daemon that died");
        std::fs::remove_file(&paths.socket).map_err(|e| {
            unavailable(format!(
                "cannot remove the stale socket {}: {e}",
                paths.socket.display()
            ))
        })?;
    }
    let agents = compose::with_agents(&paths.data_dir)?;
    let api = Arc::clone(&agents.api);
    // The IPC server runs calls on threads of its own (at most `MAX_RUNNING_CALLS`); this pool
    // holds the subscriptions' waits and the dashboard's page renders (tokio's default would be
    // 512).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(maos_ipc::BLOCKING_THREADS)
        .build()
        .map_err(|e| unavailable(format!("cannot start the daemon's runtime: {e}")))?;
    let control = Arc::new(Control {
        paths: paths.clone(),
        started_at: SystemClock.now(),
        started: Instant::now(),
        stop: tokio::sync::Notify::new(),
        containment: agents.supervisor.containment(),
        ui: ui::UiHost::new(Arc::clone(&api), &paths.data_dir, runtime.handle().clone()),
    });
    if let Some(request) = agents.ui.as_ref() {
        // `[ui]` in config.toml: serve the dashboard from the start. A port that is taken does
        // not stop the daemon; `maos ui` says why when asked.
        let _guard = runtime.enter();
        match control.ui.serve(request) {
            Ok(s) => tracing::info!(
                url = %s.url,
                "dashboard served (as config.toml asks); `maos ui` prints its address with the token"
            ),
            Err(e) => tracing::error!("cannot serve the dashboard config.toml asks for: {e}"),
        }
    }
    let local = tokio::task::LocalSet::new();
    let store = Arc::clone(&agents.store);
    let served = local.block_on(
        &runtime,
        serve(&paths, Arc::clone(&api), Arc::clone(&control), store),
    );
    control.ui.stop();
    // Stop serving first, then let go of the socket, stop the agents (the next start reconciles
    // what they were doing); the store flushes when the last `api` drops.
    let _ = std::fs::remove_file(&paths.socket);
    agents.shutdown();
    drop(api);
    drop(agents);
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("daemon stopped");
    served
}

async fn serve(
    paths: &DaemonPaths,
    api: Arc<dyn MaosApi>,
    control: Arc<Control>,
    store: Arc<maos_sqlite::SqliteStore>,
) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::UnixListener::bind(&paths.socket)
        .map_err(|e| unavailable(format!("cannot listen on {}: {e}", paths.socket.display())))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| unavailable(format!("cannot restrict {}: {e}", paths.socket.display())))?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| unavailable(format!("cannot watch SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| unavailable(format!("cannot watch SIGINT: {e}")))?;
    let server = Server::new(api, Arc::clone(&control) as Arc<dyn DaemonControl>)
        .map_err(|e| unavailable(format!("cannot read this process's uid: {e}")))?
        .with_hints(crate::hints::hint);
    tracing::info!(
        pid = std::process::id(),
        socket = %paths.socket.display(),
        data_dir = %paths.data_dir.display(),
        "daemon serving"
    );
    let lock = paths.lock.clone();
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
            () = control.stop.notified() => {}
            () = gone(lock) => tracing::warn!("the data directory was removed: stopping"),
            why = lost(store) => tracing::error!(
                "{why}: every write since was refused, and the daemon stops; nothing it \
                 acknowledged is lost, but put the right database back before the next command"
            ),
        }
    };
    server.serve(listener, stop).await;
    Ok(())
}

/// Completes when the lock file disappears: the data directory was deleted under the daemon (a
/// throwaway directory of a script or a test), so nobody can reach or need this daemon again.
async fn gone(lock: std::path::PathBuf) {
    loop {
        tokio::time::sleep(LIVENESS_CHECK).await;
        if !lock.exists() {
            return;
        }
    }
}

/// Completes, with what happened, once the database's files were deleted or replaced under the
/// daemon (the store then refuses every write).
async fn lost(store: Arc<maos_sqlite::SqliteStore>) -> String {
    loop {
        tokio::time::sleep(LIVENESS_CHECK).await;
        if let Some(why) = store.lost() {
            return why;
        }
    }
}

/// Connects to the daemon of `paths`, if one answers: on the socket this runtime directory
/// implies, or else on the socket its lock file names (a daemon started with another
/// `XDG_RUNTIME_DIR`).
fn probe(paths: &DaemonPaths) -> Option<IpcClient> {
    let recorded = DaemonLock::recorded_socket(&paths.lock).filter(|s| *s != paths.socket);
    [Some(paths.socket.clone()), recorded]
        .into_iter()
        .flatten()
        .find_map(|socket| {
            if !socket.exists() {
                return None;
            }
            match IpcClient::connect_with_timeout(&socket, CLIENT_NAME, PROBE_TIMEOUT) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::debug!(socket = %socket.display(), error = %e, "no daemon answers");
                    None
                }
            }
        })
}

/// Why [`spawn`] gave no client.
#[derive(Debug)]
enum Spawned {
    /// The new daemon exited because another process held the lock.
    LostTheLock,
    Failed(CliError),
}

impl From<CliError> for Spawned {
    fn from(e: CliError) -> Self {
        Spawned::Failed(e)
    }
}

/// Starts a detached daemon for `paths` and waits until it answers, at most until `deadline`.
fn spawn(paths: &DaemonPaths, verbose: u8, deadline: Instant) -> Result<IpcClient, Spawned> {
    // Refuse a bad database here, with the same error the daemon would log, instead of starting
    // a daemon that dies at once.
    drop(compose::open_store(&paths.data_dir)?);
    crate::config_file::Config::load(&paths.data_dir)?;
    let exe = std::env::current_exe().map_err(|e| {
        unavailable(format!(
            "cannot find the maos binary to start the daemon: {e}"
        ))
    })?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&paths.log)
        .map_err(|e| {
            unavailable(format!(
                "cannot open the daemon log {}: {e}",
                paths.log.display()
            ))
        })?;
    let mut command = Command::new(exe);
    command
        .arg("daemon")
        .arg("--data-dir")
        .arg(&paths.data_dir)
        .arg("--color")
        .arg("never")
        .env_remove("MAOS_NO_DAEMON")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C meant for this command does not reach the daemon.
        .process_group(0);
    if verbose > 0 {
        command.arg(format!("-{}", "v".repeat(usize::from(verbose.min(2)))));
    } else {
        command.arg("-v");
    }
    let mut child = command
        .spawn()
        .map_err(|e| unavailable(format!("cannot start the daemon: {e}")))?;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Exit 4: another process held the lock (a daemon that won the race, or a dead
            // daemon's child for a moment). The caller tries again until its deadline.
            if status.code() == Some(i32::from(FailureClass::Conflict.exit_code())) {
                return Err(Spawned::LostTheLock);
            }
            return Err(unavailable(format!(
                "the daemon exited at once ({status}); its log says: {}",
                log_tail(&paths.log)
            ))
            .with_hint(format!("the whole log is {}", paths.log.display()))
            .into());
        }
        if let Some(client) = probe(paths) {
            tracing::info!(pid = client.handshake_info().pid, "started the daemon");
            return Ok(client);
        }
        if Instant::now() >= deadline {
            return Err(unavailable(format!(
                "the daemon did not answer within {}s",
                START_TIMEOUT.as_secs()
            ))
            .with_hint(format!("see its log, {}", paths.log.display()))
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last non-empty line of the daemon's log.
fn log_tail(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "nothing".into())
}

/// A client of the daemon serving `data_dir`, starting the daemon if none runs.
///
/// Nothing is judged once: until the start timeout, it probes the socket, and whenever the lock
/// is free it starts a daemon. The lock may be held for a moment by something that will never
/// answer (a dead daemon's child between fork and exec, a daemon that lost the race to another
/// start) and be free the next instant.
pub(crate) fn connect_or_start(data_dir: &Path, verbose: u8) -> Result<Arc<dyn MaosApi>, CliError> {
    Ok(Arc::new(client(data_dir, verbose)?))
}

/// [`connect_or_start`], as the daemon's own client (for what only the daemon does: serving the
/// dashboard).
pub(crate) fn client(data_dir: &Path, verbose: u8) -> Result<IpcClient, CliError> {
    let paths = paths::prepare(data_dir)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(client) = probe(&paths) {
            return Ok(client);
        }
        if !DaemonLock::is_held(&paths.lock) {
            match spawn(&paths, verbose, deadline) {
                Ok(client) => return Ok(client),
                // Another daemon took the lock first (two commands started one at the same
                // time, or a leftover held it): its daemon answers soon.
                Err(Spawned::LostTheLock) => {}
                Err(Spawned::Failed(e)) => return probe(&paths).ok_or(e),
            }
        }
        if Instant::now() >= deadline {
            if !DaemonLock::is_held(&paths.lock) {
                // Nobody holds the lock, yet every daemon started exited: say what its log says.
                return Err(unavailable(format!(
                    "the daemon does not start; its log says: {}",
                    log_tail(&paths.log)
                ))
                .with_hint(format!("the whole log is {}", paths.log.display())));
            }
            return Err(unavailable(format!(
                "a daemon holds {} but does not answer on {} (waited {}s)",
                paths.lock.display(),
                paths.socket.display(),
                START_TIMEOUT.as_secs()
            ))
            .with_hint("stop it (its pid is in the lock file) or run with --no-daemon"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `maos daemon start`.
pub(crate) fn start(data_dir: &Path, verbose: u8, out: &mut Output) -> Result<(), CliError> {
    let paths = paths::prepare(data_dir)?;
    let (client, already) = match probe(&paths) {
        Some(c) => (c, true),
        None => match spawn(&paths, verbose, Instant::now() + START_TIMEOUT) {
            Ok(c) => (c, false),
            Err(Spawned::Failed(e)) => return Err(e),
            // Another start won: connect to its daemon.
            Err(Spawned::LostTheLock) => {
                let client = connect_or_start(data_dir, verbose)?;
                drop(client);
                match probe(&paths) {
                    Some(c) => (c, true),
                    None => return Err(unavailable("the daemon that started does not answer")),
                }
            }
        },
    };
    let info = client.daemon_info()?;
    out.print(&Started { info, already })
}

/// `maos daemon start`: the daemon that answers, started now or already running.
struct Started {
    info: DaemonInfo,
    already: bool,
}

impl Render for Started {
    fn document(&self) -> impl Serialize {
        json::DaemonDoc::new(&self.info, self.already, None)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let verb = if self.already {
            "already running"
        } else {
            "started"
        };
        out.text(&format!(
            "daemon {verb}: pid {}, socket {}\n",
            self.info.pid,
            self.info.socket.display()
        ))
    }
}

/// `maos daemon stop`.
pub(crate) fn stop(data_dir: &Path, out: &mut Output) -> Result<(), CliError> {
    let paths = paths::prepare(data_dir)?;
    let Some(client) = probe(&paths) else {
        if DaemonLock::is_held(&paths.lock) {
            return Err(unavailable(format!(
                "a daemon holds {} but does not answer",
                paths.lock.display()
            ))
            .with_hint("send it SIGTERM (its pid is in the lock file)"));
        }
        out.note(&format!(
            "no daemon is running for {}",
            paths.data_dir.display()
        ));
        return out.print(&Stopped(None));
    };
    let pid = client.handshake_info().pid;
    client.shutdown()?;
    drop(client);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while DaemonLock::is_held(&paths.lock) {
        if Instant::now() >= deadline {
            return Err(unavailable(format!(
                "the daemon (pid {pid}) did not stop within {}s",
                STOP_TIMEOUT.as_secs()
            ))
            .with_hint(format!("see its log, {}", paths.log.display())));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    out.print(&Stopped(Some(pid)))
}

/// `maos daemon stop`: the pid of the daemon stopped, or none when none was running (a note
/// said so).
struct Stopped(Option<u32>);

impl Render for Stopped {
    fn document(&self) -> impl Serialize {
        json::DaemonStoppedDoc::new(self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        match self.0 {
            Some(pid) => out.text(&format!("daemon stopped (pid {pid})\n")),
            None => Ok(()),
        }
    }
}

/// What `maos doctor` sees of the daemon of a data directory (it starts none).
#[derive(Debug)]
pub(crate) enum Seen {
    /// None runs.
    NotRunning,
    /// One runs and answered.
    Running(DaemonInfo),
    /// One runs but refused this client (another protocol version): its words.
    Refused(String),
}

/// Looks for the daemon of `data_dir` without starting one.
pub(crate) fn look(data_dir: &Path) -> Result<Seen, CliError> {
    let paths = paths::prepare(data_dir)?;
    if paths.socket.exists() {
        match IpcClient::connect_with_timeout(&paths.socket, CLIENT_NAME, PROBE_TIMEOUT) {
            Err(maos_ipc::ConnectError::VersionMismatch { message, .. }) => {
                return Ok(Seen::Refused(message));
            }
            Ok(client) => return Ok(Seen::Running(client.daemon_info()?)),
            Err(_) => {}
        }
    }
    Ok(match probe(&paths) {
        Some(client) => Seen::Running(client.daemon_info()?),
        None => Seen::NotRunning,
    })
}

/// `maos daemon status`.
pub(crate) fn status(data_dir: &Path, out: &mut Output) -> Result<(), CliError> {
    let paths = paths::prepare(data_dir)?;
    let Some(client) = probe(&paths) else {
        return Err(unavailable(format!(
            "no daemon is running for {}",
            paths.data_dir.display()
        ))
        .with_hint("`maos daemon start` starts it (any other maos command does too)"));
    };
    let info = client.daemon_info()?;
    let counts = client.status()?;
    out.print(&Running { info, counts })
}

/// `maos daemon status`: the running daemon and the counts it serves.
struct Running {
    info: DaemonInfo,
    counts: StatusReport,
}

impl Render for Running {
    fn document(&self) -> impl Serialize {
        json::DaemonDoc::new(&self.info, true, Some(&self.counts))
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&human::daemon(&self.info, &self.counts))
    }
}
