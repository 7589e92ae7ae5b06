//! Agents' credentials end to end: a real `command` agent gets its attempt's credential in its
//! environment (never on its command line), the log shows it redacted, the supervisor names its
//! holder only while the attempt runs, and an agent's progress note lands in its log.

use std::path::PathBuf;
use std::time::Duration;

use maos_application::{AgentCredential, AgentRuntime, MaosApi};
use maos_domain::{ProgressNote, Task, TaskState};

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
    env.register(command_agent("waiter", &waiting_agent(400), &["wait"]));
    let task = env.task("run until shutdown", |t| t.capabilities = needs(&["wait"]));
    let credential = credential_of(&env, &task);
    assert_eq!(
        env.supervisor.credential_holder(&credential),
        Some((task.id, 1))
    );
    env.supervisor.shutdown();
    assert_eq!(env.supervisor.credential_holder(&credential), None);
    assert!(eventually(Duration::from_secs(2), || env
        .supervisor
        .running()
        == 0));
}
