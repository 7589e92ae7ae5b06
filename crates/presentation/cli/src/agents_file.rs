//! The agents file of `maos agent register --from-file` (TOML, documented in docs/agents.md):
//! parsed and checked in full, with every problem reported at once by file, line and column,
//! before a single agent is registered.

use std::path::Path;

use maos_application::RegisterAgent;
use maos_domain::policy::permission::{PermissionRule, PermissionRules};
use maos_domain::{
    AdapterKind, AgentName, AgentSettings, Capability, CapabilitySet, DurationMs, EnvName, Price,
    PromptVia, ResourceLimits, Slots, Tier, Usd,
};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    agent: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Spanned<String>,
    adapter: Spanned<String>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    tier: Option<Spanned<String>>,
    slots: Option<Spanned<i64>>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    prompt_via: Option<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    limits: Option<Limits>,
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<Spanned<String>>,
    max_steps: Option<Spanned<i64>>,
    tool_calls: Option<bool>,
    price: Option<PriceEntry>,
    permissions: Option<Permissions>,
    #[serde(default)]
    skip_permissions: bool,
    verify: Option<String>,
    delay: Option<Spanned<String>>,
    fail_every: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    cpu_seconds: Option<Spanned<i64>>,
    memory_mib: Option<Spanned<i64>>,
    open_files: Option<Spanned<i64>>,
    processes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    input: Spanned<String>,
    output: Spanned<String>,
    cached_input: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Permissions {
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    ask: Vec<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

/// Collects problems with their place in the file.
struct Problems<'a> {
    path: &'a Path,
    text: &'a str,
    found: Vec<String>,
}

impl Problems<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", self.path.display())
    }

    fn add(&mut self, span: std::ops::Range<usize>, message: impl std::fmt::Display) {
        let place = self.at(span);
        self.found.push(format!("{place}: {message}"));
    }

    /// Parses a spanned value, recording the problem when it does not parse.
    fn parse<T, E: std::fmt::Display>(
        &mut self,
        value: &Spanned<String>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(value.span(), e);
                None
            }
        }
    }

    fn count(&mut self, value: &Spanned<i64>, what: &str, min: i64, max: i64) -> Option<u64> {
        let n = *value.get_ref();
        if (min..=max).contains(&n) {
            u64::try_from(n).ok()
        } else {
            self.add(
                value.span(),
                format!("{what} must be a whole number from {min} to {max}, not {n}"),
            );
            None
        }
    }
}

/// What the file asks to register, or every problem found in it.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<RegisterAgent>, Vec<String>> {
    let file: AgentsFile = toml::from_str(text).map_err(|e| {
        let place = e.span().map_or_else(
            || path.display().to_string(),
            |span| {
                Problems {
                    path,
                    text,
                    found: Vec::new(),
                }
                .at(span)
            },
        );
        vec![format!("{place}: {}", e.message().trim_end())]
    })?;
    let mut problems = Problems {
        path,
        text,
        found: Vec::new(),
    };
    if file.agent.is_empty() {
        problems.found.push(format!(
            "{}: no agents: add one or more [[agent]] tables (docs/agents.md shows the format)",
            path.display()
        ));
    }
    let mut seen: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut out = Vec::new();
    for entry in &file.agent {
        if let Some((_, first)) = seen.iter().find(|(n, _)| n == entry.name.get_ref()) {
            let first = problems.at(first.clone());
            problems.add(
                entry.name.span(),
                format!(
                    "the agent name {:?} is already used at {first}",
                    entry.name.get_ref()
                ),
            );
        }
        seen.push((entry.name.get_ref().clone(), entry.name.span()));
        if let Some(mut cmd) = entry_to_command(entry, &mut problems) {
            cmd.command = cmd.command.map(|c| relative_to(path, &c));
            out.push(cmd);
        }
    }
    if problems.found.is_empty() {
        Ok(out)
    } else {
        Err(problems.found)
    }
}

