//! The task page: facts, attempts, the live log that follows a running attempt, and the
//! decisions (approve, reject with a reason, retry, cancel) posted from it.

use std::io::Write;

use maos_application::MaosApi;
use maos_domain::{Risk, TaskState};

use crate::support::Served;

#[test]
fn the_page_shows_the_task_and_escapes_what_people_and_agents_wrote() {
    let s = Served::new();
    s.agent("worker");
    let t = s.task("<script>window.owned=1</script> fix", Risk::Low);
    s.finish(t.id, "worker");
    let page = s.get(&format!("/tasks/{}", t.id.short()));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;window.owned=1&lt;/script&gt; fix")
    );
    assert!(
        !page.body.contains("<script>window.owned"),
        "raw script rendered"
    );
    assert!(page.body.contains("state-completed"));
    // The attempt table: the agent and the outcome.
    let attempts = section(&page.body, "attempts");
    assert!(attempts.contains("worker"), "{attempts}");
    assert!(attempts.contains("state-succeeded"), "{attempts}");
    // A finished task offers no decision.
    assert!(!page.body.contains("/approve\""));
    assert!(!page.body.contains("/cancel\""));
}

#[test]
fn unknown_and_malformed_ids_are_refused_with_their_status() {
    let s = Served::new();
    let missing = s.get("/tasks/00000000");
    assert_eq!(missing.status, 404, "{}", missing.body);
    let bad = s.get("/tasks/ab");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("role=\"alert\""));
}

#[test]
fn the_log_of_a_running_attempt_follows_as_it_grows() {
    let s = Served::new();
    s.agent("worker");
    let t = s.task("Long job", Risk::Low);
    let a = s.run(t.id, "worker");
    let path = maos_agents::logs::log_path(&s.logs, t.id, 1);
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let mut log = std::fs::File::create(&path).expect("log");
    log.write_all(b"step 1 <b>bold</b>\n").expect("write");

    let page = s.get(&format!("/tasks/{}", t.id));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-log=\"/tasks/"), "no follower");
    assert!(page.body.contains("step 1 &lt;b&gt;bold&lt;/b&gt;"));
    let offset = attr(&page.body, "data-offset").expect("offset");
    assert_eq!(offset, "19");

    log.write_all("step 2 é\n".as_bytes()).expect("write");
    let more = s.get(&format!("/tasks/{}/log?attempt=1&offset={offset}", t.id));
    assert_eq!(more.status, 200);
    assert_eq!(more.body, "step 2 é\n");
    assert_eq!(more.header("x-next-offset"), Some("29"));
    assert_eq!(more.header("x-finished"), Some("0"));
    assert!(
        more.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );

    s.api
        .complete_attempt(t.id, a.fencing, None, Default::default())
        .expect("complete");
    let end = s.get(&format!("/tasks/{}/log?attempt=1&offset=29", t.id));
    assert_eq!(
        (end.body.as_str(), end.header("x-finished")),
        ("", Some("1"))
    );
    // A live refresh asks for the live regions only: the log (read by the follower) is left out.
    let refresh = s.raw(
        &format!(
            "GET /tasks/{} HTTP/1.1\r\nCookie: maos_{port}={tok}\r\nX-MAOS-Live: 1",
            t.id,
            port = s.port,
            tok = crate::support::TOKEN
        ),
        "",
    );
    assert_eq!(refresh.status, 200);
    assert!(refresh.body.contains("id=\"attempts\" data-live"));
    assert!(
        !refresh.body.contains("step 1"),
        "a live refresh read the log"
    );
    // Once finished, the page shows the log without a follower.
    let page = s.get(&format!("/tasks/{}", t.id));
    assert!(page.body.contains("step 2 é"));
    assert!(!page.body.contains("data-log="));
}

#[test]
fn a_medium_risk_result_is_approved_from_the_page() {
    let s = Served::new();
    s.agent("worker");
    let t = s.task("Medium", Risk::Medium);
    assert_eq!(s.finish(t.id, "worker").state, TaskState::AwaitingApproval);
    let page = s.get(&format!("/tasks/{}", t.id));
    assert!(
        page.body
            .contains(&format!("action=\"/tasks/{}/approve\"", t.id))
    );
    assert!(page.body.contains("Reason to reject"));

    let done = s.post(&format!("/tasks/{}/approve", t.id), &[]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some(format!("/tasks/{}", t.id).as_str())
    );
    assert_eq!(s.get_task(t.id).state, TaskState::Completed);

    // Approving again: nothing waits; the application's conflict is the page's.
    let again = s.post(&format!("/tasks/{}/approve", t.id), &[]);
    assert_eq!(again.status, 409, "{}", again.body);
}

