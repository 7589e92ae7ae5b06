//! Model attempts (`openai`, `ollama`): MAOS's own loop over a model endpoint, run in the
//! attempt's thread, with the commands the model runs kept in the attempt's containment.

use std::ffi::OsString;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use maos_application::{Launch, MaosApi};
use maos_domain::{AdapterKind, FailureKind, RunReport};

use super::{
    Inner, Key, Outcome, Stop, Timer, budget_error, clip, cost_of, domain_usage, lock,
    mark_started, note, schedule, start_failure, timeout_of,
};
use crate::logs::SharedLog;
use crate::plan::{Paths, prompt_of};
use crate::sys;

/// The containment of a model attempt's commands: each runs in the attempt's cgroup (or is
/// found by its tree and marker), with the agent's limits, and what it leaves dies with it.
#[derive(Debug)]
struct AttemptScope {
    inner: Arc<Inner>,
    key: Key,
    limits: maos_domain::ResourceLimits,
}

impl crate::tools::CommandScope for AttemptScope {
    fn prepare(&self, cmd: &mut Command) -> std::io::Result<()> {
        let cgroup = self
            .inner
            .containment
            .prepare(self.key.0, self.key.1)
            .map_err(std::io::Error::other)?;
        sys::prepare(cmd, self.limits, cgroup);
        Ok(())
    }

    fn spawn(&self, cmd: &mut Command) -> std::io::Result<std::process::Child> {
        self.inner.containment.spawn(cmd)
    }

    fn done(&self, pid: u32) {
        self.inner.containment.forget(pid);
        self.inner
            .containment
            .kill(self.key.0, self.key.1, Some(pid));
    }
}

