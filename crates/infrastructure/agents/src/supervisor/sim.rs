//! Simulated agents (`sim`): no process, no attempt thread; a timer ends each attempt after its
//! delay, and a few reporter threads make their durable writes.

use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use maos_application::{Launch, MaosApi};
use maos_domain::{
    AgentName, AttemptStart, FailureKind, FencingToken, RunReport, TaskState, Usage, Usd,
};
use tracing::debug;

use super::{Inner, Key, Timer, lock, observe_start, overrun_error, schedule};

/// A write a reporter thread makes for a simulated agent.
#[derive(Debug)]
pub(super) enum Report {
    Start(Box<Launch>),
    Finish(SimAttempt),
}

/// What a running simulated attempt keeps until it ends: only what its end needs, so that a
/// hundred thousand of them fit in little memory (docs/benchmarks.md).
#[derive(Debug)]
pub(super) struct SimAttempt {
    key: Key,
    fencing: FencingToken,
    agent: AgentName,
    usage: Usage,
    /// The budget's total and what was left at launch, when the attempt overruns it.
    overrun: Option<(Usd, Usd)>,
    fail_every: Option<u32>,
}

/// How many threads make the simulated agents' durable writes.
pub(super) const REPORTERS: usize = 32;

/// A reporter thread: makes the simulated agents' durable writes until the supervisor shuts
/// down.
pub(super) fn reporter(inner: &Inner, rx: &Mutex<mpsc::Receiver<Report>>) {
    loop {
        let next = lock(rx).recv();
        let Ok(report) = next else { return };
        let Some(api) = inner.api.get() else { continue };
        match report {
            Report::Start(launch) => sim_start(inner, api.as_ref(), *launch),
            Report::Finish(attempt) => sim_finish(inner, api.as_ref(), attempt),
        }
    }
}

fn sim_start(inner: &Inner, api: &dyn MaosApi, launch: Launch) {
    let key = (launch.task.id, launch.attempt);
    observe_start(inner, key);
    // The service records a simulated attempt's start with its assignment (ADR 0024); a
    // launch that comes still `assigned` is started here, as any other agent's would be.
    if launch.task.state != TaskState::Running
        && let Err(e) = api.start_attempt(launch.task.id, launch.fencing, AttemptStart::default())
    {
        debug!(task = %launch.task.id.short(), error = %e, "a simulated attempt could not start");
        lock(&inner.live).remove(&key);
        return;
    }
    let delay = launch
        .agent
        .settings
        .delay
        .map_or(inner.config.sim_delay, |d| {
            Duration::from_millis(d.as_millis())
        });
    let usage = sim_usage(&launch);
    let attempt = SimAttempt {
        key,
        fencing: launch.fencing,
        overrun: launch
            .task
            .budget_left()
            .filter(|left| usage.cost > *left)
            .map(|left| (launch.task.spec.budget.unwrap_or(Usd::ZERO), left)),
        fail_every: launch.agent.settings.fail_every.filter(|every| *every > 0),
        usage,
        agent: launch.agent.name.clone(),
    };
    schedule(inner, Instant::now() + delay, Timer::SimDone(attempt));
}

/// What a simulated attempt reports using: a fixed token count, priced by the agent's table.
fn sim_usage(launch: &Launch) -> Usage {
    let mut usage = Usage {
        input_tokens: 1_000,
        cached_input_tokens: 0,
        output_tokens: 200,
        cost: Usd::ZERO,
    };
    if let Some(price) = &launch.agent.settings.price {
        usage.cost = price.cost(&usage);
    }
    usage
}

fn sim_finish(inner: &Inner, api: &dyn MaosApi, sim: SimAttempt) {
    let key = sim.key;
    if lock(&inner.live).remove(&key).is_none() {
        return; // stopped meanwhile
    }
    let nth = {
        let mut counts = lock(&inner.sim_attempts);
        let n = counts.entry(sim.agent).or_insert(0);
        *n += 1;
        *n
    };
    let usage = sim.usage;
    let every = sim.fail_every;
    let fails = every.is_some_and(|every| nth % every == 0);
    let result = if let Some((budget, left)) = sim.overrun {
        api.fail_attempt(
            key.0,
            sim.fencing,
            overrun_error(usage.cost, left, budget),
            RunReport {
                exit: None,
                usage,
                failure: Some(FailureKind::Budget),
                ..RunReport::default()
            },
        )
    } else if fails {
        api.fail_attempt(
            key.0,
            sim.fencing,
            format!(
                "simulated failure (this sim agent fails every {} attempts)",
                every.unwrap_or(0)
            ),
            RunReport {
                exit: None,
                usage,
                failure: Some(FailureKind::Agent),
                ..RunReport::default()
            },
        )
    } else {
        api.complete_attempt(
            key.0,
            sim.fencing,
            Some("simulated work done".into()),
            RunReport {
                exit: None,
                usage,
                failure: None,
                ..RunReport::default()
            },
        )
    };
    if let Err(e) = result {
        debug!(task = %key.0.short(), error = %e, "a simulated result was refused");
    }
}
