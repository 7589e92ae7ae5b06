//! `maos memory add|list|search|show|pin|unpin|forget`, as text and as JSON: ranking, pinning,
//! forgetting, expiry seen through `list`, scopes (`repo:.` among them), hostile text, and bad
//! input refused with nothing stored.

use crate::fixtures::Repo;
use crate::support::Env;

fn memory_session(env: &Env, json: &[&str]) {
    let step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(json);
        env.step(&all)
    };
    step(&[
        "memory",
        "add",
        "The release needs a signed tag",
        "--tag",
        "release,git",
    ]);
    step(&[
        "memory",
        "add",
        "Never release on a Friday",
        "--tier",
        "critical",
    ]);
    step(&[
        "memory",
        "add",
        "Release notes go in CHANGES.md",
        "--tier",
        "important",
        "--scope",
        "repo:/srv/app/",
        "--tag",
        "release",
    ]);
    step(&[
        "memory",
        "add",
        "The release train leaves at noon",
        "--tier",
        "ephemeral",
    ]);
    step(&["memory", "list"]);
    step(&["memory", "list", "--tag", "release"]);
    step(&["memory", "list", "--scope", "repo:/srv/app"]);
    step(&[
        "memory",
        "list",
        "--tier",
        "critical",
        "--tier",
        "important",
    ]);
    // Critical first, then important, routine and ephemeral: the same word in each.
    step(&["memory", "search", "release"]);
    // No entry has every word: the entries with any of them.
    step(&["memory", "search", "friday noon"]);
    step(&[
        "memory", "search", "release", "--scope", "global", "--limit", "2",
    ]);
}

fn memory_changes(env: &Env, json: &[&str]) {
    let step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(json);
        env.step(&all)
    };
    let id =
        env.ok_json(&["memory", "add", "Prefer small commits", "--tag", "git"])["memory"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    env.ok_json(&["memory", "add", "Commits are signed", "--tier", "important"]);
    let prefix = &id[..6];
    step(&["memory", "show", prefix]);
    step(&["memory", "pin", prefix]);
    // Pinned, a routine entry comes before an important one.
    step(&["memory", "search", "commits"]);
    step(&["memory", "pin", prefix]);
    step(&["memory", "unpin", prefix]);
    step(&["memory", "unpin", prefix]);
    step(&["memory", "forget", prefix, "--reason", "we squash now"]);
    step(&["memory", "forget", prefix]);
    step(&["memory", "search", "commits"]);
    step(&["memory", "list", "--all"]);
    step(&["memory", "show", prefix]);
    step(&["memory", "show", "zzzzzz"]);
}

