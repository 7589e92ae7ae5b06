//! What each tool does: it checks who calls (an agent's credential is checked again on every
//! call, so a stale attempt is refused), keeps an agent within its task, orchestration and
//! memory scopes, reads its arguments, and calls the application API.

use std::time::{Duration, Instant};

use maos_application::{
    AddMemory, AgentFilter, AgentScope, CreateSubtasks, CreateTask, ErrorInfo, ErrorKind, IdRef,
    MaosApi, MemoryFilter, MemorySearch, Page, PlanTask, TaskCursor, TaskFilter,
};
use maos_domain::{
    CapabilitySet, Gate, MemoryQuery, MemoryScope, MemoryText, MemoryTier, ProgressNote,
    Provenance, Risk, Tags, Task, TaskId, TaskState, Title,
};
use rmcp::model::JsonObject;
use serde_json::{Value, json};

use crate::args::Args;
use crate::caller::Caller;
use crate::render;
use crate::tools::{Audience, Tool};

/// The longest a waiting tool (wait_for_tasks, request_approval) waits in one call: under the
/// usual client timeouts (60 s in the TypeScript SDK); call again to wait longer.
pub(crate) const MAX_WAIT_SECS: u64 = 50;

/// How often a waiting tool looks again.
const POLL: Duration = Duration::from_millis(200);

/// How often a waiting agent's credential is checked again.
const RECHECK: Duration = Duration::from_secs(2);

/// The tool name the approvals inbox shows for an agent's question.
pub(crate) const QUESTION_TOOL: &str = "question";

