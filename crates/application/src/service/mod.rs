//! The in-process implementation of [`MaosApi`]: each use case loads aggregates in a write
//! transaction, runs the domain command, and saves the new state with its events. The use cases
//! live by family in the submodules; this module holds the service itself, what every family
//! shares (the scheduled transaction, id resolution), and the [`MaosApi`] table that routes each
//! call to its family.

mod agent_calls;
mod agents;
mod approvals;
mod effects;
mod memory;
mod orchestrations;
mod planning;
mod queries;
mod tasks;
mod upkeep;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use maos_domain::agent::AgentSpec;
use maos_domain::graph::find_path;
use maos_domain::policy::balancer;
use maos_domain::policy::routing::{self, RouteRule};
use maos_domain::{
    AdapterKind, Agent, AgentId, AgentName, AgentStatus, AttemptStart, DomainEvent, DurationMs,
    FencingToken, Gate, Integration, Memory, Orchestration, OrchestrationId, OrchestrationSpec,
    RunReport, Task, TaskId, TaskSpec, TaskState, TaskWorkspace, Timestamp, TransitionError,
};

use crate::api::*;
use crate::error::{
    AgentError, Entity, MemoryError, NoWorktree, OrchestrationError, QueryError, Refusal, TaskError,
};
use crate::leases::{Holder, LeaseBook};
use crate::ports::{
    AgentRuntime, AttemptLogs, Clock, IdSource, Launch, PlanReader, Store, StoreError, Transaction,
};
use crate::recovery::{FailurePolicy, after_failure, release_slot};
use crate::schedule::{Changes, Scheduler, assign_in_tx, launch_of};
use crate::workspace::{MergeOutcome, Workspace, Workspaces};

use effects::*;
pub use memory::{FORGET_REASON_MAX, MEMORY_PAGE_MAX};
pub use queries::FOLLOW_BATCH;

/// Settings of the service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    /// How long an assignment's lease lasts without a heartbeat.
    pub lease: DurationMs,
    /// How many least-loaded candidates the store hands to the load balancer.
    pub balancer_candidates: usize,
    /// Retries' backoff and agents' circuit breaker.
    pub failure: FailurePolicy,
    /// The most tokens an attempt's briefing may take (0: no limit).
    pub briefing_tokens: u32,
    /// A plan that passes the checks is approved without asking a person.
    pub approve_plans: bool,
    /// How long an ephemeral memory entry lives (unless pinned).
    pub memory_ephemeral_ttl: DurationMs,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            lease: DurationMs::from_millis(10_000).unwrap_or(DurationMs::MAX),
            balancer_candidates: 4,
            failure: FailurePolicy::default(),
            briefing_tokens: 8_000,
            approve_plans: false,
            memory_ephemeral_ttl: DurationMs::from_millis(7 * 86_400_000)
                .unwrap_or(DurationMs::MAX),
        }
    }
}

/// The application service over a store, a clock and an id source; with an agent runtime (in the
/// daemon) it also schedules: every transaction that makes a task ready or frees a slot assigns
/// what it can, and the runtime runs it after the commit.
#[derive(Debug)]
pub struct Service<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    config: ServiceConfig,
    runtime: Option<Arc<dyn AgentRuntime>>,
    logs: Option<Arc<dyn AttemptLogs>>,
    workspaces: Option<Arc<dyn Workspaces>>,
    /// The plan checker, for planners' answers and people's plans.
    plans: Option<Arc<dyn PlanReader>>,
    /// Routing rules for tasks that name no capabilities.
    routes: Arc<[RouteRule]>,
    /// The leases of live attempts as heartbeats renewed them (ADR 0023), shared by clones.
    leases: Arc<Mutex<LeaseBook>>,
}

impl<S> Clone for Service<S> {
    fn clone(&self) -> Self {
        Service {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            ids: Arc::clone(&self.ids),
            config: self.config,
            runtime: self.runtime.clone(),
            logs: self.logs.clone(),
            workspaces: self.workspaces.clone(),
            plans: self.plans.clone(),
            routes: Arc::clone(&self.routes),
            leases: Arc::clone(&self.leases),
        }
    }
}

