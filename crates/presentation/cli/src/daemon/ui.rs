//! The web dashboard as the daemon hosts it: the data directory's token (kept in `ui-token`,
//! 0600, made on first need), the listening socket (127.0.0.1 and the default port unless told
//! otherwise), and the dashboard served on the daemon's runtime until it stops. The dashboard
//! itself is another front end (`maos-web`); the binary hands it in as a [`DashboardServer`]
//! (ADR 0019), so this crate does not depend on it.

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use maos_application::{ErrorKind, MaosApi, RemoteError};
use maos_ipc::{UiRequest, UiServing};

/// What a dashboard is served with.
#[derive(Clone)]
pub struct DashboardSettings {
    /// The token every request must carry (hex; in the URL once, then in a cookie).
    pub token: String,
    /// The token the dashboard's forms carry (hex, new at every start).
    pub csrf: String,
    /// The port it listens on.
    pub port: u16,
    /// It listens on a loopback address only.
    pub loopback: bool,
    /// What its pages say they serve (the data directory).
    pub label: String,
}

impl std::fmt::Debug for DashboardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardSettings")
            .field("port", &self.port)
            .field("loopback", &self.loopback)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A front end the daemon can serve over HTTP: the binary gives one to [`crate::main`].
pub trait DashboardServer: Send + Sync {
    /// Serves the dashboard over `api` on `listener` (bound, non-blocking) on `runtime`, until
    /// the returned handle is stopped.
    fn serve(
        &self,
        api: Arc<dyn MaosApi>,
        settings: DashboardSettings,
        listener: TcpListener,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Box<dyn ServedDashboard>, String>;
}

/// A dashboard being served.
pub trait ServedDashboard: Send {
    /// Stops serving, and returns once the dashboard has let go of the API.
    fn stop(&self);
}

static SERVER: OnceLock<&'static dyn DashboardServer> = OnceLock::new();

/// Sets the dashboard this process's daemon serves (once, at start).
pub(crate) fn install(server: &'static dyn DashboardServer) {
    let _ = SERVER.set(server);
}

/// The token file in the data directory.
pub(crate) const TOKEN_FILE: &str = "ui-token";

/// The port the dashboard tries first.
pub(crate) const DEFAULT_PORT: u16 = 8787;

/// How many ports after the default one it tries when those are taken.
const PORT_TRIES: u16 = 10;

/// The dashboard of a running daemon: none until asked for.
pub(crate) struct UiHost {
    api: Arc<dyn MaosApi>,
    data_dir: PathBuf,
    runtime: tokio::runtime::Handle,
    serving: Mutex<Option<Serving>>,
}

struct Serving {
    info: UiServing,
    dashboard: Box<dyn ServedDashboard>,
}

impl std::fmt::Debug for UiHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiHost")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn failed(kind: ErrorKind, message: impl Into<String>) -> RemoteError {
    RemoteError::new(kind, message)
}

impl UiHost {
    pub(crate) fn new(
        api: Arc<dyn MaosApi>,
        data_dir: &Path,
        runtime: tokio::runtime::Handle,
    ) -> UiHost {
        UiHost {
            api,
            data_dir: data_dir.to_path_buf(),
            runtime,
            serving: Mutex::new(None),
        }
    }

    /// The address served (without the token), if any.
    pub(crate) fn url(&self) -> Option<String> {
        let serving = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        serving.as_ref().map(|s| s.info.url.clone())
    }

