//! Leases over a real database: heartbeats renew them in memory and write nothing (ADR 0023),
//! a lease that runs out interrupts its attempt and requeues the task, a stale beat is refused,
//! a new daemon gives a worker it has not heard yet a whole lease, and neither a heartbeat nor
//! a reaper pass costs more with more attempts in flight.

use maos_application::{Heartbeat, MaosApi, ReadStore, RegisterAgent};
use maos_domain::{AdapterKind, AttemptOutcome, DomainEvent, RunReport, TaskEvent, TaskState};
use maos_sqlite::WorkMeter;
use rusqlite::Connection;

use crate::support::{Db, agent, dump_tables, task};

/// The default lease (ServiceConfig).
const LEASE_MS: i64 = 10_000;

/// SQLite's count of commits made to the file by any other connection: unchanged means that
/// nothing at all was committed in between.
fn data_version(raw: &Connection) -> i64 {
    raw.query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap()
}

fn beat(t: &maos_application::Assignment) -> Heartbeat {
    Heartbeat {
        task: t.task.id,
        fencing: t.fencing,
    }
}

/// `n` tasks assigned to and started by workers, as external workers would.
fn running(db: &Db, n: usize) -> Vec<maos_application::Assignment> {
    for w in 0..n.div_ceil(200) {
        db.svc
            .register_agent(RegisterAgent {
                adapter: AdapterKind::External,
                ..agent(&format!("w{w}"), &["rust"], 200)
            })
            .unwrap();
    }
    let created = db
        .svc
        .create_tasks(
            (0..n)
                .map(|i| maos_application::CreateTask {
                    capabilities: crate::support::caps(&["rust"]),
                    ..task(&format!("task {i}"))
                })
                .collect(),
        )
        .unwrap();
    created.iter().map(|c| db.run(c.task.id, None)).collect()
}

#[test]
fn a_lease_that_runs_out_interrupts_the_attempt_and_requeues_the_task() {
    let db = Db::new();
    let a = running(&db, 1).remove(0);
    db.clock.advance(LEASE_MS - 100);
    assert_eq!(
        db.svc.expire_leases().unwrap(),
        0,
        "expired before its time"
    );
    db.clock.advance(200);
    assert_eq!(db.svc.expire_leases().unwrap(), 1);
    let t = db.task(a.task.id);
    assert_ne!(t.state, TaskState::Running);
    assert!(
        matches!(t.state, TaskState::Retrying | TaskState::Ready),
        "{:?}",
        t.state
    );
    assert_eq!(t.attempts[0].status, AttemptOutcome::Interrupted);
    let interrupted = db.events().into_iter().any(|e| {
        matches!(
            e.event,
            DomainEvent::Task { id, event: TaskEvent::AttemptInterrupted { .. } } if id == a.task.id
        )
    });
    assert!(interrupted, "no interruption was recorded");
    // Its result comes too late now, and the reaper has nothing left to do.
    assert!(
        db.svc
            .complete_attempt(a.task.id, a.fencing, None, RunReport::default())
            .is_err()
    );
    db.clock.advance(LEASE_MS * 3);
    assert_eq!(db.svc.expire_leases().unwrap(), 0);
}

#[test]
fn heartbeats_keep_an_attempt_alive_and_write_nothing() {
    let db = Db::new();
    let a = running(&db, 1).remove(0);
    let assigned_until = a.task.attempts[0].lease_expires_at;
    let raw = db.raw();
    for _ in 0..5 {
        db.clock.advance(LEASE_MS - 2_000);
        let (events, rows) = (db.events(), dump_tables(&raw));
        let version = data_version(&raw);
        assert_eq!(db.svc.heartbeat(&[beat(&a)]).unwrap(), vec![]);
        assert_eq!(data_version(&raw), version, "a heartbeat committed");
        assert_eq!(db.events(), events, "a heartbeat wrote events");
        assert_eq!(dump_tables(&raw), rows, "a heartbeat changed rows");
        assert_eq!(
            db.svc.expire_leases().unwrap(),
            0,
            "a renewed lease expired"
        );
    }
    // The task as shown has the renewed lease; the row keeps the lease as assigned.
    let shown = db.task(a.task.id).attempts[0].lease_expires_at;
    assert!(shown.as_millis() > assigned_until.as_millis() + 4 * LEASE_MS);
    let listed = db.tasks().into_iter().find(|t| t.id == a.task.id).unwrap();
    assert_eq!(listed.attempts[0].lease_expires_at, shown);
    let stored = db.store().task(a.task.id).unwrap().unwrap();
    assert_eq!(stored.attempts[0].lease_expires_at, assigned_until);
    // Then the beats stop: one lease later the attempt is interrupted.
    db.clock.advance(LEASE_MS + 100);
    assert_eq!(db.svc.expire_leases().unwrap(), 1);
    assert_eq!(
        db.task(a.task.id).attempts[0].status,
        AttemptOutcome::Interrupted
    );
}

