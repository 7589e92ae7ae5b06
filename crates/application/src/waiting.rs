//! What a task that does not run waits for (`maos task show`): a dependency, a concern another
//! task holds, an agent, a budget, a person, the end of a backoff, its orchestration.

use maos_domain::policy::matcher;
use maos_domain::{AgentStatus, OrchestrationStatus, Task, TaskState, Tier, Timestamp, Usd};

use crate::api::{AgentFilter, Page, TaskFilter, WaitKind, Waiting};
use crate::error::QueryError;
use crate::locks::{HOLDING, Held};
use crate::ports::Store;

/// Everything `t` waits for now (empty when it is running or finished, or will be assigned as
/// soon as the scheduler gets to it).
pub(crate) fn explain<S: Store + ?Sized>(
    store: &S,
    t: &Task,
    now: Timestamp,
) -> Result<Vec<Waiting>, QueryError> {
    let short = t.id.short();
    let mut out = Vec::new();
    let mut say = |kind, detail: String, task| out.push(Waiting { kind, detail, task });
    match t.state {
        TaskState::Pending => {
            for dep in &t.spec.depends_on {
                match store.task(*dep)? {
                    Some(d) if d.state == TaskState::Completed => {}
                    Some(d) => say(
                        WaitKind::Dependency,
                        format!(
                            "its dependency {} \"{}\" is {}",
                            d.id.short(),
                            d.spec.title,
                            d.state
                        ),
                        Some(d.id),
                    ),
                    None => say(
                        WaitKind::Dependency,
                        format!("its dependency {} does not exist", dep.short()),
                        Some(*dep),
                    ),
                }
            }
        }
        TaskState::Retrying => {
            let detail = match t.retry_at {
                Some(due) if due > now => format!(
                    "the backoff after its failed attempt: the retry is due at {} (in {})",
                    due.to_rfc3339(),
                    seconds(due.millis_since(now))
                ),
                _ => "its retry is due: it becomes ready at the next scheduling pass".to_owned(),
            };
            say(WaitKind::Backoff, detail, None);
        }
        TaskState::AwaitingApproval => {
            let what = match t.pending.as_ref().map(|p| p.gate) {
                Some(maos_domain::Gate::Run) => "to run at all (high risk)",
                Some(maos_domain::Gate::Tool) => "a tool call of its running agent",
                _ => "its verified result",
            };
            say(
                WaitKind::Approval,
                format!(
                    "a person must approve {what}: `maos approve {short}` or `maos reject \
                     {short} --reason \"…\"`"
                ),
                None,
            );
        }
        TaskState::Blocked => {
            let why = t.reason.as_deref().unwrap_or("no reason recorded");
            // A retry is refused while a dependency is cancelled or the budget is spent.
            let mut cancelled = None;
            for dep in &t.spec.depends_on {
                if store
                    .task(*dep)?
                    .is_some_and(|d| d.state == TaskState::Cancelled)
                {
                    cancelled = Some(*dep);
                    break;
                }
            }
            let spent = t.budget_left().is_some_and(|left| left == Usd::ZERO);
            let next = if cancelled.is_some() || spent {
                format!("it cannot run as it is: `maos task cancel {short}`")
            } else {
                format!("`maos task retry {short}` runs it again")
            };
            say(
                WaitKind::Person,
                format!("it is blocked: {why}; {next}"),
                cancelled,
            );
        }
        TaskState::Ready => ready_but_waiting(store, t, &mut say)?,
        _ => {}
    }
    Ok(out)
}

