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
use maos_plans::diagnostics::{Problem, shorten};
use maos_plans::toml_doc::{Doc, Entry, Node, NodeKind, get};

const TOP_KEYS: &[&str] = &["agent"];
const AGENT_KEYS: &[&str] = &[
    "name",
    "adapter",
    "capabilities",
    "tier",
    "slots",
    "command",
    "args",
    "prompt_via",
    "env",
    "timeout",
    "limits",
    "model",
    "base_url",
    "api_key_env",
    "max_steps",
    "tool_calls",
    "price",
    "permissions",
    "skip_permissions",
    "verify",
    "delay",
    "fail_every",
];
const LIMIT_KEYS: &[&str] = &["cpu_seconds", "memory_mib", "open_files", "processes"];
const PRICE_KEYS: &[&str] = &["input", "output", "cached_input"];
const PERMISSION_KEYS: &[&str] = &["deny", "ask", "allow"];

/// What the file asks to register, or every problem found in it (each at its line and column,
/// in file order).
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<RegisterAgent>, Vec<Problem>> {
    let (mut doc, root) = Doc::read(path, text);
    let mut out = Vec::new();
    if let NodeKind::Table(top) = &root.kind {
        doc.unknown_keys(top, TOP_KEYS, "at the top of the agents file");
        let agents = get(top, "agent")
            .map(|n| doc.tables("agent", n))
            .unwrap_or_default();
        if agents.is_empty() && doc.count() == 0 {
            doc.add(
                &(0..0),
                "no agents: add one or more [[agent]] tables (docs/agents.md shows the format)",
            );
        }
        let mut seen: Vec<(&str, &Node)> = Vec::new();
        for (entries, node) in agents {
            if let Some(name) = get(entries, "name")
                && let NodeKind::Str(n) = &name.kind
            {
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                    let first = doc.place(&first.span);
                    doc.add(
                        &name.span,
                        format!("the agent name {:?} is already used at {first}", shorten(n)),
                    );
                }
                seen.push((n, name));
            }
            if let Some(mut cmd) = agent(&mut doc, entries, node) {
                cmd.command = cmd.command.map(|c| relative_to(path, &c));
                out.push(cmd);
            }
        }
    }
    let problems = doc.finish();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
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

