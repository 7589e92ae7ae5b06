//! How the daemon runs an agent: the adapter-specific settings a registration carries (program
//! arguments, how the prompt is passed, environment, limits, model endpoint, prices).
//!
//! Secrets are never stored: a setting names the environment variable that holds one, and the
//! daemon reads it when it starts an attempt.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;
use crate::policy::permission::PermissionRules;
use crate::run::{Usage, Usd};
use crate::values::{DurationMs, keyword_enum};

keyword_enum!(
    /// How a `command` agent receives its prompt.
    #[derive(Default)]
    PromptVia, "prompt delivery" {
        /// Written to the program's standard input, which is then closed.
        #[default]
        Stdin => "stdin",
        /// Written to a file whose path is in `MAOS_PROMPT_FILE`.
        File => "file",
        /// Substituted for `{prompt}` in the arguments.
        Arg => "arg",
    }
);

/// The name of an environment variable: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvName(String);

impl EnvName {
    /// Parses a variable name.
    pub fn parse(raw: &str) -> Result<EnvName, ValueError> {
        const WHAT: &str = "environment variable name";
        let ok_first = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !ok_first
            || raw.len() > 128
            || !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ValueError::new(
                WHAT,
                raw,
                "use letters, digits and '_', not starting with a digit (for example OPENAI_API_KEY)",
            ));
        }
        Ok(EnvName(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EnvName> for String {
    fn from(v: EnvName) -> String {
        v.0
    }
}

impl TryFrom<String> for EnvName {
    type Error = ValueError;
    fn try_from(s: String) -> Result<EnvName, ValueError> {
        EnvName::parse(&s)
    }
}

/// Operating-system limits on an agent's processes (each applies to every process of the
/// attempt). `None` is the default of [`ResourceLimits::DEFAULT`]; [`ResourceLimits::UNLIMITED`]
/// lifts a limit (the process keeps the daemon's own); any other value is the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceLimits {
    /// CPU time in seconds (RLIMIT_CPU).
    pub cpu_seconds: Option<u64>,
    /// Address space in MiB (RLIMIT_AS).
    pub memory_mib: Option<u64>,
    /// Open files (RLIMIT_NOFILE).
    pub open_files: Option<u64>,
    /// Processes of the daemon's user (RLIMIT_NPROC).
    pub processes: Option<u64>,
}

impl ResourceLimits {
    /// The value that lifts a limit.
    pub const UNLIMITED: u64 = u64::MAX;

    /// The limits of an agent that sets none (docs/agents.md explains each): 4 hours of CPU
    /// time per process; 64 GiB of address space (generous on purpose: a Node.js agent
    /// reserves about 10 GiB for each WebAssembly memory, so a tighter bound breaks Claude
    /// Code, while a runaway process still meets a ceiling); 4,096 open files; 16,384 processes
    /// of the user. A value above the daemon's own hard limit is lowered to it.
    pub const DEFAULT: ResourceLimits = ResourceLimits {
        cpu_seconds: Some(4 * 3600),
        memory_mib: Some(64 * 1024),
        open_files: Some(4096),
        processes: Some(16_384),
    };

    /// No limit at all (each lifted): what a verification command runs under, since it runs
    /// the project's own checks (sanitizers reserve terabytes of address space).
    pub const NONE: ResourceLimits = ResourceLimits {
        cpu_seconds: Some(Self::UNLIMITED),
        memory_mib: Some(Self::UNLIMITED),
        open_files: Some(Self::UNLIMITED),
        processes: Some(Self::UNLIMITED),
    };

    /// The limits that apply: each one set here, else its default; `None` where it is lifted.
    pub fn effective(self) -> ResourceLimits {
        let pick = |own: Option<u64>, default: Option<u64>| match own {
            None => default,
            Some(Self::UNLIMITED) => None,
            Some(v) => Some(v),
        };
        ResourceLimits {
            cpu_seconds: pick(self.cpu_seconds, Self::DEFAULT.cpu_seconds),
            memory_mib: pick(self.memory_mib, Self::DEFAULT.memory_mib),
            open_files: pick(self.open_files, Self::DEFAULT.open_files),
            processes: pick(self.processes, Self::DEFAULT.processes),
        }
    }
}

/// What a model costs, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input: Usd,
    /// Per million cached prompt tokens (the input price when absent).
    #[serde(default)]
    pub cached_input: Option<Usd>,
    /// Per million completion tokens.
    pub output: Usd,
}

