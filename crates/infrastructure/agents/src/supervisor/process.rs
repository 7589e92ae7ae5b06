//! Process attempts (`command`, `claude-code`, `codex`): builds the agent's command, spawns it
//! in the attempt's containment (its own process group, resource limits, parent-death signal,
//! the planned environment), feeds its stdin, reads its output (the log, the tail, the
//! protocol's actions), waits for it, and turns how it ended into an outcome.

use std::io::{Read, Write};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use maos_application::{Launch, MaosApi};
use maos_domain::{DurationMs, Exit, FailureKind, RunReport, Usage, Usd};
use tracing::debug;

use super::{
    Inner, Outcome, Stop, Timer, budget_error, clip, cost_of, domain_usage, lock, mark_started,
    note, redactor_of, schedule, set_stop, setup_failure, spawn_named, start_failure, timeout_of,
    write_log,
};
use crate::logs::SharedLog;
use crate::plan::{Paths, ProcessPlan, Stdin, process_plan};
use crate::redact::Redactor;
use crate::stream::StreamAction;
use crate::sys;

/// The last bytes of an agent's output, for a `command` agent's summary or error: redacted
/// before anything is cut from it, and starting at a whole line (so no cut can leave part of
/// a secret behind).
pub(super) struct Tail {
    bytes: Vec<u8>,
    /// How many bytes it keeps (at least [`TAIL`]; a planner's whole answer).
    keep: usize,
    /// Bytes were dropped from the front.
    cut: bool,
    redactor: Redactor,
}

const TAIL: usize = 4096;

impl Tail {
    pub(super) fn new(redactor: Redactor, keep: usize) -> Tail {
        Tail {
            bytes: Vec::new(),
            keep: keep.max(TAIL),
            cut: false,
            redactor,
        }
    }

    pub(super) fn push(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
        if self.bytes.len() > 2 * self.keep {
            let cut = self.bytes.len() - self.keep;
            self.bytes.drain(..cut);
            self.cut = true;
        }
    }

    pub(super) fn text(&self) -> String {
        let mut start = self.bytes.len().saturating_sub(self.keep);
        if self.cut || start > 0 {
            // Begin after the first newline: the line the cut went through is dropped whole.
            // In one long line, begin past what could be the end of a secret cut in two.
            start = match self.bytes[start..].iter().position(|b| *b == b'\n') {
                Some(i) => start + i + 1,
                None => self.redactor.past_a_cut(&self.bytes, start),
            };
        }
        let clean = self.redactor.bytes(&self.bytes[start..]);
        String::from_utf8_lossy(&clean).trim().to_owned()
    }

    fn last_line(&self) -> String {
        let text = self.text();
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect()
    }
}

