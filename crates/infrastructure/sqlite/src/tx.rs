//! [`SqliteTx`]: the application's `Transaction` port over the writer's open transaction.

use maos_application::{MemoryFilter, MemoryHits, StoreError, Transaction};
use maos_domain::policy::matcher::{self, Needs};
use maos_domain::{
    Agent, AgentName, CapabilitySet, DomainEvent, Memory, MemoryId, MemoryQuery, MemoryScope,
    Orchestration, OrchestrationId, Task, TaskId, TaskState, Tier, Timestamp,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::rows::{self, AGENT_COLS, MEMORY_COLS, backend, i64_of};

/// One job's view of the write transaction.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        SqliteTx { conn }
    }

    /// The connection, for the writer's own tests.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    /// The virtual-machine steps SQLite has run so far for the scheduler's ready-queue
    /// statements on this connection: a count of the work they did (rows examined), not a time.
    pub(crate) fn ready_queue_steps(&self) -> Result<u64, StoreError> {
        let mut steps = 0;
        for sql in [READY_NEEDS, READY_OF_NEED] {
            let stmt = self.conn.prepare_cached(sql).map_err(backend)?;
            steps += u64::try_from(stmt.get_status(rusqlite::StatementStatus::VmStep))
                .unwrap_or_default();
        }
        Ok(steps)
    }

    /// The connection's durability settings.
    pub(crate) fn settings(&self) -> Result<crate::WriterSettings, StoreError> {
        let int = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(backend)
        };
        Ok(crate::WriterSettings {
            journal_mode: self
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(backend)?,
            synchronous: int("synchronous")?,
            foreign_keys: int("foreign_keys")? == 1,
        })
    }
}

/// Agents that can take a task with `needs` now, least loaded first. The order is the load
/// balancer's (`active/slots`, then `active`, then name), so the first `limit` rows are the
/// balancer's best candidates.
pub(crate) fn candidate_agents(
    conn: &Connection,
    needs: Needs<'_>,
    limit: usize,
    daemon_run_only: bool,
) -> Result<Vec<Agent>, StoreError> {
    // Walks the `agents_by_load` index in the balancer's order and stops after `limit` fits;
    // for the scheduler, `agents_run_by_load` (V11), which holds no external agent.
    let index = if daemon_run_only {
        "agents_run_by_load"
    } else {
        "agents_by_load"
    };
    let mut sql = format!(
        "SELECT {AGENT_COLS} FROM agents INDEXED BY {index} \
         WHERE status IN ('available', 'busy') AND active < slots"
    );
    if daemon_run_only {
        sql.push_str(" AND adapter <> 'external'");
    }
    let mut args = capable_of(&mut sql, needs);
    sql.push_str(" ORDER BY CAST(active AS REAL) / slots, active, name LIMIT ?");
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(rows::agent_from_row(row)?);
    }
    Ok(out)
}

/// Narrows an agents query to the agents `matcher::is_capable` accepts for `needs`: the one the
/// task is pinned to (if any), of its tier (if any), offering every capability it needs; answers
/// the arguments of the placeholders it added.
fn capable_of(sql: &mut String, needs: Needs<'_>) -> Vec<Value> {
    let mut args = Vec::new();
    if let Some(name) = needs.agent {
        sql.push_str(" AND name = ?");
        args.push(Value::Text(name.as_str().into()));
    }
    if let Some(t) = needs.tier {
        sql.push_str(" AND tier = ?");
        args.push(Value::Text(t.as_str().into()));
    }
    for c in needs.capabilities.iter() {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM agent_capabilities WHERE capability = ? AND agent = agents.name)",
        );
        args.push(Value::Text(c.as_str().into()));
    }
    args
}

/// Tasks with a live (assigned or running) current attempt, by the lease they were assigned.
fn live_attempt_tasks(conn: &Connection) -> Result<Vec<Task>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT task FROM attempts WHERE status IN ('assigned', 'running') \
             ORDER BY lease_expires_at",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        ids.push(rows::task_id_col(row, 0)?);
    }
    drop(rows);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(t) = rows::load_task(conn, id)? {
            out.push(t);
        }
    }
    Ok(out)
}

/// The distinct needs (capabilities, tier, orchestration, pinned agent, separated by U+001F)
/// among ready tasks, one index seek each (V6, V8).
pub(crate) const READY_NEEDS: &str = "WITH RECURSIVE n(need) AS ( \
     SELECT (SELECT min(need) FROM tasks WHERE state = 'ready') \
     UNION ALL \
     SELECT (SELECT min(need) FROM tasks WHERE state = 'ready' AND need > n.need) \
     FROM n WHERE n.need IS NOT NULL) \
     SELECT need FROM n WHERE need IS NOT NULL";

/// The most urgent ready tasks of one need, in the scheduler's order: most urgent first, then
/// oldest, then in the order they were created (`no`, V12: tasks created together run in the
/// order they were given, and the rows and index entries they change lie next to each other).
pub(crate) const READY_OF_NEED: &str = "SELECT priority, created_at, no, id FROM tasks \
     WHERE state = 'ready' AND need = ?1 ORDER BY priority DESC, created_at, no LIMIT ?2";

