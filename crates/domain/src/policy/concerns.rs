//! Concern locks: what two tasks must not work on at the same time, and whether two tasks'
//! concerns overlap.
//!
//! A task may declare *concerns*. The scheduler does not run two tasks at once whose concerns
//! overlap. A concern is one of:
//!
//! - a **resource** written `kind:name` (`port:8080`, `db:main`): any text matching
//!   `^[a-z][a-z0-9_-]*:[^/]+$`. Two resources overlap when they are the same text; a resource
//!   never overlaps a path.
//! - otherwise a **path glob** relative to the repository root (`src/api/**`, `Cargo.toml`,
//!   `docs/*.md`).
//!
//! # Glob syntax
//!
//! A glob is a list of segments separated by `/`. Within a segment, `*` matches any run of
//! characters (possibly empty), `?` matches one character, `[abc]`, `[a-z]` and `[!a-z]` (or
//! `[^a-z]`) match one character of (or not of) the class, and every other character matches
//! itself. A segment that is exactly `**` matches zero or more whole segments. `{a,b}` is not
//! special. Matching is case-sensitive.
//!
//! A glob **covers** every path it matches *and everything under such a path*: a lock on a
//! directory is a lock on its contents. So `src` covers `src/main.rs`, `dir/` (written as
//! `dir/**`) covers `dir` and everything in it, and `src/*` covers `src/api/mod.rs` too.
//!
//! # Canonical form
//!
//! Parsing trims surrounding whitespace, drops a leading `./`, empty segments (`a//b`) and `.`
//! segments, turns a trailing `/` into `/**`, merges consecutive `**` segments and collapses a
//! run of `*` inside a segment into one `*`. `.` alone is the whole repository, `**`.
//!
//! # Overlap
//!
//! [`Concern::overlaps`] is exact for globs: two globs overlap exactly when some path is covered
//! by both. It intersects the two globs as automata (a product search over segment positions,
//! and inside it over character positions), so it never misses a common path and never
//! invents one.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValueError;

const WHAT: &str = "concern";
const MAX_CHARS: usize = 512;
const FORM: &str = "write a path or glob relative to the repository root (`src/api/**`, \
                    `Cargo.toml`, `docs/*.md`) or a named resource as `kind:name` \
                    (`port:8080`, `db:main`)";

/// Something two tasks must not work on at once: a path glob in the repository or a named
/// resource. Serialized as its canonical text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Concern {
    /// Files and directories of the repository.
    Path(PathGlob),
    /// A named resource such as `port:8080`.
    Resource(Resource),
}

impl Concern {
    /// Parses a concern: a `kind:name` resource when the (trimmed) text matches
    /// `^[a-z][a-z0-9_-]*:[^/]+$`, otherwise a path glob.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let t = check_common(raw)?;
        if is_resource(t) {
            Ok(Concern::Resource(Resource(t.to_owned())))
        } else {
            PathGlob::parse(raw).map(Concern::Path)
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        match self {
            Concern::Path(g) => g.as_str(),
            Concern::Resource(r) => r.as_str(),
        }
    }

    /// True when the two concerns could name the same thing: equal resources, or path globs
    /// that cover at least one common path. Symmetric and reflexive.
    pub fn overlaps(&self, other: &Concern) -> bool {
        match (self, other) {
            (Concern::Resource(a), Concern::Resource(b)) => a == b,
            (Concern::Path(a), Concern::Path(b)) => a.overlaps(b),
            _ => false,
        }
    }
}

/// The first pair (in `mine`'s order, then `theirs`') of overlapping concerns, if any.
pub fn conflict<'a>(
    mine: &'a [Concern],
    theirs: &'a [Concern],
) -> Option<(&'a Concern, &'a Concern)> {
    mine.iter()
        .find_map(|m| theirs.iter().find(|t| m.overlaps(t)).map(|t| (m, t)))
}

impl fmt::Display for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Concern {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Concern {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}

impl From<Concern> for String {
    fn from(c: Concern) -> String {
        match c {
            Concern::Path(g) => g.text,
            Concern::Resource(r) => r.0,
        }
    }
}

/// A named resource, `kind:name` (`port:8080`, `db:main`). Only equal resources overlap.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resource(String);

impl Resource {
    /// The resource as written, `kind:name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `:` (`port`).
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The part after the first `:` (`8080`).
    pub fn name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, n)| n)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `^[a-z][a-z0-9_-]*:[^/]+$`
fn is_resource(t: &str) -> bool {
    let Some((kind, name)) = t.split_once(':') else {
        return false;
    };
    let mut kc = kind.chars();
    kc.next().is_some_and(|c| c.is_ascii_lowercase())
        && kc.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !name.is_empty()
        && !name.contains('/')
}

