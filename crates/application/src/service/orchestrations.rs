//! Orchestrations: creating them (alone or from a plan), starting, pausing, resuming, cancelling
//! and merging their work.

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn create_orchestration(
        &self,
        cmd: CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError> {
        let workspace = self.with_base(cmd.workspace)?;
        let at = self.clock.now();
        let id = OrchestrationId::from_bits(self.ids.next_bits());
        let spec = OrchestrationSpec {
            name: cmd.name,
            goal: cmd.goal,
            workspace,
            verify: cmd.verify,
            notes: cmd.notes,
            planned: false,
        };
        self.store.write(move |tx| {
            let (o, events) = Orchestration::create(id, spec.clone(), at);
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(id, events).collect::<Vec<_>>(),
            )?;
            Ok(o)
        })
    }

    /// An orchestration's repository, checked, with the branch its work starts from and merges
    /// back into: the one named, else the branch checked out now (recorded, so that a later
    /// checkout elsewhere changes neither; none when HEAD is detached and none was named).
    pub(super) fn with_base(
        &self,
        workspace: Option<maos_domain::WorkspaceSpec>,
    ) -> Result<Option<maos_domain::WorkspaceSpec>, OrchestrationError> {
        let (Some(mut ws), Some(git)) = (workspace.clone(), &self.workspaces) else {
            return Ok(workspace);
        };
        git.check(Path::new(&ws.repo), ws.base.as_deref())?;
        if ws.base.is_none() {
            ws.base = git.current_branch(Path::new(&ws.repo))?;
        }
        Ok(Some(ws))
    }

    pub(super) fn create_plan(&self, plan: CreatePlan) -> Result<PlanCreated, OrchestrationError> {
        let CreatePlan {
            orchestration,
            tasks,
            start,
        } = plan;
        let dep_indexes = crate::plan::check(&tasks)?;
        let ids: Vec<TaskId> = tasks
            .iter()
            .map(|_| TaskId::from_bits(self.ids.next_bits()))
            .collect();
        let workspace = self.with_base(orchestration.workspace)?;
        let at = self.clock.now();
        let oid = OrchestrationId::from_bits(self.ids.next_bits());
        let spec = OrchestrationSpec {
            name: orchestration.name,
            goal: orchestration.goal,
            workspace,
            verify: orchestration.verify,
            notes: orchestration.notes,
            planned: true,
        };
        let routes = Arc::clone(&self.routes);
        self.write_scheduled(at, move |tx, changes| {
            let (mut o, mut o_events) = Orchestration::create(oid, spec.clone(), at);
            if start {
                o_events.extend(o.start(at)?);
            }
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, o_events).collect::<Vec<_>>(),
            )?;
            let made = create_plan_tasks(
                tx,
                &o,
                tasks.clone(),
                &dep_indexes,
                &ids,
                &routes,
                at,
                changes,
            )?;
            Ok::<_, OrchestrationError>(PlanCreated {
                orchestration: o,
                tasks: made,
            })
        })
    }

    pub(super) fn start_orchestration(
        &self,
        id: &IdRef,
    ) -> Result<Orchestration, OrchestrationError> {
        self.orchestration_command(id, |tx, o, at, changes| {
            let events = o.start(at)?;
            now_running(tx, o, events, at, changes)
        })
    }

    pub(super) fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError> {
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            let events = o.pause(at)?;
            if now {
                for mut t in tx.tasks_of(o.id)? {
                    if !matches!(t.state, TaskState::Assigned | TaskState::Running) {
                        continue;
                    }
                    let attempt = t.attempts_used();
                    let reason = "its orchestration was paused".to_owned();
                    // A person stopped it: the attempt does not count against the task.
                    interrupt(tx, &mut t, reason.clone(), true, policy, at, changes)?;
                    changes.stops.push((t.id, attempt, reason));
                }
            }
            Ok(events)
        })
    }

    pub(super) fn resume_orchestration(
        &self,
        id: &IdRef,
    ) -> Result<Orchestration, OrchestrationError> {
        self.orchestration_command(id, |tx, o, at, changes| {
            let events = o.resume(at)?;
            now_running(tx, o, events, at, changes)
        })
    }

    pub(super) fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError> {
        let reason = reason.unwrap_or_else(|| "cancelled by a person".into());
        let policy = self.config.failure;
        self.orchestration_command(id, move |tx, o, at, changes| {
            // The planner first: its end is recorded on the orchestration, read again after.
            if let Some(p) = o.planning {
                super::planning::cancel_planner(
                    tx,
                    p.task,
                    "its orchestration was cancelled",
                    policy,
                    at,
                    changes,
                )?;
                *o = tx.orchestration(o.id)?.unwrap_or_else(|| o.clone());
            }
            let events = o.cancel(reason.clone(), at)?;
            for mut t in tx.tasks_of(o.id)? {
                if t.state.is_terminal() {
                    continue;
                }
                let held = t.state.holds_slot();
                let task_events =
                    t.cancel(format!("its orchestration was cancelled: {reason}"), at)?;
                save_task_events(tx, &t, task_events, at)?;
                changes.release_concerns(&t);
                if held {
                    release_slot(tx, &t, policy, at, changes)?;
                    changes
                        .stops
                        .push((t.id, t.attempts_used(), reason.clone()));
                }
            }
            Ok(events)
        })
    }

    pub(super) fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<MergeReport, OrchestrationError> {
        let o = self.get_orchestration(id)?;
        let ws = o
            .workspace
            .clone()
            .ok_or_else(|| OrchestrationError::NoRepository {
                orchestration: o.id.short(),
            })?;
        let into =
            into.or_else(|| ws.base.clone())
                .ok_or_else(|| OrchestrationError::NoMergeTarget {
                    orchestration: o.id.short(),
                })?;
        let branch = o.integration_branch();
        let git = self.git()?;
        let outcome = match git.merge_into_user_branch(Path::new(&ws.repo), &branch, &into) {
            // Its branch is made when the first task's work is accepted: nothing to merge yet.
            Err(crate::workspace::WorkspaceError::UnknownBase { base, .. }) if base == branch => {
                return Err(OrchestrationError::NothingToMerge {
                    orchestration: o.id.short(),
                    branch,
                });
            }
            other => other?,
        };
        let (commit, merged) = match outcome {
            MergeOutcome::Merged { commit } => (commit, true),
            MergeOutcome::UpToDate { commit } => (commit, false),
            MergeOutcome::Conflict { paths } => {
                return Err(OrchestrationError::MergeConflict {
                    branch,
                    into,
                    paths,
                });
            }
        };
        let at = self.clock.now();
        let oid = o.id;
        let (into_c, commit_c) = (into.clone(), commit.clone());
        let o = self.store.write(move |tx| {
            let mut o = tx.orchestration(oid)?.ok_or_else(|| {
                OrchestrationError::Query(QueryError::NotFound {
                    what: Entity::Orchestration,
                    reference: oid.to_string(),
                })
            })?;
            let events = o.record_merge(into_c.clone(), commit_c.clone(), at);
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
            )?;
            Ok::<_, OrchestrationError>(o)
        })?;
        Ok(MergeReport {
            orchestration: o,
            branch,
            into,
            commit,
            merged,
        })
    }

    /// Runs an orchestration command (`op`) in a scheduled transaction and saves the
    /// orchestration with its events.
    pub(super) fn orchestration_command<F>(
        &self,
        id: &IdRef,
        op: F,
    ) -> Result<Orchestration, OrchestrationError>
    where
        F: Fn(
                &mut dyn Transaction,
                &mut Orchestration,
                Timestamp,
                &mut Changes,
            ) -> Result<Vec<maos_domain::OrchestrationEvent>, OrchestrationError>
            + Send
            + 'static,
    {
        let oid = self.resolve_orchestration(id)?;
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut o = tx.orchestration(oid)?.ok_or_else(|| {
                OrchestrationError::Query(QueryError::NotFound {
                    what: Entity::Orchestration,
                    reference: oid.to_string(),
                })
            })?;
            let events = op(tx, &mut o, at, changes)?;
            tx.save_orchestration(&o)?;
            tx.append(
                at,
                &DomainEvent::orchestrations(oid, events).collect::<Vec<_>>(),
            )?;
            Ok(o)
        })
    }
}

