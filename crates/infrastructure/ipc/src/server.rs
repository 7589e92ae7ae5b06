//! The daemon's side: accepts connections on a Unix socket, refuses any user but the daemon's
//! own, and serves each connection's `Bootstrap` and `Api` capabilities over Cap'n Proto RPC.
//!
//! capnp-rpc is `!Send`, so [`Server::serve`] must run inside a [`tokio::task::LocalSet`]. The
//! application API behind it is synchronous (ADR 0003): every call runs on a pool of at most
//! [`MAX_RUNNING_CALLS`] threads, so the RPC thread only decodes, encodes and waits, and a slow
//! call never holds up another connection (ADR 0005). A connection's calls are read only while
//! fewer than [`MAX_CALLS_PER_CONNECTION`] of them are unanswered and its answers can be written
//! (`gate.rs`), and a connection must shake hands within [`HANDSHAKE_DEADLINE`].
//!
//! A subscription (`Api.subscribe`) is a task of its own on the same thread: it reads the log
//! through an `EventFollower` on the blocking pool and pushes batches into the client's
//! `EventSink` with capnp's streaming calls, whose flow control keeps at most a window of
//! batches in flight: a sink that stops acknowledging stops the task, and its memory stays
//! bounded.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp_rpc::twoparty::VatNetwork;
use capnp_rpc::{RpcSystem, rpc_twoparty_capnp::Side};
use maos_application::{
    AgentCredential, CreateOrchestration, CreateSubtasks, ErrorInfo, ErrorKind, EventFollower,
    Hints, IdRef, MaosApi, MemoryCursor, MemoryPage, MemorySearch, Refusal, RemoteError,
    StoredEvent, TaskError,
};
use maos_domain::{
    AgentName, AttemptStart, FencingToken, MAX_SUBTASKS, ProgressNote, TaskId, Title, ValueError,
};
use tokio::io::{BufReader, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tracing::{debug, error, info, warn};

use crate::convert::{
    Decoded, event_payload, len32, read_agent_filter, read_beat, read_gc_request, read_log_request,
    read_memory_filter, read_memory_query, read_new_agent, read_new_memory, read_new_orchestration,
    read_new_plan, read_new_task, read_opt_text, read_plan_goal, read_plan_tasks, read_run_report,
    read_task_filter, read_task_workspace, read_text, write_agent, write_agent_scope,
    write_approval_request, write_assignment, write_beat, write_briefing, write_created,
    write_daemon_info, write_event, write_event_with_payload, write_gc_entry, write_log_chunk,
    write_memory, write_memory_hits, write_memory_page, write_merge_report, write_metrics,
    write_orchestration, write_orchestration_report, write_plan_created, write_plan_history,
    write_planning_started, write_status, write_task, write_task_page, write_waiting,
};
use crate::daemon::DaemonControl;
use crate::error::{bad_request, write_remote_error, write_wire_error};
use crate::gate::{Gate, Gated, Watched};
use crate::maos_capnp::{self as wire, api, bootstrap, event_sink, subscription};
use crate::peer::{check_peer, current_uid};

/// How long a connection may take to close cleanly once the server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long to wait before accepting again after `accept` failed (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a subscription's wait for new events lasts before it looks again. Commits of this
/// daemon wake it at once; commits of another process on the same database (a `--no-daemon`
/// command) are seen at this granularity.
const STREAM_WAIT: Duration = Duration::from_millis(250);

/// The size a push aims at: a batch read from the log is split into pushes of about this many
/// bytes (one event at least), so that a message stays far below what a client reads by default
/// (64 MiB) and the flow-control window (64 KiB plus the largest message) stays small.
const PUSH_BYTES: usize = 1 << 20;

/// What an event takes in a push besides its payload (ids, kind, times), about.
const EVENT_BYTES: usize = 160;

/// How long the server waits for a sink to take `end` when it stops.
const END_GRACE: Duration = Duration::from_secs(1);

/// The most subscriptions served at once. Each one waits for new events on the blocking pool
/// (a thread each while it waits), beside the calls.
pub const MAX_SUBSCRIPTIONS: usize = 256;

/// The most calls running in the application at once, over all connections: they run on a pool
/// of the server's own with at most this many threads. Beyond it, calls wait for a thread (and
/// each connection's unanswered calls are bounded, by [`MAX_CALLS_PER_CONNECTION`]). The
/// writer's group commit gathers what these threads send it: at 32, durable creates from 64
/// clients fell by a quarter (docs/benchmarks.md).
pub const MAX_RUNNING_CALLS: usize = 64;

/// The size the daemon gives its runtime's blocking pool, where subscriptions wait for events
/// (one thread each while it waits), plus a few threads for the rest. Calls do not use it.
pub const BLOCKING_THREADS: usize = MAX_SUBSCRIPTIONS + 8;

/// How long a new connection has to complete the version handshake before it is closed.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// The IPC server: the application API and the daemon's controls, served to the daemon's own
/// user.
pub struct Server {
    api: Arc<dyn MaosApi>,
    daemon: Arc<dyn DaemonControl>,
    uid: u32,
    handshake_deadline: Duration,
    hints: Hints,
}

/// No hints: what a server says when its front end gave it none.
fn no_hints(_: &(dyn std::error::Error + 'static)) -> Option<String> {
    None
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("uid", &self.uid).finish()
    }
}

impl Server {
    /// A server of `api` for the daemon `daemon`, serving this process's effective uid.
    pub fn new(api: Arc<dyn MaosApi>, daemon: Arc<dyn DaemonControl>) -> std::io::Result<Server> {
        Ok(Server {
            api,
            daemon,
            uid: current_uid()?,
            handshake_deadline: HANDSHAKE_DEADLINE,
            hints: no_hints,
        })
    }

    /// Gives the application's errors the hints of the front end that composed the daemon
    /// (without: errors cross the wire with their kind and message only).
    pub fn with_hints(mut self, hints: Hints) -> Self {
        self.hints = hints;
        self
    }

    /// Closes a connection that has not completed the version handshake within `deadline`
    /// (instead of [`HANDSHAKE_DEADLINE`]).
    pub fn handshake_deadline(mut self, deadline: Duration) -> Self {
        self.handshake_deadline = deadline;
        self
    }

    /// The uid whose connections are served.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Serves `uid` instead of this process's effective uid: every other uid, this process's
    /// own included, is refused. (Tests use it to see a refusal without a second user.)
    pub fn serving_uid(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// Accepts and serves connections until `shutdown` completes; then stops accepting (the
    /// listener is dropped; removing the socket file is the caller's job), answers new calls
    /// with an `unavailable` error, waits for the calls in flight to finish, closes every
    /// connection and returns.
    ///
    /// Must run inside a [`tokio::task::LocalSet`] (it spawns `!Send` tasks with
    /// `spawn_local`). A connection that fails (garbage bytes, a malformed frame, a peer that
    /// vanishes) ends alone and is logged; it never stops the server.
    pub async fn serve(self, listener: UnixListener, shutdown: impl Future<Output = ()>) {
        let shared = Rc::new(Shared {
            api: self.api,
            daemon: self.daemon,
            uid: self.uid,
            hints: self.hints,
            closing: Cell::new(false),
            in_flight: Cell::new(0),
            idle: Notify::new(),
            subscriptions: Cell::new(0),
            stopping: watch::channel(false).0,
            calls: CallPool::new(),
            handshake_deadline: self.handshake_deadline,
        });
        let (close, closed) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let served = connection(Rc::clone(&shared), stream, closed.clone());
                        connections.spawn_local(served);
                    }
                    Err(e) => {
                        warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
            while let Some(ended) = connections.try_join_next() {
                log_join(ended);
            }
        }
        drop(listener);
        info!("the IPC server stops accepting connections");
        shared.closing.set(true);
        // Subscriptions end their sinks (kind `unavailable`) and count out like calls.
        shared.stopping.send_replace(true);
        loop {
            let idle = shared.idle.notified();
            let n = shared.in_flight.get();
            if n == 0 {
                break;
            }
            debug!(calls = n, "waiting for the calls in flight");
            idle.await;
        }
        let _ = close.send(true);
        while let Some(ended) = connections.join_next().await {
            log_join(ended);
        }
        info!("the IPC server has stopped");
    }
}

fn log_join(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        error!(error = %e, "a connection's task failed");
    }
}

