//! Where output goes: results on stdout (text or one JSON document), chatter and errors on
//! stderr, colour only where it was asked for. A closed stdout (`maos task list | head -1`)
//! surfaces as [`FailureClass::BrokenPipe`](crate::error::FailureClass), which ends the command quietly.

use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

use serde::Serialize;

use crate::cli::ColorWhen;
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::json::ErrorDoc;

/// Decides whether a stream gets colour: `always` and `never` are obeyed; `auto` colours only a
/// terminal, and never when `NO_COLOR` is set to a non-empty value.
pub(crate) fn use_color(when: ColorWhen, is_terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => is_terminal && !no_color(),
    }
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// ANSI styles used on a coloured stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Bold,
    Red,
    Yellow,
    Green,
    Cyan,
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Red => "1;31",
            Style::Yellow => "33",
            Style::Green => "32",
            Style::Cyan => "36",
            Style::Dim => "2",
        }
    }
}

/// `text` in `style` when `on`, else `text` unchanged.
pub(crate) fn paint(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_owned()
    }
}

/// A command's result, printed one way ([`Output::print`]): its JSON document with `--json`,
/// else its text for people. Handlers make a result and print it; they do not ask which.
pub(crate) trait Render {
    /// The JSON document (shapes in docs/json.md).
    fn document(&self) -> impl Serialize;

    /// The text for people: the result on stdout, remarks (a next step) as notes on stderr.
    fn human(&self, out: &mut Output) -> Result<(), CliError>;
}

/// The command's output streams.
pub(crate) struct Output {
    /// This process's stdout (a buffer in tests).
    stdout: BufWriter<Box<dyn Write>>,
    json: bool,
    /// A stream of documents, one per line (NDJSON), instead of one pretty-printed document.
    ndjson: bool,
    quiet: bool,
    color_stdout: bool,
    color_stderr: bool,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("json", &self.json)
            .field("ndjson", &self.ndjson)
            .field("quiet", &self.quiet)
            .field("color_stdout", &self.color_stdout)
            .field("color_stderr", &self.color_stderr)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Output to this process's stdout and stderr.
    pub(crate) fn new(json: bool, quiet: bool, color: ColorWhen) -> Self {
        let stdout: StdoutLock<'static> = io::stdout().lock();
        Output {
            stdout: BufWriter::new(Box::new(stdout)),
            json,
            ndjson: false,
            quiet,
            color_stdout: use_color(color, io::stdout().is_terminal()),
            color_stderr: use_color(color, io::stderr().is_terminal()),
        }
    }

    /// True when the user asked for JSON.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// From now on, JSON documents (an error's included) are printed on one line each: the
    /// output is a stream of documents (NDJSON).
    pub(crate) fn stream_documents(&mut self) {
        self.ndjson = true;
    }

    /// True when stdout gets colour.
    pub(crate) fn color(&self) -> bool {
        self.color_stdout
    }

    /// Writes text to stdout, ending it with a newline if it has none.
    pub(crate) fn text(&mut self, text: &str) -> Result<(), CliError> {
        self.write_stdout(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.write_stdout(b"\n")?;
        }
        Ok(())
    }

