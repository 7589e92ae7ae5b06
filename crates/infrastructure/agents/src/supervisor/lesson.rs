//! Lessons after failed attempts: when an attempt whose task asks for them succeeds after
//! earlier attempts failed (`maos_domain::lesson`), its agent is asked, in the attempt's thread
//! and before its checkpoint and verification, for one paragraph on what went wrong and what to
//! do differently. A Claude Code or Codex agent is resumed in the attempt's session (Claude
//! Code with every tool call denied), a `command` agent is run again with the question as its
//! prompt and `MAOS_LESSON=1`; MAOS's own model loop asks in one more turn (`model.rs`).
//!
//! The step is bounded and never fails the attempt: it runs in the attempt's containment (a
//! stop of the attempt stops it, and whatever it starts dies with the attempt), at most
//! [`SupervisorConfig::lesson_timeout`](super::SupervisorConfig::lesson_timeout) (then it is
//! killed), and its answer is capped; a problem is only noted in the attempt's log. The answer
//! is stored as a memory entry by `finish`, once the attempt's success was accepted.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use maos_application::{AddMemory, IdRef, Launch, MaosApi};
use maos_domain::lesson;
use maos_domain::policy::permission::PermissionRule;
use maos_domain::{AdapterKind, Exit, Usage};
use tracing::{info, warn};

use super::process::{Tail, read_result};
use super::{Inner, Outcome, Stop, cost_of, domain_usage, lock, note, spawn_named, write_log};
use crate::codex::CodexStream;
use crate::logs::SharedLog;
use crate::plan::{Paths, Stdin, process_plan_with, thread_usage};
use crate::redact::Redactor;
use crate::stream::StreamAction;
use crate::sys;

/// The most of a lesson step's output read for its answer (the answer is cut far shorter).
const ANSWER_READ: usize = 64 * 1024;

/// The longest line of a lesson step's output handed to its protocol parser.
const MAX_LINE: usize = 1 << 20;

