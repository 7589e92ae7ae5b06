//! The approvals inbox: oldest first, one-click approval, rejection with a reason, back to
//! the inbox afterwards.

use maos_domain::{Risk, TaskState};

use crate::support::Served;

#[test]
fn the_inbox_lists_the_oldest_first_and_decides_in_one_click() {
    let s = Served::new();
    s.agent("worker");
    let empty = s.get("/approvals");
    assert!(empty.body.contains("Nothing waits for a decision."));

    let first = s.task("First <i>asked</i>", Risk::Medium);
    s.finish(first.id, "worker");
    let second = s.task("Second asked", Risk::Medium);
    s.finish(second.id, "worker");

    let inbox = s.get("/approvals");
    assert_eq!(inbox.status, 200);
    let a = inbox
        .body
        .find("First &lt;i&gt;asked&lt;/i&gt;")
        .expect("first listed");
    let b = inbox.body.find("Second asked").expect("second listed");
    assert!(a < b, "oldest first");
    assert_eq!(inbox.body.matches("<li class=\"decision\"").count(), 2);
    assert!(inbox.body.contains("aria-current=\"page\">Approvals"));

    let approved = s.post(
        &format!("/tasks/{}/approve", first.id),
        &[("then", "/approvals")],
    );
    assert_eq!(approved.status, 303);
    assert_eq!(approved.header("location"), Some("/approvals"));
    assert_eq!(s.get_task(first.id).state, TaskState::Completed);

    let rejected = s.post(
        &format!("/tasks/{}/reject", second.id),
        &[("reason", "needs tests"), ("then", "/approvals")],
    );
    assert_eq!(rejected.status, 303);
    assert_ne!(s.get_task(second.id).state, TaskState::AwaitingApproval);
    let inbox = s.get("/approvals");
    assert!(
        inbox.body.contains("Nothing waits for a decision."),
        "{}",
        inbox.body
    );
}
