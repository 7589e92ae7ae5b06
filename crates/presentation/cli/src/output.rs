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
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Red => "1;31",
            Style::Yellow => "33",
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

/// The command's output streams.
#[derive(Debug)]
pub(crate) struct Output {
    stdout: BufWriter<StdoutLock<'static>>,
    json: bool,
    /// A stream of documents, one per line (NDJSON), instead of one pretty-printed document.
    ndjson: bool,
    quiet: bool,
    color_stdout: bool,
    color_stderr: bool,
}

impl Output {
    /// Output to this process's stdout and stderr.
    pub(crate) fn new(json: bool, quiet: bool, color: ColorWhen) -> Self {
        Output {
            stdout: BufWriter::new(io::stdout().lock()),
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
            // If stdout is gone there is nobody to tell.
            let _ = self.document(&doc);
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
