//! The MAOS command line: parses the arguments, sets up logging and output, has
//! `commands::execute` carry out the command and turns its outcome into an exit code
//! (docs/exit-codes.md). The `maos` binary (`crates/maos`, the composition root) calls [`main`]
//! with the front ends the daemon hosts besides this one (the web dashboard).

mod agents_file;
mod cli;
mod commands;
mod compose;
mod config_file;
mod daemon;
mod error;
mod escape;
mod hints;
mod human;
mod input;
mod json;
mod live;
mod output;
mod reasons;
mod tasks_file;
mod workflow_file;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::error::ErrorKind as ClapErrorKind;
use clap::{CommandFactory, FromArgMatches};
use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, ColorWhen, GlobalArgs};
use crate::error::FailureClass;
use crate::output::Output;

pub use commands::McpFrontEnd;
pub use daemon::ui::{DashboardServer, DashboardSettings, ServedDashboard};

/// Runs `maos` with the process's arguments; `dashboard` serves the web dashboard when the
/// daemon is asked to (none: `maos ui` says this build cannot), `mcp` serves `maos mcp` (none:
/// it says this build cannot) and gives the daemon's model loop MAOS's tools (none: it offers
/// its models only their workspace tools).
pub fn main(
    dashboard: Option<&'static dyn DashboardServer>,
    mcp: Option<&'static dyn McpFrontEnd>,
) -> ExitCode {
    if let Some(d) = dashboard {
        daemon::ui::install(d);
    }
    if let Some(m) = mcp {
        commands::install_mcp(m);
    }
    // `COMPLETE=<shell> maos …`: the shell asks for completions (ADR 0016); nothing else runs.
    let here = std::env::current_dir().ok();
    match clap_complete::CompleteEnv::with_factory(Cli::command)
        .try_complete(std::env::args_os(), here.as_deref())
    {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    }
    ExitCode::from(invoke(std::env::args_os().collect()))
}

/// Carries out `maos` with these arguments and returns the exit code.
fn invoke(args: Vec<OsString>) -> u8 {
    let pre = Prescan::of(&args);
    let cli = match parse(args, pre.color) {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e, &pre),
    };
    init_logging(&cli.global);
    let pager = output::pager_command(
        cli.global.no_pager,
        cli.global.json,
        std::io::stdout().is_terminal(),
    );
    let mut out =
        Output::new(cli.global.json, cli.global.quiet, cli.global.color).with_pager(pager);
    match commands::execute(cli, &mut out).and_then(|()| out.finish()) {
        Ok(()) => 0,
        Err(e) if e.class == FailureClass::BrokenPipe => 0,
        Err(e) => {
            tracing::debug!(kind = e.class.as_str(), "command failed");
            out.error(&e);
            e.exit_code()
        }
    }
}

fn parse(args: Vec<OsString>, color: ColorWhen) -> Result<Cli, clap::Error> {
    let choice = match color {
        ColorWhen::Auto => clap::ColorChoice::Auto,
        ColorWhen::Always => clap::ColorChoice::Always,
        ColorWhen::Never => clap::ColorChoice::Never,
    };
    let matches = Cli::command().color(choice).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// What must be known before clap has parsed the arguments: whether a usage error should also
/// be a JSON document, how clap should colour its messages, and whether help may be paged.
#[derive(Debug)]
struct Prescan {
    json: bool,
    color: ColorWhen,
    no_pager: bool,
}

impl Prescan {
    fn of(args: &[OsString]) -> Self {
        let mut pre = Prescan {
            json: false,
            color: ColorWhen::Auto,
            no_pager: false,
        };
        let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
        while let Some(arg) = it.next() {
            let value = match arg {
                "--" => break,
                "--json" => {
                    pre.json = true;
                    continue;
                }
                "--no-pager" => {
                    pre.no_pager = true;
                    continue;
                }
                "--color" => it.next(),
                _ => arg.strip_prefix("--color="),
            };
            match value {
                Some("always") => pre.color = ColorWhen::Always,
                Some("never") => pre.color = ColorWhen::Never,
                Some("auto") => pre.color = ColorWhen::Auto,
                _ => {}
            }
        }
        pre
    }
}

/// Prints clap's message (help, version or a usage error) and returns its exit code. With
/// `--json`, a usage error is also an error document on stdout. Help on a terminal goes through
/// the pager.
fn clap_failure(e: &clap::Error, pre: &Prescan) -> u8 {
    let json = pre.json;
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    let long = long_value(e);
    let shorten = |text: String| match &long {
        Some(value) => text.replace(value.as_str(), &maos_plans::diagnostics::shorten(value)),
        None => text,
    };
    if json && code != 0 {
        let kind = match e.kind() {
            ClapErrorKind::InvalidValue | ClapErrorKind::ValueValidation => {
                FailureClass::InvalidInput
            }
            _ => FailureClass::Usage,
        };
        let (message, hint) = if e.kind() == ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        {
            (
                "the command is incomplete: a subcommand or argument is missing".to_owned(),
                Some("add --help to see what it takes".to_owned()),
            )
        } else {
            let rendered = shorten(e.render().to_string());
            let mut paragraphs = rendered
                .split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty());
            let message = paragraphs
                .next()
                .unwrap_or("the command line does not parse")
                .trim_start_matches("error:")
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            (message, paragraphs.last().map(str::to_owned))
        };
        let doc = json::ErrorDoc::new(kind.as_str(), message, hint, code);
        let mut out = Output::new(true, false, ColorWhen::Never);
        let _ = out.document(&doc).and_then(|()| out.finish());
    }
    // Help goes to stdout, errors to stderr; if the reader went away there is nobody to tell.
    // An error that echoes a long value (cut), a control character or an escape sequence of
    // the command line (escaped, escape.rs) is printed plain; any other keeps clap's colours.
    if code != 0 {
        let plain = e.render().to_string();
        let cut = shorten(plain.clone());
        let fixed = escape::block(&cut);
        if long.is_some() || fixed != plain {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), fixed.as_bytes());
            return code;
        }
    }
    if e.kind() == ClapErrorKind::DisplayHelp {
        let stdout = std::io::stdout();
        if let Some(pager) = output::pager_command(pre.no_pager, false, stdout.is_terminal()) {
            let help = e.render();
            let text = if output::use_color(pre.color, true) {
                help.ansi().to_string()
            } else {
                help.to_string()
            };
            if output::page_text(&pager, &text) {
                return code;
            }
        }
    }
    let _ = e.print();
    code
}

/// The value clap's error echoes, when it is too long to echo whole.
fn long_value(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    [ContextKind::InvalidValue, ContextKind::InvalidArg]
        .into_iter()
        .find_map(|kind| match e.get(kind) {
            Some(ContextValue::String(v)) if maos_plans::diagnostics::shorten(v) != *v => {
                Some(v.clone())
            }
            _ => None,
        })
}

fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, _) => LevelFilter::DEBUG,
    };
    let ansi = output::use_color(global.color, std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn prescan_finds_json_and_color_before_the_separator() {
        let p = Prescan::of(&args(&[
            "maos", "task", "list", "--json", "--color", "always",
        ]));
        assert!(p.json);
        assert_eq!(p.color, ColorWhen::Always);
        let p = Prescan::of(&args(&[
            "maos",
            "--color=never",
            "task",
            "create",
            "--",
            "--json",
        ]));
        assert!(!p.json);
        assert_eq!(p.color, ColorWhen::Never);
    }
}
