//! Steps shared by the use cases inside a write transaction: loading and saving a task with its
//! events, creating tasks, and what a task's change sets off (dependents promoted or blocked,
//! attempts interrupted, the orchestration settled).

use super::*;

/// The one id a reference matched: not found when none did, ambiguous (listing the first
/// candidates) when several did.
pub(super) fn unique<Id: Copy + ToString>(
    r: &IdRef,
    what: Entity,
    ids: Vec<Id>,
) -> Result<Id, QueryError> {
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
pub(super) fn attempt_of(t: &Task, n: u32) -> Result<&maos_domain::Attempt, QueryError> {
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
pub(super) fn refresh(created: &mut [Created], launches: &[Launch]) {
    for c in created.iter_mut() {
        if let Some(l) = launches.iter().find(|l| l.task.id == c.task.id) {
            c.task = l.task.clone();
        }
    }
}

#[derive(Clone)]
pub(super) struct PreparedCreate {
    pub(super) id: TaskId,
    pub(super) spec: TaskSpec,
}

pub(super) fn save_task_events(
    tx: &mut dyn Transaction,
    task: &Task,
    events: Vec<maos_domain::TaskEvent>,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.save_task(task)?;
    tx.append(at, &DomainEvent::tasks(task.id, events).collect::<Vec<_>>())?;
    super::planning::planner_ended(tx, task, at)
}

/// The spec of a task to create: `cmd` with its references resolved; a task that names no
/// capabilities gets them (and a tier, unless it chose one) from the first routing rule that
/// matches its title or prompt. A task pinned to an agent is not routed: the agent is chosen
/// already, and capabilities it may lack would only keep it from its task.
pub(super) fn task_spec(
    cmd: CreateTask,
    depends_on: std::collections::BTreeSet<TaskId>,
    orchestration: Option<OrchestrationId>,
    routes: &[RouteRule],
) -> TaskSpec {
    let (mut capabilities, mut tier) = (cmd.capabilities, cmd.tier);
    if capabilities.is_empty()
        && cmd.agent.is_none()
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
        plans: None,
        agent: cmd.agent,
        parent: None,
        lessons: cmd.lessons,
    }
}

/// Interrupts `t`'s live attempt (`refunded`: it does not count against the task), sends the
/// task through the retry policy, saves it with its events and frees the agent's slot. The
/// caller tells the runtime to stop the attempt when one still runs.
pub(super) fn interrupt(
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

pub(super) fn load_task(tx: &mut dyn Transaction, id: TaskId) -> Result<Task, TaskError> {
    tx.task(id)?.ok_or_else(|| TaskError::NotFound {
        reference: id.to_string(),
    })
}

pub(super) fn create_in_tx(
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
            return Err(TaskError::Refused(Box::new(Refusal::OrchestrationClosed {
                orchestration: oid,
                status: o.status,
            })));
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
        events.extend(task.block(BlockReason::DependencyCancelled { dependency: *dead }, at)?);
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
pub(super) fn promote_dependents(
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
pub(super) fn now_running(
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
pub(super) fn finish_orchestration_if_done(
    tx: &mut dyn Transaction,
    done: &Task,
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), TaskError> {
    let Some(oid) = done.spec.orchestration else {
        return Ok(());
    };
    let Some(mut o) = tx.orchestration(oid)? else {
        return Ok(());
    };
    // Most completions leave work behind: knowing that costs a few index seeks, not a read of
    // every task (the drain of an orchestration would be quadratic).
    if !o.planned
        || o.status != maos_domain::OrchestrationStatus::Running
        || tx.has_unfinished_tasks(oid)?
    {
        return Ok(());
    }
    let tasks = tx.tasks_of(oid)?;
    let planner = o.planning.map(|p| p.task);
    let events = settle(&mut o, &tasks, at)?;
    if !events.is_empty() {
        tx.save_orchestration(&o)?;
        tx.append(
            at,
            &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
        )?;
        // It ended: a planner still revising its plan has nothing left to do.
        if let Some(p) = planner {
            super::planning::cancel_planner(tx, p, "its orchestration ended", policy, at, changes)?;
        }
    }
    Ok(())
}

/// The end of a planned, running orchestration whose every task finished: completed when all
/// completed (or were superseded by a revision), failed when some were cancelled. Nothing otherwise (an orchestration made empty
/// stays open for more tasks; a paused one ends when it is resumed).
pub(super) fn settle(
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
    // A task a revision of the plan replaced or dropped was cancelled on purpose.
    let cancelled = tasks
        .iter()
        .filter(|t| t.state == TaskState::Cancelled && !o.superseded.contains(&t.id))
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
pub(super) fn block_dependents(
    tx: &mut dyn Transaction,
    gone: TaskId,
    at: Timestamp,
) -> Result<(), TaskError> {
    for id in tx.dependents(gone)? {
        let Some(mut t) = tx.task(id)? else { continue };
        if matches!(t.state, TaskState::Pending | TaskState::Ready) {
            let events = t.block(BlockReason::DependencyCancelled { dependency: gone }, at)?;
            save_task_events(tx, &t, events, at)?;
        }
    }
    Ok(())
}
