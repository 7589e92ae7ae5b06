//! The supervisor end to end: real processes in their own process groups, a real SQLite store
//! and the real application service, which assigns each task as it is created and hands the
//! attempt to the supervisor; outcomes are read back through the service (task state, attempts,
//! events and logs).

#[path = "support.rs"]
pub(crate) mod support;

use std::time::{Duration, Instant};

use maos_agents::group_alive;
use maos_application::{
    CreateTask, Heartbeat, MaosApi, Page, RegisterAgent, TaskError, TaskFilter,
};
use maos_domain::policy::permission::{PermissionRule, PermissionRules};
use maos_domain::{
    AdapterKind, AgentName, DomainEvent, EnvName, Exit, FailureKind, Gate, MaxAttempts, Price,
    PromptVia, ResourceLimits, RunReport, Slots, Task, TaskEvent, TaskId, TaskState, Title,
    TransitionError, Usage, Usd,
};

use crate::claude::harness::{double, transcript};
use support::{
    Env, GRACE, LEASE_MS, Reported, agent, command_agent, env_with, eventually, ms, needs,
    process_gone, script,
};

/// The line the supervisor appends when an agent's process exits with `code`.
fn ended(code: i32) -> String {
    format!("[maos: the agent's process ended: exit status {code}]\n")
}

fn env_names(names: &[&str]) -> Vec<EnvName> {
    names.iter().map(|n| EnvName::parse(n).unwrap()).collect()
}

/// How long an ended attempt ran, in milliseconds.
fn ran_ms(task: &Task, attempt: usize) -> u64 {
    task.attempts[attempt].duration_ms().unwrap()
}

