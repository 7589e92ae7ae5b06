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

#[test]
fn a_command_that_can_never_start_is_refused_at_registration() {
    let env = Env::new();
    let plain = env.dir().join("not-a-program.txt");
    std::fs::write(&plain, "just text").unwrap();
    let plain = plain.to_str().unwrap().to_owned();
    for (command, says) in [
        ("sh -c 'echo unclosed", "cannot be split into words"),
        ("/no/such/dir/agent.sh --fast", "does not exist"),
        ("no-such-program-for-maos --help", "is not on your PATH"),
        (plain.as_str(), "is not an executable file"),
    ] {
        let run = env.maos(&[
            "agent",
            "register",
            "broken",
            "--adapter",
            "command",
            "--command",
            command,
        ]);
        assert_eq!(run.code, 2, "{command}: {run:?}");
        assert!(run.stderr.contains(says), "{command}: {}", run.stderr);
    }
    // Nothing was registered.
    let listed = env.ok_json(&["agent", "list"]);
    assert_eq!(listed["agents"].as_array().unwrap().len(), 0, "{listed:#}");
    // The same in an agents file: every agent checked, none registered.
    let file = env.dir().join("agents.toml");
    std::fs::write(
        &file,
        "[[agent]]\nname = \"ok\"\nadapter = \"command\"\ncommand = \"sh\"\n\n\
         [[agent]]\nname = \"gone\"\nadapter = \"command\"\ncommand = \"no-such-program-for-maos\"\n",
    )
    .unwrap();
    let run = env.maos(&["agent", "register", "--from-file", file.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("agent \"gone\"") && run.stderr.contains("not on your PATH"),
        "{}",
        run.stderr
    );
    let listed = env.ok_json(&["agent", "list"]);
    assert_eq!(listed["agents"].as_array().unwrap().len(), 0, "{listed:#}");
}
