//! MAOS's own agent loop over an OpenAI-compatible chat completions endpoint (OpenAI, Ollama's
//! `/v1`, vLLM, llama.cpp's server, ...): observe → think → act → result, with the tools of
//! [`crate::tools`], every one confined to the working directory.
//!
//! # API
//!
//! ```text
//! pub struct OpenAiConfig { base_url, model, api_key, max_steps, command_timeout,
//!                           request_timeout, tool_calls, temperature, extra_env }
//! OpenAiConfig::new(base_url, model) -> OpenAiConfig          // defaults for the rest
//! pub fn converse(cfg: &OpenAiConfig, workdir: &Path, prompt: &str, stop: &AtomicBool,
//!            on_event: &mut dyn FnMut(LoopEvent)) -> Result<LoopOutcome, LoopError>
//! pub fn converse_in_scope(cfg, workdir, prompt, stop, scope: Option<Arc<dyn CommandScope>>,
//!            maos: Option<&MaosTools>, on_event) -> Result<LoopOutcome, LoopError>
//! pub struct MaosTools { toolbox: Arc<dyn AgentToolbox>, credential: AgentCredential }
//! pub enum LoopEvent { Request { step }, Response { step, usage, finish_reason }, Text(String),
//!                      ToolCall { name, arguments }, ToolResult { name, ok, summary },
//!                      FileWritten(PathBuf) }
//! pub fn follow_up(cfg, workdir, transcript: &[Value], question: &str, stop, on_event)
//!            -> Result<LoopOutcome, LoopError>   // one more user turn, no tool runs
//! pub struct LoopOutcome { summary, steps, usage, transcript }
//! pub enum LoopError { Config, Http, Api, StepLimit, Stopped, Protocol }  // each with the usage so far
//! LoopError::usage(&self) -> Usage
//! pub fn parse_fenced_files(text: &str) -> FencedFiles            // the fenced-code mode's parser
//! pub fn chat_url(base_url: &str) -> String                       // {base_url}/chat/completions
//! ```
//!
//! # With tool calling (`tool_calls: true`)
//!
//! The conversation starts with a system message (the tools, the working directory, the rules)
//! and the prompt as the user message. Each step POSTs
//! `{model, messages, tools, tool_choice: "auto", stream: false[, temperature]}` to
//! `{base_url}/chat/completions` (with `Authorization: Bearer <api_key>` when a key is set) and
//! reads `choices[0]`:
//!
//! - `message.tool_calls` present and non-empty (whatever `finish_reason` says: some servers
//!   answer `stop` with tool calls): the assistant message is appended, each call
//!   (`{id, type: "function", function: {name, arguments}}`, `arguments` being a JSON *string*)
//!   is executed in order, and one `{role: "tool", tool_call_id, content}` message per call is
//!   appended. Arguments that are not valid JSON, unknown tools and tool failures are answered
//!   with an `error: ...` tool message, never by ending the run. Tolerated deviations seen on
//!   compatible servers: `arguments` sent as a JSON object (re-serialized), a missing `id` (one
//!   is made up, `call_<step>_<n>`), an empty `arguments` (taken as `{}`).
//! - with [`MaosTools`], MAOS's own tools (their names start with `maos_`, such as
//!   `maos_report_progress`) are offered beside the workspace tools; a call of one goes to the
//!   toolbox with the attempt's credential, and its JSON answer (`{"error": ...}` when refused)
//!   is the tool message's content.
//! - otherwise the run ends, and `message.content` (or `message.refusal`) is the summary. With
//!   `finish_reason: "length"` a note that the answer was cut off is appended to it; with
//!   `"content_filter"` the run fails with [`LoopError::Protocol`].
//!
//! `usage.prompt_tokens`, `usage.completion_tokens` and `usage.prompt_tokens_details.cached_tokens`
//! are summed over the responses (each may be missing; the cost is left to the supervisor's
//! price table). After `max_steps` requests without a final answer the run fails with
//! [`LoopError::StepLimit`].
//!
//! # Without tool calling (`tool_calls: false`): fenced code
//!
//! No tools are sent; the system message asks the model to answer once, putting each file it
//! wants to create or replace in a fenced code block whose info string names the file,
//! relative to the working directory. Two forms are recognised:
//!
//! ````text
//! ```rust path=src/main.rs          a language, then path=<path> (also file= or filename=,
//! fn main() {}                      optionally quoted)
//! ```
//!
//! ```src/main.rs                    the info string's first or second word is the path
//! fn main() {}                      (`rust src/main.rs` works too); it must contain a '/'
//! ```                               or a '.' (`Makefile` needs path=Makefile)
//! ````
//!
//! Fences are three or more backticks or tildes; a block closes at a fence of the same
//! character at least as long (so a file containing ``` needs a ```` fence). Each named block
//! is written like `write_file` (same confinement); a block that is never closed (the answer
//! was cut off) is not written. Blocks without a path are left in the text. The text outside
//! the written blocks is the summary. One request, then the run ends.
//!
//! # Stopping, timeouts, secrets
//!
//! `stop` is checked before every request and every tool call, polled while a command runs
//! (which is then killed), and watched during a request, which is then abandoned (the HTTP
//! agent is shut down): the run ends with [`LoopError::Stopped`]. A request is bounded by
//! `request_timeout` (all of it: connection, upload, waiting for the model, download).
//! The API key is only ever put into the `Authorization` header (marked sensitive); it is
//! redacted from [`OpenAiConfig`]'s `Debug` and from any server message quoted in an error.
//! Redirects are not followed (a POST cannot be replayed safely, and the key must not travel
//! to another host): a 3xx is reported with the target to put into `base_url` instead.
//! Proxies come from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY`, as ureq reads them,
//! except for a loopback `base_url` (`localhost`, `127.x.x.x`, `[::1]`), which is always direct.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use maos_application::{AgentCredential, AgentToolbox};
use serde::Serialize;
use serde_json::{Value, json};

