//! The built-in agent loop (`maos_agents::openai`) and its tools, against `ModelDouble`: a test
//! double of an OpenAI-compatible model endpoint, a real HTTP/1.1 server on 127.0.0.1 that
//! answers scripted chat completions and records every request it receives. One test talks to
//! a real endpoint, only when `MAOS_TEST_OPENAI_BASE_URL` is set.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use maos_agents::openai::{self, LoopError, LoopEvent, LoopOutcome, OpenAiConfig};
use maos_agents::report::Usage;
use maos_agents::tools::{self, Tools};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The test double of the model endpoint
// ---------------------------------------------------------------------------------------------

/// One scripted HTTP answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
    /// Extra header lines, each ending with `\r\n`.
    headers: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
            headers: String::new(),
        }
    }
}

/// A request the double received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn messages(&self) -> &Vec<Value> {
        self.body["messages"]
            .as_array()
            .expect("messages is an array")
    }

    /// The `role: "tool"` messages at the end of the conversation (answers to the last calls).
    fn last_tool_messages(&self) -> Vec<Value> {
        let mut tail: Vec<Value> = self
            .messages()
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .cloned()
            .collect();
        tail.reverse();
        tail
    }
}

/// A test double of an OpenAI-compatible model endpoint: answers each POST with the next
/// scripted reply (HTTP 500 "script exhausted" once there is none) and records the request.
struct ModelDouble {
    base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl ModelDouble {
    fn start(script: Vec<Reply>) -> ModelDouble {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        {
            let received = Arc::clone(&received);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let received = Arc::clone(&received);
                    let script = Arc::clone(&script);
                    thread::spawn(move || serve(stream, &received, &script));
                }
            });
        }
        ModelDouble { base_url, received }
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves one connection: one request, one reply, then close.
fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>, script: &Mutex<VecDeque<Reply>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        body.resize(len.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
    });
    let reply = script.lock().unwrap().pop_front().unwrap_or(Reply {
        status: 500,
        body: r#"{"error":{"message":"the test double's script is exhausted"}}"#.to_owned(),
        delay: Duration::ZERO,
        headers: String::new(),
    });
    thread::sleep(reply.delay);
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        reply.status,
        reply.body.len(),
        reply.headers,
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

fn usage_json(prompt: u64, completion: u64, cached: Option<u64>) -> Value {
    let mut usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    if let Some(cached) = cached {
        usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    usage
}

/// An answer calling tools: `(id, name, arguments as raw text)`.
fn calls(calls: &[(&str, &str, &str)], usage: Value) -> Reply {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": null, "tool_calls": tool_calls}}],
            "usage": usage,
        }),
    )
}

/// One call with arguments given as JSON.
fn call(id: &str, name: &str, args: Value) -> Reply {
    calls(&[(id, name, &args.to_string())], usage_json(10, 5, None))
}

/// A final answer.
fn answer(text: &str, usage: Value) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": usage,
        }),
    )
}

fn config(double: &ModelDouble) -> OpenAiConfig {
    let mut cfg = OpenAiConfig::new(&double.base_url, "test-model");
    cfg.max_steps = 10;
    cfg.command_timeout = Duration::from_secs(20);
    cfg.request_timeout = Duration::from_secs(20);
    cfg
}

fn run(
    cfg: &OpenAiConfig,
    workdir: &Path,
    prompt: &str,
) -> (Result<LoopOutcome, LoopError>, Vec<LoopEvent>) {
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let result = openai::converse(cfg, workdir, prompt, &stop, &mut |e| events.push(e));
    (result, events)
}

