//! Plan review (`/orchestrations/{id}/plan`): the newest version of an orchestration's plan as a
//! graph and a table, every version with what changed from the one before, what happened to
//! the plan (planners, failures, decisions), and the decisions a person can make on the newest
//! version: approve it, ask for another with feedback, or reject it with a reason.
//!
//! Every form carries the version it was shown: a decision on a version that is no longer the
//! newest is refused (409), so a person decides on what they saw.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use maos_application::{ErrorKind, IdRef, MaosApi, PlanHistory, PlanRecord};
use maos_domain::{Orchestration, Plan, PlanDiff, PlanOrigin, PlanVersion};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::Posted;
use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};
use crate::svg;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route("/orchestrations/{id}/plan", get(show))
        .route("/orchestrations/{id}/plan/approve", post(approve))
        .route("/orchestrations/{id}/plan/regenerate", post(regenerate))
        .route("/orchestrations/{id}/plan/reject", post(reject))
}

async fn show(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    ctx.page(move |api, view| render(api, view, &id)).await
}

/// True when the newest version waits for a person's decision.
fn undecided(o: &Orchestration, newest: Option<&PlanVersion>) -> bool {
    newest.is_some_and(|v| v.number == o.plan_version && v.number > o.decided_version)
        && !o.status.is_terminal()
        && o.planning.is_none()
}

fn render(api: &dyn MaosApi, view: &View, id: &str) -> Result<Markup, WebError> {
    let id = super::id_ref(id)?;
    let history = api.plan_history(&id)?;
    let o = &history.orchestration;
    let base = format!("/orchestrations/{}", o.id);
    let newest = history.version(None);
    let title = format!("Plan of {}", o.name.as_str());
    let body = html! {
        p {
            a href=(base) { "← The orchestration" } " · "
            (html::state(o.status.as_str()))
            @if o.approved_version > 0 { " · version " (o.approved_version) " runs" }
        }
        section #plan-decision data-live aria-labelledby="decision-h" {
            h2 #decision-h { "Decision" }
            @if let Some(p) = &o.planning {
                p { "A planner is at work on a new version: " (html::task_link(&p.task)) "." }
            }
            @match newest {
                Some(v) if undecided(o, newest) => (decision_forms(view, &base, v.number)),
                Some(v) => p.quiet { "Version " (v.number) " is the newest; nothing waits for a decision." },
                None => p.quiet { "No version of the plan yet." },
            }
        }
        @if let Some(v) = newest {
            section #plan-current data-live aria-labelledby="current-h" {
                h2 #current-h { "Version " (v.number) " " span.quiet { "(" (origin(&v.origin)) ", " (html::time(v.proposed_at)) ")" } }
                (plan_view(&v.plan))
                @if let Some(r) = &v.rationale {
                    h3 { "The planner's reasons" }
                    pre.rationale { (r) }
                }
            }
        }
        section #plan-versions data-live aria-labelledby="versions-h" {
            h2 #versions-h { "Versions" }
            (versions(&history))
        }
        section #plan-record data-live aria-labelledby="record-h" {
            h2 #record-h { "What happened" }
            (record(&history))
        }
    };
    Ok(html::page(view, Section::Elsewhere, &title, body))
}

fn origin(o: &PlanOrigin) -> String {
    match o {
        PlanOrigin::Planner { agent, attempt, .. } => {
            format!("by planner {}, attempt {attempt}", agent.as_str())
        }
        PlanOrigin::Person => "written by a person".to_owned(),
    }
}

fn decision_forms(view: &View, base: &str, version: u32) -> Markup {
    html! {
        div.actions.plan-forms {
            form method="post" action={ (base) "/plan/approve" } {
                (html::csrf(view))
                input type="hidden" name="version" value=(version);
                button.primary type="submit" { "Approve version " (version) }
            }
            form method="post" action={ (base) "/plan/regenerate" } {
                (html::csrf(view))
                input type="hidden" name="version" value=(version);
                label for="feedback" { "Feedback for the planner" }
                textarea #feedback name="feedback" required maxlength="20000" {}
                button type="submit" { "Ask for another version" }
            }
            form method="post" action={ (base) "/plan/reject" } {
                (html::csrf(view))
                input type="hidden" name="version" value=(version);
                label for="reject-reason" { "Reason for rejecting (optional)" }
                input #reject-reason type="text" name="reason" maxlength="2000";
                " "
                button.danger type="submit" { "Reject version " (version) }
            }
        }
    }
}

