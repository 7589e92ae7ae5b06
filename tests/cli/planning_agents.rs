//! Real adapters as planners, end to end through the daemon: the `openai` adapter (MAOS's own
//! model loop) against a fake OpenAI-compatible `/v1/chat/completions` endpoint on 127.0.0.1,
//! and the real Claude Code CLI against the scripted fake of the Anthropic API that
//! `maos-agents`' tests use. Each planner answers `maos plan` with a reason and a plan in a
//! fenced json block (an openai planner may first look at the repository with its tools); the
//! tests check what the planner was told, what became version 1 and that the answer reached the
//! plan checker whole (longer than an ordinary summary, a Claude Code message of several text
//! blocks), the problems sent back for a second round (a new conversation for openai, the same
//! session resumed for Claude Code), and the tokens and cost recorded for the planning task.
//! Only the daemon runs agents, so these tests do nothing in process; the Claude Code tests
//! skip (saying so) when the CLI is not installed, unless `MAOS_REQUIRE_AGENT_CLIS=1`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::real_cli::fakes;
use crate::support::{Env, in_process};

// ---- a fake OpenAI-compatible chat completions endpoint ----

/// A request the fake endpoint received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    method: String,
    path: String,
    authorization: Option<String>,
    pub(crate) body: Value,
}

impl Received {
    /// The text of every message of `role` in the request, in order.
    pub(crate) fn texts(&self, role: &str) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// The user's messages, joined.
    fn user_text(&self) -> String {
        self.texts("user").join("\n")
    }
}

struct ChatState {
    /// The answers to the chat completions requests, in order.
    replies: VecDeque<Value>,
    received: Vec<Received>,
}

/// A fake OpenAI-compatible endpoint on 127.0.0.1: answers each `POST /v1/chat/completions`
/// with the next scripted completion (HTTP 500 once the script is used up, anything else 404),
/// and records every request. Stops accepting when dropped. `tests/cli/mcp.rs` uses it too.
pub(crate) struct ChatFake {
    port: u16,
    state: Arc<Mutex<ChatState>>,
    stop: Arc<AtomicBool>,
}

impl ChatFake {
    pub(crate) fn start(replies: Vec<Value>) -> ChatFake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ChatState {
            replies: replies.into(),
            received: Vec::new(),
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
                thread::spawn(move || serve_chat(conn, &s));
            }
        });
        ChatFake { port, state, stop }
    }

    /// The endpoint up to `/v1`, as an agent's `base_url`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The chat completions requests so far, in order.
    pub(crate) fn chats(&self) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/chat/completions")
            .cloned()
            .collect()
    }

    /// Every request, one line each, for a failure message.
    pub(crate) fn describe(&self) -> String {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|r| {
                let body: String = r.body.to_string().chars().take(300).collect();
                format!("{} {} {body}\n", r.method, r.path)
            })
            .collect()
    }
}