/// Creates the tasks of a checked plan in orchestration `o` (`deps`: each task's dependencies as
/// indexes into `tasks`; `ids`: one new id per task, in order); those without dependencies
/// become ready.
#[allow(clippy::too_many_arguments)]
pub(super) fn create_plan_tasks(
    tx: &mut dyn Transaction,
    o: &Orchestration,
    tasks: Vec<PlanTask>,
    deps: &[Vec<usize>],
    ids: &[TaskId],
    routes: &[RouteRule],
    at: Timestamp,
    changes: &mut Changes,
) -> Result<Vec<(String, Task)>, OrchestrationError> {
    let mut made = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.into_iter().enumerate() {
        let c = t.task;
        let c = CreateTask {
            workspace: c.workspace.or_else(|| o.workspace.clone()),
            verify: c.verify.or_else(|| o.verify.clone()),
            ..c
        };
        let depends_on = deps[i].iter().map(|&j| ids[j]).collect();
        let spec = task_spec(c, depends_on, Some(o.id), routes);
        let (mut task, mut events) = Task::create(ids[i], spec, at);
        if task.spec.depends_on.is_empty() {
            events.extend(task.make_ready(at)?);
            if task.state == TaskState::Ready {
                changes.readied.push(task.id);
            }
        }
        save_task_events(tx, &task, events, at)?;
        made.push((t.key, task));
    }
    Ok(made)
}
