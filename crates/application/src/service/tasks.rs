//! Tasks and their attempts: creating, depending, assigning, starting, heartbeats, results,
//! cancelling and retrying.

use std::collections::HashMap;

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError> {
        let prepared = self.prepare_create(cmd)?;
        let at = self.clock.now();
        self.write_scheduled_then(
            at,
            move |tx, changes| create_in_tx(tx, prepared.clone(), at, changes),
            |created, launches| refresh(std::slice::from_mut(created), launches),
        )
    }

    pub(super) fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError> {
        let prepared = cmds
            .into_iter()
            .map(|c| self.prepare_create(c))
            .collect::<Result<Vec<_>, _>>()?;
        let at = self.clock.now();
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                prepared
                    .iter()
                    .cloned()
                    .map(|p| create_in_tx(tx, p, at, changes))
                    .collect::<Result<Vec<_>, _>>()
            },
            |created, launches| refresh(created, launches),
        )
    }

    pub(super) fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let on = match self.resolve_task(on) {
            Ok(on) => on,
            Err(QueryError::NotFound { reference, .. }) => {
                return Err(TaskError::DependencyNotFound { reference });
            }
            Err(e) => return Err(e.into()),
        };
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, id)?;
            let dep = load_task(tx, on)?;
            // `id` depends on `on`: a cycle exactly when `on` already reaches `id`.
            let path = find_path(on, id, |n| -> Result<Vec<TaskId>, StoreError> {
                Ok(tx
                    .task(n)?
                    .map(|t| t.spec.depends_on.iter().copied().collect())
                    .unwrap_or_default())
            })?;
            if let Some(path) = path {
                let mut cycle: Vec<String> = vec![id.short()];
                cycle.extend(path.iter().map(|t| t.short()));
                return Err(TaskError::DependencyCycle { cycle });
            }
            let events = t.add_dependency(on, dep.state == TaskState::Completed, at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    pub(super) fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError> {
        let id = self.resolve_task(&cmd.task)?;
        let at = self.clock.now();
        let briefing_tokens = self.config.briefing_tokens;
        let lease = self.config.lease;
        let limit = self.config.balancer_candidates;
        let runs = self.runtime.is_some();
        self.write_scheduled(at, move |tx, changes| {
            let mut task = load_task(tx, id)?;
            if task.state != TaskState::Ready {
                return Err(maos_domain::TransitionError::Task {
                    task: task.id,
                    from: task.state,
                    action: "assigned",
                }
                .into());
            }
            // What holds the scheduler back holds a person (or an external worker) back too.
            if let Some(refusal) = crate::schedule::may_not_start(tx, &task)? {
                return Err(TaskError::Refused(Box::new(refusal)));
            }
            let mut agent = match &cmd.agent {
                Some(name) => tx
                    .agent(name)?
                    .filter(|a| a.status != AgentStatus::Removed)
                    .ok_or_else(|| TaskError::AgentNotFound {
                        name: name.to_string(),
                    })?,
                None => {
                    let candidates = tx.candidate_agents(task.spec.needs(), limit, false)?;
                    balancer::choose(&candidates, task.spec.needs())
                        .cloned()
                        .ok_or_else(|| TaskError::NoCapableAgent {
                            task: task.id.short(),
                            needs: task.spec.capabilities.to_string(),
                            tier: task
                                .spec
                                .tier
                                .map(|t| format!(", tier {t}"))
                                .unwrap_or_default(),
                        })?
                }
            };
            let assignment =
                assign_in_tx(tx, &mut task, &mut agent, lease, briefing_tokens, at, runs)?;
            if runs && agent.adapter.is_run_by_daemon() {
                changes.launches.push(launch_of(&assignment, &agent));
            }
            Ok(assignment)
        })
        .inspect(|assignment| {
            // An attempt the runtime does not run (an external worker's) is not among the
            // launches: its lease enters the book here.
            if let Some(attempt) = assignment.task.current_attempt() {
                self.lease_book().extend(
                    (assignment.task.id, assignment.fencing),
                    attempt.lease_expires_at,
                );
            }
        })
    }

    pub(super) fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: AttemptStart,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.start_attempt(fencing, start.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    pub(super) fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.record_session(fencing, session.clone(), at)?;
            if !events.is_empty() {
                save_task_events(tx, &t, events, at)?;
            }
            Ok(t)
        })
    }

    /// Checks each beat against the store (one read, no write) and pushes the lease of each
    /// current, live attempt on in the lease book (ADR 0023). Returns the beats refused.
    pub(super) fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError> {
        let until = self.clock.now().plus(self.config.lease);
        let ids: Vec<TaskId> = beats.iter().map(|b| b.task).collect();
        let current: HashMap<TaskId, (TaskState, FencingToken)> = self
            .store
            .task_fencing(&ids)?
            .into_iter()
            .map(|(id, state, fencing)| (id, (state, fencing)))
            .collect();
        let mut refused = Vec::new();
        let mut book = self.lease_book();
        for beat in beats {
            match current.get(&beat.task) {
                Some((state, fencing)) if state.holds_lease() && *fencing == beat.fencing => {
                    book.extend((beat.task, beat.fencing), until);
                }
                _ => refused.push(*beat),
            }
        }
        Ok(refused)
    }

    pub(super) fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        let stored = self.store.task(task)?.filter(|t| t.fencing == fencing);
        // A planning task's answer is refereed (the plan checks are its verification): its
        // problems fail the attempt as a verification does, and go back to the planner.
        let refereed = match &stored {
            Some(t) => self.referee(t, summary.as_deref())?,
            None => None,
        };
        // A task that waits for its subtasks may not complete before them: finishing early
        // fails like a verification, and the next attempt is told which ones are left.
        let unfinished = match &stored {
            Some(t) => self.unfinished_subtasks(t)?,
            None => Vec::new(),
        };
        let failed_verification = report
            .verification
            .as_ref()
            .filter(|v| !v.passed)
            .map(|v| v.output.clone())
            .or_else(|| match refereed.as_ref().map(|r| &r.verdict) {
                Some(crate::planning::Verdict::Problems { problems, .. }) => {
                    Some(crate::planning::for_next_round(problems))
                }
                _ => None,
            })
            .or_else(|| (!unfinished.is_empty()).then(|| subtasks_left(&unfinished)));
        // Work that the policy accepts without a person is integrated first (git, outside the
        // transaction); the transaction then completes the task, or blocks it on a conflict.
        let integration = match &stored {
            Some(t) if failed_verification.is_none() && t.completes_on_verification() => {
                // The branch has the attempt's checkpoint by now: the runtime made it first.
                self.integrate(t)?
            }
            _ => Integration::None,
        };
        // Ids for the tasks of a plan approved as soon as it is proposed.
        let plan_ids: Vec<TaskId> = match refereed.as_ref().map(|r| &r.verdict) {
            Some(crate::planning::Verdict::Plan { plan, .. }) if self.config.approve_plans => plan
                .tasks
                .iter()
                .map(|_| TaskId::from_bits(self.ids.next_bits()))
                .collect(),
            _ => Vec::new(),
        };
        let auto_approve = self.config.approve_plans;
        let routes = Arc::clone(&self.routes);
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, task)?;
            let mut events = t.succeed_attempt(fencing, summary.clone(), report.clone(), at)?;
            match failed_verification.clone() {
                Some(output) => {
                    events.extend(t.fail_verification(output, at)?);
                    events.extend(after_failure(tx, &mut t, policy, at, changes)?);
                }
                // Verification passed (or there is none): the approval policy decides between
                // accepting it and waiting for a person.
                None => events.extend(t.pass_verification(integration.clone(), at)?),
            }
            if let Some(r) = refereed.clone() {
                super::planning::settle_planner(
                    tx,
                    &t,
                    r,
                    auto_approve,
                    &plan_ids,
                    &routes,
                    policy,
                    at,
                    changes,
                )
                .map_err(planning_error)?;
            }
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, policy, at, changes)?;
            if t.state == TaskState::Completed {
                promote_dependents(tx, t.id, at, changes)?;
                finish_orchestration_if_done(tx, &t, policy, at, changes)?;
            }
            Ok(t)
        })
    }

    pub(super) fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, task)?;
            let mut events = t.fail_attempt(fencing, error.clone(), report.clone(), at)?;
            events.extend(after_failure(tx, &mut t, policy, at, changes)?);
            save_task_events(tx, &t, events, at)?;
            release_slot(tx, &t, policy, at, changes)?;
            Ok(t)
        })
    }

    pub(super) fn cancel_task(
        &self,
        task: &IdRef,
        reason: Option<String>,
    ) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let held_slot = t.state.holds_slot();
            let reason = reason
                .clone()
                .unwrap_or_else(|| "cancelled by a person".into());
            let events = t.cancel(reason.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            if held_slot {
                release_slot(tx, &t, policy, at, changes)?;
                changes.stops.push((t.id, t.attempts_used(), reason));
            }
            block_dependents(tx, id, at)?;
            finish_orchestration_if_done(tx, &t, policy, at, changes)?;
            Ok(t)
        })
    }

    pub(super) fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            // The task's own state first (a pending or running task is refused as such)...
            let events = t.retry_by_person(attempts, at)?;
            // ...then its dependencies: it must not run without their work. (Nothing is saved
            // when this refuses.)
            let deps: Vec<TaskId> = t.spec.depends_on.iter().copied().collect();
            if let Some((dep, state)) = tx
                .task_states(&deps)?
                .into_iter()
                .find(|(_, s)| *s != TaskState::Completed)
            {
                return Err(TaskError::Refused(Box::new(
                    Refusal::DependencyNotCompleted {
                        task: t.id,
                        dependency: dep,
                        state,
                    },
                )));
            }
            save_task_events(tx, &t, events, at)?;
            if t.state == TaskState::Ready {
                changes.readied.push(t.id);
            }
            Ok(t)
        })
    }

    /// Resolves the references of a create before the write (ids are immutable, so a prefix
    /// resolved now names the same task inside the transaction).
    pub(super) fn prepare_create(&self, cmd: CreateTask) -> Result<PreparedCreate, TaskError> {
        let mut depends_on = Vec::with_capacity(cmd.depends_on.len());
        for r in &cmd.depends_on {
            match self.resolve_task(r) {
                Ok(id) => depends_on.push(id),
                Err(QueryError::NotFound { .. }) => {
                    return Err(TaskError::DependencyNotFound {
                        reference: r.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let orchestration = match &cmd.orchestration {
            None => None,
            Some(r) => match self.resolve_orchestration(r) {
                Ok(id) => Some(id),
                Err(QueryError::NotFound { .. }) => {
                    return Err(TaskError::OrchestrationNotFound {
                        reference: r.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            },
        };
        // A task of an orchestration inherits its repository and verification command.
        let (mut workspace, mut verify) = (cmd.workspace, cmd.verify);
        if let Some(o) = orchestration
            && let Some(o) = self.store.orchestration(o)?
        {
            if workspace.is_none() {
                workspace.clone_from(&o.workspace);
            }
            if verify.is_none() {
                verify.clone_from(&o.verify);
            }
        }
        // Refuse a repository MAOS must not work from before anything is created.
        if let (Some(ws), Some(git)) = (&workspace, &self.workspaces) {
            git.check(Path::new(&ws.repo), ws.base.as_deref())?;
        }
        let spec = task_spec(
            CreateTask {
                workspace,
                verify,
                ..cmd
            },
            depends_on.into_iter().collect(),
            orchestration,
            &self.routes,
        );
        Ok(PreparedCreate {
            id: TaskId::from_bits(self.ids.next_bits()),
            spec,
        })
    }
}

/// A planning step that failed inside a task's transaction, as the task error it becomes.
fn planning_error(e: OrchestrationError) -> TaskError {
    match e {
        OrchestrationError::Task(e) => e,
        OrchestrationError::Transition(e) => TaskError::Transition(e),
        OrchestrationError::Store(e) => TaskError::Store(e),
        OrchestrationError::Invalid(e) => TaskError::Invalid(e),
        OrchestrationError::Workspace(e) => TaskError::Workspace(e),
        // A plan the referee passed that cannot be applied, or an orchestration gone from the
        // same transaction: the store's state disagrees with itself.
        other => TaskError::Store(StoreError::Backend(other.to_string())),
    }
}

/// What the next attempt of a task that finished before its subtasks is told.
fn subtasks_left(unfinished: &[(TaskId, TaskState)]) -> String {
    let list: Vec<String> = unfinished
        .iter()
        .map(|(id, state)| format!("{id} ({state})"))
        .collect();
    format!(
        "This task waits for its subtasks before it completes, and these had not completed when \
         the attempt finished: {}. Wait until they have completed, then finish.",
        list.join(", ")
    )
}
