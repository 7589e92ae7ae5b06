//! MAOS's store on SQLite: one database file in WAL mode with `synchronous=FULL`, schema changes
//! through embedded refinery migrations, one writer thread that commits queued use cases in
//! groups, and read connections for queries.
//!
//! ```text
//! callers ──write(job)──▶ queue ──▶ writer thread: BEGIN; the group's jobs; COMMIT ──▶ answers
//! callers ──query──────▶ reader pool (own connections, committed snapshots)
//! followers ──wait_for_events──▶ commit signal (the writer notifies it after each commit)
//! ```

mod checkpoint;
mod identity;
mod meter;
mod notify;
mod read;
mod rows;
mod tx;
mod writer;

pub use crate::meter::WorkMeter;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use maos_application::ports::Scanned;
use maos_application::{
    AgentFilter, MemoryFilter, MemoryHits, MemoryList, MemoryPage, Page, ReadStore, StatusReport,
    StoreError, StoredEvent, TaskFilter, TaskPage, Transaction, UnitOfWork,
};
use maos_domain::{
    Agent, AgentName, FencingToken, Memory, MemoryId, MemoryQuery, Orchestration, OrchestrationId,
    Task, TaskId, TaskState, Timestamp,
};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tracing::{debug, info};

use crate::checkpoint::Checkpointer;
use crate::identity::FileIdentity;
use crate::notify::{CommitSignal, Waited};
use crate::writer::{Deliver, Job, Writer};

mod embedded {
    refinery::embed_migrations!("../../../migrations");
}

/// `PRAGMA application_id` of a MAOS database: "MAOS" in ASCII.
pub const APPLICATION_ID: i32 = 0x4D41_4F53;

/// The durability settings of the writer's connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// `PRAGMA journal_mode`: `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is `FULL`.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Idle read connections kept for reuse; a connection handed back beyond these is closed.
const IDLE_READERS: usize = 8;

/// The most read connections open at once: a read that finds them all in use waits for one.
pub const MAX_READERS: usize = 16;

/// The reader pool: idle connections, and how many are open (idle or in use).
#[derive(Debug, Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last handle stops the writer
/// after it has committed everything queued.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    // Dropped in this order: the writer commits what is queued, then the checkpointer stops.
    // Neither exists in a store opened for reading only.
    writer: Option<Writer>,
    _checkpointer: Option<Checkpointer>,
    readers: Mutex<Readers>,
    /// Notified when a read connection is handed back or closed.
    reader_free: Condvar,
    /// The files as opened: checked before every acknowledgement and on a timer.
    identity: Arc<FileIdentity>,
    /// The newest event's seq, advanced by the writer after each commit; followers wait on it.
    commits: Arc<CommitSignal>,
    /// Counts the work of the writer's and the readers' connections, when asked to.
    meter: Option<WorkMeter>,
}