/// What [`Service::reconcile`] found and did at daemon start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Attempts the previous daemon left live, now interrupted: (task, attempt, pid).
    pub interrupted: Vec<(TaskId, u32, Option<u32>)>,
    /// Attempts assigned afterwards (reruns and waiting work).
    pub launched: usize,
}

/// How many candidates an ambiguous prefix lists.
const AMBIGUOUS_SHOWN: usize = 10;

impl<S: Store> Service<S> {
    /// A service over `store`.
    pub fn new(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        config: ServiceConfig,
    ) -> Self {
        Service {
            store,
            clock,
            ids,
            config,
            runtime: None,
            logs: None,
            workspaces: None,
            plans: None,
            routes: Arc::from(Vec::new()),
            leases: Arc::default(),
        }
    }

    /// The same service with routing rules: a task created without capabilities gets them
    /// from the first rule that matches its title or prompt.
    #[must_use]
    pub fn with_routes(mut self, routes: Vec<RouteRule>) -> Self {
        self.routes = Arc::from(routes);
        self
    }

    /// The same service with git worktrees for tasks that name a repository.
    #[must_use]
    pub fn with_workspaces(mut self, workspaces: Arc<dyn Workspaces>) -> Self {
        self.workspaces = Some(workspaces);
        self
    }

    /// The same service with an agent runtime: it schedules and launches attempts.
    #[must_use]
    pub fn with_runtime(mut self, runtime: Arc<dyn AgentRuntime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The same service checking plans (planners' answers, people's edits) with `reader`.
    #[must_use]
    pub fn with_plans(mut self, reader: Arc<dyn PlanReader>) -> Self {
        self.plans = Some(reader);
        self
    }

    /// The same service reading attempts' logs from `logs`.
    #[must_use]
    pub fn with_logs(mut self, logs: Arc<dyn AttemptLogs>) -> Self {
        self.logs = Some(logs);
        self
    }

    fn scheduler(&self) -> Option<Scheduler> {
        self.runtime.as_ref().map(|_| Scheduler {
            lease: self.config.lease,
            candidates: self.config.balancer_candidates,
            briefing_tokens: self.config.briefing_tokens,
        })
    }

    /// Runs `work` in a transaction, then (with a runtime) the scheduler in the same transaction;
    /// after the commit, hands the new attempts to the runtime and stops the ones to stop.
    fn write_scheduled<R, E, F>(&self, at: Timestamp, work: F) -> Result<R, E>
    where
        F: Fn(&mut dyn Transaction, &mut Changes) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_scheduled_then(at, work, |_, _| {})
    }

    /// Like [`Self::write_scheduled`]; `fix` updates the result with the attempts the scheduler
    /// assigned in the same transaction (so that a created task is returned as assigned).
    fn write_scheduled_then<R, E, F>(
        &self,
        at: Timestamp,
        work: F,
        fix: fn(&mut R, &[Launch]),
    ) -> Result<R, E>
    where
        F: Fn(&mut dyn Transaction, &mut Changes) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let scheduler = self.scheduler();
        let (mut result, mut changes) = self.store.write(move |tx| {
            let mut changes = Changes::default();
            let result = work(tx, &mut changes)?;
            if let Some(s) = scheduler {
                s.fill_slots(tx, &mut changes, at).map_err(E::from)?;
            }
            Ok::<_, E>((result, changes))
        })?;
        if !changes.launches.is_empty() {
            fix(&mut result, &changes.launches);
        }
        let blocked = std::mem::take(&mut changes.blocked);
        self.dispatch(changes);
        // A task blocked in a plan made of versions: its planner revises the rest of the plan
        // (in a transaction of its own, after this one; nothing to undo if it cannot).
        for task in blocked {
            self.revise_after_block(task);
        }
        Ok(result)
    }

    fn dispatch(&self, changes: Changes) {
        if !changes.launches.is_empty() {
            let mut book = self.lease_book();
            for launch in &changes.launches {
                if let Some(attempt) = launch.task.current_attempt() {
                    book.extend((launch.task.id, launch.fencing), attempt.lease_expires_at);
                }
            }
        }
        let Some(runtime) = &self.runtime else {
            return;
        };
        for (task, attempt, why) in changes.stops {
            runtime.stop(task, attempt, &why);
        }
        for launch in changes.launches {
            runtime.launch(launch);
        }
    }

    /// The lease book (a poisoned lock is taken over: the book stays consistent between calls).
    fn lease_book(&self) -> MutexGuard<'_, LeaseBook> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    fn resolve_task(&self, r: &IdRef) -> Result<TaskId, QueryError> {
        let ids = self
            .store
            .task_ids_with_prefix(r.as_str(), AMBIGUOUS_SHOWN + 1)?;
        unique(r, Entity::Task, ids)
    }

    fn resolve_orchestration(&self, r: &IdRef) -> Result<OrchestrationId, QueryError> {
        let ids = self
            .store
            .orchestration_ids_with_prefix(r.as_str(), AMBIGUOUS_SHOWN + 1)?;
        unique(r, Entity::Orchestration, ids)
    }
}

