//! Routing rules: the capabilities (and tier) a task that names none should need, chosen from
//! its title and prompt. The first rule whose pattern matches wins.
//!
//! # Pattern syntax
//!
//! `test|spec|coverage`, `fix*bug`, `refactor`: alternatives separated by `|`, any one of which
//! may match. An alternative is a substring of the text `title + "\n" + prompt`, compared
//! case-insensitively, in which `*` stands for any run of characters (line breaks included).
//! Whitespace around an alternative is ignored; an empty alternative is refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;
use crate::values::{CapabilitySet, Tier};

const WHAT: &str = "route pattern";
const MAX_CHARS: usize = 512;
const FORM: &str = "write words or phrases separated by '|', with '*' for any run of text, \
                    for example `test|spec` or `fix*bug`";

/// A case-insensitive pattern over a task's title and prompt. Serialized as the text it was
/// parsed from (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoutePattern {
    raw: String,
    /// Per alternative, its lowercased literal pieces between the `*`s.
    alternatives: Vec<Vec<String>>,
}

impl RoutePattern {
    /// Parses a pattern such as `test|spec` or `fix*bug`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let err = |reason: String| ValueError::new(WHAT, raw, reason);
        let t = raw.trim();
        if t.is_empty() {
            return Err(err(format!("it is empty; {FORM}")));
        }
        let chars = t.chars().count();
        if chars > MAX_CHARS {
            return Err(err(format!(
                "it is {chars} characters long; the limit is {MAX_CHARS}"
            )));
        }
        if let Some(c) = t.chars().find(|c| c.is_control()) {
            return Err(err(format!(
                "it contains the control character {c:?}; keep a pattern to one line: {FORM}"
            )));
        }
        let mut alternatives = Vec::new();
        for alt in t.split('|') {
            let alt = alt.trim();
            if alt.is_empty() {
                return Err(err(format!(
                    "it has an empty alternative (a '|' at either end or two in a row); {FORM}"
                )));
            }
            let pieces = alt
                .to_lowercase()
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            alternatives.push(pieces);
        }
        Ok(Self {
            raw: t.to_owned(),
            alternatives,
        })
    }

    /// The pattern as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True when any alternative occurs in `title + "\n" + prompt`, ignoring case.
    pub fn matches(&self, title: &str, prompt: &str) -> bool {
        self.matches_lowered(&haystack(title, prompt))
    }

    fn matches_lowered(&self, text: &str) -> bool {
        self.alternatives.iter().any(|pieces| {
            // The pieces must occur in order; taking each at its leftmost place after the
            // previous one is optimal, since `*` absorbs whatever lies between.
            let mut rest = text;
            pieces.iter().all(|piece| match rest.find(piece.as_str()) {
                Some(at) => {
                    rest = &rest[at + piece.len()..];
                    true
                }
                None => false,
            })
        })
    }
}

fn haystack(title: &str, prompt: &str) -> String {
    let mut text = String::with_capacity(title.len() + prompt.len() + 1);
    text.push_str(title);
    text.push('\n');
    text.push_str(prompt);
    text.to_lowercase()
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for RoutePattern {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for RoutePattern {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}

impl From<RoutePattern> for String {
    fn from(p: RoutePattern) -> String {
        p.raw
    }
}

/// One routing rule: tasks whose title or prompt match `pattern` need `capabilities` (and
/// `tier`, when given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteRule {
    pattern: RoutePattern,
    /// The capabilities a matching task needs.
    pub capabilities: CapabilitySet,
    /// The tier a matching task needs, if any.
    pub tier: Option<Tier>,
}

impl RouteRule {
    /// A rule from its parts.
    pub fn new(pattern: RoutePattern, capabilities: CapabilitySet, tier: Option<Tier>) -> Self {
        Self {
            pattern,
            capabilities,
            tier,
        }
    }

    /// The pattern that selects the tasks this rule applies to.
    pub fn pattern(&self) -> &RoutePattern {
        &self.pattern
    }
}

/// The first rule whose pattern matches the task's title and prompt (first match wins).
pub fn route<'a>(rules: &'a [RouteRule], title: &str, prompt: &str) -> Option<&'a RouteRule> {
    let text = haystack(title, prompt);
    rules.iter().find(|r| r.pattern.matches_lowered(&text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn p(s: &str) -> RoutePattern {
        RoutePattern::parse(s).unwrap()
    }

    fn rule(pattern: &str, caps: &[&str]) -> RouteRule {
        RouteRule::new(p(pattern), CapabilitySet::parse(caps).unwrap(), None)
    }

    #[test]
    fn matches_alternatives_ignoring_case() {
        let pat = p("test | Spec|coverage");
        assert!(pat.matches("Add TESTS", ""));
        assert!(pat.matches("", "update the spec"));
        assert!(pat.matches("x", "COVERAGE report"));
        assert!(!pat.matches("refactor", "the parser"));
        assert_eq!(pat.as_str(), "test | Spec|coverage");
        assert!(p("ÄRGER").matches("", "ärger"));
    }

    #[test]
    fn stars_stand_for_any_run() {
        let pat = p("fix*bug");
        assert!(pat.matches("Fix the parser bug", ""));
        assert!(pat.matches("fixbug", ""));
        assert!(pat.matches("fix it", "the bug"), "across title and prompt");
        assert!(!pat.matches("bug fix", ""));
        assert!(p("*").matches("", ""));
        assert!(p("a*b*c").matches("xaxxbxbxc", ""));
        assert!(!p("a*b*c").matches("cba", ""));
        assert!(!p("ab").matches("a", "b"), "the line break separates them");
        assert!(p("a*b").matches("a", "b"));
    }

    #[test]
    fn refuses_empty_alternatives() {
        for bad in ["", "  ", "a||b", "|a", "a|", "a| |b", "a\nb"] {
            let e = RoutePattern::parse(bad).unwrap_err();
            assert_eq!(e.what, "route pattern", "{bad:?}");
        }
        assert!(
            RoutePattern::parse("a||b")
                .unwrap_err()
                .reason
                .contains("empty alternative")
        );
        assert!(RoutePattern::parse(&"a".repeat(513)).is_err());
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = [
            rule("security|cve", &["review"]),
            rule("test", &["test"]),
            rule("test|rust", &["rust"]),
        ];
        assert_eq!(
            route(&rules, "Write tests", "for the CVE fix"),
            Some(&rules[0])
        );
        assert_eq!(route(&rules, "Write TESTS", "in rust"), Some(&rules[1]));
        assert_eq!(route(&rules, "Port to Rust", ""), Some(&rules[2]));
        assert_eq!(route(&rules, "Docs", "update the readme"), None);
        assert_eq!(route(&[], "anything", ""), None);
        assert_eq!(rules[1].pattern().as_str(), "test");
    }

    #[test]
    fn patterns_round_trip_as_strings() {
        let pat = p("  fix*bug|Test ");
        assert_eq!(String::from(pat.clone()), "fix*bug|Test");
        assert_eq!(
            RoutePattern::try_from("fix*bug|Test".to_owned()).unwrap(),
            pat
        );
        assert_eq!(pat.to_string(), "fix*bug|Test");
    }
}
