//! An agent's own calls, made with the credential its attempt was given: who it is (and whether
//! its attempt still runs), progress notes, and subtasks split off its task.

use maos_domain::{MAX_SUBTASK_DEPTH, MAX_SUBTASKS, ParentLink, ProgressNote};

use super::*;
use crate::error::Denial;

impl<S: Store> Service<S> {
    pub(super) fn authenticate_agent(
        &self,
        credential: &AgentCredential,
    ) -> Result<AgentScope, TaskError> {
        let holder = self
            .runtime
            .as_ref()
            .and_then(|r| r.credential_holder(credential));
        let Some((task, attempt)) = holder else {
            return Err(TaskError::Denied(Denial::UnknownCredential));
        };
        let stale = || TaskError::Denied(Denial::StaleAttempt { task, attempt });
        let t = self.store.task(task)?.ok_or_else(stale)?;
        if t.attempts_used() != attempt
            || !matches!(t.state, TaskState::Assigned | TaskState::Running)
        {
            return Err(stale());
        }
        let orchestration = match t.spec.orchestration {
            Some(o) => self.store.orchestration(o)?,
            None => None,
        };
        Ok(AgentScope {
            task,
            attempt,
            fencing: t.fencing,
            orchestration: t.spec.orchestration,
            scopes: crate::brief::scopes_of(&t, orchestration.as_ref()),
        })
    }

    pub(super) fn report_progress(
        &self,
        task: TaskId,
        fencing: FencingToken,
        note: ProgressNote,
    ) -> Result<Task, TaskError> {
        let at = self.clock.now();
        let logged = note.clone();
        let t = self.store.write(move |tx| {
            let mut t = load_task(tx, task)?;
            let events = t.report_progress(fencing, note.clone(), at)?;
            save_task_events(tx, &t, events, at)?;
            Ok::<_, TaskError>(t)
        })?;
        if let Some(runtime) = &self.runtime {
            runtime.progress(task, t.attempts_used(), &logged);
        }
        Ok(t)
    }

    pub(super) fn create_subtasks(
        &self,
        task: TaskId,
        fencing: FencingToken,
        cmd: CreateSubtasks,
    ) -> Result<Vec<Created>, TaskError> {
        let refuse = |why: String| TaskError::Refused(Box::new(Refusal::Subtasks { task, why }));
        if cmd.tasks.len() > MAX_SUBTASKS {
            return Err(refuse(format!(
                "{} subtasks were asked for; a task may have at most {MAX_SUBTASKS}",
                cmd.tasks.len()
            )));
        }
        let deps = crate::plan::check(&cmd.tasks).map_err(|e| match e {
            OrchestrationError::Refused(why) => refuse(why),
            other => refuse(other.to_string()),
        })?;
        // The parent as it is now: its depth, repository and orchestration (the transaction
        // checks again that its attempt still runs).
        let parent = self.store.task(task)?.ok_or_else(|| TaskError::NotFound {
            reference: task.to_string(),
        })?;
        let mut depth = 1;
        let mut up = parent.spec.parent;
        while let Some(link) = up {
            depth += 1;
            if depth > MAX_SUBTASK_DEPTH {
                return Err(refuse(format!(
                    "subtasks nest at most {MAX_SUBTASK_DEPTH} levels deep, and this task is \
                     already a subtask {} levels down",
                    depth - 1
                )));
            }
            up = self.store.task(link.task)?.and_then(|t| t.spec.parent);
        }
        let ids: Vec<TaskId> = cmd
            .tasks
            .iter()
            .map(|_| TaskId::from_bits(self.ids.next_bits()))
            .collect();
        let waits = cmd.waits;
        let link = ParentLink { task, waits };
        let orchestration = parent.spec.orchestration;
        let mut specs = Vec::with_capacity(cmd.tasks.len());
        for (i, t) in cmd.tasks.into_iter().enumerate() {
            let c = CreateTask {
                workspace: t.task.workspace.or_else(|| parent.spec.workspace.clone()),
                verify: t.task.verify.or_else(|| parent.spec.verify.clone()),
                ..t.task
            };
            let depends_on = deps[i].iter().map(|&j| ids[j]).collect();
            let mut spec = task_spec(c, depends_on, orchestration, &self.routes);
            spec.parent = Some(link);
            specs.push(PreparedCreate { id: ids[i], spec });
        }
        let at = self.clock.now();
        self.write_scheduled_then(
            at,
            move |tx, changes| {
                let mut parent = load_task(tx, task)?;
                let events = parent.add_subtasks(fencing, ids.clone(), waits, at)?;
                let made = specs
                    .clone()
                    .into_iter()
                    .map(|p| create_in_tx(tx, p, at, changes))
                    .collect::<Result<Vec<_>, _>>()?;
                save_task_events(tx, &parent, events, at)?;
                Ok(made)
            },
            |created, launches| refresh(created, launches),
        )
    }

    /// The subtasks `t` waits for that have not completed, with their states.
    pub(super) fn unfinished_subtasks(
        &self,
        t: &Task,
    ) -> Result<Vec<(TaskId, TaskState)>, StoreError> {
        let mut left = Vec::new();
        for id in t.awaited_subtasks() {
            let state = self.store.task(id)?.map(|s| s.state);
            match state {
                Some(TaskState::Completed) => {}
                Some(s) => left.push((id, s)),
                // A subtask that vanished cannot be waited for.
                None => {}
            }
        }
        Ok(left)
    }
}