#[test]
fn a_beat_from_a_stale_or_finished_attempt_is_refused_and_renews_nothing() {
    let db = Db::new();
    let mut runs = running(&db, 2);
    let done = runs.remove(1);
    let live = runs.remove(0);
    db.svc
        .complete_attempt(done.task.id, done.fencing, None, RunReport::default())
        .unwrap();
    let stale = Heartbeat {
        task: live.task.id,
        fencing: maos_domain::FencingToken::new(live.fencing.get() + 7),
    };
    let unknown = Heartbeat {
        task: maos_domain::TaskId::from_bits(42),
        fencing: live.fencing,
    };
    let refused = db
        .svc
        .heartbeat(&[beat(&live), stale, beat(&done), unknown])
        .unwrap();
    assert_eq!(refused, vec![stale, beat(&done), unknown]);
    // The live attempt was renewed by its own beat only; the stale one gave it nothing more.
    db.clock.advance(LEASE_MS + 100);
    assert_eq!(db.svc.expire_leases().unwrap(), 1);
    assert_eq!(
        db.task(live.task.id).attempts[0].status,
        AttemptOutcome::Interrupted
    );
}

#[test]
fn a_new_daemon_gives_a_worker_it_has_not_heard_a_whole_lease() {
    let db = Db::new();
    let mut runs = running(&db, 2);
    let silent = runs.remove(1);
    let beating = runs.remove(0);
    // The daemon is down for a minute: the workers' beats went nowhere.
    let db = db.reopen();
    db.clock.advance(60_000);
    assert_eq!(db.svc.expire_leases().unwrap(), 0, "expired on restart");
    db.clock.advance(LEASE_MS - 1_000);
    assert_eq!(db.svc.heartbeat(&[beat(&beating)]).unwrap(), vec![]);
    assert_eq!(db.svc.expire_leases().unwrap(), 0);
    // The worker that stayed silent loses its task one lease after the restart...
    db.clock.advance(2_000);
    assert_eq!(db.svc.expire_leases().unwrap(), 1);
    assert_eq!(
        db.task(silent.task.id).attempts[0].status,
        AttemptOutcome::Interrupted
    );
    // ...and the one that was heard keeps it one lease after its beat.
    db.clock.advance(LEASE_MS - 3_000);
    assert_eq!(db.svc.expire_leases().unwrap(), 0, "the beat was not heard");
    db.clock.advance(2_000);
    assert_eq!(db.svc.expire_leases().unwrap(), 1);
    assert_eq!(
        db.task(beating.task.id).attempts[0].status,
        AttemptOutcome::Interrupted
    );
}

/// The SQLite steps of one heartbeat of every attempt, per attempt, and of a reaper pass with
/// nothing due, with `n` attempts in flight.
fn lease_costs(n: usize) -> (f64, u64) {
    let meter = WorkMeter::new();
    let db = Db::metered(&meter);
    let runs = running(&db, n);
    let beats: Vec<Heartbeat> = runs.iter().map(beat).collect();
    // Warm: statements prepared, the book seeded.
    db.svc.heartbeat(&beats).unwrap();
    assert_eq!(db.svc.expire_leases().unwrap(), 0);
    let raw = db.raw();
    let version = data_version(&raw);
    let (beat_steps, refused) = meter.count(|| db.svc.heartbeat(&beats).unwrap());
    assert_eq!(refused, vec![]);
    let (reap_steps, expired) = meter.count(|| db.svc.expire_leases().unwrap());
    assert_eq!(expired, 0);
    assert_eq!(
        data_version(&raw),
        version,
        "heartbeats or the reaper committed"
    );
    (beat_steps as f64 / n as f64, reap_steps)
}

#[test]
fn a_heartbeat_costs_the_same_per_attempt_and_a_quiet_reaper_nothing_however_many_run() {
    let (small_beat, small_reap) = lease_costs(100);
    let (large_beat, large_reap) = lease_costs(2_000);
    assert!(
        large_beat <= small_beat * 1.5,
        "a heartbeat's steps per attempt grew from {small_beat:.1} (100 in flight) to \
         {large_beat:.1} (2,000 in flight)"
    );
    assert!(
        small_beat > 0.0,
        "the heartbeat read nothing: the meter is not counting"
    );
    assert_eq!(
        (small_reap, large_reap),
        (0, 0),
        "a reaper pass with nothing due ran SQLite"
    );
}