use crate::report::Usage;
use crate::tools::{self, ToolResult, Tools};

/// Largest response body read from the endpoint.
const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// How often the stop watcher looks at the stop flag during a request.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How a run talks to its model.
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The API's base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`;
    /// requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model name the endpoint knows.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set; never logged nor put into errors.
    pub api_key: Option<String>,
    /// Most model requests one run makes.
    pub max_steps: u32,
    /// How long one `run_command` (or `git_diff`) may run before it is killed.
    pub command_timeout: Duration,
    /// How long one model request may take, all included.
    pub request_timeout: Duration,
    /// Whether the model supports tool calling; without it, the fenced-code mode is used.
    pub tool_calls: bool,
    /// The sampling temperature, when the agent's configuration sets one.
    pub temperature: Option<f32>,
    /// Environment variables for the commands the model runs, on top of
    /// [`tools::ENV_ALLOWLIST`] (the rest of this process's environment is not passed on).
    pub extra_env: Vec<(String, String)>,
}

impl OpenAiConfig {
    /// A configuration with defaults: no key, 50 steps, commands 10 minutes, requests
    /// 10 minutes, tool calling on, the server's temperature, no extra environment.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            max_steps: 50,
            command_timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(600),
            tool_calls: true,
            temperature: None,
            extra_env: Vec::new(),
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_steps", &self.max_steps)
            .field("command_timeout", &self.command_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tool_calls", &self.tool_calls)
            .field("temperature", &self.temperature)
            .field(
                "extra_env",
                &self.extra_env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// MAOS's own tools (reporting progress, splitting the task, asking a person, memory), offered
/// to the model beside its workspace tools and called for the attempt `credential` stands for.
#[derive(Clone)]
pub struct MaosTools {
    /// The tools, and how to call them.
    pub toolbox: Arc<dyn AgentToolbox>,
    /// The attempt's credential: every call is made with it.
    pub credential: AgentCredential,
}

impl fmt::Debug for MaosTools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaosTools")
            .field("toolbox", &self.toolbox)
            .finish_non_exhaustive()
    }
}

/// What every MAOS tool's name starts with, so that none clashes with a workspace tool.
pub const MAOS_TOOL_PREFIX: &str = "maos_";

/// What happens during a run, in order, for the supervisor to log and stream.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEvent {
    /// A model request is about to be sent (steps count from 1).
    Request {
        /// Its number.
        step: u32,
    },
    /// The answer to that request arrived.
    Response {
        /// The request's number.
        step: u32,
        /// The tokens this response reports (zero when it reports none).
        usage: Usage,
        /// `choices[0].finish_reason`, as sent.
        finish_reason: Option<String>,
    },
    /// Text the model wrote (alongside tool calls, or its final answer).
    Text(String),
    /// The model called a tool; `arguments` is the JSON text it sent (unparsed, complete).
    ToolCall {
        /// The tool's name.
        name: String,
        /// The arguments as sent.
        arguments: String,
    },
    /// A tool call finished.
    ToolResult {
        /// The tool's name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
        /// One line saying what happened.
        summary: String,
    },
    /// A file was written, relative to the working directory (symbolic links resolved).
    FileWritten(PathBuf),
}

/// A run that ended with the model's final answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOutcome {
    /// The model's final answer (in fenced-code mode: its text outside the written blocks).
    pub summary: String,
    /// How many model requests were made.
    pub steps: u32,
    /// The tokens all requests used.
    pub usage: Usage,
    /// The conversation, the final answer included: what [`follow_up`] continues.
    pub transcript: Vec<Value>,
}

