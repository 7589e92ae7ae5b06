//! An orchestration (`/orchestrations/{id}`): its facts and report, its task graph as a layered
//! DAG with the critical path, a timeline of every attempt by agent, the buttons that make sense
//! in its state (start, pause, resume, cancel with a reason, merge), and its tasks as a paginated
//! table. Every section is a live region.
//!
//! The page reads the report and every task of the orchestration once (the graph needs them
//! all); the table shows [`PER_PAGE`] of them, in the graph's order (by layer).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use maos_application::{MaosApi, OrchestrationReport, Page, TaskFilter, WaitReason};
use maos_domain::{AttemptOutcome, NextStep, OrchestrationStatus, Task, TaskId};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::Posted;
use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};
use crate::svg;

/// Rows of the task table per page.
pub(crate) const PER_PAGE: usize = 50;

/// How many tasks of the critical path are listed in words.
const PATH_LISTED: usize = 30;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route("/orchestrations/{id}", get(show))
        .route("/orchestrations/{id}/start", post(start))
        .route("/orchestrations/{id}/pause", post(pause))
        .route("/orchestrations/{id}/resume", post(resume))
        .route("/orchestrations/{id}/cancel", post(cancel))
        .route("/orchestrations/{id}/merge", post(merge))
}

#[derive(Debug, Deserialize)]
struct Shown {
    page: Option<String>,
}

async fn show(State(ctx): State<Ctx>, Path(id): Path<String>, Query(q): Query<Shown>) -> Response {
    ctx.page(move |api, view| render(api, view, &id, q.page.as_deref()))
        .await
}

