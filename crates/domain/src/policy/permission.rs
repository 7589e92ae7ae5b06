//! The tool-permission policy: may an agent run this tool call?
//!
//! An agent's configuration carries three lists of [`PermissionRule`]s, `deny`, `ask` and
//! `allow` ([`PermissionRules`]). [`decide`] checks the deny rules first, then the ask rules, then
//! the allow rules; the first rule that matches decides. A call that no rule matches needs a
//! person ([`Decision::Ask`] without a rule).
//!
//! # Rule syntax (as in Claude Code's settings)
//!
//! - `Tool`: any use of that tool. A tool name is made of ASCII letters, digits, `_` and `-`;
//!   `*` stands for any run of those (`mcp__github__*`, or `*` for every tool).
//! - `Tool(pattern)`: a use of that tool whose *subject* matches the glob `pattern`. The subject
//!   is what the call acts on, chosen by the adapter: the command line of `Bash`, the path of
//!   `Read`/`Write`/`Edit`, `domain:<host>` of `WebFetch`. In the pattern `*` matches any run of
//!   characters except `/`, `**` matches any run including `/`, and every other character
//!   matches itself (there is no escape). A pattern ending in `:*` is a prefix:
//!   `Bash(git diff:*)` matches every command that starts with `git diff`.
//!
//! A rule with a pattern never matches a call that has no subject. Matching is case-sensitive
//! and works on bytes, so it never panics on any subject.
//!
//! # API
//!
//! - [`PermissionRule::parse`]`(&str) -> Result<PermissionRule, ValueError>`;
//!   [`PermissionRule::matches`]`(tool, subject) -> bool`; `tool()`, `pattern()`, `as_str()`.
//!   Display and serde give back the original string.
//! - [`PermissionRules`] `{ deny, ask, allow }`: serde as three lists of strings, each
//!   defaulting to empty.
//! - [`decide`]`(&PermissionRules, tool, subject) -> Decision`, and [`Decision`] with
//!   [`Decision::kind`] ([`DecisionKind`]) and [`Decision::rule`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;

const WHAT: &str = "permission rule";
const FORM: &str = "write `Tool` or `Tool(pattern)`, for example `Read`, `Bash(git diff:*)` or \
                    `Edit(src/**)`";

/// One rule: a tool name (with `*` wildcards) and an optional glob over the call's subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermissionRule {
    raw: String,
    /// Byte length of the tool-name part of `raw`.
    name_len: usize,
    pattern: Option<Pattern>,
}

/// A compiled subject pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    /// One byte, matched exactly.
    Byte(u8),
    /// Any run of bytes other than `/`.
    Star,
    /// Any run of bytes.
    AnyRun,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*'
}

impl PermissionRule {
    /// Parses a rule such as `Read`, `mcp__github__*`, `Bash(git diff:*)` or `Edit(src/**)`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let err = |reason: String| ValueError::new(WHAT, raw, reason);
        if raw.is_empty() {
            return Err(err(format!("it is empty; {FORM}")));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(err(format!(
                "it contains the control character {c:?}; keep a rule to one line of printable \
                 text"
            )));
        }
        let name_len = raw.find('(').unwrap_or(raw.len());
        let name = &raw[..name_len];
        if name.is_empty() {
            return Err(err(format!("the tool name before '(' is empty; {FORM}")));
        }
        if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
            let reason = if c == ')' {
                format!("it has a ')' without a matching '('; {FORM}")
            } else {
                format!(
                    "{c:?} is not allowed in a tool name; use ASCII letters, digits, '_', '-' \
                     and '*' as a wildcard, then optionally a pattern in parentheses: {FORM}"
                )
            };
            return Err(err(reason));
        }
        if name_len == raw.len() {
            return Ok(Self {
                raw: raw.to_owned(),
                name_len,
                pattern: None,
            });
        }
        // `raw[name_len]` is '(': the rest must be `(pattern)`, its parentheses balanced, and
        // the first '(' closed by the last character.
        let mut depth = 0usize;
        let mut closed_at = None;
        for (i, c) in raw[name_len..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.checked_sub(1).ok_or_else(|| {
                        err(format!("it has a ')' without a matching '('; {FORM}"))
                    })?;
                    if depth == 0 && closed_at.is_none() {
                        closed_at = Some(name_len + i);
                    }
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err(err(format!(
                "the '(' is never closed; end the pattern with ')': {FORM}"
            )));
        }
        if closed_at != Some(raw.len() - 1) {
            return Err(err(format!(
                "there is text after the closing ')'; the pattern ends the rule: {FORM}"
            )));
        }
        let pattern = &raw[name_len + 1..raw.len() - 1];
        if pattern.is_empty() {
            return Err(err(format!(
                "the pattern in the parentheses is empty; write `{name}` alone to match any use \
                 of the tool, or {FORM}"
            )));
        }
        Ok(Self {
            raw: raw.to_owned(),
            name_len,
            pattern: Some(Pattern::compile(pattern)),
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The tool-name part, possibly with `*` wildcards.
    pub fn tool(&self) -> &str {
        &self.raw[..self.name_len]
    }

    /// The pattern between the parentheses, if the rule has one.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern
            .as_ref()
            .map(|_| &self.raw[self.name_len + 1..self.raw.len() - 1])
    }

    /// True when this rule covers a call of `tool` on `subject`.
    pub fn matches(&self, tool: &str, subject: Option<&str>) -> bool {
        if !name_matches(self.tool().as_bytes(), tool.as_bytes()) {
            return false;
        }
        match (&self.pattern, subject) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(s)) => p.matches(s.as_bytes()),
        }
    }
}

