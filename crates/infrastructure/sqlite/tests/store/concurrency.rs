//! Many callers at once through the one writer: group commit keeps every acknowledged write, the
//! log stays gapless even when jobs of a group are refused, and decisions that read state
//! (duplicate names, idempotency keys, free slots) stay serialized.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::thread;

use maos_application::{
    AgentError, AssignTask, CreateTask, IdRef, MaosApi, Service, ServiceConfig, TaskError,
};
use maos_domain::{DomainEvent, IdempotencyKey, TaskEvent, TaskId, TaskState};
use maos_sqlite::SqliteStore;

use crate::support::{Db, Svc, agent, assert_gapless, task};

/// Runs `work(thread index)` on `n` threads released together; returns their results in order.
fn together<T: Send + 'static>(
    svc: &Svc,
    n: usize,
    work: impl Fn(&Svc, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let svc = svc.clone();
            let barrier = Arc::clone(&barrier);
            let work = Arc::clone(&work);
            thread::spawn(move || {
                barrier.wait();
                work(&svc, i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn group_commit_keeps_every_acknowledged_create_of_64_concurrent_callers() {
    const THREADS: usize = 64;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maos.db");
    let svc = Service::new(
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(maos_system::SystemClock),
        Arc::new(maos_system::RandomIds),
        ServiceConfig::default(),
    );

    let acked: Vec<Vec<TaskId>> = together(&svc, THREADS, |svc, i| {
        (0..EACH)
            .map(|j| {
                let created = svc
                    .create_task(task(&format!("thread {i} task {j}")))
                    .expect("create");
                assert!(created.created);
                created.task.id
            })
            .collect()
    });
    let acked: BTreeSet<TaskId> = acked.into_iter().flatten().collect();
    assert_eq!(acked.len(), THREADS * EACH, "ids must be distinct");

    let check = |svc: &Service<SqliteStore>| {
        let stored: BTreeSet<TaskId> = crate::support::all_tasks(svc, &Default::default(), 1000)
            .into_iter()
            .map(|t| {
                assert_eq!(t.state, TaskState::Ready);
                t.id
            })
            .collect();
        assert_eq!(stored, acked, "acknowledged creates are missing");

        let events = svc.read_events(0, 10_000).unwrap();
        assert_eq!(events.len(), 2 * THREADS * EACH);
        assert_gapless(&events);
        // Each task has exactly its two events, adjacent: one job's writes commit together.
        let mut by_task: BTreeMap<TaskId, Vec<(u64, &TaskEvent)>> = BTreeMap::new();
        for e in &events {
            let DomainEvent::Task { id, event } = &e.event else {
                panic!("unexpected event {e:?}");
            };
            by_task.entry(*id).or_default().push((e.seq, event));
        }
        assert_eq!(by_task.keys().copied().collect::<BTreeSet<_>>(), acked);
        for (id, evs) in &by_task {
            assert!(
                matches!(
                    evs.as_slice(),
                    [(s1, TaskEvent::Created { .. }), (s2, TaskEvent::Ready)] if *s2 == s1 + 1
                ),
                "{id}: {evs:?}"
            );
        }
        let status = svc.status().unwrap();
        assert_eq!(
            status.tasks.get(&TaskState::Ready).copied(),
            Some((THREADS * EACH) as u64)
        );
        assert_eq!(status.last_event, (2 * THREADS * EACH) as u64);
    };
    check(&svc);

    // Everything acknowledged is still there after the store is closed and reopened.
    drop(svc);
    let svc = Service::new(
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(maos_system::SystemClock),
        Arc::new(maos_system::RandomIds),
        ServiceConfig::default(),
    );
    check(&svc);
}

#[test]
fn refused_jobs_inside_a_group_leave_no_gap_and_undo_only_themselves() {
    let db = Db::new();
    db.register("dup", &["rust"], 1);
    let done = db.create_titled("done").id;
    db.finish(done, Some("dup"));
    let before = db.events().len();

    const THREADS: usize = 32;
    const ROUNDS: usize = 20;
    let results = together(&db.svc, THREADS, move |svc, i| {
        let mut created = Vec::new();
        for r in 0..ROUNDS {
            match (i + r) % 3 {
                // Succeeds.
                0 => created.push(svc.create_task(task(&format!("{i}/{r}"))).unwrap().task.id),
                // Fails inside the transaction, after reading.
                1 => {
                    let e = svc.register_agent(agent("dup", &["go"], 1)).unwrap_err();
                    assert!(matches!(e, AgentError::AlreadyExists { .. }), "{e:?}");
                }
                _ => {
                    let e = svc.cancel_task(&IdRef::from(done), None).unwrap_err();
                    assert!(matches!(e, TaskError::Transition(_)), "{e:?}");
                }
            }
        }
        created
    });
    let created: BTreeSet<TaskId> = results.into_iter().flatten().collect();
    let expected = (0..THREADS)
        .flat_map(|i| (0..ROUNDS).filter(move |r| (i + r) % 3 == 0))
        .count();
    assert_eq!(created.len(), expected);

    let events = db.events();
    assert_gapless(&events);
    assert_eq!(events.len(), before + 2 * expected);
    let stored: BTreeSet<TaskId> = db
        .tasks()
        .into_iter()
        .map(|t| t.id)
        .filter(|id| *id != done)
        .collect();
    assert_eq!(stored, created);
    assert_eq!(db.agents().len(), 1);
    assert_eq!(db.task(done).state, TaskState::Completed);
}

#[test]
fn concurrent_registrations_of_one_name_let_exactly_one_win() {
    let db = Db::new();
    let results = together(&db.svc, 32, |svc, i| {
        svc.register_agent(agent("contested", &[if i % 2 == 0 { "a" } else { "b" }], 1))
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1);
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, AgentError::AlreadyExists { .. }), "{e:?}");
        }
    }
    assert_eq!(db.agents(), [winners[0].clone()]);
    let events = db.events();
    assert_eq!(events.len(), 1);
    assert_gapless(&events);
}

#[test]
fn concurrent_creates_with_one_idempotency_key_make_one_task() {
    let db = Db::new();
    let results = together(&db.svc, 32, |svc, i| {
        svc.create_task(CreateTask {
            idempotency_key: Some(IdempotencyKey::parse("same-request").unwrap()),
            ..task(&format!("try {i}"))
        })
        .unwrap()
    });
    assert_eq!(results.iter().filter(|c| c.created).count(), 1);
    let first = results.iter().find(|c| c.created).unwrap().task.clone();
    assert!(results.iter().all(|c| c.task == first));
    assert_eq!(db.tasks(), [first]);
    assert_eq!(db.events().len(), 2);
}

#[test]
fn concurrent_balanced_assignments_never_overfill_an_agent() {
    let db = Db::new();
    for i in 0..10 {
        db.register(&format!("w{i}"), &["rust"], 2);
    }
    let tasks: Vec<TaskId> = (0..48)
        .map(|i| {
            db.create(CreateTask {
                capabilities: crate::support::caps(&["rust"]),
                ..task(&format!("t{i}"))
            })
            .id
        })
        .collect();
    let tasks = Arc::new(tasks);
    let results = together(&db.svc, 16, move |svc, i| {
        (0..3)
            .map(|k| {
                svc.assign_task(AssignTask {
                    task: IdRef::from(tasks[i * 3 + k]),
                    agent: None,
                })
            })
            .collect::<Vec<_>>()
    });
    let results: Vec<_> = results.into_iter().flatten().collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 20, "10 agents x 2 slots");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, TaskError::NoCapableAgent { .. }), "{e:?}");
        }
    }
    for a in db.agents() {
        assert_eq!(a.active, 2, "{}", a.name);
        let holding = db
            .tasks()
            .iter()
            .filter(|t| t.slot_holder() == Some(&a.name))
            .count();
        assert_eq!(holding, 2, "{}", a.name);
    }
    assert_gapless(&db.events());
}

