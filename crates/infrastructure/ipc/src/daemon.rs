//! What the server needs from the daemon that hosts it besides the application API: a
//! description of itself ([`DaemonInfo`]) and a way to ask it to stop ([`DaemonControl`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use maos_application::{ErrorKind, RemoteError};
use maos_domain::Timestamp;

/// What a daemon says about itself: in the handshake's answer and from `Api.daemonInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonInfo {
    pub pid: u32,
    /// The daemon's MAOS version (`CARGO_PKG_VERSION` of the binary).
    pub version: String,
    /// The IPC protocol version it speaks.
    pub protocol: u32,
    pub socket: PathBuf,
    pub database: PathBuf,
    pub started_at: Timestamp,
    pub uptime: Duration,
    /// How agents' processes are contained: `cgroup` (a cgroup v2 per attempt) or
    /// `process_tree` (the daemon as child subreaper); empty from a daemon that does not say.
    pub containment: String,
    /// With `cgroup`: the directory holding the attempts' cgroups.
    pub containment_root: Option<PathBuf>,
    /// The web dashboard's address (without its token), when the daemon serves one.
    pub ui: Option<String>,
}

/// Where the daemon should serve the web dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UiRequest {
    /// The address to listen on; `None`: 127.0.0.1.
    pub address: Option<IpAddr>,
    /// The port; `None`: the default one, or the next free one after it.
    pub port: Option<u16>,
}

/// Where the dashboard is served.
#[derive(Clone, PartialEq, Eq)]
pub struct UiServing {
    /// `http://127.0.0.1:8787/`, without the token.
    pub url: String,
    /// The data directory's dashboard token (the URL needs it once, as `?token=`).
    pub token: String,
    pub address: IpAddr,
    pub port: u16,
    /// Only this machine can connect.
    pub loopback: bool,
    /// It already served; the request changed nothing.
    pub already: bool,
}

impl std::fmt::Debug for UiServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiServing")
            .field("url", &self.url)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("loopback", &self.loopback)
            .field("already", &self.already)
            .finish_non_exhaustive()
    }
}

/// The daemon as the IPC server sees it. The server calls these on its own (`LocalSet`) thread,
/// so they must return at once.
pub trait DaemonControl: Send + Sync {
    /// The daemon's description, as of now (the uptime changes).
    fn info(&self) -> DaemonInfo;

    /// Asks the daemon to stop gracefully (stop accepting, finish in-flight calls, flush the
    /// writer, remove the socket). Returns at once; the daemon stops the server through the
    /// `shutdown` future it gave [`crate::Server::serve`].
    fn shutdown(&self);

    /// Serves the web dashboard as `request` says (or says where it already does). Binds at
    /// once and returns; the serving runs on the daemon's runtime.
    fn serve_ui(&self, request: &UiRequest) -> Result<UiServing, RemoteError> {
        let _ = request;
        Err(RemoteError::new(
            ErrorKind::Unavailable,
            "this daemon cannot serve the web dashboard",
        ))
    }
}
