//! Opening files: reopening keeps everything, migrations on empty and existing databases, files
//! that are not MAOS databases refused untouched, the writer's settings, the append-only log.

use std::path::Path;
use std::sync::Arc;

use maos_application::{
    CreateTask, IdRef, MaosApi, ReadStore, StoreError, Transaction, UnitOfWork,
};
use maos_domain::{DomainEvent, OrchestrationId, Task, TaskId, TaskSpec, TaskState, Timestamp};
use maos_sqlite::{APPLICATION_ID, SqliteStore};
use rusqlite::Connection;

use crate::support::{
    Db, TestClock, TestIds, assert_gapless, dump_tables, kinds, raw_connection, refs, service_at,
    task, title,
};

/// Names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn history(conn: &Connection) -> Vec<(i64, String)> {
    conn.prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn reopen_keeps_every_row_and_every_event() {
    let db = Db::new();
    db.register("builder", &["rust"], 2);
    db.register("idle", &["go"], 1);
    let orch = db
        .svc
        .create_orchestration(crate::support::orch(
            title("ship it"),
            Some("the goal".into()),
        ))
        .unwrap();
    db.svc.start_orchestration(&orch.id.into()).unwrap();
    let first = db.create(CreateTask {
        orchestration: Some(IdRef::from(orch.id)),
        capabilities: crate::support::caps(&["rust"]),
        ..task("first")
    });
    let second = db.create(CreateTask {
        depends_on: refs(&[first.id]),
        ..task("second")
    });
    let assignment = db.run(first.id, Some("builder"));
    let before = db.snapshot();
    assert_eq!(before.tasks.len(), 2);
    assert_eq!(before.agents.len(), 2);
    assert_eq!(
        kinds(&before.events),
        [
            "agent.registered",
            "agent.registered",
            "orchestration.created",
            "orchestration.started",
            "task.created",
            "task.ready",
            "task.created",
            "task.assigned",
            "task.briefed",
            "agent.slot_claimed",
            "task.attempt_started"
        ]
    );

    let db = db.reopen();
    db.assert_unchanged(&before);
    assert_eq!(db.task(first.id).state, TaskState::Running);
    assert_eq!(db.task(second.id).state, TaskState::Pending);
    assert_eq!(db.agent("builder").active, 1);

    // The reopened store carries on: the running attempt completes with its token, the
    // dependent becomes ready, and the log continues without a gap.
    let done = db
        .svc
        .complete_attempt(
            first.id,
            assignment.fencing,
            None,
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(done.state, TaskState::Completed);
    assert_eq!(db.task(second.id).state, TaskState::Ready);
    let events = db.events();
    assert!(events.len() > before.events.len());
    assert_eq!(events[..before.events.len()], before.events[..]);
    assert_gapless(&events);

    // And once more, after the new writes.
    let before = db.snapshot();
    let db = db.reopen();
    db.assert_unchanged(&before);
}

#[test]
fn migrations_apply_to_a_new_file_an_empty_file_and_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::new(1, 1));
    let ids = Arc::new(TestIds::new(7));

    // A path that does not exist yet, and an existing file of zero bytes.
    let new = dir.path().join("new.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for path in [&new, &empty] {
        let svc = service_at(path, Arc::clone(&clock), Arc::clone(&ids));
        svc.register_agent(crate::support::agent("a", &["rust"], 1))
            .unwrap();
        drop(svc);
        let conn = raw_connection(path);
        assert_eq!(
            history(&conn),
            vec![
                (1, "init".to_owned()),
                (2, "agents_at_work".to_owned()),
                (3, "workspaces_and_approvals".to_owned()),
                (4, "orchestrations_at_work".to_owned()),
                (5, "lookups_by_state".to_owned()),
                (6, "ready_by_need".to_owned()),
                (7, "verification_failures".to_owned()),
                (8, "pinned_tasks".to_owned()),
                (9, "memory".to_owned()),
                (10, "orchestration_settled".to_owned()),
                (11, "agents_run_by_load".to_owned()),
                (12, "task_numbers".to_owned()),
            ]
        );
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(app_id, APPLICATION_ID);
        let tables = dump_tables(&conn);
        for t in [
            "agents",
            "agent_capabilities",
            "orchestrations",
            "tasks",
            "task_deps",
            "attempts",
            "task_state_counts",
            "events",
            "memories",
            "memory_tags",
            "memory_fts",
        ] {
            assert!(tables.contains_key(t), "{t} missing: {:?}", tables.keys());
        }

        // Opening the existing database again applies nothing and keeps its data.
        let before = dump_tables(&conn);
        drop(conn);
        let svc = service_at(path, Arc::clone(&clock), Arc::clone(&ids));
        assert_eq!(svc.list_agents(&Default::default()).unwrap().len(), 1);
        drop(svc);
        let svc = service_at(path, Arc::clone(&clock), Arc::clone(&ids));
        drop(svc);
        let conn = raw_connection(path);
        assert_eq!(
            history(&conn),
            vec![
                (1, "init".to_owned()),
                (2, "agents_at_work".to_owned()),
                (3, "workspaces_and_approvals".to_owned()),
                (4, "orchestrations_at_work".to_owned()),
                (5, "lookups_by_state".to_owned()),
                (6, "ready_by_need".to_owned()),
                (7, "verification_failures".to_owned()),
                (8, "pinned_tasks".to_owned()),
                (9, "memory".to_owned()),
                (10, "orchestration_settled".to_owned()),
                (11, "agents_run_by_load".to_owned()),
                (12, "task_numbers".to_owned()),
            ]
        );
        assert_eq!(dump_tables(&conn), before);
    }
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("maos.db");
    let err = SqliteStore::open(&path).expect_err("the directory does not exist");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!path.exists());
}

