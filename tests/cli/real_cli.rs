//! The real Claude Code and Codex CLIs as `maos` runs them, end to end: agents from a file, the
//! daemon running the CLI against a scripted fake of its model API on 127.0.0.1 (the fakes of
//! `maos-agents`' tests), a tool call a person approves with `maos approve`, and the CLI's own
//! tokens and cost in `maos task show`. Only the daemon runs agents, so these tests do nothing
//! in process. Like `maos-agents`' `real_cli` tests, they skip (saying so) when the CLIs are
//! not installed, unless `MAOS_REQUIRE_AGENT_CLIS=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Env, in_process};

#[allow(dead_code)]
#[path = "../../crates/infrastructure/agents/tests/agents/fakes.rs"]
pub(crate) mod fakes;

use fakes::{FakeApi, Tokens, text, tool};

/// A CLI to test: `var` names it, else it is `target/agent-clis/node_modules/.bin/<name>`.
/// `None` (after saying why) when it is missing and CI does not require it.
pub(crate) fn cli(var: &str, name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/agent-clis/node_modules/.bin")
            .join(name)
    });
    if path.is_file() {
        return Some(path);
    }
    let how = format!(
        "the real `{name}` CLI is missing ({} not found): install it with `npm install --prefix \
         target/agent-clis --no-audit --no-fund {package}@<version>` (the version `.ci/run` \
         pins), or name it in {var}",
        path.display()
    );
    if std::env::var("MAOS_REQUIRE_AGENT_CLIS").as_deref() == Ok("1") {
        panic!("{how}; MAOS_REQUIRE_AGENT_CLIS=1 requires it");
    }
    eprintln!("skipped: {how}");
    None
}

/// Registers a Claude Code agent `name` (the real CLI, `bin`) whose model API is `fake`, from an
/// agents file in `dir`: its `[[agent]]` table has the command, model, the variables Claude Code
/// needs, a 2-minute timeout, and `extra` (capabilities, tier, permissions: TOML lines). The
/// command that starts the daemon gives it the environment its agents inherit. Returns the
/// agent's `HOME`, to keep for the test's length.
pub(crate) fn register_claude(
    env: &Env,
    dir: &Path,
    bin: &Path,
    fake: &FakeApi,
    name: &str,
    extra: &str,
) -> tempfile::TempDir {
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let agents = dir.join("agents.toml");
    std::fs::write(
        &agents,
        format!(
            r#"
[[agent]]
name = "{name}"
adapter = "claude-code"
command = "{}"
model = "claude-sonnet-4-5"
env = ["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER",
       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]
timeout = "2m"
{extra}
"#,
            bin.display()
        ),
    )
    .unwrap();
    let base_url = fake.base_url();
    let registered = env.maos_env(
        &[
            "agent",
            "register",
            "--from-file",
            agents.to_str().unwrap(),
            "--json",
        ],
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("ANTHROPIC_BASE_URL", &base_url),
            ("ANTHROPIC_API_KEY", "sk-ant-fake-key"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ],
    );
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    home
}

