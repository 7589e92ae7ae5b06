//! [`WorkMeter`]: a count of the work SQLite does for a store, in virtual-machine steps, so that
//! tests can tell a use case whose cost grows with the stored data from one whose cost does not,
//! by counting rather than timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

/// Counts the virtual-machine steps SQLite runs on the connections it is installed on (through
/// SQLite's progress handler, called after every step). The count is deterministic for the same
/// statements over the same data: a row visited, a comparison, a jump are steps; waiting for
/// the disk is not.
#[derive(Debug, Clone, Default)]
pub struct WorkMeter {
    steps: Arc<AtomicU64>,
}

impl WorkMeter {
    /// A meter at zero.
    pub fn new() -> Self {
        WorkMeter::default()
    }

    /// The steps counted so far.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// The steps `work` made SQLite run (on every metered connection, so nothing else should
    /// use the store meanwhile), with what `work` returned.
    pub fn count<R>(&self, work: impl FnOnce() -> R) -> (u64, R) {
        let before = self.steps();
        let out = work();
        (self.steps().saturating_sub(before), out)
    }

    /// Counts `conn`'s steps from now on.
    pub(crate) fn install(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let steps = Arc::clone(&self.steps);
        conn.progress_handler(
            1,
            Some(move || {
                steps.fetch_add(1, Ordering::Relaxed);
                // false: go on (true would interrupt the statement).
                false
            }),
        )
    }
}
