//! A unified diff (as git prints it) as coloured HTML: file headers, hunk headers, added and
//! removed lines each get a class, and inside changed lines of a few common languages, strings,
//! comments and keywords get one too. Every byte of the diff is escaped here, before it is
//! wrapped in markup, which is why this module may use `PreEscaped`.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped};

use crate::html::escape_into;

/// The most of a diff a page shows; the rest is cut, and the page says so.
pub(crate) const MAX_DIFF: usize = 512 * 1024;

/// The diff as `<pre class="diff">` with one `<span>` per line; `truncated` says whether the
/// text was cut at [`MAX_DIFF`] (it is cut at a line boundary).
pub(crate) fn render(diff: &str) -> (Markup, bool) {
    let (text, truncated) = cut(diff, MAX_DIFF);
    let mut out = String::with_capacity(text.len() * 2 + 64);
    out.push_str("<pre class=\"diff\" aria-label=\"Diff\">");
    let mut lang = Lang::Plain;
    for line in text.lines() {
        let class = if line.starts_with("diff --git") {
            lang = Lang::of(line);
            "file"
        } else if line.starts_with("+++") || line.starts_with("---") || line.starts_with("index ") {
            "meta"
        } else if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        let _ = write!(out, "<span class=\"{class}\">");
        match class {
            "add" | "del" | "ctx" if !line.is_empty() => {
                let (sign, code) = line.split_at(1);
                escape_into(sign, &mut out);
                highlight_into(&mut out, code, lang);
            }
            _ => escape_into(line, &mut out),
        }
        out.push_str("</span>\n");
    }
    out.push_str("</pre>");
    (PreEscaped(out), truncated)
}

/// `text` cut to at most `max` bytes at a line boundary (or a character boundary when one
/// line is longer than that), and whether anything was cut.
fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    match head.rfind('\n') {
        Some(nl) if nl > 0 => (&text[..nl], true),
        _ => (head, true),
    }
}

/// The languages whose keywords and comments are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Plain,
    /// Rust, C, Go, JavaScript, TypeScript, Java: `//` comments.
    Slashes,
    /// Python, shell, TOML, YAML: `#` comments.
    Hash,
}

impl Lang {
    /// The language of the file a `diff --git a/x b/x` line names, by its extension.
    fn of(header: &str) -> Lang {
        let path = header.rsplit(' ').next().unwrap_or("");
        let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "rs" | "c" | "h" | "cc" | "cpp" | "go" | "js" | "ts" | "tsx" | "jsx" | "java"
            | "kt" | "swift" | "cs" | "capnp" => Lang::Slashes,
            "py" | "sh" | "bash" | "toml" | "yaml" | "yml" | "rb" | "pl" => Lang::Hash,
            _ => Lang::Plain,
        }
    }

    fn comment(self) -> Option<&'static str> {
        match self {
            Lang::Plain => None,
            Lang::Slashes => Some("//"),
            Lang::Hash => Some("#"),
        }
    }
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "class", "const", "continue", "def", "elif", "else", "enum",
    "export", "false", "fn", "for", "func", "function", "if", "impl", "import", "in", "let",
    "loop", "match", "mod", "mut", "None", "null", "package", "pub", "return", "self", "Self",
    "static", "struct", "trait", "true", "True", "False", "type", "use", "var", "where", "while",
];

/// Escapes one line of code with `<span class="s">` around string literals, `<span class="c">`
/// around a trailing comment and `<span class="k">` around keywords. A guess, not a parser: a
/// wrong guess changes a colour, never the text.
fn highlight_into(out: &mut String, code: &str, lang: Lang) {
    if lang == Lang::Plain {
        escape_into(code, out);
        return;
    }
    let comment = lang.comment();
    let mut rest = code;
    while !rest.is_empty() {
        if let Some(c) = comment
            && rest.starts_with(c)
        {
            out.push_str("<span class=\"c\">");
            escape_into(rest, out);
            out.push_str("</span>");
            return;
        }
        let first = rest.chars().next().unwrap_or(' ');
        if first == '"' || first == '\'' && lang == Lang::Hash {
            let end = string_end(rest, first);
            out.push_str("<span class=\"s\">");
            escape_into(&rest[..end], out);
            out.push_str("</span>");
            rest = &rest[end..];
            continue;
        }
        if first.is_alphabetic() || first == '_' {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if KEYWORDS.contains(&word) {
                out.push_str("<span class=\"k\">");
                escape_into(word, out);
                out.push_str("</span>");
            } else {
                escape_into(word, out);
            }
            rest = &rest[end..];
            continue;
        }
        let len = first.len_utf8();
        escape_into(&rest[..len], out);
        rest = &rest[len..];
    }
}

/// Where the string literal opening `text` with `quote` ends (after its closing quote, or at
/// the end of the line).
fn string_end(text: &str, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return i + c.len_utf8();
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "diff --git a/src/x.rs b/src/x.rs\nindex 1..2 100644\n--- a/src/x.rs\n+++ b/src/x.rs\n@@ -1,2 +1,2 @@\n fn main() {\n-    let a = \"<b>\"; // old\n+    let a = \"</pre><script>alert(1)</script>\";\n }\n";

    #[test]
    fn lines_get_their_class_and_every_byte_is_escaped() {
        let (m, truncated) = render(DIFF);
        let html = m.into_string();
        assert!(!truncated);
        assert!(html.contains("<span class=\"file\">diff --git a/src/x.rs b/src/x.rs</span>"));
        assert!(html.contains("<span class=\"hunk\">@@ -1,2 +1,2 @@</span>"));
        assert!(html.contains("<span class=\"del\">-"));
        assert!(html.contains("<span class=\"add\">+"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;"));
        assert_eq!(html.matches("<pre").count(), 1);
    }

    #[test]
    fn code_is_coloured_without_changing_the_text() {
        let (m, _) = render(DIFF);
        let html = m.into_string();
        assert!(html.contains("<span class=\"k\">let</span>"));
        assert!(html.contains("<span class=\"s\">&quot;&lt;b&gt;&quot;</span>"));
        assert!(html.contains("<span class=\"c\">// old</span>"));
        // Strip the tags and unescape: the text is the diff's.
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        assert_eq!(text, DIFF);
    }

    #[test]
    fn a_long_diff_is_cut_at_a_line() {
        let long = "+x\n".repeat(MAX_DIFF / 3 + 10);
        let (m, truncated) = render(&long);
        assert!(truncated);
        assert!(m.into_string().len() < MAX_DIFF * 12);
        let (head, cut_) = cut("ab\ncd\nef", 7);
        assert_eq!((head, cut_), ("ab\ncd", true));
        let (head, _) = cut("ééé", 3);
        assert_eq!(head, "é");
    }

    #[test]
    fn an_unterminated_string_runs_to_the_end() {
        let mut out = String::new();
        highlight_into(&mut out, "let s = \"abc", Lang::Slashes);
        assert!(out.ends_with("<span class=\"s\">&quot;abc</span>"));
    }
}
