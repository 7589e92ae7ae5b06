//! The checkpointer thread: copies committed pages from the write-ahead log into the database
//! file in the background, so that the writer never stalls on a checkpoint while callers wait.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use maos_application::StoreError;
use rusqlite::Connection;
use tracing::{debug, warn};

use crate::identity::FileIdentity;

/// How often the log is checkpointed.
const EVERY: Duration = Duration::from_millis(250);

/// Handle to the checkpointer thread; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on its own connection.
    pub(crate) fn start(
        path: &Path,
        conn: Connection,
        identity: Arc<FileIdentity>,
    ) -> Result<Checkpointer, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let name = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("maos-sqlite-checkpoint".into())
            .spawn(move || {
                // Wake every EVERY until told to stop (or the handle is gone).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    // The timer of the files' check: a store whose files are gone writes
                    // nothing more, not even a checkpoint.
                    if identity.check().is_err() {
                        continue;
                    }
                    match passive(&conn) {
                        Ok((log, done)) if log > 0 => debug!(log, done, "checkpoint"),
                        Ok(_) => {}
                        Err(e) => warn!(db = %name, error = %e, "checkpoint failed; will retry"),
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// A passive checkpoint on `conn`: it never blocks the writer or the readers, and copies what
/// it can. Answers the frames in the log and how many of them are now in the database file.
pub(crate) fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
