//! The real Claude Code and Codex CLIs through the supervisor, each talking to a scripted fake
//! of its model API on 127.0.0.1 (`fakes.rs`), with a private home per test: a task completes
//! with the CLI's own session, tokens and cost; Claude Code's permission requests meet the
//! agent's `allow`, `ask` (a person approves or rejects) and `deny` rules; a failed attempt is
//! retried in the same session (`--resume`, `codex exec resume`); an API error fails the
//! attempt with the CLI's message; a timeout while a tool command runs leaves no process behind.
//!
//! The CLIs are found through `MAOS_CLAUDE_BIN` and `MAOS_CODEX_BIN`, else in
//! `target/agent-clis` (where `.ci/run` installs the pinned versions). When one is missing its
//! tests say so and pass, unless `MAOS_REQUIRE_AGENT_CLIS=1` (set by `.ci/run`), which makes
//! that a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use maos_agents::group_alive;
use maos_application::MaosApi;
use maos_domain::policy::permission::{PermissionRule, PermissionRules};
use maos_domain::{
    AdapterKind, EnvName, FailureKind, Gate, MaxAttempts, Price, Task, TaskId, TaskState, Usage,
    Usd,
};
use serde_json::json;

use crate::fakes::{FakeApi, Reply, Tokens, text, tool};
use crate::supervisor::support::{Env, agent, env_with, eventually, ms, process_gone};

/// A CLI to test: `var` names it, else it is `target/agent-clis/node_modules/.bin/<name>`.
/// `None` (after saying why) when it is missing and CI does not require it.
fn cli(var: &str, name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../target/agent-clis/node_modules/.bin")
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

fn claude_bin() -> Option<PathBuf> {
    cli("MAOS_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
}

fn codex_bin() -> Option<PathBuf> {
    cli("MAOS_CODEX_BIN", "codex", "@openai/codex")
}

/// A private directory for one CLI's home, under the build's temporary directory (Codex
/// refuses to put its helpers under `/tmp`).
fn private_home() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn env_names(names: &[&str]) -> Vec<EnvName> {
    names.iter().map(|n| EnvName::parse(n).unwrap()).collect()
}

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

fn tokens(input: u64, cached: u64, output: u64) -> Tokens {
    Tokens {
        input,
        cached,
        output,
    }
}

/// Waits (a little longer than the supervisor tests: real CLIs start slower) for the task to
/// settle.
fn settled(env: &Env, id: TaskId) -> Task {
    env.wait_until(id, "settled", |t| {
        matches!(
            t.state,
            TaskState::Completed | TaskState::Blocked | TaskState::Cancelled
        )
    })
}

fn workdir(env: &Env, task: TaskId) -> PathBuf {
    maos_agents::supervisor::workdir_of(env.dir.path(), task)
}

// ---------------------------------------------------------------------------------------------
// Claude Code

/// The model these tests name: Claude Code prices it itself.
const CLAUDE_MODEL: &str = "claude-sonnet-4-5";

/// A supervisor whose `claude` agent runs the real CLI against `fake`, with `rules`, in a
/// private home; returns the home too (it must outlive the runs).
fn claude_env(bin: &Path, fake: &FakeApi, rules: PermissionRules) -> (Env, tempfile::TempDir) {
    let home = private_home();
    let base_url = fake.base_url();
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("HOME", home.path().to_str().unwrap()),
            ("ANTHROPIC_BASE_URL", &base_url),
            ("ANTHROPIC_API_KEY", "sk-ant-fake-key"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ]);
        c.approval_timeout = Duration::from_secs(20);
    });
    let mut claude = agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(bin.to_str().unwrap()),
        &[],
    );
    claude.settings.model = Some(CLAUDE_MODEL.to_owned());
    claude.settings.env = env_names(&[
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
        "DISABLE_TELEMETRY",
        "DISABLE_AUTOUPDATER",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    ]);
    claude.settings.permissions = rules;
    env.register(claude);
    (env, home)
}