/// The descriptors of this process open on the database file itself.
fn open_on(path: &std::path::Path) -> usize {
    let path = path.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| *target == path)
        .count()
}

#[test]
fn readers_at_once_are_bounded_and_idle_ones_beyond_a_few_are_closed() {
    const THREADS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maos.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let svc = Service::new(
        Arc::clone(&store),
        Arc::new(maos_system::SystemClock),
        Arc::new(maos_system::RandomIds),
        ServiceConfig::default(),
    );
    let cmds = (0..200).map(|i| task(&format!("task {i}"))).collect();
    svc.create_tasks(cmds).unwrap();
    // The writer and the checkpointer hold one each.
    let before = open_on(&path);

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, store, path) = (Arc::clone(&done), Arc::clone(&store), path.clone());
        thread::spawn(move || {
            let mut peak = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak.0 = peak.0.max(open_on(&path));
                peak.1 = peak.1.max(store.open_readers());
                thread::yield_now();
            }
            peak
        })
    };
    together(&svc, THREADS, |svc, _| {
        for _ in 0..10 {
            let page = svc
                .list_tasks(
                    &maos_application::TaskFilter::default(),
                    &maos_application::Page {
                        limit: 200,
                        cursor: None,
                    },
                )
                .unwrap();
            assert_eq!(page.tasks.len(), 200);
        }
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (files, readers) = watcher.join().unwrap();
    assert!(
        files <= before + maos_sqlite::MAX_READERS,
        "{files} descriptors on the database at once ({before} before the reads)"
    );
    assert!(readers <= maos_sqlite::MAX_READERS, "{readers} readers");
    // Only a few idle readers stay open. (SQLite may keep the descriptor of a closed connection
    // for the next one while other connections hold locks on the file: still within the bound.)
    assert!(store.open_readers() <= 8, "{}", store.open_readers());
    assert!(open_on(&path) <= before + maos_sqlite::MAX_READERS);
}
