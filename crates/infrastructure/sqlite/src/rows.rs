//! Mapping between domain aggregates and table rows, shared by the writer's transactions and the
//! read connections. A row that does not decode is reported as corrupt data, never a panic.

use maos_application::{StoreError, StoredEvent};
use maos_domain::agent::AgentData;
use maos_domain::briefing::Briefing;
use maos_domain::orchestration::{OrchestrationData, Planning};
use maos_domain::policy::concerns::Concern;
use maos_domain::task::TaskData;
use maos_domain::{
    AdapterKind, Agent, AgentName, AgentStatus, Attempt, AttemptOutcome, CapabilitySet,
    DomainEvent, DurationMs, Exit, FailureKind, FencingToken, IdempotencyKey, MaxAttempts, Memory,
    MemoryData, MemoryId, MemoryScope, MemoryState, MemoryText, MemoryTier, Orchestration,
    OrchestrationId, OrchestrationStatus, Priority, Provenance, Risk, Slots, Tags, Task, TaskId,
    TaskSpec, TaskState, Tier, Timestamp, Title, Usage, Usd,
};
use maos_domain::{
    ApprovalDecision, BlockReason, ParentLink, PendingApproval, Subtask, TaskWorkspace,
    Verification, WorkspaceSpec,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs one statement that returns no rows (`BEGIN`, `SAVEPOINT`, `COMMIT`…) from the
/// connection's statement cache: preparing it anew each time, as `execute_batch` does, cost
/// two preparations a write job and two a read.
pub(crate) fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Reads a column, mapping a missing or mistyped column to a corrupt-data error.
fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, idx: usize) -> Result<T, StoreError> {
    row.get(idx).map_err(|e| corrupt("unreadable column", e))
}

fn parsed<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| corrupt(what, e))
}

fn u32_col(row: &Row<'_>, idx: usize) -> Result<u32, StoreError> {
    let v: i64 = col(row, idx)?;
    u32::try_from(v).map_err(|e| corrupt("count out of range", e))
}

pub(crate) fn u64_col(row: &Row<'_>, idx: usize) -> Result<u64, StoreError> {
    let v: i64 = col(row, idx)?;
    u64::try_from(v).map_err(|e| corrupt("number out of range", e))
}

/// A task id column.
pub(crate) fn task_id_col(row: &Row<'_>, idx: usize) -> Result<TaskId, StoreError> {
    parsed("task id", TaskId::parse(&col::<String>(row, idx)?))
}

/// A task state column.
pub(crate) fn task_state_col(row: &Row<'_>, idx: usize) -> Result<TaskState, StoreError> {
    parsed("task state", TaskState::parse(&col::<String>(row, idx)?))
}

pub(crate) fn ts(row: &Row<'_>, idx: usize) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(col(row, idx)?))
}

fn opt_ts(row: &Row<'_>, idx: usize) -> Result<Option<Timestamp>, StoreError> {
    Ok(col::<Option<i64>>(row, idx)?.map(Timestamp::from_millis))
}

pub(crate) fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn caps_text(c: &CapabilitySet) -> String {
    c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" ")
}

fn caps_parse(text: &str) -> Result<CapabilitySet, StoreError> {
    parsed(
        "capabilities",
        CapabilitySet::parse(text.split_whitespace()),
    )
}

// ---------------------------------------------------------------------------------------------
// agents

pub(crate) const AGENT_COLS: &str = "name, id, adapter, capabilities, tier, slots, command, status, \
     active, registered_at, updated_at, version, settings, extra";

