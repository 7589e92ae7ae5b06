//! Ports: the traits that adapters implement so that use cases can store state, read it back,
//! tell the time and draw identifiers without knowing how.

use std::fmt;
use std::time::Duration;

use maos_domain::policy::matcher::Needs;
use maos_domain::{
    Agent, AgentName, CapabilitySet, DomainEvent, FencingToken, Memory, MemoryId, MemoryQuery,
    MemoryScope, Orchestration, OrchestrationId, Plan, Task, TaskId, TaskState, Timestamp,
};
use thiserror::Error;

use crate::api::{
    AgentFilter, MemoryFilter, MemoryHits, MemoryList, MemoryPage, Page, StatusReport, StoredEvent,
    TaskFilter, TaskPage,
};

/// The current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// A source of random identifiers (125 bits are used).
pub trait IdSource: Send + Sync + fmt::Debug {
    /// A fresh random value.
    fn next_bits(&self) -> u128;
}

/// What went wrong in a store.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The file exists but is not a MAOS database (or is from an unknown, newer MAOS).
    #[error("{path} is not a MAOS database: {detail}")]
    NotMaos { path: String, detail: String },
    /// The file is a MAOS (or at least an SQLite) database, but damaged: corrupt pages, a
    /// truncated file, a failed `PRAGMA quick_check`.
    #[error("the MAOS database {path} is damaged: {detail}")]
    Damaged { path: String, detail: String },
    /// The database could not be opened or created.
    #[error("cannot open the database at {path}: {detail}")]
    Open { path: String, detail: String },
    /// The database file or its write-ahead log was deleted or replaced while the store used
    /// it: what it would commit now would be gone after a restart, so it writes nothing more.
    #[error("the database {path} can no longer be written: {detail}")]
    Lost { path: String, detail: String },
    /// The writer has stopped (the store is shutting down or its thread died).
    #[error("the database writer has stopped")]
    WriterGone,
    /// A stored row does not decode into a domain value: the file was edited or corrupted.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other error from the database engine.
    #[error("database error: {0}")]
    Backend(String),
}