/// The page of orchestration `id` (a full id or a unique prefix) with the table at `page`
/// (1-based; none: the first).
pub(crate) fn render(
    api: &dyn MaosApi,
    view: &View,
    id: &str,
    page: Option<&str>,
) -> Result<Markup, WebError> {
    let page = match page {
        None | Some("") => 1,
        Some(p) => p.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| {
            WebError::invalid(format!("page must be a number from 1 up, not {p:?}"))
        })?,
    };
    let id = super::id_ref(id)?;
    let report = api.orchestration_report(&id)?;
    let tasks = all_tasks(api, &report)?;
    let now = crate::ctx::now();
    let o = &report.orchestration;
    let title = format!("Orchestration {}", o.name.as_str());

    let index: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let nodes: Vec<svg::Node> = tasks.iter().map(|t| node(t, &index)).collect();
    let drawn = svg::dag(&nodes, &format!("Task graph of {}", o.name.as_str()));
    let timeline = svg::timeline(bars(&tasks), now, "Attempts by agent over time");

    // The table: tasks by layer, then as listed.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (drawn.layer.get(i).copied().unwrap_or(0), i));
    let pages = tasks.len().div_ceil(PER_PAGE).max(1);
    if page > pages {
        return Err(WebError {
            kind: maos_application::ErrorKind::NotFound,
            message: format!("there are {pages} pages of tasks, not {page}"),
        });
    }
    let rows = order.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE);
    let base = format!("/orchestrations/{}", o.id);
    let link = |p: usize| format!("{base}?page={p}#tasks");

    let body = html! {
        section #facts data-live aria-label="Facts" {
            dl.facts {
                dt { "State" } dd { (html::state(o.status.as_str())) }
                dt { "Progress" } dd { (html::progress(report.completed, report.tasks, &format!("{} of {} tasks completed", report.completed, report.tasks))) }
                dt { "Cost" } dd { (html::usd(report.cost)) }
                @if let Some(goal) = &o.goal { dt { "Goal" } dd.goal { (goal) } }
                dt { "Id" } dd { code { (o.id) } }
                @if o.plan_version > 0 || o.planning.is_some() {
                    dt { "Plan" } dd { a href={ (base) "/plan" } { "Version " (o.plan_version) " — review" } }
                }
            }
        }
        section #controls data-live aria-labelledby="controls-h" {
            h2 #controls-h { "Control" }
            (controls(view, &report))
        }
        section #graph data-live aria-labelledby="graph-h" {
            h2 #graph-h { "Task graph" }
            @if tasks.is_empty() {
                p.quiet { "No task yet." }
            } @else {
                p.quiet {
                    (tasks.len()) " tasks in " (drawn.layers) " layers; the critical path ("
                    (drawn.critical.len()) " tasks) is outlined."
                    @if !drawn.full {
                        " More than " (svg::MAX_DRAWN) " tasks: each bar counts the tasks of a layer by state; the tasks are listed below."
                    }
                }
                div.figure { (drawn.svg) }
                @if !drawn.full {
                    h3 { "Critical path" }
                    ol.path {
                        @for &i in drawn.critical.iter().take(PATH_LISTED) {
                            @if let Some(t) = tasks.get(i) {
                                li { (html::task_link(&t.id)) " " (t.spec.title.as_str()) " " (html::state(t.state.as_str())) }
                            }
                        }
                    }
                    @if drawn.critical.len() > PATH_LISTED {
                        p.quiet { "… and " (drawn.critical.len() - PATH_LISTED) " more." }
                    }
                }
            }
        }
        section #timeline data-live aria-labelledby="timeline-h" {
            h2 #timeline-h { "Timeline" }
            @if timeline.left_out == 0 && report.attempts == 0 {
                p.quiet { "No attempt yet." }
            } @else {
                div.figure { (timeline.svg) }
                @if timeline.left_out > 0 {
                    p.quiet { "The " (timeline.left_out) " oldest attempts are not drawn." }
                }
            }
        }
        section #report data-live aria-labelledby="report-h" {
            h2 #report-h { "Report" }
            (report_facts(&report))
        }
        section #tasks data-live aria-labelledby="tasks-h" {
            h2 #tasks-h { "Tasks" }
            @if tasks.is_empty() {
                p.quiet { "No task yet." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "State" } th scope="col" { "Title" } th scope="col" { "Agent" }
                        th scope="col" { "Attempts" } th scope="col" { "Cost" } th scope="col" { "Id" }
                    } }
                    tbody {
                        @for &i in rows {
                            @if let Some(t) = tasks.get(i) {
                                tr {
                                    td { (html::state(t.state.as_str())) }
                                    td { a href={ "/tasks/" (t.id) } { (t.spec.title.as_str()) } }
                                    td { (agent_of(t)) }
                                    td { (t.attempts_used()) "/" (t.attempts_allowed()) }
                                    td { (html::usd(t.spent())) }
                                    td { (html::task_link(&t.id)) }
                                }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    nav.pager aria-label="Pages of tasks" {
                        @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
                        span { "Page " (page) " of " (pages) }
                        @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
                    }
                }
            }
        }
    };
    Ok(html::page(view, Section::Elsewhere, &title, body))
}

/// Every task of the orchestration, page by page.
fn all_tasks(api: &dyn MaosApi, report: &OrchestrationReport) -> Result<Vec<Task>, WebError> {
    let filter = TaskFilter {
        orchestration: Some(report.orchestration.id),
        ..TaskFilter::default()
    };
    let mut tasks = Vec::with_capacity(usize::try_from(report.tasks).unwrap_or(0));
    let mut cursor = None;
    loop {
        let page = api.list_tasks(
            &filter,
            &Page {
                limit: Page::MAX_LIMIT,
                cursor,
            },
        )?;
        tasks.extend(page.tasks);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(tasks),
        }
    }
}

fn node(t: &Task, index: &HashMap<TaskId, usize>) -> svg::Node {
    let known: Vec<u64> = t.attempts.iter().filter_map(|a| a.duration_ms()).collect();
    svg::Node {
        href: Some(format!("/tasks/{}", t.id)),
        label: t.spec.title.as_str().to_owned(),
        title: format!(
            "{} — {} ({})",
            t.spec.title.as_str(),
            t.state.as_str().replace('_', " "),
            t.id.short()
        ),
        state: t.state.as_str(),
        deps: t
            .spec
            .depends_on
            .iter()
            .filter_map(|d| index.get(d).copied())
            .collect(),
        ms: (!known.is_empty()).then(|| known.iter().sum()),
    }
}

