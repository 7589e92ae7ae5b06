//! Benchmark of the agent runtime, in process over a real SQLite store: create → agent start
//! latency with `sim` agents, the runtime's memory per task with 100,000 tasks in flight, and
//! what MAOS adds to starting a real process. Run it with
//! `cargo bench -p maos-agents --bench runtime` (`MAOS_BENCH_QUICK=1` for 10,000 tasks in
//! flight; `MAOS_BENCH_ONLY=latency,inflight,process` for some parts; `MAOS_BENCH_DIR` for the
//! directory of the database). It prints the machine it ran on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../../../benches/support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use maos_agents::{Supervisor, SupervisorConfig};
use maos_application::{
    CreateTask, Heartbeat, MaosApi, Page, ReadStore, RegisterAgent, Service, ServiceConfig,
    TaskFilter,
};
use maos_domain::{
    AdapterKind, AgentName, AgentSettings, CapabilitySet, DurationMs, Slots, TaskId, TaskState,
    Tier, Title,
};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use support::{machine, percentile};

/// Counts the bytes the Rust heap holds (SQLite's own allocations go to the C allocator and are
/// not counted: its page cache is bounded by `cache_size`, whatever the number of tasks).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

type Api = Service<SqliteStore>;

struct Rig {
    api: Api,
    supervisor: Supervisor,
    started: mpsc::Receiver<(TaskId, Instant)>,
}

fn rig(dir: &std::path::Path, name: &str, lease: Duration) -> Rig {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let store = SqliteStore::open(&data.join("maos.db")).expect("open store");
    let mut config = SupervisorConfig::new(&data);
    config.heartbeat_every = lease / 3;
    let supervisor = Supervisor::new(config);
    let (tx, started) = mpsc::channel();
    let tx = Mutex::new(tx);
    supervisor.observe_starts(Box::new(move |task, _| {
        let now = Instant::now();
        let _ = tx.lock().unwrap().send((task, now));
    }));
    let api = Service::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig {
            lease: DurationMs::from_millis(u64::try_from(lease.as_millis()).unwrap()).unwrap(),
            ..ServiceConfig::default()
        },
    )
    .with_runtime(Arc::new(supervisor.clone()));
    supervisor.attach(Arc::new(api.clone()));
    Rig {
        api,
        supervisor,
        started,
    }
}

fn sim_agent(name: &str, slots: u32, delay: &str) -> RegisterAgent {
    RegisterAgent {
        name: AgentName::parse(name).unwrap(),
        adapter: AdapterKind::Sim,
        capabilities: CapabilitySet::parse(["sim"]).unwrap(),
        tier: Tier::Tactical,
        slots: Slots::new(slots).unwrap(),
        command: None,
        settings: AgentSettings {
            delay: Some(DurationMs::parse(delay).unwrap()),
            ..AgentSettings::default()
        },
    }
}

fn task(i: usize, cap: &str) -> CreateTask {
    let mut t = CreateTask::titled(Title::parse(&format!("task {i}")).unwrap());
    t.prompt = "benchmark task".into();
    t.capabilities = CapabilitySet::parse([cap]).unwrap();
    t
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what}: p50 {:.3} ms, p99 {:.3} ms ({} samples)",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.len()
    );
    // The figure's name: the words of `what`, joined by underscores.
    let key: String = what
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .to_ascii_lowercase();
    support::record(
        "runtime",
        &format!("{key}.p50"),
        support::ms(percentile(&lat, 0.5)),
        "ms",
    );
    support::record(
        "runtime",
        &format!("{key}.p99"),
        support::ms(percentile(&lat, 0.99)),
        "ms",
    );
}

/// Waits until the observer saw `id` start; earlier starts of other tasks are skipped.
fn wait_started(rig: &Rig, id: TaskId) -> Instant {
    loop {
        let (task, at) = rig
            .started
            .recv_timeout(Duration::from_secs(30))
            .expect("an agent start");
        if task == id {
            return at;
        }
    }
}

