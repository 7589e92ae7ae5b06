//! Planning: a goal becomes a draft orchestration and a planning task whose answer, checked by
//! the referee (the plan file checker, then the plan rules), becomes a version of the plan; the
//! person approves (its tasks are created and it starts), rejects, edits or asks for another.

use maos_domain::orchestration::{PlanApprover, Planning};
use maos_domain::{
    AtWork, Capability, CapabilitySet, MaxAttempts, OrchestrationEvent, Plan, PlanKey, PlanOrigin,
    PlanVersion, Priority, Risk, Tier, Title,
};

use super::orchestrations::create_plan_tasks;
use super::*;
use crate::planning::{self, BriefInput, Verdict};
use crate::ports::PlanReader;
use crate::workspace::SummaryLimits;

/// What a planning task's answer came to, worked out before the transaction that records it.
#[derive(Clone)]
pub(super) struct Refereed {
    pub(super) orchestration: OrchestrationId,
    pub(super) verdict: Verdict,
    /// For a revision of a plan at work: that plan and its tasks by key.
    pub(super) base: Option<Base>,
}

/// The plan at work that a revision changes: its approved version's plan and tasks by key.
#[derive(Debug, Clone)]
pub(super) struct Base {
    pub(super) plan: Plan,
    pub(super) tasks: std::collections::BTreeMap<PlanKey, TaskId>,
}

impl Base {
    /// The plan at work of `h`, when a version of it was approved (none before, or when the
    /// version was approved by a MAOS that kept no task keys).
    pub(super) fn of(h: &PlanHistory) -> Option<Base> {
        let n = h.orchestration.approved_version;
        let tasks = h.record.iter().rev().find_map(|r| match r {
            PlanRecord::Approved { version, tasks, .. } if *version == n => Some(tasks.clone()),
            _ => None,
        })?;
        let plan = h.version(Some(n))?.plan.clone();
        (!tasks.is_empty()).then_some(Base { plan, tasks })
    }
}

impl<S: Store> Service<S> {
    fn reader(&self) -> Result<Arc<dyn PlanReader>, OrchestrationError> {
        self.plans.clone().ok_or(OrchestrationError::NoPlanReader)
    }

    /// The capabilities the registered agents offer.
    fn offered(&self) -> Result<CapabilitySet, StoreError> {
        Ok(self
            .store
            .agents(&AgentFilter::default())?
            .iter()
            .fold(CapabilitySet::empty(), |all, a| all.union(&a.capabilities)))
    }

