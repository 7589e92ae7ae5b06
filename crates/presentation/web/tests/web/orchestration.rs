//! The orchestration page over real HTTP and a real store: its graph (nodes, edges, the critical
//! path), hostile titles as text, the timeline of a real attempt, the buttons that change its
//! state through the application, the paginated table, and refusals with the right status.

use maos_application::{
    AssignTask, CreateOrchestration, CreatePlan, CreateTask, IdRef, MaosApi, PlanTask,
    RegisterAgent,
};
use maos_domain::{
    AdapterKind, AgentName, AttemptStart, CapabilitySet, OrchestrationId, OrchestrationStatus,
    RunReport, Slots, Tier, Title,
};

use crate::support::Served;

const HOSTILE: &str = "<script>alert('x')</script> & co";

fn plan_task(key: &str, title: &str, deps: &[&str]) -> PlanTask {
    PlanTask {
        key: key.to_owned(),
        task: CreateTask::titled(Title::parse(title).expect("title")),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn create(s: &Served, name: &str, tasks: Vec<PlanTask>, start: bool) -> OrchestrationId {
    let made = s
        .api
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse(name).expect("name"),
                goal: Some(format!("The goal of {name}")),
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks,
            start,
        })
        .expect("create plan");
    made.orchestration.id
}

/// A diamond: design → (api, store) → tests, and docs after api; the title of `api` is hostile.
fn diamond(s: &Served) -> OrchestrationId {
    create(
        s,
        "Rate limits",
        vec![
            plan_task("design", "Design it", &[]),
            plan_task("api", HOSTILE, &["design"]),
            plan_task("store", "Store counters", &["design"]),
            plan_task("tests", "Test it", &["api", "store"]),
            plan_task("docs", "Document it", &["api"]),
        ],
        true,
    )
}

fn status(s: &Served, id: OrchestrationId) -> OrchestrationStatus {
    s.api
        .get_orchestration(&IdRef::from(id))
        .expect("orchestration")
        .status
}

#[test]
fn the_graph_draws_every_task_and_dependency_and_outlines_the_critical_path() {
    let s = Served::new();
    let id = diamond(&s);
    let page = s.get(&format!("/orchestrations/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert_eq!(b.matches("<g class=\"node").count(), 5, "{b}");
    assert_eq!(b.matches("<path class=\"edge").count(), 5, "{b}");
    // The longest chain is three tasks long: design → api|store → tests; two edges on it.
    assert_eq!(b.matches("<path class=\"edge critical\"").count(), 2, "{b}");
    assert_eq!(b.matches("critical\" transform").count(), 3, "{b}");
    assert!(b.contains("Rate limits"));
    assert!(b.contains("The goal of Rate limits"));
    // Every task links to its page, with its title as a tooltip and an accessible name.
    for t in s
        .api
        .list_tasks(&Default::default(), &Default::default())
        .expect("tasks")
        .tasks
    {
        assert!(b.contains(&format!("href=\"/tasks/{}\"", t.id)), "{}", t.id);
    }
    assert!(b.contains("aria-label=\"Design it — ready"));
    // Live regions: facts, controls, graph, timeline, report, tasks.
    for region in ["facts", "controls", "graph", "timeline", "report", "tasks"] {
        assert!(b.contains(&format!("id=\"{region}\"")), "{region}");
    }
    assert_eq!(b.matches("data-live").count(), 6, "{b}");
}

#[test]
fn a_hostile_title_is_text_everywhere() {
    let s = Served::new();
    let id = diamond(&s);
    let page = s.get(&format!("/orchestrations/{id}"));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    // In the table (maud) and in the SVG (ours).
    assert!(page.body.contains("&lt;script&gt;alert("));
    assert!(page.body.contains("&amp; co"));
}

