//! Agents' credentials end to end: a real `command` agent gets its attempt's credential in its
//! environment (never on its command line), the log shows it redacted, the supervisor names its
//! holder only while the attempt runs, and an agent's progress note lands in its log; with
//! MAOS's MCP server configured, Claude Code gets a private configuration file and Codex `-c`
//! overrides, neither with the credential on its command line.

use std::path::PathBuf;

use maos_agents::McpLaunch;
use maos_application::{AgentCredential, AgentRuntime, MaosApi};
use maos_domain::{AdapterKind, ProgressNote, Task, TaskState};

use crate::supervisor::support::{self, Env, command_agent, eventually, ms, needs};

/// A command agent that prints its credential, writes it to `cred` in its working directory
/// (where the test reads it: files are not redacted), and runs until `go` appears there (at
/// most `ticks` twentieths of a second).
fn waiting_agent(ticks: u32) -> String {
    format!(
        "sh -c 'echo \"credential=$MAOS_AGENT_CREDENTIAL\"; \
         printf %s \"$MAOS_AGENT_CREDENTIAL\" > \"$MAOS_WORKDIR/cred.tmp\" && \
         mv \"$MAOS_WORKDIR/cred.tmp\" \"$MAOS_WORKDIR/cred\"; i=0; \
         while [ ! -e \"$MAOS_WORKDIR/go\" ] && [ $i -lt {ticks} ]; do sleep 0.05; i=$((i+1)); done; \
         echo done'"
    )
}

fn workdir(env: &Env, task: &Task) -> PathBuf {
    env.dir.path().join("work").join(task.id.to_string())
}

/// The credential the agent of `task` wrote, once it has.
fn credential_of(env: &Env, task: &Task) -> AgentCredential {
    let file = workdir(env, task).join("cred");
    assert!(
        eventually(support::DEADLINE, || file.exists()),
        "{}",
        env.describe(&env.get(task.id), "the agent wrote no credential")
    );
    AgentCredential::parse(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

#[test]
fn a_command_agent_has_a_credential_while_it_runs_and_reports_progress() {
    let env = Env::new();
    env.register(command_agent("talker", &waiting_agent(400), &["talk"]));
    let task = env.task("talk back", |t| t.capabilities = needs(&["talk"]));
    let credential = credential_of(&env, &task);
    let secret = credential.expose().to_owned();
    assert_eq!(secret.len(), 43);

    // While it runs: the supervisor knows the holder, the service authenticates it.
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((task.id, 1))
    );
    let wrong = AgentCredential::parse(&"A".repeat(43)).unwrap();
    assert_eq!(env.supervisor.credential_holder(&wrong), None);
    let scope = env.service.authenticate_agent(&credential).unwrap();
    assert_eq!((scope.task, scope.attempt), (task.id, 1));

    // Never on its command line (which every user can read in /proc).
    let running = env.running(task.id);
    let pid = running.attempts[0].pid.unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&secret),
        "the credential is on the command line"
    );

    // A progress note of two lines: one line of MAOS's each, in the live attempt's log.
    let note = ProgressNote::parse("read the parser\nnext: the tests").unwrap();
    env.service
        .report_progress(task.id, scope.fencing, note)
        .unwrap();

    std::fs::write(workdir(&env, &task).join("go"), b"").unwrap();
    let done = env.settled(task.id);
    assert_eq!(
        done.state,
        TaskState::Completed,
        "{}",
        env.describe(&done, "not completed")
    );

    // Once it ended, the credential stands for nothing.
    assert_eq!(env.supervisor.credential_holder(&credential), None);
    assert!(env.service.authenticate_agent(&credential).is_err());

    let log = env.log_text(task.id, 1);
    assert!(log.contains("credential=[redacted]\n"), "{log}");
    assert!(
        !log.contains(&secret),
        "the credential is in the log:\n{log}"
    );
    assert!(
        log.contains("[maos: progress: read the parser]\n[maos: progress: next: the tests]\n"),
        "{log}"
    );
    // Nor in what the store keeps (the summary is the output's tail, the events everything).
    let summary = done.attempts[0].summary.clone().unwrap_or_default();
    assert!(summary.contains("credential=[redacted]"), "{summary}");
    let events = format!("{:?}", env.events_of(task.id));
    assert!(!events.contains(&secret), "the credential is in an event");
    assert!(!format!("{done:?}").contains(&secret));
}