pub(crate) fn agent_from_row(row: &Row<'_>) -> Result<Agent, StoreError> {
    let extra: AgentExtra = from_json("agent extra", &col::<String>(row, 13)?)?;
    Ok(Agent::restore(AgentData {
        failures_in_row: extra.failures_in_row,
        drained_because: extra.drained_because,
        name: parsed("agent name", AgentName::parse(&col::<String>(row, 0)?))?,
        id: parsed(
            "agent id",
            maos_domain::AgentId::parse(&col::<String>(row, 1)?),
        )?,
        adapter: parsed("adapter", AdapterKind::parse(&col::<String>(row, 2)?))?,
        capabilities: caps_parse(&col::<String>(row, 3)?)?,
        tier: parsed("tier", Tier::parse(&col::<String>(row, 4)?))?,
        slots: parsed("slots", Slots::new(u32_col(row, 5)?))?,
        command: col(row, 6)?,
        status: parsed("agent status", AgentStatus::parse(&col::<String>(row, 7)?))?,
        active: u32_col(row, 8)?,
        registered_at: ts(row, 9)?,
        updated_at: ts(row, 10)?,
        version: u64_col(row, 11)?,
        settings: serde_json::from_str(&col::<String>(row, 12)?)
            .map_err(|e| corrupt("agent settings", e))?,
    }))
}

pub(crate) fn load_agent(conn: &Connection, name: &AgentName) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE name = ?1"))
        .map_err(backend)?;
    let mut rows = stmt.query(params![name.as_str()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => agent_from_row(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn save_agent(conn: &Connection, a: &Agent) -> Result<(), StoreError> {
    let settings =
        serde_json::to_string(&a.settings).map_err(|e| StoreError::Backend(e.to_string()))?;
    let extra = json(&AgentExtra {
        failures_in_row: a.failures_in_row,
        drained_because: a.drained_because.clone(),
    })?;
    // After its registration, an agent changes only its status, its load and its bookkeeping
    // (slots claimed and released, drained, resumed, removed). Those columns alone are written,
    // so that the row's other indexes (its unique id) are not rewritten on every assignment.
    // A row of another registration (another id) falls through to the full save below.
    if a.version > 1 {
        let changed = conn
            .prepare_cached(
                "UPDATE agents SET status = ?3, active = ?4, updated_at = ?5, version = ?6,
                   extra = ?7
                 WHERE name = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.name.as_str(),
                    a.id.to_string(),
                    a.status.as_str(),
                    a.active,
                    a.updated_at.as_millis(),
                    i64_of(a.version),
                    extra,
                ])
            })
            .map_err(backend)?;
        if changed == 1 {
            return Ok(());
        }
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO agents (name, id, adapter, capabilities, tier, slots, command, status, active, \
               registered_at, updated_at, version, settings, extra)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (name) DO UPDATE SET id = excluded.id, adapter = excluded.adapter,
               capabilities = excluded.capabilities, tier = excluded.tier, slots = excluded.slots,
               command = excluded.command, status = excluded.status, active = excluded.active,
               registered_at = excluded.registered_at, updated_at = excluded.updated_at,
               version = excluded.version, settings = excluded.settings,
               extra = excluded.extra",
        )
        .map_err(backend)?;
    stmt.execute(params![
        a.name.as_str(),
        a.id.to_string(),
        a.adapter.as_str(),
        caps_text(&a.capabilities),
        a.tier.as_str(),
        a.slots.get(),
        a.command,
        a.status.as_str(),
        a.active,
        a.registered_at.as_millis(),
        a.updated_at.as_millis(),
        i64_of(a.version),
        settings,
        extra,
    ])
    .map_err(backend)?;
    // Capabilities are fixed for the lifetime of a registration: only a new registration
    // (version 1: the row was just inserted or replaced) rewrites them.
    if a.version == 1 {
        conn.prepare_cached("DELETE FROM agent_capabilities WHERE agent = ?1")
            .and_then(|mut s| s.execute(params![a.name.as_str()]))
            .map_err(backend)?;
        let mut ins = conn
            .prepare_cached("INSERT INTO agent_capabilities (capability, agent) VALUES (?1, ?2)")
            .map_err(backend)?;
        for c in a.capabilities.iter() {
            ins.execute(params![c.as_str(), a.name.as_str()])
                .map_err(backend)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tasks

pub(crate) const TASK_COLS: &str = "id, title, prompt, capabilities, priority, risk, tier, depends_on, \
     orchestration, max_attempts, timeout_ms, idempotency_key, state, reason, fencing, created_at, \
     updated_at, version, budget_micros, extra, agent, no";
/// Where `no` (the task's number, V12) stands in [`TASK_COLS`].
const TASK_NO_COL: usize = 21;

/// The fields of a task kept as JSON in `tasks.extra`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct TaskExtra {
    workspace_spec: Option<WorkspaceSpec>,
    verify: Option<String>,
    wants_port: bool,
    concerns: Vec<Concern>,
    /// Its attempts are asked for lessons (absent when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lessons: bool,
    /// The orchestration a planning task plans (absent for other tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    plans: Option<OrchestrationId>,
    workspace: Option<TaskWorkspace>,
    pending: Option<PendingApproval>,
    run_approved: bool,
    decision: Option<ApprovalDecision>,
    retry_at: Option<Timestamp>,
    extra_attempts: u32,
    /// Why it is blocked, as data (absent in rows written before reasons were data).
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<BlockReason>,
    /// The task whose agent made it (absent for other tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<ParentLink>,
    /// The subtasks its agents made (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subtasks: Vec<Subtask>,
}

/// The fields of an attempt kept as JSON in `attempts.extra`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct AttemptExtra {
    checkpoint_before: Option<String>,
    checkpoint_after: Option<String>,
    port: Option<u16>,
    verification: Option<Verification>,
    briefing: Option<Briefing>,
    diff_stat: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    permission_denials: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    refunded: bool,
}

/// The fields of an agent kept as JSON in `agents.extra`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct AgentExtra {
    failures_in_row: u32,
    drained_because: Option<String>,
}

