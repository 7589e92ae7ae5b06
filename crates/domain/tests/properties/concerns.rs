//! Property: concern locks. Glob coverage against an independent backtracking oracle; overlap
//! against a brute-force search for a common path (exact on small globs, sound on larger ones);
//! symmetry and reflexivity; and a greedy scheduler built on `conflict` that never runs two
//! tasks whose concerns share a path or a resource.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use maos_domain::policy::concerns::{Concern, PathGlob, conflict};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Oracle

/// Does `glob` (as written by the generators below) cover `path`? Some non-empty prefix of the
/// path's segments is matched by the glob's segments, by plain recursive backtracking.
fn oracle_covers(glob: &str, path: &str) -> bool {
    let g: Vec<&str> = glob.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (1..=p.len()).any(|k| segments_match(&g, &p[..k]))
}

fn segments_match(g: &[&str], p: &[&str]) -> bool {
    match g {
        [] => p.is_empty(),
        ["**", rest @ ..] => (0..=p.len()).any(|k| segments_match(rest, &p[k..])),
        [seg, rest @ ..] => {
            !p.is_empty()
                && chars_match(
                    &seg.chars().collect::<Vec<_>>(),
                    &p[0].chars().collect::<Vec<_>>(),
                )
                && segments_match(rest, &p[1..])
        }
    }
}

/// `*`, `?`, `[ab]`, `[!a]`, `[a-b]` and literals.
fn chars_match(pat: &[char], s: &[char]) -> bool {
    match pat {
        [] => s.is_empty(),
        ['*', rest @ ..] => (0..=s.len()).any(|k| chars_match(rest, &s[k..])),
        ['?', rest @ ..] => !s.is_empty() && chars_match(rest, &s[1..]),
        ['[', ..] => {
            let Some(close) = pat.iter().position(|c| *c == ']') else {
                return false;
            };
            let body = &pat[1..close];
            let (negated, body) = match body {
                ['!', b @ ..] => (true, b),
                b => (false, b),
            };
            let in_class = |c: char| match body {
                [lo, '-', hi] => *lo <= c && c <= *hi,
                members => members.contains(&c),
            };
            !s.is_empty() && in_class(s[0]) != negated && chars_match(&pat[close + 1..], &s[1..])
        }
        [c, rest @ ..] => s.first() == Some(c) && chars_match(rest, &s[1..]),
    }
}

#[test]
fn the_oracle_itself_behaves() {
    assert!(oracle_covers("a", "a/b"));
    assert!(oracle_covers("a/**", "a"));
    assert!(oracle_covers("**/b", "a/a/b"));
    assert!(!oracle_covers("a/*/b", "a/b"));
    assert!(oracle_covers("[!a]?", "ba"));
    assert!(!oracle_covers("[!a]?", "ab"));
    assert!(oracle_covers("[a-b]*", "b"));
    assert!(!oracle_covers("a", ""));
}

/// Every path of 1–`depth` segments (`depth` at most 5), each segment 1–2 characters over
/// {a, b}: where common paths of small globs are searched. A shortest common path of two globs
/// of at most `s` segments, each of at most two tokens from the generator below, has at most
/// `2s - 1` segments of at most two characters: each of its segments is consumed by a non-`**`
/// segment of one glob (or is not needed), both globs have `s` such segments only when neither
/// has a `**` (and then the path has `s` segments), and a segment pattern has at most two
/// non-star tokens, any two of which that share a character share `a` or `b`. So depth 5 decides
/// globs of 3 segments, depth 3 globs of 2.
fn witnesses(depth: usize) -> &'static [String] {
    static PATHS: [OnceLock<Vec<String>>; 6] = [const { OnceLock::new() }; 6];
    PATHS[depth].get_or_init(|| {
        let segs = ["a", "b", "aa", "ab", "ba", "bb"];
        let mut all: Vec<String> = Vec::new();
        let mut layer: Vec<String> = segs.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..depth {
            all.extend(layer.iter().cloned());
            layer = layer
                .iter()
                .flat_map(|p| segs.iter().map(move |s| format!("{p}/{s}")))
                .collect();
        }
        all
    })
}

/// Which witness paths of up to `depth` segments a glob covers, one bit each (remembered: the
/// generators repeat themselves).
fn coverage(glob: &PathGlob, depth: usize) -> Arc<Vec<u64>> {
    type Cache = Mutex<HashMap<(usize, String), Arc<Vec<u64>>>>;
    static SEEN: OnceLock<Cache> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    let key = (depth, glob.as_str().to_owned());
    if let Some(bits) = seen.lock().expect("cache").get(&key) {
        return Arc::clone(bits);
    }
    let paths = witnesses(depth);
    let mut bits = vec![0u64; paths.len().div_ceil(64)];
    for (i, p) in paths.iter().enumerate() {
        if glob.matches(p) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    let bits = Arc::new(bits);
    seen.lock().expect("cache").insert(key, Arc::clone(&bits));
    bits
}

/// A path of up to `depth` segments that both globs cover, if there is one.
fn common_path(a: &PathGlob, b: &PathGlob, depth: usize) -> Option<&'static str> {
    let (ca, cb) = (coverage(a, depth), coverage(b, depth));
    let word = ca.iter().zip(cb.iter()).position(|(p, q)| p & q != 0)?;
    let bit = (ca[word] & cb[word]).trailing_zeros() as usize;
    witnesses(depth).get(word * 64 + bit).map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Generators

/// A segment of up to `tokens` tokens, or `**`.
fn segment(tokens: usize) -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec!["a", "b", "?", "*", "[ab]", "[!a]", "[a-b]"]);
    prop_oneof![
        4 => prop::collection::vec(token, 1..=tokens).prop_map(|t| t.concat()),
        1 => Just("**".to_owned()),
    ]
}

