//! `maos approve`, `maos reject` and `maos approvals`: what waits for a person (a high-risk task
//! to run, verified work to accept, a tool call), and the person's answer.

use maos_application::{IdRef, MaosApi};

use crate::error::CliError;
use crate::escape;
use crate::human;
use crate::json;
use crate::output::Output;

/// `maos approve <id>`.
pub(super) fn approve(id: &IdRef, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let t = api.approve(id)?;
    if out.json() {
        return out.document(&json::TaskDoc::new(&t));
    }
    out.text(&format!(
        "approved task {}: it is {}{}",
        t.id.short(),
        t.state,
        t.reason
            .as_deref()
            .map(|r| format!(" ({})", escape::line(r)))
            .unwrap_or_default()
    ))
}

/// `maos reject <id> --reason TEXT [--cancel]`.
pub(super) fn reject(
    id: &IdRef,
    reason: String,
    cancel: bool,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let t = api.reject(id, reason, cancel)?;
    if out.json() {
        return out.document(&json::TaskDoc::new(&t));
    }
    out.text(&format!("rejected: task {} is {}", t.id.short(), t.state))
}

/// `maos approvals`.
pub(super) fn list(api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let tasks = api.approvals()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let rows: Vec<json::ApprovalJson> = tasks
        .iter()
        .map(|t| {
            let changes = t
                .workspace
                .as_ref()
                .and_then(|_| api.diff_summary(&t.id.into()).ok());
            json::ApprovalJson::new(t, now, changes)
        })
        .collect();
    if out.json() {
        return out.document(&json::ApprovalsDoc {
            schema_version: json::SCHEMA_VERSION,
            approvals: rows,
        });
    }
    if rows.is_empty() {
        out.note("nothing waits for a person");
        return Ok(());
    }
    let text = human::approvals_table(out.color(), &rows);
    out.text(&text)?;
    out.note("decide with `maos approve <id>` or `maos reject <id> --reason \"...\"`");
    Ok(())
}
