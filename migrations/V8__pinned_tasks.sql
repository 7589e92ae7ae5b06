-- MAOS schema, version 8: tasks pinned to one agent (`TaskSpec::agent`: a planning task runs on
-- the planner a person named, and its later attempts on the same agent). `tasks.agent` holds the
-- pinned agent's name (NULL: any agent that fits; every task stored before this version), and
-- the ready queue's `need` key (V6, ADR 0014) includes it, so that a free agent steps only
-- through the needs it may take: a task pinned to another agent is a need the agent skips, as a
-- task needing a capability it lacks is.
--
-- SQLite cannot change a generated column's expression in place. It can drop one that no index,
-- view or other generated column uses (so the index goes first) and add a VIRTUAL one (a STORED
-- one could not be added), all inside this migration's transaction: the index is made again
-- from the new column. No row is rewritten (VIRTUAL columns are computed when read), and the
-- index holds only ready tasks.

DROP INDEX tasks_ready_by_need;

ALTER TABLE tasks DROP COLUMN need;

ALTER TABLE tasks ADD COLUMN agent TEXT;

ALTER TABLE tasks ADD COLUMN need TEXT GENERATED ALWAYS AS (
    capabilities || char(31) || coalesce(tier, '') || char(31) || coalesce(orchestration, '')
        || char(31) || coalesce(agent, '')
) VIRTUAL;

CREATE INDEX tasks_ready_by_need ON tasks (need, priority DESC, created_at, id)
    WHERE state = 'ready';
