-- MAOS schema, version 2: agents at work. How the daemon runs each agent, task budgets, what
-- each attempt's run reported (process, session, exit, tokens, cost), and running usage totals.

-- The agent's settings (program arguments, environment names, limits, model, prices) as JSON;
-- secrets are never stored, only the names of the variables that hold them.
ALTER TABLE agents ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

ALTER TABLE tasks ADD COLUMN budget_micros INTEGER CHECK (budget_micros >= 0);

ALTER TABLE attempts ADD COLUMN pid INTEGER;
ALTER TABLE attempts ADD COLUMN session TEXT;
ALTER TABLE attempts ADD COLUMN exit_code INTEGER;
ALTER TABLE attempts ADD COLUMN exit_signal INTEGER;
ALTER TABLE attempts ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN failure TEXT;

-- Live attempts by lease end: the lease reaper's query, and the daemon's reconciliation at start.
CREATE INDEX attempts_live_by_lease ON attempts (lease_expires_at, task)
    WHERE status IN ('assigned', 'running');

-- Tokens and money of every attempt, kept by triggers so that `maos status` does not sum a
-- million rows. One row.
CREATE TABLE usage_totals (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cost_micros         INTEGER NOT NULL
) STRICT;

INSERT INTO usage_totals (id, input_tokens, cached_input_tokens, output_tokens, cost_micros)
    VALUES (1, 0, 0, 0, 0);

CREATE TRIGGER attempts_usage_insert AFTER INSERT ON attempts BEGIN
    UPDATE usage_totals SET
        input_tokens = input_tokens + NEW.input_tokens,
        cached_input_tokens = cached_input_tokens + NEW.cached_input_tokens,
        output_tokens = output_tokens + NEW.output_tokens,
        cost_micros = cost_micros + NEW.cost_micros
    WHERE id = 1;
END;

CREATE TRIGGER attempts_usage_update
AFTER UPDATE OF input_tokens, cached_input_tokens, output_tokens, cost_micros ON attempts BEGIN
    UPDATE usage_totals SET
        input_tokens = input_tokens + NEW.input_tokens - OLD.input_tokens,
        cached_input_tokens = cached_input_tokens + NEW.cached_input_tokens - OLD.cached_input_tokens,
        output_tokens = output_tokens + NEW.output_tokens - OLD.output_tokens,
        cost_micros = cost_micros + NEW.cost_micros - OLD.cost_micros
    WHERE id = 1;
END;
