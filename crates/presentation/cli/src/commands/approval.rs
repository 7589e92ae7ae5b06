//! `maos approve`, `maos reject` and `maos approvals`: what waits for a person (a high-risk task
//! to run, verified work to accept, a tool call), and the person's answer.

use maos_application::{IdRef, MaosApi};
use maos_domain::Task;
use serde::Serialize;

use crate::error::CliError;
use crate::escape;
use crate::human;
use crate::json;
use crate::output::{Output, Render};

/// `maos approve <id>`.
pub(super) fn approve(id: &IdRef, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    out.print(&Decided(api.approve(id)?, Decision::Approved))
}

/// `maos reject <id> --reason TEXT [--cancel]`.
pub(super) fn reject(
    id: &IdRef,
    reason: String,
    cancel: bool,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    out.print(&Decided(
        api.reject(id, reason, cancel)?,
        Decision::Rejected,
    ))
}

/// What the person said.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Approved,
    Rejected,
}

/// A task after the person's decision: its document, or what became of it.
struct Decided(Task, Decision);

impl Render for Decided {
    fn document(&self) -> impl Serialize {
        json::TaskDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let t = &self.0;
        out.text(&match self.1 {
            Decision::Approved => format!(
                "approved task {}: it is {}{}",
                t.id.short(),
                t.state,
                crate::reasons::task_reason(t)
                    .map(|r| format!(" ({})", escape::line(&r)))
                    .unwrap_or_default()
            ),
            Decision::Rejected => format!("rejected: task {} is {}", t.id.short(), t.state),
        })
    }
}

/// `maos approvals`.
pub(super) fn list(api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let waiting = api.approvals()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let rows: Vec<json::ApprovalJson> = waiting
        .iter()
        .map(|a| json::ApprovalJson::new(&a.task, now, a.changes.clone()))
        .collect();
    out.print(&Waiting(json::ApprovalsDoc {
        schema_version: json::SCHEMA_VERSION,
        approvals: rows,
    }))
}

/// `maos approvals`: what waits for a person, a row each, and how to decide.
struct Waiting(json::ApprovalsDoc);

impl Render for Waiting {
    fn document(&self) -> impl Serialize {
        &self.0
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let rows = &self.0.approvals;
        if rows.is_empty() {
            out.note("nothing waits for a person");
            return Ok(());
        }
        let text = human::approvals_table(out.color(), rows);
        out.text(&text)?;
        out.note("decide with `maos approve <id>` or `maos reject <id> --reason \"...\"`");
        Ok(())
    }
}
