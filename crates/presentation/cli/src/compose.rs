//! Composition: the one place that knows which adapters make up MAOS. Everything else in the
//! CLI talks to `dyn MaosApi` only: the in-process service built here, or the daemon's IPC
//! client (`daemon::connect_or_start`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcetera::BaseStrategy;
use maos_agents::{FileLogs, McpLaunch, Supervisor, SupervisorConfig};
use maos_application::{MaosApi, Service};
use maos_git::GitWorkspaces;
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

use crate::config_file::Config;
use crate::error::{CliError, FailureClass};

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "maos.db";

/// The environment variable that names the data directory when `--data-dir` does not.
pub(crate) const DATA_DIR_ENV: &str = "MAOS_DATA_DIR";

/// The data directory: `--data-dir`, else `MAOS_DATA_DIR` (when set and not empty), else
/// `<XDG data dir>/maos`.
pub(crate) fn data_dir(given: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = etcetera::choose_base_strategy().map_err(|e| {
        CliError::new(
            FailureClass::Failure,
            format!("cannot find the home directory: {e}"),
        )
        .with_hint("name a data directory with --data-dir or MAOS_DATA_DIR")
    })?;
    Ok(base.data_dir().join("maos"))
}

/// Creates the data directory private to the user (0700, whatever the umask; its parents as
/// usual), or tightens an existing one that others may enter, saying so (once: it stays
/// tight). It holds every prompt and every agent's output. A directory nothing can be created
/// in is refused untouched.
pub(crate) fn private_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is not a directory",
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        // Only a directory MAOS can write in is made private: one it cannot use (read-only, or
        // a system directory such as /sys/kernel, which root may chmod but not write in) is
        // left as it is, and the caller says why.
        writable(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        tracing::warn!(
            "the data directory {} was open to other users (mode {mode:04o}); it is 0700 now, \
             since it holds every prompt and every agent's output",
            dir.display()
        );
    }
    Ok(())
}

/// Fails as creating a file in `dir` fails (a file made and removed at once).
fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".maos-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The environment variable that, set to `1`, keeps commands in process (like `--no-daemon`).
pub(crate) const NO_DAEMON_ENV: &str = "MAOS_NO_DAEMON";

/// True when commands run in process: `--no-daemon`, or `MAOS_NO_DAEMON` set to `1` (or `true`).
pub(crate) fn no_daemon(flag: bool) -> bool {
    flag || std::env::var(NO_DAEMON_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Checks the database in `dir` against its event log (`admin verify`), opened for reading
/// only: no daemon is needed, and a running one is not disturbed.
pub(crate) fn verify(dir: &Path) -> Result<maos_application::verify::Verification, CliError> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return Err(CliError::new(
            FailureClass::NotFound,
            format!("there is no database at {}", db.display()),
        )
        .with_hint("name the data directory with --data-dir or MAOS_DATA_DIR"));
    }
    let store = SqliteStore::open_for_reading(&db)?;
    Ok(maos_application::verify::verify(&store)?)
}

/// The database in `dir` for reading only, for shell completion (ADR 0016): none when there is
/// no database or it does not open. Never creates anything, never starts the daemon.
pub(crate) fn for_completion(dir: &Path) -> Option<Box<dyn maos_application::ReadStore>> {
    let db = dir.join(DB_FILE);
    if !db.is_file() {
        return None;
    }
    let store = SqliteStore::open_for_reading(&db).ok()?;
    Some(Box::new(store))
}

/// Opens (or creates) the database in `dir` and builds the in-process application service. It
/// schedules nothing and runs no agent: that is the daemon's job ([`with_agents`]).
pub(crate) fn in_process(dir: &Path) -> Result<Arc<dyn MaosApi>, CliError> {
    let api: Arc<dyn MaosApi> = Arc::new(service(dir)?.0);
    Ok(api)
}

