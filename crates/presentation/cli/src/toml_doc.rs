//! A TOML document read with the place of every key and value, and checked with every problem
//! reported at once, each as `file:line:column: message` in plain words: the machinery of the
//! plan file (`plan_file.rs`, which adds JSON), the agents file (`agents_file.rs`) and
//! `config.toml` (`config_file.rs`).
//!
//! The text is read with `toml`'s recovering parser into a tree of [`Node`]s, so that one
//! syntax error does not hide the problems after it, and each file's checker walks that tree:
//! every unknown key is reported (with a "did you mean" when a known key is close), every value
//! of the wrong type says what it must be with an example, instead of serde's "invalid type:
//! sequence, expected a string". Problems on a line with a syntax error are left out, since they
//! may only be its echoes.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::shorten;

/// A value with the byte span of its text.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) span: Range<usize>,
    pub(crate) kind: Kind,
}

/// What a value is.
#[derive(Debug)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Node>),
    Table(Vec<Entry>),
    /// A date-time, a null, a number too large: never right in these files.
    Other(&'static str),
}

/// A key of a table, with its span, and its value.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) span: Range<usize>,
    pub(crate) value: Node,
}

impl Kind {
    /// The value in words, for "must be ..., not {describe}".
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::Str(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
            Kind::Str(_) => "a string".to_owned(),
            Kind::Int(n) => format!("the number {n}"),
            Kind::Float(x) => format!("the number {x}"),
            Kind::Bool(b) => b.to_string(),
            Kind::Array(_) => "a list".to_owned(),
            Kind::Table(_) => "a table".to_owned(),
            Kind::Other(what) => (*what).to_owned(),
        }
    }
}

/// The value of `key` in a table.
pub(crate) fn get<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Node> {
    entries.iter().find(|e| e.key == key).map(|e| &e.value)
}

fn from_toml(v: &Spanned<DeValue<'_>>) -> Node {
    let kind = match v.get_ref() {
        DeValue::String(s) => Kind::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or(Kind::Other("a number too large"), Kind::Int),
        DeValue::Float(x) => x
            .as_str()
            .parse::<f64>()
            .map_or(Kind::Other("a number that cannot be read"), Kind::Float),
        DeValue::Boolean(b) => Kind::Bool(*b),
        DeValue::Datetime(_) => Kind::Other("a date-time"),
        DeValue::Array(items) => Kind::Array(items.iter().map(from_toml).collect()),
        DeValue::Table(t) => Kind::Table(toml_entries(t)),
    };
    Node {
        span: v.span(),
        kind,
    }
}

fn toml_entries(t: &DeTable<'_>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = t
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            span: k.span(),
            value: from_toml(v),
        })
        .collect();
    entries.sort_by_key(|e| e.span.start);
    entries
}

/// The tree of a TOML text (as much of it as reads), and its syntax errors with their spans.
pub(crate) fn read(text: &str) -> (Node, Vec<(Range<usize>, String)>) {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let syntax = errors
        .iter()
        .map(|e| {
            let lines: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let span = e.span().unwrap_or(0..0);
            let mut message = lines.join("; ");
            if message == "duplicate key"
                && let Some(key) = text.get(span.clone())
            {
                message = format!("the key `{key}` is given twice in this table; keep one");
            }
            (span, format!("TOML syntax error: {message}"))
        })
        .collect();
    let root = Node {
        span: doc.span(),
        kind: Kind::Table(toml_entries(doc.get_ref())),
    };
    (root, syntax)
}

/// 1-based line and column (in characters) of a byte offset of `text`.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The known key closest to `key`, if one is close enough to be a typo.
pub(crate) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    // Known keys are short: a long key is close to none, and comparing it would only cost time.
    if key.len() > 256 {
        return None;
    }
    let lower = key.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `message` with the node's string, where it echoes it, cut short (`error::shorten`).
pub(crate) fn echoed(node: &Node, message: String) -> String {
    match &node.kind {
        Kind::Str(s) if shorten(s) != *s => message.replace(s.as_str(), &shorten(s)),
        _ => message,
    }
}

/// One problem, at its place.
struct Found {
    line: usize,
    column: usize,
    message: String,
    syntax: bool,
}