fn describe(env: &Env, task: &Task, fake: &FakeApi, why: &str) -> String {
    format!(
        "{}\nrequests to the fake:\n{}",
        env.describe(task, why),
        fake.describe()
    )
}

#[test]
fn claude_code_completes_with_its_own_session_tokens_and_cost() {
    let Some(bin) = claude_bin() else { return };
    let fake = FakeApi::anthropic(vec![
        tool(
            "Bash",
            json!({ "command": "echo made > made.txt", "description": "Make a file" }),
            tokens(1200, 0, 30),
        ),
        text("Made `made.txt`.", tokens(1300, 200, 20)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &["Bash(echo:*)"]));
    let task = env.task("make a file", |t| t.prompt = "Make made.txt.".to_owned());
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    let a = &task.attempts[0];
    assert_eq!(a.summary.as_deref(), Some("Made `made.txt`."));
    // The session is Claude Code's own: the one its requests carried.
    let session = a.session.clone().unwrap();
    assert_eq!(session.len(), 36, "{session}");
    // Claude Code adds up its turns; MAOS counts cache reads as input too.
    assert_eq!(a.usage.input_tokens, 1200 + 1300 + 200);
    assert_eq!(a.usage.cached_input_tokens, 200);
    assert_eq!(a.usage.output_tokens, 50);
    // The cost is what Claude Code's result reported (its own price of the model: $3 per
    // million input tokens, $0.30 cached, $15 output), not a figure of MAOS's.
    let log = env.log_text(task.id, 1);
    let reported = reported_cost(&log);
    assert!((reported - (2500.0 * 3.0 + 200.0 * 0.3 + 50.0 * 15.0) / 1e6).abs() < 1e-9);
    assert_eq!(a.usage.cost, Usd::from_dollars_lossy(reported), "{a:#?}");
    // The command ran, after MAOS allowed it.
    assert_eq!(
        std::fs::read_to_string(workdir(&env, task.id).join("made.txt")).unwrap(),
        "made\n"
    );
    assert!(
        log.contains("[maos: allowed Bash(echo made > made.txt): allowed by rule `Bash(echo:*)`]"),
        "{log}"
    );
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    assert_eq!(calls[0].body["model"], CLAUDE_MODEL);
    assert_eq!(calls[1].tool_results().len(), 1, "{}", fake.describe());
}

/// The `total_cost_usd` of the `result` event in an attempt's log.
fn reported_cost(log: &str) -> f64 {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["type"] == "result")
        .and_then(|e| e["total_cost_usd"].as_f64())
        .unwrap_or_else(|| panic!("no result with a cost in the log:\n{log}"))
}

