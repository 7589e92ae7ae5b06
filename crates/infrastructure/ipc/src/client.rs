//! The client side: [`IpcClient`], an implementation of `maos_application::MaosApi` that talks
//! to the daemon.
//!
//! A call runs on the caller's own thread when it can: the client's direct connection
//! (`direct.rs`) writes the call to the socket and reads the answer right there, so a round trip
//! costs the socket and nothing else. capnp-rpc is `!Send`, so everything that needs the RPC
//! system itself goes to a dedicated thread with a current-thread tokio runtime, a `LocalSet`
//! and a second connection's `RpcSystem`, started on first need: subscriptions (the client
//! serves an `EventSink` there, which must keep being driven while the caller does something
//! else), and calls made while another thread is using the direct connection. Such a call sends
//! a job (a closure that builds the request, awaits the answer and decodes it) to that thread
//! and blocks until the answer comes back. Dropping the client closes both connections and joins
//! the thread.
//!
//! `follow_events` subscribes with an `EventSink` hosted on that thread (see `follow.rs`); the
//! `Subscription` it gets back stays on the thread until the follower is dropped.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp::traits::Owned;
use capnp_rpc::twoparty::VatNetwork;
use capnp_rpc::{Disconnector, RpcSystem, rpc_twoparty_capnp::Side};
use maos_application::metrics::Metrics;
use maos_application::{
    AddMemory, AgentCredential, AgentError, AgentFilter, AgentScope, ApprovalRequest, AssignTask,
    Assignment, AttemptBriefing, CreateOrchestration, CreatePlan, CreateSubtasks, CreateTask,
    Created, ErrorInfo, ErrorKind, EventFollower, GcEntry, GcRequest, Heartbeat, IdRef, LogChunk,
    LogRequest, MaosApi, MemoryError, MemoryFilter, MemoryHits, MemoryList, MemoryPage,
    MemorySearch, MergeReport, OrchestrationError, OrchestrationReport, Page, PlanCreated,
    PlanGoal, PlanHistory, PlanningStarted, QueryError, RegisterAgent, RemoteError, StatusReport,
    StoredEvent, TaskError, TaskFilter, TaskPage, WaitReason,
};
use maos_domain::{
    Agent, AgentName, AttemptStart, FencingToken, Memory, Orchestration, ProgressNote, RunReport,
    Task, TaskId, TaskWorkspace, Timestamp,
};
use thiserror::Error;
use tokio::io::{BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tracing::{debug, warn};

use crate::convert::{
    DecodeError, len32, read_agent, read_agent_scope, read_approval_request, read_assignment,
    read_beat, read_briefing, read_created, read_daemon_info, read_event, read_gc_entry,
    read_log_chunk, read_memory, read_memory_hits, read_memory_page, read_merge_report,
    read_metrics, read_orchestration, read_orchestration_report, read_plan_created,
    read_plan_history, read_planning_started, read_status, read_task, read_task_page, read_text,
    read_waiting, write_agent_filter, write_beat, write_gc_request, write_log_request,
    write_memory_filter, write_new_agent, write_new_memory, write_new_orchestration,
    write_new_plan, write_new_task, write_plan_goal, write_plan_tasks, write_run_report,
    write_task_filter, write_task_workspace,
};
use crate::daemon::DaemonInfo;
use crate::direct::{Direct, DirectError, Method};
use crate::error::{DAEMON_HINT, read_error, rpc_failed, unavailable, undecodable};
use crate::follow::{RemoteFollower, SinkServer};
use crate::maos_capnp::{self as wire, api, bootstrap, event_sink};

/// How long closing the connection may take when the client is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long [`IpcClient::connect`] waits for the connection and the handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client could not connect.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The socket cannot be connected to: no daemon listens there (the file is missing, or a
    /// crashed daemon left it behind), or it is not accessible.
    #[error("cannot connect to the MAOS daemon at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    /// The daemon speaks another protocol version.
    #[error("{message}")]
    VersionMismatch {
        message: String,
        hint: Option<String>,
    },
    /// The daemon answered the handshake with an error (it is shutting down).
    #[error(transparent)]
    Refused(RemoteError),
    /// The connection failed during the handshake: the daemon closed it (it serves only its own
    /// user) or answered something this client cannot read.
    #[error("the handshake with the MAOS daemon failed: {0}")]
    Handshake(String),
    /// The client's thread or runtime could not be started.
    #[error("cannot start the IPC client: {0}")]
    Start(io::Error),
}

impl ConnectError {
    /// The refusal a handshake answered with: a protocol mismatch, or any other refusal.
    pub(crate) fn from_handshake_error(e: wire::error::Reader<'_>) -> ConnectError {
        let mismatch = e.get_kind() == Ok(wire::ErrorKind::VersionMismatch);
        let e = read_error(e);
        if mismatch {
            ConnectError::VersionMismatch {
                message: e.message,
                hint: e.hint,
            }
        } else {
            ConnectError::Refused(e)
        }
    }
}

impl ErrorInfo for ConnectError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::Refused(e) => e.kind,
            ConnectError::Connect { .. }
            | ConnectError::VersionMismatch { .. }
            | ConnectError::Handshake(_)
            | ConnectError::Start(_) => ErrorKind::Unavailable,
        }
    }
}

impl ConnectError {
    /// What to do about it (the daemon's own words for a refusal).
    pub fn hint(&self) -> Option<String> {
        match self {
            ConnectError::Connect { .. } => Some(DAEMON_HINT.into()),
            ConnectError::VersionMismatch { hint, .. } => hint.clone(),
            ConnectError::Refused(e) => e.hint.clone(),
            ConnectError::Handshake(_) => Some(
                "the daemon serves only the user it runs as; `maos daemon status` shows it".into(),
            ),
            ConnectError::Start(_) => None,
        }
    }
}