fn open_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn not_maos(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::NotMaos {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

fn damaged(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The first 100 bytes of the file (the SQLite header), when it has that many.
fn header(path: &Path) -> Option<[u8; 100]> {
    let mut head = [0_u8; 100];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()
        .map(|()| head)
}

/// How a file that SQLite cannot read is reported: damaged when it starts as an SQLite database
/// does (a corrupt or cut MAOS database, most likely), not a MAOS database otherwise.
fn unreadable(path: &Path, e: &rusqlite::Error) -> StoreError {
    let detail = format!("SQLite cannot read it ({e})");
    if header(path).is_some_and(|h| h.starts_with(SQLITE_MAGIC)) {
        damaged(path, detail)
    } else {
        not_maos(path, detail)
    }
}

/// A file shorter than its header says it is was cut (a copy that stopped, a full disk): SQLite
/// would read what is left without noticing until it needs a missing page. Not checked while a
/// write-ahead log is beside it: a checkpoint cut by a crash is finished from the log.
fn check_length(path: &Path) -> Result<(), StoreError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let Some(h) = header(path) else {
        return Ok(());
    };
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // The size in the header is only valid when "version-valid-for" matches the change counter.
    if !h.starts_with(SQLITE_MAGIC) || be32(92) != be32(24) || pages == 0 {
        return Ok(());
    }
    let expected = pages.saturating_mul(page_size);
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(expected);
    if len < expected {
        return Err(damaged(
            path,
            format!("the file is cut short: {len} bytes, but its header says {expected}"),
        ));
    }
    Ok(())
}

/// What `PRAGMA quick_check` finds wrong (its first lines), or `None` when it finds nothing.
fn quick_check(conn: &Connection) -> Option<String> {
    let found: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA quick_check(3)")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match found {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => None,
        Ok(lines) => Some(format!("PRAGMA quick_check reports: {}", lines.join("; "))),
        Err(e) => Some(format!("PRAGMA quick_check fails: {e}")),
    }
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| open_err(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| open_err(path, e))?;
    // Every statement of the store stays prepared (the default cache of 16 is too small, and
    // re-preparing costs more than running most statements).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: a plan does not depend on the values bound to
    // it. Without it, a statement whose parameter the planner looked at (against a partial
    // index's condition, say) is prepared again each time it is bound anew: loading the
    // attempts of 10,000 tasks spent half its time re-preparing one statement.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| open_err(path, e))?;
    Ok(conn)
}

/// Creates the database file empty and private (0600, whatever the umask) when it does not
/// exist: SQLite would create it 0644, and gives its write-ahead log and shared-memory files the
/// database file's mode. An existing file that others can read is tightened.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match std::fs::OpenOptions::new().read(true).open(path) {
                Ok(f) => f,
                // Let SQLite report what is wrong with it.
                Err(_) => return Ok(()),
            }
        }
        Err(e) => return Err(open_err(path, e)),
    };
    let mode = file
        .metadata()
        .map_err(|e| open_err(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 && mode & 0o170000 == 0o100000 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| open_err(path, e))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::set_permissions(side, std::fs::Permissions::from_mode(0o600));
        }
    }
    Ok(())
}

