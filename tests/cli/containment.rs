//! Process containment through the real binary and daemon: whatever an agent starts — a
//! process in a new session (`setsid`), one in another process group, a background child —
//! dies with its attempt, whether the attempt ends by itself, times out, is cancelled, or the
//! daemon stops or is killed with `kill -9`. Only the daemon runs agents, so these tests do
//! nothing in process.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fixtures::{command_agent, script, settle, wait_for};
use crate::support::{Env, in_process};

/// The processes whose environment names `task` (every process an agent starts inherits
/// `MAOS_TASK_ID`, and these test agents do not clear it), and that are not zombies.
fn alive_of(task: &str) -> Vec<u32> {
    let want = format!("MAOS_TASK_ID={task}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X']));
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

/// Waits until the agent of `task` has started its escapees (it writes a file when it has).
fn wait_started(dir: &Path, task: &str) {
    let file = dir.join(format!("started.{task}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "the agent of {task} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that nothing of `task`'s agent is left, waiting a little for deaths to land.
fn assert_nothing_left(task: &str, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = alive_of(task);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of {task} survived {after}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The containments to test: the one the machine gives (a cgroup where it can) and the forced
/// fallback, the process tree.
const MODES: [&str; 2] = ["auto", "tree"];

/// A fresh data directory whose daemon runs with the containment `mode`.
fn env_with(mode: &str) -> Env {
    let env = Env::new();
    let started = env.maos_env(&["daemon", "start"], &[("MAOS_CONTAINMENT", mode)]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    env
}

/// An agent whose first attempt leaves a process in a new session and one in another process
/// group behind, then either exits (`then = "exit 0"`) or waits; later attempts just succeed.
fn escaping_agent(env: &Env, work: &Path, then: &str) {
    let body = format!(
        "if [ \"$MAOS_ATTEMPT\" = 1 ]; then\n\
           setsid sleep 600 &\n\
           perl -e 'setpgrp(0, 0); exec \"sleep\", \"600\"' &\n\
           sleep 600 &\n\
           sleep 0.2\n\
           touch {dir}/started.$MAOS_TASK_ID\n\
           {then}\n\
         fi\n\
         echo \"attempt $MAOS_ATTEMPT done\"\n",
        dir = work.display()
    );
    let command = script(work, "escaping", &body);
    command_agent(env, "escaper", 2, &command);
}

/// In each containment mode: a fresh data directory, the escaping agent (its first attempt
/// ending with `then`), a task created with `args` whose agent has started its escapees; then
/// `act` ends the attempt somehow, and nothing of it may be left `after`.
fn in_each_mode(then: &str, args: &[&str], act: impl Fn(&Env, &str), after: &str) {
    if in_process() {
        return;
    }
    for mode in MODES {
        let env = env_with(mode);
        let work = tempfile::tempdir().unwrap();
        escaping_agent(&env, work.path(), then);
        let task = env.task("Leave things behind", args);
        wait_started(work.path(), &task);
        act(&env, &task);
        assert_nothing_left(&task, after);
    }
}

#[test]
fn what_an_agent_leaves_behind_dies_when_it_exits() {
    in_each_mode(
        "exit 0",
        &[],
        |env, task| {
            settle(env, task, "completed");
        },
        "the agent's exit",
    );
}

#[test]
fn what_an_agent_leaves_behind_dies_at_its_timeout() {
    in_each_mode(
        "wait",
        &["--timeout", "1s", "--max-attempts", "1"],
        |env, task| {
            assert!(alive_of(task).len() >= 4, "{:?}", alive_of(task));
            let t = settle(env, task, "blocked");
            assert_eq!(t["attempts"][0]["failure"], "timeout", "{t:#}");
        },
        "the timeout",
    );
}

#[test]
fn what_an_agent_leaves_behind_dies_when_its_task_is_cancelled() {
    in_each_mode(
        "wait",
        &[],
        |env, task| {
            wait_for(env, task, "running", |t| t["state"] == "running");
            env.ok_json(&["task", "cancel", task, "--reason", "no longer needed"]);
        },
        "task cancel",
    );
}

#[test]
fn what_agents_leave_behind_dies_with_daemon_stop() {
    in_each_mode(
        "wait",
        &[],
        |env, _| {
            env.ok_json(&["daemon", "stop"]);
        },
        "daemon stop",
    );
}

#[test]
fn what_agents_leave_behind_dies_after_kill_9_of_the_daemon() {
    in_each_mode(
        "wait",
        &[],
        |env, task| {
            let daemon = env.ok_json(&["daemon", "status"])["pid"].as_u64().unwrap();
            let status = std::process::Command::new("kill")
                .args(["-9", &daemon.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{daemon}/status")).exists()
                && !std::fs::read_to_string(format!("/proc/{daemon}/status"))
                    .unwrap_or_default()
                    .contains("State:\tZ")
            {
                assert!(Instant::now() < deadline, "the daemon survived kill -9");
                std::thread::sleep(Duration::from_millis(20));
            }
            // The agent itself dies with the daemon (parent-death signal); its escapees are
            // still there until the next daemon starts and kills them before rerunning it.
            let t = settle(env, task, "completed");
            assert_eq!(t["attempts"][0]["status"], "interrupted", "{t:#}");
        },
        "kill -9 of the daemon and a restart",
    );
}

#[test]
fn daemon_status_says_how_agents_are_contained() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let doc = env.ok_json(&["daemon", "start"]);
    let kind = doc["containment"].as_str().unwrap();
    assert!(kind == "cgroup" || kind == "process_tree", "{doc:#}");
    let human = env.maos(&["daemon", "status"]).stdout;
    assert!(human.contains("containment:"), "{human}");
    // Forced to the fallback, the daemon says so.
    env.ok_json(&["daemon", "stop"]);
    let doc = env.maos_env(
        &["daemon", "start", "--json"],
        &[("MAOS_CONTAINMENT", "tree")],
    );
    assert_eq!(doc.code, 0, "{}", doc.stderr);
    let doc: serde_json::Value = serde_json::from_str(&doc.stdout).unwrap();
    assert_eq!(doc["containment"], "process_tree", "{doc:#}");
}