/// Tool names: `*` matches any run of bytes, everything else itself.
fn name_matches(pattern: &[u8], name: &[u8]) -> bool {
    let tokens: Vec<Token> = pattern
        .iter()
        .map(|&b| {
            if b == b'*' {
                Token::AnyRun
            } else {
                Token::Byte(b)
            }
        })
        .collect();
    glob(&tokens, name)
}

impl Pattern {
    fn compile(pattern: &str) -> Self {
        let (body, prefix) = match pattern.strip_suffix(":*") {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let bytes = body.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len() + 1);
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'*' {
                if bytes.get(i + 1) == Some(&b'*') {
                    // Any longer run of stars is the same as `**`.
                    while bytes.get(i) == Some(&b'*') {
                        i += 1;
                    }
                    tokens.push(Token::AnyRun);
                    continue;
                }
                tokens.push(Token::Star);
            } else {
                tokens.push(Token::Byte(bytes[i]));
            }
            i += 1;
        }
        if prefix {
            tokens.push(Token::AnyRun);
        }
        Self { tokens }
    }

    fn matches(&self, subject: &[u8]) -> bool {
        glob(&self.tokens, subject)
    }
}

/// Glob matching by dynamic programming over (token, byte) prefixes: O(tokens × bytes) time,
/// O(bytes) memory, whatever the input.
fn glob(tokens: &[Token], text: &[u8]) -> bool {
    // row[j]: the tokens so far match text[..j].
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for token in tokens {
        match token {
            Token::Byte(b) => {
                for j in (1..=text.len()).rev() {
                    row[j] = row[j - 1] && text[j - 1] == *b;
                }
                row[0] = false;
            }
            Token::Star => {
                for j in 1..=text.len() {
                    row[j] = row[j] || (row[j - 1] && text[j - 1] != b'/');
                }
            }
            Token::AnyRun => {
                for j in 1..=text.len() {
                    row[j] = row[j] || row[j - 1];
                }
            }
        }
    }
    row[text.len()]
}

impl fmt::Display for PermissionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for PermissionRule {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PermissionRule {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}

impl From<PermissionRule> for String {
    fn from(rule: PermissionRule) -> String {
        rule.raw
    }
}

impl Serialize for PermissionRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for PermissionRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An agent's permission rules. Deny is checked first, then ask, then allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionRules {
    /// Calls that are always refused.
    pub deny: Vec<PermissionRule>,
    /// Calls that need a person's approval.
    pub ask: Vec<PermissionRule>,
    /// Calls that may run without asking.
    pub allow: Vec<PermissionRule>,
}

/// What the policy says about one call, and which rule said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An allow rule matched (and no deny or ask rule did).
    Allow(PermissionRule),
    /// An ask rule matched (and no deny rule did), or no rule matched at all (`None`).
    Ask(Option<PermissionRule>),
    /// A deny rule matched.
    Deny(PermissionRule),
}

