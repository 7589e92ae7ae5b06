//! The planning engine end to end, through the real binary and its daemon: scripted planner
//! agents (command adapter, each answer a shell script's) that give a good plan, a plan the
//! second round fixes, garbage, a plan that never passes, too many tasks, and hostile text;
//! the versions a person reviews, edits, regenerates, diffs, approves and rejects. Only the
//! daemon runs agents, so these tests do nothing in process.

use std::path::Path;

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::support::{Env, in_process};

/// A plan file (JSON) with `tasks`, each `(id, title, depends_on, concerns)`, verified by
/// `true`, needing the capability `code`.
fn plan_json(tasks: &[(&str, &str, &[&str], &[&str])]) -> String {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(id, title, deps, concerns)| {
            json!({
                "id": id,
                "title": title,
                "prompt": format!("Do {title}."),
                "capabilities": ["code"],
                "depends_on": deps,
                "concerns": concerns,
                "verify": "true",
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({"goal": "Greet people", "tasks": tasks})).unwrap()
}

/// A good two-task plan.
fn good_plan() -> String {
    plan_json(&[
        ("greet", "Write greet()", &[], &["src/greet.rs"]),
        ("tests", "Test greet()", &["greet"], &["tests/**"]),
    ])
}

/// Registers a strategic planner whose answers are `answers` in turn (the last one again when
/// they run out): each written to `$MAOS_RESULT_FILE` as a reasoning line and a fenced block.
/// The brief of each round is kept in `<dir>/brief-<n>.md`.
fn planner(env: &Env, dir: &Path, answers: &[String]) -> String {
    for (i, a) in answers.iter().enumerate() {
        std::fs::write(dir.join(format!("answer-{}", i + 1)), a).unwrap();
    }
    let last = answers.len();
    let body = format!(
        "n=$(cat {d}/round 2>/dev/null || echo 0)\n\
         n=$((n + 1))\n\
         echo $n > {d}/round\n\
         cp \"$MAOS_PROMPT_FILE\" {d}/brief-$n.md\n\
         a=$n\n\
         if [ $a -gt {last} ]; then a={last}; fi\n\
         cp {d}/answer-$a \"$MAOS_RESULT_FILE\"\n",
        d = dir.display()
    );
    let command = script(dir, "planner", &body);
    tiered_agent(env, "planner", "plan", "strategic", 1, &command);
    command
}

/// An answer: a reason, then `plan` in a fenced json block.
fn answer(plan: &str) -> String {
    format!("Two small steps, tests after the code.\n\n```json\n{plan}\n```\n")
}

/// A worker that does any `code` task by writing a file named after it.
fn worker(env: &Env, dir: &Path) {
    let command = script(
        dir,
        "worker",
        "printf 'done\\n' > \"$(echo \"$MAOS_TASK_TITLE\" | tr -c 'a-zA-Z0-9\\n' _).txt\"\n",
    );
    tiered_agent(env, "worker", "code", "tactical", 2, &command);
}

/// `maos plan` with `args`, bounded; its JSON document and exit code.
fn plan(env: &Env, args: &[&str]) -> (Value, i32, String) {
    let mut all = vec!["plan"];
    all.extend(args);
    all.push("--json");
    let run = env.step_bounded(&all, None, &[]);
    let doc = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (doc, run.code, run.stderr)
}

fn orchestration_id(doc: &Value) -> String {
    doc["orchestration"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_good_plan_becomes_version_1_then_runs_once_approved() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(
        &env,
        &[
            "Greet people",
            "--repo",
            &repo.arg(),
            "--notes",
            "Keep it small.",
            "--max-tasks",
            "5",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    let o = orchestration_id(&doc);
    assert_eq!(doc["orchestration"]["status"], "awaiting_plan_approval");
    assert_eq!(doc["orchestration"]["plan_version"], 1);
    let v = &doc["version"];
    assert_eq!(v["number"], 1);
    assert_eq!(v["origin"]["kind"], "planner");
    assert_eq!(v["origin"]["agent"], "planner");
    assert_eq!(v["rationale"], "Two small steps, tests after the code.");
    let tasks = v["plan"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["depends_on"], json!(["greet"]));

    // The planner was told the goal, the notes, the repository, the agents, the rules and
    // the format; `plan brief` prints exactly that.
    let brief = std::fs::read_to_string(dir.path().join("brief-1.md")).unwrap();
    for part in [
        "Greet people",
        "Keep it small.",
        "README.md",
        "- planner (strategic tier",
        "- worker (tactical tier",
        "At most 5 tasks",
        "\"$schema\"",
    ] {
        assert!(
            brief.contains(part),
            "{part:?} missing from the brief:\n{brief}"
        );
    }
    let shown = env.step(&["plan", "brief", &o]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(shown.stdout.trim_end(), brief.trim_end());

    // Nothing runs before the person approves: only the planning task exists.
    assert_eq!(tasks_listed(&env), 1);
    let shown = env.step(&["plan", "show", &o, "--versions"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    for part in [
        "plan version 1 of 1, by planner planner",
        "Two small steps",
        "greet",
        "after greet",
        "Versions:\n  1  2 task(s), by planner planner (task ",
        ": \"Two small steps, tests after the code.\"",
        "version 1 proposed",
    ] {
        assert!(
            shown.stdout.contains(part),
            "{part:?} missing:\n{}",
            shown.stdout
        );
    }

    let approved = env.ok_json(&["plan", "approve", &o]);
    assert_eq!(approved["orchestration"]["status"], "running");
    assert_eq!(approved["tasks"].as_array().unwrap().len(), 2);
    let tests = approved["tasks"][1]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &tests, "completed");
    let history = env.ok_json(&["plan", "show", &o]);
    let record: Vec<&str> = history["record"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(record, ["planning", "proposed", "approved"]);
    assert_eq!(history["record"][2]["by"], "person");
}

#[test]
fn problems_go_back_to_the_same_planner_and_the_second_round_fixes_them() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let broken = r#"{"goal": "Greet", "tasks": [
        {"id": "greet", "titel": "Write greet()", "capabilities": ["code"]},
        {"id": "tests", "title": "Test it", "depends_on": ["gret"], "capabilities": ["code"]}
    ]}"#;
    planner(&env, dir.path(), &[answer(broken), answer(&good_plan())]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["version"]["number"], 1);
    assert_eq!(doc["version"]["origin"]["attempt"], 2);
    // The second round was told every problem of the first, with its place.
    let second = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    for part in [
        "unknown key",
        "titel",
        "did you mean",
        "gret",
        "3 problems",
        "has no title",
    ] {
        assert!(
            second.contains(part),
            "{part:?} missing from round 2:\n{second}"
        );
    }
    let planning = doc["record"][0]["task"].as_str().unwrap().to_owned();
    let t = env.ok_json(&["task", "show", &planning]);
    assert_eq!(t["task"]["state"], "completed");
    assert_eq!(t["task"]["attempts"].as_array().unwrap().len(), 2);
}

#[test]
fn garbage_ends_the_planning_after_its_rounds_with_nothing_created() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(
        &env,
        dir.path(),
        &["I would rather not plan today.".to_owned()],
    );
    let (doc, code, stderr) = plan(
        &env,
        &["Greet people", "--repo", &repo.arg(), "--rounds", "2"],
    );
    assert_eq!(code, 7, "{stderr}\n{doc:#}");
    assert!(
        stderr.contains("no plan that passes the checks"),
        "{stderr}"
    );
    assert!(stderr.contains("maos plan edit"), "{stderr}");
    assert_eq!(doc["orchestration"]["status"], "draft");
    assert_eq!(doc["orchestration"]["plan_version"], 0);
    assert_eq!(doc["version"], Value::Null);
    let failed = doc["record"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(failed["type"], "failed");
    assert_eq!(failed["text"], Value::Null);
    assert!(
        failed["problems"][0].as_str().unwrap().contains("no plan"),
        "{failed:#}"
    );
    // The planning task is the only task, blocked after its two rounds; nothing else exists.
    assert_eq!(tasks_listed(&env), 1);
    let planning = doc["record"][0]["task"].as_str().unwrap();
    assert_eq!(
        env.ok_json(&["task", "show", planning])["task"]["state"],
        "blocked"
    );
}

#[test]
fn a_plan_that_never_passes_is_kept_for_a_person_who_fixes_it_with_edit() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let cycle = plan_json(&[
        ("a", "First", &["b"], &["a/**"]),
        ("b", "Second", &["a"], &["b/**"]),
    ]);
    planner(&env, dir.path(), &[answer(&cycle)]);
    worker(&env, dir.path());
    let (doc, code, _) = plan(&env, &["Two steps", "--repo", &repo.arg(), "--rounds", "2"]);
    assert_eq!(code, 7);
    let o = orchestration_id(&doc);
    let failed = doc["record"].as_array().unwrap().last().unwrap().clone();
    assert!(
        failed["problems"].to_string().contains("cycle"),
        "{failed:#}"
    );
    assert_eq!(failed["text"].as_str().unwrap().trim(), cycle.trim());

    // A person fixes it: a file with problems is refused with each one placed in the file,
    // and stores nothing; the fixed file becomes version 1.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, cycle.replace("\"title\"", "\"titel\"")).unwrap();
    let before = env.last_seq();
    let refused = env.step(&["plan", "edit", &o, "--file", &bad.display().to_string()]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("{}:", bad.display())) && refused.stderr.contains("titel"),
        "{}",
        refused.stderr
    );
    assert_eq!(env.last_seq(), before, "a refused edit wrote something");
    let fixed = dir.path().join("fixed.json");
    std::fs::write(
        &fixed,
        plan_json(&[
            ("a", "First", &[], &["a/**"]),
            ("b", "Second", &["a"], &["b/**"]),
        ]),
    )
    .unwrap();
    let edited = env.ok_json(&["plan", "edit", &o, "--file", &fixed.display().to_string()]);
    assert_eq!(edited["orchestration"]["plan_version"], 1);
    assert_eq!(edited["orchestration"]["status"], "awaiting_plan_approval");
    let shown = env.ok_json(&["plan", "show", &o]);
    assert_eq!(shown["version"]["origin"]["kind"], "person");
}

#[test]
fn too_many_tasks_and_concerns_that_hold_everything_back_are_refused_with_what_to_do() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let many: Vec<(&str, &str, &[&str], &[&str])> = ids
        .iter()
        .map(|id| (id.as_str(), "Step", &[][..], &[][..]))
        .collect();
    let serial = plan_json(&[
        ("a", "One", &[], &["src/**"]),
        ("b", "Two", &[], &["src/lib.rs"]),
        ("c", "Three", &[], &["src/**"]),
    ]);
    planner(
        &env,
        dir.path(),
        &[answer(&plan_json(&many)), answer(&serial)],
    );
    worker(&env, dir.path());
    let (doc, code, _) = plan(
        &env,
        &[
            "Many steps",
            "--repo",
            &repo.arg(),
            "--rounds",
            "2",
            "--max-tasks",
            "5",
        ],
    );
    assert_eq!(code, 7, "{doc:#}");
    let first = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    assert!(first.contains("12 tasks; at most 5"), "{first}");
    let failed = doc["record"].as_array().unwrap().last().unwrap().clone();
    assert!(
        failed["problems"][0]
            .as_str()
            .unwrap()
            .contains("the concerns hold every task back"),
        "{failed:#}"
    );
    assert_eq!(tasks_listed(&env), 1, "a refused plan created tasks");
}

#[test]
fn hostile_ids_and_titles_are_refused_or_shown_escaped() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // Round 1: an id that is a path and a title with a terminal escape: both refused.
    let hostile = plan_json(&[
        ("../../etc", "Escape", &[], &["a"]),
        ("ok", "Red \u{1b}[31mtitle\u{1b}[0m", &[], &["b"]),
    ]);
    // Round 2: a bidirectional override in a title, an escape in a prompt: accepted as data,
    // never shown raw.
    let sneaky = plan_json(&[("ok", "Sneaky \u{202e}txt.exe", &[], &["x"])])
        .replace("Do Sneaky", "\\u001b]0;pwned\\u0007 Do Sneaky");
    planner(&env, dir.path(), &[answer(&hostile), answer(&sneaky)]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Hostile", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    let second = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    assert!(second.contains("../../etc"), "{second}");
    assert!(second.contains("control character"), "{second}");
    let o = orchestration_id(&doc);
    // JSON keeps the exact text; people see it escaped, never a raw control or override.
    assert_eq!(
        doc["version"]["plan"]["tasks"][0]["title"],
        "Sneaky \u{202e}txt.exe"
    );
    let shown = env.step(&["plan", "show", &o]);
    assert_eq!(shown.code, 0);
    assert!(!shown.stdout.contains('\u{202e}'), "{:?}", shown.stdout);
    assert!(
        shown.stdout.contains("Sneaky \\u{202e}txt.exe"),
        "{}",
        shown.stdout
    );
    let brief = env.step(&["plan", "brief", &o]);
    assert!(!brief.stdout.contains('\u{1b}'), "{:?}", brief.stdout);
}

#[test]
fn regenerate_with_feedback_makes_version_2_and_diff_names_what_changed() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let second = plan_json(&[
        ("tests", "Test greet()", &[], &["tests/**"]),
        ("greet", "Write greet()", &["tests"], &["src/greet.rs"]),
        ("docs", "Document greet()", &["greet"], &["README.md"]),
    ]);
    planner(&env, dir.path(), &[answer(&good_plan()), answer(&second)]);
    worker(&env, dir.path());
    let (doc, code, _) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0);
    let o = orchestration_id(&doc);
    let (doc, code, stderr) = plan(
        &env,
        &["regenerate", &o, "--feedback", "Tests first, and docs."],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["version"]["number"], 2);
    let brief = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    for part in [
        "Tests first, and docs.",
        "The current plan (version 1)",
        "Write greet()",
    ] {
        assert!(brief.contains(part), "{part:?} missing:\n{brief}");
    }
    let diff = env.ok_json(&["plan", "diff", &o]);
    assert_eq!(
        (diff["from"].clone(), diff["to"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(diff["added"][0]["key"], "docs");
    assert_eq!(diff["removed"], json!([]));
    let changed: Vec<(String, Value)> = diff["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap().to_owned(), c["fields"].clone()))
        .collect();
    assert_eq!(
        changed,
        [
            ("tests".to_owned(), json!(["depends_on"])),
            ("greet".to_owned(), json!(["depends_on"]))
        ]
    );
    let text = env.step(&["plan", "diff", &o, "1", "2"]);
    assert!(
        text.stdout.contains("+ docs  Document greet()"),
        "{}",
        text.stdout
    );
    // Approving an older version is refused; the newest runs.
    let old = env.step(&["plan", "approve", &o, "--version", "1"]);
    assert_eq!(old.code, 4, "{}", old.stderr);
}

#[test]
fn rejecting_cancels_the_orchestration_and_creates_nothing() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    worker(&env, dir.path());
    let (doc, _, _) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    let o = orchestration_id(&doc);
    let rejected = env.ok_json(&["plan", "reject", &o, "--reason", "not now"]);
    assert_eq!(rejected["orchestration"]["status"], "cancelled");
    assert_eq!(tasks_listed(&env), 1);
    let again = env.step(&["plan", "approve", &o]);
    assert_eq!(again.code, 4, "{}", again.stderr);
    let shown = env.ok_json(&["plan", "show", &o]);
    let last = shown["record"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "rejected");
    assert_eq!(last["reason"], "not now");
}

#[test]
fn with_approve_plans_auto_a_good_plan_runs_at_once() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("approve_plans = \"auto\"\n");
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    worker(&env, dir.path());
    let out = dir.path().join("plan.json");
    let (doc, code, stderr) = plan(
        &env,
        &[
            "Greet people",
            "--repo",
            &repo.arg(),
            "--out",
            &out.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["orchestration"]["status"], "running");
    assert_eq!(doc["record"][2]["by"], "config");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["tasks"][0]["id"], "greet");
    assert_eq!(tasks_listed(&env), 3);
}

#[test]
fn without_a_planner_the_error_says_how_to_get_one() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    worker(&env, dir.path());
    let run = env.step(&["plan", "Greet people", "--no-repo"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("no agent can plan"), "{}", run.stderr);
    assert!(run.stderr.contains("--planner"), "{}", run.stderr);
    assert_eq!(tasks_listed(&env), 0);
}

#[test]
fn orchestrate_run_goal_plans_then_runs_with_yes_and_watch() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    worker(&env, dir.path());
    let run = env.step_bounded(
        &[
            "orchestrate",
            "run",
            "--goal",
            "Greet people",
            "--repo",
            &repo.arg(),
            "--yes",
            "--watch",
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("plan version 1 of 1"), "{}", run.stdout);
    let orchestrations = env.ok_json(&["orchestrate", "list"]);
    assert_eq!(orchestrations["orchestrations"][0]["status"], "completed");
}

#[test]
fn orchestrate_run_goal_without_a_terminal_leaves_the_plan_for_approval() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    worker(&env, dir.path());
    let run = env.step_bounded(
        &[
            "orchestrate",
            "run",
            "--goal",
            "Greet people",
            "--repo",
            &repo.arg(),
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("needs your approval"), "{}", run.stderr);
    assert!(run.stderr.contains("maos plan approve"), "{}", run.stderr);
    let o = env.ok_json(&["orchestrate", "list"])["orchestrations"][0].clone();
    assert_eq!(o["status"], "awaiting_plan_approval");
    assert_eq!(tasks_listed(&env), 1);
}

#[test]
fn orchestrate_run_goal_on_a_terminal_regenerates_with_feedback_then_runs() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let second = plan_json(&[
        ("tests", "Test greet()", &[], &["tests/**"]),
        ("greet", "Write greet()", &["tests"], &["src/greet.rs"]),
    ]);
    planner(&env, dir.path(), &[answer(&good_plan()), answer(&second)]);
    worker(&env, dir.path());
    let (code, screen) = on_a_terminal(
        &env,
        &[
            "orchestrate",
            "run",
            "--goal",
            "Greet people",
            "--repo",
            &repo.arg(),
        ],
        "r\nTests first.\ny",
    );
    assert_eq!(code, 0, "{screen}");
    assert_eq!(screen.matches("Run this plan?").count(), 2, "{screen}");
    assert!(screen.contains("What should change?"), "{screen}");
    assert!(screen.contains("plan version 2 of 2"), "{screen}");
    let brief = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    assert!(brief.contains("Tests first."), "{brief}");
    let o = env.ok_json(&["orchestrate", "list"])["orchestrations"][0].clone();
    assert_eq!(o["status"], "running", "{o:#}");
    assert_eq!(o["plan_version"], 2);
}

#[test]
fn a_named_planner_takes_every_round_even_when_another_could() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let broken = r#"{"goal": "Greet", "tasks": [{"id": "greet", "titel": "x"}]}"#;
    // `planner` (strategic, offers plan) would be the default; `tactician` is named.
    planner(&env, dir.path(), &[answer(&good_plan())]);
    let other = tempfile::tempdir().unwrap();
    for (i, a) in [answer(broken), answer(&good_plan())].iter().enumerate() {
        std::fs::write(other.path().join(format!("answer-{}", i + 1)), a).unwrap();
    }
    let body = format!(
        "n=$(cat {d}/round 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > {d}/round\n\
         if [ $n -gt 2 ]; then n=2; fi\ncp {d}/answer-$n \"$MAOS_RESULT_FILE\"\n",
        d = other.path().display()
    );
    let command = script(other.path(), "tactician", &body);
    tiered_agent(&env, "tactician", "code", "tactical", 2, &command);
    let (doc, code, stderr) = plan(
        &env,
        &[
            "Greet people",
            "--repo",
            &repo.arg(),
            "--planner",
            "tactician",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["version"]["origin"]["agent"], "tactician");
    assert_eq!(doc["version"]["origin"]["attempt"], 2);
    let planning = doc["record"][0]["task"].as_str().unwrap().to_owned();
    let t = env.ok_json(&["task", "show", &planning]);
    assert_eq!(t["task"]["agent"], "tactician");
    let agents: Vec<&str> = t["task"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["tactician", "tactician"]);
    assert!(
        !dir.path().join("round").exists(),
        "the default planner was used"
    );
    // A planner that does not exist is refused, naming the flag.
    let run = env.step(&["plan", "Greet", "--no-repo", "--planner", "nobody"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("no agent is named nobody"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_blocked_task_gets_a_revision_that_replaces_it_and_the_orchestration_completes() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // Version 1: `greet` cannot pass its verification and has one attempt; `docs` after it.
    let first = r#"{"goal": "Greet people", "tasks": [
        {"id": "setup", "title": "Set up", "capabilities": ["code"], "concerns": ["setup/**"], "verify": "true"},
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "depends_on": ["setup"],
         "concerns": ["src/**"], "verify": "exit 3", "max_attempts": 1},
        {"id": "docs", "title": "Document greet()", "capabilities": ["code"], "depends_on": ["greet"],
         "concerns": ["README.md"], "verify": "true"}
    ]}"#;
    // The revision: `setup` as it was (it completed), `greet` with a verification that passes,
    // `docs` as it was (recreated after the new `greet`).
    let revised = r#"{"goal": "Greet people", "tasks": [
        {"id": "setup", "title": "Set up", "capabilities": ["code"], "concerns": ["setup/**"], "verify": "true"},
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "depends_on": ["setup"],
         "concerns": ["src/**"], "verify": "true", "max_attempts": 1},
        {"id": "docs", "title": "Document greet()", "capabilities": ["code"], "depends_on": ["greet"],
         "concerns": ["README.md"], "verify": "true"}
    ]}"#;
    planner(&env, dir.path(), &[answer(first), answer(revised)]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    let o = orchestration_id(&doc);
    let approved = env.ok_json(&["plan", "approve", &o]);
    let greet = approved["tasks"][1]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_docs = approved["tasks"][2]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &greet, "blocked");

    // The blocked task asked the planner for a revision by itself: version 2 waits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let shown = loop {
        let shown = env.ok_json(&["plan", "show", &o]);
        if shown["orchestration"]["plan_version"] == 2 {
            break shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no revision came: {shown:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(shown["orchestration"]["status"], "running");
    let brief = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    for part in [
        "The plan at work (version 1)",
        "`setup` (Set up): completed",
        "`greet` (Write greet()): blocked",
        "asked for the revision",
        "verification failed",
        "keep every completed task exactly as it is",
    ] {
        assert!(
            brief.contains(part),
            "{part:?} missing from the revision brief:\n{brief}"
        );
    }
    let diff = env.ok_json(&["plan", "diff", &o]);
    assert_eq!(diff["changed"][0]["key"], "greet");
    assert_eq!(diff["changed"][0]["fields"], json!(["verify"]));

    // Approving applies it while the orchestration runs: the blocked task and the one after it
    // are replaced, the completed one stays, and the orchestration completes.
    let applied = env.ok_json(&["plan", "approve", &o]);
    let created: Vec<&str> = applied["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["greet", "docs"]);
    assert_eq!(
        env.ok_json(&["task", "show", &greet])["task"]["state"],
        "cancelled"
    );
    assert_eq!(
        env.ok_json(&["task", "show", &old_docs])["task"]["state"],
        "cancelled"
    );
    let new_docs = applied["tasks"][1]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &new_docs, "completed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o_doc = env.ok_json(&["orchestrate", "show", &o]);
        if o_doc["orchestration"]["status"] == "completed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never completed: {o_doc:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let history = env.ok_json(&["plan", "show", &o]);
    let last = history["record"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "approved");
    assert_eq!(last["superseded"].as_array().unwrap().len(), 2);
    assert_verified(&env);
}

#[test]
fn plan_revise_asks_for_a_revision_and_a_revision_that_changes_completed_work_is_sent_back() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // `hold` is high risk: it waits for a person before it runs, so the plan stays at work.
    let hold = r#"{"id": "hold", "title": "Hold", "capabilities": ["code"], "depends_on": ["greet"], "concerns": ["hold/**"], "risk": "high", "verify": "true"}"#;
    let greet = r#"{"id": "greet", "title": "Write greet()", "capabilities": ["code"], "concerns": ["src/**"], "verify": "true"}"#;
    let more = r#"{"id": "more", "title": "Greet in French", "capabilities": ["code"], "depends_on": ["greet"], "concerns": ["src/fr.rs"], "verify": "true"}"#;
    let one = format!(r#"{{"goal": "Greet people", "tasks": [{greet}, {hold}]}}"#);
    // A revision that changes the completed task is refused and sent back; the second adds a
    // task and keeps the others.
    let changed = one.replace("Write greet()", "Write greet() again");
    let added = format!(r#"{{"goal": "Greet people", "tasks": [{greet}, {hold}, {more}]}}"#);
    planner(
        &env,
        dir.path(),
        &[answer(&one), answer(&changed), answer(&added)],
    );
    worker(&env, dir.path());
    let (doc, _, _) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    let o = orchestration_id(&doc);
    let approved = env.ok_json(&["plan", "approve", &o]);
    let greet = approved["tasks"][0]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &greet, "completed");
    let hold = approved["tasks"][1]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &hold, "awaiting_approval");
    let (doc, code, stderr) = plan(&env, &["revise", &o, "--feedback", "Also in French."]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["version"]["number"], 2);
    assert_eq!(doc["version"]["origin"]["attempt"], 2);
    let third = std::fs::read_to_string(dir.path().join("brief-3.md")).unwrap();
    assert!(
        third.contains("task `greet` completed: it cannot change"),
        "{third}"
    );
    assert!(third.contains("Also in French."), "{third}");
    let applied = env.ok_json(&["plan", "approve", &o]);
    assert_eq!(applied["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(applied["tasks"][0]["key"], "more");
    assert_eq!(
        env.ok_json(&["task", "show", &greet])["task"]["state"],
        "completed"
    );
    // The task that waits for a person was kept as it was, waiting.
    assert_eq!(
        env.ok_json(&["task", "show", &hold])["task"]["state"],
        "awaiting_approval"
    );
    // Rejecting a revision that is not there is refused; the plan runs on.
    let again = env.step(&["plan", "reject", &o]);
    assert_eq!(again.code, 4, "{}", again.stderr);
}

#[test]
fn discuss_talks_the_goal_over_then_plans_the_agreed_goal() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    planner(
        &env,
        dir.path(),
        &[
            "What limit do you want, and per what?".to_owned(),
            "Agreed.\n```goal\nAdd rate limiting to the API\n- 100 requests a minute per key\n```\n"
                .to_owned(),
            answer(&good_plan()),
        ],
    );
    worker(&env, dir.path());
    let (code, screen) = on_a_terminal(
        &env,
        &["plan", "Rate limits", "--repo", &repo.arg(), "--discuss"],
        "100 a minute, per API key\ny",
    );
    assert_eq!(code, 0, "{screen}");
    for part in [
        "planner: What limit do you want, and per what?",
        "Your reply",
        "Plan this goal?",
        "plan version 1 of 1",
    ] {
        assert!(screen.contains(part), "{part:?} missing:\n{screen}");
    }
    // The second turn had the person's reply and the planner's own question.
    let second = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    assert!(second.contains("100 a minute, per API key"), "{second}");
    assert!(
        second.contains("Your answer then:\nWhat limit do you want"),
        "{second}"
    );
    // The plan's goal and notes are the agreed ones, and the discussion is kept with it.
    let third = std::fs::read_to_string(dir.path().join("brief-3.md")).unwrap();
    assert!(
        third.contains("## Goal\n\nAdd rate limiting to the API"),
        "{third}"
    );
    assert!(third.contains("100 requests a minute per key"), "{third}");
    let o = env.ok_json(&["orchestrate", "list"])["orchestrations"][0].clone();
    assert_eq!(o["goal"], "Add rate limiting to the API");
    assert_eq!(o["notes"], json!(["100 requests a minute per key"]));
    let shown = env.ok_json(&["plan", "show", o["id"].as_str().unwrap()]);
    let discussion = shown["record"][0]["discussion"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = env.ok_json(&["task", "show", &discussion]);
    assert_eq!(d["task"]["state"], "completed");
    assert_eq!(d["task"]["attempts"].as_array().unwrap().len(), 2);
    // Without a terminal it says so and starts nothing.
    let run = env.step(&["plan", "Rate limits", "--no-repo", "--discuss"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--discuss is a conversation on a terminal"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_enormous_answer_is_cut_to_its_end_and_an_enormous_plan_is_refused_with_nothing_created() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // Round 1: 3,000 tasks, far more than the 256 KiB kept of an answer: its start is cut, so no
    // plan is found. Round 2: 400 KB of chatter, then a good plan: the end is what is kept.
    let ids: Vec<String> = (0..3000).map(|i| format!("t{i}")).collect();
    let huge: Vec<(&str, &str, &[&str], &[&str])> = ids
        .iter()
        .map(|id| {
            (
                id.as_str(),
                "A step with a long enough title to weigh",
                &[][..],
                &[][..],
            )
        })
        .collect();
    let huge = answer(&plan_json(&huge));
    assert!(huge.len() > 300 * 1024, "{}", huge.len());
    let chatter = format!(
        "{}\n{}",
        "thinking aloud ".repeat(27_000),
        answer(&good_plan())
    );
    planner(&env, dir.path(), &[huge, chatter]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["version"]["origin"]["attempt"], 2);
    let planning = doc["record"][0]["task"].as_str().unwrap().to_owned();
    let t = env.ok_json(&["task", "show", &planning]);
    for a in t["task"]["attempts"].as_array().unwrap() {
        let kept = a["summary"].as_str().unwrap_or_default().chars().count();
        assert!(
            kept <= 256 * 1024 + 1,
            "an answer of {kept} characters was kept"
        );
    }
    let second = std::fs::read_to_string(dir.path().join("brief-2.md")).unwrap();
    assert!(second.contains("the answer has no plan"), "{second}");
    // Only the planning task exists until a person approves.
    assert_eq!(tasks_listed(&env), 1);
}

#[test]
fn with_approve_plans_auto_a_low_risk_revision_applies_itself_and_the_plan_completes() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("approve_plans = \"auto\"\n");
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let first = r#"{"goal": "Greet", "tasks": [
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "concerns": ["src/**"],
         "verify": "exit 3", "max_attempts": 1}
    ]}"#;
    let fixed = r#"{"goal": "Greet", "tasks": [
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "concerns": ["src/**"],
         "verify": "true", "max_attempts": 1}
    ]}"#;
    planner(&env, dir.path(), &[answer(first), answer(fixed)]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    let o = orchestration_id(&doc);
    // Version 1 ran by itself, its task blocked, and the revision (low risk) was approved by
    // the configuration too: the orchestration completes without a person.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let shown = env.ok_json(&["orchestrate", "show", &o]);
        if shown["orchestration"]["status"] == "completed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never completed: {shown:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let history = env.ok_json(&["plan", "show", &o]);
    let approvals: Vec<(Value, Value)> = history["record"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "approved")
        .map(|r| (r["version"].clone(), r["by"].clone()))
        .collect();
    assert_eq!(
        approvals,
        [(json!(1), json!("config")), (json!(2), json!("config"))]
    );
    assert_verified(&env);
}

