//! Problems of the files that MAOS reads (plan files, workflow files, the agents file,
//! `config.toml`): where each one is (a byte span turned into `file:line:column`, a JSON path,
//! or the file as a whole), collecting every problem of a file at once, in file order, the
//! "did you mean" of a misspelt name, and the lines they are shown as. The file checkers (the
//! plan file's here, and the CLI's `workflow_file`, `agents_file` and `config_file`) all report
//! through this module.

use std::ops::Range;
use std::path::Path;

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A line and column of the text, both from 1 (the column counted in characters).
    At { line: usize, column: usize },
    /// A JSON path such as `stages[2].key`, where the reader keeps no position.
    Path(String),
    /// The file as a whole.
    File,
    /// The text as a whole, shown at its start (line 1, column 1): a key the text lacks.
    Start,
}

impl Place {
    /// `file:line:column` (or `file:path`, or `file`).
    pub fn shown(&self, path: &Path) -> String {
        match self {
            Place::At { line, column } => format!("{}:{line}:{column}", path.display()),
            Place::Start => format!("{}:1:1", path.display()),
            Place::Path(p) => format!("{}:{p}", path.display()),
            Place::File => path.display().to_string(),
        }
    }

    /// The order of problems in a report: the file as a whole first, then by line and column,
    /// then JSON paths.
    fn order(&self) -> (u8, usize, usize) {
        match self {
            Place::File => (0, 0, 0),
            Place::At { line, column } => (1, *line, *column),
            Place::Start => (1, 1, 1),
            Place::Path(_) => (2, 0, 0),
        }
    }
}

/// One problem of a file: where it is, and what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

impl Problem {
    /// A problem of the file as a whole.
    pub fn file(message: impl Into<String>) -> Problem {
        Problem {
            place: Place::File,
            message: message.into(),
        }
    }

    /// The problem as one line: `file:line:column: message`.
    pub fn shown(&self, path: &Path) -> String {
        format!("{}: {}", self.place.shown(path), self.message)
    }
}

/// Every problem as a line `file:line:column: message`, in the order given.
pub fn render(path: &Path, problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| p.shown(path)).collect()
}

/// A text, with where each of its lines starts, to turn byte offsets into lines and columns.
#[derive(Debug)]
pub struct Source<'a> {
    text: &'a str,
    /// The byte offset where each line starts: 0, then one past each `\n`.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source { text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset: the line by a binary search of
    /// the line starts, the column by counting the characters of that line only. An offset past
    /// the end is the end; one inside a character is that character.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut start = offset.min(self.text.len());
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= start).max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start..start)
            .map_or(0, |l| l.chars().count())
            + 1;
        (line, column)
    }

    /// The place of a byte offset.
    pub fn place(&self, offset: usize) -> Place {
        let (line, column) = self.position(offset);
        Place::At { line, column }
    }
}

/// How far a problem reaches: it decides which problems a syntax error hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The text is not TOML (or JSON).
    Syntax,
    /// A problem of one value or key: left out when its line has a syntax error.
    Local,
    /// A problem that only a complete document shows (a missing key, an unknown id): left out
    /// when the file has a syntax error anywhere.
    Whole,
}

/// The problems of one file, collected as the checker finds them.
#[derive(Debug)]
pub struct Diagnostics<'a> {
    path: &'a Path,
    source: Source<'a>,
    found: Vec<(Problem, Scope)>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Diagnostics<'a> {
        Diagnostics {
            path,
            source: Source::new(text),
            found: Vec::new(),
        }
    }

    /// `file:line:column` of a span, for messages that point at a second place.
    pub fn place_of(&self, span: &Range<usize>) -> String {
        self.source.place(span.start).shown(self.path)
    }

    /// The place of a byte offset of the text.
    pub fn place(&self, offset: usize) -> Place {
        self.source.place(offset)
    }

    /// A syntax error at `place`.
    pub fn syntax(&mut self, place: Place, message: impl Into<String>) {
        self.push(place, message.into(), Scope::Syntax);
    }

    /// A problem at the start of `span`.
    pub fn add(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let place = self.source.place(span.start);
        self.push(place, message.into(), Scope::Local);
    }

    /// A problem at a place given as such (a JSON path, the file).
    pub fn add_at(&mut self, place: Place, message: impl Into<String>) {
        self.push(place, message.into(), Scope::Local);
    }

    /// A problem that only a complete document can show (a missing key, an unknown id), at the
    /// start of `span`.
    pub fn add_whole(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let place = self.source.place(span.start);
        self.push(place, message.into(), Scope::Whole);
    }

    /// A problem of the text as a whole (a key it lacks), shown at its start; like
    /// [`Diagnostics::add_whole`], left out when the text has a syntax error.
    pub fn add_whole_text(&mut self, message: impl Into<String>) {
        self.push(Place::Start, message.into(), Scope::Whole);
    }

    fn push(&mut self, place: Place, message: String, scope: Scope) {
        self.found.push((Problem { place, message }, scope));
    }

    /// How many problems were found so far.
    pub fn count(&self) -> usize {
        self.found.len()
    }

    /// Every problem, in file order. With syntax errors, the problems on a line with one, and
    /// those that need the whole document, are left out: they may only be its echoes.
    pub fn finish(self) -> Vec<Problem> {
        let line = |p: &Problem| match p.place {
            Place::At { line, .. } => Some(line),
            _ => None,
        };
        let broken: Vec<usize> = self
            .found
            .iter()
            .filter(|(_, k)| *k == Scope::Syntax)
            .filter_map(|(p, _)| line(p))
            .collect();
        let any_syntax = self.found.iter().any(|(_, k)| *k == Scope::Syntax);
        let mut problems: Vec<Problem> = self
            .found
            .into_iter()
            .filter(|(p, k)| match k {
                Scope::Syntax => true,
                Scope::Local => line(p).is_none_or(|l| !broken.contains(&l)),
                Scope::Whole => !any_syntax,
            })
            .map(|(p, _)| p)
            .collect();
        problems.sort_by_key(|p| p.place.order());
        problems
    }
}

