// The graphile-worker side of the peer benchmark (see README.md). Run by ./run, which starts a
// private PostgreSQL and passes where it listens:
//
//   PEER_PGHOST (the socket directory), PEER_PGPORT, PEER_PGUSER, PEER_PGDATABASE
//   PEER_OUT   file the figures are appended to, one JSON object per line
//
// Workloads (each durable: PostgreSQL runs with fsync=on, synchronous_commit=on, so a call
// returns after the commit's WAL flush):
//   creates_1   2,000 jobs, one `addJob` call at a time, 1 client
//   creates_64  64 clients, 100 `addJob` calls each, one at a time (6,400 jobs)
//   batch_100   50,000 jobs in `addJobs` calls of 100, 8 clients (6,250 jobs each)
//   drain       10,000 no-op jobs queued first, then one worker of concurrency 24
//               (`runOnce`) runs them all; from the worker's start until it returns with
//               the queue empty
// Every client is its own PostgreSQL connection (a pg.Pool with one connection per client,
// connected before the clock starts). The jobs table is emptied, vacuumed and checkpointed
// between workloads so each starts from the same state.
//
// Worker settings: graphile-worker's documented fast settings, from its docs
// (website/docs/performance.md, "Quick stats" and "With batching") and its own performance
// test (perfTest/graphile.config.js in github.com/graphile/worker):
//   concurrentJobs: 24, maxPoolSize: 25 (concurrency + 1)
//   localQueue: { size: 500, refetchDelay: { durationMs: 10 } }   (perfTest's config)
//   completeJobBatchDelay: 0, failJobBatchDelay: 0                (batched release, no delay)
//   preparedStatements: true (the default; docs/config.md)
//   pollInterval: 2000 (the default; with LISTEN/NOTIFY it only matters when idle, and the
//     drain's jobs are queued before the worker starts)
//   useNodeTime: false (the default; perfTest does not set it: node and PostgreSQL run on
//     the same machine, so the clocks agree)
//   noHandleSignals: true (the script handles signals and cleans up itself)
// perfTest runs its workers as `graphile-worker --once`, which is `runOnce` here.

import { performance } from "node:perf_hooks";
import { appendFileSync, readFileSync } from "node:fs";
import pg from "pg";
import { Logger, makeWorkerUtils, runMigrations, runOnce } from "graphile-worker";

/** Text from outside (errors, server messages) with control characters replaced. */
function clean(text, max = 2000) {
  const s = String(text ?? "");
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, "?").slice(0, max);
}

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`graphile.mjs: ${name} is not set; run benches/peer/run rather than this file.`);
    process.exit(2);
  }
  return v;
}

const conn = {
  host: need("PEER_PGHOST"),
  port: Number(need("PEER_PGPORT")),
  user: need("PEER_PGUSER"),
  database: need("PEER_PGDATABASE"),
};
const OUT = need("PEER_OUT");
const connectionString =
  `postgres://${encodeURIComponent(conn.user)}@${encodeURIComponent(conn.host)}:${conn.port}/` +
  encodeURIComponent(conn.database);

/** Sizes; PEER_QUICK=1 shrinks them (a smoke test of the script, not a measurement). */
const QUICK = process.env.PEER_QUICK === "1";
const SIZES = QUICK
  ? { creates1: 200, c64PerClient: 10, batchTotal: 5_000, drain: 1_000 }
  : { creates1: 2_000, c64PerClient: 100, batchTotal: 50_000, drain: 10_000 };
/** Milliseconds each drained job waits (default 0: the handler does nothing). */
const DRAIN_TASK_MS = Number(process.env.PEER_DRAIN_TASK_MS || "0");
const CONCURRENCY = 24;
/** The installed graphile-worker's version (its package.json, beside dist/index.js). */
const graphileVersion = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.resolve("graphile-worker")), "utf8"),
).version;

// Only warnings and errors, and cleaned: graphile's info lines would mix with the table.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`graphile-worker ${level}: ${clean(message)}`);
  }
});

const fastWorker = {
  concurrentJobs: CONCURRENCY,
  maxPoolSize: CONCURRENCY + 1,
  localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  preparedStatements: true,
  pollInterval: 2000,
  useNodeTime: false,
  gracefulShutdownAbortTimeout: 2500,
};

function record(name, value, unit, extra = {}) {
  const line = { bench: "peer", system: "graphile-worker", name, value, unit, ...extra };
  appendFileSync(OUT, JSON.stringify(line) + "\n");
  const shown = unit === "jobs/s" ? value.toFixed(0) : value.toFixed(1);
  console.log(`  graphile-worker ${name.padEnd(18)} ${shown.padStart(10)} ${unit}`);
}

/** An idle connection's error (e.g. the server going away): reported, the workload fails later. */
function onPoolError(e) {
  console.error(`graphile.mjs: a pooled connection failed: ${clean(e && e.message)}`);
}

/** A pool of `n` connections, all connected before it is returned. */
async function connectedPool(n) {
  const pool = new pg.Pool({ ...conn, max: n, idleTimeoutMillis: 0 });
  pool.on("error", onPoolError);
  pool.on("connect", (client) => client.on("error", onPoolError));
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
  return pool;
}