#[test]
fn plan_commands_human() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let second = plan_json(&[
        ("tests", "Test greet()", &[], &["tests/**"]),
        ("greet", "Write greet()", &["tests"], &["src/greet.rs"]),
        ("docs", "Document greet()", &["greet"], &["README.md"]),
    ]);
    planner(&env, dir.path(), &[answer(&good_plan()), answer(&second)]);
    worker(&env, dir.path());
    env.replace(&repo.arg(), "<repo>");
    env.alias(&repo.arg(), "<repo>");
    let _ = env.transcript();
    env.step(&["plan", "Greet people", "--repo", &repo.arg()]);
    let o = env.ok_json(&["orchestrate", "list"])["orchestrations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.step(&[
        "plan",
        "regenerate",
        &o[..6],
        "--feedback",
        "Tests first, and docs.",
    ]);
    env.step(&["plan", "diff", &o[..6]]);
    env.step(&["plan", "show", &o[..6], "--versions"]);
    env.step(&["plan", "approve", &o[..6], "--version", "1"]);
    env.step(&["plan", "reject", &o[..6], "--reason", "not now"]);
    env.step(&["plan", "approve", &o[..6]]);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn rejecting_or_editing_while_a_planner_works_stops_it_and_the_record_stays_consistent() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // A planner that takes its time (it is stopped long before it answers).
    let command = script(dir.path(), "slow", "sleep 30\necho never\n");
    tiered_agent(&env, "planner", "plan", "strategic", 2, &command);
    worker(&env, dir.path());
    let started = env.ok_json(&["plan", "Greet people", "--repo", &repo.arg(), "--no-wait"]);
    let o = started["orchestration"]["id"].as_str().unwrap().to_owned();
    let planner = started["planning_task"]["id"].as_str().unwrap().to_owned();
    wait_state(&env, &planner, "running");
    let rejected = env.ok_json(&["plan", "reject", &o]);
    assert_eq!(rejected["orchestration"]["status"], "cancelled");
    assert_eq!(rejected["orchestration"]["planning_task"], Value::Null);
    settle(&env, &planner, "cancelled");
    assert_verified(&env);

    // A person's version while a planner works replaces its work: the planner is stopped.
    let started = env.ok_json(&["plan", "Greet people", "--repo", &repo.arg(), "--no-wait"]);
    let o = started["orchestration"]["id"].as_str().unwrap().to_owned();
    let planner = started["planning_task"]["id"].as_str().unwrap().to_owned();
    wait_state(&env, &planner, "running");
    let file = dir.path().join("mine.json");
    std::fs::write(&file, good_plan()).unwrap();
    let edited = env.ok_json(&["plan", "edit", &o, "--file", &file.display().to_string()]);
    assert_eq!(edited["orchestration"]["plan_version"], 1);
    assert_eq!(edited["orchestration"]["planning_task"], Value::Null);
    settle(&env, &planner, "cancelled");
    assert_verified(&env);
}