impl<S: Store> MaosApi for Service<S> {
    fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError> {
        Service::register_agent(self, cmd)
    }

    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        Service::drain_agent(self, name)
    }

    fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        Service::resume_agent(self, name)
    }

    fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        Service::remove_agent(self, name)
    }

    fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError> {
        Service::get_agent(self, name)
    }

    fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError> {
        Service::list_agents(self, filter)
    }

    fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError> {
        Service::create_task(self, cmd)
    }

    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        Service::create_tasks(self, cmds)
    }

    fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError> {
        Service::add_dependency(self, task, on)
    }

    fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError> {
        Service::assign_task(self, cmd)
    }

    fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: AttemptStart,
    ) -> Result<Task, TaskError> {
        Service::start_attempt(self, task, fencing, start)
    }

    fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: TaskWorkspace,
    ) -> Result<Task, TaskError> {
        Service::record_workspace(self, task, fencing, workspace)
    }

    fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError> {
        Service::request_approval(self, task, fencing, tool, subject)
    }

    fn approve(&self, task: &IdRef) -> Result<Task, TaskError> {
        Service::approve(self, task)
    }

    fn reject(&self, task: &IdRef, reason: String, cancel: bool) -> Result<Task, TaskError> {
        Service::reject(self, task, reason, cancel)
    }

    fn approvals(&self) -> Result<Vec<ApprovalRequest>, QueryError> {
        Service::approvals(self)
    }

    fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError> {
        Service::diff_summary(self, task)
    }

    fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError> {
        Service::task_diff(self, task, attempt, stat)
    }

    fn rollback(&self, task: &IdRef, to_attempt: Option<u32>) -> Result<Task, TaskError> {
        Service::rollback(self, task, to_attempt)
    }

    fn gc(&self, req: &GcRequest) -> Result<Vec<GcEntry>, TaskError> {
        Service::gc(self, req)
    }

    fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError> {
        Service::record_session(self, task, fencing, session)
    }

    fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError> {
        Service::heartbeat(self, beats)
    }

    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        Service::complete_attempt(self, task, fencing, summary, report)
    }

    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        Service::fail_attempt(self, task, fencing, error, report)
    }

    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError> {
        Service::cancel_task(self, task, reason)
    }

    fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError> {
        Service::retry_task(self, task, attempts)
    }

    fn task_waiting(&self, task: &IdRef) -> Result<Vec<WaitReason>, QueryError> {
        Service::task_waiting(self, task)
    }

    fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<AttemptBriefing, QueryError> {
        Service::task_briefing(self, task, attempt)
    }

    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        Service::get_task(self, task)
    }

    fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError> {
        Service::read_log(self, req)
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, QueryError> {
        Service::list_tasks(self, filter, page)
    }

    fn create_orchestration(
        &self,
        cmd: CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError> {
        Service::create_orchestration(self, cmd)
    }

    fn create_plan(&self, plan: CreatePlan) -> Result<PlanCreated, OrchestrationError> {
        Service::create_plan(self, plan)
    }

    fn plan_goal(&self, goal: PlanGoal) -> Result<PlanningStarted, OrchestrationError> {
        Service::plan_goal(self, goal)
    }

    fn discuss_goal(&self, goal: PlanGoal) -> Result<Task, OrchestrationError> {
        Service::discuss_goal(self, goal)
    }

    fn plan_history(&self, id: &IdRef) -> Result<PlanHistory, QueryError> {
        Service::plan_history(self, id)
    }

    fn propose_plan(&self, id: &IdRef, text: String) -> Result<Orchestration, OrchestrationError> {
        Service::propose_plan(self, id, text)
    }

    fn regenerate_plan(
        &self,
        id: &IdRef,
        feedback: String,
    ) -> Result<PlanningStarted, OrchestrationError> {
        Service::regenerate_plan(self, id, feedback)
    }

    fn approve_plan(
        &self,
        id: &IdRef,
        version: Option<u32>,
    ) -> Result<PlanCreated, OrchestrationError> {
        Service::approve_plan(self, id, version)
    }

    fn reject_plan(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        Service::reject_plan(self, id, reason)
    }

    fn revise_plan(
        &self,
        id: &IdRef,
        feedback: Option<String>,
    ) -> Result<PlanningStarted, OrchestrationError> {
        Service::revise_plan(self, id, feedback, None)
    }

    fn start_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        Service::start_orchestration(self, id)
    }

    fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError> {
        Service::pause_orchestration(self, id, now)
    }

    fn resume_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        Service::resume_orchestration(self, id)
    }

    fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        Service::cancel_orchestration(self, id, reason)
    }

    fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<MergeReport, OrchestrationError> {
        Service::merge_orchestration(self, id, into)
    }

    fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError> {
        Service::get_orchestration(self, id)
    }

    fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError> {
        Service::list_orchestrations(self)
    }

    fn orchestration_report(&self, id: &IdRef) -> Result<OrchestrationReport, QueryError> {
        Service::orchestration_report(self, id)
    }

    fn status(&self) -> Result<StatusReport, QueryError> {
        Service::status(self)
    }

    fn metrics(&self, since: Option<Timestamp>) -> Result<crate::metrics::Metrics, QueryError> {
        Service::metrics(self, since)
    }

    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, QueryError> {
        Service::read_events(self, after, limit)
    }

    fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError> {
        Service::follow_events(self, since)
    }

    fn add_memory(&self, cmd: AddMemory) -> Result<Memory, MemoryError> {
        Service::add_memory(self, cmd)
    }

    fn get_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        Service::get_memory(self, id)
    }

    fn list_memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
    ) -> Result<MemoryList, MemoryError> {
        Service::list_memories(self, filter, page)
    }

    fn search_memories(&self, search: &MemorySearch) -> Result<MemoryHits, MemoryError> {
        Service::search_memories(self, search)
    }

    fn pin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        Service::pin_memory(self, id)
    }

    fn unpin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError> {
        Service::unpin_memory(self, id)
    }

    fn forget_memory(&self, id: &IdRef, reason: Option<String>) -> Result<Memory, MemoryError> {
        Service::forget_memory(self, id, reason)
    }

    fn authenticate_agent(&self, credential: &AgentCredential) -> Result<AgentScope, TaskError> {
        Service::authenticate_agent(self, credential)
    }

    fn report_progress(
        &self,
        task: TaskId,
        fencing: FencingToken,
        note: maos_domain::ProgressNote,
    ) -> Result<Task, TaskError> {
        Service::report_progress(self, task, fencing, note)
    }

    fn create_subtasks(
        &self,
        task: TaskId,
        fencing: FencingToken,
        cmd: CreateSubtasks,
    ) -> Result<Vec<Created>, TaskError> {
        Service::create_subtasks(self, task, fencing, cmd)
    }
}