/// Why a ready task has no agent yet.
fn ready_but_waiting<S: Store + ?Sized>(
    store: &S,
    t: &Task,
    say: &mut impl FnMut(WaitKind, String, Option<maos_domain::TaskId>),
) -> Result<(), QueryError> {
    // How many reasons were given so far.
    let said = std::cell::Cell::new(0usize);
    let mut say = |kind, detail: String, task| {
        said.set(said.get() + 1);
        say(kind, detail, task);
    };
    if let Some(oid) = t.spec.orchestration
        && let Some(o) = store.orchestration(oid)?
        && o.status != OrchestrationStatus::Running
    {
        let how = match o.status {
            OrchestrationStatus::Draft | OrchestrationStatus::AwaitingPlanApproval => {
                format!("has not started: `maos orchestrate start {}`", oid.short())
            }
            OrchestrationStatus::Paused => {
                format!("is paused: `maos orchestrate resume {}`", oid.short())
            }
            s => format!("is {s}"),
        };
        say(
            WaitKind::Orchestration,
            format!("its orchestration {} {how}", oid.short()),
            None,
        );
    }
    if let Some(left) = t.budget_left()
        && left == Usd::ZERO
    {
        say(
            WaitKind::Budget,
            format!(
                "its budget of ${} is spent",
                t.spec.budget.unwrap_or(Usd::ZERO)
            ),
            None,
        );
    }
    if !t.spec.concerns.is_empty() {
        let filter = TaskFilter {
            statuses: HOLDING.to_vec(),
            ..TaskFilter::default()
        };
        let page = Page {
            limit: Page::MAX_LIMIT,
            cursor: None,
        };
        let holders = store.tasks(&filter, &page)?.tasks;
        for clash in Held::of(&holders).clashes(t) {
            say(
                WaitKind::Concern,
                format!(
                    "its concern `{}` overlaps `{}`, held by task {} until that task's work is \
                     accepted",
                    clash.mine,
                    clash.theirs,
                    clash.holder.short()
                ),
                Some(clash.holder),
            );
        }
    }
    let agents = store.agents(&AgentFilter::default())?;
    let capable: Vec<_> = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Removed)
        .filter(|a| matcher::is_capable(a, &t.spec.capabilities, t.spec.tier))
        .collect();
    let working: Vec<_> = capable.iter().filter(|a| a.accepts_work()).collect();
    if working.is_empty() {
        let needs = if t.spec.capabilities.is_empty() {
            "any capability".to_owned()
        } else {
            t.spec.capabilities.to_string()
        };
        let tier = match t.spec.tier {
            Some(Tier::Strategic) => " of the strategic tier",
            Some(Tier::Tactical) => " of the tactical tier",
            None => "",
        };
        let drained: Vec<String> = capable
            .iter()
            .filter(|a| a.status == AgentStatus::Draining)
            .map(|a| a.name.to_string())
            .collect();
        let also = if drained.is_empty() {
            String::new()
        } else {
            format!(
                " ({} can but {} draining: `maos agent resume`)",
                drained.join(", "),
                if drained.len() == 1 { "is" } else { "are" }
            )
        };
        say(
            WaitKind::NoCapableAgent,
            format!(
                "no agent that takes work offers {needs}{tier}{also}; register one \
                 (`maos agent register`)"
            ),
            None,
        );
    } else if working.iter().all(|a| a.free_slots() == 0) {
        let names: Vec<String> = working.iter().map(|a| a.name.to_string()).collect();
        say(
            WaitKind::AgentsBusy,
            format!(
                "every capable agent is busy ({}); it runs when a slot frees",
                names.join(", ")
            ),
            None,
        );
    } else if said.get() == 0 {
        // A capable agent has a free slot and nothing above holds the task back: say who it
        // waits for anyway, so that a ready task that does not run is never left unexplained.
        let names = |agents: &[&maos_domain::Agent]| {
            agents
                .iter()
                .map(|a| a.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (run, external): (Vec<&maos_domain::Agent>, Vec<&maos_domain::Agent>) = working
            .iter()
            .map(|a| **a)
            .partition(|a| a.adapter.is_run_by_daemon());
        let free_run: Vec<&maos_domain::Agent> =
            run.iter().copied().filter(|a| a.free_slots() > 0).collect();
        let first_external = external.first().map(|a| a.name.to_string());
        let short = t.id.short();
        let detail = match first_external {
            _ if !free_run.is_empty() => format!(
                "{} can take it now: the daemon assigns it at its next scheduling pass (in \
                 process, with --no-daemon, nothing assigns: the next `maos` command through the \
                 daemon starts one)",
                names(&free_run)
            ),
            Some(e) if run.is_empty() => format!(
                "only external agents offer what it needs ({}), and MAOS never assigns work to \
                 them: it runs when one of them takes it (`maos task assign {short} --agent {e}`)",
                names(&external)
            ),
            Some(e) => format!(
                "every capable agent MAOS runs is busy ({}); it runs when a slot frees, or when \
                 an external agent takes it (`maos task assign {short} --agent {e}`)",
                names(&run)
            ),
            None => "a capable agent is free: it runs at the next scheduling pass".to_owned(),
        };
        say(WaitKind::AgentsBusy, detail, None);
    }
    Ok(())
}

/// `12s`, `3m 05s`.
fn seconds(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}
