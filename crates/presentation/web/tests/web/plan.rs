//! Plan review over real HTTP, a real store and the real plan-file reader: the newest version as
//! a graph and a table, versions with what changed, and the decisions (approve on the version
//! shown, a stale version refused, regenerate with feedback, reject with a reason).

use maos_application::{CreateOrchestration, IdRef, MaosApi, PlanRecord, RegisterAgent};
use maos_domain::{
    AdapterKind, AgentName, CapabilitySet, OrchestrationId, OrchestrationStatus, Slots, Tier, Title,
};

use crate::support::Served;

const V1: &str = r#"
goal = "Greet the world"

[[task]]
id = "greet"
title = "Write <b>greet</b>()"
prompt = "Add src/greet.rs."
concerns = ["src/greet.rs"]
risk = "medium"

[[task]]
id = "tests"
title = "Test greet"
depends_on = ["greet"]
concerns = ["tests/greet.rs"]
"#;

/// V1 and a task more.
fn v2() -> String {
    format!(
        "{V1}\n[[task]]\nid = \"docs\"\ntitle = \"Document greet\"\ndepends_on = [\"greet\"]\nconcerns = [\"README.md\"]\n"
    )
}

/// A draft orchestration with version 1 of its plan, written by a person.
fn proposed(s: &Served) -> OrchestrationId {
    let o = s
        .api
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Greeting").expect("name"),
            goal: Some("Greet the world".to_owned()),
            workspace: None,
            verify: None,
            notes: Vec::new(),
        })
        .expect("orchestration");
    s.api
        .propose_plan(&IdRef::from(o.id), V1.to_owned())
        .expect("version 1");
    o.id
}

fn orchestration(s: &Served, id: OrchestrationId) -> maos_domain::Orchestration {
    s.api
        .get_orchestration(&IdRef::from(id))
        .expect("orchestration")
}

#[test]
fn the_newest_version_shows_as_a_graph_and_a_table_with_its_forms() {
    let s = Served::with_plans();
    let id = proposed(&s);
    let page = s.get(&format!("/orchestrations/{id}/plan"));
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert_eq!(b.matches("<g class=\"node").count(), 2, "{b}");
    assert_eq!(b.matches("<path class=\"edge critical\"").count(), 1, "{b}");
    assert!(b.contains("<code>greet</code>") && b.contains("<code>tests</code>"));
    assert!(b.contains("risk-medium"));
    assert!(!b.contains("<b>greet</b>"), "a title is text: {b}");
    assert!(b.contains("Write &lt;b&gt;greet&lt;/b&gt;()"));
    for form in ["approve", "regenerate", "reject"] {
        assert!(
            b.contains(&format!("action=\"/orchestrations/{id}/plan/{form}\"")),
            "{form}"
        );
    }
    assert_eq!(b.matches("name=\"version\" value=\"1\"").count(), 3);
    assert!(b.contains("written by a person"));
    // The orchestration's page sends a person here.
    let o = s.get(&format!("/orchestrations/{id}"));
    assert!(
        o.body
            .contains(&format!("href=\"/orchestrations/{id}/plan\""))
    );
    assert!(o.body.contains("Review version 1 of the plan"));
}