fn tool_results(events: &[LoopEvent]) -> Vec<(String, bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            LoopEvent::ToolResult { name, ok, summary } => {
                Some((name.clone(), *ok, summary.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Whether the process `pid` is gone (or a zombie, which is dead but not yet reaped by init).
fn process_is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                == Some('Z')
        }
    }
}

fn wait_dead(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if process_is_dead(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    process_is_dead(pid)
}

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

#[test]
fn a_run_writes_reads_runs_a_command_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        calls(
            &[(
                "call_w",
                "write_file",
                r#"{"path": "notes/hello.txt", "content": "hello from the model\n"}"#,
            )],
            usage_json(100, 20, Some(40)),
        ),
        calls(
            &[("call_r", "read_file", r#"{"path": "notes/hello.txt"}"#)],
            usage_json(150, 10, None),
        ),
        calls(
            &[
                (
                    "call_c",
                    "run_command",
                    r#"{"command": "cat notes/hello.txt; echo to-stderr >&2; exit 3"}"#,
                ),
                ("call_l", "list_dir", r#"{"path": "notes"}"#),
            ],
            usage_json(200, 30, Some(150)),
        ),
        answer(
            "Wrote notes/hello.txt and checked it.",
            usage_json(300, 15, Some(200)),
        ),
    ]);
    let mut cfg = config(&double);
    cfg.api_key = Some("sk-test-123".to_owned());
    cfg.temperature = Some(0.2);

    let (result, events) = run(&cfg, dir.path(), "Write a greeting into notes/hello.txt.");
    let outcome = result.unwrap();

    assert_eq!(outcome.summary, "Wrote notes/hello.txt and checked it.");
    assert_eq!(outcome.steps, 4);
    assert_eq!(
        outcome.usage,
        Usage {
            input_tokens: 750,
            cached_input_tokens: 390,
            output_tokens: 75,
            cost_usd: None
        }
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes/hello.txt")).unwrap(),
        "hello from the model\n"
    );

    let requests = double.requests();
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.header("authorization"), Some("Bearer sk-test-123"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body["model"], "test-model");
        assert_eq!(r.body["tool_choice"], "auto");
        assert_eq!(r.body["temperature"], json!(0.2));
        let tools: Vec<&str> = r.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["type"], "function");
                assert_eq!(t["function"]["parameters"]["type"], "object");
                t["function"]["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            tools,
            [
                "read_file",
                "write_file",
                "list_dir",
                "run_command",
                "git_diff"
            ]
        );
    }
    let first = requests[0].messages();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["role"], "system");
    assert!(
        first[0]["content"]
            .as_str()
            .unwrap()
            .contains("run_command")
    );
    assert_eq!(
        first[1],
        json!({"role": "user", "content": "Write a greeting into notes/hello.txt."})
    );

    // Step 2 sees the assistant's call echoed back and the tool's answer to it.
    let second = requests[1].messages();
    assert_eq!(second.len(), 4);
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["tool_calls"][0]["id"], "call_w");
    assert_eq!(second[2]["tool_calls"][0]["function"]["name"], "write_file");
    assert!(second[2]["tool_calls"][0]["function"]["arguments"].is_string());
    let wrote = requests[1].last_tool_messages();
    assert_eq!(wrote.len(), 1);
    assert_eq!(wrote[0]["tool_call_id"], "call_w");
    assert!(
        wrote[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("wrote notes/hello.txt"),
        "{wrote:?}"
    );

    let read = requests[2].last_tool_messages();
    assert_eq!(read[0]["tool_call_id"], "call_r");
    assert_eq!(read[0]["content"], "hello from the model\n");

    // Two calls in one answer: two tool messages, in the calls' order.
    let ran = requests[3].last_tool_messages();
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[0]["tool_call_id"], "call_c");
    let output = ran[0]["content"].as_str().unwrap();
    assert!(output.starts_with("exit code: 3\n"), "{output}");
    assert!(
        output.contains("hello from the model") && output.contains("to-stderr"),
        "{output}"
    );
    assert_eq!(ran[1]["tool_call_id"], "call_l");
    assert!(
        ran[1]["content"]
            .as_str()
            .unwrap()
            .contains("hello.txt (21 bytes)")
    );

    assert!(events.contains(&LoopEvent::FileWritten(PathBuf::from("notes/hello.txt"))));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, LoopEvent::Request { .. }))
            .count(),
        4
    );
    assert!(events.contains(&LoopEvent::Response {
        step: 1,
        usage: Usage {
            input_tokens: 100,
            cached_input_tokens: 40,
            output_tokens: 20,
            cost_usd: None
        },
        finish_reason: Some("tool_calls".to_owned()),
    }));
    let results = tool_results(&events);
    assert_eq!(
        results
            .iter()
            .map(|(n, ok, _)| (n.as_str(), *ok))
            .collect::<Vec<_>>(),
        [
            ("write_file", true),
            ("read_file", true),
            ("run_command", false),
            ("list_dir", true)
        ]
    );
    assert_eq!(
        events.last(),
        Some(&LoopEvent::Text(
            "Wrote notes/hello.txt and checked it.".to_owned()
        ))
    );
}

#[test]
fn paths_that_leave_the_working_directory_are_refused_and_the_outside_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(work.join("real")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    std::os::unix::fs::symlink(&outside, work.join("link")).unwrap();
    std::os::unix::fs::symlink(&secret, work.join("linkfile")).unwrap();
    std::os::unix::fs::symlink(outside.join("new.txt"), work.join("dangling")).unwrap();
    std::os::unix::fs::symlink(work.join("real"), work.join("inner")).unwrap();

    let secret_abs = secret.display().to_string();
    let refused: Vec<(&str, &str, Value)> = vec![
        (
            "c1",
            "write_file",
            json!({"path": "../outside/secret.txt", "content": "pwned"}),
        ),
        (
            "c2",
            "write_file",
            json!({"path": secret_abs, "content": "pwned"}),
        ),
        ("c3", "read_file", json!({"path": "link/secret.txt"})),
        (
            "c4",
            "write_file",
            json!({"path": "link/evil.txt", "content": "pwned"}),
        ),
        (
            "c5",
            "write_file",
            json!({"path": "linkfile", "content": "pwned"}),
        ),
        (
            "c6",
            "write_file",
            json!({"path": "dangling", "content": "pwned"}),
        ),
        (
            "c7",
            "write_file",
            json!({"path": "sub/../../evil.txt", "content": "pwned"}),
        ),
        ("c8", "list_dir", json!({"path": "link"})),
        ("c9", "read_file", json!({"path": "../outside/secret.txt"})),
    ];
    let allowed: Vec<(&str, &str, Value)> = vec![
        (
            "ok1",
            "write_file",
            json!({"path": "a/./b/../c.txt", "content": "fine"}),
        ),
        (
            "ok2",
            "write_file",
            json!({"path": "inner/f.txt", "content": "fine"}),
        ),
    ];
    let raw: Vec<(String, String, String)> = refused
        .iter()
        .chain(&allowed)
        .map(|(id, name, args)| ((*id).to_owned(), (*name).to_owned(), args.to_string()))
        .collect();
    let borrowed: Vec<(&str, &str, &str)> = raw
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let double = ModelDouble::start(vec![
        calls(&borrowed, usage_json(1, 1, None)),
        answer("done", usage_json(1, 1, None)),
    ]);

    let (result, events) = run(&config(&double), &work, "try to escape");
    assert_eq!(result.unwrap().summary, "done");

    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    let mut outside_entries: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside_entries.sort();
    assert_eq!(outside_entries, ["secret.txt"]);
    assert!(!tmp.path().join("evil.txt").exists());

    let answers = double.requests()[1].last_tool_messages();
    assert_eq!(answers.len(), refused.len() + allowed.len());
    let text = |i: usize| answers[i]["content"].as_str().unwrap().to_owned();
    assert_eq!(
        text(0),
        "error: path ../outside/secret.txt leaves the working directory"
    );
    assert_eq!(
        text(1),
        format!(
            "error: path {secret_abs} is absolute: give a path relative to the working directory"
        )
    );
    for i in [2, 3, 4, 5, 7] {
        assert!(
            text(i).starts_with("error: path ") && text(i).contains("through a symbolic link"),
            "{}",
            text(i)
        );
    }
    assert_eq!(
        text(6),
        "error: path sub/../../evil.txt leaves the working directory"
    );
    assert_eq!(
        text(8),
        "error: path ../outside/secret.txt leaves the working directory"
    );
    for i in 0..refused.len() {
        assert!(
            !text(i).contains("secret\n") && text(i) != "secret",
            "leaked: {}",
            text(i)
        );
        assert_eq!(answers[i]["tool_call_id"], refused[i].0);
    }
    let results = tool_results(&events);
    assert!(
        results[..refused.len()].iter().all(|(_, ok, _)| !ok),
        "{results:?}"
    );
    assert!(
        results[refused.len()..].iter().all(|(_, ok, _)| *ok),
        "{results:?}"
    );

    // What stays inside is allowed, and reported with symbolic links resolved.
    assert_eq!(
        std::fs::read_to_string(work.join("a/c.txt")).unwrap(),
        "fine"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("real/f.txt")).unwrap(),
        "fine"
    );
    let written: Vec<&LoopEvent> = events
        .iter()
        .filter(|e| matches!(e, LoopEvent::FileWritten(_)))
        .collect();
    assert_eq!(
        written,
        [
            &LoopEvent::FileWritten(PathBuf::from("a/c.txt")),
            &LoopEvent::FileWritten(PathBuf::from("real/f.txt"))
        ]
    );
}

