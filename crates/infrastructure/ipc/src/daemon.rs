//! What the server needs from the daemon that hosts it besides the application API: a
//! description of itself ([`DaemonInfo`]) and a way to ask it to stop ([`DaemonControl`]).

use std::path::PathBuf;
use std::time::Duration;

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
}