/// A string value parsed by a domain constructor.
fn parse_str<T, E: std::fmt::Display>(
    doc: &mut Doc<'_>,
    entries: &[Entry],
    key: &str,
    example: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<Option<T>> {
    match get(entries, key) {
        None => Some(None),
        Some(node) => {
            let s = doc.string(key, node, example)?;
            doc.parsed(node, parse(s)).map(Some)
        }
    }
}

/// A string value taken as it is.
fn plain(doc: &mut Doc<'_>, entries: &[Entry], key: &str, example: &str) -> Option<String> {
    let node = get(entries, key)?;
    doc.string(key, node, example).map(str::to_owned)
}

/// A list of strings, each parsed by a domain constructor.
fn parse_list<T, E: std::fmt::Display>(
    doc: &mut Doc<'_>,
    entries: &[Entry],
    key: &str,
    example: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Vec<T> {
    let Some(node) = get(entries, key) else {
        return Vec::new();
    };
    doc.strings(key, node, example)
        .into_iter()
        .filter_map(|(s, item)| doc.parsed(item, parse(s)))
        .collect()
}

/// A whole number from `min` to `max`.
fn count(doc: &mut Doc<'_>, entries: &[Entry], key: &str, min: i64, max: i64) -> Option<u64> {
    let node = get(entries, key)?;
    doc.whole(key, node, min, max)
        .and_then(|n| u64::try_from(n).ok())
}

/// A resource limit: a whole number in range, or "unlimited" (which lifts the default).
fn limit(doc: &mut Doc<'_>, entries: &[Entry], key: &str, min: i64, max: i64) -> Option<u64> {
    match get(entries, key).map(|n| &n.kind) {
        Some(NodeKind::Str(s)) if s == "unlimited" => Some(ResourceLimits::UNLIMITED),
        _ => count(doc, entries, key, min, max),
    }
}

/// An amount of dollars: a string ("1.25") or a number.
fn dollars(doc: &mut Doc<'_>, entries: &[Entry], key: &str) -> Option<Option<Usd>> {
    let Some(node) = get(entries, key) else {
        return Some(None);
    };
    let raw = match &node.kind {
        NodeKind::Str(s) => s.clone(),
        NodeKind::Int(n) => n.to_string(),
        NodeKind::Float(x) => x.to_string(),
        _ => {
            doc.wrong_type(
                key,
                node,
                "an amount of dollars per million tokens",
                "\"1.25\"",
            );
            return None;
        }
    };
    doc.parsed(node, Usd::parse(&raw)).map(Some)
}

/// One `[[agent]]` table, or `None` with its problems recorded.
fn agent(doc: &mut Doc<'_>, e: &[Entry], node: &Node) -> Option<RegisterAgent> {
    let before = doc.count();
    doc.unknown_keys(e, AGENT_KEYS, "in [[agent]]");
    for (key, example) in [("name", "\"claude-1\""), ("adapter", "\"claude-code\"")] {
        if get(e, key).is_none() {
            doc.missing(&node.span, key, "this [[agent]]", example);
        }
    }
    let name = parse_str(doc, e, "name", "\"claude-1\"", AgentName::parse);
    let adapter = parse_str(doc, e, "adapter", "\"claude-code\"", AdapterKind::parse);
    let capabilities = parse_list(
        doc,
        e,
        "capabilities",
        "[\"rust\", \"test\"]",
        Capability::parse,
    );
    let tier = parse_str(doc, e, "tier", "\"tactical\"", Tier::parse);
    let slots =
        count(doc, e, "slots", 1, 256).and_then(|n| Slots::new(u32::try_from(n).ok()?).ok());
    let command = plain(doc, e, "command", "\"claude\"");
    let args = get(e, "args").map_or_else(Vec::new, |n| {
        doc.strings("args", n, "[\"--verbose\"]")
            .into_iter()
            .map(|(s, _)| s.to_owned())
            .collect()
    });
    let prompt_via = parse_str(doc, e, "prompt_via", "\"stdin\"", PromptVia::parse);
    let env = parse_list(doc, e, "env", "[\"ANTHROPIC_API_KEY\"]", EnvName::parse);
    let timeout = parse_str(doc, e, "timeout", "\"30m\"", DurationMs::parse);
    let limits =
        match get(e, "limits").and_then(|n| doc.table("limits", n, "{ cpu_seconds = 600 }")) {
            None => ResourceLimits::default(),
            Some(l) => {
                doc.unknown_keys(l, LIMIT_KEYS, "in limits");
                ResourceLimits {
                    cpu_seconds: limit(doc, l, "cpu_seconds", 1, 31_536_000),
                    memory_mib: limit(doc, l, "memory_mib", 16, 16_777_216),
                    open_files: limit(doc, l, "open_files", 16, 1_048_576),
                    processes: limit(doc, l, "processes", 1, 1_048_576),
                }
            }
        };
    let model = plain(doc, e, "model", "\"sonnet\"");
    let base_url = plain(doc, e, "base_url", "\"http://localhost:11434/v1\"");
    let api_key_env = parse_str(doc, e, "api_key_env", "\"OPENAI_API_KEY\"", EnvName::parse);
    let max_steps = count(doc, e, "max_steps", 1, 10_000).and_then(|n| u32::try_from(n).ok());
    let tool_calls = get(e, "tool_calls").and_then(|n| doc.boolean("tool_calls", n));
    let price = match get(e, "price").map(|n| {
        (
            n,
            doc.table("price", n, "{ input = \"3\", output = \"15\" }"),
        )
    }) {
        None => Some(None),
        Some((_, None)) => None,
        Some((n, Some(p))) => {
            doc.unknown_keys(p, PRICE_KEYS, "in price");
            for key in ["input", "output"] {
                if get(p, key).is_none() {
                    doc.missing(&n.span, key, "price", "\"3\"");
                }
            }
            let input = dollars(doc, p, "input");
            let output = dollars(doc, p, "output");
            let cached_input = dollars(doc, p, "cached_input");
            match (input, output, cached_input) {
                (Some(Some(input)), Some(Some(output)), Some(cached_input)) => Some(Some(Price {
                    input,
                    cached_input,
                    output,
                })),
                _ => None,
            }
        }
    };
    let permissions = match get(e, "permissions")
        .and_then(|n| doc.table("permissions", n, "{ allow = [\"Read\"] }"))
    {
        None => PermissionRules::default(),
        Some(p) => {
            doc.unknown_keys(p, PERMISSION_KEYS, "in permissions");
            let example = "[\"Bash(git diff:*)\"]";
            PermissionRules {
                deny: parse_list(doc, p, "deny", example, PermissionRule::parse),
                ask: parse_list(doc, p, "ask", example, PermissionRule::parse),
                allow: parse_list(doc, p, "allow", example, PermissionRule::parse),
            }
        }
    };
    let skip_permissions = get(e, "skip_permissions")
        .and_then(|n| doc.boolean("skip_permissions", n))
        .unwrap_or(false);
    let verify = plain(doc, e, "verify", "\"cargo test\"");
    let delay = parse_str(doc, e, "delay", "\"2s\"", DurationMs::parse);
    let fail_every = count(doc, e, "fail_every", 1, 1_000_000).and_then(|n| u32::try_from(n).ok());
    if let Some(Some(AdapterKind::Command)) = adapter
        && command.as_deref().is_none_or(|c| c.trim().is_empty())
        && let Some(node) = get(e, "adapter")
    {
        doc.add(
            &node.span,
            "an agent with adapter `command` needs the program to run: add command = \"...\"",
        );
    }
    if doc.count() > before {
        return None;
    }
    let settings = AgentSettings {
        args,
        prompt_via: prompt_via.flatten().unwrap_or_default(),
        env,
        timeout: timeout.flatten(),
        limits,
        model,
        base_url,
        api_key_env: api_key_env.flatten(),
        max_steps,
        tool_calls,
        price: price.flatten(),
        permissions,
        skip_permissions,
        verify,
        delay: delay.flatten(),
        fail_every,
    };
    Some(RegisterAgent {
        name: name.flatten()?,
        adapter: adapter.flatten()?,
        capabilities: capabilities.into_iter().collect::<CapabilitySet>(),
        tier: tier.flatten().unwrap_or(Tier::Tactical),
        slots: if get(e, "slots").is_some() {
            slots?
        } else {
            Slots::default()
        },
        command,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem of the file `a.toml` holding `text`, as shown.
    fn failures(text: &str) -> Result<Vec<RegisterAgent>, Vec<String>> {
        let path = Path::new("a.toml");
        parse(path, text).map_err(|p| maos_plans::diagnostics::render(path, &p))
    }

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
limits = { cpu_seconds = 600, memory_mib = 2048, processes = "unlimited" }
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
            agents[1].settings.limits.processes,
            Some(ResourceLimits::UNLIMITED)
        );
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
        let problems = failures(bad).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("a.toml:2:8: invalid agent name"), "{all}");
        assert!(
            all.contains("a.toml:3:11: invalid adapter \"gpt\""),
            "{all}"
        );
        assert!(
            all.contains("a.toml:4:9: `slots` must be a whole number from 1 to 256, not 0"),
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
        let problems =
            failures("[[agent]]\nname = \"a\"\nadapter = \"sim\"\nslot = 2\n").unwrap_err();
        assert_eq!(
            problems,
            vec!["a.toml:4:1: unknown key `slot` in [[agent]]; did you mean `slots`?"]
        );
        let problems = failures("[[agent]\n").unwrap_err();
        assert!(problems[0].starts_with("a.toml:1:"), "{problems:?}");
        assert!(problems[0].contains("TOML syntax error"), "{problems:?}");
        let problems = failures("").unwrap_err();
        assert!(problems[0].contains("no agents"), "{problems:?}");
    }

    #[test]
    fn every_problem_is_found_at_once_in_plain_words() {
        // serde stopped at the first of these, and said "invalid type: sequence, expected a
        // string".
        let text = "[[agent]]\nname = \"a\"\nadapter = \"command\"\ncommand = [\"claude\"]\n\
                    slots = -1\ncapabilites = [\"rust\"]\nlimits = 5\n\
                    price = { input = \"1\" }\ntool_calls = \"yes\"\n\n\
                    [[agent]]\nadapter = \"sim\"\nenv = [\"OK\", 3]\n";
        let problems = failures(text).unwrap_err();
        assert_eq!(
            problems,
            vec![
                "a.toml:3:11: an agent with adapter `command` needs the program to run: add command = \"...\"",
                "a.toml:4:11: `command` must be a string, like command = \"claude\"; not a list",
                "a.toml:5:9: `slots` must be a whole number from 1 to 256, not -1",
                "a.toml:6:1: unknown key `capabilites` in [[agent]]; did you mean `capabilities`?",
                "a.toml:7:10: `limits` must be a table, like limits = { cpu_seconds = 600 }; not the number 5",
                "a.toml:8:9: price has no `output`; add one, like output = \"3\"",
                "a.toml:9:14: `tool_calls` must be true or false, like tool_calls = true; not the string \"yes\"",
                "a.toml:11:1: this [[agent]] has no `name`; add one, like name = \"claude-1\"",
                "a.toml:13:14: each item of `env` must be a string, like env = [\"ANTHROPIC_API_KEY\"]; not the number 3",
            ]
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let text = format!("[[agent]]\nname = \"a\"\nadapter = \"sim\"\n{long} = 1\n");
        let problems = failures(&text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("…(9940 more characters)"),
            "{problems:?}"
        );
        assert!(problems[0].len() < 400, "{problems:?}");
    }
}
