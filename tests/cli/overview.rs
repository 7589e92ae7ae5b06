//! `maos status`, `maos events`, `maos completions`, help and usage errors, and the properties
//! every command shares: JSON documents carry a schema version, colour obeys NO_COLOR and
//! `--color`, and a closed pipe is not an error.

use std::process::Stdio;

use crate::support::Env;

/// Two agents, three tasks (one assigned, one waiting on another) and an orchestration.
fn populate(env: &Env) -> (String, String) {
    env.agent("claude-1", "rust");
    env.agent("reviewer", "review");
    let a = env.task("First", &["-c", "rust"]);
    let b = env.task("Second", &["--depends-on", &a]);
    env.task("Third", &[]);
    env.ok_json(&["task", "assign", &a]);
    env.ok_json(&["orchestrate", "create", "Plan"]);
    (a, b)
}

#[test]
fn status_and_events_human() {
    let env = Env::new();
    env.step(&["status"]);
    env.step(&["events"]);
    populate(&env);
    env.step(&["status"]);
    env.step(&["events"]);
    env.step(&["events", "--since", "5", "--limit", "3"]);
    env.step(&["events", "--since", "1000"]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn status_and_events_json() {
    let env = Env::new();
    env.step(&["status", "--json"]);
    env.step(&["events", "--json"]);
    populate(&env);
    env.step(&["status", "--json"]);
    env.step(&["events", "--json", "--since", "5", "--limit", "3"]);
    env.step(&["events", "--json", "--since", "1000"]);
    insta::assert_snapshot!(env.transcript());
    let all = env.ok_json(&["events"]);
    let events = all["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gaps");
    assert_eq!(all["next_since"].as_u64(), seqs.last().copied());
}

#[test]
fn every_json_document_has_schema_version_first() {
    let env = Env::new();
    let (a, b) = populate(&env);
    let o = env.ok_json(&["orchestrate", "list"])["orchestrations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec!["agent", "register", "extra", "--adapter", "ollama"],
        vec!["agent", "list"],
        vec!["agent", "show", "extra"],
        vec!["agent", "drain", "extra"],
        vec!["agent", "remove", "extra"],
        vec!["task", "create", "Fourth"],
        vec!["task", "list"],
        vec!["task", "show", &a],
        vec!["task", "depend", &b, "--on", &a],
        vec!["task", "cancel", &b],
        vec!["orchestrate", "create", "Another"],
        vec!["orchestrate", "list"],
        vec!["orchestrate", "show", &o],
        vec!["status"],
        vec!["events"],
        // failures are documents too
        vec!["task", "show", "zzzz"],
        vec!["agent", "register", "Bad", "--adapter", "codex"],
        vec!["task", "list", "--no-such-flag"],
    ];
    for args in commands {
        let mut all = args.clone();
        all.push("--json");
        let run = env.maos(&all);
        assert!(
            run.stdout.starts_with("{\n  \"schema_version\": 1,"),
            "{all:?}:\n{}",
            run.stdout
        );
        let doc = run.json();
        assert_eq!(doc["schema_version"], 1);
        if run.code != 0 {
            assert_eq!(
                doc["error"]["exit_code"].as_i64(),
                Some(i64::from(run.code)),
                "{all:?}"
            );
        }
    }
}

#[test]
fn completions_for_every_shell() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.maos(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.len() > 500, "{shell}: {}", run.stdout);
        assert!(run.stdout.contains("maos"), "{shell}");
        assert!(run.stdout.contains("register"), "{shell}");
        assert!(run.stderr.is_empty(), "{shell}: {}", run.stderr);
    }
    // Completions never touch the database.
    assert!(!env.db().exists());
    env.step(&["completions", "tcsh"]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn help_teaches() {
    let env = Env::new();
    env.step(&["--help"]);
    env.step(&["task", "create", "-h"]);
    insta::assert_snapshot!(env.transcript());
    for args in [
        &["agent", "--help"][..],
        &["agent", "register", "--help"],
        &["agent", "list", "--help"],
        &["agent", "show", "--help"],
        &["agent", "drain", "--help"],
        &["agent", "remove", "--help"],
        &["task", "--help"],
        &["task", "list", "--help"],
        &["task", "show", "--help"],
        &["task", "assign", "--help"],
        &["task", "cancel", "--help"],
        &["task", "depend", "--help"],
        &["orchestrate", "--help"],
        &["orchestrate", "create", "--help"],
        &["orchestrate", "list", "--help"],
        &["orchestrate", "show", "--help"],
        &["status", "--help"],
        &["events", "--help"],
        &["completions", "--help"],
    ] {
        let run = env.maos(args);
        assert_eq!(run.code, 0, "{args:?}");
        assert!(run.stdout.contains("Usage: maos"), "{args:?}");
    }
    let run = env.maos(&["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("maos "));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.step(&["agent"]);
    env.step(&["task", "frobnicate"]);
    env.step(&["agent", "register", "claude-1"]);
    env.step(&[
        "agent",
        "register",
        "claude-1",
        "--adapter",
        "robot",
        "--json",
    ]);
    env.step(&["task", "list", "--limit", "0"]);
    env.step(&["agent", "list", "--verbose", "--quiet"]);
    insta::assert_snapshot!(env.transcript());
    assert!(!env.db().exists(), "a usage error never opens the database");
}

#[test]
fn no_color_and_color_never_print_no_escapes() {
    let env = Env::new();
    populate(&env);
    let a = env.ok_json(&["task", "list"])["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec!["agent", "list"],
        vec!["agent", "show", "claude-1"],
        vec!["task", "list"],
        vec!["task", "show", &a],
        vec!["status"],
        vec!["events"],
        vec!["task", "show", "zzzz"],
        vec!["agent", "register", "Bad"],
        vec!["--help"],
    ];
    for args in &commands {
        let mut never = args.clone();
        never.extend(["--color", "never"]);
        for run in [
            env.maos(&never),
            env.maos_env(args, &[("NO_COLOR", "1")]),
            env.maos_env(&never, &[("CLICOLOR_FORCE", "1")]),
        ] {
            assert!(!run.stdout.contains('\x1b'), "{args:?}: {:?}", run.stdout);
            assert!(!run.stderr.contains('\x1b'), "{args:?}: {:?}", run.stderr);
        }
    }
    // `always` colours even into a pipe.
    let run = env.maos(&["agent", "list", "--color", "always"]);
    assert!(run.stdout.contains('\x1b'), "{:?}", run.stdout);
    let run = env.maos(&["task", "show", "zzzz", "--color", "always"]);
    assert!(run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = Env::new();
    for i in 0..30 {
        env.task(
            &format!("Task number {i} with a title long enough to fill the pipe"),
            &[],
        );
    }
    for args in [
        &["task", "list"][..],
        &["task", "list", "--json"],
        &["events"],
        &["events", "--json"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_maos"))
            .args(args)
            .current_dir(env.runtime_dir())
            .env("MAOS_DATA_DIR", env.dir())
            .env("XDG_RUNTIME_DIR", env.runtime_dir())
            .env(
                "MAOS_NO_DAEMON",
                if crate::support::in_process() {
                    "1"
                } else {
                    "0"
                },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before maos writes anything, like `maos task list | head -0`.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And through a real shell pipeline, as people do it.
    let script = format!(
        "MAOS_DATA_DIR='{}' '{}' events | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        env.dir().display(),
        env!("CARGO_BIN_EXE_maos")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("XDG_RUNTIME_DIR", env.runtime_dir())
        .env(
            "MAOS_NO_DAEMON",
            if crate::support::in_process() {
                "1"
            } else {
                "0"
            },
        )
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn quiet_silences_notes_but_not_errors() {
    let env = Env::new();
    env.step(&["task", "list"]);
    env.step(&["task", "list", "-q"]);
    env.step(&["task", "show", "zzzz", "-q"]);
    insta::assert_snapshot!(env.transcript());
}
