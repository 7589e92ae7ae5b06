//! Property 5: the tool-permission policy. Glob matching against an independent backtracking
//! oracle, and `decide` against the deny > ask > allow order: a matching deny rule always wins,
//! the order within a list never changes the kind of decision, and adding an allow rule never
//! turns a refusal into a permission.

use maos_domain::policy::permission::{
    Decision, DecisionKind, PermissionRule, PermissionRules, decide,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Oracle

/// Independent matcher over characters, by plain recursive backtracking on the pattern as
/// written: `**` any run, `*` any run without `/`, a final `:*` any suffix, other characters
/// themselves.
fn oracle(pattern: &str, subject: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = subject.chars().collect();
    match p.strip_suffix(&[':', '*']) {
        // "prefix, then anything": some prefix of the subject matches the body.
        Some(body) => (0..=s.len()).any(|k| backtrack(body, &s[..k])),
        None => backtrack(&p, &s),
    }
}

fn backtrack(p: &[char], s: &[char]) -> bool {
    match p {
        [] => s.is_empty(),
        ['*', '*', rest @ ..] => {
            // Three or more stars are `**` followed by stars, which match nothing extra.
            (0..=s.len()).any(|k| backtrack(rest, &s[k..]))
        }
        ['*', rest @ ..] => {
            let run = s.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|k| backtrack(rest, &s[k..]))
        }
        [c, rest @ ..] => s.first() == Some(c) && backtrack(rest, &s[1..]),
    }
}

#[test]
fn the_oracle_itself_behaves() {
    assert!(oracle("a*", "abc"));
    assert!(!oracle("a*", "a/c"));
    assert!(oracle("a**", "a/c"));
    assert!(oracle("a:*", "a/b/c"));
    assert!(!oracle("a:*", "ba"));
    assert!(oracle("a:b", "a:b"));
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Patterns over a small alphabet with many stars, slashes and colons.
fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'b', '/', '*', '*', ':']),
        1..8,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['a', 'b', '/', ':']), 0..10)
        .prop_map(|cs| cs.into_iter().collect())
}

const TOOLS: [&str; 3] = ["Bash", "Read", "mcp__gh__issue"];

/// A valid rule over the small tool set and alphabet.
fn rule() -> impl Strategy<Value = PermissionRule> {
    let name = prop::sample::select(vec!["Bash", "Read", "mcp__gh__*", "*", "Ba*"]);
    (name, prop::option::weighted(0.7, pattern())).prop_map(|(name, pat)| {
        let raw = match pat {
            Some(p) => format!("{name}({p})"),
            None => name.to_owned(),
        };
        PermissionRule::parse(&raw).expect("generated rules are valid")
    })
}

fn rule_list() -> impl Strategy<Value = Vec<PermissionRule>> {
    prop::collection::vec(rule(), 0..4)
}

fn rules() -> impl Strategy<Value = PermissionRules> {
    (rule_list(), rule_list(), rule_list()).prop_map(|(deny, ask, allow)| PermissionRules {
        deny,
        ask,
        allow,
    })
}

fn call() -> impl Strategy<Value = (&'static str, Option<String>)> {
    (
        prop::sample::select(TOOLS.to_vec()),
        prop::option::weighted(0.85, subject()),
    )
}

/// Oracle of `decide`'s kind: the lists in order, first match wins.
fn expected_kind(rules: &PermissionRules, tool: &str, subject: Option<&str>) -> DecisionKind {
    let hit = |list: &[PermissionRule]| list.iter().any(|r| r.matches(tool, subject));
    if hit(&rules.deny) {
        DecisionKind::Deny
    } else if hit(&rules.ask) {
        DecisionKind::Ask
    } else if hit(&rules.allow) {
        DecisionKind::Allow
    } else {
        DecisionKind::Ask
    }
}