#[test]
fn a_prefix_finds_it_and_a_wrong_id_is_not_found() {
    let s = Served::new();
    let id = diamond(&s);
    let full = id.to_string();
    let page = s.get(&format!("/orchestrations/{}", &full[..8]));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&full));
    let missing = s.get("/orchestrations/zzzzzzzzzz");
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("role=\"alert\""));
    let bad = s.get("/orchestrations/ab");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("at least 4 characters"));
}

#[test]
fn the_buttons_fit_the_state_and_change_it() {
    let s = Served::new();
    let id = diamond(&s);
    let path = format!("/orchestrations/{id}");
    let page = s.get(&path);
    assert!(page.body.contains(&format!("action=\"{path}/pause\"")));
    assert!(page.body.contains(&format!("action=\"{path}/cancel\"")));
    assert!(!page.body.contains(&format!("action=\"{path}/resume\"")));
    assert!(
        !page.body.contains(&format!("action=\"{path}/merge\"")),
        "no repository: nothing to merge"
    );

    let paused = s.post(&format!("{path}/pause"), &[]);
    assert_eq!(paused.status, 303, "{}", paused.body);
    assert_eq!(paused.header("location"), Some(path.as_str()));
    assert_eq!(status(&s, id), OrchestrationStatus::Paused);
    let page = s.get(&path);
    assert!(page.body.contains(&format!("action=\"{path}/resume\"")));
    assert!(!page.body.contains(&format!("action=\"{path}/pause\"")));

    // Pausing again is refused by the application: its error page, with 409.
    let again = s.post(&format!("{path}/pause"), &[]);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("role=\"alert\""));

    let resumed = s.post(&format!("{path}/resume"), &[]);
    assert_eq!(resumed.status, 303, "{}", resumed.body);
    assert_eq!(status(&s, id), OrchestrationStatus::Running);

    let cancelled = s.post(&format!("{path}/cancel"), &[("reason", "  not <needed>  ")]);
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(status(&s, id), OrchestrationStatus::Cancelled);
    let page = s.get(&path);
    assert!(page.body.contains("Nothing to do"));
    assert!(!page.body.contains(&format!("action=\"{path}/cancel\"")));
    // Every task of it was cancelled.
    assert!(page.body.contains("state-cancelled"));
    assert!(!page.body.contains("not <needed>"));

    // Without the CSRF field, nothing changes.
    let id2 = diamond(&s);
    let forged = s.raw(
        &format!(
            "POST /orchestrations/{id2}/pause HTTP/1.1\r\nCookie: maos_{port}={token}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded",
            port = s.port,
            token = crate::support::TOKEN
        ),
        "",
    );
    assert_eq!(forged.status, 403);
    assert_eq!(status(&s, id2), OrchestrationStatus::Running);
}

#[test]
fn a_draft_can_be_started_from_the_page() {
    let s = Served::new();
    let id = create(&s, "Draft", vec![plan_task("a", "Only task", &[])], false);
    let path = format!("/orchestrations/{id}");
    let page = s.get(&path);
    assert!(page.body.contains(&format!("action=\"{path}/start\"")));
    let started = s.post(&format!("{path}/start"), &[]);
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(status(&s, id), OrchestrationStatus::Running);
}