impl From<ConnectError> for RemoteError {
    fn from(e: ConnectError) -> Self {
        RemoteError {
            kind: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

/// A call's failure on the client's thread, before it is reported as a [`RemoteError`].
#[derive(Debug)]
enum CallError {
    /// The RPC failed: the connection broke or the daemon failed.
    Rpc(capnp::Error),
    /// The request cannot be encoded (a list longer than a message can hold).
    Encode(capnp::Error),
    /// The answer does not decode.
    Decode(DecodeError),
    /// The daemon answered with an error.
    Remote(RemoteError),
}

impl From<DecodeError> for CallError {
    fn from(e: DecodeError) -> Self {
        CallError::Decode(e)
    }
}

/// A capnp error while reading an answer: the answer is malformed.
impl From<capnp::Error> for CallError {
    fn from(e: capnp::Error) -> Self {
        CallError::Decode(e.into())
    }
}

impl From<capnp::NotInSchema> for CallError {
    fn from(e: capnp::NotInSchema) -> Self {
        CallError::Decode(e.into())
    }
}

impl CallError {
    fn into_remote(self) -> RemoteError {
        match self {
            CallError::Rpc(e) => rpc_failed(&e),
            CallError::Encode(e) => RemoteError::new(
                ErrorKind::Internal,
                format!("cannot encode the request to the MAOS daemon: {e}"),
            ),
            CallError::Decode(e) => undecodable(&e),
            CallError::Remote(e) => e,
        }
    }
}

impl From<DirectError> for CallError {
    fn from(e: DirectError) -> Self {
        match e {
            DirectError::Rpc(e) => CallError::Rpc(e),
            DirectError::Decode(e) => CallError::Decode(e),
        }
    }
}

type Call<T> = Result<T, CallError>;

/// Work for the client's thread: given the `Api` capability, a future that makes one call and
/// sends its answer back to the waiting caller.
type Job = Box<dyn FnOnce(api::Client) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A connection to the MAOS daemon, usable from any thread as a [`MaosApi`].
pub struct IpcClient {
    /// The connection calls use on the caller's thread, one caller at a time.
    direct: Mutex<Direct>,
    /// The RPC thread, once something needed it.
    threaded: Mutex<Option<Threaded>>,
    socket: PathBuf,
    name: String,
    daemon: DaemonInfo,
}

impl fmt::Debug for IpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpcClient")
            .field("daemon", &self.daemon)
            .finish_non_exhaustive()
    }
}

/// The client's RPC thread and the channel to it. Dropping it closes the channel, which ends
/// the thread's loop (it then closes its connection), and joins the thread.
struct Threaded {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Threaded {
    /// Starts the thread, which connects to `socket` and shakes hands.
    fn start(
        socket: &Path,
        client_name: &str,
        timeout: Duration,
    ) -> Result<Threaded, ConnectError> {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (ready, ready_rx) = std_mpsc::sync_channel(1);
        let path = socket.to_path_buf();
        let name = client_name.to_owned();
        let thread = std::thread::Builder::new()
            .name("maos-ipc-client".into())
            .spawn(move || client_thread(path, name, timeout, ready, jobs_rx))
            .map_err(ConnectError::Start)?;
        let outcome = ready_rx.recv().unwrap_or_else(|_| {
            Err(ConnectError::Handshake(
                "the client's thread stopped before the handshake".into(),
            ))
        });
        match outcome {
            Ok(_) => Ok(Threaded {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Err(e) => {
                drop(jobs);
                let _ = thread.join();
                Err(e)
            }
        }
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the IPC client's thread panicked");
        }
    }
}

impl IpcClient {
    /// Connects to the daemon listening on `socket` and shakes hands; `client_name` tells the
    /// daemon who is calling ("maos-cli 0.1.0"). Gives up after [`CONNECT_TIMEOUT`].
    ///
    /// The client's methods block the calling thread until the daemon answers: call them from
    /// synchronous code, not from inside an async runtime.
    pub fn connect(socket: &Path, client_name: &str) -> Result<IpcClient, ConnectError> {
        IpcClient::connect_with_timeout(socket, client_name, CONNECT_TIMEOUT)
    }

    /// [`IpcClient::connect`], giving up after `timeout` if the handshake takes longer (a daemon
    /// that hangs, or another program on the socket).
    pub fn connect_with_timeout(
        socket: &Path,
        client_name: &str,
        timeout: Duration,
    ) -> Result<IpcClient, ConnectError> {
        let (direct, daemon) = Direct::connect(socket, client_name, timeout)?;
        Ok(IpcClient {
            direct: Mutex::new(direct),
            threaded: Mutex::new(None),
            socket: socket.to_path_buf(),
            name: client_name.to_owned(),
            daemon,
        })
    }

    /// What the daemon said about itself in the handshake.
    pub fn handshake_info(&self) -> &DaemonInfo {
        &self.daemon
    }

    /// What the daemon says about itself now.
    pub fn daemon_info(&self) -> Result<DaemonInfo, RemoteError> {
        self.call::<methods::DaemonInfo, _, _, _>(
            |_| Ok(()),
            |r| Ok(read_daemon_info(r.get_daemon()?)?),
        )
    }

    /// Asks the daemon to serve the web dashboard (or where it already does).
    pub fn serve_ui(&self, request: &crate::UiRequest) -> Result<crate::UiServing, RemoteError> {
        let request = *request;
        self.call::<methods::ServeUi, _, _, _>(
            move |mut p| {
                crate::convert::write_ui_request(&request, p.reborrow().init_request());
                Ok(())
            },
            |r| match r.get_result()?.which()? {
                wire::ui_result::Which::Ok(s) => Ok(crate::convert::read_ui_serving(s?)?),
                wire::ui_result::Which::Err(e) => Err(CallError::Remote(read_error(e?))),
            },
        )
    }