/// Runs a process attempt in the attempt thread: spawns the agent's command in the attempt's
/// containment, feeds it and reads it until it ends (or is stopped), and says how it went.
/// `None` when the attempt was stopped on request or is no longer current: nothing is reported.
pub(super) fn spawn_and_wait(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    log: &SharedLog,
) -> Option<Outcome> {
    let key = (launch.task.id, launch.attempt);
    let plan = match process_plan(launch, paths, &inner.config.env, inner.config.mcp.as_ref()) {
        Ok(plan) => plan,
        Err(e) => return Some(start_failure(e)),
    };
    // The files the agent reads its configuration from (they may hold its credential): there
    // while it runs, gone once it ended.
    let _files = Files(plan.files.iter().map(|(p, _)| p.clone()).collect());
    for (path, bytes) in &plan.files {
        if let Err(e) = crate::private::write(path, bytes) {
            return Some(setup_failure(format!(
                "cannot write {}: {e}",
                path.display()
            )));
        }
    }
    if !plan.missing_env.is_empty() {
        note(
            log,
            &format!(
                "not set in the daemon's environment, so not passed on: {}",
                plan.missing_env.join(", ")
            ),
        );
    }
    let ProcessPlan {
        program,
        args,
        env,
        stdin,
        mut parser,
        ..
    } = plan;
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .envs(env)
        .current_dir(&paths.workdir)
        .stdin(if stdin == Stdin::Null {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cgroup = match inner.containment.prepare(key.0, key.1) {
        Ok(c) => c,
        Err(e) => return Some(setup_failure(e)),
    };
    sys::prepare(&mut cmd, launch.agent.settings.limits, cgroup);
    let mut child = match inner.containment.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (is it installed, and on the PATH the daemon was started with?)"
            } else {
                ""
            };
            note(log, &format!("cannot start {program}: {e}"));
            return Some(start_failure(format!(
                "cannot start {program:?}: {e}{hint}"
            )));
        }
    };
    let pid = child.id();
    let stop_flag = {
        let mut live = lock(&inner.live);
        match live.get_mut(&key) {
            Some(l) => {
                l.pgid = Some(pid);
                Arc::clone(&l.stop)
            }
            None => Arc::new(AtomicU8::new(Stop::Requested as u8)),
        }
    };
    if Stop::from_u8(stop_flag.load(Ordering::SeqCst)) == Stop::Requested
        || !mark_started(inner, api, launch, paths, Some(pid))
    {
        set_stop(&stop_flag, Stop::Requested);
        inner.containment.kill(key.0, key.1, Some(pid));
        let _ = child.wait();
        inner.containment.forget(pid);
        return None;
    }
    schedule(
        inner,
        Instant::now() + timeout_of(inner, launch),
        Timer::Timeout(key),
    );

    // stdin: the prompt, then either end of file or the protocol's answers.
    let mut input: Option<ChildStdin> = child.stdin.take();
    match stdin {
        Stdin::Null => {}
        Stdin::Write(bytes) => {
            if let Some(mut pipe) = input.take() {
                spawn_named(format!("maos-stdin-{}", key.0.short()), move || {
                    let _ = pipe.write_all(&bytes);
                });
            }
        }
        Stdin::Stream(bytes) => {
            if let Some(pipe) = input.as_mut()
                && pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err()
            {
                input = None;
            }
        }
    }

    let answer_limit = launch.task.spec.answer_limit();
    let tail = Arc::new(Mutex::new(Tail::new(
        Redactor::for_launch(launch, &inner.config.env, paths.credential.as_ref()),
        answer_limit,
    )));
    let stderr_reader = child.stderr.take().map(|mut err| {
        let log = Arc::clone(log);
        let tail = Arc::clone(&tail);
        thread::Builder::new()
            .name(format!("maos-stderr-{}", key.0.short()))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    write_log(&log, &buf[..n]);
                    lock(&tail).push(&buf[..n]);
                }
            })
    });

    let budget_left = launch.task.budget_left();
    let mut usage = crate::report::Usage::default();
    let stdout = child.stdout.take();
    // The process group may outlive its leader (a grandchild in the background), holding the
    // output pipes open: when the leader exits, the group goes too, so that the pipes close and
    // the attempt ends with its agent.
    let waited = thread::scope(|scope| {
        let waiter = thread::Builder::new()
            .name(format!("maos-wait-{}", key.0.short()))
            .spawn_scoped(scope, || {
                let status = child.wait();
                // The pid is free for reuse now: nothing may signal it as this attempt's.
                if let Some(l) = lock(&inner.live).get_mut(&key) {
                    l.pgid = None;
                }
                inner.containment.forget(pid);
                // Whatever the agent started dies with it (its group, its cgroup, its tree).
                inner.containment.kill(key.0, key.1, Some(pid));
                status
            });
        if let Some(mut out) = stdout {
            let mut buf = vec![0u8; 64 * 1024];
            let mut line: Vec<u8> = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                write_log(log, chunk);
                lock(&tail).push(chunk);
                let Some(parser) = parser.as_mut() else {
                    continue;
                };
                for piece in chunk.split_inclusive(|b| *b == b'\n') {
                    line.extend_from_slice(piece);
                    let complete = line.last() == Some(&b'\n');
                    if !complete && line.len() < MAX_LINE {
                        continue;
                    }
                    let actions = parser.on_line(trim_newline(&line));
                    line.clear();
                    for action in actions {
                        handle_action(
                            inner,
                            api,
                            launch,
                            log,
                            &mut input,
                            &mut usage,
                            budget_left,
                            &stop_flag,
                            pid,
                            action,
                        );
                    }
                }
            }
            if let Some(parser) = parser.as_mut()
                && !line.is_empty()
            {
                for action in parser.on_line(trim_newline(&line)) {
                    if let StreamAction::Usage(u) = action {
                        usage = u;
                    }
                }
            }
        }
        drop(input);
        waiter.ok().and_then(|w| w.join().ok())
    });
    let status = waited.unwrap_or_else(|| {
        // No thread could wait: wait here.
        let status = child.wait();
        if let Some(l) = lock(&inner.live).get_mut(&key) {
            l.pgid = None;
        }
        inner.containment.forget(pid);
        inner.containment.kill(key.0, key.1, Some(pid));
        status
    });
    if let Some(Ok(handle)) = stderr_reader {
        let _ = handle.join();
    }
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return Some(Outcome {
                success: false,
                summary: None,
                error: format!("lost track of the agent's process: {e}"),
                report: RunReport {
                    exit: None,
                    usage: Usage::NONE,
                    failure: Some(FailureKind::Interrupted),
                    ..RunReport::default()
                },
                lesson: None,
            });
        }
    };
    let exit = exit_of(status);
    note(
        log,
        &format!("the agent's process ended: {}", describe_exit(exit)),
    );

    let stream = parser.as_ref().map(|p| p.outcome());
    if let Some(s) = &stream {
        usage = s.usage;
    }
    let cost = cost_of(launch, &usage);
    let report_usage = domain_usage(&usage, cost);
    let stop = Stop::from_u8(stop_flag.load(Ordering::SeqCst));
    let denials = stream
        .as_ref()
        .map(|s| s.permission_denials.clone())
        .unwrap_or_default();
    let tail = lock(&tail);
    let mk =
        |success: bool, summary: Option<String>, error: String, failure: Option<FailureKind>| {
            Outcome {
                success,
                summary,
                error,
                report: RunReport {
                    exit,
                    usage: report_usage,
                    failure,
                    permission_denials: denials.clone(),
                    ..RunReport::default()
                },
                lesson: None,
            }
        };
    let outcome = match stop {
        Stop::Requested => return None,
        Stop::Timeout => mk(
            false,
            None,
            format!(
                "timed out after {}: stopped with SIGTERM, then SIGKILL after {}s",
                DurationMs::from_millis(
                    u64::try_from(timeout_of(inner, launch).as_millis()).unwrap_or(1)
                )
                .map_or_else(|_| "its timeout".to_owned(), |d| d.to_string()),
                inner.config.grace.as_secs()
            ),
            Some(FailureKind::Timeout),
        ),
        Stop::Budget => mk(
            false,
            None,
            budget_error(launch, cost),
            Some(FailureKind::Budget),
        ),
        Stop::None if budget_left.is_some_and(|left| cost > left) => mk(
            false,
            None,
            budget_error(launch, cost),
            Some(FailureKind::Budget),
        ),
        Stop::None => match (exit, &stream) {
            (Some(Exit::Code(0)), None) => {
                let summary = read_result(&paths.result_file, answer_limit)
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| tail.text());
                mk(
                    true,
                    Some(clip(&summary, answer_limit)),
                    String::new(),
                    None,
                )
            }
            (Some(Exit::Code(0)), Some(s)) if s.success == Some(true) => mk(
                true,
                s.summary.as_deref().map(|s| clip(s, answer_limit)),
                String::new(),
                None,
            ),
            (Some(Exit::Code(0)), Some(s)) => mk(
                false,
                None,
                s.error.clone().unwrap_or_else(|| {
                    "the agent exited without reporting a successful result".into()
                }),
                Some(FailureKind::Agent),
            ),
            (Some(Exit::Code(code)), s) => {
                let said = s
                    .as_ref()
                    .and_then(|s| s.error.clone())
                    .unwrap_or_else(|| tail.last_line());
                let error = if said.is_empty() {
                    format!("exited with status {code}")
                } else {
                    format!("exited with status {code}: {said}")
                };
                mk(false, None, error, Some(FailureKind::Exit))
            }
            (Some(Exit::Signal(sig)), _) => mk(
                false,
                None,
                format!("killed by signal {sig} ({})", signal_name(sig)),
                Some(FailureKind::Signal),
            ),
            (None, _) => mk(
                false,
                None,
                "ended in an unknown way".into(),
                Some(FailureKind::Exit),
            ),
        },
    };
    Some(outcome)
}

