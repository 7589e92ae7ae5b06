// Helpers of benches/peer/run (see README.md):
//
//   node report.mjs fsync DIR      the fsync floor of DIR's filesystem: appends 4 KiB to a file
//                                  and fsyncs it, 300 times (as MAOS's own benchmarks do);
//                                  prints {"p50_us":..,"p99_us":..}
//   node report.mjs table          the side-by-side table, from the files named by
//                                  PEER_GRAPHILE_JSON, PEER_MAOS_JSON (may be empty or
//                                  missing), PEER_FSYNC_JSON; writes every figure to PEER_JSON
//
// Everything read from files or commands is treated as untrusted: numbers are checked, names
// are matched against a fixed list, and text is cleaned of control characters before it is
// printed.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

function clean(text, max = 200) {
  // eslint-disable-next-line no-control-regex
  return String(text ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, "?").slice(0, max);
}

function fail(msg) {
  console.error(`report.mjs: ${clean(msg, 2000)}`);
  process.exit(1);
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function fsyncFloor(dir) {
  const path = join(dir, `fsync-probe-${process.pid}`);
  const block = Buffer.alloc(4096, 0x61);
  const fd = openSync(path, "w");
  const samples = [];
  try {
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      writeSync(fd, block);
      fsyncSync(fd);
      samples.push((performance.now() - t0) * 1000);
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  samples.sort((a, b) => a - b);
  const out = { p50_us: quantile(samples, 0.5), p99_us: quantile(samples, 0.99), samples: 300 };
  console.log(JSON.stringify(out));
}

/** JSON objects, one a line; lines that are not objects are skipped (and counted). */
function jsonLines(path) {
  if (!path || !existsSync(path)) return { rows: [], bad: 0 };
  const rows = [];
  let bad = 0;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object" && !Array.isArray(v)) rows.push(v);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { rows, bad };
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;

function machine() {
  const read = (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return "";
    }
  };
  const cpuinfo = read("/proc/cpuinfo");
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || "unknown CPU";
  const cores = (cpuinfo.match(/^processor\s*:/gm) || []).length || "?";
  const memKb = Number((read("/proc/meminfo").match(/^MemTotal:\s*(\d+)\s*kB/m) || [])[1] || 0);
  const kernel = read("/proc/sys/kernel/osrelease").trim() || "unknown";
  return {
    cpu: clean(model.trim(), 100),
    cores,
    ram_gib: memKb ? Number((memKb / 1024 / 1024).toFixed(1)) : null,
    kernel: clean(kernel, 100),
  };
}

/** The workloads of the table: label, graphile's name, MAOS's name, a note. */
const ROWS = [
  ["creates_1", "creates_1", "creates_1.daemon", ""],
  ["creates_64", "creates_64", "creates_64.daemon", ""],
  ["batch_100", "batch_100", "batch_100.daemon", ""],
  ["drain", "drain", "drain.daemon", ""],
  [
    "drain_orchestration",
    "drain",
    "drain_orchestration.daemon",
    "graphile-worker has no orchestrations: its figure is the standalone drain",
  ],
];

function fmt(v) {
  return v == null ? "not measured" : Math.round(v).toLocaleString("en-US") + " /s";
}

function table() {
  const env = process.env;
  const out = env.PEER_JSON || fail("PEER_JSON is not set");
  const g = jsonLines(env.PEER_GRAPHILE_JSON);
  const m = jsonLines(env.PEER_MAOS_JSON);
  const fs = jsonLines(env.PEER_FSYNC_JSON).rows[0] || {};

  const graphile = {};
  let drainTaskMs = 0;
  for (const r of g.rows) {
    if (r.system === "graphile-worker" && typeof r.name === "string" && isNum(r.value)) graphile[r.name] = r.value;
    if (r.name === "drain" && isNum(r.task_ms)) drainTaskMs = r.task_ms;
  }
  if (drainTaskMs > 0) {
    for (const row of ROWS) {
      if (row[1] === "drain") {
        row[3] = [row[3], `graphile-worker's drained jobs waited ${drainTaskMs} ms each (PEER_DRAIN_TASK_MS)`].filter(Boolean).join("; ");
      }
    }
  }
  // MAOS's file is appended to run after run: the last line of a name wins.
  const wanted = new Set(ROWS.map((r) => r[2]));
  const maos = {};
  for (const r of m.rows) {
    if (typeof r.name === "string" && wanted.has(r.name) && isNum(r.value)) maos[r.name] = r.value;
  }

  const mach = machine();
  const pgVersion = clean(env.PEER_PG_VERSION || "unknown", 100);
  const gwVersion = clean(env.PEER_GRAPHILE_VERSION || "unknown", 40);
  const maosSource = clean(env.PEER_MAOS_SOURCE || "unknown", 300);
  const load = clean(env.PEER_LOAD_START || "unknown", 60);
  const fsyncP50 = isNum(fs.p50_us) ? fs.p50_us : null;
  const fsyncP99 = isNum(fs.p99_us) ? fs.p99_us : null;

  const lines = [];
  lines.push({
    bench: "peer",
    kind: "run",
    date: new Date().toISOString(),
    machine: mach,
    postgresql: pgVersion,
    graphile_worker: gwVersion,
    fsync_4k_p50_us: fsyncP50,
    fsync_4k_p99_us: fsyncP99,
    maos_source: maosSource,
    load_average_at_start: load,
    quick: env.PEER_QUICK === "1",
  });
  for (const r of g.rows) if (r.system === "graphile-worker") lines.push(r);
  for (const [name, value] of Object.entries(maos)) {
    lines.push({ bench: "peer", system: "maos", name, value, unit: "tasks/s" });
  }

  const md = [];
  md.push("| workload | MAOS | graphile-worker | MAOS/peer |");
  md.push("|---|---:|---:|---:|");
  const notes = [];
  for (const [label, gname, mname, note] of ROWS) {
    const mv = maos[mname] ?? null;
    const gv = graphile[gname] ?? null;
    const ratio = mv != null && gv != null && gv > 0 ? mv / gv : null;
    const mark = note ? ` (${notes.push(note)})` : "";
    md.push(`| ${label}${mark} | ${fmt(mv)} | ${fmt(gv)} | ${ratio == null ? "-" : ratio.toFixed(2)} |`);
    lines.push({ bench: "peer", kind: "ratio", workload: label, maos: mv, graphile_worker: gv, ratio, maos_name: mname, graphile_name: gname });
  }
  writeFileSync(out, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");

  const us = (v) => (v == null ? "?" : v.toFixed(0) + " us");
  console.log("");
  console.log(
    `Machine: ${mach.cpu}, ${mach.cores} cores, ${mach.ram_gib ?? "?"} GiB RAM, Linux ${mach.kernel}; ` +
      `${pgVersion}; graphile-worker ${gwVersion}; fsync of 4 KiB p50 ${us(fsyncP50)} (p99 ${us(fsyncP99)}) ` +
      `in the data directory's filesystem; load average at start ${load}`,
  );
  console.log(`MAOS figures: ${maosSource}`);
  if (env.PEER_QUICK === "1") console.log("PEER_QUICK=1: reduced sizes; these figures are a smoke test, not a measurement.");
  console.log("");
  for (const l of md) console.log(l);
  notes.forEach((n, i) => console.log(`(${i + 1}) ${n}.`));
  console.log("MAOS/peer > 1 means MAOS is faster; all figures are jobs (tasks) per second, durable.");
  if (m.bad) console.log(`(${m.bad} line(s) of the MAOS file were not JSON objects and were skipped.)`);
  console.log(`All figures: ${clean(out, 500)}`);
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === "fsync") {
  if (!arg) fail("usage: node report.mjs fsync DIR");
  fsyncFloor(arg);
} else if (cmd === "table") {
  table();
} else {
  fail("usage: node report.mjs fsync DIR | node report.mjs table");
}
