//! Benchmark of MAOS through its daemon: IPC round trip, agent registration, durable task
//! creation at 1, 8 and 64 concurrent clients, batch creation (one call of 50,000, and calls of
//! 100), and the whole-process time of `maos status --json`. It starts a real `maos daemon` on
//! a fresh data directory and talks to it over the real socket; in the same run it measures the
//! same creations on the store alone (the service over `SqliteStore` in this process, on the
//! same disk), and prints how much of the store's rate the daemon keeps. The drain runs 10,000
//! tasks on simulated agents with 24 slots (1 ms each), as one orchestration and standalone;
//! the latency is create → agent start as a client following the event log sees it.
//! Run it with
//! `cargo bench -p maos --bench daemon`; it prints the machine it ran on. `MAOS_BENCH_DIR`
//! chooses where the data directories go; `MAOS_BENCH_ONLY` runs only the named parts,
//! comma-separated (`roundtrip`, `register`, `creates`, `batch`, `latency`, `drain`,
//! `status`), for
//! instance to
//! profile one of them; `MAOS_BENCH_JSON` names a file the figures are appended to, one JSON
//! object per line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../../benches/support.rs"]
mod support;

use support::machine;

fn record(name: &str, value: f64, unit: &str) {
    support::record("daemon", name, value, unit);
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maos_application::{
    CreateOrchestration, CreatePlan, CreateTask, MaosApi, PlanTask, RegisterAgent, Service,
    ServiceConfig,
};
use maos_domain::{
    AdapterKind, AgentName, AgentSettings, CapabilitySet, DurationMs, Slots, TaskState, Tier, Title,
};
use maos_ipc::IpcClient;
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

const MAOS: &str = env!("CARGO_BIN_EXE_maos");

/// The `p` quantile of `sorted`, in microseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    support::us(support::percentile(sorted, p))
}

fn report(what: &str, key: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<44} p50 {:>8.1} µs  p99 {:>8.1} µs  ({} samples)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len()
    );
    record(&format!("{key}.p50"), pct(&lat, 0.5), "µs");
    record(&format!("{key}.p99"), pct(&lat, 0.99), "µs");
}

