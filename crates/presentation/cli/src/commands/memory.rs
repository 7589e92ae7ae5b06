//! `maos memory add|list|search|show|pin|unpin|forget`: what outlives a task.

use std::path::Path;

use maos_application::{
    AddMemory, MaosApi, MemoryFilter, MemoryHits, MemoryList, MemoryPage, MemorySearch,
};
use maos_domain::{Memory, MemoryScope, MemoryText, Provenance, RepoPath, Tags, Timestamp};
use serde::Serialize;

use crate::cli::{
    MemoryAddArgs, MemoryCommand, MemoryListArgs, MemorySearchArgs, MemoryTextArg, ScopeArg,
};
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text_or_stdin};
use crate::json;
use crate::output::{Output, Render};

/// `maos memory …`.
pub(super) fn execute(
    cmd: MemoryCommand,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        MemoryCommand::Add(args) => add(args, api, out),
        MemoryCommand::List(args) => list(args, api, out),
        MemoryCommand::Search(args) => search(args, api, out),
        MemoryCommand::Show { id } => out.print(&Shown(api.get_memory(&id)?)),
        MemoryCommand::Pin { id } => out.print(&Changed(api.pin_memory(&id)?, "pinned")),
        MemoryCommand::Unpin { id } => out.print(&Changed(api.unpin_memory(&id)?, "unpinned")),
        MemoryCommand::Forget { id, reason } => {
            out.print(&Changed(api.forget_memory(&id, reason)?, "forgot"))
        }
    }
}

fn invalid(e: maos_domain::ValueError) -> CliError {
    CliError::new(FailureClass::InvalidInput, e.to_string())
}

/// A scope as typed, resolved: `repo:.` to the current directory's repository, an
/// orchestration's id prefix to its id.
fn resolve(scope: ScopeArg, api: &dyn MaosApi) -> Result<MemoryScope, CliError> {
    match scope {
        ScopeArg::Scope(s) => Ok(s),
        ScopeArg::Orchestration(r) => Ok(MemoryScope::Orchestration(api.get_orchestration(&r)?.id)),
        ScopeArg::CurrentRepository => {
            let not_here = || {
                CliError::new(
                    FailureClass::InvalidInput,
                    "repo:. names the current directory's git repository, and it is in none",
                )
                .with_hint("run it inside the repository, or give repo:<absolute path>")
            };
            let cwd = std::env::current_dir().map_err(|_| not_here())?;
            let top = maos_git::GitWorkspaces::new()
                .top_level(&cwd)
                .map_err(|_| not_here())?;
            let top = std::fs::canonicalize(&top).unwrap_or(top);
            repo_scope(&top)
        }
    }
}

fn repo_scope(dir: &Path) -> Result<MemoryScope, CliError> {
    let shown = dir.to_str().ok_or_else(|| {
        CliError::new(
            FailureClass::InvalidInput,
            format!(
                "the repository's path {} is not UTF-8",
                escape::line(&dir.display().to_string())
            ),
        )
    })?;
    RepoPath::parse(shown)
        .map(MemoryScope::Repository)
        .map_err(invalid)
}

fn scopes(raw: Vec<ScopeArg>, api: &dyn MaosApi) -> Result<Vec<MemoryScope>, CliError> {
    raw.into_iter().map(|s| resolve(s, api)).collect()
}

fn add(args: MemoryAddArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let text = match args.text {
        MemoryTextArg::Text(t) => t,
        MemoryTextArg::Stdin => {
            let raw = read_text_or_stdin(Path::new("-"), FileKind::Memory)?;
            MemoryText::parse(&raw).map_err(invalid)?
        }
    };
    let tags = Tags::try_from(args.tags).map_err(invalid)?;
    let scope = resolve(args.scope, api)?;
    let m = api.add_memory(AddMemory {
        tier: args.tier,
        scope,
        text,
        tags,
        provenance: Provenance::Person,
    })?;
    out.print(&Changed(m, "added"))
}

fn list(args: MemoryListArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let filter = MemoryFilter {
        scopes: scopes(args.scopes, api)?,
        tiers: args.tiers,
        tag: args.tag,
        all: args.all,
    };
    let page = MemoryPage {
        limit: args.limit,
        cursor: args.cursor,
    };
    let list = api.list_memories(&filter, &page)?;
    out.print(&Listed {
        list,
        all: args.all,
    })
}

fn search(args: MemorySearchArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let search = MemorySearch {
        query: args.query,
        filter: MemoryFilter {
            scopes: scopes(args.scopes, api)?,
            tiers: args.tiers,
            tag: args.tag,
            all: args.all,
        },
        limit: args.limit,
    };
    let hits = api.search_memories(&search)?;
    out.print(&Found { search, hits })
}

/// An entry as a command changed it (`added`, `pinned`, …).
struct Changed(Memory, &'static str);

impl Render for Changed {
    fn document(&self) -> impl Serialize {
        json::MemoryDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let m = &self.0;
        out.text(&format!(
            "{} memory {} ({}, {}): {}",
            self.1,
            m.id.short(),
            m.tier,
            m.scope,
            escape::line(&human::clip(m.text.first_line(), 60))
        ))?;
        if self.1 == "added"
            && let Some(at) = m.expires_at
        {
            out.note(&format!(
                "it expires at {} unless pinned (maos memory pin {})",
                at.to_rfc3339(),
                m.id.short()
            ));
        }
        Ok(())
    }
}

/// `memory show`.
struct Shown(Memory);

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        json::MemoryDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let text = human::memory_details(out.color(), &self.0, Timestamp::from_millis(now));
        out.text(&text)
    }
}

/// `memory list`.
struct Listed {
    list: MemoryList,
    all: bool,
}

impl Render for Listed {
    fn document(&self) -> impl Serialize {
        json::MemoryListDoc::new(
            &self.list.memories,
            self.list.next_cursor.as_ref().map(ToString::to_string),
        )
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        if self.list.memories.is_empty() {
            out.note("no memory entries match; add one with `maos memory add`");
        } else {
            let text = human::memory_table(out.color(), &self.list.memories, self.all);
            out.text(&text)?;
        }
        if let Some(cursor) = &self.list.next_cursor {
            out.note(&format!("more entries: maos memory list --cursor {cursor}"));
        }
        Ok(())
    }
}

/// `memory search`.
struct Found {
    search: MemorySearch,
    hits: MemoryHits,
}

impl Render for Found {
    fn document(&self) -> impl Serialize {
        json::MemorySearchDoc::new(&self.search, &self.hits)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        if self.hits.hits.is_empty() {
            out.note(&format!(
                "no memory entry has any of the words: {}",
                escape::line(&self.search.query.to_string())
            ));
            return Ok(());
        }
        if !self.hits.every_word {
            out.note("no entry has every word; these have some of them");
        }
        let text = human::memory_hits(out.color(), &self.hits.hits);
        out.text(&text)
    }
}