#[test]
fn approving_a_stale_version_is_refused_and_the_shown_one_runs() {
    let s = Served::with_plans();
    let id = proposed(&s);
    s.api
        .propose_plan(&IdRef::from(id), v2())
        .expect("version 2");
    let path = format!("/orchestrations/{id}/plan");

    // The page shows version 2 and what changed from version 1.
    let page = s.get(&path);
    assert!(page.body.contains("name=\"version\" value=\"2\""));
    assert!(page.body.contains("+ added: docs"), "{}", page.body);
    assert!(!page.body.contains("The same as version"));

    // A person who saw version 1 approves it: refused, nothing created.
    let stale = s.post(&format!("{path}/approve"), &[("version", "1")]);
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("not the newest"));
    assert_eq!(
        orchestration(&s, id).status,
        OrchestrationStatus::AwaitingPlanApproval
    );
    let bad = s.post(&format!("{path}/approve"), &[("version", "two")]);
    assert_eq!(bad.status, 400, "{}", bad.body);

    let approved = s.post(&format!("{path}/approve"), &[("version", "2")]);
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert_eq!(
        approved.header("location"),
        Some(format!("/orchestrations/{id}").as_str())
    );
    let o = orchestration(&s, id);
    assert_eq!(o.status, OrchestrationStatus::Running);
    assert_eq!(o.approved_version, 2);
    // Its three tasks exist and the orchestration page draws them.
    let page = s.get(&format!("/orchestrations/{id}"));
    assert_eq!(
        page.body.matches("<g class=\"node").count(),
        3,
        "{}",
        page.body
    );
    // Nothing waits for a decision any more.
    let page = s.get(&path);
    assert!(!page.body.contains("/plan/approve"));
    assert!(page.body.contains("approved, runs"));
}

#[test]
fn regenerating_asks_the_planner_with_the_feedback() {
    let s = Served::with_plans();
    let id = proposed(&s);
    let path = format!("/orchestrations/{id}/plan");
    // Without a planner the application refuses, and the page says why.
    let refused = s.post(
        &format!("{path}/regenerate"),
        &[("version", "1"), ("feedback", "Split the tests.")],
    );
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(refused.body.contains("role=\"alert\""));

    s.api
        .register_agent(RegisterAgent {
            name: AgentName::parse("planner").expect("name"),
            adapter: AdapterKind::Command,
            capabilities: CapabilitySet::parse(["plan"]).expect("caps"),
            tier: Tier::Strategic,
            slots: Slots::new(1).expect("slots"),
            command: Some("./planner.sh".to_owned()),
            settings: Default::default(),
        })
        .expect("planner");
    let empty = s.post(
        &format!("{path}/regenerate"),
        &[("version", "1"), ("feedback", "   ")],
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let asked = s.post(
        &format!("{path}/regenerate"),
        &[("version", "1"), ("feedback", "Split the tests.")],
    );
    assert_eq!(asked.status, 303, "{}", asked.body);
    let o = orchestration(&s, id);
    let planning = o.planning.expect("a planner is at work");
    let history = s.api.plan_history(&IdRef::from(id)).expect("history");
    assert!(matches!(
        history.record.last(),
        Some(PlanRecord::Planning { .. })
    ));
    // The planner's task carries the feedback in its prompt.
    let task = s
        .api
        .get_task(&IdRef::from(planning.task))
        .expect("planning task");
    assert!(task.spec.prompt.contains("Split the tests."));
    // The page says a planner works, and offers no decision meanwhile.
    let page = s.get(&path);
    assert!(page.body.contains("A planner is at work"));
    assert!(!page.body.contains("/plan/approve"));
}

#[test]
fn rejecting_with_a_reason_ends_the_plan() {
    let s = Served::with_plans();
    let id = proposed(&s);
    let path = format!("/orchestrations/{id}/plan");
    let rejected = s.post(
        &format!("{path}/reject"),
        &[("version", "1"), ("reason", "Too <small>")],
    );
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    assert_eq!(orchestration(&s, id).status, OrchestrationStatus::Cancelled);
    let page = s.get(&path);
    assert!(page.body.contains("rejected"));
    assert!(page.body.contains("Too &lt;small&gt;"));
    assert!(!page.body.contains("/plan/reject\""));
}

#[test]
fn an_unknown_orchestration_has_no_plan_page() {
    let s = Served::with_plans();
    assert_eq!(s.get("/orchestrations/zzzzzzzz/plan").status, 404);
    let none = s.post("/orchestrations/zzzzzzzz/plan/approve", &[("version", "1")]);
    assert_eq!(none.status, 404, "{}", none.body);
}
