-- MAOS schema, version 3: workspaces and approvals. What a task needs to work in a repository
-- (its worktree, verification, port), what it waits for a person to decide, each attempt's
-- checkpoints and verification, and each orchestration's repository. The fields no query
-- filters on are JSON; what queries need has its own column and index.

-- {workspace_spec, verify, wants_port, workspace, pending, run_approved, decision}
ALTER TABLE tasks ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
-- When the task began waiting for a person's decision (NULL: it waits for none).
ALTER TABLE tasks ADD COLUMN pending_since INTEGER;
-- 1 while the task has a worktree that `maos gc` has not removed.
ALTER TABLE tasks ADD COLUMN worktree INTEGER NOT NULL DEFAULT 0 CHECK (worktree IN (0, 1));

CREATE INDEX tasks_awaiting_approval ON tasks (pending_since, id)
    WHERE pending_since IS NOT NULL;
CREATE INDEX tasks_finished_with_worktrees ON tasks (updated_at, id)
    WHERE worktree = 1 AND state IN ('completed', 'cancelled');

-- {checkpoint_before, checkpoint_after, port, verification}
ALTER TABLE attempts ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';

-- {workspace, verify}
ALTER TABLE orchestrations ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
