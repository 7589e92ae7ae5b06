//! Adapters for what the operating system provides: the wall clock and random identifiers.

use std::time::{SystemTime, UNIX_EPOCH};

use maos_application::{Clock, IdSource};
use maos_domain::Timestamp;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// Random identifiers from a per-thread generator seeded by the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_bits(&self) -> u128 {
        fastrand::u128(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_after_2020_and_ids_differ() {
        assert!(SystemClock.now().as_millis() > 1_577_836_800_000);
        let a = RandomIds.next_bits();
        let b = RandomIds.next_bits();
        assert_ne!(a, b);
    }
}
