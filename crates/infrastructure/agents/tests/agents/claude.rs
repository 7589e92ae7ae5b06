//! Claude Code's protocol end to end: `ClaudeStream` drives the `claude` test double, which
//! checks MAOS's arguments and prompt message, replays a transcript, and follows MAOS's answers
//! to its permission requests, through real pipes.

/// The harness both adapters' tests use (included once, here; `codex.rs` uses it from here).
#[path = "../doubles/harness.rs"]
pub(crate) mod harness;

use std::ffi::OsString;

use maos_agents::claude::{ClaudeInvocation, ClaudeStream};
use maos_agents::report::Usage;
use maos_agents::stream::{StreamAction, StreamOutcome};
use maos_domain::policy::permission::{PermissionRule, PermissionRules};
use serde_json::{Value, json};

use harness::{Run, Spawn, double, transcript};

const SESSION: &str = "8f3c2a1e-5b7d-4c9a-9e2f-1a6b3c4d5e6f";
const PROMPT: &str = "Run the tests, then remove the build directory.";

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

/// The agent's rules in these tests: tests and reads allowed, deletions denied.
fn agent_rules() -> PermissionRules {
    rules(
        &["Bash(rm:*)"],
        &["Bash(git push:*)"],
        &["Read", "Bash(cargo test:*)"],
    )
}

fn run(
    invocation: &ClaudeInvocation,
    scenario: &str,
    env: &[(&str, &str)],
    rules: PermissionRules,
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
        input: ClaudeInvocation::prompt_message(PROMPT),
        close_after_input: false,
    }
    .run(&mut ClaudeStream::new(rules))
}

fn invocation() -> ClaudeInvocation {
    ClaudeInvocation {
        program: double("claude").display().to_string(),
        ..ClaudeInvocation::default()
    }
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

const DENIED_RM: &str =
    "MAOS: `Bash(rm -rf target)` is denied by rule `Bash(rm:*)` in the agent's deny list";

#[test]
fn permission_requests_are_answered_by_the_policy_end_to_end() {
    let answers = tempfile::NamedTempFile::new().unwrap();
    let answers_path = answers.path().display().to_string();
    let run = run(
        &invocation(),
        "claude/permissions.transcript",
        &[
            ("MAOS_TEST_EXPECT_PROMPT", PROMPT),
            ("MAOS_TEST_ANSWERS", &answers_path),
        ],
        agent_rules(),
    );
    run.assert_clean_exit();

    let rate_limit = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","resetsAt":1760000000,"rateLimitType":"five_hour"},"uuid":"a1b2c3d4-0004-4000-8000-000000000004","session_id":"8f3c2a1e-5b7d-4c9a-9e2f-1a6b3c4d5e6f"}"#;
    let summary = "The test suite has run. I could not remove `target`: MAOS denied `rm -rf \
                   target`, so the build directory is still there.";
    let usage = Usage {
        input_tokens: 26 + 5208 + 31_420,
        cached_input_tokens: 31_420,
        output_tokens: 412,
        cost_usd: Some(0.042_134_85),
    };
    assert_eq!(
        run.records(),
        [
            StreamAction::Session {
                id: SESSION.to_owned(),
                model: Some("claude-sonnet-4-5-20250929".to_owned()),
            },
            StreamAction::Text(
                "I'll run the test suite first, then clean up the build directory.".to_owned()
            ),
            tool_use("Bash", "cargo test --workspace"),
            StreamAction::Permission {
                tool: "Bash".to_owned(),
                subject: Some("cargo test --workspace".to_owned()),
                allowed: true,
                reason: "allowed by rule `Bash(cargo test:*)`".to_owned(),
            },
            // The allowed branch of the transcript.
            tool_result(
                "running 12 tests ............ test result: ok. 12 passed; 0 failed; 0 ignored; \
                 0 measured; 0 filtered out; finished in 0.41s",
                false
            ),
            StreamAction::Unknown {
                raw: rate_limit.to_owned()
            },
            tool_use("Bash", "rm -rf target"),
            StreamAction::Permission {
                tool: "Bash".to_owned(),
                subject: Some("rm -rf target".to_owned()),
                allowed: false,
                reason: DENIED_RM.to_owned(),
            },
            // The denied branch, which carries MAOS's message back to the model.
            tool_result(DENIED_RM, true),
            StreamAction::Text(summary.to_owned()),
            StreamAction::Usage(usage),
            StreamAction::CloseInput,
        ]
    );

    // What the double received is what the parser wrote, one answer per request.
    let writes = run.writes();
    assert_eq!(
        std::fs::read_to_string(answers.path()).unwrap(),
        writes.concat()
    );
    let answers: Vec<Value> = writes
        .iter()
        .map(|w| serde_json::from_str(w).unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            json!({
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": "5f0a7b1c-1111-4e2d-9a3b-6c7d8e9f0a1b",
                    "response": {
                        "behavior": "allow",
                        "updatedInput": {
                            "command": "cargo test --workspace",
                            "description": "Run the test suite",
                        },
                    },
                },
            }),
            json!({
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": "5f0a7b1c-2222-4e2d-9a3b-6c7d8e9f0a1b",
                    "response": { "behavior": "deny", "message": DENIED_RM },
                },
            }),
        ]
    );

    assert_eq!(
        run.outcome,
        StreamOutcome {
            session: Some(SESSION.to_owned()),
            model: Some("claude-sonnet-4-5-20250929".to_owned()),
            success: Some(true),
            summary: Some(summary.to_owned()),
            error: None,
            num_turns: Some(5),
            usage,
            // The result lists the call MAOS denied.
            permission_denials: vec!["Bash(rm -rf target)".to_owned()],
        }
    );
}

