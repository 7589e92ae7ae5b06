//! The commands, one module per noun. [`execute`] is the one dispatch: per command it decides
//! what the command needs (nothing, the data directory, the database itself, or the API through
//! the daemon or in this process), composes only that, and hands it to the command's module.

mod admin;
mod agent;
mod approval;
pub(crate) mod completions;
mod doctor;
mod events;
mod gc;
mod init;
mod man;
mod mcp;
mod memory;
mod metrics;
mod orchestrate;
pub(crate) mod plan;
mod status;
mod task;
mod ui;
mod workflow;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use maos_application::MaosApi;

use crate::cli::{
    AdminCommand, Cli, Command, DaemonAction, GlobalArgs, MemoryCommand, OrchestrateCommand,
    TaskCommand,
};
use crate::compose;
use crate::daemon;
use crate::error::{CliError, FailureClass};
use crate::output::Output;

pub use mcp::McpFrontEnd;
pub(crate) use mcp::installed as mcp_front_end;

/// Sets the MCP front end: what `maos mcp` serves, and the daemon's model loop's MAOS tools
/// (once, at start).
pub(crate) fn install_mcp(server: &'static dyn McpFrontEnd) {
    mcp::install(server);
}

/// Carries out one command.
pub(crate) fn execute(cli: Cli, out: &mut Output) -> Result<(), CliError> {
    let Cli { global, command } = cli;
    let needs = Needs { global: &global };
    if is_long(&command) {
        out.page();
    }
    match command {
        Command::Completions { shell } => completions::print(shell, out),
        Command::Man { command, dir } => man::execute(&command, dir.as_deref(), out),
        Command::Daemon(args) => {
            let dir = needs.data_dir()?;
            match args.action {
                None => daemon::foreground(&dir),
                Some(DaemonAction::Start) => daemon::start(&dir, global.verbose, out),
                Some(DaemonAction::Stop) => daemon::stop(&dir, out),
                Some(DaemonAction::Status) => daemon::status(&dir, out),
            }
        }
        Command::Workflow(cmd) => workflow::execute(&cmd, &needs.data_dir()?, out),
        // Reads the database itself, beside a running daemon or without one (ADR 0012).
        Command::Admin(AdminCommand::Verify) => admin::verify(&needs.data_dir()?, out),
        // Looks at everything MAOS needs, starting and writing nothing.
        Command::Doctor { repo } => doctor::execute(&needs.data_dir()?, repo.as_deref(), out),
        Command::Init {
            yes,
            only,
            repo_local,
            force,
        } => init::execute(
            &init::InitArgs {
                yes,
                only,
                repo_local,
                force,
            },
            || needs.api().map(|c| Box::new(c) as Box<dyn init::ApiHandle>),
            out,
        ),
        Command::Agent(cmd) => agent::execute(cmd, needs.api()?.api(), out),
        Command::Task(cmd) => task::execute(cmd, needs.api()?.api(), out),
        Command::Memory(cmd) => memory::execute(cmd, needs.api()?.api(), out),
        Command::Mcp => mcp::execute(|| needs.api().map(|c| c.api), out),
        Command::Orchestrate(cmd) => {
            let on = needs.api()?;
            orchestrate::execute(cmd, on.api(), &on.dir, out)
        }
        Command::Plan(args) => match args.command {
            // The format needs no daemon.
            Some(crate::cli::PlanCommand::Schema) => plan::schema(out),
            // In this process nothing runs a planner: waiting for one would never end.
            _ => plan::execute(
                args,
                needs.api()?.api(),
                compose::no_daemon(global.no_daemon),
                out,
            ),
        },
        Command::Status(args) => status::execute(&args, needs.api()?.api(), out),
        Command::Metrics { since } => metrics::execute(since, needs.api()?.api(), out),
        Command::Ui(args) => {
            if compose::no_daemon(global.no_daemon) {
                return Err(CliError::new(
                    FailureClass::Usage,
                    "the dashboard is served by the daemon; it cannot run with --no-daemon",
                )
                .with_hint("run `maos ui` without --no-daemon (and without MAOS_NO_DAEMON=1)"));
            }
            ui::execute(&args, &needs.data_dir()?, global.verbose, out)
        }
        Command::Events(args) => events::execute(&args, needs.api()?.api(), out),
        Command::Approve { id } => approval::approve(&id, needs.api()?.api(), out),
        Command::Reject { id, reason, cancel } => {
            approval::reject(&id, reason, cancel, needs.api()?.api(), out)
        }
        Command::Approvals => approval::list(needs.api()?.api(), out),
        Command::Gc {
            dry_run,
            force,
            older_than,
        } => gc::execute(dry_run, force, older_than, needs.api()?.api(), out),
    }
}

/// True for the commands whose text for people is long enough to want a pager on a terminal
/// (never the live ones: a pager would hold back what they print as it happens).
fn is_long(command: &Command) -> bool {
    match command {
        Command::Task(cmd) => matches!(
            cmd,
            TaskCommand::List(_)
                | TaskCommand::Show { .. }
                | TaskCommand::Diff { .. }
                | TaskCommand::Logs { follow: false, .. }
        ),
        Command::Events(args) => !args.follow,
        Command::Memory(cmd) => matches!(
            cmd,
            MemoryCommand::List(_) | MemoryCommand::Search(_) | MemoryCommand::Show { .. }
        ),
        Command::Orchestrate(OrchestrateCommand::Status { watch, .. }) => !watch,
        _ => false,
    }
}

/// What a command may need, composed only when its arm asks for it.
struct Needs<'a> {
    global: &'a GlobalArgs,
}