#[test]
fn the_step_limit_ends_a_model_that_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let looping = || calls(&[("c", "list_dir", "{}")], usage_json(10, 2, Some(4)));
    let double = ModelDouble::start(vec![looping(), looping(), looping(), looping()]);
    let mut cfg = config(&double);
    cfg.max_steps = 3;

    let (result, events) = run(&cfg, dir.path(), "loop forever");
    let err = result.unwrap_err();

    assert!(
        matches!(err, LoopError::StepLimit { max_steps: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.usage(),
        Usage {
            input_tokens: 30,
            cached_input_tokens: 12,
            output_tokens: 6,
            cost_usd: None
        }
    );
    assert!(err.to_string().contains("raise max_steps"), "{err}");
    assert_eq!(double.requests().len(), 3);
    assert_eq!(tool_results(&events).len(), 3);
}

#[test]
fn http_401_is_an_api_error_with_the_servers_message_and_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![Reply::json(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-secret-abc.", "type": "invalid_request_error",
                         "code": "invalid_api_key"}}),
    )]);
    let mut cfg = config(&double);
    cfg.api_key = Some("sk-secret-abc".to_owned());

    let (result, _) = run(&cfg, dir.path(), "hi");
    let err = result.unwrap_err();

    match &err {
        LoopError::Api {
            status, message, ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Incorrect API key provided: <api key>.");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("HTTP 401") && shown.contains("check the API key"),
        "{shown}"
    );
    assert!(
        !shown.contains("sk-secret-abc") && !format!("{err:?}").contains("sk-secret-abc"),
        "{shown}"
    );
    assert!(!format!("{cfg:?}").contains("sk-secret-abc"));
}

#[test]
fn http_500_is_an_api_error_with_the_servers_message_and_the_usage_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        call("c1", "list_dir", json!({})),
        Reply {
            status: 500,
            body: "model runner crashed: out of memory".to_owned(),
            delay: Duration::ZERO,
            headers: String::new(),
        },
    ]);

    let (result, _) = run(&config(&double), dir.path(), "hi");
    let err = result.unwrap_err();

    match &err {
        LoopError::Api {
            status: 500,
            message,
            usage,
            ..
        } => {
            assert_eq!(message, "model runner crashed: out of memory");
            assert_eq!(usage.input_tokens, 10);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[test]
fn a_redirect_is_not_followed_but_reported_with_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut redirect = answer("should not be reached", usage_json(1, 1, None));
    redirect.status = 301;
    redirect.headers = "Location: https://api.example.com/v1/chat/completions\r\n".to_owned();
    let double = ModelDouble::start(vec![redirect, answer("followed", usage_json(1, 1, None))]);
    let mut cfg = config(&double);
    cfg.api_key = Some("sk-redirect".to_owned());

    let (result, _) = run(&cfg, dir.path(), "hi");
    let err = result.unwrap_err();

    assert!(matches!(err, LoopError::Api { status: 301, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("redirects to https://api.example.com/v1/chat/completions"),
        "{err}"
    );
    assert_eq!(double.requests().len(), 1);
}

#[test]
fn a_refused_connection_is_an_http_error_that_says_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut cfg = OpenAiConfig::new(format!("http://127.0.0.1:{port}/v1/"), "m");
    cfg.request_timeout = Duration::from_secs(5);

    let (result, events) = run(&cfg, dir.path(), "hi");
    let err = result.unwrap_err();

    assert!(matches!(err, LoopError::Http { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "http://127.0.0.1:{port}/v1/chat/completions refused the connection"
        )) && shown.contains("is the server running"),
        "{shown}"
    );
    assert_eq!(events, [LoopEvent::Request { step: 1 }]);
}

#[test]
fn a_model_slower_than_the_request_timeout_is_an_http_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow = answer("too late", usage_json(1, 1, None));
    slow.delay = Duration::from_secs(5);
    let double = ModelDouble::start(vec![slow]);
    let mut cfg = config(&double);
    cfg.request_timeout = Duration::from_millis(300);

    let started = Instant::now();
    let (result, _) = run(&cfg, dir.path(), "hi");
    let err = result.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, LoopError::Http { .. }), "{err:?}");
    assert!(
        err.to_string().contains("did not answer within 300ms")
            && err.to_string().contains("request_timeout"),
        "{err}"
    );
}

#[test]
fn a_bad_base_url_or_workdir_is_a_config_error_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (result, events) = run(
        &OpenAiConfig::new("localhost:11434/v1", "m"),
        dir.path(),
        "hi",
    );
    let err = result.unwrap_err();
    assert!(
        matches!(err, LoopError::Config { .. }) && err.to_string().contains("http://"),
        "{err}"
    );
    assert!(events.is_empty());

    let (result, _) = run(
        &OpenAiConfig::new("http://127.0.0.1:9/v1", "m"),
        &dir.path().join("missing"),
        "hi",
    );
    assert!(
        matches!(result, Err(LoopError::Config { .. })),
        "{result:?}"
    );
}

