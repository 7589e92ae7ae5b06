-- MAOS schema, version 4: orchestrations at work. Tasks' concerns, retry backoff and extra
-- attempts, attempts' briefings and diff stats (JSON in the `extra` columns of version 3), and
-- what agents' circuit breakers need.

-- {failures_in_row, drained_because}
ALTER TABLE agents ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';

-- The few tasks the scheduler looks at by state besides `ready`: those that hold concerns
-- (assigned, running, verifying, awaiting approval) and those waiting out a retry's backoff.
CREATE INDEX tasks_in_flight ON tasks (state, created_at, id)
    WHERE state IN ('assigned', 'running', 'verifying', 'awaiting_approval', 'retrying');