    /// Asks the daemon to stop gracefully. Returns once the daemon has taken the request.
    pub fn shutdown(&self) -> Result<(), RemoteError> {
        self.call::<methods::Shutdown, _, _, _>(|_| Ok(()), |_| Ok(()))
    }

    /// The channel to the client's RPC thread, starting the thread (and its connection) if this
    /// is the first time one is needed.
    fn jobs(&self) -> Result<mpsc::UnboundedSender<Job>, RemoteError> {
        let closed = || unavailable("the connection to the MAOS daemon is closed");
        let mut threaded = self
            .threaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if threaded.is_none() {
            *threaded = Some(Threaded::start(&self.socket, &self.name, CONNECT_TIMEOUT)?);
        }
        threaded
            .as_ref()
            .and_then(|t| t.jobs.clone())
            .ok_or_else(closed)
    }

    /// Queues a job on the client's thread.
    fn submit(&self, job: Job) -> Result<(), RemoteError> {
        self.jobs()?
            .send(job)
            .map_err(|_| unavailable("the connection to the MAOS daemon is closed"))
    }

    /// Calls `M` on the daemon's `Api`: `fill` writes the parameters, `read` decodes the
    /// results. On the caller's thread through the direct connection if no other thread is using
    /// it, else through the RPC thread.
    fn call<M, T, F, G>(&self, fill: F, read: G) -> Result<T, RemoteError>
    where
        M: Method,
        T: Send + 'static,
        F: for<'a> FnOnce(<M::Params as Owned>::Builder<'a>) -> Call<()> + Send + 'static,
        G: for<'a> FnOnce(<M::Results as Owned>::Reader<'a>) -> Call<T> + Send + 'static,
    {
        let direct = match self.direct.try_lock() {
            Ok(direct) => Some(direct),
            // A caller panicked while it held the connection: in its own code, which builds the
            // request before anything is sent and decodes the answer once it has been read
            // whole, so the connection itself is in step.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut direct) = direct {
            return direct
                .call::<M, T, CallError>(fill, read)
                .map_err(CallError::into_remote);
        }
        self.call_on_thread(move |api| async move {
            let mut request =
                api.client
                    .new_call::<M::Params, M::Results>(M::INTERFACE, M::ID, None);
            fill(request.get())?;
            let response = request.send().promise.await.map_err(CallError::Rpc)?;
            read(response.get()?)
        })
    }

    /// Runs `f` on the client's thread and waits for its answer.
    fn call_on_thread<T, F, Fut>(&self, f: F) -> Result<T, RemoteError>
    where
        T: Send + 'static,
        F: FnOnce(api::Client) -> Fut + Send + 'static,
        Fut: Future<Output = Call<T>> + 'static,
    {
        let closed = || unavailable("the connection to the MAOS daemon is closed");
        let (answer, answer_rx) = std_mpsc::sync_channel(1);
        let job: Job = Box::new(move |api| {
            Box::pin(async move {
                let _ = answer.send(f(api).await.map_err(CallError::into_remote));
            })
        });
        self.submit(job)?;
        answer_rx.recv().map_err(|_| closed())?
    }
}

/// The `Api`'s methods (ordinals as in `schema/maos.capnp`).
mod methods {
    use capnp::traits::HasTypeId;

    use crate::direct::Method;
    use crate::maos_capnp::api;

    macro_rules! methods {
        ($($marker:ident = $id:literal $name:ident ($params:ident, $results:ident);)*) => {
            $(
                pub(super) struct $marker;

                impl Method for $marker {
                    const INTERFACE: u64 = <api::Client as HasTypeId>::TYPE_ID;
                    const ID: u16 = $id;
                    type Params = api::$params::Owned;
                    type Results = api::$results::Owned;
                }
            )*

            /// Each method's ordinal, name, parameter and result struct, as written above.
            #[cfg(test)]
            pub(super) const ALL: &[(u16, &str, &str, &str)] = &[
                $(($id, stringify!($name), stringify!($params), stringify!($results)),)*
            ];
        };
    }

