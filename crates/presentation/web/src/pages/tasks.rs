//! The task list (`/tasks`): every task, oldest first, a page at a time (the application's
//! cursor), filtered by state and orchestration.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use maos_application::{MaosApi, Page, TaskCursor, TaskFilter};
use maos_domain::TaskState;
use maud::{Markup, html};

use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};

/// Tasks per page.
pub(crate) const PAGE: usize = 50;

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router.route("/tasks", get(list))
}

/// The list's query: `state` (repeatable), `orchestration`, `after` (a cursor).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Query {
    states: Vec<TaskState>,
    orchestration: Option<String>,
    after: Option<TaskCursor>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, WebError> {
        let mut q = Query::default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| WebError::invalid(format!("the address's query is unreadable: {e}")))?;
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "state" => q.states.push(
                    TaskState::parse(&v).map_err(|e| WebError::invalid(format!("state: {e}")))?,
                ),
                "orchestration" => q.orchestration = Some(v),
                "after" => {
                    q.after = Some(
                        TaskCursor::parse(&v)
                            .map_err(|e| WebError::invalid(format!("after: {e}")))?,
                    )
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// This query's address with `after` replaced.
    fn href(&self, after: Option<&TaskCursor>) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .states
            .iter()
            .map(|s| ("state", s.as_str().to_owned()))
            .collect();
        if let Some(o) = &self.orchestration {
            pairs.push(("orchestration", o.clone()));
        }
        if let Some(a) = after {
            pairs.push(("after", a.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            "/tasks".to_owned()
        } else {
            format!("/tasks?{query}")
        }
    }
}

async fn list(State(ctx): State<Ctx>, RawQuery(raw): RawQuery) -> Response {
    ctx.page(move |api, view| render(api, view, raw.as_deref()))
        .await
}

fn render(api: &dyn MaosApi, view: &View, raw: Option<&str>) -> Result<Markup, WebError> {
    let q = Query::parse(raw)?;
    let orchestration = match &q.orchestration {
        Some(o) => Some(api.get_orchestration(&super::id_ref(o)?)?),
        None => None,
    };
    let filter = TaskFilter {
        statuses: q.states.clone(),
        orchestration: orchestration.as_ref().map(|o| o.id),
        capability: None,
    };
    let page = api.list_tasks(
        &filter,
        &Page {
            limit: PAGE,
            cursor: q.after,
        },
    )?;
    let body = html! {
        form.filters method="get" action="/tasks" aria-label="Filter tasks" {
            div {
                label for="f-state" { "State" }
                select #f-state name="state" {
                    option value="" { "any" }
                    @for s in TaskState::ALL {
                        @if q.states.first() == Some(s) {
                            option value=(s.as_str()) selected { (s.as_str()) }
                        } @else {
                            option value=(s.as_str()) { (s.as_str()) }
                        }
                    }
                }
            }
            div {
                label for="f-orch" { "Orchestration id" }
                input #f-orch type="text" name="orchestration" value=(q.orchestration.clone().unwrap_or_default()) size="14";
            }
            div { button type="submit" { "Filter" } }
        }
        @if let Some(o) = &orchestration {
            p { "Tasks of " a href={ "/orchestrations/" (o.id) } { (o.name.as_str()) } "." }
        }
        section #task-list data-live aria-label="Tasks" {
            (table(&page.tasks))
        }
        (html::pager_with(
            q.after.map(|_| (q.href(None), "← First page")),
            page.next_cursor.as_ref().map(|c| (q.href(Some(c)), "Next page →")),
        ))
    };
    Ok(html::page(view, Section::Tasks, "Tasks", body))
}

/// A table of tasks: id, title, state, risk, agent, attempts, cost.
pub(crate) fn table(tasks: &[maos_domain::Task]) -> Markup {
    html! {
        @if tasks.is_empty() {
            p.quiet { "No task here." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Title" } th scope="col" { "State" }
                    th scope="col" { "Risk" } th scope="col" { "Agent" } th scope="col" { "Attempts" }
                    th scope="col" { "Cost" } th scope="col" { "Created" }
                } }
                tbody {
                    @for t in tasks {
                        tr data-task=(t.id) {
                            td { (html::task_link(&t.id)) }
                            td { a href={ "/tasks/" (t.id) } { (t.spec.title.as_str()) } }
                            td { (html::state(t.state.as_str())) }
                            td { (t.spec.risk.as_str()) }
                            td { @if let Some(a) = t.current_attempt() { (a.agent.as_str()) } }
                            td { (t.attempts.len()) }
                            td { (html::usd(t.spent())) }
                            td { (html::time(t.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_parses_and_round_trips() {
        let q =
            Query::parse(Some("state=running&state=ready&orchestration=abcd&x=1")).expect("parses");
        assert_eq!(q.states, vec![TaskState::Running, TaskState::Ready]);
        assert_eq!(q.orchestration.as_deref(), Some("abcd"));
        assert_eq!(
            q.href(None),
            "/tasks?state=running&state=ready&orchestration=abcd"
        );
        assert_eq!(Query::parse(None).expect("empty").href(None), "/tasks");
    }

    #[test]
    fn a_bad_state_names_the_field() {
        let e = Query::parse(Some("state=bogus")).expect_err("refused");
        assert_eq!(e.kind, maos_application::ErrorKind::InvalidInput);
        assert!(e.message.starts_with("state: "), "{}", e.message);
        let e = Query::parse(Some("after=nope")).expect_err("refused");
        assert!(e.message.starts_with("after: "), "{}", e.message);
    }
}