/// The fields of an orchestration kept as JSON in `orchestrations.extra`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct OrchestrationExtra {
    workspace: Option<WorkspaceSpec>,
    verify: Option<String>,
    notes: Vec<String>,
    planned: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    plan_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    planning: Option<Planning>,
    #[serde(default, skip_serializing_if = "is_zero")]
    approved_version: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    decided_version: u32,
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    superseded: std::collections::BTreeSet<TaskId>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn task_from_row(row: &Row<'_>) -> Result<TaskData, StoreError> {
    let extra: TaskExtra = from_json("task extra", &col::<String>(row, 19)?)?;
    let deps: String = col(row, 7)?;
    let depends_on = deps
        .split_whitespace()
        .map(|d| parsed("dependency id", TaskId::parse(d)))
        .collect::<Result<_, _>>()?;
    let priority = u8::try_from(col::<i64>(row, 4)?)
        .ok()
        .and_then(Priority::from_rank);
    Ok(TaskData {
        id: task_id_col(row, 0)?,
        spec: TaskSpec {
            title: parsed("title", Title::parse(&col::<String>(row, 1)?))?,
            prompt: col(row, 2)?,
            capabilities: caps_parse(&col::<String>(row, 3)?)?,
            priority: priority.ok_or_else(|| corrupt("priority", "out of range"))?,
            risk: parsed("risk", Risk::parse(&col::<String>(row, 5)?))?,
            tier: col::<Option<String>>(row, 6)?
                .map(|t| parsed("tier", Tier::parse(&t)))
                .transpose()?,
            depends_on,
            orchestration: col::<Option<String>>(row, 8)?
                .map(|o| parsed("orchestration id", OrchestrationId::parse(&o)))
                .transpose()?,
            max_attempts: parsed("max attempts", MaxAttempts::new(u32_col(row, 9)?))?,
            timeout: col::<Option<i64>>(row, 10)?
                .map(|ms| {
                    parsed(
                        "timeout",
                        DurationMs::from_millis(u64::try_from(ms).unwrap_or(0)),
                    )
                })
                .transpose()?,
            idempotency_key: col::<Option<String>>(row, 11)?
                .map(|k| parsed("idempotency key", IdempotencyKey::parse(&k)))
                .transpose()?,
            budget: col::<Option<i64>>(row, 18)?
                .map(|m| {
                    u64::try_from(m)
                        .map(Usd::from_micros)
                        .map_err(|e| corrupt("budget", e))
                })
                .transpose()?,
            workspace: extra.workspace_spec,
            verify: extra.verify,
            wants_port: extra.wants_port,
            concerns: extra.concerns,
            plans: extra.plans,
            parent: extra.parent,
            agent: col::<Option<String>>(row, 20)?
                .map(|a| parsed("pinned agent", AgentName::parse(&a)))
                .transpose()?,
            lessons: extra.lessons,
        },
        state: task_state_col(row, 12)?,
        reason: col(row, 13)?,
        blocked: extra.blocked,
        attempts: Vec::new(),
        fencing: FencingToken::new(u64_col(row, 14)?),
        created_at: ts(row, 15)?,
        updated_at: ts(row, 16)?,
        version: u64_col(row, 17)?,
        workspace: extra.workspace,
        pending: extra.pending,
        run_approved: extra.run_approved,
        decision: extra.decision,
        retry_at: extra.retry_at,
        extra_attempts: extra.extra_attempts,
        subtasks: extra.subtasks,
    })
}

