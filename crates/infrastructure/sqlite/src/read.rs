//! Queries on read connections: every `ReadStore` method, served from committed state.

use std::collections::BTreeMap;

use maos_application::ports::Scanned;
use maos_application::{
    AgentFilter, MemoryCursor, MemoryFilter, MemoryHit, MemoryHits, MemoryList, MemoryPage, Page,
    StatusReport, StoreError, StoredEvent, TaskCursor, TaskFilter, TaskPage,
};
use maos_domain::{
    Agent, AgentStatus, FencingToken, Memory, MemoryId, MemoryQuery, MemoryScope, MemoryTier,
    Orchestration, OrchestrationId, TaskId, TaskState, Timestamp, Usage, Usd,
};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::rows::{self, AGENT_COLS, MEMORY_COLS, ORCH_COLS, TASK_COLS, backend, i64_of};

pub(crate) fn agents(conn: &Connection, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
    let mut sql = format!("SELECT {AGENT_COLS} FROM agents WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if filter.statuses.is_empty() {
        sql.push_str(" AND status <> 'removed'");
    } else {
        sql.push_str(&format!(
            " AND status IN ({})",
            vec!["?"; filter.statuses.len()].join(", ")
        ));
        args.extend(
            filter
                .statuses
                .iter()
                .map(|s| Value::Text(s.as_str().into())),
        );
    }
    if let Some(c) = &filter.capability {
        sql.push_str(" AND name IN (SELECT agent FROM agent_capabilities WHERE capability = ?)");
        args.push(Value::Text(c.as_str().into()));
    }
    sql.push_str(" ORDER BY name");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(rows::agent_from_row(row)?);
    }
    Ok(out)
}

/// The state and fencing token of each task of `ids` that exists, one primary-key lookup each
/// (heartbeats on a read connection, the dependents check in a write transaction).
pub(crate) fn task_fencing(
    conn: &Connection,
    ids: &[TaskId],
) -> Result<Vec<(TaskId, TaskState, FencingToken)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT state, fencing FROM tasks WHERE id = ?1")
        .map_err(backend)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
        if let Some(row) = rows.next().map_err(backend)? {
            let state = rows::task_state_col(row, 0)?;
            out.push((*id, state, FencingToken::new(rows::u64_col(row, 1)?)));
        }
    }
    Ok(out)
}

/// Every live attempt's task, fencing token and lease as assigned (the lease book's seed).
pub(crate) fn live_leases(
    conn: &Connection,
) -> Result<Vec<(TaskId, FencingToken, Timestamp)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT task, fencing, lease_expires_at FROM attempts \
             WHERE status IN ('assigned', 'running')",
        )
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push((
            rows::task_id_col(row, 0)?,
            FencingToken::new(rows::u64_col(row, 1)?),
            rows::ts(row, 2)?,
        ));
    }
    Ok(out)
}

fn ids_with_prefix(
    conn: &Connection,
    table: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let sql =
        format!("SELECT id FROM {table} WHERE id >= ?1 AND id < ?1 || '~' ORDER BY id LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt
        .query(params![prefix, i64_of(limit as u64)])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(row.get::<_, String>(0).map_err(backend)?);
    }
    Ok(out)
}

/// Ids of `table` starting with `prefix`, parsed as `Id`.
fn parsed_ids_with_prefix<Id: std::str::FromStr<Err = maos_domain::ValueError>>(
    conn: &Connection,
    table: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<Id>, StoreError> {
    ids_with_prefix(conn, table, prefix, limit)?
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e: maos_domain::ValueError| StoreError::Corrupt(e.to_string()))
        })
        .collect()
}

pub(crate) fn task_ids_with_prefix(
    conn: &Connection,
    prefix: &str,
    limit: usize,
) -> Result<Vec<TaskId>, StoreError> {
    parsed_ids_with_prefix(conn, "tasks", prefix, limit)
}

pub(crate) fn orchestration_ids_with_prefix(
    conn: &Connection,
    prefix: &str,
    limit: usize,
) -> Result<Vec<OrchestrationId>, StoreError> {
    parsed_ids_with_prefix(conn, "orchestrations", prefix, limit)
}

pub(crate) fn memory_ids_with_prefix(
    conn: &Connection,
    prefix: &str,
    limit: usize,
) -> Result<Vec<MemoryId>, StoreError> {
    parsed_ids_with_prefix(conn, "memories", prefix, limit)
}

