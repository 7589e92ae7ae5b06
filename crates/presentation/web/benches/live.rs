//! The live path, measured on this machine (`cargo bench -p maos-web --bench live`):
//!
//! - latency: a dashboard served on 127.0.0.1 over a real SQLite store, an SSE client reading
//!   `/live` over a socket; a task is created through the API and the time until its event's
//!   `id:` line reaches the client is taken, 200 times after quiet spells and 200 times with
//!   changes 10-30 ms apart (p50/p95/p99; the aim is 250 ms at most);
//! - fan-out: 100 SSE clients (in a child process, so that their reading is not counted) while a
//!   writer commits 100 events a second for 10 s; the dashboard process's CPU time (utime +
//!   stime from `/proc/self/stat`) minus that of the same run without clients, as a share of one
//!   core (the aim is a few percent).
//!
//! A plain `main` (no harness): `--clients PORT N SECONDS` is the child's role.

#[path = "../../../../benches/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use maos_application::{CreateTask, MaosApi, Service, ServiceConfig};
use maos_domain::Title;
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use maos_web::{Dashboard, DashboardConfig, Secret};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const CSRF: &str = "fedcba9876543210fedcba9876543210";

const SAMPLES: usize = 200;
const CLIENTS: usize = 100;
const EVENTS_PER_SECOND: u64 = 100;
const SECONDS: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--clients") {
        let get = |k: usize| args.get(i + k).and_then(|v| v.parse::<u64>().ok());
        let (Some(port), Some(n), Some(secs)) = (get(1), get(2), get(3)) else {
            eprintln!("usage: live --clients PORT N SECONDS");
            std::process::exit(2);
        };
        clients(
            u16::try_from(port).unwrap_or(0),
            usize::try_from(n).unwrap_or(0),
            secs,
        );
        return;
    }
    println!("machine: {}", support::machine());
    latency();
    fan_out();
}

/// A dashboard served over a fresh database, on its own thread with a current-thread runtime
/// (as the daemon serves it).
struct Served {
    api: Arc<Service<SqliteStore>>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dashboard: Dashboard,
    _dir: tempfile::TempDir,
}

impl Served {
    fn new() -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).expect("store"));
        let api = Arc::new(Service::new(
            store,
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            ServiceConfig::default(),
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let dashboard = Dashboard::new(
            Arc::clone(&api) as Arc<dyn MaosApi>,
            DashboardConfig {
                token: Secret::parse(TOKEN).expect("token"),
                csrf: Secret::parse(CSRF).expect("csrf"),
                port,
                loopback: true,
                label: "bench".to_owned(),
            },
        );
        let router = dashboard.router();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    maos_web::serve(listener, router, async move {
                        let _ = rx.await;
                    })
                    .await
                    .expect("serve");
                });
            })
            .expect("thread");
        Served {
            api,
            port,
            stop: Some(tx),
            thread: Some(thread),
            dashboard,
            _dir: dir,
        }
    }

    fn create(&self, title: &str) {
        self.api
            .create_task(CreateTask::titled(Title::parse(title).expect("title")))
            .expect("create");
    }

    fn head(&self) -> u64 {
        self.api.status().expect("status").last_event
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.dashboard.stop();
    }
}

/// Opens `/live` (after `after`) and returns a reader past the response's head.
fn open_live(port: u16, after: u64) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    write!(
        stream,
        "GET /live?after={after} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: maos_{port}={TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("write");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read head");
        assert!(n > 0, "the stream closed before its head ended");
        if line == "\r\n" {
            break;
        }
        if line.starts_with("HTTP/1.1") {
            assert!(line.contains(" 200 "), "{line}");
        }
    }
    reader
}

