//! Bad input: each mistake gets a message naming the problem and the fix, its documented exit code,
//! and leaves the database exactly as it was: the same events (same last sequence number), the same
//! tasks, agents and orchestrations.

use std::sync::Arc;

use maos_application::{MaosApi, Service, ServiceConfig};
use maos_domain::{FencingToken, TaskId};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

use crate::support::{Env, Run};

/// Runs `args` (text, then JSON), checks the exit code and that nothing changed, and records
/// both runs for the snapshot.
fn refused(env: &Env, args: &[&str], code: i32) {
    let before = env.state();
    let seq = env.last_seq();
    let text = env.step(args);
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let json = env.step(&with_json);
    for run in [&text, &json] {
        assert_eq!(
            run.code, code,
            "{:?}\n{}{}",
            run.args, run.stdout, run.stderr
        );
        assert!(
            run.stderr.starts_with("error: "),
            "{:?}: {}",
            run.args,
            run.stderr
        );
    }
    assert!(text.stdout.is_empty(), "{:?}: {}", text.args, text.stdout);
    let doc = json.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["error"]["exit_code"].as_i64(), Some(i64::from(code)));
    assert_eq!(env.last_seq(), seq, "{args:?} appended events");
    assert_eq!(env.state(), before, "{args:?} changed the database");
}

/// A populated database: an agent, two tasks (the second depends on the first), an
/// orchestration.
fn populated() -> (Env, String, String) {
    let env = Env::new();
    env.agent("claude-1", "rust");
    let a = env.task("First", &["-c", "rust"]);
    let b = env.task("Second", &["--depends-on", &a]);
    env.ok_json(&["orchestrate", "create", "Plan"]);
    (env, a, b)
}

