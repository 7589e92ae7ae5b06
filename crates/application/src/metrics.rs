//! Metrics of the work MAOS did in a window of time (for people and dashboards):
//! throughput (tasks completed by hour), the first-attempt pass rate, time to green (a task's
//! creation to its completion), how often a person stepped in (approvals, rejections, retries
//! asked for), tokens and cost, and each agent's attempts and success rate. Pure: computed from
//! the tasks and events the caller read; counts and durations, no ratios (a front end divides).

use std::collections::{BTreeMap, HashMap};

use maos_domain::{
    AgentName, AttemptOutcome, DomainEvent, Task, TaskEvent, TaskId, Timestamp, Usage,
};

use crate::api::StoredEvent;

/// What the work in a window of time came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// The window's start (none: since the first event).
    pub since: Option<Timestamp>,
    /// The window's end: when the figures were read.
    pub until: Timestamp,
    /// Tasks created in the window.
    pub created: u64,
    /// Tasks completed in the window.
    pub completed: u64,
    /// Tasks completed in the window, by the hour they completed in (the hour's start), oldest
    /// first; hours without any are left out.
    pub completed_by_hour: Vec<(Timestamp, u64)>,
    /// Of the tasks completed in the window, those whose first attempt was the one accepted.
    pub first_attempt_passed: u64,
    /// Time from creation to completion of the tasks completed in the window.
    pub time_to_green: Option<Spread>,
    /// A person's decisions in the window: approvals given, rejections, retries asked for.
    pub approvals: u64,
    pub rejections: u64,
    pub manual_retries: u64,
    /// Attempts that ended in the window, and what they used.
    pub attempts: u64,
    pub usage: Usage,
    /// Per agent, by name: the attempts that ended in the window.
    pub agents: Vec<AgentMetrics>,
}

/// One agent's attempts that ended in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMetrics {
    pub agent: AgentName,
    pub attempts: u64,
    /// Its attempts that succeeded (the agent's work passed; a person may still reject it).
    pub succeeded: u64,
    /// Its attempts that failed (interrupted ones are neither: not the agent's doing).
    pub failed: u64,
    pub usage: Usage,
}

/// Durations in milliseconds: the median, the 90th percentile and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
}

const HOUR_MS: i64 = 3_600_000;

/// The metrics of the window `since..=until` over `tasks` (every task that may have been active
/// in it) and `events` (the log, at least from `since`). Linear in both, plus sorting the
/// durations.
pub fn compute(
    since: Option<Timestamp>,
    until: Timestamp,
    tasks: &[Task],
    events: &[StoredEvent],
) -> Metrics {
    let within = |at: Timestamp| since.is_none_or(|s| at >= s) && at <= until;
    let mut m = Metrics {
        since,
        until,
        created: 0,
        completed: 0,
        completed_by_hour: Vec::new(),
        first_attempt_passed: 0,
        time_to_green: None,
        approvals: 0,
        rejections: 0,
        manual_retries: 0,
        attempts: 0,
        usage: Usage::default(),
        agents: Vec::new(),
    };
    let by_id: HashMap<TaskId, &Task> = tasks.iter().map(|t| (t.id, t)).collect();
    let mut hours: BTreeMap<i64, u64> = BTreeMap::new();
    let mut greens = Vec::new();
    for e in events.iter().filter(|e| within(e.at)) {
        let DomainEvent::Task { id, event } = &e.event else {
            continue;
        };
        match event {
            TaskEvent::Created { .. } => m.created += 1,
            TaskEvent::Completed => {
                m.completed += 1;
                let ms = e.at.as_millis();
                *hours.entry(ms - ms.rem_euclid(HOUR_MS)).or_default() += 1;
                if let Some(t) = by_id.get(id) {
                    greens.push(u64::try_from(ms - t.created_at.as_millis()).unwrap_or(0));
                    let first_accepted = t
                        .attempts
                        .iter()
                        .filter(|a| a.status != AttemptOutcome::Interrupted)
                        .count()
                        == 1;
                    if first_accepted {
                        m.first_attempt_passed += 1;
                    }
                }
            }
            TaskEvent::ApprovalGranted { .. } => m.approvals += 1,
            TaskEvent::ApprovalRejected { .. } => m.rejections += 1,
            TaskEvent::RetryRequested { .. } => m.manual_retries += 1,
            _ => {}
        }
    }
    m.completed_by_hour = hours
        .into_iter()
        .map(|(h, n)| (Timestamp::from_millis(h), n))
        .collect();
    m.time_to_green = spread(greens);
    let mut agents: BTreeMap<&AgentName, AgentMetrics> = BTreeMap::new();
    for a in tasks
        .iter()
        .flat_map(|t| &t.attempts)
        .filter(|a| a.ended_at.is_some_and(within))
    {
        m.attempts += 1;
        m.usage += a.usage;
        let entry = agents.entry(&a.agent).or_insert_with(|| AgentMetrics {
            agent: a.agent.clone(),
            attempts: 0,
            succeeded: 0,
            failed: 0,
            usage: Usage::default(),
        });
        entry.attempts += 1;
        entry.usage += a.usage;
        match a.status {
            AttemptOutcome::Succeeded => entry.succeeded += 1,
            AttemptOutcome::Failed => entry.failed += 1,
            _ => {}
        }
    }
    m.agents = agents.into_values().collect();
    m
}