/// The most characters of a value echoed in a message.
const ECHO_MAX: usize = 60;

/// A value as a message echoes it: whole when it is short, else its first 60 characters and how
/// many more there are (a 10,000-character name must not flood the terminal).
pub fn shorten(value: &str) -> String {
    let total = value.chars().count();
    if total <= ECHO_MAX {
        return value.to_owned();
    }
    let head: String = value.chars().take(ECHO_MAX).collect();
    format!("{head}…({} more characters)", total - ECHO_MAX)
}

/// The longest text (in bytes) compared for a "did you mean": the names compared are short, and
/// comparing a long text would only cost time and memory.
const MAX_COMPARED: usize = 256;

/// The known name closest to `name` (compared in lowercase), if one is close enough to be a
/// typo: at most a third of its characters wrong (1 to 3 edits).
pub fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    if name.len() > MAX_COMPARED {
        return None;
    }
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Close enough to be a typo of each other: a third of the characters (at most 3) wrong, or one
/// name inside the other. Names of one or two characters are never close to anything.
pub fn is_close(a: &str, b: &str) -> bool {
    if a.len() > MAX_COMPARED || b.len() > MAX_COMPARED {
        return false;
    }
    let limit = (a.chars().count().max(b.chars().count()) / 3).min(3);
    (limit > 0 && edit_distance(a, b) <= limit)
        || (a.len() >= 3 && b.len() >= 3 && (a.contains(b) || b.contains(a)))
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
pub fn edit_distance(a: &str, b: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns_in_characters() {
        let s = Source::new("ab\nçd\n\nx");
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(2), (1, 3));
        assert_eq!(s.position(3), (2, 1));
        // 'ç' is two bytes: 'd' is the second character; an offset inside 'ç' is 'ç'.
        assert_eq!(s.position(5), (2, 2));
        assert_eq!(s.position(4), (2, 1));
        assert_eq!(s.position(7), (3, 1));
        assert_eq!(s.position(8), (4, 1));
        assert_eq!(s.position(1_000), (4, 2));
        assert_eq!(Source::new("").position(0), (1, 1));
    }

    #[test]
    fn positions_agree_with_counting_from_the_start_at_every_offset() {
        // The naive way: count the line breaks before the offset, then the characters since the
        // last one (an offset inside a character counts as that character).
        let naive = |text: &str, offset: usize| {
            let mut start = offset.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        };
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "ab\ncd",
            "é\nüñ\n\nx€y\n",
            "\r\n\tz\r\n",
        ] {
            let source = Source::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    source.position(offset),
                    naive(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn problems_come_in_file_order_and_syntax_errors_hide_their_echoes() {
        let path = Path::new("f.toml");
        let text = "a = 1\nb = \nc = 3\n";
        let mut d = Diagnostics::new(path, text);
        d.add(&(11..12), "third line");
        d.add_at(Place::Path("x[0]".into()), "a path");
        d.add(&(8..9), "on the broken line");
        d.syntax(Place::At { line: 2, column: 5 }, "syntax");
        d.add_at(Place::File, "the file");
        d.add_whole(&(0..0), "needs the whole file");
        d.add(&(0..1), "first line");
        assert_eq!(d.count(), 7);
        assert_eq!(
            render(path, &d.finish()),
            [
                "f.toml: the file",
                "f.toml:1:1: first line",
                "f.toml:2:5: syntax",
                "f.toml:3:1: third line",
                "f.toml:x[0]: a path",
            ]
        );
        // Without a syntax error, nothing is left out.
        let mut d = Diagnostics::new(path, text);
        d.add_whole(&(6..7), "whole");
        d.add(&(0..1), "local");
        assert_eq!(
            render(path, &d.finish()),
            ["f.toml:1:1: local", "f.toml:2:1: whole"]
        );
    }

    #[test]
    fn the_whole_text_is_shown_at_its_start_and_hidden_by_a_syntax_error() {
        let path = Path::new("f.toml");
        let mut d = Diagnostics::new(path, "a = 1\n");
        d.add(&(0..1), "at the start");
        d.add_whole_text("missing");
        d.add(&(4..5), "after");
        assert_eq!(
            render(path, &d.finish()),
            [
                "f.toml:1:1: at the start",
                "f.toml:1:1: missing",
                "f.toml:1:5: after"
            ]
        );
        let mut d = Diagnostics::new(path, "a = \n");
        d.add_whole_text("missing");
        d.syntax(Place::At { line: 1, column: 5 }, "syntax");
        assert_eq!(render(path, &d.finish()), ["f.toml:1:5: syntax"]);
    }

    #[test]
    fn long_values_are_shortened() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(10_000);
        let short = shorten(&long);
        assert!(short.starts_with(&"é".repeat(60)), "{short}");
        assert!(short.ends_with("é…(9940 more characters)"), "{short}");
    }

    #[test]
    fn a_close_name_is_suggested_and_a_far_one_is_not() {
        let known = ["slots", "name", "capabilities"];
        assert_eq!(closest("slot", &known), Some("slots"));
        assert_eq!(closest("NAME", &known), Some("name"));
        assert_eq!(closest("capabilites", &known), Some("capabilities"));
        assert_eq!(closest("zzz", &known), None);
        assert_eq!(closest(&"x".repeat(300), &known), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert!(is_close("review", "reveiw"));
        assert!(is_close("docs", "docs-site"));
        assert!(!is_close("ab", "ba"));
        assert!(!is_close("docs", "tests"));
    }
}
