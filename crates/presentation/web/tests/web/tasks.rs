//! The task list: pages of 50 through the application's cursor, filters, bad filters refused.

use maos_application::MaosApi;
use maos_domain::{Risk, TaskState};

use crate::support::Served;

#[test]
fn the_list_pages_through_every_task_once() {
    let s = Served::new();
    let cmds: Vec<_> = (0..60)
        .map(|i| {
            maos_application::CreateTask::titled(
                maos_domain::Title::parse(&format!("Task number {i:02}")).expect("title"),
            )
        })
        .collect();
    s.api.create_tasks(cmds).expect("create");
    let first = s.get("/tasks");
    assert_eq!(first.status, 200);
    let rows = first.body.matches("<tr data-task=").count();
    assert_eq!(rows, 50);
    let next = first
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a next link")
        .replace("&amp;", "&");
    let second = s.get(&next);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body.matches("<tr data-task=").count(), 10);
    assert!(!second.body.contains("rel=\"next\""));
    let mut seen: Vec<String> = [first.body, second.body]
        .iter()
        .flat_map(|b| {
            b.match_indices("Task number ")
                .map(|(i, _)| b[i..i + 14].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 60, "every task exactly once");
}

#[test]
fn filters_narrow_the_list_and_bad_ones_are_named() {
    let s = Served::new();
    s.agent("worker");
    let done = s.task("Done one", Risk::Low);
    s.finish(done.id, "worker");
    s.task("Still ready", Risk::Low);
    let page = s.get("/tasks?state=completed");
    assert!(page.body.contains("Done one"));
    assert!(!page.body.contains("Still ready"));
    assert!(page.body.contains("<option value=\"completed\" selected"));
    assert_eq!(s.get_task(done.id).state, TaskState::Completed);

    let bad = s.get("/tasks?state=finished");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("state: "), "{}", bad.body);
    let cursor = s.get("/tasks?after=garbage");
    assert_eq!(cursor.status, 400);
    let orch = s.get("/tasks?orchestration=00000000");
    assert_eq!(orch.status, 404);
}
