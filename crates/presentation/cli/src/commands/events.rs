//! `maos events [--follow]`: the event log, oldest first; with `--follow`, new events live (until
//! Ctrl-C or `--limit`).

use maos_application::{MaosApi, StoredEvent};
use serde::Serialize;

use crate::cli::EventsArgs;
use crate::error::CliError;
use crate::human;
use crate::json;
use crate::live::{TICK, ended, exit_quietly_on_interrupt};
use crate::output::{Output, Render};

/// `maos events [--follow]`.
pub(super) fn execute(
    args: &EventsArgs,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    if args.follow {
        return follow(api, args.since, args.limit, out);
    }
    let limit = args.limit.unwrap_or(EventsArgs::DEFAULT_LIMIT);
    let events = api.read_events(args.since, limit)?;
    out.print(&Log {
        events,
        since: args.since,
        limit,
    })
}

/// `maos events`: a page of the log, a line per event.
struct Log {
    events: Vec<StoredEvent>,
    since: u64,
    limit: usize,
}

impl Render for Log {
    fn document(&self) -> impl Serialize {
        json::EventsDoc::new(&self.events, self.since)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let (events, limit) = (&self.events, self.limit);
        if events.is_empty() {
            out.note(&format!("no events after {}", self.since));
            return Ok(());
        }
        let mut text = String::new();
        for e in events {
            text.push_str(&human::event_line(e));
            text.push('\n');
        }
        out.text(&text)?;
        if let Some(last) = events.last().filter(|_| events.len() >= limit) {
            out.note(&format!(
                "more events may follow: maos events --since {}",
                last.seq
            ));
        }
        Ok(())
    }
}

/// `maos events --follow [--since SEQ] [--limit N]`.
fn follow(
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
                out.document(&json::EventJson::line(event))?;
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
