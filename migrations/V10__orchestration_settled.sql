-- MAOS schema, version 10: whether an orchestration's tasks have all ended, without reading them.
-- After every completion the service asks whether any task of the orchestration is still
-- unfinished; with this index that is a few seeks (one per unfinished state), not a scan of the
-- orchestration's tasks.

CREATE INDEX tasks_by_orchestration_state ON tasks (orchestration, state)
    WHERE orchestration IS NOT NULL;
