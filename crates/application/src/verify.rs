//! `admin verify`: checks a store against its own event log. Every aggregate's events are folded
//! (`Task::from_events` and its kin, one event at a time as the log is read) and compared with
//! the stored state; the log must number its events 1, 2, 3… without a gap; each task's
//! attempts must be numbered from 1 without a gap, at most one of them live (the newest), their
//! fencing tokens strictly increasing and the task's token that of its newest attempt. A read-side
//! use case: it changes nothing and returns what disagrees as data.

use std::collections::{HashMap, HashSet};

use maos_domain::{
    Agent, AgentId, AgentName, AgentStatus, AttemptOutcome, DomainEvent, Memory, MemoryId,
    Orchestration, OrchestrationId, Task, TaskId,
};

use crate::ports::{ReadStore, Scanned, StoreError};

/// What is wrong, one word per kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// The log skips sequence numbers (events are missing) or does not start at 1.
    SequenceGap,
    /// The stored state differs from the fold of the aggregate's events.
    StateMismatch,
    /// A stored aggregate has no events.
    StateWithoutEvents,
    /// An aggregate has events but no stored state.
    EventsWithoutState,
    /// An aggregate's events do not start with its creation, so they cannot be folded.
    UnfoldableEvents,
    /// A task's attempts are not numbered 1, 2, 3…
    AttemptNumbers,
    /// A task has more than one live (assigned or running) attempt, or a live attempt that is not
    /// its newest.
    LiveAttempts,
    /// A task's fencing tokens do not increase from attempt to attempt, or its token is not that
    /// of its newest attempt.
    Fencing,
}

impl FindingKind {
    /// The keyword (`sequence_gap`, `state_mismatch`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SequenceGap => "sequence_gap",
            Self::StateMismatch => "state_mismatch",
            Self::StateWithoutEvents => "state_without_events",
            Self::EventsWithoutState => "events_without_state",
            Self::UnfoldableEvents => "unfoldable_events",
            Self::AttemptNumbers => "attempt_numbers",
            Self::LiveAttempts => "live_attempts",
            Self::Fencing => "fencing",
        }
    }
}

/// One problem: its kind, the aggregate it concerns (none for the log itself), a sentence for
/// people, and the facts as name/value pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// `task`, `agent`, `orchestration`, `memory`, or `log`.
    pub aggregate: &'static str,
    /// The aggregate's id; none for the log.
    pub id: Option<String>,
    pub message: String,
    pub facts: Vec<(&'static str, String)>,
}

/// What `admin verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Events read.
    pub events: u64,
    /// The newest event's sequence number (0 for an empty log).
    pub last_seq: u64,
    pub agents: usize,
    pub tasks: usize,
    pub orchestrations: usize,
    pub memories: usize,
    /// Every problem, in the order found: the log, then agents, tasks, orchestrations, memory
    /// entries, then the aggregates that have events but no state.
    pub findings: Vec<Finding>,
}

impl Verification {
    /// True when nothing disagrees.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The names of the fields in which two aggregates differ.
macro_rules! differing {
    ($x:expr, $y:expr, $($field:ident),+ $(,)?) => {{
        let mut names: Vec<&'static str> = Vec::new();
        $(if $x.$field != $y.$field { names.push(stringify!($field)); })+
        names
    }};
}

fn agent_fields(x: &Agent, y: &Agent) -> Vec<&'static str> {
    differing!(
        x,
        y,
        id,
        name,
        adapter,
        capabilities,
        tier,
        slots,
        command,
        settings,
        status,
        active,
        registered_at,
        updated_at,
        version,
        failures_in_row,
        drained_because
    )
}

fn task_fields(x: &Task, y: &Task) -> Vec<&'static str> {
    differing!(
        x,
        y,
        id,
        spec,
        state,
        reason,
        attempts,
        fencing,
        created_at,
        updated_at,
        version,
        workspace,
        pending,
        run_approved,
        decision,
        retry_at,
        extra_attempts
    )
}

fn orchestration_fields(x: &Orchestration, y: &Orchestration) -> Vec<&'static str> {
    differing!(
        x,
        y,
        id,
        name,
        goal,
        workspace,
        verify,
        notes,
        planned,
        status,
        plan_version,
        planning,
        approved_version,
        decided_version,
        superseded,
        created_at,
        updated_at,
        version
    )
}

fn memory_fields(x: &Memory, y: &Memory) -> Vec<&'static str> {
    differing!(
        x,
        y,
        id,
        tier,
        scope,
        text,
        tags,
        provenance,
        pinned,
        state,
        forgotten_because,
        created_at,
        updated_at,
        expires_at,
        version
    )
}