/// Asks the agent of a process attempt that succeeded for its lesson, when its task wants one,
/// and adds the step's usage to `outcome`. Returns the answer, redacted (not yet clipped), or
/// `None` (not wanted, the attempt is stopping, or the step failed: noted in the log).
pub(super) fn ask_process(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    log: &SharedLog,
    outcome: &mut Outcome,
) -> Option<String> {
    if !outcome.success || !lesson::wants_lesson(&launch.task, launch.attempt) {
        return None;
    }
    let key = (launch.task.id, launch.attempt);
    let stop = lock(&inner.live).get(&key).map(|l| Arc::clone(&l.stop))?;
    if Stop::from_u8(stop.load(Ordering::SeqCst)) != Stop::None {
        return None;
    }
    note(
        log,
        "the task had failed attempts: asking the agent for a lesson",
    );
    let asked = lesson_launch(api, launch);
    let question = lesson::question(&launch.task, launch.attempt);
    let mut lesson_paths = paths.clone();
    if let Some(run_dir) = paths.prompt_file.parent() {
        lesson_paths.prompt_file = run_dir.join("lesson-prompt.md");
        lesson_paths.result_file = run_dir.join("lesson.md");
    }
    let _ = std::fs::remove_file(&lesson_paths.result_file);
    if let Err(e) = crate::private::write(&lesson_paths.prompt_file, question.as_bytes()) {
        note(log, &format!("no lesson: cannot write its prompt: {e}"));
        return None;
    }
    let plan = match process_plan_with(&asked, &lesson_paths, &inner.config.env, question, None) {
        Ok(plan) => plan,
        Err(e) => {
            note(log, &format!("no lesson: {e}"));
            return None;
        }
    };
    let mut parser = plan.parser;
    if launch.agent.adapter == AdapterKind::Codex
        && let Some(session) = &asked.resume
    {
        // The resumed thread's total now includes this attempt.
        let mut baseline = thread_usage(launch, session);
        let this = &outcome.report.usage;
        baseline.input_tokens += this.input_tokens;
        baseline.cached_input_tokens += this.cached_input_tokens;
        baseline.output_tokens += this.output_tokens;
        parser = Some(Box::new(CodexStream::resuming(None, baseline)));
    }
    let mut env = plan.env;
    env.push(("MAOS_LESSON".into(), "1".into()));
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .env_clear()
        .envs(env)
        .current_dir(&lesson_paths.workdir)
        .stdin(if plan.stdin == Stdin::Null {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cgroup = match inner.containment.prepare(key.0, key.1) {
        Ok(c) => c,
        Err(e) => {
            note(log, &format!("no lesson: {e}"));
            return None;
        }
    };
    sys::prepare(&mut cmd, launch.agent.settings.limits, cgroup);
    let mut child = match inner.containment.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            note(
                log,
                &format!("no lesson: cannot start {}: {e}", plan.program),
            );
            return None;
        }
    };
    let pid = child.id();
    // A stop of the attempt reaches the lesson's process from now on.
    let stopping = match lock(&inner.live).get_mut(&key) {
        Some(l) => {
            l.pgid = Some(pid);
            Stop::from_u8(l.stop.load(Ordering::SeqCst)) != Stop::None
        }
        None => true,
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        let inner = Arc::clone(inner);
        let timed_out = Arc::clone(&timed_out);
        let timeout = inner.config.lesson_timeout;
        spawn_named(format!("maos-lesson-{}", key.0.short()), move || {
            if stopping || done_rx.recv_timeout(timeout).is_err() {
                timed_out.store(!stopping, Ordering::SeqCst);
                inner.containment.kill(key.0, key.1, Some(pid));
            }
        });
    }

    let mut input = child.stdin.take();
    match plan.stdin {
        Stdin::Null => {}
        Stdin::Write(bytes) => {
            if let Some(mut pipe) = input.take() {
                spawn_named(format!("maos-lesson-stdin-{}", key.0.short()), move || {
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
    let redactor = Redactor::for_launch(launch, &inner.config.env, paths.credential.as_ref());
    let mut tail = Tail::new(redactor.clone(), ANSWER_READ);
    let stderr = child.stderr.take().map(|mut err| {
        let log = Arc::clone(log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                write_log(&log, &buf[..n]);
            }
        })
    });
    let mut usage = crate::report::Usage::default();
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 64 * 1024];
        let mut line: Vec<u8> = Vec::new();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            write_log(log, chunk);
            tail.push(chunk);
            let Some(parser) = parser.as_mut() else {
                continue;
            };
            for piece in chunk.split_inclusive(|b| *b == b'\n') {
                line.extend_from_slice(piece);
                if line.last() != Some(&b'\n') && line.len() < MAX_LINE {
                    continue;
                }
                let actions = parser.on_line(line.strip_suffix(b"\n").unwrap_or(&line));
                line.clear();
                for action in actions {
                    answer_protocol(action, &mut input, &mut usage);
                }
            }
        }
        if let Some(parser) = parser.as_mut()
            && !line.is_empty()
        {
            for action in parser.on_line(&line) {
                answer_protocol(action, &mut input, &mut usage);
            }
        }
    }
    drop(input);
    let status = child.wait();
    let _ = done_tx.send(());
    if let Some(l) = lock(&inner.live).get_mut(&key) {
        l.pgid = None;
    }
    inner.containment.forget(pid);
    // Whatever the lesson's process started dies with it.
    inner.containment.kill(key.0, key.1, Some(pid));
    if let Some(handle) = stderr {
        let _ = handle.join();
    }

    let stream = parser.as_ref().map(|p| p.outcome());
    if let Some(s) = &stream {
        usage = s.usage;
    }
    let cost = cost_of(launch, &usage);
    let spent = domain_usage(&usage, cost);
    add_usage(&mut outcome.report.usage, &spent);
    if timed_out.load(Ordering::SeqCst) {
        note(
            log,
            &format!(
                "no lesson: the agent did not answer within {}s",
                inner.config.lesson_timeout.as_secs()
            ),
        );
        return None;
    }
    if Stop::from_u8(stop.load(Ordering::SeqCst)) != Stop::None {
        return None;
    }
    let exit = status.ok().and_then(|s| {
        use std::os::unix::process::ExitStatusExt;
        s.code()
            .map(Exit::Code)
            .or_else(|| s.signal().map(Exit::Signal))
    });
    let answer = match (exit, &stream) {
        (Some(Exit::Code(0)), None) => read_result(&lesson_paths.result_file, ANSWER_READ)
            .map(|s| redactor.text(s.trim()))
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| tail.text()),
        (Some(Exit::Code(0)), Some(s)) if s.success == Some(true) => s
            .summary
            .as_deref()
            .map(|s| redactor.text(s))
            .unwrap_or_default(),
        (exit, s) => {
            let why = s
                .as_ref()
                .and_then(|s| s.error.clone())
                .map(|e| redactor.text(&e))
                .unwrap_or_else(|| match exit {
                    Some(Exit::Code(c)) => format!("it exited with status {c}"),
                    Some(Exit::Signal(sig)) => format!("it was killed by signal {sig}"),
                    None => "it ended in an unknown way".to_owned(),
                });
            note(log, &format!("no lesson: {why}"));
            return None;
        }
    };
    if answer.trim().is_empty() {
        note(log, "no lesson: the agent's answer was empty");
        return None;
    }
    note(log, "the agent answered with a lesson");
    Some(answer)
}

