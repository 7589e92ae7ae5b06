//! Property: retry backoff and the circuit breaker. The un-jittered delay against an oracle that
//! multiplies step by step; the jittered delay never above the cap, never zero, within the
//! jitter spread, non-decreasing in the failures (without jitter) and in the draw; the breaker
//! trips exactly from its threshold.

use maos_domain::DurationMs;
use maos_domain::policy::retry::{CircuitBreaker, RetryPolicy, consecutive_failures};
use proptest::prelude::*;

fn duration() -> impl Strategy<Value = DurationMs> {
    prop_oneof![
        1..=10u64,
        1..=600_000u64,
        1..=DurationMs::MAX.as_millis(),
        Just(DurationMs::MAX.as_millis()),
    ]
    .prop_map(|ms| DurationMs::from_millis(ms).expect("in range"))
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (
        duration(),
        prop_oneof![0..=10u32, any::<u32>()],
        duration(),
        any::<u8>(),
    )
        .prop_map(|(base, factor, cap, jitter_percent)| RetryPolicy {
            base,
            factor,
            cap,
            jitter_percent,
        })
}

fn failures() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..40u32, 1 => any::<u32>()]
}

/// Oracle without jitter: start at `base`, multiply by the factor once per failure after the
/// first, stop growing at the cap.
fn plain(p: &RetryPolicy, failures: u32) -> u128 {
    let cap = u128::from(p.cap.as_millis());
    let factor = u128::from(p.factor.max(1));
    let mut d = u128::from(p.base.as_millis()).min(cap);
    for _ in 1..failures {
        if d >= cap || factor == 1 {
            break;
        }
        d = (d * factor).min(cap);
    }
    d
}

proptest! {
    #![proptest_config(crate::support::config(1024, "proptest-regressions/retry.txt"))]

    #[test]
    fn the_unjittered_delay_grows_by_the_factor_up_to_the_cap(p in policy(), n in failures()) {
        let expected = plain(&p, n);
        prop_assert_eq!(u128::from(p.base_delay(n).as_millis()), expected);
        prop_assert_eq!(u128::from(p.delay(n, RetryPolicy::NO_JITTER).as_millis()), expected);
    }

    #[test]
    fn the_delay_stays_within_the_spread_and_the_cap(
        p in policy(), n in failures(), draw in any::<u32>(),
    ) {
        let d = u128::from(p.delay(n, draw).as_millis());
        let plain = plain(&p, n);
        let spread = plain * u128::from(p.jitter_percent.min(100)) / 100;
        prop_assert!(d >= 1, "zero delay");
        prop_assert!(d <= u128::from(p.cap.as_millis()), "{} above the cap", d);
        prop_assert!(d + spread >= plain && d <= plain + spread, "{} not within {}±{}", d, plain, spread);
    }

    #[test]
    fn the_extreme_draws_reach_the_ends_of_the_spread(p in policy(), n in failures()) {
        let plain = plain(&p, n);
        let spread = plain * u128::from(p.jitter_percent.min(100)) / 100;
        let cap = u128::from(p.cap.as_millis());
        prop_assert_eq!(u128::from(p.delay(n, 0).as_millis()), (plain - spread).max(1));
        prop_assert_eq!(u128::from(p.delay(n, u32::MAX).as_millis()), (plain + spread).min(cap));
    }

    #[test]
    fn without_jitter_the_delay_never_shrinks(p in policy(), n in failures(), more in 0..10u32) {
        let later = n.saturating_add(more);
        let mid = RetryPolicy::NO_JITTER;
        prop_assert!(p.delay(n, mid) <= p.delay(later, mid), "{} then {}", n, later);
        let steady = RetryPolicy { jitter_percent: 0, ..p };
        for draw in [0, 1, mid, u32::MAX] {
            prop_assert!(steady.delay(n, draw) <= steady.delay(later, draw));
        }
    }

    #[test]
    fn a_larger_draw_never_shortens_the_delay(
        p in policy(), n in failures(), a in any::<u32>(), b in any::<u32>(),
    ) {
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(p.delay(n, low) <= p.delay(n, high));
    }

    #[test]
    fn the_breaker_trips_exactly_from_its_threshold(t in 0..50u32, n in 0..100u32) {
        let b = CircuitBreaker { threshold: t };
        prop_assert_eq!(b.trips(n), t != 0 && n >= t);
        if t > 0 {
            prop_assert!(!b.trips(t - 1));
            prop_assert!(b.trips(t));
        }
    }

    #[test]
    fn consecutive_failures_counts_the_leading_run(outcomes in prop::collection::vec(any::<bool>(), 0..20)) {
        let n = consecutive_failures(outcomes.iter().copied());
        let expected = outcomes.iter().position(|ok| *ok).unwrap_or(outcomes.len());
        prop_assert_eq!(n as usize, expected);
        prop_assert!(outcomes[..expected].iter().all(|ok| !ok));
    }
}
