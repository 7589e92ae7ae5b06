//! `maos orchestrate create|list|show`, and tasks that belong to an orchestration.

use crate::support::Env;

fn orchestrate_session(env: &Env, json: &[&str]) {
    let step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(json);
        env.step(&all)
    };
    step(&["orchestrate", "list"]);
    let first = env.ok_json(&[
        "orchestrate",
        "create",
        "Release 1.0",
        "--goal",
        "Ship the first release",
    ]);
    let id = first["orchestration"]["id"].as_str().unwrap().to_owned();
    step(&["orchestrate", "create", "Cleanup"]);
    step(&["orchestrate", "list"]);
    step(&["orchestrate", "show", &id[..6]]);
    step(&[
        "task",
        "create",
        "Write the changelog",
        "--orchestration",
        &id[..6],
    ]);
    env.task("Unrelated", &[]);
    step(&["task", "list", "--orchestration", &id]);
}

#[test]
fn orchestrate_commands_human() {
    let env = Env::new();
    orchestrate_session(&env, &[]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn orchestrate_commands_json() {
    let env = Env::new();
    orchestrate_session(&env, &["--json"]);
    insta::assert_snapshot!(env.transcript());
}
