//! Benchmark of MAOS through its daemon: IPC round trip, agent registration, durable task
//! creation at 1, 8 and 64 concurrent clients, batch creation, and the whole-process time of
//! `maos status --json`. It starts a real `maos daemon` on a fresh data directory and talks to
//! it over the real socket. Run it with `cargo bench -p maos --bench daemon`; it prints the
//! machine it ran on. `MAOS_BENCH_DIR` chooses where the data directory goes;
//! `MAOS_BENCH_ONLY` runs only the named parts, comma-separated (`roundtrip`, `register`,
//! `creates`, `batch`, `status`), for instance to profile one of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maos_application::{CreateTask, MaosApi, RegisterAgent};
use maos_domain::{AdapterKind, AgentName, CapabilitySet, Slots, Tier, Title};
use maos_ipc::IpcClient;

const MAOS: &str = env!("CARGO_BIN_EXE_maos");

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<44} p50 {:>8.1} µs  p99 {:>8.1} µs  ({} samples)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len()
    );
}

fn maos(data: &Path, runtime: &Path, args: &[&str]) -> std::process::Output {
    Command::new(MAOS)
        .args(args)
        .env("MAOS_DATA_DIR", data)
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("MAOS_NO_DAEMON")
        .output()
        .expect("run maos")
}

fn task(i: usize) -> CreateTask {
    let mut t = CreateTask::titled(Title::parse(&format!("task {i}")).unwrap());
    t.prompt = "benchmark task".into();
    t
}

fn creates(socket: &Path, clients: usize, per_client: usize) -> f64 {
    let connected: Vec<Arc<IpcClient>> = (0..clients)
        .map(|_| Arc::new(IpcClient::connect(socket, "bench").expect("connect")))
        .collect();
    let start = Instant::now();
    let threads: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            std::thread::spawn(move || {
                for i in 0..per_client {
                    client
                        .create_task(task(c * per_client + i))
                        .expect("create");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("daemon: benchmark");
        return;
    }
    println!("machine: {}", machine());
    let only = std::env::var("MAOS_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let base = std::env::var_os("MAOS_BENCH_DIR").unwrap_or_else(|| ".".into());
    let data = tempfile::tempdir_in(&base).expect("data dir");
    let runtime = tempfile::tempdir().expect("runtime dir");
    let started = maos(data.path(), runtime.path(), &["daemon", "start", "--json"]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&started.stdout).expect("json");
    let socket = PathBuf::from(doc["socket"].as_str().expect("socket"));
    println!(
        "daemon pid {}, socket {}, data {}",
        doc["pid"],
        socket.display(),
        data.path().display()
    );

    let client = IpcClient::connect(&socket, "bench").expect("connect");
    if runs("roundtrip") {
        for _ in 0..2000 {
            client.daemon_info().expect("warm up");
        }
        let lat = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                client.daemon_info().expect("daemon info");
                t.elapsed()
            })
            .collect();
        report("IPC round trip (daemonInfo)", lat);
    }

    if runs("register") {
        let lat = (0..2_000)
            .map(|i| {
                let cmd = RegisterAgent {
                    name: AgentName::parse(&format!("agent-{i:05}")).unwrap(),
                    // External: the daemon never schedules onto it, so the creation figures
                    // below measure creation alone.
                    adapter: AdapterKind::External,
                    capabilities: CapabilitySet::parse(["rust"]).unwrap(),
                    tier: Tier::Tactical,
                    slots: Slots::new(4).unwrap(),
                    command: None,
                    settings: maos_domain::AgentSettings::default(),
                };
                let t = Instant::now();
                client.register_agent(cmd).expect("register");
                t.elapsed()
            })
            .collect();
        report("agent registration (durable)", lat);
    }

    if runs("creates") {
        for (clients, per) in [(1usize, 2000usize), (8, 500), (64, 100)] {
            let rate = creates(&socket, clients, per);
            println!(
                "durable creates, {clients:>2} client(s): {rate:>10.0} /s ({} tasks)",
                clients * per
            );
        }
    }
    if runs("batch") {
        let n = 50_000;
        let t = Instant::now();
        client
            .create_tasks((0..n).map(task).collect())
            .expect("batch");
        println!(
            "batch of {n} in one call:     {:>10.0} /s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
    drop(client);

    if runs("status") {
        let lat = (0..200)
            .map(|_| {
                let t = Instant::now();
                let out = maos(data.path(), runtime.path(), &["status", "--json"]);
                let took = t.elapsed();
                assert!(out.status.success());
                took
            })
            .collect();
        report("`maos status --json`, whole process", lat);
    }

    let stopped = maos(data.path(), runtime.path(), &["daemon", "stop"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
}
