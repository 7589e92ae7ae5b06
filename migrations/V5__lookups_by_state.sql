-- MAOS schema, version 5: the scheduler's and the reaper's lookups by state, on indexes SQLite
-- uses. Version 4's partial index on `state IN (...)` is never chosen for a query on those
-- states (SQLite does not infer that an IN list implies another), so these lookups scanned
-- every task. A flag and a due time, each with its own partial index, do what it meant to do.

-- 1 while the task is assigned, running, verifying, awaiting approval or retrying.
ALTER TABLE tasks ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1));
-- When a retrying task's backoff ends (NULL: it is not retrying).
ALTER TABLE tasks ADD COLUMN retry_at INTEGER;

UPDATE tasks SET in_flight = 1
    WHERE state IN ('assigned', 'running', 'verifying', 'awaiting_approval', 'retrying');
UPDATE tasks SET retry_at = coalesce(json_extract(extra, '$.retry_at'), 0)
    WHERE state = 'retrying';

DROP INDEX tasks_in_flight;
CREATE INDEX tasks_in_flight ON tasks (created_at, id) WHERE in_flight = 1;
CREATE INDEX tasks_retry_due ON tasks (retry_at, id) WHERE retry_at IS NOT NULL;