/// Trims and applies the checks shared by every concern.
fn check_common(raw: &str) -> Result<&str, ValueError> {
    let err = |reason: String| ValueError::new(WHAT, raw, reason);
    let t = raw.trim();
    if t.is_empty() {
        return Err(err(format!("it is empty; {FORM}")));
    }
    let chars = t.chars().count();
    if chars > MAX_CHARS {
        return Err(err(format!(
            "it is {chars} characters long; the limit is {MAX_CHARS}: {FORM}"
        )));
    }
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(err(format!(
            "it contains the control character {c:?}; keep a concern to one line: {FORM}"
        )));
    }
    if t.contains('\\') {
        return Err(err(format!(
            "it contains a backslash; separate path segments with '/': {FORM}"
        )));
    }
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// Path globs

/// A glob over repository paths; see the [module documentation](self) for the syntax and what
/// it covers. Compared, ordered and hashed by its canonical text.
#[derive(Debug, Clone)]
pub struct PathGlob {
    text: String,
    /// The segments, always ending with [`Seg::AnyDepth`]: a glob also covers everything under
    /// what it matches.
    segs: Vec<Seg>,
}

#[derive(Debug, Clone)]
enum Seg {
    /// `**`: zero or more segments.
    AnyDepth,
    /// One segment matched by these tokens.
    Pat(Vec<Tok>),
}

#[derive(Debug, Clone)]
enum Tok {
    /// `*`: any run of characters within the segment.
    Star,
    /// One character of the set (a literal, `?` or a class).
    One(CharSet),
}

impl PathGlob {
    /// Parses a path glob (never a resource: use [`Concern::parse`] to tell them apart).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let t = check_common(raw)?;
        let err = |reason: String| ValueError::new(WHAT, raw, reason);
        if t.starts_with('/') {
            return Err(err(format!(
                "it is an absolute path; write it relative to the repository root: {FORM}"
            )));
        }
        let mut first = t.chars();
        if let (Some(d), Some(':'), Some('/')) = (first.next(), first.next(), first.next())
            && d.is_ascii_alphabetic()
        {
            return Err(err(format!(
                "it is an absolute path with a drive letter; write it relative to the \
                 repository root: {FORM}"
            )));
        }
        let mut texts: Vec<&str> = Vec::new();
        for seg in t.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    return Err(err(format!(
                        "it has a '..' segment; a concern must stay inside the repository: \
                         {FORM}"
                    )));
                }
                s => texts.push(s),
            }
        }
        if t.ends_with('/') || texts.is_empty() {
            texts.push("**");
        }
        let mut segs: Vec<Seg> = Vec::new();
        let mut canonical: Vec<String> = Vec::new();
        for s in texts {
            if s == "**" {
                if !matches!(segs.last(), Some(Seg::AnyDepth)) {
                    segs.push(Seg::AnyDepth);
                    canonical.push("**".to_owned());
                }
                continue;
            }
            let (toks, text) = parse_segment(s).map_err(err)?;
            segs.push(Seg::Pat(toks));
            canonical.push(text);
        }
        let text = canonical.join("/");
        if !matches!(segs.last(), Some(Seg::AnyDepth)) {
            segs.push(Seg::AnyDepth);
        }
        Ok(Self { text, segs })
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the glob covers `path` (a repository-relative path, `/`-separated): it matches
    /// the path or a directory the path is in. Empty and `.` segments of the path are ignored;
    /// a path without segments is never covered.
    pub fn matches(&self, path: &str) -> bool {
        let segs: Vec<Vec<char>> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(|s| s.chars().collect())
            .collect();
        if segs.is_empty() {
            return false;
        }
        wildcard_match(
            &self.segs,
            &segs,
            |s| matches!(s, Seg::AnyDepth),
            |s, seg| match s {
                Seg::AnyDepth => true,
                Seg::Pat(toks) => segment_matches(toks, seg),
            },
        )
    }

    /// True when some path is covered by both globs.
    pub fn overlaps(&self, other: &PathGlob) -> bool {
        intersects(
            &self.segs,
            &other.segs,
            |s| matches!(s, Seg::AnyDepth),
            |a, b| match (a, b) {
                // A `**` step consumes any one segment: every segment pattern matches some
                // segment (classes that match nothing are refused by `parse`).
                (None, _) | (_, None) => true,
                (Some(Seg::Pat(p)), Some(Seg::Pat(q))) => segments_intersect(p, q),
                // `intersects` never hands over a looping token as a step.
                (Some(Seg::AnyDepth), _) | (_, Some(Seg::AnyDepth)) => true,
            },
        )
    }
}

