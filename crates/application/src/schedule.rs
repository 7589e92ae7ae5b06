//! Push scheduling inside the write transaction: when a use case makes a task ready or frees an
//! agent's slot, the same transaction assigns what can be assigned (the domain's balancer picks
//! the agent, the ready queue's order picks the task), so an attempt is committed, with its
//! lease and fencing token, before anything runs it. The launches go to the agent runtime
//! after the commit.

use maos_domain::policy::balancer;
use maos_domain::policy::matcher::Needs;
use maos_domain::{
    Agent, AgentName, AttemptStart, CapabilitySet, DomainEvent, DurationMs, TaskId, TaskState,
    Timestamp, Usd,
};

use crate::api::Assignment;
use crate::error::{Refusal, TaskError};
use crate::locks::{HOLDING, Held};
use crate::ports::{Launch, StoreError, Transaction};

/// What a use case changed that the scheduler must look at, and what must happen after commit.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Tasks that became ready.
    pub(crate) readied: Vec<TaskId>,
    /// Agents whose slot was released.
    pub(crate) freed: Vec<AgentName>,
    /// Attempts assigned by the use case itself (a manual assignment) that the runtime must run.
    pub(crate) launches: Vec<Launch>,
    /// Attempts the runtime must stop: (task, attempt, why).
    pub(crate) stops: Vec<(TaskId, u32, String)>,
    /// A task let go of its concerns: tasks they held back may start now, on any agent.
    pub(crate) unlocked: bool,
    /// Tasks that became blocked: their planned orchestration's planner may revise the plan.
    pub(crate) blocked: Vec<TaskId>,
}

impl Changes {
    /// Notes that `task` left a state that holds concerns, if it had any.
    pub(crate) fn release_concerns(&mut self, task: &maos_domain::Task) {
        if !task.spec.concerns.is_empty() && !HOLDING.contains(&task.state) {
            self.unlocked = true;
        }
    }
}

/// How many of the ready tasks an agent can do one fill looks at, at most, when the first few
/// were passed over (held back by concerns, or out of budget).
const SCAN: usize = 512;

/// The in-transaction scheduler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheduler {
    pub(crate) lease: DurationMs,
    pub(crate) candidates: usize,
    /// The most tokens a briefing may take (0: no limit).
    pub(crate) briefing_tokens: u32,
}

impl Scheduler {
    /// Fills the freed agents' slots, then places the readied tasks that are still waiting.
    /// Returns every attempt to launch (the use case's own first).
    pub(crate) fn fill_slots(
        self,
        tx: &mut dyn Transaction,
        changes: &mut Changes,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut freed = std::mem::take(&mut changes.freed);
        freed.sort();
        freed.dedup();
        let mut held = None;
        for name in &freed {
            self.fill(tx, name, at, &mut held, &mut changes.launches)?;
        }
        let readied = std::mem::take(&mut changes.readied);
        // Nothing to place them on when no agent the daemon runs has a free slot (a batch of
        // creates while every agent is busy, or none runs here): not a task is loaded. Needs
        // every agent meets, and a limit of one: a single row read says whether there is one.
        let none = CapabilitySet::empty();
        let any = Needs {
            capabilities: &none,
            tier: None,
            agent: None,
        };
        if !readied.is_empty() && !tx.candidate_agents(any, 1, true)?.is_empty() {
            for id in readied {
                self.place(tx, id, at, &mut held, &mut changes.launches)?;
            }
        }
        if std::mem::take(&mut changes.unlocked) {
            for agent in tx.agents_with_free_slots()? {
                self.fill(tx, &agent.name, at, &mut held, &mut changes.launches)?;
            }
        }
        Ok(())
    }

    /// Every agent the daemon runs gets work for its free slots (at daemon start).
    pub(crate) fn fill_all(
        self,
        tx: &mut dyn Transaction,
        at: Timestamp,
        out: &mut Vec<Launch>,
    ) -> Result<(), StoreError> {
        let mut held = None;
        for agent in tx.agents_with_free_slots()? {
            self.fill(tx, &agent.name, at, &mut held, out)?;
        }
        Ok(())
    }

    /// Gives `name`'s free slots the most urgent ready tasks it can do.
    fn fill(
        self,
        tx: &mut dyn Transaction,
        name: &AgentName,
        at: Timestamp,
        held: &mut Option<Held>,
        out: &mut Vec<Launch>,
    ) -> Result<(), StoreError> {
        let Some(mut agent) = tx.agent(name)? else {
            return Ok(());
        };
        if !agent.adapter.is_run_by_daemon() || !agent.accepts_work() || agent.free_slots() == 0 {
            return Ok(());
        }
        // A few more than the free slots first; when tasks were passed over (held back by
        // concerns, or out of budget) and slots are still free, look again at all of what one
        // scan covers.
        let free = usize::try_from(agent.free_slots()).unwrap_or(usize::MAX);
        let mut want = free.saturating_add(16);
        loop {
            let offered = tx.ready_tasks_for(&agent, want)?;
            let whole = offered.len() < want;
            let mut passed_over = false;
            for id in offered {
                if agent.free_slots() == 0 {
                    return Ok(());
                }
                // Loaded only when its turn comes: most fills take the first one.
                let Some(mut task) = tx.task(id)? else {
                    continue;
                };
                if !fundable(&task) || !free_of_clashes(tx, held, &task)? {
                    passed_over = true;
                    continue;
                }
                if !self.assign(tx, &mut task, &mut agent, at, held, out)? {
                    passed_over = true;
                }
            }
            if !passed_over || whole || want >= SCAN || agent.free_slots() == 0 {
                return Ok(());
            }
            want = SCAN;
        }
    }

