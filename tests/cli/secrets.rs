//! Secrets stay secret: the value of a variable an agent is given through its configuration
//! (`--env`), and text shaped like an API key, never reach the database, the event log, the
//! attempt's log file or any command's output, even when the agent prints them; `.maos/setup.sh`
//! gets the agents' allowlist plus what `.maos/env` names, not the daemon's whole environment.

use crate::fixtures::{Repo, command_agent, create, id_of, script, settle, str_of};
use crate::support::{Env, in_process};

const SECRET: &str = "sup3r-s3cret-value-0042";
const KEY: &str = "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Every file under `dir`, read whole (the database, its log, attempts' logs, prompts).
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[test]
fn a_secret_an_agent_prints_is_stored_and_shown_only_as_redacted() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let started = env.maos_env(&["daemon", "start"], &[("MAOS_TEST_SECRET", SECRET)]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "leaky",
        &format!(
            "echo \"using $MAOS_TEST_SECRET and {KEY}\"\n\
             echo \"stderr too: $MAOS_TEST_SECRET\" >&2\n\
             echo \"failed with $MAOS_TEST_SECRET\" >&2\n\
             exit 1\n"
        ),
    );
    env.ok_json(&[
        "agent",
        "register",
        "leaky",
        "--adapter",
        "command",
        "--command",
        &agent,
        "--env",
        "MAOS_TEST_SECRET",
    ]);
    let id = id_of(&create(&env, "Leak a secret", &["--max-attempts", "1"]));
    let t = settle(&env, &id, "blocked");
    let error = str_of(&t["attempts"][0]["error"], "error");
    assert!(
        error.contains("[redacted]") && !error.contains(SECRET),
        "{error}"
    );
    for args in [
        vec!["task", "show", id.as_str()],
        vec!["task", "show", id.as_str(), "--json"],
        vec!["task", "logs", id.as_str()],
        vec!["events", "--json", "--limit", "1000"],
        vec!["task", "list"],
    ] {
        let run = env.maos(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        for needle in [SECRET, KEY] {
            assert!(
                !run.stdout.contains(needle),
                "{args:?} printed {needle}:\n{}",
                run.stdout
            );
            assert!(
                !run.stderr.contains(needle),
                "{args:?} printed {needle}:\n{}",
                run.stderr
            );
        }
    }
    let logs = env.maos(&["task", "logs", &id]).stdout;
    assert!(logs.contains("using [redacted] and [redacted]"), "{logs}");
    // Nothing in the data directory holds them: not the database, not its write-ahead log,
    // not the attempt's log file.
    env.ok_json(&["daemon", "stop"]);
    for needle in [SECRET, KEY] {
        assert_eq!(
            files_containing(env.dir(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }
}

#[test]
fn setup_gets_the_agents_allowlist_and_what_the_repository_names_not_the_daemons_secrets() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let started = env.maos_env(
        &["daemon", "start"],
        &[
            ("MAOS_TEST_SECRET", SECRET),
            ("MAOS_TEST_NPM_TOKEN", "npm-token-value"),
        ],
    );
    assert_eq!(started.code, 0, "{}", started.stderr);
    let repo = Repo::new();
    repo.write(".gitignore", "setup-env.txt\n");
    repo.write(".maos/setup.sh", "env > setup-env.txt\n");
    repo.write(".maos/env", "# what npm ci needs\nMAOS_TEST_NPM_TOKEN\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "setup"]);
    let work = tempfile::tempdir().unwrap();
    let agent = script(work.path(), "reader", "cat setup-env.txt\n");
    command_agent(&env, "reader", 1, &agent);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Read the setup's environment",
        &["--repo", &repo_arg],
    ));
    let t = settle(&env, &id, "completed");
    let seen = std::fs::read_to_string(env.dir().join("worktrees").join(&id).join("setup-env.txt"))
        .unwrap_or_else(|e| panic!("{e}: {t:#}"));
    assert!(
        seen.contains("MAOS_TEST_NPM_TOKEN=npm-token-value"),
        "{seen}"
    );
    assert!(seen.contains("PATH="), "{seen}");
    assert!(!seen.contains("MAOS_TEST_SECRET"), "{seen}");
}
