//! Approvals and workspaces: what waits for a person, decisions, diffs, rollbacks and the
//! removal of old worktrees.

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: TaskWorkspace,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            if t.fencing != fencing {
                return Err(maos_domain::TransitionError::StaleAttempt {
                    task: t.id,
                    presented: fencing.get(),
                    current: t.fencing.get(),
                }
                .into());
            }
            let events = t.record_workspace(workspace.clone(), at)?;
            if !events.is_empty() {
                save_task_events(tx, &t, events, at)?;
            }
            Ok(t)
        })
    }

    pub(super) fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.request_tool_approval(fencing, tool.clone(), subject.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    pub(super) fn approve(&self, task: &IdRef) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let current = self.store.task(id)?.ok_or_else(|| TaskError::NotFound {
            reference: task.to_string(),
        })?;
        // Accepting a result integrates it first (outside the transaction: git).
        let accepts = current.waiting_gate() == Some(Gate::Result)
            || (current.state == TaskState::AwaitingApproval && current.pending.is_none());
        let integration = if accepts {
            self.integrate(&current)?
        } else {
            Integration::None
        };
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let events = t.approve(integration.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            match t.state {
                TaskState::Completed => {
                    promote_dependents(tx, t.id, at, changes)?;
                    finish_orchestration_if_done(tx, &t, policy, at, changes)?;
                }
                TaskState::Ready => changes.readied.push(t.id),
                _ => {}
            }
            Ok(t)
        })
    }

    pub(super) fn reject(
        &self,
        task: &IdRef,
        reason: String,
        cancel: bool,
    ) -> Result<Task, TaskError> {
        let id = self.resolve_task(task)?;
        let at = self.clock.now();
        let policy = self.config.failure;
        self.write_scheduled(at, move |tx, changes| {
            let mut t = load_task(tx, id)?;
            let gate = t.waiting_gate().unwrap_or(Gate::Result);
            let mut events = t.reject(reason.clone(), at)?;
            match (gate, cancel) {
                (Gate::Tool, _) => {}
                (_, true) => {
                    events.extend(t.cancel("rejected and cancelled by a person".into(), at)?);
                }
                // A person's rejection is not a failure to back off from: the next attempt
                // starts at once, with the reason.
                (Gate::Result, false) => {
                    let at_once = FailurePolicy {
                        backoff: None,
                        ..policy
                    };
                    events.extend(after_failure(tx, &mut t, at_once, at, changes)?);
                }
                (Gate::Run, false) => {}
            }
            save_task_events(tx, &t, events, at)?;
            changes.release_concerns(&t);
            if t.state == TaskState::Cancelled {
                block_dependents(tx, id, at)?;
                finish_orchestration_if_done(tx, &t, policy, at, changes)?;
            }
            Ok(t)
        })
    }

    pub(super) fn approvals(&self) -> Result<Vec<ApprovalRequest>, QueryError> {
        Ok(self
            .store
            .tasks_awaiting_approval()?
            .into_iter()
            .map(|task| {
                // A listing does not fail for one task's git: its changes are left out.
                let changes = task
                    .workspace
                    .as_ref()
                    .and_then(|_| self.diff_summary_of(&task).ok());
                ApprovalRequest { task, changes }
            })
            .collect())
    }

    pub(super) fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError> {
        self.diff_summary_of(&self.get_task(task)?)
    }

    /// What `t`'s branch changed, in one line.
    fn diff_summary_of(&self, t: &Task) -> Result<String, QueryError> {
        let ws = Self::workspace_of(t)?;
        Ok(self.git()?.shortstat(&ws, &ws.base, &ws.branch)?)
    }

    pub(super) fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError> {
        let t = self.get_task(task)?;
        let mut ws = Self::workspace_of(&t)?;
        let removed = t.workspace.as_ref().is_some_and(|w| w.removed);
        if removed {
            // The worktree was removed; its branch and checkpoints are in the repository.
            ws.path.clone_from(&ws.repo);
        }
        let (from, to) = match attempt {
            None => (ws.base.clone(), (removed).then(|| ws.branch.clone())),
            Some(n) => {
                let a = attempt_of(&t, n)?;
                let from = a
                    .checkpoint_before
                    .clone()
                    .ok_or_else(|| QueryError::NoWorkspace {
                        task: t.id.short(),
                        because: NoWorktree::NoCheckpointFor(n),
                    })?;
                (from, a.checkpoint_after.clone())
            }
        };
        Ok(self.git()?.diff(&ws, &from, to.as_deref(), stat)?)
    }

    pub(super) fn rollback(
        &self,
        task: &IdRef,
        to_attempt: Option<u32>,
    ) -> Result<Task, TaskError> {
        let t = self.get_task(task)?;
        let ws = Self::workspace_of(&t)?;
        if t.workspace.as_ref().is_some_and(|w| w.removed) {
            return Err(TaskError::NoWorkspace {
                task: t.id.short(),
                because: NoWorktree::Removed,
            });
        }
        let (number, commit) = match to_attempt {
            Some(n) => {
                let a = attempt_of(&t, n)?;
                let c = a
                    .checkpoint_after
                    .clone()
                    .ok_or_else(|| TaskError::NoWorkspace {
                        task: t.id.short(),
                        because: NoWorktree::NoCheckpointAfter(n),
                    })?;
                (n, c)
            }
            None => {
                let a = t.current_attempt().ok_or_else(|| QueryError::NoAttempt {
                    task: t.id.short(),
                    attempt: None,
                    made: 0,
                })?;
                let c = a
                    .checkpoint_before
                    .clone()
                    .ok_or_else(|| TaskError::NoWorkspace {
                        task: t.id.short(),
                        because: NoWorktree::NoCheckpointBefore(a.number),
                    })?;
                (a.number.saturating_sub(1), c)
            }
        };
        // Refused before git is touched when an attempt runs.
        if t.state.holds_slot() {
            return Err(maos_domain::TransitionError::Task {
                task: t.id,
                from: t.state,
                action: "rolled back while an attempt runs",
            }
            .into());
        }
        self.git()?.rollback(&ws, &commit)?;
        let at = self.clock.now();
        let id = t.id;
        self.store.write(move |tx| {
            let mut t = load_task(tx, id)?;
            let events = t.roll_back(number, commit.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            Ok(t)
        })
    }

    pub(super) fn gc(&self, req: &GcRequest) -> Result<Vec<GcEntry>, TaskError> {
        let git = Arc::clone(self.git()?);
        let now = self.clock.now();
        let older = DurationMs::from_millis(u64::try_from(req.older_than.as_millis()).unwrap_or(0))
            .map_or(now, |d| {
                Timestamp::from_millis(now.as_millis() - d.as_millis() as i64)
            });
        let mut out = Vec::new();
        for t in self.store.finished_tasks_with_worktrees(older)? {
            let ws = Self::workspace_of(&t)?;
            let into = match t
                .spec
                .orchestration
                .and_then(|o| self.store.orchestration(o).ok().flatten())
            {
                Some(o) => o.integration_branch(),
                None => t
                    .spec
                    .workspace
                    .as_ref()
                    .and_then(|w| w.base.clone())
                    .unwrap_or_else(|| "HEAD".into()),
            };
            let dirty = git.is_dirty(&ws)?;
            let merged = git.is_merged(&ws.repo, &ws.branch, &into)?;
            let kept_because = match (dirty, merged, req.force) {
                (_, _, true) | (false, true, false) => None,
                (true, _, false) => Some("it has uncommitted changes".into()),
                (false, false, false) => Some(format!("{} is not merged into {into}", ws.branch)),
            };
            let removed = kept_because.is_none();
            if removed && !req.dry_run {
                git.remove(&ws, req.force)?;
                let at = self.clock.now();
                let id = t.id;
                self.store.write(move |tx| {
                    let mut t = load_task(tx, id)?;
                    let events = t.remove_workspace(at)?;
                    save_task_events(tx, &t, events, at)?;
                    Ok::<_, TaskError>(())
                })?;
            }
            out.push(GcEntry {
                task: t.id,
                path: ws.path.display().to_string(),
                removed,
                kept_because,
            });
        }
        Ok(out)
    }

    pub(super) fn git(&self) -> Result<&Arc<dyn Workspaces>, QueryError> {
        self.workspaces.as_ref().ok_or_else(|| {
            QueryError::Workspace(crate::workspace::WorkspaceError::NoGit(
                "this MAOS was built without workspaces".into(),
            ))
        })
    }

    /// The worktree of task `t`, or why there is none.
    pub(super) fn workspace_of(t: &Task) -> Result<Workspace, QueryError> {
        let Some(ws) = &t.workspace else {
            return Err(QueryError::NoWorkspace {
                task: t.id.short(),
                because: if t.spec.workspace.is_some() {
                    NoWorktree::NotYet
                } else {
                    NoWorktree::NoRepository
                },
            });
        };
        Ok(Workspace {
            repo: ws.repo.clone().into(),
            path: ws.path.clone().into(),
            branch: ws.branch.clone(),
            base: ws.base.clone(),
        })
    }

    /// Integrates a task's accepted work into its orchestration's integration branch (before
    /// the transaction that completes it: git is not transactional, the merge is idempotent).
    pub(super) fn integrate(&self, t: &Task) -> Result<Integration, TaskError> {
        let (Some(ws), Some(oid), Some(git)) =
            (&t.workspace, t.spec.orchestration, &self.workspaces)
        else {
            return Ok(Integration::None);
        };
        let Some(o) = self.store.orchestration(oid)? else {
            return Ok(Integration::None);
        };
        let into = o.integration_branch();
        Ok(
            match git.merge(Path::new(&ws.repo), &ws.branch, &into, &ws.base) {
                Ok(MergeOutcome::Merged { commit } | MergeOutcome::UpToDate { commit }) => {
                    Integration::Merged { into, commit }
                }
                Ok(MergeOutcome::Conflict { paths }) => Integration::Conflict { into, paths },
                // Work that was accepted is never lost: it waits for a person, saying why.
                Err(e) => Integration::Failed {
                    into,
                    reason: e.to_string(),
                },
            },
        )
    }
}
