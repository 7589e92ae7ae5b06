//! Composition: the one place that knows which adapters make up MAOS. Everything else in the
//! CLI talks to `dyn MaosApi` only: the in-process service built here, or the daemon's IPC
//! client (`daemon::connect_or_start`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcetera::BaseStrategy;
use maos_agents::{FileLogs, Supervisor, SupervisorConfig};
use maos_application::{MaosApi, Service};
use maos_git::GitWorkspaces;
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

use crate::config_file::Config;
use crate::error::{CliError, Kind};

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
            Kind::Failure,
            format!("cannot find the home directory: {e}"),
        )
        .with_hint("name a data directory with --data-dir or MAOS_DATA_DIR")
    })?;
    Ok(base.data_dir().join("maos"))
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
            Kind::NotFound,
            format!("there is no database at {}", db.display()),
        )
        .with_hint("name the data directory with --data-dir or MAOS_DATA_DIR"));
    }
    let store = SqliteStore::open_for_reading(&db)?;
    Ok(maos_application::verify::verify(&store)?)
}

/// Opens (or creates) the database in `dir` and builds the in-process application service. It
/// schedules nothing and runs no agent: that is the daemon's job ([`with_agents`]).
pub(crate) fn in_process(dir: &Path) -> Result<Arc<dyn MaosApi>, CliError> {
    let api: Arc<dyn MaosApi> = Arc::new(service(dir)?);
    Ok(api)
}

fn service(dir: &Path) -> Result<Service<SqliteStore>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            Kind::Storage,
            format!("cannot create the data directory {}: {e}", dir.display()),
        )
        .with_hint("choose a writable directory with --data-dir or MAOS_DATA_DIR")
    })?;
    let db = dir.join(DB_FILE);
    tracing::info!(path = %db.display(), "opening the database");
    let config = Config::load(dir)?;
    let store = Arc::new(SqliteStore::open(&db)?);
    Ok(Service::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        config.service,
    )
    .with_routes(config.routes)
    .with_logs(Arc::new(FileLogs::new(dir.join(LOGS_DIR))))
    .with_workspaces(Arc::new(GitWorkspaces::new())))
}

/// Attempts' logs, inside the data directory.
pub(crate) const LOGS_DIR: &str = "logs";

/// How often the daemon looks for leases that ran out.
const LEASE_CHECK: Duration = Duration::from_millis(500);

/// The daemon's application: the service with the agent runtime, which schedules and runs
/// attempts, and the lease reaper beside it.
pub(crate) struct AgentsAtWork {
    pub(crate) api: Arc<dyn MaosApi>,
    supervisor: Supervisor,
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
    let supervisor = Supervisor::new(SupervisorConfig::new(dir));
    supervisor.set_workspaces(Arc::new(GitWorkspaces::new()));
    let service = service(dir)?.with_runtime(Arc::new(supervisor.clone()));
    // Until `attach`, the supervisor queues what is launched: the leftovers of the dead daemon
    // die before any rerun starts.
    let reconciled = service.reconcile()?;
    if !reconciled.interrupted.is_empty() {
        let killed = supervisor.kill_leftovers(&reconciled.interrupted);
        tracing::warn!(
            attempts = reconciled.interrupted.len(),
            killed_processes = killed,
            "attempts of a previous daemon were interrupted and rescheduled"
        );
    }
    supervisor.attach(Arc::new(service.clone()));
    let reaper_stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&reaper_stop);
        let service = service.clone();
        std::thread::Builder::new()
            .name("maos-leases".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(LEASE_CHECK);
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
                CliError::new(Kind::Failure, format!("cannot start the lease reaper: {e}"))
            })?;
    }
    Ok(AgentsAtWork {
        api: Arc::new(service),
        supervisor,
        reaper_stop,
    })
}
