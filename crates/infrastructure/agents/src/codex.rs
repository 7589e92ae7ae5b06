//! Codex's structured protocol: the `codex exec --json` command line and a parser of its JSONL
//! events.
//!
//! # API
//!
//! - [`CodexInvocation`] `{ program, model, resume, extra_args }` (program `codex` by default):
//!   [`CodexInvocation::args`] is the argument list after the program; the prompt is written to
//!   stdin as it is ([`CodexInvocation::prompt_input`]), which is then closed.
//! - [`CodexStream::new`]`(Option<Price>)`, a [`StreamParser`]: `on_line` returns what to record
//!   for each stdout line (never a `Write` or `CloseInput`: Codex asks nothing on stdin),
//!   `outcome` the run so far. With a price, usage carries its cost.
//!
//! # How a run goes
//!
//! `codex exec --json --skip-git-repo-check [--model M] [extra args] -` reads the prompt from
//! stdin (`-`), and `codex exec --json --skip-git-repo-check [--model M] [extra args] resume
//! <SESSION_ID> -` continues an earlier session. `--json` and `--model` are global options of
//! `exec`, so they may come before the `resume` subcommand; extra arguments go there too, where
//! every `exec` option is accepted. `--skip-git-repo-check`: Codex refuses to run outside a git
//! repository it trusts ("Not inside a trusted directory and --skip-git-repo-check was not
//! specified", Codex 0.171), and MAOS chooses the working directory itself (a task without a
//! repository works in a plain directory).
//!
//! Events, one JSON object per line, `type` first: `thread.started` (`thread_id`, the session
//! to resume), `turn.started`, `turn.completed` (`usage`: `input_tokens`,
//! `cached_input_tokens`, `output_tokens`), `turn.failed` (`error.message`), `error`
//! (`message`), and `item.started` / `item.updated` / `item.completed` with an `item`
//! (`id`, `type` and the type's fields): `agent_message` (`text`), `reasoning` (`text`),
//! `command_execution` (`command`, `aggregated_output`, `exit_code`, `status`:
//! `in_progress|completed|failed|declined`), `file_change` (`changes`: `path` and `kind`
//! `add|delete|update`; `status`), `mcp_tool_call` (`server`, `tool`, `arguments`, `result`,
//! `error.message`, `status`), `web_search` (`query`), `todo_list` (`items`: `text`,
//! `completed`), `plan` (`text`), `collab_tool_call` (`tool`, `status`) and `error` (`message`,
//! a non-fatal warning).
//!
//! # Where the shapes come from
//!
//! - `openai/codex`, `codex-rs/exec/src/exec_events.rs` (`ThreadEvent`, `ThreadItemDetails` and
//!   their fields) and `codex-rs/exec/src/event_processor_with_jsonl_output.rs`: `turn.completed`
//!   carries the thread's *total* token usage so far (so MAOS takes the latest figures rather
//!   than adding them), `error` events do not end the run by themselves, a failed turn emits
//!   `turn.failed`, and the final message is the last `agent_message` (else the last `plan`).
//! - `openai/codex`, `codex-rs/exec/src/cli.rs`: the `PROMPT` argument ("if not provided as an
//!   argument (or if `-` is used), instructions are read from stdin"), the `resume` subcommand
//!   (`SESSION_ID`, then `PROMPT`, where `-` also reads stdin), and `--json`/`--model` marked
//!   global.
//!
//! Success: a turn completed and no `turn.failed` or `error` came after it. Codex reports no
//! cost; with a [`Price`] the usage is priced.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::report::Usage;
use crate::stream::{
    Line, Price, SUMMARY_CHARS, StreamAction, StreamOutcome, StreamParser, one_line, read_line,
    str_at, u64_at,
};

