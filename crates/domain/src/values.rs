//! Value objects: every name, tag, number and time that the domain accepts, parsed once at the
//! boundary into a type that cannot hold an invalid value ("parse, don't validate").

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;

fn is_tag_char(c: char, extra: &str) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c)
}

pub(crate) fn parse_tag(
    what: &'static str,
    raw: &str,
    extra: &str,
    max: usize,
) -> Result<String, ValueError> {
    if raw.is_empty() {
        return Err(ValueError::new(
            what,
            raw,
            "it is empty; give at least one character",
        ));
    }
    if raw.len() > max {
        return Err(ValueError::new(
            what,
            raw,
            format!("it is {} bytes long; the limit is {max}", raw.len()),
        ));
    }
    // A character that is wrong whatever its case comes first in the explanation; uppercase
    // letters are only wrong because of their case.
    let lower = raw.to_ascii_lowercase();
    if let Some(bad) = lower.chars().find(|c| !is_tag_char(*c, extra)) {
        let allowed: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
        let hint = format!(
            "{bad:?} is not allowed; use lowercase letters, digits and {}",
            allowed.join(" ")
        );
        return Err(ValueError::new(what, raw, hint));
    }
    if raw != lower {
        let reason = if parse_tag(what, &lower, extra, max).is_ok() {
            format!("uppercase is not allowed; use {lower:?}")
        } else {
            "uppercase letters are not allowed; use lowercase".to_owned()
        };
        return Err(ValueError::new(what, raw, reason));
    }
    let first = raw.chars().next().unwrap_or(' ');
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(ValueError::new(
            what,
            raw,
            "it must start with a lowercase letter or a digit",
        ));
    }
    Ok(raw.to_owned())
}

macro_rules! string_value {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, ValueError> {
                Self::parse(&s)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::parse(s)
            }
        }
    };
}

string_value!(
    /// An agent's unique, human-facing name: `claude-1`, `reviewer`, `ollama.qwen`.
    /// 1–64 characters: lowercase ASCII letters, digits, `-`, `_` and `.`.
    AgentName
);

impl AgentName {
    /// Parses an agent name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_tag("agent name", raw, "-_.", 64).map(Self)
    }
}

string_value!(
    /// A capability tag such as `rust`, `test`, `review` or `lang:python`.
    /// 1–64 characters: lowercase ASCII letters, digits, `-`, `_`, `.`, `:` and `+`.
    Capability
);

impl Capability {
    /// Parses a capability tag.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        parse_tag("capability", raw, "-_.:+", 64).map(Self)
    }
}

string_value!(
    /// A client-chosen key that makes a create idempotent: the same key returns the first result.
    /// 1–128 printable ASCII characters without spaces.
    IdempotencyKey
);

impl IdempotencyKey {
    /// Parses an idempotency key.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "idempotency key";
        if raw.is_empty() || raw.len() > 128 {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it must be 1 to 128 characters long",
            ));
        }
        if !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ValueError::new(
                WHAT,
                raw,
                "use printable ASCII characters only, without spaces",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_value!(
    /// A one-line title of a task or name of an orchestration: 1–200 characters, not blank, no
    /// control characters. Surrounding whitespace is trimmed.
    Title
);

impl Title {
    /// Parses a title.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "title";
        let t = raw.trim();
        if t.is_empty() {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it is blank; say in a few words what it is",
            ));
        }
        if t.chars().count() > 200 {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it is longer than 200 characters; put the details in the prompt",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it contains a control character or a line break; keep it to one line",
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

string_value!(
    /// A short note an agent reports on how its attempt is getting on: 1–2,000 characters, not
    /// blank; line breaks and tabs are kept, other control characters refused. Surrounding
    /// whitespace is trimmed.
    ProgressNote
);

impl ProgressNote {
    /// The most characters a note may have.
    pub const MAX_CHARS: usize = 2_000;

    /// Parses a progress note.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "progress note";
        let t = raw.trim();
        if t.is_empty() {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it is blank; say in a sentence what was done or what comes next",
            ));
        }
        if t.chars().count() > Self::MAX_CHARS {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it is longer than 2000 characters; keep it to a short paragraph",
            ));
        }
        if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(ValueError::new(
                WHAT,
                raw,
                "it contains a control character; use plain text",
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

/// The set of capabilities an agent offers or a task requires. Ordered, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapabilitySet(BTreeSet<Capability>);

impl CapabilitySet {
    /// The empty set: a task that any agent can do.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses every raw tag; the first invalid one is the error.
    pub fn parse<S: AsRef<str>>(raw: impl IntoIterator<Item = S>) -> Result<Self, ValueError> {
        raw.into_iter()
            .map(|s| Capability::parse(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// True when every capability of `required` is in this set.
    pub fn covers(&self, required: &CapabilitySet) -> bool {
        required.0.is_subset(&self.0)
    }

    /// The capabilities of `required` that this set lacks.
    pub fn missing<'a>(&self, required: &'a CapabilitySet) -> Vec<&'a Capability> {
        required.0.iter().filter(|c| !self.0.contains(*c)).collect()
    }

    /// The capabilities of either set.
    pub fn union(&self, other: &CapabilitySet) -> CapabilitySet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// True when `cap` is in the set.
    pub fn contains(&self, cap: &Capability) -> bool {
        self.0.contains(cap)
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.0.iter()
    }

    /// Number of capabilities.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for c in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(c.as_str())?;
        }
        Ok(())
    }
}

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword used in the CLI, JSON and the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the keyword.
            pub fn parse(raw: &str) -> Result<Self, $crate::error::ValueError> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::error::ValueError::new(
                        $what,
                        raw,
                        format!("expected one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::ValueError;
            fn from_str(s: &str) -> Result<Self, $crate::error::ValueError> {
                Self::parse(s)
            }
        }
    };
}
pub(crate) use keyword_enum;
pub(crate) use string_value;

