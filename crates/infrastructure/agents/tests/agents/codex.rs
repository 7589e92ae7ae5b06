//! Codex's protocol end to end: `CodexStream` reads the `codex` test double, which checks MAOS's
//! arguments, reads the prompt from stdin until it is closed, and prints a JSONL transcript,
//! through real pipes.

use std::ffi::OsString;

use maos_agents::codex::{CodexInvocation, CodexStream};
use maos_agents::report::Usage;
use maos_agents::stream::{Price, StreamAction, StreamOutcome};

use crate::claude::harness::{Run, Spawn, double, transcript};

const PROMPT: &str = "Make parse_duration accept unit suffixes such as 90s.";

fn invocation() -> CodexInvocation {
    CodexInvocation {
        program: double("codex").display().to_string(),
        ..CodexInvocation::default()
    }
}

fn run(
    invocation: &CodexInvocation,
    scenario: &str,
    env: &[(&str, &str)],
    price: Option<Price>,
) -> Run {
    let mut env: Vec<(String, OsString)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    env.push((
        "MAOS_TEST_TRANSCRIPT".to_owned(),
        transcript(scenario).into_os_string(),
    ));
    Spawn {
        program: invocation.program.clone().into(),
        args: invocation.args(),
        env,
        input: CodexInvocation::prompt_input(PROMPT),
        close_after_input: true,
    }
    .run(&mut CodexStream::new(price))
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

const THREAD: &str = "0199a213-81c0-7800-8aa1-bbab2a035a53";

#[test]
fn a_successful_run_reports_tools_summary_and_priced_usage() {
    let inv = CodexInvocation {
        model: Some("gpt-5-codex".to_owned()),
        extra_args: vec!["--sandbox".to_owned(), "workspace-write".to_owned()],
        ..invocation()
    };
    let price = Price {
        input_per_mtok: 1.25,
        cached_input_per_mtok: Some(0.125),
        output_per_mtok: 10.0,
    };
    let run = run(
        &inv,
        "codex/success.jsonl",
        &[
            (
                "MAOS_TEST_EXPECT_ARGS",
                "--model gpt-5-codex --sandbox workspace-write",
            ),
            ("MAOS_TEST_EXPECT_PROMPT", PROMPT),
        ],
        Some(price),
    );
    run.assert_clean_exit();

    // 6227 fresh input tokens at 1.25, 41984 cached at 0.125, 1873 output at 10 (per million).
    let cost = (6227.0 * 1.25 + 41_984.0 * 0.125 + 1873.0 * 10.0) / 1e6;
    let Some(StreamAction::Usage(reported)) = run.actions.last() else {
        panic!("the last action is not the usage: {:#?}", run.actions)
    };
    assert!((reported.cost_usd.unwrap() - cost).abs() < 1e-12);
    let usage = Usage {
        input_tokens: 48_211,
        cached_input_tokens: 41_984,
        output_tokens: 1873,
        cost_usd: reported.cost_usd,
    };
    let summary = "`parse_duration` now accepts `s`, `m` and `h` suffixes (so `90s` parses), \
                   with a test for each; `cargo test` passes (8 tests).";
    assert_eq!(
        run.actions,
        [
            StreamAction::Session {
                id: THREAD.to_owned(),
                model: None
            },
            tool_use("command", r#"bash -lc 'rg -n "fn parse_duration" src'"#),
            tool_result(
                "exit 0: src/time.rs:3:pub fn parse_duration(s: &str) -> Option<Duration> {",
                false
            ),
            tool_use(
                "todo_list",
                "0/2 done; next: Accept unit suffixes in parse_duration"
            ),
            tool_use("file_change", "update src/time.rs, add tests/time.rs"),
            tool_result("completed", false),
            tool_use("todo_list", "1/2 done; next: Run the test suite"),
            tool_use("command", "bash -lc 'cargo test'"),
            tool_result(
                "exit 0: running 8 tests ........ test result: ok. 8 passed; 0 failed; 0 ignored",
                false
            ),
            StreamAction::Unknown {
                raw: r#"{"type":"item.plan.delta","item_id":"item_5","delta":"- verify"}"#
                    .to_owned()
            },
            StreamAction::Text(summary.to_owned()),
            StreamAction::Usage(usage),
        ]
    );
    assert_eq!(
        run.outcome,
        StreamOutcome {
            session: Some(THREAD.to_owned()),
            model: None,
            success: Some(true),
            summary: Some(summary.to_owned()),
            error: None,
            num_turns: None,
            usage,
            permission_denials: Vec::new(),
        }
    );
}

#[test]
fn a_failed_turn_is_a_failure_with_the_last_error() {
    let run = run(
        &invocation(),
        "codex/failure.jsonl",
        &[("MAOS_TEST_EXIT", "1")],
        None,
    );
    assert!(!run.timed_out);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        run.outcome,
        StreamOutcome {
            session: Some("0199a2f0-4d11-7c30-9e21-5b6c7d8e9f00".to_owned()),
            model: None,
            success: Some(false),
            summary: Some("I'll start by reading the failing test.".to_owned()),
            error: Some(
                "unexpected status 401 Unauthorized: Missing bearer or basic authentication in \
                 header, url: https://api.openai.com/v1/responses"
                    .to_owned()
            ),
            num_turns: None,
            usage: Usage::default(),
            permission_denials: Vec::new(),
        }
    );
    // No usage was reported, and nothing is written to a Codex run.
    assert!(
        !run.actions
            .iter()
            .any(|a| matches!(a, StreamAction::Usage(_) | StreamAction::Write(_)))
    );
}

#[test]
fn a_resumed_run_names_the_session_after_resume() {
    let inv = CodexInvocation {
        resume: Some(THREAD.to_owned()),
        ..invocation()
    };
    let run = run(
        &inv,
        "codex/success.jsonl",
        &[("MAOS_TEST_EXPECT_RESUME", THREAD)],
        None,
    );
    run.assert_clean_exit();
    assert_eq!(run.outcome.success, Some(true));
    assert_eq!(run.outcome.usage.cost_usd, None);
    assert_eq!(run.outcome.session.as_deref(), Some(THREAD));
}

#[test]
fn the_double_refuses_a_prompt_not_read_from_stdin() {
    // Without `-` Codex would take no prompt from stdin; a working directory it does not trust
    // and a resume MAOS did not ask for are refused too.
    let mut args = invocation().args();
    assert_eq!(args.pop().as_deref(), Some("-"));
    let mut env = vec![(
        "MAOS_TEST_TRANSCRIPT".to_owned(),
        transcript("codex/success.jsonl").into_os_string(),
    )];
    let spawn = |args: Vec<String>, env: Vec<(String, OsString)>| Spawn {
        program: double("codex"),
        args,
        env,
        input: PROMPT.as_bytes().to_vec(),
        close_after_input: true,
    };
    let run_no_dash = spawn(args, env.clone()).run(&mut CodexStream::new(None));
    assert_eq!(run_no_dash.status.code(), Some(2));
    assert!(
        run_no_dash.stderr.contains("expected - "),
        "{}",
        run_no_dash.stderr
    );
    assert!(run_no_dash.actions.is_empty());

    // Outside a trusted git repository (MAOS's working directory may be a plain directory)
    // Codex refuses to run without `--skip-git-repo-check`.
    let unchecked: Vec<String> = invocation()
        .args()
        .into_iter()
        .filter(|a| a != "--skip-git-repo-check")
        .collect();
    let run_checked = spawn(unchecked, env.clone()).run(&mut CodexStream::new(None));
    assert_eq!(run_checked.status.code(), Some(2));
    assert!(
        run_checked
            .stderr
            .contains("Not inside a trusted directory"),
        "{}",
        run_checked.stderr
    );

    env.push(("MAOS_TEST_EXPECT_RESUME".to_owned(), "abc".into()));
    let run_no_resume = spawn(invocation().args(), env).run(&mut CodexStream::new(None));
    assert_eq!(run_no_resume.status.code(), Some(2));
    assert!(
        run_no_resume
            .stderr
            .contains("expected resume abc, got (none)"),
        "{}",
        run_no_resume.stderr
    );
}