    /// Serves the dashboard as `request` says, or says where it already does (a request for
    /// another address or port than the one served is refused: one dashboard per daemon).
    pub(crate) fn serve(&self, request: &UiRequest) -> Result<UiServing, RemoteError> {
        let mut serving = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = serving.as_ref() {
            let other_port = request.port.is_some_and(|p| p != s.info.port);
            let other_address = request.address.is_some_and(|a| a != s.info.address);
            if other_port || other_address {
                return Err(failed(
                    ErrorKind::Conflict,
                    format!(
                        "the daemon already serves the dashboard at {}; one daemon serves one \
                         dashboard",
                        s.info.url
                    ),
                )
                .with_hint(
                    "open that address, or stop the daemon (`maos daemon stop`) and serve it \
                     again where you want it",
                ));
            }
            let mut info = s.info.clone();
            info.already = true;
            return Ok(info);
        }
        let Some(server) = SERVER.get() else {
            return Err(failed(
                ErrorKind::Unavailable,
                "this build of maos has no web dashboard",
            ));
        };
        let token = load_or_make_token(&self.data_dir.join(TOKEN_FILE))?;
        let csrf = hex(&random_bytes()?);
        let address = request.address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listener = bind(address, request.port)?;
        let port = listener
            .local_addr()
            .map_err(|e| failed(ErrorKind::Unavailable, format!("cannot read the port: {e}")))?
            .port();
        let loopback = address.is_loopback();
        let dashboard = server
            .serve(
                Arc::clone(&self.api),
                DashboardSettings {
                    token: token.clone(),
                    csrf,
                    port,
                    loopback,
                    label: self.data_dir.display().to_string(),
                },
                listener,
                &self.runtime,
            )
            .map_err(|e| {
                failed(
                    ErrorKind::Unavailable,
                    format!("cannot serve the dashboard: {e}"),
                )
            })?;
        let host = match address {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        let info = UiServing {
            url: format!("http://{host}:{port}/"),
            token,
            address,
            port,
            loopback,
            already: false,
        };
        tracing::info!(url = %info.url, loopback, "serving the dashboard");
        *serving = Some(Serving {
            info: info.clone(),
            dashboard,
        });
        Ok(info)
    }

    /// Stops serving and stops following the event log (before the daemon lets go of its
    /// store).
    pub(crate) fn stop(&self) {
        let taken = self
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(s) = taken {
            s.dashboard.stop();
        }
    }
}

/// Listens on `address` at `port`, or at the default port or one of the next few free ones.
fn bind(address: IpAddr, port: Option<u16>) -> Result<TcpListener, RemoteError> {
    let ports: Vec<u16> = match port {
        Some(p) => vec![p],
        None => (0..PORT_TRIES).map(|i| DEFAULT_PORT + i).collect(),
    };
    let mut last = None;
    for p in &ports {
        match TcpListener::bind(SocketAddr::new(address, *p)) {
            Ok(l) => {
                l.set_nonblocking(true).map_err(|e| {
                    failed(
                        ErrorKind::Unavailable,
                        format!("cannot set up the socket: {e}"),
                    )
                })?;
                return Ok(l);
            }
            Err(e) => last = Some(e),
        }
    }
    let what = match port {
        Some(p) => format!("{address}:{p}"),
        None => format!(
            "{address}:{DEFAULT_PORT} to {}",
            DEFAULT_PORT + PORT_TRIES - 1
        ),
    };
    let why = last.map(|e| e.to_string()).unwrap_or_default();
    let hint = if port.is_some() {
        "choose another port with --port"
    } else {
        "choose a free port with --port"
    };
    Err(failed(
        ErrorKind::Unavailable,
        format!("cannot listen on {what}: {why}"),
    )
    .with_hint(hint))
}

/// The length of a token in hex digits (32 random bytes).
const TOKEN_DIGITS: usize = 64;

/// Whether `text` is a token this module made: 64 lowercase hex digits.
fn is_token(text: &str) -> bool {
    text.len() == TOKEN_DIGITS && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The data directory's token: read from `path`, or made (random) and written there, readable
/// by this user only. A file that holds no valid token is replaced.
fn load_or_make_token(path: &Path) -> Result<String, RemoteError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(TOKEN_DIGITS as u64 + 2).read_to_string(&mut text));
    if read.is_ok() && is_token(text.trim()) {
        return Ok(text.trim().to_owned());
    }
    if read.is_ok() {
        tracing::warn!(path = %path.display(), "the dashboard token file holds no valid token: making a new one");
    }
    let token = hex(&random_bytes()?);
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        failed(
            ErrorKind::Storage,
            format!(
                "cannot write the dashboard token to {}: {e}",
                path.display()
            ),
        )
    })?;
    Ok(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from the kernel's random source.
fn random_bytes() -> Result<[u8; 32], RemoteError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| {
            failed(
                ErrorKind::Unavailable,
                format!("cannot read random bytes from /dev/urandom: {e}"),
            )
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(TOKEN_FILE);
        let first = load_or_make_token(&path).expect("made");
        assert!(is_token(&first), "{first}");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_make_token(&path).expect("read");
        assert_eq!(first, again);
        std::fs::write(&path, "not a token").expect("spoil");
        let new = load_or_make_token(&path).expect("replaced");
        assert_ne!(new, first);
    }
}
