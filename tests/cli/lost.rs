//! No acknowledged write is lost when the database's files are deleted or replaced under a
//! running daemon: it notices (before acknowledging, and on a timer), refuses every write with
//! a storage error that says what happened, stops, and never makes a fresh database in place
//! of the one that vanished while it ran.

use std::time::{Duration, Instant};

use crate::support::{Env, in_process};

fn daemon_gone(env: &Env) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lock = env.dir().join("daemon.lock");
        let held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock)
            .map(|f| f.try_lock().is_err())
            .unwrap_or(false);
        if !held {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_database_deleted_under_the_daemon_refuses_writes_and_stops_the_daemon() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.ok_json(&["daemon", "start"]);
    env.ok_json(&["task", "create", "Before"]);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.dir().join(format!("maos.db{suffix}")));
    }
    let after = env.maos(&["task", "create", "After", "--json"]);
    assert_eq!(after.code, 5, "{after:?}");
    assert!(
        after
            .stderr
            .contains("the database file was deleted while the daemon used it"),
        "{}",
        after.stderr
    );
    assert!(
        daemon_gone(&env),
        "the daemon kept running on a deleted database"
    );
    // It did not make a fresh database in place of the one that vanished.
    assert!(!env.dir().join("maos.db").exists());
    let log = std::fs::read_to_string(env.dir().join("daemon.log")).unwrap();
    assert!(log.contains("every write since was refused"), "{log}");
}

#[test]
fn a_database_replaced_under_the_daemon_loses_no_acknowledged_write() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.ok_json(&["daemon", "start"]);
    env.ok_json(&["task", "create", "One"]);
    // Someone restores an older copy over the live database.
    let copy = env.dir().join("copy.db");
    let copied = std::process::Command::new("sqlite3")
        .arg(env.db())
        .arg(format!(".backup '{}'", copy.display()))
        .status();
    if !copied.is_ok_and(|s| s.success()) {
        std::fs::copy(env.db(), &copy).unwrap();
    }
    std::fs::rename(&copy, env.db()).unwrap();
    let refused = env.maos(&["task", "create", "Two", "--json"]);
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused.stderr.contains("was replaced by another file"),
        "{}",
        refused.stderr
    );
    assert!(
        daemon_gone(&env),
        "the daemon kept running on a replaced database"
    );
    // Whatever the next daemon finds, no task it was told about is missing: "Two" was refused.
    let listed = env.ok_json(&["task", "list"]);
    let titles: Vec<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert!(!titles.contains(&"Two"), "{titles:?}");
}