/// Why a run ended without a final answer; every variant carries the tokens spent until then.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The configuration or the working directory cannot be used; nothing was sent.
    #[error("the openai agent cannot start: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
        /// Always zero.
        usage: Usage,
    },
    /// The endpoint could not be reached, or the exchange broke off.
    #[error("the model endpoint {url} {problem} (base URL from the agent's configuration)")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong, and what to check.
        problem: String,
        /// The tokens spent before.
        usage: Usage,
    },
    /// The endpoint answered with an error status (or an error document).
    #[error("the model endpoint {url} answered HTTP {status}: {message} ({hint})")]
    Api {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's own message (API key redacted).
        message: String,
        /// What to do about it.
        hint: String,
        /// The tokens spent before.
        usage: Usage,
    },
    /// `max_steps` requests were made without a final answer.
    #[error(
        "the model did not finish within {max_steps} requests (max_steps in the agent's configuration): raise max_steps or give the agent a smaller task"
    )]
    StepLimit {
        /// The limit.
        max_steps: u32,
        /// The tokens all requests used.
        usage: Usage,
    },
    /// The stop flag was set.
    #[error("the run was stopped after {steps} model requests")]
    Stopped {
        /// Requests made (the one abandoned included).
        steps: u32,
        /// The tokens spent until then.
        usage: Usage,
    },
    /// The endpoint answered 2xx with something that is not a usable chat completion.
    #[error("the model endpoint {url} {message}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong, and what to check.
        message: String,
        /// The tokens spent before (and in this response, when it reported them).
        usage: Usage,
    },
}

impl LoopError {
    /// The tokens spent before the run ended.
    pub fn usage(&self) -> Usage {
        match self {
            LoopError::Config { usage, .. }
            | LoopError::Http { usage, .. }
            | LoopError::Api { usage, .. }
            | LoopError::StepLimit { usage, .. }
            | LoopError::Stopped { usage, .. }
            | LoopError::Protocol { usage, .. } => *usage,
        }
    }
}

/// `{base_url}/chat/completions`, whether or not `base_url` ends with a slash.
pub fn chat_url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// Runs the agent loop in `workdir` on `prompt` until the model gives its final answer.
/// See the module documentation.
pub fn converse(
    cfg: &OpenAiConfig,
    workdir: &Path,
    prompt: &str,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(LoopEvent),
) -> Result<LoopOutcome, LoopError> {
    converse_in_scope(cfg, workdir, prompt, stop, None, None, on_event)
}

/// [`converse`], with the commands the model runs inside `scope` (the attempt's containment)
/// and, with tool calling, MAOS's own tools (`maos`) beside the workspace tools.
pub fn converse_in_scope(
    cfg: &OpenAiConfig,
    workdir: &Path,
    prompt: &str,
    stop: &AtomicBool,
    scope: Option<Arc<dyn tools::CommandScope>>,
    maos: Option<&MaosTools>,
    on_event: &mut dyn FnMut(LoopEvent),
) -> Result<LoopOutcome, LoopError> {
    run_with(cfg, workdir, stop, scope, maos, on_event, |run| {
        if cfg.tool_calls {
            run.with_tools(prompt)
        } else {
            run.fenced(prompt)
        }
    })
}

/// One more user turn after a run ended: `question` after the run's `transcript`, answered in
/// one request in which no tool may be called (`tool_choice: "none"`; a tool call the model
/// makes anyway is not run). Its summary is the model's answer.
pub fn follow_up(
    cfg: &OpenAiConfig,
    workdir: &Path,
    transcript: &[Value],
    question: &str,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(LoopEvent),
) -> Result<LoopOutcome, LoopError> {
    run_with(cfg, workdir, stop, None, None, on_event, |run| {
        run.follow_up(transcript, question)
    })
}

/// Runs `body` over a run of `cfg` in `workdir`, abandoning a request in flight once `stop` is
/// set.
fn run_with(
    cfg: &OpenAiConfig,
    workdir: &Path,
    stop: &AtomicBool,
    scope: Option<Arc<dyn tools::CommandScope>>,
    maos: Option<&MaosTools>,
    on_event: &mut dyn FnMut(LoopEvent),
    body: impl FnOnce(&mut Run<'_>) -> Result<LoopOutcome, LoopError>,
) -> Result<LoopOutcome, LoopError> {
    let config_error = |message: String| LoopError::Config {
        message,
        usage: Usage::default(),
    };
    let tools = Tools::new(workdir, cfg.command_timeout)
        .map_err(|e| {
            config_error(format!(
                "the working directory {} cannot be used ({e}): it must be an existing directory",
                workdir.display()
            ))
        })?
        .with_env(cfg.extra_env.clone())
        .with_scope(scope);
    let endpoint = Endpoint::new(cfg).map_err(config_error)?;
    let finished = AtomicBool::new(false);
    thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            // Abandons a request in flight when the run is stopped.
            while !finished.load(Ordering::Acquire) {
                if stop.load(Ordering::Acquire) {
                    endpoint.agent.clone().shutdown();
                    return;
                }
                thread::park_timeout(STOP_POLL);
            }
        });
        let mut run = Run {
            cfg,
            tools: &tools,
            endpoint: &endpoint,
            stop,
            on_event,
            usage: Usage::default(),
            steps: 0,
            tool_choice: "auto",
            maos,
        };
        let result = body(&mut run);
        finished.store(true, Ordering::Release);
        watcher.thread().unpark();
        result
    })
}

/// One run's state.
struct Run<'a> {
    cfg: &'a OpenAiConfig,
    tools: &'a Tools,
    endpoint: &'a Endpoint,
    stop: &'a AtomicBool,
    on_event: &'a mut dyn FnMut(LoopEvent),
    usage: Usage,
    steps: u32,
    /// `tool_choice` of each request that offers tools.
    tool_choice: &'static str,
    /// MAOS's own tools, offered beside the workspace tools (with tool calling only).
    maos: Option<&'a MaosTools>,
}

