//! Composition: the one place that knows which adapters make up MAOS. Everything else in the
//! CLI talks to `dyn MaosApi` only: the in-process service built here, or the daemon's IPC
//! client (`daemon::connect_or_start`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use etcetera::BaseStrategy;
use maos_application::{MaosApi, Service, ServiceConfig};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

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

/// Opens (or creates) the database in `dir` and builds the in-process application service.
pub(crate) fn in_process(dir: &Path) -> Result<Arc<dyn MaosApi>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            Kind::Storage,
            format!("cannot create the data directory {}: {e}", dir.display()),
        )
        .with_hint("choose a writable directory with --data-dir or MAOS_DATA_DIR")
    })?;
    let db = dir.join(DB_FILE);
    tracing::info!(path = %db.display(), "opening the database");
    let store = Arc::new(SqliteStore::open(&db)?);
    let api: Arc<dyn MaosApi> = Arc::new(Service::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig::default(),
    ));
    Ok(api)
}
