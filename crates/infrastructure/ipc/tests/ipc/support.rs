//! The test daemon: the real service over a real SQLite file, served by the real IPC server on a
//! Unix socket in a temporary directory, on a thread of its own (a current-thread runtime with a
//! `LocalSet`, as the daemon runs it); and raw Cap'n Proto connections for tests that need to
//! speak the protocol by hand.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp_rpc::twoparty::VatNetwork;
use capnp_rpc::{RpcSystem, rpc_twoparty_capnp::Side};
use maos_application::{
    AgentError, CreateTask, ErrorInfo, ErrorKind, IdSource, MaosApi, OrchestrationError,
    PlanReader, QueryError, RegisterAgent, RemoteError, Service, ServiceConfig, TaskError,
};
use maos_domain::{AdapterKind, AgentName, CapabilitySet, Slots, Tier, Timestamp, Title};
use maos_ipc::maos_capnp::bootstrap;
use maos_ipc::{DaemonControl, DaemonInfo, IpcClient, Server};
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// The service as the tests use it.
pub(crate) type Svc = Service<SqliteStore>;

/// What the test daemon says about itself, and its stop switch.
struct Control {
    info: DaemonInfo,
    stop: watch::Sender<bool>,
}

impl DaemonControl for Control {
    fn info(&self) -> DaemonInfo {
        self.info.clone()
    }

    fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// Random ids that all begin with the same 4 characters, [`SharedPrefixIds::PREFIX`]: any two
/// share a prefix long enough to be accepted, so that ambiguity can be tested.
#[derive(Debug)]
pub(crate) struct SharedPrefixIds;

impl SharedPrefixIds {
    /// The prefix every id begins with.
    pub(crate) const PREFIX: &'static str = "2g95";
}

impl IdSource for SharedPrefixIds {
    fn next_bits(&self) -> u128 {
        // 4 characters are the top 20 of the 125 bits.
        let rest = RandomIds.next_bits() & ((1u128 << 105) - 1);
        (0x1_4125u128 << 105) | rest
    }
}

/// A daemon serving a fresh database on a socket in a temporary directory.
pub(crate) struct TestDaemon {
    pub(crate) socket: PathBuf,
    /// The same service the server calls, for comparing answers.
    pub(crate) service: Arc<Svc>,
    pub(crate) info: DaemonInfo,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl TestDaemon {
    pub(crate) fn start() -> TestDaemon {
        TestDaemon::start_with(|server| server)
    }

    /// A daemon whose service draws its ids from `ids`.
    pub(crate) fn start_with_ids(ids: Arc<dyn IdSource>) -> TestDaemon {
        TestDaemon::build(|server| server, ids)
    }

    /// A daemon whose server is adjusted by `configure` before it serves.
    pub(crate) fn start_with(configure: impl FnOnce(Server) -> Server) -> TestDaemon {
        TestDaemon::build(configure, Arc::new(RandomIds))
    }

    /// A daemon whose service reads plans with `reader` (without one, the planning calls that
    /// read a plan are refused).
    pub(crate) fn start_with_plans(reader: Arc<dyn PlanReader>) -> TestDaemon {
        TestDaemon::build_with(|server| server, Arc::new(RandomIds), Some(reader))
    }

    fn build(configure: impl FnOnce(Server) -> Server, ids: Arc<dyn IdSource>) -> TestDaemon {
        TestDaemon::build_with(configure, ids, None)
    }

    fn build_with(
        configure: impl FnOnce(Server) -> Server,
        ids: Arc<dyn IdSource>,
        plans: Option<Arc<dyn PlanReader>>,
    ) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("maos.db");
        let socket = dir.path().join("maos.sock");
        let store = SqliteStore::open(&db).unwrap();
        let service = Service::new(
            Arc::new(store),
            Arc::new(SystemClock),
            ids,
            ServiceConfig::default(),
        );
        let service = Arc::new(match plans {
            Some(reader) => service.with_plans(reader),
            None => service,
        });
        let info = DaemonInfo {
            pid: std::process::id(),
            version: "0.1.0-test".into(),
            protocol: maos_ipc::PROTOCOL_VERSION,
            socket: socket.clone(),
            database: db,
            started_at: Timestamp::from_millis(1_795_239_198_123),
            uptime: Duration::from_millis(1234),
            containment: "process_tree".into(),
            containment_root: None,
            ui: None,
        };
        let (stop, mut stopped) = watch::channel(false);
        let control = Arc::new(Control {
            info: info.clone(),
            stop: stop.clone(),
        });
        let api: Arc<dyn MaosApi> = service.clone();
        let server = configure(Server::new(api, control).unwrap().with_hints(test_hints));
        // Bound here, so that the socket exists once `start` returns.
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                server.serve(listener, shutdown).await;
            });
        });
        TestDaemon {
            socket,
            service,
            info,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// A client connected to this daemon.
    pub(crate) fn client(&self) -> IpcClient {
        IpcClient::connect(&self.socket, "maos-ipc tests").unwrap()
    }

    /// Waits (a few seconds at most) until the server has returned from `serve`.
    pub(crate) fn wait_stopped(&mut self) -> bool {
        let thread = self.thread.as_ref().unwrap();
        for _ in 0..500 {
            if thread.is_finished() {
                self.thread.take().unwrap().join().unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `session` with the bootstrap capability of a raw connection to `socket`, on a runtime of
/// its own; the connection is dropped when `session` returns.
pub(crate) fn raw_session<T, F, Fut>(socket: &Path, session: F) -> T
where
    F: FnOnce(bootstrap::Client) -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        let (read, write) = stream.into_split();
        let network = VatNetwork::new(
            read.compat(),
            write.compat_write(),
            Side::Client,
            ReaderOptions::new(),
        );
        let mut rpc = RpcSystem::new(Box::new(network), None);
        let bootstrap: bootstrap::Client = rpc.bootstrap(Side::Server);
        tokio::task::spawn_local(rpc);
        session(bootstrap).await
    })
}

pub(crate) fn name(raw: &str) -> AgentName {
    AgentName::parse(raw).unwrap()
}

pub(crate) fn caps(raw: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(raw).unwrap()
}

pub(crate) fn register(raw_name: &str, capabilities: &[&str], slots: u32) -> RegisterAgent {
    RegisterAgent {
        name: name(raw_name),
        adapter: AdapterKind::Command,
        capabilities: caps(capabilities),
        tier: Tier::Tactical,
        slots: Slots::new(slots).unwrap(),
        command: Some(format!("./{raw_name}.sh")),
        settings: maos_domain::AgentSettings::default(),
    }
}

pub(crate) fn task(title: &str) -> CreateTask {
    CreateTask::titled(Title::parse(title).unwrap())
}

/// A task as the wire carries it: attempts' briefings travel by `taskBriefing`, not with the
/// task; a briefed attempt has an empty stand-in.
pub(crate) fn as_sent(t: maos_domain::Task) -> maos_domain::Task {
    let mut data = t.data().clone();
    for a in &mut data.attempts {
        if a.briefing.is_some() {
            a.briefing = Some(maos_domain::briefing::Briefing {
                text: String::new(),
                tokens: 0,
                cut: Vec::new(),
            });
        }
    }
    maos_domain::Task::restore(data)
}

/// A page of tasks as the wire carries it.
pub(crate) fn page_as_sent(mut p: maos_application::TaskPage) -> maos_application::TaskPage {
    p.tasks = p.tasks.into_iter().map(as_sent).collect();
    p
}

/// Approval requests as the wire carries them.
pub(crate) fn requests_as_sent(
    requests: Vec<maos_application::ApprovalRequest>,
) -> Vec<maos_application::ApprovalRequest> {
    requests
        .into_iter()
        .map(|r| maos_application::ApprovalRequest {
            task: as_sent(r.task),
            changes: r.changes,
        })
        .collect()
}

/// The tasks of approval requests.
pub(crate) fn tasks_of(requests: Vec<maos_application::ApprovalRequest>) -> Vec<maos_domain::Task> {
    requests.into_iter().map(|r| r.task).collect()
}

/// The hints the test daemon gives errors: the message echoed, so a test sees a hint cross the
/// wire (the CLI's own hints are tested with the CLI).
pub(crate) fn test_hints(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    Some(format!("hint for: {e}"))
}

/// The hint that came over the wire with `e`, when `e` came over the wire (else none).
pub(crate) fn remote_hint(e: &(dyn std::error::Error + 'static)) -> Option<Option<String>> {
    let remote = if let Some(AgentError::Remote(r)) = e.downcast_ref::<AgentError>() {
        r
    } else if let Some(TaskError::Remote(r)) = e.downcast_ref::<TaskError>() {
        r
    } else if let Some(QueryError::Remote(r)) = e.downcast_ref::<QueryError>() {
        r
    } else if let Some(OrchestrationError::Remote(r)) = e.downcast_ref::<OrchestrationError>() {
        r
    } else if let Some(maos_application::MemoryError::Remote(r)) =
        e.downcast_ref::<maos_application::MemoryError>()
    {
        r
    } else {
        e.downcast_ref::<RemoteError>()?
    };
    Some(remote.hint.clone())
}

/// The kind, message and hint of an error, for comparing a remote error with a local one: a
/// local error gets the hint the test daemon gives it.
pub(crate) fn report<E: ErrorInfo + 'static>(e: &E) -> (ErrorKind, String, Option<String>) {
    let hint = remote_hint(e).unwrap_or_else(|| test_hints(e));
    (e.kind(), e.to_string(), hint)
}