/// Opens `path` expecting a refusal as not a MAOS database, and checks that the file is byte for
/// byte what it was and that no other file appeared next to it.
fn assert_refused_untouched(path: &Path) -> String {
    let dir = path.parent().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let files = files_in(dir);
    let err = SqliteStore::open(path).expect_err("not a MAOS database");
    let StoreError::NotMaos {
        path: shown,
        detail,
    } = &err
    else {
        panic!("expected NotMaos, got {err:?}");
    };
    assert_eq!(shown, &path.display().to_string());
    assert_eq!(std::fs::read(path).unwrap(), bytes, "the file was changed");
    assert_eq!(files_in(dir), files, "files appeared next to the database");
    detail.clone()
}

#[test]
fn garbage_files_are_refused_and_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // Short and long garbage, and a file that is all zeros.
    let cases: [(&str, Vec<u8>); 4] = [
        ("short.db", b"hello".to_vec()),
        ("text.db", b"this is not a database\n".repeat(500)),
        (
            "noise.db",
            (0..8192u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("zeros.db", vec![0u8; 4096]),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let detail = assert_refused_untouched(&path);
        assert!(!detail.is_empty(), "{name}");
        assert!(
            !dir.path().join(format!("{name}-wal")).exists()
                && !dir.path().join(format!("{name}-shm")).exists()
                && !dir.path().join(format!("{name}-journal")).exists(),
            "{name}: journal files created"
        );
    }
}

#[test]
fn a_database_of_another_program_is_refused_and_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();

    let foo = dir.path().join("other.db");
    {
        let conn = Connection::open(&foo).unwrap();
        conn.execute_batch(
            "CREATE TABLE foo (x INTEGER PRIMARY KEY, y TEXT); INSERT INTO foo (y) VALUES ('keep me');",
        )
        .unwrap();
    }
    let detail = assert_refused_untouched(&foo);
    assert!(detail.contains("another program"), "{detail}");
    let conn = raw_connection(&foo);
    let y: String = conn
        .query_row("SELECT y FROM foo", [], |r| r.get(0))
        .unwrap();
    assert_eq!(y, "keep me");

    // An empty database that carries another program's application id.
    let tagged = dir.path().join("tagged.db");
    {
        let conn = Connection::open(&tagged).unwrap();
        conn.pragma_update(None, "application_id", 0x1234_5678)
            .unwrap();
    }
    let detail = assert_refused_untouched(&tagged);
    assert!(detail.contains("0x12345678"), "{detail}");
}

/// A MAOS database with an agent, closed (its log checkpointed into the file), and its bytes.
fn closed_database() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let db = Db::new();
    db.register("a", &["rust"], 1);
    let (dir, path) = (db.dir, db.path);
    drop(db.svc);
    assert!(
        !dir.path().join("maos.db-wal").exists(),
        "the log was not checkpointed"
    );
    let bytes = std::fs::read(&path).unwrap();
    (dir, path, bytes)
}

