//! Shell completion: `maos completions <shell>`, the static script generated from the grammar,
//! and the completers of live data (task and orchestration ids, agent and workflow names) that
//! answer `COMPLETE=<shell> maos` (ADR 0016). A completer reads the database for reading only,
//! never starts the daemon, gives up after [`DEADLINE`] and offers nothing when anything fails.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use clap::CommandFactory;
use clap::builder::StyledStr;
use clap_complete::engine::ValueCompleter;
use clap_complete::{CompletionCandidate, PathCompleter, Shell};
use maos_application::{AgentFilter, ReadStore, StoreError};

use crate::cli::Cli;
use crate::compose;
use crate::error::CliError;
use crate::output::Output;

/// `maos completions <shell>`.
pub(super) fn print(shell: Shell, out: &mut Output) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "maos", &mut script);
    out.bytes(&script)
}

/// How long a completer may look: a shell waits for it on every Tab.
pub(crate) const DEADLINE: Duration = Duration::from_millis(500);

/// How many ids a completer offers at most.
const MAX_CANDIDATES: usize = 50;

/// Task ids starting with what was typed, each with its title.
pub(crate) fn task_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = id_prefix(current) else {
        return Vec::new();
    };
    live(move |store| {
        let ids = store.task_ids_with_prefix(&prefix, MAX_CANDIDATES)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let title = store.task(id)?.map(|t| t.spec.title.to_string());
            found.push(candidate(id.to_string(), title));
        }
        Ok(found)
    })
}

/// Orchestration ids starting with what was typed, each with its name.
pub(crate) fn orchestration_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = id_prefix(current) else {
        return Vec::new();
    };
    live(move |store| {
        let ids = store.orchestration_ids_with_prefix(&prefix, MAX_CANDIDATES)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let name = store.orchestration(id)?.map(|o| o.name.to_string());
            found.push(candidate(id.to_string(), name));
        }
        Ok(found)
    })
}

/// Memory entry ids starting with what was typed, each with the first line of its text.
pub(crate) fn memory_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = id_prefix(current) else {
        return Vec::new();
    };
    live(move |store| {
        let ids = store.memory_ids_with_prefix(&prefix, MAX_CANDIDATES)?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            // An agent may have written it: escaped, so that it cannot steer the terminal.
            let text = store.memory(id)?.map(|m| {
                crate::escape::line(&crate::human::clip(m.text.first_line(), 60)).into_owned()
            });
            found.push(candidate(id.to_string(), text));
        }
        Ok(found)
    })
}

/// Names of agents (every status but removed) starting with what was typed, each with its
/// status.
pub(crate) fn agent_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = current.to_str().map(str::to_owned) else {
        return Vec::new();
    };
    live(move |store| {
        Ok(store
            .agents(&AgentFilter::default())?
            .into_iter()
            .filter(|a| a.name.as_str().starts_with(&typed))
            .map(|a| candidate(a.name.to_string(), Some(a.status.as_str().to_owned())))
            .collect())
    })
}

/// Workflow names (the built-ins and the files of <data dir>/workflows) starting with what was
/// typed, each with its description; what looks like a path completes as a file.
pub(crate) fn workflow_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = current.to_str() else {
        return Vec::new();
    };
    if typed.contains('/') || typed.starts_with('.') || typed.starts_with('~') {
        return PathCompleter::any().complete(current);
    }
    let typed = typed.to_owned();
    let Some(dir) = data_dir() else {
        return Vec::new();
    };
    within(move || {
        super::workflow::known_workflows(&dir)
            .into_iter()
            .filter_map(|(w, _)| w.ok())
            .filter(|w| w.name().to_string().starts_with(&typed))
            .map(|w| candidate(w.name().to_string(), Some(w.description().to_owned())))
            .collect()
    })
}

/// The lowercase id prefix typed, or none when it cannot begin an id.
fn id_prefix(current: &OsStr) -> Option<String> {
    let typed = current.to_str()?.to_ascii_lowercase();
    maos_domain::ids::check_prefix("id", &typed)
        .ok()
        .or_else(|| typed.is_empty().then(String::new))
}

fn candidate(value: String, help: Option<String>) -> CompletionCandidate {
    CompletionCandidate::new(value).help(help.map(StyledStr::from))
}

/// Runs `look` on the database of the data directory the command line names, opened for
/// reading only: nothing when there is no database, when anything fails, or after the deadline.
fn live<F>(look: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(&dyn ReadStore) -> Result<Vec<CompletionCandidate>, StoreError> + Send + 'static,
{
    let Some(dir) = data_dir() else {
        return Vec::new();
    };
    within(move || {
        compose::for_completion(&dir)
            .and_then(|store| look(store.as_ref()).ok())
            .unwrap_or_default()
    })
}

/// What `work` answers, or nothing if it takes longer than [`DEADLINE`] (it is left behind:
/// the process exits once the shell has its answer).
fn within<F>(work: F) -> Vec<CompletionCandidate>
where
    F: FnOnce() -> Vec<CompletionCandidate> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("complete".into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    if spawned.is_err() {
        return Vec::new();
    }
    rx.recv_timeout(DEADLINE).unwrap_or_default()
}

/// The data directory as the command line being completed names it (`--data-dir DIR` or
/// `--data-dir=DIR`), else as `maos` would find it.
fn data_dir() -> Option<PathBuf> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let given = given_data_dir(&args);
    compose::data_dir(given.as_deref()).ok()
}

fn given_data_dir(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--data-dir" {
            found = it.next().map(PathBuf::from);
        } else if let Some(dir) = text.strip_prefix("--data-dir=") {
            found = Some(PathBuf::from(dir));
        }
    }
    found.filter(|d| !d.as_os_str().is_empty()).map(expand_home)
}

/// `~/x` as the shell would have expanded it (a word being completed is not expanded yet).
fn expand_home(dir: PathBuf) -> PathBuf {
    match (dir.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_data_directory_is_read_from_the_line_being_completed() {
        assert_eq!(
            given_data_dir(&args(&[
                "maos",
                "--",
                "maos",
                "--data-dir",
                "/d",
                "task",
                "show"
            ])),
            Some(PathBuf::from("/d"))
        );
        assert_eq!(
            given_data_dir(&args(&["maos", "--data-dir=/e", "task"])),
            Some(PathBuf::from("/e"))
        );
        assert_eq!(given_data_dir(&args(&["maos", "task", "--data-dir"])), None);
        assert_eq!(given_data_dir(&args(&["maos", "task"])), None);
    }

    #[test]
    fn only_what_can_begin_an_id_is_looked_up() {
        assert_eq!(id_prefix(OsStr::new("3KQ")), Some("3kq".into()));
        assert_eq!(id_prefix(OsStr::new("")), Some(String::new()));
        assert_eq!(id_prefix(OsStr::new("il")), None);
    }

    #[test]
    fn a_completer_that_takes_too_long_offers_nothing() {
        let slow = within(|| {
            std::thread::sleep(DEADLINE * 4);
            vec![CompletionCandidate::new("late")]
        });
        assert!(slow.is_empty());
        let quick = within(|| vec![CompletionCandidate::new("soon")]);
        assert_eq!(quick.len(), 1);
    }
}
