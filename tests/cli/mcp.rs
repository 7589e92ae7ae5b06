//! MAOS's MCP server with real MCP clients: the official TypeScript SDK's client (installed by
//! .ci/run from the npm registry, pinned) over stdio (`maos mcp`) and over Streamable HTTP (the
//! daemon's `/mcp`), a scripted `command` agent that talks back through `maos mcp` with its
//! attempt's credential, and the real Claude Code calling a MAOS tool against its local fake
//! model API. Like the real CLI tests, these skip (saying so) when the npm packages are not
//! installed, unless `MAOS_REQUIRE_AGENT_CLIS=1`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::real_cli::{cli, fakes, register_claude, wait_for};
use crate::support::{Env, in_process};
use crate::ui::free_port;

/// The npm packages' directory (the SDK is in it), or `None` after saying why it is missing.
fn node_modules() -> Option<PathBuf> {
    let dir = std::env::var_os("MAOS_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/agent-clis/node_modules")
        });
    if dir.join("@modelcontextprotocol/sdk/package.json").is_file() {
        return Some(dir);
    }
    let how = format!(
        "the TypeScript MCP SDK is missing from {}: install it with `npm install --prefix \
         target/agent-clis @modelcontextprotocol/sdk@<version>` (the version .ci/run pins)",
        dir.display()
    );
    if std::env::var("MAOS_REQUIRE_AGENT_CLIS").as_deref() == Ok("1") {
        panic!("{how}; MAOS_REQUIRE_AGENT_CLIS=1 requires it");
    }
    eprintln!("skipped: {how}");
    None
}

/// The client script.
fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cli/mcp/client.cjs")
}

