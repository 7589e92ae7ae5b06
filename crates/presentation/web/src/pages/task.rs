//! A task (`/tasks/{id}`): what it is, what it waits for, its attempts, the live log of its
//! newest attempt (`/tasks/{id}/log`), its briefing and the diff of its branch; and the
//! decisions a person takes on it: approve, reject with a reason, retry, cancel.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maos_application::{ErrorInfo, IdRef, LogRequest, MaosApi};
use maos_domain::{Attempt, Task, TaskState, WaitReason};
use maud::{Markup, html};
use serde::Deserialize;

use crate::ctx::{Ctx, View, WebError};
use crate::diff;
use crate::html::{self, Section};

use super::id_ref;
use crate::auth::Posted;

/// The most of a log the page shows when it opens (its end); the follower reads on from there.
const LOG_TAIL: u64 = 64 * 1024;
/// The most one read of the follower returns.
const LOG_CHUNK: usize = 256 * 1024;
/// How long one read of the follower waits for output of a running attempt.
const LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route("/tasks/{id}", get(show))
        .route("/tasks/{id}/log", get(log))
        .route("/tasks/{id}/approve", post(approve))
        .route("/tasks/{id}/reject", post(reject))
        .route("/tasks/{id}/retry", post(retry))
        .route("/tasks/{id}/cancel", post(cancel))
}

/// The header the page's script sends when it refetches the page for its live regions: the
/// briefing, the diff (a `git diff`) and the log (which the follower reads itself) are not live
/// regions, so such a refresh skips them.
const LIVE_REFRESH: &str = "x-maos-live";

async fn show(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let whole = !headers.contains_key(LIVE_REFRESH);
    ctx.page(move |api, view| render(api, view, &id, whole))
        .await
}

fn render(api: &dyn MaosApi, view: &View, raw: &str, whole: bool) -> Result<Markup, WebError> {
    let id = id_ref(raw)?;
    let task = api.get_task(&id)?;
    let id = IdRef::from(task.id);
    let waiting = if task.state.is_terminal() || task.state == TaskState::Running {
        Vec::new()
    } else {
        api.task_waiting(&id)?
    };
    let orchestration = match task.spec.orchestration {
        Some(o) => Some(api.get_orchestration(&IdRef::from(o))?),
        None => None,
    };
    // The briefing and the diff are there only once an attempt was made and a worktree exists;
    // when they cannot be read the page says why instead.
    let briefing = if !whole || task.attempts.is_empty() {
        None
    } else {
        Some(api.task_briefing(&id, None).map_err(WebError::from))
    };
    let diff = if whole && task.workspace.is_some() {
        Some(api.task_diff(&id, None, false).map_err(WebError::from))
    } else {
        None
    };
    let log = task
        .current_attempt()
        .filter(|_| whole)
        .map(|a| (a.number, initial_log(api, &id, a.number)));
    let title = task.spec.title.as_str().to_owned();
    let body = html! {
        section #facts data-live aria-label="Facts" {
            p {
                (html::state(task.state.as_str()))
                " " span.id title=(task.id.to_string()) { (task.id) }
                @if let Some(o) = &orchestration {
                    " · orchestration " a href={ "/orchestrations/" (o.id) } { (o.name.as_str()) }
                }
            }
            (facts(&task))
            @if let Some(reason) = &task.reason {
                p { strong { "Reason: " } (reason) }
            }
            @if !waiting.is_empty() {
                h2 { "Waiting for" }
                ul.waiting { @for w in &waiting { li { (wait(w)) } } }
            }
        }
        section #decide data-live aria-label="Decisions" {
            (decisions(view, &task))
        }
        section #attempts data-live aria-labelledby="attempts-h" {
            h2 #attempts-h { "Attempts" }
            (attempts(&task))
        }
        @if let Some((n, got)) = &log {
            section aria-labelledby="log-h" {
                h2 #log-h { "Log of attempt " (n) }
                @match got {
                    Ok((text, next, finished)) => {
                        @if *finished && text.is_empty() {
                            p.quiet { "The attempt wrote nothing." }
                        }
                        @if *finished {
                            pre #log tabindex="0" aria-label={ "Log of attempt " (n) } { (text) }
                        } @else {
                            pre #log tabindex="0" aria-label={ "Log of attempt " (n) }
                                data-log={ "/tasks/" (task.id) "/log?attempt=" (n) }
                                data-offset=(next) { (text) }
                        }
                    }
                    Err(e) => { p.quiet { "No log to show: " (e.message) } }
                }
            }
        }
        @if let Some(b) = &briefing {
            section aria-labelledby="brief-h" {
                h2 #brief-h { "Briefing" }
                @match b {
                    Ok(b) => {
                        details {
                            summary { "Briefing of attempt " (b.attempt) " (about " (b.tokens) " tokens)" }
                            pre.briefing { (b.text) }
                        }
                        @if !b.cut.is_empty() {
                            p { "Cut to fit the token budget:" }
                            ul { @for c in &b.cut { li { (c) } } }
                        }
                    }
                    Err(e) => { p.quiet { "No briefing to show: " (e.message) } }
                }
            }
        }
        @if let Some(d) = &diff {
            section aria-labelledby="diff-h" {
                h2 #diff-h { "Changes on its branch" }
                @if let Some(w) = &task.workspace {
                    p.quiet { "Branch " code { (w.branch) } " from " code { (w.base.get(..12).unwrap_or(&w.base)) } " in " code { (w.repo) } }
                }
                @match d {
                    Ok(text) if text.trim().is_empty() => { p.quiet { "No change." } }
                    Ok(text) => {
                        @let (markup, truncated) = diff::render(text);
                        (markup)
                        @if truncated {
                            p.quiet { "The diff is longer than " (diff::MAX_DIFF / 1024) " KiB; the rest is cut. "
                                "Run " code { "maos task diff " (task.id.short()) } " to see it whole." }
                        }
                    }
                    Err(e) => { p.quiet { "No diff to show: " (e.message) } }
                }
            }
        }
        section aria-labelledby="prompt-h" {
            h2 #prompt-h { "Prompt" }
            pre.prompt { (task.spec.prompt) }
        }
    };
    Ok(html::page(view, Section::Tasks, &title, body))
}

