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
//! [ui]                         # the web dashboard, served from the daemon's start
//! serve = true                 # false (the default): only when `maos ui` asks
//! address = "127.0.0.1"        # another address exposes it to the network (docs/dashboard.md)
//! port = 8787                  # the default: 8787, or the next free port after it
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
use maos_plans::diagnostics::{self, shorten};
use maos_plans::toml_doc::{Doc, Entry, NodeKind, get};

use crate::error::{self, CliError};
use crate::input::{FileKind, read_existing};

/// The file's name in the data directory.
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// The settings of a data directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    /// The service's settings; `approve_plans` among them: plans (a file's, a planner's) are
    /// approved without asking a person.
    pub(crate) service: ServiceConfig,
    pub(crate) routes: Vec<RouteRule>,
    /// `[ui]` with `serve = true`: the daemon serves the dashboard from its start, there.
    pub(crate) ui: Option<maos_ipc::UiRequest>,
}

const TOP_KEYS: &[&str] = &[
    "approve_plans",
    "briefing_tokens",
    "retry",
    "circuit_breaker",
    "ui",
    "route",
    "memory",
];
const MEMORY_KEYS: &[&str] = &["ephemeral_ttl"];
const UI_KEYS: &[&str] = &["serve", "address", "port"];
const RETRY_KEYS: &[&str] = &["backoff", "base", "factor", "cap", "jitter_percent"];
const BREAKER_KEYS: &[&str] = &["threshold"];
const ROUTE_KEYS: &[&str] = &["pattern", "capabilities", "tier"];

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

    /// Parses the text of a configuration file, every problem reported at once (each
    /// `file:line:column: message`).
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, CliError> {
        let (mut doc, root) = Doc::read(path, text);
        let mut config = Config::default();
        if let NodeKind::Table(top) = &root.kind {
            check(&mut doc, top, &mut config);
        }
        let problems = diagnostics::render(path, &doc.finish());
        match problems.len() {
            0 => Ok(config),
            _ => Err(CliError::new(
                error::FailureClass::InvalidInput,
                format!(
                    "{} has {} problem{}:\n  {}",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    problems.join("\n  ")
                ),
            )
            .with_hint(
                "fix the file (docs/orchestrations.md, \"Configuration\"), or remove it to use the defaults",
            )),
        }
    }
}