fn bars(tasks: &[Task]) -> Vec<svg::Bar> {
    let mut bars = Vec::new();
    for t in tasks {
        for a in &t.attempts {
            let open = matches!(a.status, AttemptOutcome::Assigned | AttemptOutcome::Running);
            let start = a.started_at.unwrap_or(a.assigned_at);
            // An attempt that ended without an end time (never started) is a sliver.
            let end = if open {
                None
            } else {
                Some(a.ended_at.unwrap_or(start))
            };
            let took = end.map_or_else(
                || "still running".to_owned(),
                |e| html::duration_ms(e.millis_since(start)),
            );
            bars.push(svg::Bar {
                agent: a.agent.as_str().to_owned(),
                href: format!("/tasks/{}", t.id),
                title: format!(
                    "{} — attempt {} on {}: {}, {}",
                    t.spec.title.as_str(),
                    a.number,
                    a.agent.as_str(),
                    a.status.as_str(),
                    took
                ),
                outcome: a.status.as_str(),
                start,
                end,
            });
        }
    }
    bars
}

fn agent_of(t: &Task) -> String {
    match (t.current_attempt(), &t.spec.agent) {
        (Some(a), _) => a.agent.as_str().to_owned(),
        (None, Some(pinned)) => format!("{} (pinned)", pinned.as_str()),
        (None, None) => "—".to_owned(),
    }
}

/// The buttons that make sense in the orchestration's state.
fn controls(view: &View, report: &OrchestrationReport) -> Markup {
    let o = &report.orchestration;
    let base = format!("/orchestrations/{}", o.id);
    let s = o.status;
    let can_start = s == OrchestrationStatus::Draft && o.planning.is_none();
    let can_pause = s == OrchestrationStatus::Running;
    let can_resume = s == OrchestrationStatus::Paused;
    let can_cancel = !s.is_terminal();
    let can_merge =
        o.workspace.is_some() && report.completed > 0 && s != OrchestrationStatus::Cancelled;
    html! {
        div.actions {
            @if can_start { (html::button(view, &format!("{base}/start"), "Start", "primary")) }
            @if !s.is_terminal() && o.plan_version > o.decided_version && o.planning.is_none() {
                a.button href={ (base) "/plan" } { "Review version " (o.plan_version) " of the plan" }
            }
            @if can_pause {
                form.inline method="post" action={ (base) "/pause" } {
                    (html::csrf(view))
                    label.check { input type="checkbox" name="now" value="1"; " also stop running attempts" }
                    button type="submit" { "Pause" }
                }
            }
            @if can_resume { (html::button(view, &format!("{base}/resume"), "Resume", "primary")) }
            @if can_merge { (html::button(view, &format!("{base}/merge"), "Merge", "")) }
            @if can_cancel {
                form.reason method="post" action={ (base) "/cancel" } {
                    (html::csrf(view))
                    label for="cancel-reason" { "Reason for cancelling (optional)" }
                    input #cancel-reason type="text" name="reason" maxlength="2000";
                    " "
                    button.danger type="submit" { "Cancel orchestration" }
                }
            }
            @if !(can_start || can_pause || can_resume || can_cancel || can_merge) {
                p.quiet { "Nothing to do: it has ended." }
            }
        }
    }
}