/// Waits until `task show --json` satisfies `done`, and returns the task.
pub(crate) fn wait_for(env: &Env, task: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = env.ok_json(&["task", "show", task]);
        if done(&doc["task"]) {
            return doc["task"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {task} never became {what}: {doc:#}\nlogs:\n{}",
            env.maos(&["task", "logs", task]).stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cost(usage: &Value) -> f64 {
    usage["cost_usd"].as_str().unwrap().parse().unwrap()
}

fn tokens(input: u64, cached: u64, output: u64) -> Tokens {
    Tokens {
        input,
        cached,
        output,
    }
}

#[test]
fn claude_code_runs_a_task_with_a_call_a_person_approves() {
    if in_process() {
        return;
    }
    let Some(bin) = cli("MAOS_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code") else {
        return;
    };
    let fake = FakeApi::anthropic(vec![
        tool(
            "Bash",
            json!({ "command": "echo one > one.txt", "description": "First file" }),
            tokens(1000, 0, 20),
        ),
        tool(
            "Bash",
            json!({ "command": "touch two.txt", "description": "Second file" }),
            tokens(1100, 0, 20),
        ),
        text("Both files are there.", tokens(1200, 0, 10)),
    ]);
    let env = Env::new();
    let _home = register_claude(
        &env,
        env.dir(),
        &bin,
        &fake,
        "claude",
        r#"capabilities = ["code"]
permissions = { allow = ["Bash(echo:*)"], ask = ["Bash(touch:*)"] }"#,
    );

    let created = env.ok_json(&[
        "task",
        "create",
        "Two files",
        "-c",
        "code",
        "--prompt",
        "Make one.txt and two.txt.",
    ]);
    let id = created["task"]["id"].as_str().unwrap().to_owned();
    let waiting = wait_for(&env, &id, "waiting for a person", |t| {
        t["waiting_for"].is_object()
    });
    assert_eq!(waiting["waiting_for"]["gate"], "tool", "{waiting:#}");
    assert_eq!(waiting["waiting_for"]["subject"], "touch two.txt");
    let approvals = env.ok_json(&["approvals"]);
    assert_eq!(
        approvals["approvals"][0]["task"],
        id.as_str(),
        "{approvals:#}"
    );
    let approved = env.maos(&["approve", &id]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);

    let task = wait_for(&env, &id, "completed", |t| t["state"] == "completed");
    let attempt = &task["attempts"][0];
    assert_eq!(attempt["summary"], "Both files are there.", "{task:#}");
    assert_eq!(attempt["session"].as_str().map(str::len), Some(36));
    let usage = &attempt["usage"];
    assert_eq!(usage["input_tokens"], 3300, "{usage:#}");
    assert_eq!(usage["output_tokens"], 50, "{usage:#}");
    // Claude Code's own price: $3 per million input tokens, $15 output.
    assert!(
        (cost(usage) - (3300.0 * 3.0 + 50.0 * 15.0) / 1e6).abs() < 1e-9,
        "{usage:#}"
    );
    let logs = env.maos(&["task", "logs", &id]).stdout;
    assert!(
        logs.contains("[maos: allowed Bash(echo one > one.txt): allowed by rule `Bash(echo:*)`]"),
        "{logs}"
    );
    assert!(
        logs.contains("[maos: a person approved `Bash(touch two.txt)`]"),
        "{logs}"
    );
    assert_eq!(fake.model_calls().len(), 3, "{}", fake.describe());
}

#[test]
fn codex_runs_a_task_and_the_agent_prices_its_tokens() {
    if in_process() {
        return;
    }
    let Some(bin) = cli("MAOS_CODEX_BIN", "codex", "@openai/codex") else {
        return;
    };
    let fake = FakeApi::openai(vec![
        tool(
            "exec_command",
            json!({ "cmd": "echo one > one.txt" }),
            tokens(1000, 400, 30),
        ),
        text("Made one.txt.", tokens(1100, 500, 20)),
    ]);
    let env = Env::new();
    let codex_home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(
        codex_home.path().join("config.toml"),
        format!(
            r#"model_provider = "fake"

[model_providers.fake]
name = "Fake Responses API"
base_url = "{}"
wire_api = "responses"
env_key = "MAOS_FAKE_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0
"#,
            fake.base_url()
        ),
    )
    .unwrap();
    let agents = env.dir().join("agents.toml");
    std::fs::write(
        &agents,
        format!(
            r#"
[[agent]]
name = "codex"
adapter = "codex"
command = "{}"
model = "gpt-fake"
capabilities = ["code"]
env = ["CODEX_HOME", "MAOS_FAKE_OPENAI_KEY"]
args = ["--sandbox", "workspace-write"]
timeout = "2m"
price = {{ input = "1.25", cached_input = "0.125", output = "10" }}
"#,
            bin.display()
        ),
    )
    .unwrap();
    let registered = env.maos_env(
        &[
            "agent",
            "register",
            "--from-file",
            agents.to_str().unwrap(),
            "--json",
        ],
        &[
            ("CODEX_HOME", codex_home.path().to_str().unwrap()),
            ("MAOS_FAKE_OPENAI_KEY", "sk-fake-key"),
        ],
    );
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    let created = env.ok_json(&[
        "task",
        "create",
        "One file",
        "-c",
        "code",
        "--prompt",
        "Make one.txt.",
    ]);
    let id = created["task"]["id"].as_str().unwrap().to_owned();
    let task = wait_for(&env, &id, "completed", |t| t["state"] == "completed");
    let attempt = &task["attempts"][0];
    assert_eq!(attempt["summary"], "Made one.txt.", "{task:#}");
    let usage = &attempt["usage"];
    assert_eq!(usage["input_tokens"], 2100, "{usage:#}");
    assert_eq!(usage["cached_input_tokens"], 900, "{usage:#}");
    assert_eq!(usage["output_tokens"], 50, "{usage:#}");
    // 1200 fresh input tokens at $1.25, 900 cached at $0.125, 50 output at $10 per million,
    // rounded up to the micro-dollar.
    assert_eq!(usage["cost_usd"], "0.002113", "{usage:#}");
    assert_eq!(fake.model_calls().len(), 2, "{}", fake.describe());
}