#[test]
fn the_timeline_draws_an_attempt_in_its_agents_lane() {
    let s = Served::new();
    let id = diamond(&s);
    s.api
        .register_agent(RegisterAgent {
            name: AgentName::parse("worker-1").expect("name"),
            adapter: AdapterKind::Command,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::new(2).expect("slots"),
            command: Some("./worker.sh".to_owned()),
            settings: Default::default(),
        })
        .expect("agent");
    let design = s
        .api
        .list_tasks(&Default::default(), &Default::default())
        .expect("tasks")
        .tasks
        .into_iter()
        .find(|t| t.spec.title.as_str() == "Design it")
        .expect("design");
    let a = s
        .api
        .assign_task(AssignTask {
            task: IdRef::from(design.id),
            agent: None,
        })
        .expect("assign");
    s.api
        .start_attempt(design.id, a.fencing, AttemptStart::default())
        .expect("start");
    let page = s.get(&format!("/orchestrations/{id}"));
    assert_eq!(
        page.body.matches("class=\"lane\"").count(),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"bar outcome-running open\""));
    s.api
        .fail_attempt(
            design.id,
            a.fencing,
            "it broke".to_owned(),
            RunReport::default(),
        )
        .expect("fail");
    let page = s.get(&format!("/orchestrations/{id}"));
    assert!(
        page.body.contains("class=\"bar outcome-failed\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("attempt 1 on "));
}

#[test]
fn the_task_table_is_paginated() {
    let s = Served::new();
    let tasks: Vec<PlanTask> = (0..120)
        .map(|i| {
            let deps: Vec<String> = if i == 0 {
                vec![]
            } else {
                vec![format!("t{}", i - 1)]
            };
            PlanTask {
                key: format!("t{i}"),
                task: CreateTask::titled(Title::parse(&format!("Step {i:03}")).expect("title")),
                depends_on: deps,
            }
        })
        .collect();
    let id = create(&s, "Long chain", tasks, true);
    let path = format!("/orchestrations/{id}");
    let first = s.get(&path);
    assert_eq!(first.status, 200);
    // In the graph's order: the chain from its root.
    assert!(first.body.contains(">Step 000</a>") && first.body.contains(">Step 049</a>"));
    assert!(
        !first.body.contains(">Step 050</a>"),
        "page 1 holds 50 rows"
    );
    assert!(first.body.contains("Page 1 of 3"));
    assert!(
        first
            .body
            .contains(&format!("href=\"{path}?page=2#tasks\""))
    );
    let third = s.get(&format!("{path}?page=3"));
    assert_eq!(third.status, 200);
    assert!(third.body.contains(">Step 119</a>"));
    assert!(!third.body.contains(">Step 099</a>"));
    assert!(
        third
            .body
            .contains(&format!("href=\"{path}?page=2#tasks\""))
    );
    assert_eq!(s.get(&format!("{path}?page=4")).status, 404);
    assert_eq!(s.get(&format!("{path}?page=x")).status, 400);
    assert_eq!(s.get(&format!("{path}?page=0")).status, 400);
    // 120 tasks in a chain: every one drawn, the whole chain critical.
    assert_eq!(first.body.matches("<g class=\"node").count(), 120);
    assert_eq!(
        first.body.matches("<path class=\"edge critical\"").count(),
        119
    );
}

#[test]
fn a_graph_too_large_to_draw_is_summarised_by_layer_with_its_critical_path_in_words() {
    let s = Served::new();
    // A chain of 300 and 150 tasks beside it: 450 tasks, more than are drawn one by one.
    let tasks: Vec<PlanTask> = (0..450)
        .map(|i| {
            let deps: Vec<String> = if i == 0 || i == 300 {
                vec![]
            } else {
                vec![format!("t{}", i - 1)]
            };
            PlanTask {
                key: format!("t{i}"),
                task: CreateTask::titled(Title::parse(&format!("Step {i:03}")).expect("title")),
                depends_on: deps,
            }
        })
        .collect();
    let id = create(&s, "Too many to draw", tasks, true);
    let page = s.get(&format!("/orchestrations/{id}"));
    assert_eq!(page.status, 200);
    let b = &page.body;
    assert!(!b.contains("<g class=\"node"), "no box per task");
    assert!(b.contains("class=\"dag summary\""));
    assert!(b.contains("450 tasks in 300 layers"), "{b}");
    assert!(b.contains("More than 400 tasks"));
    // The critical path is the chain of 300: its first 30 listed, the rest counted.
    let listed = b
        .split("<ol class=\"path\">")
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .expect("the critical path listed");
    assert_eq!(listed.matches("<li>").count(), 30);
    assert!(listed.contains("Step 000") && listed.contains("Step 029"));
    assert!(b.contains("… and 270 more."));
    assert!(b.contains("Page 1 of 9"));
}
