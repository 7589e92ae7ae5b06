//! A dashboard served over a fresh data directory, and a tiny HTTP/1.1 client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use maos_application::{MaosApi, Service, ServiceConfig};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use maos_web::{Dashboard, DashboardConfig, Secret};

/// The token of every test dashboard.
pub(crate) const TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Its CSRF token.
pub(crate) const CSRF: &str = "fedcba9876543210fedcba9876543210";

/// A dashboard served on 127.0.0.1 over a new database; stops when dropped.
pub(crate) struct Served {
    pub(crate) api: Arc<Service<SqliteStore>>,
    pub(crate) port: u16,
    /// Where attempt logs live (`<dir>/<task id>/<attempt>.log`, as the daemon writes them).
    pub(crate) logs: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dashboard: Dashboard,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers (names lowercase) and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Served {
    pub(crate) fn new() -> Served {
        Served::with_config(ServiceConfig::default())
    }

    pub(crate) fn with_config(config: ServiceConfig) -> Served {
        Served::with_service(config, |s| s)
    }

    /// A dashboard whose service reads plan files (a person's version of a plan, planners').
    pub(crate) fn with_plans() -> Served {
        Served::with_service(ServiceConfig::default(), |s| {
            s.with_plans(Arc::new(maos_plans::PlanFiles))
        })
    }

    /// A dashboard over the service `adapt` makes of a new one.
    pub(crate) fn with_service(
        config: ServiceConfig,
        adapt: impl FnOnce(Service<SqliteStore>) -> Service<SqliteStore>,
    ) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).expect("store"));
        let logs = dir.path().join("logs");
        let api = Arc::new(adapt(
            Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds), config)
                .with_logs(Arc::new(maos_agents::FileLogs::new(&logs))),
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
                label: "test".to_owned(),
            },
        );
        let router = dashboard.router();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
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
        });
        Served {
            api,
            port,
            logs,
            stop: Some(tx),
            thread: Some(thread),
            dashboard,
            _dir: dir,
        }
    }

    /// Sends `request` (the head, without the Host line, and the body) and reads the answer.
    pub(crate) fn raw(&self, head: &str, body: &str) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let text = format!(
            "{head}\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(text.as_bytes()).expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read");
        parse(&out)
    }

    /// GET with the token's cookie.
    pub(crate) fn get(&self, path: &str) -> Answer {
        self.raw(
            &format!("GET {path} HTTP/1.1\r\nCookie: maos_{}={TOKEN}", self.port),
            "",
        )
    }

    /// POST of a form from the dashboard's own page: the cookie, the Origin and the CSRF field.
    pub(crate) fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut fields: Vec<(&str, &str)> = vec![("csrf", CSRF)];
        fields.extend_from_slice(form);
        let body = serde_urlencoded::to_string(&fields).expect("form");
        self.raw(
            &format!(
                "POST {path} HTTP/1.1\r\nCookie: maos_{port}={TOKEN}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded",
                port = self.port
            ),
            &body,
        )
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

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers_say_chunked(head) {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn headers_say_chunked(head: &str) -> bool {
    head.to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Work done through the API, as the daemon's scheduler and agents would do it.
impl Served {
    /// Registers a simulated agent with 4 slots and no capability.
    pub(crate) fn agent(&self, name: &str) {
        self.api
            .register_agent(maos_application::RegisterAgent {
                name: maos_domain::AgentName::parse(name).expect("name"),
                adapter: maos_domain::AdapterKind::Sim,
                capabilities: maos_domain::CapabilitySet::empty(),
                tier: maos_domain::Tier::Tactical,
                slots: maos_domain::Slots::new(4).expect("slots"),
                command: None,
                settings: maos_domain::AgentSettings::default(),
            })
            .expect("register");
    }

    /// Creates a task titled `title` of `risk`.
    pub(crate) fn task(&self, title: &str, risk: maos_domain::Risk) -> maos_domain::Task {
        let cmd = maos_application::CreateTask {
            risk,
            prompt: format!("Do {title}"),
            ..maos_application::CreateTask::titled(maos_domain::Title::parse(title).expect("title"))
        };
        self.api.create_task(cmd).expect("create").task
    }

    /// Assigns the task to `agent` and starts the attempt.
    pub(crate) fn run(&self, task: maos_domain::TaskId, agent: &str) -> maos_application::Assignment {
        let a = self
            .api
            .assign_task(maos_application::AssignTask {
                task: task.into(),
                agent: Some(maos_domain::AgentName::parse(agent).expect("name")),
            })
            .expect("assign");
        self.api
            .start_attempt(task, a.fencing, Default::default())
            .expect("start");
        a
    }

    /// Runs the task on `agent` and completes the attempt.
    pub(crate) fn finish(&self, task: maos_domain::TaskId, agent: &str) -> maos_domain::Task {
        let a = self.run(task, agent);
        self.api
            .complete_attempt(task, a.fencing, Some("done".into()), Default::default())
            .expect("complete")
    }

    /// The task as stored now.
    pub(crate) fn get_task(&self, task: maos_domain::TaskId) -> maos_domain::Task {
        self.api.get_task(&task.into()).expect("task")
    }
}