/// Adds `filter`'s conditions on `memories m` at `now` to `sql` and `args`.
fn memory_filter(filter: &MemoryFilter, now: Timestamp, sql: &mut String, args: &mut Vec<Value>) {
    if !filter.all {
        // Live, and not past a deadline (the sweep may not have marked it yet).
        sql.push_str(
            " AND m.state = 'live' AND (m.expires_at IS NULL OR m.pinned = 1 OR m.expires_at > ?)",
        );
        args.push(Value::Integer(now.as_millis()));
    }
    if !filter.scopes.is_empty() {
        sql.push_str(&format!(
            " AND m.scope IN ({})",
            vec!["?"; filter.scopes.len()].join(", ")
        ));
        args.extend(filter.scopes.iter().map(|s| Value::Text(s.to_string())));
    }
    if !filter.tiers.is_empty() {
        sql.push_str(&format!(
            " AND m.tier IN ({})",
            vec!["?"; filter.tiers.len()].join(", ")
        ));
        args.extend(filter.tiers.iter().map(|t| Value::Text(t.as_str().into())));
    }
    if let Some(tag) = &filter.tag {
        sql.push_str(" AND m.id IN (SELECT memory FROM memory_tags WHERE tag = ?)");
        args.push(Value::Text(tag.as_str().into()));
    }
}

