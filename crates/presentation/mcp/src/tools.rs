//! The tools MAOS offers, each with its description and the JSON Schema of its arguments, and
//! which callers may use it.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::{Value, json};

use crate::calls::ToolError;

/// Who may call a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// People and agents (an agent within its scope).
    Anyone,
    /// Only an agent's attempt: the call acts as that attempt.
    Agent,
    /// Only a person.
    Person,
}

/// A tool MAOS offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    GetTask,
    GetBriefing,
    ListTasks,
    OrchestrationStatus,
    ListAgents,
    ReportProgress,
    CreateSubtasks,
    WaitForTasks,
    RequestApproval,
    MemorySearch,
    MemoryAdd,
    MemoryPin,
    Approve,
    Reject,
    CreateTask,
}

impl Tool {
    pub(crate) const ALL: [Tool; 15] = [
        Tool::GetTask,
        Tool::GetBriefing,
        Tool::ListTasks,
        Tool::OrchestrationStatus,
        Tool::ListAgents,
        Tool::ReportProgress,
        Tool::CreateSubtasks,
        Tool::WaitForTasks,
        Tool::RequestApproval,
        Tool::MemorySearch,
        Tool::MemoryAdd,
        Tool::MemoryPin,
        Tool::Approve,
        Tool::Reject,
        Tool::CreateTask,
    ];

