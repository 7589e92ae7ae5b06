-- MAOS schema, version 6: the ready queue ordered by what its tasks need, so that a free agent
-- finds a task it can take without walking past tasks it cannot (a backlog for an `external`
-- agent, or for a capability nobody offers). `need` is a task's capabilities, tier and
-- orchestration in one key; the index holds the ready tasks by need, then in the scheduler's
-- order. The scheduler steps through the distinct needs (one seek each), keeps those the agent
-- can take, and reads the first few tasks of each: its cost grows with the distinct needs, not
-- with the tasks (ADR 0014).

ALTER TABLE tasks ADD COLUMN need TEXT GENERATED ALWAYS AS (
    capabilities || char(31) || coalesce(tier, '') || char(31) || coalesce(orchestration, '')
) VIRTUAL;

CREATE INDEX tasks_ready_by_need ON tasks (need, priority DESC, created_at, id)
    WHERE state = 'ready';

-- The whole queue in the scheduler's order is no longer read: its index would only cost every
-- transition into and out of `ready`.
DROP INDEX tasks_ready;