/// The end of the attempt's log (at most [`LOG_TAIL`] bytes), where it ends, and whether the
/// attempt has finished.
fn initial_log(
    api: &dyn MaosApi,
    id: &IdRef,
    attempt: u32,
) -> Result<(String, u64, bool), WebError> {
    let mut offset = 0u64;
    let mut text = Vec::new();
    // Read to the end without waiting, keeping the last LOG_TAIL bytes.
    loop {
        let chunk = match api.read_log(&LogRequest {
            task: id.clone(),
            attempt: Some(attempt),
            offset,
            max: LogRequest::MAX_CHUNK,
            wait: std::time::Duration::ZERO,
        }) {
            Ok(c) => c,
            // No log yet (the attempt has not started its process): follow from the start.
            Err(e) if e.kind() == maos_application::ErrorKind::NotFound => {
                return Ok((String::new(), 0, false));
            }
            Err(e) => return Err(e.into()),
        };
        offset = chunk.offset + chunk.bytes.len() as u64;
        text.extend_from_slice(&chunk.bytes);
        if text.len() as u64 > LOG_TAIL {
            let cut = text.len() - LOG_TAIL as usize;
            text.drain(..cut);
        }
        if chunk.bytes.is_empty() || chunk.finished {
            let mut shown = String::from_utf8_lossy(&text).into_owned();
            if offset > LOG_TAIL && text.len() as u64 == LOG_TAIL {
                // Start at a whole line.
                if let Some(nl) = shown.find('\n') {
                    shown.drain(..=nl);
                }
            }
            return Ok((shown, offset, chunk.finished));
        }
    }
}