    methods! {
        RegisterAgent = 0 register_agent (register_agent_params, register_agent_results);
        DrainAgent = 1 drain_agent (drain_agent_params, drain_agent_results);
        RemoveAgent = 2 remove_agent (remove_agent_params, remove_agent_results);
        GetAgent = 3 get_agent (get_agent_params, get_agent_results);
        ListAgents = 4 list_agents (list_agents_params, list_agents_results);
        CreateTask = 5 create_task (create_task_params, create_task_results);
        CreateTasks = 6 create_tasks (create_tasks_params, create_tasks_results);
        AddDependency = 7 add_dependency (add_dependency_params, add_dependency_results);
        AssignTask = 8 assign_task (assign_task_params, assign_task_results);
        StartAttempt = 9 start_attempt (start_attempt_params, start_attempt_results);
        CompleteAttempt = 10 complete_attempt (complete_attempt_params, complete_attempt_results);
        FailAttempt = 11 fail_attempt (fail_attempt_params, fail_attempt_results);
        CancelTask = 12 cancel_task (cancel_task_params, cancel_task_results);
        GetTask = 13 get_task (get_task_params, get_task_results);
        ListTasks = 14 list_tasks (list_tasks_params, list_tasks_results);
        CreateOrchestration = 15 create_orchestration
            (create_orchestration_params, create_orchestration_results);
        GetOrchestration = 16 get_orchestration
            (get_orchestration_params, get_orchestration_results);
        ListOrchestrations = 17 list_orchestrations
            (list_orchestrations_params, list_orchestrations_results);
        Status = 18 status (status_params, status_results);
        ReadEvents = 19 read_events (read_events_params, read_events_results);
        DaemonInfo = 21 daemon_info (daemon_info_params, daemon_info_results);
        Shutdown = 22 shutdown (shutdown_params, shutdown_results);
        RecordSession = 23 record_session (record_session_params, record_session_results);
        Heartbeat = 24 heartbeat (heartbeat_params, heartbeat_results);
        ReadLog = 25 read_log (read_log_params, read_log_results);
        RecordWorkspace = 26 record_workspace (record_workspace_params, record_workspace_results);
        RequestApproval = 27 request_approval (request_approval_params, request_approval_results);
        Approve = 28 approve (approve_params, approve_results);
        Reject = 29 reject (reject_params, reject_results);
        DiffSummary = 31 diff_summary (diff_summary_params, diff_summary_results);
        TaskDiff = 32 task_diff (task_diff_params, task_diff_results);
        Rollback = 33 rollback (rollback_params, rollback_results);
        Gc = 34 gc (gc_params, gc_results);
        MergeOrchestration = 35 merge_orchestration
            (merge_orchestration_params, merge_orchestration_results);
        CreatePlan = 36 create_plan (create_plan_params, create_plan_results);
        StartOrchestration = 37 start_orchestration
            (start_orchestration_params, start_orchestration_results);
        PauseOrchestration = 38 pause_orchestration
            (pause_orchestration_params, pause_orchestration_results);
        ResumeOrchestration = 39 resume_orchestration
            (resume_orchestration_params, resume_orchestration_results);
        CancelOrchestration = 40 cancel_orchestration
            (cancel_orchestration_params, cancel_orchestration_results);
        RetryTask = 41 retry_task (retry_task_params, retry_task_results);
        TaskWaiting = 42 task_waiting (task_waiting_params, task_waiting_results);
        TaskBriefing = 43 task_briefing (task_briefing_params, task_briefing_results);
        ResumeAgent = 44 resume_agent (resume_agent_params, resume_agent_results);
        OrchestrationReport = 45 orchestration_report
            (orchestration_report_params, orchestration_report_results);
        ApprovalRequests = 46 approval_requests
            (approval_requests_params, approval_requests_results);
        PlanGoal = 47 plan_goal (plan_goal_params, plan_goal_results);
        PlanHistory = 48 plan_history (plan_history_params, plan_history_results);
        ProposePlan = 49 propose_plan (propose_plan_params, propose_plan_results);
        RegeneratePlan = 50 regenerate_plan (regenerate_plan_params, regenerate_plan_results);
        ApprovePlan = 51 approve_plan (approve_plan_params, approve_plan_results);
        RejectPlan = 52 reject_plan (reject_plan_params, reject_plan_results);
        RevisePlan = 53 revise_plan (revise_plan_params, revise_plan_results);
        DiscussGoal = 54 discuss_goal (discuss_goal_params, discuss_goal_results);
        Metrics = 55 metrics (metrics_params, metrics_results);
        ServeUi = 56 serve_ui (serve_ui_params, serve_ui_results);
        AddMemory = 57 add_memory (add_memory_params, add_memory_results);
        GetMemory = 58 get_memory (get_memory_params, get_memory_results);
        ListMemories = 59 list_memories (list_memories_params, list_memories_results);
        SearchMemories = 60 search_memories (search_memories_params, search_memories_results);
        PinMemory = 61 pin_memory (pin_memory_params, pin_memory_results);
        UnpinMemory = 62 unpin_memory (unpin_memory_params, unpin_memory_results);
        ForgetMemory = 63 forget_memory (forget_memory_params, forget_memory_results);
        AuthenticateAgent = 64 authenticate_agent
            (authenticate_agent_params, authenticate_agent_results);
        ReportProgress = 65 report_progress (report_progress_params, report_progress_results);
        CreateSubtasks = 66 create_subtasks (create_subtasks_params, create_subtasks_results);
    }
}

/// The client's thread: connects, shakes hands, reports the outcome on `ready`, then runs jobs
/// until every sender of `jobs` is gone, and closes the connection.
fn client_thread(
    path: PathBuf,
    name: String,
    timeout: Duration,
    ready: std_mpsc::SyncSender<Result<DaemonInfo, ConnectError>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(ConnectError::Start(e)));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let connected = tokio::time::timeout(timeout, connect(&path, &name)).await;
        let (api, disconnector) = match connected {
            Ok(Ok((api, disconnector, daemon))) => {
                if ready.send(Ok(daemon)).is_err() {
                    return;
                }
                (api, disconnector)
            }
            Ok(Err(e)) => {
                let _ = ready.send(Err(e));
                return;
            }
            Err(_) => {
                let _ = ready.send(Err(ConnectError::Handshake(format!(
                    "no answer from {} within {timeout:?}",
                    path.display()
                ))));
                return;
            }
        };
        while let Some(job) = jobs.recv().await {
            tokio::task::spawn_local(job(api.clone()));
        }
        drop(api);
        if tokio::time::timeout(CLOSE_GRACE, disconnector)
            .await
            .is_err()
        {
            debug!("the connection to the daemon did not close in time");
        }
    });
}

/// Connects, starts the connection's RPC system on the `LocalSet` and shakes hands.
async fn connect(
    path: &Path,
    name: &str,
) -> Result<(api::Client, Disconnector<Side>, DaemonInfo), ConnectError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ConnectError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let (read, write) = stream.into_split();
    let network = VatNetwork::new(
        BufReader::new(read).compat(),
        BufWriter::new(write).compat_write(),
        Side::Client,
        ReaderOptions::new(),
    );
    let mut rpc = RpcSystem::new(Box::new(network), None);
    let bootstrap: bootstrap::Client = rpc.bootstrap(Side::Server);
    let disconnector = rpc.get_disconnector();
    tokio::task::spawn_local(async move {
        if let Err(e) = rpc.await {
            debug!(error = %e, "the connection to the daemon ended");
        }
    });
    let (api, daemon) = handshake(&bootstrap, name).await?;
    Ok((api, disconnector, daemon))
}