/// A plan as a graph and a table.
fn plan_view(plan: &Plan) -> Markup {
    let index: std::collections::HashMap<&str, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let nodes: Vec<svg::Node> = plan
        .tasks
        .iter()
        .map(|t| svg::Node {
            href: None,
            label: t.title.as_str().to_owned(),
            title: format!("{} ({}): {} risk", t.title.as_str(), t.key, t.risk.as_str()),
            state: "pending",
            deps: t
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect(),
            ms: None,
        })
        .collect();
    let drawn = svg::dag(&nodes, "The plan's tasks and their dependencies");
    html! {
        p { strong { "Goal: " } (plan.goal) }
        @if !plan.notes.is_empty() {
            ul.notes { @for n in &plan.notes { li { (n) } } }
        }
        @if let Some(v) = &plan.verify { p { "Verified as a whole by " code { (v) } } }
        p.quiet { (plan.tasks.len()) " tasks in " (drawn.layers) " layers; the longest chain is outlined." }
        div.figure { (drawn.svg) }
        table.plan {
            thead { tr {
                th scope="col" { "Key" } th scope="col" { "Title" } th scope="col" { "Depends on" }
                th scope="col" { "Capabilities" } th scope="col" { "Risk" } th scope="col" { "Tier" }
                th scope="col" { "Attempts" } th scope="col" { "Budget" } th scope="col" { "Concerns" } th scope="col" { "Verify" }
            } }
            tbody {
                @for t in &plan.tasks {
                    tr {
                        td { code { (t.key) } }
                        td {
                            (t.title.as_str())
                            @if !t.prompt.is_empty() {
                                details { summary { "Prompt" } pre { (t.prompt) } }
                            }
                        }
                        td { (t.depends_on.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                        td { (t.capabilities) }
                        td { span class={ "risk risk-" (t.risk.as_str()) } { (t.risk.as_str()) } }
                        td { (t.tier.map_or("any", |t| t.as_str())) }
                        td { (t.max_attempts.get()) }
                        td { (t.budget.map_or_else(|| "—".to_owned(), html::usd)) }
                        td { (t.concerns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                        td { @if let Some(v) = &t.verify { code { (v) } } @else { "—" } }
                    }
                }
            }
        }
    }
}

/// Every version, newest first, with what changed from the one before.
fn versions(history: &PlanHistory) -> Markup {
    let o = &history.orchestration;
    html! {
        @if history.versions.is_empty() {
            p.quiet { "None yet." }
        } @else {
            ol.versions reversed {
                @for (k, v) in history.versions.iter().enumerate().rev() {
                    li {
                        strong { "Version " (v.number) } " — " (origin(&v.origin)) ", " (html::time(v.proposed_at))
                        " · " (v.plan.tasks.len()) " tasks"
                        @if v.number == o.approved_version { " · " span.state.state-completed { "approved, runs" } }
                        @else if let Some(d) = decision(history, v.number) { " · " (d) }
                        @if let Some(prev) = k.checked_sub(1).and_then(|p| history.versions.get(p)) {
                            (diff(&prev.plan, &v.plan, prev.number))
                        }
                    }
                }
            }
        }
    }
}

/// The decision on version `n`, if any.
fn decision(history: &PlanHistory, n: u32) -> Option<Markup> {
    history.record.iter().rev().find_map(|r| match r {
        PlanRecord::Approved { version, .. } if *version == n => {
            Some(html! { span.state.state-completed { "approved" } })
        }
        PlanRecord::Rejected {
            version, reason, ..
        } if *version == n => Some(html! {
            span.state.state-cancelled { "rejected" }
            @if let Some(r) = reason { " " span.quiet { "“" (r) "”" } }
        }),
        _ => None,
    })
}

/// What changed from version `was` (`old`) to `new`, by task key.
fn diff(old: &Plan, new: &Plan, was: u32) -> Markup {
    let d = PlanDiff::between(old, new);
    let keys = |ks: &[maos_domain::PlanKey]| {
        ks.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        @if d.is_empty() {
            p.quiet { "The same as version " (was) "." }
        } @else {
            ul.diff aria-label={ "Changes from version " (was) } {
                @if !d.added.is_empty() { li.add { "+ added: " (keys(&d.added)) } }
                @if !d.removed.is_empty() { li.del { "− removed: " (keys(&d.removed)) } }
                @for (key, fields) in &d.changed { li.hunk { "~ " code { (key) } ": " (fields.join(", ")) } }
                @if !d.plan_fields.is_empty() { li.hunk { "~ the plan's " (d.plan_fields.join(", ")) } }
            }
        }
    }
}

fn record(history: &PlanHistory) -> Markup {
    html! {
        @if history.record.is_empty() {
            p.quiet { "Nothing yet." }
        } @else {
            ol.record {
                @for r in &history.record {
                    li {
                        @match r {
                            PlanRecord::Planning { task, max_tasks, at, .. } => {
                                (html::time(*at)) " a planner started: " (html::task_link(task)) " (at most " (max_tasks) " tasks)"
                            }
                            PlanRecord::Proposed { version, at } => {
                                (html::time(*at)) " version " (version) " proposed"
                            }
                            PlanRecord::Failed { task, problems, at, .. } => {
                                (html::time(*at)) " planner " (html::task_link(task)) " gave no acceptable plan"
                                @if !problems.is_empty() { ul { @for p in problems { li { (p) } } } }
                            }
                            PlanRecord::Approved { version, by, tasks, superseded, at } => {
                                (html::time(*at)) " version " (version) " approved by " (by.as_str()) ": " (tasks.len()) " tasks"
                                @if !superseded.is_empty() { ", " (superseded.len()) " superseded" }
                            }
                            PlanRecord::Rejected { version, reason, at } => {
                                (html::time(*at)) " version " (version) " rejected"
                                @if let Some(r) = reason { ": " (r) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct ApproveForm {
    version: String,
}

#[derive(Debug, Deserialize)]
struct RegenerateForm {
    version: String,
    feedback: String,
}

#[derive(Debug, Deserialize)]
struct RejectForm {
    version: String,
    reason: Option<String>,
}

/// The version a form carries, checked against the newest: a decision is made on what was seen.
fn check_version(api: &dyn MaosApi, id: &IdRef, raw: &str) -> Result<u32, WebError> {
    let shown: u32 = raw.trim().parse().map_err(|_| {
        WebError::invalid(format!("the plan version must be a number, not {raw:?}"))
    })?;
    let o = api.get_orchestration(id)?;
    if shown != o.plan_version {
        return Err(WebError {
            kind: ErrorKind::Conflict,
            message: format!(
                "version {shown} of the plan is not the newest (version {} is): reload the page \
                 and decide on what it shows",
                o.plan_version
            ),
        });
    }
    Ok(shown)
}

async fn approve(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<ApproveForm>,
) -> Response {
    ctx.act(move |api| {
        let id = super::id_ref(&id)?;
        let version = check_version(api, &id, &form.version)?;
        let made = api.approve_plan(&id, Some(version))?;
        Ok(format!("/orchestrations/{}", made.orchestration.id))
    })
    .await
}

async fn regenerate(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<RegenerateForm>,
) -> Response {
    ctx.act(move |api| {
        let id = super::id_ref(&id)?;
        check_version(api, &id, &form.version)?;
        let feedback = form.feedback.trim().to_owned();
        if feedback.is_empty() {
            return Err(WebError::invalid(
                "say what the planner should change: the feedback is empty",
            ));
        }
        let started = api.regenerate_plan(&id, feedback)?;
        Ok(format!("/orchestrations/{}/plan", started.orchestration.id))
    })
    .await
}

async fn reject(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    Posted(form): Posted<RejectForm>,
) -> Response {
    ctx.act(move |api| {
        let id = super::id_ref(&id)?;
        check_version(api, &id, &form.version)?;
        let reason = form
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let o = api.reject_plan(&id, reason)?;
        Ok(format!("/orchestrations/{}/plan", o.id))
    })
    .await
}
