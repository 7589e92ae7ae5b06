//! Bounded input: prompt, plan, agents and configuration files are read only when they are regular
//! files no larger than their limit (docs/cli.md, "Input files"). A FIFO or a device is refused at
//! once instead of blocking or filling memory, with exit code 2, and nothing is stored. Every run
//! here is killed after 30 seconds, so a regression fails instead of hanging the suite.

use std::path::PathBuf;

use crate::support::{Env, Run};

/// A FIFO (named pipe) at `<data dir>/<name>`.
fn fifo(env: &Env, name: &str) -> PathBuf {
    let path = env.dir().join(name);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
    path
}

/// Runs `args` (text, then JSON) with `stdin` and `vars`, expects exit code 2 with an error
/// that contains `expected`, and that the database did not change.
fn refused(env: &Env, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)], expected: &str) {
    let before = env.state();
    let mut with_json = args.to_vec();
    with_json.push("--json");
    for run in [
        env.step_bounded(args, stdin, vars),
        env.step_bounded(&with_json, stdin, vars),
    ] {
        check_refused(&run, expected);
    }
    assert_eq!(env.state(), before, "{args:?} changed the database");
}

fn check_refused(run: &Run, expected: &str) {
    assert_eq!(
        run.code, 2,
        "{:?} (-1: killed after 30 s)\n{}{}",
        run.args, run.stdout, run.stderr
    );
    let shown = if run.args.iter().any(|a| a == "--json") {
        &run.stdout
    } else {
        &run.stderr
    };
    assert!(shown.contains(expected), "{:?}: {shown}", run.args);
}

/// An agent and a task, so that "nothing changed" has something to compare.
fn populated() -> Env {
    let env = Env::new();
    env.agent("claude-1", "rust");
    env.task("First", &["-c", "rust"]);
    env
}

#[test]
fn a_fifo_a_device_or_a_directory_as_the_prompt_file_is_refused_at_once() {
    let env = populated();
    let pipe = fifo(&env, "prompt.fifo");
    let pipe = pipe.to_str().unwrap();
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", pipe],
        None,
        &[],
        "is a FIFO (named pipe), not a regular file",
    );
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", "/dev/zero"],
        None,
        &[],
        "/dev/zero is a character device, not a regular file",
    );
    let dir = env.dir().to_str().unwrap().to_owned();
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", &dir],
        None,
        &[],
        "is a directory, not a regular file",
    );
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn a_prompt_over_its_limit_is_refused_from_a_file_and_from_standard_input() {
    let env = populated();
    let mib = 1024 * 1024;
    let big = env.dir().join("big.md");
    std::fs::write(&big, "x".repeat(mib + 1)).unwrap();
    let big = big.to_str().unwrap();
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", big],
        None,
        &[],
        "is larger than the limit of 1 MiB",
    );
    let too_much = "y".repeat(mib + 1);
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", "-"],
        Some(&too_much),
        &[],
        "the prompt on standard input is larger than the limit of 1 MiB",
    );
    // The limit can be changed, for one command or for good.
    let small = env.dir().join("small.md");
    std::fs::write(&small, "seventeen bytes!\n").unwrap();
    let small = small.to_str().unwrap();
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", small],
        None,
        &[("MAOS_MAX_PROMPT_BYTES", "16")],
        "is larger than the limit of 16 bytes",
    );
    refused(
        &env,
        &["task", "create", "T", "--prompt-file", small],
        None,
        &[("MAOS_MAX_PROMPT_BYTES", "lots")],
        "MAOS_MAX_PROMPT_BYTES=lots is not a size from 1 byte to 64 MiB",
    );
    let ok = env.step_bounded(
        &["task", "create", "Big", "--prompt-file", big, "--json"],
        None,
        &[("MAOS_MAX_PROMPT_BYTES", "2MiB")],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(
        ok.json()["task"]["prompt"].as_str().map(str::len),
        Some(mib + 1)
    );
    let ok = env.step_bounded(
        &["task", "create", "Small", "--prompt-file", "-", "--json"],
        Some("from stdin"),
        &[("MAOS_MAX_PROMPT_BYTES", "10")],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    // The transcript without the two successful runs (their output is the whole prompt).
    let transcript = env.transcript();
    let refusals: Vec<&str> = transcript
        .split("$ maos ")
        .filter(|run| !run.starts_with("task create Big") && !run.starts_with("task create Small"))
        .collect();
    insta::assert_snapshot!(refusals.join("$ maos "));
}

#[test]
fn a_prompt_that_is_not_utf8_is_placed_by_line_and_column() {
    let env = populated();
    let path = env.dir().join("latin1.md");
    std::fs::write(&path, b"Fix the bug\nin caf\xe9.rs\n").unwrap();
    refused(
        &env,
        &[
            "task",
            "create",
            "T",
            "--prompt-file",
            path.to_str().unwrap(),
        ],
        None,
        &[],
        "is not UTF-8 text: line 2, column 7 has a byte that is not UTF-8",
    );
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn a_fifo_as_a_plan_agents_or_workflow_file_is_refused_at_once() {
    let env = populated();
    let plan = fifo(&env, "plan.toml");
    refused(
        &env,
        &["orchestrate", "run", plan.to_str().unwrap(), "--yes"],
        None,
        &[],
        "the plan file <data-dir>/plan.toml is a FIFO (named pipe), not a regular file"
            .replace("<data-dir>", &env.dir().display().to_string())
            .as_str(),
    );
    let agents = fifo(&env, "agents.toml");
    refused(
        &env,
        &["agent", "register", "--from-file", agents.to_str().unwrap()],
        None,
        &[],
        "is a FIFO (named pipe), not a regular file",
    );
    let workflow = fifo(&env, "flow.toml");
    refused(
        &env,
        &[
            "orchestrate",
            "run",
            "--workflow",
            workflow.to_str().unwrap(),
            "--goal",
            "g",
            "--yes",
        ],
        None,
        &[],
        "is a FIFO (named pipe), not a regular file",
    );
    let big = env.dir().join("big.toml");
    std::fs::write(&big, format!("goal = \"g\"\n# {}\n", "x".repeat(100))).unwrap();
    refused(
        &env,
        &["orchestrate", "run", big.to_str().unwrap(), "--yes"],
        None,
        &[("MAOS_MAX_PLAN_BYTES", "64")],
        "is larger than the limit of 64 bytes",
    );
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn a_fifo_as_config_toml_is_refused_by_every_command_at_once() {
    let env = Env::new();
    fifo(&env, "config.toml");
    for args in [
        &["status"][..],
        &["agent", "register", "a", "--adapter", "external"],
        &["task", "list"],
    ] {
        let run = env.step_bounded(args, None, &[]);
        check_refused(
            &run,
            "the configuration file <data-dir>/config.toml is a FIFO (named pipe)"
                .replace("<data-dir>", &env.dir().display().to_string())
                .as_str(),
        );
    }
    let transcript = env.transcript();
    std::fs::remove_file(env.dir().join("config.toml")).unwrap();
    // Nothing was stored.
    assert_eq!(env.last_seq(), 0);
    insta::assert_snapshot!(transcript);
}