/// Whether an orchestration runs.
const RUNNING: &str = "SELECT status = 'running' FROM orchestrations WHERE id = ?1";

impl Transaction for SqliteTx<'_> {
    fn agent(&mut self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        rows::load_agent(self.conn, name)
    }

    fn save_agent(&mut self, agent: &Agent) -> Result<(), StoreError> {
        rows::save_agent(self.conn, agent)
    }

    fn candidate_agents(
        &mut self,
        needs: Needs<'_>,
        limit: usize,
        daemon_run_only: bool,
    ) -> Result<Vec<Agent>, StoreError> {
        candidate_agents(self.conn, needs, limit, daemon_run_only)
    }

    fn agents_with_free_slots(&mut self) -> Result<Vec<Agent>, StoreError> {
        // Through `agents_run_by_load` (V11): the external agents are never visited.
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {AGENT_COLS} FROM agents INDEXED BY agents_run_by_load \
                 WHERE status IN ('available', 'busy') \
                 AND active < slots AND adapter <> 'external' ORDER BY name"
            ))
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            out.push(rows::agent_from_row(row)?);
        }
        Ok(out)
    }

    fn ready_tasks_for(&mut self, agent: &Agent, limit: usize) -> Result<Vec<TaskId>, StoreError> {
        // The distinct needs of the ready queue (few), those this agent can take whose
        // orchestration (if any) runs, and the most urgent tasks of each through
        // `tasks_ready_by_need`: what this costs grows with the needs and `limit`, never with
        // ready tasks the agent cannot take, pinned to another agent included (V6, V8,
        // ADR 0014).
        let mut needs = self.conn.prepare_cached(READY_NEEDS).map_err(backend)?;
        let mut rows = needs.query([]).map_err(backend)?;
        let mut takeable = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let need: String = row.get(0).map_err(backend)?;
            let mut parts = need.split('\u{1f}');
            let (Some(caps), Some(tier), Some(orchestration), Some(pinned), None) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Err(StoreError::Corrupt(format!("a task's need: {need:?}")));
            };
            let needed = CapabilitySet::parse(caps.split_whitespace())
                .map_err(|e| StoreError::Corrupt(format!("capabilities: {e}")))?;
            let tier = if tier.is_empty() {
                None
            } else {
                Some(Tier::parse(tier).map_err(|e| StoreError::Corrupt(format!("tier: {e}")))?)
            };
            let pinned = if pinned.is_empty() {
                None
            } else {
                Some(
                    AgentName::parse(pinned)
                        .map_err(|e| StoreError::Corrupt(format!("pinned agent: {e}")))?,
                )
            };
            let needs = Needs {
                capabilities: &needed,
                tier,
                agent: pinned.as_ref(),
            };
            if matcher::is_capable(agent, needs) {
                takeable.push((need.clone(), orchestration.to_owned()));
            }
        }
        drop(rows);
        drop(needs);
        let limit_arg = i64::try_from(limit).unwrap_or(i64::MAX);
        // (priority, created_at, no, id) of each need's first `limit`, merged in the
        // scheduler's order.
        let mut chosen: Vec<(i64, i64, i64, String)> = Vec::new();
        for (need, orchestration) in &takeable {
            // Tasks of an orchestration that is not running (a draft, paused) wait.
            if !orchestration.is_empty() {
                let runs: Option<bool> = self
                    .conn
                    .prepare_cached(RUNNING)
                    .map_err(backend)?
                    .query_row(params![orchestration], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                if runs != Some(true) {
                    continue;
                }
            }
            let mut stmt = self.conn.prepare_cached(READY_OF_NEED).map_err(backend)?;
            let mut rows = stmt.query(params![need, limit_arg]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                chosen.push((
                    row.get(0).map_err(backend)?,
                    row.get(1).map_err(backend)?,
                    row.get(2).map_err(backend)?,
                    row.get(3).map_err(backend)?,
                ));
            }
        }
        chosen.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        chosen.truncate(limit);
        chosen
            .into_iter()
            .map(|(_, _, _, id)| {
                TaskId::parse(&id).map_err(|e| StoreError::Corrupt(format!("task id: {e}")))
            })
            .collect()
    }

    fn tasks_of(&mut self, orchestration: OrchestrationId) -> Result<Vec<Task>, StoreError> {
        rows::query_tasks(
            self.conn,
            &format!(
                "SELECT {} FROM tasks WHERE orchestration = ?1 ORDER BY created_at, id",
                rows::TASK_COLS
            ),
            params![orchestration.to_string()],
        )
    }

    fn has_unfinished_tasks(&mut self, orchestration: OrchestrationId) -> Result<bool, StoreError> {
        // One index seek per unfinished state (tasks_by_orchestration_state), however many
        // tasks have ended.
        let unfinished: Vec<&str> = TaskState::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        let marks = (2..unfinished.len() + 2)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM tasks INDEXED BY tasks_by_orchestration_state \
             WHERE orchestration = ?1 AND state IN ({marks}))"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(rows::backend)?;
        let id = orchestration.to_string();
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id];
        values.extend(unfinished.iter().map(|s| s as &dyn rusqlite::ToSql));
        stmt.query_row(values.as_slice(), |r| r.get::<_, bool>(0))
            .map_err(rows::backend)
    }

    fn tasks_in_states(&mut self, states: &[TaskState]) -> Result<Vec<Task>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; states.len()].join(", ");
        // The states in flight have an index of their own; others are rare here, and scanned.
        let in_flight = if states.iter().all(|s| rows::IN_FLIGHT.contains(s)) {
            "in_flight = 1 AND "
        } else {
            ""
        };
        rows::query_tasks(
            self.conn,
            &format!(
                "SELECT {} FROM tasks WHERE {in_flight}state IN ({marks}) ORDER BY created_at, id",
                rows::TASK_COLS
            ),
            params_from_iter(states.iter().map(|s| s.as_str())),
        )
    }

    fn due_retries(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError> {
        rows::query_tasks(
            self.conn,
            &format!(
                "SELECT {} FROM tasks WHERE retry_at <= ?1 AND state = 'retrying' \
                 ORDER BY retry_at, id LIMIT ?2",
                rows::TASK_COLS
            ),
            params![now.as_millis(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    fn has_capable_agent(&mut self, needs: Needs<'_>) -> Result<bool, StoreError> {
        let mut sql = "SELECT 1 FROM agents WHERE status IN ('available', 'busy')".to_owned();
        let args = capable_of(&mut sql, needs);
        sql.push_str(" LIMIT 1");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(backend)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
        Ok(rows.next().map_err(backend)?.is_some())
    }

    fn live_tasks(&mut self) -> Result<Vec<Task>, StoreError> {
        live_attempt_tasks(self.conn)
    }

    fn task(&mut self, id: TaskId) -> Result<Option<Task>, StoreError> {
        rows::load_task(self.conn, id)
    }

    fn task_by_idempotency_key(&mut self, key: &str) -> Result<Option<Task>, StoreError> {
        rows::load_task_by_key(self.conn, key)
    }

    fn save_task(&mut self, task: &Task) -> Result<(), StoreError> {
        rows::save_task(self.conn, task)
    }

    fn dependents(&mut self, id: TaskId) -> Result<Vec<TaskId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT task FROM task_deps WHERE depends_on = ?1 ORDER BY task")
            .map_err(backend)?;
        let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let text: String = row.get(0).map_err(backend)?;
            out.push(TaskId::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    fn task_states(&mut self, ids: &[TaskId]) -> Result<Vec<(TaskId, TaskState)>, StoreError> {
        Ok(crate::read::task_fencing(self.conn, ids)?
            .into_iter()
            .map(|(id, state, _)| (id, state))
            .collect())
    }

    fn orchestration(&mut self, id: OrchestrationId) -> Result<Option<Orchestration>, StoreError> {
        rows::load_orchestration(self.conn, id)
    }

    fn save_orchestration(&mut self, o: &Orchestration) -> Result<(), StoreError> {
        rows::save_orchestration(self.conn, o)
    }

    fn memory(&mut self, id: MemoryId) -> Result<Option<Memory>, StoreError> {
        rows::load_memory(self.conn, id)
    }

    fn save_memory(&mut self, memory: &Memory) -> Result<(), StoreError> {
        rows::save_memory(self.conn, memory)
    }

    fn holds_memories(&mut self, scopes: &[MemoryScope]) -> Result<bool, StoreError> {
        crate::read::holds_memories(self.conn, scopes)
    }

    fn essential_memories(
        &mut self,
        scopes: &[MemoryScope],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Memory>, StoreError> {
        crate::read::essential_memories(self.conn, scopes, now, limit)
    }

    fn search_memories(
        &mut self,
        query: &MemoryQuery,
        filter: &MemoryFilter,
        limit: usize,
        now: Timestamp,
    ) -> Result<MemoryHits, StoreError> {
        crate::read::search_memories(self.conn, query, filter, limit, now)
    }

    fn expired_memories(
        &mut self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Memory>, StoreError> {
        rows::query_memories(
            self.conn,
            &format!(
                "SELECT {MEMORY_COLS} FROM memories m WHERE m.state = 'live' AND m.pinned = 0 \
                 AND m.expires_at IS NOT NULL AND m.expires_at <= ?1 \
                 ORDER BY m.expires_at, m.id LIMIT ?2"
            ),
            params![now.as_millis(), i64_of(limit as u64)],
        )
    }

    fn append(&mut self, at: Timestamp, events: &[DomainEvent]) -> Result<(), StoreError> {
        rows::append_events(self.conn, at, events)
    }
}
