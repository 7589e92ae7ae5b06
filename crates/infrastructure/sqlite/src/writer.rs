//! The single writer thread: it owns the write connection, takes queued jobs, runs as many as are
//! waiting in one transaction (each inside its own savepoint, so one job's failure undoes only
//! that job), commits once, and only then answers every caller of the group. After each commit
//! it reads the newest event's seq and wakes the followers waiting for it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use maos_application::StoreError;
use rusqlite::Connection;
use tracing::{debug, error};

use crate::identity::FileIdentity;
use crate::notify::CommitSignal;
use crate::read::last_seq;
use crate::tx::SqliteTx;

/// Delivers a job's result once the group's commit is known: `Ok(())` if it committed.
pub(crate) type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued unit of work: runs inside the transaction (or is told why there is none) and says
/// whether it succeeded (and so must be kept) and how to deliver its result after the commit.
pub(crate) type Job =
    Box<dyn FnOnce(Result<&mut SqliteTx<'_>, StoreError>) -> (bool, Deliver) + Send>;

/// The largest number of jobs committed together.
const MAX_GROUP: usize = 512;
/// Frames the write-ahead log may hold (64 MiB of 4 KiB pages) before the writer checkpoints
/// it itself, between two groups. The checkpointer thread copies frames in the background, but
/// while the writer commits without pause it never catches up, and SQLite starts the log over
/// only after a checkpoint copied all of it: under sustained load the log grew without bound
/// (11 GB during one benchmark run). The writer's own checkpoint copies what is left while
/// nothing is written, so the next commit starts the log over (and `journal_size_limit`
/// truncates the file).
const WAL_LIMIT: u32 = 16_384;
/// Queued jobs beyond which callers wait before they can enqueue.
const QUEUE_DEPTH: usize = 4096;

/// Handle to the writer thread. Dropping it closes the queue; the thread finishes what is queued,
/// commits, and exits.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it advances `commits` after every commit.
    pub(crate) fn start(
        mut conn: Connection,
        commits: Arc<CommitSignal>,
        identity: Arc<FileIdentity>,
    ) -> Result<Writer, StoreError> {
        // SQLite tells the hook, after each commit, how many frames the log holds.
        let frames = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&frames);
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                seen.store(u32::try_from(n).unwrap_or(0), Ordering::Relaxed);
                Ok(())
            },
        ))
        .map_err(|e| StoreError::Backend(format!("cannot watch the write-ahead log: {e}")))?;
        let (queue, jobs) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("maos-sqlite-writer".into())
            .spawn(move || writer_loop(conn, jobs, &commits, &identity, &frames))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a job. Fails only if the writer has stopped.
    pub(crate) fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.queue
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(job)
            .map_err(|_| StoreError::WriterGone)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: takes the queued jobs in groups, commits each group, until the queue closes.
fn writer_loop(
    mut conn: Connection,
    jobs: Receiver<Job>,
    commits: &CommitSignal,
    identity: &FileIdentity,
    frames: &AtomicU32,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Files deleted or replaced under the store: nothing more is written (or answered as
        // written).
        if let Err(e) = identity.check() {
            for job in group {
                let (_, deliver) = job(Err(e.clone()));
                deliver(Ok(()));
            }
            continue;
        }
        commit_group(&mut conn, group, commits, identity);
        if frames.load(Ordering::Relaxed) >= WAL_LIMIT {
            checkpoint(&conn);
            frames.store(0, Ordering::Relaxed);
        }
    }
    debug!("writer queue closed; writer thread exits");
}

/// Copies the log into the database file while nothing is written ([`WAL_LIMIT`]). Passive: it
/// waits for no reader (what a reader still needs stays, and the log starts over at a later
/// checkpoint) and gives way to the checkpointer thread if that one is at work.
fn checkpoint(conn: &Connection) {
    match crate::checkpoint::passive(conn) {
        Ok((log, done)) => debug!(log, done, "the writer checkpointed the log"),
        Err(e) => debug!(error = %e, "the writer could not checkpoint the log"),
    }
}

