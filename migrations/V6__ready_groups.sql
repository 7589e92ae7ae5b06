-- MAOS schema, version 6: the ready queue grouped by what its tasks need, so that a free agent
-- finds a task it can take without walking past tasks it cannot (a backlog for an `external`
-- agent, or for a capability nobody offers). One row per distinct (capabilities, tier,
-- orchestration) among ready tasks, with how many there are, kept by triggers; the scheduler
-- reads the groups (few), keeps those the agent can take, and reads each one's most urgent tasks
-- through `tasks_ready_by_group`. Its cost grows with the groups, not with the tasks.

CREATE TABLE ready_groups (
    capabilities  TEXT    NOT NULL,        -- as in tasks: space-separated, sorted
    tier          TEXT    NOT NULL,        -- '' for any tier
    orchestration TEXT    NOT NULL,        -- '' for none
    tasks         INTEGER NOT NULL,
    PRIMARY KEY (capabilities, tier, orchestration)
) STRICT, WITHOUT ROWID;

CREATE INDEX tasks_ready_by_group
    ON tasks (capabilities, coalesce(tier, ''), coalesce(orchestration, ''),
              priority DESC, created_at, id)
    WHERE state = 'ready';

INSERT INTO ready_groups (capabilities, tier, orchestration, tasks)
    SELECT capabilities, coalesce(tier, ''), coalesce(orchestration, ''), count(*)
    FROM tasks WHERE state = 'ready'
    GROUP BY capabilities, coalesce(tier, ''), coalesce(orchestration, '');

CREATE TRIGGER ready_groups_insert AFTER INSERT ON tasks WHEN new.state = 'ready' BEGIN
    INSERT INTO ready_groups (capabilities, tier, orchestration, tasks)
        VALUES (new.capabilities, coalesce(new.tier, ''), coalesce(new.orchestration, ''), 1)
        ON CONFLICT (capabilities, tier, orchestration) DO UPDATE SET tasks = tasks + 1;
END;

-- A ready task leaves its group: it is no longer ready, or what it needs changed (escalation
-- changes the tier).
CREATE TRIGGER ready_groups_leave AFTER UPDATE OF state, capabilities, tier, orchestration ON tasks
    WHEN old.state = 'ready' AND (new.state <> 'ready'
        OR new.capabilities IS NOT old.capabilities OR new.tier IS NOT old.tier
        OR new.orchestration IS NOT old.orchestration)
BEGIN
    UPDATE ready_groups SET tasks = tasks - 1
        WHERE capabilities = old.capabilities AND tier = coalesce(old.tier, '')
          AND orchestration = coalesce(old.orchestration, '');
    DELETE FROM ready_groups
        WHERE capabilities = old.capabilities AND tier = coalesce(old.tier, '')
          AND orchestration = coalesce(old.orchestration, '') AND tasks <= 0;
END;

CREATE TRIGGER ready_groups_enter AFTER UPDATE OF state, capabilities, tier, orchestration ON tasks
    WHEN new.state = 'ready' AND (old.state <> 'ready'
        OR new.capabilities IS NOT old.capabilities OR new.tier IS NOT old.tier
        OR new.orchestration IS NOT old.orchestration)
BEGIN
    INSERT INTO ready_groups (capabilities, tier, orchestration, tasks)
        VALUES (new.capabilities, coalesce(new.tier, ''), coalesce(new.orchestration, ''), 1)
        ON CONFLICT (capabilities, tier, orchestration) DO UPDATE SET tasks = tasks + 1;
END;

CREATE TRIGGER ready_groups_delete AFTER DELETE ON tasks WHEN old.state = 'ready' BEGIN
    UPDATE ready_groups SET tasks = tasks - 1
        WHERE capabilities = old.capabilities AND tier = coalesce(old.tier, '')
          AND orchestration = coalesce(old.orchestration, '');
    DELETE FROM ready_groups
        WHERE capabilities = old.capabilities AND tier = coalesce(old.tier, '')
          AND orchestration = coalesce(old.orchestration, '') AND tasks <= 0;
END;
