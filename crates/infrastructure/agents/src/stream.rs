//! What a structured agent stream (Claude Code's stream-json, Codex's `exec --json`) tells the
//! supervisor, in adapter-neutral terms.
//!
//! # API
//!
//! - [`StreamParser`]: `on_line(&mut self, line: &[u8]) -> Vec<StreamAction>` for each line of
//!   the agent's stdout (without the newline; a trailing `\r` and surrounding whitespace are
//!   ignored), and `outcome(&self) -> StreamOutcome` at any time (final once the process ended).
//!   Implemented by [`crate::claude::ClaudeStream`] and [`crate::codex::CodexStream`].
//! - [`StreamAction`]: what to do (write to the agent's stdin, close it) or record (session,
//!   text, tool use, permission decision, usage) after one line. Unknown event types come back as
//!   [`StreamAction::Unknown`] with the raw line, lines that are not JSON objects as
//!   [`StreamAction::Malformed`]; parsing never panics, whatever the bytes.
//! - [`StreamOutcome`]: the run as far as the stream told it (session, model, success, summary,
//!   error, turns, usage).
//! - [`Price`] and [`Price::cost`]: US dollars per million tokens, and what a [`Usage`] costs.
//! - [`one_line`]: a short single-line rendering of a text, for summaries.
//!
//! Lines are whatever the caller framed: this module does not limit their length (a line of
//! many megabytes is the caller's to cut).

use serde_json::{Map, Value};

use crate::report::Usage;

/// One thing learnt from (or to do after) a line of the agent's output.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamAction {
    /// Bytes to write to the agent's stdin (a complete line, newline included).
    Write(Vec<u8>),
    /// Close the agent's stdin: the run is over as far as the protocol goes.
    CloseInput,
    /// The agent's own session (Claude's `session_id`, Codex's `thread_id`): a retry can resume it.
    Session { id: String, model: Option<String> },
    /// Text the agent said.
    Text(String),
    /// The agent started using a tool; `summary` is a short one-line description of the call.
    ToolUse { name: String, summary: String },
    /// A tool call finished.
    ToolResult { summary: String, is_error: bool },
    /// MAOS's policy decided a permission request (and the answer is in a `Write` beside it).
    Permission {
        tool: String,
        subject: Option<String>,
        allowed: bool,
        /// Why, in words a person can act on (the message sent to the agent when denied).
        reason: String,
    },
    /// A tool call needs a person's decision (a permission rule said `ask`): ask one, then
    /// answer request `request_id` (Claude Code: `claude::permission_answer`).
    AskPerson {
        tool: String,
        subject: Option<String>,
        /// Which rule asked, in words.
        why: String,
        request_id: String,
        /// The call's input, as the agent sent it.
        input: serde_json::Value,
    },
    /// A non-fatal problem the agent reported (Codex's `error` items: config and deprecation
    /// warnings, model reroutes).
    Warning(String),
    /// The run's token and cost totals so far (replaces earlier totals).
    Usage(Usage),
    /// A JSON event of a type this adapter does not know: kept as it was, never an error.
    Unknown { raw: String },
    /// A line that is not a JSON object (or not UTF-8; `raw` is then lossily decoded).
    Malformed { raw: String, error: String },
}

/// What the stream said about the run as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOutcome {
    /// The agent's session id, to resume it later.
    pub session: Option<String>,
    /// The model the agent reported using.
    pub model: Option<String>,
    /// `Some(true)` when the agent reported success, `Some(false)` on a reported failure, `None`
    /// when no final result was seen (the process died or was stopped first).
    pub success: Option<bool>,
    /// The agent's final message.
    pub summary: Option<String>,
    /// What went wrong, when the agent reported a failure.
    pub error: Option<String>,
    /// Model turns, when the agent reports them.
    pub num_turns: Option<u32>,
    /// Tokens and cost.
    pub usage: Usage,
    /// Tool calls the agent reports were refused, `Tool(subject)`.
    pub permission_denials: Vec<String>,
}

/// A parser of one agent's structured stdout.
pub trait StreamParser {
    /// Parses one line of the agent's stdout (without its newline).
    fn on_line(&mut self, line: &[u8]) -> Vec<StreamAction>;
    /// The outcome so far.
    fn outcome(&self) -> StreamOutcome;
}