/// The median, 90th percentile and maximum of `values` (nearest rank); none when empty.
fn spread(mut values: Vec<u64>) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = |p: usize| values[(values.len() * p).div_ceil(100).saturating_sub(1)];
    Some(Spread {
        p50: rank(50),
        p90: rank(90),
        max: values[values.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use maos_domain::task::TaskData;
    use maos_domain::{
        Attempt, FencingToken, MaxAttempts, Priority, Risk, TaskSpec, TaskState, Title, Usd,
    };

    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn usage() -> Usage {
        Usage {
            input_tokens: 100,
            cached_input_tokens: 0,
            output_tokens: 10,
            cost: Usd::from_micros(1_000),
        }
    }

    /// A task created at `created` whose attempts (by `agents`: each fails but the last) end a
    /// second apart, the last one completing it half a second after it ends; its events too.
    fn task(n: u128, created: i64, agents: &[&str]) -> (Task, Vec<StoredEvent>) {
        let id = TaskId::from_bits(n);
        let spec = TaskSpec {
            title: Title::parse("t").unwrap(),
            prompt: String::new(),
            capabilities: Default::default(),
            priority: Priority::default(),
            risk: Risk::Low,
            tier: None,
            depends_on: Default::default(),
            orchestration: None,
            max_attempts: MaxAttempts::new(3).unwrap(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: None,
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: None,
            parent: None,
            lessons: false,
        };
        let mut events = vec![(
            TaskEvent::Created {
                spec: Box::new(spec.clone()),
            },
            created,
        )];
        let attempts: Vec<Attempt> = agents
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let number = u32::try_from(i).unwrap() + 1;
                let ended = created + 1_000 * i64::from(number);
                Attempt {
                    number,
                    agent: AgentName::parse(name).unwrap(),
                    fencing: FencingToken::new(u64::from(number)),
                    status: if i + 1 == agents.len() {
                        AttemptOutcome::Succeeded
                    } else {
                        AttemptOutcome::Failed
                    },
                    assigned_at: at(ended - 500),
                    lease_expires_at: at(ended + 10_000),
                    started_at: Some(at(ended - 500)),
                    ended_at: Some(at(ended)),
                    summary: None,
                    error: None,
                    pid: None,
                    session: None,
                    exit: None,
                    usage: usage(),
                    failure: None,
                    checkpoint_before: None,
                    checkpoint_after: None,
                    port: None,
                    verification: None,
                    briefing: None,
                    diff_stat: None,
                    permission_denials: Vec::new(),
                    refunded: false,
                }
            })
            .collect();
        let done = created + 1_000 * i64::try_from(agents.len()).unwrap() + 500;
        events.push((TaskEvent::Completed, done));
        let t = Task::restore(TaskData {
            id,
            spec,
            state: TaskState::Completed,
            reason: None,
            blocked: None,
            attempts,
            fencing: FencingToken::new(u64::try_from(agents.len()).unwrap()),
            created_at: at(created),
            updated_at: at(done),
            version: 1,
            workspace: None,
            pending: None,
            run_approved: false,
            decision: None,
            retry_at: None,
            extra_attempts: 0,
            subtasks: Vec::new(),
        });
        let stored = events
            .into_iter()
            .map(|(event, ms)| StoredEvent {
                seq: 0,
                at: at(ms),
                event: DomainEvent::Task { id, event },
            })
            .collect();
        (t, stored)
    }

    #[test]
    fn completions_first_passes_time_to_green_and_agents_are_counted_in_the_window() {
        let (a, ea) = task(1, 0, &["claude"]);
        let (b, eb) = task(2, 10_000, &["codex", "claude"]);
        let (c, ec) = task(3, HOUR_MS, &["codex"]);
        let tasks = vec![a, b, c];
        let mut events: Vec<StoredEvent> = ea.into_iter().chain(eb).chain(ec).collect();
        let approved = StoredEvent {
            seq: 0,
            at: at(20_000),
            event: DomainEvent::Task {
                id: TaskId::from_bits(2),
                event: TaskEvent::RetryRequested { granted: 1 },
            },
        };
        events.push(approved);
        events.sort_by_key(|e| e.at);
        let m = compute(None, at(2 * HOUR_MS), &tasks, &events);
        assert_eq!((m.created, m.completed, m.first_attempt_passed), (3, 3, 2));
        assert_eq!(m.completed_by_hour, vec![(at(0), 2), (at(HOUR_MS), 1)]);
        // Time to green: 1.5 s, 2.5 s, 1.5 s.
        assert_eq!(
            m.time_to_green,
            Some(Spread {
                p50: 1_500,
                p90: 2_500,
                max: 2_500
            })
        );
        assert_eq!(m.manual_retries, 1);
        assert_eq!(m.attempts, 4);
        assert_eq!(m.usage.input_tokens, 400);
        let names: Vec<(&str, u64, u64, u64)> = m
            .agents
            .iter()
            .map(|a| (a.agent.as_str(), a.attempts, a.succeeded, a.failed))
            .collect();
        assert_eq!(names, [("claude", 2, 2, 0), ("codex", 2, 1, 1)]);
        // A window that starts at the second hour sees only the third task.
        let later = compute(Some(at(HOUR_MS)), at(2 * HOUR_MS), &tasks, &events);
        assert_eq!((later.created, later.completed, later.attempts), (1, 1, 1));
        assert_eq!(later.completed_by_hour, vec![(at(HOUR_MS), 1)]);
    }

    #[test]
    fn an_empty_window_has_no_spread() {
        let m = compute(None, at(1), &[], &[]);
        assert_eq!(m.time_to_green, None);
        assert_eq!(m.completed, 0);
    }
}