    /// The tool with this name.
    pub(crate) fn named(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::GetTask => "get_task",
            Tool::GetBriefing => "get_briefing",
            Tool::ListTasks => "list_tasks",
            Tool::OrchestrationStatus => "orchestration_status",
            Tool::ListAgents => "list_agents",
            Tool::ReportProgress => "report_progress",
            Tool::CreateSubtasks => "create_subtasks",
            Tool::WaitForTasks => "wait_for_tasks",
            Tool::RequestApproval => "request_approval",
            Tool::MemorySearch => "memory_search",
            Tool::MemoryAdd => "memory_add",
            Tool::MemoryPin => "memory_pin",
            Tool::Approve => "approve",
            Tool::Reject => "reject",
            Tool::CreateTask => "create_task",
        }
    }

    pub(crate) fn audience(self) -> Audience {
        match self {
            Tool::ReportProgress | Tool::CreateSubtasks | Tool::RequestApproval => Audience::Agent,
            Tool::Approve | Tool::Reject | Tool::CreateTask => Audience::Person,
            _ => Audience::Anyone,
        }
    }

    fn read_only(self) -> bool {
        matches!(
            self,
            Tool::GetTask
                | Tool::GetBriefing
                | Tool::ListTasks
                | Tool::OrchestrationStatus
                | Tool::ListAgents
                | Tool::WaitForTasks
                | Tool::MemorySearch
        )
    }

    pub(crate) fn description(self) -> &'static str {
        match self {
            Tool::GetTask => {
                "A task: title, prompt, state, attempts, dependencies, subtasks, what a person \
                 decided. Without `task`, an agent gets its own task."
            }
            Tool::GetBriefing => {
                "The briefing an attempt received: exactly its prompt, with what was cut to fit. \
                 Without `task`, an agent gets its own current briefing."
            }
            Tool::ListTasks => {
                "Tasks, oldest first, a page at a time. An agent sees the tasks of its own \
                 orchestration (or its own task and subtasks)."
            }
            Tool::OrchestrationStatus => {
                "An orchestration's report: tasks by state, progress, cost, what waits for a \
                 person. Without `orchestration`, an agent gets its own."
            }
            Tool::ListAgents => {
                "The registered agents: name, kind, capabilities, status and slots."
            }
            Tool::ReportProgress => {
                "Say how your task is getting on, in a sentence or a short paragraph: the note is \
                 recorded and shown live in the task's log and on the dashboard."
            }
            Tool::CreateSubtasks => {
                "Split your task into subtasks: a small graph of tasks (ids, titles, prompts, \
                 dependencies among them), checked like a plan, in your task's orchestration and \
                 repository. With `wait: true` your task cannot complete before they have (use \
                 wait_for_tasks); otherwise they go on alone. At most 16 subtasks per task, \
                 nested at most 3 levels."
            }
            Tool::WaitForTasks => {
                "Waits until the given tasks have all ended (completed, cancelled, blocked or \
                 awaiting a person) or `timeout_seconds` pass, and returns their states. Call it \
                 again to keep waiting."
            }
            Tool::RequestApproval => {
                "Ask a person a yes-or-no question about your work (it appears in their approvals \
                 inbox). Returns their decision and reason, or `pending` when `timeout_seconds` \
                 pass first: call again with the same question to keep waiting."
            }
            Tool::MemorySearch => {
                "Searches what earlier tasks and people recorded (full-text, best first; pinned \
                 and critical entries rank first). An agent searches its own scopes: global, its \
                 repository and its orchestration."
            }
            Tool::MemoryAdd => {
                "Records something later tasks should know (a fact, a convention, a pitfall) as \
                 a memory entry with a tier (critical, important, routine, ephemeral). An \
                 agent's entry is scoped to its repository (else its orchestration, else global) \
                 unless it names one of its scopes."
            }
            Tool::MemoryPin => "Pins a memory entry: it ranks first and never expires.",
            Tool::Approve => {
                "Approves what a task waits for: running it, its result, or its agent's tool \
                 call or question. People only."
            }
            Tool::Reject => {
                "Rejects what a task waits for, with a reason the agent gets (or, with `cancel`, \
                 ends the task). People only."
            }
            Tool::CreateTask => {
                "Creates a task (standalone, or in an orchestration). People only: agents split \
                 their own task with create_subtasks."
            }
        }
    }

    pub(crate) fn schema(self) -> Value {
        let id = |what: &str| {
            json!({"type": "string", "minLength": 4, "maxLength": 25,
                   "description": format!("{what}: its id or a unique prefix of 4 or more characters")})
        };
        let timeout = |max: u64, default: u64| {
            json!({"type": "integer", "minimum": 0, "maximum": max, "default": default,
                   "description": "How long to wait, in seconds."})
        };
        match self {
            Tool::GetTask => object(json!({"task": id("The task")}), &[]),
            Tool::GetBriefing => object(
                json!({
                    "task": id("The task"),
                    "attempt": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "description": "The attempt (default: the newest)."}
                }),
                &[],
            ),
            Tool::ListTasks => object(
                json!({
                    "orchestration": id("Only this orchestration's tasks"),
                    "state": {"type": "string", "enum": crate::args::TASK_STATES,
                              "description": "Only tasks in this state."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "cursor": {"type": "string", "maxLength": 64,
                               "description": "Where the page starts: the previous page's next_cursor."}
                }),
                &[],
            ),
            Tool::OrchestrationStatus => {
                object(json!({"orchestration": id("The orchestration")}), &[])
            }
            Tool::ListAgents => object(json!({}), &[]),
            Tool::ReportProgress => object(
                json!({"note": {"type": "string", "minLength": 1, "maxLength": 2000,
                                "description": "What was done, or what comes next."}}),
                &["note"],
            ),
            Tool::CreateSubtasks => object(
                json!({
                    "tasks": {
                        "type": "array", "minItems": 1, "maxItems": 16,
                        "items": object(json!({
                            "id": {"type": "string", "minLength": 1, "maxLength": 64,
                                   "pattern": "^[a-z0-9][a-z0-9_-]*$",
                                   "description": "Its key among these subtasks, for depends_on."},
                            "title": {"type": "string", "minLength": 1, "maxLength": 200},
                            "prompt": {"type": "string", "maxLength": 65536,
                                       "description": "What its agent should do."},
                            "depends_on": {"type": "array", "maxItems": 16,
                                           "items": {"type": "string", "maxLength": 64},
                                           "description": "Ids of other subtasks it waits for."},
                            "capabilities": {"type": "array", "maxItems": 32,
                                             "items": {"type": "string", "maxLength": 64},
                                             "description": "What its agent must offer."},
                            "risk": {"type": "string", "enum": ["low", "medium", "high"]}
                        }), &["id", "title"])
                    },
                    "wait": {"type": "boolean", "default": false,
                             "description": "Your task may not complete before these have."}
                }),
                &["tasks"],
            ),
            Tool::WaitForTasks => object(
                json!({
                    "tasks": {"type": "array", "minItems": 1, "maxItems": 16,
                              "items": {"type": "string", "minLength": 4, "maxLength": 25}},
                    "timeout_seconds": timeout(crate::calls::MAX_WAIT_SECS, 30)
                }),
                &["tasks"],
            ),
            Tool::RequestApproval => object(
                json!({
                    "question": {"type": "string", "minLength": 1, "maxLength": 2000,
                                 "description": "What the person should decide, in a sentence or two."},
                    "timeout_seconds": timeout(crate::calls::MAX_WAIT_SECS, 30)
                }),
                &["question"],
            ),
            Tool::MemorySearch => object(
                json!({
                    "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                    "tier": {"type": "string", "enum": ["critical", "important", "routine", "ephemeral"]},
                    "scope": {"type": "string", "maxLength": 4096,
                              "description": "global, repo:<absolute path> or orchestration:<id>."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
                }),
                &["query"],
            ),
            Tool::MemoryAdd => object(
                json!({
                    "text": {"type": "string", "minLength": 1, "maxLength": 8192},
                    "tier": {"type": "string", "enum": ["critical", "important", "routine", "ephemeral"],
                             "default": "routine"},
                    "tags": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64}},
                    "scope": {"type": "string", "maxLength": 4096,
                              "description": "global, repo:<absolute path> or orchestration:<id>."}
                }),
                &["text"],
            ),
            Tool::MemoryPin => object(
                json!({"memory": {"type": "string", "minLength": 4, "maxLength": 25,
                                  "description": "The entry: its id or a unique prefix."}}),
                &["memory"],
            ),
            Tool::Approve => object(json!({"task": id("The task")}), &["task"]),
            Tool::Reject => object(
                json!({
                    "task": id("The task"),
                    "reason": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "cancel": {"type": "boolean", "default": false}
                }),
                &["task", "reason"],
            ),
            Tool::CreateTask => object(
                json!({
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "prompt": {"type": "string", "maxLength": 65536},
                    "orchestration": id("The orchestration it belongs to"),
                    "capabilities": {"type": "array", "maxItems": 32, "items": {"type": "string", "maxLength": 64}},
                    "risk": {"type": "string", "enum": ["low", "medium", "high"]}
                }),
                &["title"],
            ),
        }
    }

    /// The tool as MCP lists it.
    pub(crate) fn listing(self) -> McpTool {
        let schema = match self.schema() {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        let mut tool = McpTool::new(self.name(), self.description(), Arc::new(schema));
        let mut notes = ToolAnnotations::default();
        notes.read_only_hint = Some(self.read_only());
        notes.destructive_hint = Some(matches!(self, Tool::Reject));
        notes.open_world_hint = Some(false);
        tool.annotations = Some(notes);
        tool
    }
}