keyword_enum!(
    /// How urgent a task is. The scheduler serves higher priorities first, then older tasks.
    #[derive(Default)]
    Priority, "priority" {
        Low => "low",
        #[default]
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

impl Priority {
    /// A number that sorts priorities (higher is more urgent), as stored.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The priority with this rank.
    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.get(usize::from(rank)).copied()
    }
}

keyword_enum!(
    /// How much damage a task could do: decides the approval a task needs.
    #[derive(Default)]
    Risk, "risk" {
        #[default]
        Low => "low",
        Medium => "medium",
        High => "high",
    }
);

keyword_enum!(
    /// An agent's tier: tactical agents do the everyday work, strategic agents get the hard cases.
    #[derive(Default)]
    Tier, "tier" {
        #[default]
        Tactical => "tactical",
        Strategic => "strategic",
    }
);

keyword_enum!(
    /// The kind of program behind an agent.
    AdapterKind, "adapter" {
        /// Any command-line program.
        Command => "command",
        /// Anthropic's Claude Code CLI.
        ClaudeCode => "claude-code",
        /// OpenAI's Codex CLI.
        Codex => "codex",
        /// An OpenAI-compatible chat completions endpoint.
        Openai => "openai",
        /// A local Ollama server (a preset of `openai`).
        Ollama => "ollama",
        /// An in-process simulated agent for benchmarks and chaos tests.
        Sim => "sim",
        /// A worker of the user's own that takes work through the API: MAOS never starts it and
        /// never schedules onto it by itself (`maos task assign --agent` does).
        External => "external",
    }
);

impl AdapterKind {
    /// True when the daemon runs this agent itself (and so schedules work onto it).
    pub fn is_run_by_daemon(self) -> bool {
        self != AdapterKind::External
    }

    /// True when the agent has nothing to start: a simulated agent runs inside the daemon, so
    /// the daemon records its attempt's start in the transaction that assigns it (one write
    /// per attempt fewer, ADR 0024). Every other agent starts a process or a model loop first.
    pub fn starts_when_assigned(self) -> bool {
        self == AdapterKind::Sim
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This time plus a duration, saturating.
    pub fn plus(self, d: DurationMs) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Milliseconds from `earlier` to `self` (zero if `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// RFC 3339 in UTC with millisecond precision: `2026-11-21T05:33:18.123Z`.
    pub fn to_rfc3339(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A length of time in milliseconds, written for people as `500ms`, `30s`, `5m`, `2h`, `1d` or a
/// sum of those (`1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationMs(u64);

impl DurationMs {
    /// The longest duration accepted: 30 days.
    pub const MAX: DurationMs = DurationMs(30 * 86_400_000);

    /// A duration of `ms` milliseconds; refused above [`DurationMs::MAX`] or at zero.
    pub fn from_millis(ms: u64) -> Result<Self, ValueError> {
        if ms == 0 {
            return Err(ValueError::new(
                "duration",
                "0",
                "it must be longer than zero",
            ));
        }
        if ms > Self::MAX.0 {
            return Err(ValueError::new(
                "duration",
                format!("{ms}ms"),
                "the longest allowed is 30d",
            ));
        }
        Ok(Self(ms))
    }

    /// Milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Parses `500ms`, `30s`, `5m`, `2h`, `1d` and sums such as `1h30m`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        const WHAT: &str = "duration";
        let hint = "write a number and a unit (ms, s, m, h, d), for example 90s, 15m or 1h30m";
        let s = raw.trim();
        if s.is_empty() {
            return Err(ValueError::new(WHAT, raw, hint));
        }
        let mut total: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                return Err(ValueError::new(WHAT, raw, hint));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| ValueError::new(WHAT, raw, hint))?;
            rest = &rest[digits..];
            let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let factor = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(ValueError::new(WHAT, raw, hint)),
            };
            total = n
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| ValueError::new(WHAT, raw, "the longest allowed is 30d"))?;
        }
        Self::from_millis(total).map_err(|e| ValueError::new(WHAT, raw, e.reason))
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl FromStr for DurationMs {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Self::parse(s)
    }
}

