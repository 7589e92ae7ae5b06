//! Benchmark of the SQLite store through the application service: durable task creation at 1, 8
//! and 64 concurrent callers, batch creation, and assignment latency with 10k and 1M stored tasks
//! and 1k registered agents. Run it with `cargo bench -p maos-sqlite --bench store`
//! (`MAOS_BENCH_QUICK=1` stops at 100k stored tasks). It prints the machine it ran on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../../../benches/support.rs"]
mod support;

use support::{machine, percentile, record};

use std::sync::Arc;
use std::time::{Duration, Instant};

use maos_application::{
    AssignTask, CreateTask, IdRef, MaosApi, RegisterAgent, Service, ServiceConfig,
};
use maos_domain::{AdapterKind, AgentName, CapabilitySet, Slots, TaskId, Tier, Title};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};

type Api = Service<SqliteStore>;

const CAPS: [&str; 8] = [
    "rust", "go", "python", "test", "review", "plan", "docs", "sql",
];

fn open(dir: &tempfile::TempDir, name: &str) -> Api {
    let store = SqliteStore::open(&dir.path().join(name)).expect("open store");
    Service::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig::default(),
    )
}

fn task(i: usize) -> CreateTask {
    let mut t = CreateTask::titled(Title::parse(&format!("task {i}")).unwrap());
    t.prompt = "benchmark task".into();
    t.capabilities = CapabilitySet::parse([CAPS[i % CAPS.len()]]).unwrap();
    t
}

/// The floor under every durable write: p50/p99 of appending 4 KiB to a file and fsyncing it,
/// in the benchmark's directory.
fn fsync_floor(dir: &std::path::Path) -> (Duration, Duration) {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let mut lat: Vec<Duration> = (0..300)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&block).expect("write");
            f.sync_all().expect("fsync");
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(path);
    lat.sort();
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

fn creates(api: &Api, callers: usize, per_caller: usize) -> f64 {
    let api = Arc::new(api.clone());
    let start = Instant::now();
    let handles: Vec<_> = (0..callers)
        .map(|c| {
            let api = Arc::clone(&api);
            std::thread::spawn(move || {
                for i in 0..per_caller {
                    api.create_task(task(c * per_caller + i)).expect("create");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("caller thread");
    }
    (callers * per_caller) as f64 / start.elapsed().as_secs_f64()
}

fn fill(api: &Api, total: usize) -> Duration {
    let start = Instant::now();
    let mut made = api.status().unwrap().tasks.values().sum::<u64>() as usize;
    while made < total {
        let n = (total - made).min(20_000);
        api.create_tasks((made..made + n).map(task).collect())
            .expect("batch");
        made += n;
    }
    start.elapsed()
}

fn register_agents(api: &Api, n: usize) {
    for i in 0..n {
        let caps = [CAPS[i % CAPS.len()], CAPS[(i / CAPS.len()) % CAPS.len()]];
        api.register_agent(RegisterAgent {
            name: AgentName::parse(&format!("agent-{i:04}")).unwrap(),
            adapter: AdapterKind::Sim,
            capabilities: CapabilitySet::parse(caps).unwrap(),
            tier: Tier::Tactical,
            slots: Slots::new(4).unwrap(),
            command: None,
            settings: maos_domain::AgentSettings::default(),
        })
        .expect("register");
    }
}

fn assignments(api: &Api, samples: usize) -> (Duration, Duration, Duration) {
    // The newest ready tasks, by id.
    let ids: Vec<TaskId> = {
        let mut ids = Vec::new();
        let mut cursor = None;
        let filter = maos_application::TaskFilter {
            statuses: vec![maos_domain::TaskState::Ready],
            ..Default::default()
        };
        while ids.len() < samples {
            let page = api
                .list_tasks(
                    &filter,
                    &maos_application::Page {
                        limit: 1000,
                        cursor,
                    },
                )
                .unwrap();
            ids.extend(page.tasks.iter().map(|t| t.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        ids.truncate(samples);
        ids
    };
    let mut lat: Vec<Duration> = ids
        .iter()
        .map(|id| {
            let t = Instant::now();
            api.assign_task(AssignTask {
                task: IdRef::from(*id),
                agent: None,
            })
            .expect("assign");
            t.elapsed()
        })
        .collect();
    lat.sort();
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        *lat.last().unwrap(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("store: benchmark");
        return;
    }
    let quick = std::env::var_os("MAOS_BENCH_QUICK").is_some();
    println!("machine: {}", machine());
    println!(
        "build: {} profile, SQLite {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        rusqlite::version()
    );
    let dir =
        tempfile::tempdir_in(std::env::var_os("MAOS_BENCH_DIR").unwrap_or_else(|| ".".into()))
            .expect("temp dir");
    println!("database directory: {}", dir.path().display());
    let (f50, f99) = fsync_floor(dir.path());
    println!(
        "fsync of 4 KiB in that directory: p50 {:.1} µs, p99 {:.1} µs (the floor of any durable write)",
        f50.as_secs_f64() * 1e6,
        f99.as_secs_f64() * 1e6
    );
    record("store", "fsync_4k.p50", support::us(f50), "µs");
    record("store", "fsync_4k.p99", support::us(f99), "µs");

    let only = std::env::var("MAOS_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "creates" {
        bench_creates(&dir);
    }
    if only.is_empty() || only == "assign" {
        bench_assign(&dir, quick);
    }
}

fn bench_creates(dir: &tempfile::TempDir) {
    println!(
        "\n## durable creates (CreateTask use case, synchronous=FULL, one writer with group commit)"
    );
    let api = open(dir, "creates.db");
    for (callers, per) in [(1usize, 3000usize), (8, 1500), (64, 400)] {
        let rate = creates(&api, callers, per);
        println!(
            "{callers:>3} caller(s): {rate:>9.0} creates/s ({} tasks)",
            callers * per
        );
        record("store", &format!("creates_{callers}"), rate, "tasks/s");
    }
    let start = Instant::now();
    let n = 50_000;
    api.create_tasks((0..n).map(task).collect()).unwrap();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("batch of {n}: {rate:>9.0} creates/s");
    record("store", "batch_50000", rate, "tasks/s");
    drop(api);
}

fn bench_assign(dir: &tempfile::TempDir, quick: bool) {
    println!("\n## assignment latency (AssignTask, balancer's choice, 1k agents x 4 slots)");
    let mut api = open(dir, "assign.db");
    register_agents(&api, 1000);
    let targets: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 1_000_000]
    };
    for &total in targets {
        let took = fill(&api, total);
        // The fill is setup, not workload: close the store so that SQLite checkpoints the
        // write-ahead log the fill produced (otherwise the background checkpointer is still
        // copying it while we measure), reopen, and warm up with a few unmeasured assignments.
        drop(api);
        api = open(dir, "assign.db");
        let _ = assignments(&api, 50);
        let (p50, p99, max) = assignments(&api, 1000);
        println!(
            "{total:>9} stored tasks: p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} µs  (filled in {:.1}s)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            max.as_secs_f64() * 1e6,
            took.as_secs_f64()
        );
        record(
            "store",
            &format!("assign_{total}.p50"),
            support::us(p50),
            "µs",
        );
        record(
            "store",
            &format!("assign_{total}.p99"),
            support::us(p99),
            "µs",
        );
    }
}