/// Files written for one run of an agent, removed when the run is over (however it ends).
struct Files(Vec<std::path::PathBuf>);

impl Drop for Files {
    fn drop(&mut self) {
        for path in &self.0 {
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                debug!(file = %path.display(), error = %e, "cannot remove an agent's file");
            }
        }
    }
}

/// The longest line handed to a protocol parser; longer ones are cut there.
const MAX_LINE: usize = 16 << 20;

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[allow(clippy::too_many_arguments)]
fn handle_action(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    log: &SharedLog,
    input_pipe: &mut Option<ChildStdin>,
    usage: &mut crate::report::Usage,
    budget_left: Option<Usd>,
    stop_flag: &Arc<AtomicU8>,
    pid: u32,
    action: StreamAction,
) {
    match action {
        StreamAction::Write(bytes) => {
            if let Some(pipe) = input_pipe.as_mut()
                && pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err()
            {
                *input_pipe = None;
            }
        }
        StreamAction::CloseInput => *input_pipe = None,
        StreamAction::Session { id, .. } => {
            if let Err(e) = api.record_session(launch.task.id, launch.fencing, id) {
                debug!(error = %e, "cannot record the agent's session");
            }
        }
        StreamAction::Usage(u) => {
            *usage = u;
            let cost = cost_of(launch, usage);
            if budget_left.is_some_and(|left| cost > left) {
                note(
                    log,
                    &format!("stopping the agent: it has cost ${cost}, over the task's budget"),
                );
                set_stop(stop_flag, Stop::Budget);
                inner
                    .containment
                    .signal(launch.task.id, launch.attempt, Some(pid), libc::SIGTERM);
                schedule(
                    inner,
                    Instant::now() + inner.config.grace,
                    Timer::Kill((launch.task.id, launch.attempt)),
                );
            }
        }
        StreamAction::Permission {
            tool,
            subject,
            allowed,
            reason,
        } => note(
            log,
            &format!(
                "{} {tool}{}: {reason}",
                if allowed { "allowed" } else { "denied" },
                subject.map(|s| format!("({s})")).unwrap_or_default()
            ),
        ),
        StreamAction::Warning(w) => note(log, &format!("the agent warned: {w}")),
        StreamAction::AskPerson {
            tool,
            subject,
            why,
            request_id,
            input,
        } => {
            let call = match &subject {
                Some(s) => format!("{tool}({s})"),
                None => tool.clone(),
            };
            let (allowed, message) = ask_person(inner, api, launch, log, &tool, subject, &why);
            let message = if allowed {
                String::new()
            } else {
                format!("MAOS: `{call}` was not approved: {message}")
            };
            let answer = crate::claude::permission_answer(&request_id, allowed, &input, &message);
            if let Some(pipe) = input_pipe.as_mut()
                && pipe.write_all(&answer).and_then(|()| pipe.flush()).is_err()
            {
                *input_pipe = None;
            }
        }
        StreamAction::Malformed { error, .. } => {
            note(
                log,
                &format!("a line of the agent's output is not JSON: {error}"),
            );
        }
        StreamAction::Text(_)
        | StreamAction::ToolUse { .. }
        | StreamAction::ToolResult { .. }
        | StreamAction::Unknown { .. } => {}
    }
}