/// A TOML file being checked: its tree, and the problems found so far.
pub(crate) struct Doc<'a> {
    path: &'a Path,
    text: &'a str,
    found: Vec<Found>,
}

impl<'a> Doc<'a> {
    /// Reads `text` (the file at `path`), recording its syntax errors.
    pub(crate) fn read(path: &'a Path, text: &'a str) -> (Doc<'a>, Node) {
        let (root, syntax) = read(text);
        let mut doc = Doc {
            path,
            text,
            found: Vec::new(),
        };
        for (span, message) in syntax {
            let (line, column) = position(text, span.start);
            doc.found.push(Found {
                line,
                column,
                message,
                syntax: true,
            });
        }
        (doc, root)
    }

    /// `file:line:column` of a span, for messages that point at a second place.
    pub(crate) fn place(&self, span: &Range<usize>) -> String {
        let (line, column) = position(self.text, span.start);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn add(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.found.push(Found {
            line,
            column,
            message: message.into(),
            syntax: false,
        });
    }

    /// How many problems were found so far.
    pub(crate) fn count(&self) -> usize {
        self.found.len()
    }

    /// Every problem, sorted by place, as `file:line:column: message`; those on a line with a
    /// syntax error are left out (they may be its echoes). `None` when there are none.
    pub(crate) fn problems(self) -> Option<Vec<String>> {
        let broken: Vec<usize> = self
            .found
            .iter()
            .filter(|f| f.syntax)
            .map(|f| f.line)
            .collect();
        let mut found: Vec<Found> = self
            .found
            .into_iter()
            .filter(|f| f.syntax || !broken.contains(&f.line))
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by_key(|f| (f.line, f.column));
        let path = self.path.display();
        Some(
            found
                .into_iter()
                .map(|f| format!("{path}:{}:{}: {}", f.line, f.column, f.message))
                .collect(),
        )
    }

    /// Every key of `entries` that is not `known` is a problem; `place` says where ("in
    /// [retry]"). A key close to a known one gets a "did you mean".
    pub(crate) fn unknown_keys(&mut self, entries: &[Entry], known: &[&str], place: &str) {
        for e in entries {
            let key = e.key.as_str();
            if known.contains(&key) {
                continue;
            }
            let hint = match closest(key, known) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("the keys allowed here are {}", known.join(", ")),
            };
            self.add(
                &e.span,
                format!("unknown key `{}` {place}; {hint}", shorten(key)),
            );
        }
    }

    /// A key that must be given and is not, reported at the table's place.
    pub(crate) fn missing(&mut self, span: &Range<usize>, key: &str, place: &str, example: &str) {
        self.add(
            span,
            format!("{place} has no `{key}`; add one, like {key} = {example}"),
        );
    }

    /// `key` has a value of the wrong type.
    pub(crate) fn wrong_type(&mut self, key: &str, node: &Node, want: &str, example: &str) {
        self.add(
            &node.span,
            format!(
                "`{key}` must be {want}, like {key} = {example}; not {}",
                node.kind.describe()
            ),
        );
    }

