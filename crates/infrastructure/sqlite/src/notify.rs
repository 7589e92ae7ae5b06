//! Commit notification: the sequence number of the newest event, kept by the writer thread
//! after every commit, with a condition variable that wakes whoever waits for new events.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The last sequence number committed through this store (or seen on disk), and the condition
/// variable notified when it grows.
#[derive(Debug, Default)]
pub(crate) struct CommitSignal {
    last: Mutex<u64>,
    grew: Condvar,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The last sequence number is greater than the one waited past.
    Reached(u64),
    /// The timeout passed first; the last sequence number known then.
    TimedOut(u64),
}

impl CommitSignal {
    /// A signal that starts at `last`.
    pub(crate) fn new(last: u64) -> Self {
        CommitSignal {
            last: Mutex::new(last),
            grew: Condvar::new(),
        }
    }

    /// Records that the log reaches `seq`, waking every waiter if that is news.
    pub(crate) fn advance(&self, seq: u64) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if seq > *last {
            *last = seq;
            self.grew.notify_all();
        }
    }

    /// Waits until the last sequence number is greater than `after`, or `timeout` passes.
    pub(crate) fn wait(&self, after: u64, timeout: Duration) -> Waited {
        let deadline = Instant::now().checked_add(timeout);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *last > after {
                return Waited::Reached(*last);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                // A timeout too large to add to now: wait as long as we can, in steps.
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Waited::TimedOut(*last);
            }
            last = self
                .grew
                .wait_timeout(last, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_wait_ends_when_the_log_grows_past_it_or_at_the_timeout() {
        let signal = Arc::new(CommitSignal::new(5));
        assert_eq!(signal.wait(4, Duration::ZERO), Waited::Reached(5));
        assert_eq!(
            signal.wait(5, Duration::from_millis(20)),
            Waited::TimedOut(5)
        );
        let waiter = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || signal.wait(5, Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        signal.advance(4);
        signal.advance(7);
        assert_eq!(
            waiter.join().unwrap_or(Waited::TimedOut(0)),
            Waited::Reached(7)
        );
    }
}