impl Run<'_> {
    fn stopped(&self) -> LoopError {
        LoopError::Stopped {
            steps: self.steps,
            usage: self.usage,
        }
    }

    fn check_stop(&self) -> Result<(), LoopError> {
        if self.stop.load(Ordering::Acquire) {
            Err(self.stopped())
        } else {
            Ok(())
        }
    }

    fn emit(&mut self, event: LoopEvent) {
        (self.on_event)(event);
    }

    /// Sends one request and reads its answer, counting the step and its usage.
    fn step(&mut self, messages: &[Value], tools: Option<&[Value]>) -> Result<Reply, LoopError> {
        self.check_stop()?;
        self.steps += 1;
        let step = self.steps;
        self.emit(LoopEvent::Request { step });
        let request = ChatRequest {
            model: &self.cfg.model,
            messages,
            tools,
            tool_choice: tools.map(|_| self.tool_choice),
            temperature: self
                .cfg
                .temperature
                .map(|t| t.to_string().parse::<f64>().unwrap_or(f64::from(t))),
            stream: false,
        };
        let document = match self.endpoint.post(&request, self.stop) {
            Ok(document) => document,
            Err(_) if self.stop.load(Ordering::Acquire) => return Err(self.stopped()),
            Err(failure) => return Err(failure.into_error(&self.endpoint.url, self.usage)),
        };
        let reply_usage = usage_of(&document);
        self.usage.add(&reply_usage);
        let reply = parse_reply(&document, step).map_err(|failure| {
            failure.into_error(
                &self.endpoint.url,
                self.usage,
                self.endpoint.redact(&document.to_string()),
            )
        })?;
        self.emit(LoopEvent::Response {
            step,
            usage: reply_usage,
            finish_reason: reply.finish_reason.clone(),
        });
        if reply.finish_reason.as_deref() == Some("content_filter") {
            return Err(LoopError::Protocol {
                url: self.endpoint.url.clone(),
                message: "withheld the model's answer (finish_reason \"content_filter\"): the \
                          endpoint's content filter refused the prompt or the answer; rephrase the task"
                    .to_owned(),
                usage: self.usage,
            });
        }
        Ok(reply)
    }

    fn with_tools(&mut self, prompt: &str) -> Result<LoopOutcome, LoopError> {
        let mut definitions: Vec<Value> = tools::definitions()
            .iter()
            .map(|d| d.openai_json())
            .collect();
        if let Some(maos) = self.maos {
            definitions.extend(maos_definitions(maos.toolbox.as_ref()));
        }
        let mut system = tools_system_prompt(self.tools.root(), self.cfg.command_timeout);
        if self.maos.is_some() {
            system.push_str(MAOS_TOOLS_PROMPT);
        }
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": prompt}),
        ];
        while self.steps < self.cfg.max_steps {
            let reply = self.step(&messages, Some(&definitions))?;
            if let Some(text) = reply.content.as_deref().filter(|t| !t.trim().is_empty()) {
                self.emit(LoopEvent::Text(text.to_owned()));
            }
            if reply.tool_calls.is_empty() {
                let summary = reply.final_text();
                messages.push(json!({"role": "assistant", "content": summary}));
                return Ok(LoopOutcome {
                    summary,
                    steps: self.steps,
                    usage: self.usage,
                    transcript: messages,
                });
            }
            messages.push(reply.assistant_message());
            for call in &reply.tool_calls {
                self.check_stop()?;
                self.emit(LoopEvent::ToolCall {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                });
                let result = match self.maos {
                    Some(maos) if call.name.starts_with(MAOS_TOOL_PREFIX) => {
                        maos_call(maos, &call.name, &call.arguments)
                    }
                    _ => self.tools.call(&call.name, &call.arguments, self.stop),
                };
                if self.stop.load(Ordering::Acquire) {
                    return Err(self.stopped());
                }
                self.report(&call.name, &result);
                messages.push(
                    json!({"role": "tool", "tool_call_id": call.id, "content": result.content}),
                );
            }
        }
        Err(LoopError::StepLimit {
            max_steps: self.cfg.max_steps,
            usage: self.usage,
        })
    }

    fn report(&mut self, name: &str, result: &ToolResult) {
        self.emit(LoopEvent::ToolResult {
            name: name.to_owned(),
            ok: result.ok,
            summary: result.summary.clone(),
        });
        if let Some(path) = &result.written {
            self.emit(LoopEvent::FileWritten(path.clone()));
        }
    }

    fn fenced(&mut self, prompt: &str) -> Result<LoopOutcome, LoopError> {
        if self.cfg.max_steps == 0 {
            return Err(LoopError::StepLimit {
                max_steps: 0,
                usage: self.usage,
            });
        }
        let mut messages = vec![
            json!({"role": "system", "content": fenced_system_prompt()}),
            json!({"role": "user", "content": prompt}),
        ];
        let reply = self.step(&messages, None)?;
        let text = reply.final_text();
        messages.push(json!({"role": "assistant", "content": text}));
        if !text.trim().is_empty() {
            self.emit(LoopEvent::Text(text.clone()));
        }
        let parsed = parse_fenced_files(&text);
        let mut written = Vec::new();
        for file in &parsed.files {
            self.check_stop()?;
            let args = json!({"path": file.path, "content": file.content});
            self.emit(LoopEvent::ToolCall {
                name: "write_file".to_owned(),
                arguments: args.to_string(),
            });
            let result = self.tools.call_value("write_file", &args, self.stop);
            self.report("write_file", &result);
            if let Some(path) = result.written {
                written.push(path.display().to_string());
            }
        }
        if let Some(path) = &parsed.unclosed {
            self.emit(LoopEvent::ToolResult {
                name: "write_file".to_owned(),
                ok: false,
                summary: format!(
                    "error: the code block for {path} is not closed (the answer was cut off?), so it was not written"
                ),
            });
        }
        let summary = if parsed.prose.is_empty() && !written.is_empty() {
            format!("wrote {}", written.join(", "))
        } else {
            parsed.prose
        };
        Ok(LoopOutcome {
            summary,
            steps: self.steps,
            usage: self.usage,
            transcript: messages,
        })
    }

    fn follow_up(
        &mut self,
        transcript: &[Value],
        question: &str,
    ) -> Result<LoopOutcome, LoopError> {
        let mut messages = transcript.to_vec();
        messages.push(json!({"role": "user", "content": question}));
        // The tools stay offered (a conversation with tool calls may need them to be valid),
        // but none may be called.
        let definitions: Option<Vec<Value>> = self.cfg.tool_calls.then(|| {
            tools::definitions()
                .iter()
                .map(|d| d.openai_json())
                .collect()
        });
        self.tool_choice = "none";
        let reply = self.step(&messages, definitions.as_deref())?;
        let summary = reply.content.clone().unwrap_or_default();
        if !summary.trim().is_empty() {
            self.emit(LoopEvent::Text(summary.clone()));
        }
        messages.push(json!({"role": "assistant", "content": summary}));
        Ok(LoopOutcome {
            summary,
            steps: self.steps,
            usage: self.usage,
            transcript: messages,
        })
    }
}