fn facts(t: &Task) -> Markup {
    let cost = t.spent();
    html! {
        dl.facts {
            dt { "Risk" } dd { (t.spec.risk.as_str()) }
            dt { "Priority" } dd { (t.spec.priority.as_str()) }
            @if !t.spec.capabilities.is_empty() { dt { "Needs" } dd { (t.spec.capabilities.to_string()) } }
            @if let Some(tier) = t.spec.tier { dt { "Tier" } dd { (tier.as_str()) } }
            @if let Some(a) = &t.spec.agent { dt { "Agent" } dd { (a.as_str()) } }
            dt { "Attempts" } dd { (t.attempts.len()) " of " (t.spec.max_attempts.get() + t.extra_attempts) }
            dt { "Cost" } dd {
                (html::usd(cost))
                @if let Some(b) = t.spec.budget { " of a budget of " (html::usd(b)) }
            }
            @if !t.spec.depends_on.is_empty() {
                dt { "Depends on" }
                dd { @for d in &t.spec.depends_on { (html::task_link(d)) " " } }
            }
            @if let Some(v) = &t.spec.verify { dt { "Verified by" } dd { code { (v) } } }
            dt { "Created" } dd { (html::time(t.created_at)) }
            dt { "Updated" } dd { (html::time(t.updated_at)) }
        }
    }
}

/// What the task waits for, in words.
fn wait(w: &WaitReason) -> Markup {
    match w {
        WaitReason::Dependency { task, title, state } => html! {
            "its dependency " (html::task_link(task)) " " (title.as_str()) ", which is " (html::state(state.as_str()))
        },
        WaitReason::MissingDependency { task } => {
            html! { "its dependency " span.id { (task) } ", which does not exist" }
        }
        WaitReason::Backoff { due, .. } => html! {
            "the backoff after its failed attempt"
            @if let Some(d) = due { ": it retries at " (html::time(*d)) }
        },
        WaitReason::Approval { gate } => html! { "a person to approve (" (gate.as_str()) ")" },
        WaitReason::Blocked {
            words,
            budget_spent,
            ..
        } => html! {
            "a person: it is blocked"
            @if let Some(w) = words { " (" (w) ")" }
            @if *budget_spent { "; its budget is spent" }
        },
        WaitReason::Orchestration {
            orchestration,
            status,
        } => html! {
            "its orchestration " (html::orchestration_link(orchestration)) ", which is " (html::state(status.as_str()))
        },
        WaitReason::Budget { budget } => {
            html! { "more budget: its " (html::usd(*budget)) " are spent" }
        }
        WaitReason::Concern {
            mine,
            theirs,
            holder,
        } => html! {
            "its concern " code { (mine.to_string()) } ", which overlaps " code { (theirs.to_string()) } " held by " (html::task_link(holder))
        },
        WaitReason::NoCapableAgent {
            capabilities,
            tier,
            draining,
        } => html! {
            "an agent offering " code { (capabilities.to_string()) }
            @if let Some(t) = tier { " (" (t.as_str()) ")" }
            @if !draining.is_empty() { "; drained: " (names(draining)) }
        },
        WaitReason::AgentsBusy { agents } => html! { "a free slot: " (names(agents)) " are busy" },
        WaitReason::AssignsSoon { agents } => {
            html! { "the next scheduling pass (" (names(agents)) " can take it)" }
        }
        WaitReason::ExternalOnly { agents } => {
            html! { "an agent MAOS runs: only external agents (" (names(agents)) ") offer what it needs" }
        }
        WaitReason::BusyOrExternal { busy, external } => html! {
            "a free slot: " (names(busy)) " are busy; external agents (" (names(external)) ") could take it"
        },
        WaitReason::NextPass => html! { "the next scheduling pass" },
    }
}

