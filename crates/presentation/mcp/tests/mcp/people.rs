//! A person's session: every tool on anything, and no agent's tools.

use maos_application::{CreateTask, MaosApi};
use maos_domain::Title;
use maos_mcp::Caller;
use serde_json::json;

use crate::support::{Session, World, error_kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_lists_person_tools_reads_any_task_and_creates_tasks() {
    let w = World::new();
    let t = w.running("fix the parser");
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let names = s.tool_names().await;
    for tool in [
        "get_task",
        "list_tasks",
        "approve",
        "reject",
        "create_task",
        "memory_add",
    ] {
        assert!(
            names.contains(&tool.to_owned()),
            "{tool} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"report_progress".to_owned()), "{names:?}");

    let got = s.call("get_task", json!({"task": t.id.to_string()})).await;
    assert_eq!(got["task"]["title"], "fix the parser");
    assert_eq!(got["task"]["state"], "running");
    assert!(got.get("you").is_none(), "a person has no attempt: {got}");

    let made = s
        .call(
            "create_task",
            json!({"title": "write docs", "prompt": "the README"}),
        )
        .await;
    assert_eq!(made["created"], true, "{made}");
    let listed = s.call("list_tasks", json!({"limit": 10})).await;
    let titles: Vec<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["fix the parser", "write docs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_cannot_use_an_agents_tools_and_nothing_is_stored() {
    let w = World::new();
    let t = w.running("a task");
    let before = w.api.read_events(0, 10_000).unwrap().len();
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let r = s.call("report_progress", json!({"note": "halfway"})).await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("report_progress")
    );
    assert_eq!(w.api.read_events(0, 10_000).unwrap().len(), before);
    assert_eq!(w.task(t.id).version, t.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_adds_searches_and_pins_memory() {
    let w = World::new();
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let added = s
        .call(
            "memory_add",
            json!({"text": "cargo test needs --locked in CI", "tier": "important", "tags": ["ci"]}),
        )
        .await;
    assert_eq!(added["memory"]["scope"], "global", "{added}");
    assert_eq!(added["memory"]["provenance"]["by"], "person");
    let id = added["memory"]["id"].as_str().unwrap().to_owned();
    let found = s.call("memory_search", json!({"query": "locked"})).await;
    assert_eq!(found["hits"][0]["id"], id.as_str(), "{found}");
    let pinned = s.call("memory_pin", json!({"memory": id})).await;
    assert_eq!(pinned["memory"]["pinned"], true);
    let stored = w
        .api
        .get_memory(&maos_application::IdRef::parse(&id).unwrap())
        .unwrap();
    assert!(stored.pinned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_what_waits() {
    let w = World::new();
    let created = w
        .api
        .create_task({
            let mut c = CreateTask::titled(Title::parse("risky").unwrap());
            c.risk = maos_domain::Risk::High;
            c
        })
        .unwrap();
    assert_eq!(created.task.state.as_str(), "awaiting_approval");
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let r = s
        .call("approve", json!({"task": created.task.id.to_string()}))
        .await;
    assert_ne!(r["task"]["state"], "awaiting_approval", "{r}");
}