/// Refuses a file that is not a MAOS database before anything is written to it. Returns true
/// when the database is empty (new).
fn check_identity(path: &Path, conn: &Connection) -> Result<bool, StoreError> {
    check_length(path)?;
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| unreadable(path, &e))?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| unreadable(path, &e))?;
    match app_id {
        APPLICATION_ID => Ok(false),
        0 if objects == 0 => Ok(true),
        0 => Err(not_maos(
            path,
            format!("it is an SQLite database of another program ({objects} schema objects)"),
        )),
        other => Err(not_maos(
            path,
            format!("it belongs to another program (application id {other:#x})"),
        )),
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it if it does not exist (its directory must), and
    /// brings its schema up to date. A file that is not a MAOS database is refused untouched; a
    /// damaged one (cut short, unreadable pages, failing `PRAGMA quick_check`) is
    /// [`StoreError::Damaged`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, None)
    }

    /// Opens the database as [`SqliteStore::open`] does, and counts the work SQLite does for
    /// the store on `meter` (the writer's connection and every read connection; the
    /// checkpointer's is not counted). Counting slows every statement: for tests and
    /// diagnostics, not for a daemon.
    pub fn open_metered(path: &Path, meter: &WorkMeter) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Some(meter.clone()))
    }

    fn open_with(path: &Path, meter: Option<WorkMeter>) -> Result<SqliteStore, StoreError> {
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut conn = connect(path, flags)?;
        let fresh = check_identity(path, &conn)?;
        let last_seq = match Self::prepare(path, &mut conn, fresh) {
            Ok(seq) => seq,
            // A MAOS database that fails to open for another reason than a foreign schema may
            // be damaged; then that is what to say.
            Err(e @ StoreError::NotMaos { .. }) => return Err(e),
            Err(e) => return Err(quick_check(&conn).map_or(e, |found| damaged(path, found))),
        };
        let commits = Arc::new(CommitSignal::new(last_seq));
        let identity = Arc::new(FileIdentity::take(path)?);
        if let Some(m) = &meter {
            m.install(&mut conn).map_err(|e| open_err(path, e))?;
        }
        let writer = Writer::start(conn, Arc::clone(&commits), Arc::clone(&identity))?;
        let checkpointer = Checkpointer::start(
            path,
            connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?,
            Arc::clone(&identity),
        )?;
        debug!(path = %path.display(), "store open");
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Some(writer),
            _checkpointer: Some(checkpointer),
            readers: Mutex::new(Readers::default()),
            reader_free: Condvar::new(),
            identity,
            commits,
            meter,
        })
    }

    /// Sets the connection's pragmas, brings the schema up to date, and returns the newest
    /// event's seq.
    fn prepare(path: &Path, conn: &mut Connection, fresh: bool) -> Result<u64, StoreError> {
        // `temp_store` stays at its default (a file): kept in memory, a savepoint's
        // sub-journal is truncated by walking it from its start at the end of every statement
        // that journaled a page allocated since the savepoint began, which makes one large job
        // (10,000 creates that each assign) quadratic. On a file it spills past 64 KiB and is
        // never truncated.
        //
        // The page cache is 8 MiB, not more: a B-tree split that renumbers pages parks one at
        // the lock-byte page (number 262,145), and the commit after it then drops pages past
        // the database's end by walking the whole cache. With 64 MiB that walk was 13 % of the
        // writer's time in a drain (docs/benchmarks.md).
        //
        // `journal_size_limit`: when the log starts over (after the writer's checkpoint past
        // `writer::WAL_LIMIT`), its file is cut back to 64 MiB instead of keeping its largest
        // size on disk.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(|e| open_err(path, e))?;
        if fresh {
            info!(path = %path.display(), "creating a new MAOS database");
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|e| open_err(path, e))?;
        }
        let report = embedded::migrations::runner().run(conn).map_err(|e| {
            let text = e.to_string();
            // Applied migrations that this binary lacks, or has with other contents: the schema
            // was written by another (probably newer) MAOS. Matched on the kind, not the text:
            // refinery's message for a divergent migration does not say "divergent".
            if matches!(
                e.kind(),
                refinery::error::Kind::MissingVersion(_)
                    | refinery::error::Kind::DivergentVersion(..)
            ) {
                not_maos(
                    path,
                    format!("its schema is from a different (probably newer) MAOS: {text}"),
                )
            } else {
                open_err(path, format!("migration failed: {text}"))
            }
        })?;
        for m in report.applied_migrations() {
            info!(migration = %m, "applied migration");
        }
        read::last_seq(conn)
    }

    /// What happened to the database's files, once they were deleted or replaced under the
    /// store (it then refuses every write); `None` while they are the ones it opened. Checks
    /// the files now.
    pub fn lost(&self) -> Option<String> {
        let _ = self.identity.check();
        self.identity.lost()
    }

    /// SQLite's own quick check of the database file at `path` (`PRAGMA quick_check`), read
    /// only, beside a running daemon: what it found wrong, one line each (empty: nothing). The
    /// file is not created when it does not exist.
    pub fn quick_check(path: &Path) -> Result<Vec<String>, StoreError> {
        let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| open_err(path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| open_err(path, e))?;
        let mut found = Vec::new();
        for row in rows {
            let line = row.map_err(|e| open_err(path, e))?;
            if line != "ok" {
                found.push(line);
            }
        }
        Ok(found)
    }

    /// Opens an existing MAOS database for reading only, even while a daemon writes to it (WAL
    /// readers do not block its writer, nor it them): no migration, no writer, no checkpoints;
    /// every connection is `query_only`, and a write fails with [`StoreError::WriterGone`]. A
    /// missing, empty or foreign file is refused untouched.
    pub fn open_for_reading(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(|e| open_err(path, e))?;
        if check_identity(path, &conn)? {
            return Err(not_maos(path, "it is empty"));
        }
        let commits = Arc::new(CommitSignal::new(read::last_seq(&conn)?));
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: None,
            _checkpointer: None,
            readers: Mutex::new(Readers {
                idle: vec![conn],
                open: 1,
            }),
            reader_free: Condvar::new(),
            identity: Arc::new(FileIdentity::take(path)?),
            commits,
            meter: None,
        })
    }

    fn writer(&self) -> Result<&Writer, StoreError> {
        self.writer.as_ref().ok_or(StoreError::WriterGone)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer connection's durability settings, read on the writer thread (for diagnostics
    /// and tests: these pragmas are per connection, so no other connection can see them).
    pub fn writer_settings(&self) -> Result<WriterSettings, StoreError> {
        let (send, answer) = mpsc::sync_channel::<Result<WriterSettings, StoreError>>(1);
        let job: Job = Box::new(move |tx| {
            let settings = tx.and_then(|tx| tx.settings());
            let send = send.clone();
            let deliver: Deliver = Box::new(move |_| {
                let _ = send.send(settings);
            });
            (true, deliver)
        });
        self.writer()?.submit(job)?;
        answer.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// The work the scheduler's ready-queue queries have done on the writer's connection since
    /// the store opened, in SQLite virtual-machine steps (for tests and diagnostics: the cost of
    /// finding work for an agent, counted rather than timed).
    pub fn ready_queue_steps(&self) -> Result<u64, StoreError> {
        let (send, answer) = mpsc::sync_channel::<Result<u64, StoreError>>(1);
        let job: Job = Box::new(move |tx| {
            let steps = tx.and_then(|tx| tx.ready_queue_steps());
            let send = send.clone();
            let deliver: Deliver = Box::new(move |_| {
                let _ = send.send(steps);
            });
            (true, deliver)
        });
        self.writer()?.submit(job)?;
        answer.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let lease = self.take_reader()?;
        let conn = lease.conn()?;
        // One snapshot for the whole read: a task and its attempts, a page and the attempts of
        // its tasks, are read as of the same commit.
        let result = rows::run(conn, "BEGIN DEFERRED")
            .map_err(rows::backend)
            .and_then(|()| {
                let result = f(conn);
                let end = rows::run(conn, if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
                match (result, end) {
                    (Ok(r), Ok(())) => Ok(r),
                    (Ok(_), Err(e)) => Err(rows::backend(e)),
                    (Err(e), _) => Err(e),
                }
            });
        drop(lease);
        result
    }

    fn lock_readers(&self) -> MutexGuard<'_, Readers> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle read connection, or a new one while fewer than [`MAX_READERS`] are open, or else
    /// the next one handed back.
    fn take_reader(&self) -> Result<Lease<'_>, StoreError> {
        let mut pool = self.lock_readers();
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok(Lease {
                    store: self,
                    conn: Some(c),
                });
            }
            if pool.open < MAX_READERS {
                break;
            }
            pool = self
                .reader_free
                .wait(pool)
                .unwrap_or_else(|p| p.into_inner());
        }
        pool.open += 1;
        drop(pool);
        let opened = connect(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|mut c| {
            c.execute_batch("PRAGMA query_only = ON;")
                .map_err(rows::backend)?;
            if let Some(m) = &self.meter {
                m.install(&mut c).map_err(rows::backend)?;
            }
            Ok(c)
        });
        // A failed open gives its place back (the lease's drop).
        let mut lease = Lease {
            store: self,
            conn: None,
        };
        lease.conn = Some(opened?);
        Ok(lease)
    }

    /// The read connections open now, idle or in use (for diagnostics and tests).
    pub fn open_readers(&self) -> usize {
        self.lock_readers().open
    }
}