fn tools_system_prompt(root: &Path, command_timeout: Duration) -> String {
    format!(
        "You are a coding agent. You work inside one directory, the working directory ({root}), \
         usually the root of a git worktree, and you act on it only through your tools:\n\
         - read_file {{path}}: read a text file.\n\
         - write_file {{path, content}}: create or replace a whole file (parent directories are created).\n\
         - list_dir {{path?}}: list a directory.\n\
         - run_command {{command}}: run a shell command (sh -c) in the working directory and get its exit \
           code and output; it is killed after {secs} seconds, so do not start servers or interactive programs.\n\
         - git_diff {{}}: see the changes made so far.\n\
         Every path is relative to the working directory; absolute paths and paths that leave it are refused. \
         Work step by step: look at what you need, make the change, check it (build, run the tests), and fix \
         what fails. A tool that fails answers with a line starting with \"error:\"; read it and adapt. \
         When the task is done, answer without calling a tool: that answer is your final report. Say what \
         you changed and how you checked it.",
        root = root.display(),
        secs = command_timeout.as_secs().max(1),
    )
}

/// What the system prompt adds when MAOS's own tools are offered.
const MAOS_TOOLS_PROMPT: &str = "\n\nYou also have MAOS's tools, whose names start with maos_: \
     read your task again (maos_get_task), say how you are getting on (maos_report_progress), split \
     your task into subtasks (maos_create_subtasks, then maos_wait_for_tasks), ask a person a \
     yes-or-no question (maos_request_approval), and search or add to what earlier tasks learned \
     (maos_memory_search, maos_memory_add). They answer with JSON; a refused call answers \
     {\"error\": {\"kind\", \"message\", \"hint\"}}.";

/// The MAOS tools of `toolbox` as chat completions tool definitions.
fn maos_definitions(toolbox: &dyn AgentToolbox) -> Vec<Value> {
    toolbox
        .tools()
        .into_iter()
        .map(|t| {
            let parameters = serde_json::from_str::<Value>(&t.schema)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({"type": "object"}));
            json!({
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": parameters,
                }
            })
        })
        .collect()
}

/// Calls the MAOS tool `name` for the attempt: its JSON answer is what the model reads.
fn maos_call(maos: &MaosTools, name: &str, arguments: &str) -> ToolResult {
    let answer = maos.toolbox.call(&maos.credential, name, arguments);
    let summary = crate::stream::one_line(&answer.json, 300);
    ToolResult {
        ok: !answer.is_error,
        content: answer.json,
        summary,
        written: None,
    }
}

fn fenced_system_prompt() -> &'static str {
    "You are a coding agent. You cannot call tools or run commands, and you answer only once. \
     To create or replace a file of the working directory, put its complete content in a fenced \
     code block whose info string names the file, relative to the working directory, as \
     ```<language> path=<path>, for example:\n\n\
     ```rust path=src/main.rs\nfn main() {}\n```\n\n\
     Each such block replaces the whole file, so never abbreviate its content. If a file itself \
     contains ``` lines, fence it with four backticks (````). Code blocks without a path are not \
     written. Paths that are absolute or leave the working directory are refused. Outside the \
     blocks, say briefly what you changed: that text is your report."
}

