//! An agent's session: its own task, orchestration and memory scopes, while its attempt runs.

use std::sync::Arc;
use std::time::Duration;

use maos_application::{IdRef, MaosApi};
use serde_json::json;

use crate::support::{Session, World, error_kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_its_task_and_reports_progress_as_an_event_and_a_log_line() {
    let w = World::new();
    let t = w.running("fix the parser");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let names = s.tool_names().await;
    assert!(names.contains(&"report_progress".to_owned()));
    assert!(!names.contains(&"approve".to_owned()), "{names:?}");

    let mine = s.call("get_task", json!({})).await;
    assert_eq!(mine["task"]["id"], t.id.to_string());
    assert_eq!(mine["you"]["attempt"], 1);

    let r = s
        .call(
            "report_progress",
            json!({"note": "parsed the header; tests next"}),
        )
        .await;
    assert_eq!(r["recorded"], true, "{r}");
    let events = w.api.read_events(0, 10_000).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event.kind(), "task.progress_reported");
    assert_eq!(
        w.runtime.notes.lock().unwrap().as_slice(),
        [format!("{} 1: parsed the header; tests next", t.id.short())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_attempts_credential_is_refused() {
    let w = World::new();
    let t = w.running("short task");
    let agent = w.agent(t.id);
    w.succeed(t.id);
    let mut s = Session::open(w.dyn_api(), agent).await;
    let before = w.api.read_events(0, 10_000).unwrap().len();
    let r = s.call("report_progress", json!({"note": "late"})).await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("get_task", json!({})).await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    assert_eq!(w.api.read_events(0, 10_000).unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_use_person_tools_or_see_another_task() {
    let w = World::new();
    let mine = w.running("mine");
    let other = w.running("someone else's");
    let mut s = Session::open(w.dyn_api(), w.agent(mine.id)).await;
    let r = s
        .call("approve", json!({"task": other.id.to_string()}))
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s
        .call("get_task", json!({"task": other.id.to_string()}))
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("create_task", json!({"title": "sneaky"})).await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("list_tasks", json!({})).await;
    let ids: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [mine.id.to_string()],
        "a standalone agent lists its own task only"
    );
}

/// Makes two subtasks of `parent` (the second after the first), waited for; returns their ids.
async fn split(w: &World, parent: maos_domain::TaskId) -> Vec<maos_domain::TaskId> {
    let mut s = Session::open(w.dyn_api(), w.agent(parent)).await;
    let made = s
        .call(
            "create_subtasks",
            json!({"wait": true, "tasks": [
                {"id": "schema", "title": "design the schema", "prompt": "tables"},
                {"id": "api", "title": "write the API", "depends_on": ["schema"]}
            ]}),
        )
        .await;
    made["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("{made}"))
        .iter()
        .map(|t| maos_domain::TaskId::parse(t["task"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_splits_its_task_and_waits_for_the_subtasks() {
    let w = World::new();
    let parent = w.running("build the feature");
    let subtasks = split(&w, parent.id).await;
    assert_eq!(subtasks.len(), 2);
    let p = w.task(parent.id);
    assert_eq!(p.subtasks.len(), 2);
    let second = w.task(subtasks[1]);
    assert_eq!(second.spec.parent.map(|l| l.task), Some(parent.id));
    assert_eq!(
        second.spec.depends_on.iter().copied().collect::<Vec<_>>(),
        [subtasks[0]]
    );

    let mut s = Session::open(w.dyn_api(), w.agent(parent.id)).await;
    let ids: Vec<String> = subtasks.iter().map(ToString::to_string).collect();
    let r = s
        .call(
            "wait_for_tasks",
            json!({"tasks": ids, "timeout_seconds": 0}),
        )
        .await;
    assert_eq!(r["done"], false, "{r}");

    // The subtasks run (the stand-in runtime runs nothing: the test plays their agents).
    w.start(subtasks[0]);
    w.succeed(subtasks[0]);
    w.start(subtasks[1]);
    let finisher = {
        let api = w.dyn_api();
        let runtime = Arc::clone(&w.runtime);
        let second = subtasks[1];
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let t = api.get_task(&IdRef::from(second)).unwrap();
            api.complete_attempt(second, t.fencing, None, maos_domain::RunReport::default())
                .unwrap();
            runtime.end(second, 1);
        })
    };
    let waited = s
        .call(
            "wait_for_tasks",
            json!({"tasks": ids, "timeout_seconds": 20}),
        )
        .await;
    finisher.join().unwrap();
    assert_eq!(waited["done"], true, "{waited}");
    assert_eq!(waited["tasks"][1]["state"], "completed");
    let done = w.succeed(parent.id);
    assert_eq!(done.state.as_str(), "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_waits_for_its_subtasks_cannot_complete_before_them() {
    let w = World::new();
    let parent = w.running("build the feature");
    let subtasks = split(&w, parent.id).await;
    let early = w.task(parent.id);
    let failed = w
        .api
        .complete_attempt(
            parent.id,
            early.fencing,
            None,
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_ne!(failed.state.as_str(), "completed");
    let why = failed
        .attempts
        .last()
        .and_then(|a| a.error.clone())
        .unwrap_or_default();
    assert!(why.contains(&subtasks[0].to_string()), "{why}");
    assert!(why.contains(&subtasks[1].to_string()), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtasks_that_do_not_wait_let_the_parent_complete() {
    let w = World::new();
    let parent = w.running("kick off");
    let mut s = Session::open(w.dyn_api(), w.agent(parent.id)).await;
    let made = s
        .call(
            "create_subtasks",
            json!({"tasks": [{"id": "later", "title": "later work"}]}),
        )
        .await;
    assert_eq!(made["wait"], false, "{made}");
    let done = w.succeed(parent.id);
    assert_eq!(done.state.as_str(), "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_returns_the_persons_decision() {
    let w = World::new();
    let t = w.running("migrate the database");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let approver = {
        let api = w.dyn_api();
        let id = t.id;
        std::thread::spawn(move || {
            for _ in 0..100 {
                let t = api.get_task(&IdRef::from(id)).unwrap();
                if t.pending.is_some() {
                    api.reject(&IdRef::from(id), "not on Fridays".to_owned(), false)
                        .unwrap();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("the question never came");
        })
    };
    let r = s
        .call(
            "request_approval",
            json!({"question": "May I drop the old table?", "timeout_seconds": 20}),
        )
        .await;
    approver.join().unwrap();
    assert_eq!(r["decision"], "rejected", "{r}");
    assert_eq!(r["reason"], "not on Fridays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_question_times_out_as_pending_and_asking_again_waits_on_it() {
    let w = World::new();
    let t = w.running("ask");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let q = json!({"question": "Ship it?", "timeout_seconds": 0});
    let r = s.call("request_approval", q.clone()).await;
    assert_eq!(r["decision"], "pending", "{r}");
    let r = s.call("request_approval", q).await;
    assert_eq!(
        r["decision"], "pending",
        "asking again is not a second request: {r}"
    );
    let asked = w
        .api
        .read_events(0, 10_000)
        .unwrap()
        .iter()
        .filter(|e| e.event.kind() == "task.approval_requested")
        .count();
    assert_eq!(asked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_memory_stays_in_its_scopes() {
    let w = World::new();
    let t = w.running("remember");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let added = s
        .call(
            "memory_add",
            json!({"text": "the parser rejects tabs", "tags": ["parser"]}),
        )
        .await;
    assert_eq!(
        added["memory"]["scope"], "global",
        "a standalone task without a repository: {added}"
    );
    assert_eq!(added["memory"]["provenance"]["by"], "attempt");
    assert_eq!(added["memory"]["provenance"]["task"], t.id.to_string());
    let r = s
        .call(
            "memory_add",
            json!({"text": "x", "scope": "repo:/elsewhere"}),
        )
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s
        .call(
            "memory_search",
            json!({"query": "tabs", "scope": "orchestration:0000000000000000000000000"}),
        )
        .await;
    assert!(matches!(error_kind(&r), "denied" | "invalid_input"), "{r}");
    let found = s.call("memory_search", json!({"query": "tabs"})).await;
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_its_orchestration_and_not_another_ones() {
    use maos_application::{CreateOrchestration, CreateTask};
    use maos_domain::Title;

    let w = World::new();
    let orchestration = |name: &str| {
        let o = w
            .api
            .create_orchestration(CreateOrchestration {
                name: Title::parse(name).unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            })
            .unwrap();
        w.api.start_orchestration(&IdRef::from(o.id)).unwrap();
        o.id
    };
    let (mine, theirs) = (orchestration("mine"), orchestration("theirs"));
    let in_orchestration = |o, title: &str| {
        let mut c = CreateTask::titled(Title::parse(title).unwrap());
        c.orchestration = Some(IdRef::from(o));
        w.api.create_task(c).unwrap().task.id
    };
    let me = in_orchestration(mine, "my task");
    let sibling = in_orchestration(mine, "a sibling");
    let stranger = in_orchestration(theirs, "a stranger");
    w.start(me);
    let mut s = Session::open(w.dyn_api(), w.agent(me)).await;

    let r = s
        .call("get_task", json!({"task": sibling.to_string()}))
        .await;
    assert_eq!(r["task"]["title"], "a sibling", "{r}");
    let r = s
        .call("get_task", json!({"task": stranger.to_string()}))
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s
        .call("list_tasks", json!({"orchestration": theirs.to_string()}))
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("list_tasks", json!({})).await;
    let mut titles: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["a sibling", "my task"], "{r}");
    let r = s
        .call(
            "orchestration_status",
            json!({"orchestration": theirs.to_string()}),
        )
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("orchestration_status", json!({})).await;
    assert_eq!(r["orchestration"]["name"], "mine", "{r}");
    let r = s
        .call(
            "wait_for_tasks",
            json!({"tasks": [stranger.to_string()], "timeout_seconds": 0}),
        )
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s
        .call(
            "memory_add",
            json!({"text": "x", "scope": format!("orchestration:{theirs}")}),
        )
        .await;
    assert_eq!(error_kind(&r), "denied", "{r}");
    let r = s.call("memory_add", json!({"text": "ours"})).await;
    assert_eq!(r["memory"]["scope"], format!("orchestration:{mine}"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtasks_nest_three_levels_and_no_deeper() {
    let w = World::new();
    let mut level = w.running("level 0");
    for depth in 1..=3 {
        let mut s = Session::open(w.dyn_api(), w.agent(level.id)).await;
        let made = s
            .call(
                "create_subtasks",
                json!({"tasks": [{"id": "next", "title": "deeper"}]}),
            )
            .await;
        let id = made["tasks"][0]["task"]
            .as_str()
            .unwrap_or_else(|| panic!("depth {depth}: {made}"))
            .to_owned();
        level = w.start(maos_domain::TaskId::parse(&id).unwrap());
    }
    let before = w.api.read_events(0, 10_000).unwrap().len();
    let mut s = Session::open(w.dyn_api(), w.agent(level.id)).await;
    let r = s
        .call(
            "create_subtasks",
            json!({"tasks": [{"id": "next", "title": "too deep"}]}),
        )
        .await;
    assert_eq!(error_kind(&r), "conflict", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 levels"),
        "{r}"
    );
    assert_eq!(w.api.read_events(0, 10_000).unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_ends_with_its_question_unanswered_still_completes() {
    let w = World::new();
    let t = w.running("ask and go on");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let r = s
        .call(
            "request_approval",
            json!({"question": "Ship it?", "timeout_seconds": 0}),
        )
        .await;
    assert_eq!(r["decision"], "pending", "{r}");
    let done = w.succeed(t.id);
    assert_eq!(done.state.as_str(), "completed", "{done:?}");
    assert!(
        done.pending.is_none(),
        "the question left with the attempt: {:?}",
        done.pending
    );
}