pub(crate) fn memories(
    conn: &Connection,
    filter: &MemoryFilter,
    page: &MemoryPage,
    now: Timestamp,
) -> Result<MemoryList, StoreError> {
    let mut sql = format!("SELECT {MEMORY_COLS} FROM memories m WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    memory_filter(filter, now, &mut sql, &mut args);
    if let Some(cursor) = &page.cursor {
        sql.push_str(" AND (m.created_at, m.id) < (?, ?)");
        args.push(Value::Integer(cursor.created_at.as_millis()));
        args.push(Value::Text(cursor.id.to_string()));
    }
    sql.push_str(" ORDER BY m.created_at DESC, m.id DESC LIMIT ?");
    args.push(Value::Integer(i64_of(page.limit as u64 + 1)));
    let mut memories = rows::query_memories(conn, &sql, params_from_iter(args))?;
    let next_cursor = if memories.len() > page.limit {
        memories.truncate(page.limit);
        memories.last().map(MemoryCursor::after)
    } else {
        None
    };
    Ok(MemoryList {
        memories,
        next_cursor,
    })
}

/// Whether any entry, live or not, belongs to one of `scopes`.
pub(crate) fn holds_memories(
    conn: &Connection,
    scopes: &[MemoryScope],
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM memories WHERE scope = ?1)")
        .map_err(backend)?;
    for scope in scopes {
        if stmt
            .query_row(params![scope.to_string()], |r| r.get::<_, bool>(0))
            .map_err(backend)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The live entries of `scopes` at `now` that are pinned or critical: pinned critical first,
/// then critical, then pinned, oldest first within each; at most `limit`.
pub(crate) fn essential_memories(
    conn: &Connection,
    scopes: &[MemoryScope],
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Memory>, StoreError> {
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let filter = MemoryFilter {
        scopes: scopes.to_vec(),
        ..MemoryFilter::default()
    };
    let mut sql =
        format!("SELECT {MEMORY_COLS} FROM memories m WHERE (m.pinned = 1 OR m.tier = 'critical')");
    let mut args: Vec<Value> = Vec::new();
    memory_filter(&filter, now, &mut sql, &mut args);
    sql.push_str(
        " ORDER BY m.pinned = 1 AND m.tier = 'critical' DESC, m.tier = 'critical' DESC, \
         m.created_at, m.id LIMIT ?",
    );
    args.push(Value::Integer(i64_of(limit as u64)));
    rows::query_memories(conn, &sql, params_from_iter(args))
}

/// How much an entry's tier weighs on its relevance: each tier counts twice the next.
fn tier_weight(tier: MemoryTier) -> f64 {
    match tier {
        MemoryTier::Critical => 4.0,
        MemoryTier::Important => 2.0,
        MemoryTier::Routine => 1.0,
        MemoryTier::Ephemeral => 0.5,
    }
}

/// The FTS5 expression for `words` joined by `op` (`AND` or `OR`): each word a quoted string,
/// so that nothing in it is read as syntax (a `"` inside is doubled, as FTS5 wants).
fn fts_expression(words: &[String], op: &str) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(&format!(" {op} "))
}

pub(crate) fn search_memories(
    conn: &Connection,
    query: &MemoryQuery,
    filter: &MemoryFilter,
    limit: usize,
    now: Timestamp,
) -> Result<MemoryHits, StoreError> {
    let hits = search_with(
        conn,
        &fts_expression(query.words(), "AND"),
        filter,
        limit,
        now,
    )?;
    if !hits.is_empty() || query.words().len() < 2 {
        return Ok(MemoryHits {
            hits,
            every_word: true,
        });
    }
    let hits = search_with(
        conn,
        &fts_expression(query.words(), "OR"),
        filter,
        limit,
        now,
    )?;
    Ok(MemoryHits {
        hits,
        every_word: false,
    })
}

fn search_with(
    conn: &Connection,
    expression: &str,
    filter: &MemoryFilter,
    limit: usize,
    now: Timestamp,
) -> Result<Vec<MemoryHit>, StoreError> {
    // bm25() is lower (more negative) for better matches; tags weigh twice the text. The score
    // is the tier's weight times 1 + the relevance (its negation): a word every entry has is
    // worth almost nothing to BM25, and the tier still orders those entries. Pinned first.
    let weights: Vec<String> = MemoryTier::ALL
        .iter()
        .map(|t| format!("WHEN '{}' THEN {:.1}", t.as_str(), tier_weight(*t)))
        .collect();
    let mut sql = format!(
        "SELECT {MEMORY_COLS}, (1.0 - bm25(memory_fts, 1.0, 2.0)) * CASE m.tier {} ELSE 1.0 END \
         AS score \
         FROM memory_fts JOIN memories m ON m.seq = memory_fts.rowid \
         WHERE memory_fts MATCH ?",
        weights.join(" ")
    );
    let mut args: Vec<Value> = vec![Value::Text(expression.to_owned())];
    memory_filter(filter, now, &mut sql, &mut args);
    sql.push_str(" ORDER BY m.pinned DESC, score DESC, m.created_at DESC, m.id LIMIT ?");
    args.push(Value::Integer(i64_of(limit as u64)));
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let score: f64 = row.get(12).map_err(backend)?;
        out.push(MemoryHit {
            memory: rows::memory_from_row(row)?,
            score,
        });
    }
    Ok(out)
}

pub(crate) fn tasks(
    conn: &Connection,
    filter: &TaskFilter,
    page: &Page,
) -> Result<TaskPage, StoreError> {
    let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if !filter.statuses.is_empty() {
        sql.push_str(&format!(
            " AND state IN ({})",
            vec!["?"; filter.statuses.len()].join(", ")
        ));
        args.extend(
            filter
                .statuses
                .iter()
                .map(|s| Value::Text(s.as_str().into())),
        );
    }
    if let Some(o) = filter.orchestration {
        sql.push_str(" AND orchestration = ?");
        args.push(Value::Text(o.to_string()));
    }
    if let Some(c) = &filter.capability {
        sql.push_str(" AND (' ' || capabilities || ' ') LIKE ? ESCAPE '\\'");
        let escaped = c
            .as_str()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(Value::Text(format!("% {escaped} %")));
    }
    if let Some(cursor) = &page.cursor {
        sql.push_str(" AND (created_at, id) > (?, ?)");
        args.push(Value::Integer(cursor.created_at.as_millis()));
        args.push(Value::Text(cursor.id.to_string()));
    }
    sql.push_str(" ORDER BY created_at, id LIMIT ?");
    args.push(Value::Integer(i64_of(page.limit as u64 + 1)));
    let mut tasks = rows::query_tasks(conn, &sql, params_from_iter(args))?;
    let next_cursor = if tasks.len() > page.limit {
        tasks.truncate(page.limit);
        tasks.last().map(TaskCursor::after)
    } else {
        None
    };
    Ok(TaskPage { tasks, next_cursor })
}

pub(crate) fn orchestrations(conn: &Connection) -> Result<Vec<Orchestration>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ORCH_COLS} FROM orchestrations ORDER BY created_at, id"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(rows::orchestration_from_row(row)?);
    }
    Ok(out)
}

