//! A TOML (or JSON) document read with the place of every key and value, and checked with every
//! problem reported at once through [`crate::diagnostics`], each as `file:line:column: message`
//! in plain words: the machinery of the plan file (`plan_file.rs`), and of the CLI's agents file
//! (`agents_file.rs`) and `config.toml` (`config_file.rs`).
//!
//! TOML is read with `toml`'s recovering parser into a tree of [`Node`]s, so that one syntax
//! error does not hide the problems after it; JSON is read by `serde_json` (borrowed raw values
//! give each value's place in the text), into the same tree. Each file's checker walks that
//! tree: every unknown key is reported (with a "did you mean" when a known key is close), every
//! value of the wrong type says what it must be with an example, instead of serde's "invalid
//! type: sequence, expected a string". Problems on a line with a syntax error are left out, since
//! they may only be its echoes.

use std::ops::Range;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostics::{Diagnostics, Place, Problem, closest, shorten};

/// A value with the byte span of its text.
#[derive(Debug)]
pub struct Node {
    pub span: Range<usize>,
    pub kind: NodeKind,
}

/// What kind of value a node of a TOML or JSON document is, with the value.
#[derive(Debug)]
pub enum NodeKind {
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
pub struct Entry {
    pub key: String,
    pub span: Range<usize>,
    pub value: Node,
}

impl NodeKind {
    /// The value in words, for "must be ..., not {describe}".
    pub fn describe(&self) -> String {
        match self {
            NodeKind::Str(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
            NodeKind::Str(_) => "a string".to_owned(),
            NodeKind::Int(n) => format!("the number {n}"),
            NodeKind::Float(x) => format!("the number {x}"),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Array(_) => "a list".to_owned(),
            NodeKind::Table(_) => "a table".to_owned(),
            NodeKind::Other(what) => (*what).to_owned(),
        }
    }
}

/// The value of `key` in a table.
pub fn get<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Node> {
    entries.iter().find(|e| e.key == key).map(|e| &e.value)
}

fn from_toml(v: &Spanned<DeValue<'_>>) -> Node {
    let kind = match v.get_ref() {
        DeValue::String(s) => NodeKind::Str(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or(NodeKind::Other("a number too large"), NodeKind::Int),
        DeValue::Float(x) => x.as_str().parse::<f64>().map_or(
            NodeKind::Other("a number that cannot be read"),
            NodeKind::Float,
        ),
        DeValue::Boolean(b) => NodeKind::Bool(*b),
        DeValue::Datetime(_) => NodeKind::Other("a date-time"),
        DeValue::Array(items) => NodeKind::Array(items.iter().map(from_toml).collect()),
        DeValue::Table(t) => NodeKind::Table(toml_entries(t)),
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
pub fn read(text: &str) -> (Node, Vec<(Range<usize>, String)>) {
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
        kind: NodeKind::Table(toml_entries(doc.get_ref())),
    };
    (root, syntax)
}

/// `message` with the node's string, where it echoes it, cut short ([`shorten`]).
pub fn echoed(node: &Node, message: String) -> String {
    match &node.kind {
        NodeKind::Str(s) if shorten(s) != *s => message.replace(s.as_str(), &shorten(s)),
        _ => message,
    }
}

/// A JSON text read into a tree.
#[derive(Debug)]
pub struct JsonDoc {
    pub root: Node,
    /// Keys given twice in one object: the later ones, with their spans (the tree keeps the
    /// first).
    pub duplicates: Vec<(Range<usize>, String)>,
}

/// The tree of a JSON text that serde_json reads; or serde_json's syntax error, at its line and
/// column.
pub fn read_json(text: &str) -> Result<JsonDoc, Problem> {
    let root = serde_json::from_str::<&RawValue>(text).map_err(|e| {
        let full = e.to_string();
        let message = full
            .rfind(" at line ")
            .map_or(full.as_str(), |i| &full[..i]);
        Problem {
            place: Place::At {
                line: e.line().max(1),
                column: e.column().max(1),
            },
            message: format!("JSON syntax error: {message}"),
        }
    })?;
    let mut duplicates = Vec::new();
    let root = json_node(text, root, 0, &mut duplicates);
    Ok(JsonDoc { root, duplicates })
}

/// The entries of a JSON object in the order of the text, each value as its raw text.
struct JsonEntries<'t>(Vec<(String, &'t RawValue)>);

impl<'de> Deserialize<'de> for JsonEntries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = JsonEntries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(JsonEntries(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Where `raw`, a slice of `text` that serde_json borrowed, starts in it.
fn offset_in(text: &str, raw: &RawValue) -> usize {
    (raw.get().as_ptr() as usize)
        .checked_sub(text.as_ptr() as usize)
        .filter(|&o| o <= text.len())
        .unwrap_or(0)
}

/// The first byte at or after `at` that is not JSON whitespace.
fn skip_space(text: &str, mut at: usize) -> usize {
    while matches!(text.as_bytes().get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// How deep the tree of a JSON text goes: a list or an object below it is kept without its
/// contents. The files read this way look at most four levels down (a plan's task's list of
/// strings); reading deeper would cost a pass over the deeper text per level.
const MAX_JSON_DEPTH: usize = 8;

/// The node of a JSON value that serde_json has read, as a slice of `text`, at `depth` (the root
/// is 0). Objects and arrays are read again one level down, as raw values, so the whole costs
/// one pass over the text per level ([`MAX_JSON_DEPTH`] at most); a key's span is found between
/// the end of the previous value (or the `{`) and the `:` before its value, where JSON allows
/// only spaces and a comma.
fn json_node(
    text: &str,
    raw: &RawValue,
    depth: usize,
    duplicates: &mut Vec<(Range<usize>, String)>,
) -> Node {
    let json = raw.get();
    let start = offset_in(text, raw);
    let span = start..start + json.len();
    let deep = depth >= MAX_JSON_DEPTH;
    let kind = match json.as_bytes().first() {
        Some(b'{') if deep => NodeKind::Table(Vec::new()),
        Some(b'[') if deep => NodeKind::Array(Vec::new()),
        Some(b'{') => match serde_json::from_str::<JsonEntries<'_>>(json) {
            Ok(JsonEntries(pairs)) => {
                let mut entries: Vec<Entry> = Vec::with_capacity(pairs.len());
                let mut cursor = start + 1;
                for (key, value) in pairs {
                    let mut key_start = skip_space(text, cursor);
                    if text.as_bytes().get(key_start) == Some(&b',') {
                        key_start = skip_space(text, key_start + 1);
                    }
                    let value_start = offset_in(text, value);
                    // Back from the value over spaces and the colon: the key's closing quote.
                    let before = text.get(key_start..value_start).unwrap_or("");
                    let key_end =
                        key_start + before.trim_end().trim_end_matches(':').trim_end().len();
                    let key_span = key_start..key_end;
                    let node = json_node(text, value, depth + 1, duplicates);
                    cursor = node.span.end;
                    if entries.iter().any(|e| e.key == key) {
                        duplicates.push((key_span, key));
                    } else {
                        entries.push(Entry {
                            key,
                            span: key_span,
                            value: node,
                        });
                    }
                }
                NodeKind::Table(entries)
            }
            Err(_) => NodeKind::Other("an object that cannot be read"),
        },
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(json) {
            Ok(items) => NodeKind::Array(
                items
                    .into_iter()
                    .map(|item| json_node(text, item, depth + 1, duplicates))
                    .collect(),
            ),
            Err(_) => NodeKind::Other("a list that cannot be read"),
        },
        Some(b'"') => serde_json::from_str::<String>(json).map_or(
            NodeKind::Other("a string that cannot be read"),
            NodeKind::Str,
        ),
        Some(b't') => NodeKind::Bool(true),
        Some(b'f') => NodeKind::Bool(false),
        Some(b'n') => NodeKind::Other("null"),
        _ if json.contains(['.', 'e', 'E']) => json.parse::<f64>().map_or(
            NodeKind::Other("a number that cannot be read"),
            NodeKind::Float,
        ),
        _ => json
            .parse::<i64>()
            .map_or(NodeKind::Other("a number too large"), NodeKind::Int),
    };
    Node { span, kind }
}

/// A TOML file being checked: the problems found so far.
#[derive(Debug)]
pub struct Doc<'a> {
    diagnostics: Diagnostics<'a>,
}

impl<'a> Doc<'a> {
    /// Reads `text` (the file at `path`), recording its syntax errors.
    pub fn read(path: &'a Path, text: &'a str) -> (Doc<'a>, Node) {
        let (root, syntax) = read(text);
        let mut diagnostics = Diagnostics::new(path, text);
        for (span, message) in syntax {
            let place = diagnostics.place(span.start);
            diagnostics.syntax(place, message);
        }
        (Doc { diagnostics }, root)
    }

    /// `file:line:column` of a span, for messages that point at a second place.
    pub fn place(&self, span: &Range<usize>) -> String {
        self.diagnostics.place_of(span)
    }

    /// Records a problem at the start of `span`.
    pub fn add(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.diagnostics.add(span, message);
    }

    /// How many problems were found so far.
    pub fn count(&self) -> usize {
        self.diagnostics.count()
    }

    /// Every problem, in file order; those on a line with a syntax error are left out (they may
    /// be its echoes). Empty when there are none.
    pub fn finish(self) -> Vec<Problem> {
        self.diagnostics.finish()
    }

    /// Every key of `entries` that is not `known` is a problem; `place` says where (`"in
    /// [retry]"`). A key close to a known one gets a "did you mean".
    pub fn unknown_keys(&mut self, entries: &[Entry], known: &[&str], place: &str) {
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
    pub fn missing(&mut self, span: &Range<usize>, key: &str, place: &str, example: &str) {
        self.add(
            span,
            format!("{place} has no `{key}`; add one, like {key} = {example}"),
        );
    }

    /// `key` has a value of the wrong type.
    pub fn wrong_type(&mut self, key: &str, node: &Node, want: &str, example: &str) {
        self.add(
            &node.span,
            format!(
                "`{key}` must be {want}, like {key} = {example}; not {}",
                node.kind.describe()
            ),
        );
    }

    /// The string, or the problem recorded.
    pub fn string<'n>(&mut self, key: &str, node: &'n Node, example: &str) -> Option<&'n str> {
        match &node.kind {
            NodeKind::Str(s) => Some(s),
            _ => {
                self.wrong_type(key, node, "a string", example);
                None
            }
        }
    }

    /// The boolean, or the problem recorded.
    pub fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, node, "true or false", "true");
                None
            }
        }
    }

    /// A whole number from `min` to `max`, or the problem recorded.
    pub fn whole(&mut self, key: &str, node: &Node, min: i64, max: i64) -> Option<i64> {
        match node.kind {
            NodeKind::Int(n) if (min..=max).contains(&n) => Some(n),
            NodeKind::Int(n) => {
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
    pub fn strings<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
        example: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let NodeKind::Array(items) = &node.kind else {
            self.wrong_type(key, node, "a list of strings", example);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                NodeKind::Str(s) => out.push((s.as_str(), item)),
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
    pub fn table<'n>(&mut self, key: &str, node: &'n Node, example: &str) -> Option<&'n [Entry]> {
        match &node.kind {
            NodeKind::Table(entries) => Some(entries),
            _ => {
                self.wrong_type(key, node, "a table", example);
                None
            }
        }
    }

    /// The tables of an array of tables (`[[key]]`), each with its node.
    pub fn tables<'n>(&mut self, key: &str, node: &'n Node) -> Vec<(&'n [Entry], &'n Node)> {
        let NodeKind::Array(items) = &node.kind else {
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
                NodeKind::Table(entries) => out.push((entries.as_slice(), item)),
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
    pub fn parsed<T, E: std::fmt::Display>(&mut self, node: &Node, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(&node.span, echoed(node, e.to_string())))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Source;

    fn check(text: &str, f: impl FnOnce(&mut Doc<'_>, &Node)) -> Vec<String> {
        let path = Path::new("f.toml");
        let (mut doc, root) = Doc::read(path, text);
        f(&mut doc, &root);
        crate::diagnostics::render(path, &doc.finish())
    }

    #[test]
    fn wrong_types_are_said_in_plain_words_with_an_example() {
        let problems = check("command = [\"claude\"]\nslots = \"two\"\n", |doc, root| {
            let NodeKind::Table(top) = &root.kind else {
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
            let NodeKind::Table(top) = &root.kind else {
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
            let NodeKind::Table(top) = &root.kind else {
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
            let NodeKind::Table(top) = &root.kind else {
                panic!("a table")
            };
            doc.whole("slots", get(top, "slots").unwrap(), 1, 256);
        });
        assert_eq!(
            problems,
            vec!["f.toml:1:9: `slots` must be a whole number from 1 to 256, not -1"]
        );
    }

    #[test]
    fn json_keys_and_values_keep_their_places() {
        let text = "\u{20}{ \"a\\\"b\" :\t[1, 2.5, \"é\"] ,\n  \"n\": {\"x\": null, \"y\": true},\n\
                    \"a\\\"b\": 99999999999999999999 }";
        let doc = read_json(text).unwrap();
        let at = |offset: usize| Source::new(text).position(offset);
        let NodeKind::Table(top) = &doc.root.kind else {
            panic!("a table")
        };
        // The first key, with an escaped quote, and its list.
        assert_eq!(top[0].key, "a\"b");
        assert_eq!(&text[top[0].span.clone()], "\"a\\\"b\"");
        let NodeKind::Array(items) = &top[0].value.kind else {
            panic!("a list")
        };
        let shown: Vec<&str> = items.iter().map(|i| &text[i.span.clone()]).collect();
        assert_eq!(shown, ["1", "2.5", "\"é\""]);
        assert!(matches!(items[0].kind, NodeKind::Int(1)));
        assert!(matches!(items[1].kind, NodeKind::Float(x) if x == 2.5));
        assert!(matches!(&items[2].kind, NodeKind::Str(s) if s == "é"));
        // A key after a comma and a line break, and the keys of a nested object.
        assert_eq!(top[1].key, "n");
        assert_eq!(at(top[1].span.start), (2, 3));
        let NodeKind::Table(inner) = &top[1].value.kind else {
            panic!("a table")
        };
        assert_eq!(&text[inner[1].span.clone()], "\"y\"");
        assert!(matches!(inner[0].value.kind, NodeKind::Other("null")));
        assert!(matches!(inner[1].value.kind, NodeKind::Bool(true)));
        // The repeated key is left out of the tree and given with its place.
        assert_eq!(top.len(), 2);
        assert_eq!(doc.duplicates.len(), 1);
        assert_eq!(at(doc.duplicates[0].0.start), (3, 1));
        assert_eq!(doc.duplicates[0].1, "a\"b");
    }

    #[test]
    fn json_deeper_than_the_checkers_look_is_kept_without_its_contents() {
        let depth = MAX_JSON_DEPTH + 3;
        let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let mut node = &read_json(&text).unwrap().root;
        let mut levels = 0;
        while let NodeKind::Array(items) = &node.kind {
            levels += 1;
            match items.first() {
                Some(first) => node = first,
                None => break,
            }
        }
        assert_eq!(levels, MAX_JSON_DEPTH + 1);
        assert_eq!(
            &text[node.span.clone()],
            &text[MAX_JSON_DEPTH..text.len() - MAX_JSON_DEPTH]
        );
    }

    #[test]
    fn json_syntax_errors_carry_serde_jsons_line_and_column() {
        let Err(p) = read_json("{\n  \"a\": [1,\n}") else {
            panic!("read")
        };
        assert_eq!(p.place, Place::At { line: 3, column: 1 });
        assert!(
            p.message.starts_with("JSON syntax error: "),
            "{}",
            p.message
        );
        assert!(!p.message.contains(" at line "), "{}", p.message);
    }
}