/// Claude Code calls `touch asked.txt`, which an `ask` rule holds for a person; `decide` is
/// what the person does. Returns the settled task, the fake, whether the file was made, and
/// the attempt's log.
fn claude_asks(decide: impl FnOnce(&Env, TaskId)) -> Option<(Task, FakeApi, bool, String)> {
    let bin = claude_bin()?;
    let fake = FakeApi::anthropic(vec![
        tool(
            "Bash",
            json!({ "command": "touch asked.txt", "description": "Create a file" }),
            tokens(100, 0, 10),
        ),
        text("Finished.", tokens(120, 0, 5)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &["Bash(touch:*)"], &[]));
    let task = env.task("ask first", |t| t.prompt = "Create asked.txt.".to_owned());
    let waiting = env.wait_until(task.id, "waiting for a person", |t| t.pending.is_some());
    let pending = waiting.pending.clone().unwrap();
    assert_eq!(pending.gate, Gate::Tool);
    assert_eq!(pending.tool.as_deref(), Some("Bash"));
    assert_eq!(pending.subject.as_deref(), Some("touch asked.txt"));
    decide(&env, task.id);
    let done = settled(&env, task.id);
    let log = env.log_text(task.id, 1);
    let asked = workdir(&env, task.id).join("asked.txt").exists();
    Some((done, fake, asked, log))
}

#[test]
fn claude_code_runs_a_call_a_person_approves() {
    let Some((task, fake, asked, log)) = claude_asks(|env, id| {
        env.service.approve(&id.into()).unwrap();
    }) else {
        return;
    };
    assert_eq!(task.state, TaskState::Completed, "{log}");
    assert!(asked, "the command did not run: {log}");
    assert!(
        log.contains("[maos: a person approved `Bash(touch asked.txt)`]"),
        "{log}"
    );
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    assert_eq!(calls[1].tool_results().len(), 1);
}

#[test]
fn claude_code_gets_the_reason_of_a_call_a_person_rejects() {
    let Some((task, fake, asked, log)) = claude_asks(|env, id| {
        env.service
            .reject(&id.into(), "not on this machine".into(), false)
            .unwrap();
    }) else {
        return;
    };
    assert_eq!(task.state, TaskState::Completed, "{log}");
    assert!(!asked, "the command ran: {log}");
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    let results = calls[1].tool_results();
    assert!(
        results[0].contains("a person rejected it: not on this machine"),
        "{results:?}"
    );
}

#[test]
fn claude_code_is_told_a_denied_call_is_denied() {
    let Some(bin) = claude_bin() else { return };
    let fake = FakeApi::anthropic(vec![
        tool(
            "Bash",
            json!({ "command": "rm -rf build", "description": "Remove the build" }),
            tokens(100, 0, 10),
        ),
        text("I could not remove it.", tokens(120, 0, 5)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&["Bash(rm:*)"], &[], &["Bash"]));
    let task = env.task("clean", |t| t.prompt = "Remove build.".to_owned());
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    assert_eq!(task.attempts[0].permission_denials, ["Bash(rm -rf build)"]);
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    let results = calls[1].tool_results();
    assert!(
        results[0].contains("is denied by rule `Bash(rm:*)`"),
        "{results:?}"
    );
}

#[test]
fn deny_and_ask_rules_cover_calls_claude_code_would_allow_by_itself() {
    let Some(bin) = claude_bin() else { return };
    // `ls` and reading a file in the working directory: Claude Code runs them without asking,
    // unless a rule says it must ask.
    let fake = FakeApi::anthropic(vec![
        tool(
            "Bash",
            json!({ "command": "ls", "description": "List the files" }),
            tokens(100, 0, 10),
        ),
        tool(
            "Bash",
            json!({ "command": "git status", "description": "Show the status" }),
            tokens(100, 0, 10),
        ),
        text("Nothing to see.", tokens(120, 0, 5)),
    ]);
    let (env, _home) = claude_env(
        &bin,
        &fake,
        rules(&["Bash(ls:*)"], &["Bash(git status:*)"], &[]),
    );
    let task = env.task("look", |t| t.prompt = "Look around.".to_owned());
    let waiting = env.wait_until(task.id, "waiting for a person", |t| t.pending.is_some());
    assert_eq!(
        waiting.pending.as_ref().unwrap().subject.as_deref(),
        Some("git status")
    );
    env.service
        .reject(&task.id.into(), "not now".into(), false)
        .unwrap();
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    assert_eq!(
        task.attempts[0].permission_denials,
        ["Bash(ls)", "Bash(git status)"]
    );
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 3, "{}", fake.describe());
    assert!(calls[1].tool_results()[0].contains("is denied by rule `Bash(ls:*)`"));
    assert!(calls[2].tool_results()[1].contains("a person rejected it: not now"));
}

#[test]
fn rules_written_relative_to_the_project_match_the_paths_claude_code_asks_about() {
    let Some(bin) = claude_bin() else { return };
    // Claude Code asks about `<working directory>/notes/plan.md`; the rule says `notes/**`.
    let fake = FakeApi::anthropic(vec![
        tool(
            "Write",
            json!({ "file_path": "notes/plan.md", "content": "the plan\n" }),
            tokens(100, 0, 10),
        ),
        text("Written.", tokens(120, 0, 5)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &["Write(notes/**)"]));
    let task = env.task("plan", |t| t.prompt = "Write the plan.".to_owned());
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    let dir = workdir(&env, task.id);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/plan.md")).unwrap(),
        "the plan\n"
    );
    let log = env.log_text(task.id, 1);
    assert!(
        log.contains(&format!(
            "[maos: allowed Write({}/notes/plan.md): allowed by rule `Write(notes/**)`]",
            dir.display()
        )),
        "{log}"
    );
}

#[test]
fn claude_code_resumes_its_session_when_a_failed_attempt_is_retried() {
    let Some(bin) = claude_bin() else { return };
    // The first attempt claims success without the file; the verification fails it, and the
    // retry, in the same session, makes the file.
    let fake = FakeApi::anthropic(vec![
        text("Done, I think.", tokens(100, 0, 5)),
        tool(
            "Bash",
            json!({ "command": "touch done.txt", "description": "Make the file" }),
            tokens(150, 0, 10),
        ),
        text("Now it is there.", tokens(170, 0, 5)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &["Bash(touch:*)"]));
    let task = env.task("retry", |t| {
        t.prompt = PROMPT_TO_REMEMBER.to_owned();
        t.max_attempts = MaxAttempts::new(2).unwrap();
        t.verify = Some("test -f done.txt".to_owned());
    });
    let task = settled(&env, task.id);
    assert_resumed(&env, &task, &fake, FailureKind::Verification);
}

/// The first attempt's prompt (the task's own).
const PROMPT_TO_REMEMBER: &str = "Remember the word heliotrope.";

/// The task failed once with `failure`, then completed in the same session, which carried the
/// first attempt's prompt to the model beside the retry's.
fn assert_resumed(env: &Env, task: &Task, fake: &FakeApi, failure: FailureKind) {
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(env, task, fake, "not completed")
    );
    assert_eq!(
        task.attempts.len(),
        2,
        "{}",
        describe(env, task, fake, "not retried")
    );
    let (first, second) = (&task.attempts[0], &task.attempts[1]);
    assert_eq!(first.failure, Some(failure), "{first:#?}");
    let session = first.session.clone().unwrap();
    assert_eq!(second.session.as_deref(), Some(session.as_str()));
    let calls = fake.model_calls();
    let said = calls.last().unwrap().user_texts();
    assert!(
        said.iter().any(|t| t.trim() == PROMPT_TO_REMEMBER),
        "the first attempt's prompt is not in the resumed conversation: {said:#?}"
    );
    assert!(
        said.iter().any(|t| t.contains("## Earlier attempts")),
        "the retry's prompt is missing: {said:#?}"
    );
}

#[test]
fn claude_code_failing_on_an_api_error_fails_the_attempt_with_its_message() {
    let Some(bin) = claude_bin() else { return };
    // Claude Code tries a refused request again, in other forms: refuse them all.
    let refusal = Reply::Error {
        status: 400,
        message: "fake says no".to_owned(),
    };
    let fake = FakeApi::anthropic(vec![refusal; 20]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &[]));
    let task = env.task("refused", |t| {
        t.prompt = "Say hello.".to_owned();
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Blocked,
        "{}",
        describe(&env, &task, &fake, "not blocked")
    );
    let a = &task.attempts[0];
    assert!(a.session.is_some(), "{a:#?}");
    // Claude Code's result says `success` with `is_error`, and exits with status 1.
    assert_eq!(
        a.error.as_deref(),
        Some("exited with status 1: Claude Code reported an error: API Error: 400 fake says no"),
        "{a:#?}"
    );
    assert_eq!(a.usage.cost, Usd::ZERO);
}

#[test]
fn claude_code_retries_a_server_error_itself_and_maos_notes_it() {
    let Some(bin) = claude_bin() else { return };
    let fake = FakeApi::anthropic(vec![
        Reply::Error {
            status: 500,
            message: "the fake is down for a moment".to_owned(),
        },
        text("Hello.", tokens(100, 0, 5)),
    ]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &[]));
    let task = env.task("hello", |t| t.prompt = "Say hello.".to_owned());
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    assert_eq!(task.attempts.len(), 1);
    let log = env.log_text(task.id, 1);
    assert!(
        log.contains(
            "[maos: the agent warned: the model API answered 500 server_error; Claude Code tries \
             again (retry 1 of 10) in "
        ),
        "{log}"
    );
}

