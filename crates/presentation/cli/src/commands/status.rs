//! `maos status [--watch]`: how many tasks are in each state and how many agents in each status;
//! with `--watch`, shown again whenever events change it (until Ctrl-C).

use std::io::IsTerminal;
use std::time::Instant;

use maos_application::{ErrorInfo, EventFollower, MaosApi, QueryError, StatusReport};
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::human;
use crate::json;
use crate::live::{InPlace, MIN_REDRAW, TICK, ended, exit_quietly_on_interrupt};
use crate::output::{Output, Render};

/// `maos status [--watch]`.
pub(super) fn execute(
    args: &StatusArgs,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    if args.watch {
        return watch(api, out);
    }
    out.print(&Counts(api.status()?))
}

/// `maos status`: the counts.
struct Counts(StatusReport);

impl Render for Counts {
    fn document(&self) -> impl Serialize {
        json::StatusDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&human::status(&self.0))
    }
}

/// `maos status --watch`.
fn watch(api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    exit_quietly_on_interrupt();
    out.stream_documents();
    let terminal = !out.json() && std::io::stdout().is_terminal();
    let lost = |e: &(dyn ErrorInfo + 'static)| {
        ended(
            e,
            "stopped watching the status",
            "run `maos status --watch` again".into(),
        )
    };
    let mut report = api.status()?;
    let mut follower = api.follow_events(report.last_event)?;
    let mut block = InPlace::default();
    draw(out, &report, terminal.then_some(&mut block), true)?;
    let mut drawn = Instant::now();
    loop {
        if wait_for_change(follower.as_mut(), drawn).map_err(|e| lost(&e))? {
            let now = api.status().map_err(|e| lost(&e))?;
            if now != report {
                report = now;
                draw(out, &report, terminal.then_some(&mut block), false)?;
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

/// Prints the status: over the previous one on a terminal (`block`), as one JSON line (`"type":
/// "status"`) with `--json`, and otherwise after a blank line.
fn draw(
    out: &mut Output,
    report: &StatusReport,
    block: Option<&mut InPlace>,
    first: bool,
) -> Result<(), CliError> {
    if out.json() {
        out.document(&json::Line::new(
            json::LineType::Status,
            json::StatusJson::new(report),
        ))?;
    } else if let Some(block) = block {
        let text = format!(
            "{}\n(watching for changes; Ctrl-C to stop)",
            human::status(report)
        );
        return block.draw(out, &text);
    } else {
        if !first {
            out.text("")?;
        }
        out.text(&human::status(report))?;
    }
    out.flush()
}