fn names(agents: &[maos_domain::AgentName]) -> String {
    agents
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The forms a person may use now: approve / reject what it waits for, retry, cancel.
fn decisions(view: &View, t: &Task) -> Markup {
    let base = format!("/tasks/{}", t.id);
    let retryable = matches!(t.state, TaskState::Blocked | TaskState::Failed);
    html! {
        @if let Some(p) = &t.pending {
            h2 { "Waiting for your decision" }
            p {
                "Gate: " strong { (p.gate.as_str()) }
                @if let Some(tool) = &p.tool { " · tool " code { (tool) } }
                @if let Some(s) = &p.subject { " on " code { (s) } }
                " · asked " (html::time(p.requested_at))
            }
            (decision_forms(view, &base, &t.id.to_string(), &base))
        }
        @if !t.state.is_terminal() || retryable {
            div.actions {
                @if retryable {
                    form.inline method="post" action={ (base) "/retry" } {
                        (html::csrf(view))
                        label.inline for="retry-n" { "More attempts" }
                        input #retry-n type="number" name="attempts" value="1" min="1" max="100" size="3";
                        " " button type="submit" { "Retry" }
                    }
                }
                @if !t.state.is_terminal() {
                    form.inline method="post" action={ (base) "/cancel" } {
                        (html::csrf(view))
                        label.inline for="cancel-why" { "Reason to cancel (optional)" }
                        input #cancel-why type="text" name="reason" size="30";
                        " " button.danger type="submit" { "Cancel task" }
                    }
                }
            }
        }
    }
}

/// Approve and reject-with-a-reason forms for the task at `base`, returning to `then`.
pub(crate) fn decision_forms(view: &View, base: &str, key: &str, then: &str) -> Markup {
    let short = key.get(..8).unwrap_or(key);
    html! {
        div.actions {
            form.inline method="post" action={ (base) "/approve" } {
                (html::csrf(view))
                input type="hidden" name="then" value=(then);
                button.primary type="submit" aria-label={ "Approve task " (short) } { "Approve" }
            }
            form.reject method="post" action={ (base) "/reject" } {
                (html::csrf(view))
                input type="hidden" name="then" value=(then);
                label for={ "reason-" (key) } { "Reason to reject" }
                textarea id={ "reason-" (key) } name="reason" required rows="2" placeholder="What is wrong, and what should change" {}
                label.inline {
                    input type="checkbox" name="cancel" value="1";
                    " and cancel the task (instead of sending it back to the agent)"
                }
                button.danger type="submit" aria-label={ "Reject task " (short) } { "Reject" }
            }
        }
    }
}

fn attempts(t: &Task) -> Markup {
    html! {
        @if t.attempts.is_empty() {
            p.quiet { "No attempt yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Agent" } th scope="col" { "Outcome" }
                    th scope="col" { "Exit" } th scope="col" { "Duration" } th scope="col" { "Tokens and cost" }
                    th scope="col" { "Failure" }
                } }
                tbody {
                    @for a in t.attempts.iter().rev() {
                        tr {
                            td { (a.number) }
                            td { (a.agent.as_str()) }
                            td { (html::state(a.status.as_str()))
                                @if let Some(v) = &a.verification {
                                    " " span.quiet { @if v.passed { "verified" } @else { "verification failed" } }
                                }
                            }
                            td { @if let Some(e) = &a.exit { (e.to_string()) } }
                            td { (duration(a)) }
                            td { (html::usage(&a.usage)) }
                            td {
                                @if let Some(f) = a.failure { (f.as_str()) }
                                @if let Some(e) = &a.error { " " span.quiet { (e) } }
                                @if let Some(s) = &a.summary { span.quiet { (s) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn duration(a: &Attempt) -> String {
    let Some(start) = a.started_at else {
        return String::new();
    };
    let end = a.ended_at.unwrap_or_else(crate::ctx::now);
    let ms = u64::try_from(end.as_millis() - start.as_millis()).unwrap_or(0);
    let text = html::duration_ms(ms);
    if a.ended_at.is_none() {
        format!("{text} so far")
    } else {
        text
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    attempt: Option<u32>,
    #[serde(default)]
    offset: u64,
}

/// A piece of an attempt's log as text, from `offset`: waits up to [`LOG_WAIT`] for output of a
/// running attempt. Headers: `x-next-offset` (where to read on) and `x-finished` (`1` when the
/// attempt has ended and nothing follows).
async fn log(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    let got = ctx
        .blocking(move |api| {
            let chunk = api.read_log(&LogRequest {
                task: id_ref(&id)?,
                attempt: q.attempt,
                offset: q.offset,
                max: LOG_CHUNK,
                wait: LOG_WAIT,
            })?;
            Ok(chunk)
        })
        .await;
    match got {
        Ok(chunk) => {
            let next = chunk.offset + chunk.bytes.len() as u64;
            // Cut at the last whole character; the rest comes with the next read.
            let (text, used) = whole_chars(&chunk.bytes);
            let next = next - (chunk.bytes.len() - used) as u64;
            let finished = chunk.finished && used == chunk.bytes.len();
            let mut response = text.into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&next.to_string()) {
                h.insert("x-next-offset", v);
            }
            h.insert(
                "x-finished",
                HeaderValue::from_static(if finished { "1" } else { "0" }),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The bytes as text up to the last complete UTF-8 character (invalid bytes become U+FFFD),
/// and how many bytes that used.
fn whole_chars(bytes: &[u8]) -> (String, usize) {
    let mut used = bytes.len();
    // A UTF-8 character is at most 4 bytes: look back at most 3 for an unfinished one.
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        if (0xC2..=0xF4).contains(&b) {
            let need = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else {
                2
            };
            if need > back {
                used = bytes.len() - back;
            }
        }
        break;
    }
    (String::from_utf8_lossy(&bytes[..used]).into_owned(), used)
}

/// A decision's form: where to go afterwards (a path of this dashboard; the task by default).
#[derive(Debug, Deserialize)]
struct Then {
    #[serde(default)]
    then: Option<String>,
}

/// `then` when it is a path of this dashboard (never another site), else `fallback`.
fn then_or(then: Option<String>, fallback: String) -> String {
    match then {
        Some(t) if t.starts_with('/') && !t.starts_with("//") && !t.contains('\\') => t,
        _ => fallback,
    }
}

async fn approve(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<Then>,
) -> Response {
    ctx.act(move |api| {
        let task = api.approve(&id_ref(&id)?)?;
        Ok(then_or(form.then, format!("/tasks/{}", task.id)))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RejectForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    cancel: Option<String>,
    #[serde(default)]
    then: Option<String>,
}

async fn reject(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<RejectForm>,
) -> Response {
    ctx.act(move |api| {
        let reason = form.reason.trim().to_owned();
        if reason.is_empty() {
            return Err(WebError::invalid(
                "a rejection needs a reason: say what is wrong, so the agent (or the log) knows",
            ));
        }
        let task = api.reject(&id_ref(&id)?, reason, form.cancel.is_some())?;
        Ok(then_or(form.then, format!("/tasks/{}", task.id)))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RetryForm {
    #[serde(default)]
    attempts: Option<String>,
}

async fn retry(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<RetryForm>,
) -> Response {
    ctx.act(move |api| {
        let attempts = match form.attempts.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(n) => n
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    WebError::invalid(format!(
                        "attempts: {n:?} is not a whole number from 1 to 100"
                    ))
                })?,
        };
        let task = api.retry_task(&id_ref(&id)?, attempts)?;
        Ok(format!("/tasks/{}", task.id))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    #[serde(default)]
    reason: Option<String>,
}

async fn cancel(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<CancelForm>,
) -> Response {
    ctx.act(move |api| {
        let reason = form
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let task = api.cancel_task(&id_ref(&id)?, reason)?;
        Ok(format!("/tasks/{}", task.id))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        let f = || "/tasks/x".to_owned();
        assert_eq!(then_or(Some("/approvals".into()), f()), "/approvals");
        assert_eq!(then_or(Some("//evil.example".into()), f()), "/tasks/x");
        assert_eq!(
            then_or(Some("https://evil.example".into()), f()),
            "/tasks/x"
        );
        assert_eq!(then_or(Some("/\\evil.example".into()), f()), "/tasks/x");
        assert_eq!(then_or(None, f()), "/tasks/x");
    }

    #[test]
    fn a_character_cut_in_two_waits_for_its_end() {
        let bytes = "aé".as_bytes();
        assert_eq!(whole_chars(&bytes[..2]), ("a".to_owned(), 1));
        assert_eq!(whole_chars(bytes), ("aé".to_owned(), 3));
        let euro = "€".as_bytes();
        assert_eq!(whole_chars(&euro[..2]), (String::new(), 0));
        assert_eq!(whole_chars(b"ab\xff"), ("ab\u{fffd}".to_owned(), 3));
        assert_eq!(whole_chars(b""), (String::new(), 0));
    }
}