/// The three outcomes, without the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    /// Allow, ask or deny.
    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Allow(_) => DecisionKind::Allow,
            Decision::Ask(_) => DecisionKind::Ask,
            Decision::Deny(_) => DecisionKind::Deny,
        }
    }

    /// The rule that decided, if any (none when no rule matched).
    pub fn rule(&self) -> Option<&PermissionRule> {
        match self {
            Decision::Allow(rule) | Decision::Deny(rule) => Some(rule),
            Decision::Ask(rule) => rule.as_ref(),
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Ask => "ask",
            DecisionKind::Deny => "deny",
        })
    }
}

/// Decides a call of `tool` on `subject`: deny rules first, then ask, then allow, the first
/// match wins; no match at all asks a person.
pub fn decide(rules: &PermissionRules, tool: &str, subject: Option<&str>) -> Decision {
    let first = |list: &[PermissionRule]| list.iter().find(|r| r.matches(tool, subject)).cloned();
    if let Some(rule) = first(&rules.deny) {
        return Decision::Deny(rule);
    }
    if let Some(rule) = first(&rules.ask) {
        return Decision::Ask(Some(rule));
    }
    match first(&rules.allow) {
        Some(rule) => Decision::Allow(rule),
        None => Decision::Ask(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rule(s: &str) -> PermissionRule {
        PermissionRule::parse(s).unwrap()
    }

    fn rules(deny: &[&str], ask: &[&str], allow: &[&str]) -> PermissionRules {
        let list = |l: &[&str]| l.iter().map(|s| rule(s)).collect();
        PermissionRules {
            deny: list(deny),
            ask: list(ask),
            allow: list(allow),
        }
    }

    #[test]
    fn parses_names_and_patterns() {
        let r = rule("Bash(git diff:*)");
        assert_eq!(r.tool(), "Bash");
        assert_eq!(r.pattern(), Some("git diff:*"));
        assert_eq!(r.to_string(), "Bash(git diff:*)");
        let r = rule("mcp__github__*");
        assert_eq!(r.tool(), "mcp__github__*");
        assert_eq!(r.pattern(), None);
        // Parentheses inside the pattern are fine when they balance.
        assert_eq!(rule("Bash(echo (a))").pattern(), Some("echo (a)"));
    }

    #[test]
    fn rejects_malformed_rules_with_the_expected_form() {
        let cases = [
            ("", "it is empty"),
            ("(ls)", "tool name before '(' is empty"),
            ("Bash(ls", "never closed"),
            ("Bash(ls))", "without a matching '('"),
            ("Bash)", "without a matching '('"),
            ("Bash(ls) x", "text after the closing ')'"),
            ("Bash()", "pattern in the parentheses is empty"),
            ("Bash\n", "control character"),
            ("Bash(ls\t-l)", "control character"),
            ("Web Fetch", "' ' is not allowed in a tool name"),
            (" Read", "' ' is not allowed in a tool name"),
        ];
        for (raw, expected) in cases {
            let e = PermissionRule::parse(raw).unwrap_err();
            assert_eq!(e.what, "permission rule");
            assert_eq!(e.value, raw);
            assert!(e.reason.contains(expected), "{raw:?}: {}", e.reason);
            if !raw.is_empty() && !raw.contains(['\n', '\t']) {
                assert!(
                    e.reason.contains("`Tool(pattern)`"),
                    "{raw:?}: {}",
                    e.reason
                );
            }
        }
    }

    #[test]
    fn star_stops_at_slashes_and_double_star_does_not() {
        let r = rule("Edit(src/*.rs)");
        assert!(r.matches("Edit", Some("src/main.rs")));
        assert!(!r.matches("Edit", Some("src/a/main.rs")));
        let r = rule("Edit(src/**)");
        assert!(r.matches("Edit", Some("src/a/b/c.rs")));
        assert!(r.matches("Edit", Some("src/")));
        assert!(!r.matches("Edit", Some("src")));
        assert!(!r.matches("Edit", Some("tests/a.rs")));
        let r = rule("Read(/work/***)");
        assert!(r.matches("Read", Some("/work/a/b")));
    }

    #[test]
    fn colon_star_is_a_prefix_match() {
        let r = rule("Bash(git diff:*)");
        assert!(r.matches("Bash", Some("git diff")));
        assert!(r.matches("Bash", Some("git diff --stat src/lib.rs")));
        assert!(!r.matches("Bash", Some("git status")));
        assert!(!r.matches("Bash", Some("echo git diff")));
        // Without the `:*` suffix the pattern is whole: no prefix matching.
        let r = rule("Bash(git diff)");
        assert!(r.matches("Bash", Some("git diff")));
        assert!(!r.matches("Bash", Some("git diff HEAD")));
        // `:` elsewhere is an ordinary character.
        assert!(rule("Bash(a:b)").matches("Bash", Some("a:b")));
    }

    #[test]
    fn tool_names_match_exactly_or_by_wildcard() {
        assert!(rule("Read").matches("Read", None));
        assert!(rule("Read").matches("Read", Some("/etc/passwd")));
        assert!(!rule("Read").matches("ReadX", None));
        assert!(!rule("Read").matches("read", None));
        assert!(rule("mcp__github__*").matches("mcp__github__create_issue", None));
        assert!(!rule("mcp__github__*").matches("mcp__gitlab__x", None));
        assert!(rule("*").matches("Anything", Some("x")));
    }

    #[test]
    fn a_pattern_never_matches_a_call_without_subject() {
        assert!(!rule("Bash(**)").matches("Bash", None));
        assert!(rule("Bash(**)").matches("Bash", Some("")));
    }

    #[test]
    fn deny_then_ask_then_allow_and_ask_by_default() {
        let r = rules(&["Bash(rm:*)"], &["Bash(git push:*)"], &["Bash", "Read"]);
        assert_eq!(
            decide(&r, "Bash", Some("rm -rf build")),
            Decision::Deny(rule("Bash(rm:*)"))
        );
        assert_eq!(
            decide(&r, "Bash", Some("git push origin")),
            Decision::Ask(Some(rule("Bash(git push:*)")))
        );
        assert_eq!(
            decide(&r, "Bash", Some("ls")),
            Decision::Allow(rule("Bash"))
        );
        assert_eq!(decide(&r, "Write", Some("a.txt")), Decision::Ask(None));
        assert_eq!(decide(&r, "Write", Some("a.txt")).rule(), None);
        assert_eq!(decide(&r, "Read", None).kind(), DecisionKind::Allow);
        assert_eq!(decide(&r, "Read", None).rule(), Some(&rule("Read")));
    }

    #[test]
    fn first_match_within_a_list_is_reported() {
        let r = rules(&[], &[], &["Bash(ls:*)", "Bash"]);
        assert_eq!(
            decide(&r, "Bash", Some("ls -l")).rule(),
            Some(&rule("Bash(ls:*)"))
        );
        assert_eq!(decide(&r, "Bash", Some("pwd")).rule(), Some(&rule("Bash")));
    }

    #[test]
    fn non_ascii_subjects_do_not_panic() {
        let r = rule("Write(/tmp/*)");
        assert!(r.matches("Write", Some("/tmp/é€😀")));
        assert!(!r.matches("Write", Some("/tmp/é/😀")));
        assert!(rule("Write(/tmp/é*)").matches("Write", Some("/tmp/éa")));
    }

    #[test]
    fn long_subjects_match_in_polynomial_time() {
        let r = rule("Bash(*a*a*a*a*a*a*a*a*b)");
        let subject = "a".repeat(20_000);
        assert!(!r.matches("Bash", Some(&subject)));
    }

    #[test]
    fn serde_round_trips_as_strings_with_empty_defaults() {
        // The domain has no JSON library; a tiny hand-written deserializer is overkill, so check
        // through the `String` conversions that serde uses and the derived defaults.
        let r = rule("Bash(git diff:*)");
        assert_eq!(String::from(r.clone()), "Bash(git diff:*)");
        assert_eq!(
            PermissionRule::try_from("Bash(git diff:*)".to_owned()).unwrap(),
            r
        );
        assert!(PermissionRule::try_from("Bash(".to_owned()).is_err());
        assert_eq!("Read".parse::<PermissionRule>().unwrap(), rule("Read"));
        let d = PermissionRules::default();
        assert!(d.deny.is_empty() && d.ask.is_empty() && d.allow.is_empty());
    }
}