fn latency(dir: &std::path::Path) {
    println!("\n## create → agent start (sim agents, one create at a time)");
    let rig = rig(dir, "latency", Duration::from_secs(10));
    rig.api
        .register_agent(sim_agent("sim-1", 256, "10ms"))
        .unwrap();
    for (label, key, pause) in [
        (
            "alone (5 ms between creates: the previous attempt's writes are done)",
            "alone",
            true,
        ),
        (
            "back to back (the previous attempt's writes share the disk)",
            "back_to_back",
            false,
        ),
    ] {
        let mut lat = Vec::new();
        let mut create_only = Vec::new();
        for i in 0..1_100 {
            if pause {
                std::thread::sleep(Duration::from_millis(5));
            }
            let t0 = Instant::now();
            let created = rig.api.create_task(task(i, "sim")).unwrap();
            let committed = Instant::now();
            assert_eq!(created.task.state, TaskState::Running);
            let started = wait_started(&rig, created.task.id);
            if i >= 100 {
                lat.push(started - t0);
                create_only.push(committed - t0);
            }
        }
        println!("{label}:");
        report(&format!("  {key}: create → the sim agent starts"), lat);
        report(
            &format!("  {key}: of which the create call (its commit)"),
            create_only,
        );
        // Let the attempts finish before the next round.
        std::thread::sleep(Duration::from_millis(200));
    }
    rig.supervisor.shutdown();
}

fn in_flight(dir: &std::path::Path, total: usize, running_slots: u32) {
    let agents = running_slots.div_ceil(256);
    let per_agent = running_slots.div_ceil(agents);
    println!(
        "\n## {total} tasks in flight: {} running on {agents} sim agents of {per_agent} slots, the \
         rest ready",
        (running_slots as usize).min(total)
    );
    // The default lease: the supervisor beats for every running attempt each third of it
    // while the run goes on; renewals are kept in memory (ADR 0023).
    let rig = rig(
        dir,
        &format!("inflight-{running_slots}"),
        Duration::from_secs(10),
    );
    for a in 0..agents {
        rig.api
            .register_agent(sim_agent(&format!("sim-{a:04}"), per_agent, "1h"))
            .unwrap();
    }
    // Warm up the store's connections and caches before the baseline.
    let warm = rig
        .api
        .create_tasks((0..100).map(|i| task(i, "none")).collect())
        .unwrap();
    assert_eq!(warm.len(), 100);
    std::thread::sleep(Duration::from_millis(500));
    let heap0 = LIVE.load(Ordering::Relaxed);
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let mut made = 0;
    while made < total {
        let n = (total - made).min(10_000);
        rig.api
            .create_tasks((made..made + n).map(|i| task(i, "sim")).collect())
            .unwrap();
        made += n;
    }
    let expect = (running_slots as usize).min(total);
    let mut seen: HashMap<TaskId, ()> = HashMap::with_capacity(expect);
    while seen.len() < expect {
        let (id, _) = rig
            .started
            .recv_timeout(Duration::from_secs(120))
            .expect("agents starting");
        seen.insert(id, ());
    }
    let took = t0.elapsed();
    drop(seen);
    // The observer's channel held one entry per start: drained above, so not counted. The
    // supervisor's heartbeat holds the beats of every attempt for as long as it takes (a
    // fraction of a second at 100,000): the least of samples over one heartbeat period is what
    // the daemon keeps.
    let heap1 = (0..12)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(300));
            LIVE.load(Ordering::Relaxed)
        })
        .min()
        .unwrap_or(0);
    let rss1 = rss_kib();
    let status = rig.api.status().unwrap();
    println!(
        "created {total} tasks and started {expect} agents in {:.1} s; running now: {}; ready: {}",
        took.as_secs_f64(),
        rig.supervisor.running(),
        status.tasks.get(&TaskState::Ready).copied().unwrap_or(0)
    );
    println!(
        "Rust heap: {:+.1} MiB, {:.0} B per task in flight ({:.0} B per running attempt); \
         process RSS: {:+.1} MiB (SQLite's page cache included), {:.0} B per task",
        (heap1 - heap0) as f64 / (1 << 20) as f64,
        (heap1 - heap0) as f64 / total as f64,
        (heap1 - heap0) as f64 / expect.max(1) as f64,
        (rss1 as f64 - rss0 as f64) / 1024.0,
        (rss1 as f64 - rss0 as f64) * 1024.0 / total as f64,
    );
    heartbeats(&rig);
    rig.supervisor.shutdown();
}

