//! An orchestration steered from its pages: paused, resumed and merged from its page, cancelled
//! with a reason, and a plan from the planning engine reviewed, regenerated with feedback and
//! approved on the plan page.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Repo, World};

/// Two tasks, one after the other, each taking a second or so.
const PLAN: &str = r#"name = "Steered"
goal = "Two files, one after the other"

[defaults]
risk = "low"
max_attempts = 1

[[task]]
id = "alpha"
title = "Alpha"
prompt = "Write Alpha.txt"
capabilities = ["work"]

[[task]]
id = "beta"
title = "Beta"
prompt = "Write Beta.txt"
capabilities = ["work"]
depends_on = ["alpha"]
"#;

fn worker(world: &World) {
    let script = world.maos.script(
        "worker",
        "sleep 2\necho \"$MAOS_TASK_TITLE\" > \"$MAOS_TASK_TITLE.txt\"\n",
    );
    world.maos.agent("worker", "work", 1, &script);
}

fn status(world: &World, orch: &str) -> String {
    world.maos.ok_json(&["orchestrate", "status", orch])["orchestration"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn wait_status(world: &World, orch: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = status(world, orch);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "orchestration {orch} never became {want} (it is {now})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pause_resume_and_merge_from_the_orchestrations_page() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    let (orch, tasks) = world.maos.run_plan(PLAN, &repo);
    let page = world.signed_in("orchestration_controls");
    page.goto(&world.ui.at(&format!("/orchestrations/{orch}")));

    page.click_and_wait("form[action$='/pause'] button[type=submit]");
    assert_eq!(status(&world, &orch), "paused");
    let beta = &tasks.iter().find(|(k, _)| k == "beta").expect("beta").1;
    let attempts = |t: &Value| t["attempts"].as_array().map_or(0, Vec::len);
    let before = attempts(&world.maos.task(beta));
    page.wait_for(
        "document.querySelector(\"form[action$='/resume']\") !== null",
        Duration::from_secs(10),
    );
    // Paused, the second task does not start, even once the first is done.
    std::thread::sleep(Duration::from_secs(4));
    let after = world.maos.task(beta);
    assert_eq!(
        attempts(&after),
        before,
        "beta started while paused: {after:#}"
    );

    page.click_and_wait("form[action$='/resume'] button[type=submit]");
    assert_eq!(status(&world, &orch), "running");
    wait_status(&world, &orch, "completed");
    // The page follows to the end, and offers the merge.
    page.wait_for(
        "document.querySelector(\"form[action$='/merge'] button\") !== null",
        Duration::from_secs(10),
    );
    assert_eq!(repo.show("main", "Alpha.txt"), None, "not merged yet");
    page.click_and_wait("form[action$='/merge'] button[type=submit]");
    assert_eq!(
        repo.show("main", "Alpha.txt").as_deref(),
        Some("Alpha\n"),
        "merged into main: {}",
        page.text("document.querySelector('main').textContent")
    );
    assert_eq!(repo.show("main", "Beta.txt").as_deref(), Some("Beta\n"));
}

#[test]
fn cancel_from_the_orchestrations_page_with_a_reason() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    // High risk: its tasks wait for a person before they run, so nothing moves meanwhile.
    let (orch, tasks) = world
        .maos
        .run_plan(&PLAN.replace("risk = \"low\"", "risk = \"high\""), &repo);
    let page = world.signed_in("orchestration_cancel");
    page.goto(&world.ui.at(&format!("/orchestrations/{orch}")));
    let reason = "The goal changed <b>today</b>";
    page.type_into("form[action$='/cancel'] input[name=reason]", reason);
    page.click_and_wait("form[action$='/cancel'] button[type=submit]");
    wait_status(&world, &orch, "cancelled");
    for (_, id) in &tasks {
        assert_eq!(world.maos.task(id)["state"], "cancelled");
    }
    assert_eq!(
        page.js("document.querySelector(\"form[action$='/cancel']\") === null"),
        true,
        "an ended orchestration offers no cancel"
    );
}

/// A plan (JSON) of `tasks`, each `(id, title, depends_on)`, needing `work`.
fn plan_json(tasks: &[(&str, &str, &[&str])]) -> String {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(id, title, deps)| {
            json!({
                "id": id,
                "title": title,
                "prompt": format!("Do {title}."),
                "capabilities": ["work"],
                "depends_on": deps,
                "risk": "low",
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "goal": "Greet people", "tasks": tasks }))
        .expect("a plan")
}

#[test]
fn a_plan_is_reviewed_regenerated_with_feedback_and_approved_on_its_page() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    // A planner whose first answer has two tasks and whose second (after feedback) three; it
    // keeps each brief.
    let dir = world.maos.work.path().to_path_buf();
    let answers = [
        plan_json(&[
            ("greet", "Write greet()", &[]),
            ("tests", "Test greet()", &["greet"]),
        ]),
        plan_json(&[
            ("greet", "Write greet()", &[]),
            ("tests", "Test greet()", &["greet"]),
            ("docs", "Document greet()", &["greet"]),
        ]),
    ];
    for (i, a) in answers.iter().enumerate() {
        std::fs::write(
            dir.join(format!("answer-{}", i + 1)),
            format!("Small steps.\n\n```json\n{a}\n```\n"),
        )
        .expect("an answer");
    }
    let planner = world.maos.script(
        "planner",
        &format!(
            "n=$(cat {d}/round 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > {d}/round\n\
             cp \"$MAOS_PROMPT_FILE\" {d}/brief-$n.md\n\
             a=$n\nif [ $a -gt 2 ]; then a=2; fi\n\
             cp {d}/answer-$a \"$MAOS_RESULT_FILE\"\n",
            d = dir.display()
        ),
    );
    world.maos.ok_json(&[
        "agent",
        "register",
        "planner",
        "--adapter",
        "command",
        "--command",
        &planner,
        "--prompt-via",
        "file",
        "--tier",
        "strategic",
        "--capability",
        "plan",
        "--timeout",
        "1m",
    ]);
    let doc = world
        .maos
        .ok_json(&["plan", "Greet people", "--repo", &repo.arg()]);
    assert_eq!(doc["orchestration"]["status"], "awaiting_plan_approval");
    let orch = doc["orchestration"]["id"]
        .as_str()
        .expect("an orchestration")
        .to_owned();

    // The overview says a plan waits, and links to it.
    let page = world.signed_in("plan_review");
    let link = format!("a[href='/orchestrations/{orch}/plan']");
    page.click_and_wait(&link);
    let main = "document.querySelector('main').textContent";
    for title in ["Write greet()", "Test greet()"] {
        assert!(page.text(main).contains(title), "{title} not shown");
    }
    assert!(!page.text(main).contains("Document greet()"));
    let unnamed = crate::keyboard::nameless(&page);
    assert!(unnamed.is_empty(), "controls without a name: {unnamed:#?}");

    // Regenerate with feedback: version 2, which the planner made knowing the feedback.
    let feedback = "Add the docs, please";
    page.type_into(
        "form[action$='/plan/regenerate'] textarea[name=feedback]",
        feedback,
    );
    page.click_and_wait("form[action$='/plan/regenerate'] button[type=submit]");
    page.wait_for(
        "document.querySelector('main').textContent.includes('Document greet()')",
        Duration::from_secs(30),
    );
    let brief = std::fs::read_to_string(dir.join("brief-2.md")).expect("the second brief");
    assert!(brief.contains(feedback), "{brief}");

    // Approve: the orchestration runs the three tasks.
    page.click_and_wait("form[action$='/plan/approve'] button[type=submit]");
    wait_status(&world, &orch, "completed");
    let tasks = world
        .maos
        .ok_json(&["task", "list", "--orchestration", &orch])["tasks"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(tasks, 3);
}
