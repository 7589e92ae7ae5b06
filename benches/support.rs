//! What every MAOS benchmark shares: the machine it ran on, percentiles, and the figures it
//! appends to `MAOS_BENCH_JSON` (one JSON object per line), which `benches/run` collects.
//! Included by path (`#[path = …] mod support;`) in each crate's benchmarks.

#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

/// The machine the figures come from: CPU model, cores, RAM and kernel, as /proc tells.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; zero when it is empty.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Appends a figure to the file `MAOS_BENCH_JSON` names (nothing without it):
/// `{"bench": …, "name": …, "value": …, "unit": …}`.
pub(crate) fn record(bench: &str, name: &str, value: f64, unit: &str) {
    let Some(path) = std::env::var_os("MAOS_BENCH_JSON") else {
        return;
    };
    let line = format!(
        "{{\"bench\":{},\"name\":{},\"value\":{},\"unit\":{}}}",
        quoted(bench),
        quoted(name),
        if value.is_finite() { value } else { 0.0 },
        quoted(unit)
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("cannot append to MAOS_BENCH_JSON ({}): {e}", path.display());
    }
}

/// A JSON string of `s` (the names are ours: ASCII letters, digits, `._-/µ `).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Milliseconds of `d`, for a figure.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds of `d`, for a figure.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