/// A refused or failed call: a kind (as in the CLI's JSON errors), what went wrong and what to
/// do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolError {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl ToolError {
    pub(crate) fn invalid(message: impl Into<String>) -> ToolError {
        ToolError {
            kind: ErrorKind::InvalidInput.as_str(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn denied(message: impl Into<String>, hint: impl Into<String>) -> ToolError {
        ToolError {
            kind: ErrorKind::Denied.as_str(),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> ToolError {
        ToolError {
            kind: ErrorKind::Internal.as_str(),
            message: message.into(),
            hint: None,
        }
    }

    /// An HTTP request that reached a tool without a caller (cannot happen behind the router's
    /// check; said plainly all the same).
    pub(crate) fn no_credential() -> ToolError {
        ToolError::denied(
            "the request carries no credential",
            "send `Authorization: Bearer <token>`: the dashboard's token (a person) or the \
             credential MAOS gave your attempt (an agent)",
        )
    }

    /// An error of the application, with what to do about it.
    pub(crate) fn from_app<E: ErrorInfo + 'static>(e: &E) -> ToolError {
        let kind = e.kind();
        let hint = match kind {
            ErrorKind::Denied => Some(
                "an agent's tools work only while the attempt they were given to runs; a new \
                 attempt gets a new credential"
                    .to_owned(),
            ),
            ErrorKind::Unavailable => {
                Some("the MAOS daemon is not reachable; is it running?".to_owned())
            }
            ErrorKind::NotFound => Some("check the id (list_tasks lists tasks)".to_owned()),
            _ => None,
        };
        ToolError {
            kind: kind.as_str(),
            message: e.to_string(),
            hint,
        }
    }

    /// The error as the tool result's structured content.
    pub(crate) fn to_json(&self) -> Value {
        json!({"kind": self.kind, "message": self.message, "hint": self.hint})
    }
}

type Answer = Result<Value, ToolError>;

/// Who a call is from, once checked.
pub(crate) enum Who {
    Person,
    Agent(AgentScope),
}

/// Checks who calls: a person as they are, an agent by its credential (again at every call).
pub(crate) fn who(api: &dyn MaosApi, caller: &Caller) -> Result<Who, ToolError> {
    match caller {
        Caller::Person => Ok(Who::Person),
        Caller::Agent(credential) => api
            .authenticate_agent(credential)
            .map(Who::Agent)
            .map_err(|e| ToolError::from_app(&e)),
    }
}

/// Calls `tool` with `args` for `caller`.
pub(crate) fn call(api: &dyn MaosApi, caller: &Caller, tool: Tool, args: &JsonObject) -> Answer {
    let who = who(api, caller)?;
    match (tool.audience(), &who) {
        (Audience::Person, Who::Agent(_)) => {
            return Err(ToolError::denied(
                format!(
                    "{} is for people: an agent's credential cannot use it",
                    tool.name()
                ),
                "an agent splits its own task with create_subtasks and asks a person with \
                 request_approval",
            ));
        }
        (Audience::Agent, Who::Person) => {
            return Err(ToolError::denied(
                format!(
                    "{} acts as an agent's running attempt, and a person's call has none",
                    tool.name()
                ),
                "agents launched by MAOS call it with their attempt's credential",
            ));
        }
        _ => {}
    }
    let result = match tool {
        Tool::GetTask => get_task(api, &who, args),
        Tool::GetBriefing => get_briefing(api, &who, args),
        Tool::ListTasks => list_tasks(api, &who, args),
        Tool::OrchestrationStatus => orchestration_status(api, &who, args),
        Tool::ListAgents => list_agents(api, args),
        Tool::ReportProgress => report_progress(api, &who, args),
        Tool::CreateSubtasks => create_subtasks(api, &who, args),
        Tool::WaitForTasks => wait_for_tasks(api, caller, &who, args),
        Tool::RequestApproval => request_approval(api, caller, &who, args),
        Tool::MemorySearch => memory_search(api, &who, args),
        Tool::MemoryAdd => memory_add(api, &who, args),
        Tool::MemoryPin => memory_pin(api, &who, args),
        Tool::Approve => approve(api, args),
        Tool::Reject => reject(api, args),
        Tool::CreateTask => create_task(api, args),
    };
    if let Err(e) = &result {
        tracing::debug!(tool = tool.name(), kind = e.kind, "MCP tool call refused");
    }
    result
}

fn app<T, E: ErrorInfo + 'static>(r: Result<T, E>) -> Result<T, ToolError> {
    r.map_err(|e| ToolError::from_app(&e))
}

fn invalid<T>(r: Result<T, maos_domain::ValueError>) -> Result<T, ToolError> {
    r.map_err(|e| ToolError::invalid(e.to_string()))
}

/// The scope of an agent's call, or none for a person.
fn agent(who: &Who) -> Option<&AgentScope> {
    match who {
        Who::Person => None,
        Who::Agent(s) => Some(s),
    }
}

/// An agent may read its own task, its orchestration's tasks, its subtasks and its parent.
fn in_scope(scope: &AgentScope, t: &Task) -> bool {
    t.id == scope.task
        || (scope.orchestration.is_some() && t.spec.orchestration == scope.orchestration)
        || t.spec.parent.is_some_and(|p| p.task == scope.task)
        || t.subtasks.iter().any(|s| s.task == scope.task)
}

fn out_of_scope(t: &Task) -> ToolError {
    ToolError::denied(
        format!("task {} is not this agent's to see", t.id),
        "an agent reads its own task, its orchestration's tasks, its subtasks and its parent",
    )
}

/// The task an argument names, or the agent's own task when it names none.
fn task_arg(api: &dyn MaosApi, who: &Who, a: &Args<'_>, key: &str) -> Result<Task, ToolError> {
    let reference = match (a.str(key, 25)?, agent(who)) {
        (Some(r), _) => invalid(IdRef::parse(r))?,
        (None, Some(s)) => IdRef::from(s.task),
        (None, None) => return Err(ToolError::invalid(format!("`{key}` is required"))),
    };
    let t = app(api.get_task(&reference))?;
    match agent(who) {
        Some(s) if !in_scope(s, &t) => Err(out_of_scope(&t)),
        _ => Ok(t),
    }
}

fn get_task(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["task"])?;
    let t = task_arg(api, who, &a, "task")?;
    Ok(match agent(who) {
        Some(s) => json!({"task": render::task(&t), "you": render::scope(s)}),
        None => json!({"task": render::task(&t)}),
    })
}

fn get_briefing(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["task", "attempt"])?;
    let t = task_arg(api, who, &a, "task")?;
    let attempt = match a.int("attempt", 1, 1000, 0)? {
        0 => None,
        n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
    };
    let b = app(api.task_briefing(&IdRef::from(t.id), attempt))?;
    Ok(json!({"briefing": render::briefing(&t, &b)}))
}

