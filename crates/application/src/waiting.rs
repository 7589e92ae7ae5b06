//! What a task that does not run waits for, as data: a dependency, a concern another task holds,
//! an agent, a budget, a person, the end of a backoff, its orchestration.

use std::collections::HashMap;

use maos_domain::policy::matcher;
use maos_domain::{
    Agent, AgentStatus, Gate, Orchestration, OrchestrationId, OrchestrationStatus, Task, TaskId,
    TaskState, Timestamp, Usd, WaitReason,
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
    Facts::new(store, &[]).explain(t, now)
}

/// What the explanations of several tasks share, read from the store at most once each: the
/// agents, the tasks that hold concerns, orchestrations, and the tasks already at hand (a
/// dependency among them is not read again). Explaining many tasks with one `Facts` costs a
/// few store reads in all, not a few per task; what remains per task is the work in memory
/// (matching its capabilities against each agent, its concerns against the held ones) and a
/// read for each dependency that is not at hand.
pub(crate) struct Facts<'a, S: ?Sized> {
    store: &'a S,
    known: HashMap<TaskId, &'a Task>,
    agents: Option<Vec<Agent>>,
    held: Option<Held>,
    orchestrations: HashMap<OrchestrationId, Option<Orchestration>>,
}

impl<'a, S: Store + ?Sized> Facts<'a, S> {
    /// Facts read from `store`, with `known` tasks at hand (read together, just before).
    pub(crate) fn new(store: &'a S, known: &'a [Task]) -> Self {
        Facts {
            store,
            known: known.iter().map(|t| (t.id, t)).collect(),
            agents: None,
            held: None,
            orchestrations: HashMap::new(),
        }
    }

    /// The same facts with orchestration `o` at hand (read together with the known tasks).
    pub(crate) fn with_orchestration(mut self, o: &Orchestration) -> Self {
        self.orchestrations.insert(o.id, Some(o.clone()));
        self
    }

    /// Everything `t` waits for now: see [`explain`].
    pub(crate) fn explain(
        &mut self,
        t: &Task,
        now: Timestamp,
    ) -> Result<Vec<WaitReason>, QueryError> {
        let mut out = Vec::new();
        match t.state {
            TaskState::Pending => {
                for dep in &t.spec.depends_on {
                    match self.task(*dep)? {
                        Some((_, TaskState::Completed)) => {}
                        Some((title, state)) => out.push(WaitReason::Dependency {
                            task: *dep,
                            title,
                            state,
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
                    if self
                        .task(*dep)?
                        .is_some_and(|(_, state)| state == TaskState::Cancelled)
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
            TaskState::Ready => self.ready_but_waiting(t, &mut out)?,
            _ => {}
        }
        Ok(out)
    }

    /// The title and state of task `id`: at hand, else read.
    fn task(&self, id: TaskId) -> Result<Option<(maos_domain::Title, TaskState)>, QueryError> {
        if let Some(t) = self.known.get(&id) {
            return Ok(Some((t.spec.title.clone(), t.state)));
        }
        Ok(self
            .store
            .task(id)?
            .map(|t| (t.spec.title.clone(), t.state)))
    }

    fn orchestration(&mut self, id: OrchestrationId) -> Result<Option<&Orchestration>, QueryError> {
        if !self.orchestrations.contains_key(&id) {
            let o = self.store.orchestration(id)?;
            self.orchestrations.insert(id, o);
        }
        Ok(self.orchestrations.get(&id).and_then(Option::as_ref))
    }

    fn agents(&mut self) -> Result<&[Agent], QueryError> {
        if self.agents.is_none() {
            self.agents = Some(self.store.agents(&AgentFilter::default())?);
        }
        Ok(self.agents.as_deref().unwrap_or_default())
    }

    /// The concerns held now, by the tasks that hold them.
    fn held(&mut self) -> Result<&Held, QueryError> {
        if self.held.is_none() {
            let filter = TaskFilter {
                statuses: HOLDING.to_vec(),
                ..TaskFilter::default()
            };
            let page = Page {
                limit: Page::MAX_LIMIT,
                cursor: None,
            };
            let holders = self.store.tasks(&filter, &page)?.tasks;
            self.held = Some(Held::of(&holders));
        }
        Ok(self.held.get_or_insert_default())
    }

    /// Why a ready task has no agent yet.
    fn ready_but_waiting(&mut self, t: &Task, out: &mut Vec<WaitReason>) -> Result<(), QueryError> {
        let before = out.len();
        if let Some(oid) = t.spec.orchestration
            && let Some(o) = self.orchestration(oid)?
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
            for clash in self.held()?.clashes(t) {
                out.push(WaitReason::Concern {
                    mine: clash.mine.clone(),
                    theirs: clash.theirs.clone(),
                    holder: clash.holder,
                });
            }
        }
        let agents = self.agents()?;
        let capable: Vec<&Agent> = agents
            .iter()
            .filter(|a| a.status != AgentStatus::Removed)
            .filter(|a| matcher::is_capable(a, t.spec.needs()))
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
            let free_run: Vec<&Agent> =
                run.iter().copied().filter(|a| a.free_slots() > 0).collect();
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
}