impl Drop for ChatFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one connection: one request (its body sized by Content-Length or chunked), one
/// answer, then close.
fn serve_chat(conn: TcpStream, state: &Mutex<ChatState>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("").to_owned();
    let (mut length, mut chunked, mut authorization) = (0usize, false, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "authorization" => authorization = Some(value.to_owned()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            let mut chunk = vec![0u8; size + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
    }
    let request = Received {
        method,
        path,
        authorization,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (status, payload) = {
        let mut s = state.lock().unwrap();
        s.received.push(request.clone());
        if request.method == "POST" && request.path == "/v1/chat/completions" {
            match s.replies.pop_front() {
                Some(reply) => (200, reply),
                None => (
                    500,
                    json!({"error": {"message": "the fake's script is used up"}}),
                ),
            }
        } else {
            (404, json!({"error": {"message": "not found in the fake"}}))
        }
    };
    let payload = payload.to_string();
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Error" },
        payload.len()
    );
    let mut conn = conn;
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(payload.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// A chat completion: one assistant message holding `text` (no tool calls), with its usage.
pub(crate) fn completion(n: u32, text: &str, prompt: u64, cached: u64, completion: u64) -> Value {
    json!({
        "id": format!("chatcmpl-fake-{n}"),
        "object": "chat.completion",
        "created": 1_700_000_000 + n,
        "model": "gpt-fake",
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    })
}

/// A chat completion calling one tool (`arguments` as JSON), with a little usage.
pub(crate) fn tool_call(n: u32, name: &str, arguments: Value) -> Value {
    json!({
        "id": format!("chatcmpl-fake-{n}"),
        "object": "chat.completion",
        "created": 1_700_000_000 + n,
        "model": "gpt-fake",
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_{n}"),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments.to_string()},
                }],
            },
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    })
}

// ---- plans and answers ----

/// The reason each planner gives before its plan.
const REASON: &str = "The parser comes first, the command line builds on it, and the \
                      documentation waits for both.";

/// A good plan of three tasks needing `code`, with text that must arrive as it was written:
/// quotes, backslashes, non-ASCII letters, a line break and inline backticks in the prompts, and
/// long prompts, so that the answer is far longer than an ordinary attempt's summary keeps.
fn good_plan() -> Value {
    let long = "Keep every public function documented, with an example that compiles. ".repeat(40);
    json!({
        "goal": "Parse and print dates",
        "tasks": [
            {
                "id": "parser",
                "title": "Write the date parser",
                "prompt": format!(
                    "Write `parse(\"2026-12-07\")` in src/date.rs: it returns a Date or an \
                     error naming the bad part (a path like C:\\dates\\x is not a date).\n\
                     Accents stay: café, naïve, Łódź ✓. {long}"
                ),
                "capabilities": ["code"],
                "concerns": ["src/date.rs"],
                "verify": "cargo test date",
            },
            {
                "id": "cli",
                "title": "Print dates from the command line",
                "prompt": format!("Add `dates print <date>` in src/main.rs, using parse(). {long}"),
                "capabilities": ["code"],
                "depends_on": ["parser"],
                "concerns": ["src/main.rs"],
                "risk": "medium",
                "verify": "cargo test cli",
            },
            {
                "id": "docs",
                "title": "Document the dates command",
                "prompt": format!("Describe `dates print` in README.md. {long}"),
                "capabilities": ["code"],
                "depends_on": ["parser", "cli"],
                "concerns": ["README.md"],
                "verify": "true",
            },
        ],
    })
}

/// An answer: the reason, then `plan` in a fenced json block.
fn answer(plan: &Value) -> String {
    format!(
        "{REASON}\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(plan).unwrap()
    )
}

/// Asserts that every field the planner gave each task of `sent` arrived unchanged in the
/// version's plan `got` (which also holds the defaults MAOS applied), in the same order.
fn assert_tasks_intact(sent: &Value, got: &Value) {
    let (sent, got) = (
        sent["tasks"].as_array().unwrap(),
        got["tasks"].as_array().unwrap(),
    );
    assert_eq!(got.len(), sent.len(), "{got:#?}");
    for (s, g) in sent.iter().zip(got) {
        for (key, value) in s.as_object().unwrap() {
            assert_eq!(&g[key], value, "task {} key {key}: {g:#}", s["id"]);
        }
    }
}

/// Asserts that an attempt's summary is the planner's whole answer (but for the white space
/// around it), not the tail an ordinary attempt keeps.
fn assert_whole(summary: &Value, answer: &str) {
    let summary = summary.as_str().unwrap_or_default();
    assert!(
        summary.trim() == answer.trim(),
        "the summary is not the whole answer: {} of {} characters, starting {:?}",
        summary.chars().count(),
        answer.chars().count(),
        summary.chars().take(80).collect::<String>()
    );
}

/// A worker that offers `code` (the plans' tasks need it; nothing here runs them).
fn worker(env: &Env, dir: &std::path::Path) {
    let command = script(dir, "worker", "true\n");
    tiered_agent(env, "worker", "code", "tactical", 1, &command);
}

/// `maos plan GOAL --repo REPO --json`, bounded in time: its document, exit code and stderr.
fn plan(env: &Env, goal: &str, repo: &Repo) -> (Value, i32, String) {
    let run = env.step_bounded(&["plan", goal, "--repo", &repo.arg(), "--json"], None, &[]);
    let doc = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (doc, run.code, run.stderr)
}

// ---- the openai adapter ----

/// The API key the openai planner's variable holds (the fake checks it arrives).
const KEY: &str = "sk-fake-planner-key-0123456789";

#[test]
fn an_openai_planner_answers_with_a_plan_that_becomes_version_1() {
    if in_process() {
        return;
    }
    let sent = good_plan();
    let text = answer(&sent);
    assert!(
        text.chars().count() > 2 * maos_domain::task::SUMMARY_CHARS,
        "the answer must be longer than an ordinary summary keeps"
    );
    let fake = ChatFake::start(vec![completion(1, &text, 3000, 1000, 400)]);
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents.toml");
    std::fs::write(
        &agents,
        format!(
            r#"
[[agent]]
name = "gpt-planner"
adapter = "openai"
model = "gpt-fake"
base_url = "{}"
api_key_env = "MAOS_FAKE_OPENAI_KEY"
capabilities = ["plan"]
tier = "strategic"
timeout = "1m"
max_steps = 3
price = {{ input = "2", cached_input = "0.5", output = "10" }}
"#,
            fake.base_url()
        ),
    )
    .unwrap();
    // The command that starts the daemon gives it the environment the key is read from.
    let registered = env.maos_env(
        &[
            "agent",
            "register",
            "--from-file",
            agents.to_str().unwrap(),
            "--json",
        ],
        &[("MAOS_FAKE_OPENAI_KEY", KEY)],
    );
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    worker(&env, dir.path());
    let repo = Repo::new();

    let (doc, code, stderr) = plan(&env, "Parse and print dates", &repo);
    assert_eq!(code, 0, "{stderr}\n{doc:#}\n{}", fake.describe());
    assert_eq!(doc["orchestration"]["status"], "awaiting_plan_approval");
    assert_eq!(doc["orchestration"]["plan_version"], 1);
    let v = &doc["version"];
    assert_eq!(v["number"], 1);
    assert_eq!(v["origin"]["kind"], "planner");
    assert_eq!(v["origin"]["agent"], "gpt-planner");
    assert_eq!(v["origin"]["attempt"], 1);
    assert_eq!(v["rationale"], REASON);
    assert_tasks_intact(&sent, &v["plan"]);

    // The model was asked once, with the key, and told the brief: the goal, the agents, the
    // rules and the plan format.
    let chats = fake.chats();
    assert_eq!(chats.len(), 1, "{}", fake.describe());
    let request = &chats[0];
    assert_eq!(request.body["model"], "gpt-fake");
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let told = request.user_text();
    for part in [
        "Parse and print dates",
        "- gpt-planner (strategic tier",
        "- worker (tactical tier",
        "README.md",
        "\"$schema\"",
    ] {
        assert!(
            told.contains(part),
            "{part:?} missing from the brief:\n{told}"
        );
    }
    // What the model was told is the planning task's brief, as `plan brief` prints it.
    let o = doc["orchestration"]["id"].as_str().unwrap();
    let brief = env.step(&["plan", "brief", o]);
    assert_eq!(brief.code, 0, "{}", brief.stderr);
    assert!(
        told.contains(brief.stdout.trim()),
        "the model was not told the brief:\n{told}\n---\n{}",
        brief.stdout
    );

    // The planning task completed with the whole answer as its summary, and its tokens and
    // cost: 2,000 fresh input tokens at $2, 1,000 cached at $0.50 and 400 output at $10 per
    // million.
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = env.ok_json(&["task", "show", planning])["task"].clone();
    assert_eq!(t["state"], "completed", "{t:#}");
    let attempt = &t["attempts"][0];
    assert_whole(&attempt["summary"], &text);
    let usage = &attempt["usage"];
    assert_eq!(usage["input_tokens"], 3000, "{usage:#}");
    assert_eq!(usage["cached_input_tokens"], 1000, "{usage:#}");
    assert_eq!(usage["output_tokens"], 400, "{usage:#}");
    assert_eq!(usage["cost_usd"], "0.0085", "{usage:#}");
    assert_eq!(t["usage"]["cost_usd"], "0.0085", "{t:#}");
    assert_eq!(tasks_listed(&env), 1, "nothing runs before the approval");
    // The orchestration's summary counts the planning apart from its tasks' work.
    let status = env.ok_json(&["orchestrate", "status", o]);
    let summary = &status["summary"];
    assert_eq!(summary["planning_cost_usd"], "0.0085", "{status:#}");
    assert_eq!(summary["planning_input_tokens"], 3000, "{status:#}");
    assert_eq!(summary["cost_usd"], "0.00", "{status:#}");
}

#[test]
fn an_openai_planner_is_told_the_problems_of_round_1_and_fixes_them_in_round_2() {
    if in_process() {
        return;
    }
    let good = good_plan();
    let mut broken = good.clone();
    // An unknown key: a typo of `title`.
    let first = broken["tasks"][0].as_object_mut().unwrap();
    let title = first.remove("title").unwrap();
    first.insert("titel".to_owned(), title);
    let fake = ChatFake::start(vec![
        completion(1, &answer(&broken), 3000, 0, 300),
        completion(2, &answer(&good), 3500, 0, 350),
    ]);
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    // Registered with flags this time (no price: the tokens are recorded, at no cost).
    let base_url = fake.base_url();
    let registered = env.maos_env(
        &[
            "agent",
            "register",
            "gpt-planner",
            "--adapter",
            "openai",
            "--model",
            "gpt-fake",
            "--base-url",
            &base_url,
            "--api-key-env",
            "MAOS_FAKE_OPENAI_KEY",
            "--capability",
            "plan",
            "--tier",
            "strategic",
            "--timeout",
            "1m",
            "--json",
        ],
        &[("MAOS_FAKE_OPENAI_KEY", KEY)],
    );
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    worker(&env, dir.path());
    let repo = Repo::new();

    let (doc, code, stderr) = plan(&env, "Parse and print dates", &repo);
    assert_eq!(code, 0, "{stderr}\n{doc:#}\n{}", fake.describe());
    let v = &doc["version"];
    assert_eq!(v["number"], 1);
    assert_eq!(v["origin"]["agent"], "gpt-planner");
    assert_eq!(v["origin"]["attempt"], 2);
    assert_eq!(v["rationale"], REASON);
    assert_tasks_intact(&good, &v["plan"]);

    // Round 2 was a new conversation, told every problem of round 1 with its place.
    let chats = fake.chats();
    assert_eq!(chats.len(), 2, "{}", fake.describe());
    let (once, twice) = (chats[0].user_text(), chats[1].user_text());
    assert!(!once.contains("unknown key"), "{once}");
    for part in [
        "Parse and print dates",
        "unknown key",
        "titel",
        "did you mean",
        "has no title",
        "\"$schema\"",
    ] {
        assert!(
            twice.contains(part),
            "{part:?} missing from round 2:\n{twice}"
        );
    }

    // Two attempts, their tokens summed on the task.
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = env.ok_json(&["task", "show", planning])["task"].clone();
    assert_eq!(t["state"], "completed", "{t:#}");
    let attempts = t["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{t:#}");
    assert_eq!(attempts[0]["usage"]["input_tokens"], 3000, "{t:#}");
    assert_eq!(attempts[1]["usage"]["output_tokens"], 350, "{t:#}");
    assert_eq!(t["usage"]["input_tokens"], 6500, "{t:#}");
    assert_eq!(t["usage"]["output_tokens"], 650, "{t:#}");
    assert_eq!(t["usage"]["cost_usd"], "0.00", "{t:#}");
}

#[test]
fn an_openai_planner_may_look_at_the_repository_with_its_tools_before_it_answers() {
    if in_process() {
        return;
    }
    let sent = good_plan();
    let text = answer(&sent);
    let fake = ChatFake::start(vec![
        tool_call(1, "list_dir", json!({})),
        tool_call(2, "read_file", json!({"path": "README.md"})),
        completion(3, &text, 3000, 0, 400),
    ]);
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let base_url = fake.base_url();
    let registered = env.ok_json(&[
        "agent",
        "register",
        "gpt-planner",
        "--adapter",
        "openai",
        "--model",
        "gpt-fake",
        "--base-url",
        &base_url,
        "--capability",
        "plan",
        "--tier",
        "strategic",
    ]);
    assert_eq!(registered["agent"]["adapter"], "openai", "{registered:#}");
    worker(&env, dir.path());
    let repo = Repo::new();
    let head = repo.rev("HEAD");

    let (doc, code, stderr) = plan(&env, "Parse and print dates", &repo);
    assert_eq!(code, 0, "{stderr}\n{doc:#}\n{}", fake.describe());
    let v = &doc["version"];
    assert_eq!(v["origin"]["attempt"], 1);
    assert_eq!(v["rationale"], REASON);
    assert_tasks_intact(&sent, &v["plan"]);

    // Its tools worked in the planning task's worktree of the repository: the listing, then
    // the README, each sent back to the model; no key was configured, so none was sent.
    let chats = fake.chats();
    assert_eq!(chats.len(), 3, "{}", fake.describe());
    assert_eq!(chats[0].authorization, None);
    let listed = chats[1].texts("tool").join("\n");
    assert!(listed.contains("README.md"), "{listed}");
    let read = chats[2].texts("tool").join("\n");
    assert!(read.contains(README.trim()), "{read}");
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = env.ok_json(&["task", "show", planning])["task"].clone();
    assert_whole(&t["attempts"][0]["summary"], &text);
    assert_eq!(t["usage"]["input_tokens"], 3200, "{t:#}");
    assert_eq!(t["usage"]["output_tokens"], 420, "{t:#}");
    repo.assert_untouched(&head);
}

// ---- Claude Code ----

/// A data directory with a Claude Code planner (the real CLI, `bin`) whose model API is
/// `fake`, and a worker; the temporary directories it needs are kept with it.
struct ClaudeSetup {
    env: Env,
    _home: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl ClaudeSetup {
    fn new(bin: &std::path::Path, fake: &fakes::FakeApi) -> ClaudeSetup {
        let env = Env::new();
        let dir = tempfile::tempdir().unwrap();
        let home = crate::real_cli::register_claude(
            &env,
            dir.path(),
            bin,
            fake,
            "claude-planner",
            "capabilities = [\"plan\"]\ntier = \"strategic\"",
        );
        worker(&env, dir.path());
        ClaudeSetup {
            env,
            _home: home,
            _dir: dir,
        }
    }

    /// `maos plan` for `goal` in a fresh repository, expected to succeed: its document.
    fn plan_ok(&self, goal: &str, fake: &fakes::FakeApi) -> Value {
        let repo = Repo::new();
        let (doc, code, stderr) = plan(&self.env, goal, &repo);
        let logs = doc["record"][0]["task"]
            .as_str()
            .map(|t| self.env.maos(&["task", "logs", t]).stdout)
            .unwrap_or_default();
        assert_eq!(
            code,
            0,
            "{stderr}\n{doc:#}\nlogs:\n{logs}\nrequests:\n{}",
            fake.describe()
        );
        doc
    }
}

/// The real Claude Code CLI, or `None` (after saying why) when it is not installed.
fn claude() -> Option<std::path::PathBuf> {
    crate::real_cli::cli("MAOS_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
}

fn claude_tokens() -> fakes::Tokens {
    fakes::Tokens {
        input: 4000,
        cached: 0,
        output: 900,
    }
}

#[test]
fn claude_code_plans_against_its_fake_api_and_the_tasks_arrive_intact() {
    if in_process() {
        return;
    }
    let Some(bin) = claude() else {
        return;
    };
    let sent = good_plan();
    let text = answer(&sent);
    let fake = fakes::FakeApi::anthropic(vec![fakes::text(&text, claude_tokens())]);
    let setup = ClaudeSetup::new(&bin, &fake);
    let doc = setup.plan_ok("Parse and print dates", &fake);
    let v = &doc["version"];
    assert_eq!(v["number"], 1);
    assert_eq!(v["origin"]["kind"], "planner");
    assert_eq!(v["origin"]["agent"], "claude-planner");
    assert_eq!(v["origin"]["attempt"], 1);
    assert_eq!(v["rationale"], REASON);
    assert_tasks_intact(&sent, &v["plan"]);

    // Claude Code asked its model once for the plan, with the brief as the user's message.
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 1, "{}", fake.describe());
    let told = calls[0].user_texts().join("\n");
    for part in [
        "Parse and print dates",
        "- claude-planner (strategic tier",
        "\"$schema\"",
    ] {
        assert!(
            told.contains(part),
            "{part:?} missing from the brief:\n{told}"
        );
    }
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = setup.env.ok_json(&["task", "show", planning])["task"].clone();
    let attempt = &t["attempts"][0];
    assert_whole(&attempt["summary"], &text);
    assert_eq!(attempt["usage"]["input_tokens"], 4000, "{attempt:#}");
    assert_eq!(attempt["usage"]["output_tokens"], 900, "{attempt:#}");
}

#[test]
fn claude_codes_final_message_of_several_text_blocks_reaches_the_referee_whole() {
    if in_process() {
        return;
    }
    let Some(bin) = claude() else {
        return;
    };
    // The reason, the plan and a closing remark, each a text block of the final message.
    // Claude Code's result holds only the last block (the remark): without the whole message
    // the plan would be lost, every round (hence the same reply three times).
    let sent = good_plan();
    let fenced = format!(
        "```json\n{}\n```",
        serde_json::to_string_pretty(&sent).unwrap()
    );
    let remark = "Ask me if the order should change.";
    let reply = fakes::Reply::Stream {
        blocks: vec![
            fakes::Block::Text(REASON.to_owned()),
            fakes::Block::Text(fenced.clone()),
            fakes::Block::Text(remark.to_owned()),
        ],
        tokens: claude_tokens(),
    };
    let fake = fakes::FakeApi::anthropic(vec![reply.clone(), reply.clone(), reply]);
    let setup = ClaudeSetup::new(&bin, &fake);
    let doc = setup.plan_ok("Parse and print dates", &fake);
    let v = &doc["version"];
    assert_eq!(v["origin"]["agent"], "claude-planner");
    assert_eq!(v["origin"]["attempt"], 1, "{doc:#}");
    assert_eq!(v["rationale"], format!("{REASON}\n\n{remark}"));
    assert_tasks_intact(&sent, &v["plan"]);
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = setup.env.ok_json(&["task", "show", planning])["task"].clone();
    assert_whole(
        &t["attempts"][0]["summary"],
        &format!("{REASON}\n\n{fenced}\n\n{remark}"),
    );
}

#[test]
fn claude_code_resumes_its_session_for_round_2_and_is_told_the_problems() {
    if in_process() {
        return;
    }
    let Some(bin) = claude() else {
        return;
    };
    let good = good_plan();
    let mut broken = good.clone();
    let first = broken["tasks"][0].as_object_mut().unwrap();
    let title = first.remove("title").unwrap();
    first.insert("titel".to_owned(), title);
    let fake = fakes::FakeApi::anthropic(vec![
        fakes::text(&answer(&broken), claude_tokens()),
        fakes::text(&answer(&good), claude_tokens()),
    ]);
    let setup = ClaudeSetup::new(&bin, &fake);
    let doc = setup.plan_ok("Parse and print dates", &fake);
    let v = &doc["version"];
    assert_eq!(v["origin"]["agent"], "claude-planner");
    assert_eq!(v["origin"]["attempt"], 2, "{doc:#}");
    assert_eq!(v["rationale"], REASON);
    assert_tasks_intact(&good, &v["plan"]);

    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    let twice = calls[1].user_texts().join("\n");
    for part in ["unknown key", "titel", "did you mean"] {
        assert!(
            twice.contains(part),
            "{part:?} missing from round 2:\n{twice}"
        );
    }
    let planning = doc["record"][0]["task"].as_str().unwrap();
    let t = setup.env.ok_json(&["task", "show", planning])["task"].clone();
    let attempts = t["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{t:#}");
    // The second round went on with the first round's session.
    assert_eq!(attempts[0]["session"], attempts[1]["session"], "{t:#}");
    assert_eq!(t["usage"]["input_tokens"], 8000, "{t:#}");
}
