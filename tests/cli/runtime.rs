//! Agents at work, through the real binary and its daemon: agents from a file, the daemon
//! scheduling and running them, logs, budgets, usage totals, and a `kill -9` of the daemon
//! while attempts run. Only the daemon runs agents, so these tests do nothing in process.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::{assert_verified, line_of};
use crate::support::{Env, in_process};

/// Waits until `task show --json` satisfies `done`, and returns that document.
fn wait_for(env: &Env, task: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = env.ok_json(&["task", "show", task]);
        if done(&doc["task"]) {
            return doc["task"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {task} never became {what}: {doc:#}\nlogs:\n{}",
            env.maos(&["task", "logs", task]).stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_is(state: &'static str) -> impl Fn(&Value) -> bool {
    move |t| t["state"] == state
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_agent_from_a_file_runs_a_task_and_its_output_is_kept() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let agents = write(
        work.path(),
        "agents.toml",
        r#"
[[agent]]
name = "echo"
adapter = "command"
command = "sh -c 'read line; echo \"got: $line\"; printf \"\\377 not utf-8\\n\"; echo \"to stderr\" >&2; echo \"the result\" > \"$MAOS_RESULT_FILE\"'"
capabilities = ["shell"]
slots = 2
timeout = "1m"
"#,
    );
    let registered = env.ok_json(&["agent", "register", "--from-file", &agents]);
    assert_eq!(registered["agents"][0]["name"], "echo");
    assert_eq!(registered["agents"][0]["settings"]["timeout_ms"], 60_000);

    let created = env.ok_json(&[
        "task", "create", "Say it", "-c", "shell", "--prompt", "hello",
    ]);
    let id = created["task"]["id"].as_str().unwrap().to_owned();
    // Scheduled in the create's own transaction.
    assert_eq!(created["task"]["state"], "assigned");
    let task = wait_for(&env, &id, "completed", state_is("completed"));
    let attempt = &task["attempts"][0];
    assert_eq!(attempt["agent"], "echo");
    assert_eq!(attempt["status"], "succeeded");
    assert_eq!(attempt["exit_code"], 0);
    assert_eq!(attempt["summary"], "the result");
    assert!(attempt["pid"].as_u64().unwrap() > 1);
    assert!(attempt["duration_ms"].is_u64());

    // The log is the raw output (stdout and stderr) with MAOS's note at the end.
    let logs = env.std_command(&["task", "logs", &id]).output().unwrap();
    assert_eq!(logs.status.code(), Some(0));
    let text = logs.stdout;
    // stdout and stderr come through separate pipes: their relative order is not kept.
    assert!(contains(&text, b"got: hello\n"), "{text:?}");
    assert!(contains(&text, b"\xff not utf-8\n"), "{text:?}");
    assert!(contains(&text, b"to stderr\n"), "{text:?}");
    assert!(
        String::from_utf8_lossy(&text)
            .ends_with("[maos: the agent's process ended: exit status 0]\n")
    );
    let doc = env.ok_json(&["task", "logs", &id, "--attempt", "1"]);
    assert_eq!(doc["finished"], true);
    assert_eq!(doc["type"], "log");
    assert!(doc["text"].as_str().unwrap().contains("\u{fffd} not utf-8"));
    // Followed, the same pieces as lines of a stream, each tagged as a piece of a log; the
    // last one says the attempt is finished.
    let followed = env.maos(&["task", "logs", &id, "--follow", "--json"]);
    assert_eq!(followed.code, 0, "{}", followed.stderr);
    let lines: Vec<Value> = followed.stdout.lines().map(|l| line_of(l, "log")).collect();
    let last = lines.last().unwrap_or_else(|| panic!("no lines"));
    assert_eq!(last["finished"], true, "{}", followed.stdout);
    assert_eq!(last["task"], id.as_str());
    let text: String = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(text, doc["text"].as_str().unwrap());

    // A human `task show` lists the attempt with its exit and duration.
    let shown = env.maos(&["task", "show", &id]).stdout;
    assert!(
        shown.contains("EXIT  DURATION  TOKENS  COST  OUTCOME"),
        "{shown}"
    );
    assert!(shown.contains("succeeded"), "{shown}");

    // An attempt that does not exist is a clear error.
    let missing = env.maos(&["task", "logs", &id, "--attempt", "2"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("has no attempt 2: it has made one"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_failing_agent_is_retried_and_then_the_task_waits_for_a_person() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.ok_json(&[
        "agent",
        "register",
        "flaky",
        "--adapter",
        "command",
        "--command",
        "sh -c 'echo \"attempt $MAOS_ATTEMPT broke\"; exit 3'",
    ]);
    let id = env.task("Break", &["--max-attempts", "2"]);
    let task = wait_for(&env, &id, "blocked", state_is("blocked"));
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["status"], "failed");
        assert_eq!(a["failure"], "exit");
        assert_eq!(a["exit_code"], 3);
        assert_eq!(
            a["error"],
            format!("exited with status 3: attempt {} broke", i + 1)
        );
    }
    assert!(
        task["reason"]
            .as_str()
            .unwrap()
            .starts_with("all 2 attempts failed"),
        "{task}"
    );
}

#[test]
fn a_budget_stops_the_attempt_that_would_overrun_it_and_status_sums_usage() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    // Each sim attempt reports 1,000 tokens in and 200 out: $0.006 at these prices.
    let agents = write(
        work.path(),
        "agents.toml",
        r#"
[[agent]]
name = "sim-1"
adapter = "sim"
capabilities = ["sim"]
slots = 4
delay = "20ms"
price = { input = "3", output = "15" }
"#,
    );
    env.ok_json(&["agent", "register", "--from-file", &agents]);
    let cheap = env.task("Within budget", &["-c", "sim", "--budget-usd", "1"]);
    let dear = env.task("Over budget", &["-c", "sim", "--budget-usd", "0.005"]);
    let done = wait_for(&env, &cheap, "completed", state_is("completed"));
    assert_eq!(done["usage"]["cost_usd"], "0.006");
    assert_eq!(done["budget_usd"], "1.00");
    let stopped = wait_for(&env, &dear, "blocked", state_is("blocked"));
    assert_eq!(stopped["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(stopped["attempts"][0]["failure"], "budget");
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .starts_with("its budget of $0.005 is spent"),
        "{stopped}"
    );
    let status = env.ok_json(&["status"]);
    assert_eq!(status["usage"]["input_tokens"], 2_000);
    assert_eq!(status["usage"]["output_tokens"], 400);
    assert_eq!(status["usage"]["cost_usd"], "0.012");
    let human = env.maos(&["status"]).stdout;
    assert!(
        human.contains("tokens          2,400 (2,000 in, 400 out)"),
        "{human}"
    );
    assert!(human.contains("cost            $0.012"), "{human}");
}

#[test]
fn task_logs_follow_prints_output_while_the_attempt_runs_and_stops_at_its_end() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("gate");
    env.ok_json(&[
        "agent",
        "register",
        "slow",
        "--adapter",
        "command",
        "--command",
        &format!(
            "sh -c 'echo first; while [ ! -e {} ]; do sleep 0.05; done; echo second'",
            gate.display()
        ),
    ]);
    let id = env.task("Talk slowly", &[]);
    wait_for(&env, &id, "running", state_is("running"));
    let mut follow = env
        .std_command(&["task", "logs", &id, "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = follow.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // "first" arrives while the agent still waits for the gate.
    while !contains(&seen, b"first\n") {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "the follower ended early: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    std::fs::write(&gate, b"").unwrap();
    std::io::Read::read_to_end(&mut out, &mut seen).unwrap();
    let status = follow.wait().unwrap();
    assert!(status.success());
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("first\nsecond\n"), "{text}");
    assert!(text.ends_with("exit status 0]\n"), "{text}");
}

#[test]
fn kill_9_of_the_daemon_kills_its_agents_and_a_restart_reruns_their_attempts() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    // The first attempt writes its pid and a background grandchild's, then waits; the second
    // finishes at once.
    let script = write(
        work.path(),
        "agent.sh",
        &format!(
            "#!/bin/sh\n\
             if [ \"$MAOS_ATTEMPT\" = 1 ]; then\n\
               sleep 300 &\n\
               echo $! > {dir}/grandchild.$MAOS_TASK_ID\n\
               echo $$ > {dir}/child.$MAOS_TASK_ID\n\
               wait\n\
             fi\n\
             echo \"attempt $MAOS_ATTEMPT done\"\n",
            dir = work.path().display()
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.ok_json(&[
        "agent",
        "register",
        "worker",
        "--adapter",
        "command",
        "--command",
        &script,
        "--slots",
        "2",
    ]);
    let a = env.task("First", &[]);
    let b = env.task("Second", &[]);
    let mut pids = Vec::new();
    for t in [&a, &b] {
        pids.push(read_pid(&work.path().join(format!("child.{t}"))));
        pids.push(read_pid(&work.path().join(format!("grandchild.{t}"))));
        wait_for(&env, t, "running", state_is("running"));
    }
    assert!(pids.iter().all(|p| pid_alive(*p)), "{pids:?}");

    let daemon = env.ok_json(&["daemon", "status"])["pid"].as_u64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &daemon.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(u32::try_from(daemon).unwrap()) {
        assert!(Instant::now() < deadline, "the daemon survived kill -9");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The next command starts a new daemon, which interrupts the lost attempts, kills what they
    // left behind, and runs them again.
    for t in [&a, &b] {
        let task = wait_for(&env, t, "completed", state_is("completed"));
        let attempts = task["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{task}");
        assert_eq!(attempts[0]["status"], "interrupted");
        assert_eq!(attempts[0]["failure"], "interrupted");
        assert_eq!(
            attempts[0]["error"],
            "the daemon stopped while the attempt ran"
        );
        assert_eq!(attempts[1]["status"], "succeeded");
        assert_eq!(attempts[1]["summary"], "attempt 2 done");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| pid_alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "processes of the dead daemon's attempts survive: {:?}",
            pids.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing was lost: every event of the first daemon is still in the log, and both tasks'
    // histories are complete.
    let events = env.ok_json(&["events", "--limit", "1000"]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "task.attempt_interrupted")
            .count(),
        2
    );
    assert_eq!(kinds.iter().filter(|k| **k == "task.completed").count(), 2);
    // Folding the log gives what is stored, attempts and fencing included.
    assert_verified(&env);
}

/// The soft limits an agent's process saw, from its `/proc/self/limits` as it printed them.
fn limits_seen(summary: &str) -> Vec<(String, String)> {
    summary
        .lines()
        .filter_map(|l| {
            let name = [
                "Max cpu time",
                "Max address space",
                "Max open files",
                "Max processes",
            ]
            .into_iter()
            .find(|n| l.starts_with(n))?;
            let soft = l[name.len()..].split_whitespace().next()?;
            Some((name.to_owned(), soft.to_owned()))
        })
        .collect()
}

#[test]
fn agents_run_under_default_limits_unless_they_set_their_own() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let script = write(
        work.path(),
        "limits.sh",
        "#!/bin/sh\ncat /proc/self/limits\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let register = |name: &str, cap: &str, extra: &[&str]| {
        let mut args = vec![
            "agent",
            "register",
            name,
            "--adapter",
            "command",
            "--command",
            &script,
            "-c",
            cap,
        ];
        args.extend(extra);
        env.ok_json(&args)
    };
    let plain = register("plain", "plain", &[]);
    assert_eq!(
        plain["agent"]["settings"]["limits"],
        serde_json::json!({
            "cpu_seconds": 14400, "memory_mib": 65536, "open_files": 4096, "processes": 16384
        })
    );
    register(
        "own",
        "own",
        &[
            "--limit",
            "files=256",
            "--limit",
            "memory=unlimited",
            "--limit",
            "cpu=60",
        ],
    );
    let seen = |cap: &str| {
        let t = env.task(&format!("limits of {cap}"), &["-c", cap]);
        let task = wait_for(&env, &t, "completed", state_is("completed"));
        limits_seen(task["attempts"][0]["summary"].as_str().unwrap())
    };
    let plain_seen = seen("plain");
    assert!(
        plain_seen.contains(&("Max cpu time".into(), "14400".into())),
        "{plain_seen:?}"
    );
    assert!(
        plain_seen.contains(&("Max address space".into(), (65536_u64 << 20).to_string())),
        "{plain_seen:?}"
    );
    assert!(
        plain_seen.contains(&("Max open files".into(), "4096".into())),
        "{plain_seen:?}"
    );
    let own_seen = seen("own");
    assert!(
        own_seen.contains(&("Max cpu time".into(), "60".into())),
        "{own_seen:?}"
    );
    assert!(
        own_seen.contains(&("Max address space".into(), "unlimited".into())),
        "{own_seen:?}"
    );
    assert!(
        own_seen.contains(&("Max open files".into(), "256".into())),
        "{own_seen:?}"
    );
    // A bad limit names the choices.
    let bad = env.maos(&[
        "agent",
        "register",
        "x",
        "--adapter",
        "command",
        "--command",
        "true",
        "--limit",
        "ram=5",
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("cpu=SECONDS, memory=MIB"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_backlog_only_an_external_agent_can_take_never_starves_an_idle_sim_agent() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let agents = write(
        work.path(),
        "agents.toml",
        r#"
[[agent]]
name = "outside"
adapter = "external"
capabilities = ["gpu"]
slots = 4

[[agent]]
name = "sim-1"
adapter = "sim"
slots = 1
delay = "300ms"
"#,
    );
    env.ok_json(&["agent", "register", "--from-file", &agents]);
    // 2,000 ready tasks only the external agent can take (MAOS never schedules onto it), made
    // eight processes at a time.
    let mut backlog = Vec::new();
    let mut running = Vec::new();
    for i in 0..2_000 {
        let title = format!("backlog {i}");
        let mut cmd = env.std_command(&["task", "create", &title, "-c", "gpu", "--json"]);
        cmd.stdout(std::process::Stdio::piped());
        running.push(cmd.spawn().unwrap());
        if running.len() == 8 || i == 1_999 {
            for child in running.drain(..) {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{out:?}");
                let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
                backlog.push(doc["task"]["id"].as_str().unwrap().to_owned());
            }
        }
    }
    // Tasks for the simulated agent, made while it is busy with the first: each of the others
    // waits behind the whole backlog in the ready queue.
    let mine: Vec<String> = (0..3)
        .map(|i| env.task(&format!("for the sim agent {i}"), &[]))
        .collect();
    for t in &mine {
        wait_for(&env, t, "completed", state_is("completed"));
    }
    // A backlog task says what it waits for: the external agent, which takes work itself.
    let waits = env.ok_json(&["task", "show", &backlog[0]]);
    let waiting = waits["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{waits:#}");
    assert_eq!(waiting[0]["kind"], "agents_busy", "{waits:#}");
    let detail = waiting[0]["detail"].as_str().unwrap();
    assert!(detail.contains("only external agents"), "{detail}");
    assert!(detail.contains("--agent outside"), "{detail}");

    // Cancelling part of the backlog changes nothing for the simulated agent's work.
    for t in &backlog[..50] {
        env.ok_json(&["task", "cancel", t]);
    }
    let after: Vec<String> = (0..2)
        .map(|i| env.task(&format!("after the cancels {i}"), &[]))
        .collect();
    for t in &after {
        wait_for(&env, t, "completed", state_is("completed"));
    }
    let status = env.ok_json(&["status"]);
    assert_eq!(status["tasks"]["by_state"]["ready"], 1_950, "{status:#}");
}

#[test]
fn metrics_count_the_work_done_its_first_passes_and_each_agents_attempts() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let agents = write(
        work.path(),
        "agents.toml",
        r#"
[[agent]]
name = "sim-1"
adapter = "sim"
capabilities = ["sim"]
slots = 4
delay = "20ms"
price = { input = "3", output = "15" }
"#,
    );
    env.ok_json(&["agent", "register", "--from-file", &agents]);
    let a = env.task("First", &["-c", "sim"]);
    let b = env.task("Second", &["-c", "sim"]);
    wait_for(&env, &a, "completed", state_is("completed"));
    wait_for(&env, &b, "completed", state_is("completed"));
    // A task nobody can take, cancelled: created in the window, never completed.
    let stuck = env.task(
        "Nobody can",
        &["-c", "nothing-offers-this", "--max-attempts", "1"],
    );
    let _ = env.maos(&["task", "cancel", &stuck]);
    let m = env.ok_json(&["metrics", "--since", "1h"]);
    assert_eq!(m["created"], 3, "{m:#}");
    assert_eq!(m["completed"], 2, "{m:#}");
    assert_eq!(m["first_attempt_passed"], 2);
    assert_eq!(m["first_attempt_pass_rate"], 1.0);
    assert_eq!(m["attempts"], 2);
    assert_eq!(m["input_tokens"], 2000);
    assert_eq!(m["cost_usd"], "0.012");
    assert_eq!(m["agents"][0]["agent"], "sim-1");
    assert_eq!(m["agents"][0]["success_rate"], 1.0);
    let ms = m["time_to_green_ms"]["p50"].as_u64().unwrap();
    assert!(ms > 0 && ms < 60_000, "{m:#}");
    assert_eq!(m["completed_by_hour"].as_array().unwrap().len(), 1);
    let people = env.maos(&["metrics"]);
    assert_eq!(people.code, 0, "{}", people.stderr);
    for part in [
        "tasks             3 created, 2 completed",
        "2 of 2 completed tasks passed (100%)",
        "sim-1",
    ] {
        assert!(
            people.stdout.contains(part),
            "{part:?} missing:\n{}",
            people.stdout
        );
    }
    let bad = env.maos(&["metrics", "--since", "yesterday"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn a_task_that_asks_for_lessons_keeps_the_one_its_succeeding_agent_gives_in_its_repository() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = crate::fixtures::Repo::new();
    let work = tempfile::tempdir().unwrap();
    // Fails attempt 1, succeeds on attempt 2, and asked for its lesson answers with one.
    let agent = crate::fixtures::script(
        work.path(),
        "learner",
        "if [ \"${MAOS_LESSON:-0}\" = 1 ]; then\n\
         \x20   echo 'Create the config file before running the tests.'\n\
         elif [ \"$MAOS_ATTEMPT\" = 1 ]; then\n\
         \x20   echo 'no config file'\n\
         \x20   exit 1\n\
         else\n\
         \x20   echo fixed > fixed.txt\n\
         \x20   echo 'fixed it'\n\
         fi\n",
    );
    crate::fixtures::command_agent(&env, "learner", 1, &agent);
    let repo_arg = repo.arg();
    let id = env.task(
        "Fix the tests",
        &["--repo", &repo_arg, "--max-attempts", "3", "--lessons"],
    );
    let task = wait_for(&env, &id, "completed", state_is("completed"));
    assert_eq!(task["lessons"], true, "{task:#}");
    assert_eq!(task["attempts"][1]["summary"], "fixed it");
    let scope = format!("repo:{repo_arg}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = env.ok_json(&["memory", "list", "--scope", &scope, "--tag", "lesson"]);
        if !listed["memories"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let memories = listed["memories"].as_array().unwrap();
    assert_eq!(memories.len(), 1, "{listed:#}");
    let m = &memories[0];
    assert_eq!(
        m["text"],
        "Create the config file before running the tests."
    );
    assert_eq!(m["tier"], "routine");
    assert_eq!(m["scope"], scope.as_str());
    assert_eq!(m["tags"], serde_json::json!(["lesson"]));
    assert_eq!(
        m["provenance"],
        serde_json::json!({"by": "attempt", "task": id, "attempt": 2})
    );
    // Without the setting, the same agent is not asked.
    let quiet = env.task("Fix again", &["--repo", &repo_arg, "--max-attempts", "3"]);
    let quiet = wait_for(&env, &quiet, "completed", state_is("completed"));
    assert!(quiet.get("lessons").is_none(), "{quiet:#}");
    let listed = env.ok_json(&["memory", "list", "--tag", "lesson"]);
    assert_eq!(
        listed["memories"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    assert_verified(&env);
}
