//! The commands that keep running: `maos events --follow` prints the log live, `maos status
//! --watch` shows the status again whenever events change it. Both read the log through
//! `MaosApi::follow_events`, so they behave the same through the daemon and in process.
//!
//! Every line is flushed as it is printed, so Ctrl-C (which ends them with exit 0) loses
//! nothing that was printed, and no line is ever cut in half.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use maos_application::{ErrorInfo, EventFollower, MaosApi, QueryError, StatusReport};

use crate::error::{CliError, FailureClass};
use crate::human;
use crate::json;
use crate::output::Output;

/// How long one wait for new events lasts. Through the daemon it only bounds how often the loop
/// turns; in process it is also the latency with which commits of *other* processes are seen
/// (this process's own commits, and the daemon's, wake the wait at once).
const TICK: Duration = Duration::from_millis(200);

/// The shortest time between two redraws of `status --watch`: events that come faster are
/// taken together.
const MIN_REDRAW: Duration = Duration::from_millis(100);

/// Clears a terminal and puts the cursor at the top left.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// `maos events --follow [--since SEQ] [--limit N]`.
pub(crate) fn follow_events(
    api: &dyn MaosApi,
    since: u64,
    limit: Option<usize>,
    out: &mut Output,
) -> Result<(), CliError> {
    exit_quietly_on_interrupt();
    out.stream_documents();
    let json_flag = if out.json() { " --json" } else { "" };
    let resume =
        |last: u64| format!("resume with `maos events --follow --since {last}{json_flag}`");
    let mut follower = api.follow_events(since)?;
    let mut last = since;
    let mut printed = 0usize;
    loop {
        let batch = follower.next_batch(TICK).map_err(|e| {
            ended(
                &e,
                &format!("the event stream stopped after seq {last}"),
                resume(last),
            )
        })?;
        for event in &batch {
            if out.json() {
                out.document(&json::EventJson::from(event))?;
            } else {
                out.text(&human::event_line(event))?;
            }
            out.flush()?;
            last = event.seq;
            printed += 1;
            if limit.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
    }
}

/// `maos status --watch`.
pub(crate) fn watch_status(api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    exit_quietly_on_interrupt();
    out.stream_documents();
    let terminal = !out.json() && std::io::stdout().is_terminal();
    let lost = |e: &dyn ErrorInfo| {
        ended(
            e,
            "stopped watching the status",
            "run `maos status --watch` again".into(),
        )
    };
    let mut report = api.status()?;
    let mut follower = api.follow_events(report.last_event)?;
    draw(out, &report, terminal, true)?;
    let mut drawn = Instant::now();
    loop {
        if wait_for_change(follower.as_mut(), drawn).map_err(|e| lost(&e))? {
            let now = api.status().map_err(|e| lost(&e))?;
            if now != report {
                report = now;
                draw(out, &report, terminal, false)?;
                drawn = Instant::now();
            }
        }
    }
}

/// Waits for events; once some came, keeps taking them until [`MIN_REDRAW`] has passed since
/// the last redraw. True when events came.
fn wait_for_change(follower: &mut dyn EventFollower, drawn: Instant) -> Result<bool, QueryError> {
    if follower.next_batch(TICK)?.is_empty() {
        return Ok(false);
    }
    loop {
        let left = (drawn + MIN_REDRAW).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(true);
        }
        follower.next_batch(left)?;
    }
}

/// Prints the status: over the previous one on a terminal, as one JSON line with `--json`, and
/// otherwise after a blank line.
fn draw(
    out: &mut Output,
    report: &StatusReport,
    terminal: bool,
    first: bool,
) -> Result<(), CliError> {
    if out.json() {
        out.document(&json::StatusDoc::new(report))?;
    } else if terminal {
        let text = format!(
            "{CLEAR_SCREEN}{}\n(watching for changes; Ctrl-C to stop)",
            human::status(report)
        );
        out.text(&text)?;
    } else {
        if !first {
            out.text("")?;
        }
        out.text(&human::status(report))?;
    }
    out.flush()
}

/// The error that ends a live command: what stopped, why, and how to carry on.
fn ended(e: &dyn ErrorInfo, what: &str, next: String) -> CliError {
    let hint = match e.hint() {
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
fn exit_quietly_on_interrupt() {
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
