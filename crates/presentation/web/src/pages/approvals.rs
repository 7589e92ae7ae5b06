//! The approvals inbox (`/approvals`): every task waiting for a person's decision, oldest
//! request first, with what its branch changed and one-click decisions (a rejection needs a
//! reason).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maos_application::MaosApi;
use maud::{Markup, html};

use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router.route("/approvals", get(inbox))
}

async fn inbox(State(ctx): State<Ctx>) -> Response {
    ctx.page(render).await
}

fn render(api: &dyn MaosApi, view: &View) -> Result<Markup, WebError> {
    let requests = api.approvals()?;
    let body = html! {
        section #inbox data-live aria-label="Decisions waiting" {
            @if requests.is_empty() {
                p.quiet { "Nothing waits for a decision." }
            } @else {
                p { (requests.len()) " waiting, oldest first." }
                ol.inbox {
                    @for r in &requests {
                        @let t = &r.task;
                        li.decision data-task=(t.id) {
                            h2 {
                                a href={ "/tasks/" (t.id) } { (t.spec.title.as_str()) }
                                " " span.id title=(t.id.to_string()) { (t.id.short()) }
                            }
                            p {
                                @if let Some(p) = &t.pending {
                                    "Gate: " strong { (p.gate.as_str()) }
                                    @if let Some(tool) = &p.tool { " · tool " code { (tool) } }
                                    @if let Some(s) = &p.subject { " on " code { (s) } }
                                    " · asked " (html::time(p.requested_at))
                                }
                                " · risk " (t.spec.risk.as_str())
                                @if let Some(a) = t.current_attempt() { " · by " (a.agent.as_str()) }
                            }
                            @if let Some(c) = &r.changes {
                                p.changes { "Changes: " (c) " · " a href={ "/tasks/" (t.id) "#diff-h" } { "see the diff" } }
                            }
                            (super::task::decision_forms(view, &format!("/tasks/{}", t.id), &t.id.to_string(), "/approvals"))
                        }
                    }
                }
            }
        }
    };
    Ok(html::page(view, Section::Approvals, "Approvals", body))
}