#[test]
fn other_rules_take_the_transcript_down_other_branches() {
    // Without a rule for `cargo test`, a person would have to approve it: denied for now, and
    // the double takes the denied branch there too.
    let run = run(
        &invocation(),
        "claude/permissions.transcript",
        &[],
        rules(&["Bash(rm:*)"], &[], &["Read"]),
    );
    run.assert_clean_exit();
    let ask = "MAOS: `Bash(cargo test --workspace)` needs a person's approval (no rule in the \
               agent's permissions allows it); approvals are not available yet, so it is denied";
    let permissions: Vec<(bool, String)> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            StreamAction::Permission {
                allowed, reason, ..
            } => Some((*allowed, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        permissions,
        [(false, ask.to_owned()), (false, DENIED_RM.to_owned())]
    );
    let results: Vec<&StreamAction> = run
        .actions
        .iter()
        .filter(|a| matches!(a, StreamAction::ToolResult { .. }))
        .collect();
    assert_eq!(
        results,
        [
            &tool_result("The tests could not be run: permission denied.", true),
            &tool_result(DENIED_RM, true),
        ]
    );
    assert!(run.writes()[0].contains(r#""behavior":"deny""#));
    assert_eq!(run.outcome.success, Some(true));
}

#[test]
fn an_error_result_of_a_resumed_run_is_a_failure_with_its_cost() {
    let inv = ClaudeInvocation {
        model: Some("claude-opus-4-1".to_owned()),
        resume: Some(SESSION.to_owned()),
        extra_args: vec!["--max-turns".to_owned(), "2".to_owned()],
        ..invocation()
    };
    let expect = format!("--model claude-opus-4-1 --resume={SESSION} --max-turns 2");
    let run = run(
        &inv,
        "claude/max-turns.transcript",
        &[("MAOS_TEST_EXPECT_ARGS", &expect)],
        agent_rules(),
    );
    run.assert_clean_exit();
    assert_eq!(
        run.outcome,
        StreamOutcome {
            session: Some(SESSION.to_owned()),
            model: Some("claude-opus-4-1-20250805".to_owned()),
            success: Some(false),
            summary: Some("Let me look at the failing test first.".to_owned()),
            error: Some("Claude Code stopped at its maximum number of turns".to_owned()),
            num_turns: Some(2),
            usage: Usage {
                input_tokens: 20 + 2048 + 2048,
                cached_input_tokens: 2048,
                output_tokens: 180,
                cost_usd: Some(0.0318),
            },
            permission_denials: Vec::new(),
        }
    );
    assert!(run.actions.contains(&StreamAction::Permission {
        tool: "Read".to_owned(),
        subject: Some("/work/repo/src/time.rs".to_owned()),
        allowed: true,
        reason: "allowed by rule `Read`".to_owned(),
    }));
    assert_eq!(run.actions.last(), Some(&StreamAction::CloseInput));
}

#[test]
fn the_double_refuses_arguments_maos_must_not_send() {
    let missing = ClaudeInvocation {
        extra_args: vec!["--model".to_owned()],
        ..invocation()
    };
    // A flag the double requires, and one that is not there.
    let run_missing = run(
        &missing,
        "claude/permissions.transcript",
        &[("MAOS_TEST_EXPECT_ARGS", "--verbose --resume=x")],
        agent_rules(),
    );
    assert_eq!(run_missing.status.code(), Some(2));
    assert!(
        run_missing
            .stderr
            .contains("expected the argument --resume=x"),
        "{}",
        run_missing.stderr
    );
    assert!(run_missing.actions.is_empty());
    assert_eq!(run_missing.outcome, StreamOutcome::default());

    // Skipping permissions and asking MAOS at once is contradictory.
    let both = ClaudeInvocation {
        extra_args: vec!["--dangerously-skip-permissions".to_owned()],
        ..invocation()
    };
    let run_both = run(&both, "claude/permissions.transcript", &[], agent_rules());
    assert_eq!(run_both.status.code(), Some(2));
    assert!(
        run_both.stderr.contains("exactly one of"),
        "{}",
        run_both.stderr
    );
}
