//! The event log (`/events`): newest first, a page at a time (`?before=<seq>`), narrowed by
//! kind, task, orchestration, agent, time and a free-text search over each event as shown. The
//! log is read backwards in bounded chunks: one request never examines more than [`SCAN`]
//! events, and says so when it stopped before filling its page. The log being in time order, a
//! page ending at a time starts there (found by halving), and the scan stops at a start time.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maos_application::text::event_summary;
use maos_application::{AgentFilter, IdRef, MaosApi, Page, StoredEvent, TaskFilter};
use maos_domain::{
    AgentEvent, AgentId, AgentName, AgentStatus, DomainEvent, MemoryEvent, OrchestrationEvent,
    OrchestrationId, Provenance, TaskEvent, TaskId, Timestamp,
};
use maud::{Markup, html};

use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};

/// Events per page.
pub(crate) const PAGE: usize = 50;

/// The most events one request examines: a narrow filter over a long log shows what it found
/// in that stretch and links to the next.
pub(crate) const SCAN: u64 = 5_000;

/// Events read from the store at a time.
const CHUNK: u64 = 500;

/// The longest free-text search accepted.
const MAX_SEARCH: usize = 200;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router.route("/events", get(events))
}

async fn events(State(ctx): State<Ctx>, RawQuery(raw): RawQuery) -> Response {
    let query = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    ctx.page(move |api, view| render(api, view, &query)).await
}

/// The filters as given (to fill the form again) and as parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) raw: HashMap<String, String>,
    pub(crate) before: Option<u64>,
    pub(crate) kind: Option<String>,
    pub(crate) task: Option<IdRef>,
    pub(crate) orchestration: Option<IdRef>,
    pub(crate) agent: Option<AgentName>,
    pub(crate) from: Option<Timestamp>,
    pub(crate) to: Option<Timestamp>,
    /// Lowercase.
    pub(crate) text: Option<String>,
}

/// The query's fields, in the order of the form.
const FIELDS: &[&str] = &["kind", "task", "orchestration", "agent", "from", "to", "q"];

fn bad(field: &str, why: impl std::fmt::Display) -> WebError {
    WebError::invalid(format!("filter `{field}`: {why}"))
}

impl Query {
    /// Parses the query string: empty fields are absent; the last of repeated ones wins;
    /// anything else is refused naming the field.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Query, WebError> {
        let pairs: Vec<(String, String)> = match raw {
            Some(r) => serde_urlencoded::from_str(r)
                .map_err(|e| WebError::invalid(format!("unreadable query: {e}")))?,
            None => Vec::new(),
        };
        let mut q = Query::default();
        for (k, v) in pairs {
            let v = v.trim().to_owned();
            if v.is_empty() {
                q.raw.remove(&k);
            } else {
                q.raw.insert(k, v);
            }
        }
        let get = |k: &str| q.raw.get(k).map(String::as_str);
        let before = get("before")
            .map(|v| {
                v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    bad(
                        "before",
                        "give the seq of an event (a whole number above 0)",
                    )
                })
            })
            .transpose()?;
        let kind = get("kind")
            .map(|v| {
                let known = DomainEvent::kinds().any(|k| k == v)
                    || ["agent", "task", "orchestration"].contains(&v);
                if known {
                    Ok(v.to_owned())
                } else {
                    Err(bad(
                        "kind",
                        format!(
                            "{v:?} is no event kind; give one such as task.created, or agent, task or orchestration for all of theirs"
                        ),
                    ))
                }
            })
            .transpose()?;
        let task = get("task")
            .map(|v| IdRef::parse(v).map_err(|e| bad("task", e)))
            .transpose()?;
        let orchestration = get("orchestration")
            .map(|v| IdRef::parse(v).map_err(|e| bad("orchestration", e)))
            .transpose()?;
        let agent = get("agent")
            .map(|v| AgentName::parse(v).map_err(|e| bad("agent", e)))
            .transpose()?;
        let from = get("from")
            .map(|v| parse_time(v, false).map_err(|e| bad("from", e)))
            .transpose()?;
        let to = get("to")
            .map(|v| parse_time(v, true).map_err(|e| bad("to", e)))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(bad("to", "it is before `from`"));
        }
        let text = get("q")
            .map(|v| {
                if v.chars().count() > MAX_SEARCH {
                    Err(bad(
                        "q",
                        format!("a search has at most {MAX_SEARCH} characters"),
                    ))
                } else {
                    Ok(v.to_lowercase())
                }
            })
            .transpose()?;
        Ok(Query {
            before,
            kind,
            task,
            orchestration,
            agent,
            from,
            to,
            text,
            raw: q.raw,
        })
    }

    fn value(&self, field: &str) -> &str {
        self.raw.get(field).map_or("", String::as_str)
    }

    /// This query's address with `before` set to `before` (none: the newest page).
    fn href(&self, before: Option<u64>) -> String {
        let mut pairs: Vec<(&str, String)> = FIELDS
            .iter()
            .filter_map(|f| self.raw.get(*f).map(|v| (*f, v.clone())))
            .collect();
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if q.is_empty() {
            "/events".to_owned()
        } else {
            format!("/events?{q}")
        }
    }

    fn filtered(&self) -> bool {
        FIELDS.iter().any(|f| self.raw.contains_key(*f))
    }
}