    pub(super) fn plan_goal(&self, g: PlanGoal) -> Result<PlanningStarted, OrchestrationError> {
        let reader = self.reader()?;
        let goal = g.goal.trim().to_owned();
        if goal.is_empty() {
            return Err(OrchestrationError::Refused(
                "the goal is empty: say what the plan should achieve".into(),
            ));
        }
        check_max_tasks(g.max_tasks)?;
        let agents = self.store.agents(&AgentFilter::default())?;
        check_planner(&agents, g.planner.as_ref())?;
        let workspace = self.with_base(g.workspace)?;
        let summary = self.summary_of(workspace.as_ref())?;
        let prompt = planning::brief(&BriefInput {
            goal: &goal,
            notes: &g.notes,
            repo: summary.as_ref(),
            agents: &agents,
            max_tasks: g.max_tasks,
            schema: &reader.schema(),
            example: &reader.example(),
            current: None,
            feedback: None,
            revision: None,
        });
        let name = match g.name {
            Some(n) => n,
            None => name_of(&goal)?,
        };
        let at = self.clock.now();
        let oid = OrchestrationId::from_bits(self.ids.next_bits());
        let tid = TaskId::from_bits(self.ids.next_bits());
        let spec = OrchestrationSpec {
            name,
            goal: Some(goal.clone()),
            workspace: workspace.clone(),
            verify: None,
            notes: g.notes,
            planned: true,
        };
        let task = PlannerTask {
            oid,
            tid,
            goal,
            prompt,
            planner: g.planner,
            rounds: g.rounds,
            budget: g.budget,
            timeout: g.timeout,
            workspace,
        };
        let max_tasks = g.max_tasks;
        let discussion = g.discussion;
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                let (mut o, mut events) = Orchestration::create(oid, spec.clone(), at);
                events.extend(o.start_planning(
                    Planning {
                        task: tid,
                        max_tasks,
                        discussion,
                    },
                    at,
                )?);
                tx.save_orchestration(&o)?;
                tx.append(
                    at,
                    &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
                )?;
                let task = create_planner(tx, task.clone(), at, changes)?;
                Ok::<_, OrchestrationError>(PlanningStarted {
                    orchestration: o,
                    task,
                })
            },
            refresh_planner,
        )
    }

    pub(super) fn discuss_goal(&self, g: PlanGoal) -> Result<Task, OrchestrationError> {
        let goal = g.goal.trim().to_owned();
        if goal.is_empty() {
            return Err(OrchestrationError::Refused(
                "the goal is empty: say what the plan should achieve".into(),
            ));
        }
        let agents = self.store.agents(&AgentFilter::default())?;
        check_planner(&agents, g.planner.as_ref())?;
        let workspace = self.with_base(g.workspace)?;
        let summary = self.summary_of(workspace.as_ref())?;
        let prompt = planning::discussion_brief(&goal, &g.notes, summary.as_ref());
        let (capabilities, tier) = match &g.planner {
            Some(_) => (CapabilitySet::empty(), None),
            None => (plan_capability()?, Some(Tier::Strategic)),
        };
        let spec = TaskSpec {
            title: name_of(&format!("Discuss: {goal}"))?,
            prompt,
            capabilities,
            priority: Priority::default(),
            // Every answer waits for the person: a reply sends it back, approval ends it.
            risk: Risk::Medium,
            tier,
            depends_on: Default::default(),
            orchestration: None,
            max_attempts: g.rounds,
            timeout: g.timeout,
            idempotency_key: None,
            budget: g.budget,
            workspace,
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: g.planner,
            parent: None,
            lessons: false,
        };
        let at = self.clock.now();
        let id = TaskId::from_bits(self.ids.next_bits());
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                let (mut task, mut events) = Task::create(id, spec.clone(), at);
                events.extend(task.make_ready(at)?);
                if task.state == TaskState::Ready {
                    changes.readied.push(task.id);
                }
                save_task_events(tx, &task, events, at)?;
                Ok::<_, OrchestrationError>(task)
            },
            |task: &mut Task, launches: &[Launch]| {
                if let Some(l) = launches.iter().find(|l| l.task.id == task.id) {
                    *task = l.task.clone();
                }
            },
        )
    }

    /// What the planner is told about the repository it plans for.
    fn summary_of(
        &self,
        workspace: Option<&maos_domain::WorkspaceSpec>,
    ) -> Result<Option<crate::workspace::RepoSummary>, OrchestrationError> {
        match (workspace, &self.workspaces) {
            (Some(ws), Some(git)) => Ok(Some(
                git.summarise(Path::new(&ws.repo), SummaryLimits::default())?,
            )),
            _ => Ok(None),
        }
    }

    pub(super) fn plan_history(&self, id: &IdRef) -> Result<PlanHistory, QueryError> {
        let o = self.get_orchestration(id)?;
        let events = self.store.events_of(&o.id.to_string())?;
        let orchestration_events: Vec<(&OrchestrationEvent, Timestamp)> = events
            .iter()
            .filter_map(|e| match &e.event {
                DomainEvent::Orchestration { event, .. } => Some((event, e.at)),
                _ => None,
            })
            .collect();
        Ok(PlanHistory::from_events(o, orchestration_events))
    }

    pub(super) fn propose_plan(
        &self,
        id: &IdRef,
        text: String,
    ) -> Result<Orchestration, OrchestrationError> {
        let reader = self.reader()?;
        let plan = reader
            .read(&text, &self.offered()?)
            .map_err(|problems| OrchestrationError::PlanProblems { problems })?;
        let broken = plan.broken_rules(PlanGoal::MAX_TASKS as usize);
        if !broken.is_empty() {
            return Err(OrchestrationError::Refused(
                broken
                    .iter()
                    .map(planning::rule_text)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            // A person's version replaces a planner's work in progress: stop it.
            if let Some(p) = o.planning {
                let why = "a person wrote a version of the plan";
                cancel_planner(tx, p.task, why, policy, at, changes)?;
                *o = load_orchestration(tx, o.id)?;
            }
            let version = PlanVersion {
                number: o.plan_version + 1,
                plan: plan.clone(),
                origin: PlanOrigin::Person,
                rationale: None,
                proposed_at: at,
            };
            Ok(o.propose_plan(version, at)?)
        })
    }

    pub(super) fn regenerate_plan(
        &self,
        id: &IdRef,
        feedback: String,
    ) -> Result<PlanningStarted, OrchestrationError> {
        let reader = self.reader()?;
        let history = self.plan_history(id)?;
        let o = &history.orchestration;
        // Once a version runs, another version is a revision of the plan at work.
        if o.approved_version > 0 {
            return self.revise_plan(id, Some(feedback), None);
        }
        let current = history.version(None);
        // The planner of the newest version, if a planner made it; else any planner.
        let last = history
            .planners()
            .last()
            .and_then(|t| self.store.task(*t).ok().flatten());
        // The planner of the newest version; else the one the last planning task was pinned to;
        // else any planner.
        let planner = match current.map(|v| &v.origin) {
            Some(PlanOrigin::Planner { agent, .. }) => Some(agent.clone()),
            _ => last.as_ref().and_then(|t| t.spec.agent.clone()),
        };
        let agents = self.store.agents(&AgentFilter::default())?;
        // The agent that planned may be gone: then any planner will do.
        let planner = planner.filter(|p| agents.iter().any(|a| &a.name == p));
        check_planner(&agents, planner.as_ref())?;
        let max_tasks = max_tasks_of(&history);
        let summary = self.summary_of(o.workspace.as_ref())?;
        let text = current.map(|v| (v.number, reader.write(&v.plan)));
        let goal = o.goal.clone().unwrap_or_else(|| o.name.to_string());
        let prompt = planning::brief(&BriefInput {
            goal: &goal,
            notes: &o.notes,
            repo: summary.as_ref(),
            agents: &agents,
            max_tasks,
            schema: &reader.schema(),
            example: &reader.example(),
            current: text.as_ref().map(|(n, t)| (*n, t.as_str())),
            feedback: Some(&feedback),
            revision: None,
        });
        let task = PlannerTask::after(
            o,
            TaskId::from_bits(self.ids.next_bits()),
            goal,
            prompt,
            planner,
            last.as_ref(),
        );
        self.start_planner(task, max_tasks, self.clock.now())
    }

    pub(super) fn approve_plan(
        &self,
        id: &IdRef,
        version: Option<u32>,
    ) -> Result<PlanCreated, OrchestrationError> {
        let history = self.plan_history(id)?;
        let o = &history.orchestration;
        let chosen =
            history
                .version(version)
                .cloned()
                .ok_or_else(|| OrchestrationError::NoPlan {
                    orchestration: o.id.short(),
                    version,
                })?;
        if chosen.number != o.plan_version && !o.status.is_terminal() {
            return Err(OrchestrationError::NotNewest {
                orchestration: o.id.short(),
                version: chosen.number,
                newest: o.plan_version,
            });
        }
        let base = if o.approved_version > 0 {
            Some(Base::of(&history).ok_or_else(|| {
                OrchestrationError::Refused(format!(
                    "orchestration {}'s tasks were made before plans kept their keys: a revision \
                     cannot be applied to them",
                    o.id.short()
                ))
            })?)
        } else {
            None
        };
        let oid = o.id;
        let routes = Arc::clone(&self.routes);
        let ids: Vec<TaskId> = chosen
            .plan
            .tasks
            .iter()
            .map(|_| TaskId::from_bits(self.ids.next_bits()))
            .collect();
        let policy = self.config.failure;
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut o = load_orchestration(tx, oid)?;
            let tasks = approve_in_tx(
                tx,
                &mut o,
                &chosen,
                PlanApprover::Person,
                base.as_ref(),
                &ids,
                &routes,
                policy,
                at,
                changes,
            )?;
            Ok(PlanCreated {
                orchestration: o,
                tasks,
            })
        })
    }

    /// Asks the planner for a revision of the plan at work (a person's request, or a task that
    /// became blocked): what remains, given what completed and why the blocked task failed.
    pub(super) fn revise_plan(
        &self,
        id: &IdRef,
        feedback: Option<String>,
        blocked: Option<TaskId>,
    ) -> Result<PlanningStarted, OrchestrationError> {
        let reader = self.reader()?;
        let history = self.plan_history(id)?;
        let o = &history.orchestration;
        let base = Base::of(&history).ok_or_else(|| {
            OrchestrationError::Refused(format!(
                "orchestration {} has no approved plan version to revise: only a plan made of \
                 versions (planned from a goal) can be revised, once it runs",
                o.id.short()
            ))
        })?;
        let current = history.version(Some(o.approved_version)).ok_or_else(|| {
            OrchestrationError::NoPlan {
                orchestration: o.id.short(),
                version: Some(o.approved_version),
            }
        })?;
        let planner = match &current.origin {
            PlanOrigin::Planner { agent, .. } => Some(agent.clone()),
            PlanOrigin::Person => None,
        };
        let agents = self.store.agents(&AgentFilter::default())?;
        let planner = planner.filter(|p| agents.iter().any(|a| &a.name == p));
        check_planner(&agents, planner.as_ref())?;
        // The last planner's limits hold for its revisions too.
        let last = history
            .planners()
            .last()
            .and_then(|t| self.store.task(*t).ok().flatten());
        let mut progress = String::new();
        for (key, task) in &base.tasks {
            let Some(t) = self.store.task(*task)? else {
                continue;
            };
            progress.push_str(&planning::task_progress(key, &t, blocked == Some(t.id)));
        }
        let text = reader.write(&base.plan);
        let goal = o.goal.clone().unwrap_or_else(|| o.name.to_string());
        let summary = self.summary_of(o.workspace.as_ref())?;
        let prompt = planning::brief(&BriefInput {
            goal: &goal,
            notes: &o.notes,
            repo: summary.as_ref(),
            agents: &agents,
            max_tasks: max_tasks_of(&history),
            schema: &reader.schema(),
            example: &reader.example(),
            current: None,
            feedback: feedback.as_deref(),
            revision: Some((o.approved_version, &text, &progress)),
        });
        let max_tasks = max_tasks_of(&history);
        let task = PlannerTask::after(
            o,
            TaskId::from_bits(self.ids.next_bits()),
            goal,
            prompt,
            planner,
            last.as_ref(),
        );
        self.start_planner(task, max_tasks, self.clock.now())
    }

    /// A planner on an orchestration that exists (another version, a revision): the planning
    /// task and the orchestration's `planning_started`, in one transaction.
    fn start_planner(
        &self,
        task: PlannerTask,
        max_tasks: u32,
        at: Timestamp,
    ) -> Result<PlanningStarted, OrchestrationError> {
        let (oid, tid) = (task.oid, task.tid);
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                let mut o = load_orchestration(tx, oid)?;
                let planning = Planning {
                    task: tid,
                    max_tasks,
                    discussion: None,
                };
                let events = o.start_planning(planning, at)?;
                save_orchestration_events(tx, &o, events, at)?;
                let task = create_planner(tx, task.clone(), at, changes)?;
                Ok::<_, OrchestrationError>(PlanningStarted {
                    orchestration: o,
                    task,
                })
            },
            refresh_planner,
        )
    }

    /// After `task` became blocked: when its orchestration runs a plan made of versions, no
    /// planner is at work and fewer than [`AUTO_REVISIONS`] revisions were asked for already, the
    /// planner revises the rest of the plan. Nothing happens otherwise, or when it cannot (no
    /// planner: the blocked task waits for a person as any does).
    pub(super) fn revise_after_block(&self, task: TaskId) {
        let Ok(Some(t)) = self.store.task(task) else {
            return;
        };
        let Some(oid) = t.spec.orchestration else {
            return;
        };
        let Ok(Some(o)) = self.store.orchestration(oid) else {
            return;
        };
        if o.approved_version == 0 || o.planning.is_some() || o.status.is_terminal() {
            return;
        }
        let id = IdRef::from(oid);
        let Ok(history) = self.plan_history(&id) else {
            return;
        };
        let approved_first = history
            .record
            .iter()
            .position(|r| matches!(r, PlanRecord::Approved { .. }));
        let revisions = approved_first.map_or(0, |i| {
            history.record[i..]
                .iter()
                .filter(|r| matches!(r, PlanRecord::Planning { .. }))
                .count()
        });
        if revisions >= AUTO_REVISIONS {
            return;
        }
        let _ = self.revise_plan(&id, None, Some(task));
    }
    pub(super) fn reject_plan(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            // The planner first: its end is recorded on the orchestration, read again after.
            if let Some(p) = o.planning {
                cancel_planner(tx, p.task, "its plan was rejected", policy, at, changes)?;
                *o = load_orchestration(tx, o.id)?;
            }
            Ok(o.reject_plan(reason.clone(), at)?)
        })
    }

    /// The referee's verdict on the answer of planning task `t` (none when `t` plans nothing):
    /// the plan checks, and for a revision of a plan at work, that it leaves what completed as
    /// it is.
    pub(super) fn referee(
        &self,
        t: &Task,
        answer: Option<&str>,
    ) -> Result<Option<Refereed>, StoreError> {
        let Some(oid) = t.spec.plans else {
            return Ok(None);
        };
        let Some(reader) = self.plans.clone() else {
            return Ok(None);
        };
        let Some(o) = self.store.orchestration(oid)? else {
            return Ok(None);
        };
        let max_tasks = o
            .planning
            .map_or(PlanGoal::DEFAULT_MAX_TASKS, |p| p.max_tasks);
        let base = if o.approved_version > 0 {
            match self.plan_history(&IdRef::from(oid)) {
                Ok(h) => Base::of(&h),
                Err(QueryError::Store(e)) => return Err(e),
                Err(_) => None,
            }
        } else {
            None
        };
        let offered = self.offered()?;
        let mut verdict = planning::referee(&*reader, answer.unwrap_or(""), &offered, max_tasks);
        if let (Verdict::Plan { plan, .. }, Some(b)) = (&verdict, &base) {
            let at_work = self.at_work(&b.tasks)?;
            if let Err(problems) = maos_domain::plan::revise(&b.plan, &at_work, plan) {
                verdict = Verdict::Problems {
                    text: Some(reader.write(plan)),
                    problems: problems
                        .iter()
                        .map(planning::revision_problem_text)
                        .collect(),
                };
            }
        }
        Ok(Some(Refereed {
            orchestration: oid,
            verdict,
            base,
        }))
    }

    /// The tasks of a plan at work as a revision sees them, read now.
    fn at_work(
        &self,
        tasks: &std::collections::BTreeMap<PlanKey, TaskId>,
    ) -> Result<std::collections::BTreeMap<PlanKey, AtWork>, StoreError> {
        let mut out = std::collections::BTreeMap::new();
        for (key, id) in tasks {
            if let Some(t) = self.store.task(*id)? {
                out.insert(key.clone(), at_work_of(&t));
            }
        }
        Ok(out)
    }
}

