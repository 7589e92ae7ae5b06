//! The daemon lock: an exclusive lock on `<data-dir>/daemon.lock`, held for the daemon's whole
//! life, that makes it the only daemon of its data directory. The file holds the holder's pid so
//! that a second daemon can say who is in the way. The operating system releases the lock when
//! the process dies, however it dies. The file also names the socket the holder listens on, so a
//! client whose runtime directory differs (another `XDG_RUNTIME_DIR`) still finds the daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A held daemon lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DaemonLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("another daemon (pid {pid}) already serves this data directory")]
    Held { pid: String },
    #[error("cannot take the daemon lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl DaemonLock {
    /// Takes the lock at `path` without waiting, and records `pid` and `socket` in it.
    pub(crate) fn acquire(path: &Path, pid: u32, socket: &Path) -> Result<DaemonLock, LockError> {
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut held = String::new();
                let _ = file.read_to_string(&mut held);
                let pid = held.lines().next().unwrap_or("").trim();
                return Err(LockError::Held {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_owned()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{pid}\n{}", socket.display()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DaemonLock { _file: file })
    }

    /// The socket named in the lock file at `path`, if any.
    pub(crate) fn recorded_socket(path: &Path) -> Option<std::path::PathBuf> {
        let text = std::fs::read_to_string(path).ok()?;
        let socket = text.lines().nth(1)?.trim();
        (!socket.is_empty()).then(|| socket.into())
    }

    /// True when some process holds the lock at `path` now.
    pub(crate) fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_pid_and_the_lock_frees_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("daemon.lock");
        assert!(!DaemonLock::is_held(&path));
        let first = DaemonLock::acquire(&path, 4242, Path::new("/run/x.sock")).unwrap();
        assert_eq!(
            DaemonLock::recorded_socket(&path),
            Some("/run/x.sock".into())
        );
        assert!(DaemonLock::is_held(&path));
        match DaemonLock::acquire(&path, 7, Path::new("/run/y.sock")) {
            Err(LockError::Held { pid }) => assert_eq!(pid, "4242"),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!DaemonLock::is_held(&path));
        let again = DaemonLock::acquire(&path, 7, Path::new("/run/y.sock")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "7\n/run/y.sock\n");
        drop(again);
    }
}
