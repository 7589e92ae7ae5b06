//! The overview (`/`): orchestrations with their progress, agents with their load and circuit
//! breakers, tasks by state, what waits for a person, and what today cost.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maos_application::{AgentFilter, MaosApi};
use maos_domain::{AgentStatus, OrchestrationStatus};
use maud::{Markup, html};

use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};

/// How many orchestrations the overview lists (the newest first; live ones before ended ones).
const ORCHESTRATIONS: usize = 20;

/// How many waiting decisions it lists.
const DECISIONS: usize = 10;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router.route("/", get(overview))
}

async fn overview(State(ctx): State<Ctx>) -> Response {
    let shared = ctx.clone();
    ctx.page(move |api, view| render(api, view, &shared)).await
}

fn render(api: &dyn MaosApi, view: &View, ctx: &Ctx) -> Result<Markup, WebError> {
    let status = api.status()?;
    let mut orchestrations = api.list_orchestrations()?;
    // Live ones first, then the newest.
    orchestrations.sort_by_key(|o| (o.status.is_terminal(), std::cmp::Reverse(o.created_at)));
    let shown: Vec<_> = orchestrations.iter().take(ORCHESTRATIONS).collect();
    let mut reports = Vec::with_capacity(shown.len());
    for o in &shown {
        let report = api.orchestration_report(&maos_application::IdRef::from(o.id))?;
        reports.push(report);
    }
    let agents = api.list_agents(&AgentFilter::default())?;
    let approvals = api.approvals()?;
    let plans: Vec<_> = orchestrations
        .iter()
        .filter(|o| {
            o.status == OrchestrationStatus::AwaitingPlanApproval
                || (!o.status.is_terminal() && o.decided_version < o.plan_version)
        })
        .collect();
    let today = ctx.today(api)?;

    let body = html! {
        section #counts data-live aria-labelledby="counts-h" {
            h2 #counts-h { "Tasks by state" }
            ul.counts {
                @for (state, n) in &status.tasks {
                    @if *n > 0 {
                        li { a href={ "/tasks?state=" (state.as_str()) } { (html::state(state.as_str())) " " strong { (n) } } }
                    }
                }
            }
            p {
                "Spend today: " strong #spend-today { (html::usd(today.usage.cost)) }
                " · " (today.completed) " completed, " (today.attempts) " attempts since 00:00 UTC · "
                "all time: " (html::usage(&status.usage))
            }
        }
        section #waiting data-live aria-labelledby="waiting-h" {
            h2 #waiting-h { "Waiting for you" }
            @if approvals.is_empty() && plans.is_empty() {
                p.quiet { "Nothing waits for a person." }
            } @else {
                ul {
                    @for p in &plans {
                        li { "Plan of " a href={ "/orchestrations/" (p.id) "/plan" } { (p.name.as_str()) } " (version " (p.plan_version) ") waits for review" }
                    }
                    @for a in approvals.iter().take(DECISIONS) {
                        li {
                            (html::task_link(&a.task.id)) " " (a.task.spec.title.as_str()) " — "
                            @if let Some(p) = &a.task.pending { (p.gate.as_str()) } @else { "decision" }
                            @if let Some(c) = &a.changes { " · " span.quiet { (c) } }
                        }
                    }
                }
                @if approvals.len() > DECISIONS {
                    p { a href="/approvals" { "All " (approvals.len()) " decisions →" } }
                }
            }
        }
        section #orchestrations data-live aria-labelledby="orch-h" {
            h2 #orch-h { "Orchestrations" }
            @if reports.is_empty() {
                p.quiet { "No orchestration yet." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "Progress" } th scope="col" { "Cost" } th scope="col" { "Id" } } }
                    tbody {
                        @for r in &reports {
                            tr data-orchestration=(r.orchestration.id) {
                                td { a href={ "/orchestrations/" (r.orchestration.id) } { (r.orchestration.name.as_str()) } }
                                td { (html::state(r.orchestration.status.as_str())) }
                                td { (html::progress(r.completed, r.tasks, &format!("{} of {} tasks completed", r.completed, r.tasks))) }
                                td { (html::usd(r.cost)) }
                                td { (html::orchestration_link(&r.orchestration.id)) }
                            }
                        }
                    }
                }
                @if orchestrations.len() > ORCHESTRATIONS {
                    p.quiet { (orchestrations.len() - ORCHESTRATIONS) " older orchestrations are not listed." }
                }
            }
        }
        section #agents data-live aria-labelledby="agents-h" {
            h2 #agents-h { "Agents" }
            @if agents.is_empty() {
                p.quiet { "No agent registered." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Agent" } th scope="col" { "Status" } th scope="col" { "Load" } th scope="col" { "Tier" } th scope="col" { "Capabilities" } th scope="col" { "Circuit breaker" } } }
                    tbody {
                        @for a in &agents {
                            tr {
                                td { (a.name.as_str()) }
                                td { (html::state(a.status.as_str())) }
                                td { (html::progress(u64::from(a.active), u64::from(a.slots.get()), &format!("{} of {} slots busy", a.active, a.slots.get()))) }
                                td { (a.tier.as_str()) }
                                td { (a.capabilities.to_string()) }
                                td {
                                    @if a.status == AgentStatus::Draining && a.drained_because.is_some() {
                                        span.state.state-blocked { "open" } " " span.quiet { (a.drained_because.as_deref().unwrap_or_default()) }
                                    } @else if a.failures_in_row > 0 {
                                        "closed · " (a.failures_in_row) " failures in a row"
                                    } @else {
                                        "closed"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html::page(view, Section::Overview, "Overview", body))
}