/// Reads the stream until an `id:` of at least `until`; returns the last id seen.
fn read_until(reader: &mut BufReader<TcpStream>, until: u64) -> u64 {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read");
        assert!(n > 0, "the stream ended");
        // Chunked encoding interleaves size lines; the SSE lines themselves are whole.
        if let Some(id) = line.trim().strip_prefix("id:") {
            let id: u64 = id.trim().parse().expect("numeric id");
            if id >= until {
                return id;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[rank.min(sorted.len() - 1)]
}

/// The time from creating a task to its event's `id:` line on an open `/live`, `SAMPLES`
/// times, with `gap(i)` between changes.
fn latency_with(
    s: &Served,
    reader: &mut BufReader<TcpStream>,
    gap: impl Fn(u64) -> u64,
) -> Vec<Duration> {
    let mut took = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        std::thread::sleep(Duration::from_millis(gap(i as u64)));
        let before = s.head();
        let t0 = Instant::now();
        s.create(&format!("sample {i}"));
        read_until(reader, before + 1);
        took.push(t0.elapsed());
        // The task's second event (ready) too, so the next sample starts clean.
        read_until(reader, s.head());
    }
    took.sort();
    took
}

fn print_latency(what: &str, key: &str, took: &[Duration]) {
    let ms = support::ms;
    support::record(
        "live",
        &format!("{key}.p50"),
        ms(percentile(took, 50)),
        "ms",
    );
    support::record(
        "live",
        &format!("{key}.p99"),
        ms(percentile(took, 99)),
        "ms",
    );
    println!(
        "latency, {what} ({SAMPLES} samples): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms (aim: ≤ 250 ms)",
        ms(percentile(took, 50)),
        ms(percentile(took, 95)),
        ms(percentile(took, 99)),
        ms(took[took.len() - 1]),
    );
}

fn latency() {
    let s = Served::new();
    s.create("warm up");
    let mut reader = open_live(s.port, 0);
    read_until(&mut reader, s.head());
    // A change after a quiet spell (longer than the hub's pace): it goes out at once.
    let quiet = latency_with(&s, &mut reader, |i| 120 + (i * 7) % 40);
    print_latency("a change after a quiet spell", "latency_quiet", &quiet);
    // Changes 10 to 30 ms apart: a page gets at most one write per pace, so a change waits
    // for the next.
    let busy = latency_with(&s, &mut reader, |i| 10 + (i * 7) % 20);
    print_latency("changes 10-30 ms apart", "latency_busy", &busy);
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name may hold spaces: the fields that follow start after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = clock_ticks();
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / hz)
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|hz| *hz > 0)
        .unwrap_or(100)
}

/// Commits `EVENTS_PER_SECOND` events a second (a task is two events) for `SECONDS`; returns
/// this process's CPU time over that stretch and the events written.
fn write_for(s: &Served) -> (Duration, u64) {
    let tasks_per_second = EVENTS_PER_SECOND / 2;
    let interval = Duration::from_micros(1_000_000 / tasks_per_second);
    let first = s.head();
    let cpu0 = cpu_time();
    let start = Instant::now();
    let mut next = start;
    for i in 0..tasks_per_second * SECONDS {
        s.create(&format!("load {i}"));
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    // Let the last events reach every page.
    std::thread::sleep(Duration::from_millis(300));
    (cpu_time() - cpu0, s.head() - first)
}

fn fan_out() {
    // Baseline: the dashboard follows the log, with nobody watching.
    let base = Served::new();
    base.create("warm up");
    std::thread::sleep(Duration::from_millis(200));
    let (idle_cpu, idle_events) = write_for(&base);
    drop(base);

    let s = Served::new();
    s.create("warm up");
    let exe = std::env::current_exe().expect("this program");
    let mut child = Command::new(exe)
        .args([
            "--clients",
            &s.port.to_string(),
            &CLIENTS.to_string(),
            &(SECONDS + 3).to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the clients' process");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line)
        .expect("the clients say they are connected");
    assert!(line.starts_with("connected"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    let (busy_cpu, events) = write_for(&s);
    line.clear();
    out.read_line(&mut line).expect("the clients' count");
    let _ = child.wait();
    let got: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let min = got.first().copied().unwrap_or(0);

    let secs = Duration::from_secs(SECONDS).as_secs_f64();
    let share = |d: Duration| d.as_secs_f64() / secs * 100.0;
    let extra = busy_cpu.saturating_sub(idle_cpu);
    println!(
        "fan-out: {CLIENTS} SSE clients, {events} events in {SECONDS} s ({} per second); \
         every client got at least {min} of them",
        events / SECONDS
    );
    println!(
        "  process CPU: {:.1}% of one core with the clients, {:.1}% without ({idle_events} events: \
         the writer and the follower); the clients cost the dashboard {:.1}% of one core \
         (aim: a few percent)",
        share(busy_cpu),
        share(idle_cpu),
        share(extra),
    );
    support::record("live", "fan_out_cpu", share(extra), "% of a core");
}

/// The child's role: `n` clients on `/live`, each reading until `secs` pass; prints
/// `connected` once all are, then the fewest events any of them got.
fn clients(port: u16, n: usize, secs: u64) {
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut readers = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..n {
        readers.push(open_live(port, 0));
    }
    println!("connected");
    let _ = std::io::stdout().flush();
    for (i, mut reader) in readers.into_iter().enumerate() {
        let counts = Arc::clone(&counts);
        threads.push(std::thread::spawn(move || {
            let _ = reader
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)));
            let mut line = String::new();
            while Instant::now() < deadline {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if line.starts_with("id:") {
                            counts[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {} // a timeout: look at the clock again
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    let min = counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    println!("{min}");
}