#[test]
fn a_rejection_needs_a_reason_and_sends_the_work_back_or_cancels_it() {
    let s = Served::new();
    s.agent("worker");
    let t = s.task("Back", Risk::Medium);
    s.finish(t.id, "worker");
    let before = s.get_task(t.id);

    let empty = s.post(&format!("/tasks/{}/reject", t.id), &[("reason", "  ")]);
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert!(empty.body.contains("needs a reason"));
    assert_eq!(
        s.get_task(t.id),
        before,
        "a refused rejection changed the task"
    );

    let sent = s.post(
        &format!("/tasks/{}/reject", t.id),
        &[("reason", "tests are missing"), ("then", "//evil.example/")],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(
        sent.header("location"),
        Some(format!("/tasks/{}", t.id).as_str())
    );
    let back = s.get_task(t.id);
    assert_ne!(back.state, TaskState::AwaitingApproval);
    let decision = back.decision.clone().expect("decision");
    assert!(!decision.approved);
    assert_eq!(decision.reason.as_deref(), Some("tests are missing"));

    let u = s.task("Cancel me", Risk::Medium);
    s.finish(u.id, "worker");
    let cancelled = s.post(
        &format!("/tasks/{}/reject", u.id),
        &[("reason", "wrong approach"), ("cancel", "1")],
    );
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(s.get_task(u.id).state, TaskState::Cancelled);
}

#[test]
fn a_task_is_retried_and_cancelled_from_the_page() {
    let s = Served::new();
    s.agent("worker");
    let cmd = maos_application::CreateTask {
        max_attempts: maos_domain::MaxAttempts::new(1).expect("attempts"),
        ..maos_application::CreateTask::titled(maos_domain::Title::parse("Flaky").expect("title"))
    };
    let t = s.api.create_task(cmd).expect("create").task;
    let a = s.run(t.id, "worker");
    s.api
        .fail_attempt(t.id, a.fencing, "boom".into(), Default::default())
        .expect("fail");
    let failed = s.get_task(t.id);
    assert!(
        matches!(failed.state, TaskState::Blocked | TaskState::Failed),
        "{:?}",
        failed.state
    );
    let page = s.get(&format!("/tasks/{}", t.id));
    assert!(page.body.contains("boom"));
    assert!(page.body.contains("/retry\""));

    let bad = s.post(&format!("/tasks/{}/retry", t.id), &[("attempts", "0")]);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("attempts"));
    assert_eq!(s.get_task(t.id).state, failed.state);

    let retried = s.post(&format!("/tasks/{}/retry", t.id), &[("attempts", "2")]);
    assert_eq!(retried.status, 303, "{}", retried.body);
    assert_eq!(s.get_task(t.id).state, TaskState::Ready);

    let gone = s.post(
        &format!("/tasks/{}/cancel", t.id),
        &[("reason", "not needed")],
    );
    assert_eq!(gone.status, 303, "{}", gone.body);
    let t = s.get_task(t.id);
    assert_eq!(t.state, TaskState::Cancelled);
    assert_eq!(t.reason.as_deref(), Some("not needed"));
}

#[test]
fn a_decision_without_the_csrf_token_changes_nothing() {
    let s = Served::new();
    s.agent("worker");
    let t = s.task("Guarded", Risk::Medium);
    s.finish(t.id, "worker");
    let answer = s.raw(
        &format!(
            "POST /tasks/{}/approve HTTP/1.1\r\nCookie: maos_{port}={tok}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded",
            t.id,
            port = s.port,
            tok = crate::support::TOKEN
        ),
        "then=%2F",
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(s.get_task(t.id).state, TaskState::AwaitingApproval);
}

/// The inside of the element with id `id` (up to the next `</section>`).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"{id}\"")).expect("section");
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// The first value of attribute `name`.
fn attr<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let at = html.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &html[at..];
    Some(&rest[..rest.find('"')?])
}
