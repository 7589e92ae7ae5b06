//! How long the orchestration page of a 10,000-task orchestration takes, end to end: an HTTP GET
//! on a served dashboard over a real SQLite store (its queries, the graph's layout, the SVG, the
//! markup, the response), as a browser would ask for it.
//!
//! The orchestration: 10,000 tasks in 100 layers of 100, each task after one or two of the layer
//! before; the first 1,000 tasks have run (an attempt each, on one of four agents) and
//! completed, so the timeline has 1,000 bars (`MAOS_BENCH_RAN` sets another number). Run with
//! `cargo bench -p maos-web --bench render`; it prints the machine, what the page's two queries
//! take alone, then the median and 95th percentile of 20 GETs (after 2 to warm up).

#[path = "../../../../benches/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maos_application::{
    AssignTask, CreateOrchestration, CreatePlan, CreateTask, IdRef, MaosApi, PlanTask,
    RegisterAgent, Service, ServiceConfig,
};
use maos_domain::{
    AdapterKind, AgentName, AttemptStart, CapabilitySet, RunReport, Slots, Tier, Title,
};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use maos_web::{Dashboard, DashboardConfig, Secret};

const TASKS: usize = 10_000;
const WIDTH: usize = 100;
const RAN: usize = 1_000;

/// `name` from the environment (for profiling a smaller setup), else `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
const RUNS: usize = 20;
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn main() {
    println!("machine: {}", support::machine());
    let ran = env_or("MAOS_BENCH_RAN", RAN);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).expect("store"));
    let api = Arc::new(Service::new(
        store,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        ServiceConfig::default(),
    ));

    let t = Instant::now();
    let tasks: Vec<PlanTask> = (0..TASKS)
        .map(|i| {
            let mut deps = Vec::new();
            if i >= WIDTH {
                deps.push(format!("t{}", i - WIDTH));
                if i % 3 == 0 && i % WIDTH + 1 < WIDTH {
                    deps.push(format!("t{}", i - WIDTH + 1));
                }
            }
            PlanTask {
                key: format!("t{i}"),
                task: CreateTask::titled(
                    Title::parse(&format!("Task {i} of the big plan")).expect("title"),
                ),
                depends_on: deps,
            }
        })
        .collect();
    let made = api
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("Ten thousand tasks").expect("name"),
                goal: Some("Measure the orchestration page".to_owned()),
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks,
            start: true,
        })
        .expect("plan");
    let id = made.orchestration.id;
    println!("created {TASKS} tasks in {:?}", t.elapsed());

    let t = Instant::now();
    for k in 0..4 {
        api.register_agent(RegisterAgent {
            name: AgentName::parse(&format!("agent-{k}")).expect("name"),
            adapter: AdapterKind::Command,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::new(4).expect("slots"),
            command: Some("./agent.sh".to_owned()),
            settings: Default::default(),
        })
        .expect("agent");
    }
    // Tasks are listed by creation, then id: run the first RAN of the plan's order (by key).
    let by_key: std::collections::HashMap<String, maos_domain::TaskId> =
        made.tasks.iter().map(|(k, t)| (k.clone(), t.id)).collect();
    for i in 0..ran {
        let task = by_key[&format!("t{i}")];
        let a = api
            .assign_task(AssignTask {
                task: IdRef::from(task),
                agent: None,
            })
            .expect("assign");
        api.start_attempt(task, a.fencing, AttemptStart::default())
            .expect("start");
        api.complete_attempt(
            task,
            a.fencing,
            Some("done".to_owned()),
            RunReport::default(),
        )
        .expect("complete");
    }
    println!("ran {ran} attempts in {:?}", t.elapsed());
    support::record(
        "render",
        "attempts_in_orchestration",
        ran as f64 / t.elapsed().as_secs_f64(),
        "attempts/s",
    );

    // Where the time goes: the queries the page makes, alone.
    let oid = IdRef::from(id);
    let report = median_of(5, || {
        api.orchestration_report(&oid).expect("report");
    });
    let filter = maos_application::TaskFilter {
        orchestration: Some(id),
        ..Default::default()
    };
    let list = median_of(5, || {
        let page = maos_application::Page {
            limit: maos_application::Page::MAX_LIMIT,
            cursor: None,
        };
        api.list_tasks(&filter, &page).expect("tasks");
    });
    println!(
        "queries alone: orchestration_report {:.1} ms, list_tasks of all {:.1} ms (medians of 5)",
        ms(report),
        ms(list)
    );
    support::record("render", "orchestration_report.median", ms(report), "ms");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let dashboard = Dashboard::new(
        Arc::clone(&api) as Arc<dyn MaosApi>,
        DashboardConfig {
            token: Secret::parse(TOKEN).expect("token"),
            csrf: Secret::parse(&"f".repeat(32)).expect("csrf"),
            port,
            loopback: true,
            label: "bench".to_owned(),
        },
    );
    let router = dashboard.router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            maos_web::serve(listener, router, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
    });

    let path = format!("/orchestrations/{id}");
    let mut size = 0;
    for _ in 0..2 {
        size = get(port, &path).len();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let body = get(port, &path);
            let took = t.elapsed();
            assert!(body.contains("Ten thousand tasks"), "not the page");
            took
        })
        .collect();
    times.sort();
    let median = times[RUNS / 2];
    let p95 = times[(RUNS * 95).div_ceil(100) - 1];
    println!(
        "GET {path} ({TASKS} tasks, {ran} attempts; page {} KiB): median {:.1} ms, p95 {:.1} ms, min {:.1} ms, max {:.1} ms ({RUNS} runs)",
        size / 1024,
        ms(median),
        ms(p95),
        ms(times[0]),
        ms(times[RUNS - 1]),
    );
    support::record("render", "orchestration_page.median", ms(median), "ms");
    support::record("render", "orchestration_page.p95", ms(p95), "ms");
    let _ = stop.send(());
    let _ = server.join();
    dashboard.stop();
}

fn median_of(n: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

use support::ms;

/// The body of a GET with the token's cookie (HTTP/1.1, one request per connection).
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: maos_{port}={TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(400)]
    );
    text
}