/// Checks the top table, filling `config` with what is valid.
fn check(doc: &mut Doc<'_>, top: &[Entry], config: &mut Config) {
    doc.unknown_keys(top, TOP_KEYS, "at the top of config.toml");
    if let Some(node) = get(top, "approve_plans") {
        match doc.string("approve_plans", node, "\"ask\"") {
            None | Some("ask") => {}
            Some("auto") => config.service.approve_plans = true,
            Some(other) => doc.add(
                &node.span,
                format!(
                    "approve_plans = {:?}: it is \"ask\" or \"auto\"",
                    shorten(other)
                ),
            ),
        }
    }
    if let Some(n) = get(top, "briefing_tokens")
        .and_then(|node| doc.whole("briefing_tokens", node, 0, i64::from(u32::MAX)))
        .and_then(|n| u32::try_from(n).ok())
    {
        config.service.briefing_tokens = n;
    }
    if let Some(r) = get(top, "retry").and_then(|n| doc.table("retry", n, "{ base = \"2s\" }")) {
        doc.unknown_keys(r, RETRY_KEYS, "in [retry]");
        let mut policy = RetryPolicy::default();
        for (key, into) in [("base", &mut policy.base), ("cap", &mut policy.cap)] {
            if let Some(node) = get(r, key)
                && let Some(raw) = doc.string(key, node, "\"2s\"")
                && let Some(d) = doc.parsed(node, DurationMs::parse(raw))
            {
                *into = d;
            }
        }
        if let Some(f) = get(r, "factor")
            .and_then(|node| doc.whole("factor", node, 0, i64::from(u32::MAX)))
            .and_then(|n| u32::try_from(n).ok())
        {
            policy.factor = f;
        }
        if let Some(j) = get(r, "jitter_percent")
            .and_then(|node| doc.whole("jitter_percent", node, 0, 100))
            .and_then(|n| u8::try_from(n).ok())
        {
            policy.jitter_percent = j;
        }
        let backoff = get(r, "backoff")
            .and_then(|node| doc.boolean("backoff", node))
            .unwrap_or(true);
        config.service.failure.backoff = backoff.then_some(policy);
    }
    if let Some((node, b)) = get(top, "circuit_breaker")
        .map(|n| (n, doc.table("circuit_breaker", n, "{ threshold = 3 }")))
        && let Some(b) = b
    {
        doc.unknown_keys(b, BREAKER_KEYS, "in [circuit_breaker]");
        match get(b, "threshold") {
            None => doc.missing(&node.span, "threshold", "[circuit_breaker]", "3"),
            Some(t) => {
                if let Some(threshold) = doc
                    .whole("threshold", t, 0, i64::from(u32::MAX))
                    .and_then(|n| u32::try_from(n).ok())
                {
                    config.service.failure = FailurePolicy {
                        breaker: CircuitBreaker { threshold },
                        ..config.service.failure
                    };
                }
            }
        }
    }
    if let Some(u) = get(top, "ui").and_then(|n| doc.table("ui", n, "{ serve = true }")) {
        doc.unknown_keys(u, UI_KEYS, "in [ui]");
        let serve = get(u, "serve")
            .and_then(|node| doc.boolean("serve", node))
            .unwrap_or(false);
        let mut request = maos_ipc::UiRequest::default();
        if let Some(node) = get(u, "address")
            && let Some(raw) = doc.string("address", node, "\"127.0.0.1\"")
        {
            match raw.parse::<std::net::IpAddr>() {
                Ok(a) => request.address = Some(a),
                Err(_) => doc.add(
                    &node.span,
                    format!(
                        "address = {:?}: it is an IP address, such as \"127.0.0.1\" or \"::1\"",
                        shorten(raw)
                    ),
                ),
            }
        }
        if let Some(p) = get(u, "port")
            .and_then(|node| doc.whole("port", node, 1, i64::from(u16::MAX)))
            .and_then(|n| u16::try_from(n).ok())
        {
            request.port = Some(p);
        }
        config.ui = serve.then_some(request);
    }
    if let Some(m) =
        get(top, "memory").and_then(|n| doc.table("memory", n, "{ ephemeral_ttl = \"7d\" }"))
    {
        doc.unknown_keys(m, MEMORY_KEYS, "in [memory]");
        if let Some(node) = get(m, "ephemeral_ttl")
            && let Some(raw) = doc.string("ephemeral_ttl", node, "\"7d\"")
            && let Some(d) = doc.parsed(node, DurationMs::parse(raw))
        {
            config.service.memory_ephemeral_ttl = d;
        }
    }
    let routes = get(top, "route")
        .map(|n| doc.tables("route", n))
        .unwrap_or_default();
    for (r, node) in routes {
        doc.unknown_keys(r, ROUTE_KEYS, "in [[route]]");
        let pattern = match get(r, "pattern") {
            None => {
                doc.missing(&node.span, "pattern", "this [[route]]", "\"test|spec\"");
                None
            }
            Some(p) => doc
                .string("pattern", p, "\"test|spec\"")
                .and_then(|raw| doc.parsed(p, RoutePattern::parse(raw))),
        };
        let caps: Vec<Capability> = match get(r, "capabilities") {
            None => {
                doc.missing(&node.span, "capabilities", "this [[route]]", "[\"test\"]");
                Vec::new()
            }
            Some(c) => {
                let items = doc.strings("capabilities", c, "[\"test\"]");
                if items.is_empty() && matches!(c.kind, NodeKind::Array(_)) {
                    doc.add(
                        &c.span,
                        "the route gives no capabilities; name at least one",
                    );
                }
                items
                    .into_iter()
                    .filter_map(|(raw, item)| doc.parsed(item, Capability::parse(raw)))
                    .collect()
            }
        };
        let tier = get(r, "tier").and_then(|t| {
            doc.string("tier", t, "\"tactical\"")
                .and_then(|raw| doc.parsed(t, Tier::parse(raw)))
        });
        if let Some(pattern) = pattern {
            config.routes.push(RouteRule::new(
                pattern,
                caps.into_iter().collect::<CapabilitySet>(),
                tier,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let e = Config::parse(Path::new("c.toml"), text).unwrap_err();
        e.message
            .lines()
            .skip(1)
            .map(|l| l.trim().to_owned())
            .collect()
    }

    #[test]
    fn a_good_file_sets_every_value() {
        let c = Config::parse(
            Path::new("c.toml"),
            "approve_plans = \"auto\"\nbriefing_tokens = 500\n[retry]\nbase = \"1s\"\n\
             factor = 3\ncap = \"1m\"\njitter_percent = 10\n[circuit_breaker]\nthreshold = 0\n\
             [[route]]\npattern = \"test\"\ncapabilities = [\"test\"]\ntier = \"strategic\"\n",
        )
        .unwrap();
        assert!(
            c.service.approve_plans,
            "approve_plans = \"auto\": plans, a file's or a planner's, are approved without asking"
        );
        assert_eq!(c.service.briefing_tokens, 500);
        let backoff = c.service.failure.backoff.unwrap();
        assert_eq!(backoff.base.as_millis(), 1000);
        assert_eq!(backoff.factor, 3);
        assert_eq!(backoff.jitter_percent, 10);
        assert_eq!(c.service.failure.breaker.threshold, 0);
        assert_eq!(c.routes.len(), 1);
        let off = Config::parse(Path::new("c.toml"), "[retry]\nbackoff = false\n").unwrap();
        assert!(off.service.failure.backoff.is_none());
        let m = Config::parse(Path::new("c.toml"), "[memory]\nephemeral_ttl = \"2h\"\n").unwrap();
        assert_eq!(m.service.memory_ephemeral_ttl.as_millis(), 2 * 3_600_000);
        assert_eq!(
            Config::default().service.memory_ephemeral_ttl.as_millis(),
            7 * 86_400_000
        );
    }

    #[test]
    fn a_bad_memory_section_is_reported() {
        let p = problems("[memory]\nephemeral_ttl = \"soon\"\nttl = 1\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("c.toml:2:17: invalid duration"), "{p:?}");
        assert!(p[1].contains("in [memory]"), "{p:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_place_and_key() {
        assert_eq!(
            problems(
                "approve_plans = \"sometimes\"\nbriefing = 1\n[retry]\nfactor = -2\nbackof = true\n\
                 [[route]]\ncapabilities = [\"test\", 1]\n"
            ),
            vec![
                "c.toml:1:17: approve_plans = \"sometimes\": it is \"ask\" or \"auto\"",
                "c.toml:2:1: unknown key `briefing` at the top of config.toml; the keys allowed here are approve_plans, briefing_tokens, retry, circuit_breaker, ui, route, memory",
                "c.toml:4:10: `factor` must be a whole number from 0 to 4294967295, not -2",
                "c.toml:5:1: unknown key `backof` in [retry]; did you mean `backoff`?",
                "c.toml:6:1: this [[route]] has no `pattern`; add one, like pattern = \"test|spec\"",
                "c.toml:7:25: each item of `capabilities` must be a string, like capabilities = [\"test\"]; not the number 1",
            ]
        );
    }

    #[test]
    fn a_route_without_capabilities_and_a_wrong_type_of_section() {
        assert_eq!(
            problems("retry = 5\n[[route]]\npattern = \"x\"\ncapabilities = []\n"),
            vec![
                "c.toml:1:9: `retry` must be a table, like retry = { base = \"2s\" }; not the number 5",
                "c.toml:4:16: the route gives no capabilities; name at least one",
            ]
        );
    }
}
