//! The in-process implementation of [`MaosApi`]: each use case loads aggregates in a write
//! transaction, runs the domain command, and saves the new state with its events.

use std::sync::Arc;
use std::time::Duration;

use maos_domain::agent::AgentSpec;
use maos_domain::graph::find_path;
use maos_domain::policy::balancer;
use maos_domain::{
    AdapterKind, Agent, AgentId, AgentName, AgentStatus, DomainEvent, DurationMs, FencingToken,
    Orchestration, OrchestrationId, Task, TaskId, TaskSpec, TaskState, Timestamp, Title,
};

use crate::api::*;
use crate::error::{AgentError, Entity, OrchestrationError, QueryError, TaskError};
use crate::ports::{Clock, IdSource, Store, StoreError, Transaction};

/// Settings of the service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    /// How long an assignment's lease lasts without a heartbeat.
    pub lease: DurationMs,
    /// How many least-loaded candidates the store hands to the load balancer.
    pub balancer_candidates: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            lease: DurationMs::from_millis(10_000).unwrap_or(DurationMs::MAX),
            balancer_candidates: 4,
        }
    }
}

/// The application service over a store, a clock and an id source.
#[derive(Debug)]
pub struct Service<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    config: ServiceConfig,
}

impl<S> Clone for Service<S> {
    fn clone(&self) -> Self {
        Service {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            ids: Arc::clone(&self.ids),
            config: self.config,
        }
    }
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
        }
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
        let spec = TaskSpec {
            title: cmd.title,
            prompt: cmd.prompt,
            capabilities: cmd.capabilities,
            priority: cmd.priority,
            risk: cmd.risk,
            tier: cmd.tier,
            depends_on: depends_on.into_iter().collect(),
            orchestration,
            max_attempts: cmd.max_attempts,
            timeout: cmd.timeout,
            idempotency_key: cmd.idempotency_key,
        };
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

fn load_task(tx: &mut dyn Transaction, id: TaskId) -> Result<Task, TaskError> {
    tx.task(id)?.ok_or_else(|| TaskError::NotFound {
        reference: id.to_string(),
    })
}

fn create_in_tx(
    tx: &mut dyn Transaction,
    p: PreparedCreate,
    at: Timestamp,
) -> Result<Created, TaskError> {
    if let Some(key) = &p.spec.idempotency_key
        && let Some(task) = tx.task_by_idempotency_key(key.as_str())?
    {
        return Ok(Created {
            task,
            created: false,
        });
    }
    if let Some(o) = p.spec.orchestration
        && tx.orchestration(o)?.is_none()
    {
        return Err(TaskError::OrchestrationNotFound {
            reference: o.to_string(),
        });
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
    }
    save_task_events(tx, &task, events, at)?;
    Ok(Created {
        task,
        created: true,
    })
}

/// Releases the agent slot held by `task`'s current attempt (called after a command moved the
/// task out of a slot-holding state).
fn release_slot(tx: &mut dyn Transaction, task: &Task, at: Timestamp) -> Result<(), TaskError> {
    let Some(attempt) = task.current_attempt() else {
        return Ok(());
    };
    let Some(mut agent) = tx.agent(&attempt.agent)? else {
        return Ok(());
    };
    let events = agent.release_slot(task.id, attempt.number, at)?;
    tx.save_agent(&agent)?;
    tx.append(
        at,
        &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
    )?;
    Ok(())
}

/// After `done` completed: every pending dependent whose dependencies are all completed becomes
/// ready.
fn promote_dependents(
    tx: &mut dyn Transaction,
    done: TaskId,
    at: Timestamp,
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
        }
    }
    Ok(())
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
        self.store.write(move |tx| {
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
            };
            let (agent, events) = Agent::register(id, spec, at);
            tx.save_agent(&agent)?;
            tx.append(at, &DomainEvent::agents(id, events).collect::<Vec<_>>())?;
            Ok(agent)
        })
    }

    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.agent_command(name, Agent::drain)
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
        self.store.write(move |tx| create_in_tx(tx, prepared, at))
    }

    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        let prepared = cmds
            .into_iter()
            .map(|c| self.prepare_create(c))
            .collect::<Result<Vec<_>, _>>()?;
        let at = self.clock.now();
        self.store.write(move |tx| {
            prepared
                .into_iter()
                .map(|p| create_in_tx(tx, p, at))
                .collect()
        })
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
        let lease = self.config.lease;
        let limit = self.config.balancer_candidates;
        self.store.write(move |tx| {
            let mut task = load_task(tx, id)?;
            if task.state != TaskState::Ready {
                return Err(maos_domain::TransitionError::Task {
                    task: task.id,
                    from: task.state,
                    action: "assigned",
                }
                .into());
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
                        tx.candidate_agents(&task.spec.capabilities, task.spec.tier, limit)?;
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
            let mut events = task.assign(&agent, lease, at)?;
            let attempt = task.attempts_used();
            let agent_events = agent.claim_slot(task.id, attempt, at)?;
            tx.save_agent(&agent)?;
            let mut all: Vec<DomainEvent> =
                DomainEvent::tasks(task.id, std::mem::take(&mut events)).collect();
            all.extend(DomainEvent::agents(agent.id, agent_events));
            tx.save_task(&task)?;
            tx.append(at, &all)?;
            Ok(Assignment {
                agent: agent.name.clone(),
                attempt,
                fencing: task.fencing,
                task,
            })
        })
    }

    fn start_attempt(&self, task: TaskId, fencing: FencingToken) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.start_attempt(fencing, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let mut events = t.succeed_attempt(fencing, summary, at)?;
            // No verification step is configured yet: verification passes as soon as the agent
            // succeeds, and the approval policy decides between completed and awaiting approval.
            events.extend(t.pass_verification(at)?);
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, at)?;
            if t.state == TaskState::Completed {
                promote_dependents(tx, t.id, at)?;
            }
            Ok(t)
        })
    }

    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let mut events = t.fail_attempt(fencing, error.clone(), at)?;
            if t.can_retry() {
                events.extend(t.schedule_retry(at)?);
                events.extend(t.make_ready(at)?);
            } else {
                let reason = format!(
                    "all {} attempts failed; the last said: {error}",
                    t.attempts_used()
                );
                events.extend(t.block(reason, at)?);
            }
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, at)?;
            Ok(t)
        })
    }

    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, id)?;
            let held_slot = t.state.holds_slot();
            let events = t.cancel(reason.unwrap_or_else(|| "cancelled by a person".into()), at)?;
            save_task_events(tx, &t, events, at)?;
            if held_slot {
                release_slot(tx, &t, at)?;
            }
            block_dependents(tx, id, at)?;
            Ok(t)
        })
    }

    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        let id = self.resolve_task(task)?;
        self.store.task(id)?.ok_or_else(|| QueryError::NotFound {
            what: Entity::Task,
            reference: task.to_string(),
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
        name: Title,
        goal: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let at = self.clock.now();
        let id = OrchestrationId::from_bits(self.ids.next_bits());
        self.store.write(move |tx| {
            let (o, events) = Orchestration::create(id, name, goal, at);
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(id, events).collect::<Vec<_>>(),
            )?;
            Ok(o)
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
