//! `maos agent register|list|show|drain|remove`, as text and as JSON.

use crate::support::Env;

fn agent_session(env: &Env, json: &[&str]) {
    let step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(json);
        env.step(&all)
    };
    step(&[
        "agent",
        "register",
        "claude-1",
        "--adapter",
        "claude-code",
        "--capability",
        "rust,test",
    ]);
    step(&[
        "agent",
        "register",
        "lint",
        "--adapter",
        "command",
        "--command",
        "cargo clippy",
        "-c",
        "lint",
        "--slots",
        "2",
        "--tier",
        "strategic",
    ]);
    step(&["agent", "list"]);
    step(&["agent", "list", "--capability", "lint"]);
    step(&["agent", "show", "claude-1"]);
    step(&["agent", "drain", "lint"]);
    step(&["agent", "list", "--status", "draining"]);
    step(&["agent", "remove", "lint"]);
    step(&["agent", "list"]);
    step(&["agent", "list", "--status", "removed"]);
    // A removed agent's name can be registered again.
    step(&["agent", "register", "lint", "--adapter", "codex"]);
    step(&["agent", "list", "--capability", "go"]);
}

#[test]
fn agent_commands_human() {
    let env = Env::new();
    agent_session(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn agent_commands_json() {
    let env = Env::new();
    agent_session(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}