fn list_tasks(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["orchestration", "state", "limit", "cursor"])?;
    let asked = match a.str("orchestration", 25)? {
        Some(r) => Some(app(api.get_orchestration(&invalid(IdRef::parse(r))?))?.id),
        None => None,
    };
    let state = match a.str("state", 32)? {
        Some(s) => Some(invalid(TaskState::parse(s))?),
        None => None,
    };
    let limit = usize::try_from(a.int("limit", 1, 200, 50)?).unwrap_or(50);
    let cursor = match a.str("cursor", 64)? {
        Some(c) => Some(invalid(TaskCursor::parse(c))?),
        None => None,
    };
    let orchestration = match agent(who) {
        None => asked,
        Some(s) => match (asked, s.orchestration) {
            (Some(o), Some(mine)) if o != mine => {
                return Err(ToolError::denied(
                    format!("orchestration {o} is not this agent's"),
                    "an agent lists the tasks of its own orchestration",
                ));
            }
            (_, Some(mine)) => Some(mine),
            (_, None) => {
                // A standalone task: itself and its subtasks.
                let own = app(api.get_task(&IdRef::from(s.task)))?;
                let mut tasks = vec![render::task_line(&own)];
                for sub in &own.subtasks {
                    if let Ok(t) = api.get_task(&IdRef::from(sub.task))
                        && state.is_none_or(|st| st == t.state)
                    {
                        tasks.push(render::task_line(&t));
                    }
                }
                if state.is_some_and(|st| st != own.state) {
                    tasks.remove(0);
                }
                return Ok(json!({"tasks": tasks, "next_cursor": null}));
            }
        },
    };
    let filter = TaskFilter {
        statuses: state.into_iter().collect(),
        orchestration,
        capability: None,
    };
    let page = app(api.list_tasks(&filter, &Page { limit, cursor }))?;
    Ok(json!({
        "tasks": page.tasks.iter().map(render::task_line).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    }))
}

fn orchestration_status(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["orchestration"])?;
    let reference = match (a.str("orchestration", 25)?, agent(who)) {
        (Some(r), _) => invalid(IdRef::parse(r))?,
        (None, Some(s)) => match s.orchestration {
            Some(o) => IdRef::from(o),
            None => {
                return Err(ToolError::invalid(
                    "this agent's task belongs to no orchestration; get_task shows the task",
                ));
            }
        },
        (None, None) => return Err(ToolError::invalid("`orchestration` is required")),
    };
    let r = app(api.orchestration_report(&reference))?;
    if let Some(s) = agent(who)
        && s.orchestration != Some(r.orchestration.id)
    {
        return Err(ToolError::denied(
            format!("orchestration {} is not this agent's", r.orchestration.id),
            "an agent reads the report of its own orchestration",
        ));
    }
    Ok(json!({"orchestration": render::report(&r)}))
}

fn list_agents(api: &dyn MaosApi, args: &JsonObject) -> Answer {
    Args::new(args, &[])?;
    let agents = app(api.list_agents(&AgentFilter::default()))?;
    Ok(json!({"agents": agents.iter().map(render::agent).collect::<Vec<_>>()}))
}

/// The calling agent's scope (the audience check let only agents through).
fn own(who: &Who) -> Result<&AgentScope, ToolError> {
    agent(who).ok_or_else(|| ToolError::internal("an agent's tool was called without an agent"))
}