#[test]
fn a_non_json_answer_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![Reply {
        status: 200,
        body: "<html>welcome to nginx</html>".to_owned(),
        delay: Duration::ZERO,
        headers: String::new(),
    }]);
    let (result, _) = run(&config(&double), dir.path(), "hi");
    let err = result.unwrap_err();
    assert!(matches!(err, LoopError::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not JSON") && err.to_string().contains("welcome to nginx"),
        "{err}"
    );

    let double = ModelDouble::start(vec![Reply::json(
        200,
        json!({"object": "list", "data": []}),
    )]);
    let (result, _) = run(&config(&double), dir.path(), "hi");
    let err = result.unwrap_err();
    assert!(
        matches!(err, LoopError::Protocol { .. }) && err.to_string().contains("choices[0]"),
        "{err}"
    );
}

#[test]
fn arguments_that_are_not_json_get_a_tool_error_and_the_loop_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        calls(
            &[
                (
                    "bad",
                    "write_file",
                    r#"{"path": "x.txt", "content": "unterminated"#,
                ),
                ("array", "read_file", r#"["x.txt"]"#),
                ("missing", "write_file", r#"{"path": "x.txt"}"#),
                ("unknown", "delete_everything", "{}"),
            ],
            usage_json(5, 5, None),
        ),
        call(
            "good",
            "write_file",
            json!({"path": "x.txt", "content": "ok"}),
        ),
        answer("recovered", usage_json(5, 5, None)),
    ]);

    let (result, events) = run(&config(&double), dir.path(), "hi");
    assert_eq!(result.unwrap().summary, "recovered");

    let answers = double.requests()[1].last_tool_messages();
    let text = |i: usize| answers[i]["content"].as_str().unwrap().to_owned();
    assert!(
        text(0).starts_with("error: the arguments of write_file are not valid JSON"),
        "{}",
        text(0)
    );
    assert!(
        text(1).starts_with("error: the arguments of read_file must be a JSON object"),
        "{}",
        text(1)
    );
    assert_eq!(
        text(2),
        "error: write_file needs a string argument \"content\""
    );
    assert!(
        text(3).starts_with("error: there is no tool named \"delete_everything\""),
        "{}",
        text(3)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        "ok"
    );
    assert_eq!(
        tool_results(&events)
            .iter()
            .filter(|(_, ok, _)| !ok)
            .count(),
        4
    );
}

#[test]
fn lenient_answers_object_arguments_missing_ids_and_content_parts_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        Reply::json(
            200,
            json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "write_file", "arguments": {"path": "o.txt", "content": "obj"}}},
                               {"function": {"name": "git_diff", "arguments": ""}}]}}]}),
        ),
        Reply::json(
            200,
            json!({"choices": [{"finish_reason": "length", "message": {"role": "assistant",
                "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}]}}]}),
        ),
    ]);

    let (result, _) = run(&config(&double), dir.path(), "hi");
    let outcome = result.unwrap();

    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.txt")).unwrap(),
        "obj"
    );
    assert!(
        outcome
            .summary
            .starts_with("part one, part two\n\n[the model's answer was cut off"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.usage, Usage::default());
    let second = &double.requests()[1];
    let echoed = &second.messages()[2]["tool_calls"];
    assert_eq!(echoed[0]["id"], "call_1_1");
    assert_eq!(echoed[1]["id"], "call_1_2");
    assert_eq!(
        serde_json::from_str::<Value>(echoed[0]["function"]["arguments"].as_str().unwrap())
            .unwrap()["content"],
        "obj"
    );
    let answers = second.last_tool_messages();
    assert_eq!(answers[0]["tool_call_id"], "call_1_1");
    assert_eq!(answers[1]["tool_call_id"], "call_1_2");
    assert!(
        answers[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("error: the working directory is not a git repository")
    );
}

#[test]
fn a_content_filter_stop_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![Reply::json(
        200,
        json!({"choices": [{"finish_reason": "content_filter", "message": {"role": "assistant", "content": null}}],
               "usage": usage_json(7, 0, None)}),
    )]);
    let (result, _) = run(&config(&double), dir.path(), "hi");
    let err = result.unwrap_err();
    assert!(
        matches!(err, LoopError::Protocol { .. }) && err.to_string().contains("content_filter"),
        "{err}"
    );
    assert_eq!(err.usage().input_tokens, 7);
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        call(
            "slow",
            "run_command",
            json!({"command": "sleep 30 & echo $! > bg.pid; sleep 30"}),
        ),
        answer("gave up", usage_json(1, 1, None)),
    ]);
    let mut cfg = config(&double);
    cfg.command_timeout = Duration::from_secs(1);

    let started = Instant::now();
    let (result, events) = run(&cfg, dir.path(), "hi");
    let elapsed = started.elapsed();

    assert_eq!(result.unwrap().summary, "gave up");
    assert!(
        elapsed < Duration::from_secs(10),
        "the run took {elapsed:?}"
    );
    let answer = &double.requests()[1].last_tool_messages()[0];
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .starts_with("error: the command timed out after 1s"),
        "{answer}"
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_dead(pid, Duration::from_secs(3)),
        "the background sleep {pid} survived"
    );
    assert_eq!(tool_results(&events)[0].2, "timed out after 1s");
}

#[test]
fn run_command_kills_the_whole_group_of_sh_c_sleep_and_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let tools = Tools::new(dir.path(), Duration::from_millis(500)).unwrap();
    let stop = AtomicBool::new(false);

    let started = Instant::now();
    let out = tools.run_command("sleep 30 & sleep 30", &stop).unwrap();

    assert!(out.timed_out);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // Nothing is left whose command line is that of the children (checked through /proc).
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            (cwd == tools.root() && !process_is_dead(pid)).then_some(stat)
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "still running in the workdir: {survivors:?}"
    );
}