impl PartialEq for PathGlob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PathGlob {}

impl PartialOrd for PathGlob {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathGlob {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl std::hash::Hash for PathGlob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses one segment (not `**`) into tokens and its canonical text.
fn parse_segment(s: &str) -> Result<(Vec<Tok>, String), String> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                    text.push('*');
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::One(CharSet::any()));
                text.push('?');
                i += 1;
            }
            '[' => {
                let (set, end) = parse_class(&chars, i)?;
                toks.push(Tok::One(set));
                text.extend(&chars[i..end]);
                i = end;
            }
            c => {
                toks.push(Tok::One(CharSet::single(c)));
                text.push(c);
                i += 1;
            }
        }
    }
    Ok((toks, text))
}

/// Parses the class that starts at `chars[start] == '['`; returns it and the index after `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(CharSet, usize), String> {
    let shown: String = chars[start..].iter().collect();
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!(
                "the character class in {shown:?} is not closed; write a class like `[abc]` or \
                 `[a-z]` inside one path segment, or {FORM}"
            ));
        };
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        if chars.get(i + 1) == Some(&'-')
            && let Some(&hi) = chars.get(i + 2)
            && hi != ']'
        {
            if hi < c {
                return Err(format!(
                    "the range `{c}-{hi}` in a character class is backwards; write it low to \
                     high, like `[a-z]`"
                ));
            }
            ranges.push((u32::from(c), u32::from(hi)));
            i += 3;
        } else {
            ranges.push((u32::from(c), u32::from(c)));
            i += 1;
        }
    }
    let set = CharSet::from_ranges(ranges);
    let set = if negated { set.complement() } else { set };
    if set.is_empty() {
        let class: String = chars[start..i].iter().collect();
        return Err(format!(
            "the character class `{class}` matches no character; write a class like `[abc]` or \
             `[a-z]`"
        ));
    }
    Ok((set, i))
}

// ---------------------------------------------------------------------------------------------
// Character sets

/// A set of characters other than `/`, as sorted, disjoint, non-adjacent inclusive ranges of
/// scalar values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CharSet(Vec<(u32, u32)>);

/// Every character a path segment may hold: all scalar values but `/` (and no surrogates).
const UNIVERSE: [(u32, u32); 3] = [(0, 0x2E), (0x30, 0xD7FF), (0xE000, 0x10_FFFF)];

impl CharSet {
    fn any() -> Self {
        Self(UNIVERSE.to_vec())
    }

    fn single(c: char) -> Self {
        Self::from_ranges(vec![(u32::from(c), u32::from(c))])
    }

    /// Normalises arbitrary ranges (each `lo <= hi`) and keeps only the universe.
    fn from_ranges(mut ranges: Vec<(u32, u32)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Self(merged).intersection(&Self(UNIVERSE.to_vec()))
    }

    fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = 0u32;
        for &(lo, hi) in &self.0 {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= 0x10_FFFF {
            out.push((next, 0x10_FFFF));
        }
        Self(out).intersection(&Self(UNIVERSE.to_vec()))
    }

    fn intersection(&self, other: &Self) -> Self {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            let lo = a.0.max(b.0);
            let hi = a.1.min(b.1);
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Self(out)
    }

    fn intersects(&self, other: &Self) -> bool {
        !self.intersection(other).is_empty()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, c: char) -> bool {
        let c = u32::from(c);
        self.0.iter().any(|&(lo, hi)| lo <= c && c <= hi)
    }
}

// ---------------------------------------------------------------------------------------------
// Matching and intersection, generic over the level (characters in a segment, segments in a
// path): a pattern is a list of tokens, each either a *loop* (`*`, `**`: any run of elements,
// possibly empty) or a *step* that matches one element.