/// A command whose program is a relative path (`agents/scribe.sh`, not a bare name looked up
/// in `PATH`) names a file beside the agents file: it becomes absolute, since agents run in
/// their task's worktree.
fn relative_to(file: &Path, command: &str) -> String {
    let trimmed = command.trim_start();
    let program = trimmed.split_whitespace().next().unwrap_or("");
    if !program.contains('/') || program.starts_with('/') || program.starts_with('~') {
        return command.to_owned();
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let full = dir.join(program);
    let full = std::fs::canonicalize(&full).unwrap_or(full);
    let rest = &trimmed[program.len()..];
    format!("{}{rest}", full.display())
}

fn duration(p: &mut Problems<'_>, v: &Option<Spanned<String>>) -> Option<DurationMs> {
    v.as_ref().and_then(|v| p.parse(v, DurationMs::parse))
}

fn entry_to_command(e: &Entry, p: &mut Problems<'_>) -> Option<RegisterAgent> {
    let before = p.found.len();
    let name = p.parse(&e.name, AgentName::parse);
    let adapter = p.parse(&e.adapter, AdapterKind::parse);
    let capabilities: Vec<Capability> = e
        .capabilities
        .iter()
        .filter_map(|c| p.parse(c, Capability::parse))
        .collect();
    let tier = match &e.tier {
        Some(t) => p.parse(t, Tier::parse),
        None => Some(Tier::Tactical),
    };
    let slots = match &e.slots {
        Some(s) => p
            .count(s, "slots", 1, 256)
            .and_then(|n| Slots::new(u32::try_from(n).ok()?).ok()),
        None => Some(Slots::default()),
    };
    let prompt_via = match &e.prompt_via {
        Some(v) => p.parse(v, PromptVia::parse),
        None => Some(PromptVia::default()),
    };
    let env: Vec<EnvName> = e
        .env
        .iter()
        .filter_map(|n| p.parse(n, EnvName::parse))
        .collect();
    let limits = match &e.limits {
        None => ResourceLimits::default(),
        Some(l) => ResourceLimits {
            cpu_seconds: l
                .cpu_seconds
                .as_ref()
                .and_then(|v| p.count(v, "cpu_seconds", 1, 31_536_000)),
            memory_mib: l
                .memory_mib
                .as_ref()
                .and_then(|v| p.count(v, "memory_mib", 16, 16_777_216)),
            open_files: l
                .open_files
                .as_ref()
                .and_then(|v| p.count(v, "open_files", 16, 1_048_576)),
            processes: l
                .processes
                .as_ref()
                .and_then(|v| p.count(v, "processes", 1, 1_048_576)),
        },
    };
    let price = e.price.as_ref().and_then(|pr| {
        let input = p.parse(&pr.input, Usd::parse);
        let output = p.parse(&pr.output, Usd::parse);
        let cached_input = match &pr.cached_input {
            Some(c) => Some(p.parse(c, Usd::parse)?),
            None => None,
        };
        Some(Price {
            input: input?,
            cached_input,
            output: output?,
        })
    });
    let rules = |p: &mut Problems<'_>, list: &[Spanned<String>]| -> Vec<PermissionRule> {
        list.iter()
            .filter_map(|r| p.parse(r, PermissionRule::parse))
            .collect()
    };
    let permissions = match &e.permissions {
        None => PermissionRules::default(),
        Some(perms) => PermissionRules {
            deny: rules(p, &perms.deny),
            ask: rules(p, &perms.ask),
            allow: rules(p, &perms.allow),
        },
    };
    let settings = AgentSettings {
        args: e.args.clone(),
        prompt_via: prompt_via.unwrap_or_default(),
        env,
        timeout: duration(p, &e.timeout),
        limits,
        model: e.model.clone(),
        base_url: e.base_url.clone(),
        api_key_env: e
            .api_key_env
            .as_ref()
            .and_then(|n| p.parse(n, EnvName::parse)),
        max_steps: e
            .max_steps
            .as_ref()
            .and_then(|v| p.count(v, "max_steps", 1, 10_000))
            .and_then(|n| u32::try_from(n).ok()),
        tool_calls: e.tool_calls,
        price,
        permissions,
        skip_permissions: e.skip_permissions,
        verify: e.verify.clone(),
        delay: duration(p, &e.delay),
        fail_every: e
            .fail_every
            .as_ref()
            .and_then(|v| p.count(v, "fail_every", 1, 1_000_000))
            .and_then(|n| u32::try_from(n).ok()),
    };
    if adapter == Some(AdapterKind::Command)
        && e.command.as_deref().is_none_or(|c| c.trim().is_empty())
    {
        p.add(
            e.adapter.span(),
            "an agent with adapter `command` needs the program to run: add command = \"...\"",
        );
    }
    if p.found.len() > before {
        return None;
    }
    Some(RegisterAgent {
        name: name?,
        adapter: adapter?,
        capabilities: capabilities.into_iter().collect::<CapabilitySet>(),
        tier: tier?,
        slots: slots?,
        command: e.command.clone(),
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[agent]]
name = "claude-1"
adapter = "claude-code"
capabilities = ["rust", "test"]
slots = 2
model = "sonnet"
env = ["ANTHROPIC_API_KEY"]
timeout = "30m"
permissions = { allow = ["Read", "Bash(git diff:*)"], deny = ["Bash(rm:*)"] }

[[agent]]
name = "lint"
adapter = "command"
command = "cargo clippy"
prompt_via = "file"
limits = { cpu_seconds = 600, memory_mib = 2048 }
price = { input = "1.25", output = "10", cached_input = "0.125" }
"#;

    #[test]
    fn a_good_file_gives_every_agent() {
        let agents = parse(Path::new("agents.toml"), GOOD).unwrap();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0].name.as_str(), "claude-1");
        assert_eq!(agents[0].slots.get(), 2);
        assert_eq!(agents[0].settings.permissions.allow.len(), 2);
        assert_eq!(agents[0].settings.timeout.unwrap().as_millis(), 1_800_000);
        assert_eq!(agents[1].settings.prompt_via, PromptVia::File);
        assert_eq!(agents[1].settings.limits.memory_mib, Some(2048));
        assert_eq!(
            agents[1].settings.price.unwrap().cached_input,
            Some(Usd::from_micros(125_000))
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_column() {
        let bad = "[[agent]]\nname = \"Bad Name\"\nadapter = \"gpt\"\nslots = 0\n\n\
                   [[agent]]\nname = \"x\"\nadapter = \"command\"\ntimeout = \"soon\"\n\
                   permissions = { deny = [\"Bash(\"] }\n\n\
                   [[agent]]\nname = \"x\"\nadapter = \"sim\"\n";
        let problems = parse(Path::new("a.toml"), bad).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("a.toml:2:8: invalid agent name"), "{all}");
        assert!(
            all.contains("a.toml:3:11: invalid adapter \"gpt\""),
            "{all}"
        );
        assert!(
            all.contains("a.toml:4:9: slots must be a whole number from 1 to 256"),
            "{all}"
        );
        assert!(all.contains("a.toml:9:11: invalid duration"), "{all}");
        assert!(
            all.contains("a.toml:10:25: invalid permission rule"),
            "{all}"
        );
        assert!(all.contains("needs the program to run"), "{all}");
        assert!(
            all.contains("a.toml:13:8: the agent name \"x\" is already used at a.toml:7:8"),
            "{all}"
        );
        assert_eq!(problems.len(), 7, "{all}");
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_placed() {
        let problems = parse(
            Path::new("a.toml"),
            "[[agent]]\nname = \"a\"\nadapter = \"sim\"\nslot = 2\n",
        )
        .unwrap_err();
        assert!(
            problems[0].starts_with("a.toml:4:1: unknown field `slot`"),
            "{problems:?}"
        );
        let problems = parse(Path::new("a.toml"), "[[agent]\n").unwrap_err();
        assert!(problems[0].starts_with("a.toml:1:"), "{problems:?}");
        let problems = parse(Path::new("a.toml"), "").unwrap_err();
        assert!(problems[0].contains("no agents"), "{problems:?}");
    }
}
