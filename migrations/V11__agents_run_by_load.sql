-- MAOS schema, version 11: the scheduler's candidates among the agents the daemon runs, in the
-- load balancer's order, without walking the external agents. Every create of a task the daemon
-- could run looks for a free agent; with only `agents_by_load`, that walked every external
-- agent (which MAOS never schedules onto) first, so 2,000 registered external agents made each
-- create several times slower.

CREATE INDEX agents_run_by_load ON agents (CAST(active AS REAL) / slots, active, name)
    WHERE adapter <> 'external';