/// A rate through the daemon beside the store's own, with the share the daemon keeps.
fn compare(what: &str, key: &str, daemon: f64, store: f64) {
    println!(
        "{what:<34} daemon {daemon:>9.0} /s   store alone {store:>9.0} /s   daemon/store {:>4.0} %",
        100.0 * daemon / store
    );
    record(&format!("{key}.daemon"), daemon, "tasks/s");
    record(&format!("{key}.store"), store, "tasks/s");
    record(&format!("{key}.ratio"), daemon / store, "daemon/store");
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

/// Creates per second from `clients`, each creating `per_client` tasks one call at a time
/// (`batch` 1) or in calls of `batch`.
fn creates<A: MaosApi + Send + Sync + 'static>(
    clients: Vec<Arc<A>>,
    per_client: usize,
    batch: usize,
) -> f64 {
    let n = clients.len();
    let start = Instant::now();
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            std::thread::spawn(move || {
                let first = c * per_client;
                if batch == 1 {
                    for i in first..first + per_client {
                        client.create_task(task(i)).expect("create");
                    }
                } else {
                    for from in (first..first + per_client).step_by(batch) {
                        let to = (from + batch).min(first + per_client);
                        client
                            .create_tasks((from..to).map(task).collect())
                            .expect("create a batch");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    (n * per_client) as f64 / start.elapsed().as_secs_f64()
}

/// Registers a simulated agent that takes tasks needing `capability`, 1 ms each.
fn sim_agent(client: &IpcClient, name: &str, capability: &str, slots: u32) {
    client
        .register_agent(RegisterAgent {
            name: AgentName::parse(name).unwrap(),
            adapter: AdapterKind::Sim,
            capabilities: CapabilitySet::parse([capability]).unwrap(),
            tier: Tier::Tactical,
            slots: Slots::new(slots).unwrap(),
            command: None,
            settings: AgentSettings {
                delay: Some(DurationMs::from_millis(1).unwrap()),
                ..AgentSettings::default()
            },
        })
        .expect("register a simulated agent");
}

/// Tasks the drain runs, each way.
const DRAIN: usize = 10_000;

/// A task only the drain's agents take.
fn drain_task(i: usize) -> CreateTask {
    let mut t = task(i);
    t.capabilities = CapabilitySet::parse(["drain"]).unwrap();
    t
}

/// Waits until `n` more tasks than `before` have completed; answers when the last did.
fn completed(client: &IpcClient) -> u64 {
    let status = client.status().expect("status");
    status
        .tasks
        .get(&TaskState::Completed)
        .copied()
        .unwrap_or(0)
}

fn wait_completed(client: &IpcClient, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while completed(client) < target {
        assert!(
            Instant::now() < deadline,
            "the drain did not finish in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The drain's simulated agents: three of 8 slots each (1 ms a task), registered drained
/// (taking no work) until a drain starts.
const DRAIN_AGENTS: [&str; 3] = ["drain-0", "drain-1", "drain-2"];

fn drain_agents(client: &IpcClient, take_work: bool) {
    for name in DRAIN_AGENTS {
        let name = AgentName::parse(name).unwrap();
        if take_work {
            client
                .resume_agent(&name)
                .expect("resume a simulated agent");
        } else {
            client.drain_agent(&name).expect("drain a simulated agent");
        }
    }
}

/// Runs the queued tasks: resumes the agents, waits until `DRAIN` more tasks completed, drains
/// the agents again; answers tasks per second.
fn run_drain(client: &IpcClient) -> f64 {
    let target = completed(client) + DRAIN as u64;
    let t = Instant::now();
    drain_agents(client, true);
    wait_completed(client, target);
    let rate = DRAIN as f64 / t.elapsed().as_secs_f64();
    drain_agents(client, false);
    rate
}

/// Drains `DRAIN` tasks of one orchestration, then `DRAIN` standalone tasks (on the larger
/// database: if the orchestration is slower, that is not why), each queued while the agents
/// take no work; tasks per second from the agents' resumption to the last completion.
fn drain(client: &IpcClient) {
    for name in DRAIN_AGENTS {
        sim_agent(client, name, "drain", 8);
    }
    drain_agents(client, false);

    let plan = CreatePlan {
        orchestration: CreateOrchestration {
            name: Title::parse("Drain").unwrap(),
            goal: Some("Measure the drain of one orchestration".into()),
            workspace: None,
            verify: None,
            notes: Vec::new(),
        },
        tasks: (0..DRAIN)
            .map(|i| PlanTask {
                key: format!("t{i}"),
                task: drain_task(i),
                depends_on: Vec::new(),
            })
            .collect(),
        start: true,
    };
    client.create_plan(plan).expect("create the orchestration");
    let in_one = run_drain(client);

    client
        .create_tasks((0..DRAIN).map(drain_task).collect())
        .expect("create the drain's tasks");
    let standalone = run_drain(client);

    println!("drain of {DRAIN} standalone tasks, 24 slots:          {standalone:>10.0} /s");
    println!("drain of one orchestration of {DRAIN} tasks, 24 slots: {in_one:>10.0} /s");
    println!(
        "the orchestration drains at {:.0} % of the standalone rate",
        100.0 * in_one / standalone
    );
    record("drain.daemon", standalone, "tasks/s");
    record("drain_orchestration.daemon", in_one, "tasks/s");
    record(
        "drain_orchestration.ratio",
        in_one / standalone,
        "orchestration/standalone",
    );
}

/// Waits until the database file at `db` has not changed for a second (its checkpoints are
/// done), at most two minutes.
fn quiet_disk(db: &Path) {
    let stamp = || {
        std::fs::metadata(db)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let start = Instant::now();
    let mut last = stamp();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1)
        && start.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(100));
        let now = stamp();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    eprintln!(
        "waited {:.1} s for the database file to settle",
        start.elapsed().as_secs_f64()
    );
}

/// Create → agent start through the daemon, with the disk otherwise idle: a simulated agent
/// with a free slot; each sample creates one task and waits, following the event log as any
/// client would, for its attempt's start (`task.attempt_started`, committed).
fn latency(client: &IpcClient) {
    sim_agent(client, "latency", "latency", 1);
    let since = client.status().expect("status").last_event;
    let mut follower = client.follow_events(since).expect("follow the event log");
    let mut lat = Vec::new();
    // The create call's own round trip (answered after its commit), as a part of the whole.
    let mut call = Vec::new();
    for i in 0..1_100 {
        let mut t = task(i);
        t.capabilities = CapabilitySet::parse(["latency"]).unwrap();
        let start = Instant::now();
        let id = client.create_task(t).expect("create").task.id;
        let answered = start.elapsed();
        'wait: loop {
            let batch = follower
                .next_batch(Duration::from_secs(30))
                .expect("follow the event log");
            assert!(!batch.is_empty(), "the agent did not start within 30 s");
            for e in batch {
                if let maos_domain::DomainEvent::Task {
                    id: of,
                    event: maos_domain::TaskEvent::AttemptStarted { .. },
                } = &e.event
                    && *of == id
                {
                    break 'wait;
                }
            }
        }
        // The first hundred warm the caches and connections.
        if i >= 100 {
            lat.push(start.elapsed());
            call.push(answered);
        }
        // Let the attempt end (1 ms) and its completion commit before the next create.
        std::thread::sleep(Duration::from_millis(5));
    }
    report(
        "create → agent start (sim agent, idle disk)",
        "latency",
        lat,
    );
    report(
        "  of which the create call (to its answer)",
        "latency_call",
        call,
    );
}

/// `n` connections to the daemon.
fn connections(socket: &Path, n: usize) -> Vec<Arc<IpcClient>> {
    (0..n)
        .map(|_| Arc::new(IpcClient::connect(socket, "bench").expect("connect")))
        .collect()
}

/// The same service the daemon runs, over a store of its own in this process (no agent
/// runtime: nothing is scheduled, as nothing is in the daemon without agents).
fn store_alone(dir: &Path) -> Arc<Service<SqliteStore>> {
    let store = SqliteStore::open(&dir.join("maos.db")).expect("open the store");
    Arc::new(Service::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig::default(),
    ))
}

/// The creation workloads, one `(what, key, clients, per client, batch)` each.
const CREATES: [(&str, &str, usize, usize, usize); 3] = [
    ("durable creates, 1 client", "creates_1", 1, 2000, 1),
    ("durable creates, 8 clients", "creates_8", 8, 500, 1),
    ("durable creates, 64 clients", "creates_64", 64, 400, 1),
];

/// The batch workloads: one call of 50,000, and 50,000 in calls of 100 from 8 clients.
const BATCHES: [(&str, &str, usize, usize, usize); 2] = [
    (
        "batch: one call of 50,000",
        "batch_50000",
        1,
        50_000,
        50_000,
    ),
    ("batch: calls of 100, 8 clients", "batch_100", 8, 6_250, 100),
];

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
        report("IPC round trip (daemonInfo)", "roundtrip", lat);
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
        report("agent registration (durable)", "register", lat);
    }

    let alone = tempfile::tempdir_in(&base).expect("store dir");
    let store = store_alone(alone.path());
    let mut workloads = Vec::new();
    if runs("creates") {
        workloads.extend(CREATES);
    }
    if runs("batch") {
        workloads.extend(BATCHES);
    }
    for (what, key, clients, per, batch) in workloads {
        // Alternately, so that neither side gets the disk's better minute.
        let daemon = creates(connections(&socket, clients), per, batch);
        let alone = creates(vec![Arc::clone(&store); clients], per, batch);
        compare(what, key, daemon, alone);
    }
    drop(store);
    if runs("latency") {
        // "Disk idle": the daemon's checkpointer may still be copying what the parts before
        // wrote (a gigabyte of log after the batch part) into the database file.
        quiet_disk(&data.path().join("maos.db"));
        latency(&client);
    }
    if runs("drain") {
        drain(&client);
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
        report("`maos status --json`, whole process", "status", lat);
    }

    let stopped = maos(data.path(), runtime.path(), &["daemon", "stop"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
}
