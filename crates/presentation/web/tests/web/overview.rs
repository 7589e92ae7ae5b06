//! The overview: counts by state, what waits for a person, orchestrations with their progress,
//! agents with their load, and what today cost; every value escaped.

use maos_application::{CreateOrchestration, CreatePlan, CreateTask, MaosApi, PlanTask};
use maos_domain::{Risk, Title, Usage, Usd};

use crate::support::Served;

fn step(key: &str, deps: &[&str]) -> PlanTask {
    PlanTask {
        key: key.to_owned(),
        task: CreateTask::titled(Title::parse(&format!("Step {key}")).expect("title")),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

#[test]
fn an_empty_data_directory_says_so() {
    let s = Served::new();
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Nothing waits for a person."));
    assert!(page.body.contains("No orchestration yet."));
    assert!(page.body.contains("No agent registered."));
    assert!(
        page.body
            .contains("Spend today: <strong id=\"spend-today\">$0")
    );
}

#[test]
fn the_overview_shows_what_runs_what_waits_and_what_it_cost() {
    let s = Served::new();
    s.agent("worker");
    let made = s
        .api
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("Ship <em>it</em>").expect("name"),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![step("a", &[]), step("b", &["a"]), step("c", &["a"])],
            start: true,
        })
        .expect("plan");
    let a = made.tasks.iter().find(|(k, _)| k == "a").expect("a").1.id;
    // One step done, with a cost; a medium-risk task waits for a person.
    let run = s.run(a, "worker");
    s.api
        .complete_attempt(
            a,
            run.fencing,
            None,
            maos_domain::RunReport {
                usage: Usage {
                    input_tokens: 1200,
                    output_tokens: 300,
                    cost: Usd::from_micros(250_000),
                    ..Usage::default()
                },
                ..Default::default()
            },
        )
        .expect("complete");
    let waiting = s.task("Needs <b>eyes</b>", Risk::Medium);
    s.finish(waiting.id, "worker");

    let page = s.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    // The orchestration, escaped, with 1 of 3 completed.
    assert!(body.contains("Ship &lt;em&gt;it&lt;/em&gt;"), "{body}");
    assert!(!body.contains("<em>it</em>"));
    assert!(
        body.contains("aria-label=\"1 of 3 tasks completed\""),
        "{body}"
    );
    // What waits for a person links to the task.
    let waiting_section = &body[body.find("id=\"waiting\"").expect("waiting")..];
    assert!(waiting_section.contains("Needs &lt;b&gt;eyes&lt;/b&gt;"));
    assert!(waiting_section.contains(&format!("href=\"/tasks/{}\"", waiting.id)));
    // The agent with its load.
    assert!(body.contains("worker"));
    assert!(body.contains("of 4 slots busy"));
    // Today's spend: the attempt's quarter dollar.
    assert!(body.contains("id=\"spend-today\">$0.25"), "{body}");
    // The counts link to the filtered list.
    assert!(body.contains("href=\"/tasks?state=completed\""));
    // The live regions the page's script swaps.
    for id in ["counts", "waiting", "orchestrations", "agents"] {
        assert!(
            body.contains(&format!("<section id=\"{id}\" data-live")),
            "no region {id}"
        );
    }
}