/// One heartbeat of every running attempt, as the supervisor sends each third of the lease:
/// how long it takes, and that it commits nothing.
fn heartbeats(rig: &Rig) {
    let mut beats = Vec::new();
    let mut page = Page {
        limit: Page::MAX_LIMIT,
        cursor: None,
    };
    let running = TaskFilter {
        statuses: vec![TaskState::Running],
        ..TaskFilter::default()
    };
    loop {
        let found = rig.api.list_tasks(&running, &page).unwrap();
        beats.extend(found.tasks.iter().map(|t| Heartbeat {
            task: t.id,
            fencing: t.fencing,
        }));
        match found.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    // The log's last sequence number (a wait that times out at once).
    let last = |api: &Api| {
        api.store()
            .wait_for_events(u64::MAX, Duration::ZERO)
            .unwrap()
    };
    let events0 = last(&rig.api);
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let refused = rig.api.heartbeat(&beats).unwrap();
        took.push(t.elapsed());
        assert!(refused.is_empty(), "{} beats refused", refused.len());
    }
    took.sort();
    let median = took[took.len() / 2];
    println!(
        "one heartbeat of all {} running attempts: {:.1} ms ({:.2} µs per attempt); events \
         written by 5 of them: {}",
        beats.len(),
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / beats.len().max(1) as f64,
        last(&rig.api) - events0,
    );
    support::record(
        "runtime",
        &format!("heartbeat_of_{}_attempts", beats.len()),
        support::ms(median),
        "ms",
    );
}

fn process(dir: &std::path::Path) {
    println!("\n## starting a real process (`true`)");
    let mut raw = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let status = std::process::Command::new("true").status().unwrap();
        assert!(status.success());
        raw.push(t.elapsed());
    }
    report("spawn and wait for `true` directly (fork, exec, exit)", raw);
    let rig = rig(dir, "process", Duration::from_secs(10));
    rig.api
        .register_agent(RegisterAgent {
            name: AgentName::parse("true").unwrap(),
            adapter: AdapterKind::Command,
            capabilities: CapabilitySet::parse(["proc"]).unwrap(),
            tier: Tier::Tactical,
            slots: Slots::new(1).unwrap(),
            command: Some("true".into()),
            settings: AgentSettings::default(),
        })
        .unwrap();
    let mut to_start = Vec::new();
    let mut to_end = Vec::new();
    let follower_api = rig.api.clone();
    for i in 0..300 {
        let t0 = Instant::now();
        let created = rig.api.create_task(task(i, "proc")).unwrap();
        let started = wait_started(&rig, created.task.id);
        to_start.push(started - t0);
        loop {
            let t = follower_api.get_task(&created.task.id.into()).unwrap();
            if t.state == TaskState::Completed {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        to_end.push(t0.elapsed());
    }
    report("MAOS: create → the process runs", to_start);
    report(
        "MAOS: create → attempt completed (create, start, completion: three durable commits)",
        to_end,
    );
    rig.supervisor.shutdown();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = std::env::var_os("MAOS_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!("# maos-agents runtime benchmark");
    println!("machine: {}", machine());
    println!("database directory: {}", dir.path().display());
    let quick = std::env::var_os("MAOS_BENCH_QUICK").is_some();
    let only = std::env::var("MAOS_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    // Processes first: forking costs more as the benchmark's own memory grows.
    if runs("process") {
        process(dir.path());
    }
    if runs("latency") {
        latency(dir.path());
    }
    if runs("inflight") {
        let total = if quick { 10_000 } else { 100_000 };
        in_flight(dir.path(), total, 1_024);
        in_flight(dir.path(), total, u32::try_from(total).unwrap());
    }
}