fn attempt_from_row(row: &Row<'_>) -> Result<Attempt, StoreError> {
    let extra: AttemptExtra = from_json("attempt extra", &col::<String>(row, 19)?)?;
    Ok(Attempt {
        checkpoint_before: extra.checkpoint_before,
        checkpoint_after: extra.checkpoint_after,
        port: extra.port,
        verification: extra.verification,
        briefing: extra.briefing,
        diff_stat: extra.diff_stat,
        permission_denials: extra.permission_denials,
        refunded: extra.refunded,
        number: u32_col(row, 0)?,
        agent: parsed("agent name", AgentName::parse(&col::<String>(row, 1)?))?,
        fencing: FencingToken::new(u64_col(row, 2)?),
        status: parsed(
            "attempt status",
            AttemptOutcome::parse(&col::<String>(row, 3)?),
        )?,
        assigned_at: ts(row, 4)?,
        lease_expires_at: ts(row, 5)?,
        started_at: opt_ts(row, 6)?,
        ended_at: opt_ts(row, 7)?,
        summary: col(row, 8)?,
        error: col(row, 9)?,
        pid: col::<Option<i64>>(row, 10)?.and_then(|p| u32::try_from(p).ok()),
        session: col(row, 11)?,
        exit: match (col::<Option<i32>>(row, 12)?, col::<Option<i32>>(row, 13)?) {
            (Some(code), _) => Some(Exit::Code(code)),
            (None, Some(signal)) => Some(Exit::Signal(signal)),
            (None, None) => None,
        },
        usage: Usage {
            input_tokens: u64_col(row, 14)?,
            cached_input_tokens: u64_col(row, 15)?,
            output_tokens: u64_col(row, 16)?,
            cost: Usd::from_micros(u64_col(row, 17)?),
        },
        failure: col::<Option<String>>(row, 18)?
            .map(|f| parsed("failure kind", FailureKind::parse(&f)))
            .transpose()?,
    })
}

/// Loads the attempts of the task numbered `no` (V12: attempts are keyed by their task's number;
/// the task's id is checked too, so that a repeated number could never show another task's).
fn with_attempts(conn: &Connection, mut data: TaskData, no: i64) -> Result<Task, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT number, agent, fencing, status, assigned_at, lease_expires_at, started_at, \
             ended_at, summary, error, pid, session, exit_code, exit_signal, input_tokens, \
             cached_input_tokens, output_tokens, cost_micros, failure, extra \
             FROM attempts WHERE task_no = ?1 AND task = ?2 ORDER BY number",
        )
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![no, data.id.to_string()])
        .map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        data.attempts.push(attempt_from_row(row)?);
    }
    Ok(Task::restore(data))
}