/// A fold in progress: where the aggregate's events start, and the aggregate so far (none when
/// its events could not be folded).
struct Fold<T> {
    first_seq: u64,
    state: Option<T>,
}

/// Checks everything `store` holds (one snapshot, [`ReadStore::scan`]).
pub fn verify<R: ReadStore + ?Sized>(store: &R) -> Result<Verification, StoreError> {
    let mut v = Verification::default();
    let mut tasks: HashMap<TaskId, Fold<Task>> = HashMap::new();
    let mut agents: HashMap<AgentId, Fold<Agent>> = HashMap::new();
    let mut orchestrations: HashMap<OrchestrationId, Fold<Orchestration>> = HashMap::new();
    let mut memories: HashMap<MemoryId, Fold<Memory>> = HashMap::new();
    let mut names: HashSet<AgentName> = HashSet::new();
    let mut expected_seq = 1u64;
    store.scan(&mut |item| match item {
        Scanned::Event(e) => {
            v.events += 1;
            if e.seq != expected_seq {
                v.findings.push(Finding {
                    kind: FindingKind::SequenceGap,
                    aggregate: "log",
                    id: None,
                    message: if expected_seq == 1 && e.seq > 1 {
                        format!(
                            "the event log starts at seq {}: {} event(s) missing before it",
                            e.seq,
                            e.seq - 1
                        )
                    } else if e.seq > expected_seq {
                        format!(
                            "the event log skips from seq {} to {}: {} event(s) missing",
                            expected_seq.saturating_sub(1),
                            e.seq,
                            e.seq - expected_seq
                        )
                    } else {
                        format!("event seq {} comes after seq {}", e.seq, expected_seq - 1)
                    },
                    facts: vec![
                        ("expected_seq", expected_seq.to_string()),
                        ("found_seq", e.seq.to_string()),
                    ],
                });
            }
            expected_seq = e.seq.saturating_add(1);
            v.last_seq = e.seq;
            match &e.event {
                DomainEvent::Task { id, event } => fold(
                    &mut tasks,
                    *id,
                    e.seq,
                    |f| f.apply(event, e.at),
                    || Task::from_events(*id, [(event, e.at)]),
                ),
                DomainEvent::Agent { id, event } => fold(
                    &mut agents,
                    *id,
                    e.seq,
                    |f| f.apply(event, e.at),
                    || Agent::from_events(*id, [(event, e.at)]),
                ),
                DomainEvent::Orchestration { id, event } => fold(
                    &mut orchestrations,
                    *id,
                    e.seq,
                    |f| f.apply(event, e.at),
                    || Orchestration::from_events(*id, [(event, e.at)]),
                ),
                DomainEvent::Memory { id, event } => fold(
                    &mut memories,
                    *id,
                    e.seq,
                    |f| f.apply(event, e.at),
                    || Memory::from_events(*id, [(event, e.at)]),
                ),
            }
        }
        // The log came first, so every fold is complete when the stored state arrives.
        Scanned::Agent(a) => {
            v.agents += 1;
            compare(
                &mut v,
                "agent",
                a.id.to_string(),
                agents.remove(&a.id),
                &a,
                agent_fields,
            );
            names.insert(a.name.clone());
        }
        Scanned::Task(t) => {
            v.tasks += 1;
            compare(
                &mut v,
                "task",
                t.id.to_string(),
                tasks.remove(&t.id),
                &t,
                task_fields,
            );
            attempts(&mut v, &t);
        }
        Scanned::Orchestration(o) => {
            v.orchestrations += 1;
            compare(
                &mut v,
                "orchestration",
                o.id.to_string(),
                orchestrations.remove(&o.id),
                &o,
                orchestration_fields,
            );
        }
        Scanned::Memory(m) => {
            v.memories += 1;
            compare(
                &mut v,
                "memory",
                m.id.to_string(),
                memories.remove(&m.id),
                &m,
                memory_fields,
            );
        }
    })?;
    // An agent is stored under its name: a removed agent whose name was registered again is
    // replaced by the new one, and only its events remain. That is no problem.
    agents.retain(|_, f| {
        !f.state
            .as_ref()
            .is_some_and(|a| a.status == AgentStatus::Removed && names.contains(&a.name))
    });
    let mut orphans: Vec<(&'static str, String, u64)> = Vec::new();
    orphans.extend(
        agents
            .iter()
            .map(|(id, f)| ("agent", id.to_string(), f.first_seq)),
    );
    orphans.extend(
        tasks
            .iter()
            .map(|(id, f)| ("task", id.to_string(), f.first_seq)),
    );
    orphans.extend(
        orchestrations
            .iter()
            .map(|(id, f)| ("orchestration", id.to_string(), f.first_seq)),
    );
    orphans.extend(
        memories
            .iter()
            .map(|(id, f)| ("memory", id.to_string(), f.first_seq)),
    );
    orphans.sort_by_key(|(_, _, seq)| *seq);
    for (aggregate, id, seq) in orphans {
        v.findings.push(Finding {
            kind: FindingKind::EventsWithoutState,
            aggregate,
            message: format!("{aggregate} {id} has events (from seq {seq}) but no stored state"),
            id: Some(id),
            facts: vec![("first_seq", seq.to_string())],
        });
    }
    Ok(v)
}

fn fold<K: std::hash::Hash + Eq, T>(
    folds: &mut HashMap<K, Fold<T>>,
    id: K,
    seq: u64,
    apply: impl FnOnce(&mut T),
    create: impl FnOnce() -> Option<T>,
) {
    match folds.get_mut(&id) {
        Some(f) => {
            if let Some(x) = &mut f.state {
                apply(x);
            }
        }
        None => {
            folds.insert(
                id,
                Fold {
                    first_seq: seq,
                    state: create(),
                },
            );
        }
    }
}

fn compare<T>(
    v: &mut Verification,
    aggregate: &'static str,
    id: String,
    folded: Option<Fold<T>>,
    stored: &T,
    differing: fn(&T, &T) -> Vec<&'static str>,
) {
    let (kind, message, facts) = match folded {
        None => (
            FindingKind::StateWithoutEvents,
            format!("{aggregate} {id} is stored but has no events"),
            Vec::new(),
        ),
        Some(Fold {
            first_seq,
            state: None,
        }) => (
            FindingKind::UnfoldableEvents,
            format!(
                "the events of {aggregate} {id} do not start with its creation (seq {first_seq})"
            ),
            vec![("first_seq", first_seq.to_string())],
        ),
        Some(Fold {
            state: Some(folded),
            ..
        }) => {
            let fields = differing(&folded, stored);
            if fields.is_empty() {
                return;
            }
            (
                FindingKind::StateMismatch,
                format!(
                    "the stored {aggregate} {id} differs from the fold of its events in: {}",
                    fields.join(", ")
                ),
                vec![("fields", fields.join(","))],
            )
        }
    };
    v.findings.push(Finding {
        kind,
        aggregate,
        id: Some(id),
        message,
        facts,
    });
}

/// The attempts and fencing tokens of one stored task.
fn attempts(v: &mut Verification, t: &Task) {
    let id = t.id.to_string();
    let mut push = |kind, message: String, facts: Vec<(&'static str, String)>| {
        v.findings.push(Finding {
            kind,
            aggregate: "task",
            id: Some(id.clone()),
            message,
            facts,
        });
    };
    let numbers: Vec<u32> = t.attempts.iter().map(|a| a.number).collect();
    if numbers.iter().zip(1u32..).any(|(n, want)| *n != want) {
        push(
            FindingKind::AttemptNumbers,
            format!("task {id}'s attempts are numbered {numbers:?}, not 1, 2, 3…"),
            vec![("numbers", join(&numbers))],
        );
    }
    let live: Vec<u32> = t
        .attempts
        .iter()
        .filter(|a| matches!(a.status, AttemptOutcome::Assigned | AttemptOutcome::Running))
        .map(|a| a.number)
        .collect();
    let newest = t.attempts.last().map(|a| a.number);
    if live.len() > 1 || live.first().is_some_and(|n| Some(*n) != newest) {
        push(
            FindingKind::LiveAttempts,
            format!("task {id} has live attempts {live:?}; only its newest may be live"),
            vec![("live", join(&live))],
        );
    }
    let tokens: Vec<u64> = t.attempts.iter().map(|a| a.fencing.get()).collect();
    if tokens.windows(2).any(|w| w[0] >= w[1]) {
        push(
            FindingKind::Fencing,
            format!("task {id}'s fencing tokens {tokens:?} do not increase attempt by attempt"),
            vec![("tokens", join(&tokens))],
        );
    }
    if let Some(last) = t.attempts.last().filter(|a| a.fencing != t.fencing) {
        push(
            FindingKind::Fencing,
            format!(
                "task {id}'s fencing token is {} but its newest attempt's is {}",
                t.fencing.get(),
                last.fencing.get()
            ),
            vec![
                ("task_fencing", t.fencing.get().to_string()),
                ("attempt_fencing", last.fencing.get().to_string()),
            ],
        );
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
