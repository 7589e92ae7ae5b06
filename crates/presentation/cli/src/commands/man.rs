//! `maos man [COMMAND…]`: the manual pages, generated from the grammar with clap_mangen: one
//! page in roff on stdout, or with `--dir` one file per command (`maos.1`, `maos-task-create.1`,
//! …) to install where `man` looks.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{CliError, FailureClass};
use crate::output::Output;

/// `maos man [COMMAND…] [--dir DIR]`.
pub(super) fn execute(
    path: &[String],
    dir: Option<&Path>,
    out: &mut Output,
) -> Result<(), CliError> {
    let root = grammar();
    let cmd = find(&root, path)?;
    match dir {
        None => {
            let mut page = Vec::new();
            render(cmd, &mut page)?;
            out.bytes(&page)
        }
        Some(dir) => {
            let written = write_all(cmd, dir)?;
            out.note(&format!(
                "wrote {written} manual page{} to {}",
                if written == 1 { "" } else { "s" },
                dir.display()
            ));
            Ok(())
        }
    }
}

/// The whole grammar, built (so every subcommand knows its full name, `maos-task-create`),
/// without the `help` subcommand, which has no page of its own. The global options, which `-h`
/// leaves out, are described on every page.
pub(crate) fn grammar() -> clap::Command {
    let mut cmd = Cli::command()
        .disable_help_subcommand(true)
        .mut_args(|a| a.hide_short_help(false));
    cmd.build();
    cmd
}

/// The command `path` names below `root` (aliases too).
fn find<'a>(root: &'a clap::Command, path: &[String]) -> Result<&'a clap::Command, CliError> {
    let mut cmd = root;
    for (i, name) in path.iter().enumerate() {
        cmd = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .find(|s| s.get_name() == name || s.get_all_aliases().any(|a| a == name))
            .ok_or_else(|| {
                let above = std::iter::once("maos")
                    .chain(path[..i].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                let known: Vec<&str> = cmd
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(clap::Command::get_name)
                    .collect();
                let e = CliError::new(
                    FailureClass::Usage,
                    format!("`{above}` has no command `{name}`"),
                );
                if known.is_empty() {
                    e.with_hint(format!(
                        "`{above}` has no subcommands: its page is `maos man{}`",
                        &above[4..]
                    ))
                } else {
                    e.with_hint(format!("its commands are: {}", known.join(", ")))
                }
            })?;
    }
    Ok(cmd)
}

/// One command's page, from maos of this version.
fn man(cmd: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone())
        .source(format!("maos {}", env!("CARGO_PKG_VERSION")))
        .manual("MAOS Manual")
}

/// Renders one command's page.
fn render(cmd: &clap::Command, to: &mut Vec<u8>) -> Result<(), CliError> {
    man(cmd).render(to).map_err(|e| {
        CliError::new(
            FailureClass::Failure,
            format!("cannot render the page: {e}"),
        )
    })
}

/// Writes the page of `cmd` and of every command below it into `dir` (made if missing);
/// answers how many.
fn write_all(cmd: &clap::Command, dir: &Path) -> Result<usize, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| cannot_write(dir, &e))?;
    let mut written = 0;
    let mut todo = vec![cmd];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()));
        let file = dir.join(man(cmd).get_filename());
        let mut page = Vec::new();
        render(cmd, &mut page)?;
        std::fs::write(&file, page).map_err(|e| cannot_write(&file, &e))?;
        written += 1;
    }
    Ok(written)
}

fn cannot_write(path: &Path, e: &std::io::Error) -> CliError {
    CliError::new(
        FailureClass::Failure,
        format!("cannot write {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(cmd: &clap::Command) -> Vec<&clap::Command> {
        let mut found = vec![cmd];
        for sub in cmd.get_subcommands() {
            found.extend(all(sub));
        }
        found
    }

    #[test]
    fn every_command_has_a_page_that_names_it() {
        let root = grammar();
        for cmd in all(&root) {
            let mut page = Vec::new();
            render(cmd, &mut page).unwrap();
            let page = String::from_utf8(page).unwrap();
            let name = cmd.get_display_name().unwrap_or(cmd.get_name());
            assert!(page.starts_with(".ie") || page.contains(".TH"), "{name}");
            assert!(page.contains(name), "{name}");
            // Every option is described, the global ones too.
            assert!(
                !page.contains(".TP\n\\fB\\-\\-json\\fR\n\n"),
                "{name}: {page}"
            );
        }
    }

    #[test]
    fn a_path_finds_a_command_by_name_or_alias_and_refuses_an_unknown_one() {
        let root = grammar();
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cmd = find(&root, &path(&["task", "ls"])).unwrap();
        assert_eq!(cmd.get_display_name(), Some("maos-task-list"));
        let e = find(&root, &path(&["task", "frob"])).unwrap_err();
        assert_eq!(e.class, FailureClass::Usage);
        assert!(
            e.message.contains("`maos task` has no command `frob`"),
            "{}",
            e.message
        );
        assert!(find(&root, &path(&["help"])).is_err());
    }
}
