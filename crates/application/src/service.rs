//! The in-process implementation of [`MaosApi`]: each use case loads aggregates in a write
//! transaction, runs the domain command, and saves the new state with its events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use maos_domain::agent::AgentSpec;
use maos_domain::graph::find_path;
use maos_domain::policy::balancer;
use maos_domain::policy::routing::{self, RouteRule};
use maos_domain::{
    AdapterKind, Agent, AgentId, AgentName, AgentStatus, AttemptStart, DomainEvent, DurationMs,
    FencingToken, Gate, Integration, Orchestration, OrchestrationId, OrchestrationSpec, RunReport,
    Task, TaskId, TaskSpec, TaskState, TaskWorkspace, Timestamp,
};

use crate::api::*;
use crate::error::{AgentError, Entity, OrchestrationError, QueryError, TaskError};
use crate::ports::{
    AgentRuntime, AttemptLogs, Clock, IdSource, Launch, Store, StoreError, Transaction,
};
use crate::recovery::{FailurePolicy, after_failure, release_slot};
use crate::schedule::{Changes, Scheduler, assign_in_tx, launch_of};
use crate::workspace::{MergeOutcome, Workspace, Workspaces};

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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            lease: DurationMs::from_millis(10_000).unwrap_or(DurationMs::MAX),
            balancer_candidates: 4,
            failure: FailurePolicy::default(),
            briefing_tokens: 8_000,
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
    /// Routing rules for tasks that name no capabilities.
    routes: Arc<[RouteRule]>,
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
            routes: Arc::clone(&self.routes),
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
            routes: Arc::from(Vec::new()),
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

    fn git(&self) -> Result<&Arc<dyn Workspaces>, QueryError> {
        self.workspaces.as_ref().ok_or_else(|| {
            QueryError::Workspace(crate::workspace::WorkspaceError::NoGit(
                "this MAOS was built without workspaces".into(),
            ))
        })
    }

    /// The worktree of task `t`, or why there is none.
    fn workspace_of(t: &Task) -> Result<Workspace, QueryError> {
        let Some(ws) = &t.workspace else {
            return Err(QueryError::NoWorkspace {
                task: t.id.short(),
                why: if t.spec.workspace.is_some() {
                    " yet: its first attempt has not started".into()
                } else {
                    String::new()
                },
            });
        };
        Ok(Workspace {
            repo: ws.repo.clone().into(),
            path: ws.path.clone().into(),
            branch: ws.branch.clone(),
            base: ws.base.clone(),
        })
    }

    /// Integrates a task's accepted work into its orchestration's integration branch (before
    /// the transaction that completes it: git is not transactional, the merge is idempotent).
    fn integrate(&self, t: &Task) -> Result<Integration, TaskError> {
        let (Some(ws), Some(oid), Some(git)) =
            (&t.workspace, t.spec.orchestration, &self.workspaces)
        else {
            return Ok(Integration::None);
        };
        let Some(o) = self.store.orchestration(oid)? else {
            return Ok(Integration::None);
        };
        let into = o.integration_branch();
        Ok(
            match git.merge(Path::new(&ws.repo), &ws.branch, &into, &ws.base) {
                Ok(MergeOutcome::Merged { commit } | MergeOutcome::UpToDate { commit }) => {
                    Integration::Merged { into, commit }
                }
                Ok(MergeOutcome::Conflict { paths }) => Integration::Conflict { into, paths },
                // Work that was accepted is never lost: it waits for a person, saying why.
                Err(e) => Integration::Failed {
                    into,
                    reason: e.to_string(),
                },
            },
        )
    }

    /// The same service with an agent runtime: it schedules and launches attempts.
    #[must_use]
    pub fn with_runtime(mut self, runtime: Arc<dyn AgentRuntime>) -> Self {
        self.runtime = Some(runtime);
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
        F: FnOnce(&mut dyn Transaction, &mut Changes) -> Result<R, E> + Send + 'static,
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
        F: FnOnce(&mut dyn Transaction, &mut Changes) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let scheduler = self.scheduler();
        let (mut result, changes) = self.store.write(move |tx| {
            let mut changes = Changes::default();
            let result = work(tx, &mut changes)?;
            if let Some(s) = scheduler {
                s.run(tx, &mut changes, at).map_err(E::from)?;
            }
            Ok::<_, E>((result, changes))
        })?;
        if !changes.launches.is_empty() {
            fix(&mut result, &changes.launches);
        }
        self.dispatch(changes);
        Ok(result)
    }

    fn dispatch(&self, changes: Changes) {
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

    /// Runs an orchestration command (`op`) in a scheduled transaction and saves the
    /// orchestration with its events.
    fn orchestration_command<F>(
        &self,
        id: &IdRef,
        op: F,
    ) -> Result<Orchestration, OrchestrationError>
    where
        F: FnOnce(
                &mut dyn Transaction,
                &mut Orchestration,
                Timestamp,
                &mut Changes,
            ) -> Result<Vec<maos_domain::OrchestrationEvent>, OrchestrationError>
            + Send
            + 'static,
    {
        let oid = self.resolve_orchestration(id)?;
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut o = tx.orchestration(oid)?.ok_or_else(|| {
                OrchestrationError::Query(QueryError::NotFound {
                    what: Entity::Orchestration,
                    reference: oid.to_string(),
                })
            })?;
            let events = op(tx, &mut o, at, changes)?;
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
            )?;
            Ok(o)
        })
    }

    /// At daemon start: every attempt that a previous daemon left assigned or running on an agent
    /// the daemon runs is interrupted (its process died with that daemon) and goes through the
    /// retry policy; then every free slot gets work.
    pub fn reconcile(&self) -> Result<Reconciled, TaskError> {
        let at = self.clock.now();
        let policy = self.config.failure;
        let scheduler = self.scheduler();
        let (mut report, changes) = self.store.write(move |tx| {
            let mut report = Reconciled::default();
            let mut changes = Changes::default();
            for mut t in tx.live_tasks()? {
                let Some(attempt) = t.current_attempt().cloned() else {
                    continue;
                };
                let runs_here = tx
                    .agent(&attempt.agent)?
                    .is_some_and(|a| a.adapter.is_run_by_daemon());
                if !runs_here {
                    continue;
                }
                let reason = "the daemon stopped while the attempt ran".to_owned();
                // Not the task's doing: the attempt does not count against it.
                interrupt(tx, &mut t, reason, true, policy, at, &mut changes)?;
                report.interrupted.push((t.id, attempt.number, attempt.pid));
            }
            if let Some(s) = scheduler {
                s.run(tx, &mut changes, at)?;
                s.fill_all(tx, at, &mut changes.launches)?;
            }
            Ok::<_, TaskError>((report, changes))
        })?;
        report.launched = changes.launches.len();
        self.dispatch(changes);
        Ok(report)
    }

    /// Interrupts every live attempt whose lease ran out before now (no heartbeat came: its
    /// runner died or hung) and requeues its task under the retry policy. Returns how many.
    pub fn expire_leases(&self) -> Result<usize, TaskError> {
        const BATCH: usize = 1000;
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let ids = tx.expired_leases(at, BATCH)?;
            for id in &ids {
                let mut t = load_task(tx, *id)?;
                if !t.lease_expired(at) {
                    continue;
                }
                let attempt = t.attempts_used();
                let reason = "its lease expired: no heartbeat came in time".to_owned();
                // Its runner hung or died: that counts, or a task that hangs every agent would
                // retry forever.
                interrupt(tx, &mut t, reason.clone(), false, policy, at, changes)?;
                changes.stops.push((t.id, attempt, reason));
            }
            Ok(ids.len())
        })
    }

    /// Makes ready every retrying task whose backoff has ended (the daemon calls this on a
    /// timer). Returns how many.
    pub fn promote_due_retries(&self) -> Result<usize, TaskError> {
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            const BATCH: usize = 1000;
            let mut n = 0;
            for mut t in tx.due_retries(at, BATCH)? {
                if !t.retry_due(at) {
                    continue;
                }
                let events = t.make_ready(at)?;
                save_task_events(tx, &t, events, at)?;
                if t.state == TaskState::Ready {
                    changes.readied.push(t.id);
                }
                n += 1;
            }
            Ok(n)
        })
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

    fn agent_command(
        &self,
        name: &AgentName,
        op: fn(
            &mut Agent,
            Timestamp,
        ) -> Result<Vec<maos_domain::AgentEvent>, maos_domain::TransitionError>,
    ) -> Result<Agent, AgentError> {
        let name = name.clone();
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut agent = tx
                .agent(&name)?
                .filter(|a| a.status != AgentStatus::Removed)
                .ok_or_else(|| AgentError::NotFound {
                    name: name.to_string(),
                })?;
            let events = op(&mut agent, at)?;
            tx.save_agent(&agent)?;
            tx.append(
                at,
                &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
            )?;
            Ok(agent)
        })
    }

    /// Resolves the references of a create before the write (ids are immutable, so a prefix
    /// resolved now names the same task inside the transaction).
    fn prepare_create(&self, cmd: CreateTask) -> Result<PreparedCreate, TaskError> {
        let mut depends_on = Vec::with_capacity(cmd.depends_on.len());
        for r in &cmd.depends_on {
            match self.resolve_task(r) {
                Ok(id) => depends_on.push(id),
                Err(QueryError::NotFound { .. }) => {
                    return Err(TaskError::DependencyNotFound {
                        reference: r.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let orchestration = match &cmd.orchestration {
            None => None,
            Some(r) => match self.resolve_orchestration(r) {
                Ok(id) => Some(id),
                Err(QueryError::NotFound { .. }) => {
                    return Err(TaskError::OrchestrationNotFound {
                        reference: r.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            },
        };
        // A task of an orchestration inherits its repository and verification command.
        let (mut workspace, mut verify) = (cmd.workspace, cmd.verify);
        if let Some(o) = orchestration
            && let Some(o) = self.store.orchestration(o)?
        {
            if workspace.is_none() {
                workspace.clone_from(&o.workspace);
            }
            if verify.is_none() {
                verify.clone_from(&o.verify);
            }
        }
        // Refuse a repository MAOS must not work from before anything is created.
        if let (Some(ws), Some(git)) = (&workspace, &self.workspaces) {
            git.check(Path::new(&ws.repo), ws.base.as_deref())?;
        }
        let spec = task_spec(
            CreateTask {
                workspace,
                verify,
                ..cmd
            },
            depends_on.into_iter().collect(),
            orchestration,
            &self.routes,
        );
        Ok(PreparedCreate {
            id: TaskId::from_bits(self.ids.next_bits()),
            spec,
        })
    }
}

/// The one id a reference matched: not found when none did, ambiguous (listing the first
/// candidates) when several did.
fn unique<Id: Copy + ToString>(r: &IdRef, what: Entity, ids: Vec<Id>) -> Result<Id, QueryError> {
    match ids.as_slice() {
        [] => Err(QueryError::NotFound {
            what,
            reference: r.to_string(),
        }),
        [one] => Ok(*one),
        many => Err(QueryError::Ambiguous {
            prefix: r.to_string(),
            candidates: many
                .iter()
                .take(AMBIGUOUS_SHOWN)
                .map(ToString::to_string)
                .collect(),
        }),
    }
}

/// Attempt `n` of `t`, or the error that names the attempts it has.
fn attempt_of(t: &Task, n: u32) -> Result<&maos_domain::Attempt, QueryError> {
    t.attempts
        .iter()
        .find(|a| a.number == n)
        .ok_or_else(|| QueryError::NoAttempt {
            task: t.id.short(),
            attempt: Some(n),
            made: t.attempts_used(),
        })
}

/// Replaces created tasks by their assigned state when the scheduler assigned them.
fn refresh(created: &mut [Created], launches: &[Launch]) {
    for c in created.iter_mut() {
        if let Some(l) = launches.iter().find(|l| l.task.id == c.task.id) {
            c.task = l.task.clone();
        }
    }
}

struct PreparedCreate {
    id: TaskId,
    spec: TaskSpec,
}

fn save_task_events(
    tx: &mut dyn Transaction,
    task: &Task,
    events: Vec<maos_domain::TaskEvent>,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.save_task(task)?;
    tx.append(at, &DomainEvent::tasks(task.id, events).collect::<Vec<_>>())
}

/// The spec of a task to create: `cmd` with its references resolved; a task that names no
/// capabilities gets them (and a tier, unless it chose one) from the first routing rule that
/// matches its title or prompt.
fn task_spec(
    cmd: CreateTask,
    depends_on: std::collections::BTreeSet<TaskId>,
    orchestration: Option<OrchestrationId>,
    routes: &[RouteRule],
) -> TaskSpec {
    let (mut capabilities, mut tier) = (cmd.capabilities, cmd.tier);
    if capabilities.is_empty()
        && let Some(rule) = routing::route(routes, cmd.title.as_str(), &cmd.prompt)
    {
        capabilities = rule.capabilities.clone();
        tier = tier.or(rule.tier);
    }
    TaskSpec {
        title: cmd.title,
        prompt: cmd.prompt,
        capabilities,
        priority: cmd.priority,
        risk: cmd.risk,
        tier,
        depends_on,
        orchestration,
        max_attempts: cmd.max_attempts,
        timeout: cmd.timeout,
        idempotency_key: cmd.idempotency_key,
        budget: cmd.budget,
        workspace: cmd.workspace,
        verify: cmd.verify,
        wants_port: cmd.wants_port,
        concerns: cmd.concerns,
    }
}

/// Interrupts `t`'s live attempt (`refunded`: it does not count against the task), sends the
/// task through the retry policy, saves it with its events and frees the agent's slot. The
/// caller tells the runtime to stop the attempt when one still runs.
fn interrupt(
    tx: &mut dyn Transaction,
    t: &mut Task,
    reason: String,
    refunded: bool,
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), TaskError> {
    let mut events = t.interrupt_attempt(reason, refunded, at)?;
    events.extend(after_failure(tx, t, policy, at, changes)?);
    save_task_events(tx, t, events, at)?;
    release_slot(tx, t, policy, at, changes)
}

fn load_task(tx: &mut dyn Transaction, id: TaskId) -> Result<Task, TaskError> {
    tx.task(id)?.ok_or_else(|| TaskError::NotFound {
        reference: id.to_string(),
    })
}

fn create_in_tx(
    tx: &mut dyn Transaction,
    p: PreparedCreate,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Created, TaskError> {
    if let Some(key) = &p.spec.idempotency_key
        && let Some(task) = tx.task_by_idempotency_key(key.as_str())?
    {
        return Ok(Created {
            task,
            created: false,
        });
    }
    if let Some(oid) = p.spec.orchestration {
        let Some(o) = tx.orchestration(oid)? else {
            return Err(TaskError::OrchestrationNotFound {
                reference: oid.to_string(),
            });
        };
        if o.status.is_terminal() {
            return Err(TaskError::Refused {
                why: format!(
                    "orchestration {} is {}: it takes no more tasks",
                    oid.short(),
                    o.status
                ),
                hint: "create the task on its own, or in another orchestration".into(),
            });
        }
    }
    let deps: Vec<TaskId> = p.spec.depends_on.iter().copied().collect();
    let states = tx.task_states(&deps)?;
    if let Some(missing) = deps.iter().find(|d| !states.iter().any(|(id, _)| id == *d)) {
        return Err(TaskError::DependencyNotFound {
            reference: missing.to_string(),
        });
    }
    let (mut task, mut events) = Task::create(p.id, p.spec, at);
    if let Some((dead, _)) = states.iter().find(|(_, s)| *s == TaskState::Cancelled) {
        events.extend(task.block(format!("dependency {} was cancelled", dead.short()), at)?);
    } else if states.iter().all(|(_, s)| *s == TaskState::Completed) {
        events.extend(task.make_ready(at)?);
        changes.readied.push(task.id);
    }
    save_task_events(tx, &task, events, at)?;
    Ok(Created {
        task,
        created: true,
    })
}

/// After `done` completed: every pending dependent whose dependencies are all completed becomes
/// ready.
fn promote_dependents(
    tx: &mut dyn Transaction,
    done: TaskId,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), TaskError> {
    for id in tx.dependents(done)? {
        let Some(mut t) = tx.task(id)? else { continue };
        if t.state != TaskState::Pending {
            continue;
        }
        let deps: Vec<TaskId> = t.spec.depends_on.iter().copied().collect();
        let states = tx.task_states(&deps)?;
        if states.len() == deps.len() && states.iter().all(|(_, s)| *s == TaskState::Completed) {
            let events = t.make_ready(at)?;
            save_task_events(tx, &t, events, at)?;
            changes.readied.push(t.id);
        }
    }
    Ok(())
}

/// After `done` completed: its running orchestration completes when every task of it has.
/// Once an orchestration runs (again, after `events`): its ready tasks are offered to the
/// scheduler, and it ends at once if its last task finished while it did not run.
fn now_running(
    tx: &mut dyn Transaction,
    o: &mut Orchestration,
    mut events: Vec<maos_domain::OrchestrationEvent>,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Vec<maos_domain::OrchestrationEvent>, OrchestrationError> {
    let tasks = tx.tasks_of(o.id)?;
    for t in &tasks {
        if t.state == TaskState::Ready {
            changes.readied.push(t.id);
        }
    }
    events.extend(settle(o, &tasks, at)?);
    Ok(events)
}

/// After a task of an orchestration finished: a planned orchestration that runs ends once
/// every task of it did (completed, or failed when some were cancelled).
fn finish_orchestration_if_done(
    tx: &mut dyn Transaction,
    done: &Task,
    at: Timestamp,
) -> Result<(), TaskError> {
    let Some(oid) = done.spec.orchestration else {
        return Ok(());
    };
    let Some(mut o) = tx.orchestration(oid)? else {
        return Ok(());
    };
    let tasks = tx.tasks_of(oid)?;
    let events = settle(&mut o, &tasks, at)?;
    if !events.is_empty() {
        tx.save_orchestration(&o)?;
        tx.append(
            at,
            &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}

/// The end of a planned, running orchestration whose every task finished: completed when all
/// completed, failed when some were cancelled. Nothing otherwise (an orchestration made empty
/// stays open for more tasks; a paused one ends when it is resumed).
fn settle(
    o: &mut Orchestration,
    tasks: &[Task],
    at: Timestamp,
) -> Result<Vec<maos_domain::OrchestrationEvent>, maos_domain::TransitionError> {
    if !o.planned
        || o.status != maos_domain::OrchestrationStatus::Running
        || tasks.is_empty()
        || !tasks.iter().all(|t| t.state.is_terminal())
    {
        return Ok(Vec::new());
    }
    let cancelled = tasks
        .iter()
        .filter(|t| t.state == TaskState::Cancelled)
        .count();
    if cancelled == 0 {
        o.complete(at)
    } else {
        o.fail(
            format!(
                "{cancelled} of its {} tasks were cancelled; the others completed",
                tasks.len()
            ),
            at,
        )
    }
}

/// After `gone` was cancelled: every pending dependent is blocked (it can never run as is).
fn block_dependents(
    tx: &mut dyn Transaction,
    gone: TaskId,
    at: Timestamp,
) -> Result<(), TaskError> {
    for id in tx.dependents(gone)? {
        let Some(mut t) = tx.task(id)? else { continue };
        if matches!(t.state, TaskState::Pending | TaskState::Ready) {
            let events = t.block(format!("dependency {} was cancelled", gone.short()), at)?;
            save_task_events(tx, &t, events, at)?;
        }
    }
    Ok(())
}

impl<S: Store> MaosApi for Service<S> {
    fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError> {
        if cmd.adapter == AdapterKind::Command
            && cmd.command.as_deref().is_none_or(|c| c.trim().is_empty())
        {
            return Err(AgentError::InvalidInput(
                "an agent with adapter `command` needs the program to run: add --command \"<program and arguments>\"".into(),
            ));
        }
        let at = self.clock.now();
        let id = AgentId::from_bits(self.ids.next_bits());
        self.write_scheduled(at, move |tx, changes| {
            if let Some(existing) = tx.agent(&cmd.name)?
                && existing.status != AgentStatus::Removed
            {
                return Err(AgentError::AlreadyExists {
                    name: cmd.name.to_string(),
                });
            }
            let spec = AgentSpec {
                name: cmd.name,
                adapter: cmd.adapter,
                capabilities: cmd.capabilities,
                tier: cmd.tier,
                slots: cmd.slots,
                command: cmd.command,
                settings: cmd.settings,
            };
            let (agent, events) = Agent::register(id, spec, at);
            tx.save_agent(&agent)?;
            tx.append(at, &DomainEvent::agents(id, events).collect::<Vec<_>>())?;
            // A new agent takes waiting work at once.
            changes.freed.push(agent.name.clone());
            Ok(agent)
        })
    }

    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.agent_command(name, Agent::drain)
    }

    fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        let name = name.clone();
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut agent = tx
                .agent(&name)?
                .filter(|a| a.status != AgentStatus::Removed)
                .ok_or_else(|| AgentError::NotFound {
                    name: name.to_string(),
                })?;
            let events = agent.resume(at)?;
            tx.save_agent(&agent)?;
            tx.append(
                at,
                &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
            )?;
            changes.freed.push(agent.name.clone());
            Ok(agent)
        })
    }

    fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.agent_command(name, Agent::remove)
    }

    fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError> {
        self.store
            .agent(name)?
            .filter(|a| a.status != AgentStatus::Removed)
            .ok_or_else(|| QueryError::NotFound {
                what: Entity::Agent,
                reference: name.to_string(),
            })
    }

    fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError> {
        Ok(self.store.agents(filter)?)
    }

    fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError> {
        let prepared = self.prepare_create(cmd)?;
        let at = self.clock.now();
        self.write_scheduled_then(
            at,
            move |tx, changes| create_in_tx(tx, prepared, at, changes),
            |created, launches| refresh(std::slice::from_mut(created), launches),
        )
    }

    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        let prepared = cmds
            .into_iter()
            .map(|c| self.prepare_create(c))
            .collect::<Result<Vec<_>, _>>()?;
        let at = self.clock.now();
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                prepared
                    .into_iter()
                    .map(|p| create_in_tx(tx, p, at, changes))
                    .collect::<Result<Vec<_>, _>>()
            },
            |created, launches| refresh(created, launches),
        )
    }

    fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let on = match self.resolve_task(on) {
            Ok(on) => on,
            Err(QueryError::NotFound { reference, .. }) => {
                return Err(TaskError::DependencyNotFound { reference });
            }
            Err(e) => return Err(e.into()),
        };
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, id)?;
            let dep = load_task(tx, on)?;
            // `id` depends on `on`: a cycle exactly when `on` already reaches `id`.
            let path = find_path(on, id, |n| -> Result<Vec<TaskId>, StoreError> {
                Ok(tx
                    .task(n)?
                    .map(|t| t.spec.depends_on.iter().copied().collect())
                    .unwrap_or_default())
            })?;
            if let Some(path) = path {
                let mut cycle: Vec<String> = vec![id.short()];
                cycle.extend(path.iter().map(|t| t.short()));
                return Err(TaskError::DependencyCycle { cycle });
            }
            let events = t.add_dependency(on, dep.state == TaskState::Completed, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError> {
        let id = self.resolve_task(&cmd.task)?;
        let at = self.clock.now();
        let briefing_tokens = self.config.briefing_tokens;
        let lease = self.config.lease;
        let limit = self.config.balancer_candidates;
        let runs = self.runtime.is_some();
        self.write_scheduled(at, move |tx, changes| {
            let mut task = load_task(tx, id)?;
            if task.state != TaskState::Ready {
                return Err(maos_domain::TransitionError::Task {
                    task: task.id,
                    from: task.state,
                    action: "assigned",
                }
                .into());
            }
            // What holds the scheduler back holds a person (or an external worker) back too.
            if let Some((why, hint)) = crate::schedule::may_not_start(tx, &task)? {
                return Err(TaskError::Refused { why, hint });
            }
            let mut agent = match &cmd.agent {
                Some(name) => tx
                    .agent(name)?
                    .filter(|a| a.status != AgentStatus::Removed)
                    .ok_or_else(|| TaskError::AgentNotFound {
                        name: name.to_string(),
                    })?,
                None => {
                    let candidates =
                        tx.candidate_agents(&task.spec.capabilities, task.spec.tier, limit, false)?;
                    balancer::choose(&candidates, &task.spec.capabilities, task.spec.tier)
                        .cloned()
                        .ok_or_else(|| TaskError::NoCapableAgent {
                            task: task.id.short(),
                            needs: task.spec.capabilities.to_string(),
                            tier: task
                                .spec
                                .tier
                                .map(|t| format!(", tier {t}"))
                                .unwrap_or_default(),
                        })?
                }
            };
            let assignment = assign_in_tx(tx, &mut task, &mut agent, lease, briefing_tokens, at)?;
            if runs && agent.adapter.is_run_by_daemon() {
                changes.launches.push(launch_of(&assignment, &agent));
            }
            Ok(assignment)
        })
    }

    fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: AttemptStart,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.start_attempt(fencing, start, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: TaskWorkspace,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            if t.fencing != fencing {
                return Err(maos_domain::TransitionError::StaleAttempt {
                    task: t.id,
                    presented: fencing.get(),
                    current: t.fencing.get(),
                }
                .into());
            }
            let events = t.record_workspace(workspace, at)?;
            if !events.is_empty() {
                save_task_events(tx, &t, events, at)?;
            }
            Ok(t)
        })
    }

    fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.request_tool_approval(fencing, tool, subject, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    fn approve(&self, task: &IdRef) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let current = self.store.task(id)?.ok_or_else(|| TaskError::NotFound {
            reference: task.to_string(),
        })?;
        // Accepting a result integrates it first (outside the transaction: git).
        let accepts = current.waiting_gate() == Some(Gate::Result)
            || (current.state == TaskState::AwaitingApproval && current.pending.is_none());
        let integration = if accepts {
            self.integrate(&current)?
        } else {
            Integration::None
        };
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let events = t.approve(integration, at)?;
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            match t.state {
                TaskState::Completed => {
                    promote_dependents(tx, t.id, at, changes)?;
                    finish_orchestration_if_done(tx, &t, at)?;
                }
                TaskState::Ready => changes.readied.push(t.id),
                _ => {}
            }
            Ok(t)
        })
    }

    fn reject(&self, task: &IdRef, reason: String, cancel: bool) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let gate = t.waiting_gate().unwrap_or(Gate::Result);
            let mut events = t.reject(reason, at)?;
            match (gate, cancel) {
                (Gate::Tool, _) => {}
                (_, true) => {
                    events.extend(t.cancel("rejected and cancelled by a person".into(), at)?);
                }
                // A person's rejection is not a failure to back off from: the next attempt
                // starts at once, with the reason.
                (Gate::Result, false) => {
                    let at_once = FailurePolicy {
                        backoff: None,
                        ..policy
                    };
                    events.extend(after_failure(tx, &mut t, at_once, at, changes)?);
                }
                (Gate::Run, false) => {}
            }
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            if t.state == TaskState::Cancelled {
                block_dependents(tx, id, at)?;
                finish_orchestration_if_done(tx, &t, at)?;
            }
            Ok(t)
        })
    }

    fn approvals(&self) -> Result<Vec<Task>, QueryError> {
        Ok(self.store.tasks_awaiting_approval()?)
    }

    fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError> {
        let t = self.get_task(task)?;
        let ws = Self::workspace_of(&t)?;
        Ok(self.git()?.shortstat(&ws, &ws.base, &ws.branch)?)
    }

    fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError> {
        let t = self.get_task(task)?;
        let mut ws = Self::workspace_of(&t)?;
        let removed = t.workspace.as_ref().is_some_and(|w| w.removed);
        if removed {
            // The worktree is gone (`maos gc`); its branch and checkpoints are in the repository.
            ws.path.clone_from(&ws.repo);
        }
        let (from, to) = match attempt {
            None => (ws.base.clone(), (removed).then(|| ws.branch.clone())),
            Some(n) => {
                let a = attempt_of(&t, n)?;
                let from = a
                    .checkpoint_before
                    .clone()
                    .ok_or_else(|| QueryError::NoWorkspace {
                        task: t.id.short(),
                        why: format!(" checkpoint for attempt {n}: it did not start in one"),
                    })?;
                (from, a.checkpoint_after.clone())
            }
        };
        Ok(self.git()?.diff(&ws, &from, to.as_deref(), stat)?)
    }

    fn rollback(&self, task: &IdRef, to_attempt: Option<u32>) -> Result<Task, TaskError> {
        let t = self.get_task(task)?;
        let ws = Self::workspace_of(&t)?;
        if t.workspace.as_ref().is_some_and(|w| w.removed) {
            return Err(TaskError::NoWorkspace {
                task: t.id.short(),
                why: " any more: `maos gc` removed it (its branch is still there)".into(),
            });
        }
        let (number, commit) = match to_attempt {
            Some(n) => {
                let a = attempt_of(&t, n)?;
                let c = a
                    .checkpoint_after
                    .clone()
                    .ok_or_else(|| TaskError::NoWorkspace {
                        task: t.id.short(),
                        why: format!(" checkpoint after attempt {n}: it never ended in one"),
                    })?;
                (n, c)
            }
            None => {
                let a = t.current_attempt().ok_or_else(|| QueryError::NoAttempt {
                    task: t.id.short(),
                    attempt: None,
                    made: 0,
                })?;
                let c = a
                    .checkpoint_before
                    .clone()
                    .ok_or_else(|| TaskError::NoWorkspace {
                        task: t.id.short(),
                        why: format!(" checkpoint before attempt {}", a.number),
                    })?;
                (a.number.saturating_sub(1), c)
            }
        };
        // Refused before git is touched when an attempt runs.
        if t.state.holds_slot() {
            return Err(maos_domain::TransitionError::Task {
                task: t.id,
                from: t.state,
                action: "rolled back while an attempt runs",
            }
            .into());
        }
        self.git()?.rollback(&ws, &commit)?;
        let at = self.clock.now();
        let id = t.id;
        self.store.write(move |tx| {
            let mut t = load_task(tx, id)?;
            let events = t.roll_back(number, commit, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    fn gc(&self, req: &GcRequest) -> Result<Vec<GcEntry>, TaskError> {
        let git = Arc::clone(self.git()?);
        let now = self.clock.now();
        let older = DurationMs::from_millis(u64::try_from(req.older_than.as_millis()).unwrap_or(0))
            .map_or(now, |d| {
                Timestamp::from_millis(now.as_millis() - d.as_millis() as i64)
            });
        let mut out = Vec::new();
        for t in self.store.finished_tasks_with_worktrees(older)? {
            let ws = Self::workspace_of(&t)?;
            let into = match t
                .spec
                .orchestration
                .and_then(|o| self.store.orchestration(o).ok().flatten())
            {
                Some(o) => o.integration_branch(),
                None => t
                    .spec
                    .workspace
                    .as_ref()
                    .and_then(|w| w.base.clone())
                    .unwrap_or_else(|| "HEAD".into()),
            };
            let dirty = git.is_dirty(&ws)?;
            let merged = git.is_merged(&ws.repo, &ws.branch, &into)?;
            let kept_because = match (dirty, merged, req.force) {
                (_, _, true) | (false, true, false) => None,
                (true, _, false) => {
                    Some("it has uncommitted changes (--force discards them)".into())
                }
                (false, false, false) => Some(format!(
                    "{} is not merged into {into} (--force removes the worktree; the branch stays)",
                    ws.branch
                )),
            };
            let removed = kept_because.is_none();
            if removed && !req.dry_run {
                git.remove(&ws, req.force)?;
                let at = self.clock.now();
                let id = t.id;
                self.store.write(move |tx| {
                    let mut t = load_task(tx, id)?;
                    let events = t.remove_workspace(at)?;
                    save_task_events(tx, &t, events, at)?;
                    Ok::<_, TaskError>(())
                })?;
            }
            out.push(GcEntry {
                task: t.id,
                path: ws.path.display().to_string(),
                removed,
                kept_because,
            });
        }
        Ok(out)
    }

    fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.record_session(fencing, session, at)?;
            if !events.is_empty() {
                save_task_events(tx, &t, events, at)?;
            }
            Ok(t)
        })
    }

    fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError> {
        let at = self.clock.now();
        let lease = self.config.lease;
        let beats = beats.to_vec();
        self.store.write(move |tx| {
            let mut refused = Vec::new();
            for beat in beats {
                let Some(mut t) = tx.task(beat.task)? else {
                    refused.push(beat);
                    continue;
                };
                match t.renew_lease(beat.fencing, lease, at) {
                    Ok(events) => save_task_events(tx, &t, events, at)?,
                    Err(_) => refused.push(beat),
                }
            }
            Ok(refused)
        })
    }

    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        let failed_verification = report
            .verification
            .as_ref()
            .filter(|v| !v.passed)
            .map(|v| v.output.clone());
        // Work that the policy accepts without a person is integrated first (git, outside the
        // transaction); the transaction then completes the task, or blocks it on a conflict.
        let integration = match self.store.task(task)? {
            Some(t)
                if failed_verification.is_none()
                    && t.fencing == fencing
                    && t.completes_on_verification() =>
            {
                // The branch has the attempt's checkpoint by now: the runtime made it first.
                self.integrate(&t)?
            }
            _ => Integration::None,
        };
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, task)?;
            let mut events = t.succeed_attempt(fencing, summary, report, at)?;
            match failed_verification {
                Some(output) => {
                    events.extend(t.fail_verification(output, at)?);
                    events.extend(after_failure(tx, &mut t, policy, at, changes)?);
                }
                // Verification passed (or there is none): the approval policy decides between
                // accepting it and waiting for a person.
                None => events.extend(t.pass_verification(integration, at)?),
            }
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, policy, at, changes)?;
            if t.state == TaskState::Completed {
                promote_dependents(tx, t.id, at, changes)?;
                finish_orchestration_if_done(tx, &t, at)?;
            }
            Ok(t)
        })
    }

    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, task)?;
            let mut events = t.fail_attempt(fencing, error, report, at)?;
            events.extend(after_failure(tx, &mut t, policy, at, changes)?);
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, policy, at, changes)?;
            Ok(t)
        })
    }

    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let held_slot = t.state.holds_slot();
            let reason = reason.unwrap_or_else(|| "cancelled by a person".into());
            let events = t.cancel(reason.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            if held_slot {
                release_slot(tx, &t, policy, at, changes)?;
                changes.stops.push((t.id, t.attempts_used(), reason));
            }
            block_dependents(tx, id, at)?;
            finish_orchestration_if_done(tx, &t, at)?;
            Ok(t)
        })
    }

    fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            // The task's own state first (a pending or running task is refused as such)...
            let events = t.retry_by_person(attempts, at)?;
            // ...then its dependencies: it must not run without their work. (Nothing is saved
            // when this refuses.)
            let deps: Vec<TaskId> = t.spec.depends_on.iter().copied().collect();
            if let Some((dep, state)) = tx
                .task_states(&deps)?
                .into_iter()
                .find(|(_, s)| *s != TaskState::Completed)
            {
                let hint = if state == TaskState::Cancelled {
                    format!(
                        "task {} was cancelled, so this task cannot run as it is: cancel it \
                         (`maos task cancel {}`) and create what is still needed anew",
                        dep.short(),
                        t.id.short()
                    )
                } else {
                    format!(
                        "let task {} complete first (`maos task retry {}` if it is blocked)",
                        dep.short(),
                        dep.short()
                    )
                };
                return Err(TaskError::Refused {
                    why: format!(
                        "task {} depends on task {}, which is {state}: it would run without \
                         that task's work",
                        t.id.short(),
                        dep.short()
                    ),
                    hint,
                });
            }
            save_task_events(tx, &t, events, at)?;
            if t.state == TaskState::Ready {
                changes.readied.push(t.id);
            }
            Ok(t)
        })
    }

    fn task_waiting(&self, task: &IdRef) -> Result<Vec<Waiting>, QueryError> {
        let t = self.get_task(task)?;
        crate::waiting::explain(self.store.as_ref(), &t, self.clock.now())
    }

    fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<AttemptBriefing, QueryError> {
        let t = self.get_task(task)?;
        if t.attempts_used() == 0 {
            return Err(QueryError::NoAttempt {
                task: t.id.short(),
                attempt,
                made: 0,
            });
        }
        let number = attempt.unwrap_or_else(|| t.attempts_used());
        let a = attempt_of(&t, number)?;
        Ok(match &a.briefing {
            Some(b) => AttemptBriefing {
                attempt: number,
                text: b.text.clone(),
                tokens: b.tokens,
                cut: b.cut.clone(),
            },
            // Attempts assigned before briefings were recorded got the task's prompt.
            None => AttemptBriefing {
                attempt: number,
                text: t.spec.prompt.clone(),
                tokens: maos_domain::briefing::estimate_tokens(&t.spec.prompt),
                cut: Vec::new(),
            },
        })
    }

    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        let id = self.resolve_task(task)?;
        self.store.task(id)?.ok_or_else(|| QueryError::NotFound {
            what: Entity::Task,
            reference: task.to_string(),
        })
    }

    fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError> {
        let id = self.resolve_task(&req.task)?;
        let task = self.store.task(id)?.ok_or_else(|| QueryError::NotFound {
            what: Entity::Task,
            reference: req.task.to_string(),
        })?;
        let number = match req.attempt {
            Some(n) => n,
            None => task.attempts_used(),
        };
        let Some(attempt) = task.attempts.iter().find(|a| a.number == number) else {
            return Err(QueryError::NoAttempt {
                task: task.id.short(),
                attempt: req.attempt,
                made: task.attempts_used(),
            });
        };
        // Whether the attempt had ended is read before the log: the runtime closes the log before
        // it reports the end, so an ended attempt's log is complete.
        let ended = attempt.ended_at.is_some() || !task.state.holds_slot();
        let max = req.max.clamp(1, LogRequest::MAX_CHUNK);
        let bytes = match &self.logs {
            Some(logs) => logs.read(id, number, req.offset, max, req.wait)?,
            None => Vec::new(),
        };
        Ok(LogChunk {
            task: id,
            attempt: number,
            offset: req.offset,
            // Ended, and the read stopped short of `max`: the end of the log was reached.
            finished: ended && bytes.len() < max,
            bytes,
        })
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, QueryError> {
        let page = Page {
            limit: page.limit.clamp(1, Page::MAX_LIMIT),
            cursor: page.cursor,
        };
        Ok(self.store.tasks(filter, &page)?)
    }

    fn create_orchestration(
        &self,
        cmd: CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError> {
        if let (Some(ws), Some(git)) = (&cmd.workspace, &self.workspaces) {
            git.check(Path::new(&ws.repo), ws.base.as_deref())?;
        }
        let at = self.clock.now();
        let id = OrchestrationId::from_bits(self.ids.next_bits());
        let spec = OrchestrationSpec {
            name: cmd.name,
            goal: cmd.goal,
            workspace: cmd.workspace,
            verify: cmd.verify,
            notes: cmd.notes,
            planned: false,
        };
        self.store.write(move |tx| {
            let (o, events) = Orchestration::create(id, spec, at);
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(id, events).collect::<Vec<_>>(),
            )?;
            Ok(o)
        })
    }

    fn create_plan(&self, plan: CreatePlan) -> Result<PlanCreated, OrchestrationError> {
        let CreatePlan {
            orchestration,
            tasks,
            start,
        } = plan;
        let dep_indexes = crate::plan::check(&tasks)?;
        let ids: Vec<TaskId> = tasks
            .iter()
            .map(|_| TaskId::from_bits(self.ids.next_bits()))
            .collect();
        let deps: Vec<std::collections::BTreeSet<TaskId>> = dep_indexes
            .iter()
            .map(|d| d.iter().map(|&j| ids[j]).collect())
            .collect();
        if let (Some(ws), Some(git)) = (&orchestration.workspace, &self.workspaces) {
            git.check(Path::new(&ws.repo), ws.base.as_deref())?;
        }
        let at = self.clock.now();
        let oid = OrchestrationId::from_bits(self.ids.next_bits());
        let spec = OrchestrationSpec {
            name: orchestration.name,
            goal: orchestration.goal,
            workspace: orchestration.workspace,
            verify: orchestration.verify,
            notes: orchestration.notes,
            planned: true,
        };
        let routes = Arc::clone(&self.routes);
        self.write_scheduled(at, move |tx, changes| {
            let (mut o, mut o_events) = Orchestration::create(oid, spec, at);
            if start {
                o_events.extend(o.start(at)?);
            }
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, o_events).collect::<Vec<_>>(),
            )?;
            let mut made = Vec::with_capacity(tasks.len());
            for (i, t) in tasks.into_iter().enumerate() {
                let c = t.task;
                let c = CreateTask {
                    workspace: c.workspace.or_else(|| o.workspace.clone()),
                    verify: c.verify.or_else(|| o.verify.clone()),
                    ..c
                };
                let spec = task_spec(c, deps[i].clone(), Some(oid), &routes);
                let (mut task, mut events) = Task::create(ids[i], spec, at);
                if task.spec.depends_on.is_empty() {
                    events.extend(task.make_ready(at)?);
                    if task.state == TaskState::Ready {
                        changes.readied.push(task.id);
                    }
                }
                save_task_events(tx, &task, events, at)?;
                made.push((t.key, task));
            }
            Ok::<_, OrchestrationError>(PlanCreated {
                orchestration: o,
                tasks: made,
            })
        })
    }

    fn start_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        self.orchestration_command(id, |tx, o, at, changes| {
            let events = o.start(at)?;
            now_running(tx, o, events, at, changes)
        })
    }

    fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError> {
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            let events = o.pause(at)?;
            if now {
                for mut t in tx.tasks_of(o.id)? {
                    if !matches!(t.state, TaskState::Assigned | TaskState::Running) {
                        continue;
                    }
                    let attempt = t.attempts_used();
                    let reason = "its orchestration was paused".to_owned();
                    // A person stopped it: the attempt does not count against the task.
                    interrupt(tx, &mut t, reason.clone(), true, policy, at, changes)?;
                    changes.stops.push((t.id, attempt, reason));
                }
            }
            Ok(events)
        })
    }

    fn resume_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError> {
        self.orchestration_command(id, |tx, o, at, changes| {
            let events = o.resume(at)?;
            now_running(tx, o, events, at, changes)
        })
    }

    fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let reason = reason.unwrap_or_else(|| "cancelled by a person".into());
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            let events = o.cancel(reason.clone(), at)?;
            for mut t in tx.tasks_of(o.id)? {
                if t.state.is_terminal() {
                    continue;
                }
                let held = t.state.holds_slot();
                let task_events =
                    t.cancel(format!("its orchestration was cancelled: {reason}"), at)?;
                save_task_events(tx, &t, task_events, at)?;
                changes.release_concerns(&t);
                if held {
                    release_slot(tx, &t, policy, at, changes)?;
                    changes
                        .stops
                        .push((t.id, t.attempts_used(), reason.clone()));
                }
            }
            Ok(events)
        })
    }

    fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<MergeReport, OrchestrationError> {
        let o = self.get_orchestration(id)?;
        let ws = o.workspace.clone().ok_or_else(|| {
            OrchestrationError::Refused(format!(
                "orchestration {} has no repository: create it with --repo to integrate its work",
                o.id.short()
            ))
        })?;
        let into = into.or_else(|| ws.base.clone()).ok_or_else(|| {
            OrchestrationError::Refused(
                "name the branch to merge into with --into (the orchestration names no base branch)"
                    .into(),
            )
        })?;
        let branch = o.integration_branch();
        let git = self.git()?;
        let (commit, merged) =
            match git.merge_into_user_branch(Path::new(&ws.repo), &branch, &into)? {
                MergeOutcome::Merged { commit } => (commit, true),
                MergeOutcome::UpToDate { commit } => (commit, false),
                MergeOutcome::Conflict { paths } => {
                    return Err(OrchestrationError::Refused(format!(
                        "merging {branch} into {into} conflicts in {}; nothing was changed",
                        paths.join(", ")
                    )));
                }
            };
        let at = self.clock.now();
        let oid = o.id;
        let (into_c, commit_c) = (into.clone(), commit.clone());
        let o = self.store.write(move |tx| {
            let mut o = tx.orchestration(oid)?.ok_or_else(|| {
                OrchestrationError::Query(QueryError::NotFound {
                    what: Entity::Orchestration,
                    reference: oid.to_string(),
                })
            })?;
            let events = o.record_merge(into_c, commit_c, at);
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
            )?;
            Ok::<_, OrchestrationError>(o)
        })?;
        Ok(MergeReport {
            orchestration: o,
            branch,
            into,
            commit,
            merged,
        })
    }

    fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError> {
        let full = self.resolve_orchestration(id)?;
        self.store
            .orchestration(full)?
            .ok_or_else(|| QueryError::NotFound {
                what: Entity::Orchestration,
                reference: id.to_string(),
            })
    }

    fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError> {
        Ok(self.store.orchestrations()?)
    }

    fn status(&self) -> Result<StatusReport, QueryError> {
        Ok(self.store.status()?)
    }

    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, QueryError> {
        Ok(self
            .store
            .events_after(after, limit.clamp(1, Page::MAX_LIMIT))?)
    }

    fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError> {
        Ok(Box::new(StoreFollower {
            store: Arc::clone(&self.store),
            after: since,
        }))
    }
}

/// The most events one [`EventFollower::next_batch`] of the service returns.
pub const FOLLOW_BATCH: usize = 1000;

/// Follows the log of a store: reads what follows the last event returned, and when there is
/// nothing, waits on the store's commit notification ([`crate::ReadStore::wait_for_events`]).
struct StoreFollower<S> {
    store: Arc<S>,
    /// The seq of the last event returned (or the `since` it was opened with).
    after: u64,
}

impl<S: Store> StoreFollower<S> {
    fn read(&mut self) -> Result<Vec<StoredEvent>, QueryError> {
        let batch = self.store.events_after(self.after, FOLLOW_BATCH)?;
        if let Some(last) = batch.last() {
            self.after = last.seq;
        }
        Ok(batch)
    }
}

impl<S: Store> EventFollower for StoreFollower<S> {
    fn next_batch(&mut self, timeout: Duration) -> Result<Vec<StoredEvent>, QueryError> {
        let batch = self.read()?;
        if !batch.is_empty() || self.store.wait_for_events(self.after, timeout)? <= self.after {
            return Ok(batch);
        }
        self.read()
    }
}
