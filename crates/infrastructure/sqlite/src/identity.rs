//! The identity of the database's files (device and inode of the database and of its
//! write-ahead log), taken when the store opens them and checked before every acknowledgement
//! and on the checkpointer's timer. A file deleted or replaced under a running store means that
//! what it commits goes to a file nobody will open again: from then on the store refuses every
//! write with [`StoreError::Lost`] instead of acknowledging writes that a restart would not see.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use maos_application::StoreError;

/// Device and inode.
type Id = (u64, u64);

/// The files a store opened, and whether they are still the ones on disk.
#[derive(Debug)]
pub(crate) struct FileIdentity {
    path: PathBuf,
    wal_path: PathBuf,
    db: Id,
    /// The write-ahead log's identity once it exists.
    wal: Mutex<Option<Id>>,
    /// What happened, once something did: the store never writes again.
    lost: OnceLock<String>,
}

fn id_of(path: &Path) -> std::io::Result<Id> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

impl FileIdentity {
    /// Takes the identity of `path` (which must exist) and of its `-wal` file if there is one.
    pub(crate) fn take(path: &Path) -> Result<FileIdentity, StoreError> {
        let db = id_of(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_path = PathBuf::from(wal_path);
        let wal = id_of(&wal_path).ok();
        Ok(FileIdentity {
            path: path.to_owned(),
            wal_path,
            db,
            wal: Mutex::new(wal),
            lost: OnceLock::new(),
        })
    }

    /// Ok while the files on disk are the ones the store opened; otherwise (and for ever
    /// after) the error that says what happened.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if let Some(detail) = self.lost.get() {
            return Err(self.error(detail));
        }
        let problem = match id_of(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("the database file was deleted while the daemon used it".to_owned())
            }
            Err(e) => Some(format!("the database file cannot be checked: {e}")),
            Ok(id) if id != self.db => Some(
                "the database file was replaced by another file while the daemon used it"
                    .to_owned(),
            ),
            Ok(_) => self.check_wal(),
        };
        match problem {
            None => Ok(()),
            Some(detail) => {
                let detail = self.lost.get_or_init(|| detail);
                tracing::error!(path = %self.path.display(), "{detail}: refusing every write from now on");
                Err(self.error(detail))
            }
        }
    }

    /// What happened, if the files were lost.
    pub(crate) fn lost(&self) -> Option<String> {
        self.lost.get().cloned()
    }

    fn check_wal(&self) -> Option<String> {
        let mut known = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (id_of(&self.wal_path), *known) {
            (Ok(id), None) => {
                *known = Some(id);
                None
            }
            (Ok(id), Some(k)) if id != k => Some(format!(
                "its write-ahead log {} was replaced by another file while the daemon used it",
                self.wal_path.display()
            )),
            (Ok(_), Some(_)) => None,
            (Err(e), Some(_)) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "its write-ahead log {} was deleted while the daemon used it",
                self.wal_path.display()
            )),
            (Err(_), _) => None,
        }
    }

    fn error(&self, detail: &str) -> StoreError {
        StoreError::Lost {
            path: self.path.display().to_string(),
            detail: detail.to_owned(),
        }
    }
}