/// What every connection of one server shares (all on the server's thread).
struct Shared {
    api: Arc<dyn MaosApi>,
    daemon: Arc<dyn DaemonControl>,
    uid: u32,
    /// The hints errors get before they cross the wire.
    hints: Hints,
    /// Set once the server stops: new calls are refused.
    closing: Cell<bool>,
    /// Calls running in the application now.
    in_flight: Cell<usize>,
    /// Notified when the last call in flight ends while closing.
    idle: Notify,
    /// Subscriptions streaming now (each also counts as a call in flight).
    subscriptions: Cell<usize>,
    /// Set to true once the server stops: subscriptions end.
    stopping: watch::Sender<bool>,
    /// Where calls run.
    calls: CallPool,
    /// How long a connection may take to shake hands.
    handshake_deadline: Duration,
}

impl Shared {
    /// Counts a call in, unless the server is closing.
    fn enter(self: &Rc<Self>) -> Result<CallGuard, RemoteError> {
        if self.closing.get() {
            return Err(shutting_down());
        }
        self.in_flight.set(self.in_flight.get() + 1);
        Ok(CallGuard(Rc::clone(self)))
    }
}

/// The threads calls run on: the blocking pool of a runtime of the server's own, which starts
/// at most [`MAX_RUNNING_CALLS`] threads (they end after 10 s idle) and queues what comes
/// beyond. Its runtime is never driven: only its blocking pool is used.
struct CallPool(Option<tokio::runtime::Runtime>);

impl CallPool {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(MAX_RUNNING_CALLS)
            .thread_name("maos-call")
            .build();
        match runtime {
            Ok(r) => CallPool(Some(r)),
            Err(e) => {
                // Building a runtime without I/O or timers only fails if no thread can be
                // made; calls then go to the current runtime's blocking pool.
                error!(error = %e, "cannot make the pool of call threads; using the runtime's");
                CallPool(None)
            }
        }
    }

    fn spawn<F, R>(&self, f: F) -> tokio::task::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match &self.0 {
            Some(r) => r.spawn_blocking(f),
            None => tokio::task::spawn_blocking(f),
        }
    }
}

impl Drop for CallPool {
    fn drop(&mut self) {
        // Dropped on the server's runtime, which must not block: the threads end on their own.
        if let Some(r) = self.0.take() {
            r.shutdown_background();
        }
    }
}

/// Counts a call out when dropped.
struct CallGuard(Rc<Shared>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let n = self.0.in_flight.get().saturating_sub(1);
        self.0.in_flight.set(n);
        if n == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

fn shutting_down() -> RemoteError {
    RemoteError::new(ErrorKind::Unavailable, "the MAOS daemon is shutting down")
        .with_hint("run the command again once the daemon has restarted")
}

/// The reason a subscription ends when the daemon stops.
fn stream_stopped() -> RemoteError {
    RemoteError::new(
        ErrorKind::Unavailable,
        "the MAOS daemon is stopping: the event stream ends here",
    )
    .with_hint("subscribe again, with `since` set to the last seq received, once it has restarted")
}

/// Serves one connection until it ends or the server closes it.
async fn connection(shared: Rc<Shared>, stream: UnixStream, mut closed: watch::Receiver<bool>) {
    let peer = match stream.peer_cred() {
        Ok(peer) => peer,
        Err(e) => {
            warn!(
                error = %e,
                "cannot read the credentials of a connecting process; closing the connection"
            );
            return;
        }
    };
    let pid = peer.pid();
    if let Err(refused) = check_peer(peer.uid(), shared.uid) {
        warn!(peer_pid = ?pid, "{refused}");
        return;
    }
    debug!(peer_pid = ?pid, "connection accepted");
    let (read, write) = stream.into_split();
    // The connection reads no more calls while too many are unanswered or its answers cannot
    // be written (gate.rs).
    let gate = Rc::new(Gate::default());
    let network = VatNetwork::new(
        Gated::new(BufReader::new(read), Rc::clone(&gate)).compat(),
        Watched::new(BufWriter::new(write), Rc::clone(&gate)).compat_write(),
        Side::Server,
        ReaderOptions::new(),
    );
    let shaken = Rc::new(Cell::new(false));
    let deadline = shared.handshake_deadline;
    let bootstrap: bootstrap::Client = capnp_rpc::new_client(BootstrapServer {
        shared,
        gate,
        shaken: Rc::clone(&shaken),
        peer_pid: pid,
    });
    let mut rpc = RpcSystem::new(Box::new(network), Some(bootstrap.client));
    let disconnector = rpc.get_disconnector();
    // A connection that has not shaken hands by the deadline is closed (dropped).
    let unshaken = async {
        tokio::time::sleep(deadline).await;
        if shaken.get() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        ended = &mut rpc => match ended {
            Ok(()) => debug!(peer_pid = ?pid, "connection closed"),
            Err(e) => info!(peer_pid = ?pid, error = %e, "connection ended with an error"),
        },
        () = unshaken => {
            warn!(
                peer_pid = ?pid,
                deadline = ?deadline,
                "closing a connection that did not complete the handshake in time"
            );
        }
        _ = closed.wait_for(|c| *c) => {
            // Tell the peer, and keep driving the connection while it goes.
            let both = async {
                let (_, _) = tokio::join!(disconnector, &mut rpc);
            };
            if tokio::time::timeout(CLOSE_GRACE, both).await.is_err() {
                debug!(peer_pid = ?pid, "connection did not close in time; dropping it");
            }
        }
    }
}

/// The capability a new connection receives: it only shakes hands.
struct BootstrapServer {
    shared: Rc<Shared>,
    /// The connection's back pressure.
    gate: Rc<Gate>,
    /// Set once a handshake succeeded.
    shaken: Rc<Cell<bool>>,
    peer_pid: Option<i32>,
}

impl bootstrap::Server for BootstrapServer {
    async fn handshake(
        self: Rc<Self>,
        params: bootstrap::HandshakeParams,
        mut results: bootstrap::HandshakeResults,
    ) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let protocol = params.get_protocol();
        let client = read_text(params.get_client()).unwrap_or_else(|_| "?".into());
        let result = results.get().init_result();
        if protocol != wire::PROTOCOL_VERSION {
            warn!(
                peer_pid = ?self.peer_pid,
                client,
                protocol,
                "refusing a client of another protocol version"
            );
            write_wire_error(
                wire::ErrorKind::VersionMismatch,
                &format!(
                    "the client ({client}) speaks MAOS protocol {protocol}, the daemon protocol {}",
                    wire::PROTOCOL_VERSION
                ),
                Some(
                    "run the same MAOS version as the daemon, or restart the daemon with this \
                     version (`maos daemon stop`; the next command starts it again)",
                ),
                result.init_err(),
            );
            return Ok(());
        }
        if self.shared.closing.get() {
            write_remote_error(&shutting_down(), result.init_err());
            return Ok(());
        }
        debug!(peer_pid = ?self.peer_pid, client, "handshake");
        self.shaken.set(true);
        let api: api::Client = capnp_rpc::new_client(ApiServer {
            shared: Rc::clone(&self.shared),
            gate: Rc::clone(&self.gate),
        });
        let mut ok = result.init_ok();
        ok.set_api(api);
        write_daemon_info(&self.shared.daemon.info(), ok.init_daemon());
        Ok(())
    }
}