/// Tells the followers how far the log reaches now (one lookup of the events table's last row).
fn signal_commit(conn: &Connection, commits: &CommitSignal) {
    match last_seq(conn) {
        Ok(seq) => commits.advance(seq),
        // The followers notice at their timeout instead.
        Err(e) => error!(error = %e, "cannot read the newest event's seq after a commit"),
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    crate::rows::run(conn, sql).map_err(crate::rows::backend)
}

/// Runs a group that holds one job without a savepoint: the transaction is the job, so a failed
/// job rolls back the transaction, and nothing is copied into a savepoint's sub-journal.
fn commit_single(conn: &mut Connection, job: Job, commits: &CommitSignal, identity: &FileIdentity) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        error!(error = %e, "cannot begin a write transaction");
        let (_, deliver) = job(Err(e));
        deliver(Ok(()));
        return;
    }
    let outcome = {
        let mut tx = SqliteTx::new(conn);
        catch_unwind(AssertUnwindSafe(|| job(Ok(&mut tx))))
    };
    match outcome {
        Ok((true, deliver)) => {
            let commit = exec(conn, "COMMIT");
            if let Err(e) = &commit {
                error!(error = %e, "commit failed; the job is rolled back");
                let _ = exec(conn, "ROLLBACK");
            } else {
                signal_commit(conn, commits);
            }
            // Acknowledged only if it went to the file a restart opens.
            deliver(commit.and_then(|()| identity.check()));
        }
        Ok((false, deliver)) => {
            let _ = exec(conn, "ROLLBACK");
            deliver(Ok(()));
        }
        Err(_) => {
            error!("a write job panicked; its changes were rolled back");
            let _ = exec(conn, "ROLLBACK");
        }
    }
}

fn commit_group(
    conn: &mut Connection,
    mut group: Vec<Job>,
    commits: &CommitSignal,
    identity: &FileIdentity,
) {
    if group.len() == 1 {
        if let Some(job) = group.pop() {
            commit_single(conn, job, commits, identity);
        }
        return;
    }
    let size = group.len();
    // Results of jobs that succeeded, waiting for the commit; failed jobs are answered at once
    // (their savepoint was rolled back, so the commit cannot change their answer).
    let mut kept: Vec<Deliver> = Vec::with_capacity(size);
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        error!(error = %e, "cannot begin a write transaction");
        for job in group {
            // Without a transaction nothing can run: answer each job with the error.
            let (_, deliver) = job(Err(e.clone()));
            deliver(Ok(()));
        }
        return;
    }
    for job in group {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            error!(error = %e, "cannot open a savepoint");
            let (_, deliver) = job(Err(e));
            deliver(Ok(()));
            continue;
        }
        let outcome = {
            let mut tx = SqliteTx::new(conn);
            catch_unwind(AssertUnwindSafe(|| job(Ok(&mut tx))))
        };
        match outcome {
            Ok((true, deliver)) => {
                let _ = exec(conn, "RELEASE job");
                kept.push(deliver);
            }
            Ok((false, deliver)) => {
                let _ = exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"));
                deliver(Ok(()));
            }
            Err(_) => {
                // The job panicked: undo it; its caller sees the writer as gone for this call.
                error!("a write job panicked; its changes were rolled back");
                let _ = exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"));
            }
        }
        if conn.is_autocommit() {
            // The engine rolled the whole transaction back (disk full, I/O error): everything
            // kept so far is lost. Tell those callers, and start a new transaction for the rest.
            let lost = StoreError::Backend(
                "the transaction was rolled back by the database engine".into(),
            );
            for d in kept.drain(..) {
                d(Err(lost.clone()));
            }
            if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
                error!(error = %e, "cannot begin a write transaction");
                return;
            }
        }
    }
    let commit = exec(conn, "COMMIT");
    if let Err(e) = &commit {
        error!(error = %e, jobs = kept.len(), "commit failed; the group is rolled back");
        let _ = exec(conn, "ROLLBACK");
    } else if !kept.is_empty() {
        signal_commit(conn, commits);
    }
    debug!(jobs = size, kept = kept.len(), "group committed");
    // Acknowledged only if it went to the file a restart opens.
    let commit = commit.and_then(|()| identity.check());
    for d in kept {
        d(commit.clone());
    }
}