/// A model's price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Per million prompt tokens that were not served from a cache.
    pub input_per_mtok: f64,
    /// Per million cached prompt tokens; the input price when `None`.
    pub cached_input_per_mtok: Option<f64>,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// What `usage`'s tokens cost: cached input tokens at the cached price (or the input price),
    /// the rest of the input at the input price, output at the output price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let fresh = usage.input_tokens - cached;
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        (fresh as f64 * self.input_per_mtok
            + cached as f64 * cached_price
            + usage.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// The result of reading one line as a JSON object.
pub(crate) enum Line {
    /// Nothing but whitespace: no action.
    Blank,
    /// A JSON object, and the line as text.
    Object(Map<String, Value>, String),
    /// Not an object: the action says why.
    Bad(StreamAction),
}

/// Reads a line as a JSON object, leniently: surrounding whitespace (a `\r`) is ignored, a
/// non-UTF-8 or non-JSON line is `Malformed`, never a panic.
pub(crate) fn read_line(line: &[u8]) -> Line {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text.trim(),
        Err(e) => {
            return Line::Bad(StreamAction::Malformed {
                raw: String::from_utf8_lossy(line).into_owned(),
                error: format!("not UTF-8: {e}"),
            });
        }
    };
    if text.is_empty() {
        return Line::Blank;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Line::Object(map, text.to_owned()),
        Ok(other) => Line::Bad(StreamAction::Malformed {
            raw: text.to_owned(),
            error: format!("expected a JSON object, found {}", json_kind(&other)),
        }),
        Err(e) => Line::Bad(StreamAction::Malformed {
            raw: text.to_owned(),
            error: format!("not JSON: {e}"),
        }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The string at `key`, if it is one.
pub(crate) fn str_at<'a>(v: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The unsigned integer at `key`, or 0.
pub(crate) fn u64_at(v: &Map<String, Value>, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The longest summary [`one_line`] makes by default, in characters.
pub const SUMMARY_CHARS: usize = 200;

/// `text` on one line (runs of whitespace become one space), cut to `max_chars` characters with
/// an ellipsis.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        let sep = usize::from(!out.is_empty());
        let len = word.chars().count();
        if count + sep + len > max_chars {
            if sep == 1 && count + 1 < max_chars {
                out.push(' ');
                count += 1;
            }
            let room = max_chars.saturating_sub(count + 1);
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        count += sep + len;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn prices_cached_tokens_at_the_cached_rate_or_the_input_rate() {
        let usage = Usage {
            input_tokens: 1_000_000,
            cached_input_tokens: 400_000,
            output_tokens: 100_000,
            cost_usd: None,
        };
        let price = Price {
            input_per_mtok: 1.25,
            cached_input_per_mtok: Some(0.125),
            output_per_mtok: 10.0,
        };
        // 600k fresh at 1.25 = 0.75; 400k cached at 0.125 = 0.05; 100k out at 10 = 1.00.
        assert!((price.cost(&usage) - 1.80).abs() < 1e-9);
        let no_cache = Price {
            cached_input_per_mtok: None,
            ..price
        };
        assert!((no_cache.cost(&usage) - 2.25).abs() < 1e-9);
        // More cached than input (a confused report) never underflows.
        let odd = Usage {
            input_tokens: 10,
            cached_input_tokens: 20,
            ..usage
        };
        assert!((price.cost(&odd) - (10.0 * 0.125 + 100_000.0 * 10.0) / 1e6).abs() < 1e-12);
    }

    #[test]
    fn lines_are_read_leniently() {
        assert!(matches!(read_line(b""), Line::Blank));
        assert!(matches!(read_line(b"  \r"), Line::Blank));
        match read_line(b"{\"type\":\"x\"}\r") {
            Line::Object(map, raw) => {
                assert_eq!(str_at(&map, "type"), Some("x"));
                assert_eq!(raw, "{\"type\":\"x\"}");
            }
            _ => panic!("expected an object"),
        }
        match read_line(b"[1,2]") {
            Line::Bad(StreamAction::Malformed { raw, error }) => {
                assert_eq!(raw, "[1,2]");
                assert_eq!(error, "expected a JSON object, found an array");
            }
            _ => panic!("expected malformed"),
        }
        match read_line(b"{\"type\":") {
            Line::Bad(StreamAction::Malformed { raw, error }) => {
                assert_eq!(raw, "{\"type\":");
                assert!(error.starts_with("not JSON: "), "{error}");
            }
            _ => panic!("expected malformed"),
        }
        match read_line(b"{\"a\":\"\xff\xfe\"}") {
            Line::Bad(StreamAction::Malformed { raw, error }) => {
                assert_eq!(raw, "{\"a\":\"\u{fffd}\u{fffd}\"}");
                assert!(error.starts_with("not UTF-8"), "{error}");
            }
            _ => panic!("expected malformed"),
        }
    }

    #[test]
    fn one_line_collapses_whitespace_and_cuts_with_an_ellipsis() {
        assert_eq!(one_line("  a\n\tb  c ", 80), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("ab cdef", 5), "ab c…");
        assert_eq!(one_line("ab cd", 5), "ab cd");
        assert_eq!(one_line("éééééé", 3), "éé…");
        assert_eq!(one_line("", 3), "");
    }
}