/// Runs the SDK client with `steps` and returns what it wrote (its first entry is the server's
/// name and version). `vars` choose the transport and the credential.
fn client(env: &Env, modules: &Path, steps: &Value, vars: &[(&str, &str)]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let steps_file = dir.path().join("steps.json");
    std::fs::write(&steps_file, steps.to_string()).unwrap();
    let cmd = env.std_command(&[]);
    // The same environment `maos` gets in these tests (data directory, runtime directory), for
    // the `maos mcp` the client starts; `env.std_command` made it for `maos` itself.
    let mut node = Command::new("node");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => node.env(k, v),
            None => node.env_remove(k),
        };
    }
    node.env("NODE_PATH", modules)
        .env("MCP_COMMAND", env!("CARGO_BIN_EXE_maos"))
        .env("MCP_ARGS", r#"["mcp"]"#)
        .env_remove("MAOS_AGENT_CREDENTIAL")
        .current_dir(dir.path())
        .arg(client_script())
        .arg(&steps_file)
        .arg("-");
    for (k, v) in vars {
        node.env(k, v);
    }
    let out = node.stderr(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The structured result of a tool call step.
fn content(r: &Value) -> &Value {
    &r["structuredContent"]
}

fn error_kind(r: &Value) -> &str {
    r["structuredContent"]["error"]["kind"]
        .as_str()
        .unwrap_or("<not an error>")
}

/// Every tool, called once by a person (agents' tools refused as such).
fn person_steps(task: &str) -> Value {
    json!([
        {"list_tools": true},
        {"tool": "get_task", "arguments": {"task": task}},
        {"tool": "get_briefing", "arguments": {"task": task}},
        {"tool": "list_tasks", "arguments": {"limit": 5}},
        {"tool": "orchestration_status", "arguments": {}},
        {"tool": "list_agents", "arguments": {}},
        {"tool": "memory_add", "arguments": {"text": "release notes live in CHANGES.md", "tier": "important", "tags": ["docs"]}},
        {"tool": "memory_search", "arguments": {"query": "release notes"}},
        {"tool": "create_task", "arguments": {"title": "made over MCP", "prompt": "from a person's client"}},
        {"tool": "reject", "arguments": {"task": task, "reason": "not now"}},
        {"tool": "approve", "arguments": {"task": task}},
        {"tool": "report_progress", "arguments": {"note": "a person has no attempt"}},
        {"tool": "create_subtasks", "arguments": {"tasks": [{"id": "a", "title": "A"}]}},
        {"tool": "request_approval", "arguments": {"question": "?"}},
        {"tool": "wait_for_tasks", "arguments": {"tasks": [task], "timeout_seconds": 0}},
        {"tool": "no_such_tool", "arguments": {}},
        {"read_resource": format!("maos://tasks/{task}/log")},
    ])
}

/// Checks a person's run of [`person_steps`].
fn check_person_run(results: &[Value]) {
    assert_eq!(results[0]["server"]["name"], "maos", "{results:#?}");
    let tools: Vec<&str> = results[1]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "get_task",
        "list_tasks",
        "approve",
        "reject",
        "create_task",
        "memory_pin",
    ] {
        assert!(tools.contains(&t), "{t} not listed: {tools:?}");
    }
    for t in results[1]["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    assert_eq!(content(&results[2])["task"]["title"], "needs a person");
    assert!(
        content(&results[3])["briefing"].is_object() || error_kind(&results[3]) == "not_found",
        "{}",
        results[3]
    );
    assert!(
        content(&results[4])["tasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(
        error_kind(&results[5]),
        "invalid_input",
        "a person names the orchestration: {}",
        results[5]
    );
    assert!(content(&results[6])["agents"].is_array());
    assert_eq!(content(&results[7])["memory"]["provenance"]["by"], "person");
    assert_eq!(
        content(&results[8])["hits"][0]["text"],
        "release notes live in CHANGES.md",
        "{}",
        results[8]
    );
    assert_eq!(content(&results[9])["created"], true);
    assert_eq!(
        content(&results[10])["task"]["decision"]["approved"],
        false,
        "{}",
        results[10]
    );
    assert!(
        !results[11]["isError"].as_bool().unwrap_or(true) || error_kind(&results[11]) == "conflict",
        "{}",
        results[11]
    );
    for r in &results[12..15] {
        assert_eq!(error_kind(r), "denied", "{r}");
    }
    assert_eq!(content(&results[15])["done"], true, "{}", results[15]);
    assert!(
        results[16]["protocol_error"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_tool"),
        "{}",
        results[16]
    );
    assert!(results[17]["contents"].is_array(), "{}", results[17]);
}

/// A task that waits for a person to approve it to run.
fn waiting_task(env: &Env) -> String {
    env.task("needs a person", &["--risk", "high"])
}

#[test]
fn the_typescript_sdk_lists_and_calls_every_tool_over_stdio() {
    let Some(modules) = node_modules() else {
        return;
    };
    let env = Env::new();
    let task = waiting_task(&env);
    let before = env.last_seq();
    let results = client(&env, &modules, &person_steps(&task), &[]);
    check_person_run(&results);
    assert!(env.last_seq() > before, "the calls changed state");
}

#[test]
fn the_typescript_sdk_lists_and_calls_every_tool_over_http_with_the_dashboards_token() {
    if in_process() {
        return;
    }
    let Some(modules) = node_modules() else {
        return;
    };
    let env = Env::new();
    let task = waiting_task(&env);
    let ui = env.ok_json(&["ui", "--port", &free_port().to_string()]);
    let url = format!("{}mcp", ui["url"].as_str().unwrap());
    let token = std::fs::read_to_string(ui["token_file"].as_str().unwrap())
        .unwrap()
        .trim()
        .to_owned();
    let results = client(
        &env,
        &modules,
        &person_steps(&task),
        &[("MCP_URL", &url), ("MCP_TOKEN", &token)],
    );
    check_person_run(&results);

    // Without the token, or with another, nothing is served.
    for bad in ["", "0123456789abcdef0123456789abcdef0123456789"] {
        let refused = client(
            &env,
            &modules,
            &json!([{"list_tools": true}]),
            &[("MCP_URL", &url), ("MCP_TOKEN", bad)],
        );
        let why = refused[0]["connect_error"].as_str().unwrap_or_default();
        assert!(why.contains(r#""kind":"unauthorized""#), "{refused:?}");
    }
}

/// Writes an executable script and returns its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn wait_for_state(env: &Env, task: &str, state: &str) -> Value {
    wait_for(env, task, state, |t| t["state"] == state)
}

#[test]
fn a_scripted_agent_reports_progress_splits_its_task_and_waits_and_its_credential_stays_its_own() {
    if in_process() {
        return;
    }
    let Some(modules) = node_modules() else {
        return;
    };
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    // Someone else's task: held by an external agent, in no orchestration of the lead's.
    env.agent("outsider", "manual");
    let other = env.task("someone else's work", &["-c", "manual"]);
    let steps = work.path().join("steps.json");
    std::fs::write(
        &steps,
        json!([
            {"tool": "get_task", "arguments": {}},
            {"tool": "report_progress", "arguments": {"note": "splitting the work in two"}},
            {"tool": "create_subtasks", "arguments": {"wait": true, "tasks": [
                {"id": "one", "title": "first half", "prompt": "do the first half"},
                {"id": "two", "title": "second half", "depends_on": ["one"]}
            ]}},
            {"wait_for_created": 10},
            {"tool": "approve", "arguments": {"task": other}},
            {"tool": "get_task", "arguments": {"task": other}},
            {"tool": "memory_add", "arguments": {"text": "the halves must be done in order", "tags": ["plan"]}},
            {"tool": "report_progress", "arguments": {"note": "both halves are done"}}
        ])
        .to_string(),
    )
    .unwrap();
    let results = work.path().join("results.json");
    // The same agent over HTTP, with its credential as the bearer token.
    let ui = env.ok_json(&["ui", "--port", &free_port().to_string()]);
    let url = format!("{}mcp", ui["url"].as_str().unwrap());
    let http_steps = work.path().join("http-steps.json");
    std::fs::write(
        &http_steps,
        json!([
            {"tool": "get_task", "arguments": {}},
            {"tool": "report_progress", "arguments": {"note": "over HTTP too"}}
        ])
        .to_string(),
    )
    .unwrap();
    let http_results = work.path().join("http-results.json");
    let lead = script(
        work.path(),
        "lead.sh",
        &format!(
            "#!/bin/sh\nset -e\necho \"my credential is $MAOS_AGENT_CREDENTIAL\"\n\
             printf '%s' \"$MAOS_AGENT_CREDENTIAL\" > '{out}/credential'\n\
             MCP_COMMAND='{maos}' MCP_ARGS='[\"mcp\"]' NODE_PATH='{modules}' \
             node '{client}' '{steps}' '{results}'\n\
             MCP_URL='{url}' MCP_TOKEN=\"$MAOS_AGENT_CREDENTIAL\" NODE_PATH='{modules}' \
             node '{client}' '{http_steps}' '{http_results}'\necho finished\n",
            out = work.path().display(),
            maos = env!("CARGO_BIN_EXE_maos"),
            modules = modules.display(),
            client = client_script().display(),
            steps = steps.display(),
            results = results.display(),
            http_steps = http_steps.display(),
            http_results = http_results.display(),
        ),
    );
    env.ok_json(&[
        "agent",
        "register",
        "lead",
        "--adapter",
        "command",
        "--command",
        lead.to_str().unwrap(),
        "-c",
        "lead",
        "--slots",
        "1",
        "--timeout",
        "2m",
    ]);
    env.ok_json(&[
        "agent",
        "register",
        "worker",
        "--adapter",
        "command",
        "--command",
        "true",
        "--slots",
        "2",
    ]);
    let parent = env.task("build it in halves", &["-c", "lead"]);
    let done = wait_for_state(&env, &parent, "completed");
    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(
        content(&results[1])["task"]["id"],
        parent.as_str(),
        "{results:#?}"
    );
    assert_eq!(content(&results[2])["recorded"], true, "{}", results[2]);
    let made = content(&results[3])["tasks"].as_array().unwrap();
    assert_eq!(made.len(), 2, "{}", results[3]);
    assert_eq!(content(&results[4])["done"], true, "{}", results[4]);
    assert_eq!(
        error_kind(&results[5]),
        "denied",
        "a person's tool: {}",
        results[5]
    );
    assert_eq!(
        error_kind(&results[6]),
        "denied",
        "another's task: {}",
        results[6]
    );
    assert_eq!(
        content(&results[7])["memory"]["provenance"]["task"],
        parent.as_str()
    );
    assert_eq!(
        done["subtasks"].as_array().map(Vec::len),
        Some(2),
        "{done:#}"
    );
    let over_http: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&http_results).unwrap()).unwrap();
    assert_eq!(
        content(&over_http[1])["task"]["id"],
        parent.as_str(),
        "{over_http:#?}"
    );
    assert_eq!(content(&over_http[2])["recorded"], true, "{over_http:#?}");
    for m in made {
        let sub = env.ok_json(&["task", "show", m["task"].as_str().unwrap()]);
        assert_eq!(sub["task"]["state"], "completed", "{sub:#}");
        assert_eq!(sub["task"]["parent"]["task"], parent.as_str(), "{sub:#}");
    }
    // The progress is in the log, live and afterwards; the credential is not.
    let credential = std::fs::read_to_string(work.path().join("credential")).unwrap();
    assert!(credential.len() >= 32);
    let logs = env.maos(&["task", "logs", &parent]).stdout;
    assert!(
        logs.contains("[maos: progress: over HTTP too]")
            && logs.contains("[maos: progress: splitting the work in two]"),
        "{logs}"
    );
    assert!(
        !logs.contains(&credential),
        "the credential leaked into the log: {logs}"
    );
    let events = env.maos(&["events", "--json"]).stdout;
    assert!(events.contains("task.progress_reported"));
    assert!(
        !events.contains(&credential),
        "the credential leaked into the events"
    );

    // The attempt is over: its credential opens nothing, over stdio or HTTP.
    let stale = client(
        &env,
        &modules,
        &json!([{"tool": "get_task", "arguments": {}}]),
        &[("MAOS_AGENT_CREDENTIAL", &credential)],
    );
    assert_eq!(error_kind(&stale[1]), "denied", "{stale:?}");
    let refused = client(
        &env,
        &modules,
        &json!([{"list_tools": true}]),
        &[("MCP_URL", &url), ("MCP_TOKEN", &credential)],
    );
    let why = refused[0]["connect_error"].as_str().unwrap_or_default();
    assert!(why.contains(r#""kind":"unauthorized""#), "{refused:?}");
    assert!(
        why.contains("not one a running attempt holds"),
        "{refused:?}"
    );
}

#[test]
fn claude_code_calls_a_maos_tool_and_the_call_arrives() {
    if in_process() {
        return;
    }
    let Some(bin) = cli("MAOS_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code") else {
        return;
    };
    let tokens = fakes::Tokens {
        input: 100,
        cached: 0,
        output: 10,
    };
    let fake = fakes::FakeApi::anthropic(vec![
        fakes::tool(
            "mcp__maos__report_progress",
            json!({"note": "Claude Code reporting in"}),
            tokens,
        ),
        fakes::text("Reported.", tokens),
    ]);
    let env = Env::new();
    let _home = register_claude(
        &env,
        env.dir(),
        &bin,
        &fake,
        "claude",
        r#"capabilities = ["code"]"#,
    );
    let id = env.task("report in", &["-c", "code", "--prompt", "Say how it goes."]);
    let task = wait_for_state(&env, &id, "completed");
    assert_eq!(task["attempts"][0]["summary"], "Reported.", "{task:#}");
    let events = env.ok_json(&["events"]);
    let progress: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "task.progress_reported")
        .collect();
    assert_eq!(progress.len(), 1, "{events:#}");
    assert_eq!(
        progress[0]["data"]["note"], "Claude Code reporting in",
        "{:#}",
        progress[0]
    );
    // Claude Code got the tool's answer back and sent it to the model.
    let answers = fake
        .model_calls()
        .iter()
        .flat_map(fakes::Request::tool_results)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        answers.contains("recorded"),
        "{answers}\n{}",
        fake.describe()
    );
}

#[test]
fn a_malformed_credential_is_refused_before_anything_starts() {
    let env = Env::new();
    let run = env.maos_env(&["mcp"], &[("MAOS_AGENT_CREDENTIAL", "not a credential")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("MAOS_AGENT_CREDENTIAL holds no credential"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "stdout is the protocol's: {}",
        run.stdout
    );
}

#[test]
fn maos_mcp_survives_garbage_on_stdin_and_answers_the_next_request() {
    let env = Env::new();
    let mut child = env
        .std_command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let lines = format!(
        "not json at all\n{{\"half\": \n{init}\n{}\n{}\n",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    );
    stdin.write_all(lines.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let listed = answers.iter().find(|a| a["id"] == 2).unwrap_or_else(|| {
        panic!(
            "no answer to tools/list: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.len() > 5),
        "{listed}"
    );
}

#[test]
fn an_openai_agents_model_calls_maos_tools_in_the_built_in_loop() {
    if in_process() {
        return;
    }
    use crate::planning_agents::{ChatFake, completion, tool_call};
    const NOTE: &str = "looked around; the change is next";
    let fake = ChatFake::start(vec![
        tool_call(1, "maos_report_progress", json!({"note": NOTE})),
        tool_call(2, "maos_approve", json!({"task": "abcd"})),
        completion(3, "Reported my progress.", 100, 0, 10),
    ]);
    let env = Env::new();
    let base_url = fake.base_url();
    env.ok_json(&[
        "agent",
        "register",
        "looper",
        "--adapter",
        "openai",
        "--model",
        "gpt-fake",
        "--base-url",
        &base_url,
        "-c",
        "loop",
        "--timeout",
        "1m",
    ]);
    let task = env.task("report as you go", &["-c", "loop"]);
    let done = wait_for_state(&env, &task, "completed");
    assert_eq!(
        done["attempts"][0]["summary"],
        "Reported my progress.",
        "{done:#}\n{}",
        fake.describe()
    );

    let chats = fake.chats();
    assert_eq!(chats.len(), 3, "{}", fake.describe());
    // The model was offered MAOS's tools for agents beside its workspace tools, never a
    // person's.
    let offered: Vec<&str> = chats[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    for name in [
        "read_file",
        "run_command",
        "maos_report_progress",
        "maos_get_task",
    ] {
        assert!(offered.contains(&name), "{name} not in {offered:?}");
    }
    assert!(!offered.contains(&"maos_approve"), "{offered:?}");
    // The call's answer went back to the model; the person's tool was refused as such.
    let answered = chats[1].texts("tool").join("\n");
    assert!(answered.contains(r#""recorded":true"#), "{answered}");
    let refused = chats[2].texts("tool").join("\n");
    assert!(refused.contains(r#""kind":"denied""#), "{refused}");

    // The note is an event and a line of the attempt's log, like one sent over MCP.
    let events = env.ok_json(&["events"]);
    let reported = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .any(|e| e.contains("task.progress_reported") && e.contains(NOTE));
    assert!(
        reported,
        "no task.progress_reported with the note: {events:#}"
    );
    let logs = env.maos(&["task", "logs", &task]).stdout;
    assert!(
        logs.contains(&format!("[maos: progress: {NOTE}]")),
        "{logs}"
    );
    assert!(logs.contains("tool maos_report_progress"), "{logs}");
}