/// Runs a query whose columns are [`TASK_COLS`] and loads each task with its attempts.
pub(crate) fn query_tasks(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Task>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut datas = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        datas.push((task_from_row(row)?, col::<i64>(row, TASK_NO_COL)?));
    }
    drop(rows);
    datas
        .into_iter()
        .map(|(d, no)| with_attempts(conn, d, no))
        .collect()
}

pub(crate) fn load_task(conn: &Connection, id: TaskId) -> Result<Option<Task>, StoreError> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1");
    Ok(query_tasks(conn, &sql, params![id.to_string()])?.pop())
}

pub(crate) fn load_task_by_key(conn: &Connection, key: &str) -> Result<Option<Task>, StoreError> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE idempotency_key = ?1");
    Ok(query_tasks(conn, &sql, params![key])?.pop())
}

/// The states that set `tasks.in_flight` (version 5's index of the scheduler's and the
/// reaper's lookups).
pub(crate) const IN_FLIGHT: [TaskState; 5] = [
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Verifying,
    TaskState::AwaitingApproval,
    TaskState::Retrying,
];

pub(crate) fn save_task(conn: &Connection, t: &Task) -> Result<(), StoreError> {
    let extra = json(&TaskExtra {
        workspace_spec: t.spec.workspace.clone(),
        verify: t.spec.verify.clone(),
        wants_port: t.spec.wants_port,
        concerns: t.spec.concerns.clone(),
        lessons: t.spec.lessons,
        plans: t.spec.plans,
        workspace: t.workspace.clone(),
        pending: t.pending.clone(),
        run_approved: t.run_approved,
        decision: t.decision.clone(),
        retry_at: t.retry_at,
        extra_attempts: t.extra_attempts,
        blocked: t.blocked.clone(),
        parent: t.spec.parent,
        subtasks: t.subtasks.clone(),
    })?;
    let id = t.id.to_string();
    let deps: Vec<String> = t.spec.depends_on.iter().map(ToString::to_string).collect();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO tasks (id, title, prompt, capabilities, priority, risk, tier, depends_on,
               orchestration, max_attempts, timeout_ms, idempotency_key, state, reason, fencing,
               created_at, updated_at, version, budget_micros, extra, pending_since, worktree,
               in_flight, retry_at, agent, no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
               ?19, ?20, ?21, ?22, ?23, ?24, ?25,
               (SELECT coalesce(max(rowid), 0) + 1 FROM tasks))
             ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, depends_on = excluded.depends_on,
               state = excluded.state, reason = excluded.reason, fencing = excluded.fencing,
               updated_at = excluded.updated_at, version = excluded.version,
               extra = excluded.extra, pending_since = excluded.pending_since,
               worktree = excluded.worktree, in_flight = excluded.in_flight,
               retry_at = excluded.retry_at",
        )
        .map_err(backend)?;
    stmt.execute(params![
        id,
        t.spec.title.as_str(),
        t.spec.prompt,
        caps_text(&t.spec.capabilities),
        t.spec.priority.rank(),
        t.spec.risk.as_str(),
        t.spec.tier.map(Tier::as_str),
        deps.join(" "),
        t.spec.orchestration.map(|o| o.to_string()),
        t.spec.max_attempts.get(),
        t.spec.timeout.map(|d| i64_of(d.as_millis())),
        t.spec.idempotency_key.as_ref().map(IdempotencyKey::as_str),
        t.state.as_str(),
        t.reason,
        i64_of(t.fencing.get()),
        t.created_at.as_millis(),
        t.updated_at.as_millis(),
        i64_of(t.version),
        t.spec.budget.map(|b| i64_of(b.micros())),
        extra,
        t.pending.as_ref().map(|p| p.requested_at.as_millis()),
        i64::from(t.workspace.as_ref().is_some_and(|w| !w.removed)),
        i64::from(IN_FLIGHT.contains(&t.state)),
        (t.state == TaskState::Retrying).then(|| t.retry_at.map_or(0, Timestamp::as_millis)),
        t.spec.agent.as_ref().map(AgentName::as_str),
    ])
    .map_err(backend)?;
    if !deps.is_empty() {
        let mut ins = conn
            .prepare_cached("INSERT OR IGNORE INTO task_deps (task, depends_on) VALUES (?1, ?2)")
            .map_err(backend)?;
        for d in &deps {
            ins.execute(params![id, d]).map_err(backend)?;
        }
    }
    // Only the newest attempt ever changes: earlier ones are final once a new one exists.
    if let Some(a) = t.attempts.last() {
        let saved = conn
            .prepare_cached(
                "INSERT INTO attempts (task, number, agent, fencing, status, assigned_at,
               lease_expires_at, started_at, ended_at, summary, error, pid, session, exit_code,
               exit_signal, input_tokens, cached_input_tokens, output_tokens, cost_micros, failure,
               extra, task_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
               ?18, ?19, ?20, ?21, (SELECT no FROM tasks WHERE id = ?1))
             ON CONFLICT (task_no, number) DO UPDATE SET status = excluded.status,
               lease_expires_at = excluded.lease_expires_at, started_at = excluded.started_at,
               ended_at = excluded.ended_at, summary = excluded.summary, error = excluded.error,
               pid = excluded.pid, session = excluded.session, exit_code = excluded.exit_code,
               exit_signal = excluded.exit_signal, input_tokens = excluded.input_tokens,
               cached_input_tokens = excluded.cached_input_tokens,
               output_tokens = excluded.output_tokens, cost_micros = excluded.cost_micros,
               failure = excluded.failure, extra = excluded.extra
             WHERE attempts.task = excluded.task",
            )
            .and_then(|mut s| {
                let attempt_extra = serde_json::to_string(&AttemptExtra {
                    checkpoint_before: a.checkpoint_before.clone(),
                    checkpoint_after: a.checkpoint_after.clone(),
                    port: a.port,
                    verification: a.verification.clone(),
                    briefing: a.briefing.clone(),
                    diff_stat: a.diff_stat.clone(),
                    permission_denials: a.permission_denials.clone(),
                    refunded: a.refunded,
                })
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                let (code, signal) = match a.exit {
                    Some(Exit::Code(c)) => (Some(c), None),
                    Some(Exit::Signal(sig)) => (None, Some(sig)),
                    None => (None, None),
                };
                s.execute(params![
                    id,
                    a.number,
                    a.agent.as_str(),
                    i64_of(a.fencing.get()),
                    a.status.as_str(),
                    a.assigned_at.as_millis(),
                    a.lease_expires_at.as_millis(),
                    a.started_at.map(Timestamp::as_millis),
                    a.ended_at.map(Timestamp::as_millis),
                    a.summary,
                    a.error,
                    a.pid,
                    a.session,
                    code,
                    signal,
                    i64_of(a.usage.input_tokens),
                    i64_of(a.usage.cached_input_tokens),
                    i64_of(a.usage.output_tokens),
                    i64_of(a.usage.cost.micros()),
                    a.failure.map(FailureKind::as_str),
                    attempt_extra,
                ])
            })
            .map_err(backend)?;
        // Keyed by the task's number (V12): an attempt row of another task under the same key
        // would be a repeated number, which must never mix two tasks' attempts.
        if saved != 1 {
            return Err(StoreError::Corrupt(format!(
                "task {id}'s number is also another task's: its attempt {} was not saved",
                a.number
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// orchestrations

pub(crate) const ORCH_COLS: &str = "id, name, goal, status, created_at, updated_at, version, extra";

pub(crate) fn orchestration_from_row(row: &Row<'_>) -> Result<Orchestration, StoreError> {
    let extra: OrchestrationExtra = from_json("orchestration extra", &col::<String>(row, 7)?)?;
    Ok(Orchestration::restore(OrchestrationData {
        workspace: extra.workspace,
        verify: extra.verify,
        notes: extra.notes,
        planned: extra.planned,
        plan_version: extra.plan_version,
        planning: extra.planning,
        approved_version: extra.approved_version,
        decided_version: extra.decided_version,
        superseded: extra.superseded,
        id: parsed(
            "orchestration id",
            OrchestrationId::parse(&col::<String>(row, 0)?),
        )?,
        name: parsed("orchestration name", Title::parse(&col::<String>(row, 1)?))?,
        goal: col(row, 2)?,
        status: parsed(
            "orchestration status",
            OrchestrationStatus::parse(&col::<String>(row, 3)?),
        )?,
        created_at: ts(row, 4)?,
        updated_at: ts(row, 5)?,
        version: u64_col(row, 6)?,
    }))
}

pub(crate) fn load_orchestration(
    conn: &Connection,
    id: OrchestrationId,
) -> Result<Option<Orchestration>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ORCH_COLS} FROM orchestrations WHERE id = ?1"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => orchestration_from_row(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn save_orchestration(conn: &Connection, o: &Orchestration) -> Result<(), StoreError> {
    let extra = json(&OrchestrationExtra {
        workspace: o.workspace.clone(),
        verify: o.verify.clone(),
        notes: o.notes.clone(),
        planned: o.planned,
        plan_version: o.plan_version,
        planning: o.planning,
        approved_version: o.approved_version,
        decided_version: o.decided_version,
        superseded: o.superseded.clone(),
    })?;
    conn.prepare_cached(
        "INSERT INTO orchestrations (id, name, goal, status, created_at, updated_at, version, extra)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
           version = excluded.version, extra = excluded.extra",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.id.to_string(),
            o.name.as_str(),
            o.goal,
            o.status.as_str(),
            o.created_at.as_millis(),
            o.updated_at.as_millis(),
            i64_of(o.version),
            extra,
        ])
    })
    .map_err(backend)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// memory