/// The application API of one handshake.
struct ApiServer {
    shared: Rc<Shared>,
    /// The connection's back pressure: every call counts as unanswered until it returns.
    gate: Rc<Gate>,
}

impl ApiServer {
    /// Runs `f` with the decoded `input` on the blocking pool and turns its error into a wire
    /// error; an input that does not decode is answered as invalid input without calling `f`.
    async fn call<A, T, E>(
        &self,
        input: Decoded<A>,
        f: impl FnOnce(&dyn MaosApi, A) -> Result<T, E> + Send + 'static,
    ) -> Result<T, RemoteError>
    where
        A: Send + 'static,
        T: Send + 'static,
        E: ErrorInfo + 'static,
    {
        let _unanswered = self.gate.enter();
        let input = input.map_err(|e| bad_request(&e))?;
        let _call = self.shared.enter()?;
        let api = Arc::clone(&self.shared.api);
        let hints = self.shared.hints;
        let outcome = self
            .shared
            .calls
            .spawn(move || f(api.as_ref(), input).map_err(|e| RemoteError::from_error(&e, hints)))
            .await;
        outcome.unwrap_or_else(|e| {
            error!(error = %e, "a call into the application failed");
            Err(RemoteError::new(
                ErrorKind::Internal,
                format!("the MAOS daemon failed while serving the call: {e}"),
            ))
        })
    }
}

/// Fills a result union: `ok` through the closure, or `err`.
macro_rules! answer {
    ($result:expr, $outcome:expr, |$v:ident, $ok:ident| $write:expr) => {{
        let result = $result;
        match $outcome {
            Ok($v) => {
                let $ok = result;
                $write
            }
            Err(e) => {
                write_remote_error(&e, result.init_err());
                Ok(())
            }
        }
    }};
}

fn agent_name(r: capnp::Result<capnp::text::Reader<'_>>) -> Decoded<AgentName> {
    Ok(AgentName::parse(&read_text(r)?)?)
}

fn id_ref(r: capnp::Result<capnp::text::Reader<'_>>) -> Decoded<IdRef> {
    Ok(IdRef::parse(&read_text(r)?)?)
}

fn task_id(r: capnp::Result<capnp::text::Reader<'_>>) -> Decoded<TaskId> {
    Ok(TaskId::parse(&read_text(r)?)?)
}

impl api::Server for ApiServer {
    async fn register_agent(
        self: Rc<Self>,
        params: api::RegisterAgentParams,
        mut results: api::RegisterAgentResults,
    ) -> Result<(), capnp::Error> {
        let cmd = read_new_agent(params.get()?.get_agent()?);
        let outcome = self.call(cmd, |api, cmd| api.register_agent(cmd)).await;
        answer!(results.get().init_result(), outcome, |agent, r| {
            write_agent(&agent, r.init_ok())
        })
    }

    async fn drain_agent(
        self: Rc<Self>,
        params: api::DrainAgentParams,
        mut results: api::DrainAgentResults,
    ) -> Result<(), capnp::Error> {
        let name = agent_name(params.get()?.get_name());
        let outcome = self.call(name, |api, name| api.drain_agent(&name)).await;
        answer!(results.get().init_result(), outcome, |agent, r| {
            write_agent(&agent, r.init_ok())
        })
    }

    async fn remove_agent(
        self: Rc<Self>,
        params: api::RemoveAgentParams,
        mut results: api::RemoveAgentResults,
    ) -> Result<(), capnp::Error> {
        let name = agent_name(params.get()?.get_name());
        let outcome = self.call(name, |api, name| api.remove_agent(&name)).await;
        answer!(results.get().init_result(), outcome, |agent, r| {
            write_agent(&agent, r.init_ok())
        })
    }

    async fn get_agent(
        self: Rc<Self>,
        params: api::GetAgentParams,
        mut results: api::GetAgentResults,
    ) -> Result<(), capnp::Error> {
        let name = agent_name(params.get()?.get_name());
        let outcome = self.call(name, |api, name| api.get_agent(&name)).await;
        answer!(results.get().init_result(), outcome, |agent, r| {
            write_agent(&agent, r.init_ok())
        })
    }