/// Everything, for `ReadStore::scan` (inside one read transaction, so one snapshot): the events
/// in sequence order, the agents by name (removed ones too), the tasks by id a page at a time,
/// the orchestrations, the memory entries by id a page at a time.
pub(crate) fn scan(conn: &Connection, visit: &mut dyn FnMut(Scanned)) -> Result<(), StoreError> {
    const PAGE: u64 = 500;
    let mut stmt = conn
        .prepare_cached("SELECT seq, at, payload FROM events ORDER BY seq")
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        visit(Scanned::Event(rows::event_from_row(row)?));
    }
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents ORDER BY name"))
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        visit(Scanned::Agent(Box::new(rows::agent_from_row(row)?)));
    }
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id > ?1 ORDER BY id LIMIT ?2");
    let mut after = String::new();
    loop {
        let page = rows::query_tasks(conn, &sql, params![after, i64_of(PAGE)])?;
        let Some(last) = page.last() else { break };
        after = last.id.to_string();
        let full = page.len() as u64 == PAGE;
        for t in page {
            visit(Scanned::Task(Box::new(t)));
        }
        if !full {
            break;
        }
    }
    for o in orchestrations(conn)? {
        visit(Scanned::Orchestration(o));
    }
    let sql =
        format!("SELECT {MEMORY_COLS} FROM memories m WHERE m.id > ?1 ORDER BY m.id LIMIT ?2");
    let mut after = String::new();
    loop {
        let page = rows::query_memories(conn, &sql, params![after, i64_of(PAGE)])?;
        let Some(last) = page.last() else { break };
        after = last.id.to_string();
        let full = page.len() as u64 == PAGE;
        for m in page {
            visit(Scanned::Memory(m));
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// Runs a `SELECT keyword, count` query and parses each keyword with `parse`.
fn counts<K: Ord>(
    conn: &Connection,
    sql: &str,
    parse: fn(&str) -> Result<K, maos_domain::ValueError>,
) -> Result<BTreeMap<K, u64>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let key: String = row.get(0).map_err(backend)?;
        let n: i64 = row.get(1).map_err(backend)?;
        let key = parse(&key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        out.insert(key, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

pub(crate) fn status(conn: &Connection) -> Result<StatusReport, StoreError> {
    let tasks = counts(
        conn,
        "SELECT state, n FROM task_state_counts WHERE n > 0",
        TaskState::parse,
    )?;
    let agents = counts(
        conn,
        "SELECT status, count(*) FROM agents GROUP BY status",
        AgentStatus::parse,
    )?;
    let orchestrations = rows::scalar_i64(conn, "SELECT count(*) FROM orchestrations")?;
    let last_event = rows::scalar_i64(conn, "SELECT max(seq) FROM events")?;
    let usage = conn
        .prepare_cached(
            "SELECT input_tokens, cached_input_tokens, output_tokens, cost_micros \
             FROM usage_totals WHERE id = 1",
        )
        .and_then(|mut s| {
            s.query_row([], |r| {
                let n = |i: usize| -> rusqlite::Result<u64> {
                    Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                };
                Ok(Usage {
                    input_tokens: n(0)?,
                    cached_input_tokens: n(1)?,
                    output_tokens: n(2)?,
                    cost: Usd::from_micros(n(3)?),
                })
            })
        })
        .map_err(backend)?;
    Ok(StatusReport {
        tasks,
        agents,
        orchestrations: u64::try_from(orchestrations).unwrap_or(0),
        last_event: u64::try_from(last_event).unwrap_or(0),
        usage,
    })
}

pub(crate) fn events_after(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, at, payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![i64_of(after), i64_of(limit as u64)])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(rows::event_from_row(row)?);
    }
    Ok(out)
}

/// The sequence number of the newest event (0 for an empty log).
pub(crate) fn last_seq(conn: &Connection) -> Result<u64, StoreError> {
    let last = rows::scalar_i64(conn, "SELECT max(seq) FROM events")?;
    Ok(u64::try_from(last).unwrap_or(0))
}

pub(crate) fn events_of(
    conn: &Connection,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn
        // Through `events_by_aggregate` (V12): a task's events under its number, any other
        // aggregate's under 0.
        .prepare_cached(
            "SELECT seq, at, payload FROM events
              WHERE task_no = coalesce((SELECT no FROM tasks WHERE id = ?1), 0)
                AND aggregate_id = ?1
              ORDER BY seq",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![aggregate_id]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(rows::event_from_row(row)?);
    }
    Ok(out)
}