#[test]
fn background_processes_do_not_outlive_a_finished_command() {
    let dir = tempfile::tempdir().unwrap();
    let tools = Tools::new(dir.path(), Duration::from_secs(20)).unwrap();
    let stop = AtomicBool::new(false);

    let started = Instant::now();
    let out = tools.run_command("sleep 30 & echo $!", &stop).unwrap();

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for the background job",
        started.elapsed()
    );
    assert_eq!(out.exit_code, Some(0));
    let pid: u32 = out.output.trim().parse().unwrap();
    assert!(
        wait_dead(pid, Duration::from_secs(3)),
        "the background sleep {pid} survived"
    );
}

#[test]
fn long_command_output_keeps_its_head_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let tools = Tools::new(dir.path(), Duration::from_secs(20)).unwrap();
    let stop = AtomicBool::new(false);

    let out = tools
        .run_command(
            "echo FIRST; head -c 300000 /dev/zero | tr '\\0' x; echo; echo LAST",
            &stop,
        )
        .unwrap();

    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.total_bytes, 6 + 300_000 + 1 + 5);
    assert!(
        out.output.len() < tools::OUTPUT_CAP + 200,
        "{}",
        out.output.len()
    );
    assert!(out.output.starts_with("FIRST\n") && out.output.ends_with("LAST\n"));
    assert!(
        out.output
            .contains("bytes of output cut here; 300012 bytes in all")
    );
}

#[test]
fn commands_get_a_cleaned_environment_plus_the_configured_variables() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "cargo sets it for tests"
    );
    let tools = Tools::new(dir.path(), Duration::from_secs(20))
        .unwrap()
        .with_env(vec![("MAOS_TASK".to_owned(), "t-42".to_owned())]);
    let out = tools.run_command("env", &AtomicBool::new(false)).unwrap();
    assert!(out.output.contains("MAOS_TASK=t-42"), "{}", out.output);
    assert!(out.output.contains("PATH="), "{}", out.output);
    assert!(!out.output.contains("CARGO_MANIFEST_DIR"), "{}", out.output);
}

#[test]
fn stop_before_the_first_request_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![answer("never", usage_json(1, 1, None))]);
    let stop = AtomicBool::new(true);
    let result = openai::converse(&config(&double), dir.path(), "hi", &stop, &mut |_| {});
    assert!(
        matches!(result, Err(LoopError::Stopped { steps: 0, .. })),
        "{result:?}"
    );
    assert!(double.requests().is_empty());
}

#[test]
fn stop_during_a_slow_request_abandons_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut slow = answer("too late", usage_json(1, 1, None));
    slow.delay = Duration::from_secs(30);
    let double = ModelDouble::start(vec![slow]);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
        });
    }

    let started = Instant::now();
    let result = openai::converse(&config(&double), dir.path(), "hi", &stop, &mut |_| {});

    assert!(
        matches!(result, Err(LoopError::Stopped { steps: 1, .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn stop_during_a_command_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![call(
        "c",
        "run_command",
        json!({"command": "sleep 30"}),
    )]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut events = Vec::new();
    {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::SeqCst);
        });
    }
    let started = Instant::now();
    let result = openai::converse(&config(&double), dir.path(), "hi", &stop, &mut |e| {
        events.push(e)
    });

    assert!(
        matches!(result, Err(LoopError::Stopped { steps: 1, .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(events.last(), Some(LoopEvent::ToolCall { name, .. }) if name == "run_command"),
        "{events:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fenced code (models without tool calling)
// ---------------------------------------------------------------------------------------------

#[test]
fn fenced_code_mode_writes_the_named_blocks_in_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let text = "I added a binary and a library.\n\n\
                ```rust path=src/main.rs\nfn main() {\n    println!(\"hi\");\n}\n```\n\n\
                ```src/lib.rs\npub fn one() -> u32 {\n    1\n}\n```\n\n\
                Run it with:\n\n```sh\ncargo run\n```\n\n\
                ```text path=../escape.txt\nnope\n```\n";
    let double = ModelDouble::start(vec![answer(text, usage_json(40, 60, Some(8)))]);
    let mut cfg = config(&double);
    cfg.tool_calls = false;

    let (result, events) = run(&cfg, dir.path(), "Write a hello world.");
    let outcome = result.unwrap();

    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/main.rs")).unwrap(),
        "fn main() {\n    println!(\"hi\");\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/lib.rs")).unwrap(),
        "pub fn one() -> u32 {\n    1\n}\n"
    );
    assert!(!dir.path().parent().unwrap().join("escape.txt").exists());
    assert_eq!(outcome.steps, 1);
    assert_eq!(
        outcome.usage,
        Usage {
            input_tokens: 40,
            cached_input_tokens: 8,
            output_tokens: 60,
            cost_usd: None
        }
    );
    assert_eq!(
        outcome.summary,
        "I added a binary and a library.\n\nRun it with:\n\n```sh\ncargo run\n```"
    );

    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].body.get("tools").is_none() && requests[0].body.get("tool_choice").is_none()
    );
    assert!(
        requests[0].messages()[0]["content"]
            .as_str()
            .unwrap()
            .contains("path=src/main.rs")
    );
    let written: Vec<&LoopEvent> = events
        .iter()
        .filter(|e| matches!(e, LoopEvent::FileWritten(_)))
        .collect();
    assert_eq!(
        written,
        [
            &LoopEvent::FileWritten(PathBuf::from("src/main.rs")),
            &LoopEvent::FileWritten(PathBuf::from("src/lib.rs"))
        ]
    );
    let results = tool_results(&events);
    assert_eq!(results.len(), 3);
    assert!(
        !results[2].1 && results[2].2.contains("leaves the working directory"),
        "{results:?}"
    );
}