/// Runs a model attempt in the attempt thread: configures MAOS's own loop from the agent's
/// settings and converses with the model until it answers, fails or is stopped, and says how it
/// went. `None` when the attempt was stopped on request or is no longer current.
pub(super) fn drive_model_loop(
    inner: &Arc<Inner>,
    api: &dyn MaosApi,
    launch: &Launch,
    paths: &Paths,
    log: &SharedLog,
) -> Option<Outcome> {
    let key = (launch.task.id, launch.attempt);
    let settings = &launch.agent.settings;
    let ollama = launch.agent.adapter == AdapterKind::Ollama;
    let base_url = settings.base_url.clone().unwrap_or_else(|| {
        if ollama {
            "http://127.0.0.1:11434/v1".to_owned()
        } else {
            "https://api.openai.com/v1".to_owned()
        }
    });
    let Some(model) = settings.model.clone() else {
        return Some(start_failure(format!(
            "the {} agent {} names no model: register it with a model (`model = \"...\"` in \
             agents.toml, or --model)",
            launch.agent.adapter, launch.agent.name
        )));
    };
    let api_key = match &settings.api_key_env {
        None => None,
        Some(var) => match env_value(&inner.config.env, var.as_str()) {
            Some(v) => Some(v),
            None => {
                return Some(start_failure(format!(
                    "the API key variable {var} is not set in the daemon's environment: set it \
                     and restart the daemon (`maos daemon stop`; the next command starts it \
                     with your environment)"
                )));
            }
        },
    };
    let mut cfg = crate::openai::OpenAiConfig::new(base_url, model);
    cfg.api_key = api_key;
    if let Some(steps) = settings.max_steps {
        cfg.max_steps = steps;
    }
    cfg.tool_calls = settings.tool_calls.unwrap_or(true);
    cfg.extra_env = settings
        .env
        .iter()
        .filter_map(|n| env_value(&inner.config.env, n.as_str()).map(|v| (n.to_string(), v)))
        .collect();
    // The attempt's marker, as every process of an attempt carries it (containment finds
    // them by it when it cannot use a cgroup).
    cfg.extra_env.extend([
        ("MAOS_TASK_ID".to_owned(), launch.task.id.to_string()),
        ("MAOS_ATTEMPT".to_owned(), launch.attempt.to_string()),
    ]);
    let halt = lock(&inner.live)
        .get(&key)
        .map(|l| Arc::clone(&l.halt))
        .unwrap_or_else(|| Arc::new(AtomicBool::new(true)));
    if halt.load(Ordering::SeqCst) || !mark_started(inner, api, launch, paths, None) {
        return None;
    }
    let deadline = Instant::now() + timeout_of(inner, launch);
    {
        // The timeout of an in-process agent: the timer raises its halt flag.
        let stop = lock(&inner.live).get(&key).map(|l| Arc::clone(&l.stop));
        if stop.is_some() {
            schedule(inner, deadline, Timer::Timeout(key));
        }
    }
    let prompt = prompt_of(launch);
    let mut on_event = |event: crate::openai::LoopEvent| {
        use crate::openai::LoopEvent as E;
        let line = match event {
            E::Request { step } => format!("step {step}: asking the model"),
            E::Response {
                step,
                usage,
                finish_reason,
            } => format!(
                "step {step}: answered ({} tokens in, {} out{})",
                usage.input_tokens,
                usage.output_tokens,
                finish_reason.map(|r| format!(", {r}")).unwrap_or_default()
            ),
            E::Text(t) => format!("the model said: {}", clip(&t, 2000)),
            E::ToolCall { name, arguments } => format!("tool {name} {}", clip(&arguments, 500)),
            E::ToolResult { name, ok, summary } => {
                format!(
                    "tool {name} {}: {summary}",
                    if ok { "ok" } else { "failed" }
                )
            }
            E::FileWritten(p) => format!("wrote {}", p.display()),
        };
        note(log, &line);
    };
    let scope: Arc<dyn crate::tools::CommandScope> = Arc::new(AttemptScope {
        inner: Arc::clone(inner),
        key,
        limits: settings.limits,
    });
    // MAOS's own tools, called with the attempt's credential, when the daemon has them.
    let maos = match (inner.toolbox.get(), &paths.credential) {
        (Some(toolbox), Some(credential)) if cfg.tool_calls => Some(crate::openai::MaosTools {
            toolbox: Arc::clone(toolbox),
            credential: credential.clone(),
        }),
        _ => None,
    };
    let result = crate::openai::converse_in_scope(
        &cfg,
        &paths.workdir,
        &prompt,
        &halt,
        Some(scope),
        maos.as_ref(),
        &mut on_event,
    );
    // Whatever the model's commands left behind dies with the attempt.
    inner.containment.kill(key.0, key.1, None);
    let stop = lock(&inner.live).get(&key).map_or(Stop::Requested, |l| {
        Stop::from_u8(l.stop.load(Ordering::SeqCst))
    });
    let (usage, outcome, transcript) = match &result {
        Ok(o) => (o.usage, None, o.transcript.clone()),
        Err(e) => (e.usage(), Some(e.to_string()), Vec::new()),
    };
    let cost = cost_of(launch, &usage);
    let report_usage = domain_usage(&usage, cost);
    let report = |failure| RunReport {
        exit: None,
        usage: report_usage,
        failure,
        ..RunReport::default()
    };
    let mut outcome = match (stop, result) {
        (Stop::Requested, _) => return None,
        (Stop::Timeout, _) => Outcome {
            success: false,
            summary: None,
            error: "timed out: the model loop was stopped".into(),
            report: report(Some(FailureKind::Timeout)),
            lesson: None,
        },
        (_, _) if launch.task.budget_left().is_some_and(|left| cost > left) => Outcome {
            success: false,
            summary: None,
            error: budget_error(launch, cost),
            report: report(Some(FailureKind::Budget)),
            lesson: None,
        },
        (_, Ok(o)) => Outcome {
            success: true,
            summary: Some(clip(&o.summary, launch.task.spec.answer_limit())),
            error: String::new(),
            report: report(None),
            lesson: None,
        },
        (_, Err(_)) => Outcome {
            success: false,
            summary: None,
            error: outcome.unwrap_or_default(),
            report: report(Some(FailureKind::Agent)),
            lesson: None,
        },
    };
    // Decided before the lesson step: nothing it does changes how the attempt went.
    outcome.lesson = super::lesson::ask_model(
        inner,
        launch,
        &cfg,
        &paths.workdir,
        &transcript,
        &halt,
        log,
        &mut on_event,
        &mut outcome,
    );
    Some(outcome)
}

fn env_value(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .find(|(k, _)| k.to_str() == Some(name))
        .and_then(|(_, v)| v.to_str().map(str::to_owned))
}