/// Opens `path` expecting [`StoreError::Damaged`], and checks that the file did not change.
fn assert_damaged(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let err = SqliteStore::open(path).expect_err("a damaged database");
    let StoreError::Damaged {
        path: shown,
        detail,
    } = &err
    else {
        panic!("expected Damaged, got {err:?}");
    };
    assert_eq!(shown, &path.display().to_string());
    assert_eq!(std::fs::read(path).unwrap(), bytes, "the file was changed");
    detail.clone()
}

#[test]
fn a_cut_short_database_is_damaged_not_foreign() {
    let (_dir, path, bytes) = closed_database();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let detail = assert_damaged(&path);
    assert!(detail.contains("the file is cut short"), "{detail}");
}

#[test]
fn a_database_with_unreadable_pages_is_damaged_not_foreign() {
    let (_dir, path, bytes) = closed_database();
    // The SQLite header, then noise.
    let mut broken = bytes[..100].to_vec();
    broken.extend((100..bytes.len() as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&path, &broken).unwrap();
    let detail = assert_damaged(&path);
    assert!(detail.contains("SQLite cannot read it"), "{detail}");
}

#[test]
fn a_damaged_table_is_found_by_quick_check() {
    let (_dir, path, bytes) = closed_database();
    // Zero the pages of the event log only: the schema still reads, opening fails later.
    let (root, page_size): (i64, i64) = {
        let conn = Connection::open(&path).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root, size)
    };
    let start = usize::try_from((root - 1) * page_size).unwrap();
    let end = start + usize::try_from(page_size).unwrap();
    let mut broken = bytes;
    broken[start..end].fill(0xff);
    std::fs::write(&path, &broken).unwrap();
    let detail = assert_damaged(&path);
    assert!(detail.contains("PRAGMA quick_check"), "{detail}");
}

#[test]
fn a_database_from_a_different_maos_schema_is_refused() {
    let db = Db::new();
    db.register("a", &["rust"], 1);
    let path = db.path.clone();
    let dir = db.dir;
    drop(db.svc);

    // A migration this binary does not know (written by a newer MAOS).
    let newer = dir.path().join("newer.db");
    std::fs::copy(&path, &newer).unwrap();
    {
        let conn = Connection::open(&newer).unwrap();
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             SELECT 99, 'future', applied_on, '1' FROM refinery_schema_history WHERE version = 1",
            [],
        )
        .unwrap();
    }
    let err = SqliteStore::open(&newer).expect_err("unknown migration");
    assert!(matches!(err, StoreError::NotMaos { .. }), "{err:?}");

    // V1 applied with a different checksum: the schema diverged from this binary's.
    let diverged = dir.path().join("diverged.db");
    std::fs::copy(&path, &diverged).unwrap();
    {
        let conn = Connection::open(&diverged).unwrap();
        conn.execute(
            "UPDATE refinery_schema_history SET checksum = '42' WHERE version = 1",
            [],
        )
        .unwrap();
    }
    let err = SqliteStore::open(&diverged).expect_err("divergent migration");
    assert!(matches!(err, StoreError::NotMaos { .. }), "{err:?}");

    // The original still opens.
    assert!(SqliteStore::open(&path).is_ok());
}

#[test]
fn the_writer_runs_in_wal_mode_with_full_sync_and_foreign_keys() {
    let db = Db::new();
    let settings = db.store().writer_settings().unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "synchronous must be FULL");
    assert!(settings.foreign_keys);

    // WAL is a property of the file: a separate connection sees it too.
    let mode: String = db
        .raw()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // Foreign keys are enforced on the writer: a task in an orchestration that does not exist
    // is rejected by the engine, and nothing is kept.
    let before = db.snapshot();
    let spec = TaskSpec {
        orchestration: Some(OrchestrationId::from_bits(12345)),
        ..crate::support::spec("orphan")
    };
    let (orphan, _) = Task::create(TaskId::from_bits(1), spec, Timestamp::from_millis(1));
    let err = db
        .store()
        .write(move |tx: &mut dyn Transaction| tx.save_task(&orphan))
        .expect_err("foreign key violation");
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("FOREIGN KEY")),
        "{err:?}"
    );
    db.assert_unchanged(&before);
}

