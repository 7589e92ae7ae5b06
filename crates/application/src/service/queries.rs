//! Queries: tasks, briefings, logs, orchestrations, status and the event log.

use super::*;
use crate::report;
use crate::waiting::Facts;

impl<S: Store> Service<S> {
    pub(super) fn task_waiting(&self, task: &IdRef) -> Result<Vec<WaitReason>, QueryError> {
        let t = self.get_task(task)?;
        crate::waiting::explain(self.store.as_ref(), &t, self.clock.now())
    }

    pub(super) fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<AttemptBriefing, QueryError> {
        let t = self.get_task(task)?;
        if t.attempts_used() == 0 {
            return Err(QueryError::NoAttempt {
                task: t.id.short(),
                attempt,
                made: 0,
            });
        }
        let number = attempt.unwrap_or_else(|| t.attempts_used());
        let a = attempt_of(&t, number)?;
        Ok(match &a.briefing {
            Some(b) => AttemptBriefing {
                attempt: number,
                text: b.text.clone(),
                tokens: b.tokens,
                cut: b.cut.clone(),
            },
            // Attempts assigned before briefings were recorded got the task's prompt.
            None => AttemptBriefing {
                attempt: number,
                text: t.spec.prompt.clone(),
                tokens: maos_domain::briefing::estimate_tokens(&t.spec.prompt),
                cut: Vec::new(),
            },
        })
    }

    /// The task, with its live attempt's lease as the last heartbeat renewed it (the store
    /// holds the lease as assigned: renewals live in the lease book, ADR 0023).
    pub(super) fn get_task(&self, task: &IdRef) -> Result<Task, QueryError> {
        let id = self.resolve_task(task)?;
        let task = self.store.task(id)?.ok_or_else(|| QueryError::NotFound {
            what: Entity::Task,
            reference: task.to_string(),
        })?;
        Ok(self.as_renewed(task))
    }

    /// The task with its live attempt's lease as the lease book has it.
    fn as_renewed(&self, task: Task) -> Task {
        let fencing = task.fencing;
        if !task.state.holds_lease() {
            return task;
        }
        match self.lease_book().deadline((task.id, fencing)) {
            Some(until) => task.with_lease_renewed(fencing, until),
            None => task,
        }
    }

    pub(super) fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError> {
        let id = self.resolve_task(&req.task)?;
        let task = self.store.task(id)?.ok_or_else(|| QueryError::NotFound {
            what: Entity::Task,
            reference: req.task.to_string(),
        })?;
        let number = match req.attempt {
            Some(n) => n,
            None => task.attempts_used(),
        };
        let Some(attempt) = task.attempts.iter().find(|a| a.number == number) else {
            return Err(QueryError::NoAttempt {
                task: task.id.short(),
                attempt: req.attempt,
                made: task.attempts_used(),
            });
        };
        // Whether the attempt had ended is read before the log: the runtime closes the log before
        // it reports the end, so an ended attempt's log is complete.
        let ended = attempt.ended_at.is_some() || !task.state.holds_slot();
        let max = req.max.clamp(1, LogRequest::MAX_CHUNK);
        let bytes = match &self.logs {
            Some(logs) => logs.read(id, number, req.offset, max, req.wait)?,
            None => Vec::new(),
        };
        Ok(LogChunk {
            task: id,
            attempt: number,
            offset: req.offset,
            // Ended, and the read stopped short of `max`: the end of the log was reached.
            finished: ended && bytes.len() < max,
            bytes,
        })
    }

    pub(super) fn list_tasks(
        &self,
        filter: &TaskFilter,
        page: &Page,
    ) -> Result<TaskPage, QueryError> {
        if page.limit == 0 {
            return Err(QueryError::ZeroLimit {
                max: Page::MAX_LIMIT,
            });
        }
        let page = Page {
            limit: page.limit.min(Page::MAX_LIMIT),
            cursor: page.cursor,
        };
        let mut found = self.store.tasks(filter, &page)?;
        found.tasks = found
            .tasks
            .into_iter()
            .map(|t| self.as_renewed(t))
            .collect();
        Ok(found)
    }

    pub(super) fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError> {
        let full = self.resolve_orchestration(id)?;
        self.store
            .orchestration(full)?
            .ok_or_else(|| QueryError::NotFound {
                what: Entity::Orchestration,
                reference: id.to_string(),
            })
    }

    pub(super) fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError> {
        Ok(self.store.orchestrations()?)
    }