#[test]
fn fenced_blocks_parse_both_forms_longer_fences_and_skip_unclosed_ones() {
    let parsed = openai::parse_fenced_files(
        "Intro\n\
         ```python file=\"app/main.py\"\nprint(1)\n```\n\
         ````md README.md\n# Title\n```sh\nmake\n```\n````\n\
         ~~~ docs/notes.txt\ntilde\n~~~\n\
         ```rust\nnot a file\n```\n\
         ```Makefile\nall:\n```\n\
         ```config.toml\nkey = 1\n",
    );
    let files: Vec<(&str, &str)> = parsed
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("app/main.py", "print(1)\n"),
            ("README.md", "# Title\n```sh\nmake\n```\n"),
            ("docs/notes.txt", "tilde\n"),
        ]
    );
    assert_eq!(parsed.unclosed.as_deref(), Some("config.toml"));
    assert_eq!(
        parsed.prose,
        "Intro\n```rust\nnot a file\n```\n```Makefile\nall:\n```"
    );
}

// ---------------------------------------------------------------------------------------------
// The tools on their own
// ---------------------------------------------------------------------------------------------

#[test]
fn the_tool_definitions_are_json_schema_objects() {
    let defs = tools::definitions();
    let names: Vec<&str> = defs.iter().map(|d| d.name).collect();
    assert_eq!(names, tools::TOOL_NAMES);
    for def in &defs {
        assert_eq!(def.parameters["type"], "object", "{}", def.name);
        assert!(!def.description.is_empty());
        let required: Vec<&str> = def.parameters["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        for field in &required {
            assert!(
                def.parameters["properties"].get(*field).is_some(),
                "{} requires unknown {field}",
                def.name
            );
        }
        let expected: &[&str] = match def.name {
            "read_file" => &["path"],
            "write_file" => &["path", "content"],
            "run_command" => &["command"],
            _ => &[],
        };
        assert_eq!(required, expected, "{}", def.name);
        assert_eq!(def.openai_json()["function"]["name"], def.name);
    }
}

#[test]
fn git_diff_shows_changes_to_tracked_files_and_the_untracked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(dir.path().join("tracked.txt"), "old line\n").unwrap();
    git(&["add", "tracked.txt"]);
    git(&["commit", "-q", "-m", "init"]);
    std::fs::write(dir.path().join("tracked.txt"), "new line\n").unwrap();
    std::fs::write(dir.path().join("fresh.txt"), "x").unwrap();

    let tools = Tools::new(dir.path(), Duration::from_secs(20)).unwrap();
    let result = tools.call("git_diff", "{}", &AtomicBool::new(false));

    assert!(result.ok, "{}", result.content);
    assert!(
        result.content.contains("-old line\n+new line"),
        "{}",
        result.content
    );
    assert!(
        result.content.contains("untracked files:\nfresh.txt"),
        "{}",
        result.content
    );
}

