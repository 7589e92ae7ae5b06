//! The single writer thread: it owns the write connection, takes queued jobs, runs as many as are
//! waiting in one transaction, commits once, and only then answers every caller of the group.
//! After each commit it reads the newest event's seq and wakes the followers waiting for it.
//!
//! A group runs optimistically, without a savepoint per job: a job that fails before writing
//! anything needs no undo. Only when a job fails after writing, panics, or the engine rolls the
//! transaction back is the group rolled back and run again with each job in its own savepoint,
//! so that a failure undoes only its job (ADR 0026).

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
/// It may run more than once (when its group is undone and run again); only the delivery of the
/// run that counts is called.
pub(crate) type Job =
    Box<dyn FnMut(Result<&mut SqliteTx<'_>, StoreError>) -> (bool, Deliver) + Send>;

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
            refuse(group, &e);
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
    let Some(mut job) = begin(conn, vec![job]).and_then(|mut one| one.pop()) else {
        return;
    };
    let outcome = {
        let mut tx = SqliteTx::new(conn);
        catch_unwind(AssertUnwindSafe(|| job(Ok(&mut tx))))
    };
    match outcome {
        Ok((true, deliver)) => commit_and_deliver(conn, 1, vec![deliver], commits, identity),
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
    let Some(group) = begin(conn, group) else {
        return;
    };
    match run_optimistically(conn, group) {
        Optimistic::Ran(kept) => commit_and_deliver(conn, size, kept, commits, identity),
        Optimistic::Undo(rest) => {
            debug!(
                jobs = size,
                again = rest.len(),
                "a job failed after writing; group run again"
            );
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            commit_with_savepoints(conn, rest, commits, identity);
        }
    }
}

/// How the optimistic run of a group went.
enum Optimistic {
    /// Every job either succeeded (their deliveries wait for the commit) or failed without
    /// writing (already answered).
    Ran(Vec<Deliver>),
    /// A job failed after writing, panicked, or the engine rolled the transaction back: the
    /// transaction must be undone, and these jobs (everything not yet answered) run again.
    Undo(Vec<Job>),
}

/// Runs the group's jobs in the open transaction without savepoints. Stops at the first job
/// whose failure cannot be undone on its own.
fn run_optimistically(conn: &mut Connection, group: Vec<Job>) -> Optimistic {
    let mut kept: Vec<Deliver> = Vec::with_capacity(group.len());
    // Jobs that ran and must run again if the group is undone.
    let mut ran: Vec<Job> = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    let at_begin = conn.total_changes();
    while let Some(mut job) = jobs.next() {
        let before = conn.total_changes();
        let outcome = {
            let mut tx = SqliteTx::new(conn);
            catch_unwind(AssertUnwindSafe(|| job(Ok(&mut tx))))
        };
        let wrote = conn.total_changes() != before;
        let rolled_back = conn.is_autocommit();
        match outcome {
            Ok((true, deliver)) if !rolled_back => {
                kept.push(deliver);
                ran.push(job);
            }
            // Failed before writing anything, on the state the last commit left: nothing to
            // undo, and nothing can change its answer.
            Ok((false, deliver)) if !wrote && !rolled_back && before == at_begin => deliver(Ok(())),
            // Failed before writing anything, but after earlier jobs of the group wrote: its
            // answer may rest on their writes, which count only if they commit. It waits for
            // the commit like a success (and runs again if the group is undone).
            Ok((false, deliver)) if !wrote && !rolled_back => {
                kept.push(deliver);
                ran.push(job);
            }
            // Failed after writing (or the engine gave up the transaction): its result is
            // dropped unanswered, and it runs again in its own savepoint with the rest.
            Ok(_) => {
                ran.push(job);
                ran.extend(jobs);
                return Optimistic::Undo(ran);
            }
            Err(_) => {
                // The job panicked: it does not run again; its caller sees the writer as gone
                // for this call. The others run again without its changes.
                error!("a write job panicked; its changes were rolled back");
                drop(job);
                ran.extend(jobs);
                return Optimistic::Undo(ran);
            }
        }
    }
    Optimistic::Ran(kept)
}

/// Runs a group with each job in its own savepoint, so that a job's failure undoes only that
/// job: the way a group runs after its optimistic run was undone.
fn commit_with_savepoints(
    conn: &mut Connection,
    group: Vec<Job>,
    commits: &CommitSignal,
    identity: &FileIdentity,
) {
    let size = group.len();
    // Results of jobs that succeeded, waiting for the commit; failed jobs are answered at once
    // (their savepoint was rolled back, so the commit cannot change their answer).
    let mut kept: Vec<Deliver> = Vec::with_capacity(size);
    let Some(group) = begin(conn, group) else {
        return;
    };
    for mut job in group {
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            error!(error = %e, "cannot open a savepoint");
            refuse(vec![job], &e);
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
    commit_and_deliver(conn, size, kept, commits, identity);
}

/// Commits the open transaction, then answers each kept job of the group (of `size` jobs) with
/// the outcome: committed, or the error.
fn commit_and_deliver(
    conn: &Connection,
    size: usize,
    kept: Vec<Deliver>,
    commits: &CommitSignal,
    identity: &FileIdentity,
) {
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

/// Begins the group's transaction; without one nothing can run, so each job is answered with
/// the error and `None` is returned.
fn begin(conn: &Connection, group: Vec<Job>) -> Option<Vec<Job>> {
    match exec(conn, "BEGIN IMMEDIATE") {
        Ok(()) => Some(group),
        Err(e) => {
            error!(error = %e, "cannot begin a write transaction");
            refuse(group, &e);
            None
        }
    }
}

/// Answers each job of `group` with `e`: it cannot run (no transaction, or files the store no
/// longer owns).
fn refuse(group: Vec<Job>, e: &StoreError) {
    for mut job in group {
        let (_, deliver) = job(Err(e.clone()));
        deliver(Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// What one test job does each time it runs.
    #[derive(Clone, Copy, PartialEq)]
    enum Act {
        /// Inserts its row and succeeds.
        Write,
        /// Inserts its row, then fails.
        WriteThenFail,
        /// Fails before writing.
        Fail,
        /// Inserts its row, then panics.
        Panic,
        /// On its first run, rolls the whole transaction back (as the engine does on a full disk
        /// or an I/O error); afterwards, inserts its row and succeeds.
        RollBackOnce,
    }

    struct Group {
        conn: Connection,
        commits: CommitSignal,
        identity: FileIdentity,
        _dir: tempfile::TempDir,
    }

    fn group() -> Group {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE events (seq INTEGER PRIMARY KEY);
             CREATE TABLE rows (job INTEGER NOT NULL);",
        )
        .unwrap();
        Group {
            identity: FileIdentity::take(&path).unwrap(),
            conn,
            commits: CommitSignal::new(0),
            _dir: dir,
        }
    }

    /// Each job's count of runs.
    type Runs = Arc<Vec<AtomicUsize>>;
    /// The answers delivered: (job, whether it was told it committed, the run it came from).
    type Answers = Arc<Mutex<Vec<(usize, bool, usize)>>>;

    /// One job per act: each counts its runs and records the answer it was delivered.
    fn jobs(acts: &[Act]) -> (Vec<Job>, Runs, Answers) {
        let runs = Arc::new(
            (0..acts.len())
                .map(|_| AtomicUsize::new(0))
                .collect::<Vec<_>>(),
        );
        let answers = Arc::new(Mutex::new(Vec::new()));
        let jobs = acts
            .iter()
            .enumerate()
            .map(|(i, &act)| {
                let runs = Arc::clone(&runs);
                let answers = Arc::clone(&answers);
                let job: Job = Box::new(move |tx| {
                    let run = runs[i].fetch_add(1, Ordering::SeqCst) + 1;
                    let tx = tx.unwrap();
                    if act == Act::RollBackOnce && run == 1 {
                        tx.conn().execute_batch("ROLLBACK").unwrap();
                    } else if act != Act::Fail {
                        tx.conn()
                            .execute("INSERT INTO rows (job) VALUES (?1)", [i as i64])
                            .unwrap();
                    }
                    assert!(act != Act::Panic, "job {i} panics");
                    let ok = matches!(act, Act::Write | Act::RollBackOnce);
                    let answers = Arc::clone(&answers);
                    let deliver: Deliver = Box::new(move |commit| {
                        answers.lock().unwrap().push((i, ok && commit.is_ok(), run));
                    });
                    (ok, deliver)
                });
                job
            })
            .collect();
        (jobs, runs, answers)
    }

    /// Runs one group of `acts`; answers each job's runs, the answers (job, committed) in job
    /// order, and the rows committed. Checks that each answer came from its job's last run.
    fn run(acts: &[Act]) -> (Vec<usize>, Vec<(usize, bool)>, Vec<i64>) {
        let mut g = group();
        let (jobs, runs, answers) = jobs(acts);
        commit_group(&mut g.conn, jobs, &g.commits, &g.identity);
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        let mut answers = answers.lock().unwrap().clone();
        answers.sort_unstable();
        for &(job, _, from) in &answers {
            assert_eq!(from, runs[job], "job {job} was answered from an undone run");
        }
        let answers = answers.into_iter().map(|(j, ok, _)| (j, ok)).collect();
        let mut stmt = g.conn.prepare("SELECT job FROM rows ORDER BY job").unwrap();
        let rows = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<i64>, _>>()
            .unwrap();
        (runs, answers, rows)
    }

    #[test]
    fn a_group_whose_jobs_succeed_runs_each_once() {
        let (runs, answers, rows) = run(&[Act::Write, Act::Write, Act::Write]);
        assert_eq!(runs, [1, 1, 1]);
        assert_eq!(answers, [(0, true), (1, true), (2, true)]);
        assert_eq!(rows, [0, 1, 2]);
    }

    #[test]
    fn a_job_that_fails_before_writing_costs_the_others_nothing() {
        let (runs, answers, rows) = run(&[Act::Write, Act::Fail, Act::Write]);
        assert_eq!(runs, [1, 1, 1]);
        assert_eq!(answers, [(0, true), (1, false), (2, true)]);
        assert_eq!(rows, [0, 2]);
    }

    #[test]
    fn a_job_that_fails_after_writing_is_undone_alone_and_the_others_run_again() {
        let (runs, answers, rows) = run(&[Act::Write, Act::WriteThenFail, Act::Write]);
        // The first ran before the failure and again after it; the last only after it.
        assert_eq!(runs, [2, 2, 1]);
        assert_eq!(answers, [(0, true), (1, false), (2, true)]);
        assert_eq!(rows, [0, 2]);
    }

    #[test]
    fn a_refusal_that_saw_undone_writes_is_decided_again() {
        // The first job is refused before anything was written: answered at once, not run
        // again. The third is refused after the second wrote, so its answer may rest on that
        // write: when the fourth makes the group run again, so does the third.
        let (runs, answers, rows) = run(&[
            Act::Fail,
            Act::Write,
            Act::Fail,
            Act::WriteThenFail,
            Act::Write,
        ]);
        assert_eq!(runs, [1, 2, 2, 2, 1]);
        assert_eq!(
            answers,
            [(0, false), (1, true), (2, false), (3, false), (4, true)]
        );
        assert_eq!(rows, [1, 4]);
    }

    #[test]
    fn a_transaction_the_engine_rolled_back_runs_again_whole() {
        let (runs, answers, rows) = run(&[Act::Write, Act::RollBackOnce, Act::Write]);
        assert_eq!(runs, [2, 2, 1]);
        assert_eq!(answers, [(0, true), (1, true), (2, true)]);
        assert_eq!(rows, [0, 1, 2]);
    }

    /// A group run again with savepoints whose jobs each change megabytes of existing pages:
    /// their sub-journals spill to a file (past `SQLITE_STMTJRNL_SPILL`, `.cargo/config.toml`).
    /// With a spill above 128 KiB, SQLite's Unix layer wrote the spilled chunk as nothing and the
    /// group failed with "database or disk is full".
    #[test]
    fn large_jobs_run_again_in_savepoints_commit() {
        let mut g = group();
        g.conn
            .execute_batch(
                "CREATE TABLE big (k INTEGER PRIMARY KEY, v TEXT NOT NULL);
                 WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 20000)
                 INSERT INTO big SELECT k, printf('%.300c', 'x') FROM n;",
            )
            .unwrap();
        let (mut jobs, runs, answers) = jobs(&[Act::Write, Act::WriteThenFail, Act::Write]);
        // Each succeeding job also rewrites every row of `big` (about 6 MB of pages).
        for job in [0, 2] {
            let mut inner = std::mem::replace(&mut jobs[job], Box::new(|_| unreachable!()));
            jobs[job] = Box::new(move |tx| {
                if let Ok(tx) = &tx {
                    tx.conn()
                        .execute("UPDATE big SET v = v || 'y'", [])
                        .unwrap();
                }
                inner(tx)
            });
        }
        commit_group(&mut g.conn, jobs, &g.commits, &g.identity);
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, [2, 2, 1]);
        let mut answers: Vec<(usize, bool)> = answers
            .lock()
            .unwrap()
            .iter()
            .map(|&(j, ok, _)| (j, ok))
            .collect();
        answers.sort_unstable();
        assert_eq!(answers, [(0, true), (1, false), (2, true)]);
        let grown: i64 = g
            .conn
            .query_row("SELECT min(length(v)) FROM big", [], |r| r.get(0))
            .unwrap();
        assert_eq!(grown, 302);
    }

    #[test]
    fn a_job_that_panics_is_dropped_unanswered_and_the_others_commit() {
        let (runs, answers, rows) = run(&[Act::Write, Act::Panic, Act::Write, Act::Fail]);
        assert_eq!(runs, [2, 1, 1, 1]);
        assert_eq!(answers, [(0, true), (2, true), (3, false)]);
        assert_eq!(rows, [0, 2]);
    }
}