/// A read connection in use, handed back to the pool (or closed, beyond [`IDLE_READERS`]) when
/// dropped, whatever happened to the read.
struct Lease<'s> {
    store: &'s SqliteStore,
    conn: Option<Connection>,
}

impl Lease<'_> {
    /// The connection (always there until the lease drops).
    fn conn(&self) -> Result<&Connection, StoreError> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Backend("a read connection was lost".into()))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pool = self.store.lock_readers();
        match self.conn.take() {
            Some(c) if pool.idle.len() < IDLE_READERS => pool.idle.push(c),
            closed => {
                pool.open = pool.open.saturating_sub(1);
                drop(pool);
                drop(closed);
            }
        }
        self.store.reader_free.notify_one();
    }
}

impl UnitOfWork for SqliteStore {
    fn write<R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: Fn(&mut dyn Transaction) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (send, answer) = mpsc::sync_channel::<Result<R, E>>(1);
        // The writer may run the job more than once (a group undone by another job's failure);
        // only the run whose result it delivers answers the caller.
        let job: Job = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => work(tx),
                Err(e) => Err(E::from(e)),
            };
            let ok = result.is_ok();
            let send = send.clone();
            let deliver: Deliver = Box::new(move |commit| {
                let out = match commit {
                    Ok(()) => result,
                    Err(e) => Err(E::from(e)),
                };
                let _ = send.send(out);
            });
            (ok, deliver)
        });
        self.writer()
            .map_err(E::from)?
            .submit(job)
            .map_err(E::from)?;
        answer.recv().map_err(|_| E::from(StoreError::WriterGone))?
    }
}