#[test]
fn claude_code_past_its_timeout_leaves_no_process_behind() {
    let Some(bin) = claude_bin() else { return };
    let marker = Marker::new();
    let fake = FakeApi::anthropic(vec![tool(
        "Bash",
        json!({ "command": marker.command(), "description": "Wait a long time" }),
        tokens(100, 0, 10),
    )]);
    let (env, _home) = claude_env(&bin, &fake, rules(&[], &[], &["Bash"]));
    times_out_leaving_nothing(&env, &fake, &marker);
}

/// A command that runs until it is killed, told apart from every other process by a name
/// unique to the test (the pid it would print means nothing outside a sandbox's pid namespace).
struct Marker(String);

impl Marker {
    fn new() -> Marker {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Marker(format!("maos-sleeper-{}-{nanos}", std::process::id()))
    }

    /// The shell command: makes the file, then follows it for ever.
    fn command(&self) -> String {
        format!("touch {0} && tail -f {0}", self.0)
    }

    /// The processes whose command line names the marker.
    fn processes(&self) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c).contains(&format!("tail\0-f\0{}", self.0))
                })
            })
            .filter(|pid| !process_gone(*pid))
            .collect()
    }
}

/// Runs a task with a short timeout whose agent runs `marker`'s command: the command runs,
/// the attempt times out, and neither the CLI's process group nor the command is left.
fn times_out_leaving_nothing(env: &Env, fake: &FakeApi, marker: &Marker) {
    let task = env.task("sleep", |t| {
        t.prompt = "Wait.".to_owned();
        t.timeout = Some(ms(8_000));
        t.max_attempts = MaxAttempts::new(1).unwrap();
    });
    assert!(
        eventually(Duration::from_secs(20), || !marker.processes().is_empty()),
        "{}",
        describe(env, &env.get(task.id), fake, "the command never ran")
    );
    let task = settled(env, task.id);
    let a = &task.attempts[0];
    assert_eq!(
        a.failure,
        Some(FailureKind::Timeout),
        "{}",
        describe(env, &task, fake, "not timed out")
    );
    let cli = a.pid.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || marker.processes().is_empty()
            && process_gone(cli)
            && !group_alive(cli)),
        "left behind: the command {:?}, the CLI {cli} ({})",
        marker.processes(),
        if process_gone(cli) { "gone" } else { "alive" },
    );
}