#[test]
fn the_credential_goes_when_the_attempt_is_cancelled_or_times_out() {
    let env = Env::new();
    env.register(command_agent("waiter", &waiting_agent(400), &["wait"]));

    // Cancelled.
    let cancelled = env.task("cancel me", |t| t.capabilities = needs(&["wait"]));
    let credential = credential_of(&env, &cancelled);
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((cancelled.id, 1))
    );
    env.service
        .cancel_task(&cancelled.id.into(), Some("not needed".into()))
        .unwrap();
    assert!(
        eventually(support::DEADLINE, || env.supervisor.running() == 0),
        "the cancelled attempt still runs"
    );
    assert_eq!(env.supervisor.credential_holder(&credential), None);

    // Timed out (and failed for good: one attempt).
    let timed_out = env.task("time out", |t| {
        t.capabilities = needs(&["wait"]);
        t.timeout = Some(ms(700));
        t.max_attempts = maos_domain::MaxAttempts::new(1).unwrap();
    });
    let credential = credential_of(&env, &timed_out);
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((timed_out.id, 1))
    );
    let task = env.settled(timed_out.id);
    assert_ne!(task.state, TaskState::Completed, "{task:#?}");
    assert_eq!(env.supervisor.credential_holder(&credential), None);
}

#[test]
fn the_credential_goes_when_the_daemon_shuts_down() {
    let env = Env::new();
    // An agent that ignores SIGTERM: it outlives the start of the shutdown by the grace.
    let stubborn = waiting_agent(400).replacen("sh -c '", "sh -c 'trap \"\" TERM; ", 1);
    env.register(command_agent("waiter", &stubborn, &["wait"]));
    let task = env.task("run until shutdown", |t| t.capabilities = needs(&["wait"]));
    let credential = credential_of(&env, &task);
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((task.id, 1))
    );
    let supervisor = env.supervisor.clone();
    let shutdown = std::thread::spawn(move || supervisor.shutdown());
    // At once, while the attempt is still there.
    assert!(
        eventually(support::GRACE / 2, || env
            .supervisor
            .credential_holder(&credential)
            .is_none()),
        "the credential outlived the shutdown's start"
    );
    assert_eq!(env.supervisor.running(), 1, "the attempt ended already");
    shutdown.join().unwrap();
    assert_eq!(env.supervisor.credential_holder(&credential), None);
}

/// A stand-in for a CLI agent: it keeps what it was given (its arguments, one a line; its
/// environment; with `--mcp-config`, a copy of that file and its mode) in its working
/// directory, waits for `go` there, and prints `result` (its protocol's success).
fn recording_cli(result: &str) -> String {
    format!(
        "sh -c 'w=\"$MAOS_WORKDIR\"; for a; do [ \"$p\" = --mcp-config ] && f=\"$a\"; p=\"$a\"; done; \
         printf \"%s\\n\" \"$@\" > \"$w/args\"; env > \"$w/env\"; \
         if [ -n \"$f\" ]; then stat -c %a \"$f\" > \"$w/mode\"; cp \"$f\" \"$w/mcp.tmp\"; fi; \
         touch \"$w/ready\"; i=0; \
         while [ ! -e \"$w/go\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         printf \"%s\\n\" {result}' cli"
    )
}

fn mcp_env() -> Env {
    Env::with(|c| {
        c.mcp = Some(McpLaunch {
            program: PathBuf::from("/opt/maos/bin/maos"),
            data_dir: c.data_dir.clone(),
            env: vec![("XDG_RUNTIME_DIR".to_owned(), "/run/user/test".to_owned())],
        });
    })
}

/// Waits until the stand-in of `task` recorded what it was given.
fn await_ready(env: &Env, task: &Task) -> PathBuf {
    let dir = workdir(env, task);
    assert!(
        eventually(support::DEADLINE, || dir.join("ready").exists()),
        "{}",
        env.describe(&env.get(task.id), "the agent did not start")
    );
    dir
}

