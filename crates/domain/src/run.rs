//! What one run of an agent reported: money in exact micro-dollars, token usage, how the
//! process ended, and why an attempt failed.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;
use crate::values::keyword_enum;

/// An amount of US dollars, exact to the micro-dollar (no floating point in the domain).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Usd(u64);

impl Usd {
    /// Nothing.
    pub const ZERO: Usd = Usd(0);
    /// The largest amount accepted from a person: one million dollars.
    pub const MAX_INPUT: Usd = Usd(1_000_000 * 1_000_000);

    /// An amount in micro-dollars (millionths of a dollar).
    pub const fn from_micros(micros: u64) -> Usd {
        Usd(micros)
    }

    /// Micro-dollars.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// The nearest amount to `dollars` (a cost an agent reported as a float); negative and
    /// non-finite values count as zero.
    pub fn from_dollars_lossy(dollars: f64) -> Usd {
        if dollars.is_finite() && dollars > 0.0 {
            // Saturating float-to-int conversion: `as` clamps out-of-range values.
            Usd((dollars * 1_000_000.0).round() as u64)
        } else {
            Usd(0)
        }
    }

    /// Parses `0.50`, `12`, `$3.25` (at most six decimals, at most $1,000,000).
    pub fn parse(raw: &str) -> Result<Usd, ValueError> {
        const WHAT: &str = "amount in US dollars";
        let hint = "write dollars with up to six decimals, for example 0.50 or 12";
        let s = raw.trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return Err(ValueError::new(WHAT, raw, hint));
        }
        if frac.len() > 6 {
            return Err(ValueError::new(
                WHAT,
                raw,
                "at most six decimals (a micro-dollar) are kept",
            ));
        }
        let too_big = || ValueError::new(WHAT, raw, "the largest amount accepted is 1000000");
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_big())?
        };
        let frac_micros: u64 = format!("{frac:0<6}").parse().map_err(|_| too_big())?;
        let micros = whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(frac_micros))
            .ok_or_else(too_big)?;
        if micros > Self::MAX_INPUT.0 {
            return Err(too_big());
        }
        Ok(Usd(micros))
    }

    /// The sum, saturating.
    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, other: Usd) -> Usd {
        self.saturating_add(other)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, other: Usd) {
        *self = self.saturating_add(other);
    }
}

impl fmt::Display for Usd {
    /// Dollars with at least two and at most six decimals: `0.50`, `0.0042`, `12.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000;
        let frac = format!("{:06}", self.0 % 1_000_000);
        let trimmed = frac.trim_end_matches('0');
        let shown = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        write!(f, "{whole}.{shown}")
    }
}

impl FromStr for Usd {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Usd, ValueError> {
        Usd::parse(s)
    }
}

/// Tokens and money an attempt used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Of `input_tokens`, those served from a prompt cache.
    pub cached_input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// What the run cost (as the agent reported it, or its tokens priced by the agent's price
    /// table; zero when neither is known).
    pub cost: Usd,
}

impl Usage {
    /// Nothing used.
    pub const NONE: Usage = Usage {
        input_tokens: 0,
        cached_input_tokens: 0,
        output_tokens: 0,
        cost: Usd::ZERO,
    };

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(o.input_tokens),
            cached_input_tokens: self
                .cached_input_tokens
                .saturating_add(o.cached_input_tokens),
            output_tokens: self.output_tokens.saturating_add(o.output_tokens),
            cost: self.cost + o.cost,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

/// How an agent's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this status code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

keyword_enum!(
    /// Why an attempt failed: what the retry policy and a person need to know first.
    FailureKind, "failure kind" {
        /// The agent's process exited with a non-zero status.
        Exit => "exit",
        /// A signal killed the agent's process.
        Signal => "signal",
        /// The attempt ran past its timeout and was stopped.
        Timeout => "timeout",
        /// Going on would have overrun the task's budget.
        Budget => "budget",
        /// The agent could not be started (program missing, bad configuration): a person must
        /// fix it, so the task is blocked at once and the agent is not blamed.
        Start => "start",
        /// The attempt's surroundings could not be prepared (its repository or worktree,
        /// `.maos/copy`, `.maos/setup.sh`, the data directory): not the agent's fault, so the
        /// task is blocked at once and the agent is not blamed.
        Setup => "setup",
        /// The agent ran and reported an error of its own.
        Agent => "agent",
        /// The attempt was lost: its daemon died, its lease expired, or it was stopped.
        Interrupted => "interrupted",
        /// The agent succeeded, but the verification command failed.
        Verification => "verification",
    }
);

impl FailureKind {
    /// True when the failure is of the agent's own work (what the circuit breaker counts and
    /// retries may mend); false for budget stops, interruptions, and an agent that could not be
    /// started or a workspace that could not be prepared.
    pub fn is_the_agents(self) -> bool {
        matches!(
            self,
            FailureKind::Exit
                | FailureKind::Signal
                | FailureKind::Timeout
                | FailureKind::Agent
                | FailureKind::Verification
        )
    }