impl ReadStore for SqliteStore {
    fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        self.read(|c| rows::load_agent(c, name))
    }

    fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        self.read(|c| read::agents(c, filter))
    }

    fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.read(|c| rows::load_task(c, id))
    }

    fn task_fencing(
        &self,
        ids: &[TaskId],
    ) -> Result<Vec<(TaskId, TaskState, FencingToken)>, StoreError> {
        self.read(|c| read::task_fencing(c, ids))
    }

    fn live_leases(&self) -> Result<Vec<(TaskId, FencingToken, Timestamp)>, StoreError> {
        self.read(read::live_leases)
    }

    fn task_ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<TaskId>, StoreError> {
        self.read(|c| read::task_ids_with_prefix(c, prefix, limit))
    }

    fn tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, StoreError> {
        self.read(|c| read::tasks(c, filter, page))
    }

    fn orchestration(&self, id: OrchestrationId) -> Result<Option<Orchestration>, StoreError> {
        self.read(|c| rows::load_orchestration(c, id))
    }

    fn orchestration_ids_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<OrchestrationId>, StoreError> {
        self.read(|c| read::orchestration_ids_with_prefix(c, prefix, limit))
    }

    fn orchestrations(&self) -> Result<Vec<Orchestration>, StoreError> {
        self.read(read::orchestrations)
    }

    fn memory(&self, id: MemoryId) -> Result<Option<Memory>, StoreError> {
        self.read(|c| rows::load_memory(c, id))
    }

    fn memory_ids_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<MemoryId>, StoreError> {
        self.read(|c| read::memory_ids_with_prefix(c, prefix, limit))
    }

    fn memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
        now: Timestamp,
    ) -> Result<MemoryList, StoreError> {
        self.read(|c| read::memories(c, filter, page, now))
    }

    fn search_memories(
        &self,
        query: &MemoryQuery,
        filter: &MemoryFilter,
        limit: usize,
        now: Timestamp,
    ) -> Result<MemoryHits, StoreError> {
        self.read(|c| read::search_memories(c, query, filter, limit, now))
    }

    fn tasks_awaiting_approval(&self) -> Result<Vec<Task>, StoreError> {
        self.read(|conn| {
            rows::query_tasks(
                conn,
                &format!(
                    "SELECT {} FROM tasks WHERE pending_since IS NOT NULL \
                     ORDER BY pending_since, id",
                    rows::TASK_COLS
                ),
                [],
            )
        })
    }

    fn finished_tasks_with_worktrees(&self, before: Timestamp) -> Result<Vec<Task>, StoreError> {
        self.read(|conn| {
            rows::query_tasks(
                conn,
                &format!(
                    "SELECT {} FROM tasks WHERE worktree = 1 \
                     AND state IN ('completed', 'cancelled') AND updated_at <= ?1 \
                     ORDER BY updated_at, id",
                    rows::TASK_COLS
                ),
                rusqlite::params![before.as_millis()],
            )
        })
    }

    fn status(&self) -> Result<StatusReport, StoreError> {
        self.read(read::status)
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|c| read::events_after(c, after, limit))
    }

    fn events_of(&self, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|c| read::events_of(c, aggregate_id))
    }

    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<(), StoreError> {
        self.read(|c| read::scan(c, visit))
    }

    fn wait_for_events(&self, after: u64, timeout: Duration) -> Result<u64, StoreError> {
        match self.commits.wait(after, timeout) {
            Waited::Reached(last) => Ok(last),
            Waited::TimedOut(known) => {
                // Another process (or another store on this file) may have committed: its
                // commits do not reach our signal, so look at the file itself, and wake this
                // store's other waiters if the log grew.
                let last = self.read(read::last_seq)?;
                self.commits.advance(last);
                Ok(last.max(known))
            }
        }
    }
}
