//! Free text from users and agents made safe to show a person: control characters, escape
//! sequences and bidirectional overrides are printed as visible escapes (`\e`, `\x07`,
//! `\u{202e}`) so that a title, a reason or an agent's output cannot set the window title,
//! clear the screen, reorder a line or fake one. JSON output keeps the exact text; only what a
//! person reads goes through here, at the point where it is rendered.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What kind of text is shown, which decides what a newline may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A field on one line (a title, a reason, a table cell): newlines and tabs are escaped too.
    Line,
    /// A block of lines (a prompt, an agent's log, an error message): newlines and tabs stay.
    Block,
}

/// `text` with every character that could steer a terminal replaced by a visible escape: C0
/// controls (`\n` and `\t` kept in a [`Shape::Block`]), DEL, C1 controls, and the
/// bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069). Borrowed when there is nothing to escape.
pub(crate) fn escape(text: &str, shape: Shape) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, shape)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c, shape) {
            out.push(c);
            continue;
        }
        // Writing to a String cannot fail.
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\t' => out.write_str("\\t"),
            '\r' => out.write_str("\\r"),
            '\u{1b}' => out.write_str("\\e"),
            c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

/// [`escape`] for a field on one line.
pub(crate) fn line(text: &str) -> Cow<'_, str> {
    escape(text, Shape::Line)
}

/// [`escape`] for a block of lines.
pub(crate) fn block(text: &str) -> Cow<'_, str> {
    escape(text, Shape::Block)
}

fn needs_escape(c: char, shape: Shape) -> bool {
    match c {
        '\n' | '\t' => shape == Shape::Line,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            true
        }
        _ => false,
    }
}

/// Escapes a stream of bytes (an agent's log) as a [`Shape::Block`], chunk by chunk: a UTF-8
/// character cut between two chunks is kept until the rest arrives, and a byte that is not
/// UTF-8 is shown as `\xNN`.
#[derive(Debug, Default)]
pub(crate) struct ByteEscaper {
    /// The start of a character whose other bytes have not come yet.
    pending: Vec<u8>,
}

impl ByteEscaper {
    /// The escaped text of `bytes`, after what earlier chunks left pending.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(bytes);
        let mut out = String::with_capacity(buf.len());
        let mut rest: &[u8] = &buf;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(&block(s));
                    return out;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    if let Ok(s) = std::str::from_utf8(good) {
                        out.push_str(&block(s));
                    }
                    let Some(n) = e.error_len() else {
                        self.pending = bad.to_vec();
                        return out;
                    };
                    let (invalid, after) = bad.split_at(n.min(bad.len()));
                    hex(&mut out, invalid);
                    rest = after;
                }
            }
        }
    }

    /// What is still pending at the end of the stream, as `\xNN` escapes.
    pub(crate) fn finish(&mut self) -> String {
        let mut out = String::new();
        hex(&mut out, &std::mem::take(&mut self.pending));
        out
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "\\x{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_escapes_and_bidi_marks_become_visible() {
        let evil = "a\u{1b}]0;pwned\u{7}b\u{202e}c\u{9b}d\u{7f}e\r\u{0}\u{2066}\u{200f}\u{61c}";
        assert_eq!(
            line(evil),
            "a\\e]0;pwned\\x07b\\u{202e}c\\u{9b}d\\x7fe\\r\\x00\\u{2066}\\u{200f}\\u{61c}"
        );
        assert_eq!(line("one\ntwo\tthree"), "one\\ntwo\\tthree");
        assert_eq!(block("one\ntwo\tthree\u{1b}[2J"), "one\ntwo\tthree\\e[2J");
    }

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for s in ["", "Write the parser", "naïve → 日本語 ⏎ \\e", "C:\\path"] {
            assert!(matches!(line(s), Cow::Borrowed(t) if t == s));
        }
    }

    #[test]
    fn bytes_are_escaped_across_chunks() {
        let mut e = ByteEscaper::default();
        let text = "é\u{1b}[31m\u{202e}x\n";
        let bytes = text.as_bytes();
        // Cut inside é, inside U+202E, and feed an invalid byte.
        let mut out = e.push(&bytes[..1]);
        out.push_str(&e.push(&bytes[1..8]));
        out.push_str(&e.push(&bytes[8..]));
        out.push_str(&e.push(b"\xff!"));
        out.push_str(&e.push(b"\xe2\x80"));
        out.push_str(&e.finish());
        assert_eq!(out, "é\\e[31m\\u{202e}x\n\\xff!\\xe2\\x80");
    }
}