    /// True when no retry can help until a person fixes something outside the agent's work.
    pub fn needs_a_person(self) -> bool {
        matches!(self, FailureKind::Start | FailureKind::Setup)
    }
}

/// The outcome of a task's verification command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// True when the command exited with status 0.
    pub passed: bool,
    /// The end of what it printed (stdout and stderr), for the next attempt and for people.
    pub output: String,
}

/// What the runtime observed at the end of an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunReport {
    /// How the process ended (none for in-process agents).
    pub exit: Option<Exit>,
    /// Tokens and money used.
    pub usage: Usage,
    /// Why it failed (none for a success).
    pub failure: Option<FailureKind>,
    /// The checkpoint commit made after the attempt, in the task's worktree.
    pub checkpoint: Option<String>,
    /// The verification that ran after the agent succeeded (none: no verify command).
    pub verification: Option<Verification>,
    /// What the attempt changed in its worktree, one line (none: no worktree).
    pub diff_stat: Option<String>,
    /// Tool calls the agent was refused (`Tool(subject)`), as it reported them: a task whose
    /// calls were denied may not have done its work.
    pub permission_denials: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_exactly_and_print_short() {
        assert_eq!(Usd::parse("0.50").unwrap().micros(), 500_000);
        assert_eq!(Usd::parse("$12").unwrap().micros(), 12_000_000);
        assert_eq!(Usd::parse(".000001").unwrap().micros(), 1);
        assert_eq!(Usd::parse("1000000").unwrap(), Usd::MAX_INPUT);
        assert_eq!(Usd::from_micros(500_000).to_string(), "0.50");
        assert_eq!(Usd::from_micros(4_200).to_string(), "0.0042");
        assert_eq!(Usd::from_micros(12_000_000).to_string(), "12.00");
        assert_eq!(Usd::from_micros(1).to_string(), "0.000001");
    }

    #[test]
    fn bad_dollars_are_refused_with_a_reason() {
        for bad in [
            "",
            "$",
            "abc",
            "1.2.3",
            "-1",
            "0.0000001",
            "1000000.01",
            "1e3",
            ".",
        ] {
            let e = Usd::parse(bad).unwrap_err();
            assert_eq!(e.what, "amount in US dollars", "{bad}");
        }
    }

    #[test]
    fn reported_costs_round_to_micro_dollars() {
        assert_eq!(Usd::from_dollars_lossy(0.0123456).micros(), 12_346);
        assert_eq!(Usd::from_dollars_lossy(-1.0), Usd::ZERO);
        assert_eq!(Usd::from_dollars_lossy(f64::NAN), Usd::ZERO);
    }

    #[test]
    fn usage_adds_up() {
        let a = Usage {
            input_tokens: 10,
            cached_input_tokens: 4,
            output_tokens: 5,
            cost: Usd::from_micros(7),
        };
        let sum = a + a;
        assert_eq!(sum.input_tokens, 20);
        assert_eq!(sum.cached_input_tokens, 8);
        assert_eq!(sum.total_tokens(), 30);
        assert_eq!(sum.cost.micros(), 14);
    }
}