// ---------------------------------------------------------------------------------------------
// Codex

/// The model these tests name (Codex knows nothing about it, and says so in a warning item).
const CODEX_MODEL: &str = "gpt-fake";

/// The agent's price table: Codex reports tokens, MAOS prices them.
fn codex_price() -> Price {
    Price {
        input: Usd::parse("1.25").unwrap(),
        cached_input: Some(Usd::parse("0.125").unwrap()),
        output: Usd::parse("10").unwrap(),
    }
}

/// A supervisor whose `codex` agent runs the real CLI against `fake`, with a private
/// `CODEX_HOME` whose `config.toml` makes the fake the model provider.
fn codex_env(bin: &Path, fake: &FakeApi) -> (Env, tempfile::TempDir) {
    let home = private_home();
    let config = format!(
        r#"model = "{CODEX_MODEL}"
model_provider = "fake"

[model_providers.fake]
name = "Fake Responses API"
base_url = "{}"
wire_api = "responses"
env_key = "MAOS_FAKE_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0
"#,
        fake.base_url()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let env = Env::with(|c| {
        c.env = env_with(&[
            ("CODEX_HOME", home.path().to_str().unwrap()),
            ("MAOS_FAKE_OPENAI_KEY", "sk-fake-key"),
        ]);
    });
    let mut codex = agent(
        "codex",
        AdapterKind::Codex,
        Some(bin.to_str().unwrap()),
        &[],
    );
    codex.settings.model = Some(CODEX_MODEL.to_owned());
    codex.settings.env = env_names(&["CODEX_HOME", "MAOS_FAKE_OPENAI_KEY"]);
    // Commands may write in the working directory (Codex's own sandbox, read-only by default).
    codex.settings.args = ["--sandbox", "workspace-write"].map(str::to_owned).to_vec();
    codex.settings.price = Some(codex_price());
    env.register(codex);
    (env, home)
}

#[test]
fn codex_completes_with_its_own_thread_and_tokens_priced_by_the_agent() {
    let Some(bin) = codex_bin() else { return };
    let fake = FakeApi::openai(vec![
        tool(
            "exec_command",
            json!({ "cmd": "echo made > made.txt" }),
            tokens(1000, 400, 30),
        ),
        text("Made `made.txt`.", tokens(1100, 500, 20)),
    ]);
    let (env, _home) = codex_env(&bin, &fake);
    let task = env.task("make a file", |t| t.prompt = "Make made.txt.".to_owned());
    let task = settled(&env, task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        describe(&env, &task, &fake, "not completed")
    );
    let a = &task.attempts[0];
    assert_eq!(a.summary.as_deref(), Some("Made `made.txt`."));
    assert_eq!(a.session.as_deref().map(str::len), Some(36), "{a:#?}");
    // Codex adds up the turn's responses; its input tokens include the cached ones.
    let usage = Usage {
        input_tokens: 2100,
        cached_input_tokens: 900,
        output_tokens: 50,
        // 1200 fresh input tokens at $1.25, 900 cached at $0.125 and 50 output at $10 per
        // million: $0.0021125, rounded up to the micro-dollar.
        cost: Usd::from_micros(2113),
    };
    assert_eq!(a.usage, usage, "{a:#?}");
    assert_eq!(
        std::fs::read_to_string(workdir(&env, task.id).join("made.txt")).unwrap(),
        "made\n"
    );
    let log = env.log_text(task.id, 1);
    assert!(log.contains("echo made > made.txt"), "{log}");
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2, "{}", fake.describe());
    assert_eq!(calls[0].body["model"], CODEX_MODEL);
    assert_eq!(calls[1].tool_results().len(), 1, "{}", fake.describe());
}