fn report_progress(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let s = own(who)?;
    let a = Args::new(args, &["note"])?;
    let note = invalid(ProgressNote::parse(
        a.required_str("note", ProgressNote::MAX_CHARS)?,
    ))?;
    let t = app(api.report_progress(s.task, s.fencing, note))?;
    Ok(json!({"recorded": true, "task": t.id.to_string(), "attempt": s.attempt}))
}

fn create_subtasks(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let s = own(who)?;
    let a = Args::new(args, &["tasks", "wait"])?;
    let items = a.array("tasks", maos_domain::MAX_SUBTASKS)?;
    if items.is_empty() {
        return Err(ToolError::invalid(
            "`tasks` is required: give at least one subtask",
        ));
    }
    let waits = a.bool("wait", false)?;
    let mut tasks = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |e: ToolError| ToolError {
            message: format!("tasks[{i}]: {}", e.message),
            ..e
        };
        let Value::Object(map) = item else {
            return Err(ToolError::invalid(format!("tasks[{i}] must be an object")));
        };
        let t = Args::new(
            map,
            &[
                "id",
                "title",
                "prompt",
                "depends_on",
                "capabilities",
                "risk",
            ],
        )
        .map_err(at)?;
        let key = t.required_str("id", 64).map_err(at)?.to_owned();
        let title = invalid(Title::parse(t.required_str("title", 200).map_err(at)?)).map_err(at)?;
        let mut c = CreateTask::titled(title);
        c.prompt = t
            .str("prompt", 64 << 10)
            .map_err(at)?
            .unwrap_or_default()
            .to_owned();
        c.capabilities = invalid(CapabilitySet::parse(
            t.strings("capabilities", 32, 64).map_err(at)?,
        ))
        .map_err(at)?;
        if let Some(r) = t.str("risk", 16).map_err(at)? {
            c.risk = invalid(Risk::parse(r)).map_err(at)?;
        }
        let depends_on = t
            .strings("depends_on", maos_domain::MAX_SUBTASKS, 64)
            .map_err(at)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        tasks.push(PlanTask {
            key,
            task: c,
            depends_on,
        });
    }
    let keys: Vec<String> = tasks.iter().map(|t| t.key.clone()).collect();
    let made = app(api.create_subtasks(s.task, s.fencing, CreateSubtasks { tasks, waits }))?;
    Ok(json!({
        "parent": s.task.to_string(),
        "wait": waits,
        "tasks": keys.iter().zip(&made).map(|(k, c)| json!({
            "id": k,
            "task": c.task.id.to_string(),
            "state": c.task.state.as_str(),
        })).collect::<Vec<_>>(),
    }))
}

/// A task has ended for anyone waiting on it: completed, cancelled, or stopped until a person
/// acts (blocked, awaiting approval).
fn has_ended(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Completed
            | TaskState::Cancelled
            | TaskState::Blocked
            | TaskState::AwaitingApproval
    )
}