#[test]
fn claude_code_gets_a_private_mcp_configuration_with_its_credential() {
    let env = mcp_env();
    let result = r#"'\''{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s-1"}'\''"#;
    env.register(support::agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(&recording_cli(result)),
        &["claude"],
    ));
    let task = env.task("use the tools", |t| t.capabilities = needs(&["claude"]));
    let dir = await_ready(&env, &task);
    let file = env
        .dir
        .path()
        .join("runs")
        .join(task.id.to_string())
        .join("1")
        .join("mcp.json");

    let args: Vec<String> = std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let at = args.iter().position(|a| a == "--mcp-config").unwrap();
    assert_eq!(args[at + 1], file.display().to_string());
    assert_eq!(args[at + 2..at + 4], ["--allowedTools", "mcp__maos"]);
    assert!(!args.iter().any(|a| a == "--strict-mcp-config"));
    assert_eq!(
        std::fs::read_to_string(dir.join("mode")).unwrap().trim(),
        "600"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("mcp.tmp")).unwrap()).unwrap();
    let server = &config["mcpServers"]["maos"];
    assert_eq!(server["type"], "stdio");
    assert_eq!(server["command"], "/opt/maos/bin/maos");
    let data_dir = env.dir.path().display().to_string();
    assert_eq!(
        server["args"],
        serde_json::json!(["mcp", "--data-dir", data_dir])
    );
    let secret = server["env"]["MAOS_AGENT_CREDENTIAL"]
        .as_str()
        .unwrap()
        .to_owned();
    let credential = AgentCredential::parse(&secret).unwrap();
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((task.id, 1))
    );
    // Only in the file: neither on the command line nor in Claude Code's environment.
    assert!(!args.iter().any(|a| a.contains(&secret)));
    let agent_env = std::fs::read_to_string(dir.join("env")).unwrap();
    assert!(!agent_env.contains(&secret), "{agent_env}");

    std::fs::write(dir.join("go"), b"").unwrap();
    let done = env.settled(task.id);
    assert_eq!(
        done.state,
        TaskState::Completed,
        "{}",
        env.describe(&done, "not completed")
    );
    assert_eq!(env.supervisor.credential_holder(&credential), None);
    // The file goes with the run.
    assert!(!file.exists(), "{} is still there", file.display());
}

#[test]
fn codex_gets_maos_mcp_server_as_overrides_and_its_credential_in_its_environment() {
    let env = mcp_env();
    let result = concat!(
        r#"'\''{"type":"thread.started","thread_id":"t-1"}'\'' "#,
        r#"'\''{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}'\''"#
    );
    env.register(support::agent(
        "codex",
        AdapterKind::Codex,
        Some(&recording_cli(result)),
        &["codex"],
    ));
    let task = env.task("use the tools", |t| t.capabilities = needs(&["codex"]));
    let dir = await_ready(&env, &task);
    let args: Vec<String> = std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let data_dir = env.dir.path().display().to_string();
    for value in [
        r#"mcp_servers.maos.command="/opt/maos/bin/maos""#.to_owned(),
        format!(r#"mcp_servers.maos.args=["mcp","--data-dir","{data_dir}"]"#),
        // The server's own variables (here the daemon's XDG_RUNTIME_DIR) are forwarded too.
        r#"mcp_servers.maos.env_vars=["MAOS_AGENT_CREDENTIAL","XDG_RUNTIME_DIR"]"#.to_owned(),
    ] {
        let at = args.iter().position(|a| *a == value);
        assert!(
            at.is_some_and(|i| i > 0 && args[i - 1] == "-c"),
            "no -c {value} in {args:?}"
        );
    }
    let agent_env = std::fs::read_to_string(dir.join("env")).unwrap();
    let secret = agent_env
        .lines()
        .find_map(|l| l.strip_prefix("MAOS_AGENT_CREDENTIAL="))
        .unwrap()
        .to_owned();
    let credential = AgentCredential::parse(&secret).unwrap();
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((task.id, 1))
    );
    assert!(!args.iter().any(|a| a.contains(&secret)));
    // No MCP file of Claude Code's for Codex.
    assert!(!dir.join("mode").exists());

    std::fs::write(dir.join("go"), b"").unwrap();
    let done = env.settled(task.id);
    assert_eq!(
        done.state,
        TaskState::Completed,
        "{}",
        env.describe(&done, "not completed")
    );
    assert_eq!(env.supervisor.credential_holder(&credential), None);
}