/// Asks a person about a tool call of the running attempt and waits for the decision (at most
/// the approval timeout; no decision is a rejection). Answers whether it is allowed, and why not.
fn ask_person(
    inner: &Inner,
    api: &dyn MaosApi,
    launch: &Launch,
    log: &SharedLog,
    tool: &str,
    subject: Option<String>,
    why: &str,
) -> (bool, String) {
    let call = match &subject {
        Some(s) => format!("{tool}({s})"),
        None => tool.to_owned(),
    };
    note(
        log,
        &format!(
            "`{call}` needs a person ({why}): waiting for `maos approve {0}` or `maos reject {0}`",
            launch.task.id.short()
        ),
    );
    let subject = subject.map(|s| redactor_of(inner, launch).text(&s));
    if let Err(e) = api.request_approval(launch.task.id, launch.fencing, tool.to_owned(), subject) {
        note(log, &format!("cannot ask for an approval: {e}"));
        return (false, format!("no person could be asked ({e})"));
    }
    let key = (launch.task.id, launch.attempt);
    let id = maos_application::IdRef::from(launch.task.id);
    let deadline = Instant::now() + inner.config.approval_timeout;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let stopped = lock(&inner.live)
            .get(&key)
            .is_none_or(|l| Stop::from_u8(l.stop.load(Ordering::SeqCst)) != Stop::None);
        if stopped {
            return (false, "the attempt is stopping".into());
        }
        match api.get_task(&id) {
            Ok(t) if t.pending.is_none() => {
                return match t.decision.clone() {
                    Some(d) if d.approved => {
                        note(log, &format!("a person approved `{call}`"));
                        (true, String::new())
                    }
                    Some(d) => {
                        let reason = d.reason.unwrap_or_else(|| "rejected".into());
                        note(log, &format!("a person rejected `{call}`: {reason}"));
                        (false, format!("a person rejected it: {reason}"))
                    }
                    None => (false, "no decision was recorded".into()),
                };
            }
            Ok(_) => {}
            Err(e) => debug!(error = %e, "cannot read the task while waiting for an approval"),
        }
        if Instant::now() >= deadline {
            let reason = format!(
                "no decision within {}s",
                inner.config.approval_timeout.as_secs()
            );
            let _ = api.reject(&id, reason.clone(), false);
            note(log, &format!("`{call}` is denied: {reason}"));
            return (false, reason);
        }
    }
}

fn exit_of(status: ExitStatus) -> Option<Exit> {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .map(Exit::Code)
        .or_else(|| status.signal().map(Exit::Signal))
}

fn describe_exit(exit: Option<Exit>) -> String {
    match exit {
        Some(Exit::Code(c)) => format!("exit status {c}"),
        Some(Exit::Signal(s)) => format!("signal {s} ({})", signal_name(s)),
        None => "unknown".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU: over its CPU time limit",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "a signal",
    }
}

/// The result file an agent wrote, at most `chars` characters of it (read bounded: 4 bytes a
/// character at most); none when there is none or it cannot be read.
pub(super) fn read_result(path: &std::path::Path, chars: usize) -> Option<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let limit = u64::try_from(chars.saturating_mul(4)).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