/// Matches `pattern` against `text` with the classic last-loop backtracking: O(len × len) in the
/// worst case, no recursion.
fn wildcard_match<T, E>(
    pattern: &[T],
    text: &[E],
    is_loop: impl Fn(&T) -> bool,
    step: impl Fn(&T, &E) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && is_loop(&pattern[p]) {
            resume = Some((p, t));
            p += 1;
        } else if p < pattern.len() && step(&pattern[p], &text[t]) {
            p += 1;
            t += 1;
        } else if let Some((lp, lt)) = resume {
            // Let the last loop swallow one more element and try again.
            resume = Some((lp, lt + 1));
            p = lp + 1;
            t = lt + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(is_loop)
}

/// True when some *non-empty* word is matched by both patterns: a breadth-first search of the
/// product automaton over (position in `a`, position in `b`, consumed anything yet).
/// `meet(x, y)` tells whether two steps share an element; `None` stands for a loop's step (any
/// element).
fn intersects<T>(
    a: &[T],
    b: &[T],
    is_loop: impl Fn(&T) -> bool,
    meet: impl Fn(Option<&T>, Option<&T>) -> bool,
) -> bool {
    let width = b.len() + 1;
    let index = |i: usize, j: usize, c: bool| ((i * width) + j) * 2 + usize::from(c);
    let mut seen = vec![false; (a.len() + 1) * width * 2];
    let mut queue = VecDeque::new();
    seen[index(0, 0, false)] = true;
    queue.push_back((0usize, 0usize, false));
    // The moves out of one side's position: (next position, the step's token or None for a
    // loop's any-element step). Loops may also be skipped without consuming.
    let moves = |p: &[T], i: usize| -> Vec<(usize, Option<usize>)> {
        match p.get(i) {
            None => Vec::new(),
            Some(t) if is_loop(t) => vec![(i, None)],
            Some(_) => vec![(i + 1, Some(i))],
        }
    };
    while let Some((i, j, consumed)) = queue.pop_front() {
        if i == a.len() && j == b.len() && consumed {
            return true;
        }
        let mut next = Vec::new();
        if a.get(i).is_some_and(&is_loop) {
            next.push((i + 1, j, consumed));
        }
        if b.get(j).is_some_and(&is_loop) {
            next.push((i, j + 1, consumed));
        }
        for (ni, ta) in moves(a, i) {
            for (nj, tb) in moves(b, j) {
                if meet(ta.map(|k| &a[k]), tb.map(|k| &b[k])) {
                    next.push((ni, nj, true));
                }
            }
        }
        for (ni, nj, c) in next {
            let k = index(ni, nj, c);
            if !seen[k] {
                seen[k] = true;
                queue.push_back((ni, nj, c));
            }
        }
    }
    false
}

fn segment_matches(toks: &[Tok], seg: &[char]) -> bool {
    wildcard_match(
        toks,
        seg,
        |t| matches!(t, Tok::Star),
        |t, c| match t {
            Tok::Star => true,
            Tok::One(set) => set.contains(*c),
        },
    )
}

/// True when some (non-empty) segment matches both segment patterns.
fn segments_intersect(p: &[Tok], q: &[Tok]) -> bool {
    intersects(
        p,
        q,
        |t| matches!(t, Tok::Star),
        |x, y| match (x, y) {
            (Some(Tok::One(s)), Some(Tok::One(t))) => s.intersects(t),
            // A loop's step is any character; every set holds at least one.
            _ => true,
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn c(s: &str) -> Concern {
        Concern::parse(s).unwrap()
    }

    fn g(s: &str) -> PathGlob {
        PathGlob::parse(s).unwrap()
    }

    #[test]
    fn tells_resources_from_paths() {
        assert!(matches!(c("port:8080"), Concern::Resource(_)));
        assert!(matches!(c("db:main"), Concern::Resource(_)));
        assert!(matches!(c("my-db_2:x y"), Concern::Resource(_)));
        assert!(matches!(c("src/api/**"), Concern::Path(_)));
        assert!(matches!(c("Port:8080"), Concern::Path(_)));
        assert!(matches!(c("a:b/c"), Concern::Path(_)));
        assert!(matches!(c("1a:b"), Concern::Path(_)));
        assert!(matches!(c(":b"), Concern::Path(_)));
        let Concern::Resource(r) = c("  port:8080 ") else {
            panic!("not a resource")
        };
        assert_eq!(
            (r.kind(), r.name(), r.as_str()),
            ("port", "8080", "port:8080")
        );
    }

    #[test]
    fn normalises_to_canonical_text() {
        for (raw, canonical) in [
            ("./src", "src"),
            ("././src//api/", "src/api/**"),
            ("dir/", "dir/**"),
            ("dir/**/", "dir/**"),
            ("a/**/**/b", "a/**/b"),
            ("a/./b", "a/b"),
            (".", "**"),
            ("./", "**"),
            ("a***b", "a*b"),
            ("  docs/*.md  ", "docs/*.md"),
            ("x/[a-z]?", "x/[a-z]?"),
        ] {
            assert_eq!(c(raw).as_str(), canonical, "{raw}");
            assert_eq!(c(raw).to_string(), canonical, "{raw}");
            assert_eq!(c(canonical), c(raw), "{raw}");
        }
        assert_eq!(c("dir/"), c("dir/**"));
        assert_eq!(String::from(c("./a/")), "a/**");
        assert_eq!(Concern::try_from("a/".to_owned()).unwrap(), c("a/**"));
    }

    #[test]
    fn refuses_bad_concerns_with_a_hint() {
        for (raw, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "drive letter"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a\\b", "backslash"),
            ("a\nb", "control"),
            ("port:80\t80", "control"),
            ("[abc", "not closed"),
            ("a/[b/c]", "not closed"),
            ("[z-a]", "backwards"),
        ] {
            let e = Concern::parse(raw).unwrap_err();
            assert!(e.reason.contains(needle), "{raw:?}: {e}");
            assert_eq!(e.what, "concern");
        }
        let long = "a".repeat(513);
        assert!(
            Concern::parse(&long)
                .unwrap_err()
                .reason
                .contains("limit is 512")
        );
        assert!(Concern::parse(&"a".repeat(512)).is_ok());
        assert!(Concern::parse("").unwrap_err().reason.contains("port:8080"));
    }

    #[test]
    fn globs_cover_paths_and_what_is_under_them() {
        assert!(g("src").matches("src"));
        assert!(g("src").matches("src/main.rs"));
        assert!(g("src").matches("./src/a/b/"));
        assert!(!g("src").matches("srcx"));
        assert!(!g("src").matches("lib/src"));
        assert!(g("src/**").matches("src"));
        assert!(g("**").matches("anything/at/all"));
        assert!(!g("**").matches(""));
        assert!(g("docs/*.md").matches("docs/readme.md"));
        assert!(!g("docs/*.md").matches("docs/sub/readme.md"));
        assert!(!g("docs/*.md").matches("docs/readme.txt"));
        assert!(g("a/**/b").matches("a/b"));
        assert!(g("a/**/b").matches("a/x/y/b/c"));
        assert!(!g("a/**/b").matches("a/x/y/c"));
        assert!(g("f?o").matches("foo"));
        assert!(!g("f?o").matches("fo"));
        assert!(!g("f?o").matches("f/o"));
        assert!(g("[a-c]x").matches("bx"));
        assert!(!g("[a-c]x").matches("dx"));
        assert!(g("[!a-c]x").matches("dx"));
        assert!(!g("[^a-c]x").matches("ax"));
        assert!(g("[]a]").matches("]"));
        assert!(g("[a-]").matches("-"));
        assert!(g("*").matches("x/y"));
        assert!(g("src/*").matches("src/api/mod.rs"));
    }

    #[test]
    fn overlaps_are_exact_for_globs() {
        let yes = [
            ("src/api/**", "src"),
            ("src/api/**", "src/api/mod.rs"),
            ("src/*.rs", "src/main.rs"),
            ("src/*.rs", "**/main.rs"),
            ("a*", "*b"),
            ("*ab*", "*ba*"),
            ("docs/*.md", "docs/x*"),
            ("**/test/**", "src/**/*.rs"),
            ("[a-c]", "[c-e]"),
            ("[!a]", "[!b]"),
            ("src/*", "src/api/x.rs"),
            ("Cargo.toml", "Cargo.toml"),
            ("**", "x"),
            ("x/*/y", "x/y"),
        ];
        let no = [
            ("src/api/**", "src/db/**"),
            ("docs/*.md", "docs/*.txt"),
            ("a*b", "b*a"),
            ("a?", "a"),
            ("[a-c]", "[d-e]"),
            ("[!a]", "a"),
            ("Cargo.toml", "Cargo.lock"),
            ("x/*/y", "x/z/w"),
            ("src/main.rs", "src/lib.rs"),
        ];
        for (a, b) in yes {
            assert!(c(a).overlaps(&c(b)), "{a} / {b}");
            assert!(c(b).overlaps(&c(a)), "{b} / {a}");
        }
        for (a, b) in no {
            assert!(!c(a).overlaps(&c(b)), "{a} / {b}");
            assert!(!c(b).overlaps(&c(a)), "{b} / {a}");
        }
    }

    #[test]
    fn resources_overlap_only_themselves() {
        assert!(c("port:8080").overlaps(&c("port:8080")));
        assert!(!c("port:8080").overlaps(&c("port:8081")));
        assert!(!c("port:8080").overlaps(&c("**")));
        assert!(!c("**").overlaps(&c("port:8080")));
    }

    #[test]
    fn conflict_finds_the_first_pair() {
        let mine = [c("db:main"), c("src/api/**"), c("docs/**")];
        let theirs = [c("docs/a.md"), c("src/api/x.rs")];
        assert_eq!(conflict(&mine, &theirs), Some((&mine[1], &theirs[1])));
        assert_eq!(conflict(&mine, &[c("db:other"), c("lib/**")]), None);
        assert_eq!(conflict(&[], &theirs), None);
    }
}