/// Parses `YYYY-MM-DD` (the day's start, or with `end_of_day` its last millisecond) or RFC 3339
/// (`2026-12-07T13:05:00Z`, `…+01:00`, with or without fractions of a second).
pub(crate) fn parse_time(raw: &str, end_of_day: bool) -> Result<Timestamp, String> {
    let hint = "write a date as 2026-12-07 or a time as 2026-12-07T13:05:00Z";
    let b = raw.as_bytes();
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(format!("{raw:?} is no date; {hint}"));
    }
    let (Some(y), Some(m), Some(d)) = (num(&b[..4]), num(&b[5..7]), num(&b[8..10])) else {
        return Err(format!("{raw:?} is no date; {hint}"));
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(format!("{raw:?} is no day of the calendar; {hint}"));
    }
    let day_ms = days_from_civil(y, m, d) * 86_400_000;
    if b.len() == 10 {
        return Ok(Timestamp::from_millis(if end_of_day {
            day_ms + 86_399_999
        } else {
            day_ms
        }));
    }
    let rest = &b[10..];
    let wrong = || format!("{raw:?} is no time; {hint}");
    if rest.len() < 9
        || !matches!(rest[0], b'T' | b't' | b' ')
        || rest[3] != b':'
        || rest[6] != b':'
    {
        return Err(wrong());
    }
    let (Some(hh), Some(mm), Some(ss)) = (num(&rest[1..3]), num(&rest[4..6]), num(&rest[7..9]))
    else {
        return Err(wrong());
    };
    if hh > 23 || mm > 59 || ss > 59 {
        return Err(wrong());
    }
    let mut rest = &rest[9..];
    let mut ms = 0i64;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(wrong());
        }
        let frac = &rest[1..=digits];
        let mut scaled = 0i64;
        for (i, c) in frac.iter().take(3).enumerate() {
            scaled += i64::from(c - b'0') * [100, 10, 1][i];
        }
        ms = scaled;
        rest = &rest[1 + digits..];
    }
    let offset_min = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(oh), Some(om)) = (num(&[*h1, *h2]), num(&[*m1, *m2])) else {
                return Err(wrong());
            };
            if oh > 23 || om > 59 {
                return Err(wrong());
            }
            let v = oh * 60 + om;
            if *sign == b'+' { v } else { -v }
        }
        _ => return Err(format!("{raw:?} has no time zone (Z or ±HH:MM); {hint}")),
    };
    Ok(Timestamp::from_millis(
        day_ms + ((hh * 60 + mm - offset_min) * 60 + ss) * 1000 + ms,
    ))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The filters with their ids resolved against the store.
struct Filter<'q> {
    query: &'q Query,
    task: Option<TaskId>,
    /// The orchestration and every task of it.
    orchestration: Option<(OrchestrationId, HashSet<TaskId>)>,
    agent: Option<(AgentId, AgentName)>,
}