/// How to start Codex for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexInvocation {
    /// The program to run (`codex` on the `PATH` by default).
    pub program: String,
    /// `--model`, when the agent's settings name one.
    pub model: Option<String>,
    /// A session (thread id) to resume, from an earlier attempt.
    pub resume: Option<String>,
    /// Arguments added after MAOS's own options (before `resume` and the prompt).
    pub extra_args: Vec<String>,
    /// MAOS's MCP server, added to the user's own with `-c` overrides: its program and
    /// arguments, and the variable Codex forwards to it (`env_vars`), which holds the attempt's
    /// credential in Codex's environment. The credential itself is never an argument.
    pub mcp: Option<CodexMcp>,
}

/// MAOS's MCP server as Codex starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexMcp {
    /// The program (the `maos` binary).
    pub command: String,
    /// Its arguments (`mcp --data-dir DIR`).
    pub args: Vec<String>,
    /// Variables of Codex's environment Codex passes on to the server.
    pub env_vars: Vec<String>,
}

impl CodexMcp {
    /// The `-c key=value` overrides that declare the server as `[mcp_servers.maos]`. Values are
    /// TOML: a JSON string or array of strings is one (JSON's escapes are TOML's).
    pub fn overrides(&self) -> Vec<String> {
        let server = crate::claude::MCP_SERVER;
        [
            ("command", Value::from(self.command.as_str())),
            ("args", Value::from(self.args.clone())),
            ("env_vars", Value::from(self.env_vars.clone())),
        ]
        .into_iter()
        .flat_map(|(key, value)| {
            [
                "-c".to_owned(),
                format!("mcp_servers.{server}.{key}={value}"),
            ]
        })
        .collect()
    }
}

impl Default for CodexInvocation {
    fn default() -> Self {
        Self {
            program: "codex".to_owned(),
            model: None,
            resume: None,
            extra_args: Vec::new(),
            mcp: None,
        }
    }
}

impl CodexInvocation {
    /// The arguments after the program; the last is `-`, the prompt from stdin.
    pub fn args(&self) -> Vec<String> {
        let mut args = ["exec", "--json", "--skip-git-repo-check"]
            .map(str::to_owned)
            .to_vec();
        if let Some(mcp) = &self.mcp {
            args.extend(mcp.overrides());
        }
        if let Some(model) = &self.model {
            args.extend(["--model".to_owned(), model.clone()]);
        }
        args.extend(self.extra_args.iter().cloned());
        if let Some(session) = &self.resume {
            args.extend(["resume".to_owned(), session.clone()]);
        }
        args.push("-".to_owned());
        args
    }

    /// What to write to Codex's stdin before closing it: the prompt itself.
    pub fn prompt_input(prompt: &str) -> Vec<u8> {
        prompt.as_bytes().to_vec()
    }
}

/// Parses the JSONL events of `codex exec --json`.
#[derive(Debug, Clone)]
pub struct CodexStream {
    price: Option<Price>,
    outcome: StreamOutcome,
    /// Whether a turn completed.
    completed: bool,
    /// The failure reported since the last completed turn.
    failure: Option<String>,
    /// Items whose `item.started` was seen (so their completion only reports the result).
    started: HashSet<String>,
    /// The last plan text, the summary when there is no agent message.
    last_plan: Option<String>,
    /// The resumed thread's total before this run: `turn.completed` reports the thread's
    /// running total, so this run's own usage is that total minus this.
    baseline: Usage,
}

impl CodexStream {
    /// A parser; with a price, usage is priced.
    pub fn new(price: Option<Price>) -> Self {
        Self {
            price,
            outcome: StreamOutcome::default(),
            completed: false,
            failure: None,
            started: HashSet::new(),
            last_plan: None,
            baseline: Usage::default(),
        }
    }

    /// A parser for a run that resumes a thread whose usage so far was `baseline` (what the
    /// earlier attempts in that thread recorded): it reports only this run's own tokens.
    pub fn resuming(price: Option<Price>, baseline: Usage) -> Self {
        Self {
            baseline,
            ..Self::new(price)
        }
    }

