//! Claude Code's structured protocol: the command line, the prompt message, and a parser of its
//! stream-json output that answers tool-permission requests with MAOS's policy.
//!
//! # API
//!
//! - [`ClaudeInvocation`] `{ program, model, resume, skip_permissions, extra_args }` (program
//!   `claude` by default): [`ClaudeInvocation::args`] is the argument list after the program,
//!   [`ClaudeInvocation::prompt_message`] the one NDJSON line to write to stdin first.
//! - [`ClaudeStream::new`]`(PermissionRules)`, a [`StreamParser`]: `on_line` returns what to do
//!   and record for each stdout line, `outcome` the run so far.
//! - [`permission_subject`]`(tool, input)`: what a permission rule's pattern is matched against.
//!
//! # How a run goes
//!
//! The supervisor runs `claude -p --verbose --output-format stream-json --input-format
//! stream-json --permission-prompt-tool stdio [--settings {"permissions":{"ask":[RULES]}}]
//! [--model M] [--resume=SESSION] [extra args]` (`--dangerously-skip-permissions` replaces the
//! permission tool only when the agent's settings say so; with MAOS's MCP server configured,
//! `--mcp-config FILE --allowedTools mcp__maos` come right after the formats), writes
//! [`ClaudeInvocation::prompt_message`], and keeps stdin open: Claude Code asks
//! for each tool call that its own settings do not already allow with a `control_request`
//! (`can_use_tool`) on stdout, and waits for the `control_response` on stdin, which `on_line`
//! returns as [`StreamAction::Write`]. After the `result` event `on_line` returns
//! [`StreamAction::CloseInput`], and Claude Code exits. No `initialize` control request is sent:
//! the SDKs send one to register hooks, agents and in-process MCP servers, none of which MAOS
//! uses, and the CLI asks `can_use_tool` without it (recorded runs below).
//!
//! # Where the shapes come from
//!
//! - Arguments, `--input-format stream-json` with `--permission-prompt-tool stdio`, and
//!   `--resume=<id>` in the one-token form (so that a dash-leading value cannot become a flag):
//!   `anthropics/claude-agent-sdk-python`, `src/claude_agent_sdk/_internal/transport/
//!   subprocess_cli.py` (`_build_command`) and `_internal/client.py` (`can_use_tool` sets the
//!   permission prompt tool to `stdio`).
//! - The user message `{"type":"user","session_id":"","message":{"role":"user","content":…},
//!   "parent_tool_use_id":null}`: the same `_internal/client.py` (`process_query`).
//! - `control_request` / `can_use_tool` (`request_id`, `request.tool_name`, `request.input`,
//!   `tool_use_id`, `permission_suggestions`, `blocked_path`, `decision_reason`), the
//!   `control_response` for allow (`behavior: allow`, `updatedInput`), deny (`behavior: deny`,
//!   `message`) and errors (`subtype: error`, `error`), and `control_cancel_request`: the Python
//!   SDK's `_internal/query.py` (`_read_messages`, `_handle_control_request`) and `types.py`
//!   (`SDKControlPermissionRequest`); recorded exchanges with the real CLI, without an
//!   `initialize` request, in `hrntknr/claude-code-protocol` (`docs/15_permission_tool.md`,
//!   `15_permission_tool_test.go`).
//! - `system`/`api_retry` (`attempt`, `max_retries`, `retry_delay_ms`, `error_status`,
//!   `error`: Claude Code retries a failed model request itself, up to ten times, before its
//!   result says so) becomes a [`StreamAction::Warning`]: recorded with Claude Code 2.1.332.
//! - `system`/`init` (`session_id`, `model`, `tools`, `permissionMode`), `assistant`
//!   (`message.content`: `text`, `thinking`, `tool_use` blocks), `user` (`tool_result` blocks
//!   with `content` and `is_error`), `result` (`subtype` `success` / `error_max_turns` /
//!   `error_during_execution` / `error_max_budget_usd`, `is_error`, `result`, `num_turns`,
//!   `total_cost_usd`, `usage`, `session_id`, `permission_denials`, `errors`), `stream_event`:
//!   the Python SDK's `_internal/message_parser.py`, and `hrntknr/claude-code-protocol`
//!   (`docs/13_error.md`). Claude Code 2.1.332 streams each block of a message as an
//!   `assistant` event of its own (the message's `id` repeated) and puts only the final
//!   message's last text block in `result`: the summary is the final message's text blocks
//!   joined (recorded against the scripted fake of the Messages API).
//! - `usage` follows the Anthropic Messages API: `input_tokens` counts only the uncached prompt
//!   tokens, beside `cache_read_input_tokens` and `cache_creation_input_tokens`; MAOS's
//!   [`Usage::input_tokens`] is their sum and [`Usage::cached_input_tokens`] the cache reads.
//!   `total_cost_usd` is Claude Code's own figure and is taken as it is.
//!
//! Claude Code only asks about calls its own settings (`~/.claude/settings.json`, the project's
//! `.claude/settings.json`) do not already allow or deny, and it allows read-only calls in its
//! working directory by itself (`ls`, `git status`, reading a file there: recorded with Claude
//! Code 2.1.332). So that the agent's `deny` and `ask` rules still decide the calls they cover,
//! MAOS passes them to Claude Code as its own `ask` rules (`--settings`): Claude Code then asks
//! about those calls, whatever it would have done, and MAOS's rules decide the rest.

use maos_domain::policy::permission::{Decision, PermissionRules, decide};
use serde_json::{Map, Value, json};

use crate::report::Usage;
use crate::stream::{
    Line, SUMMARY_CHARS, StreamAction, StreamOutcome, StreamParser, one_line, read_line, str_at,
    u64_at,
};

/// How to start Claude Code for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeInvocation {
    /// The program to run (`claude` on the `PATH` by default).
    pub program: String,
    /// `--model`, when the agent's settings name one.
    pub model: Option<String>,
    /// A session to resume (`--resume`), from an earlier attempt.
    pub resume: Option<String>,
    /// Run with `--dangerously-skip-permissions` instead of asking MAOS. Only when the agent's
    /// settings say so explicitly.
    pub skip_permissions: bool,
    /// Rules (as written) whose calls Claude Code must always ask MAOS about, even those it
    /// would allow by itself: the agent's `deny` and `ask` rules
    /// ([`ClaudeInvocation::always_ask_of`]). Passed as Claude Code `ask` rules in
    /// `--settings`.
    pub always_ask: Vec<String>,
    /// Arguments appended after MAOS's own.
    pub extra_args: Vec<String>,
    /// A file of MCP servers to load besides the user's own (`--mcp-config`): MAOS's server,
    /// whose tools (`mcp__maos__*`) are then allowed without asking (`--allowedTools mcp__maos`).
    pub mcp_config: Option<String>,
}

