//! Where output goes: results on stdout (text or one JSON document), chatter and errors on
//! stderr, colour only where it was asked for, long text through a pager on a terminal. A closed
//! stdout (`maos task list | head -1`, or a pager quit early) surfaces as
//! [`FailureClass::BrokenPipe`](crate::error::FailureClass), which ends the command quietly.

use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::process::{Child, Stdio};

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

/// The environment variable that names the pager of `maos` (before `PAGER`).
pub(crate) const PAGER_ENV: &str = "MAOS_PAGER";

/// The pager when neither `MAOS_PAGER` nor `PAGER` names one.
pub(crate) const DEFAULT_PAGER: &str = "less -FRX";

/// The pager command for long text, if one is to be used: never with `--no-pager`, `--json`
/// or when stdout is no terminal; else `$MAOS_PAGER`, else `$PAGER`, else `less -FRX` (either
/// variable set to nothing means no pager).
pub(crate) fn pager_command(no_pager: bool, json: bool, is_terminal: bool) -> Option<String> {
    if no_pager || json || !is_terminal {
        return None;
    }
    choose_pager(std::env::var_os(PAGER_ENV), std::env::var_os("PAGER"))
}

/// The pager `MAOS_PAGER` and `PAGER` (as set, or not) name.
fn choose_pager(
    maos_pager: Option<std::ffi::OsString>,
    pager: Option<std::ffi::OsString>,
) -> Option<String> {
    let command = match maos_pager.or(pager) {
        Some(v) => v.to_string_lossy().trim().to_owned(),
        None => DEFAULT_PAGER.to_owned(),
    };
    (!command.is_empty()).then_some(command)
}

/// Starts `command` to read from a pipe: a program and its arguments, started directly (so a
/// missing program is known at once, and the text is printed instead), or, when it holds what
/// only a shell understands, with `sh -c`. `LESS=FRX` unless `LESS` is set, as git does, so that
/// a bare `less` behaves. None when it cannot start.
fn spawn_pager(command: &str) -> Option<Child> {
    const SHELL: &[char] = &[
        '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', '#', '~', '=',
    ];
    let mut sh = if command.contains(SHELL) {
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c").arg(command);
        sh
    } else {
        let mut words = command.split_whitespace();
        let mut program = std::process::Command::new(words.next()?);
        program.args(words);
        program
    };
    sh.stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        sh.env("LESS", "FRX");
    }
    match sh.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            tracing::debug!(%e, command, "the pager does not start; printing instead");
            None
        }
    }
}

/// From now on Ctrl-C is the pager's, as in git: it no longer ends this process (which would
/// leave the pager fighting the shell for the terminal); quitting the pager closes its pipe, and
/// the next write ends the command quietly. Installing a handler replaces the default action
/// for the rest of the process; nothing needs to listen to it.
fn leave_interrupts_to_the_pager() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    else {
        return;
    };
    let _inside = runtime.enter();
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
}

/// Shows `text` (help) through `command` and waits for it; false when the pager could not take
/// it (the caller prints it then).
pub(crate) fn page_text(command: &str, text: &str) -> bool {
    let Some(mut child) = spawn_pager(command) else {
        return false;
    };
    leave_interrupts_to_the_pager();
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit before reading all of it has what it wanted.
        let _ = stdin.write_all(text.as_bytes());
    }
    let _ = child.wait();
    true
}