    /// Assigns a ready task to the least loaded capable agent the daemon runs, if one is free.
    fn place(
        self,
        tx: &mut dyn Transaction,
        id: TaskId,
        at: Timestamp,
        held: &mut Option<Held>,
        out: &mut Vec<Launch>,
    ) -> Result<(), StoreError> {
        let Some(mut task) = tx.task(id)? else {
            return Ok(());
        };
        if task.state != TaskState::Ready
            || !fundable(&task)
            || !runs_now(tx, &task)?
            || !free_of_clashes(tx, held, &task)?
        {
            return Ok(());
        }
        let candidates = tx.candidate_agents(task.spec.needs(), self.candidates, true)?;
        let Some(mut agent) = balancer::choose(&candidates, task.spec.needs()).cloned() else {
            return Ok(());
        };
        self.assign(tx, &mut task, &mut agent, at, held, out)?;
        Ok(())
    }

    /// Assigns `task` to `agent` and queues its launch; false when the domain refused (the
    /// store offered a task that cannot go to this agent after all: left for another pass).
    fn assign(
        self,
        tx: &mut dyn Transaction,
        task: &mut maos_domain::Task,
        agent: &mut Agent,
        at: Timestamp,
        held: &mut Option<Held>,
        out: &mut Vec<Launch>,
    ) -> Result<bool, StoreError> {
        match assign_in_tx(tx, task, agent, self.lease, self.briefing_tokens, at, true) {
            Ok(a) => {
                if let Some(h) = held.as_mut() {
                    h.take(&a.task);
                }
                out.push(launch_of(&a, agent));
                Ok(true)
            }
            Err(TaskError::Store(e)) => Err(e),
            Err(_) => Ok(false),
        }
    }
}

/// True when the task's orchestration (if any) is running: a draft, paused or finished
/// orchestration's tasks get no agent.
fn runs_now(tx: &mut dyn Transaction, task: &maos_domain::Task) -> Result<bool, StoreError> {
    match task.spec.orchestration {
        None => Ok(true),
        Some(o) => Ok(tx
            .orchestration(o)?
            .is_some_and(|o| o.status == maos_domain::OrchestrationStatus::Running)),
    }
}

/// True when no task that holds concerns clashes with `task`'s (loading what is held on first
/// need: most tasks name no concerns).
fn free_of_clashes(
    tx: &mut dyn Transaction,
    held: &mut Option<Held>,
    task: &maos_domain::Task,
) -> Result<bool, StoreError> {
    if task.spec.concerns.is_empty() {
        return Ok(true);
    }
    let h = match held {
        Some(h) => h,
        None => held.insert(Held::of(&tx.tasks_in_states(&HOLDING)?)),
    };
    Ok(h.allows(task))
}

/// Why `task` (ready) may not start now, whoever assigns it (the scheduler skips it; a manual
/// assignment is refused with this): its orchestration does not run, its budget is spent, or a
/// task in flight holds a concern it shares. `(why, what to do)`.
pub(crate) fn may_not_start(
    tx: &mut dyn Transaction,
    task: &maos_domain::Task,
) -> Result<Option<Refusal>, StoreError> {
    if let Some(o) = task.spec.orchestration
        && let Some(o) = tx.orchestration(o)?
        && o.status != maos_domain::OrchestrationStatus::Running
    {
        return Ok(Some(Refusal::OrchestrationNotRunning {
            task: task.id,
            orchestration: o.id,
            status: o.status,
        }));
    }
    if !fundable(task) {
        return Ok(Some(Refusal::BudgetSpent { task: task.id }));
    }
    let mut held = None;
    if !free_of_clashes(tx, &mut held, task)?
        && let Some(clash) = held
            .as_ref()
            .and_then(|h| h.clashes(task).into_iter().next())
    {
        return Ok(Some(Refusal::ConcernHeld {
            task: task.id,
            mine: clash.mine.clone(),
            theirs: clash.theirs.clone(),
            holder: clash.holder,
        }));
    }
    Ok(None)
}

/// A task with a budget left (or none at all).
fn fundable(task: &maos_domain::Task) -> bool {
    task.budget_left().is_none_or(|left| left > Usd::ZERO)
}

