//! What the commands that keep running share (`maos events --follow`, `maos status --watch`,
//! `maos orchestrate run|status --watch`): how long one wait for events lasts, a block redrawn in
//! place on a terminal, the error that ends them, and Ctrl-C as their way to end.
//! They read the log through `MaosApi::follow_events`, so they behave the same through the
//! daemon and in process.
//!
//! Every line is flushed as it is printed, so Ctrl-C (which ends them with exit 0) loses
//! nothing that was printed, and no line is ever cut in half.

use std::time::Duration;

use maos_application::ErrorInfo;

use crate::error::{CliError, FailureClass};
use crate::output::Output;

/// How long one wait for new events lasts. Through the daemon it only bounds how often the loop
/// turns; in process it is also the latency with which commits of *other* processes are seen
/// (this process's own commits, and the daemon's, wake the wait at once).
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// The shortest time between two redraws: events that come faster are taken together.
pub(crate) const MIN_REDRAW: Duration = Duration::from_millis(100);

/// A block of lines a terminal shows and a live command redraws in place: the next draw moves
/// the cursor back to the block's first line and clears from there, so that what was printed
/// before it (a plan's preview, a heading) stays on the screen.
#[derive(Debug, Default)]
pub(crate) struct InPlace {
    /// How many terminal rows the block took when it was last drawn.
    rows: usize,
}

impl InPlace {
    /// Draws `text` over the block drawn last (the first time: where the cursor is).
    pub(crate) fn draw(&mut self, out: &mut Output, text: &str) -> Result<(), CliError> {
        // An unknown width (a terminal that says 0 columns) counts lines only: going back too
        // few rows leaves an old line on the screen, too many would erase what came before.
        let width = terminal_size::terminal_size()
            .map(|(w, _)| usize::from(w.0))
            .filter(|w| *w > 0)
            .unwrap_or(usize::MAX);
        let mut frame = String::new();
        if self.rows > 0 {
            // Up to the block's first row, to its first column, and clear to the end.
            frame.push_str(&format!("\x1b[{}A\r\x1b[J", self.rows));
        }
        frame.push_str(text);
        self.rows = rows(text, width);
        out.text(&frame)?;
        out.flush()
    }
}

/// How many rows of a terminal `width` columns wide `text` takes (its lines, each wrapped).
/// Colour sequences take no room; every other character takes one column.
pub(crate) fn rows(text: &str, width: usize) -> usize {
    let width = width.max(1);
    text.trim_end_matches('\n')
        .split('\n')
        .map(|line| visible_width(line).div_ceil(width).max(1))
        .sum()
}

/// The columns `line` takes on a terminal: its characters, less its colour sequences.
fn visible_width(line: &str) -> usize {
    strip_colour(line).chars().count()
}

/// `text` without its `ESC [ … m` colour sequences (what takes no room on a terminal).
pub(crate) fn strip_colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Skip the sequence up to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The error that ends a live command: what stopped, why, and how to carry on.
pub(crate) fn ended(e: &(dyn ErrorInfo + 'static), what: &str, next: String) -> CliError {
    let hint = match crate::hints::hint(e) {
        Some(hint) if e.kind() != maos_application::ErrorKind::Unavailable => {
            format!("{next}; {hint}")
        }
        _ => format!("{next} (the next command starts the daemon again if it stopped)"),
    };
    CliError::new(FailureClass::from(e.kind()), format!("{what}: {e}")).with_hint(hint)
}

/// Makes SIGINT (Ctrl-C) end the process with exit 0 instead of the signal's default: stopping
/// a live command is how it is meant to end. Returns once the handler is in place. Everything
/// printed so far is on its way already: live commands flush every line.
pub(crate) fn exit_quietly_on_interrupt() {
    let (installed, ready) = std::sync::mpsc::sync_channel::<()>(1);
    let watcher = std::thread::Builder::new()
        .name("maos-sigint".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch SIGINT; Ctrl-C keeps its default");
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let interrupt = signal(SignalKind::interrupt());
                let _ = installed.send(());
                match interrupt {
                    Ok(mut interrupt) => {
                        if interrupt.recv().await.is_some() {
                            std::process::exit(0);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot watch SIGINT; Ctrl-C keeps its default");
                    }
                }
            });
        });
    if watcher.is_ok() {
        let _ = ready.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_takes_a_row_per_line_and_more_where_a_line_wraps() {
        assert_eq!(rows("a\nb\n", 80), 2);
        assert_eq!(rows("", 80), 1);
        assert_eq!(rows(&"x".repeat(80), 80), 1);
        assert_eq!(rows(&"x".repeat(81), 80), 2);
        assert_eq!(rows(&format!("{}\n\nz", "y".repeat(170)), 80), 3 + 1 + 1);
        // Colour takes no room.
        assert_eq!(rows(&format!("\x1b[1;31m{}\x1b[0m", "r".repeat(80)), 80), 1);
    }

    #[test]
    fn a_redraw_goes_back_over_the_block_drawn_last() {
        let (mut out, captured) = Output::captured(false);
        let mut block = InPlace::default();
        block.draw(&mut out, "one\ntwo").unwrap();
        block.draw(&mut out, "three").unwrap();
        out.finish().unwrap();
        // The second draw moves up the two rows of the first and clears below.
        assert_eq!(captured.text(), "one\ntwo\n\x1b[2A\r\x1b[Jthree\n");
    }
}
