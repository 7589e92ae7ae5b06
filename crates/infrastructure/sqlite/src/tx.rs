//! [`SqliteTx`]: the application's `Transaction` port over the writer's open transaction.

use maos_application::{StoreError, Transaction};
use maos_domain::{
    Agent, AgentName, CapabilitySet, DomainEvent, Orchestration, OrchestrationId, Task, TaskId,
    TaskState, Tier, Timestamp,
};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::rows::{self, AGENT_COLS, backend};

/// One job's view of the write transaction.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        SqliteTx { conn }
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

/// Agents that can take a task needing `needs` and `tier` now, least loaded first. The order is
/// the load balancer's (`active/slots`, then `active`, then name), so the first `limit` rows are
/// the balancer's best candidates.
pub(crate) fn candidate_agents(
    conn: &Connection,
    needs: &CapabilitySet,
    tier: Option<Tier>,
    limit: usize,
) -> Result<Vec<Agent>, StoreError> {
    // Walks the `agents_by_load` index in the balancer's order and stops after `limit` fits.
    // Walks the `agents_by_load` index in the balancer's order and stops after `limit` fits.
    let mut sql = format!(
        "SELECT {AGENT_COLS} FROM agents WHERE status IN ('available', 'busy') AND active < slots"
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(t) = tier {
        sql.push_str(" AND tier = ?");
        args.push(Value::Text(t.as_str().into()));
    }
    for c in needs.iter() {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM agent_capabilities WHERE capability = ? AND agent = agents.name)",
        );
        args.push(Value::Text(c.as_str().into()));
    }
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

impl Transaction for SqliteTx<'_> {
    fn agent(&mut self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        rows::load_agent(self.conn, name)
    }

    fn save_agent(&mut self, agent: &Agent) -> Result<(), StoreError> {
        rows::save_agent(self.conn, agent)
    }

    fn candidate_agents(
        &mut self,
        needs: &CapabilitySet,
        tier: Option<Tier>,
        limit: usize,
    ) -> Result<Vec<Agent>, StoreError> {
        candidate_agents(self.conn, needs, tier, limit)
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state FROM tasks WHERE id = ?1")
            .map_err(backend)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
            if let Some(row) = rows.next().map_err(backend)? {
                let text: String = row.get(0).map_err(backend)?;
                let state =
                    TaskState::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push((*id, state));
            }
        }
        Ok(out)
    }

    fn orchestration(&mut self, id: OrchestrationId) -> Result<Option<Orchestration>, StoreError> {
        rows::load_orchestration(self.conn, id)
    }

    fn save_orchestration(&mut self, o: &Orchestration) -> Result<(), StoreError> {
        rows::save_orchestration(self.conn, o)
    }

    fn append(&mut self, at: Timestamp, events: &[DomainEvent]) -> Result<(), StoreError> {
        rows::append_events(self.conn, at, events)
    }
}