/// Sends the handshake; answers the `Api` capability and what the daemon said about itself.
async fn handshake(
    bootstrap: &bootstrap::Client,
    name: &str,
) -> Result<(api::Client, DaemonInfo), ConnectError> {
    let mut request = bootstrap.handshake_request();
    request.get().set_protocol(wire::PROTOCOL_VERSION);
    request.get().set_client(name);
    let response = request
        .send()
        .promise
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let unreadable = |e: DecodeError| ConnectError::Handshake(format!("unreadable answer: {e}"));
    let read = || -> Result<_, DecodeError> {
        let result = response.get()?.get_result()?;
        Ok(match result.which()? {
            wire::handshake_result::Which::Ok(ok) => {
                Ok((ok.get_api()?, read_daemon_info(ok.get_daemon()?)?))
            }
            wire::handshake_result::Which::Err(e) => Err(ConnectError::from_handshake_error(e?)),
        })
    };
    read().map_err(unreadable)?
}

/// Decoders of the result unions: `ok` through the reader function (of each item, for lists),
/// `err` as a [`RemoteError`].
macro_rules! result_decoder {
    ($name:ident, $module:ident, $t:ty, $read:path) => {
        fn $name(r: capnp::Result<wire::$module::Reader<'_>>) -> Call<$t> {
            match r?.which()? {
                wire::$module::Which::Ok(v) => Ok($read(v?)?),
                wire::$module::Which::Err(e) => Err(CallError::Remote(read_error(e?))),
            }
        }
    };
    ($name:ident, $module:ident, list of $t:ty, $read:path) => {
        fn $name(r: capnp::Result<wire::$module::Reader<'_>>) -> Call<Vec<$t>> {
            match r?.which()? {
                wire::$module::Which::Ok(list) => {
                    Ok(list?.iter().map($read).collect::<Result<_, _>>()?)
                }
                wire::$module::Which::Err(e) => Err(CallError::Remote(read_error(e?))),
            }
        }
    };
}

result_decoder!(agent_result, agent_result, Agent, read_agent);
result_decoder!(agents_result, agents_result, list of Agent, read_agent);
result_decoder!(task_result, task_result, Task, read_task);
result_decoder!(created_result, created_result, Created, read_created);
result_decoder!(created_list_result, created_list_result, list of Created, read_created);
result_decoder!(
    assignment_result,
    assignment_result,
    Assignment,
    read_assignment
);
result_decoder!(task_page_result, task_page_result, TaskPage, read_task_page);
result_decoder!(
    orchestration_result,
    orchestration_result,
    Orchestration,
    read_orchestration
);
result_decoder!(
    orchestrations_result,
    orchestrations_result,
    list of Orchestration,
    read_orchestration
);
result_decoder!(status_result, status_result, StatusReport, read_status);
result_decoder!(metrics_result, metrics_result, Metrics, read_metrics);
result_decoder!(memory_result, memory_result, Memory, read_memory);
result_decoder!(
    memory_page_result,
    memory_page_result,
    MemoryList,
    read_memory_page
);
result_decoder!(
    memory_hits_result,
    memory_hits_result,
    MemoryHits,
    read_memory_hits
);
result_decoder!(events_result, events_result, list of StoredEvent, read_event);
result_decoder!(beats_result, beats_result, list of Heartbeat, read_beat);
result_decoder!(log_chunk_result, log_chunk_result, LogChunk, read_log_chunk);
result_decoder!(text_result, text_result, String, read_text_value);
result_decoder!(gc_result, gc_result, list of GcEntry, read_gc_entry);
result_decoder!(merge_result, merge_result, MergeReport, read_merge_report);
result_decoder!(plan_result, plan_result, PlanCreated, read_plan_created);
result_decoder!(waiting_result, waiting_result, list of WaitReason, read_waiting);
result_decoder!(
    approval_requests_result,
    approval_requests_result,
    list of ApprovalRequest,
    read_approval_request
);
result_decoder!(
    orchestration_report_result,
    orchestration_report_result,
    OrchestrationReport,
    read_orchestration_report
);
result_decoder!(
    planning_result,
    planning_result,
    PlanningStarted,
    read_planning_started
);
result_decoder!(
    plan_history_result,
    plan_history_result,
    PlanHistory,
    read_plan_history
);
result_decoder!(
    agent_scope_result,
    agent_scope_result,
    AgentScope,
    read_agent_scope
);
result_decoder!(
    briefing_result,
    briefing_result,
    AttemptBriefing,
    read_briefing
);

/// A text answer, as `result_decoder!` reads values.
fn read_text_value(r: capnp::text::Reader<'_>) -> Result<String, DecodeError> {
    read_text(Ok(r))
}

/// Plan versions start at 1; on the wire 0 means "the newest", so `Some(0)` is refused rather
/// than silently taken for it.
fn no_version_zero() -> RemoteError {
    RemoteError::new(
        ErrorKind::InvalidInput,
        "there is no plan version 0: versions are numbered from 1",
    )
    .with_hint("name a version from the plan's history, or none for the newest")
}

/// Attempt numbers start at 1; on the wire 0 means "no attempt named", so `Some(0)` cannot be
/// sent as such. It is refused here rather than silently taken for the default.
fn no_attempt_zero() -> RemoteError {
    RemoteError::new(
        ErrorKind::InvalidInput,
        "there is no attempt 0: attempts are numbered from 1",
    )
    .with_hint("`maos task show <task>` lists its attempts")
}