fn glob_text(segments: usize, tokens: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(segment(tokens), 1..=segments).prop_map(|s| s.join("/"))
}

fn glob(segments: usize, tokens: usize) -> impl Strategy<Value = PathGlob> {
    glob_text(segments, tokens).prop_map(|t| PathGlob::parse(&t).expect("generated glob"))
}

/// A path of 1–6 segments of 1–3 characters over {a, b, c}.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec("[abc]{1,3}", 1..=6).prop_map(|s| s.join("/"))
}

/// A concern: mostly a glob of up to two segments, sometimes a resource.
fn concern() -> impl Strategy<Value = Concern> {
    prop_oneof![
        3 => glob_text(2, 2),
        1 => prop::sample::select(vec!["port:8080", "port:8081", "db:main"]).prop_map(str::to_owned),
    ]
    .prop_map(|t| Concern::parse(&t).expect("generated concern"))
}

/// Oracle for two concerns of the small generator: equal resources, or a common path.
fn really_overlap(a: &Concern, b: &Concern) -> bool {
    match (a, b) {
        (Concern::Resource(x), Concern::Resource(y)) => x == y,
        (Concern::Path(x), Concern::Path(y)) => common_path(x, y, 3).is_some(),
        _ => false,
    }
}

proptest! {
    #![proptest_config(crate::support::config(512, "proptest-regressions/concerns.txt"))]

    #[test]
    fn coverage_agrees_with_the_oracle(text in glob_text(4, 4), path in path()) {
        let glob = PathGlob::parse(&text).expect("generated glob");
        prop_assert_eq!(glob.matches(&path), oracle_covers(&text, &path), "{} / {}", glob, path);
        // The canonical text means the same glob.
        let again = PathGlob::parse(glob.as_str()).expect("canonical glob");
        prop_assert_eq!(&again, &glob);
        prop_assert_eq!(again.matches(&path), glob.matches(&path));
    }

    #[test]
    fn overlap_never_misses_a_common_path(
        a in glob(4, 4),
        b in glob(4, 4),
        paths in prop::collection::vec(path(), 1..16),
    ) {
        for p in &paths {
            if a.matches(p) && b.matches(p) {
                prop_assert!(a.overlaps(&b), "{} and {} both cover {}", a, b, p);
            }
        }
    }

    #[test]
    fn overlap_is_symmetric_and_reflexive(a in concern(), b in concern()) {
        prop_assert_eq!(a.overlaps(&b), b.overlaps(&a), "{} / {}", a, b);
        prop_assert!(a.overlaps(&a), "{}", a);
        prop_assert_eq!(Concern::parse(a.as_str()).expect("canonical concern"), a.clone());
        prop_assert_eq!(
            Concern::try_from(String::from(a.clone())).expect("serialized concern"),
            a
        );
    }

    #[test]
    fn conflict_is_the_first_overlapping_pair(
        mine in prop::collection::vec(concern(), 0..4),
        theirs in prop::collection::vec(concern(), 0..4),
    ) {
        let mut expected = None;
        'outer: for m in &mine {
            for t in &theirs {
                if really_overlap(m, t) {
                    expected = Some((m, t));
                    break 'outer;
                }
            }
        }
        prop_assert_eq!(conflict(&mine, &theirs), expected);
    }

    #[test]
    fn a_greedy_scheduler_never_runs_overlapping_tasks(
        tasks in prop::collection::vec(prop::collection::vec(concern(), 1..=3), 1..10),
    ) {
        let mut running: Vec<&[Concern]> = Vec::new();
        for task in &tasks {
            if running.iter().all(|r| conflict(task, r).is_none()) {
                running.push(task);
            } else {
                // Held back only for a real overlap with a running task.
                prop_assert!(running.iter().any(|r| task
                    .iter()
                    .any(|m| r.iter().any(|t| really_overlap(m, t)))));
            }
        }
        for (i, a) in running.iter().enumerate() {
            for b in &running[i + 1..] {
                for x in a.iter() {
                    for y in b.iter() {
                        prop_assert!(!really_overlap(x, y), "{} and {} both run", x, y);
                    }
                }
            }
        }
    }
}

proptest! {
    // Each new glob is checked against 9,330 paths: fewer cases, as `conflict` also checks
    // exactness on globs of two segments.
    #![proptest_config(crate::support::config(160, "proptest-regressions/concerns.txt"))]

    #[test]
    fn overlap_is_exact_on_small_globs(a in glob(3, 2), b in glob(3, 2)) {
        let witness = common_path(&a, &b, 5);
        prop_assert_eq!(a.overlaps(&b), witness.is_some(), "{} / {}: {:?}", a, b, witness);
    }
}
