//! Following the log: `wait_for_events` wakes on this store's commits as they happen, times out
//! otherwise, and sees the commits of another store on the same file (another process) at its
//! timeout; the service's follower built on it returns every event once, in order.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use maos_application::{FOLLOW_BATCH, MaosApi, ReadStore};

use crate::support::{Db, assert_gapless, service_at, task};

/// Long enough that a wait which ends well before it was woken, not timed out.
const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_wait_past_the_end_of_the_log_returns_at_once() {
    let db = Db::new();
    assert_eq!(db.store().wait_for_events(0, Duration::ZERO).unwrap(), 0);
    db.create_titled("One");
    let last = db.events().last().unwrap().seq;
    let started = Instant::now();
    assert_eq!(db.store().wait_for_events(0, LONG).unwrap(), last);
    assert_eq!(db.store().wait_for_events(last - 1, LONG).unwrap(), last);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_commit_from_another_thread_wakes_the_wait_promptly() {
    let db = Db::new();
    db.create_titled("Before");
    let last = db.store().wait_for_events(0, Duration::ZERO).unwrap();
    let svc = db.svc.clone();
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let seen = svc.store().wait_for_events(last, LONG).unwrap();
        (seen, started.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    db.create_titled("After");
    let (seen, waited) = waiter.join().unwrap();
    assert!(seen > last, "the wait returned {seen}, not past {last}");
    assert!(
        waited < Duration::from_secs(10),
        "the commit did not wake the wait: it took {waited:?}"
    );
}

#[test]
fn without_a_commit_the_wait_times_out_with_the_last_seq() {
    let db = Db::new();
    db.create_titled("Only");
    let last = db.events().last().unwrap().seq;
    let started = Instant::now();
    assert_eq!(
        db.store()
            .wait_for_events(last, Duration::from_millis(200))
            .unwrap(),
        last
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn commits_of_another_store_on_the_same_file_are_seen_at_the_timeout() {
    let db = Db::new();
    db.create_titled("Mine");
    // A second store on the same file, as another `maos --no-daemon` process would open it: its
    // commits never reach the first store's signal.
    let other = service_at(&db.path, Arc::clone(&db.clock), Arc::clone(&db.ids));
    let last = db.events().last().unwrap().seq;
    let svc = db.svc.clone();
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let seen = svc
            .store()
            .wait_for_events(last, Duration::from_millis(500))
            .unwrap();
        (seen, started.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    other.create_task(task("Theirs")).unwrap();
    let (seen, waited) = waiter.join().unwrap();
    assert!(seen > last, "the other store's commit was not seen: {seen}");
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    // The signal has caught up: the next wait past the old end returns at once.
    let started = Instant::now();
    assert_eq!(db.store().wait_for_events(last, LONG).unwrap(), seen);
    assert!(started.elapsed() < Duration::from_secs(5));
    // And a follower of the first store gets the other store's events.
    let mut follower = db.svc.follow_events(last).unwrap();
    let batch = follower.next_batch(Duration::from_millis(500)).unwrap();
    assert_eq!(batch.first().map(|e| e.seq), Some(last + 1));
}

#[test]
fn a_follower_returns_what_exists_then_what_comes_in_order_once() {
    let db = Db::new();
    let first: Vec<_> = (0..FOLLOW_BATCH + 10)
        .map(|i| task(&format!("Early {i}")))
        .collect();
    db.svc.create_tasks(first).unwrap();
    let mut follower = db.svc.follow_events(0).unwrap();
    let writer = {
        let svc = db.svc.clone();
        thread::spawn(move || {
            for i in 0..50 {
                svc.create_task(task(&format!("Late {i}"))).unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut batches = 0;
    let deadline = Instant::now() + LONG;
    loop {
        assert!(Instant::now() < deadline, "only {} events came", seen.len());
        let batch = follower.next_batch(Duration::from_secs(1)).unwrap();
        assert!(batch.len() <= FOLLOW_BATCH);
        batches += usize::from(!batch.is_empty());
        seen.extend(batch);
        if writer.is_finished() && seen.last().map(|e| e.seq) == db.events().last().map(|e| e.seq) {
            break;
        }
    }
    writer.join().unwrap();
    assert!(batches >= 3, "{batches} batches");
    assert_gapless(&seen);
    assert!(
        seen == db.events(),
        "the follower's events differ from the log"
    );
    // Nothing more: an empty batch at the timeout.
    assert!(
        follower
            .next_batch(Duration::from_millis(50))
            .unwrap()
            .is_empty()
    );
}