#[test]
fn the_event_log_refuses_update_and_delete() {
    let db = Db::new();
    db.register("a", &["rust"], 1);
    db.create_titled("t");
    let before = db.snapshot();
    let conn = Connection::open(&db.path).unwrap();
    for sql in [
        "UPDATE events SET kind = 'forged' WHERE seq = 1",
        "UPDATE events SET seq = 100 WHERE seq = 2",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ] {
        let err = conn.execute(sql, []).expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    drop(conn);
    db.assert_unchanged(&before);
}

#[test]
fn a_failing_or_panicking_job_is_rolled_back_and_the_writer_carries_on() {
    let db = Db::new();
    db.register("a", &["rust"], 1);
    let before = db.snapshot();

    // A job that writes, then fails: nothing it wrote is kept.
    let (t, events) = Task::create(
        TaskId::from_bits(99),
        crate::support::spec("x"),
        Timestamp::from_millis(5),
    );
    let err = db
        .store()
        .write(move |tx: &mut dyn Transaction| {
            tx.save_task(&t)?;
            tx.append(
                Timestamp::from_millis(5),
                &DomainEvent::tasks(t.id, events.clone()).collect::<Vec<_>>(),
            )?;
            Err::<(), _>(StoreError::Backend("changed my mind".into()))
        })
        .expect_err("the job fails");
    assert_eq!(err, StoreError::Backend("changed my mind".into()));
    db.assert_unchanged(&before);

    // A job that writes, then panics: its caller gets an error, its writes are undone.
    let (t, _) = Task::create(
        TaskId::from_bits(98),
        crate::support::spec("y"),
        Timestamp::from_millis(5),
    );
    let err = db
        .store()
        .write(move |tx: &mut dyn Transaction| -> Result<(), StoreError> {
            tx.save_task(&t)?;
            panic!("job panics on purpose");
        })
        .expect_err("the job panicked");
    assert_eq!(err, StoreError::WriterGone);
    db.assert_unchanged(&before);

    // The writer still serves.
    let t = db.create_titled("after");
    assert_eq!(db.task(t.id).state, TaskState::Ready);
    assert_gapless(&db.events());
    assert!(db.store().task(TaskId::from_bits(98)).unwrap().is_none());
}

/// Three writers of large jobs and two readers at work: the writer checkpoints the log past its
/// limit, so it stays bounded (ADR 0025). (This test also found that a sub-journal spill of 1 or
/// 4 MiB failed large groups; since groups run without savepoints (ADR 0026) it no longer reaches
/// that path: `writer::tests::large_jobs_run_again_in_savepoints_commit` does.)
#[test]
fn the_write_ahead_log_stays_bounded_under_sustained_writes_and_reads() {
    let db = Arc::new(Db::new());
    let wal_size =
        |db: &Db| std::fs::metadata(db.path.with_file_name("maos.db-wal")).map_or(0, |m| m.len());
    // 64 MiB of 4 KiB pages: the writer checkpoints past it, and the log starts over.
    const LIMIT: u64 = 16_384 * 4_096;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers that always hold a snapshot, and writers that never leave the writer idle.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, done) = (Arc::clone(&db), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    db.svc.status().unwrap();
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut largest = 0;
                for call in 0..40 {
                    let batch = (0..400)
                        .map(|i| task(&format!("w{w} c{call} t{i}")))
                        .collect();
                    db.svc.create_tasks(batch).unwrap();
                    largest = largest.max(wal_size(&db));
                }
                largest
            })
        })
        .collect();
    let largest = writers.into_iter().map(|w| w.join().unwrap()).max();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let largest = largest.unwrap_or(0);
    // 48,000 tasks wrote several times the limit; the log never held much more than it.
    let written = db.svc.status().unwrap().last_event;
    assert!(written >= 96_000, "{written} events");
    assert!(
        largest < LIMIT * 3 / 2,
        "the log reached {largest} bytes (limit {LIMIT})"
    );
    eprintln!("largest log: {largest} bytes; now {}", wal_size(&db));
}

#[test]
fn sqlite_keeps_a_savepoints_sub_journal_in_memory_up_to_its_largest_safe_size() {
    // Set for the bundled build in .cargo/config.toml (see there): at most 0x1ffff bytes, the
    // largest write SQLite's Unix layer makes whole; a larger spill fails large commit groups
    // (the log test above writes such groups).
    let db = Db::new();
    let raw = db.raw();
    let mut stmt = raw.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let spill = options
        .iter()
        .find_map(|o| o.strip_prefix("STMTJRNL_SPILL="))
        .and_then(|v| v.parse::<u32>().ok());
    assert_eq!(
        spill,
        Some(126_976),
        "SQLite was built without -DSQLITE_STMTJRNL_SPILL=126976 (LIBSQLITE3_FLAGS): {options:?}"
    );
    assert!(spill.is_some_and(|s| s <= 0x1ffff));
}