/// Asks the model of an attempt of MAOS's own loop that succeeded for its lesson, in one more
/// user turn after its `transcript` (no tool may run), when its task wants one; adds the turn's
/// usage to `outcome`. Returns the answer (redacted), or `None`.
#[allow(clippy::too_many_arguments)]
pub(super) fn ask_model(
    inner: &Arc<Inner>,
    launch: &Launch,
    cfg: &crate::openai::OpenAiConfig,
    workdir: &std::path::Path,
    transcript: &[serde_json::Value],
    halt: &AtomicBool,
    log: &SharedLog,
    on_event: &mut dyn FnMut(crate::openai::LoopEvent),
    outcome: &mut Outcome,
) -> Option<String> {
    if !outcome.success
        || transcript.is_empty()
        || !lesson::wants_lesson(&launch.task, launch.attempt)
        || halt.load(Ordering::SeqCst)
    {
        return None;
    }
    note(
        log,
        "the task had failed attempts: asking the model for a lesson",
    );
    let mut cfg = cfg.clone();
    // One request, bounded by the lesson's time (the attempt's stop still halts it).
    cfg.request_timeout = cfg.request_timeout.min(inner.config.lesson_timeout);
    let question = lesson::question(&launch.task, launch.attempt);
    let credential = lock(&inner.live)
        .get(&(launch.task.id, launch.attempt))
        .and_then(|l| l.credential.clone());
    let result = crate::openai::follow_up(&cfg, workdir, transcript, &question, halt, on_event);
    let usage = match &result {
        Ok(o) => o.usage,
        Err(e) => e.usage(),
    };
    let cost = cost_of(launch, &usage);
    add_usage(&mut outcome.report.usage, &domain_usage(&usage, cost));
    match result {
        Ok(o) if !o.summary.trim().is_empty() => {
            note(log, "the model answered with a lesson");
            Some(
                Redactor::for_launch(launch, &inner.config.env, credential.as_ref())
                    .text(&o.summary),
            )
        }
        Ok(_) => {
            note(log, "no lesson: the model's answer was empty");
            None
        }
        Err(e) => {
            note(log, &format!("no lesson: {e}"));
            None
        }
    }
}

/// The launch that asks for the lesson: the attempt's own agent, resuming the session the
/// attempt recorded (a Claude Code or Codex agent without one starts afresh, with the question's
/// account of the failures), and for Claude Code every tool call denied (the step answers, it
/// does not work).
fn lesson_launch(api: &dyn MaosApi, launch: &Launch) -> Launch {
    let mut asked = launch.clone();
    asked.resume = api
        .get_task(&IdRef::from(launch.task.id))
        .ok()
        .and_then(|t| {
            t.attempts
                .iter()
                .find(|a| a.number == launch.attempt)
                .and_then(|a| a.session.clone())
        });
    if launch.agent.adapter == AdapterKind::ClaudeCode {
        let mut agent = maos_domain::agent::AgentData::clone(&asked.agent);
        agent.settings.skip_permissions = false;
        agent.settings.permissions = maos_domain::policy::permission::PermissionRules {
            deny: PermissionRule::parse("*").into_iter().collect(),
            ask: Vec::new(),
            allow: Vec::new(),
        };
        asked.agent = maos_domain::Agent::restore(agent);
    }
    asked
}

/// Answers what a lesson step's protocol asks for: its writes go to the agent's stdin, every
/// question for a person is denied (nobody is asked during a lesson), usage is counted.
fn answer_protocol(
    action: StreamAction,
    input: &mut Option<std::process::ChildStdin>,
    usage: &mut crate::report::Usage,
) {
    let write = |input: &mut Option<std::process::ChildStdin>, bytes: &[u8]| {
        if let Some(pipe) = input.as_mut()
            && pipe.write_all(bytes).and_then(|()| pipe.flush()).is_err()
        {
            *input = None;
        }
    };
    match action {
        StreamAction::Write(bytes) => write(input, &bytes),
        StreamAction::CloseInput => *input = None,
        StreamAction::Usage(u) => *usage = u,
        StreamAction::AskPerson {
            request_id,
            input: call,
            ..
        } => {
            let answer = crate::claude::permission_answer(
                &request_id,
                false,
                &call,
                "MAOS: answer with the lesson only; no tool runs now",
            );
            write(input, &answer);
        }
        _ => {}
    }
}

fn add_usage(total: &mut Usage, more: &Usage) {
    total.input_tokens += more.input_tokens;
    total.cached_input_tokens += more.cached_input_tokens;
    total.output_tokens += more.output_tokens;
    total.cost += more.cost;
}

/// Keeps the lesson that attempt `launch.attempt` answered, once its success was accepted: a
/// routine memory entry of the task's repository (else its orchestration), tagged `lesson`,
/// written by the attempt. Failures are logged, never more.
pub(super) fn keep(api: &dyn MaosApi, launch: &Launch, answer: &str) {
    let task = launch.task.id.short();
    let Some(spec) = lesson::lesson_memory(&launch.task, launch.attempt, answer) else {
        info!(task = %task, "a lesson was not kept: the task has no repository or orchestration");
        return;
    };
    let cmd = AddMemory {
        tier: spec.tier,
        scope: spec.scope,
        text: spec.text,
        tags: spec.tags,
        provenance: spec.provenance,
    };
    match api.add_memory(cmd) {
        Ok(m) => info!(task = %task, memory = %m.id.short(), "kept a lesson"),
        Err(e) => warn!(task = %task, error = %e, "cannot keep a lesson"),
    }
}

/// How long a lesson step may take by default.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