fn wait_for_tasks(api: &dyn MaosApi, caller: &Caller, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["tasks", "timeout_seconds"])?;
    let refs = a.strings("tasks", 16, 25)?;
    if refs.is_empty() {
        return Err(ToolError::invalid(
            "`tasks` is required: give at least one task id",
        ));
    }
    let timeout = Duration::from_secs(a.int("timeout_seconds", 0, MAX_WAIT_SECS, 30)?);
    let mut ids: Vec<TaskId> = Vec::with_capacity(refs.len());
    for r in refs {
        let t = app(api.get_task(&invalid(IdRef::parse(r))?))?;
        if let Some(s) = agent(who)
            && !in_scope(s, &t)
        {
            return Err(out_of_scope(&t));
        }
        ids.push(t.id);
    }
    let start = Instant::now();
    let mut checked = Instant::now();
    loop {
        let tasks = ids
            .iter()
            .map(|id| app(api.get_task(&IdRef::from(*id))))
            .collect::<Result<Vec<_>, _>>()?;
        let done = tasks.iter().all(|t| has_ended(t.state));
        if done || start.elapsed() >= timeout {
            return Ok(json!({
                "done": done,
                "tasks": tasks.iter().map(render::task_line).collect::<Vec<_>>(),
            }));
        }
        if checked.elapsed() >= RECHECK {
            self::who(api, caller)?;
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

fn request_approval(api: &dyn MaosApi, caller: &Caller, who: &Who, args: &JsonObject) -> Answer {
    let s = own(who)?;
    let a = Args::new(args, &["question", "timeout_seconds"])?;
    let question = a.required_str("question", 2000)?.trim();
    if question.is_empty() {
        return Err(ToolError::invalid(
            "`question` is blank; ask something a person can answer",
        ));
    }
    let timeout = Duration::from_secs(a.int("timeout_seconds", 0, MAX_WAIT_SECS, 30)?);
    let t = app(api.get_task(&IdRef::from(s.task)))?;
    let same = |t: &Task| {
        t.pending.as_ref().is_some_and(|p| {
            p.gate == Gate::Tool
                && p.tool.as_deref() == Some(QUESTION_TOOL)
                && p.subject.as_deref() == Some(question)
                && p.attempt == Some(s.attempt)
        })
    };
    let asked_at = if same(&t) {
        // Asked already (an earlier call timed out): keep waiting for the same decision.
        t.pending.as_ref().map(|p| p.requested_at)
    } else if t.pending.is_some() {
        return Err(ToolError {
            kind: ErrorKind::Conflict.as_str(),
            message: "a person is already asked something about this task".to_owned(),
            hint: Some("wait for that decision (get_task shows it) before asking again".to_owned()),
        });
    } else {
        let asked = app(api.request_approval(
            s.task,
            s.fencing,
            QUESTION_TOOL.to_owned(),
            Some(question.to_owned()),
        ))?;
        asked.pending.as_ref().map(|p| p.requested_at)
    };
    let Some(asked_at) = asked_at else {
        return Err(ToolError::internal(
            "the question was not recorded as waiting",
        ));
    };
    let start = Instant::now();
    let mut checked = Instant::now();
    loop {
        let t = app(api.get_task(&IdRef::from(s.task)))?;
        if t.pending.is_none()
            && let Some(d) = t
                .decision
                .as_ref()
                .filter(|d| d.gate == Gate::Tool && d.at >= asked_at)
        {
            return Ok(json!({
                "decision": if d.approved { "approved" } else { "rejected" },
                "reason": d.reason,
                "at": d.at.to_rfc3339(),
            }));
        }
        if start.elapsed() >= timeout {
            return Ok(json!({
                "decision": "pending",
                "hint": "no one has decided yet; call request_approval again with the same question to keep waiting",
            }));
        }
        if checked.elapsed() >= RECHECK {
            self::who(api, caller)?;
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

fn scope_arg(a: &Args<'_>, who: &Who) -> Result<Option<MemoryScope>, ToolError> {
    let Some(raw) = a.str("scope", 4096)? else {
        return Ok(None);
    };
    let scope = invalid(MemoryScope::parse(raw))?;
    if let Some(s) = agent(who)
        && !s.scopes.contains(&scope)
    {
        return Err(ToolError::denied(
            format!("memory scope {scope} is not this agent's"),
            format!(
                "an agent reads and writes its own scopes: {}",
                s.scopes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(Some(scope))
}

fn memory_search(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["query", "tier", "scope", "limit"])?;
    let query = invalid(MemoryQuery::parse(a.required_str("query", 1000)?))?;
    let tiers = match a.str("tier", 16)? {
        Some(t) => vec![invalid(MemoryTier::parse(t))?],
        None => Vec::new(),
    };
    let scopes = match (scope_arg(&a, who)?, agent(who)) {
        (Some(scope), _) => vec![scope],
        (None, Some(s)) => s.scopes.clone(),
        (None, None) => Vec::new(),
    };
    let limit = usize::try_from(a.int("limit", 1, 100, 10)?).unwrap_or(10);
    let search = MemorySearch {
        query,
        filter: MemoryFilter {
            scopes,
            tiers,
            tag: None,
            all: false,
        },
        limit,
    };
    let hits = app(api.search_memories(&search))?;
    Ok(json!({
        "hits": hits.hits.iter().map(render::hit).collect::<Vec<_>>(),
        "every_word": hits.every_word,
    }))
}

fn memory_add(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["text", "tier", "tags", "scope"])?;
    let text = invalid(MemoryText::parse(a.required_str("text", 8192)?))?;
    let tier = match a.str("tier", 16)? {
        Some(t) => invalid(MemoryTier::parse(t))?,
        None => MemoryTier::Routine,
    };
    let tags = invalid(Tags::parse(a.strings("tags", 16, 64)?))?;
    let (scope, provenance) = match agent(who) {
        None => (
            scope_arg(&a, who)?.unwrap_or(MemoryScope::Global),
            Provenance::Person,
        ),
        Some(s) => {
            let default = s
                .scopes
                .iter()
                .find(|c| matches!(c, MemoryScope::Repository(_)))
                .or_else(|| {
                    s.scopes
                        .iter()
                        .find(|c| matches!(c, MemoryScope::Orchestration(_)))
                })
                .cloned()
                .unwrap_or(MemoryScope::Global);
            (
                scope_arg(&a, who)?.unwrap_or(default),
                Provenance::Attempt {
                    task: s.task,
                    attempt: s.attempt,
                },
            )
        }
    };
    let m = app(api.add_memory(AddMemory {
        tier,
        scope,
        text,
        tags,
        provenance,
    }))?;
    Ok(json!({"memory": render::memory(&m)}))
}

fn memory_pin(api: &dyn MaosApi, who: &Who, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["memory"])?;
    let reference = invalid(IdRef::parse(a.required_str("memory", 25)?))?;
    if let Some(s) = agent(who) {
        let m = app(api.get_memory(&reference))?;
        if !s.scopes.contains(&m.scope) {
            return Err(ToolError::denied(
                format!(
                    "memory entry {} is in scope {}, which is not this agent's",
                    m.id, m.scope
                ),
                "an agent pins entries of its own scopes",
            ));
        }
    }
    let m = app(api.pin_memory(&reference))?;
    Ok(json!({"memory": render::memory(&m)}))
}

fn approve(api: &dyn MaosApi, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["task"])?;
    let reference = invalid(IdRef::parse(a.required_str("task", 25)?))?;
    let t = app(api.approve(&reference))?;
    Ok(json!({"task": render::task(&t)}))
}

fn reject(api: &dyn MaosApi, args: &JsonObject) -> Answer {
    let a = Args::new(args, &["task", "reason", "cancel"])?;
    let reference = invalid(IdRef::parse(a.required_str("task", 25)?))?;
    let reason = a.required_str("reason", 4096)?.trim().to_owned();
    if reason.is_empty() {
        return Err(ToolError::invalid(
            "`reason` is blank; say what should change",
        ));
    }
    let cancel = a.bool("cancel", false)?;
    let t = app(api.reject(&reference, reason, cancel))?;
    Ok(json!({"task": render::task(&t)}))
}

fn create_task(api: &dyn MaosApi, args: &JsonObject) -> Answer {
    let a = Args::new(
        args,
        &["title", "prompt", "orchestration", "capabilities", "risk"],
    )?;
    let mut c = CreateTask::titled(invalid(Title::parse(a.required_str("title", 200)?))?);
    c.prompt = a.str("prompt", 64 << 10)?.unwrap_or_default().to_owned();
    c.capabilities = invalid(CapabilitySet::parse(a.strings("capabilities", 32, 64)?))?;
    if let Some(r) = a.str("risk", 16)? {
        c.risk = invalid(Risk::parse(r))?;
    }
    if let Some(o) = a.str("orchestration", 25)? {
        c.orchestration = Some(invalid(IdRef::parse(o))?);
    }
    let made = app(api.create_task(c))?;
    Ok(json!({"task": render::task(&made.task), "created": made.created}))
}