proptest! {
    #![proptest_config(crate::support::config(1024, "proptest-regressions/permission.txt"))]

    #[test]
    fn glob_agrees_with_the_backtracking_oracle(p in pattern(), s in subject()) {
        let rule = PermissionRule::parse(&format!("Bash({p})")).expect("valid rule");
        prop_assert_eq!(rule.matches("Bash", Some(&s)), oracle(&p, &s), "pattern {:?} on {:?}", p, s);
        prop_assert!(!rule.matches("Bash", None));
        prop_assert!(!rule.matches("Read", Some(&s)));
    }

    #[test]
    fn rules_round_trip_through_their_string(r in rule()) {
        let again = PermissionRule::parse(&r.to_string()).expect("display parses");
        prop_assert_eq!(&again, &r);
        prop_assert_eq!(String::from(again), r.as_str().to_owned());
    }

    #[test]
    fn decide_follows_deny_ask_allow_and_names_a_matching_rule(
        rules in rules(), (tool, subject) in call(),
    ) {
        let subject = subject.as_deref();
        let d = decide(&rules, tool, subject);
        prop_assert_eq!(d.kind(), expected_kind(&rules, tool, subject));
        match &d {
            Decision::Deny(r) => prop_assert!(rules.deny.contains(r) && r.matches(tool, subject)),
            Decision::Ask(Some(r)) => prop_assert!(rules.ask.contains(r) && r.matches(tool, subject)),
            Decision::Allow(r) => prop_assert!(rules.allow.contains(r) && r.matches(tool, subject)),
            Decision::Ask(None) => prop_assert!(
                !rules.deny.iter().chain(&rules.ask).chain(&rules.allow)
                    .any(|r| r.matches(tool, subject))
            ),
        }
    }

    #[test]
    fn a_matching_deny_rule_always_wins(
        mut rules in rules(), (tool, subject) in call(), at in 0..4usize,
    ) {
        let subject = subject.as_deref();
        // A deny rule that certainly matches, anywhere in the deny list.
        let deny = PermissionRule::parse(tool).expect("tool names are rules");
        let at = at.min(rules.deny.len());
        rules.deny.insert(at, deny);
        // Whatever the ask and allow lists say, even if they list the same call.
        rules.allow.push(PermissionRule::parse("*").expect("rule"));
        rules.ask.push(PermissionRule::parse(tool).expect("rule"));
        prop_assert_eq!(decide(&rules, tool, subject).kind(), DecisionKind::Deny);
    }

    #[test]
    fn order_within_lists_does_not_change_the_kind(
        (rules, shuffled) in rules().prop_flat_map(|r| {
            let shuffled = (
                Just(r.deny.clone()).prop_shuffle(),
                Just(r.ask.clone()).prop_shuffle(),
                Just(r.allow.clone()).prop_shuffle(),
            ).prop_map(|(deny, ask, allow)| PermissionRules { deny, ask, allow });
            (Just(r), shuffled)
        }),
        (tool, subject) in call(),
    ) {
        let subject = subject.as_deref();
        prop_assert_eq!(
            decide(&rules, tool, subject).kind(),
            decide(&shuffled, tool, subject).kind()
        );
    }

    #[test]
    fn adding_an_allow_rule_never_turns_deny_or_ask_by_rule_into_allow(
        rules in rules(), extra in rule(), (tool, subject) in call(), at in 0..4usize,
    ) {
        let subject = subject.as_deref();
        let before = decide(&rules, tool, subject);
        let mut more = rules.clone();
        let at = at.min(more.allow.len());
        more.allow.insert(at, extra);
        let after = decide(&more, tool, subject);
        match before {
            // A refusal, or a rule asking for a person, stays exactly what it was.
            Decision::Deny(_) | Decision::Ask(Some(_)) => prop_assert_eq!(after, before),
            // Only a call no rule covered, or one already allowed, can be (still) allowed.
            Decision::Ask(None) | Decision::Allow(_) => prop_assert_ne!(after.kind(), DecisionKind::Deny),
        }
    }
}
