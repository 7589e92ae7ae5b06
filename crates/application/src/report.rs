//! The orchestration report: what an orchestration's tasks came to, what they cost, what waits
//! for a person and what a person can do, and whether anything can still move without one. A
//! pure function of the orchestration, its tasks and what they wait for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use maos_domain::graph;
use maos_domain::{NextStep, Orchestration, Task, TaskId, TaskState, Timestamp, Usd, WaitKind};

use crate::api::{NeedsPerson, OrchestrationReport, WaitReason};

/// What tasks wait for, by task.
pub(crate) type Waits = BTreeMap<TaskId, Vec<WaitReason>>;

/// True for the tasks whose waits the report reads: the ready ones (a person may be what they
/// wait for), the blocked ones and those awaiting approval (what a person can do about them).
pub(crate) fn wants_waits(t: &Task) -> bool {
    matches!(
        t.state,
        TaskState::Ready | TaskState::Blocked | TaskState::AwaitingApproval
    )
}

/// The report on `o` with its `tasks` and what those of them that [`wants_waits`] wait for, at
/// `now`.
pub(crate) fn report(
    o: &Orchestration,
    tasks: &[Task],
    waits: &Waits,
    now: Timestamp,
) -> OrchestrationReport {
    let mut by_state: BTreeMap<TaskState, u64> = TaskState::ALL.iter().map(|s| (*s, 0)).collect();
    let (mut attempts, mut input, mut output, mut cost) = (0u32, 0u64, 0u64, Usd::ZERO);
    let mut last_update = o.created_at;
    for t in tasks {
        *by_state.entry(t.state).or_insert(0) += 1;
        attempts = attempts.saturating_add(t.attempts_used());
        let u = t.usage();
        // `input_tokens` counts the cached ones already (`Usage`).
        input = input.saturating_add(u.input_tokens);
        output = output.saturating_add(u.output_tokens);
        cost = Usd::from_micros(cost.micros().saturating_add(t.spent().micros()));
        last_update = last_update.max(t.updated_at);
    }
    let end = if tasks.iter().all(|t| settled(t.state)) {
        last_update
    } else {
        now
    };
    let completed = by_state
        .get(&TaskState::Completed)
        .copied()
        .unwrap_or_default();
    OrchestrationReport {
        orchestration: o.clone(),
        by_state,
        tasks: u64::try_from(tasks.len()).unwrap_or(u64::MAX),
        completed,
        attempts,
        wall_ms: end.millis_since(o.created_at),
        input_tokens: input,
        output_tokens: output,
        cost,
        planning: maos_domain::Usage::default(),
        integration_branch: o.workspace.as_ref().map(|_| o.integration_branch()),
        needs_a_person: in_dependency_order(tasks)
            .into_iter()
            .filter_map(|t| needs_a_person(t, waits.get(&t.id).map_or(&[], Vec::as_slice)))
            .collect(),
        can_move: can_move(o, tasks, waits),
    }
}

/// True for states in which a task moves no further without a person (or never again).
fn settled(s: TaskState) -> bool {
    matches!(
        s,
        TaskState::Completed
            | TaskState::Cancelled
            | TaskState::Blocked
            | TaskState::AwaitingApproval
    )
}

/// True when what a ready task waits for only a person can change: no agent can take it, its
/// budget is spent, its orchestration is not running.
fn waits_for_a_person(waits: &[WaitReason]) -> bool {
    !waits.is_empty() && waits.iter().all(WaitReason::needs_a_person)
}

/// `t` as the report lists it when it waits for a person: blocked, awaiting approval, or ready
/// but waiting only for what a person can change.
fn needs_a_person(t: &Task, waits: &[WaitReason]) -> Option<NeedsPerson> {
    let listed = match t.state {
        TaskState::Blocked | TaskState::AwaitingApproval => true,
        TaskState::Ready => waits_for_a_person(waits),
        _ => false,
    };
    if !listed {
        return None;
    }
    let mut next_steps: Vec<NextStep> = Vec::new();
    let mut extra = Vec::new();
    if t.state == TaskState::Ready {
        // What the waits offer, then a look at the task or its end.
        extra = vec![
            NextStep::ShowTask { task: t.id },
            NextStep::Cancel { task: t.id },
        ];
    }
    for step in waits.iter().flat_map(|w| w.next_steps(t.id)).chain(extra) {
        if !next_steps.contains(&step) {
            next_steps.push(step);
        }
    }
    Some(NeedsPerson {
        task: t.id,
        title: t.spec.title.clone(),
        state: t.state,
        waits: waits.to_vec(),
        blocked: t.blocked.clone(),
        next_steps,
    })
}

/// False when nothing of `o` can move without a person: it has ended; or every task is
/// completed or stopped, where stopped is blocked, cancelled or awaiting approval, or ready but
/// waiting only for what a person can change or for a concern a stopped task holds, or pending
/// behind (however indirectly) a stopped task. A ready task whose waits are not in `waits` is
/// taken to be able to move.
pub(crate) fn can_move(o: &Orchestration, tasks: &[Task], waits: &Waits) -> bool {
    if o.status.is_terminal() {
        return false;
    }
    // Completed tasks are not stopped: a task pending on a completed one may still start once
    // its other dependencies complete.
    let mut stopped: BTreeSet<TaskId> = tasks
        .iter()
        .filter(|t| settled(t.state) && t.state != TaskState::Completed)
        .map(|t| t.id)
        .collect();
    loop {
        let more: Vec<TaskId> = tasks
            .iter()
            .filter(|t| !stopped.contains(&t.id))
            .filter(|t| match t.state {
                TaskState::Pending => t.spec.depends_on.iter().any(|d| stopped.contains(d)),
                TaskState::Ready => waits.get(&t.id).is_some_and(|w| {
                    !w.is_empty()
                        && w.iter().all(|w| {
                            w.needs_a_person()
                                || w.kind() == WaitKind::Concern
                                    && w.task().is_some_and(|holder| stopped.contains(&holder))
                        })
                }),
                _ => false,
            })
            .map(|t| t.id)
            .collect();
        if more.is_empty() {
            break;
        }
        stopped.extend(more);
    }
    !tasks
        .iter()
        .all(|t| t.state == TaskState::Completed || stopped.contains(&t.id))
}

/// `tasks` with every task after the tasks of `tasks` it depends on, otherwise in the order
/// given.
fn in_dependency_order(tasks: &[Task]) -> Vec<&Task> {
    let index: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let deps: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| {
            t.spec
                .depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let mut seen = HashSet::new();
    graph::topological_order(&deps)
        .into_iter()
        .filter(|i| seen.insert(*i))
        .filter_map(|i| tasks.get(i))
        .collect()
}

#[cfg(test)]
mod tests;