fn report_facts(r: &OrchestrationReport) -> Markup {
    html! {
        dl.facts {
            dt { "Tasks" } dd {
                (r.tasks) " · "
                @for (state, n) in r.by_state.iter().filter(|(_, n)| **n > 0) {
                    (html::state(state.as_str())) " " (n) " "
                }
            }
            dt { "Attempts" } dd { (r.attempts) }
            dt { "Wall time" } dd { (html::duration_ms(r.wall_ms)) }
            dt { "Tokens" } dd { (r.input_tokens) " in / " (r.output_tokens) " out" }
            dt { "Cost" } dd { (html::usd(r.cost)) }
            @if r.planning.input_tokens > 0 || r.planning.cost.micros() > 0 {
                dt { "Planning" } dd { (html::usage(&r.planning)) }
            }
            @if let Some(b) = &r.integration_branch { dt { "Integration branch" } dd { code { (b) } } }
            dt { "Can move on its own" } dd {
                @if r.can_move { "yes" } @else { "no — " @if r.orchestration.status.is_terminal() { "it has ended" } @else { "it needs a person" } }
            }
        }
        @if !r.needs_a_person.is_empty() {
            h3 { "Waiting for a person" }
            ul.needs {
                @for n in &r.needs_a_person {
                    li {
                        (html::task_link(&n.task)) " " (n.title.as_str()) " " (html::state(n.state.as_str()))
                        @if let Some(b) = &n.blocked { " — blocked: " (b.kind().replace('_', " ")) }
                        @if !n.waits.is_empty() {
                            ul { @for w in &n.waits { li { (wait_text(w)) } } }
                        }
                        @if !n.next_steps.is_empty() {
                            " " span.quiet { "Next: " (n.next_steps.iter().map(step_text).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

/// What a task waits for, in words.
fn wait_text(w: &WaitReason) -> String {
    match w {
        WaitReason::Dependency { title, state, .. } => format!(
            "its dependency “{}” is {}",
            title.as_str(),
            state.as_str().replace('_', " ")
        ),
        WaitReason::Approval { gate } => format!("a person's approval ({})", gate.as_str()),
        WaitReason::Orchestration { status, .. } => {
            format!("its orchestration is {}", status.as_str().replace('_', " "))
        }
        WaitReason::Budget { budget } => format!("its budget ({}) is spent", html::usd(*budget)),
        WaitReason::NoCapableAgent { capabilities, .. } => {
            format!("no agent offers {capabilities}")
        }
        WaitReason::Blocked { .. } => "it is blocked".to_owned(),
        other => other.kind().as_str().replace('_', " "),
    }
}

fn step_text(s: &NextStep) -> String {
    match s {
        NextStep::Approve { .. } => "approve".to_owned(),
        NextStep::Reject { .. } => "reject".to_owned(),
        NextStep::Retry { .. } => "retry".to_owned(),
        NextStep::Cancel { .. } => "cancel the task".to_owned(),
        NextStep::ShowTask { .. } => "look at the task".to_owned(),
        NextStep::Assign { agent, .. } => format!("assign it to {}", agent.as_str()),
        NextStep::StartOrchestration { .. } => "start the orchestration".to_owned(),
        NextStep::ResumeOrchestration { .. } => "resume the orchestration".to_owned(),
        NextStep::ResumeAgent { agent } => format!("resume agent {}", agent.as_str()),
        NextStep::RegisterAgent => "register an agent that can take it".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct NoFields {}

#[derive(Debug, Deserialize)]
struct PauseForm {
    now: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    reason: Option<String>,
}

fn back(id: &maos_domain::OrchestrationId) -> String {
    format!("/orchestrations/{id}")
}

async fn start(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    ctx.act(move |api| {
        let o = api.start_orchestration(&super::id_ref(&id)?)?;
        Ok(back(&o.id))
    })
    .await
}

async fn pause(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<PauseForm>,
) -> Response {
    let now = form.now.is_some_and(|v| !v.is_empty());
    ctx.act(move |api| {
        let o = api.pause_orchestration(&super::id_ref(&id)?, now)?;
        Ok(back(&o.id))
    })
    .await
}

async fn resume(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    ctx.act(move |api| {
        let o = api.resume_orchestration(&super::id_ref(&id)?)?;
        Ok(back(&o.id))
    })
    .await
}

async fn cancel(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<CancelForm>,
) -> Response {
    let reason = form
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    ctx.act(move |api| {
        let o = api.cancel_orchestration(&super::id_ref(&id)?, reason)?;
        Ok(back(&o.id))
    })
    .await
}

async fn merge(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    ctx.act(move |api| {
        let m = api.merge_orchestration(&super::id_ref(&id)?, None)?;
        Ok(back(&m.orchestration.id))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_steps_read_as_words() {
        let w = WaitReason::Approval {
            gate: maos_domain::Gate::Result,
        };
        assert_eq!(wait_text(&w), "a person's approval (result)");
        assert_eq!(
            step_text(&NextStep::RegisterAgent),
            "register an agent that can take it"
        );
    }
}
