//! Scripted fakes of the model APIs the real agent CLIs call, on 127.0.0.1: the Anthropic
//! Messages API (`POST /v1/messages`, streamed as server-sent events) for Claude Code, and the
//! OpenAI Responses API (`POST /v1/responses`, streamed) for Codex. Each answers its model
//! requests from a script, one [`Reply`] per request in order, and records every request it got
//! (unknown ones are answered 404 and recorded too), so a test can tell what the CLI sent.
//!
//! The event shapes: Anthropic's streaming reference (`message_start`, `content_block_start`,
//! `content_block_delta` with `text_delta` / `input_json_delta`, `content_block_stop`,
//! `message_delta` with `stop_reason` and the output tokens, `message_stop`); OpenAI's Responses
//! streaming events as Codex reads them (`codex-rs/codex-api`'s SSE parser: `response.created`,
//! `response.output_item.done` with `message` and `function_call` items,
//! `response.completed` with `usage`).
//!
//! `maos-cli`'s black-box tests include this file too (`tests/cli/real_cli.rs`, which shares it
//! with `tests/cli/planning_agents.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

/// Tokens one model response reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tokens {
    /// Uncached prompt tokens (for OpenAI: all prompt tokens, cached ones included).
    pub(crate) input: u64,
    /// Prompt tokens read from the cache.
    pub(crate) cached: u64,
    pub(crate) output: u64,
}

/// One block of a scripted model response.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    Text(String),
    /// A tool call: Claude Code's tool name and input (`Bash` with `command`, `Write` with
    /// `file_path` and `content`...), or Codex's function (`exec_command` with `cmd`).
    Tool {
        name: String,
        input: Value,
    },
}

/// The fake's answer to one model request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A streamed response with these blocks and tokens.
    Stream { blocks: Vec<Block>, tokens: Tokens },
    /// An HTTP error with a JSON body in the API's error shape.
    Error { status: u16, message: String },
}

/// A text reply.
pub(crate) fn text(t: &str, tokens: Tokens) -> Reply {
    Reply::Stream {
        blocks: vec![Block::Text(t.to_owned())],
        tokens,
    }
}

/// A reply that calls one tool.
pub(crate) fn tool(name: &str, input: Value, tokens: Tokens) -> Reply {
    Reply::Stream {
        blocks: vec![Block::Tool {
            name: name.to_owned(),
            input,
        }],
        tokens,
    }
}

/// Which API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Anthropic,
    OpenAi,
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The body as JSON (`Null` when it was empty or not JSON).
    pub(crate) body: Value,
}

impl Request {
    /// Whether it asks the model for the agent's next step (and so takes a scripted reply).
    /// Claude Code's side calls to the Messages API (a title, a summary: no tools) are not.
    fn is_model_call(&self, api: Api) -> bool {
        self.method == "POST"
            && match api {
                Api::Anthropic => {
                    self.is_messages_call()
                        && self.body["tools"].as_array().is_some_and(|t| !t.is_empty())
                }
                Api::OpenAi => self.path.split('?').next() == Some("/v1/responses"),
            }
    }

    fn is_messages_call(&self) -> bool {
        self.method == "POST" && self.path.split('?').next() == Some("/v1/messages")
    }

