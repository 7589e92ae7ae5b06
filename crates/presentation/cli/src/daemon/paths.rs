//! Where a data directory's daemon lives: its socket under the runtime directory, its lock and
//! its log in the data directory. One daemon per data directory, so the socket's name is derived
//! from the data directory's canonical path.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files of one data directory's daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DaemonPaths {
    /// The data directory, canonical.
    pub(crate) data_dir: PathBuf,
    /// The Unix socket the daemon listens on.
    pub(crate) socket: PathBuf,
    /// The lock that makes the daemon the only one for this data directory.
    pub(crate) lock: PathBuf,
    /// Where a detached daemon writes its log.
    pub(crate) log: PathBuf,
}

/// Why the paths could not be prepared.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare the socket directory {path}: {source}")]
    SocketDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the socket directory {path} is not safe: {why}")]
    Unsafe { path: PathBuf, why: String },
}

/// The uid this process runs as (the owner of `/proc/self`).
pub(crate) fn current_uid() -> std::io::Result<u32> {
    std::fs::metadata("/proc/self").map(|m| m.uid())
}

/// FNV-1a, 64 bits: a stable name for a path (not a security boundary; the directory is).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The base of the socket directory: `$XDG_RUNTIME_DIR` when it is set to an absolute path,
/// otherwise `/tmp/maos-<uid>` (created 0700 and checked on every use).
pub(crate) fn runtime_base(xdg_runtime_dir: Option<&std::ffi::OsStr>, uid: u32) -> PathBuf {
    match xdg_runtime_dir.map(Path::new) {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        _ => PathBuf::from(format!("/tmp/maos-{uid}")),
    }
}

/// Checks `XDG_RUNTIME_DIR`: it must be a directory of the user's that nobody else may write
/// to (it is not ours to change, so a bad one is refused, not fixed).
fn check_runtime_dir(dir: &Path, uid: u32) -> Result<(), PathError> {
    let meta = std::fs::metadata(dir).map_err(|source| PathError::SocketDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let unsafe_because = |why: String| PathError::Unsafe {
        path: dir.to_path_buf(),
        why,
    };
    if !meta.is_dir() {
        return Err(unsafe_because("XDG_RUNTIME_DIR is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(unsafe_because(format!(
            "XDG_RUNTIME_DIR belongs to uid {}, not to you (uid {uid})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "XDG_RUNTIME_DIR is writable by other users (mode {mode:04o})"
        )));
    }
    Ok(())
}

/// Creates `dir` (mode 0700) if missing and checks that it is a real directory (not a symlink)
/// that belongs to `uid` and that nobody else may enter.
fn private_dir(dir: &Path, uid: u32) -> Result<(), PathError> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(source) => {
            return Err(PathError::SocketDir {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| PathError::SocketDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(PathError::Unsafe {
            path: dir.to_path_buf(),
            why: "it is a symbolic link, not a directory (another user may have planted it)".into(),
        });
    }
    if !meta.is_dir() {
        return Err(PathError::Unsafe {
            path: dir.to_path_buf(),
            why: "it is not a directory".into(),
        });
    }
    if meta.uid() != uid {
        return Err(PathError::Unsafe {
            path: dir.to_path_buf(),
            why: format!("it belongs to uid {}, not to you (uid {uid})", meta.uid()),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        // Ours but too open (made by hand, say): close it rather than refuse.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| PathError::SocketDir {
                path: dir.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

/// Prepares the daemon's paths for `data_dir` (created if missing).
pub(crate) fn prepare(data_dir: &Path) -> Result<DaemonPaths, PathError> {
    crate::compose::private_data_dir(data_dir).map_err(|source| PathError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let data_dir = data_dir
        .canonicalize()
        .map_err(|source| PathError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let uid = current_uid().map_err(|source| PathError::SocketDir {
        path: "/proc/self".into(),
        source,
    })?;
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let base = runtime_base(xdg.as_deref(), uid);
    if xdg.as_deref().is_some_and(|x| Path::new(x).is_absolute()) {
        check_runtime_dir(&base, uid)?;
    } else {
        // /tmp/maos-<uid>: ours, a real directory, 0700 (another user could have made it
        // first, or planted a symlink there).
        private_dir(&base, uid)?;
    }
    let dir = base.join("maos");
    private_dir(&dir, uid)?;
    let name = format!(
        "{:016x}.sock",
        fnv1a(data_dir.as_os_str().as_encoded_bytes())
    );
    Ok(DaemonPaths {
        socket: dir.join(name),
        lock: data_dir.join("daemon.lock"),
        log: data_dir.join("daemon.log"),
        data_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_base_falls_back_to_a_per_user_tmp_dir() {
        assert_eq!(
            runtime_base(Some("/run/user/7".as_ref()), 7),
            PathBuf::from("/run/user/7")
        );
        assert_eq!(
            runtime_base(Some("relative".as_ref()), 7),
            PathBuf::from("/tmp/maos-7")
        );
        assert_eq!(runtime_base(None, 7), PathBuf::from("/tmp/maos-7"));
    }

    #[test]
    fn socket_names_are_stable_and_differ_per_data_dir() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"/home/a/maos"), fnv1a(b"/home/b/maos"));
    }

    #[test]
    fn private_dirs_are_created_0700_and_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = current_uid().unwrap();
        let dir = tmp.path().join("x/maos");
        private_dir(&dir, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(matches!(
            private_dir(&dir, uid + 1),
            Err(PathError::Unsafe { .. })
        ));
    }

    #[test]
    fn a_planted_symlink_another_users_or_an_open_runtime_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = current_uid().unwrap();
        // A symlink where /tmp/maos-<uid> should be a directory of ours.
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = tmp.path().join("maos-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = private_dir(&link, uid).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // Another user's directory.
        let err = private_dir(&target, uid + 1).unwrap_err();
        assert!(err.to_string().contains("belongs to uid"), "{err}");
        // A directory of ours that others could enter is tightened, not refused.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open, uid).unwrap();
        let mode = std::fs::metadata(&open).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // XDG_RUNTIME_DIR is checked, never changed.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_runtime_dir(&open, uid).unwrap_err();
        assert!(err.to_string().contains("writable by other users"), "{err}");
        let err = check_runtime_dir(&target, uid + 1).unwrap_err();
        assert!(err.to_string().contains("belongs to uid"), "{err}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_runtime_dir(&open, uid).unwrap();
    }
}
