//! What a task that does not run waits for, as data: a dependency, a concern another task holds,
//! an agent, a budget, a person, the end of a backoff, its orchestration.

use maos_domain::policy::matcher;
use maos_domain::{
    Agent, AgentStatus, Gate, OrchestrationStatus, Task, TaskState, Timestamp, Usd, WaitReason,
};

use crate::api::{AgentFilter, Page, TaskFilter};
use crate::error::QueryError;
use crate::locks::{HOLDING, Held};
use crate::ports::Store;

/// Everything `t` waits for now (empty when it is running or finished, or will be assigned as
/// soon as the scheduler gets to it).
pub(crate) fn explain<S: Store + ?Sized>(
    store: &S,
    t: &Task,
    now: Timestamp,
) -> Result<Vec<WaitReason>, QueryError> {
    let mut out = Vec::new();
    match t.state {
        TaskState::Pending => {
            for dep in &t.spec.depends_on {
                match store.task(*dep)? {
                    Some(d) if d.state == TaskState::Completed => {}
                    Some(d) => out.push(WaitReason::Dependency {
                        task: d.id,
                        title: d.spec.title.clone(),
                        state: d.state,
                    }),
                    None => out.push(WaitReason::MissingDependency { task: *dep }),
                }
            }
        }
        TaskState::Retrying => out.push(WaitReason::Backoff {
            due: t.retry_at,
            wait_ms: t.retry_at.map_or(0, |due| due.millis_since(now)),
        }),
        TaskState::AwaitingApproval => out.push(WaitReason::Approval {
            gate: t.pending.as_ref().map_or(Gate::Result, |p| p.gate),
        }),
        TaskState::Blocked => {
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
            out.push(WaitReason::Blocked {
                reason: t.blocked.clone(),
                words: t.reason.clone(),
                cancelled_dependency: cancelled,
                budget_spent: t.budget_left().is_some_and(|left| left == Usd::ZERO),
            });
        }
        TaskState::Ready => ready_but_waiting(store, t, &mut out)?,
        _ => {}
    }
    Ok(out)
}

/// Why a ready task has no agent yet.
fn ready_but_waiting<S: Store + ?Sized>(
    store: &S,
    t: &Task,
    out: &mut Vec<WaitReason>,
) -> Result<(), QueryError> {
    let before = out.len();
    if let Some(oid) = t.spec.orchestration
        && let Some(o) = store.orchestration(oid)?
        && o.status != OrchestrationStatus::Running
    {
        out.push(WaitReason::Orchestration {
            orchestration: oid,
            status: o.status,
        });
    }
    if let Some(left) = t.budget_left()
        && left == Usd::ZERO
    {
        out.push(WaitReason::Budget {
            budget: t.spec.budget.unwrap_or(Usd::ZERO),
        });
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
            out.push(WaitReason::Concern {
                mine: clash.mine.clone(),
                theirs: clash.theirs.clone(),
                holder: clash.holder,
            });
        }
    }
    let agents = store.agents(&AgentFilter::default())?;
    let capable: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Removed)
        .filter(|a| matcher::is_capable(a, &t.spec.capabilities, t.spec.tier))
        .collect();
    let working: Vec<&Agent> = capable
        .iter()
        .copied()
        .filter(|a| a.accepts_work())
        .collect();
    let names = |agents: &[&Agent]| agents.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    if working.is_empty() {
        let draining: Vec<&Agent> = capable
            .iter()
            .copied()
            .filter(|a| a.status == AgentStatus::Draining)
            .collect();
        out.push(WaitReason::NoCapableAgent {
            capabilities: t.spec.capabilities.clone(),
            tier: t.spec.tier,
            draining: names(&draining),
        });
    } else if working.iter().all(|a| a.free_slots() == 0) {
        out.push(WaitReason::AgentsBusy {
            agents: names(&working),
        });
    } else if out.len() == before {
        // A capable agent has a free slot and nothing above holds the task back: say who it
        // waits for anyway, so that a ready task that does not run is never left unexplained.
        let (run, external): (Vec<&Agent>, Vec<&Agent>) = working
            .iter()
            .copied()
            .partition(|a| a.adapter.is_run_by_daemon());
        let free_run: Vec<&Agent> = run.iter().copied().filter(|a| a.free_slots() > 0).collect();
        out.push(if !free_run.is_empty() {
            WaitReason::AssignsSoon {
                agents: names(&free_run),
            }
        } else if external.is_empty() {
            WaitReason::NextPass
        } else if run.is_empty() {
            WaitReason::ExternalOnly {
                agents: names(&external),
            }
        } else {
            WaitReason::BusyOrExternal {
                busy: names(&run),
                external: names(&external),
            }
        });
    }
    Ok(())
}