impl Default for ClaudeInvocation {
    fn default() -> Self {
        Self {
            program: "claude".to_owned(),
            model: None,
            resume: None,
            skip_permissions: false,
            always_ask: Vec::new(),
            extra_args: Vec::new(),
            mcp_config: None,
        }
    }
}

impl ClaudeInvocation {
    /// The arguments after the program.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-p",
            "--verbose",
            "--output-format",
            "stream-json",
            "--input-format",
            "stream-json",
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(file) = &self.mcp_config {
            // Both options take several values: a flag always follows them here.
            args.extend([
                "--mcp-config".to_owned(),
                file.clone(),
                "--allowedTools".to_owned(),
                MCP_TOOLS_RULE.to_owned(),
            ]);
        }
        if self.skip_permissions {
            args.push("--dangerously-skip-permissions".to_owned());
        } else {
            args.extend(["--permission-prompt-tool".to_owned(), "stdio".to_owned()]);
            if !self.always_ask.is_empty() {
                let settings = json!({ "permissions": { "ask": self.always_ask } });
                args.extend(["--settings".to_owned(), settings.to_string()]);
            }
        }
        if let Some(model) = &self.model {
            args.extend(["--model".to_owned(), model.clone()]);
        }
        if let Some(session) = &self.resume {
            args.push(format!("--resume={session}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The rules Claude Code must always ask about for an agent with `rules`: its `deny` and
    /// `ask` rules, so that MAOS decides the calls they cover even when Claude Code would allow
    /// them by itself.
    pub fn always_ask_of(rules: &PermissionRules) -> Vec<String> {
        rules
            .deny
            .iter()
            .chain(&rules.ask)
            .map(|r| r.as_str().to_owned())
            .collect()
    }

    /// The prompt as one stream-json user message: a single line ending in `\n`.
    pub fn prompt_message(prompt: &str) -> Vec<u8> {
        let message = json!({
            "type": "user",
            "session_id": "",
            "message": { "role": "user", "content": prompt },
            "parent_tool_use_id": null,
        });
        ndjson(&message)
    }
}

/// The name of MAOS's MCP server in the configuration Claude Code and Codex are given.
pub const MCP_SERVER: &str = "maos";

/// The permission rule that allows every tool of MAOS's MCP server (`mcp__maos__<tool>`).
pub const MCP_TOOLS_RULE: &str = "mcp__maos";

/// The `--mcp-config` file of an attempt: MAOS's server over stdio (`<program> mcp --data-dir
/// <dir>`), with the attempt's credential and `env` (what it needs to find the daemon) in its
/// environment.
pub fn mcp_config(
    program: &str,
    data_dir: &str,
    credential: &str,
    env: &[(String, String)],
) -> Value {
    let mut vars = serde_json::Map::new();
    for (k, v) in env {
        vars.insert(k.clone(), Value::from(v.as_str()));
    }
    vars.insert(
        crate::credential::CREDENTIAL_ENV.to_owned(),
        Value::from(credential),
    );
    json!({
        "mcpServers": {
            MCP_SERVER: {
                "type": "stdio",
                "command": program,
                "args": ["mcp", "--data-dir", data_dir],
                "env": vars,
            }
        }
    })
}

/// A value as one line of JSON with its newline.
fn ndjson(value: &Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Parses Claude Code's stream-json output and answers its permission requests.
#[derive(Debug, Clone)]
pub struct ClaudeStream {
    rules: PermissionRules,
    outcome: StreamOutcome,
    /// The text blocks of the newest assistant message that said something, with its id:
    /// Claude Code streams each block of a message as an `assistant` event of its own (the
    /// message's id repeated), and its result holds only the last block.
    last_message: Option<(Option<String>, Vec<String>)>,
    result_seen: bool,
    /// A call that needs a person becomes [`StreamAction::AskPerson`] instead of a denial.
    ask_people: bool,
    /// Claude Code's working directory (`system`/`init`'s `cwd`): paths under it are matched
    /// against the rules relative to it too.
    cwd: Option<String>,
}

impl ClaudeStream {
    /// A parser that answers permission requests with `rules`; a call that needs a person is
    /// denied, saying so.
    pub fn new(rules: PermissionRules) -> Self {
        Self {
            rules,
            outcome: StreamOutcome::default(),
            last_message: None,
            result_seen: false,
            ask_people: false,
            cwd: None,
        }
    }

    /// A parser that hands calls needing a person to the caller ([`StreamAction::AskPerson`]),
    /// which answers with [`permission_answer`] once a person decided.
    pub fn asking_people(rules: PermissionRules) -> Self {
        Self {
            ask_people: true,
            ..Self::new(rules)
        }
    }

    fn system(&mut self, event: &Map<String, Value>, raw: String) -> Vec<StreamAction> {
        if str_at(event, "subtype") == Some("api_retry") {
            return vec![StreamAction::Warning(api_retry(event))];
        }
        if str_at(event, "subtype") != Some("init") {
            return vec![StreamAction::Unknown { raw }];
        }
        let Some(id) = str_at(event, "session_id").filter(|s| !s.is_empty()) else {
            return vec![StreamAction::Unknown { raw }];
        };
        let model = str_at(event, "model")
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if let Some(cwd) = str_at(event, "cwd").filter(|c| c.starts_with('/')) {
            self.cwd = Some(cwd.trim_end_matches('/').to_owned());
        }
        self.outcome.session = Some(id.to_owned());
        if model.is_some() {
            self.outcome.model.clone_from(&model);
        }
        vec![StreamAction::Session {
            id: id.to_owned(),
            model,
        }]
    }

    fn assistant(&mut self, event: &Map<String, Value>) -> Vec<StreamAction> {
        let mut actions = Vec::new();
        let id = event
            .get("message")
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        for block in content_blocks(event) {
            match str_at(block, "type") {
                Some("text") => {
                    if let Some(text) = str_at(block, "text").filter(|t| !t.trim().is_empty()) {
                        self.said(id, text);
                        actions.push(StreamAction::Text(text.to_owned()));
                    }
                }
                Some("tool_use") => {
                    let name = str_at(block, "name").unwrap_or("?").to_owned();
                    let input = block.get("input").unwrap_or(&Value::Null);
                    actions.push(StreamAction::ToolUse {
                        summary: tool_summary(&name, input),
                        name,
                    });
                }
                // Thinking, server tool blocks and future kinds: nothing to record.
                _ => {}
            }
        }
        actions
    }

    /// Records a text block of the assistant message `id` (a block of a message without an id
    /// stands alone).
    fn said(&mut self, id: Option<&str>, text: &str) {
        match &mut self.last_message {
            Some((Some(last), blocks)) if Some(last.as_str()) == id => blocks.push(text.to_owned()),
            _ => self.last_message = Some((id.map(str::to_owned), vec![text.to_owned()])),
        }
    }

    /// The text of the newest assistant message that said something, its blocks a paragraph
    /// each: the summary of a run that ends without a result text.
    fn last_text(&self) -> Option<String> {
        self.last_message
            .as_ref()
            .map(|(_, blocks)| blocks.join("\n\n"))
    }

    fn user(&mut self, event: &Map<String, Value>) -> Vec<StreamAction> {
        content_blocks(event)
            .filter(|block| str_at(block, "type") == Some("tool_result"))
            .map(|block| StreamAction::ToolResult {
                summary: one_line(&content_text(block.get("content")), SUMMARY_CHARS),
                is_error: block
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .collect()
    }

    fn result(&mut self, event: &Map<String, Value>) -> Vec<StreamAction> {
        let subtype = str_at(event, "subtype").unwrap_or("");
        let is_error = event
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let success = subtype == "success" && !is_error;
        let text = str_at(event, "result")
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned);
        let said = self.last_text();
        let o = &mut self.outcome;
        o.success = Some(success);
        if let Some(id) = str_at(event, "session_id").filter(|s| !s.is_empty()) {
            o.session = Some(id.to_owned());
        }
        o.num_turns = event
            .get("num_turns")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        if success {
            // The result is the final message's last block: the whole message may say more.
            let last_block = self.last_message.as_ref().and_then(|(_, b)| b.last());
            o.summary = match text {
                Some(result) if last_block.map(|b| b.trim()) == Some(result.trim()) => said,
                Some(result) => Some(result),
                None => said,
            };
            o.error = None;
        } else {
            o.summary = said;
            o.error = Some(result_error(subtype, event, text));
        }
        o.usage = result_usage(event);
        o.permission_denials = permission_denials(event);
        let mut actions = vec![StreamAction::Usage(o.usage)];
        if !self.result_seen {
            self.result_seen = true;
            actions.push(StreamAction::CloseInput);
        }
        actions
    }

    fn control_request(&mut self, event: &Map<String, Value>, raw: String) -> Vec<StreamAction> {
        let Some(request_id) = str_at(event, "request_id") else {
            return vec![StreamAction::Malformed {
                raw,
                error: "a control_request without a request_id cannot be answered".to_owned(),
            }];
        };
        let request = event.get("request").and_then(Value::as_object);
        let subtype = request.and_then(|r| str_at(r, "subtype"));
        let Some(request) = request.filter(|_| subtype == Some("can_use_tool")) else {
            // Hook callbacks, MCP messages and future requests: MAOS registered none, so it
            // says so instead of leaving Claude Code waiting, and keeps the request raw.
            let error = format!(
                "MAOS does not handle control requests of subtype {}",
                subtype.unwrap_or("(none)")
            );
            let answer = json!({
                "type": "control_response",
                "response": { "subtype": "error", "request_id": request_id, "error": error },
            });
            return vec![
                StreamAction::Unknown { raw },
                StreamAction::Write(ndjson(&answer)),
            ];
        };
        let tool = str_at(request, "tool_name").unwrap_or("");
        let input = request.get("input").cloned().unwrap_or(json!({}));
        let subject = permission_subject(tool, &input);
        let relative = subject
            .as_deref()
            .and_then(|s| relative_subject(tool, s, self.cwd.as_deref()));
        let decision = decide_either(&self.rules, tool, subject.as_deref(), relative);
        let call = match &subject {
            Some(s) => format!("{tool}({})", one_line(s, 120)),
            None => tool.to_owned(),
        };
        let (allowed, reason, response) = match &decision {
            Decision::Allow(rule) => (
                true,
                format!("allowed by rule `{rule}`"),
                json!({ "behavior": "allow", "updatedInput": input }),
            ),
            Decision::Deny(rule) => {
                let message =
                    format!("MAOS: `{call}` is denied by rule `{rule}` in the agent's deny list");
                (false, message.clone(), deny(message))
            }
            Decision::Ask(rule) => {
                let why = match rule {
                    Some(rule) => format!("rule `{rule}` in the ask list"),
                    None => "no rule in the agent's permissions allows it".to_owned(),
                };
                if self.ask_people {
                    return vec![StreamAction::AskPerson {
                        tool: tool.to_owned(),
                        subject,
                        why,
                        request_id: request_id.to_owned(),
                        input,
                    }];
                }
                let message = format!(
                    "MAOS: `{call}` needs a person's approval ({why}); approvals are not \
                     available yet, so it is denied"
                );
                (false, message.clone(), deny(message))
            }
        };
        let answer = json!({
            "type": "control_response",
            "response": { "subtype": "success", "request_id": request_id, "response": response },
        });
        vec![
            StreamAction::Permission {
                tool: tool.to_owned(),
                subject,
                allowed,
                reason,
            },
            StreamAction::Write(ndjson(&answer)),
        ]
    }
}

/// What a `system`/`api_retry` event says: the model API failed and Claude Code tries again
/// (`attempt`, `max_retries`, `retry_delay_ms`, `error_status`, `error`; recorded with Claude
/// Code 2.1.332 against a failing Messages API).
fn api_retry(event: &Map<String, Value>) -> String {
    let status = event.get("error_status").and_then(Value::as_u64);
    let error = str_at(event, "error").filter(|e| !e.trim().is_empty());
    let what = match (status, error) {
        (Some(status), Some(error)) => format!("{status} {}", one_line(error, 200)),
        (Some(status), None) => status.to_string(),
        (None, Some(error)) => one_line(error, 200),
        (None, None) => "an error".to_owned(),
    };
    let mut text = format!("the model API answered {what}; Claude Code tries again");
    let attempt = event.get("attempt").and_then(Value::as_u64);
    let max = event.get("max_retries").and_then(Value::as_u64);
    match (attempt, max) {
        (Some(a), Some(m)) => text.push_str(&format!(" (retry {a} of {m})")),
        (Some(a), None) => text.push_str(&format!(" (retry {a})")),
        _ => {}
    }
    if let Some(ms) = event.get("retry_delay_ms").and_then(Value::as_u64) {
        text.push_str(&format!(" in {ms} ms"));
    }
    text
}

/// The path of a file tool's call (`Read`, `Write`, `Edit`, `MultiEdit`, `NotebookEdit`,
/// `NotebookRead`, `Glob`, `Grep`) relative to `cwd`, when it is under it: Claude Code makes
/// the paths it asks about absolute (recorded with Claude Code 2.1.332: a `Read` of
/// `made.txt` asks about `<cwd>/made.txt`), while rules such as `Edit(src/**)` are written
/// relative to the project, as in Claude Code's own settings.
fn relative_subject<'s>(tool: &str, subject: &'s str, cwd: Option<&str>) -> Option<&'s str> {
    let file_tool = matches!(
        tool,
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "NotebookRead" | "Glob" | "Grep"
    );
    let rest = subject.strip_prefix(cwd.filter(|_| file_tool)?)?;
    rest.strip_prefix('/').filter(|r| !r.is_empty())
}

/// The policy's decision about a call whose subject may be written two ways (absolute, and
/// relative to the working directory): the stricter of the two, where a rule that denies or
/// asks beats one that allows, which beats no rule at all.
fn decide_either(
    rules: &PermissionRules,
    tool: &str,
    subject: Option<&str>,
    relative: Option<&str>,
) -> Decision {
    let first = decide(rules, tool, subject);
    let Some(relative) = relative else {
        return first;
    };
    let second = decide(rules, tool, Some(relative));
    let rank = |d: &Decision| match d {
        Decision::Deny(_) => 0,
        Decision::Ask(Some(_)) => 1,
        Decision::Allow(_) => 2,
        Decision::Ask(None) => 3,
    };
    if rank(&second) < rank(&first) {
        second
    } else {
        first
    }
}

fn deny(message: String) -> Value {
    json!({ "behavior": "deny", "message": message })
}

/// The answer to a permission request a person decided: allow (with the call's input as it
/// was) or deny with `message`. One NDJSON line for the agent's stdin.
pub fn permission_answer(request_id: &str, allowed: bool, input: &Value, message: &str) -> Vec<u8> {
    let response = if allowed {
        json!({ "behavior": "allow", "updatedInput": input })
    } else {
        deny(message.to_owned())
    };
    ndjson(&json!({
        "type": "control_response",
        "response": { "subtype": "success", "request_id": request_id, "response": response },
    }))
}

impl StreamParser for ClaudeStream {
    fn on_line(&mut self, line: &[u8]) -> Vec<StreamAction> {
        let (event, raw) = match read_line(line) {
            Line::Blank => return Vec::new(),
            Line::Bad(action) => return vec![action],
            Line::Object(event, raw) => (event, raw),
        };
        match str_at(&event, "type") {
            Some("system") => self.system(&event, raw),
            Some("assistant") => self.assistant(&event),
            Some("user") => self.user(&event),
            Some("result") => self.result(&event),
            Some("control_request") => self.control_request(&event, raw),
            // Answers to requests MAOS never sends, the withdrawal of a request that was already
            // answered (answers are immediate), and partial messages (only sent with
            // `--include-partial-messages`, which MAOS does not pass): nothing to record.
            Some("control_response" | "control_cancel_request" | "stream_event") => Vec::new(),
            _ => vec![StreamAction::Unknown { raw }],
        }
    }

    fn outcome(&self) -> StreamOutcome {
        self.outcome.clone()
    }
}

/// The content blocks of an `assistant` or `user` event's message (none when the content is a
/// plain string or missing).
fn content_blocks(event: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    event
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The text of a tool result's `content`: a string, or a list of text blocks.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The result event's usage, in MAOS's terms (see the module documentation).
fn result_usage(event: &Map<String, Value>) -> Usage {
    let usage = event.get("usage").and_then(Value::as_object);
    let field = |key: &str| usage.map_or(0, |u| u64_at(u, key));
    let cache_read = field("cache_read_input_tokens");
    Usage {
        input_tokens: field("input_tokens")
            .saturating_add(cache_read)
            .saturating_add(field("cache_creation_input_tokens")),
        cached_input_tokens: cache_read,
        output_tokens: field("output_tokens"),
        cost_usd: event.get("total_cost_usd").and_then(Value::as_f64),
    }
}

/// What went wrong, from a failed result: what the subtype means, then the details the event
/// carries (`errors`, else the result text).
fn result_error(subtype: &str, event: &Map<String, Value>, text: Option<String>) -> String {
    let base = match subtype {
        "error_max_turns" => "Claude Code stopped at its maximum number of turns".to_owned(),
        "error_max_budget_usd" => "Claude Code stopped at its budget".to_owned(),
        "error_during_execution" => "Claude Code failed during execution".to_owned(),
        "success" => "Claude Code reported an error".to_owned(),
        "" => "Claude Code ended with an error".to_owned(),
        other => format!("Claude Code ended with {other}"),
    };
    let errors: Vec<&str> = event
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|e| !e.trim().is_empty())
        .collect();
    let details = if errors.is_empty() {
        text
    } else {
        Some(errors.join("; "))
    };
    match details {
        Some(d) => format!("{base}: {d}"),
        None => base,
    }
}

/// The most denied calls recorded for one attempt (the rest are counted in the last entry).
const MAX_DENIALS: usize = 20;

/// The result's `permission_denials` (`[{tool_name, tool_use_id, tool_input}]`) as
/// `Tool(subject)`, or just `Tool` when the call has no subject.
fn permission_denials(event: &Map<String, Value>) -> Vec<String> {
    let Some(list) = event.get("permission_denials").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<String> = list
        .iter()
        .filter_map(Value::as_object)
        .take(MAX_DENIALS)
        .map(|d| {
            let tool = str_at(d, "tool_name").unwrap_or("unknown tool");
            let input = d.get("tool_input").cloned().unwrap_or(Value::Null);
            match permission_subject(tool, &input) {
                Some(subject) => format!("{tool}({})", one_line(&subject, 200)),
                None => tool.to_owned(),
            }
        })
        .collect();
    if list.len() > MAX_DENIALS {
        out.push(format!("…and {} more", list.len() - MAX_DENIALS));
    }
    out
}

/// What a permission rule's pattern is matched against for a call of `tool` with `input`:
/// `Bash` its `command`; `Read`, `Write`, `Edit`, `MultiEdit` their `file_path`; `NotebookEdit`
/// (and `NotebookRead`) the `notebook_path` (or `file_path`); `Glob` and `Grep` their `path`, or
/// their `pattern` when no path is given; `WebFetch` `domain:<host>` of its `url`. Other tools
/// (and a missing field) have none, so only rules without a pattern cover them.
pub fn permission_subject(tool: &str, input: &Value) -> Option<String> {
    let field = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_owned);
    match tool {
        "Bash" => field("command"),
        "Read" | "Write" | "Edit" | "MultiEdit" => field("file_path"),
        "NotebookEdit" | "NotebookRead" => field("notebook_path").or_else(|| field("file_path")),
        "Glob" | "Grep" => field("path")
            .filter(|p| !p.is_empty())
            .or_else(|| field("pattern")),
        "WebFetch" => field("url")
            .as_deref()
            .and_then(url_host)
            .map(|h| format!("domain:{h}")),
        _ => None,
    }
}

/// The host of an absolute URL, lowercased, without user info, port or IPv6 brackets.
fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A one-line description of a tool call for progress: its permission subject, else a telling
/// field, else its input as compact JSON.
fn tool_summary(tool: &str, input: &Value) -> String {
    let text = permission_subject(tool, input)
        .or_else(|| {
            ["description", "query", "prompt", "url"]
                .iter()
                .find_map(|k| input.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| match input {
            Value::Null => String::new(),
            other => other.to_string(),
        });
    one_line(&text, SUMMARY_CHARS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use maos_domain::policy::permission::PermissionRule;

    use super::*;

    fn rules(deny: &[&str], ask: &[&str], allow: &[&str]) -> PermissionRules {
        let list = |l: &[&str]| {
            l.iter()
                .map(|s| PermissionRule::parse(s).unwrap())
                .collect()
        };
        PermissionRules {
            deny: list(deny),
            ask: list(ask),
            allow: list(allow),
        }
    }

    fn stream() -> ClaudeStream {
        ClaudeStream::new(rules(
            &["Bash(rm:*)"],
            &["Write(/etc/**)"],
            &["Read", "Bash(cargo test:*)", "WebFetch(domain:docs.rs)"],
        ))
    }

    /// The JSON a `Write` action carries.
    fn written(action: &StreamAction) -> Value {
        match action {
            StreamAction::Write(bytes) => {
                assert_eq!(bytes.last(), Some(&b'\n'));
                assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
                serde_json::from_slice(bytes).unwrap()
            }
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn can_use_tool(id: &str, tool: &str, input: Value) -> Vec<u8> {
        json!({
            "type": "control_request",
            "request_id": id,
            "request": {
                "subtype": "can_use_tool",
                "tool_name": tool,
                "input": input,
                "tool_use_id": "toolu_01",
                "permission_suggestions": [],
            },
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn maos_mcp_server_is_loaded_beside_the_users_and_its_tools_are_allowed() {
        let inv = ClaudeInvocation {
            mcp_config: Some("/data/runs/t/1/mcp.json".to_owned()),
            extra_args: vec!["--max-turns".to_owned(), "3".to_owned()],
            ..ClaudeInvocation::default()
        };
        let args = inv.args();
        assert_eq!(
            args[6..12],
            [
                "--mcp-config",
                "/data/runs/t/1/mcp.json",
                "--allowedTools",
                "mcp__maos",
                "--permission-prompt-tool",
                "stdio"
            ]
        );
        // The user's own servers still load; nothing is restricted to MAOS's.
        assert!(!args.contains(&"--strict-mcp-config".to_owned()));
        assert_eq!(args[12..], ["--max-turns", "3"]);
        // Without a configuration, none of it.
        let plain = ClaudeInvocation::default().args();
        assert!(!plain.contains(&"--mcp-config".to_owned()));
        assert!(!plain.contains(&"--allowedTools".to_owned()));

        let config = mcp_config("/usr/bin/maos", "/data dir", "c-r-e-d_ential", &[]);
        assert_eq!(
            config,
            json!({
                "mcpServers": {
                    "maos": {
                        "type": "stdio",
                        "command": "/usr/bin/maos",
                        "args": ["mcp", "--data-dir", "/data dir"],
                        "env": { "MAOS_AGENT_CREDENTIAL": "c-r-e-d_ential" },
                    }
                }
            })
        );
    }

    #[test]
    fn args_ask_maos_for_permissions_unless_told_otherwise() {
        let inv = ClaudeInvocation::default();
        assert_eq!(inv.program, "claude");
        assert_eq!(
            inv.args(),
            [
                "-p",
                "--verbose",
                "--output-format",
                "stream-json",
                "--input-format",
                "stream-json",
                "--permission-prompt-tool",
                "stdio"
            ]
        );
        let inv = ClaudeInvocation {
            model: Some("claude-sonnet-4-5".to_owned()),
            resume: Some("-rf".to_owned()),
            skip_permissions: true,
            extra_args: vec!["--max-turns".to_owned(), "30".to_owned()],
            ..ClaudeInvocation::default()
        };
        let args = inv.args();
        assert_eq!(
            args[6..],
            [
                "--dangerously-skip-permissions",
                "--model",
                "claude-sonnet-4-5",
                "--resume=-rf",
                "--max-turns",
                "30"
            ]
        );
        assert!(!args.contains(&"--permission-prompt-tool".to_owned()));
    }

    #[test]
    fn deny_and_ask_rules_are_calls_claude_code_must_always_ask_about() {
        let rules = rules(&["Bash(rm:*)"], &["Write(/etc/**)"], &["Read"]);
        let always_ask = ClaudeInvocation::always_ask_of(&rules);
        assert_eq!(always_ask, ["Bash(rm:*)", "Write(/etc/**)"]);
        let inv = ClaudeInvocation {
            always_ask,
            ..ClaudeInvocation::default()
        };
        let args = inv.args();
        assert_eq!(
            args[6..9],
            ["--permission-prompt-tool", "stdio", "--settings"]
        );
        let settings: Value = serde_json::from_str(&args[9]).unwrap();
        assert_eq!(
            settings,
            json!({ "permissions": { "ask": ["Bash(rm:*)", "Write(/etc/**)"] } })
        );
        assert_eq!(args.len(), 10);
        // Skipping permissions asks nothing, and no rules add no settings.
        let skipping = ClaudeInvocation {
            skip_permissions: true,
            ..inv
        };
        assert!(!skipping.args().contains(&"--settings".to_owned()));
        assert!(
            !ClaudeInvocation::default()
                .args()
                .contains(&"--settings".to_owned())
        );
    }

    #[test]
    fn the_prompt_is_one_user_message_line() {
        let bytes = ClaudeInvocation::prompt_message("fix the bug\nin \"auth.rs\"");
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({
                "type": "user",
                "session_id": "",
                "message": { "role": "user", "content": "fix the bug\nin \"auth.rs\"" },
                "parent_tool_use_id": null,
            })
        );
    }

    #[test]
    fn init_gives_the_session_and_model() {
        let mut s = stream();
        let line = br#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Bash"],"model":"claude-sonnet-4-5","permissionMode":"default"}"#;
        assert_eq!(
            s.on_line(line),
            [StreamAction::Session {
                id: "s-1".to_owned(),
                model: Some("claude-sonnet-4-5".to_owned())
            }]
        );
        assert_eq!(s.outcome().session.as_deref(), Some("s-1"));
        assert_eq!(s.outcome().model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(s.outcome().success, None);
    }

    #[test]
    fn paths_under_the_working_directory_match_relative_rules_too() {
        let mut s = ClaudeStream::new(rules(
            &["Edit(src/secret/**)"],
            &["Write(/etc/**)"],
            &["Edit(src/**)", "Read"],
        ));
        s.on_line(br#"{"type":"system","subtype":"init","cwd":"/work/repo/","session_id":"s"}"#);
        let decide = |s: &mut ClaudeStream, tool: &str, path: &str| -> (bool, String) {
            let line = can_use_tool("r", tool, json!({ "file_path": path }));
            match &s.on_line(&line)[0] {
                StreamAction::Permission {
                    allowed, reason, ..
                } => (*allowed, reason.clone()),
                other => panic!("{other:?}"),
            }
        };
        // Relative rules match a path under the working directory.
        assert_eq!(
            decide(&mut s, "Edit", "/work/repo/src/main.rs"),
            (true, "allowed by rule `Edit(src/**)`".to_owned())
        );
        // The stricter rule wins, whichever way it is written.
        let (allowed, reason) = decide(&mut s, "Edit", "/work/repo/src/secret/key.rs");
        assert!(
            !allowed && reason.contains("`Edit(src/secret/**)`"),
            "{reason}"
        );
        // Absolute rules still match absolute paths; a path outside the working directory is
        // only absolute; a sibling directory sharing the prefix is outside.
        let (allowed, reason) = decide(&mut s, "Write", "/etc/hosts");
        assert!(!allowed && reason.contains("`Write(/etc/**)`"), "{reason}");
        let (allowed, _) = decide(&mut s, "Edit", "/work/repo2/src/main.rs");
        assert!(!allowed);
        let (allowed, _) = decide(&mut s, "Edit", "/elsewhere/src/main.rs");
        assert!(!allowed);
        // Commands are not paths.
        assert_eq!(
            relative_subject("Bash", "/work/repo/x", Some("/work/repo")),
            None
        );
        assert_eq!(
            relative_subject("Read", "/work/repo/", Some("/work/repo")),
            None
        );
        assert_eq!(relative_subject("Read", "/work/repo/a", None), None);
    }

    #[test]
    fn api_retries_are_warnings() {
        let mut s = stream();
        let line = br#"{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"retry_delay_ms":1086,"error_status":500,"error":"server_error","session_id":"s","uuid":"u"}"#;
        assert_eq!(
            s.on_line(line),
            [StreamAction::Warning(
                "the model API answered 500 server_error; Claude Code tries again (retry 2 of \
                 10) in 1086 ms"
                    .to_owned()
            )]
        );
        let bare = br#"{"type":"system","subtype":"api_retry"}"#;
        assert_eq!(
            s.on_line(bare),
            [StreamAction::Warning(
                "the model API answered an error; Claude Code tries again".to_owned()
            )]
        );
        assert_eq!(s.outcome(), StreamOutcome::default());
    }

    #[test]
    fn other_system_events_and_unknown_types_are_kept_raw() {
        let mut s = stream();
        for line in [
            r#"{"type":"system","subtype":"compact_boundary","session_id":"s"}"#,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed"}}"#,
            r#"{"no_type":true}"#,
            r#"{"type":"system","subtype":"init"}"#,
        ] {
            assert_eq!(
                s.on_line(line.as_bytes()),
                [StreamAction::Unknown {
                    raw: line.to_owned()
                }]
            );
        }
        assert_eq!(s.outcome(), StreamOutcome::default());
    }

    #[test]
    fn assistant_text_and_tool_use_become_actions() {
        let mut s = stream();
        let line = json!({
            "type": "assistant",
            "message": {
                "id": "msg_1", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    { "type": "thinking", "thinking": "hmm", "signature": "x" },
                    { "type": "text", "text": "Running the tests." },
                    { "type": "text", "text": "  " },
                    { "type": "tool_use", "id": "toolu_1", "name": "Bash",
                      "input": { "command": "cargo test\n  --workspace", "description": "Run tests" } },
                    { "type": "tool_use", "id": "toolu_2", "name": "TodoWrite",
                      "input": { "todos": [] } },
                ],
            },
            "session_id": "s-1",
        });
        assert_eq!(
            s.on_line(line.to_string().as_bytes()),
            [
                StreamAction::Text("Running the tests.".to_owned()),
                StreamAction::ToolUse {
                    name: "Bash".to_owned(),
                    summary: "cargo test --workspace".to_owned()
                },
                StreamAction::ToolUse {
                    name: "TodoWrite".to_owned(),
                    summary: r#"{"todos":[]}"#.to_owned()
                },
            ]
        );
        // Missing or odd content is not an error.
        assert!(s.on_line(br#"{"type":"assistant"}"#).is_empty());
        assert!(
            s.on_line(br#"{"type":"assistant","message":{"content":"plain"}}"#)
                .is_empty()
        );
    }

    #[test]
    fn tool_results_become_actions() {
        let mut s = stream();
        let line = json!({
            "type": "user",
            "message": { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "t1", "content": "ok\n12 passed", "is_error": false },
                { "type": "tool_result", "tool_use_id": "t2",
                  "content": [{ "type": "text", "text": "no such file" }], "is_error": true },
                { "type": "tool_result", "tool_use_id": "t3" },
            ]},
        });
        assert_eq!(
            s.on_line(line.to_string().as_bytes()),
            [
                StreamAction::ToolResult {
                    summary: "ok 12 passed".to_owned(),
                    is_error: false
                },
                StreamAction::ToolResult {
                    summary: "no such file".to_owned(),
                    is_error: true
                },
                StreamAction::ToolResult {
                    summary: String::new(),
                    is_error: false
                },
            ]
        );
    }

    #[test]
    fn a_success_result_gives_usage_cost_and_closes_input_once() {
        let mut s = stream();
        let line = json!({
            "type": "result", "subtype": "success", "is_error": false,
            "duration_ms": 9000, "duration_api_ms": 8000, "num_turns": 4,
            "result": "All tests pass.", "session_id": "s-2", "total_cost_usd": 0.0421,
            "usage": { "input_tokens": 120, "cache_creation_input_tokens": 3000,
                       "cache_read_input_tokens": 15000, "output_tokens": 800 },
            "permission_denials": [],
        })
        .to_string();
        let usage = Usage {
            input_tokens: 18_120,
            cached_input_tokens: 15_000,
            output_tokens: 800,
            cost_usd: Some(0.0421),
        };
        assert_eq!(
            s.on_line(line.as_bytes()),
            [StreamAction::Usage(usage), StreamAction::CloseInput]
        );
        assert_eq!(
            s.outcome(),
            StreamOutcome {
                session: Some("s-2".to_owned()),
                model: None,
                success: Some(true),
                summary: Some("All tests pass.".to_owned()),
                error: None,
                num_turns: Some(4),
                usage,
                permission_denials: Vec::new(),
            }
        );
        // A second result updates the outcome but does not close the input again.
        assert_eq!(s.on_line(line.as_bytes()), [StreamAction::Usage(usage)]);
    }

    #[test]
    fn a_final_message_of_several_text_blocks_is_the_summary_whole() {
        // Claude Code 2.1.332 streams each block of a message as an event of its own, the
        // message's id repeated, and its result holds only the last block.
        let block = |id: &str, text: &str| {
            json!({"type": "assistant", "message": {"id": id, "role": "assistant",
                   "content": [{"type": "text", "text": text}]}})
            .to_string()
        };
        let result = |text: &str| {
            json!({"type": "result", "subtype": "success", "is_error": false,
                   "result": text, "session_id": "s"})
            .to_string()
        };
        let mut s = stream();
        for line in [
            block("msg_1", "Let me look around."),
            block("msg_2", "Why the plan is so."),
            block("msg_2", "```json\n{}\n```"),
            block("msg_2", "Ask for changes."),
            result("Ask for changes."),
        ] {
            s.on_line(line.as_bytes());
        }
        assert_eq!(
            s.outcome().summary.as_deref(),
            Some("Why the plan is so.\n\n```json\n{}\n```\n\nAsk for changes.")
        );

        // A result that is not the last block stands; so does one of a single block.
        let mut s = stream();
        for line in [
            block("msg_1", "One."),
            block("msg_1", "Two."),
            result("Something else."),
        ] {
            s.on_line(line.as_bytes());
        }
        assert_eq!(s.outcome().summary.as_deref(), Some("Something else."));
        let mut s = stream();
        for line in [
            block("msg_1", "One."),
            block("msg_2", "Two."),
            result("Two."),
        ] {
            s.on_line(line.as_bytes());
        }
        assert_eq!(s.outcome().summary.as_deref(), Some("Two."));

        // A run that ends without a result text: the newest message, whole; blocks without
        // a message id stand alone.
        let mut s = stream();
        for line in [block("msg_1", "One."), block("msg_1", "Two.")] {
            s.on_line(line.as_bytes());
        }
        s.on_line(br#"{"type":"result","subtype":"error_max_turns","is_error":true}"#);
        assert_eq!(s.outcome().summary.as_deref(), Some("One.\n\nTwo."));
        let mut s = stream();
        s.on_line(br#"{"type":"assistant","message":{"content":[{"type":"text","text":"A."}]}}"#);
        s.on_line(br#"{"type":"assistant","message":{"content":[{"type":"text","text":"B."}]}}"#);
        s.on_line(br#"{"type":"result","subtype":"success","is_error":false}"#);
        assert_eq!(s.outcome().summary.as_deref(), Some("B."));
    }

    #[test]
    fn permission_denials_of_the_result_are_kept_as_tool_and_subject() {
        let mut s = stream();
        let line = json!({
            "type": "result", "subtype": "success", "is_error": false,
            "result": "Done, but I could not run the tests.", "session_id": "s-3",
            "permission_denials": [
                {"tool_name": "Bash", "tool_use_id": "toolu_1",
                 "tool_input": {"command": "cargo test", "description": "Run tests"}},
                {"tool_name": "Write", "tool_use_id": "toolu_2",
                 "tool_input": {"file_path": "/etc/hosts", "content": "x"}},
                {"tool_name": "TodoWrite", "tool_use_id": "toolu_3", "tool_input": {}}
            ],
        })
        .to_string();
        s.on_line(line.as_bytes());
        assert_eq!(
            s.outcome().permission_denials,
            ["Bash(cargo test)", "Write(/etc/hosts)", "TodoWrite"]
        );
    }

    #[test]
    fn error_results_say_what_went_wrong() {
        let mut s = stream();
        s.on_line(br#"{"type":"assistant","message":{"content":[{"type":"text","text":"Still working."}]}}"#);
        let line = br#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"session_id":"s","total_cost_usd":0.5,"usage":{"input_tokens":1,"output_tokens":2}}"#;
        s.on_line(line);
        let o = s.outcome();
        assert_eq!(o.success, Some(false));
        assert_eq!(
            o.error.as_deref(),
            Some("Claude Code stopped at its maximum number of turns")
        );
        assert_eq!(o.summary.as_deref(), Some("Still working."));
        assert_eq!(o.usage.cost_usd, Some(0.5));
        assert_eq!(o.usage.input_tokens, 1);

        let mut s = stream();
        s.on_line(br#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["boom","", "bang"]}"#);
        assert_eq!(
            s.outcome().error.as_deref(),
            Some("Claude Code failed during execution: boom; bang")
        );
        assert_eq!(s.outcome().num_turns, None);
        assert_eq!(s.outcome().usage, Usage::default());

        let mut s = stream();
        s.on_line(br#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 overloaded"}"#);
        assert_eq!(s.outcome().success, Some(false));
        assert_eq!(
            s.outcome().error.as_deref(),
            Some("Claude Code reported an error: API Error: 529 overloaded")
        );
        assert_eq!(s.outcome().summary, None);
    }

    #[test]
    fn an_allowed_tool_is_answered_with_its_input() {
        let mut s = stream();
        let input = json!({ "command": "cargo test -p x", "description": "tests" });
        let actions = s.on_line(&can_use_tool("req-1", "Bash", input.clone()));
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[0],
            StreamAction::Permission {
                tool: "Bash".to_owned(),
                subject: Some("cargo test -p x".to_owned()),
                allowed: true,
                reason: "allowed by rule `Bash(cargo test:*)`".to_owned(),
            }
        );
        assert_eq!(
            written(&actions[1]),
            json!({
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": "req-1",
                    "response": { "behavior": "allow", "updatedInput": input },
                },
            })
        );
        // The exact bytes the test double looks for.
        let StreamAction::Write(bytes) = &actions[1] else {
            unreachable!()
        };
        assert!(
            String::from_utf8_lossy(bytes).contains(r#""behavior":"allow""#),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn a_denied_tool_is_answered_with_the_rule() {
        let mut s = stream();
        let actions = s.on_line(&can_use_tool(
            "req-2",
            "Bash",
            json!({ "command": "rm -rf target" }),
        ));
        let message = "MAOS: `Bash(rm -rf target)` is denied by rule `Bash(rm:*)` in the agent's \
                       deny list";
        assert_eq!(
            actions[0],
            StreamAction::Permission {
                tool: "Bash".to_owned(),
                subject: Some("rm -rf target".to_owned()),
                allowed: false,
                reason: message.to_owned(),
            }
        );
        assert_eq!(
            written(&actions[1])["response"],
            json!({
                "subtype": "success",
                "request_id": "req-2",
                "response": { "behavior": "deny", "message": message },
            })
        );
    }

    #[test]
    fn an_ask_is_denied_until_approvals_exist() {
        let mut s = stream();
        let actions = s.on_line(&can_use_tool(
            "req-3",
            "Write",
            json!({ "file_path": "/etc/hosts", "content": "x" }),
        ));
        let message = "MAOS: `Write(/etc/hosts)` needs a person's approval (rule \
                       `Write(/etc/**)` in the ask list); approvals are not available yet, so it \
                       is denied";
        assert_eq!(
            written(&actions[1])["response"]["response"],
            json!({ "behavior": "deny", "message": message })
        );
        // No rule at all: also a person's call.
        let actions = s.on_line(&can_use_tool(
            "req-4",
            "mcp__github__create_issue",
            json!({}),
        ));
        let message = "MAOS: `mcp__github__create_issue` needs a person's approval (no rule in \
                       the agent's permissions allows it); approvals are not available yet, so \
                       it is denied";
        assert_eq!(
            actions[0],
            StreamAction::Permission {
                tool: "mcp__github__create_issue".to_owned(),
                subject: None,
                allowed: false,
                reason: message.to_owned(),
            }
        );
        assert_eq!(
            written(&actions[1])["response"]["request_id"],
            json!("req-4")
        );
    }

    #[test]
    fn web_fetch_is_decided_by_domain() {
        let mut s = stream();
        let allowed = s.on_line(&can_use_tool(
            "r",
            "WebFetch",
            json!({ "url": "https://user@Docs.RS:443/serde/latest?x#y", "prompt": "p" }),
        ));
        assert!(matches!(
            &allowed[0],
            StreamAction::Permission { allowed: true, subject: Some(s), .. } if s == "domain:docs.rs"
        ));
        let asked = s.on_line(&can_use_tool(
            "r",
            "WebFetch",
            json!({ "url": "https://evil.example/docs.rs" }),
        ));
        assert!(matches!(
            &asked[0],
            StreamAction::Permission { allowed: false, subject: Some(s), .. } if s == "domain:evil.example"
        ));
    }

    #[test]
    fn subjects_per_tool() {
        let subject = |tool: &str, input: Value| permission_subject(tool, &input);
        assert_eq!(
            subject("Bash", json!({"command": "ls"})).as_deref(),
            Some("ls")
        );
        for tool in ["Read", "Write", "Edit", "MultiEdit"] {
            assert_eq!(
                subject(tool, json!({"file_path": "/a/b"})).as_deref(),
                Some("/a/b")
            );
        }
        assert_eq!(
            subject("NotebookEdit", json!({"notebook_path": "/n.ipynb"})).as_deref(),
            Some("/n.ipynb")
        );
        assert_eq!(
            subject("Grep", json!({"pattern": "fn main", "path": "src"})).as_deref(),
            Some("src")
        );
        assert_eq!(
            subject("Glob", json!({"pattern": "**/*.rs"})).as_deref(),
            Some("**/*.rs")
        );
        assert_eq!(
            subject("WebFetch", json!({"url": "http://[::1]:8080/x"})).as_deref(),
            Some("domain:::1")
        );
        assert_eq!(subject("WebFetch", json!({"url": "not a url"})), None);
        assert_eq!(subject("Bash", json!({"command": 3})), None);
        assert_eq!(subject("Bash", json!(null)), None);
        assert_eq!(subject("Task", json!({"prompt": "x"})), None);
    }

    #[test]
    fn a_rule_with_a_pattern_does_not_cover_a_call_without_subject() {
        // `Bash(**)` would allow every command, but a Bash call without a command is unknown
        // ground: a person decides.
        let mut s = ClaudeStream::new(rules(&[], &[], &["Bash(**)"]));
        let actions = s.on_line(&can_use_tool("r", "Bash", json!({})));
        assert!(matches!(
            &actions[0],
            StreamAction::Permission {
                allowed: false,
                subject: None,
                ..
            }
        ));
    }

    #[test]
    fn other_control_requests_are_refused_with_an_error_response() {
        let mut s = stream();
        let line = r#"{"type":"control_request","request_id":"r9","request":{"subtype":"hook_callback","callback_id":"h"}}"#;
        let actions = s.on_line(line.as_bytes());
        assert_eq!(
            actions[0],
            StreamAction::Unknown {
                raw: line.to_owned()
            }
        );
        assert_eq!(
            written(&actions[1]),
            json!({
                "type": "control_response",
                "response": {
                    "subtype": "error",
                    "request_id": "r9",
                    "error": "MAOS does not handle control requests of subtype hook_callback",
                },
            })
        );
        let no_id = br#"{"type":"control_request","request":{"subtype":"can_use_tool"}}"#;
        assert!(matches!(
            &s.on_line(no_id)[..],
            [StreamAction::Malformed { error, .. }] if error.contains("request_id")
        ));
    }

    #[test]
    fn protocol_noise_and_bad_lines_never_crash() {
        let mut s = stream();
        for quiet in [
            &br#"{"type":"control_response","response":{"subtype":"success","request_id":"x"}}"#[..],
            br#"{"type":"control_cancel_request","request_id":"x"}"#,
            br#"{"type":"stream_event","uuid":"u","session_id":"s","event":{}}"#,
            b"",
            b"   \r",
        ] {
            assert!(s.on_line(quiet).is_empty());
        }
        assert!(matches!(
            &s.on_line(b"\xff\xfe{")[..],
            [StreamAction::Malformed { raw, .. }] if raw == "\u{fffd}\u{fffd}{"
        ));
        assert!(matches!(
            &s.on_line(b"[SandboxDebug] hello")[..],
            [StreamAction::Malformed { raw, .. }] if raw == "[SandboxDebug] hello"
        ));
        assert_eq!(s.outcome(), StreamOutcome::default());
    }

    #[test]
    fn permission_rules_deserialize_from_json_lists() {
        let r: PermissionRules =
            serde_json::from_str(r#"{"deny":["Bash(rm:*)"],"allow":["Read"]}"#).unwrap();
        assert_eq!(r.deny[0].as_str(), "Bash(rm:*)");
        assert!(r.ask.is_empty());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"deny":["Bash(rm:*)"],"ask":[],"allow":["Read"]}"#
        );
        let e = serde_json::from_str::<PermissionRules>(r#"{"deny":["Bash(rm"]}"#).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
        assert!(serde_json::from_str::<PermissionRules>(r#"{"alow":[]}"#).is_err());
    }
}