/// The pid a script printed as `<label> <pid>` in its log.
fn printed_pid(log: &str, label: &str) -> u32 {
    log.lines()
        .find_map(|l| l.strip_prefix(label)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{label} <pid>` line in the log:\n{log}"))
}

// ---------------------------------------------------------------------------------------------
// 1. command agents: prompt, result, environment

#[test]
fn a_command_gets_its_prompt_on_stdin_and_its_output_is_the_summary() {
    let env = Env::new();
    env.register(command_agent("cat", "cat", &[]));
    let prompt = "hello from stdin\nsecond line, no newline at the end";
    let task = env.task("echo the prompt", |t| t.prompt = prompt.to_owned());
    // The service assigned it in the same transaction as the create.
    assert_eq!(task.state, TaskState::Assigned, "{task:#?}");

    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let a = &task.attempts[0];
    assert_eq!(a.summary.as_deref(), Some(prompt));
    assert_eq!(a.exit, Some(Exit::Code(0)));
    assert_eq!(a.failure, None);
    assert!(a.pid.is_some_and(|p| p > 1), "{a:#?}");
    // The log is the output, byte for byte, and MAOS's own line starts a line of its own.
    assert_eq!(env.log_text(task.id, 1), format!("{prompt}\n{}", ended(0)));
    assert_eq!(
        std::fs::read(env.log_file(task.id, 1)).unwrap(),
        env.log(task.id, 1)
    );
}

#[test]
fn a_command_reads_its_prompt_file_and_its_result_file_wins_over_the_output() {
    let env = Env::new();
    let mut with_result = command_agent("with-result", &script("prompt-file.sh"), &["result"]);
    with_result.settings.prompt_via = PromptVia::File;
    with_result.settings.args = vec!["result".to_owned()];
    env.register(with_result);
    let mut without = command_agent("without-result", &script("prompt-file.sh"), &["plain"]);
    without.settings.prompt_via = PromptVia::File;
    env.register(without);

    let a = env.task("write a result", |t| {
        t.prompt = "the prompt in a file".to_owned();
        t.capabilities = needs(&["result"]);
    });
    let b = env.task("write no result", |t| {
        t.prompt = "another prompt in a file".to_owned();
        t.capabilities = needs(&["plain"]);
    });

    let a = env.settled(a.id);
    assert_eq!(
        a.state,
        TaskState::Completed,
        "{}",
        env.describe(&a, "not completed")
    );
    assert_eq!(
        a.attempts[0].summary.as_deref(),
        Some(format!("the result of attempt 1 of task {}", a.id).as_str())
    );
    assert_eq!(
        env.log_text(a.id, 1),
        format!(
            "noise before the prompt\nprompt: the prompt in a file\nthe last line of the \
             output\n{}",
            ended(0)
        )
    );

    // Without a result file, the summary is the output's tail.
    let b = env.settled(b.id);
    assert_eq!(
        b.state,
        TaskState::Completed,
        "{}",
        env.describe(&b, "not completed")
    );
    assert_eq!(
        b.attempts[0].summary.as_deref(),
        Some(
            "noise before the prompt\nprompt: another prompt in a file\nthe last line of the output"
        )
    );
}

#[test]
fn a_command_gets_its_prompt_as_an_argument() {
    let env = Env::new();
    let mut templated = command_agent("templated", "printf 'arg=[%s]\\n'", &["templated"]);
    templated.settings.prompt_via = PromptVia::Arg;
    templated.settings.args = vec!["{prompt}".to_owned(), "attempt {attempt}".to_owned()];
    env.register(templated);
    // Without `{prompt}` anywhere, the prompt is the last argument.
    let mut appended = command_agent("appended", "printf '%s|'", &["appended"]);
    appended.settings.prompt_via = PromptVia::Arg;
    appended.settings.args = vec!["first".to_owned()];
    env.register(appended);

    let prompt = "a prompt with spaces, 'quotes' and $HOME";
    let a = env.task("templated", |t| {
        t.prompt = prompt.to_owned();
        t.capabilities = needs(&["templated"]);
    });
    let b = env.task("appended", |t| {
        t.prompt = prompt.to_owned();
        t.capabilities = needs(&["appended"]);
    });
    let a = env.settled(a.id);
    assert_eq!(
        a.state,
        TaskState::Completed,
        "{}",
        env.describe(&a, "not completed")
    );
    assert_eq!(
        env.log_text(a.id, 1),
        format!("arg=[{prompt}]\narg=[attempt 1]\n{}", ended(0))
    );
    let b = env.settled(b.id);
    assert_eq!(
        b.state,
        TaskState::Completed,
        "{}",
        env.describe(&b, "not completed")
    );
    assert_eq!(
        b.attempts[0].summary.as_deref(),
        Some(format!("first|{prompt}|").as_str())
    );
}

/// The variables `env` printed in a log.
fn printed_env(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| !l.starts_with("[maos:"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_environment_is_the_allowlist_the_named_variables_and_maos_own() {
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("MAOS_TEST_SECRET", "s3cret"),
            ("OTHER_SECRET", "other"),
            // A daemon's own MAOS_ variables never override the attempt's.
            ("MAOS_TASK_ID", "bogus"),
            ("MAOS_ATTEMPT", "99"),
        ]);
    });
    env.register(command_agent("plain", "env", &["plain"]));
    let mut named = command_agent("named", "env", &["named"]);
    named.settings.env = env_names(&[
        "MAOS_TEST_SECRET",
        "OTHER_SECRET",
        "NOT_SET_ANYWHERE_XYZ",
        "MAOS_TASK_ID",
    ]);
    env.register(named);

    let plain = env.task("plain env", |t| t.capabilities = needs(&["plain"]));
    let named = env.task("named env", |t| t.capabilities = needs(&["named"]));
    let maos_own = [
        "MAOS_TASK_ID",
        "MAOS_TASK_TITLE",
        "MAOS_ATTEMPT",
        "MAOS_FENCING",
        "MAOS_AGENT",
        "MAOS_WORKDIR",
        "MAOS_PROMPT_FILE",
        "MAOS_RESULT_FILE",
        "MAOS_AGENT_CREDENTIAL",
        "MAOS_DATA_DIR",
    ];
    for (task, extra) in [
        (plain.id, &[][..]),
        (named.id, &["MAOS_TEST_SECRET", "OTHER_SECRET"][..]),
    ] {
        let task = env.settled(task);
        assert_eq!(
            task.state,
            TaskState::Completed,
            "{}",
            env.describe(&task, "not completed")
        );
        let log = env.log_text(task.id, 1);
        let vars = printed_env(&log);
        // Every variable is allowlisted, an `LC_*`, named by the settings or MAOS's own.
        for (k, _) in &vars {
            assert!(
                maos_agents::plan::ENV_ALLOWLIST.contains(&k.as_str())
                    || k.starts_with("LC_")
                    || maos_own.contains(&k.as_str())
                    || extra.contains(&k.as_str()),
                "{k} leaked into the agent's environment:\n{log}"
            );
        }
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        for name in maos_own {
            assert!(get(name).is_some(), "{name} is missing:\n{log}");
        }
        let task_id = task.id.to_string();
        assert_eq!(get("MAOS_TASK_ID"), Some(task_id.as_str()));
        assert_eq!(get("MAOS_ATTEMPT"), Some("1"));
        assert_eq!(get("MAOS_FENCING"), Some("1"));
        // The credential is there, and the log shows it redacted.
        assert_eq!(get("MAOS_AGENT_CREDENTIAL"), Some("[redacted]"), "{log}");
        let data_dir = env.dir.path().display().to_string();
        assert_eq!(get("MAOS_DATA_DIR"), Some(data_dir.as_str()));
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(get("PATH"), Some(path.as_str()));
        }
        if extra.is_empty() {
            assert_eq!(get("MAOS_TEST_SECRET"), None, "{log}");
            assert_eq!(get("MAOS_AGENT"), Some("plain"));
            assert!(!log.contains("s3cret"));
            assert!(!log.contains("not set in the daemon's environment"));
        } else {
            assert_eq!(get("MAOS_TEST_SECRET"), Some("s3cret"), "{log}");
            assert_eq!(get("OTHER_SECRET"), Some("other"), "{log}");
            assert_eq!(get("MAOS_AGENT"), Some("named"));
            assert!(
                log.starts_with(
                    "[maos: not set in the daemon's environment, so not passed on: \
                     NOT_SET_ANYWHERE_XYZ]\n"
                ),
                "{log}"
            );
        }
        // Each variable once.
        let mut keys: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "{log}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. failures and retries

#[test]
fn a_failing_command_is_retried_then_blocked() {
    let env = Env::new();
    env.register(command_agent("failer", &script("fail.sh"), &[]));
    let task = env.task("fail twice", |t| {
        t.max_attempts = MaxAttempts::new(2).unwrap()
    });
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        env.describe(&task, "not blocked")
    );
    assert_eq!(task.attempts.len(), 2, "{:#?}", task.attempts);
    for (i, a) in task.attempts.iter().enumerate() {
        let n = i + 1;
        assert_eq!(a.number as usize, n);
        assert_eq!(a.failure, Some(FailureKind::Exit));
        assert_eq!(a.exit, Some(Exit::Code(3)));
        assert_eq!(
            a.error.as_deref(),
            Some(format!("exited with status 3: giving up on attempt {n}").as_str())
        );
        assert_eq!(
            env.log_text(task.id, a.number),
            format!(
                "working on attempt {n} of task {}\ngiving up on attempt {n}\n{}",
                task.id,
                ended(3)
            )
        );
    }
    assert_eq!(
        task.reason.as_deref(),
        Some("exited with status 3: giving up on attempt 2")
    );
    assert_eq!(
        task.blocked,
        Some(maos_domain::BlockReason::AttemptsFailed {
            attempt: 2,
            failed: 2,
            interrupted: 0,
            strategic: false,
        })
    );
    let events = env.events_of(task.id);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TaskEvent::RetryScheduled { .. }))
            .count(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// 3. timeouts

#[test]
fn a_command_past_its_timeout_is_stopped_with_sigterm() {
    let env = Env::new();
    env.register(command_agent("sleeper", "sleep 30", &[]));
    let started = Instant::now();
    let task = env.task("sleep too long", |t| {
        t.timeout = Some(ms(500));
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let task = env.settled(task.id);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        env.describe(&task, "not blocked")
    );
    let a = &task.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Timeout), "{a:#?}");
    assert_eq!(a.exit, Some(Exit::Signal(libc::SIGTERM)));
    assert!(
        a.error
            .as_deref()
            .unwrap()
            .starts_with("timed out after 500ms"),
        "{a:#?}"
    );
    let ran = ran_ms(&task, 0);
    assert!((400..2_500).contains(&ran), "ran {ran} ms");
    assert!(!group_alive(a.pid.unwrap()));
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    let env = Env::new();
    env.register(command_agent("stubborn", &script("ignore-term.sh"), &[]));
    let task = env.task("ignore SIGTERM", |t| {
        t.timeout = Some(ms(500));
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        env.describe(&task, "not blocked")
    );
    let a = &task.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Timeout), "{a:#?}");
    assert_eq!(a.exit, Some(Exit::Signal(libc::SIGKILL)), "{a:#?}");
    let ran = ran_ms(&task, 0);
    let grace = u64::try_from(GRACE.as_millis()).unwrap();
    assert!((500 + grace - 50..3_000).contains(&ran), "ran {ran} ms");
    assert!(!group_alive(a.pid.unwrap()));
    let log = env.log_text(task.id, 1);
    assert!(log.starts_with("ignoring SIGTERM\n"), "{log}");
    assert!(
        log.ends_with("[maos: the agent's process ended: signal 9 (SIGKILL)]\n"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. death by signal

#[test]
fn a_command_killed_by_a_signal_fails_with_that_signal() {
    let env = Env::new();
    env.register(command_agent(
        "killed",
        "sh -c 'echo about to die; kill -KILL $$'",
        &["kill"],
    ));
    env.register(command_agent("segv", "sh -c 'kill -SEGV $$'", &["segv"]));
    let cases = [
        ("kill", libc::SIGKILL, "SIGKILL"),
        ("segv", libc::SIGSEGV, "SIGSEGV"),
    ];
    let tasks: Vec<_> = cases
        .iter()
        .map(|(cap, _, _)| {
            env.task(&format!("die by {cap}"), |t| {
                t.capabilities = needs(&[cap]);
                t.max_attempts = MaxAttempts::new(1).unwrap();
            })
        })
        .collect();
    for (task, (_, signal, name)) in tasks.iter().zip(cases) {
        let task = env.settled(task.id);
        assert_eq!(
            task.state,
            TaskState::Blocked,
            "{}",
            env.describe(&task, "not blocked")
        );
        let a = &task.attempts[0];
        assert_eq!(a.failure, Some(FailureKind::Signal), "{a:#?}");
        assert_eq!(a.exit, Some(Exit::Signal(signal)));
        assert_eq!(
            a.error.as_deref(),
            Some(format!("killed by signal {signal} ({name})").as_str())
        );
    }
    assert!(env.log_text(tasks[0].id, 1).starts_with("about to die\n"));
}

#[test]
fn resource_limits_apply_to_the_agent_and_a_cpu_hog_dies_of_sigxcpu() {
    let env = Env::new();
    let mut limited = command_agent(
        "limited",
        "sh -c 'ulimit -n; ulimit -t; ulimit -v'",
        &["limits"],
    );
    limited.settings.limits = ResourceLimits {
        cpu_seconds: Some(7),
        memory_mib: Some(512),
        open_files: Some(64),
        processes: None,
    };
    env.register(limited);
    let mut hog = command_agent("hog", "sh -c 'while :; do :; done'", &["hog"]);
    hog.settings.limits.cpu_seconds = Some(1);
    env.register(hog);

    let shown = env.task("show the limits", |t| t.capabilities = needs(&["limits"]));
    let shown = env.settled(shown.id);
    assert_eq!(
        shown.state,
        TaskState::Completed,
        "{}",
        env.describe(&shown, "not completed")
    );
    // open files, CPU seconds, then virtual memory in KiB.
    assert_eq!(
        shown.attempts[0].summary.as_deref(),
        Some("64\n7\n524288"),
        "{shown:#?}"
    );

    let burnt = env.task("spin", |t| {
        t.capabilities = needs(&["hog"]);
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let burnt = env.settled(burnt.id);
    let a = &burnt.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Signal), "{a:#?}");
    // Past the soft CPU limit the kernel sends SIGXCPU (the hard limit is the same: SIGKILL
    // follows if it is ignored).
    assert!(
        matches!(a.exit, Some(Exit::Signal(s)) if s == libc::SIGXCPU || s == libc::SIGKILL),
        "{a:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. and 6. what the log keeps

#[test]
fn an_output_flood_is_capped_and_the_agent_still_completes() {
    const CAP: u64 = 64 << 10;
    const TOTAL: u64 = 5_000_000;
    let env = Env::with(|c| c.log_cap = CAP);
    env.register(command_agent(
        "flood",
        &format!("head -c {TOTAL} /dev/zero"),
        &[],
    ));
    let task = env.task("flood the log", |_| {});
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    assert_eq!(task.attempts[0].exit, Some(Exit::Code(0)));
    // The summary is the output's tail, clipped (NUL bytes and all, stored as they are).
    let summary = task.attempts[0].summary.as_deref().unwrap();
    assert_eq!(summary, format!("…{}", "\0".repeat(2000)));

    let log = std::fs::read(env.log_file(task.id, 1)).unwrap();
    let cap = usize::try_from(CAP).unwrap();
    assert!(log[..cap].iter().all(|b| *b == 0));
    let rest = String::from_utf8(log[cap..].to_vec()).unwrap();
    assert_eq!(
        rest,
        format!(
            "\n[maos: the log reached its cap of {CAP} bytes; further output is discarded]\n{}\
             [maos: {} more bytes were discarded]\n",
            ended(0),
            TOTAL - CAP
        )
    );
    assert_eq!(env.log(task.id, 1), log);
}

#[test]
fn non_utf8_output_is_logged_byte_exact() {
    let env = Env::new();
    env.register(command_agent(
        "binary",
        r"printf 'ok \377\376\375 done\n\200\201'",
        &[],
    ));
    let task = env.task("print bytes", |_| {});
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let mut want = b"ok \xff\xfe\xfd done\n\x80\x81".to_vec();
    // MAOS's line after output that did not end its line starts a line of its own.
    want.extend_from_slice(format!("\n{}", ended(0)).as_bytes());
    assert_eq!(env.log(task.id, 1), want);
    assert_eq!(
        task.attempts[0].summary.as_deref(),
        Some("ok \u{fffd}\u{fffd}\u{fffd} done\n\u{fffd}\u{fffd}")
    );
}

// ---------------------------------------------------------------------------------------------
// 7. the process group

#[test]
fn a_grandchild_left_behind_dies_with_the_group_when_the_agent_exits() {
    let env = Env::new();
    env.register(command_agent("parent", &script("grandchild.sh"), &[]));
    let started = Instant::now();
    let task = env.task("leave a grandchild", |_| {});
    let task = env.settled(task.id);
    // The grandchild holds the output pipes open: the attempt still ends when the agent exits.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the attempt waited for the grandchild: {:?}",
        started.elapsed()
    );
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let log = env.log_text(task.id, 1);
    let grandchild = printed_pid(&log, "grandchild ");
    let pgid = task.attempts[0].pid.unwrap();
    // The attempt ended when the output pipes closed: when every process holding them died.
    assert!(
        process_gone(grandchild),
        "the grandchild {grandchild} survived"
    );
    assert!(!group_alive(pgid));
}

#[test]
fn a_grandchild_dies_with_the_group_when_the_attempt_times_out() {
    let env = Env::new();
    env.register(command_agent(
        "waiter",
        &format!("{} wait", script("grandchild.sh")),
        &[],
    ));
    let task = env.task("wait for a grandchild", |t| {
        t.timeout = Some(ms(500));
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let task = env.settled(task.id);
    assert_eq!(
        task.attempts[0].failure,
        Some(FailureKind::Timeout),
        "{}",
        env.describe(&task, "no timeout")
    );
    let grandchild = printed_pid(&env.log_text(task.id, 1), "grandchild ");
    assert!(
        process_gone(grandchild),
        "the grandchild {grandchild} survived"
    );
    assert!(!group_alive(task.attempts[0].pid.unwrap()));
}

// ---------------------------------------------------------------------------------------------
// 8. start failures

#[test]
fn a_program_that_does_not_exist_is_a_start_failure() {
    let env = Env::new();
    env.register(command_agent(
        "ghost",
        "/nonexistent/maos-ghost --flag",
        &["path"],
    ));
    env.register(command_agent(
        "unknown",
        "maos-no-such-program-xyz",
        &["name"],
    ));
    let by_path = env.task("start a ghost", |t| {
        t.capabilities = needs(&["path"]);
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let by_name = env.task("start an unknown program", |t| {
        t.capabilities = needs(&["name"]);
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    for (task, program) in [
        (by_path.id, "/nonexistent/maos-ghost"),
        (by_name.id, "maos-no-such-program-xyz"),
    ] {
        let task = env.settled(task);
        assert_eq!(
            task.state,
            TaskState::Blocked,
            "{}",
            env.describe(&task, "not blocked")
        );
        let a = &task.attempts[0];
        assert_eq!(a.failure, Some(FailureKind::Start), "{a:#?}");
        assert_eq!(a.exit, None);
        assert_eq!(a.started_at, None, "it never started: {a:#?}");
        let error = a.error.as_deref().unwrap();
        assert!(
            error.starts_with(&format!("cannot start {program:?}: ")),
            "{error}"
        );
        assert!(error.contains("is it installed"), "{error}");
        let log = env.log_text(task.id, 1);
        assert!(
            log.starts_with(&format!("[maos: cannot start {program}: ")),
            "{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. cancel

#[test]
fn cancelling_a_running_task_kills_its_group_and_reports_nothing_more() {
    let env = Env::new();
    env.register(command_agent("stubborn", &script("ignore-term.sh"), &[]));
    let task = env.task("run until cancelled", |_| {});
    let task = env.running(task.id);
    let pid = task.attempts[0].pid.unwrap();
    // The script ignores SIGTERM once it has said so.
    assert!(eventually(Duration::from_secs(5), || {
        env.log_text(task.id, 1).contains("ignoring SIGTERM")
    }));
    assert!(group_alive(pid));

    let cancelled_at = Instant::now();
    let cancelled = env
        .service
        .cancel_task(&task.id.into(), Some("not needed".into()))
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    // Follow the event log from the cancel on.
    let mut follower = env
        .service
        .follow_events(env.service.status().unwrap().last_event)
        .unwrap();
    assert!(
        eventually(GRACE + Duration::from_millis(1_500), || !group_alive(pid)),
        "the process group outlived the cancel"
    );
    // SIGTERM is ignored, so SIGKILL after the grace did it.
    assert!(cancelled_at.elapsed() >= GRACE - Duration::from_millis(50));
    assert!(eventually(Duration::from_secs(2), || env
        .supervisor
        .running()
        == 0));

    // Nothing is reported after the cancel, not even after more heartbeats would have come.
    let quiet_until = Instant::now() + Duration::from_millis(800);
    while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
        for e in follower.next_batch(left).unwrap() {
            assert!(
                !matches!(e.event, DomainEvent::Task { id, .. } if id == task.id),
                "reported after the cancel: {e:#?}"
            );
        }
    }
    let task = env.get(task.id);
    assert_eq!(task.state, TaskState::Cancelled);
    assert_eq!(task.reason.as_deref(), Some("not needed"));
    let a = &task.attempts[0];
    assert_eq!(
        (a.failure, a.exit, a.error.as_deref()),
        (None, None, None),
        "{a:#?}"
    );
    let events = env.events_of(task.id);
    assert!(
        matches!(events.last(), Some(TaskEvent::Cancelled { .. })),
        "{events:#?}"
    );
    // The supervisor did not even try: it reported the start and heartbeats, never an end.
    let reported = env.reported(task.id);
    assert_eq!(
        reported[0],
        Reported::Started(task.id, a.fencing),
        "{reported:#?}"
    );
    assert!(
        reported
            .iter()
            .all(|r| matches!(r, Reported::Started(..) | Reported::Heartbeat(..))),
        "{reported:#?}"
    );
    // The agent's slot is free again.
    let agent = env
        .service
        .get_agent(&AgentName::parse("stubborn").unwrap())
        .unwrap();
    assert_eq!(agent.free_slots(), 1);
}

// ---------------------------------------------------------------------------------------------
// 10. Claude Code and Codex through the supervisor, with their test doubles

const CLAUDE_SESSION: &str = "8f3c2a1e-5b7d-4c9a-9e2f-1a6b3c4d5e6f";
const CLAUDE_PROMPT: &str = "Run the tests, then remove the build directory.";

#[test]
fn claude_code_runs_with_its_permission_policy_session_and_cost() {
    let answers_dir = tempfile::tempdir().unwrap();
    let answers = answers_dir.path().join("answers.jsonl");
    let transcript_path = transcript("claude/permissions.transcript");
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("MAOS_TEST_TRANSCRIPT", transcript_path.to_str().unwrap()),
            ("MAOS_TEST_EXPECT_PROMPT", CLAUDE_PROMPT),
            ("MAOS_TEST_ANSWERS", answers.to_str().unwrap()),
        ]);
    });
    let mut claude = agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(double("claude").to_str().unwrap()),
        &[],
    );
    claude.settings.env = env_names(&[
        "MAOS_TEST_TRANSCRIPT",
        "MAOS_TEST_EXPECT_PROMPT",
        "MAOS_TEST_ANSWERS",
    ]);
    claude.settings.permissions = PermissionRules {
        deny: vec![PermissionRule::parse("Bash(rm:*)").unwrap()],
        ask: Vec::new(),
        allow: vec![PermissionRule::parse("Bash(cargo test:*)").unwrap()],
    };
    env.register(claude);

    let task = env.task("clean up", |t| t.prompt = CLAUDE_PROMPT.to_owned());
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let a = &task.attempts[0];
    assert_eq!(a.session.as_deref(), Some(CLAUDE_SESSION));
    assert_eq!(a.exit, Some(Exit::Code(0)));
    assert_eq!(
        a.summary.as_deref(),
        Some(
            "The test suite has run. I could not remove `target`: MAOS denied `rm -rf target`, \
             so the build directory is still there."
        )
    );
    assert_eq!(
        a.usage,
        Usage {
            input_tokens: 26 + 5208 + 31_420,
            cached_input_tokens: 31_420,
            output_tokens: 412,
            // $0.04213485 as reported, to the micro-dollar.
            cost: Usd::from_micros(42_135),
        }
    );
    assert!(env.events_of(task.id).iter().any(
        |e| matches!(e, TaskEvent::SessionRecorded { session, .. } if session == CLAUDE_SESSION)
    ));
    // Claude Code's result lists the call MAOS denied: the attempt records it.
    assert_eq!(a.permission_denials, ["Bash(rm -rf target)"]);

    let log = env.log_text(task.id, 1);
    assert!(
        log.contains(
            "[maos: allowed Bash(cargo test --workspace): allowed by rule `Bash(cargo test:*)`]\n"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "[maos: denied Bash(rm -rf target): MAOS: `Bash(rm -rf target)` is denied by rule \
             `Bash(rm:*)` in the agent's deny list]\n"
        ),
        "{log}"
    );
    assert!(log.ends_with(&ended(0)), "{log}");
    // The double got one answer per request: allow, then deny.
    let answers = std::fs::read_to_string(&answers).unwrap();
    let behaviors: Vec<&str> = answers
        .lines()
        .map(|l| {
            if l.contains(r#""behavior":"allow""#) {
                "allow"
            } else {
                "deny"
            }
        })
        .collect();
    assert_eq!(behaviors, ["allow", "deny"], "{answers}");
}

/// Claude Code (the double) whose first tool call, `cargo test`, matches an `ask` rule: the
/// attempt waits for a person, who `decides` through the service; answers what the double was
/// told for each call and the finished task.
fn claude_asks_a_person(decide: impl FnOnce(&Env, TaskId)) -> (Vec<String>, Task, String) {
    let answers_dir = tempfile::tempdir().unwrap();
    let answers = answers_dir.path().join("answers.jsonl");
    let transcript_path = transcript("claude/permissions.transcript");
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("MAOS_TEST_TRANSCRIPT", transcript_path.to_str().unwrap()),
            ("MAOS_TEST_ANSWERS", answers.to_str().unwrap()),
        ]);
        c.approval_timeout = Duration::from_secs(20);
    });
    let mut claude = agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(double("claude").to_str().unwrap()),
        &[],
    );
    claude.settings.env = env_names(&["MAOS_TEST_TRANSCRIPT", "MAOS_TEST_ANSWERS"]);
    claude.settings.permissions = PermissionRules {
        deny: vec![PermissionRule::parse("Bash(rm:*)").unwrap()],
        ask: vec![PermissionRule::parse("Bash(cargo test:*)").unwrap()],
        allow: Vec::new(),
    };
    env.register(claude);
    let task = env.task("ask first", |t| t.prompt = CLAUDE_PROMPT.to_owned());
    // The attempt waits, running, with the tool call pending.
    let waiting = env.wait_until(task.id, "waiting for a person", |t| t.pending.is_some());
    assert_eq!(waiting.state, TaskState::Running);
    let pending = waiting.pending.clone().unwrap();
    assert_eq!(pending.gate, Gate::Tool);
    assert_eq!(pending.tool.as_deref(), Some("Bash"));
    assert_eq!(pending.subject.as_deref(), Some("cargo test --workspace"));
    assert_eq!(pending.attempt, Some(1));
    assert_eq!(
        env.service
            .approvals()
            .unwrap()
            .iter()
            .map(|a| a.task.id)
            .collect::<Vec<_>>(),
        vec![task.id]
    );
    decide(&env, task.id);
    let done = env.settled(task.id);
    let answers = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let log = env.log_text(task.id, 1);
    (answers, done, log)
}

#[test]
fn a_tool_call_a_person_approves_goes_ahead() {
    let (answers, task, log) = claude_asks_a_person(|env, id| {
        env.service.approve(&id.into()).unwrap();
    });
    assert_eq!(task.state, TaskState::Completed, "{log}");
    assert!(answers[0].contains(r#""behavior":"allow""#), "{answers:?}");
    assert!(answers[1].contains(r#""behavior":"deny""#), "{answers:?}");
    assert!(
        log.contains("[maos: a person approved `Bash(cargo test --workspace)`]"),
        "{log}"
    );
    assert_eq!(task.decision.as_ref().map(|d| d.gate), Some(Gate::Tool));
    assert!(task.pending.is_none());
}

#[test]
fn a_tool_call_a_person_rejects_is_denied_with_the_reason() {
    let (answers, task, log) = claude_asks_a_person(|env, id| {
        env.service
            .reject(&id.into(), "not on this machine".into(), false)
            .unwrap();
    });
    // The double goes down its denied branch and the run still ends well.
    assert_eq!(task.state, TaskState::Completed, "{log}");
    assert!(
        answers[0].contains(
            "MAOS: `Bash(cargo test --workspace)` was not approved: a person rejected it: not \
             on this machine"
        ),
        "{answers:?}"
    );
    assert!(log.contains("a person rejected `Bash(cargo test --workspace)`: not on this machine"));
    let d = task.decision.clone().unwrap();
    assert!(!d.approved);
    assert_eq!(d.reason.as_deref(), Some("not on this machine"));
}

#[test]
fn claude_code_over_its_budget_is_stopped_with_a_budget_failure() {
    let transcript_path = transcript("claude/permissions.transcript");
    let env = Env::with(|c| {
        c.env = env_with(&[("MAOS_TEST_TRANSCRIPT", transcript_path.to_str().unwrap())]);
    });
    let mut claude = agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(double("claude").to_str().unwrap()),
        &[],
    );
    claude.settings.env = env_names(&["MAOS_TEST_TRANSCRIPT"]);
    // Every call decided by a rule: nothing waits for a person.
    claude.settings.permissions = PermissionRules {
        deny: vec![PermissionRule::parse("Bash(rm:*)").unwrap()],
        ask: Vec::new(),
        allow: vec![PermissionRule::parse("Bash(cargo test:*)").unwrap()],
    };
    env.register(claude);
    let task = env.task("too dear", |t| {
        t.prompt = CLAUDE_PROMPT.to_owned();
        t.budget = Some(Usd::parse("0.01").unwrap());
    });
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        env.describe(&task, "not blocked")
    );
    assert_eq!(task.attempts.len(), 1);
    let a = &task.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Budget), "{a:#?}");
    assert_eq!(a.usage.cost, Usd::from_micros(42_135));
    assert!(
        a.error
            .as_deref()
            .unwrap()
            .starts_with("stopped: this attempt cost $0.042135"),
        "{a:#?}"
    );
    assert!(
        matches!(
            task.blocked,
            Some(maos_domain::BlockReason::BudgetSpent { budget, .. })
                if budget == Usd::parse("0.01").unwrap()
        ),
        "{task:#?}"
    );
}

const CODEX_THREAD: &str = "0199a213-81c0-7800-8aa1-bbab2a035a53";
const CODEX_PROMPT: &str = "Make parse_duration accept unit suffixes such as 90s.";

fn codex_env(scenario: &str, exit: &str) -> Env {
    let transcript_path = transcript(scenario);
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("MAOS_TEST_TRANSCRIPT", transcript_path.to_str().unwrap()),
            ("MAOS_TEST_EXPECT_ARGS", "--model gpt-5-codex"),
            ("MAOS_TEST_EXPECT_PROMPT", CODEX_PROMPT),
            ("MAOS_TEST_EXIT", exit),
        ]);
    });
    let mut codex = agent(
        "codex",
        AdapterKind::Codex,
        Some(double("codex").to_str().unwrap()),
        &[],
    );
    codex.settings.model = Some("gpt-5-codex".to_owned());
    codex.settings.env = env_names(&[
        "MAOS_TEST_TRANSCRIPT",
        "MAOS_TEST_EXPECT_ARGS",
        "MAOS_TEST_EXPECT_PROMPT",
        "MAOS_TEST_EXIT",
    ]);
    codex.settings.price = Some(Price {
        input: Usd::parse("1.25").unwrap(),
        cached_input: Some(Usd::parse("0.125").unwrap()),
        output: Usd::parse("10").unwrap(),
    });
    env.register(codex);
    env
}

#[test]
fn codex_runs_and_its_tokens_are_priced_by_the_agent_table() {
    let env = codex_env("codex/success.jsonl", "0");
    let task = env.task("suffixes", |t| t.prompt = CODEX_PROMPT.to_owned());
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let a = &task.attempts[0];
    assert_eq!(a.session.as_deref(), Some(CODEX_THREAD));
    assert_eq!(
        a.summary.as_deref(),
        Some(
            "`parse_duration` now accepts `s`, `m` and `h` suffixes (so `90s` parses), with a \
             test for each; `cargo test` passes (8 tests)."
        )
    );
    // 6227 fresh input tokens at $1.25, 41984 cached at $0.125 and 1873 output at $10 per
    // million: $0.03176175, rounded up to the micro-dollar.
    assert_eq!(
        a.usage,
        Usage {
            input_tokens: 48_211,
            cached_input_tokens: 41_984,
            output_tokens: 1873,
            cost: Usd::from_micros(31_762),
        }
    );
    assert_eq!(
        env.service.status().unwrap().usage.cost,
        Usd::from_micros(31_762)
    );
}

#[test]
fn codex_is_found_on_the_path_like_the_real_cli() {
    // The double is named `codex`: with its directory first on the daemon's PATH and no
    // `command` on the agent, the supervisor runs it as it would run the real CLI.
    let doubles = double("codex");
    let dir = doubles.parent().unwrap().to_str().unwrap().to_owned();
    let path = format!("{dir}:{}", std::env::var("PATH").unwrap_or_default());
    let transcript_path = transcript("codex/success.jsonl");
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("PATH", path.as_str()),
            ("MAOS_TEST_TRANSCRIPT", transcript_path.to_str().unwrap()),
            ("MAOS_TEST_EXPECT_ARGS", "--model gpt-5-codex"),
            ("MAOS_TEST_EXPECT_PROMPT", CODEX_PROMPT),
            ("MAOS_TEST_EXIT", "0"),
        ]);
    });
    let mut codex = agent("codex", AdapterKind::Codex, None, &[]);
    codex.settings.model = Some("gpt-5-codex".to_owned());
    codex.settings.env = env_names(&[
        "MAOS_TEST_TRANSCRIPT",
        "MAOS_TEST_EXPECT_ARGS",
        "MAOS_TEST_EXPECT_PROMPT",
        "MAOS_TEST_EXIT",
    ]);
    env.register(codex);
    let task = env.task("suffixes", |t| t.prompt = CODEX_PROMPT.to_owned());
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    assert_eq!(task.attempts[0].session.as_deref(), Some(CODEX_THREAD));
}

#[test]
fn a_failed_codex_turn_fails_the_attempt_with_codex_error() {
    let env = codex_env("codex/failure.jsonl", "1");
    let task = env.task("unauthorized", |t| {
        t.prompt = CODEX_PROMPT.to_owned();
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        env.describe(&task, "not blocked")
    );
    let a = &task.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Exit));
    assert_eq!(a.exit, Some(Exit::Code(1)));
    assert_eq!(
        a.session.as_deref(),
        Some("0199a2f0-4d11-7c30-9e21-5b6c7d8e9f00")
    );
    assert_eq!(
        a.error.as_deref(),
        Some(
            "exited with status 1: unexpected status 401 Unauthorized: Missing bearer or basic \
             authentication in header, url: https://api.openai.com/v1/responses"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 11. simulated agents

fn sim_agent(name: &str, slots: u32) -> RegisterAgent {
    let mut a = agent(name, AdapterKind::Sim, None, &[]);
    a.slots = Slots::new(slots).unwrap();
    a
}

/// Waits until `n` tasks are completed or blocked.
fn wait_for_settled_count(env: &Env, n: u64) {
    let settled = || {
        let s = env.service.status().unwrap();
        s.tasks.get(&TaskState::Completed).copied().unwrap_or(0)
            + s.tasks.get(&TaskState::Blocked).copied().unwrap_or(0)
    };
    assert!(
        eventually(support::DEADLINE, || settled() >= n),
        "only {} of {n} tasks settled: {:?}",
        settled(),
        env.service.status().unwrap()
    );
}

fn all_tasks(env: &Env) -> Vec<Task> {
    env.service
        .list_tasks(
            &TaskFilter::default(),
            &Page {
                limit: 10_000,
                cursor: None,
            },
        )
        .unwrap()
        .tasks
}

#[test]
fn many_tasks_on_sim_agents_all_complete() {
    let env = Env::new();
    for n in 0..4 {
        env.register(sim_agent(&format!("sim-{n}"), 4));
    }
    let cmds = (0..200)
        .map(|n| CreateTask::titled(Title::parse(&format!("sim task {n}")).unwrap()))
        .collect();
    let created = env.service.create_tasks(cmds).unwrap();
    assert_eq!(
        created
            .iter()
            .filter(|c| c.task.state == TaskState::Running)
            .count(),
        16,
        "every slot takes a task at once, started with its assignment"
    );
    wait_for_settled_count(&env, 200);
    let tasks = all_tasks(&env);
    assert_eq!(tasks.len(), 200);
    let mut per_agent = std::collections::BTreeMap::<String, usize>::new();
    for t in &tasks {
        assert_eq!(t.state, TaskState::Completed, "{t:#?}");
        assert_eq!(t.attempts.len(), 1);
        let a = &t.attempts[0];
        assert_eq!(a.summary.as_deref(), Some("simulated work done"));
        assert_eq!((a.usage.input_tokens, a.usage.output_tokens), (1_000, 200));
        *per_agent.entry(a.agent.to_string()).or_default() += 1;
    }
    assert_eq!(per_agent.len(), 4, "the work is spread: {per_agent:?}");
    for agent in env.service.list_agents(&Default::default()).unwrap() {
        assert_eq!(agent.free_slots(), 4);
    }
}

#[test]
fn sim_failures_are_retried_and_every_nth_run_fails() {
    const EVERY: u32 = 3;
    let env = Env::new();
    for n in 0..2 {
        let mut a = sim_agent(&format!("flaky-{n}"), 2);
        a.settings.fail_every = Some(EVERY);
        env.register(a);
    }
    let cmds = (0..30)
        .map(|n| {
            let mut c = CreateTask::titled(Title::parse(&format!("flaky task {n}")).unwrap());
            c.max_attempts = MaxAttempts::new(10).unwrap();
            c
        })
        .collect();
    env.service.create_tasks(cmds).unwrap();
    wait_for_settled_count(&env, 30);
    let tasks = all_tasks(&env);
    // Per agent: every EVERY-th attempt it ran failed, the others succeeded.
    let mut runs = std::collections::BTreeMap::<String, (u32, u32)>::new();
    for t in &tasks {
        assert_eq!(t.state, TaskState::Completed, "{t:#?}");
        for a in &t.attempts {
            let e = runs.entry(a.agent.to_string()).or_default();
            e.0 += 1;
            if a.failure.is_some() {
                e.1 += 1;
                assert_eq!(a.failure, Some(FailureKind::Agent));
                assert_eq!(
                    a.error.as_deref(),
                    Some(
                        format!("simulated failure (this sim agent fails every {EVERY} attempts)")
                            .as_str()
                    )
                );
            }
        }
    }
    for (agent, (total, failed)) in &runs {
        assert_eq!(
            *failed,
            total / EVERY,
            "{agent}: {total} runs, {failed} failed"
        );
    }
    // At least 30 runs over two agents: at least 8 of them failed, and each failure was retried.
    let failed: u32 = runs.values().map(|(_, f)| f).sum();
    assert!(failed >= 8, "{runs:?}");
    let retried = tasks.iter().filter(|t| t.attempts.len() > 1).count();
    let with_failure = tasks
        .iter()
        .filter(|t| t.attempts.iter().any(|a| a.failure.is_some()))
        .count();
    assert!(retried > 0);
    assert_eq!(retried, with_failure);
}

#[test]
fn a_sim_attempt_over_the_budget_fails_with_budget_and_blocks_the_task() {
    let env = Env::new();
    let mut a = sim_agent("pricey", 1);
    // 1000 input tokens at $10 and 200 output tokens at $50 per million: $0.02.
    a.settings.price = Some(Price {
        input: Usd::parse("10").unwrap(),
        cached_input: None,
        output: Usd::parse("50").unwrap(),
    });
    env.register(a);
    let task = env.task("too dear", |t| t.budget = Some(Usd::parse("0.01").unwrap()));
    let task = env.settled(task.id);
    assert_eq!(task.state, TaskState::Blocked, "{task:#?}");
    assert_eq!(task.attempts.len(), 1, "a budget failure is not retried");
    let a = &task.attempts[0];
    assert_eq!(a.failure, Some(FailureKind::Budget));
    assert_eq!(a.usage.cost, Usd::parse("0.02").unwrap());
    assert_eq!(
        a.error.as_deref(),
        Some(
            "stopped: this attempt cost $0.02, more than the $0.01 left of the task's $0.01 budget"
        )
    );
    assert_eq!(
        task.blocked,
        Some(maos_domain::BlockReason::BudgetSpent {
            attempt: 1,
            budget: Usd::parse("0.01").unwrap(),
            spent: Usd::parse("0.02").unwrap(),
        })
    );
}

// ---------------------------------------------------------------------------------------------
// 12. heartbeats

#[test]
fn heartbeats_keep_an_attempt_longer_than_its_lease_alive() {
    let env = Env::new();
    env.register(command_agent(
        "slow",
        "sh -c 'sleep 3; echo done sleeping'",
        &[],
    ));
    let task = env.task("outlive the lease", |_| {});
    let first_lease = task.attempts[0].lease_expires_at;
    env.running(task.id);
    let until = Instant::now() + Duration::from_millis(2_500);
    while Instant::now() < until {
        assert_eq!(env.service.expire_leases().unwrap(), 0, "a lease expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let renewed = env.get(task.id).attempts[0].lease_expires_at;
    assert!(
        renewed.as_millis() > first_lease.as_millis() + 1_500,
        "the lease was not renewed: {first_lease:?} -> {renewed:?}"
    );
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    assert_eq!(task.attempts.len(), 1);
    assert_eq!(task.attempts[0].summary.as_deref(), Some("done sleeping"));
    assert!(ran_ms(&task, 0) > LEASE_MS * 2);
    let beats = env
        .reported(task.id)
        .iter()
        .filter(|r| matches!(r, Reported::Heartbeat(..)))
        .count();
    assert!(beats >= 5, "{beats} heartbeats");
    // Renewals are kept in memory (ADR 0023): the lease is pushed on, and nothing is written.
    use maos_application::ports::ReadStore;
    let stored = env
        .service
        .store()
        .task(task.id)
        .unwrap()
        .expect("the task is stored");
    assert_eq!(stored.attempts[0].lease_expires_at, first_lease);
    let written = env
        .events_of(task.id)
        .iter()
        .filter(|e| matches!(e, TaskEvent::LeaseRenewed { .. }))
        .count();
    assert_eq!(written, 0, "renewals were written to the log");
}

// ---------------------------------------------------------------------------------------------
// 13. fencing

#[test]
fn a_stale_result_is_refused() {
    let env = Env::new();
    env.register(command_agent("once", &script("fail-once.sh"), &[]));
    let task = env.task("fail once, then run", |_| {});
    let task = env.wait_until(task.id, "running its second attempt", |t| {
        t.state == TaskState::Running && t.attempts.len() == 2
    });
    let old = task.attempts[0].fencing;
    let current = task.attempts[1].fencing;
    assert_eq!(task.attempts[0].failure, Some(FailureKind::Exit));
    assert_ne!(old, current);

    let stale = |e: TaskError| match e {
        TaskError::Transition(TransitionError::StaleAttempt {
            presented,
            current: c,
            ..
        }) => (presented, c),
        other => panic!("not a stale-attempt error: {other:?}"),
    };
    let e = env
        .service
        .complete_attempt(task.id, old, Some("late".into()), RunReport::default())
        .unwrap_err();
    assert_eq!(stale(e), (old.get(), current.get()));
    let e = env
        .service
        .fail_attempt(task.id, old, "late".into(), RunReport::default())
        .unwrap_err();
    assert_eq!(stale(e), (old.get(), current.get()));
    let refused = env
        .service
        .heartbeat(&[Heartbeat {
            task: task.id,
            fencing: old,
        }])
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(env.get(task.id).state, TaskState::Running);

    // Cancelled: even the current token's result is refused, and the process is stopped.
    env.service.cancel_task(&task.id.into(), None).unwrap();
    let e = env
        .service
        .complete_attempt(task.id, current, None, RunReport::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Cancelled,
                ..
            })
        ),
        "{e:?}"
    );
    let pid = task.attempts[1].pid.unwrap();
    assert!(eventually(GRACE + Duration::from_secs(1), || !group_alive(
        pid
    )));
    assert!(eventually(Duration::from_secs(2), || env
        .supervisor
        .running()
        == 0));
    assert_eq!(env.get(task.id).state, TaskState::Cancelled);
    // The supervisor reported the first attempt's end, and not the second's.
    let ends: Vec<Reported> = env
        .reported(task.id)
        .into_iter()
        .filter(|r| matches!(r, Reported::Completed(..) | Reported::Failed(..)))
        .collect();
    assert_eq!(ends, [Reported::Failed(task.id, old)]);
}
