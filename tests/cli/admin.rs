//! `maos admin verify`: a database after a real run agrees with its event log (exit 0); one
//! tampered with in raw SQL (a task's state changed without an event, an event deleted from the
//! middle of the log, a wrong fencing token) is reported problem by problem, each with its kind and
//! facts, and exit 8. The crash tests (daemon.rs, runtime.rs) end with `assert_verified` too.

use serde_json::Value;

use crate::fixtures::*;
use crate::support::{Env, in_process};

/// A connection of the test's own to the database: raw SQL, past MAOS.
fn raw(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.db()).unwrap()
}

fn problems<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

#[test]
fn a_real_run_verifies_clean_and_each_kind_of_tampering_is_reported() {
    if in_process() {
        return;
    }
    let env = Env::new();
    // A run with successes, failures and retries: a sim agent, a command agent that fails the
    // first attempt of each of its tasks, a plan with a dependency, a cancelled task.
    env.ok_json(&[
        "agent",
        "register",
        "sim-1",
        "--adapter",
        "sim",
        "--capability",
        "sim",
    ]);
    let work = tempfile::tempdir().unwrap();
    let flaky = script(
        work.path(),
        "flaky",
        "if [ \"$MAOS_ATTEMPT\" = 1 ]; then echo broke; exit 3; fi\necho fine\n",
    );
    env.ok_json(&[
        "agent",
        "register",
        "flaky",
        "--adapter",
        "command",
        "--command",
        &flaky,
        "--capability",
        "retry",
        "--slots",
        "2",
    ]);
    let retried = env.task("Twice", &["--capability", "retry", "--max-attempts", "3"]);
    let once = env.task("Once", &["--capability", "sim"]);
    let cancelled = env.task("Never", &["--capability", "nobody-has-this"]);
    env.ok_json(&["task", "cancel", &cancelled, "--reason", "not needed"]);
    let plan = env.dir().join("plan.toml");
    std::fs::write(
        &plan,
        "name = \"Pair\"\ngoal = \"Both\"\n\n[[task]]\nid = \"a\"\ntitle = \"First\"\nprompt = \"p\"\n\
         capabilities = [\"retry\"]\n\n[[task]]\nid = \"b\"\ntitle = \"Second\"\nprompt = \"p\"\n\
         depends_on = [\"a\"]\ncapabilities = [\"sim\"]\n",
    )
    .unwrap();
    let made = env.ok_json(&["orchestrate", "run", plan.to_str().unwrap(), "--yes"]);
    let planned: Vec<String> = made["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"]["id"].as_str().unwrap().to_owned())
        .collect();
    for t in [&retried, &once].into_iter().chain(&planned) {
        wait_for(&env, t, "completed", |t| t["state"] == "completed");
    }
    let attempts = env.ok_json(&["task", "show", &retried])["task"]["attempts"].clone();
    assert_eq!(attempts.as_array().unwrap().len(), 2, "{attempts:#}");

    let run = env.maos(&["admin", "verify"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("the database agrees with its event log: "),
        "{}",
        run.stdout
    );
    assert_verified(&env);

    // Tampering, past MAOS: the triggers that guard the log are dropped and put back inside
    // the test's own transaction.
    let conn = raw(&env);
    conn.execute(
        "UPDATE tasks SET state = 'completed' WHERE id = ?1",
        [&cancelled],
    )
    .unwrap();
    let middle: i64 = conn
        .query_row("SELECT max(seq) / 2 FROM events", [], |r| r.get(0))
        .unwrap();
    let deleted_of: String = conn
        .query_row(
            "SELECT aggregate_id FROM events WHERE seq = ?1",
            [middle],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         DROP TRIGGER events_no_delete;
         DELETE FROM events WHERE seq = {middle};
         CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
             SELECT RAISE (ABORT, 'the event log is append-only');
         END;
         COMMIT;"
    ))
    .unwrap();
    // The retried task's attempts: the first made live again, with a token above the second's,
    // and the second renumbered.
    conn.execute(
        "UPDATE attempts SET fencing = fencing + 1000, status = 'running' \
         WHERE task = ?1 AND number = 1",
        [&retried],
    )
    .unwrap();
    conn.execute(
        "UPDATE attempts SET number = 5 WHERE task = ?1 AND number = 2",
        [&retried],
    )
    .unwrap();
    drop(conn);

    let run = env.maos(&["admin", "verify", "--json"]);
    assert_eq!(run.code, 8, "{}{}", run.stdout, run.stderr);
    // One document on stdout, and the error on stderr.
    let doc = run.json();
    assert_eq!(doc["clean"], false);
    assert!(
        run.stderr
            .contains("the database disagrees with its event log"),
        "{}",
        run.stderr
    );

    let gap = problems(&doc, "sequence_gap");
    assert_eq!(gap.len(), 1, "{doc:#}");
    assert_eq!(gap[0]["aggregate"], "log");
    assert_eq!(gap[0]["facts"]["expected_seq"], middle.to_string());
    assert_eq!(gap[0]["facts"]["found_seq"], (middle + 1).to_string());

    let state = problems(&doc, "state_mismatch");
    let changed = state
        .iter()
        .find(|p| p["id"] == cancelled.as_str())
        .unwrap_or_else(|| panic!("no state_mismatch for {cancelled}: {doc:#}"));
    assert_eq!(changed["aggregate"], "task");
    assert!(
        changed["facts"]["fields"]
            .as_str()
            .unwrap()
            .split(',')
            .any(|f| f == "state"),
        "{changed}"
    );

    for kind in ["fencing", "live_attempts", "attempt_numbers"] {
        let found = problems(&doc, kind);
        assert_eq!(found.len(), 1, "{kind}: {doc:#}");
        assert_eq!(found[0]["id"], retried.as_str(), "{kind}: {doc:#}");
    }
    assert_eq!(
        problems(&doc, "attempt_numbers")[0]["facts"]["numbers"],
        "1,5"
    );
    assert_eq!(problems(&doc, "live_attempts")[0]["facts"]["live"], "1");
    assert!(
        state.iter().any(|p| p["id"] == retried.as_str()
            && p["facts"]["fields"].as_str().unwrap().contains("attempts")),
        "{doc:#}"
    );
    // Nothing else: every problem concerns the log or an aggregate that was tampered with.
    for p in doc["problems"].as_array().unwrap() {
        let id = p["id"].as_str();
        assert!(
            id.is_none_or(|id| [&retried, &cancelled, &deleted_of].contains(&&id.to_owned())),
            "an untouched aggregate disagrees: {p:#}"
        );
    }

    // The same in text: each problem on a line with its kind.
    let text = env.maos(&["admin", "verify"]);
    assert_eq!(text.code, 8);
    for kind in [
        "sequence_gap",
        "state_mismatch",
        "fencing",
        "live_attempts",
        "attempt_numbers",
    ] {
        assert!(
            text.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(kind)),
            "{kind}: {}",
            text.stdout
        );
    }
    assert!(
        text.stderr.contains("error: the database disagrees"),
        "{}",
        text.stderr
    );
}

#[test]
fn verify_reads_beside_a_running_daemon_and_refuses_a_missing_database() {
    let env = Env::new();
    env.agent("worker", "rust");
    env.task("Something", &[]);
    // Through the daemon: it still runs, and verify reads the file itself.
    assert_verified(&env);
    env.task("Something else", &[]);
    assert_verified(&env);

    let empty = tempfile::tempdir().unwrap();
    let run = env.maos(&[
        "admin",
        "verify",
        "--data-dir",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("there is no database"),
        "{}",
        run.stderr
    );
    assert!(
        !empty.path().join("maos.db").exists(),
        "verify created a database"
    );
}