    async fn list_agents(
        self: Rc<Self>,
        params: api::ListAgentsParams,
        mut results: api::ListAgentsResults,
    ) -> Result<(), capnp::Error> {
        let filter = read_agent_filter(params.get()?.get_filter()?);
        let outcome = self
            .call(filter, |api, filter| api.list_agents(&filter))
            .await;
        answer!(results.get().init_result(), outcome, |agents, r| {
            let mut list = r.init_ok(len32(agents.len())?);
            for (i, a) in (0u32..).zip(&agents) {
                write_agent(a, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn create_task(
        self: Rc<Self>,
        params: api::CreateTaskParams,
        mut results: api::CreateTaskResults,
    ) -> Result<(), capnp::Error> {
        let cmd = read_new_task(params.get()?.get_task()?);
        let outcome = self.call(cmd, |api, cmd| api.create_task(cmd)).await;
        answer!(results.get().init_result(), outcome, |created, r| {
            write_created(&created, r.init_ok())
        })
    }

    async fn create_tasks(
        self: Rc<Self>,
        params: api::CreateTasksParams,
        mut results: api::CreateTasksResults,
    ) -> Result<(), capnp::Error> {
        let cmds: Decoded<Vec<_>> = params
            .get()?
            .get_tasks()?
            .iter()
            .map(read_new_task)
            .collect();
        let outcome = self.call(cmds, |api, cmds| api.create_tasks(cmds)).await;
        answer!(results.get().init_result(), outcome, |created, r| {
            let mut list = r.init_ok(len32(created.len())?);
            for (i, c) in (0u32..).zip(&created) {
                write_created(c, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn add_dependency(
        self: Rc<Self>,
        params: api::AddDependencyParams,
        mut results: api::AddDependencyResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let refs = id_ref(p.get_task()).and_then(|task| Ok((task, id_ref(p.get_on())?)));
        let outcome = self
            .call(refs, |api, (task, on)| api.add_dependency(&task, &on))
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn assign_task(
        self: Rc<Self>,
        params: api::AssignTaskParams,
        mut results: api::AssignTaskResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let cmd = id_ref(p.get_task()).and_then(|task| {
            let agent = if p.has_agent() {
                Some(agent_name(p.get_agent())?)
            } else {
                None
            };
            Ok(maos_application::AssignTask { task, agent })
        });
        let outcome = self.call(cmd, |api, cmd| api.assign_task(cmd)).await;
        answer!(results.get().init_result(), outcome, |assignment, r| {
            write_assignment(&assignment, r.init_ok())
        })
    }

    async fn start_attempt(
        self: Rc<Self>,
        params: api::StartAttemptParams,
        mut results: api::StartAttemptResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| {
            let start = AttemptStart {
                pid: (p.get_pid() != 0).then_some(p.get_pid()),
                checkpoint: read_opt_text(p.has_checkpoint(), p.get_checkpoint())?,
                port: (p.get_port() != 0).then_some(p.get_port()),
            };
            Ok((task, start))
        });
        let outcome = self
            .call(input, move |api, (task, start)| {
                api.start_attempt(task, fencing, start)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn complete_attempt(
        self: Rc<Self>,
        params: api::CompleteAttemptParams,
        mut results: api::CompleteAttemptResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| {
            Ok((
                task,
                read_opt_text(p.has_summary(), p.get_summary())?,
                read_run_report(p.has_report(), p.get_report())?,
            ))
        });
        let outcome = self
            .call(input, move |api, (task, summary, report)| {
                api.complete_attempt(task, fencing, summary, report)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn fail_attempt(
        self: Rc<Self>,
        params: api::FailAttemptParams,
        mut results: api::FailAttemptResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| {
            Ok((
                task,
                read_text(p.get_error())?,
                read_run_report(p.has_report(), p.get_report())?,
            ))
        });
        let outcome = self
            .call(input, move |api, (task, error, report)| {
                api.fail_attempt(task, fencing, error, report)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn record_session(
        self: Rc<Self>,
        params: api::RecordSessionParams,
        mut results: api::RecordSessionResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| Ok((task, read_text(p.get_session())?)));
        let outcome = self
            .call(input, move |api, (task, session)| {
                api.record_session(task, fencing, session)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn heartbeat(
        self: Rc<Self>,
        params: api::HeartbeatParams,
        mut results: api::HeartbeatResults,
    ) -> Result<(), capnp::Error> {
        let beats: Decoded<Vec<_>> = params.get()?.get_beats()?.iter().map(read_beat).collect();
        let outcome = self.call(beats, |api, beats| api.heartbeat(&beats)).await;
        answer!(results.get().init_result(), outcome, |refused, r| {
            let mut list = r.init_ok(len32(refused.len())?);
            for (i, b) in (0u32..).zip(&refused) {
                write_beat(b, list.reborrow().get(i));
            }
            Ok(())
        })
    }

    async fn read_log(
        self: Rc<Self>,
        params: api::ReadLogParams,
        mut results: api::ReadLogResults,
    ) -> Result<(), capnp::Error> {
        let req = read_log_request(params.get()?.get_request()?);
        let outcome = self.call(req, |api, req| api.read_log(&req)).await;
        answer!(results.get().init_result(), outcome, |chunk, r| {
            write_log_chunk(&chunk, r.init_ok());
            Ok(())
        })
    }

    async fn record_workspace(
        self: Rc<Self>,
        params: api::RecordWorkspaceParams,
        mut results: api::RecordWorkspaceResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task())
            .and_then(|task| Ok((task, read_task_workspace(p.get_workspace()?)?)));
        let outcome = self
            .call(input, move |api, (task, workspace)| {
                api.record_workspace(task, fencing, workspace)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn request_approval(
        self: Rc<Self>,
        params: api::RequestApprovalParams,
        mut results: api::RequestApprovalResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| {
            Ok((
                task,
                read_text(p.get_tool())?,
                read_opt_text(p.has_subject(), p.get_subject())?,
            ))
        });
        let outcome = self
            .call(input, move |api, (task, tool, subject)| {
                api.request_approval(task, fencing, tool, subject)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn approve(
        self: Rc<Self>,
        params: api::ApproveParams,
        mut results: api::ApproveResults,
    ) -> Result<(), capnp::Error> {
        let task = id_ref(params.get()?.get_task());
        let outcome = self.call(task, |api, task| api.approve(&task)).await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn reject(
        self: Rc<Self>,
        params: api::RejectParams,
        mut results: api::RejectResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let cancel = p.get_cancel();
        let input = id_ref(p.get_task()).and_then(|task| Ok((task, read_text(p.get_reason())?)));
        let outcome = self
            .call(input, move |api, (task, reason)| {
                api.reject(&task, reason, cancel)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn approvals(
        self: Rc<Self>,
        _: api::ApprovalsParams,
        mut results: api::ApprovalsResults,
    ) -> Result<(), capnp::Error> {
        let outcome = self.call(Ok(()), |api, ()| api.approvals()).await;
        answer!(results.get().init_result(), outcome, |tasks, r| {
            let mut list = r.init_ok(len32(tasks.len())?);
            for (i, a) in (0u32..).zip(&tasks) {
                write_task(&a.task, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn diff_summary(
        self: Rc<Self>,
        params: api::DiffSummaryParams,
        mut results: api::DiffSummaryResults,
    ) -> Result<(), capnp::Error> {
        let task = id_ref(params.get()?.get_task());
        let outcome = self.call(task, |api, task| api.diff_summary(&task)).await;
        answer!(results.get().init_result(), outcome, |summary, r| {
            let mut r = r;
            r.set_ok(summary.as_str());
            Ok(())
        })
    }

    async fn task_diff(
        self: Rc<Self>,
        params: api::TaskDiffParams,
        mut results: api::TaskDiffResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let attempt = (p.get_attempt() != 0).then_some(p.get_attempt());
        let stat = p.get_stat();
        let task = id_ref(p.get_task());
        let outcome = self
            .call(task, move |api, task| api.task_diff(&task, attempt, stat))
            .await;
        answer!(results.get().init_result(), outcome, |diff, r| {
            let mut r = r;
            r.set_ok(diff.as_str());
            Ok(())
        })
    }

    async fn rollback(
        self: Rc<Self>,
        params: api::RollbackParams,
        mut results: api::RollbackResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let to = (p.get_to_attempt() != 0).then_some(p.get_to_attempt());
        let task = id_ref(p.get_task());
        let outcome = self
            .call(task, move |api, task| api.rollback(&task, to))
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn gc(
        self: Rc<Self>,
        params: api::GcParams,
        mut results: api::GcResults,
    ) -> Result<(), capnp::Error> {
        let req = params
            .get()?
            .get_request()
            .map(read_gc_request)
            .map_err(Into::into);
        let outcome = self.call(req, |api, req| api.gc(&req)).await;
        answer!(results.get().init_result(), outcome, |entries, r| {
            let mut list = r.init_ok(len32(entries.len())?);
            for (i, e) in (0u32..).zip(&entries) {
                write_gc_entry(e, list.reborrow().get(i));
            }
            Ok(())
        })
    }

    async fn merge_orchestration(
        self: Rc<Self>,
        params: api::MergeOrchestrationParams,
        mut results: api::MergeOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input =
            id_ref(p.get_id()).and_then(|id| Ok((id, read_opt_text(p.has_into(), p.get_into())?)));
        let outcome = self
            .call(input, |api, (id, into)| api.merge_orchestration(&id, into))
            .await;
        answer!(results.get().init_result(), outcome, |report, r| {
            write_merge_report(&report, r.init_ok());
            Ok(())
        })
    }

    async fn cancel_task(
        self: Rc<Self>,
        params: api::CancelTaskParams,
        mut results: api::CancelTaskResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_task())
            .and_then(|task| Ok((task, read_opt_text(p.has_reason(), p.get_reason())?)));
        let outcome = self
            .call(input, |api, (task, reason)| api.cancel_task(&task, reason))
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn get_task(
        self: Rc<Self>,
        params: api::GetTaskParams,
        mut results: api::GetTaskResults,
    ) -> Result<(), capnp::Error> {
        let task = id_ref(params.get()?.get_task());
        let outcome = self.call(task, |api, task| api.get_task(&task)).await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn list_tasks(
        self: Rc<Self>,
        params: api::ListTasksParams,
        mut results: api::ListTasksResults,
    ) -> Result<(), capnp::Error> {
        let input = read_task_filter(params.get()?.get_filter()?);
        let outcome = self
            .call(input, |api, (filter, page)| api.list_tasks(&filter, &page))
            .await;
        answer!(results.get().init_result(), outcome, |page, r| {
            write_task_page(&page, r.init_ok())
        })
    }

    async fn create_orchestration(
        self: Rc<Self>,
        params: api::CreateOrchestrationParams,
        mut results: api::CreateOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        // `spec` wins; without it, `name` and `goal` (the shape of protocol 2's call).
        let input = if p.has_spec() {
            p.get_spec()
                .map_err(Into::into)
                .and_then(read_new_orchestration)
        } else {
            read_text(p.get_name()).and_then(|name| {
                Ok(CreateOrchestration {
                    name: Title::parse(&name)?,
                    goal: read_opt_text(p.has_goal(), p.get_goal())?,
                    workspace: None,
                    verify: None,
                    notes: Vec::new(),
                })
            })
        };
        let outcome = self
            .call(input, |api, cmd| api.create_orchestration(cmd))
            .await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn create_plan(
        self: Rc<Self>,
        params: api::CreatePlanParams,
        mut results: api::CreatePlanResults,
    ) -> Result<(), capnp::Error> {
        let input = params
            .get()?
            .get_plan()
            .map_err(Into::into)
            .and_then(read_new_plan);
        let outcome = self.call(input, |api, plan| api.create_plan(plan)).await;
        answer!(results.get().init_result(), outcome, |made, r| {
            write_plan_created(&made, r.init_ok())
        })
    }

    async fn start_orchestration(
        self: Rc<Self>,
        params: api::StartOrchestrationParams,
        mut results: api::StartOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.start_orchestration(&id)).await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn pause_orchestration(
        self: Rc<Self>,
        params: api::PauseOrchestrationParams,
        mut results: api::PauseOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let now = p.get_now();
        let id = id_ref(p.get_id());
        let outcome = self
            .call(id, move |api, id| api.pause_orchestration(&id, now))
            .await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn resume_orchestration(
        self: Rc<Self>,
        params: api::ResumeOrchestrationParams,
        mut results: api::ResumeOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.resume_orchestration(&id)).await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn cancel_orchestration(
        self: Rc<Self>,
        params: api::CancelOrchestrationParams,
        mut results: api::CancelOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id())
            .and_then(|id| Ok((id, read_opt_text(p.has_reason(), p.get_reason())?)));
        let outcome = self
            .call(input, |api, (id, reason)| {
                api.cancel_orchestration(&id, reason)
            })
            .await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn retry_task(
        self: Rc<Self>,
        params: api::RetryTaskParams,
        mut results: api::RetryTaskResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let attempts = p.get_attempts();
        let task = id_ref(p.get_task());
        let outcome = self
            .call(task, move |api, task| api.retry_task(&task, attempts))
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn task_waiting(
        self: Rc<Self>,
        params: api::TaskWaitingParams,
        mut results: api::TaskWaitingResults,
    ) -> Result<(), capnp::Error> {
        let task = id_ref(params.get()?.get_task());
        let outcome = self.call(task, |api, task| api.task_waiting(&task)).await;
        answer!(results.get().init_result(), outcome, |waits, r| {
            let mut list = r.init_ok(len32(waits.len())?);
            for (i, w) in (0u32..).zip(&waits) {
                write_waiting(w, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn task_briefing(
        self: Rc<Self>,
        params: api::TaskBriefingParams,
        mut results: api::TaskBriefingResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let attempt = (p.get_attempt() != 0).then_some(p.get_attempt());
        let task = id_ref(p.get_task());
        let outcome = self
            .call(task, move |api, task| api.task_briefing(&task, attempt))
            .await;
        answer!(results.get().init_result(), outcome, |b, r| {
            write_briefing(&b, r.init_ok())
        })
    }

    async fn resume_agent(
        self: Rc<Self>,
        params: api::ResumeAgentParams,
        mut results: api::ResumeAgentResults,
    ) -> Result<(), capnp::Error> {
        let name = agent_name(params.get()?.get_name());
        let outcome = self.call(name, |api, name| api.resume_agent(&name)).await;
        answer!(results.get().init_result(), outcome, |agent, r| {
            write_agent(&agent, r.init_ok())
        })
    }

    async fn get_orchestration(
        self: Rc<Self>,
        params: api::GetOrchestrationParams,
        mut results: api::GetOrchestrationResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.get_orchestration(&id)).await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn orchestration_report(
        self: Rc<Self>,
        params: api::OrchestrationReportParams,
        mut results: api::OrchestrationReportResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.orchestration_report(&id)).await;
        answer!(results.get().init_result(), outcome, |report, r| {
            write_orchestration_report(&report, r.init_ok())
        })
    }

    async fn approval_requests(
        self: Rc<Self>,
        _: api::ApprovalRequestsParams,
        mut results: api::ApprovalRequestsResults,
    ) -> Result<(), capnp::Error> {
        let outcome = self.call(Ok(()), |api, ()| api.approvals()).await;
        answer!(results.get().init_result(), outcome, |requests, r| {
            let mut list = r.init_ok(len32(requests.len())?);
            for (i, a) in (0u32..).zip(&requests) {
                write_approval_request(a, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn plan_goal(
        self: Rc<Self>,
        params: api::PlanGoalParams,
        mut results: api::PlanGoalResults,
    ) -> Result<(), capnp::Error> {
        let input = params
            .get()?
            .get_goal()
            .map_err(Into::into)
            .and_then(read_plan_goal);
        let outcome = self.call(input, |api, goal| api.plan_goal(goal)).await;
        answer!(results.get().init_result(), outcome, |started, r| {
            write_planning_started(&started, r.init_ok())
        })
    }

    async fn discuss_goal(
        self: Rc<Self>,
        params: api::DiscussGoalParams,
        mut results: api::DiscussGoalResults,
    ) -> Result<(), capnp::Error> {
        let input = params
            .get()?
            .get_goal()
            .map_err(Into::into)
            .and_then(read_plan_goal);
        let outcome = self.call(input, |api, goal| api.discuss_goal(goal)).await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn plan_history(
        self: Rc<Self>,
        params: api::PlanHistoryParams,
        mut results: api::PlanHistoryResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.plan_history(&id)).await;
        answer!(results.get().init_result(), outcome, |history, r| {
            write_plan_history(&history, r.init_ok())
        })
    }

    async fn propose_plan(
        self: Rc<Self>,
        params: api::ProposePlanParams,
        mut results: api::ProposePlanResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id()).and_then(|id| Ok((id, read_text(p.get_text())?)));
        let outcome = self
            .call(input, |api, (id, text)| api.propose_plan(&id, text))
            .await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn regenerate_plan(
        self: Rc<Self>,
        params: api::RegeneratePlanParams,
        mut results: api::RegeneratePlanResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id()).and_then(|id| Ok((id, read_text(p.get_feedback())?)));
        let outcome = self
            .call(input, |api, (id, feedback)| {
                api.regenerate_plan(&id, feedback)
            })
            .await;
        answer!(results.get().init_result(), outcome, |started, r| {
            write_planning_started(&started, r.init_ok())
        })
    }

    async fn approve_plan(
        self: Rc<Self>,
        params: api::ApprovePlanParams,
        mut results: api::ApprovePlanResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let version = (p.get_version() != 0).then_some(p.get_version());
        let id = id_ref(p.get_id());
        let outcome = self
            .call(id, move |api, id| api.approve_plan(&id, version))
            .await;
        answer!(results.get().init_result(), outcome, |made, r| {
            write_plan_created(&made, r.init_ok())
        })
    }

    async fn reject_plan(
        self: Rc<Self>,
        params: api::RejectPlanParams,
        mut results: api::RejectPlanResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id())
            .and_then(|id| Ok((id, read_opt_text(p.has_reason(), p.get_reason())?)));
        let outcome = self
            .call(input, |api, (id, reason)| api.reject_plan(&id, reason))
            .await;
        answer!(results.get().init_result(), outcome, |o, r| {
            write_orchestration(&o, r.init_ok());
            Ok(())
        })
    }

    async fn revise_plan(
        self: Rc<Self>,
        params: api::RevisePlanParams,
        mut results: api::RevisePlanResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id())
            .and_then(|id| Ok((id, read_opt_text(p.has_feedback(), p.get_feedback())?)));
        let outcome = self
            .call(input, |api, (id, feedback)| api.revise_plan(&id, feedback))
            .await;
        answer!(results.get().init_result(), outcome, |started, r| {
            write_planning_started(&started, r.init_ok())
        })
    }

    async fn list_orchestrations(
        self: Rc<Self>,
        _: api::ListOrchestrationsParams,
        mut results: api::ListOrchestrationsResults,
    ) -> Result<(), capnp::Error> {
        let outcome = self.call(Ok(()), |api, ()| api.list_orchestrations()).await;
        answer!(results.get().init_result(), outcome, |all, r| {
            let mut list = r.init_ok(len32(all.len())?);
            for (i, o) in (0u32..).zip(&all) {
                write_orchestration(o, list.reborrow().get(i));
            }
            Ok(())
        })
    }

    async fn status(
        self: Rc<Self>,
        _: api::StatusParams,
        mut results: api::StatusResults,
    ) -> Result<(), capnp::Error> {
        let outcome = self.call(Ok(()), |api, ()| api.status()).await;
        answer!(results.get().init_result(), outcome, |report, r| {
            write_status(&report, r.init_ok())
        })
    }

    async fn metrics(
        self: Rc<Self>,
        params: api::MetricsParams,
        mut results: api::MetricsResults,
    ) -> Result<(), capnp::Error> {
        let since = match params.get()?.get_since() {
            0 => None,
            ms => Some(maos_domain::Timestamp::from_millis(ms)),
        };
        let outcome = self.call(Ok(since), |api, since| api.metrics(since)).await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_metrics(&m, r.init_ok())
        })
    }

    async fn read_events(
        self: Rc<Self>,
        params: api::ReadEventsParams,
        mut results: api::ReadEventsResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let after = p.get_after();
        let limit = usize::try_from(p.get_limit()).unwrap_or(usize::MAX);
        let outcome = self
            .call(Ok(()), move |api, ()| api.read_events(after, limit))
            .await;
        answer!(results.get().init_result(), outcome, |events, r| {
            let mut list = r.init_ok(len32(events.len())?);
            for (i, e) in (0u32..).zip(&events) {
                write_event(e, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }

    async fn subscribe(
        self: Rc<Self>,
        params: api::SubscribeParams,
        mut results: api::SubscribeResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let since = p.get_since();
        let sink = p.get_sink()?;
        let unavailable = |e: RemoteError| capnp::Error::disconnected(e.message);
        if self.shared.subscriptions.get() >= MAX_SUBSCRIPTIONS {
            warn!(
                limit = MAX_SUBSCRIPTIONS,
                "refusing a subscription: too many at once"
            );
            return Err(capnp::Error::overloaded(format!(
                "the MAOS daemon serves at most {MAX_SUBSCRIPTIONS} event subscriptions at once"
            )));
        }
        let _unanswered = self.gate.enter();
        let call = self.shared.enter().map_err(unavailable)?;
        let counted = Streaming::new(&self.shared);
        let api = Arc::clone(&self.shared.api);
        let follower = self
            .shared
            .calls
            .spawn(move || api.follow_events(since))
            .await
            .map_err(|e| capnp::Error::failed(format!("the MAOS daemon failed: {e}")))?
            .map_err(|e| capnp::Error::failed(e.to_string()))?;
        let cancel = Rc::new(Cancel::default());
        results
            .get()
            .set_subscription(capnp_rpc::new_client(SubscriptionServer {
                cancel: Rc::clone(&cancel),
            }));
        debug!(since, "subscription starts");
        tokio::task::spawn_local(stream(
            Rc::clone(&self.shared),
            (call, counted),
            follower,
            sink,
            cancel,
        ));
        Ok(())
    }

    async fn daemon_info(
        self: Rc<Self>,
        _: api::DaemonInfoParams,
        mut results: api::DaemonInfoResults,
    ) -> Result<(), capnp::Error> {
        write_daemon_info(&self.shared.daemon.info(), results.get().init_daemon());
        Ok(())
    }

    async fn shutdown(
        self: Rc<Self>,
        _: api::ShutdownParams,
        _: api::ShutdownResults,
    ) -> Result<(), capnp::Error> {
        info!("shutdown requested over IPC");
        self.shared.daemon.shutdown();
        Ok(())
    }

    async fn serve_ui(
        self: Rc<Self>,
        params: api::ServeUiParams,
        mut results: api::ServeUiResults,
    ) -> Result<(), capnp::Error> {
        let request = crate::convert::read_ui_request(params.get()?.get_request()?);
        let outcome = match request {
            Ok(request) => self.shared.daemon.serve_ui(&request),
            Err(e) => Err(RemoteError::new(ErrorKind::InvalidInput, e.to_string())),
        };
        answer!(results.get().init_result(), outcome, |serving, r| {
            crate::convert::write_ui_serving(&serving, r.init_ok());
            Ok(())
        })
    }
    async fn add_memory(
        self: Rc<Self>,
        params: api::AddMemoryParams,
        mut results: api::AddMemoryResults,
    ) -> Result<(), capnp::Error> {
        let input = read_new_memory(params.get()?.get_memory()?);
        let outcome = self.call(input, |api, cmd| api.add_memory(cmd)).await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_memory(&m, r.init_ok())
        })
    }

    async fn get_memory(
        self: Rc<Self>,
        params: api::GetMemoryParams,
        mut results: api::GetMemoryResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.get_memory(&id)).await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_memory(&m, r.init_ok())
        })
    }

    async fn list_memories(
        self: Rc<Self>,
        params: api::ListMemoriesParams,
        mut results: api::ListMemoriesResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = read_memory_filter(p.get_filter()?).and_then(|filter| {
            let cursor = read_opt_text(p.has_cursor(), p.get_cursor())?
                .map(|c| MemoryCursor::parse(&c))
                .transpose()?;
            let page = MemoryPage {
                limit: usize::try_from(p.get_limit()).unwrap_or(usize::MAX),
                cursor,
            };
            Ok((filter, page))
        });
        let outcome = self
            .call(input, |api, (filter, page)| {
                api.list_memories(&filter, &page)
            })
            .await;
        answer!(results.get().init_result(), outcome, |page, r| {
            write_memory_page(&page, r.init_ok())
        })
    }

    async fn search_memories(
        self: Rc<Self>,
        params: api::SearchMemoriesParams,
        mut results: api::SearchMemoriesResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = read_memory_query(p.get_query()).and_then(|query| {
            Ok(MemorySearch {
                query,
                filter: read_memory_filter(p.get_filter()?)?,
                limit: usize::try_from(p.get_limit()).unwrap_or(usize::MAX),
            })
        });
        let outcome = self
            .call(input, |api, search| api.search_memories(&search))
            .await;
        answer!(results.get().init_result(), outcome, |hits, r| {
            write_memory_hits(&hits, r.init_ok())
        })
    }

    async fn pin_memory(
        self: Rc<Self>,
        params: api::PinMemoryParams,
        mut results: api::PinMemoryResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.pin_memory(&id)).await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_memory(&m, r.init_ok())
        })
    }

    async fn unpin_memory(
        self: Rc<Self>,
        params: api::UnpinMemoryParams,
        mut results: api::UnpinMemoryResults,
    ) -> Result<(), capnp::Error> {
        let id = id_ref(params.get()?.get_id());
        let outcome = self.call(id, |api, id| api.unpin_memory(&id)).await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_memory(&m, r.init_ok())
        })
    }

    async fn forget_memory(
        self: Rc<Self>,
        params: api::ForgetMemoryParams,
        mut results: api::ForgetMemoryResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let input = id_ref(p.get_id())
            .and_then(|id| Ok((id, read_opt_text(p.has_reason(), p.get_reason())?)));
        let outcome = self
            .call(input, |api, (id, reason)| api.forget_memory(&id, reason))
            .await;
        answer!(results.get().init_result(), outcome, |m, r| {
            write_memory(&m, r.init_ok())
        })
    }

    async fn authenticate_agent(
        self: Rc<Self>,
        params: api::AuthenticateAgentParams,
        mut results: api::AuthenticateAgentResults,
    ) -> Result<(), capnp::Error> {
        // The credential is a secret: it is never logged, and its parser's error does not
        // quote it.
        let credential = params
            .get()?
            .get_credential()
            .map_err(Into::into)
            .and_then(|raw| Ok(AgentCredential::parse(raw.to_str()?)?));
        let outcome = self
            .call(credential, |api, credential| {
                api.authenticate_agent(&credential)
            })
            .await;
        answer!(results.get().init_result(), outcome, |scope, r| {
            write_agent_scope(&scope, r.init_ok())
        })
    }

    async fn report_progress(
        self: Rc<Self>,
        params: api::ReportProgressParams,
        mut results: api::ReportProgressResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let input = task_id(p.get_task()).and_then(|task| Ok((task, progress_note(p.get_note())?)));
        let outcome = self
            .call(input, move |api, (task, note)| {
                api.report_progress(task, fencing, note)
            })
            .await;
        answer!(results.get().init_result(), outcome, |task, r| {
            write_task(&task, r.init_ok())
        })
    }

    async fn create_subtasks(
        self: Rc<Self>,
        params: api::CreateSubtasksParams,
        mut results: api::CreateSubtasksResults,
    ) -> Result<(), capnp::Error> {
        let p = params.get()?;
        let fencing = FencingToken::new(p.get_fencing());
        let waits = p.get_waits();
        let input = task_id(p.get_task()).and_then(|task| {
            let list = p.get_tasks()?;
            // No more subtasks are read than a task may have: a longer list is refused as the
            // application refuses it, without decoding its items.
            let asked = usize::try_from(list.len()).unwrap_or(usize::MAX);
            if asked > MAX_SUBTASKS {
                return Ok((task, Err(asked)));
            }
            let tasks = read_plan_tasks(list)?;
            Ok((task, Ok(CreateSubtasks { tasks, waits })))
        });
        let outcome = self
            .call(input, move |api, (task, cmd)| match cmd {
                Ok(cmd) => api.create_subtasks(task, fencing, cmd),
                Err(asked) => Err(too_many_subtasks(task, asked)),
            })
            .await;
        answer!(results.get().init_result(), outcome, |created, r| {
            let mut list = r.init_ok(len32(created.len())?);
            for (i, c) in (0u32..).zip(&created) {
                write_created(c, list.reborrow().get(i))?;
            }
            Ok(())
        })
    }
}

/// The most bytes of a progress note the server reads: a note has at most
/// [`ProgressNote::MAX_CHARS`] characters of at most 4 bytes each once trimmed; a longer text
/// is refused without being quoted back whole.
const MAX_NOTE_BYTES: usize = ProgressNote::MAX_CHARS * 4;

/// A progress note from the wire, bounded before it is parsed.
fn progress_note(r: capnp::Result<capnp::text::Reader<'_>>) -> Decoded<ProgressNote> {
    let r = r?;
    if r.len() > MAX_NOTE_BYTES {
        return Err(ValueError {
            what: "progress note",
            value: String::new(),
            reason: format!(
                "it is {} bytes long; a note has at most {} characters",
                r.len(),
                ProgressNote::MAX_CHARS
            ),
        }
        .into());
    }
    Ok(ProgressNote::parse(r.to_str()?)?)
}

/// The application's refusal of more subtasks than a task may have, for a list the server did
/// not read.
fn too_many_subtasks(task: TaskId, asked: usize) -> TaskError {
    TaskError::Refused(Box::new(Refusal::Subtasks {
        task,
        why: format!("{asked} subtasks were asked for; a task may have at most {MAX_SUBTASKS}"),
    }))
}

/// The cancellation of one subscription: set when the client cancels it or drops it.
#[derive(Default)]
struct Cancel {
    set: Cell<bool>,
    wake: Notify,
}

impl Cancel {
    fn cancel(&self) {
        self.set.set(true);
        // A permit is kept if the stream is not waiting now, so the wake-up is never lost.
        self.wake.notify_one();
    }

    async fn cancelled(&self) {
        while !self.set.get() {
            self.wake.notified().await;
        }
    }
}

/// The `Subscription` capability: cancelling or dropping it stops the stream.
struct SubscriptionServer {
    cancel: Rc<Cancel>,
}

impl Drop for SubscriptionServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl subscription::Server for SubscriptionServer {
    async fn cancel(
        self: Rc<Self>,
        _: subscription::CancelParams,
        _: subscription::CancelResults,
    ) -> Result<(), capnp::Error> {
        self.cancel.cancel();
        Ok(())
    }
}

/// Why a stream stopped.
enum Stop {
    /// The client cancelled or dropped its `Subscription`.
    Cancelled,
    /// A push failed: the client or its connection is gone.
    SinkGone(capnp::Error),
    /// The stream ends with this reason, sent to the sink's `end`.
    End(RemoteError),
}

/// Counts a subscription in while it streams.
struct Streaming(Rc<Shared>);

impl Streaming {
    fn new(shared: &Rc<Shared>) -> Self {
        shared.subscriptions.set(shared.subscriptions.get() + 1);
        Streaming(Rc::clone(shared))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let n = self.0.subscriptions.get().saturating_sub(1);
        self.0.subscriptions.set(n);
    }
}

/// Streams one subscription: reads what follows on the blocking pool, pushes it into the sink
/// (waiting whenever the flow-control window is full), until it is cancelled, the sink fails, or
/// the server stops.
async fn stream(
    shared: Rc<Shared>,
    counted: (CallGuard, Streaming),
    mut follower: Box<dyn EventFollower>,
    sink: event_sink::Client,
    cancel: Rc<Cancel>,
) {
    let mut stopping = shared.stopping.subscribe();
    let mut pushed = 0u64;
    let stop = loop {
        let fetch = tokio::task::spawn_blocking(move || {
            let batch = follower.next_batch(STREAM_WAIT);
            (follower, batch)
        });
        // A cancelled or stopped stream lets the fetch finish on the pool and drops its result.
        let fetched = tokio::select! {
            biased;
            () = cancel.cancelled() => break Stop::Cancelled,
            _ = stopping.wait_for(|s| *s) => break Stop::End(stream_stopped()),
            fetched = fetch => fetched,
        };
        let batch = match fetched {
            Ok((back, batch)) => {
                follower = back;
                batch
            }
            Err(e) => {
                error!(error = %e, "reading the event log for a subscription failed");
                break Stop::End(RemoteError::new(
                    ErrorKind::Internal,
                    format!("the MAOS daemon failed while reading the event log: {e}"),
                ));
            }
        };
        let events = match batch {
            Ok(events) if events.is_empty() => continue,
            Ok(events) => events,
            Err(e) => break Stop::End(RemoteError::from_error(&e, shared.hints)),
        };
        let count = events.len() as u64;
        if let Err(stop) = push(&sink, &events, &cancel, &mut stopping).await {
            break stop;
        }
        pushed += count;
    };
    match stop {
        Stop::Cancelled => debug!(pushed, "subscription cancelled"),
        Stop::SinkGone(e) => debug!(pushed, error = %e, "subscriber gone"),
        Stop::End(reason) => {
            debug!(pushed, reason = %reason, "ending a subscription");
            let mut request = sink.end_request();
            write_remote_error(&reason, request.get().init_reason());
            let ended = request.send().promise;
            // A sink that does not take it in time (it stopped reading) is dropped anyway.
            if tokio::time::timeout(END_GRACE, ended).await.is_err() {
                debug!("a subscriber did not take the end of its stream in time");
            }
        }
    }
    drop(sink);
    drop(counted);
}

/// Pushes a batch into the sink, in pieces of about [`PUSH_BYTES`], each sent as soon as the
/// flow-control window has room.
async fn push(
    sink: &event_sink::Client,
    events: &[StoredEvent],
    cancel: &Cancel,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    let payloads = events
        .iter()
        .map(|e| event_payload(&e.event))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Stop::End(RemoteError::new(
                ErrorKind::Internal,
                format!("the MAOS daemon cannot encode an event: {e}"),
            ))
        })?;
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        let mut bytes = payloads[start].len() + EVENT_BYTES;
        while let Some(next) = payloads.get(end) {
            bytes += next.len() + EVENT_BYTES;
            if bytes > PUSH_BYTES {
                break;
            }
            end += 1;
        }
        let mut request = sink.push_request();
        let encoded = len32(end - start).map(|n| {
            let mut list = request.get().init_events(n);
            for (i, (e, payload)) in
                (0u32..).zip(events[start..end].iter().zip(&payloads[start..end]))
            {
                write_event_with_payload(e, payload, list.reborrow().get(i));
            }
        });
        if let Err(e) = encoded {
            return Err(Stop::End(RemoteError::new(
                ErrorKind::Internal,
                format!("the MAOS daemon cannot encode a batch of events: {e}"),
            )));
        }
        // The piece is on its way now; the promise resolves when the window has room again.
        let sent = request.send();
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Stop::Cancelled),
            _ = stopping.wait_for(|s| *s) => return Err(Stop::End(stream_stopped())),
            sent = sent => sent.map_err(Stop::SinkGone)?,
        }
        start = end;
    }
    Ok(())
}