impl Price {
    /// What `usage`'s tokens cost at this price (rounded up to the micro-dollar).
    pub fn cost(&self, usage: &Usage) -> Usd {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let fresh = usage.input_tokens - cached;
        let per_mtok =
            |tokens: u64, price: Usd| -> u128 { u128::from(tokens) * u128::from(price.micros()) };
        let total = per_mtok(fresh, self.input)
            + per_mtok(cached, self.cached_input.unwrap_or(self.input))
            + per_mtok(usage.output_tokens, self.output);
        let micros = total.div_ceil(1_000_000);
        Usd::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

/// How the daemon runs one agent. Every field has a default, so a registration names only what
/// differs; which fields an adapter reads is documented in `docs/agents.md`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Arguments: for `command` the whole argument list after the program (with `{prompt}`,
    /// `{prompt_file}`, `{task}`, `{attempt}` and `{workdir}` substituted); for the CLI adapters,
    /// extra arguments appended to MAOS's own.
    pub args: Vec<String>,
    /// How a `command` agent receives its prompt.
    pub prompt_via: PromptVia,
    /// Environment variables passed from the daemon's environment besides the allowlist (by
    /// name: this is how secrets reach an agent).
    pub env: Vec<EnvName>,
    /// How long one attempt may run before it is stopped (a task's own timeout wins).
    pub timeout: Option<DurationMs>,
    /// Operating-system limits on the agent's processes.
    pub limits: ResourceLimits,
    /// The model to ask for (`claude-code`, `codex`, `openai`, `ollama`).
    pub model: Option<String>,
    /// The endpoint of an `openai` or `ollama` agent, up to `/v1`.
    pub base_url: Option<String>,
    /// The variable that holds the API key of an `openai` agent.
    pub api_key_env: Option<EnvName>,
    /// Model requests per attempt of an `openai` or `ollama` agent.
    pub max_steps: Option<u32>,
    /// False for models without tool calling: fenced code blocks naming a file become writes.
    pub tool_calls: Option<bool>,
    /// Token prices, for agents that do not report a cost themselves.
    pub price: Option<Price>,
    /// Which tool calls a `claude-code` agent may make: deny, then ask, then allow rules, first
    /// match wins; a call no rule matches needs a person.
    pub permissions: PermissionRules,
    /// Runs Claude Code with `--dangerously-skip-permissions` instead of asking MAOS: only when
    /// a person set it explicitly.
    pub skip_permissions: bool,
    /// The verification command for this agent's tasks when neither the task nor its
    /// orchestration names one.
    pub verify: Option<String>,
    /// How long a `sim` agent takes per attempt.
    pub delay: Option<DurationMs>,
    /// A `sim` agent fails every n-th attempt it runs (for chaos tests); none never fails.
    pub fail_every: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_limits_take_the_defaults_and_unlimited_lifts_them() {
        assert_eq!(
            ResourceLimits::default().effective(),
            ResourceLimits::DEFAULT
        );
        let own = ResourceLimits {
            cpu_seconds: Some(60),
            memory_mib: Some(ResourceLimits::UNLIMITED),
            open_files: None,
            processes: Some(ResourceLimits::UNLIMITED),
        };
        assert_eq!(
            own.effective(),
            ResourceLimits {
                cpu_seconds: Some(60),
                memory_mib: None,
                open_files: ResourceLimits::DEFAULT.open_files,
                processes: None,
            }
        );
    }

    #[test]
    fn env_names_are_checked() {
        assert!(EnvName::parse("OPENAI_API_KEY").is_ok());
        assert!(EnvName::parse("_x1").is_ok());
        for bad in ["", "1X", "A-B", "A B", "Ä"] {
            assert!(EnvName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prices_cost_tokens_with_the_cached_rate() {
        let price = Price {
            input: Usd::parse("1.25").unwrap(),
            cached_input: Some(Usd::parse("0.125").unwrap()),
            output: Usd::parse("10").unwrap(),
        };
        let usage = Usage {
            input_tokens: 1_000_000,
            cached_input_tokens: 400_000,
            output_tokens: 100_000,
            cost: Usd::ZERO,
        };
        // 600k fresh at 1.25 = 0.75; 400k cached at 0.125 = 0.05; 100k out at 10 = 1.00.
        assert_eq!(price.cost(&usage), Usd::parse("1.80").unwrap());
        let no_cache = Price {
            cached_input: None,
            ..price
        };
        assert_eq!(no_cache.cost(&usage), Usd::parse("2.25").unwrap());
    }

    #[test]
    fn settings_default_when_fields_are_missing() {
        let s = AgentSettings::default();
        assert_eq!(s.prompt_via, PromptVia::Stdin);
        assert!(s.env.is_empty());
        assert!(!s.skip_permissions);
    }
}
