//! Retry backoff and the circuit breaker: how long to wait before retrying a failed task, and
//! when an agent has failed often enough in a row to stop giving it work.
//!
//! The domain draws no random numbers: the caller supplies the jitter draw as any `u32`, which
//! [`RetryPolicy::delay`] maps onto the allowed spread.

use serde::{Deserialize, Serialize};

use crate::values::DurationMs;

/// Exponential backoff with a cap and a proportional jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// The delay after the first failure.
    pub base: DurationMs,
    /// What the delay is multiplied by after each further failure; 0 counts as 1 (no growth).
    pub factor: u32,
    /// The longest delay, jitter included.
    pub cap: DurationMs,
    /// The jitter spread, in percent of the un-jittered delay, either way; values above 100
    /// count as 100.
    pub jitter_percent: u8,
}

impl Default for RetryPolicy {
    /// 2 s, doubling, at most 5 min, ±20 %.
    fn default() -> Self {
        Self {
            base: DurationMs::from_millis(2_000).unwrap_or(DurationMs::MAX),
            factor: 2,
            cap: DurationMs::from_millis(300_000).unwrap_or(DurationMs::MAX),
            jitter_percent: 20,
        }
    }
}

impl RetryPolicy {
    /// The jitter draw that adds no jitter: the middle of the `u32` range.
    pub const NO_JITTER: u32 = 1 << 31;

    /// The delay before the next attempt after the `failures`-th failure, without jitter:
    /// `base · factor^(failures − 1)`, at most `cap`. `failures` 0 counts as 1. Never overflows.
    pub fn base_delay(&self, failures: u32) -> DurationMs {
        DurationMs::from_millis(self.base_millis(failures)).unwrap_or(self.cap)
    }

    fn base_millis(&self, failures: u32) -> u64 {
        let factor = u64::from(self.factor.max(1));
        let grown = factor
            .checked_pow(failures.saturating_sub(1))
            .and_then(|f| f.checked_mul(self.base.as_millis()))
            .unwrap_or(u64::MAX);
        grown.min(self.cap.as_millis())
    }

    /// The delay before the retry that follows the `failures`-th failure (1 → `base`,
    /// 2 → `base · factor`, …, at most `cap`), with jitter.
    ///
    /// `jitter` is a uniform random draw from the caller (any `u32`). It is mapped linearly onto
    /// offsets from `−spread` to `+spread`, where `spread` is `jitter_percent` % of the
    /// un-jittered delay (rounded down); [`RetryPolicy::NO_JITTER`] gives offset 0. The result
    /// is then kept within `1 ms ..= cap`, so it never exceeds `cap`, is never zero, and stays
    /// within `jitter_percent` % of [`RetryPolicy::base_delay`]. Never panics.
    pub fn delay(&self, failures: u32, jitter: u32) -> DurationMs {
        let unjittered = self.base_millis(failures);
        let percent = u64::from(self.jitter_percent.min(100));
        // The un-jittered delay is at most `cap`, itself at most 30 days: no overflow here.
        let spread = unjittered.saturating_mul(percent) / 100;
        let width = u128::from(spread) * 2 + 1;
        let offset = u64::try_from((u128::from(jitter) * width) >> 32).unwrap_or(0);
        // `max(1)` after `min`: a cap of 0 (only a deserialized value can hold one) still gives
        // 1 ms rather than a panic.
        let ms = (unjittered - spread)
            .saturating_add(offset)
            .min(self.cap.as_millis())
            .max(1);
        DurationMs::from_millis(ms).unwrap_or(self.cap)
    }
}

/// Stops handing work to an agent after too many failures in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CircuitBreaker {
    /// Consecutive failures that trip the breaker; 0 means it never trips.
    pub threshold: u32,
}

impl Default for CircuitBreaker {
    /// Trips after 3 failures in a row.
    fn default() -> Self {
        Self { threshold: 3 }
    }
}

impl CircuitBreaker {
    /// True when `consecutive_failures` reaches the threshold (never when the threshold is 0).
    pub fn trips(&self, consecutive_failures: u32) -> bool {
        self.threshold != 0 && consecutive_failures >= self.threshold
    }
}

/// The number of failures before the most recent success: the length of the leading run of
/// `false` in `outcomes_newest_first`, where `true` is a success and `false` a failure.
/// Saturates at `u32::MAX`.
pub fn consecutive_failures<I: IntoIterator<Item = bool>>(outcomes_newest_first: I) -> u32 {
    let mut n = 0u32;
    for ok in outcomes_newest_first {
        if ok {
            break;
        }
        n = n.saturating_add(1);
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ms(n: u64) -> DurationMs {
        DurationMs::from_millis(n).unwrap()
    }

    #[test]
    fn the_default_doubles_from_two_seconds_up_to_five_minutes() {
        let p = RetryPolicy::default();
        assert_eq!(p.base, ms(2_000));
        assert_eq!(p.cap, ms(300_000));
        assert_eq!((p.factor, p.jitter_percent), (2, 20));
        let mid = RetryPolicy::NO_JITTER;
        assert_eq!(p.delay(0, mid), ms(2_000));
        assert_eq!(p.delay(1, mid), ms(2_000));
        assert_eq!(p.delay(2, mid), ms(4_000));
        assert_eq!(p.delay(3, mid), ms(8_000));
        assert_eq!(p.delay(8, mid), ms(256_000));
        assert_eq!(p.delay(9, mid), ms(300_000));
        assert_eq!(p.delay(u32::MAX, mid), ms(300_000));
    }

    #[test]
    fn jitter_spans_the_spread_and_respects_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 0), ms(1_600));
        assert_eq!(p.delay(1, u32::MAX), ms(2_400));
        // At the cap, the upper half of the spread is cut off.
        assert_eq!(p.delay(20, 0), ms(240_000));
        assert_eq!(p.delay(20, u32::MAX), ms(300_000));
        let wild = RetryPolicy {
            base: ms(1),
            factor: 0,
            cap: ms(1),
            jitter_percent: 255,
        };
        for j in [0, 1, RetryPolicy::NO_JITTER, u32::MAX] {
            assert_eq!(wild.delay(5, j), ms(1));
        }
        let low = RetryPolicy {
            base: ms(10),
            factor: 3,
            cap: ms(1_000),
            jitter_percent: 100,
        };
        assert_eq!(low.delay(1, 0), ms(1), "never zero");
        assert_eq!(low.delay(1, u32::MAX), ms(20));
    }

    #[test]
    fn the_breaker_trips_at_the_threshold() {
        let b = CircuitBreaker::default();
        assert!(!b.trips(2));
        assert!(b.trips(3));
        assert!(b.trips(4));
        assert!(!CircuitBreaker { threshold: 0 }.trips(u32::MAX));
        assert_eq!(consecutive_failures([false, false, true, false]), 2);
        assert_eq!(consecutive_failures([true, false]), 0);
        assert_eq!(consecutive_failures(Vec::new()), 0);
        assert_eq!(consecutive_failures([false; 5]), 5);
    }
}