impl<'q> Filter<'q> {
    fn resolve(api: &dyn MaosApi, query: &'q Query) -> Result<Filter<'q>, WebError> {
        let task = query
            .task
            .as_ref()
            .map(|t| api.get_task(t).map(|t| t.id).map_err(|e| bad("task", e)))
            .transpose()?;
        let orchestration = match &query.orchestration {
            Some(o) => {
                let o = api
                    .get_orchestration(o)
                    .map_err(|e| bad("orchestration", e))?;
                let mut tasks = HashSet::new();
                let filter = TaskFilter {
                    orchestration: Some(o.id),
                    ..TaskFilter::default()
                };
                let mut page = Page {
                    limit: Page::MAX_LIMIT,
                    cursor: None,
                };
                loop {
                    let got = api.list_tasks(&filter, &page)?;
                    tasks.extend(got.tasks.iter().map(|t| t.id));
                    match got.next_cursor {
                        Some(c) => page.cursor = Some(c),
                        None => break,
                    }
                }
                Some((o.id, tasks))
            }
            None => None,
        };
        let agent = query
            .agent
            .as_ref()
            .map(|a| {
                api.get_agent(a)
                    .map(|a| (a.id, a.name.clone()))
                    .map_err(|e| bad("agent", e))
            })
            .transpose()?;
        Ok(Filter {
            query,
            task,
            orchestration,
            agent,
        })
    }

    fn matches(&self, e: &StoredEvent, line: &Line) -> bool {
        let q = self.query;
        if let Some(k) = &q.kind
            && e.event.kind() != k
            && e.event.aggregate_kind().as_str() != k
        {
            return false;
        }
        if q.from.is_some_and(|f| e.at < f) || q.to.is_some_and(|t| e.at > t) {
            return false;
        }
        if let Some(t) = self.task
            && !tasks_of(&e.event).contains(&t)
        {
            return false;
        }
        if let Some((o, tasks)) = &self.orchestration {
            let hit = match &e.event {
                DomainEvent::Orchestration { id, .. } => id == o,
                DomainEvent::Task { id, .. } => tasks.contains(id),
                DomainEvent::Agent { .. } | DomainEvent::Memory { .. } => {
                    tasks_of(&e.event).iter().any(|t| tasks.contains(t))
                }
            };
            if !hit {
                return false;
            }
        }
        if let Some((id, name)) = &self.agent {
            let hit = match &e.event {
                DomainEvent::Agent { id: a, .. } => a == id,
                DomainEvent::Task {
                    event: TaskEvent::Assigned { agent, .. },
                    ..
                } => agent == name,
                _ => false,
            };
            if !hit {
                return false;
            }
        }
        if let Some(text) = &q.text
            && !line.search.contains(text.as_str())
        {
            return false;
        }
        true
    }
}

/// The tasks an event is about: its own, or the one an agent's slot or a planner worked on.
fn tasks_of(e: &DomainEvent) -> Vec<TaskId> {
    match e {
        DomainEvent::Task { id, .. } => vec![*id],
        DomainEvent::Agent {
            event: AgentEvent::SlotClaimed { task, .. } | AgentEvent::SlotReleased { task, .. },
            ..
        } => vec![*task],
        DomainEvent::Orchestration {
            event: OrchestrationEvent::PlanningStarted { planning },
            ..
        } => vec![planning.task],
        DomainEvent::Orchestration {
            event: OrchestrationEvent::PlanningFailed { task, .. },
            ..
        } => vec![*task],
        DomainEvent::Memory {
            event: MemoryEvent::Added { spec, .. },
            ..
        } => match spec.provenance {
            Provenance::Attempt { task, .. } => vec![task],
            Provenance::Person => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// An event as a line of the log: its subject's name (an agent's, for agents) and what it
/// says, and the lowercase text a search looks in.
struct Line {
    subject: String,
    details: String,
    search: String,
}

impl Line {
    fn of(e: &StoredEvent, agents: &HashMap<AgentId, AgentName>) -> Line {
        let subject = match &e.event {
            DomainEvent::Agent { id, .. } => agents
                .get(id)
                .map_or_else(|| id.short(), |n| n.as_str().to_owned()),
            DomainEvent::Task { id, .. } => id.to_string(),
            DomainEvent::Orchestration { id, .. } => id.to_string(),
            DomainEvent::Memory { id, .. } => id.to_string(),
        };
        // Why a task is blocked is data; the log names its kind.
        let details = event_summary(&e.event, &|r| r.kind().to_string());
        let search = format!(
            "{} {} {} {}",
            e.event.kind(),
            e.event.aggregate_kind().as_str(),
            subject,
            details
        )
        .to_lowercase();
        Line {
            subject,
            details,
            search,
        }
    }
}

/// A page of the log, newest first.
struct Found {
    rows: Vec<(StoredEvent, Line)>,
    /// The events examined: `low..=high` (none when the log is empty or nothing is older).
    scanned: Option<(u64, u64)>,
    /// Where the next (older) page starts, when older events remain.
    next: Option<u64>,
}

/// Reads the log backwards from before `upper` (exclusive), chunk by chunk, until the page is
/// full, [`SCAN`] events were examined, or the log (or the `from` time) is passed.
fn scan(
    api: &dyn MaosApi,
    filter: &Filter<'_>,
    agents: &HashMap<AgentId, AgentName>,
    upper: u64,
) -> Result<Found, WebError> {
    let mut rows = Vec::new();
    let mut low = upper; // the lowest seq examined
    let mut passed_from = false;
    'chunks: while low > 1 && rows.len() < PAGE && upper - low < SCAN && !passed_from {
        let want = CHUNK.min(SCAN - (upper - low)).min(low - 1);
        let after = low - 1 - want;
        let batch = api.read_events(after, usize::try_from(want).unwrap_or(usize::MAX))?;
        if batch.is_empty() {
            break;
        }
        for e in batch.into_iter().rev() {
            if e.seq >= low {
                continue;
            }
            low = e.seq;
            if filter.query.from.is_some_and(|f| e.at < f) {
                // The log is in time order: nothing older can match.
                passed_from = true;
                break 'chunks;
            }
            let line = Line::of(&e, agents);
            if filter.matches(&e, &line) {
                rows.push((e, line));
                if rows.len() == PAGE {
                    break 'chunks;
                }
            }
        }
        low = low.min(after + 1);
    }
    let scanned = (low < upper).then(|| (low, upper - 1));
    let next = (low > 1 && !passed_from).then_some(low);
    Ok(Found {
        rows,
        scanned,
        next,
    })
}

/// The first seq whose event happened after `to` (`head + 1` when none did), found by halving:
/// the log is in time order, so a page ending at `to` starts there without scanning what
/// followed (a few dozen one-event reads, however long the log).
fn first_after(api: &dyn MaosApi, head: u64, to: Timestamp) -> Result<u64, WebError> {
    let (mut lo, mut hi) = (1, head + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = api.read_events(mid - 1, 1)?.first().map(|e| e.at);
        match at {
            Some(at) if at <= to => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

fn render(api: &dyn MaosApi, view: &View, query: &Query) -> Result<Markup, WebError> {
    let filter = Filter::resolve(api, query)?;
    let head = api.status()?.last_event;
    let mut upper = query.before.map_or(head + 1, |b| b.min(head + 1));
    if let Some(to) = query.to {
        upper = upper.min(first_after(api, head, to)?);
    }
    let statuses = AgentFilter {
        statuses: AgentStatus::ALL.to_vec(),
        ..AgentFilter::default()
    };
    let agents: HashMap<AgentId, AgentName> = api
        .list_agents(&statuses)?
        .into_iter()
        .map(|a| (a.id, a.name.clone()))
        .collect();
    let found = scan(api, &filter, &agents, upper)?;
    let short = found.rows.len() < PAGE && found.next.is_some();
    let body = html! {
        form.filters method="get" action="/events" role="search" aria-label="Filter events" {
            div {
                label for="f-kind" { "Kind" }
                select #f-kind name="kind" {
                    option value="" { "any" }
                    @for group in ["agent", "task", "orchestration"] {
                        option value=(group) selected[query.value("kind") == group] { "every " (group) " event" }
                    }
                    @for k in DomainEvent::kinds() {
                        option value=(k) selected[query.value("kind") == k] { (k) }
                    }
                }
            }
            div {
                label for="f-task" { "Task" }
                input #f-task type="text" name="task" value=(query.value("task")) placeholder="id or prefix" size="14";
            }
            div {
                label for="f-orch" { "Orchestration" }
                input #f-orch type="text" name="orchestration" value=(query.value("orchestration")) placeholder="id or prefix" size="14";
            }
            div {
                label for="f-agent" { "Agent" }
                input #f-agent type="text" name="agent" value=(query.value("agent")) placeholder="name" size="12";
            }
            div {
                label for="f-from" { "From" }
                input #f-from type="text" name="from" value=(query.value("from")) placeholder="2026-12-07" size="22";
            }
            div {
                label for="f-to" { "To" }
                input #f-to type="text" name="to" value=(query.value("to")) placeholder="2026-12-07T18:00:00Z" size="22";
            }
            div {
                label for="f-q" { "Search" }
                input #f-q type="search" name="q" value=(query.value("q")) placeholder="title, error, reason…" size="20";
            }
            div {
                button type="submit" { "Filter" }
                @if query.filtered() { " " a href="/events" { "Clear" } }
            }
        }
        section #event-log data-live aria-labelledby="log-h" {
            h2 #log-h {
                @if upper <= head { "Events before #" (upper) } @else { "Newest events" }
            }
            @if found.rows.is_empty() {
                p.quiet {
                    @if head == 0 { "The event log is empty." }
                    @else if query.filtered() { "No event matches in this stretch of the log." }
                    @else { "No older event." }
                }
            } @else {
                table.events {
                    thead { tr {
                        th scope="col" { "Seq" } th scope="col" { "Time (UTC)" } th scope="col" { "Kind" }
                        th scope="col" { "Subject" } th scope="col" { "Details" }
                    } }
                    tbody {
                        @for (e, line) in &found.rows {
                            tr data-seq=(e.seq) {
                                td.num { (e.seq) }
                                td { (html::time(e.at)) " " span.quiet { (e.at.to_rfc3339().get(..10).unwrap_or_default()) } }
                                td { code { (e.event.kind()) } }
                                td { (subject(&e.event, &line.subject)) }
                                td.details { (line.details) }
                            }
                        }
                    }
                }
            }
            @if let Some((low, high)) = found.scanned.filter(|_| short) {
                p.scan role="note" {
                    "Scanned events " (low) "–" (high) " (at most " (SCAN) " per page); "
                    (found.rows.len()) " matched. Older events were not searched yet."
                }
            }
            (html::pager(
                query.before.map(|_| query.href(None)),
                found.next.map(|n| query.href(Some(n))),
            ))
        }
    };
    Ok(html::page(view, Section::Events, "Events", body))
}

/// The subject of an event: a link to a task or an orchestration, an agent's name.
fn subject(e: &DomainEvent, name: &str) -> Markup {
    match e {
        DomainEvent::Task { id, .. } => html! { "task " (html::task_link(id)) },
        DomainEvent::Orchestration { id, .. } => {
            html! { "orchestration " (html::orchestration_link(id)) }
        }
        DomainEvent::Agent { .. } => html! { "agent " strong { (name) } },
        DomainEvent::Memory { id, .. } => {
            html! { "memory " span.id title=(id.to_string()) { (id.short()) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse() {
        let day = parse_time("2026-12-07", false).expect("date");
        assert_eq!(day.to_rfc3339(), "2026-12-07T00:00:00.000Z");
        let end = parse_time("2026-12-07", true).expect("date");
        assert_eq!(end.to_rfc3339(), "2026-12-07T23:59:59.999Z");
        let t = parse_time("2026-12-07T13:05:09.25Z", false).expect("time");
        assert_eq!(t.to_rfc3339(), "2026-12-07T13:05:09.250Z");
        let t = parse_time("2026-12-07T13:05:09+01:30", false).expect("time");
        assert_eq!(t.to_rfc3339(), "2026-12-07T11:35:09.000Z");
        let t = parse_time("2024-02-29T00:00:00-00:00", false).expect("leap day");
        assert_eq!(t.to_rfc3339(), "2024-02-29T00:00:00.000Z");
        assert_eq!(
            parse_time("1970-01-01T00:00:00Z", false).expect("epoch"),
            Timestamp::from_millis(0)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-12-07T25:00:00Z",
            "2026-12-07T13:05:09",
            "2026-12-07T13:05Z",
            "2026-12-07T13:05:09.Z",
            "2026-12-07T13:05:09+1:00",
            "２０２６-12-07",
        ] {
            assert!(parse_time(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_filters_name_their_field() {
        for (q, field) in [
            ("kind=task.exploded", "kind"),
            ("task=ab", "task"),
            ("orchestration=i!!", "orchestration"),
            ("from=tomorrow", "from"),
            ("to=2026-02-30", "to"),
            ("before=-3", "before"),
            ("before=0", "before"),
            ("from=2026-12-08&to=2026-12-07", "to"),
        ] {
            let e = Query::parse(Some(q)).expect_err(q);
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{q}");
            assert!(
                e.message.contains(&format!("`{field}`")),
                "{q}: {}",
                e.message
            );
        }
        let q = Query::parse(Some("kind=task&q=HeLLo&task=&before=9")).expect("good");
        assert_eq!(q.kind.as_deref(), Some("task"));
        assert_eq!(q.text.as_deref(), Some("hello"));
        assert_eq!(q.task, None);
        assert_eq!(q.before, Some(9));
        assert_eq!(q.href(Some(3)), "/events?kind=task&q=HeLLo&before=3");
    }
}