#[test]
fn memory_commands_human() {
    let env = Env::new();
    memory_session(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn memory_commands_json() {
    let env = Env::new();
    memory_session(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn pin_unpin_forget_human() {
    let env = Env::new();
    memory_changes(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn pin_unpin_forget_json() {
    let env = Env::new();
    memory_changes(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn hostile_text_is_stored_as_is_searched_as_words_and_escaped_on_a_terminal() {
    let env = Env::new();
    let hostile = "say \"hi\" NEAR( OR * \u{1b}[31mred\u{1b}[0m \u{202e}reversed";
    env.alias(hostile, "<hostile text>");
    env.step(&["memory", "add", hostile]);
    env.step(&["memory", "search", "NEAR("]);
    env.step(&["memory", "search", "\"hi\" OR *"]);
    env.step(&["memory", "list"]);
    let doc = env.ok_json(&["memory", "search", "reversed"]);
    assert_eq!(doc["hits"][0]["memory"]["text"], hostile);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn text_from_standard_input_and_the_current_repository_as_scope() {
    let env = Env::new();
    let repo = Repo::new();
    env.replace(&repo.arg(), "<repo>");
    env.step_stdin(
        &["memory", "add", "-", "--tier", "important"],
        "  First line of a lesson.\nSecond line.\n\n",
    );
    let run = env.maos_in(
        &repo.path(),
        &["memory", "add", "Use make", "--scope", "repo:.", "--json"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.json()["memory"]["scope"],
        format!("repo:{}", repo.arg())
    );
    // Outside any repository, `repo:.` names nothing.
    let outside = tempfile::tempdir().unwrap();
    let run = env.maos_in(outside.path(), &["memory", "add", "x", "--scope", "repo:."]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("repo:."), "{}", run.stderr);
    env.step(&["memory", "list", "--scope", &format!("repo:{}", repo.arg())]);
    env.step(&["memory", "list"]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn ephemeral_entries_leave_the_list_once_their_time_is_up() {
    let env = Env::new();
    env.config("[memory]\nephemeral_ttl = \"3s\"\n");
    let warm = env.ok_json(&[
        "memory",
        "add",
        "the build cache is warm",
        "--tier",
        "ephemeral",
    ])["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pinned = env.ok_json(&[
        "memory",
        "add",
        "the build box is slow",
        "--tier",
        "ephemeral",
    ])["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok_json(&["memory", "pin", &pinned]);
    env.ok_json(&["memory", "add", "build with --locked"]);
    let texts = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["memory"];
        all.extend(args);
        env.ok_json(&all)["memories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&["list"]).len(), 3);
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // Its time is up: gone from lists and searches (swept or not), the pinned one stays.
    assert_eq!(
        texts(&["list"]),
        ["build with --locked", "the build box is slow"]
    );
    let found = env.ok_json(&["memory", "search", "build"]);
    assert_eq!(found["hits"].as_array().unwrap().len(), 2, "{found:#}");
    assert_eq!(texts(&["list", "--all"]).len(), 3);
    let shown = env.maos(&["memory", "show", &warm]);
    // Until the daemon sweeps (every few seconds), `show` says its time is up; after, expired.
    assert!(
        shown.stdout.contains("its time is up") || shown.stdout.contains("expired"),
        "{}{}",
        shown.stdout,
        shown.stderr
    );
    // The daemon's sweep records that it expired (in process nothing sweeps).
    if !crate::support::in_process() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let doc = env.ok_json(&["memory", "show", &warm]);
            if doc["memory"]["state"] == "expired" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon never swept: {doc:#}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let events = env.ok_json(&["events"]);
        let kinds: Vec<&str> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "memory.expired").count(), 1);
    }
    // Unpinned, the other one goes too.
    env.ok_json(&["memory", "unpin", &pinned]);
    assert_eq!(texts(&["list"]), ["build with --locked"]);
    let refused = env.maos(&["memory", "pin", &pinned]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let env = Env::new();
    env.ok_json(&["memory", "add", "one entry"]);
    let before = env.state();
    let big = "x".repeat(8193);
    env.alias(&big, "<8193 bytes>");
    let tags: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let tags = tags.join(",");
    env.alias(&tags, "<17 tags>");
    env.step(&["memory", "add", &big]);
    env.step(&["memory", "add", "   "]);
    env.step(&["memory", "add", "x", "--tier", "urgent"]);
    env.step(&["memory", "add", "x", "--scope", "team:a"]);
    env.step(&["memory", "add", "x", "--scope", "repo:relative/path"]);
    env.step(&["memory", "add", "x", "--scope", "repo:/a/../b"]);
    env.step(&["memory", "add", "x", "--scope", "orchestration:zzzzzz"]);
    env.step(&["memory", "add", "x", "--scope", "orchestration:zz"]);
    env.step(&["memory", "add", "x", "--tag", "Has Space"]);
    env.step(&["memory", "add", "x", "--tag", &tags]);
    env.step_stdin(&["memory", "add", "-"], &"y".repeat(9000));
    env.step_stdin(&["memory", "add", "-"], &"z".repeat(70_000));
    env.step_stdin(&["memory", "add", "-"], " \n \n");
    env.step(&["memory", "search", "\"*\" ( )"]);
    env.step(&["memory", "list", "--limit", "0"]);
    env.step(&["memory", "search", "x", "--limit", "101"]);
    env.step(&["memory", "list", "--cursor", "nonsense"]);
    env.step(&["memory", "forget", "zzzz", "--reason", "x"]);
    assert_eq!(env.state(), before, "a refused command stored something");
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn memory_ids_complete_with_their_first_line_escaped() {
    let env = Env::new();
    let id = env.ok_json(&["memory", "add", "Ring the \u{7}bell\nsecond line"])["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = env.maos_env(
        &["--", "maos", "memory", "pin", &id[..6]],
        &[("COMPLETE", "fish")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{id}\tRing the \\x07bell\n"));
}

/// A briefing draws on memory: the pinned critical entry of its scopes whole, a relevant
/// routine one left out to fit a small budget (and said so), another repository's left out.
fn memory_in_briefings(env: &Env, json: &[&str]) {
    env.config("briefing_tokens = 120\n");
    let rule = env.ok_json(&[
        "memory",
        "add",
        "Never force-push to main.",
        "--tier",
        "critical",
    ])["memory"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok_json(&["memory", "pin", &rule]);
    let long = "The uploader sends files in chunks of 4 MiB. ".repeat(9);
    env.ok_json(&["memory", "add", &long]);
    env.ok_json(&[
        "memory",
        "add",
        "The uploader of this other repository is frozen.",
        "--tier",
        "critical",
        "--scope",
        "repo:/srv/other",
    ]);
    env.agent("claude-1", "rust");
    let task = env.task(
        "Speed up the uploader",
        &[
            "-c",
            "rust",
            "--no-repo",
            "--prompt",
            "Make uploads faster.",
        ],
    );
    env.ok_json(&["task", "assign", &task]);
    let mut args = vec!["task", "briefing", &task];
    args.extend(json);
    env.step(&args);
}

#[test]
fn memory_in_briefings_human() {
    let env = Env::new();
    memory_in_briefings(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn memory_in_briefings_json() {
    let env = Env::new();
    memory_in_briefings(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}