/// The request body.
#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a [Value]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    stream: bool,
}

/// The HTTP side: one ureq agent, the URL and the authorization header.
struct Endpoint {
    agent: ureq::Agent,
    url: String,
    authorization: Option<ureq::http::HeaderValue>,
    api_key: Option<String>,
    timeout: Duration,
}

/// A request that failed, before it is turned into a [`LoopError`].
enum PostFailure {
    Http(String),
    Api {
        status: u16,
        message: String,
        hint: String,
    },
    Protocol(String),
}

impl PostFailure {
    fn into_error(self, url: &str, usage: Usage) -> LoopError {
        let url = url.to_owned();
        match self {
            PostFailure::Http(problem) => LoopError::Http {
                url,
                problem,
                usage,
            },
            PostFailure::Api {
                status,
                message,
                hint,
            } => LoopError::Api {
                url,
                status,
                message,
                hint,
                usage,
            },
            PostFailure::Protocol(message) => LoopError::Protocol {
                url,
                message,
                usage,
            },
        }
    }
}

impl Endpoint {
    fn new(cfg: &OpenAiConfig) -> Result<Endpoint, String> {
        let base = cfg.base_url.trim();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "base_url {base:?} is not an http:// or https:// URL (for example https://api.openai.com/v1 \
                 or http://127.0.0.1:11434/v1)"
            ));
        }
        if cfg.model.trim().is_empty() {
            return Err(
                "the model name is empty: set model in the agent's configuration".to_owned(),
            );
        }
        let url = chat_url(base);
        let uri = match url.parse::<ureq::http::Uri>() {
            Ok(uri) => uri,
            Err(e) => return Err(format!("base_url {base:?} is not a valid URL ({e})")),
        };
        let api_key = cfg.api_key.clone().filter(|k| !k.is_empty());
        let authorization = match &api_key {
            None => None,
            Some(key) => {
                let Ok(mut value) = ureq::http::HeaderValue::from_str(&format!("Bearer {key}"))
                else {
                    return Err(
                        "the API key contains characters that cannot go into an HTTP header \
                                (a line break or a control character?): check its value"
                            .to_owned(),
                    );
                };
                value.set_sensitive(true);
                Some(value)
            }
        };
        let mut config = ureq::Agent::config_builder();
        if uri.host().is_some_and(is_loopback) {
            // A model on this machine is never reached through a proxy from the environment.
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config
            .timeout_global(Some(cfg.request_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("maos/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Endpoint {
            agent,
            url,
            authorization,
            api_key,
            timeout: cfg.request_timeout,
        })
    }

    /// Removes the API key from text quoted from the server.
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if key.len() >= 4 => text.replace(key.as_str(), "<api key>"),
            _ => text.to_owned(),
        }
    }

    fn post(&self, request: &ChatRequest<'_>, stop: &AtomicBool) -> Result<Value, PostFailure> {
        let body = serde_json::to_string(request)
            .map_err(|e| PostFailure::Protocol(format!("cannot be sent this request: {e}")))?;
        let mut builder = self
            .agent
            .post(&self.url)
            .content_type("application/json")
            .header("Accept", "application/json");
        if let Some(authorization) = &self.authorization {
            builder = builder.header("Authorization", authorization.clone());
        }
        let mut response = builder
            .send(body)
            .map_err(|e| PostFailure::Http(self.describe(&e)))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(ToOwned::to_owned);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| {
                PostFailure::Http(format!(
                    "broke off while sending its answer: {}",
                    self.describe(&e)
                ))
            })?;
        if stop.load(Ordering::Acquire) {
            return Err(PostFailure::Http("stopped".to_owned()));
        }
        let text = String::from_utf8_lossy(&bytes);
        let document = serde_json::from_str::<Value>(&text);
        if !(200..300).contains(&status) {
            let message = match &document {
                Ok(doc) => error_message(doc).unwrap_or_else(|| excerpt(&text)),
                Err(_) => excerpt(&text),
            };
            return Err(PostFailure::Api {
                status,
                message: self.redact(&message),
                hint: status_hint(status, location.as_deref()),
            });
        }
        match document {
            Ok(doc) => {
                if doc.get("choices").is_none()
                    && let Some(message) = error_message(&doc)
                {
                    return Err(PostFailure::Api {
                        status,
                        message: self.redact(&message),
                        hint: "the server reported an error inside a successful response; see its message".to_owned(),
                    });
                }
                Ok(doc)
            }
            Err(e) => Err(PostFailure::Protocol(format!(
                "answered with something that is not JSON ({e}: {}): is base_url an OpenAI-compatible API \
                 (it usually ends in /v1)?",
                self.redact(&excerpt(&text))
            ))),
        }
    }

    /// Says what a transport error means, and what to check.
    fn describe(&self, err: &ureq::Error) -> String {
        use std::io::ErrorKind;
        let timeout = self.timeout;
        match err {
            ureq::Error::Io(e) => match e.kind() {
                ErrorKind::ConnectionRefused => {
                    "refused the connection: is the server running, and is the port right?"
                        .to_owned()
                }
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    format!(
                        "did not answer within {timeout:?}: raise request_timeout, or check the server's load"
                    )
                }
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof => {
                    format!("closed the connection ({e}): is it an HTTP server, and did it crash?")
                }
                // ureq passes rustls and resolver failures on as I/O errors of other kinds.
                _ => {
                    let text = e.to_string();
                    if text.contains("certificate") || text.contains("handshake") {
                        format!(
                            "failed the TLS handshake ({text}): is its certificate valid for this host name \
                             and issued by a public authority? (self-signed and private CAs are not trusted)"
                        )
                    } else if text.contains("lookup") || text.contains("resolve") {
                        format!("has a host name that does not resolve ({text}): check base_url")
                    } else {
                        format!("could not be talked to: {text}")
                    }
                }
            },
            ureq::Error::Timeout(which) => format!(
                "did not answer within {timeout:?} ({which} timeout): the model may be slow or overloaded; \
                 raise request_timeout"
            ),
            ureq::Error::HostNotFound => {
                "has a host name that does not resolve: check base_url".to_owned()
            }
            ureq::Error::ConnectionFailed => {
                "could not be connected to: is the server running, and is the address right?"
                    .to_owned()
            }
            ureq::Error::Tls(what) => {
                format!("failed the TLS handshake ({what}): does the server really speak https?")
            }
            ureq::Error::Rustls(e) => format!(
                "failed the TLS handshake ({e}): is its certificate valid for this host name, and does the server \
                 speak https?"
            ),
            ureq::Error::BadUri(e) => format!("is not a valid URL ({e}): check base_url"),
            ureq::Error::BodyExceedsLimit(limit) => {
                format!(
                    "sent an answer larger than {limit} bytes: is base_url the chat completions API?"
                )
            }
            ureq::Error::Protocol(e) => {
                format!("does not speak HTTP/1.1 as expected ({e}): check base_url")
            }
            other => format!("could not be talked to: {other}"),
        }
    }
}