    /// The string, or the problem recorded.
    pub(crate) fn string<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
        example: &str,
    ) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                self.wrong_type(key, node, "a string", example);
                None
            }
        }
    }

    /// The boolean, or the problem recorded.
    pub(crate) fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, node, "true or false", "true");
                None
            }
        }
    }

    /// A whole number from `min` to `max`, or the problem recorded.
    pub(crate) fn whole(&mut self, key: &str, node: &Node, min: i64, max: i64) -> Option<i64> {
        match node.kind {
            Kind::Int(n) if (min..=max).contains(&n) => Some(n),
            Kind::Int(n) => {
                self.add(
                    &node.span,
                    format!("`{key}` must be a whole number from {min} to {max}, not {n}"),
                );
                None
            }
            _ => {
                let want = format!("a whole number from {min} to {max}");
                self.wrong_type(key, node, &want, &min.max(1).min(max).to_string());
                None
            }
        }
    }

    /// The strings of a list, each with its node; every item that is not a string is a problem.
    pub(crate) fn strings<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
        example: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let Kind::Array(items) = &node.kind else {
            self.wrong_type(key, node, "a list of strings", example);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                Kind::Str(s) => out.push((s.as_str(), item)),
                other => {
                    let m = format!(
                        "each item of `{key}` must be a string, like {key} = {example}; not {}",
                        other.describe()
                    );
                    self.add(&item.span, m);
                }
            }
        }
        out
    }

    /// The entries of a table, or the problem recorded.
    pub(crate) fn table<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
        example: &str,
    ) -> Option<&'n [Entry]> {
        match &node.kind {
            Kind::Table(entries) => Some(entries),
            _ => {
                self.wrong_type(key, node, "a table", example);
                None
            }
        }
    }

    /// The tables of an array of tables (`[[key]]`), each with its node.
    pub(crate) fn tables<'n>(&mut self, key: &str, node: &'n Node) -> Vec<(&'n [Entry], &'n Node)> {
        let Kind::Array(items) = &node.kind else {
            self.add(
                &node.span,
                format!(
                    "`{key}` must be a list of tables, each starting with a [[{key}]] line; not {}",
                    node.kind.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                Kind::Table(entries) => out.push((entries.as_slice(), item)),
                other => {
                    let m = format!(
                        "each item of `{key}` must be a table (a [[{key}]] section), not {}",
                        other.describe()
                    );
                    self.add(&item.span, m);
                }
            }
        }
        out
    }

    /// The value of a parse, or its error recorded at the node (with the node's text cut
    /// short where the error echoes it).
    pub(crate) fn parsed<T, E: std::fmt::Display>(
        &mut self,
        node: &Node,
        r: Result<T, E>,
    ) -> Option<T> {
        r.map_err(|e| self.add(&node.span, echoed(node, e.to_string())))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, f: impl FnOnce(&mut Doc<'_>, &Node)) -> Vec<String> {
        let path = Path::new("f.toml");
        let (mut doc, root) = Doc::read(path, text);
        f(&mut doc, &root);
        doc.problems().unwrap_or_default()
    }

    #[test]
    fn wrong_types_are_said_in_plain_words_with_an_example() {
        let problems = check("command = [\"claude\"]\nslots = \"two\"\n", |doc, root| {
            let Kind::Table(top) = &root.kind else {
                panic!("a table")
            };
            doc.string("command", get(top, "command").unwrap(), "\"claude\"");
            doc.whole("slots", get(top, "slots").unwrap(), 1, 256);
        });
        assert_eq!(
            problems,
            vec![
                "f.toml:1:11: `command` must be a string, like command = \"claude\"; not a list",
                "f.toml:2:9: `slots` must be a whole number from 1 to 256, like slots = 1; not the string \"two\"",
            ]
        );
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean_or_the_allowed_keys() {
        let problems = check("slot = 1\nzzz = 2\n", |doc, root| {
            let Kind::Table(top) = &root.kind else {
                panic!("a table")
            };
            doc.unknown_keys(top, &["slots", "name"], "in [[agent]]");
        });
        assert_eq!(
            problems,
            vec![
                "f.toml:1:1: unknown key `slot` in [[agent]]; did you mean `slots`?",
                "f.toml:2:1: unknown key `zzz` in [[agent]]; the keys allowed here are slots, name",
            ]
        );
    }

    #[test]
    fn a_syntax_error_does_not_hide_the_problems_of_other_lines() {
        let problems = check("a = \nb = [1\nc = 3\n", |doc, root| {
            let Kind::Table(top) = &root.kind else {
                panic!("a table")
            };
            doc.unknown_keys(top, &["x"], "here");
        });
        assert!(problems[0].starts_with("f.toml:1:"), "{problems:?}");
        assert!(problems[0].contains("TOML syntax error"), "{problems:?}");
        assert!(problems.len() >= 2, "{problems:?}");
    }

    #[test]
    fn numbers_out_of_range_name_the_range() {
        let problems = check("slots = -1\n", |doc, root| {
            let Kind::Table(top) = &root.kind else {
                panic!("a table")
            };
            doc.whole("slots", get(top, "slots").unwrap(), 1, 256);
        });
        assert_eq!(
            problems,
            vec!["f.toml:1:9: `slots` must be a whole number from 1 to 256, not -1"]
        );
    }
}
