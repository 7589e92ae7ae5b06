//! Decisions made from the pages: a medium-risk task approved from its page (and one from the
//! inbox) completes and is merged; one rejected with a reason goes back to its agent with the
//! reason in its briefing.

use std::time::{Duration, Instant};

use crate::cdp::quote;
use crate::support::{Repo, World};

/// Two medium-risk tasks: each waits for a person once its work is verified.
const PLAN: &str = r#"name = "Decisions"
goal = "Work that a person accepts"

[defaults]
risk = "medium"
max_attempts = 3

[[task]]
id = "one"
title = "One"
prompt = "Write One.txt"
capabilities = ["work"]

[[task]]
id = "two"
title = "Two"
prompt = "Write Two.txt"
capabilities = ["work"]
"#;

/// An agent that writes `<title>.txt` saying which attempt it is, and keeps each prompt it
/// was given in the work directory as `<title>.<attempt>.prompt`.
fn worker(world: &World) {
    let keep = world.maos.work.path().display().to_string();
    let script = world.maos.script(
        "worker",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" '{keep}'/\"$MAOS_TASK_TITLE.$MAOS_ATTEMPT.prompt\"\n\
             echo \"attempt $MAOS_ATTEMPT\" > \"$MAOS_TASK_TITLE.txt\"\n"
        ),
    );
    world.maos.agent("worker", "work", 2, &script);
}

fn task_of<'a>(tasks: &'a [(String, String)], key: &str) -> &'a str {
    tasks
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, id)| id.as_str())
        .unwrap_or_else(|| panic!("no task {key} in {tasks:?}"))
}

/// Waits until the task has `attempts` attempts and waits for a person.
fn wait_awaiting(world: &World, id: &str, attempts: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = world.maos.task(id);
        if t["state"] == "awaiting_approval"
            && t["attempts"].as_array().map_or(0, Vec::len) == attempts
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "task {id} never waited for approval after {attempts} attempts: {t:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_medium_risk_task_approved_from_its_page_or_the_inbox_completes_and_merges() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    let (orch, tasks) = world.maos.run_plan(PLAN, &repo);
    let integration = format!("maos/orch-{}", &orch[..8]);
    let (one, two) = (task_of(&tasks, "one"), task_of(&tasks, "two"));
    wait_awaiting(&world, one, 1);
    wait_awaiting(&world, two, 1);
    assert_eq!(repo.show(&integration, "One.txt"), None, "not merged yet");

    // From the task's page.
    let page = world.signed_in("approve");
    page.goto(&world.ui.at(&format!("/tasks/{one}")));
    page.click_and_wait("form[action$='/approve'] button[type=submit]");
    world.maos.wait_state(one, "completed");
    assert_eq!(
        repo.show(&integration, "One.txt").as_deref(),
        Some("attempt 1\n"),
        "approved, the work is merged into {integration}"
    );
    // The page it lands on says so (now, or as soon as the event arrives).
    page.wait_for(
        "Array.from(document.querySelectorAll('main .state')).some(e => e.textContent === 'completed')",
        Duration::from_secs(10),
    );
    assert_eq!(
        page.js("document.querySelector(\"form[action$='/approve']\") === null"),
        true,
        "nothing left to approve"
    );

    // From the inbox: the other one is listed, oldest first, and one click decides it.
    page.goto(&world.ui.at("/approvals"));
    let form = format!("form[action={}]", quote(&format!("/tasks/{two}/approve")));
    assert_eq!(
        page.js(&format!(
            "document.querySelector({}) !== null",
            quote(&form)
        )),
        true,
        "the inbox has an approve button for {two}"
    );
    assert!(
        page.text("document.querySelector('main').textContent")
            .contains("1 file changed"),
        "the inbox shows what the work changed"
    );
    page.click_and_wait(&format!("{form} button[type=submit]"));
    world.maos.wait_state(two, "completed");
    assert_eq!(
        repo.show(&integration, "Two.txt").as_deref(),
        Some("attempt 1\n")
    );
    page.goto(&world.ui.at("/approvals"));
    assert_eq!(
        page.js("document.querySelector(\"form[action$='/approve']\") === null"),
        true,
        "the inbox is empty"
    );
}

