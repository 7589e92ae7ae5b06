-- MAOS schema, version 12: every task gets a number in creation order; the events of a task are
-- found through an index that starts with that number, not with the task's random id; and the
-- ready queue breaks ties by that number, not by id.
-- `events_by_aggregate (aggregate_id, seq)` put every new event at a random place in the index,
-- so a commit of N tasks' events dirtied about N of its pages: with it, creating tasks in calls
-- of 100 ran at 26,000–28,000/s, without it at 41,000–47,000/s (docs/benchmarks.md). Keyed by
-- the task's number first, a new task's events go to the index's end, and the events of tasks
-- that run in the order they were created land next to each other.
--
-- `tasks.no` is the task's number: its rowid when it was inserted (existing tasks get theirs;
-- the store writes `max(rowid) + 1`, the rowid SQLite then gives the row). It never changes.
-- Kept in a column of its own because a `VACUUM` may renumber the rowids of a table without an
-- `INTEGER PRIMARY KEY` (MAOS never deletes a task, so its rowids stay 1..n and a renumbering
-- would change none; MAOS never vacuums either). A task's attempts are keyed by its number, so
-- the store checks the task's id beside it: a repeated number would be an error, never one
-- task's attempts shown or saved as another's. (A unique index on the number would refuse a
-- repeat at insert, at the price of one more index written by every create.)
--
-- `events.task_no` is the number of the task an event belongs to, and 0 for the events of
-- agents, orchestrations and memory entries (those stay ordered by their aggregate's id: they
-- are few). The store reads it from the task's row when it appends (a task is saved before its
-- events are appended) and when it looks a task's events up.

ALTER TABLE tasks ADD COLUMN no INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET no = rowid;

ALTER TABLE events ADD COLUMN task_no INTEGER NOT NULL DEFAULT 0;

-- The log is append-only (a trigger refuses updates): lifted for the backfill only.
DROP TRIGGER events_no_update;

UPDATE events
   SET task_no = coalesce((SELECT t.no FROM tasks t WHERE t.id = events.aggregate_id), 0)
 WHERE aggregate = 'task';

CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
    SELECT RAISE (ABORT, 'the event log is append-only');
END;

DROP INDEX events_by_aggregate;
CREATE INDEX events_by_aggregate ON events (task_no, aggregate_id, seq);

-- The ready queue: most urgent first, then oldest, then (new) in creation order rather than by
-- id. Tasks created together (a plan, a batch) ran in a random order, and each one's row, index
-- entries and events lay at a random place: a drain of 10,000 such tasks wrote most of its log
-- frames for pages of `events_by_aggregate`, `tasks_by_orchestration_state` and `tasks` that
-- only one task of the commit had changed.
DROP INDEX tasks_ready_by_need;
CREATE INDEX tasks_ready_by_need ON tasks (need, priority DESC, created_at, no)
    WHERE state = 'ready';

-- Attempts keyed by their task's number, not its random id: each assignment inserted an attempt
-- at a random place in the table, and each completion changed one there (after the change above,
-- the largest share of a drain's log frames). `task` stays, for the lease queries that answer
-- task ids. The usage triggers now skip the counters' row when nothing is added (an assignment,
-- a save that does not change the usage), so that not every commit rewrites it.
CREATE TABLE attempts_by_no (
    task_no             INTEGER NOT NULL,
    number              INTEGER NOT NULL,
    task                TEXT    NOT NULL REFERENCES tasks (id),
    agent               TEXT    NOT NULL,
    fencing             INTEGER NOT NULL,
    status              TEXT    NOT NULL,
    assigned_at         INTEGER NOT NULL,
    lease_expires_at    INTEGER NOT NULL,
    started_at          INTEGER,
    ended_at            INTEGER,
    summary             TEXT,
    error               TEXT,
    pid                 INTEGER,
    session             TEXT,
    exit_code           INTEGER,
    exit_signal         INTEGER,
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    cached_input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    cost_micros         INTEGER NOT NULL DEFAULT 0,
    failure             TEXT,
    extra               TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (task_no, number)
) STRICT, WITHOUT ROWID;

INSERT INTO attempts_by_no (task_no, number, task, agent, fencing, status, assigned_at,
        lease_expires_at, started_at, ended_at, summary, error, pid, session, exit_code,
        exit_signal, input_tokens, cached_input_tokens, output_tokens, cost_micros, failure, extra)
    SELECT coalesce(t.no, 0), a.number, a.task, a.agent, a.fencing, a.status, a.assigned_at,
           a.lease_expires_at, a.started_at, a.ended_at, a.summary, a.error, a.pid, a.session,
           a.exit_code, a.exit_signal, a.input_tokens, a.cached_input_tokens, a.output_tokens,
           a.cost_micros, a.failure, a.extra
      FROM attempts a LEFT JOIN tasks t ON t.id = a.task;

DROP TABLE attempts;
ALTER TABLE attempts_by_no RENAME TO attempts;

CREATE INDEX attempts_live_by_lease ON attempts (lease_expires_at, task)
    WHERE status IN ('assigned', 'running');

CREATE TRIGGER attempts_usage_insert AFTER INSERT ON attempts
WHEN NEW.input_tokens <> 0 OR NEW.cached_input_tokens <> 0 OR NEW.output_tokens <> 0
    OR NEW.cost_micros <> 0 BEGIN
    UPDATE usage_totals SET
        input_tokens = input_tokens + NEW.input_tokens,
        cached_input_tokens = cached_input_tokens + NEW.cached_input_tokens,
        output_tokens = output_tokens + NEW.output_tokens,
        cost_micros = cost_micros + NEW.cost_micros
    WHERE id = 1;
END;

CREATE TRIGGER attempts_usage_update
AFTER UPDATE OF input_tokens, cached_input_tokens, output_tokens, cost_micros ON attempts
WHEN NEW.input_tokens <> OLD.input_tokens OR NEW.cached_input_tokens <> OLD.cached_input_tokens
    OR NEW.output_tokens <> OLD.output_tokens OR NEW.cost_micros <> OLD.cost_micros BEGIN
    UPDATE usage_totals SET
        input_tokens = input_tokens + NEW.input_tokens - OLD.input_tokens,
        cached_input_tokens = cached_input_tokens + NEW.cached_input_tokens - OLD.cached_input_tokens,
        output_tokens = output_tokens + NEW.output_tokens - OLD.output_tokens,
        cost_micros = cost_micros + NEW.cost_micros - OLD.cost_micros
    WHERE id = 1;
END;