pub(crate) const MEMORY_COLS: &str = "m.id, m.tier, m.scope, m.state, m.pinned, m.expires_at, \
     m.created_at, m.updated_at, m.version, m.text, m.tags, m.extra";

/// The fields of a memory entry kept as JSON in `memories.extra`.
#[derive(Debug, Serialize, Deserialize)]
struct MemoryExtra {
    provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forgotten_because: Option<String>,
}

/// A memory entry from the first columns of `row` ([`MEMORY_COLS`]).
pub(crate) fn memory_from_row(row: &Row<'_>) -> Result<Memory, StoreError> {
    let extra: MemoryExtra = from_json("memory extra", &col::<String>(row, 11)?)?;
    let tags: String = col(row, 10)?;
    Ok(Memory::restore(MemoryData {
        id: parsed("memory id", MemoryId::parse(&col::<String>(row, 0)?))?,
        tier: parsed("memory tier", MemoryTier::parse(&col::<String>(row, 1)?))?,
        scope: parsed("memory scope", MemoryScope::parse(&col::<String>(row, 2)?))?,
        state: parsed("memory state", MemoryState::parse(&col::<String>(row, 3)?))?,
        pinned: col::<i64>(row, 4)? != 0,
        expires_at: opt_ts(row, 5)?,
        created_at: ts(row, 6)?,
        updated_at: ts(row, 7)?,
        version: u64_col(row, 8)?,
        text: parsed("memory text", MemoryText::parse(&col::<String>(row, 9)?))?,
        tags: parsed("memory tags", Tags::parse(tags.split_whitespace()))?,
        provenance: extra.provenance,
        forgotten_because: extra.forgotten_because,
    }))
}