#[test]
fn a_rejection_with_a_reason_sends_the_work_back() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    let (orch, tasks) = world.maos.run_plan(PLAN, &repo);
    let integration = format!("maos/orch-{}", &orch[..8]);
    let one = task_of(&tasks, "one");
    wait_awaiting(&world, one, 1);

    let page = world.signed_in("reject");
    page.goto(&world.ui.at(&format!("/tasks/{one}")));
    let reason = "Say it in French, <please> & \"merci\"";
    page.type_into("form[action$='/reject'] textarea[name=reason]", reason);
    page.click_and_wait("form[action$='/reject'] button[type=submit]");

    // The work goes back to the agent with the reason, and waits again.
    let back = wait_awaiting(&world, one, 2);
    assert_eq!(back["attempts"][0]["status"], "failed", "{back:#}");
    assert_eq!(
        back["attempts"][0]["error"],
        format!("rejected: {reason}"),
        "{back:#}"
    );
    let prompt = std::fs::read_to_string(world.maos.work.path().join("One.2.prompt"))
        .expect("the second attempt's prompt");
    assert!(
        prompt.contains(reason),
        "the briefing carries the reason:\n{prompt}"
    );
    assert_eq!(repo.show(&integration, "One.txt"), None, "nothing merged");

    // The page shows the reason as text.
    page.goto(&world.ui.at(&format!("/tasks/{one}")));
    assert!(
        page.text("document.querySelector('main').textContent")
            .contains(reason),
        "the task's page shows why it was rejected"
    );

    // A rejection needs a reason: an empty one is refused with a clear page, and nothing changes.
    page.type_into("form[action$='/reject'] textarea[name=reason]", "");
    page.js("document.querySelector(\"form[action$='/reject'] textarea[name=reason]\").removeAttribute('required')");
    page.click_and_wait("form[action$='/reject'] button[type=submit]");
    assert_eq!(
        page.js("document.querySelector('h1').textContent === 'Bad Request'"),
        true,
        "an empty reason is refused: {}",
        page.text("document.querySelector('main').textContent")
    );
    assert_eq!(world.maos.task(one)["state"], "awaiting_approval");
}

#[test]
fn a_half_typed_reason_survives_a_live_update() {
    let world = World::new();
    worker(&world);
    let repo = Repo::new();
    let (_, tasks) = world.maos.run_plan(PLAN, &repo);
    let (one, two) = (task_of(&tasks, "one"), task_of(&tasks, "two"));
    wait_awaiting(&world, one, 1);
    wait_awaiting(&world, two, 1);

    // The inbox: one live region holding both decisions.
    let page = world.signed_in("half_typed");
    page.goto(&world.ui.at("/approvals"));
    page.wait_for(
        "document.getElementById('live-status').dataset.state === 'live'",
        Duration::from_secs(10),
    );
    let selector = format!("form[action='/tasks/{one}/reject'] textarea[name=reason]");
    let field = format!("document.querySelector({})", quote(&selector));
    page.type_into(&selector, "Half a tho");
    let before: u64 = page
        .text("document.body.dataset.refreshes || '0'")
        .parse()
        .unwrap_or(0);
    // The other decision is taken elsewhere meanwhile: the page refreshes itself, but leaves
    // the region being typed in alone.
    world.maos.ok_json(&["approve", two]);
    page.wait_for(
        &format!("Number(document.body.dataset.refreshes || '0') > {before}"),
        Duration::from_secs(10),
    );
    assert_eq!(
        page.text(&format!("{field}.value")),
        "Half a tho",
        "the reason being typed was kept"
    );
    assert_eq!(
        page.js(&format!("document.activeElement === {field}")),
        true,
        "the focus stayed in the field"
    );
    // Once the person is done there, the next change brings the region up to date.
    page.js(&format!("{field}.blur(); true"));
    world
        .maos
        .ok_json(&["task", "create", "Later", "--risk", "high", "--prompt", "p"]);
    page.wait_for(
        &format!(
            "document.querySelector({}) === null",
            quote(&format!("form[action='/tasks/{two}/approve']"))
        ),
        Duration::from_secs(10),
    );
}
