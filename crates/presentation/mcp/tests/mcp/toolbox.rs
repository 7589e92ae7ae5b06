//! MAOS's tools for the model loop (`Toolbox`): the tools an agent may call, prefixed `maos_`,
//! with the same checks as over MCP.

use maos_application::{AgentCredential, AgentToolbox, MaosApi};
use maos_mcp::{Caller, TOOL_PREFIX, Toolbox};
use serde_json::Value;

use crate::support::{World, error_kind};

fn credential(caller: Caller) -> AgentCredential {
    match caller {
        Caller::Agent(c) => c,
        Caller::Person => panic!("not an agent"),
    }
}

fn answer(toolbox: &Toolbox, c: &AgentCredential, name: &str, args: &str) -> (Value, bool) {
    let a = toolbox.call(c, name, args);
    (serde_json::from_str(&a.json).unwrap(), a.is_error)
}

#[test]
fn it_lists_the_agent_tools_only_with_the_prefix_and_object_schemas() {
    let w = World::new();
    let tools = Toolbox::new(w.dyn_api()).tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"maos_report_progress"), "{names:?}");
    assert!(names.contains(&"maos_memory_search"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("approve")), "{names:?}");
    assert!(!names.contains(&"maos_create_task"), "{names:?}");
    assert_eq!(names.len(), 12, "{names:?}");
    for t in &tools {
        assert!(t.name.starts_with(TOOL_PREFIX), "{}", t.name);
        assert!(!t.description.is_empty(), "{}", t.name);
        let schema: Value = serde_json::from_str(&t.schema).unwrap();
        assert_eq!(schema["type"], "object", "{}", t.name);
    }
}

#[test]
fn a_call_with_a_live_credential_reports_progress() {
    let w = World::new();
    let t = w.running("fix the parser");
    let c = credential(w.agent(t.id));
    let toolbox = Toolbox::new(w.dyn_api());
    let (mine, refused) = answer(&toolbox, &c, "maos_get_task", "");
    assert!(!refused, "{mine}");
    assert_eq!(mine["task"]["id"], t.id.to_string());
    let (r, refused) = answer(
        &toolbox,
        &c,
        "maos_report_progress",
        r#"{"note": "halfway there"}"#,
    );
    assert!(!refused, "{r}");
    assert_eq!(r["recorded"], true, "{r}");
    let events = w.api.read_events(0, 10_000).unwrap();
    assert_eq!(
        events.last().unwrap().event.kind(),
        "task.progress_reported"
    );
    assert_eq!(
        w.runtime.notes.lock().unwrap().as_slice(),
        [format!("{} 1: halfway there", t.id.short())]
    );
}

#[test]
fn bad_arguments_and_unknown_or_person_tools_are_refused_and_store_nothing() {
    let w = World::new();
    let t = w.running("mine");
    let other = w.running("someone else's");
    let c = credential(w.agent(t.id));
    let toolbox = Toolbox::new(w.dyn_api());
    let before = w.api.read_events(0, 10_000).unwrap().len();

    let (r, refused) = answer(&toolbox, &c, "maos_report_progress", "{\"note\": ");
    assert!(refused);
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("not JSON"),
        "{r}"
    );
    let (r, refused) = answer(&toolbox, &c, "maos_report_progress", "[1]");
    assert!(refused);
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    let (r, _) = answer(&toolbox, &c, "maos_report_progress", r#"{"notes": "x"}"#);
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    let huge = format!(
        r#"{{"note": "{}"}}"#,
        "a".repeat(maos_mcp::MAX_MESSAGE_BYTES)
    );
    let (r, _) = answer(&toolbox, &c, "maos_report_progress", &huge);
    assert_eq!(error_kind(&r), "invalid_input", "{r}");

    let (r, refused) = answer(
        &toolbox,
        &c,
        "maos_approve",
        &format!(r#"{{"task": "{}"}}"#, other.id),
    );
    assert!(refused);
    assert_eq!(error_kind(&r), "denied", "{r}");
    let (r, _) = answer(&toolbox, &c, "maos_create_task", r#"{"title": "sneaky"}"#);
    assert_eq!(error_kind(&r), "denied", "{r}");
    // Without the prefix, or a name MAOS does not know.
    let (r, _) = answer(&toolbox, &c, "report_progress", r#"{"note": "x"}"#);
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    let (r, _) = answer(&toolbox, &c, "maos_read_file", "{}");
    assert_eq!(error_kind(&r), "invalid_input", "{r}");
    // Another task is out of the agent's reach.
    let (r, _) = answer(
        &toolbox,
        &c,
        "maos_get_task",
        &format!(r#"{{"task": "{}"}}"#, other.id),
    );
    assert_eq!(error_kind(&r), "denied", "{r}");

    assert_eq!(w.api.read_events(0, 10_000).unwrap().len(), before);
}

#[test]
fn a_stale_credential_is_denied() {
    let w = World::new();
    let t = w.running("short task");
    let c = credential(w.agent(t.id));
    w.succeed(t.id);
    let toolbox = Toolbox::new(w.dyn_api());
    let before = w.api.read_events(0, 10_000).unwrap().len();
    let (r, refused) = answer(&toolbox, &c, "maos_report_progress", r#"{"note": "late"}"#);
    assert!(refused);
    assert_eq!(error_kind(&r), "denied", "{r}");
    let (r, refused) = answer(&toolbox, &c, "maos_get_task", "{}");
    assert!(refused);
    assert_eq!(error_kind(&r), "denied", "{r}");
    assert_eq!(w.api.read_events(0, 10_000).unwrap().len(), before);
}