#[test]
fn a_revision_that_only_drops_the_blocked_work_ends_the_orchestration() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let first = r#"{"goal": "Greet", "tasks": [
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "concerns": ["src/**"], "verify": "true"},
        {"id": "extra", "title": "Nice to have", "capabilities": ["code"], "depends_on": ["greet"],
         "concerns": ["extra/**"], "verify": "exit 3", "max_attempts": 1}
    ]}"#;
    let dropped = r#"{"goal": "Greet", "tasks": [
        {"id": "greet", "title": "Write greet()", "capabilities": ["code"], "concerns": ["src/**"], "verify": "true"}
    ]}"#;
    planner(&env, dir.path(), &[answer(first), answer(dropped)]);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet people", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}");
    let o = orchestration_id(&doc);
    let approved = env.ok_json(&["plan", "approve", &o]);
    let extra = approved["tasks"][1]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &extra, "blocked");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.ok_json(&["plan", "show", &o])["orchestration"]["plan_version"] != 2 {
        assert!(std::time::Instant::now() < deadline, "no revision came");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let applied = env.ok_json(&["plan", "approve", &o]);
    assert_eq!(applied["tasks"], json!([]));
    assert_eq!(applied["orchestration"]["status"], "completed");
    assert_eq!(
        applied["orchestration"]["superseded"],
        json!([extra.clone()])
    );
    assert_verified(&env);
}

