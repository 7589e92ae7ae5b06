//! `maos task create|list|show|assign|cancel|depend`, as text and as JSON.

use crate::support::Env;

fn task_session(env: &Env, json: &[&str]) {
    let step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(json);
        env.step(&all)
    };
    env.agent("claude-1", "rust,test");
    env.agent("reviewer", "review");

    let a = env.task(
        "Fix the flaky login test",
        &[
            "-c",
            "rust",
            "--priority",
            "high",
            "--prompt",
            "The login test fails one run in ten.\nFind out why.",
        ],
    );
    step(&[
        "task",
        "create",
        "Review the fix",
        "--capability",
        "review",
        "--depends-on",
        &a[..5],
        "--risk",
        "medium",
        "--max-attempts",
        "2",
        "--timeout",
        "1h30m",
    ]);
    let prompt = env.dir().join("prompt.md");
    std::fs::write(&prompt, "Write the release notes.\n").unwrap();
    step(&[
        "task",
        "create",
        "Release notes",
        "--prompt-file",
        prompt.to_str().unwrap(),
        "--tier",
        "strategic",
    ]);
    env.step_stdin(
        &[
            &["task", "create", "Explain the diff", "--prompt-file", "-"][..],
            json,
        ]
        .concat(),
        "diff --git a/x b/x\n",
    );
    step(&[
        "task",
        "create",
        "Idempotent",
        "--idempotency-key",
        "req-42",
    ]);
    step(&[
        "task",
        "create",
        "Idempotent again",
        "--idempotency-key",
        "req-42",
    ]);

    step(&["task", "list"]);
    step(&["task", "list", "--status", "pending"]);
    step(&["task", "list", "--capability", "rust"]);
    let page = env.ok_json(&["task", "list", "--limit", "2"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    step(&["task", "list", "--limit", "2"]);
    step(&["task", "list", "--limit", "2", "--cursor", &cursor]);

    step(&["task", "show", &a[..4]]);
    step(&["task", "assign", &a[..4]]);
    step(&["task", "show", &a]);

    let c = env.task("Cancel me", &[]);
    let d = env.task("Depends on the cancelled one", &[]);
    step(&["task", "depend", &d[..6], "--on", &c[..6]]);
    step(&["task", "cancel", &c[..6], "--reason", "not needed"]);
    step(&["task", "show", &d[..6]]);
    let e = env.task("Assigned by name", &["-c", "review"]);
    step(&["task", "assign", &e, "--agent", "reviewer"]);
}

#[test]
fn task_commands_human() {
    let env = Env::new();
    task_session(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn task_commands_json() {
    let env = Env::new();
    task_session(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}
