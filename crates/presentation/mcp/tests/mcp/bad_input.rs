//! Bad input: malformed messages, unknown tools and arguments, oversized and hostile values —
//! each refused with a clear error, nothing stored.

use maos_application::MaosApi;
use maos_mcp::Caller;
use serde_json::json;

use crate::support::{Session, World, error_kind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_named_and_nothing_is_stored() {
    let w = World::new();
    let t = w.running("a task");
    let mut s = Session::open(w.dyn_api(), w.agent(t.id)).await;
    let before = w.api.read_events(0, 10_000).unwrap().len();
    let cases = [
        ("report_progress", json!({}), "`note` is required"),
        (
            "report_progress",
            json!({"note": 5}),
            "`note` must be a string, not a number",
        ),
        ("report_progress", json!({"note": "   "}), "blank"),
        (
            "report_progress",
            json!({"note": "x".repeat(2001)}),
            "2001 characters",
        ),
        (
            "report_progress",
            json!({"note": "a\u{7}b"}),
            "control character",
        ),
        (
            "report_progress",
            json!({"note": "ok", "extra": 1}),
            "unknown argument \"extra\"",
        ),
        (
            "create_subtasks",
            json!({"tasks": []}),
            "at least one subtask",
        ),
        (
            "create_subtasks",
            json!({"tasks": [{"id": "a", "title": "A", "depends_on": ["b"]}]}),
            "which the plan does not have",
        ),
        (
            "create_subtasks",
            json!({"tasks": [{"id": "a", "title": "A", "depends_on": ["b"]}, {"id": "b", "title": "B", "depends_on": ["a"]}]}),
            "cycle",
        ),
        (
            "create_subtasks",
            json!({"tasks": (0..17).map(|i| json!({"id": format!("t{i}"), "title": "x"})).collect::<Vec<_>>()}),
            "the limit is 16",
        ),
        (
            "create_subtasks",
            json!({"tasks": [{"id": "a", "title": "line\nbreak"}]}),
            "tasks[0]",
        ),
        ("memory_add", json!({"text": "x".repeat(9000)}), "8192"),
        (
            "memory_add",
            json!({"text": "ok", "tier": "forever"}),
            "memory tier",
        ),
        (
            "wait_for_tasks",
            json!({"tasks": ["zzzz"], "timeout_seconds": 9999}),
            "from 0 to 50",
        ),
        ("get_task", json!({"task": "i!"}), "id"),
    ];
    for (tool, args, words) in cases {
        let r = s.call(tool, args.clone()).await;
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(
            matches!(error_kind(&r), "invalid_input" | "conflict"),
            "{tool} {args}: {r}"
        );
        assert!(
            message.contains(words),
            "{tool} {args}: {message:?} lacks {words:?}"
        );
    }
    assert_eq!(
        w.api.read_events(0, 10_000).unwrap().len(),
        before,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_and_unknown_tools_get_protocol_errors_and_the_session_goes_on() {
    let w = World::new();
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let r = s
        .request("tools/call", json!({"name": "rm_rf", "arguments": {}}))
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("rm_rf"));
    // Not JSON at all, then a line of JSON that is not JSON-RPC: the session survives both.
    s.send_raw("this is not json").await;
    s.send_raw(r#"{"hello": "world"}"#).await;
    let names = s.tool_names().await;
    assert!(names.contains(&"get_task".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_comes_back_as_data_not_markup() {
    let w = World::new();
    let mut s = Session::open(w.dyn_api(), Caller::Person).await;
    let title = "<script>alert(1)</script> \u{1b}[31mred";
    let r = s.call("create_task", json!({"title": title})).await;
    // A title with a control character is refused; without it, the text is stored as given.
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    let r = s
        .call("create_task", json!({"title": "<script>alert(1)</script>"}))
        .await;
    assert_eq!(r["task"]["title"], "<script>alert(1)</script>");
}
