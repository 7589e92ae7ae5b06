//! The daemon's upkeep: reconciling after a restart, expiring leases, promoting due retries.

use super::*;

impl<S: Store> Service<S> {
    /// At daemon start: every attempt that a previous daemon left assigned or running on an agent
    /// the daemon runs is interrupted (its process died with that daemon) and goes through the
    /// retry policy; then every free slot gets work.
    pub fn reconcile(&self) -> Result<Reconciled, TaskError> {
        let at = self.clock.now();
        let policy = self.config.failure;
        let scheduler = self.scheduler();
        let (mut report, changes) = self.store.write(move |tx| {
            let mut report = Reconciled::default();
            let mut changes = Changes::default();
            for mut t in tx.live_tasks()? {
                let Some(attempt) = t.current_attempt().cloned() else {
                    continue;
                };
                let runs_here = tx
                    .agent(&attempt.agent)?
                    .is_some_and(|a| a.adapter.is_run_by_daemon());
                if !runs_here {
                    continue;
                }
                let reason = "the daemon stopped while the attempt ran".to_owned();
                // Not the task's doing: the attempt does not count against it.
                interrupt(tx, &mut t, reason, true, policy, at, &mut changes)?;
                report.interrupted.push((t.id, attempt.number, attempt.pid));
            }
            if let Some(s) = scheduler {
                s.fill_slots(tx, &mut changes, at)?;
                s.fill_all(tx, at, &mut changes.launches)?;
            }
            Ok::<_, TaskError>((report, changes))
        })?;
        report.launched = changes.launches.len();
        self.dispatch(changes);
        Ok(report)
    }

    /// Interrupts every live attempt whose lease ran out before now (no heartbeat came: its
    /// runner died or hung) and requeues its task under the retry policy. Returns how many.
    ///
    /// The attempts come from the lease book (ADR 0023), earliest deadline first; each is
    /// checked against the store in the transaction that interrupts it. Nothing due: no
    /// transaction at all.
    pub fn expire_leases(&self) -> Result<usize, TaskError> {
        const BATCH: usize = 1000;
        let at = self.clock.now();
        if !self.lease_book().is_seeded() {
            self.seed_leases(at)?;
        }
        let due = self.lease_book().due(at, BATCH);
        if due.is_empty() {
            return Ok(0);
        }
        let policy = self.config.failure;
        let leases = Arc::clone(&self.leases);
        let (expired, settled) = self.write_scheduled(at, move |tx, changes| {
            // A heartbeat may have come in since the book was read: those are not due.
            let settled: Vec<Holder> = {
                let book = leases.lock().unwrap_or_else(|p| p.into_inner());
                due.iter()
                    .copied()
                    .filter(|h| book.deadline(*h).is_none_or(|deadline| deadline < at))
                    .collect()
            };
            let mut expired = 0;
            for &holder in &settled {
                let Some(mut t) = tx.task(holder.0)? else {
                    continue;
                };
                // The attempt ended since (or a later one holds the task): nothing to expire.
                if t.check_lease(holder.1).is_err() {
                    continue;
                }
                let attempt = t.attempts_used();
                let reason = "its lease expired: no heartbeat came in time".to_owned();
                // Its runner hung or died: that counts, or a task that hangs every agent would
                // retry forever.
                interrupt(tx, &mut t, reason.clone(), false, policy, at, changes)?;
                changes.stops.push((t.id, attempt, reason));
                expired += 1;
            }
            Ok::<_, TaskError>((expired, settled))
        })?;
        let mut book = self.lease_book();
        for holder in settled {
            book.forget(holder);
        }
        Ok(expired)
    }

    /// Puts every attempt the store holds live into the lease book, once: those a previous
    /// daemon assigned (an external worker's) get a whole lease from now to be heard.
    fn seed_leases(&self, at: Timestamp) -> Result<(), TaskError> {
        let live = self.store.live_leases()?;
        self.lease_book().seed(
            live.into_iter()
                .map(|(task, fencing, lease)| ((task, fencing), lease)),
            at.plus(self.config.lease),
        );
        Ok(())
    }

    /// Makes ready every retrying task whose backoff has ended (the daemon calls this on a
    /// timer). Returns how many.
    pub fn promote_due_retries(&self) -> Result<usize, TaskError> {
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            const BATCH: usize = 1000;
            let mut n = 0;
            for mut t in tx.due_retries(at, BATCH)? {
                if !t.retry_due(at) {
                    continue;
                }
                let events = t.make_ready(at)?;
                save_task_events(tx, &t, events, at)?;
                if t.state == TaskState::Ready {
                    changes.readied.push(t.id);
                }
                n += 1;
            }
            Ok(n)
        })
    }
}
