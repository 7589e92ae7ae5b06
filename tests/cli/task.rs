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

/// `task create --agent`: only that agent takes the task, and every attempt of it. Two
/// simulated agents that could both take it; the daemon runs it on the one named, each time.
#[test]
fn a_task_created_with_agent_runs_on_that_agent_only() {
    let env = Env::new();
    for name in ["sim-a", "sim-b"] {
        env.ok_json(&[
            "agent",
            "register",
            name,
            "--adapter",
            "sim",
            "--capability",
            "sim",
            "--slots",
            "4",
        ]);
    }
    let pinned: Vec<String> = (0..4)
        .map(|i| env.task(&format!("Pinned {i}"), &["-c", "sim", "--agent", "sim-b"]))
        .collect();
    let free = env.task("Anyone", &["-c", "sim"]);

    let doc = env.ok_json(&["task", "show", &pinned[0]]);
    assert_eq!(doc["task"]["agent"], "sim-b", "{doc:#}");
    assert_eq!(
        env.ok_json(&["task", "show", &free])["task"]["agent"],
        serde_json::Value::Null
    );
    let shown = env.maos(&["task", "show", &pinned[0]]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("agent") && l.ends_with("sim-b only")),
        "{}",
        shown.stdout
    );
    let bad = env.maos(&["task", "create", "Bad", "--agent", "not a name"]);
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("--agent"), "{}", bad.stderr);

    if crate::support::in_process() {
        // Only the daemon runs agents.
        return;
    }
    for id in &pinned {
        let t = crate::fixtures::wait_state(&env, id, "completed");
        let agents: Vec<&str> = t["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent"].as_str().unwrap())
            .collect();
        assert!(
            !agents.is_empty() && agents.iter().all(|a| *a == "sim-b"),
            "{id}: {agents:?}"
        );
    }
    crate::fixtures::wait_state(&env, &free, "completed");
}

#[test]
fn a_tasks_file_creates_every_task_in_one_go() {
    let env = Env::new();
    let first = env.task("Build it", &["--no-repo"]);
    let file = env.dir().join("tasks.jsonl");
    std::fs::write(
        &file,
        format!(
            "{{\"title\": \"Test it\", \"depends_on\": [\"{}\"], \"capabilities\": [\"test\"], \"no_repo\": true}}\n\
             \n\
             {{\"title\": \"Document it\", \"priority\": \"high\", \"idempotency_key\": \"docs-1\", \"no_repo\": true}}\n",
            &first[..8]
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let doc = env.ok_json(&["task", "create", "--from-file", path]);
    assert_eq!(doc["created"], 2, "{doc}");
    let tasks = doc["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["line"], 1);
    assert_eq!(tasks[0]["task"]["title"], "Test it");
    assert_eq!(
        tasks[0]["task"]["state"], "pending",
        "it waits for its dependency"
    );
    assert_eq!(tasks[0]["task"]["depends_on"][0], first.as_str());
    assert_eq!(tasks[1]["line"], 3);
    assert_eq!(tasks[1]["task"]["priority"], "high");
    assert_eq!(tasks[1]["created"], true);

    // Standard input, again: the idempotency key finds the task made before.
    let again = env.step_stdin(
        &["task", "create", "--from-file", "-"],
        "{\"title\": \"Document it\", \"idempotency_key\": \"docs-1\", \"no_repo\": true}\n\
         {\"title\": \"Release it\", \"no_repo\": true}\n",
    );
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stderr.contains("1 task(s) existed already"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("created 1 task in one transaction"),
        "{}",
        again.stderr
    );
    assert!(again.stdout.contains("Release it"), "{}", again.stdout);
    let listed = env.ok_json(&["task", "list"]);
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 4, "{listed}");

    // The flags of one task do not go with a file.
    let mixed = env.maos(&["task", "create", "--from-file", path, "--priority", "high"]);
    assert_eq!(mixed.code, 2, "{}", mixed.stderr);
    assert!(
        mixed.stderr.contains("cannot be used with"),
        "{}",
        mixed.stderr
    );
    let neither = env.maos(&["task", "create"]);
    assert_eq!(neither.code, 2, "{}", neither.stderr);
}