pub(crate) fn load_memory(conn: &Connection, id: MemoryId) -> Result<Option<Memory>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MEMORY_COLS} FROM memories m WHERE m.id = ?1"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => memory_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a query whose first columns are [`MEMORY_COLS`].
pub(crate) fn query_memories<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<Memory>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(memory_from_row(row)?);
    }
    Ok(out)
}

/// Inserts an entry (its tags into `memory_tags`; the triggers index its words) or updates
/// what can change of it: state, pin, times, version, and the JSON fields. Text, tags, tier
/// and scope never change once added.
pub(crate) fn save_memory(conn: &Connection, m: &Memory) -> Result<(), StoreError> {
    let extra = json(&MemoryExtra {
        provenance: m.provenance,
        forgotten_because: m.forgotten_because.clone(),
    })?;
    let tags: Vec<&str> = m.tags.iter().map(|t| t.as_str()).collect();
    let id = m.id.to_string();
    let changed = conn
        .prepare_cached(
            "UPDATE memories SET state = ?2, pinned = ?3, expires_at = ?4, updated_at = ?5, \
             version = ?6, extra = ?7 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                m.state.as_str(),
                i64::from(m.pinned),
                m.expires_at.map(Timestamp::as_millis),
                m.updated_at.as_millis(),
                i64_of(m.version),
                extra,
            ])
        })
        .map_err(backend)?;
    if changed > 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO memories (id, tier, scope, state, pinned, expires_at, created_at, \
         updated_at, version, text, tags, extra) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            m.tier.as_str(),
            m.scope.to_string(),
            m.state.as_str(),
            i64::from(m.pinned),
            m.expires_at.map(Timestamp::as_millis),
            m.created_at.as_millis(),
            m.updated_at.as_millis(),
            i64_of(m.version),
            m.text.as_str(),
            tags.join(" "),
            extra,
        ])
    })
    .map_err(backend)?;
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO memory_tags (tag, memory) VALUES (?1, ?2)")
        .map_err(backend)?;
    for tag in tags {
        stmt.execute(params![tag, id]).map_err(backend)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// events

pub(crate) fn append_events(
    conn: &Connection,
    at: Timestamp,
    events: &[DomainEvent],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (at, kind, aggregate, aggregate_id, payload, task_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(backend)?;
    // The events of one call mostly belong to one task: its number is read once.
    let mut numbered: Option<(TaskId, i64)> = None;
    for e in events {
        let task_no = match e {
            DomainEvent::Task { id, .. } => match numbered {
                Some((of, no)) if of == *id => no,
                _ => {
                    let no = task_no(conn, *id)?;
                    numbered = Some((*id, no));
                    no
                }
            },
            _ => 0,
        };
        let payload = serde_json::to_string(e).map_err(|e| StoreError::Backend(e.to_string()))?;
        stmt.execute(params![
            at.as_millis(),
            e.kind(),
            e.aggregate_kind().as_str(),
            e.aggregate_id(),
            payload,
            task_no
        ])
        .map_err(backend)?;
    }
    Ok(())
}

/// The number of task `id` (its place in creation order), the first key of its events in
/// `events_by_aggregate` (V12). A task's row is saved before its events are appended; an event
/// of a task that has no row would be out of that index's reach, so it is refused.
fn task_no(conn: &Connection, id: TaskId) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT no FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], |r| r.get(0)).optional())
        .map_err(backend)?
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "events of task {id} were appended before the task was saved"
            ))
        })
}

pub(crate) fn event_from_row(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let payload: String = col(row, 2)?;
    Ok(StoredEvent {
        seq: u64_col(row, 0)?,
        at: ts(row, 1)?,
        event: serde_json::from_str(&payload).map_err(|e| corrupt("event payload", e))?,
    })
}

pub(crate) fn scalar_i64(conn: &Connection, sql: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
        .optional()
        .map(|v| v.flatten().unwrap_or(0))
        .map_err(backend)
}