/// A JSON Schema object with these properties, no others, and these required.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The tools a caller sees: a person, every one; an agent, those it may call.
pub(crate) fn listed(person: bool) -> Vec<McpTool> {
    Tool::ALL
        .into_iter()
        .filter(|t| shown(*t, person))
        .map(Tool::listing)
        .collect()
}

/// The tools an agent may call.
pub(crate) fn for_agents() -> impl Iterator<Item = Tool> {
    Tool::ALL.into_iter().filter(|t| shown(*t, false))
}

/// Whether a person (or else an agent) is shown `tool`.
fn shown(tool: Tool, person: bool) -> bool {
    match tool.audience() {
        Audience::Anyone => true,
        Audience::Agent => !person,
        Audience::Person => person,
    }
}

/// A refused or failed call, as a tool result the model can read and act on.
pub(crate) fn refusal(e: &ToolError) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": e.to_json() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_unique_name_and_an_object_schema() {
        let mut names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Tool::ALL.len());
        for t in Tool::ALL {
            assert_eq!(Tool::named(t.name()), Some(t));
            let s = t.schema();
            assert_eq!(s["type"], "object", "{}", t.name());
            assert_eq!(s["additionalProperties"], false, "{}", t.name());
            for r in s["required"].as_array().into_iter().flatten() {
                let key = r.as_str().unwrap_or_default();
                assert!(s["properties"].get(key).is_some(), "{}: {key}", t.name());
            }
        }
    }

    #[test]
    fn agents_are_not_shown_person_tools_and_people_not_agent_tools() {
        let names = |person| -> Vec<String> {
            listed(person)
                .into_iter()
                .map(|t| t.name.to_string())
                .collect()
        };
        let agent = names(false);
        let person = names(true);
        assert!(agent.contains(&"report_progress".to_owned()));
        assert!(!agent.contains(&"approve".to_owned()));
        assert!(person.contains(&"approve".to_owned()));
        assert!(!person.contains(&"report_progress".to_owned()));
        assert!(
            agent.contains(&"memory_search".to_owned())
                && person.contains(&"memory_search".to_owned())
        );
    }
}