#[test]
fn read_and_list_report_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("bin.dat"), [0u8, 1, 2]).unwrap();
    let tools = Tools::new(dir.path(), Duration::from_secs(20)).unwrap();
    let stop = AtomicBool::new(false);

    let missing = tools.call("read_file", r#"{"path": "nope.txt"}"#, &stop);
    assert!(
        !missing.ok && missing.content.starts_with("error: cannot read nope.txt:"),
        "{}",
        missing.content
    );
    let directory = tools.call("read_file", r#"{"path": "sub"}"#, &stop);
    assert_eq!(
        directory.content,
        "error: sub is a directory: use list_dir to see its entries"
    );
    let binary = tools.call("read_file", r#"{"path": "bin.dat"}"#, &stop);
    assert!(
        binary
            .content
            .starts_with("error: bin.dat is a binary file"),
        "{}",
        binary.content
    );
    let listing = tools.call("list_dir", "", &stop);
    assert_eq!(listing.content, "bin.dat (3 bytes)\nsub/");
    std::fs::write(dir.path().join("big.txt"), "y".repeat(100_000)).unwrap();
    let big = tools.call("read_file", r#"{"path": "big.txt"}"#, &stop);
    assert!(
        big.ok && big.content.starts_with(&"y".repeat(tools::READ_CAP)),
        "{}",
        big.summary
    );
    assert!(
        big.content.ends_with(
            "the file has 100000 bytes and read_file shows the first 65536; \
                                   use run_command with sed -n or grep to see the rest]"
        ),
        "{}",
        &big.content[65000..]
    );
    let empty = tools.call("write_file", r#"{"path": "", "content": "x"}"#, &stop);
    assert!(
        empty.content.starts_with("error: the path is empty"),
        "{}",
        empty.content
    );
}

// ---------------------------------------------------------------------------------------------
// A real endpoint, when one is configured
// ---------------------------------------------------------------------------------------------

/// Runs against a real OpenAI-compatible endpoint when `MAOS_TEST_OPENAI_BASE_URL` is set (with
/// `MAOS_TEST_OPENAI_MODEL`, and `MAOS_TEST_OPENAI_API_KEY` if the endpoint needs one;
/// `MAOS_TEST_OPENAI_TOOL_CALLS=false` for a model without tool calling).
#[test]
fn a_real_endpoint_writes_a_file_when_configured() {
    let Ok(base_url) = std::env::var("MAOS_TEST_OPENAI_BASE_URL") else {
        println!("MAOS_TEST_OPENAI_BASE_URL is not set: this test did nothing");
        return;
    };
    let model = std::env::var("MAOS_TEST_OPENAI_MODEL").expect("set MAOS_TEST_OPENAI_MODEL too");
    let mut cfg = OpenAiConfig::new(base_url, model);
    cfg.api_key = std::env::var("MAOS_TEST_OPENAI_API_KEY").ok();
    cfg.tool_calls = std::env::var("MAOS_TEST_OPENAI_TOOL_CALLS").map_or(true, |v| v != "false");
    cfg.max_steps = 8;
    cfg.command_timeout = Duration::from_secs(30);
    cfg.request_timeout = Duration::from_secs(300);
    cfg.temperature = Some(0.0);
    let dir = tempfile::tempdir().unwrap();

    let prompt = if cfg.tool_calls {
        "Create the file hello.txt containing exactly the word hello, check it with run_command `cat hello.txt`, \
         then answer with one sentence."
    } else {
        "Create the file hello.txt containing exactly the word hello."
    };
    let (result, events) = run(&cfg, dir.path(), prompt);
    for event in &events {
        println!("{event:?}");
    }
    let outcome = result.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "summary: {}\nsteps: {}, usage: {:?}",
        outcome.summary, outcome.steps, outcome.usage
    );

    let written =
        std::fs::read_to_string(dir.path().join("hello.txt")).expect("hello.txt was written");
    assert_eq!(written.trim(), "hello");
    assert!(
        outcome.usage.input_tokens > 0,
        "the endpoint reported no usage"
    );
}

// ---------------------------------------------------------------------------------------------
// Through the supervisor
// ---------------------------------------------------------------------------------------------

/// Processes alive (not zombies) whose environment names `task`.
fn alive_of(task: &str) -> Vec<u32> {
    let want = format!("MAOS_TASK_ID={task}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
                })
                .unwrap_or(true);
            !zombie
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

#[test]
fn what_a_models_command_leaves_behind_dies_with_its_attempt() {
    use crate::supervisor::support::{Env, agent};
    use maos_domain::{AdapterKind, TaskState};
    let marker = std::env::temp_dir().join(format!("maos-model-leaver-{}", std::process::id()));
    let double = ModelDouble::start(vec![
        call(
            "call_1",
            "run_command",
            json!({"command": format!("setsid sleep 600 & echo $! > {}; echo started", marker.display())}),
        ),
        answer("Started them.", usage_json(10, 5, None)),
    ]);
    let env = Env::with(|_| {});
    let mut model = agent("model", AdapterKind::Openai, None, &[]);
    model.settings.model = Some("test-model".to_owned());
    model.settings.base_url = Some(double.base_url.clone());
    env.register(model);
    let task = env.task("leave processes behind", |_| {});
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    // What the command left in a session of its own is gone with the attempt, and so is
    // anything else carrying the attempt's marker.
    let escapee: u32 = std::fs::read_to_string(&marker)
        .expect("the command did not run")
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&marker);
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| !r.trim_start().starts_with(['Z', 'X']))
            })
            .unwrap_or(false)
    };
    let id = task.id.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(escapee) || !alive_of(&id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "survivors: {escapee} ({}), {:?}",
            alive(escapee),
            alive_of(&id)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// One more turn (a lesson after failed attempts)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_follow_up_continues_the_conversation_in_one_request_without_running_tools() {
    let dir = tempfile::tempdir().unwrap();
    let double = ModelDouble::start(vec![
        call("c1", "list_dir", json!({})),
        answer("done", usage_json(20, 2, None)),
        // The model calls a tool anyway: it is not run, and its text is the answer.
        Reply::json(
            200,
            json!({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1,
                "model": "test-model",
                "choices": [{"index": 0, "finish_reason": "tool_calls",
                             "message": {"role": "assistant", "content": "Read the README first.",
                                         "tool_calls": [{"id": "x", "type": "function",
                                           "function": {"name": "write_file",
                                             "arguments": "{\"path\": \"sneaky.txt\", \"content\": \"x\"}"}}]}}],
                "usage": usage_json(30, 7, None),
            }),
        ),
    ]);
    let cfg = config(&double);
    let (first, _) = run(&cfg, dir.path(), "do the work");
    let first = first.unwrap();
    assert_eq!(first.summary, "done");
    // The transcript ends with the final answer.
    let last = first.transcript.last().unwrap();
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["content"], "done");

    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let lesson = openai::follow_up(
        &cfg,
        dir.path(),
        &first.transcript,
        "What is the lesson?",
        &stop,
        &mut |e| events.push(e),
    )
    .unwrap();
    assert_eq!(lesson.summary, "Read the README first.");
    assert_eq!(lesson.steps, 1);
    assert_eq!(lesson.usage.input_tokens, 30, "only the turn's own usage");
    assert!(!dir.path().join("sneaky.txt").exists(), "no tool ran");
    assert!(tool_results(&events).is_empty());

    let requests = double.requests();
    assert_eq!(requests.len(), 3);
    let asked = &requests[2];
    assert_eq!(asked.body["tool_choice"], "none");
    let messages = asked.messages();
    assert_eq!(&messages[..messages.len() - 1], &first.transcript[..]);
    assert_eq!(
        messages.last().unwrap(),
        &json!({"role": "user", "content": "What is the lesson?"})
    );
}

