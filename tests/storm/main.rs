//! The kill -9 storm: the daemon is killed with `kill -9` again and again (at least 50 times)
//! while agents are being spawned, so that kills land between a spawn and the record of its
//! start; every agent leaves processes behind in a new session and in another process group.
//! Whatever the daemon was doing when it died, once the storm is over nothing any attempt
//! started is left running, every task completes, and nothing is lost.
//!
//! A test binary of its own (`cargo nextest run -p maos-cli --test storm`), so that the suite's
//! other tests do not share the machine with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../cli/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::Env;

/// How many times the daemon is killed.
const KILLS: usize = 50;
/// How many tasks the storm works through.
const TASKS: usize = 150;

/// Processes (not zombies) whose environment names one of `tasks`.
fn alive_of(tasks: &HashSet<String>) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
        {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        for var in environ.split(|b| *b == 0) {
            if let Some(id) = var.strip_prefix(b"MAOS_TASK_ID=")
                && let Ok(id) = std::str::from_utf8(id)
                && tasks.contains(id)
            {
                out.push((pid, id.to_owned()));
            }
        }
    }
    out
}

fn daemon_pid(env: &Env) -> Option<u32> {
    let run = env.maos(&["daemon", "status", "--json"]);
    if run.code != 0 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).ok()?;
    doc["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

fn dead(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
    })
}

#[test]
fn fifty_kill_9s_during_spawns_leave_nothing_running_and_lose_nothing() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("agent.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         setsid sleep 600 &\n\
         perl -e 'setpgrp(0, 0); exec \"sleep\", \"600\"' &\n\
         sleep 0.3\n\
         echo done\n",
    )
    .unwrap();
    let command = format!("sh {}", script.display());
    let registered = env.maos(&[
        "agent",
        "register",
        "stormy",
        "--adapter",
        "command",
        "--command",
        &command,
        "--slots",
        "4",
        "--json",
    ]);
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    // One plan makes every task at once; each agent run takes a moment, so that work (and
    // spawning) goes on through the whole storm.
    let mut plan = String::from(
        "goal = \"Survive the storm\"\nname = \"Storm\"\n[defaults]\nmax_attempts = 50\n",
    );
    for i in 0..TASKS {
        plan.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\ntitle = \"storm task {i}\"\n"
        ));
    }
    let plan_file = work.path().join("storm.toml");
    std::fs::write(&plan_file, plan).unwrap();
    let run = env.maos(&[
        "orchestrate",
        "run",
        plan_file.to_str().unwrap(),
        "--yes",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = env.maos(&["task", "list", "--json", "--limit", "10000"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let doc: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let tasks: HashSet<String> = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tasks.len(), TASKS);

    for kill in 0..KILLS {
        // Half the daemons contain with cgroups (where the machine allows), half with the
        // process tree; each cleans up after the other.
        let mode = if kill % 2 == 0 { "auto" } else { "tree" };
        let started = env.maos_env(
            &["daemon", "start", "--json"],
            &[("MAOS_CONTAINMENT", mode)],
        );
        assert_eq!(started.code, 0, "kill {kill}: {}", started.stderr);
        let doc: serde_json::Value = serde_json::from_str(&started.stdout).unwrap();
        let pid = u32::try_from(doc["pid"].as_u64().unwrap()).unwrap();
        // Spread the kills over the daemon's first 60 ms, when it reconciles and spawns the
        // most (a fixed sequence: the same run every time).
        std::thread::sleep(Duration::from_millis((kill as u64 * 7) % 60));
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dead(pid) {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: the daemon survived kill -9"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    // The last daemon finishes the work.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = env.maos(&[
            "task",
            "list",
            "--json",
            "--status",
            "completed",
            "--limit",
            "1000",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let done = doc["tasks"].as_array().map_or(0, Vec::len);
        if done == TASKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {TASKS} tasks completed after the storm"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = env.maos(&["daemon", "stop"]);
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    assert!(daemon_pid(&env).is_none());

    // Nothing any attempt started is left (give the last kills a moment to land).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = alive_of(&tasks);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} processes of the storm's attempts survive: {left:?}",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The kills landed where they should: attempts were interrupted, some before their agent's
    // start was recorded.
    let events = env.maos(&["events", "--json", "--limit", "10000"]);
    assert_eq!(events.code, 0, "{}", events.stderr);
    let doc: serde_json::Value = serde_json::from_str(&events.stdout).unwrap();
    let interrupted = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "task.attempt_interrupted")
        .count();
    eprintln!("storm: {KILLS} kills, {interrupted} attempts interrupted");
    assert!(interrupted > 0, "no kill landed while an attempt was live");
    // And the store holds together: every aggregate's events fold to its stored state, the
    // log has no gap, attempts and fencing agree (`maos admin verify`).
    let verified = env.maos(&["admin", "verify", "--json"]);
    assert_eq!(
        verified.code, 0,
        "admin verify: {}\n{}",
        verified.stdout, verified.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(doc["clean"], true, "{doc:#}");
}
