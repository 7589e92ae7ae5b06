//! The data directory's `config.toml` (optional; docs/orchestrations.md): how failed attempts
//! are retried, when an agent's circuit breaker drains it, how large briefings may be, the
//! routing rules for tasks that name no capabilities, and whether plans need a person's approval.
//!
//! ```toml
//! approve_plans = "ask"        # ask (the default) | auto
//! briefing_tokens = 8000       # 0: no limit
//!
//! [retry]
//! backoff = true               # false: retry at once
//! base = "2s"                  # the delay after the first failure
//! factor = 2                   # each further failure multiplies it
//! cap = "5m"                   # the longest delay
//! jitter_percent = 20          # ± this share of the delay
//!
//! [circuit_breaker]
//! threshold = 3                # failures in a row that drain an agent; 0: never
//!
//! [[route]]                    # first match wins
//! pattern = "test|spec"        # words of the title or prompt, `*` as a wildcard, `|` between
//! capabilities = ["test"]
//! tier = "tactical"            # optional
//! ```

use std::path::Path;

use maos_application::{FailurePolicy, ServiceConfig};
use maos_domain::policy::retry::{CircuitBreaker, RetryPolicy};
use maos_domain::policy::routing::{RoutePattern, RouteRule};
use maos_domain::{Capability, CapabilitySet, DurationMs, Tier};
use serde::Deserialize;

use crate::error::{CliError, Kind};
use crate::input::{FileKind, read_existing};

/// The file's name in the data directory.
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// Whether `maos orchestrate run` asks before it creates anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ApprovePlans {
    /// Ask on the terminal (refuse without one) unless --yes.
    #[default]
    Ask,
    /// Never ask.
    Auto,
}

/// The settings of a data directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    pub(crate) approve_plans: ApprovePlans,
    pub(crate) service: ServiceConfig,
    pub(crate) routes: Vec<RouteRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    approve_plans: Option<String>,
    briefing_tokens: Option<u32>,
    retry: Option<RawRetry>,
    circuit_breaker: Option<RawBreaker>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    backoff: Option<bool>,
    base: Option<String>,
    factor: Option<u32>,
    cap: Option<String>,
    jitter_percent: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    threshold: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    pattern: String,
    capabilities: Vec<String>,
    tier: Option<String>,
}

impl Config {
    /// The configuration of the data directory `dir`: its `config.toml`, or the defaults when
    /// there is none.
    pub(crate) fn load(dir: &Path) -> Result<Config, CliError> {
        let path = dir.join(CONFIG_FILE);
        match read_existing(&path, FileKind::Config) {
            Ok(Some(text)) => Config::parse(&path, &text),
            Ok(None) => Ok(Config::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Parses the text of a configuration file, every problem reported at once.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, CliError> {
        let bad = |problems: Vec<String>| {
            CliError::new(
                Kind::InvalidInput,
                format!(
                    "{} has {} problem{}:\n  {}",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    problems.join("\n  ")
                ),
            )
            .with_hint("fix the file (docs/orchestrations.md, \"Configuration\"), or remove it to use the defaults")
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = text.get(..s.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("{line}:{col}: ")
                })
                .unwrap_or_default();
            bad(vec![format!("{at}{}", e.message())])
        })?;
        let mut problems = Vec::new();
        let mut config = Config::default();
        match raw.approve_plans.as_deref() {
            None | Some("ask") => {}
            Some("auto") => config.approve_plans = ApprovePlans::Auto,
            Some(other) => problems.push(format!(
                "approve_plans = {other:?}: it is \"ask\" or \"auto\""
            )),
        }
        if let Some(n) = raw.briefing_tokens {
            config.service.briefing_tokens = n;
        }
        if let Some(r) = raw.retry {
            let mut policy = RetryPolicy::default();
            let mut duration = |what: &str, raw: Option<String>, into: &mut DurationMs| {
                if let Some(raw) = raw {
                    match DurationMs::parse(&raw) {
                        Ok(d) => *into = d,
                        Err(e) => problems.push(format!("retry.{what} = {raw:?}: {}", e.reason)),
                    }
                }
            };
            duration("base", r.base, &mut policy.base);
            duration("cap", r.cap, &mut policy.cap);
            if let Some(f) = r.factor {
                policy.factor = f;
            }
            if let Some(j) = r.jitter_percent {
                if j > 100 {
                    problems.push(format!("retry.jitter_percent = {j}: at most 100"));
                }
                policy.jitter_percent = j;
            }
            config.service.failure.backoff = r.backoff.unwrap_or(true).then_some(policy);
        }
        if let Some(b) = raw.circuit_breaker {
            config.service.failure = FailurePolicy {
                breaker: CircuitBreaker {
                    threshold: b.threshold,
                },
                ..config.service.failure
            };
        }
        for (i, r) in raw.route.into_iter().enumerate() {
            let n = i + 1;
            let pattern = RoutePattern::parse(&r.pattern)
                .map_err(|e| {
                    problems.push(format!("route {n}: pattern {:?}: {}", r.pattern, e.reason))
                })
                .ok();
            let mut caps = Vec::new();
            for c in &r.capabilities {
                match Capability::parse(c) {
                    Ok(c) => caps.push(c),
                    Err(e) => problems.push(format!("route {n}: capability {c:?}: {}", e.reason)),
                }
            }
            if r.capabilities.is_empty() {
                problems.push(format!(
                    "route {n}: it gives no capabilities; name at least one"
                ));
            }
            let tier = match r.tier.as_deref().map(Tier::parse).transpose() {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("route {n}: tier: {}", e.reason));
                    None
                }
            };
            if let Some(pattern) = pattern {
                config.routes.push(RouteRule::new(
                    pattern,
                    caps.into_iter().collect::<CapabilitySet>(),
                    tier,
                ));
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(bad(problems))
        }
    }
}
