//! A service over a fresh database with a stand-in runtime, and an MCP session over a pipe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maos_application::{
    AgentCredential, AgentRuntime, CreateTask, IdRef, Launch, MaosApi, RegisterAgent, Service,
    ServiceConfig,
};
use maos_domain::{
    AdapterKind, AgentName, AgentSettings, AttemptStart, CapabilitySet, ProgressNote, RunReport,
    Slots, Task, TaskId, Tier, Title,
};
use maos_mcp::Caller;
use maos_sqlite::SqliteStore;
use maos_system::{RandomIds, SystemClock};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A stand-in for the daemon's supervisor (the `AgentRuntime` port; the real one is tested in
/// the agents crate): it runs no process, gives each launched attempt a credential, forgets it
/// when the attempt is stopped, and keeps the progress notes it is given.
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    credentials: Mutex<HashMap<String, (TaskId, u32)>>,
    pub(crate) notes: Mutex<Vec<String>>,
}

impl Runtime {
    /// The credential of `attempt` of `task`, while it is live.
    pub(crate) fn credential(&self, task: TaskId, attempt: u32) -> Option<AgentCredential> {
        let map = self.credentials.lock().unwrap();
        map.iter()
            .find(|(_, v)| **v == (task, attempt))
            .and_then(|(k, _)| AgentCredential::parse(k).ok())
    }

    /// Forgets an attempt's credential, as the supervisor does when it ends.
    pub(crate) fn end(&self, task: TaskId, attempt: u32) {
        self.credentials
            .lock()
            .unwrap()
            .retain(|_, v| *v != (task, attempt));
    }
}

impl AgentRuntime for Runtime {
    fn launch(&self, launch: Launch) {
        let secret = format!("test-credential-{}-{}", launch.task.id, launch.attempt);
        self.credentials
            .lock()
            .unwrap()
            .insert(secret, (launch.task.id, launch.attempt));
    }

    fn stop(&self, task: TaskId, attempt: u32, _reason: &str) {
        self.end(task, attempt);
    }

    fn credential_holder(&self, credential: &AgentCredential) -> Option<(TaskId, u32)> {
        self.credentials
            .lock()
            .unwrap()
            .get(credential.expose())
            .copied()
    }

    fn progress(&self, task: TaskId, attempt: u32, note: &ProgressNote) {
        self.notes
            .lock()
            .unwrap()
            .push(format!("{} {attempt}: {note}", task.short()));
    }
}

/// A service over a new database with an agent `worker` (4 slots) and the stand-in runtime.
pub(crate) struct World {
    pub(crate) api: Arc<Service<SqliteStore>>,
    pub(crate) runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("maos.db")).expect("store"));
        let runtime = Arc::new(Runtime::default());
        let api = Arc::new(
            Service::new(
                store,
                Arc::new(SystemClock),
                Arc::new(RandomIds),
                ServiceConfig::default(),
            )
            .with_runtime(Arc::clone(&runtime) as Arc<dyn AgentRuntime>),
        );
        api.register_agent(RegisterAgent {
            name: AgentName::parse("worker").unwrap(),
            adapter: AdapterKind::Command,
            capabilities: CapabilitySet::empty(),
            tier: Tier::default(),
            slots: Slots::new(4).unwrap(),
            command: Some("true".to_owned()),
            settings: AgentSettings::default(),
        })
        .expect("register");
        World {
            api,
            runtime,
            _dir: dir,
        }
    }

    pub(crate) fn dyn_api(&self) -> Arc<dyn MaosApi> {
        Arc::clone(&self.api) as Arc<dyn MaosApi>
    }

    /// A task created and assigned to `worker`, its attempt started: running.
    pub(crate) fn running(&self, title: &str) -> Task {
        let created = self
            .api
            .create_task(CreateTask::titled(Title::parse(title).unwrap()))
            .expect("create");
        self.start(created.task.id)
    }

    /// Starts the assigned attempt of `id`.
    pub(crate) fn start(&self, id: TaskId) -> Task {
        let t = self.task(id);
        self.api
            .start_attempt(id, t.fencing, AttemptStart::default())
            .expect("start")
    }

    pub(crate) fn task(&self, id: TaskId) -> Task {
        self.api.get_task(&IdRef::from(id)).expect("task")
    }

    /// The agent's caller for the current attempt of `id`.
    pub(crate) fn agent(&self, id: TaskId) -> Caller {
        let t = self.task(id);
        Caller::Agent(
            self.runtime
                .credential(id, t.attempts_used())
                .expect("a live credential"),
        )
    }

    /// Ends the running attempt of `id` successfully.
    pub(crate) fn succeed(&self, id: TaskId) -> Task {
        let t = self.task(id);
        let done = self
            .api
            .complete_attempt(id, t.fencing, Some("done".to_owned()), RunReport::default())
            .expect("complete");
        self.runtime.end(id, t.attempts_used());
        done
    }
}

/// An MCP session with the server over a pipe: JSON-RPC lines, as a stdio client sends them.
pub(crate) struct Session {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    read: BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    next_id: u64,
    server: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Connects and completes the handshake.
    pub(crate) async fn open(api: Arc<dyn MaosApi>, caller: Caller) -> Session {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (sr, sw) = tokio::io::split(server);
        let server = tokio::spawn(async move {
            let _ = maos_mcp::serve_io(api, caller, sr, sw).await;
        });
        let (cr, cw) = tokio::io::split(client);
        let mut s = Session {
            write: cw,
            read: BufReader::new(cr),
            next_id: 0,
            server,
        };
        let init = s
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "maos-tests", "version": "1"}}),
            )
            .await;
        assert_eq!(init["result"]["serverInfo"]["name"], "maos", "{init}");
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        s
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    pub(crate) async fn send_raw(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
        self.write.flush().await.unwrap();
    }

    /// The next message from the server.
    pub(crate) async fn receive(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(60), self.read.read_line(&mut line))
            .await
            .expect("an answer within a minute")
            .expect("read");
        assert!(n > 0, "the server closed the session");
        serde_json::from_str(&line).expect("JSON")
    }

    /// Sends a request and returns its response (skipping notifications).
    pub(crate) async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let m = self.receive().await;
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
        }
    }

    /// Calls a tool; returns its structured result, or its error with `"error"` in it.
    pub(crate) async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        let result = &r["result"];
        assert!(result.is_object(), "{tool}: not a result: {r}");
        result["structuredContent"].clone()
    }

    /// The names of the tools listed.
    pub(crate) async fn tool_names(&mut self) -> Vec<String> {
        let r = self.request("tools/list", json!({})).await;
        r["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The error kind of a refused call's result.
pub(crate) fn error_kind(v: &Value) -> &str {
    v["error"]["kind"].as_str().unwrap_or("<not an error>")
}