    /// The text of every user message in the request, each block on its own (Anthropic
    /// `messages`, OpenAI `input` items with the user role): the conversation the CLI sent.
    pub(crate) fn user_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        let turns = self.body["messages"].as_array().into_iter().flatten();
        let items = self.body["input"].as_array().into_iter().flatten();
        for m in turns.chain(items).filter(|m| m["role"] == "user") {
            match &m["content"] {
                Value::String(s) => out.push(s.clone()),
                Value::Array(blocks) => out.extend(
                    blocks
                        .iter()
                        .filter_map(|b| b["text"].as_str().map(str::to_owned)),
                ),
                _ => {}
            }
        }
        out
    }

    /// The text of every tool result in the request (Anthropic `tool_result` blocks, OpenAI
    /// `function_call_output` items): what the CLI sent back to the model.
    pub(crate) fn tool_results(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.body["messages"].as_array().into_iter().flatten() {
            for b in m["content"].as_array().into_iter().flatten() {
                if b["type"] == "tool_result" {
                    out.push(match &b["content"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
            }
        }
        for item in self.body["input"].as_array().into_iter().flatten() {
            if item["type"] == "function_call_output" {
                out.push(match &item["output"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
        }
        out
    }
}

struct State {
    script: Vec<Reply>,
    next: usize,
    requests: Vec<Request>,
}

/// A fake model API on 127.0.0.1; stops when dropped.
pub(crate) struct FakeApi {
    port: u16,
    api: Api,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeApi {
    /// A fake Anthropic Messages API answering with `script`.
    pub(crate) fn anthropic(script: Vec<Reply>) -> FakeApi {
        FakeApi::start(Api::Anthropic, script)
    }

    /// A fake OpenAI Responses API answering with `script`.
    pub(crate) fn openai(script: Vec<Reply>) -> FakeApi {
        FakeApi::start(Api::OpenAi, script)
    }

    fn start(api: Api, script: Vec<Reply>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            script,
            next: 0,
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                thread::spawn(move || serve(api, conn, &s));
            }
        });
        FakeApi {
            port,
            api,
            state,
            stop,
        }
    }

    /// The base URL to give the CLI (`ANTHROPIC_BASE_URL`, or a Codex provider's `base_url`).
    pub(crate) fn base_url(&self) -> String {
        match self.api {
            Api::Anthropic => format!("http://127.0.0.1:{}", self.port),
            Api::OpenAi => format!("http://127.0.0.1:{}/v1", self.port),
        }
    }

    /// Every request so far, in order.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The model requests so far (those that took a scripted reply, or found the script used
    /// up).
    pub(crate) fn model_calls(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_model_call(self.api))
            .collect()
    }

    /// The requests, one line each, for a failure message.
    pub(crate) fn describe(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let body = r.body.to_string();
                let cut: String = body.chars().take(300).collect();
                format!("{} {} {cut}\n", r.method, r.path)
            })
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one connection: reads one request, answers it, closes.
fn serve(api: Api, conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method,
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let reply = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        if request.is_model_call(api) {
            let reply = s.script.get(s.next).cloned();
            if reply.is_some() {
                s.next += 1;
            }
            Some(reply.unwrap_or(Reply::Error {
                status: 500,
                message: "the fake's script is used up".to_owned(),
            }))
        } else if api == Api::Anthropic && request.is_messages_call() {
            Some(text("(a side answer from the fake)", Tokens::default()))
        } else {
            None
        }
    };
    let model = request.body["model"].as_str().unwrap_or("fake-model");
    let (status, content_type, payload) = match reply {
        None => (
            404,
            "application/json",
            error_body(api, "not found in the fake").to_string(),
        ),
        Some(Reply::Error { status, message }) => (
            status,
            "application/json",
            error_body(api, &message).to_string(),
        ),
        Some(Reply::Stream { blocks, tokens })
            if api == Api::Anthropic && request.body["stream"] != json!(true) =>
        {
            let n = state.lock().unwrap().next;
            (
                200,
                "application/json",
                anthropic_message(model, n, &blocks, tokens).to_string(),
            )
        }
        Some(Reply::Stream { blocks, tokens }) => {
            let n = state.lock().unwrap().next;
            let events = match api {
                Api::Anthropic => anthropic_events(model, n, &blocks, tokens),
                Api::OpenAi => openai_events(n, &blocks, tokens),
            };
            (200, "text/event-stream", sse(&events))
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        payload.len()
    );
    let mut conn = conn;
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(payload.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

fn error_body(api: Api, message: &str) -> Value {
    match api {
        Api::Anthropic => json!({
            "type": "error",
            "error": { "type": "invalid_request_error", "message": message },
        }),
        Api::OpenAi => json!({
            "error": { "type": "invalid_request_error", "message": message, "code": null },
        }),
    }
}

/// Server-sent events: `event: <type>` and `data: <json>` for each.
fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or("message")
            )
        })
        .collect()
}

