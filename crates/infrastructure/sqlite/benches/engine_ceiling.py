#!/usr/bin/env python3
"""What SQLite itself can do with MAOS's schema: the ceiling for batch creation.

Creates 4 batches of 50,000 tasks, each one task row plus two event rows (task_created,
task_ready) in one durable transaction (WAL, synchronous=FULL, the store's pragmas), entirely in
SQL (a recursive CTE), so that no binding or serialisation cost of any client is counted.
`random` uses 25-character random ids like MAOS (ADR 0004); `ordered` uses ids whose leading
characters grow with creation order, to show what time-ordered storage keys would buy.

    python3 crates/infrastructure/sqlite/benches/engine_ceiling.py [random|ordered] [DIR]
"""
import os
import sqlite3
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "..", "..", "..", "migrations", "V1__init.sql")
N = 50_000


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "random"
    if mode not in ("random", "ordered"):
        sys.exit("usage: engine_ceiling.py [random|ordered] [DIR]")
    directory = sys.argv[2] if len(sys.argv) > 2 else None
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        c = sqlite3.connect(os.path.join(tmp, "ceiling.db"), isolation_level=None)
        for pragma in ("journal_mode=wal", "synchronous=full", "cache_size=-64000",
                       "wal_autocheckpoint=0", "foreign_keys=on"):
            c.execute("pragma " + pragma)
        with open(SCHEMA) as f:
            c.executescript(f.read())
        if mode == "random":
            idexpr = "lower(hex(randomblob(13)))"
        else:
            idexpr = "printf('%013x', :base + value) || lower(hex(randomblob(6)))"
        for r in range(4):
            start = time.time()
            c.execute("begin")
            c.execute(
                "create temp table ids as with recursive s(value) as (select 1 union all "
                f"select value + 1 from s where value < {N}) select value, {idexpr} as id from s",
                {"base": r * N})
            c.execute(
                "insert into tasks (id, title, prompt, capabilities, priority, risk, tier, "
                "depends_on, orchestration, max_attempts, timeout_ms, idempotency_key, state, "
                "reason, fencing, created_at, updated_at, version) select id, 'task ' || value, "
                "'do the thing number ' || value || ' please', 'rust', 1, 'low', NULL, '', NULL, "
                "3, NULL, NULL, 'ready', NULL, 0, :t, :t, 2 from ids", {"t": r})
            c.execute(
                "insert into events (at, kind, aggregate, aggregate_id, payload) select :t, "
                "'task_created', 'task', id, '{\"type\":\"task_created\",\"task\":\"' || id || "
                "'\",\"spec\":{\"title\":\"task ' || value || '\",\"prompt\":\"do the thing\","
                "\"capabilities\":[\"rust\"],\"priority\":\"normal\",\"risk\":\"low\","
                "\"max_attempts\":3},\"at\":12345678}' from ids", {"t": r})
            c.execute(
                "insert into events (at, kind, aggregate, aggregate_id, payload) select :t, "
                "'task_ready', 'task', id, '{\"type\":\"task_ready\",\"task\":\"' || id || "
                "'\"}' from ids", {"t": r})
            c.execute("drop table ids")
            c.execute("commit")
            rate = N / (time.time() - start)
            print(f"{mode} batch {r + 1} of {N}: {rate:>9.0f} creates/s")


if __name__ == "__main__":
    main()