/// `localhost` or a loopback address (`127.0.0.0/8`, `[::1]`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn status_hint(status: u16, location: Option<&str>) -> String {
    match status {
        300..=399 => match location {
            Some(target) => format!(
                "the endpoint redirects to {target}; put the final URL into base_url (redirects are not followed)"
            ),
            None => "the endpoint redirects; put the final URL into base_url".to_owned(),
        },
        400 | 422 => "the endpoint rejected the request: check the model name; if the message is about tools, \
                      the model may not support tool calling (set tool_calls = false in the agent's configuration)"
            .to_owned(),
        401 | 403 => "check the API key in the agent's configuration (sent as a Bearer token) and its permissions"
            .to_owned(),
        404 => "check base_url (it usually ends in /v1) and the model name".to_owned(),
        408 | 429 => "the endpoint is rate-limiting or overloaded: wait and retry, or run fewer tasks at once \
                      on this agent"
            .to_owned(),
        500..=599 => "the model server failed: look at its logs; retrying later may help".to_owned(),
        _ => "see the server's documentation".to_owned(),
    }
}

/// The message of an error document: `{"error": {"message"}}` (OpenAI, Ollama, vLLM),
/// `{"error": "..."}`, `{"message": "..."}` or `{"detail": ...}`.
fn error_message(doc: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match doc.get("error") {
        Some(Value::Object(err)) => err
            .get("message")
            .and_then(text)
            .or_else(|| Some(Value::Object(err.clone()).to_string())),
        Some(other) => text(other),
        None => doc
            .get("message")
            .and_then(text)
            .or_else(|| doc.get("detail").and_then(text)),
    }
}

/// The start of a body, on one line, for an error message.
fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut cut: String = flat.chars().take(300).collect();
    if cut.len() < flat.len() {
        cut.push_str(" ...");
    }
    cut
}

/// The usage a response reports (zero for what it omits).
fn usage_of(doc: &Value) -> Usage {
    let usage = &doc["usage"];
    Usage {
        input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        cached_input_tokens: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        cost_usd: None,
    }
}

/// `choices[0]` of a response, leniently read.
#[derive(Debug)]
struct Reply {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<Call>,
    finish_reason: Option<String>,
}

#[derive(Debug)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// Why a 2xx response is not a usable completion.
struct ReplyFailure(String);

impl ReplyFailure {
    fn into_error(self, url: &str, usage: Usage, document: String) -> LoopError {
        LoopError::Protocol {
            url: url.to_owned(),
            message: format!(
                "sent a response without {} ({}): is base_url an OpenAI-compatible chat completions API?",
                self.0,
                excerpt(&document)
            ),
            usage,
        }
    }
}

