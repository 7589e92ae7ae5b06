//! Who may talk to the daemon: only processes of the daemon's own user. The peer's uid comes from
//! the socket (`SO_PEERCRED`, through tokio); the daemon's own from `/proc/self/status`, so that
//! no `unsafe` system call is needed.

use std::io;

/// The effective uid of this process, from `/proc/self/status`.
pub fn current_uid() -> io::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    effective_uid(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/self/status has no readable Uid line",
        )
    })
}

/// The effective uid in the text of `/proc/<pid>/status`: the second number of the `Uid:` line
/// (real, effective, saved, file system).
pub fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Why a connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing connection from uid {peer}: the daemon serves only uid {own}")]
pub struct Refused {
    pub peer: u32,
    pub own: u32,
}

/// Whether a peer of uid `peer` may use a daemon running as uid `own`: only the same user may.
pub fn check_peer(peer: u32, own: u32) -> Result<(), Refused> {
    if peer == own {
        Ok(())
    } else {
        Err(Refused { peer, own })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_uid_is_served() {
        assert_eq!(check_peer(1000, 1000), Ok(()));
        let refused = check_peer(1001, 1000).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refusing connection from uid 1001: the daemon serves only uid 1000"
        );
        // root is no exception: a daemon of another user does not serve it either.
        assert!(check_peer(0, 1000).is_err());
    }

    #[test]
    fn the_effective_uid_is_read_from_proc_status() {
        let status = "Name:\tmaos\nUmask:\t0022\nState:\tS (sleeping)\n\
                      Uid:\t1000\t1001\t1002\t1003\nGid:\t100\t100\t100\t100\n";
        assert_eq!(effective_uid(status), Some(1001));
        assert_eq!(effective_uid("Name:\tx\n"), None);
        assert_eq!(effective_uid("Uid:\t1000\n"), None);
        assert_eq!(effective_uid("Uid:\tx\ty\n"), None);
        // This process can read its own.
        assert!(current_uid().is_ok());
    }
}
