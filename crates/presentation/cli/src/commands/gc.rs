//! `maos gc`: the git worktrees of finished tasks removed (or, with `--dry-run`, listed).

use maos_application::{GcEntry, MaosApi};
use serde::Serialize;

use crate::error::CliError;
use crate::escape;
use crate::json;
use crate::output::{Output, Render};

/// `maos gc`.
pub(super) fn execute(
    dry_run: bool,
    force: bool,
    older_than: Option<maos_domain::DurationMs>,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let older_than = older_than.map_or(std::time::Duration::from_secs(7 * 86_400), |d| {
        std::time::Duration::from_millis(d.as_millis())
    });
    let entries = api.gc(&maos_application::GcRequest {
        dry_run,
        force,
        older_than,
    })?;
    out.print(&Collected { entries, dry_run })
}

/// What `maos gc` removed, kept, or (with `--dry-run`) would remove.
struct Collected {
    entries: Vec<GcEntry>,
    dry_run: bool,
}

impl Render for Collected {
    fn document(&self) -> impl Serialize {
        json::GcDoc::new(&self.entries, self.dry_run)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let (entries, dry_run) = (&self.entries, self.dry_run);
        if entries.is_empty() {
            out.note("no worktree of a finished task is old enough to remove");
            return Ok(());
        }
        let mut lines = Vec::new();
        for e in entries {
            lines.push(match (&e.kept_because, dry_run) {
                (Some(why), _) => format!(
                    "kept    {} ({}): {}",
                    escape::line(&e.path),
                    e.task.short(),
                    escape::line(why)
                ),
                (None, true) => format!(
                    "would remove {} ({})",
                    escape::line(&e.path),
                    e.task.short()
                ),
                (None, false) => format!("removed {} ({})", escape::line(&e.path), e.task.short()),
            });
        }
        out.text(&lines.join("\n"))?;
        if entries.iter().any(|e| e.kept_because.is_some()) {
            out.note(
                "--force removes the kept ones too (uncommitted changes are discarded; branches \
                 stay)",
            );
        }
        Ok(())
    }
}