impl Needs<'_> {
    /// The data directory: `--data-dir`, `MAOS_DATA_DIR` or the XDG data directory.
    fn data_dir(&self) -> Result<PathBuf, CliError> {
        compose::data_dir(self.global.data_dir.as_deref())
    }

    /// The API on the data directory: in this process with `--no-daemon`, else through the
    /// daemon (started on first need).
    fn api(&self) -> Result<Connected, CliError> {
        let dir = self.data_dir()?;
        let api = if compose::no_daemon(self.global.no_daemon) {
            compose::in_process(&dir)?
        } else {
            daemon::connect_or_start(&dir, self.global.verbose)?
        };
        Ok(Connected { dir, api })
    }
}

/// The API, and the data directory it works on.
struct Connected {
    dir: PathBuf,
    api: Arc<dyn MaosApi>,
}

impl Connected {
    fn api(&self) -> &dyn MaosApi {
        self.api.as_ref()
    }
}

impl init::ApiHandle for Connected {
    fn api(&self) -> &dyn MaosApi {
        self.api.as_ref()
    }
}

/// The repository a command's tasks work in: `--repo DIR`; else, unless `--no-repo`, the
/// repository the current directory is in (said on stderr, so that nobody is surprised); else
/// none.
pub(crate) fn chosen_repository(
    repo: Option<&Path>,
    no_repo: bool,
    out: &mut Output,
) -> Result<Option<String>, CliError> {
    if let Some(dir) = repo {
        return repository(dir).map(Some);
    }
    if no_repo {
        return Ok(None);
    }
    let Ok(cwd) = std::env::current_dir() else {
        return Ok(None);
    };
    let Ok(top) = maos_git::GitWorkspaces::new().top_level(&cwd) else {
        return Ok(None);
    };
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let shown = top.display().to_string();
    out.note(&format!(
        "working in the repository {} (the current directory's; --no-repo for none)",
        crate::escape::line(&shown)
    ));
    Ok(Some(shown))
}

/// Asks `question [y/N]` on the terminal and answers whether the person said yes; none when
/// there is no terminal to ask on (a script: it must say `--yes`).
pub(crate) fn ask(question: &str, out: &mut Output) -> Result<Option<bool>, CliError> {
    Ok(ask_line(&format!("{question} [y/N]"), out)?
        .map(|answer| matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES")))
}

/// Asks `question` on the terminal and answers the line the person typed (at most 4 KiB, without
/// its end of line); none when there is no terminal to ask on.
pub(crate) fn ask_line(question: &str, out: &mut Output) -> Result<Option<String>, CliError> {
    use std::io::{BufRead, IsTerminal, Read, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    out.flush()?;
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} ");
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .take(4096)
        .read_line(&mut answer)
        .map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot read your answer: {e}"),
            )
        })?;
    Ok(Some(answer.trim_end_matches(['\n', '\r']).to_owned()))
}

/// The repository work happens in and the branch it starts from: [`chosen_repository`] with
/// `base`; refused when `base` is given without a repository.
pub(crate) fn chosen_workspace(
    repo: Option<&Path>,
    no_repo: bool,
    base: Option<&str>,
    out: &mut Output,
) -> Result<Option<maos_domain::WorkspaceSpec>, CliError> {
    match chosen_repository(repo, no_repo, out)? {
        Some(repo) => Ok(Some(maos_domain::WorkspaceSpec {
            repo,
            base: base.map(str::to_owned),
        })),
        None if base.is_some() => Err(no_repo_for_base()),
        None => Ok(None),
    }
}

/// `--base` names where tasks start in a repository; without one it means nothing.
pub(crate) fn no_repo_for_base() -> CliError {
    CliError::new(
        FailureClass::Usage,
        "--base names the branch tasks start from, but there is no repository",
    )
    .with_hint(
        "give the repository too (--repo DIR, or `repo` in a plan file), or run from inside it",
    )
}

/// A repository directory as the daemon must see it: absolute, symbolic links resolved.
pub(crate) fn repository(dir: &Path) -> Result<String, CliError> {
    let full = std::fs::canonicalize(dir).map_err(|e| {
        CliError::new(
            FailureClass::InvalidInput,
            format!("cannot find the repository {}: {e}", dir.display()),
        )
        .with_hint("--repo takes the directory of a git repository")
    })?;
    // A subdirectory names its repository: tasks work on the whole of it (and concern locks
    // compare paths per repository). What is no repository is refused later, with git's words.
    let top = maos_git::GitWorkspaces::new()
        .top_level(&full)
        .unwrap_or(full);
    Ok(top.display().to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Carries out `maos --data-dir DIR --no-daemon ARGS…` and answers what stdout received.
    fn execute_in(dir: &Path, args: &[&str], json: bool) -> String {
        let mut line = vec!["maos", "--no-daemon", "--data-dir"];
        let dir = dir.to_str().unwrap();
        line.push(dir);
        line.extend_from_slice(args);
        let cli = Cli::try_parse_from(line).unwrap();
        let (mut out, captured) = Output::captured(json);
        execute(cli, &mut out).unwrap();
        out.finish().unwrap();
        captured.text()
    }

    #[test]
    fn completions_open_no_data_directory_and_no_database() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("not").join("there");
        let script = execute_in(&dir, &["completions", "bash"], false);
        assert!(script.contains("maos"), "{script}");
        assert!(!dir.exists(), "the data directory was made");
    }

    #[test]
    fn workflows_read_the_data_directory_but_open_no_database() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = execute_in(tmp.path(), &["workflow", "list"], true);
        assert!(doc.contains("\"workflows\""), "{doc}");
        assert!(!tmp.path().join(compose::DB_FILE).exists());
    }

    #[test]
    fn status_opens_the_database_through_the_api() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = execute_in(tmp.path(), &["status"], true);
        assert!(doc.contains("\"schema_version\""), "{doc}");
        assert!(tmp.path().join(compose::DB_FILE).exists());
    }
}