/// A database written before V12 (the events of tasks indexed by their random id) gets its
/// tasks numbered, the new column of the events filled from them and the new index, and every
/// aggregate's events are found as before.
#[test]
fn the_events_of_each_aggregate_are_found_after_the_tasks_are_numbered() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let first = db.create_titled("first");
    db.clock.advance(1_000);
    let second = db.create_titled("second");
    db.finish(first.id, Some("w"));
    let agent = db.agent("w");
    let aggregates: Vec<String> = [
        first.id.to_string(),
        second.id.to_string(),
        agent.id.to_string(),
    ]
    .into();
    let before: Vec<_> = aggregates
        .iter()
        .map(|id| db.store().events_of(id).unwrap())
        .collect();
    assert!(before.iter().all(|e| !e.is_empty()));
    let tasks_before = [db.task(first.id), db.task(second.id)];
    assert_eq!(tasks_before[0].attempts.len(), 1);
    let path = db.path.clone();
    // Back to the schema of V11, as an older MAOS left it, while the store is closed.
    let db = db.reopen_after(|path| {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "DROP INDEX events_by_aggregate;
             DROP INDEX tasks_ready_by_need;
             ALTER TABLE events DROP COLUMN task_no;
             CREATE TABLE attempts_v11 (
                 task TEXT NOT NULL REFERENCES tasks (id), number INTEGER NOT NULL,
                 agent TEXT NOT NULL, fencing INTEGER NOT NULL, status TEXT NOT NULL,
                 assigned_at INTEGER NOT NULL, lease_expires_at INTEGER NOT NULL,
                 started_at INTEGER, ended_at INTEGER, summary TEXT, error TEXT, pid INTEGER,
                 session TEXT, exit_code INTEGER, exit_signal INTEGER,
                 input_tokens INTEGER NOT NULL DEFAULT 0,
                 cached_input_tokens INTEGER NOT NULL DEFAULT 0,
                 output_tokens INTEGER NOT NULL DEFAULT 0, cost_micros INTEGER NOT NULL DEFAULT 0,
                 failure TEXT, extra TEXT NOT NULL DEFAULT '{}',
                 PRIMARY KEY (task, number)
             ) STRICT, WITHOUT ROWID;
             INSERT INTO attempts_v11 SELECT task, number, agent, fencing, status, assigned_at,
                 lease_expires_at, started_at, ended_at, summary, error, pid, session, exit_code,
                 exit_signal, input_tokens, cached_input_tokens, output_tokens, cost_micros, failure,
                 extra FROM attempts;
             DROP TABLE attempts;
             ALTER TABLE attempts_v11 RENAME TO attempts;
             CREATE INDEX attempts_live_by_lease ON attempts (lease_expires_at, task)
                 WHERE status IN ('assigned', 'running');
             CREATE TRIGGER attempts_usage_insert AFTER INSERT ON attempts BEGIN
                 UPDATE usage_totals SET input_tokens = input_tokens + NEW.input_tokens WHERE id = 1;
             END;
             ALTER TABLE tasks DROP COLUMN no;
             CREATE INDEX tasks_ready_by_need ON tasks (need, priority DESC, created_at, id)
                 WHERE state = 'ready';
             CREATE INDEX events_by_aggregate ON events (aggregate_id, seq);
             DELETE FROM refinery_schema_history WHERE version = 12;",
        )
        .unwrap();
    });
    let after: Vec<_> = aggregates
        .iter()
        .map(|id| db.store().events_of(id).unwrap())
        .collect();
    assert_eq!(after, before);
    // The attempts, now keyed by their task's number, load with their tasks as before.
    assert_eq!([db.task(first.id), db.task(second.id)], tasks_before);
    let conn = raw_connection(&path);
    let keys: Vec<(i64, String)> = conn
        .prepare("SELECT a.task_no, t.rowid || '' FROM attempts a JOIN tasks t ON t.id = a.task")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0.to_string(), keys[0].1);
    assert_eq!(
        history(&conn).last(),
        Some(&(12, "task_numbers".to_owned()))
    );
    let numbered: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT e.aggregate_id, e.task_no, t.rowid FROM events e
               JOIN tasks t ON t.id = e.aggregate_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!numbered.is_empty());
    for (task, filled, rowid) in numbered {
        assert_eq!(filled, rowid, "task {task}");
    }
    // The log is still append-only after the backfill.
    let err = Connection::open(&db.path)
        .unwrap()
        .execute("UPDATE events SET kind = 'x' WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