#[test]
fn a_planner_still_revising_is_stopped_when_its_orchestration_ends() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    // Round 1 answers at once; the revision's round takes its time.
    let one = r#"{"goal": "Greet", "tasks": [
        {"id": "hold", "title": "Hold", "capabilities": ["code"], "concerns": ["hold/**"], "risk": "high", "verify": "true"}
    ]}"#;
    std::fs::write(dir.path().join("answer"), answer(one)).unwrap();
    let body = format!(
        "n=$(cat {d}/round 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > {d}/round\n\
         if [ $n -gt 1 ]; then sleep 30; fi\ncp {d}/answer \"$MAOS_RESULT_FILE\"\n",
        d = dir.path().display()
    );
    let command = script(dir.path(), "planner", &body);
    tiered_agent(&env, "planner", "plan", "strategic", 2, &command);
    worker(&env, dir.path());
    let (doc, code, stderr) = plan(&env, &["Greet", "--repo", &repo.arg()]);
    assert_eq!(code, 0, "{stderr}");
    let o = orchestration_id(&doc);
    let approved = env.ok_json(&["plan", "approve", &o]);
    let hold = approved["tasks"][0]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    settle(&env, &hold, "awaiting_approval");
    let revising = env.ok_json(&["plan", "revise", &o, "--no-wait"]);
    let planner = revising["planning_task"]["id"].as_str().unwrap().to_owned();
    wait_state(&env, &planner, "running");
    // The person lets the last task run, then accepts its work: it completes, and so does the
    // orchestration.
    env.ok_json(&["approve", &hold]);
    wait_for(&env, &hold, "its work waiting for review", |t| {
        t["state"] == "awaiting_approval" && t["attempts"].as_array().is_some_and(|a| a.len() == 1)
    });
    env.ok_json(&["approve", &hold]);
    settle(&env, &hold, "completed");
    settle(&env, &planner, "cancelled");
    let shown = env.ok_json(&["plan", "show", &o]);
    assert_eq!(shown["orchestration"]["status"], "completed");
    assert_eq!(shown["orchestration"]["planning_task"], Value::Null);
    assert_verified(&env);
}

#[test]
fn without_a_daemon_plan_starts_the_planning_and_says_it_waits_for_one() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    planner(&env, dir.path(), &[answer(&good_plan())]);
    let run = env.maos_env(
        &["plan", "Greet people", "--no-repo", "--no-daemon", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no daemon runs agents"),
        "{}",
        run.stderr
    );
    let doc = run.json();
    assert_eq!(doc["orchestration"]["status"], "draft");
    assert_eq!(doc["planning_task"]["state"], "ready");
    let discuss = env.maos_env(
        &["plan", "Greet", "--no-repo", "--no-daemon", "--discuss"],
        &[],
    );
    assert_eq!(discuss.code, 2, "{}", discuss.stderr);
    assert!(
        discuss
            .stderr
            .contains("--discuss talks with a planner the daemon runs"),
        "{}",
        discuss.stderr
    );
}