/// A fencing token: grows with every attempt of a task; a result that carries an older token
/// comes from a stale attempt and is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(u64);

impl FencingToken {
    /// The token with this number.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next token.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! bounded_count {
    ($(#[$meta:meta])* $name:ident, $what:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u32", into = "u32")]
        pub struct $name(u32);

        impl $name {
            /// Smallest accepted value.
            pub const MIN: u32 = $min;
            /// Largest accepted value.
            pub const MAX: u32 = $max;

            /// Checks the bounds.
            pub fn new(n: u32) -> Result<Self, ValueError> {
                if (Self::MIN..=Self::MAX).contains(&n) {
                    Ok(Self(n))
                } else {
                    Err(ValueError::new(
                        $what,
                        n.to_string(),
                        format!("it must be between {} and {}", Self::MIN, Self::MAX),
                    ))
                }
            }

            /// The number.
            pub const fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }

        impl TryFrom<u32> for $name {
            type Error = ValueError;
            fn try_from(n: u32) -> Result<Self, ValueError> {
                Self::new(n)
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

bounded_count!(
    /// How many attempts an agent runs at once (1–256, default 1).
    Slots, "slots", 1, 256, 1
);
bounded_count!(
    /// How many attempts a task gets before it needs a person (1–100, default 3).
    MaxAttempts, "max attempts", 1, 100, 3
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_capabilities_parse_or_explain() {
        assert!(AgentName::parse("claude-1").is_ok());
        assert!(AgentName::parse("a.b_c").is_ok());
        let e = AgentName::parse("Claude").unwrap_err();
        assert!(e.reason.contains("\"claude\""), "{e}");
        assert!(AgentName::parse("").is_err());
        assert!(AgentName::parse("-x").is_err());
        assert!(AgentName::parse("a b").unwrap_err().reason.contains("' '"));
        assert!(
            AgentName::parse("Claude 2")
                .unwrap_err()
                .reason
                .contains("' '")
        );
        assert!(
            Capability::parse("Rust!")
                .unwrap_err()
                .reason
                .contains("'!'")
        );
        assert!(
            AgentName::parse("-Ab")
                .unwrap_err()
                .reason
                .contains("uppercase")
        );
        assert!(AgentName::parse(&"a".repeat(65)).is_err());
        assert!(Capability::parse("lang:rust").is_ok());
        assert!(Capability::parse("c++").is_ok());
        assert!(Capability::parse("rust!").is_err());
    }

    #[test]
    fn capability_sets_cover_subsets() {
        let agent = CapabilitySet::parse(["rust", "test"]).unwrap();
        assert!(agent.covers(&CapabilitySet::parse(["rust"]).unwrap()));
        assert!(agent.covers(&CapabilitySet::empty()));
        let need = CapabilitySet::parse(["rust", "go"]).unwrap();
        assert!(!agent.covers(&need));
        assert_eq!(
            agent.missing(&need),
            vec![&Capability::parse("go").unwrap()]
        );
        assert_eq!(
            CapabilitySet::parse(["b", "a", "b"]).unwrap().to_string(),
            "a,b"
        );
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(DurationMs::parse("90s").unwrap().as_millis(), 90_000);
        assert_eq!(DurationMs::parse("1h30m").unwrap().as_millis(), 5_400_000);
        assert_eq!(DurationMs::parse("250ms").unwrap().to_string(), "250ms");
        assert_eq!(DurationMs::parse("1h30m").unwrap().to_string(), "1h30m");
        for bad in [
            "",
            "10",
            "s",
            "5x",
            "0s",
            "31d",
            "99999999999999999999s",
            "-1s",
        ] {
            assert!(DurationMs::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_239_198_123).to_rfc3339(),
            "2026-11-21T05:33:18.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn keywords_round_trip_and_list_choices() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()).unwrap(), *p);
            assert_eq!(Priority::from_rank(p.rank()), Some(*p));
        }
        assert!(Priority::Urgent > Priority::High);
        let e = Risk::parse("huge").unwrap_err();
        assert!(e.reason.contains("low, medium, high"));
        assert_eq!(
            AdapterKind::parse("claude-code").unwrap(),
            AdapterKind::ClaudeCode
        );
    }

    #[test]
    fn only_a_simulated_agent_starts_when_assigned() {
        let starting: Vec<AdapterKind> = AdapterKind::ALL
            .iter()
            .copied()
            .filter(|a| a.starts_when_assigned())
            .collect();
        assert_eq!(starting, vec![AdapterKind::Sim]);
    }

    #[test]
    fn counts_are_bounded() {
        assert!(Slots::new(0).is_err());
        assert!(Slots::new(257).is_err());
        assert_eq!(Slots::default().get(), 1);
        assert_eq!(MaxAttempts::default().get(), 3);
    }
}