/** Empties the jobs tables and flushes everything, so that each workload starts alike. */
async function reset(admin) {
  await admin.query("delete from graphile_worker._private_jobs");
  await admin.query("delete from graphile_worker._private_job_queues");
  await admin.query("vacuum analyze");
  await admin.query("checkpoint");
}

async function queuedJobs(admin) {
  const { rows } = await admin.query("select count(*)::int as n from graphile_worker._private_jobs");
  return rows[0].n;
}

/** `clients` loops, each adding `perClient` jobs one `addJob` call at a time. */
async function creates(admin, name, clients, perClient) {
  await reset(admin);
  const pool = await connectedPool(clients);
  const utils = await makeWorkerUtils({ pgPool: pool, logger });
  try {
    // Warm-up (untimed): one job per client.
    await Promise.all(Array.from({ length: clients }, (_, c) => utils.addJob(name, { warm: c })));
    await reset(admin);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          await utils.addJob(name, { client: c, i });
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const total = clients * perClient;
    const stored = await queuedJobs(admin);
    if (stored !== total) throw new Error(`${name}: ${stored} jobs stored, expected ${total}`);
    record(name, total / secs, "jobs/s", { jobs: total, clients, seconds: secs });
  } finally {
    await utils.release();
    await pool.end();
  }
}

/** 8 clients, each adding its share of `total` jobs in `addJobs` calls of `per`. */
async function batches(admin, name, clients, total, per) {
  await reset(admin);
  const pool = await connectedPool(clients);
  const utils = await makeWorkerUtils({ pgPool: pool, logger });
  const share = Math.ceil(total / clients);
  try {
    await Promise.all(
      Array.from({ length: clients }, (_, c) => utils.addJobs([{ identifier: name, payload: { warm: c } }])),
    );
    await reset(admin);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const mine = Math.min(share, total - c * share);
        for (let done = 0; done < mine; done += per) {
          const n = Math.min(per, mine - done);
          const specs = Array.from({ length: n }, (_, k) => ({
            identifier: name,
            payload: { client: c, i: done + k },
          }));
          await utils.addJobs(specs);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const stored = await queuedJobs(admin);
    if (stored !== total) throw new Error(`${name}: ${stored} jobs stored, expected ${total}`);
    record(name, total / secs, "jobs/s", { jobs: total, clients, per_call: per, seconds: secs });
  } finally {
    await utils.release();
    await pool.end();
  }
}

async function drain(admin) {
  const n = SIZES.drain;
  let ran = 0;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const taskList = {
    noop: async () => {
      ran++;
      if (DRAIN_TASK_MS > 0) await sleep(DRAIN_TASK_MS);
    },
  };
  const options = { connectionString, logger, noHandleSignals: true, taskList, preset: { worker: fastWorker } };

  await reset(admin);
  // The worker's start and stop on an empty queue (graphile's perfTest times this too).
  let t0 = performance.now();
  await runOnce(options);
  const startupMs = performance.now() - t0;

  // Queue the jobs (untimed), in one add_jobs call as perfTest's init.js does.
  const utils = await makeWorkerUtils({ pgPool: admin, logger });
  await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: "noop", payload: { i } })));
  await utils.release();
  await admin.query("vacuum analyze");
  await admin.query("checkpoint");
  if ((await queuedJobs(admin)) !== n) throw new Error(`drain: the ${n} jobs were not all queued`);

  t0 = performance.now();
  await runOnce(options);
  const secs = (performance.now() - t0) / 1000;
  const left = await queuedJobs(admin);
  if (left !== 0 || ran !== n) {
    throw new Error(`drain: ${ran} of ${n} jobs ran and ${left} are still in the table`);
  }
  record("drain", n / secs, "jobs/s", {
    jobs: n,
    concurrency: CONCURRENCY,
    task_ms: DRAIN_TASK_MS,
    seconds: secs,
  });
  record("drain_startup", startupMs, "ms", { what: "runOnce on an empty queue" });
}

async function main() {
  console.log(`graphile-worker ${graphileVersion}${QUICK ? " (PEER_QUICK=1: reduced sizes, not a measurement)" : ""}`);
  // The schema, before anything is timed.
  await runMigrations({ connectionString, logger });
  const admin = new pg.Pool({ ...conn, max: 2 });
  admin.on("error", onPoolError);
  admin.on("connect", (client) => client.on("error", onPoolError));
  try {
    const { rows } = await admin.query(
      "select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc, current_setting('full_page_writes') as fpw",
    );
    const s = rows[0];
    if (s.fsync !== "on" || s.sc !== "on" || s.fpw !== "on") {
      throw new Error(`PostgreSQL is not durable here (fsync=${clean(s.fsync)}, synchronous_commit=${clean(s.sc)}, full_page_writes=${clean(s.fpw)})`);
    }
    await creates(admin, "creates_1", 1, SIZES.creates1);
    await creates(admin, "creates_64", 64, SIZES.c64PerClient);
    await batches(admin, "batch_100", 8, SIZES.batchTotal, 100);
    await drain(admin);
    await reset(admin);
  } finally {
    await admin.end();
  }
}

main().catch((e) => {
  console.error(`graphile.mjs failed: ${clean(e && e.stack ? e.stack : e)}`);
  process.exit(1);
});