/// The service over the database in `dir`, and the store itself (whose files the daemon
/// watches).
fn service(dir: &Path) -> Result<(Service<SqliteStore>, Arc<SqliteStore>, Config), CliError> {
    private_data_dir(dir).map_err(|e| data_dir_error(dir, &e))?;
    let config = Config::load(dir)?;
    let store = Arc::new(open_store(dir)?);
    let service = Service::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        config.service,
    )
    .with_routes(config.routes.clone())
    .with_logs(Arc::new(FileLogs::new(dir.join(LOGS_DIR))))
    .with_workspaces(Arc::new(GitWorkspaces::new()))
    .with_plans(Arc::new(maos_plans::PlanFiles));
    Ok((service, store, config))
}

/// The data directory `dir` cannot be created or made private: the same error through the
/// daemon and in process (storage, exit 5), saying so when a read-only directory is why.
pub(crate) fn data_dir_error(dir: &Path, e: &std::io::Error) -> CliError {
    let read_only = matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    );
    if read_only && dir.is_dir() {
        return read_only_error(dir, e);
    }
    let message = if read_only {
        format!(
            "cannot create the data directory {}: the directory it goes in is read-only ({e})",
            dir.display()
        )
    } else {
        format!("cannot create the data directory {}: {e}", dir.display())
    };
    CliError::new(FailureClass::Storage, message)
        .with_hint("choose a writable directory with --data-dir or MAOS_DATA_DIR")
}

/// The data directory `dir` exists but nothing can be written in it.
fn read_only_error(dir: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::new(
        FailureClass::Storage,
        format!(
            "the data directory {} is read-only ({why}); MAOS keeps its database there",
            dir.display()
        ),
    )
    .with_hint(
        "make the directory writable (chmod u+w, or mount it read-write), or choose another \
         data directory with --data-dir or MAOS_DATA_DIR",
    )
}

/// Opens (or creates) the database of the data directory `dir`. When it cannot, because the
/// directory is read-only, the error says so.
pub(crate) fn open_store(dir: &Path) -> Result<SqliteStore, CliError> {
    let db = dir.join(DB_FILE);
    tracing::info!(path = %db.display(), "opening the database");
    SqliteStore::open(&db).map_err(|e| {
        if matches!(e, maos_application::StoreError::Open { .. })
            && let Some(why) = read_only(dir)
        {
            return read_only_error(dir, why);
        }
        CliError::from(e)
    })
}

/// Why no file can be created in `dir`, when that is because it is read-only (to this user, or
/// on a read-only file system); `None` when it is writable or the reason is another.
fn read_only(dir: &Path) -> Option<String> {
    match writable(dir) {
        Ok(()) => None,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Some(e.to_string())
        }
        Err(_) => None,
    }
}

/// Attempts' logs, inside the data directory.
pub(crate) const LOGS_DIR: &str = "logs";

/// How often the daemon looks for leases that ran out.
const LEASE_CHECK: Duration = Duration::from_millis(500);

/// How often the daemon marks ephemeral memory entries whose time ran out as expired.
const MEMORY_SWEEP: Duration = Duration::from_secs(5);

/// The daemon's application: the service with the agent runtime, which schedules and runs
/// attempts, and the lease reaper beside it.
pub(crate) struct AgentsAtWork {
    pub(crate) api: Arc<dyn MaosApi>,
    pub(crate) supervisor: Supervisor,
    /// The store, whose files the daemon checks (deleted or replaced: it stops).
    pub(crate) store: Arc<SqliteStore>,
    /// Where config.toml asks the dashboard to be served from the start (`[ui]`).
    pub(crate) ui: Option<maos_ipc::UiRequest>,
    reaper_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for AgentsAtWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentsAtWork")
            .field("supervisor", &self.supervisor)
            .finish_non_exhaustive()
    }
}

impl AgentsAtWork {
    /// Stops every running attempt (the next start reconciles them) and the lease reaper.
    pub(crate) fn shutdown(&self) {
        self.reaper_stop.store(true, Ordering::SeqCst);
        self.supervisor.shutdown();
    }
}