    fn turn_completed(&mut self, event: &Map<String, Value>) -> Vec<StreamAction> {
        self.completed = true;
        self.failure = None;
        let usage = event.get("usage").and_then(Value::as_object);
        let field = |key: &str| usage.map_or(0, |u| u64_at(u, key));
        let mut usage = Usage {
            input_tokens: field("input_tokens").saturating_sub(self.baseline.input_tokens),
            cached_input_tokens: field("cached_input_tokens")
                .saturating_sub(self.baseline.cached_input_tokens),
            output_tokens: field("output_tokens").saturating_sub(self.baseline.output_tokens),
            cost_usd: None,
        };
        usage.cost_usd = self.price.map(|p| p.cost(&usage));
        self.outcome.usage = usage;
        vec![StreamAction::Usage(usage)]
    }

    fn failed(&mut self, message: Option<&str>, fallback: &str) {
        let message = message.filter(|m| !m.trim().is_empty()).unwrap_or(fallback);
        self.failure = Some(api_error_message(message));
    }

    fn item(&mut self, phase: Phase, event: &Map<String, Value>, raw: String) -> Vec<StreamAction> {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            return vec![StreamAction::Unknown { raw }];
        };
        let id = str_at(item, "id").unwrap_or("").to_owned();
        let Some(kind) = ItemKind::of(item) else {
            return vec![StreamAction::Unknown { raw }];
        };
        let mut actions = Vec::new();
        match phase {
            Phase::Started => {
                self.started.insert(id);
                if let Some(tool_use) = kind.tool_use(item) {
                    actions.push(tool_use);
                }
            }
            Phase::Updated => {
                if kind == ItemKind::TodoList {
                    actions.extend(kind.tool_use(item));
                }
            }
            Phase::Completed => {
                if !self.started.remove(&id) {
                    actions.extend(kind.tool_use(item));
                }
                actions.extend(self.completed_item(kind, item));
            }
        }
        actions
    }

    fn completed_item(&mut self, kind: ItemKind, item: &Map<String, Value>) -> Vec<StreamAction> {
        let text = str_at(item, "text").unwrap_or("");
        let status = str_at(item, "status").unwrap_or("completed");
        match kind {
            ItemKind::AgentMessage => {
                if text.trim().is_empty() {
                    return Vec::new();
                }
                self.outcome.summary = Some(text.to_owned());
                vec![StreamAction::Text(text.to_owned())]
            }
            ItemKind::Plan => {
                if !text.trim().is_empty() {
                    self.last_plan = Some(text.to_owned());
                }
                Vec::new()
            }
            // Reasoning summaries and the final to-do list: already seen or not worth a record.
            ItemKind::Reasoning | ItemKind::TodoList => Vec::new(),
            ItemKind::Error => vec![StreamAction::Warning(
                str_at(item, "message").unwrap_or("").to_owned(),
            )],
            ItemKind::CommandExecution => {
                let exit = item.get("exit_code").and_then(Value::as_i64);
                let output = one_line(
                    str_at(item, "aggregated_output").unwrap_or(""),
                    SUMMARY_CHARS,
                );
                let head = match (status, exit) {
                    ("declined", _) => "declined".to_owned(),
                    (_, Some(code)) => format!("exit {code}"),
                    (status, None) => status.to_owned(),
                };
                let summary = if output.is_empty() {
                    head
                } else {
                    format!("{head}: {output}")
                };
                vec![StreamAction::ToolResult {
                    summary,
                    is_error: status == "failed"
                        || status == "declined"
                        || exit.is_some_and(|c| c != 0),
                }]
            }
            ItemKind::FileChange => vec![StreamAction::ToolResult {
                summary: status.to_owned(),
                is_error: status == "failed",
            }],
            ItemKind::McpToolCall => {
                let error = item
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str);
                let summary = match error {
                    Some(message) => one_line(message, SUMMARY_CHARS),
                    None => one_line(&mcp_result_text(item), SUMMARY_CHARS),
                };
                vec![StreamAction::ToolResult {
                    summary,
                    is_error: status == "failed" || error.is_some(),
                }]
            }
            ItemKind::WebSearch | ItemKind::CollabToolCall => vec![StreamAction::ToolResult {
                summary: status.to_owned(),
                is_error: status == "failed",
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Started,
    Updated,
    Completed,
}

/// The item types this parser knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    AgentMessage,
    Reasoning,
    Plan,
    CommandExecution,
    FileChange,
    McpToolCall,
    WebSearch,
    TodoList,
    CollabToolCall,
    Error,
}

impl ItemKind {
    fn of(item: &Map<String, Value>) -> Option<Self> {
        Some(match str_at(item, "type")? {
            "agent_message" => Self::AgentMessage,
            "reasoning" => Self::Reasoning,
            "plan" => Self::Plan,
            "command_execution" => Self::CommandExecution,
            "file_change" => Self::FileChange,
            "mcp_tool_call" => Self::McpToolCall,
            "web_search" => Self::WebSearch,
            "todo_list" => Self::TodoList,
            "collab_tool_call" => Self::CollabToolCall,
            "error" => Self::Error,
            _ => return None,
        })
    }

    /// The tool use an item stands for, if it is a tool.
    fn tool_use(self, item: &Map<String, Value>) -> Option<StreamAction> {
        let (name, summary) = match self {
            Self::CommandExecution => ("command".to_owned(), text_of(item, "command")),
            Self::FileChange => ("file_change".to_owned(), file_changes(item)),
            Self::McpToolCall => (
                format!(
                    "mcp:{}/{}",
                    str_at(item, "server").unwrap_or("?"),
                    str_at(item, "tool").unwrap_or("?")
                ),
                item.get("arguments")
                    .filter(|a| !a.is_null())
                    .map(Value::to_string)
                    .unwrap_or_default(),
            ),
            Self::WebSearch => ("web_search".to_owned(), text_of(item, "query")),
            Self::TodoList => ("todo_list".to_owned(), todo_summary(item)),
            Self::CollabToolCall => (
                format!("collab:{}", str_at(item, "tool").unwrap_or("?")),
                text_of(item, "prompt"),
            ),
            Self::AgentMessage | Self::Reasoning | Self::Plan | Self::Error => return None,
        };
        Some(StreamAction::ToolUse {
            name,
            summary: one_line(&summary, SUMMARY_CHARS),
        })
    }
}

fn text_of(item: &Map<String, Value>, key: &str) -> String {
    str_at(item, key).unwrap_or("").to_owned()
}

/// `update src/lib.rs, add tests/new.rs`.
fn file_changes(item: &Map<String, Value>) -> String {
    item.get("changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let path = c.get("path").and_then(Value::as_str)?;
            let kind = c.get("kind").and_then(Value::as_str).unwrap_or("change");
            Some(format!("{kind} {path}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `2/5 done; next: write the tests`.
fn todo_summary(item: &Map<String, Value>) -> String {
    let items: Vec<&Map<String, Value>> = item
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let done = |i: &Map<String, Value>| i.get("completed").and_then(Value::as_bool) == Some(true);
    let finished = items.iter().filter(|i| done(i)).count();
    let mut summary = format!("{finished}/{} done", items.len());
    if let Some(next) = items.iter().find(|i| !done(i)) {
        summary.push_str("; next: ");
        summary.push_str(str_at(next, "text").unwrap_or(""));
    }
    summary
}

/// The text blocks of an MCP tool call's result.
fn mcp_result_text(item: &Map<String, Value>) -> String {
    item.get("result")
        .and_then(|r| r.get("content"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

impl StreamParser for CodexStream {
    fn on_line(&mut self, line: &[u8]) -> Vec<StreamAction> {
        let (event, raw) = match read_line(line) {
            Line::Blank => return Vec::new(),
            Line::Bad(action) => return vec![action],
            Line::Object(event, raw) => (event, raw),
        };
        match str_at(&event, "type") {
            Some("thread.started") => match str_at(&event, "thread_id") {
                Some(id) if !id.is_empty() => {
                    self.outcome.session = Some(id.to_owned());
                    vec![StreamAction::Session {
                        id: id.to_owned(),
                        model: None,
                    }]
                }
                _ => vec![StreamAction::Unknown { raw }],
            },
            Some("turn.started") => Vec::new(),
            Some("turn.completed") => self.turn_completed(&event),
            Some("turn.failed") => {
                let message = event
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str);
                self.failed(message, "the turn failed");
                Vec::new()
            }
            Some("error") => {
                self.failed(str_at(&event, "message"), "Codex reported an error");
                Vec::new()
            }
            Some("item.started") => self.item(Phase::Started, &event, raw),
            Some("item.updated") => self.item(Phase::Updated, &event, raw),
            Some("item.completed") => self.item(Phase::Completed, &event, raw),
            _ => vec![StreamAction::Unknown { raw }],
        }
    }

    fn outcome(&self) -> StreamOutcome {
        let mut outcome = self.outcome.clone();
        if outcome.summary.is_none() {
            outcome.summary.clone_from(&self.last_plan);
        }
        match &self.failure {
            Some(message) => {
                outcome.success = Some(false);
                outcome.error = Some(message.clone());
            }
            None if self.completed => outcome.success = Some(true),
            None => {}
        }
        outcome
    }
}

/// A failure's message as a person reads it: when the model API refused a request, Codex
/// passes the response body on as it is (`{"error":{"message":…,"type":…}}`, recorded with
/// Codex 0.171 against a local Responses API); its `error.message` (with the `type`, when
/// there is one) says it without the JSON. Anything else stays as it is.
fn api_error_message(message: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(message.trim()).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let text = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty());
    match (
        text,
        error.and_then(|e| e.get("type")).and_then(Value::as_str),
    ) {
        (Some(text), Some(kind)) if !kind.is_empty() => format!("{text} ({kind})"),
        (Some(text), _) => text.to_owned(),
        (None, _) => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn feed(s: &mut CodexStream, line: Value) -> Vec<StreamAction> {
        s.on_line(line.to_string().as_bytes())
    }

    fn tool_use(name: &str, summary: &str) -> StreamAction {
        StreamAction::ToolUse {
            name: name.to_owned(),
            summary: summary.to_owned(),
        }
    }

    fn tool_result(summary: &str, is_error: bool) -> StreamAction {
        StreamAction::ToolResult {
            summary: summary.to_owned(),
            is_error,
        }
    }

    #[test]
    fn maos_mcp_server_is_declared_with_overrides_that_hold_no_secret() {
        let inv = CodexInvocation {
            model: Some("gpt-5-codex".to_owned()),
            resume: Some("thread-1".to_owned()),
            mcp: Some(CodexMcp {
                command: "/opt/maos \"1\"/maos".to_owned(),
                args: vec![
                    "mcp".to_owned(),
                    "--data-dir".to_owned(),
                    "/data".to_owned(),
                ],
                env_vars: vec!["MAOS_AGENT_CREDENTIAL".to_owned()],
            }),
            ..CodexInvocation::default()
        };
        assert_eq!(
            inv.args(),
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-c",
                r#"mcp_servers.maos.command="/opt/maos \"1\"/maos""#,
                "-c",
                r#"mcp_servers.maos.args=["mcp","--data-dir","/data"]"#,
                "-c",
                r#"mcp_servers.maos.env_vars=["MAOS_AGENT_CREDENTIAL"]"#,
                "--model",
                "gpt-5-codex",
                "resume",
                "thread-1",
                "-"
            ]
        );
    }

    #[test]
    fn args_read_the_prompt_from_stdin_and_resume_by_subcommand() {
        let inv = CodexInvocation::default();
        assert_eq!(inv.program, "codex");
        assert_eq!(inv.args(), ["exec", "--json", "--skip-git-repo-check", "-"]);
        let inv = CodexInvocation {
            model: Some("gpt-5-codex".to_owned()),
            resume: Some("0199a213-81c0-7800-8aa1-bbab2a035a53".to_owned()),
            extra_args: vec!["--sandbox".to_owned(), "workspace-write".to_owned()],
            ..CodexInvocation::default()
        };
        assert_eq!(
            inv.args(),
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--model",
                "gpt-5-codex",
                "--sandbox",
                "workspace-write",
                "resume",
                "0199a213-81c0-7800-8aa1-bbab2a035a53",
                "-"
            ]
        );
        assert_eq!(CodexInvocation::prompt_input("fix it\n"), b"fix it\n");
    }

    #[test]
    fn a_completed_turn_is_a_success_with_usage_and_summary() {
        let mut s = CodexStream::new(None);
        assert_eq!(
            feed(&mut s, json!({"type":"thread.started","thread_id":"t-1"})),
            [StreamAction::Session {
                id: "t-1".to_owned(),
                model: None
            }]
        );
        assert!(feed(&mut s, json!({"type":"turn.started"})).is_empty());
        assert_eq!(s.outcome().success, None);
        assert_eq!(
            feed(
                &mut s,
                json!({"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"First."}})
            ),
            [StreamAction::Text("First.".to_owned())]
        );
        feed(
            &mut s,
            json!({"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Done."}}),
        );
        let usage = Usage {
            input_tokens: 24_763,
            cached_input_tokens: 24_448,
            output_tokens: 122,
            cost_usd: None,
        };
        assert_eq!(
            feed(
                &mut s,
                json!({"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}})
            ),
            [StreamAction::Usage(usage)]
        );
        assert_eq!(
            s.outcome(),
            StreamOutcome {
                session: Some("t-1".to_owned()),
                model: None,
                success: Some(true),
                summary: Some("Done.".to_owned()),
                error: None,
                num_turns: None,
                usage,
                permission_denials: Vec::new(),
            }
        );
    }

    #[test]
    fn a_resumed_thread_reports_only_this_runs_tokens() {
        // The thread used 1,000 in / 400 cached / 100 out in earlier attempts; Codex reports
        // the thread's running total.
        let baseline = Usage {
            input_tokens: 1_000,
            cached_input_tokens: 400,
            output_tokens: 100,
            cost_usd: None,
        };
        let mut s = CodexStream::resuming(None, baseline);
        s.on_line(
            json!({"type":"turn.completed","usage":{"input_tokens":1500,"cached_input_tokens":900,"output_tokens":130}})
                .to_string()
                .as_bytes(),
        );
        let u = s.outcome().usage;
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (500, 500, 30)
        );
    }

    #[test]
    fn usage_is_priced_when_a_price_is_given_and_replaced_not_added() {
        let price = Price {
            input_per_mtok: 1.25,
            cached_input_per_mtok: Some(0.125),
            output_per_mtok: 10.0,
        };
        let mut s = CodexStream::new(Some(price));
        feed(
            &mut s,
            json!({"type":"turn.completed","usage":{"input_tokens":1000000,"cached_input_tokens":400000,"output_tokens":100000}}),
        );
        let cost = s.outcome().usage.cost_usd.unwrap();
        assert!((cost - 1.80).abs() < 1e-9, "{cost}");
        // Totals: a later report replaces the earlier one.
        feed(
            &mut s,
            json!({"type":"turn.completed","usage":{"input_tokens":2000000,"cached_input_tokens":0,"output_tokens":0}}),
        );
        assert_eq!(s.outcome().usage.input_tokens, 2_000_000);
        assert!((s.outcome().usage.cost_usd.unwrap() - 2.5).abs() < 1e-9);
        // Missing usage counts as zero.
        feed(&mut s, json!({"type":"turn.completed"}));
        assert_eq!(s.outcome().usage.input_tokens, 0);
    }

    #[test]
    fn a_failed_turn_or_a_later_error_is_a_failure() {
        let mut s = CodexStream::new(None);
        feed(
            &mut s,
            json!({"type":"error","message":"stream disconnected; retrying"}),
        );
        assert_eq!(s.outcome().success, Some(false));
        // A turn that completes after an error (a retry that worked) is a success.
        feed(&mut s, json!({"type":"turn.completed","usage":{}}));
        assert_eq!(s.outcome().success, Some(true));
        assert_eq!(s.outcome().error, None);
        // An error after the completed turn is not.
        feed(&mut s, json!({"type":"error","message":"  "}));
        assert_eq!(s.outcome().success, Some(false));
        assert_eq!(
            s.outcome().error.as_deref(),
            Some("Codex reported an error")
        );

        let mut s = CodexStream::new(None);
        feed(&mut s, json!({"type":"turn.started"}));
        feed(
            &mut s,
            json!({"type":"turn.failed","error":{"message":"You've hit your usage limit."}}),
        );
        assert_eq!(s.outcome().success, Some(false));
        assert_eq!(
            s.outcome().error.as_deref(),
            Some("You've hit your usage limit.")
        );
        let mut s = CodexStream::new(None);
        feed(&mut s, json!({"type":"turn.failed"}));
        assert_eq!(s.outcome().error.as_deref(), Some("the turn failed"));
    }

    #[test]
    fn an_api_error_body_passed_on_as_the_message_is_read() {
        // What Codex 0.171 prints when the Responses API answers 400.
        let body = r#"{"error":{"code":null,"message":"the model is unknown","type":"invalid_request_error"}}"#;
        let mut s = CodexStream::new(None);
        feed(&mut s, json!({"type":"error","message":body}));
        feed(
            &mut s,
            json!({"type":"turn.failed","error":{"message":body}}),
        );
        assert_eq!(
            s.outcome().error.as_deref(),
            Some("the model is unknown (invalid_request_error)")
        );
        // Without a type, or not an API error at all: as it is.
        assert_eq!(
            api_error_message(r#"{"error":{"message":"slow down"}}"#),
            "slow down"
        );
        for other in [
            r#"{"error":{"message":""}}"#,
            r#"{"detail":"x"}"#,
            "[1]",
            "plain {",
        ] {
            assert_eq!(api_error_message(other), other);
        }
    }

    #[test]
    fn commands_are_a_tool_use_then_a_result() {
        let mut s = CodexStream::new(None);
        let started = json!({"type":"item.started","item":{"id":"item_1","type":"command_execution",
            "command":"bash -lc 'cargo test'","aggregated_output":"","exit_code":null,"status":"in_progress"}});
        assert_eq!(
            feed(&mut s, started),
            [tool_use("command", "bash -lc 'cargo test'")]
        );
        let done = json!({"type":"item.completed","item":{"id":"item_1","type":"command_execution",
            "command":"bash -lc 'cargo test'","aggregated_output":"running 3 tests\ntest result: FAILED",
            "exit_code":101,"status":"failed"}});
        assert_eq!(
            feed(&mut s, done),
            [tool_result(
                "exit 101: running 3 tests test result: FAILED",
                true
            )]
        );
        // A completion without a start reports the use too; exit 0 is no error.
        let quiet = json!({"type":"item.completed","item":{"id":"item_2","type":"command_execution",
            "command":"ls","aggregated_output":"","exit_code":0,"status":"completed"}});
        assert_eq!(
            feed(&mut s, quiet),
            [tool_use("command", "ls"), tool_result("exit 0", false)]
        );
        let declined = json!({"type":"item.completed","item":{"id":"item_3","type":"command_execution",
            "command":"rm -rf /","aggregated_output":"","exit_code":null,"status":"declined"}});
        assert_eq!(feed(&mut s, declined)[1], tool_result("declined", true));
    }

    #[test]
    fn other_items_become_tool_uses_warnings_or_nothing() {
        let mut s = CodexStream::new(None);
        let file = json!({"type":"item.completed","item":{"id":"item_4","type":"file_change",
            "changes":[{"path":"src/lib.rs","kind":"update"},{"path":"tests/a.rs","kind":"add"}],"status":"completed"}});
        assert_eq!(
            feed(&mut s, file),
            [
                tool_use("file_change", "update src/lib.rs, add tests/a.rs"),
                tool_result("completed", false)
            ]
        );
        let mcp_start = json!({"type":"item.started","item":{"id":"item_5","type":"mcp_tool_call",
            "server":"github","tool":"search_issues","arguments":{"q":"bug"},"result":null,"error":null,"status":"in_progress"}});
        assert_eq!(
            feed(&mut s, mcp_start),
            [tool_use("mcp:github/search_issues", r#"{"q":"bug"}"#)]
        );
        let mcp_done = json!({"type":"item.completed","item":{"id":"item_5","type":"mcp_tool_call",
            "server":"github","tool":"search_issues","arguments":{"q":"bug"},
            "result":{"content":[{"type":"text","text":"3 issues"}],"structured_content":null},"error":null,"status":"completed"}});
        assert_eq!(feed(&mut s, mcp_done), [tool_result("3 issues", false)]);
        let mcp_fail = json!({"type":"item.completed","item":{"id":"item_6","type":"mcp_tool_call",
            "server":"github","tool":"x","arguments":null,"result":null,"error":{"message":"timeout"},"status":"failed"}});
        assert_eq!(
            feed(&mut s, mcp_fail),
            [tool_use("mcp:github/x", ""), tool_result("timeout", true)]
        );
        let search = json!({"type":"item.started","item":{"id":"item_7","type":"web_search","query":"serde flatten"}});
        assert_eq!(
            feed(&mut s, search),
            [tool_use("web_search", "serde flatten")]
        );
        let todo = json!({"type":"item.updated","item":{"id":"item_8","type":"todo_list","items":[
            {"text":"read code","completed":true},{"text":"write tests","completed":false}]}});
        assert_eq!(
            feed(&mut s, todo),
            [tool_use("todo_list", "1/2 done; next: write tests")]
        );
        let reasoning = json!({"type":"item.completed","item":{"id":"item_9","type":"reasoning","text":"**Thinking**"}});
        assert!(feed(&mut s, reasoning).is_empty());
        let warning = json!({"type":"item.completed","item":{"id":"item_10","type":"error","message":"model rerouted"}});
        assert_eq!(
            feed(&mut s, warning),
            [StreamAction::Warning("model rerouted".to_owned())]
        );
        // An update of an item that is not a to-do list says nothing new.
        let update = json!({"type":"item.updated","item":{"id":"item_1","type":"command_execution","command":"x"}});
        assert!(feed(&mut s, update).is_empty());
    }

    #[test]
    fn a_plan_is_the_summary_only_without_an_agent_message() {
        let mut s = CodexStream::new(None);
        feed(
            &mut s,
            json!({"type":"item.completed","item":{"id":"p","type":"plan","text":"1. do it"}}),
        );
        assert_eq!(s.outcome().summary.as_deref(), Some("1. do it"));
        feed(
            &mut s,
            json!({"type":"item.completed","item":{"id":"m","type":"agent_message","text":"did it"}}),
        );
        assert_eq!(s.outcome().summary.as_deref(), Some("did it"));
    }

    #[test]
    fn unknown_and_malformed_lines_are_kept() {
        let mut s = CodexStream::new(None);
        for line in [
            r#"{"type":"item.plan.delta","item_id":"x","delta":"a"}"#,
            r#"{"type":"item.completed","item":{"id":"x","type":"hologram"}}"#,
            r#"{"type":"item.completed"}"#,
            r#"{"type":"thread.started"}"#,
            r#"{"thread_id":"x"}"#,
        ] {
            assert_eq!(
                s.on_line(line.as_bytes()),
                [StreamAction::Unknown {
                    raw: line.to_owned()
                }],
                "{line}"
            );
        }
        assert!(s.on_line(b"").is_empty());
        assert!(matches!(
            &s.on_line(b"Reading prompt from stdin...")[..],
            [StreamAction::Malformed { .. }]
        ));
        assert!(matches!(
            &s.on_line(b"{\"type\":\"error\",\"message\":\"\xc3\x28\"}")[..],
            [StreamAction::Malformed { error, .. }] if error.starts_with("not UTF-8")
        ));
        assert_eq!(s.outcome(), StreamOutcome::default());
    }
}