/// Assigns `task` to `agent`: a new attempt with the next fencing token, a lease and its
/// briefing, the agent's slot claimed, both saved with their events. With a runtime to run
/// it, an agent that has nothing to start (`sim`) has its attempt started in the same
/// transaction (ADR 0024).
pub(crate) fn assign_in_tx(
    tx: &mut dyn Transaction,
    task: &mut maos_domain::Task,
    agent: &mut Agent,
    lease: DurationMs,
    briefing_tokens: u32,
    at: Timestamp,
    runs: bool,
) -> Result<Assignment, TaskError> {
    let mut events = task.assign(agent, lease, at)?;
    let briefing = crate::brief::assemble(tx, task, briefing_tokens, at)?;
    events.extend(task.brief(briefing, at)?);
    if runs && agent.adapter.starts_when_assigned() {
        events.extend(task.start_attempt(task.fencing, AttemptStart::default(), at)?);
    }
    let attempt = task.attempts_used();
    let agent_events = agent.claim_slot(task.id, attempt, at)?;
    tx.save_agent(agent)?;
    tx.save_task(task)?;
    let mut all: Vec<DomainEvent> = DomainEvent::tasks(task.id, events).collect();
    all.extend(DomainEvent::agents(agent.id, agent_events));
    tx.append(at, &all)?;
    Ok(Assignment {
        agent: agent.name.clone(),
        attempt,
        fencing: task.fencing,
        task: task.clone(),
    })
}

/// What the runtime needs to run an assignment: a retry on the same agent resumes the agent's
/// session of the previous attempt.
pub(crate) fn launch_of(a: &Assignment, agent: &Agent) -> Launch {
    let previous = a
        .task
        .attempts
        .len()
        .checked_sub(2)
        .and_then(|i| a.task.attempts.get(i));
    let resume = previous
        .filter(|p| p.agent == agent.name)
        .and_then(|p| p.session.clone());
    // A dependent task of an orchestration builds on what its dependencies did: they are
    // merged into the integration branch before it becomes ready.
    let start_from = match a.task.spec.orchestration {
        Some(o) if !a.task.spec.depends_on.is_empty() => {
            Some(maos_domain::orchestration::integration_branch_of(o))
        }
        _ => None,
    };
    Launch {
        task: a.task.clone(),
        agent: agent.clone(),
        attempt: a.attempt,
        fencing: a.fencing,
        resume,
        start_from,
    }
}

#[cfg(test)]
mod tests {
    use maos_domain::agent::AgentSpec;
    use maos_domain::{
        AdapterKind, AgentId, AgentSettings, CapabilitySet, FencingToken, MaxAttempts, Priority,
        Risk, RunReport, Slots, Task, TaskSpec, Tier, Title,
    };

    use super::*;

    fn agent(name: &str, id: u128) -> Agent {
        let spec = AgentSpec {
            name: AgentName::parse(name).unwrap(),
            adapter: AdapterKind::ClaudeCode,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::new(2).unwrap(),
            command: None,
            settings: AgentSettings::default(),
        };
        Agent::register(AgentId::from_bits(id), spec, Timestamp::from_millis(0)).0
    }

    /// A task whose first attempt, on `first`, recorded session "s-1" and failed; now ready.
    fn retried_task(first: &Agent) -> Task {
        let at = Timestamp::from_millis(1);
        let lease = DurationMs::from_millis(10_000).unwrap();
        let spec = TaskSpec {
            title: Title::parse("t").unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::Normal,
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
        let (mut t, _) = Task::create(TaskId::from_bits(9), spec, at);
        t.make_ready(at).unwrap();
        t.assign(first, lease, at).unwrap();
        let f = FencingToken::new(1);
        t.start_attempt(f, maos_domain::AttemptStart::default(), at)
            .unwrap();
        t.record_session(f, "s-1".into(), at).unwrap();
        t.fail_attempt(f, "boom".into(), RunReport::default(), at)
            .unwrap();
        t.schedule_retry(None, at).unwrap();
        t.make_ready(at).unwrap();
        t
    }

    fn assigned(mut t: Task, to: &Agent) -> Assignment {
        let lease = DurationMs::from_millis(10_000).unwrap();
        t.assign(to, lease, Timestamp::from_millis(2)).unwrap();
        Assignment {
            agent: to.name.clone(),
            attempt: t.attempts_used(),
            fencing: t.fencing,
            task: t,
        }
    }

    #[test]
    fn a_retry_on_the_same_agent_resumes_its_session_and_another_agent_starts_afresh() {
        let claude = agent("claude-1", 1);
        let other = agent("claude-2", 2);
        let same = launch_of(&assigned(retried_task(&claude), &claude), &claude);
        assert_eq!(same.attempt, 2);
        assert_eq!(same.fencing, FencingToken::new(2));
        assert_eq!(same.resume.as_deref(), Some("s-1"));
        let elsewhere = launch_of(&assigned(retried_task(&claude), &other), &other);
        assert_eq!(elsewhere.resume, None);
    }
}