/// The daemon's service over the database in `dir`: attempts a previous daemon left running are
/// interrupted (and their leftover processes killed) and rescheduled, then every free agent slot
/// gets work, and from then on every transaction that readies a task or frees a slot assigns
/// what it can.
pub(crate) fn with_agents(dir: &Path) -> Result<AgentsAtWork, CliError> {
    let mut config = SupervisorConfig::new(dir);
    // Agents reach MAOS's own tools through `maos mcp`: this very binary, on this data
    // directory.
    match std::env::current_exe() {
        Ok(program) => {
            // `maos mcp` finds the daemon's socket under the daemon's XDG_RUNTIME_DIR.
            let env = std::env::var("XDG_RUNTIME_DIR")
                .ok()
                .filter(|d| std::path::Path::new(d).is_absolute())
                .map(|d| ("XDG_RUNTIME_DIR".to_owned(), d))
                .into_iter()
                .collect();
            config.mcp = Some(McpLaunch {
                program,
                data_dir: dir.to_path_buf(),
                env,
            });
        }
        Err(e) => tracing::warn!(
            error = %e,
            "cannot tell where this program is: agents get no MCP configuration"
        ),
    }
    let supervisor = Supervisor::new(config);
    supervisor.set_workspaces(Arc::new(GitWorkspaces::new()));
    let (service, store, config) = service(dir)?;
    let service = service.with_runtime(Arc::new(supervisor.clone()));
    // Until `attach`, the supervisor queues what is launched: the leftovers of the dead daemon
    // die before any rerun starts.
    let reconciled = service.reconcile()?;
    // Always: a daemon killed between spawning an agent and recording it leaves processes
    // that only the containment's record finds.
    let killed = supervisor.kill_leftovers(&reconciled.interrupted);
    if !reconciled.interrupted.is_empty() || killed > 0 {
        tracing::warn!(
            attempts = reconciled.interrupted.len(),
            killed_processes = killed,
            "attempts of a previous daemon were interrupted and rescheduled"
        );
    }
    tracing::info!(containment = %supervisor.containment(), "agents' processes are contained");
    let api: Arc<dyn MaosApi> = Arc::new(service.clone());
    // The models of `openai` and `ollama` agents get MAOS's tools for agents, over the same API
    // (when this binary has an MCP front end).
    if let Some(mcp) = crate::commands::mcp_front_end() {
        supervisor.set_toolbox(mcp.toolbox(Arc::clone(&api)));
    }
    supervisor.attach(api);
    let reaper_stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&reaper_stop);
        let service = service.clone();
        std::thread::Builder::new()
            .name("maos-leases".into())
            .spawn(move || {
                // Memory is swept less often: a due entry is already left out of every list and
                // search; the sweep only records that it expired.
                let mut swept: Option<std::time::Instant> = None;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(LEASE_CHECK);
                    if swept.is_none_or(|at| at.elapsed() >= MEMORY_SWEEP) {
                        swept = Some(std::time::Instant::now());
                        match service.expire_memories() {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(entries = n, "ephemeral memory expired"),
                            Err(e) => tracing::warn!(error = %e, "cannot expire memory"),
                        }
                    }
                    match service.expire_leases() {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(attempts = n, "leases expired: attempts requeued"),
                        Err(e) => tracing::warn!(error = %e, "cannot check leases"),
                    }
                    match service.promote_due_retries() {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tasks = n, "retries due: tasks ready again"),
                        Err(e) => tracing::warn!(error = %e, "cannot promote due retries"),
                    }
                }
            })
            .map_err(|e| {
                CliError::new(
                    FailureClass::Failure,
                    format!("cannot start the lease reaper: {e}"),
                )
            })?;
    }
    Ok(AgentsAtWork {
        api: Arc::new(service),
        supervisor,
        store,
        ui: config.ui,
        reaper_stop,
    })
}