#[test]
fn invalid_names_and_capabilities_exit_2() {
    let (env, _, _) = populated();
    refused(
        &env,
        &["agent", "register", "Claude 2", "--adapter", "claude-code"],
        2,
    );
    refused(
        &env,
        &["agent", "register", "Claude", "--adapter", "claude-code"],
        2,
    );
    refused(&env, &["agent", "register", "_x", "--adapter", "codex"], 2);
    refused(
        &env,
        &[
            "agent",
            "register",
            "ok",
            "--adapter",
            "codex",
            "--capability",
            "Rust!",
        ],
        2,
    );
    refused(&env, &["agent", "register", "ok", "--adapter", "gpt"], 2);
    refused(
        &env,
        &[
            "agent",
            "register",
            "ok",
            "--adapter",
            "codex",
            "--slots",
            "0",
        ],
        2,
    );
    refused(
        &env,
        &["agent", "register", "ok", "--adapter", "command"],
        2,
    );
    refused(&env, &["agent", "show", "NoSuch"], 2);
    refused(&env, &["task", "create", "Ok", "-c", "a b"], 2);
    refused(&env, &["task", "create", "   "], 2);
    refused(&env, &["task", "create", "Ok", "--priority", "asap"], 2);
    refused(&env, &["task", "create", "Ok", "--timeout", "10"], 2);
    refused(&env, &["task", "create", "Ok", "--max-attempts", "101"], 2);
    refused(
        &env,
        &[
            "task",
            "create",
            "Ok",
            "--prompt",
            "x",
            "--prompt-file",
            "p.md",
        ],
        2,
    );
    refused(
        &env,
        &[
            "task",
            "create",
            "Ok",
            "--prompt-file",
            "/no/such/prompt.md",
        ],
        2,
    );
    refused(
        &env,
        &["task", "create", "Ok", "--idempotency-key", "has space"],
        2,
    );
    refused(&env, &["task", "show", "lo!"], 2);
    refused(&env, &["task", "list", "--status", "done"], 2);
    refused(&env, &["task", "list", "--cursor", "page-2"], 2);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn unknown_ids_and_names_exit_3() {
    let (env, _, _) = populated();
    refused(&env, &["task", "show", "zzzzzz"], 3);
    refused(&env, &["task", "assign", "zzzzzz"], 3);
    refused(&env, &["task", "cancel", "zzzzzz"], 3);
    refused(&env, &["task", "depend", "zzzzzz", "--on", "yyyyyy"], 3);
    refused(
        &env,
        &["task", "create", "Ok", "--orchestration", "zzzzzz"],
        3,
    );
    refused(&env, &["task", "list", "--orchestration", "zzzzzz"], 3);
    refused(&env, &["orchestrate", "show", "zzzzzz"], 3);
    refused(&env, &["agent", "show", "nobody"], 3);
    refused(&env, &["agent", "drain", "nobody"], 3);
    refused(&env, &["agent", "remove", "nobody"], 3);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn dependency_on_a_missing_task_exits_3() {
    let (env, a, _) = populated();
    refused(&env, &["task", "create", "Ok", "--depends-on", "zzzzzz"], 3);
    refused(
        &env,
        &[
            "task",
            "create",
            "Ok",
            "--depends-on",
            &a,
            "--depends-on",
            "zzzzzz",
        ],
        3,
    );
    refused(&env, &["task", "depend", &a, "--on", "zzzzzz"], 3);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn ambiguous_prefix_exits_2_and_lists_the_candidates() {
    let env = Env::new();
    // Two ids that share four characters would take a thousand tasks to meet by chance: the
    // second task's id is rewritten in raw SQL to start like the first (nothing else refers to
    // a task without dependencies or attempts but its events, which these refusals never read).
    let first = env.task("Task 1", &[]);
    let made = env.task("Task 2", &[]);
    let second = format!("{}{}", &first[..4], &made[4..]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let changed = conn
        .execute("UPDATE tasks SET id = ?1 WHERE id = ?2", [&second, &made])
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let mut pair = [first.clone(), second.clone()];
    pair.sort();
    let [first, second] = pair;
    let prefix = first[..4].to_owned();
    env.replace(&first, "<candidate-1>");
    env.replace(&second, "<candidate-2>");
    env.alias(&prefix, "<prefix>");
    env.replace(&format!("prefix \"{prefix}\""), "prefix \"<prefix>\"");
    env.replace(
        &format!("prefix \\\"{prefix}\\\""),
        "prefix \\\"<prefix>\\\"",
    );
    refused(&env, &["task", "show", &prefix], 2);
    refused(&env, &["task", "cancel", &prefix], 2);
    refused(&env, &["task", "assign", &prefix], 2);
    refused(&env, &["task", "create", "Ok", "--depends-on", &prefix], 2);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn an_id_prefix_shorter_than_four_characters_is_refused_with_exit_2() {
    let env = Env::new();
    let id = env.task("Task", &[]);
    let short = id[..3].to_owned();
    env.alias(&short, "<3 characters>");
    env.replace(&format!("'{short}'"), "'<3 characters>'");
    refused(&env, &["task", "show", &short], 2);
    refused(&env, &["approve", &short], 2);
    refused(&env, &["task", "create", "Ok", "--depends-on", &short], 2);
    refused(&env, &["orchestrate", "status", "x"], 2);
    // Four characters are enough.
    assert_eq!(env.maos(&["task", "show", &id[..4]]).code, 0);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn duplicate_agent_name_exits_4() {
    let (env, _, _) = populated();
    refused(
        &env,
        &["agent", "register", "claude-1", "--adapter", "codex"],
        4,
    );
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn dependency_cycle_exits_4() {
    let (env, a, b) = populated();
    let c = env.task("Third", &["--depends-on", &b]);
    // a <- b <- c: a depending on c closes a cycle, and so does depending on itself.
    refused(&env, &["task", "depend", &a[..8], "--on", &c[..8]], 4);
    refused(&env, &["task", "depend", &b[..8], "--on", &b[..8]], 4);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn conflicts_exit_4() {
    let (env, a, b) = populated();
    // Not ready: it waits for `a`.
    refused(&env, &["task", "assign", &b], 4);
    // No agent offers `go`.
    let g = env.task("Go work", &["-c", "go"]);
    refused(&env, &["task", "assign", &g], 4);
    // The agent's only slot is taken, then it cannot be removed.
    env.ok_json(&["task", "assign", &a]);
    refused(&env, &["agent", "remove", "claude-1"], 4);
    let r = env.task("More rust", &["-c", "rust"]);
    refused(&env, &["task", "assign", &r, "--agent", "claude-1"], 4);
    insta::assert_snapshot!(env.transcript());
}

fn complete_directly(env: &Env, task: &str, fencing: u64) {
    let store = Arc::new(SqliteStore::open(&env.db()).unwrap());
    let service = Service::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig::default(),
    );
    let id = TaskId::parse(task).unwrap();
    service
        .start_attempt(id, FencingToken::new(fencing), Default::default())
        .unwrap();
    let done = service
        .complete_attempt(
            id,
            FencingToken::new(fencing),
            Some("fixed".into()),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(done.state.as_str(), "completed");
}

#[test]
fn cancelling_a_completed_task_exits_4() {
    let (env, a, _) = populated();
    let assigned = env.ok_json(&["task", "assign", &a]);
    let fencing = assigned["fencing"].as_u64().unwrap();
    complete_directly(&env, &a, fencing);
    // The attempt's duration varies from run to run.
    let shown = env.ok_json(&["task", "show", &a]);
    let ms = shown["task"]["attempts"][0]["duration_ms"]
        .as_u64()
        .unwrap();
    let shown = if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    };
    // The DURATION column is as wide as its header.
    env.replace(&format!("  {shown:<8}  "), &format!("  {:<8}  ", "<dur>"));
    env.step(&["task", "show", &a]);
    refused(&env, &["task", "cancel", &a], 4);
    refused(&env, &["task", "assign", &a], 4);
    insta::assert_snapshot!(env.transcript());
}

fn not_maos(env: &Env, bytes: &[u8]) -> Vec<Run> {
    std::fs::write(env.db(), bytes).unwrap();
    let mut runs = Vec::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["agent", "register", "claude-1", "--adapter", "codex"],
        &["task", "create", "Ok", "--json"],
        &["events"],
    ] {
        let run = env.step(args);
        assert_eq!(run.code, 5, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
        runs.push(run);
    }
    assert_eq!(
        std::fs::read_dir(env.dir()).unwrap().count(),
        1,
        "no other files appeared"
    );
    runs
}

#[test]
fn a_file_that_is_not_a_maos_database_exits_5() {
    let env = Env::new();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    not_maos(&env, &garbage);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn a_text_file_is_not_a_maos_database() {
    let env = Env::new();
    not_maos(&env, "name,score\nada,10\n".repeat(200).as_bytes());
    insta::assert_snapshot!(env.transcript());
}

/// A MAOS database of this test's data directory with an agent, closed (its daemon stopped, its
/// log checkpointed into the file), and its bytes.
fn closed_database(env: &Env) -> Vec<u8> {
    env.agent("claude-1", "rust");
    let _ = env.maos(&["daemon", "stop"]);
    // The daemon leaves its write-ahead log behind; the last connection to close (an in-process
    // run, once the daemon is gone) checkpoints it into the file and removes it.
    let wal = env.dir().join("maos.db-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while wal.exists() && std::time::Instant::now() < deadline {
        let run = env.maos_env(&["status"], &[("MAOS_NO_DAEMON", "1")]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!wal.exists(), "the database's log is still there");
    std::fs::read(env.db()).unwrap()
}

/// Runs commands on the damaged database `bytes`: each exits 5, says it is damaged, and leaves
/// the file as it was.
fn damaged(env: &Env, bytes: &[u8]) {
    std::fs::write(env.db(), bytes).unwrap();
    for args in [&["status"][..], &["task", "create", "Ok", "--json"]] {
        let run = env.step(args);
        assert_eq!(run.code, 5, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("is damaged"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("not a MAOS database"),
            "{}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn a_damaged_maos_database_is_not_called_foreign_and_says_how_to_recover() {
    let env = Env::new();
    let bytes = closed_database(&env);
    // Cut short (a copy that stopped, a full disk).
    let half = bytes.len() / 2;
    env.replace(
        &format!("{half} bytes, but its header says {}", bytes.len()),
        "<half> bytes, but its header says <size>",
    );
    damaged(&env, &bytes[..half]);
    // The SQLite header, then noise.
    let mut noise = bytes[..100].to_vec();
    noise.extend((100..bytes.len() as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    damaged(&env, &noise);
    insta::assert_snapshot!(env.transcript());
}

/// A directory that even root cannot write to: permission bits do not stop root (the tests run
/// as root in CI), but sysfs refuses to create files for everyone.
const READ_ONLY_DIR: &str = "/sys/kernel";

#[test]
fn a_read_only_data_directory_says_so() {
    let dir = std::path::Path::new(READ_ONLY_DIR);
    let probe = dir.join("maos-test-probe");
    if !dir.is_dir() || std::fs::File::create(&probe).is_ok() {
        let _ = std::fs::remove_file(&probe);
        eprintln!("skipped: {READ_ONLY_DIR} is missing or writable here");
        return;
    }
    let mode =
        || std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir).unwrap().permissions());
    let before = mode();
    let env = Env::new();
    for args in [
        &["status", "--data-dir", READ_ONLY_DIR][..],
        &["task", "create", "T", "--data-dir", READ_ONLY_DIR, "--json"],
    ] {
        let run = env.step(args);
        assert_eq!(run.code, 5, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("the data directory /sys/kernel is read-only"),
            "{}",
            run.stderr
        );
    }
    // A data directory to be created in a read-only directory: the same code and words
    // through the daemon and in process.
    let inside = format!("{READ_ONLY_DIR}/maos");
    let run = env.step(&["status", "--data-dir", &inside]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("the directory it goes in is read-only"),
        "{}",
        run.stderr
    );
    // Refused untouched: not made private either (root may chmod it, and MAOS once did).
    assert_eq!(mode(), before, "the mode of {READ_ONLY_DIR} changed");
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn out_of_range_numbers_name_the_range_and_long_values_are_cut_short() {
    let (env, _, _) = populated();
    // A negative number is a value out of range, not an unknown flag.
    refused(
        &env,
        &[
            "agent",
            "register",
            "x",
            "--adapter",
            "sim",
            "--slots",
            "-1",
        ],
        2,
    );
    refused(
        &env,
        &[
            "agent",
            "register",
            "x",
            "--adapter",
            "sim",
            "--slots",
            "257",
        ],
        2,
    );
    refused(&env, &["task", "create", "T", "--max-attempts", "-3"], 2);
    refused(&env, &["task", "list", "--limit", "-1"], 2);
    refused(&env, &["events", "--since", "-1"], 2);
    // A 10,000-character value is echoed as its first 60 characters and a count.
    let long = "a".repeat(10_000);
    env.alias(&long, "<10000 × a>");
    refused(&env, &["agent", "show", &long], 2);
    refused(&env, &["task", "create", "T", "--capability", &long], 2);
    let transcript = env.transcript();
    assert!(
        !transcript.contains(&"a".repeat(61)),
        "not cut: {transcript}"
    );
    insta::assert_snapshot!(transcript);
}

#[test]
fn agents_and_config_files_report_every_problem_at_once_in_plain_words() {
    let (env, _, _) = populated();
    let agents = env.dir().join("agents.toml");
    std::fs::write(
        &agents,
        "[[agent]]\nname = \"scribe\"\nadapter = \"command\"\ncommand = [\"claude\"]\n\
         slots = -1\ncapabilites = [\"rust\"]\n\n[[agent]]\nname = \"Bad\"\nadapter = \"sim\"\n\
         permissions = { allow = \"Read\" }\n",
    )
    .unwrap();
    let agents = agents.to_str().unwrap();
    refused(&env, &["agent", "register", "--from-file", agents], 2);
    // Bytes that are not UTF-8 are placed too.
    let latin1 = env.dir().join("latin1.toml");
    std::fs::write(&latin1, b"[[agent]]\nname = \"caf\xe9\"\n").unwrap();
    refused(
        &env,
        &["agent", "register", "--from-file", latin1.to_str().unwrap()],
        2,
    );
    // config.toml: the daemon reads it when it starts.
    let _ = env.maos(&["daemon", "stop"]);
    env.config(
        "approve_plan = \"auto\"\nbriefing_tokens = \"8000\"\n\n[retry]\nbase = 2\njitter_percent = 300\n\n\
         [circuit_breaker]\n\n[[route]]\npattern = \"test\"\ncapabilities = \"test\"\n",
    );
    let run = env.step(&["status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = env.step(&["task", "list", "--json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    std::fs::remove_file(env.dir().join("config.toml")).unwrap();
    insta::assert_snapshot!(env.transcript());
}