/// Where stdout's text goes when paging is wanted.
#[derive(Debug)]
enum Pager {
    /// Never page.
    Off,
    /// Page through this command when the command asks to and writes.
    Available(String),
    /// This command's output goes through the pager from its first byte.
    Wanted(String),
    /// The pager runs and reads what stdout gets.
    Running(Child),
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
    pager: Pager,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("json", &self.json)
            .field("ndjson", &self.ndjson)
            .field("quiet", &self.quiet)
            .field("color_stdout", &self.color_stdout)
            .field("color_stderr", &self.color_stderr)
            .field("pager", &self.pager)
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
            pager: Pager::Off,
        }
    }

    /// Lets [`Output::page`] send long text through this pager command.
    pub(crate) fn with_pager(mut self, command: Option<String>) -> Self {
        self.pager = command.map_or(Pager::Off, Pager::Available);
        self
    }

    /// The command's text is long: send it through the pager, if there is one (from the first
    /// byte written; a command that writes nothing starts none).
    pub(crate) fn page(&mut self) {
        if let Pager::Available(command) = &self.pager {
            self.pager = Pager::Wanted(command.clone());
        }
    }

    /// Starts the pager if it is wanted and not running yet; a pager that cannot start leaves
    /// stdout as it is.
    fn start_pager(&mut self) -> Result<(), CliError> {
        let Pager::Wanted(command) = &self.pager else {
            return Ok(());
        };
        let Some(mut child) = spawn_pager(command) else {
            self.pager = Pager::Off;
            return Ok(());
        };
        let Some(stdin) = child.stdin.take() else {
            let _ = child.wait();
            self.pager = Pager::Off;
            return Ok(());
        };
        self.flush()?;
        self.stdout = BufWriter::new(Box::new(stdin));
        self.pager = Pager::Running(child);
        leave_interrupts_to_the_pager();
        Ok(())
    }

    /// Ends the pager, if one runs: closes its input and waits until the person quits it;
    /// stdout is this process's own again.
    fn close_pager(&mut self) -> Result<(), CliError> {
        if !matches!(self.pager, Pager::Running(_)) {
            return Ok(());
        }
        let flushed = self.stdout.flush();
        let stdout: StdoutLock<'static> = io::stdout().lock();
        // Dropping the pipe's writer tells the pager that nothing more comes.
        self.stdout = BufWriter::new(Box::new(stdout));
        if let Pager::Running(mut child) = std::mem::replace(&mut self.pager, Pager::Off) {
            let _ = child.wait();
        }
        flushed.map_err(|e| CliError::stdout(&e))
    }

    /// Runs `f` with this process's stdout free of the lock this output holds on it: for a
    /// command whose stdout is a protocol another part writes (`maos mcp`). Nothing this output
    /// holds is lost; it has stdout back afterwards.
    pub(crate) fn without_stdout<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, CliError> {
        self.flush()?;
        self.stdout = BufWriter::new(Box::new(io::sink()));
        let result = f();
        let stdout: StdoutLock<'static> = io::stdout().lock();
        self.stdout = BufWriter::new(Box::new(stdout));
        Ok(result)
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
        // What was paged comes first; the error is said once the pager is gone.
        let _ = self.close_pager();
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

    /// Flushes stdout, and waits for the pager to be quit if one runs.
    pub(crate) fn finish(&mut self) -> Result<(), CliError> {
        self.stdout.flush().map_err(|e| CliError::stdout(&e))?;
        self.close_pager()
    }

    fn write_stdout(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        if matches!(self.pager, Pager::Wanted(_)) {
            self.start_pager()?;
        }
        self.stdout
            .write_all(bytes)
            .map_err(|e| CliError::stdout(&e))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.close_pager();
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
            pager: Pager::Off,
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
    fn the_pager_is_maos_pager_then_pager_then_less_and_nothing_turns_it_off() {
        let os = |v: &str| Some(std::ffi::OsString::from(v));
        assert_eq!(choose_pager(None, None).as_deref(), Some(DEFAULT_PAGER));
        assert_eq!(choose_pager(None, os("more")).as_deref(), Some("more"));
        assert_eq!(
            choose_pager(os("bat -p"), os("more")).as_deref(),
            Some("bat -p")
        );
        assert_eq!(choose_pager(os(""), os("more")), None);
        assert_eq!(choose_pager(None, os("  ")), None);
        assert_eq!(pager_command(true, false, true), None);
        assert_eq!(pager_command(false, true, true), None);
        assert_eq!(pager_command(false, false, false), None);
    }

    #[test]
    fn a_pager_that_cannot_start_leaves_the_text_on_stdout() {
        assert!(spawn_pager("/nonexistent/pager -R").is_none());
        assert!(!page_text("/nonexistent/pager", "help"));
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