    /// Writes raw bytes to stdout (a completion script).
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.write_stdout(bytes)
    }

    /// Writes one JSON document to stdout: pretty-printed, or on one line when streaming.
    pub(crate) fn document<T: Serialize>(&mut self, doc: &T) -> Result<(), CliError> {
        let encoded = if self.ndjson {
            serde_json::to_string(doc)
        } else {
            serde_json::to_string_pretty(doc)
        };
        let text = encoded.map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot encode the JSON output: {e}"),
            )
        })?;
        self.text(&text)
    }

    /// Prints a command's result: its JSON document with `--json`, else its text.
    pub(crate) fn print(&mut self, result: &impl Render) -> Result<(), CliError> {
        if self.json {
            self.document(&result.document())
        } else {
            result.human(self)
        }
    }

    /// `e`, marked as said already when the result printed before it was a JSON document that
    /// says it (stdout then carries that one document, and no error document follows).
    pub(crate) fn said_by_the_document(&self, e: CliError) -> CliError {
        if self.json { e.documented() } else { e }
    }

    /// A remark for people on stderr (a hint, a next step); silent with `-q`.
    pub(crate) fn note(&mut self, text: &str) {
        if !self.quiet {
            // Make sure what stdout already holds comes first on a shared terminal.
            let _ = self.stdout.flush();
            let line = paint(self.color_stderr, Style::Dim, &escape::block(text));
            let _ = writeln!(io::stderr().lock(), "{line}");
        }
    }

    /// Reports a failure: `error: ...` and `  hint: ...` on stderr, and with `--json` an error
    /// document on stdout too.
    pub(crate) fn error(&mut self, e: &CliError) {
        if self.json && !e.documented {
            let doc = ErrorDoc::new(
                e.class.as_str(),
                e.message.clone(),
                e.hint.clone(),
                e.exit_code(),
            );
            // If stdout is gone there is nobody to tell. A stream's last line says what it is.
            let _ = if self.ndjson {
                self.document(&doc.line())
            } else {
                self.document(&doc)
            };
        }
        let _ = self.stdout.flush();
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "{} {}",
            paint(self.color_stderr, Style::Red, "error:"),
            escape::block(&e.message)
        );
        if let Some(hint) = &e.hint {
            let _ = writeln!(
                err,
                "  {} {}",
                paint(self.color_stderr, Style::Yellow, "hint:"),
                escape::block(hint)
            );
        }
    }

    /// Sends what stdout holds on its way now (a live command flushes after every line).
    pub(crate) fn flush(&mut self) -> Result<(), CliError> {
        self.stdout.flush().map_err(|e| CliError::stdout(&e))
    }

    /// Flushes stdout.
    pub(crate) fn finish(&mut self) -> Result<(), CliError> {
        self.stdout.flush().map_err(|e| CliError::stdout(&e))
    }

    fn write_stdout(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.stdout
            .write_all(bytes)
            .map_err(|e| CliError::stdout(&e))
    }
}

/// What a test's stdout received.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

#[cfg(test)]
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl Captured {
    /// Everything written, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

#[cfg(test)]
impl Output {
    /// Output into a buffer, quiet (notes would go to the real stderr), without colour.
    pub(crate) fn captured(json: bool) -> (Output, Captured) {
        let captured = Captured::default();
        let out = Output {
            stdout: BufWriter::new(Box::new(captured.clone())),
            json,
            ndjson: false,
            quiet: true,
            color_stdout: false,
            color_stderr: false,
        };
        (out, captured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureClass;

    struct Answer;

    #[derive(Serialize)]
    struct AnswerDoc {
        schema_version: u32,
        answer: u32,
    }

    impl Render for Answer {
        fn document(&self) -> impl Serialize {
            AnswerDoc {
                schema_version: 1,
                answer: 42,
            }
        }

        fn human(&self, out: &mut Output) -> Result<(), CliError> {
            out.text("the answer is 42")
        }
    }

    #[test]
    fn print_writes_the_text_for_people_without_json() {
        let (mut out, captured) = Output::captured(false);
        out.print(&Answer).unwrap();
        out.finish().unwrap();
        assert_eq!(captured.text(), "the answer is 42\n");
    }

    #[test]
    fn print_writes_the_document_with_json() {
        let (mut out, captured) = Output::captured(true);
        out.print(&Answer).unwrap();
        out.finish().unwrap();
        assert_eq!(
            captured.text(),
            "{\n  \"schema_version\": 1,\n  \"answer\": 42\n}\n"
        );
    }

    #[test]
    fn a_stream_prints_each_document_on_one_line() {
        let (mut out, captured) = Output::captured(true);
        out.stream_documents();
        out.print(&Answer).unwrap();
        out.print(&Answer).unwrap();
        out.finish().unwrap();
        let line = "{\"schema_version\":1,\"answer\":42}\n";
        assert_eq!(captured.text(), format!("{line}{line}"));
    }

    #[test]
    fn only_a_json_document_says_the_error_already() {
        let e = || CliError::new(FailureClass::Inconsistent, "disagrees");
        let (json, _) = Output::captured(true);
        assert!(json.said_by_the_document(e()).documented);
        let (text, _) = Output::captured(false);
        assert!(!text.said_by_the_document(e()).documented);
    }
}