impl MaosApi for IpcClient {
    fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError> {
        self.call::<methods::RegisterAgent, _, _, _>(
            move |p| write_new_agent(&cmd, p.init_agent()).map_err(CallError::Encode),
            |r| agent_result(r.get_result()),
        )
        .map_err(AgentError::Remote)
    }

    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        let name = name.clone();
        self.call::<methods::DrainAgent, _, _, _>(
            move |mut p| {
                p.set_name(name.as_str());
                Ok(())
            },
            |r| agent_result(r.get_result()),
        )
        .map_err(AgentError::Remote)
    }

    fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        let name = name.clone();
        self.call::<methods::ResumeAgent, _, _, _>(
            move |mut p| {
                p.set_name(name.as_str());
                Ok(())
            },
            |r| agent_result(r.get_result()),
        )
        .map_err(AgentError::Remote)
    }

    fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        let name = name.clone();
        self.call::<methods::RemoveAgent, _, _, _>(
            move |mut p| {
                p.set_name(name.as_str());
                Ok(())
            },
            |r| agent_result(r.get_result()),
        )
        .map_err(AgentError::Remote)
    }

    fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError> {
        let name = name.clone();
        self.call::<methods::GetAgent, _, _, _>(
            move |mut p| {
                p.set_name(name.as_str());
                Ok(())
            },
            |r| agent_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError> {
        let filter = filter.clone();
        self.call::<methods::ListAgents, _, _, _>(
            move |p| write_agent_filter(&filter, p.init_filter()).map_err(CallError::Encode),
            |r| agents_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError> {
        self.call::<methods::CreateTask, _, _, _>(
            move |p| write_new_task(&cmd, p.init_task()).map_err(CallError::Encode),
            |r| created_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        self.call::<methods::CreateTasks, _, _, _>(
            move |p| {
                let n = crate::convert::len32(cmds.len()).map_err(CallError::Encode)?;
                let mut list = p.init_tasks(n);
                for (i, cmd) in (0u32..).zip(&cmds) {
                    write_new_task(cmd, list.reborrow().get(i)).map_err(CallError::Encode)?;
                }
                Ok(())
            },
            |r| created_list_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError> {
        let (task, on) = (task.clone(), on.clone());
        self.call::<methods::AddDependency, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_on(on.as_str());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError> {
        self.call::<methods::AssignTask, _, _, _>(
            move |mut p| {
                p.set_task(cmd.task.as_str());
                if let Some(agent) = &cmd.agent {
                    p.set_agent(agent.as_str());
                }
                Ok(())
            },
            |r| assignment_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: AttemptStart,
    ) -> Result<Task, TaskError> {
        self.call::<methods::StartAttempt, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_pid(start.pid.unwrap_or(0));
                if let Some(checkpoint) = &start.checkpoint {
                    p.set_checkpoint(checkpoint.as_str());
                }
                p.set_port(start.port.unwrap_or(0));
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: TaskWorkspace,
    ) -> Result<Task, TaskError> {
        self.call::<methods::RecordWorkspace, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                write_task_workspace(&workspace, p.init_workspace());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError> {
        self.call::<methods::RequestApproval, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_tool(tool.as_str());
                if let Some(subject) = &subject {
                    p.set_subject(subject.as_str());
                }
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn approve(&self, task: &IdRef) -> Result<Task, TaskError> {
        let task = task.clone();
        self.call::<methods::Approve, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn reject(&self, task: &IdRef, reason: String, cancel: bool) -> Result<Task, TaskError> {
        let task = task.clone();
        self.call::<methods::Reject, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_reason(reason.as_str());
                p.set_cancel(cancel);
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn approvals(&self) -> Result<Vec<ApprovalRequest>, QueryError> {
        self.call::<methods::ApprovalRequests, _, _, _>(
            |_| Ok(()),
            |r| approval_requests_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError> {
        let task = task.clone();
        self.call::<methods::DiffSummary, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                Ok(())
            },
            |r| text_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError> {
        if attempt == Some(0) {
            return Err(QueryError::Remote(no_attempt_zero()));
        }
        let task = task.clone();
        self.call::<methods::TaskDiff, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_attempt(attempt.unwrap_or(0));
                p.set_stat(stat);
                Ok(())
            },
            |r| text_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn rollback(&self, task: &IdRef, to_attempt: Option<u32>) -> Result<Task, TaskError> {
        if to_attempt == Some(0) {
            return Err(TaskError::Remote(no_attempt_zero()));
        }
        let task = task.clone();
        self.call::<methods::Rollback, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_to_attempt(to_attempt.unwrap_or(0));
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn gc(&self, req: &GcRequest) -> Result<Vec<GcEntry>, TaskError> {
        let req = req.clone();
        self.call::<methods::Gc, _, _, _>(
            move |p| {
                write_gc_request(&req, p.init_request());
                Ok(())
            },
            |r| gc_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError> {
        self.call::<methods::RecordSession, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_session(session.as_str());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError> {
        let beats = beats.to_vec();
        self.call::<methods::Heartbeat, _, _, _>(
            move |p| {
                let mut list = p.init_beats(len32(beats.len())?);
                for (i, b) in (0u32..).zip(&beats) {
                    write_beat(b, list.reborrow().get(i));
                }
                Ok(())
            },
            |r| beats_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        self.call::<methods::CompleteAttempt, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                if let Some(summary) = &summary {
                    p.set_summary(summary.as_str());
                }
                write_run_report(&report, p.init_report());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        self.call::<methods::FailAttempt, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_error(error.as_str());
                write_run_report(&report, p.init_report());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError> {
        let req = req.clone();
        self.call::<methods::ReadLog, _, _, _>(
            move |p| {
                write_log_request(&req, p.init_request());
                Ok(())
            },
            |r| log_chunk_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError> {
        let task = task.clone();
        self.call::<methods::CancelTask, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                if let Some(reason) = &reason {
                    p.set_reason(reason.as_str());
                }
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError> {
        let task = task.clone();
        self.call::<methods::RetryTask, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_attempts(attempts);
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn task_waiting(&self, task: &IdRef) -> Result<Vec<WaitReason>, QueryError> {
        let task = task.clone();
        self.call::<methods::TaskWaiting, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                Ok(())
            },
            |r| waiting_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<AttemptBriefing, QueryError> {
        if attempt == Some(0) {
            return Err(QueryError::Remote(no_attempt_zero()));
        }
        let task = task.clone();
        self.call::<methods::TaskBriefing, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                p.set_attempt(attempt.unwrap_or(0));
                Ok(())
            },
            |r| briefing_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        let task = task.clone();
        self.call::<methods::GetTask, _, _, _>(
            move |mut p| {
                p.set_task(task.as_str());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, QueryError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.call::<methods::ListTasks, _, _, _>(
            move |p| write_task_filter(&filter, &page, p.init_filter()).map_err(CallError::Encode),
            |r| task_page_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn create_orchestration(
        &self,
        cmd: CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError> {
        self.call::<methods::CreateOrchestration, _, _, _>(
            move |p| {
                // `spec` wins over `name` and `goal`, which stay unset.
                write_new_orchestration(&cmd, p.init_spec()).map_err(CallError::Encode)
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<MergeReport, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::MergeOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                if let Some(into) = &into {
                    p.set_into(into.as_str());
                }
                Ok(())
            },
            |r| merge_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn create_plan(&self, plan: CreatePlan) -> Result<PlanCreated, OrchestrationError> {
        self.call::<methods::CreatePlan, _, _, _>(
            move |p| write_new_plan(&plan, p.init_plan()).map_err(CallError::Encode),
            |r| plan_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn plan_goal(&self, goal: PlanGoal) -> Result<PlanningStarted, OrchestrationError> {
        self.call::<methods::PlanGoal, _, _, _>(
            move |p| write_plan_goal(&goal, p.init_goal()).map_err(CallError::Encode),
            |r| planning_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn discuss_goal(&self, goal: PlanGoal) -> Result<Task, OrchestrationError> {
        self.call::<methods::DiscussGoal, _, _, _>(
            move |p| write_plan_goal(&goal, p.init_goal()).map_err(CallError::Encode),
            |r| task_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn plan_history(&self, id: &IdRef) -> Result<PlanHistory, QueryError> {
        let id = id.clone();
        self.call::<methods::PlanHistory, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| plan_history_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn propose_plan(&self, id: &IdRef, text: String) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::ProposePlan, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                p.set_text(text.as_str());
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn regenerate_plan(
        &self,
        id: &IdRef,
        feedback: String,
    ) -> Result<PlanningStarted, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::RegeneratePlan, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                p.set_feedback(feedback.as_str());
                Ok(())
            },
            |r| planning_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn approve_plan(
        &self,
        id: &IdRef,
        version: Option<u32>,
    ) -> Result<PlanCreated, OrchestrationError> {
        if version == Some(0) {
            return Err(OrchestrationError::Remote(no_version_zero()));
        }
        let id = id.clone();
        self.call::<methods::ApprovePlan, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                p.set_version(version.unwrap_or(0));
                Ok(())
            },
            |r| plan_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn reject_plan(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::RejectPlan, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                if let Some(reason) = &reason {
                    p.set_reason(reason.as_str());
                }
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn revise_plan(
        &self,
        id: &IdRef,
        feedback: Option<String>,
    ) -> Result<PlanningStarted, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::RevisePlan, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                if let Some(feedback) = &feedback {
                    p.set_feedback(feedback.as_str());
                }
                Ok(())
            },
            |r| planning_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn start_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::StartOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::PauseOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                p.set_now(now);
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn resume_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::ResumeOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let id = id.clone();
        self.call::<methods::CancelOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                if let Some(reason) = &reason {
                    p.set_reason(reason.as_str());
                }
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(OrchestrationError::Remote)
    }

    fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError> {
        let id = id.clone();
        self.call::<methods::GetOrchestration, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| orchestration_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError> {
        self.call::<methods::ListOrchestrations, _, _, _>(
            |_| Ok(()),
            |r| orchestrations_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn orchestration_report(&self, id: &IdRef) -> Result<OrchestrationReport, QueryError> {
        let id = id.clone();
        self.call::<methods::OrchestrationReport, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| orchestration_report_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn status(&self) -> Result<StatusReport, QueryError> {
        self.call::<methods::Status, _, _, _>(|_| Ok(()), |r| status_result(r.get_result()))
            .map_err(QueryError::Remote)
    }

    fn metrics(&self, since: Option<Timestamp>) -> Result<Metrics, QueryError> {
        self.call::<methods::Metrics, _, _, _>(
            move |mut p| {
                p.set_since(since.map_or(0, Timestamp::as_millis));
                Ok(())
            },
            |r| metrics_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, QueryError> {
        self.call::<methods::ReadEvents, _, _, _>(
            move |mut p| {
                p.set_after(after);
                p.set_limit(u32::try_from(limit).unwrap_or(u32::MAX));
                Ok(())
            },
            |r| events_result(r.get_result()),
        )
        .map_err(QueryError::Remote)
    }

    fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError> {
        let (deliveries, queue, room) = crate::follow::queue();
        let sink_room = Arc::clone(&room);
        let (subscribed, unsubscribed) = oneshot::channel::<()>();
        let (answer, answer_rx) = std_mpsc::sync_channel::<Result<(), RemoteError>>(1);
        let job: Job = Box::new(move |api| {
            Box::pin(async move {
                let sink: event_sink::Client =
                    capnp_rpc::new_client(SinkServer::new(deliveries, sink_room));
                let mut request = api.subscribe_request();
                request.get().set_since(since);
                request.get().set_sink(sink);
                let subscription = request
                    .send()
                    .promise
                    .await
                    .and_then(|response| response.get()?.get_subscription());
                match subscription {
                    Ok(subscription) => {
                        let _ = answer.send(Ok(()));
                        // Hold the subscription until the follower is dropped (or this thread
                        // stops); dropping it tells the daemon to stop streaming.
                        let _ = unsubscribed.await;
                        drop(subscription);
                    }
                    Err(e) => {
                        let _ = answer.send(Err(rpc_failed(&e)));
                    }
                }
            })
        });
        self.submit(job)?;
        answer_rx
            .recv()
            .map_err(|_| unavailable("the connection to the MAOS daemon is closed"))??;
        Ok(Box::new(RemoteFollower::new(
            queue, room, subscribed, since,
        )))
    }
    fn add_memory(&self, cmd: AddMemory) -> Result<Memory, MemoryError> {
        self.call::<methods::AddMemory, _, _, _>(
            move |p| write_new_memory(&cmd, p.init_memory()).map_err(CallError::Encode),
            |r| memory_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn get_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        let id = id.clone();
        self.call::<methods::GetMemory, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| memory_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn list_memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
    ) -> Result<MemoryList, MemoryError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.call::<methods::ListMemories, _, _, _>(
            move |mut p| {
                write_memory_filter(&filter, p.reborrow().init_filter())
                    .map_err(CallError::Encode)?;
                p.set_limit(u32::try_from(page.limit).unwrap_or(u32::MAX));
                if let Some(cursor) = &page.cursor {
                    p.set_cursor(cursor.to_string().as_str());
                }
                Ok(())
            },
            |r| memory_page_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn search_memories(&self, search: &MemorySearch) -> Result<MemoryHits, MemoryError> {
        let search = search.clone();
        self.call::<methods::SearchMemories, _, _, _>(
            move |mut p| {
                p.set_query(search.query.to_string().as_str());
                write_memory_filter(&search.filter, p.reborrow().init_filter())
                    .map_err(CallError::Encode)?;
                p.set_limit(u32::try_from(search.limit).unwrap_or(u32::MAX));
                Ok(())
            },
            |r| memory_hits_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn pin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        let id = id.clone();
        self.call::<methods::PinMemory, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| memory_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn unpin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        let id = id.clone();
        self.call::<methods::UnpinMemory, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                Ok(())
            },
            |r| memory_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn forget_memory(&self, id: &IdRef, reason: Option<String>) -> Result<Memory, MemoryError> {
        let id = id.clone();
        self.call::<methods::ForgetMemory, _, _, _>(
            move |mut p| {
                p.set_id(id.as_str());
                if let Some(reason) = &reason {
                    p.set_reason(reason.as_str());
                }
                Ok(())
            },
            |r| memory_result(r.get_result()),
        )
        .map_err(MemoryError::Remote)
    }

    fn authenticate_agent(&self, credential: &AgentCredential) -> Result<AgentScope, TaskError> {
        // Only the call's message carries the secret: it is never logged, nor put in an error.
        let credential = credential.clone();
        self.call::<methods::AuthenticateAgent, _, _, _>(
            move |mut p| {
                p.set_credential(credential.expose());
                Ok(())
            },
            |r| agent_scope_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn report_progress(
        &self,
        task: TaskId,
        fencing: FencingToken,
        note: ProgressNote,
    ) -> Result<Task, TaskError> {
        self.call::<methods::ReportProgress, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_note(note.as_str());
                Ok(())
            },
            |r| task_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }

    fn create_subtasks(
        &self,
        task: TaskId,
        fencing: FencingToken,
        cmd: CreateSubtasks,
    ) -> Result<Vec<Created>, TaskError> {
        self.call::<methods::CreateSubtasks, _, _, _>(
            move |mut p| {
                p.set_task(task.to_string().as_str());
                p.set_fencing(fencing.get());
                p.set_waits(cmd.waits);
                let n = len32(cmd.tasks.len()).map_err(CallError::Encode)?;
                write_plan_tasks(&cmd.tasks, p.init_tasks(n)).map_err(CallError::Encode)
            },
            |r| created_list_result(r.get_result()),
        )
        .map_err(TaskError::Remote)
    }
}

#[cfg(test)]
mod tests {
    use capnp::any_pointer;
    use capnp::traits::HasTypeId;

    use super::methods::ALL;
    use crate::maos_capnp::api;

    /// An `Api` that implements nothing: each call fails with the name of the method it reached.
    struct Nothing;

    impl api::Server for Nothing {}

    #[test]
    fn each_method_marker_reaches_the_method_it_is_named_after() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let client: api::Client = capnp_rpc::new_client(Nothing);
            for &(id, name, params, results) in ALL {
                assert_eq!(params, format!("{name}_params"));
                assert_eq!(results, format!("{name}_results"));
                let request = client
                    .client
                    .new_call::<any_pointer::Owned, any_pointer::Owned>(
                        <api::Client as HasTypeId>::TYPE_ID,
                        id,
                        None,
                    );
                let Err(e) = request.send().promise.await else {
                    panic!("{name} answered");
                };
                assert_eq!(
                    e.extra,
                    format!("method api::Server::{name} not implemented"),
                    "ordinal {id}"
                );
            }
        });
    }
}