    pub(super) fn orchestration_report(
        &self,
        id: &IdRef,
    ) -> Result<OrchestrationReport, QueryError> {
        let full = self.resolve_orchestration(id)?;
        // The tasks first: the transaction that finishes the last task also ends the
        // orchestration, so an orchestration read afterwards is never older than its tasks; one
        // that has ended is read with its tasks again, so that they show that end.
        let mut tasks = self.tasks_of(full)?;
        let o = self.get_orchestration(id)?;
        if o.status.is_terminal() {
            tasks = self.tasks_of(full)?;
        }
        let now = self.clock.now();
        // Agents, concern holders and the orchestration are read once for all the tasks.
        let mut facts = Facts::new(self.store.as_ref(), &tasks).with_orchestration(&o);
        let mut waits = report::Waits::new();
        for t in tasks.iter().filter(|t| report::wants_waits(t)) {
            waits.insert(t.id, facts.explain(t, now)?);
        }
        let mut report = report::report(&o, &tasks, &waits, now);
        if o.plan_version > 0 || o.planning.is_some() {
            report.planning = self.planning_usage(&IdRef::from(o.id))?;
        }
        Ok(report)
    }

    /// What the planning of an orchestration took: its planning tasks and the discussion its
    /// goal came from.
    fn planning_usage(&self, id: &IdRef) -> Result<maos_domain::Usage, QueryError> {
        let history = self.plan_history(id)?;
        let mut tasks = history.planners();
        tasks.extend(history.record.iter().filter_map(|r| match r {
            PlanRecord::Planning { discussion, .. } => *discussion,
            _ => None,
        }));
        let mut usage = maos_domain::Usage::default();
        for t in tasks {
            if let Some(t) = self.store.task(t)? {
                usage += t.usage();
            }
        }
        Ok(usage)
    }

    /// Every task of orchestration `id`, oldest first, a page of [`Page::MAX_LIMIT`] at a time.
    fn tasks_of(&self, id: OrchestrationId) -> Result<Vec<Task>, QueryError> {
        let filter = TaskFilter {
            orchestration: Some(id),
            ..TaskFilter::default()
        };
        let mut tasks = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.tasks(
                &filter,
                &Page {
                    limit: Page::MAX_LIMIT,
                    cursor,
                },
            )?;
            tasks.extend(page.tasks);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(tasks),
            }
        }
    }

    pub(super) fn status(&self) -> Result<StatusReport, QueryError> {
        Ok(self.store.status()?)
    }

    /// The metrics of the window from `since`: every task and the log from its start are read
    /// (a read of everything: for a person's command or a dashboard's page, not a hot path).
    pub(super) fn metrics(
        &self,
        since: Option<Timestamp>,
    ) -> Result<crate::metrics::Metrics, QueryError> {
        let until = self.clock.now();
        let mut tasks = Vec::new();
        let mut page = Page {
            limit: Page::MAX_LIMIT,
            cursor: None,
        };
        loop {
            let got = self.store.tasks(&TaskFilter::default(), &page)?;
            tasks.extend(got.tasks);
            match got.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let batch = self.store.events_after(after, Page::MAX_LIMIT)?;
            let Some(last) = batch.last() else {
                break;
            };
            after = last.seq;
            events.extend(
                batch
                    .into_iter()
                    .filter(|e| since.is_none_or(|s| e.at >= s)),
            );
        }
        Ok(crate::metrics::compute(since, until, &tasks, &events))
    }

    pub(super) fn read_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, QueryError> {
        if limit == 0 {
            return Err(QueryError::ZeroLimit {
                max: Page::MAX_LIMIT,
            });
        }
        Ok(self.store.events_after(after, limit.min(Page::MAX_LIMIT))?)
    }

    pub(super) fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError> {
        Ok(Box::new(StoreFollower {
            store: Arc::clone(&self.store),
            after: since,
        }))
    }
}

/// The most events one [`EventFollower::next_batch`] of the service returns.
pub const FOLLOW_BATCH: usize = 1000;

/// Follows the log of a store: reads what follows the last event returned, and when there is
/// nothing, waits on the store's commit notification ([`crate::ReadStore::wait_for_events`]).
struct StoreFollower<S> {
    store: Arc<S>,
    /// The seq of the last event returned (or the `since` it was opened with).
    after: u64,
}

impl<S: Store> StoreFollower<S> {
    fn read(&mut self) -> Result<Vec<StoredEvent>, QueryError> {
        let batch = self.store.events_after(self.after, FOLLOW_BATCH)?;
        if let Some(last) = batch.last() {
            self.after = last.seq;
        }
        Ok(batch)
    }
}

impl<S: Store> EventFollower for StoreFollower<S> {
    fn next_batch(&mut self, timeout: Duration) -> Result<Vec<StoredEvent>, QueryError> {
        let batch = self.read()?;
        if !batch.is_empty() || self.store.wait_for_events(self.after, timeout)? <= self.after {
            return Ok(batch);
        }
        self.read()
    }
}