#[test]
fn a_model_agent_that_succeeds_after_a_failure_gives_its_lesson_in_one_more_turn() {
    use maos_application::{
        CreateOrchestration, CreatePlan, CreateTask, MaosApi, MemoryFilter, MemoryPage, PlanTask,
    };
    use maos_domain::{AdapterKind, MaxAttempts, MemoryScope, Provenance, TaskState, Title};

    use crate::supervisor::support::{Env, agent};

    let double = ModelDouble::start(vec![
        // Attempt 1: the endpoint fails.
        Reply::json(500, json!({"error": {"message": "overloaded"}})),
        // Attempt 2: done, then the lesson.
        answer("done", usage_json(20, 2, None)),
        answer(
            "Retry the endpoint before giving up.",
            usage_json(25, 6, None),
        ),
    ]);
    let env = Env::new();
    let mut model = agent("model", AdapterKind::Openai, None, &[]);
    model.settings.base_url = Some(double.base_url.clone());
    model.settings.model = Some("test-model".to_owned());
    env.register(model);
    let mut task = CreateTask::titled(Title::parse("Summarise").unwrap());
    task.max_attempts = MaxAttempts::new(3).unwrap();
    task.lessons = true;
    let made = env
        .service
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("lessons").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![PlanTask {
                key: "t".to_owned(),
                task,
                depends_on: Vec::new(),
            }],
            start: true,
        })
        .unwrap();
    let task = env.settled(made.tasks[0].1.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    assert_eq!(task.attempts.len(), 2);
    assert_eq!(task.attempts[1].summary.as_deref(), Some("done"));
    assert_eq!(
        task.attempts[1].usage.input_tokens, 45,
        "the lesson's turn counts in the attempt's usage"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let memories = loop {
        let m = env
            .service
            .list_memories(&MemoryFilter::default(), &MemoryPage::default())
            .unwrap()
            .memories;
        if !m.is_empty() || Instant::now() > deadline {
            break m;
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(memories.len(), 1, "{memories:#?}");
    assert_eq!(
        memories[0].text.as_str(),
        "Retry the endpoint before giving up."
    );
    assert_eq!(
        memories[0].scope,
        MemoryScope::Orchestration(made.orchestration.id)
    );
    assert_eq!(
        memories[0].provenance,
        Provenance::Attempt {
            task: task.id,
            attempt: 2
        }
    );
    let requests = double.requests();
    assert_eq!(requests.len(), 3);
    let question = requests[2].messages().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(question.contains("- attempt 1 (model):"), "{question}");
    assert!(question.contains("one paragraph"), "{question}");
}

// ---------------------------------------------------------------------------------------------
// MAOS's own tools, beside the workspace tools
// ---------------------------------------------------------------------------------------------

/// A test double of MAOS's tools (the `AgentToolbox` port; the real one is `maos-mcp`'s): one
/// tool, `maos_report_progress`, answering a canned JSON; it records each call with the attempt
/// the supervisor says holds the credential it was given.
#[derive(Debug)]
struct RecordingToolbox {
    supervisor: maos_agents::Supervisor,
    calls: Mutex<Vec<ToolboxCall>>,
}

/// A call the toolbox got: the attempt holding its credential (per the supervisor), the tool's
/// name and the arguments.
type ToolboxCall = (Option<(maos_domain::TaskId, u32)>, String, String);

const CANNED: &str = r#"{"recorded":true,"from":"the test double"}"#;

impl maos_application::AgentToolbox for RecordingToolbox {
    fn tools(&self) -> Vec<maos_application::ToolSpec> {
        vec![maos_application::ToolSpec {
            name: "maos_report_progress".to_owned(),
            description: "Say how your task is getting on.".to_owned(),
            schema: json!({"type": "object", "properties": {"note": {"type": "string"}},
                           "required": ["note"], "additionalProperties": false})
            .to_string(),
        }]
    }

    fn call(
        &self,
        credential: &maos_application::AgentCredential,
        name: &str,
        arguments: &str,
    ) -> maos_application::ToolAnswer {
        use maos_application::AgentRuntime as _;
        let holder = self.supervisor.credential_holder(credential);
        self.calls
            .lock()
            .unwrap()
            .push((holder, name.to_owned(), arguments.to_owned()));
        maos_application::ToolAnswer {
            json: CANNED.to_owned(),
            is_error: false,
        }
    }
}

#[test]
fn a_model_agent_calls_maos_tools_with_its_attempts_credential() {
    use maos_domain::{AdapterKind, TaskState};

    use crate::supervisor::support::{Env, agent};

    let double = ModelDouble::start(vec![
        call(
            "call_1",
            "maos_report_progress",
            json!({"note": "read the code; changing it next"}),
        ),
        answer("Done.", usage_json(10, 5, None)),
    ]);
    let env = Env::new();
    let toolbox = Arc::new(RecordingToolbox {
        supervisor: env.supervisor.clone(),
        calls: Mutex::new(Vec::new()),
    });
    env.supervisor.set_toolbox(Arc::clone(&toolbox) as _);
    let mut model = agent("model", AdapterKind::Openai, None, &[]);
    model.settings.model = Some("test-model".to_owned());
    model.settings.base_url = Some(double.base_url.clone());
    env.register(model);
    let task = env.task("report as you go", |_| {});
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );

    // The toolbox got the call, with the credential of the attempt while it ran.
    assert_eq!(
        toolbox.calls.lock().unwrap().as_slice(),
        [(
            Some((task.id, 1)),
            "maos_report_progress".to_owned(),
            json!({"note": "read the code; changing it next"}).to_string()
        )]
    );
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    // The model was offered MAOS's tool beside the workspace tools, and told about it.
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"read_file"), "{offered:?}");
    assert!(offered.contains(&"maos_report_progress"), "{offered:?}");
    let maos_tool = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "maos_report_progress")
        .unwrap();
    assert_eq!(maos_tool["type"], "function");
    assert_eq!(
        maos_tool["function"]["parameters"]["required"],
        json!(["note"])
    );
    let system = requests[0].messages()[0]["content"].as_str().unwrap();
    assert!(system.contains("maos_report_progress"), "{system}");
    // Its answer went back to the model as the tool's result.
    let results = requests[1].last_tool_messages();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_call_id"], "call_1");
    assert_eq!(results[0]["content"], CANNED);
    // The log shows the call like any other, and never the credential.
    let log = env.log_text(task.id, 1);
    assert!(
        log.contains("tool maos_report_progress {\"note\":\"read the code; changing it next\"}"),
        "{log}"
    );
    assert!(
        log.contains("tool maos_report_progress ok: {\"recorded\":true"),
        "{log}"
    );
}

#[test]
fn without_tool_calling_a_model_agent_is_offered_no_maos_tools() {
    use maos_domain::{AdapterKind, TaskState};

    use crate::supervisor::support::{Env, agent};

    let double = ModelDouble::start(vec![answer("Nothing to do.", usage_json(10, 5, None))]);
    let env = Env::new();
    let toolbox = Arc::new(RecordingToolbox {
        supervisor: env.supervisor.clone(),
        calls: Mutex::new(Vec::new()),
    });
    env.supervisor.set_toolbox(Arc::clone(&toolbox) as _);
    let mut model = agent("model", AdapterKind::Openai, None, &[]);
    model.settings.model = Some("test-model".to_owned());
    model.settings.base_url = Some(double.base_url.clone());
    model.settings.tool_calls = Some(false);
    env.register(model);
    let task = env.task("answer once", |_| {});
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].body.get("tools").is_none(),
        "{}",
        requests[0].body
    );
    assert!(toolbox.calls.lock().unwrap().is_empty());
}
