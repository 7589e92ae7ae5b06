-- MAOS schema, version 1: agents, tasks with attempts and dependencies, orchestrations, and the
-- append-only event log. State rows and their events are always written in one transaction.

CREATE TABLE agents (
    name          TEXT    PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    adapter       TEXT    NOT NULL,
    capabilities  TEXT    NOT NULL,          -- space-separated, sorted
    tier          TEXT    NOT NULL,
    slots         INTEGER NOT NULL CHECK (slots > 0),
    command       TEXT,
    status        TEXT    NOT NULL,
    active        INTEGER NOT NULL CHECK (active >= 0),
    registered_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL
) STRICT;

-- The load balancer's order over the agents that can take work now: least share of slots in
-- use, then fewest active attempts, then name (policy::balancer::by_load).
CREATE INDEX agents_by_load ON agents (CAST(active AS REAL) / slots, active, name)
    WHERE status IN ('available', 'busy') AND active < slots;

-- One row per (capability, agent): drives the capability match of the load balancer.
CREATE TABLE agent_capabilities (
    capability TEXT NOT NULL,
    agent      TEXT NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
    PRIMARY KEY (capability, agent)
) STRICT, WITHOUT ROWID;

CREATE TABLE orchestrations (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    goal       TEXT,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version    INTEGER NOT NULL
) STRICT;

CREATE TABLE tasks (
    id              TEXT    PRIMARY KEY,
    title           TEXT    NOT NULL,
    prompt          TEXT    NOT NULL,
    capabilities    TEXT    NOT NULL,        -- space-separated, sorted
    priority        INTEGER NOT NULL,        -- 0 low .. 3 urgent
    risk            TEXT    NOT NULL,
    tier            TEXT,
    depends_on      TEXT    NOT NULL,        -- space-separated ids (also in task_deps)
    orchestration   TEXT    REFERENCES orchestrations (id),
    max_attempts    INTEGER NOT NULL,
    timeout_ms      INTEGER,
    idempotency_key TEXT,
    state           TEXT    NOT NULL,
    reason          TEXT,
    fencing         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    version         INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_by_age ON tasks (created_at, id);
-- The scheduler's queue: only ready tasks, most urgent first, then oldest.
CREATE INDEX tasks_ready ON tasks (priority DESC, created_at, id) WHERE state = 'ready';
CREATE INDEX tasks_by_orchestration ON tasks (orchestration, created_at, id)
    WHERE orchestration IS NOT NULL;

CREATE TABLE task_deps (
    task       TEXT NOT NULL REFERENCES tasks (id),
    depends_on TEXT NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (task, depends_on)
) STRICT, WITHOUT ROWID;

CREATE INDEX task_deps_reverse ON task_deps (depends_on, task);

CREATE TABLE attempts (
    task             TEXT    NOT NULL REFERENCES tasks (id),
    number           INTEGER NOT NULL,
    agent            TEXT    NOT NULL,
    fencing          INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    assigned_at      INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER,
    summary          TEXT,
    error            TEXT,
    PRIMARY KEY (task, number)
) STRICT, WITHOUT ROWID;

-- Tasks per state, kept by triggers so that `maos status` does not count a million rows.
CREATE TABLE task_state_counts (
    state TEXT    PRIMARY KEY,
    n     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_state_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_count_update AFTER UPDATE OF state ON tasks
WHEN OLD.state <> NEW.state BEGIN
    UPDATE task_state_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO task_state_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

-- The event log: append-only, sequence numbers 1, 2, 3, ... without gaps.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    aggregate    TEXT    NOT NULL,
    aggregate_id TEXT    NOT NULL,
    payload      TEXT    NOT NULL            -- the domain event as JSON
) STRICT;

CREATE INDEX events_by_aggregate ON events (aggregate_id, seq);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
    SELECT RAISE (ABORT, 'the event log is append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
    SELECT RAISE (ABORT, 'the event log is append-only');
END;