#[test]
fn codex_resumes_its_thread_when_a_failed_attempt_is_retried() {
    let Some(bin) = codex_bin() else { return };
    // The model API refuses the first turn: Codex fails it, and the retry resumes the thread.
    let fake = FakeApi::openai(vec![
        Reply::Error {
            status: 400,
            message: "the fake refuses the first attempt".to_owned(),
        },
        text("Second time lucky.", tokens(100, 0, 5)),
    ]);
    let (env, _home) = codex_env(&bin, &fake);
    let task = env.task("retry", |t| {
        t.prompt = PROMPT_TO_REMEMBER.to_owned();
        t.max_attempts = MaxAttempts::new(2).unwrap();
    });
    let task = settled(&env, task.id);
    assert_resumed(&env, &task, &fake, FailureKind::Exit);
    assert_eq!(
        task.attempts[0].error.as_deref(),
        Some("exited with status 1: the fake refuses the first attempt (invalid_request_error)")
    );
    // The resumed thread's total is this attempt's own: the refused turn cost nothing.
    assert_eq!(task.attempts[1].usage.input_tokens, 100);
}

#[test]
fn codex_past_its_timeout_leaves_no_process_behind() {
    let Some(bin) = codex_bin() else { return };
    let marker = Marker::new();
    let fake = FakeApi::openai(vec![tool(
        "exec_command",
        json!({ "cmd": marker.command(), "yield_time_ms": 30000 }),
        tokens(100, 0, 10),
    )]);
    let (env, _home) = codex_env(&bin, &fake);
    times_out_leaving_nothing(&env, &fake, &marker);
}