/// The repositories and the event log as seen from inside one write transaction. Everything a
/// use case writes through one `Transaction` commits together or not at all.
pub trait Transaction {
    /// The agent registered under `name` (including a removed one).
    fn agent(&mut self, name: &AgentName) -> Result<Option<Agent>, StoreError>;
    /// Inserts or replaces the agent registered under its name.
    fn save_agent(&mut self, agent: &Agent) -> Result<(), StoreError>;
    /// Agents that accept work, have a free slot and fit `needs` (capabilities, tier, the agent
    /// the task is pinned to: `maos_domain::policy::matcher::is_capable`), least loaded first (as
    /// `maos_domain::policy::balancer::by_load` orders them), at most `limit`. With
    /// `daemon_run_only`, only agents the daemon runs itself (not `external` ones).
    fn candidate_agents(
        &mut self,
        needs: Needs<'_>,
        limit: usize,
        daemon_run_only: bool,
    ) -> Result<Vec<Agent>, StoreError>;
    /// True when some agent that accepts work (busy or not, run by the daemon or not) fits
    /// `needs` (capabilities, tier, pin).
    fn has_capable_agent(&mut self, needs: Needs<'_>) -> Result<bool, StoreError>;
    /// Agents the daemon runs itself that accept work and have a free slot, by name.
    fn agents_with_free_slots(&mut self) -> Result<Vec<Agent>, StoreError>;

    /// The task with this id.
    fn task(&mut self, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// The task created with this idempotency key.
    fn task_by_idempotency_key(&mut self, key: &str) -> Result<Option<Task>, StoreError>;
    /// Inserts or updates a task with its attempts and dependencies.
    fn save_task(&mut self, task: &Task) -> Result<(), StoreError>;
    /// Tasks that depend directly on `id`.
    fn dependents(&mut self, id: TaskId) -> Result<Vec<TaskId>, StoreError>;
    /// The state of each task of `ids` that exists.
    fn task_states(&mut self, ids: &[TaskId]) -> Result<Vec<(TaskId, TaskState)>, StoreError>;
    /// Ready tasks that `agent` can do (it covers their capabilities and tier) and that may run
    /// now (no orchestration, or a running one), most urgent first, then oldest (the
    /// scheduler's order), at most `limit`, by id (the scheduler loads only those it gets to).
    /// However many ready tasks the agent cannot do, the cost must not grow with them: they
    /// never hide a task it can do.
    fn ready_tasks_for(&mut self, agent: &Agent, limit: usize) -> Result<Vec<TaskId>, StoreError>;
    /// Tasks whose current attempt is live (assigned or running).
    fn live_tasks(&mut self) -> Result<Vec<Task>, StoreError>;
    /// Every task in one of `states`, oldest first (for small sets: retrying tasks, tasks that
    /// hold concerns).
    fn tasks_in_states(&mut self, states: &[TaskState]) -> Result<Vec<Task>, StoreError>;
    /// Retrying tasks whose backoff ended at `now`, soonest due first, at most `limit`.
    fn due_retries(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError>;
    /// Every task of an orchestration, oldest first.
    fn tasks_of(&mut self, orchestration: OrchestrationId) -> Result<Vec<Task>, StoreError>;
    /// True when the orchestration has a task that has not ended (neither completed nor
    /// cancelled). Its cost does not grow with the orchestration's tasks.
    fn has_unfinished_tasks(&mut self, orchestration: OrchestrationId) -> Result<bool, StoreError>;

    /// The orchestration with this id.
    fn orchestration(&mut self, id: OrchestrationId) -> Result<Option<Orchestration>, StoreError>;
    /// Inserts or updates an orchestration.
    fn save_orchestration(&mut self, o: &Orchestration) -> Result<(), StoreError>;

    /// The memory entry with this id.
    fn memory(&mut self, id: MemoryId) -> Result<Option<Memory>, StoreError>;
    /// Inserts or updates a memory entry, with its words in the full-text index.
    fn save_memory(&mut self, memory: &Memory) -> Result<(), StoreError>;
    /// Live, unpinned entries whose deadline is at or before `now` (what the sweep expires),
    /// soonest first, at most `limit`.
    fn expired_memories(&mut self, now: Timestamp, limit: usize)
    -> Result<Vec<Memory>, StoreError>;

    /// Whether any entry, live or not, belongs to one of `scopes` (an index seek per scope): a
    /// briefing whose scopes hold none asks memory nothing more.
    fn holds_memories(&mut self, scopes: &[MemoryScope]) -> Result<bool, StoreError>;
    /// The live entries of `scopes` at `now` that are pinned or critical (what every briefing
    /// of those scopes includes): pinned critical ones first, then critical, then pinned; the
    /// oldest first within each; at most `limit`.
    fn essential_memories(
        &mut self,
        scopes: &[MemoryScope],
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Memory>, StoreError>;
    /// As [`ReadStore::search_memories`], inside the transaction.
    fn search_memories(
        &mut self,
        query: &MemoryQuery,
        filter: &MemoryFilter,
        limit: usize,
        now: Timestamp,
    ) -> Result<MemoryHits, StoreError>;

    /// Appends events to the log, in order, stamped `at`.
    fn append(&mut self, at: Timestamp, events: &[DomainEvent]) -> Result<(), StoreError>;
}

/// Runs use cases in write transactions. Implementations may group several callers' work into one
/// commit, but each call returns only after its own work has committed durably (or failed).
///
/// When `work` returns `Err`, nothing it wrote is kept.
///
/// `work` may run more than once: when a store undoes a group of callers' work because another
/// caller's work failed after writing, it runs the others again, and only the run that commits
/// counts. So `work` is `Fn`: it reads what it captured and changes nothing but the transaction
/// (what it has to do after the commit, it returns).
pub trait UnitOfWork: Send + Sync {
    /// Runs `work` in a transaction and commits it.
    fn write<R, E, F>(&self, work: F) -> Result<R, E>
    where
        F: Fn(&mut dyn Transaction) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static;
}

/// Queries, served from committed state on read connections.
pub trait ReadStore: Send + Sync {
    /// The agent registered under `name`.
    fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError>;
    /// Agents matching the filter, by name.
    fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError>;
    /// The task with this id.
    fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// The state and current fencing token of each task of `ids` that exists (in no particular
    /// order): what a heartbeat is checked against, one index lookup per task.
    fn task_fencing(
        &self,
        ids: &[TaskId],
    ) -> Result<Vec<(TaskId, TaskState, FencingToken)>, StoreError>;
    /// Every live (assigned or running) attempt: its task, fencing token and lease as assigned.
    /// What the lease book starts from (ADR 0023), read without the writer.
    fn live_leases(&self) -> Result<Vec<(TaskId, FencingToken, Timestamp)>, StoreError>;
    /// Ids of tasks starting with `prefix` (lowercase), at most `limit`, in id order.
    fn task_ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<TaskId>, StoreError>;
    /// One page of tasks matching the filter, oldest first.
    fn tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, StoreError>;
    /// The orchestration with this id.
    fn orchestration(&self, id: OrchestrationId) -> Result<Option<Orchestration>, StoreError>;
    /// Ids of orchestrations starting with `prefix` (lowercase), at most `limit`.
    fn orchestration_ids_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<OrchestrationId>, StoreError>;
    /// Every orchestration, oldest first.
    fn orchestrations(&self) -> Result<Vec<Orchestration>, StoreError>;
    /// The memory entry with this id.
    fn memory(&self, id: MemoryId) -> Result<Option<Memory>, StoreError>;
    /// Ids of memory entries starting with `prefix` (lowercase), at most `limit`, in id order.
    fn memory_ids_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<MemoryId>, StoreError>;
    /// One page of the entries `filter` lets through at `now`, newest first.
    fn memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
        now: Timestamp,
    ) -> Result<MemoryList, StoreError>;
    /// The entries `filter` lets through at `now` that have every word of `query` (or, when
    /// none has them all, any), pinned first, then by relevance weighed by tier, at most
    /// `limit`. The words are matched as words, never read as query syntax.
    fn search_memories(
        &self,
        query: &MemoryQuery,
        filter: &MemoryFilter,
        limit: usize,
        now: Timestamp,
    ) -> Result<MemoryHits, StoreError>;
    /// Tasks waiting for a person's decision, oldest request first.
    fn tasks_awaiting_approval(&self) -> Result<Vec<Task>, StoreError>;
    /// Tasks in a final state (completed, cancelled) whose worktree still exists and that have
    /// not changed since `before`, oldest first.
    fn finished_tasks_with_worktrees(&self, before: Timestamp) -> Result<Vec<Task>, StoreError>;
    /// Counts for `maos status`.
    fn status(&self) -> Result<StatusReport, StoreError>;
    /// Events with a sequence number greater than `after`, in order, at most `limit`.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Every event of one aggregate (by its id as text), in order.
    fn events_of(&self, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError>;
    /// Waits until the log's last sequence number is greater than `after` (returns at once if it
    /// already is) or until `timeout` has passed, and returns the last sequence number known.
    ///
    /// Commits made through this store wake the wait as they happen; commits made by another
    /// process (or another store on the same database) are noticed when the wait times out, so
    /// callers that must see those pass a short timeout.
    fn wait_for_events(&self, after: u64, timeout: Duration) -> Result<u64, StoreError>;
    /// Everything the store holds, read in one snapshot and handed to `visit` one item at a
    /// time: every event in sequence order, then every agent (removed ones too), every task,
    /// every orchestration and every memory entry. For `admin verify`, which compares folds with stored state.
    fn scan(&self, visit: &mut dyn FnMut(Scanned)) -> Result<(), StoreError>;
}

/// One item of [`ReadStore::scan`].
#[derive(Debug, Clone)]
pub enum Scanned {
    /// An event of the log.
    Event(StoredEvent),
    /// An agent as stored (boxed, as a task is: an agent is much larger than an event).
    Agent(Box<Agent>),
    /// A task as stored, with its attempts (boxed: a task is much larger than the others).
    Task(Box<Task>),
    /// An orchestration as stored.
    Orchestration(Orchestration),
    /// A memory entry as stored.
    Memory(Memory),
}

/// An attempt the daemon should run: committed (assigned, with its fencing token and lease)
/// before it is handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The task as assigned.
    pub task: Task,
    /// The agent that got it, with its settings.
    pub agent: Agent,
    /// The attempt number.
    pub attempt: u32,
    pub fencing: FencingToken,
    /// The agent's session of the previous attempt, when the same agent made it (a retry
    /// resumes it).
    pub resume: Option<String>,
    /// Where a new worktree starts, when not from the task's base: a task of an orchestration
    /// that depends on others starts from its integration branch, which holds their work.
    pub start_from: Option<String>,
}

/// Runs attempts: the daemon's supervisor. Both calls return at once; the runtime reports
/// progress and results through the application API (`start_attempt`, `heartbeat`,
/// `complete_attempt`, `fail_attempt`).
pub trait AgentRuntime: Send + Sync + fmt::Debug {
    /// Starts running an assigned attempt.
    fn launch(&self, launch: Launch);
    /// Stops a running attempt (its task was cancelled or its lease expired); nothing happens
    /// when the runtime does not run it.
    fn stop(&self, task: TaskId, attempt: u32, reason: &str);
    /// The attempt (task, attempt number) the runtime gave `credential` to, while that attempt
    /// runs here; none for any other credential.
    fn credential_holder(&self, credential: &crate::api::AgentCredential) -> Option<(TaskId, u32)> {
        let _ = credential;
        None
    }
    /// Adds an agent's progress note to the log of its attempt, when the attempt runs here.
    fn progress(&self, task: TaskId, attempt: u32, note: &maos_domain::ProgressNote) {
        let _ = (task, attempt, note);
    }
}

/// MAOS's own tools, as an agent's loop offers them to its model beside its workspace tools
/// (the tools an agent may call over MCP), called for the attempt a credential stands for.
pub trait AgentToolbox: Send + Sync + fmt::Debug {
    /// The tools: name, description and the JSON Schema of the arguments (JSON text).
    fn tools(&self) -> Vec<ToolSpec>;
    /// Calls tool `name` with `arguments` (JSON text) for the attempt `credential` stands for:
    /// the answer as JSON text, and whether it is a refusal. Blocks while the tool waits.
    fn call(
        &self,
        credential: &crate::api::AgentCredential,
        name: &str,
        arguments: &str,
    ) -> ToolAnswer;
}

/// A tool of an [`AgentToolbox`], as a model is offered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON Schema of its arguments (an object), as JSON text.
    pub schema: String,
}

/// What a call of an [`AgentToolbox`]'s tool answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAnswer {
    /// The answer (or the refusal: what went wrong and what to do about it), as JSON text.
    pub json: String,
    /// True when the call was refused or failed.
    pub is_error: bool,
}

/// Where attempts' captured output is kept.
pub trait AttemptLogs: Send + Sync + fmt::Debug {
    /// Up to `max` bytes of the log of `attempt` of `task` from `offset`; when there are none yet,
    /// waits up to `wait` for some. Empty when there is nothing (yet), including no log at all.
    fn read(
        &self,
        task: TaskId,
        attempt: u32,
        offset: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<u8>, StoreError>;
}

/// Reads a plan's text, in the plan file's format (JSON or TOML), into a checked plan: the port
/// through which the planning engine uses the one plan checker there is, the one that checks
/// plan files. Pure: no I/O.
pub trait PlanReader: Send + Sync + fmt::Debug {
    /// The plan in `text`, or every problem found in it, in the order of the text. A task may
    /// only require capabilities from `offered` (the registered agents').
    fn read(&self, text: &str, offered: &CapabilitySet) -> Result<Plan, Vec<PlanProblem>>;

    /// `plan` as the JSON text of a plan file, which `read` gives back as the same plan.
    fn write(&self, plan: &Plan) -> String;

    /// The JSON Schema of the plan file, generated from the keys `read` accepts.
    fn schema(&self) -> String;

    /// A short plan file (JSON) that `read` accepts, to show a planner the format.
    fn example(&self) -> String;
}

/// One problem of a plan's text, with its place (line and column from 1; 0 when the problem
/// is the whole text's, such as a missing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

/// A complete store: transactions for writes, connections for reads.
pub trait Store: UnitOfWork + ReadStore + 'static {}

impl<T: UnitOfWork + ReadStore + 'static> Store for T {}
