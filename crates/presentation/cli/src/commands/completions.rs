//! `maos completions <shell>`: the shell completion script, generated from the grammar.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::CliError;
use crate::output::Output;

/// `maos completions <shell>`.
pub(super) fn print(shell: Shell, out: &mut Output) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "maos", &mut script);
    out.bytes(&script)
}