fn parse_reply(doc: &Value, step: u32) -> Result<Reply, ReplyFailure> {
    let choice = doc
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| ReplyFailure("choices[0]".to_owned()))?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| ReplyFailure("choices[0].message".to_owned()))?;
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(n, call)| {
                    let function = &call["function"];
                    Call {
                        id: call["id"]
                            .as_str()
                            .filter(|id| !id.is_empty())
                            .map_or_else(|| format!("call_{step}_{}", n + 1), ToOwned::to_owned),
                        name: function["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: match &function["arguments"] {
                            Value::String(s) => s.clone(),
                            Value::Null => String::new(),
                            other => other.to_string(),
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply {
        content: content_text(&message["content"]),
        refusal: message["refusal"].as_str().map(ToOwned::to_owned),
        tool_calls,
        finish_reason: choice["finish_reason"].as_str().map(ToOwned::to_owned),
    })
}

/// `content` as a string, or the text parts of a content array.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            if text.is_empty() {
                None
            } else {
                Some(text.join(""))
            }
        }
        _ => None,
    }
}

impl Reply {
    /// The final answer: the content (or the refusal), noting an answer cut off by the limit.
    fn final_text(&self) -> String {
        let mut text = self
            .content
            .clone()
            .filter(|c| !c.trim().is_empty())
            .or_else(|| self.refusal.clone())
            .unwrap_or_default();
        if self.finish_reason.as_deref() == Some("length") {
            text.push_str(
                "\n\n[the model's answer was cut off by its output token limit (finish_reason \"length\")]",
            );
        }
        text
    }

    /// The assistant message to append to the conversation, as the API expects it back.
    fn assistant_message(&self) -> Value {
        let calls: Vec<Value> = self
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        json!({"role": "assistant", "content": self.content, "tool_calls": calls})
    }
}

/// What [`parse_fenced_files`] found in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FencedFiles {
    /// The blocks that name a file, in order.
    pub files: Vec<FencedFile>,
    /// The text outside those blocks (blocks without a path included), trimmed.
    pub prose: String,
    /// The path of a block that names a file but is never closed (not in `files`).
    pub unclosed: Option<String>,
}

/// One file of a fenced-code answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedFile {
    /// The path, as written in the info string.
    pub path: String,
    /// The block's lines, each ending with a newline.
    pub content: String,
}

/// Finds the fenced code blocks of `text` whose info string names a file (see the module
/// documentation for the two forms).
pub fn parse_fenced_files(text: &str) -> FencedFiles {
    struct Open {
        fence: char,
        len: usize,
        path: Option<String>,
        opening: String,
        lines: Vec<String>,
    }
    let mut found = FencedFiles::default();
    let mut prose: Vec<String> = Vec::new();
    let mut open: Option<Open> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match open.take() {
            None => match fence_of(line) {
                Some((fence, len, info)) => {
                    open = Some(Open {
                        fence,
                        len,
                        path: info_path(info),
                        opening: line.to_owned(),
                        lines: Vec::new(),
                    });
                }
                // Blank lines left where blocks were taken out collapse into one.
                None if line.trim().is_empty()
                    && prose.last().is_some_and(|l| l.trim().is_empty()) => {}
                None => prose.push(line.to_owned()),
            },
            Some(mut block) => {
                let trimmed = line.trim();
                let closes =
                    trimmed.len() >= block.len && trimmed.chars().all(|c| c == block.fence);
                if !closes {
                    block.lines.push(line.to_owned());
                    open = Some(block);
                    continue;
                }
                match block.path {
                    Some(path) => {
                        let mut content = block.lines.join("\n");
                        content.push('\n');
                        found.files.push(FencedFile { path, content });
                    }
                    None => {
                        prose.push(block.opening);
                        prose.extend(block.lines);
                        prose.push(line.to_owned());
                    }
                }
            }
        }
    }
    if let Some(block) = open {
        match block.path {
            Some(path) => found.unclosed = Some(path),
            None => {
                prose.push(block.opening);
                prose.extend(block.lines);
            }
        }
    }
    found.prose = prose.join("\n").trim().to_owned();
    found
}

/// An opening fence: three or more backticks or tildes (up to three spaces of indentation),
/// and the info string after them.
fn fence_of(line: &str) -> Option<(char, usize, &str)> {
    let stripped = line.trim_start_matches(' ');
    if line.len() - stripped.len() > 3 {
        return None;
    }
    let fence = stripped.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = stripped.chars().take_while(|c| *c == fence).count();
    if len < 3 {
        return None;
    }
    let info = stripped[len..].trim();
    if fence == '`' && info.contains('`') {
        return None;
    }
    Some((fence, len, info))
}

/// The file an info string names: a `path=`/`file=`/`filename=` attribute, or a first or
/// second word that looks like a path (contains `/` or `.`, and no `=`).
fn info_path(info: &str) -> Option<String> {
    let unquote = |v: &str| v.trim_matches(|c| c == '"' || c == '\'').to_owned();
    for word in info.split_whitespace() {
        for key in ["path=", "file=", "filename="] {
            if let Some(value) = word.strip_prefix(key) {
                let value = unquote(value);
                return (!value.is_empty()).then_some(value);
            }
        }
    }
    // `src/main.rs` or `rust src/main.rs`.
    info.split_whitespace()
        .take(2)
        .find(|word| !word.contains('=') && (word.contains('/') || word.contains('.')))
        .map(unquote)
}