/// How many revisions a plan gets without a person asking, after its tasks block.
pub(super) const AUTO_REVISIONS: usize = 3;

fn at_work_of(t: &Task) -> AtWork {
    AtWork {
        task: t.id,
        completed: t.state == TaskState::Completed,
        ended: t.state.is_terminal(),
        blocked: t.state == TaskState::Blocked,
    }
}

/// Approves `chosen` inside the transaction: the first version creates its tasks (`ids`, one
/// per task) and starts the orchestration; a revision of the plan at work (`base`) cancels the
/// tasks it replaces or drops and creates the new ones, read against the tasks' states now.
#[allow(clippy::too_many_arguments)]
pub(super) fn approve_in_tx(
    tx: &mut dyn Transaction,
    o: &mut Orchestration,
    chosen: &PlanVersion,
    by: PlanApprover,
    base: Option<&Base>,
    ids: &[TaskId],
    routes: &[RouteRule],
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Vec<(String, Task)>, OrchestrationError> {
    let plan = &chosen.plan;
    let key_ids: std::collections::BTreeMap<PlanKey, TaskId> = plan
        .tasks
        .iter()
        .zip(ids)
        .map(|(t, id)| (t.key.clone(), *id))
        .collect();
    let Some(base) = base else {
        let events = o.approve_plan(chosen.number, by, key_ids, Vec::new(), at)?;
        save_orchestration_events(tx, o, events, at)?;
        return create_planned_tasks(tx, o, plan, ids, routes, at, changes);
    };
    let mut at_work = std::collections::BTreeMap::new();
    for (key, id) in &base.tasks {
        if let Some(t) = tx.task(*id)? {
            at_work.insert(key.clone(), at_work_of(&t));
        }
    }
    let revision = maos_domain::plan::revise(&base.plan, &at_work, plan).map_err(|problems| {
        OrchestrationError::Refused(format!(
            "version {} cannot be applied any more: {}; ask for another revision",
            chosen.number,
            problems
                .iter()
                .map(planning::revision_problem_text)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let mut mapping = revision.keep.clone();
    for key in &revision.create {
        if let Some(id) = key_ids.get(key) {
            mapping.insert(key.clone(), *id);
        }
    }
    let events = o.approve_plan(
        chosen.number,
        by,
        mapping.clone(),
        revision.superseded.clone(),
        at,
    )?;
    save_orchestration_events(tx, o, events, at)?;
    let why = format!("replaced by version {} of its plan", chosen.number);
    for id in &revision.superseded {
        let mut t = load_task(tx, *id)?;
        let held = t.state.holds_slot();
        let events = t.cancel(why.clone(), at)?;
        save_task_events(tx, &t, events, at)?;
        changes.release_concerns(&t);
        if held {
            release_slot(tx, &t, policy, at, changes)?;
            changes.stops.push((t.id, t.attempts_used(), why.clone()));
        }
    }
    let specs: std::collections::HashMap<String, PlanTask> = PlanTask::from_plan(plan)
        .into_iter()
        .map(|t| (t.key.clone(), t))
        .collect();
    let mut made = Vec::with_capacity(revision.create.len());
    for key in &revision.create {
        let (Some(p), Some(id)) = (specs.get(key.as_str()), mapping.get(key)) else {
            continue;
        };
        let depends_on: std::collections::BTreeSet<TaskId> = p
            .depends_on
            .iter()
            .filter_map(|d| {
                PlanKey::parse(d)
                    .ok()
                    .and_then(|k| mapping.get(&k).copied())
            })
            .collect();
        let c = p.task.clone();
        let c = CreateTask {
            workspace: c.workspace.or_else(|| o.workspace.clone()),
            verify: c.verify.or_else(|| o.verify.clone()),
            ..c
        };
        let spec = task_spec(c, depends_on.clone(), Some(o.id), routes);
        let (mut task, mut events) = Task::create(*id, spec, at);
        let deps: Vec<TaskId> = depends_on.into_iter().collect();
        let ready = deps.is_empty()
            || tx
                .task_states(&deps)?
                .iter()
                .all(|(_, s)| *s == TaskState::Completed);
        if ready {
            events.extend(task.make_ready(at)?);
            if task.state == TaskState::Ready {
                changes.readied.push(task.id);
            }
        }
        save_task_events(tx, &task, events, at)?;
        made.push((key.to_string(), task));
    }
    // A revision that only dropped work may leave nothing to do: the orchestration ends.
    let one = made
        .first()
        .map(|(_, t)| t.id)
        .or(revision.superseded.first().copied());
    if let Some(id) = one {
        let t = load_task(tx, id)?;
        finish_orchestration_if_done(tx, &t, policy, at, changes)?;
        *o = load_orchestration(tx, o.id)?;
    }
    Ok(made)
}

fn save_orchestration_events(
    tx: &mut dyn Transaction,
    o: &Orchestration,
    events: Vec<OrchestrationEvent>,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.save_orchestration(o)?;
    tx.append(
        at,
        &DomainEvent::orchestrations(o.id, events).collect::<Vec<_>>(),
    )
}

/// After a planning task's attempt was recorded (in the same transaction): a plan that passed
/// the referee becomes the next version (approved at once when the configuration says so); a
/// planner that has no round left ends the planning with its last plan's text and problems.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle_planner(
    tx: &mut dyn Transaction,
    t: &Task,
    refereed: Refereed,
    auto_approve: bool,
    ids: &[TaskId],
    routes: &[RouteRule],
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), OrchestrationError> {
    let Some(mut o) = tx.orchestration(refereed.orchestration)? else {
        return Ok(());
    };
    // Only the planner at work speaks for the plan (not one a person replaced or stopped).
    if o.planning.map(|p| p.task) != Some(t.id) {
        return Ok(());
    }
    let mut events = Vec::new();
    match refereed.verdict {
        Verdict::Plan { plan, rationale } if t.state == TaskState::Completed => {
            let Some(attempt) = t.current_attempt() else {
                return Ok(());
            };
            let version = PlanVersion {
                number: o.plan_version + 1,
                plan: *plan,
                origin: PlanOrigin::Planner {
                    task: t.id,
                    attempt: attempt.number,
                    agent: attempt.agent.clone(),
                },
                rationale,
                proposed_at: at,
            };
            let chosen = version.clone();
            events.extend(o.propose_plan(version, at)?);
            // Once a version runs, the configuration approves only a revision it can apply
            // whose every changed task is low risk.
            let may_auto = auto_approve
                && match &refereed.base {
                    None => o.approved_version == 0,
                    Some(b) => revision_is_low_risk(tx, b, &chosen.plan)?,
                };
            if may_auto {
                save_orchestration_events(tx, &o, std::mem::take(&mut events), at)?;
                approve_in_tx(
                    tx,
                    &mut o,
                    &chosen,
                    PlanApprover::Config,
                    refereed.base.as_ref(),
                    ids,
                    routes,
                    policy,
                    at,
                    changes,
                )?;
                return Ok(());
            }
        }
        // No round left: blocked (a person may give it more), or over.
        Verdict::Problems { text, problems }
            if t.state == TaskState::Blocked || t.state.is_terminal() =>
        {
            events.extend(o.fail_planning(t.id, text, problems, at)?);
        }
        _ => return Ok(()),
    }
    tx.save_orchestration(&o)?;
    tx.append(
        at,
        &DomainEvent::orchestrations(o.id, events).collect::<Vec<_>>(),
    )?;
    Ok(())
}

/// True when every task a revision creates, and every live task it cancels, is low risk (the
/// configuration may then approve it without a person).
fn revision_is_low_risk(
    tx: &mut dyn Transaction,
    base: &Base,
    plan: &Plan,
) -> Result<bool, OrchestrationError> {
    let mut at_work = std::collections::BTreeMap::new();
    for (key, id) in &base.tasks {
        if let Some(t) = tx.task(*id)? {
            at_work.insert(key.clone(), at_work_of(&t));
        }
    }
    let Ok(r) = maos_domain::plan::revise(&base.plan, &at_work, plan) else {
        return Ok(false);
    };
    let created_low = plan
        .tasks
        .iter()
        .filter(|t| r.create.contains(&t.key))
        .all(|t| t.risk == Risk::Low);
    let mut cancelled_low = true;
    for id in &r.superseded {
        if let Some(t) = tx.task(*id)? {
            cancelled_low &= t.spec.risk == Risk::Low;
        }
    }
    Ok(created_low && cancelled_low)
}

/// When a planning task ends another way (its attempts failed, a person cancelled it): the
/// planning ends, with no plan text (the task says why). Called wherever a task is saved.
pub(super) fn planner_ended(
    tx: &mut dyn Transaction,
    t: &Task,
    at: Timestamp,
) -> Result<(), StoreError> {
    let Some(oid) = t.spec.plans else {
        return Ok(());
    };
    if !matches!(t.state, TaskState::Blocked | TaskState::Cancelled) {
        return Ok(());
    }
    let Some(mut o) = tx.orchestration(oid)? else {
        return Ok(());
    };
    if o.planning.map(|p| p.task) != Some(t.id) {
        return Ok(());
    }
    let Ok(events) = o.fail_planning(t.id, None, Vec::new(), at) else {
        return Ok(());
    };
    tx.save_orchestration(&o)?;
    tx.append(
        at,
        &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
    )
}

/// The planning task of an orchestration, to create.
#[derive(Clone)]
struct PlannerTask {
    oid: OrchestrationId,
    tid: TaskId,
    goal: String,
    prompt: String,
    planner: Option<AgentName>,
    rounds: MaxAttempts,
    budget: Option<maos_domain::Usd>,
    timeout: Option<DurationMs>,
    workspace: Option<maos_domain::WorkspaceSpec>,
}

impl PlannerTask {
    /// Another planner on orchestration `o` (another version, a revision), with the limits of
    /// the `last` planning task (rounds, budget, timeout).
    fn after(
        o: &Orchestration,
        tid: TaskId,
        goal: String,
        prompt: String,
        planner: Option<AgentName>,
        last: Option<&Task>,
    ) -> PlannerTask {
        PlannerTask {
            oid: o.id,
            tid,
            goal,
            prompt,
            planner,
            rounds: last.map_or_else(default_rounds, |t| t.spec.max_attempts),
            budget: last.and_then(|t| t.spec.budget),
            timeout: last.and_then(|t| t.spec.timeout),
            workspace: o.workspace.clone(),
        }
    }
}

fn create_planner(
    tx: &mut dyn Transaction,
    p: PlannerTask,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Task, OrchestrationError> {
    // A named planner takes it whatever its tier; else the least loaded strategic agent that
    // offers `plan` (the scheduler's balancer decides).
    let (capabilities, tier) = match &p.planner {
        Some(_) => (CapabilitySet::empty(), None),
        None => (plan_capability()?, Some(Tier::Strategic)),
    };
    let spec = TaskSpec {
        title: name_of(&format!("Plan: {}", p.goal))?,
        prompt: p.prompt,
        capabilities,
        priority: Priority::default(),
        risk: Risk::Low,
        tier,
        depends_on: Default::default(),
        orchestration: None,
        max_attempts: p.rounds,
        timeout: p.timeout,
        idempotency_key: None,
        budget: p.budget,
        workspace: p.workspace,
        verify: None,
        wants_port: false,
        concerns: Vec::new(),
        plans: Some(p.oid),
        // A named planner takes every round (its session resumes); none: any that fits.
        agent: p.planner,
        parent: None,
        lessons: false,
    };
    let (mut task, mut events) = Task::create(p.tid, spec, at);
    events.extend(task.make_ready(at)?);
    if task.state == TaskState::Ready {
        changes.readied.push(task.id);
    }
    save_task_events(tx, &task, events, at)?;
    Ok(task)
}

fn refresh_planner(started: &mut PlanningStarted, launches: &[Launch]) {
    if let Some(l) = launches.iter().find(|l| l.task.id == started.task.id) {
        started.task = l.task.clone();
    }
}

/// Cancels planning task `id`, when it has not ended, for `why`.
pub(super) fn cancel_planner(
    tx: &mut dyn Transaction,
    id: TaskId,
    why: &str,
    policy: FailurePolicy,
    at: Timestamp,
    changes: &mut Changes,
) -> Result<(), TaskError> {
    let mut t = load_task(tx, id)?;
    if t.state.is_terminal() {
        return Ok(());
    }
    let held = t.state.holds_slot();
    let events = t.cancel(why.to_owned(), at)?;
    save_task_events(tx, &t, events, at)?;
    if held {
        release_slot(tx, &t, policy, at, changes)?;
        changes
            .stops
            .push((t.id, t.attempts_used(), why.to_owned()));
    }
    Ok(())
}

/// Creates the tasks of an approved plan in orchestration `o` (`ids`: one per task, in order).
#[allow(clippy::too_many_arguments)]
pub(super) fn create_planned_tasks(
    tx: &mut dyn Transaction,
    o: &Orchestration,
    plan: &Plan,
    ids: &[TaskId],
    routes: &[RouteRule],
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Vec<(String, Task)>, OrchestrationError> {
    let tasks = PlanTask::from_plan(plan);
    let deps = crate::plan::check(&tasks)?;
    create_plan_tasks(tx, o, tasks, &deps, ids, routes, at, changes)
}

fn load_orchestration(
    tx: &mut dyn Transaction,
    id: OrchestrationId,
) -> Result<Orchestration, OrchestrationError> {
    tx.orchestration(id)?.ok_or_else(|| {
        OrchestrationError::Query(QueryError::NotFound {
            what: Entity::Orchestration,
            reference: id.to_string(),
        })
    })
}

fn check_max_tasks(max: u32) -> Result<(), OrchestrationError> {
    if max == 0 || max > PlanGoal::MAX_TASKS {
        return Err(OrchestrationError::Refused(format!(
            "a plan may have 1 to {} tasks, not {max}",
            PlanGoal::MAX_TASKS
        )));
    }
    Ok(())
}

/// Refuses when no agent can plan: the one named does not exist, or none is named and no
/// strategic agent offers `plan`.
fn check_planner(agents: &[Agent], planner: Option<&AgentName>) -> Result<(), OrchestrationError> {
    let found = match planner {
        Some(name) => agents.iter().any(|a| &a.name == name),
        None => {
            let plan = plan_capability()?;
            agents
                .iter()
                .any(|a| a.tier == Tier::Strategic && a.capabilities.covers(&plan))
        }
    };
    if found {
        Ok(())
    } else {
        Err(OrchestrationError::NoPlanner {
            planner: planner.map(ToString::to_string),
        })
    }
}

fn plan_capability() -> Result<CapabilitySet, OrchestrationError> {
    Ok(CapabilitySet::parse([Capability::parse("plan")?.as_str()])?)
}

fn default_rounds() -> MaxAttempts {
    MaxAttempts::new(PlanGoal::DEFAULT_ROUNDS).unwrap_or_default()
}

/// The limit on tasks the newest planner had (the default when none started).
fn max_tasks_of(h: &PlanHistory) -> u32 {
    h.record
        .iter()
        .rev()
        .find_map(|r| match r {
            PlanRecord::Planning { max_tasks, .. } => Some(*max_tasks),
            _ => None,
        })
        .unwrap_or(PlanGoal::DEFAULT_MAX_TASKS)
}

/// A title from free text: its first line, cut to 60 characters.
fn name_of(text: &str) -> Result<Title, OrchestrationError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("plan");
    let cut: String = line.chars().take(60).collect();
    Ok(Title::parse(&cut)?)
}