/// A Messages API response, not streamed.
fn anthropic_message(model: &str, n: usize, blocks: &[Block], tokens: Tokens) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Block::Text(t) => json!({ "type": "text", "text": t }),
            Block::Tool { name, input } => json!({
                "type": "tool_use", "id": format!("toolu_fake_{n}_{i}"), "name": name,
                "input": input,
            }),
        })
        .collect();
    let tool = blocks.iter().any(|b| matches!(b, Block::Tool { .. }));
    json!({
        "id": format!("msg_fake_{n}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": if tool { "tool_use" } else { "end_turn" },
        "stop_sequence": null,
        "usage": {
            "input_tokens": tokens.input,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": tokens.cached,
            "output_tokens": tokens.output,
        },
    })
}

/// A Messages API stream: the message, each block, the stop reason and usage.
fn anthropic_events(model: &str, n: usize, blocks: &[Block], tokens: Tokens) -> Vec<Value> {
    let mut events = vec![json!({
        "type": "message_start",
        "message": {
            "id": format!("msg_fake_{n}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {
                "input_tokens": tokens.input,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": tokens.cached,
                "output_tokens": 1,
            },
        },
    })];
    let mut stop_reason = "end_turn";
    for (i, block) in blocks.iter().enumerate() {
        match block {
            Block::Text(t) => {
                events.push(json!({
                    "type": "content_block_start", "index": i,
                    "content_block": { "type": "text", "text": "" },
                }));
                events.push(json!({
                    "type": "content_block_delta", "index": i,
                    "delta": { "type": "text_delta", "text": t },
                }));
            }
            Block::Tool { name, input } => {
                stop_reason = "tool_use";
                events.push(json!({
                    "type": "content_block_start", "index": i,
                    "content_block": {
                        "type": "tool_use", "id": format!("toolu_fake_{n}_{i}"),
                        "name": name, "input": {},
                    },
                }));
                events.push(json!({
                    "type": "content_block_delta", "index": i,
                    "delta": { "type": "input_json_delta", "partial_json": input.to_string() },
                }));
            }
        }
        events.push(json!({ "type": "content_block_stop", "index": i }));
    }
    events.push(json!({
        "type": "message_delta",
        "delta": { "stop_reason": stop_reason, "stop_sequence": null },
        "usage": { "output_tokens": tokens.output },
    }));
    events.push(json!({ "type": "message_stop" }));
    events
}

/// A Responses API stream: each output item, then the completed response with usage.
fn openai_events(n: usize, blocks: &[Block], tokens: Tokens) -> Vec<Value> {
    let id = format!("resp_fake_{n}");
    let mut events = vec![json!({
        "type": "response.created",
        "response": { "id": id, "status": "in_progress" },
    })];
    for (i, block) in blocks.iter().enumerate() {
        let item = match block {
            Block::Text(t) => {
                let item_id = format!("msg_fake_{n}_{i}");
                events.push(json!({
                    "type": "response.output_item.added", "output_index": i,
                    "item": { "type": "message", "role": "assistant", "id": item_id, "content": [] },
                }));
                events.push(json!({
                    "type": "response.output_text.delta", "output_index": i, "content_index": 0,
                    "item_id": item_id, "delta": t,
                }));
                json!({
                    "type": "message", "role": "assistant", "id": item_id,
                    "content": [{ "type": "output_text", "text": t, "annotations": [] }],
                })
            }
            Block::Tool { name, input } => json!({
                "type": "function_call", "id": format!("fc_fake_{n}_{i}"),
                "call_id": format!("call_fake_{n}_{i}"), "name": name,
                "arguments": input.to_string(),
            }),
        };
        events
            .push(json!({ "type": "response.output_item.done", "output_index": i, "item": item }));
    }
    events.push(json!({
        "type": "response.completed",
        "response": {
            "id": id,
            "status": "completed",
            "usage": {
                "input_tokens": tokens.input,
                "input_tokens_details": { "cached_tokens": tokens.cached },
                "output_tokens": tokens.output,
                "output_tokens_details": { "reasoning_tokens": 0 },
                "total_tokens": tokens.input + tokens.output,
            },
        },
    }));
    events
}
