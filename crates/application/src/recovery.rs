//! What happens after an attempt fails, inside the transaction that records the failure: a retry
//! after an exponential backoff with jitter, then an escalation to the strategic tier, then a
//! person (`blocked`); and the agent's side of it, the circuit breaker that drains an agent after
//! too many failures in a row.

use maos_domain::policy::retry::{CircuitBreaker, RetryPolicy};
use maos_domain::{
    AttemptOutcome, BlockReason, DomainEvent, FailureKind, Task, TaskEvent, TaskState, Tier,
    Timestamp, Usd,
};

use crate::error::TaskError;
use crate::ports::Transaction;
use crate::schedule::Changes;

/// The failure policies of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// The backoff between a failed attempt and the next; none: retry at once.
    pub backoff: Option<RetryPolicy>,
    /// When an agent is drained for failing in a row.
    pub breaker: CircuitBreaker,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            backoff: Some(RetryPolicy::default()),
            breaker: CircuitBreaker::default(),
        }
    }
}

/// After the task's current attempt failed or was interrupted: another attempt when attempts and
/// budget are left (at once after an interruption, which is not the task's doing; after a
/// backoff after a failure), else the strategic tier when the task was not there yet and an
/// agent of that tier can do it, else a person.
pub(crate) fn after_failure(
    tx: &mut dyn Transaction,
    t: &mut Task,
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Vec<TaskEvent>, TaskError> {
    let mut events = Vec::new();
    let interrupted = t
        .current_attempt()
        .is_some_and(|a| a.status == AttemptOutcome::Interrupted);
    // An agent that cannot start, or a workspace that cannot be prepared, fails the same way
    // every time: a person fixes it first (what they can do then is the front end's to say).
    if let Some((attempt, failure)) = t
        .current_attempt()
        .and_then(|a| a.failure.map(|k| (a.number, k)))
        .filter(|(_, k)| k.needs_a_person())
    {
        let reason = BlockReason::CannotStart { attempt, failure };
        events.extend(t.block(reason, at)?);
        return Ok(events);
    }
    if t.can_retry() {
        let due = match policy.backoff {
            Some(backoff) if !interrupted => Some(at.plus(backoff.delay(failures(t), jitter(t)))),
            _ => None,
        };
        events.extend(t.schedule_retry(due, at)?);
        if t.retry_due(at) {
            events.extend(t.make_ready(at)?);
            changes.readied.push(t.id);
        }
        return Ok(events);
    }
    let spent = t.budget_left().is_some_and(|left| left == Usd::ZERO)
        || t.current_attempt().and_then(|a| a.failure) == Some(FailureKind::Budget);
    // Escalation keeps the task's pin: a task pinned to an agent (a planner, whose session its
    // attempts resume) is never sent to another one. It escalates only when its own agent is of
    // the strategic tier; otherwise it goes to a person.
    if !spent
        && t.spec.tier != Some(Tier::Strategic)
        && tx.has_capable_agent(t.spec.needs().with_tier(Some(Tier::Strategic)))?
    {
        events.extend(t.escalate(at)?);
        events.extend(t.make_ready(at)?);
        if t.state == TaskState::Ready {
            changes.readied.push(t.id);
        }
        return Ok(events);
    }
    let attempt = t.current_attempt().map_or(0, |a| a.number);
    let reason = if spent {
        BlockReason::BudgetSpent {
            attempt,
            budget: t.spec.budget.unwrap_or(Usd::ZERO),
            spent: t.spent(),
        }
    } else {
        let interrupted = t
            .attempts
            .iter()
            .filter(|a| a.status == AttemptOutcome::Interrupted)
            .count();
        BlockReason::AttemptsFailed {
            attempt,
            failed: failures(t),
            interrupted: u32::try_from(interrupted).unwrap_or(u32::MAX),
            strategic: t.spec.tier == Some(Tier::Strategic),
        }
    };
    events.extend(t.block(reason, at)?);
    // Its retries and escalation are spent: a planner may revise what remains (a fault of the
    // setup, above, is for a person to fix instead).
    changes.blocked.push(t.id);
    Ok(events)
}

/// Failed attempts of the task so far (interruptions do not count).
fn failures(t: &Task) -> u32 {
    let n = t
        .attempts
        .iter()
        .filter(|a| a.status == AttemptOutcome::Failed)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The jitter sample of the task's current retry: derived from its id and attempt, so that
/// tasks that failed together retry apart, and the same failure always gets the same delay.
fn jitter(t: &Task) -> u32 {
    let bits = t.id.bits();
    let mut x = (bits as u64) ^ ((bits >> 64) as u64) ^ u64::from(t.attempts_used());
    // splitmix64's finaliser: every input bit moves every output bit.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 32) as u32
}

/// Releases the agent slot held by `task`'s current attempt (called after a command moved the
/// task out of a slot-holding state), recording how the attempt went for the agent; an agent
/// that failed too often in a row is drained, with an event that says why.
pub(crate) fn release_slot(
    tx: &mut dyn Transaction,
    task: &Task,
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), TaskError> {
    let Some(attempt) = task.current_attempt() else {
        return Ok(());
    };
    let Some(mut agent) = tx.agent(&attempt.agent)? else {
        return Ok(());
    };
    let failed = match (attempt.status, attempt.failure) {
        // Only failures of the agent's own work count against it.
        (_, Some(kind)) if !kind.is_the_agents() => None,
        (AttemptOutcome::Failed, _) => Some(true),
        (AttemptOutcome::Succeeded, _) => Some(false),
        _ => None,
    };
    let mut events = agent.release_slot(task.id, attempt.number, failed, at)?;
    if failed == Some(true) && agent.accepts_work() && policy.breaker.trips(agent.failures_in_row) {
        let last = attempt.error.as_deref().unwrap_or("no reason given");
        let reason = format!(
            "its last {} attempts failed in a row (the circuit breaker's threshold is {}); the \
             last, on task {}: {last}",
            agent.failures_in_row,
            policy.breaker.threshold,
            task.id.short(),
        );
        events.extend(agent.drain_because(Some(reason), at)?);
    }
    tx.save_agent(&agent)?;
    tx.append(
        at,
        &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
    )?;
    changes.freed.push(agent.name.clone());
    changes.release_concerns(task);
    Ok(())
}
