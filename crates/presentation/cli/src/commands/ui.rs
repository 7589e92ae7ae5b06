//! `maos ui [--port N] [--address IP] [--open]`: has the daemon serve the web dashboard and
//! prints its address with the token (docs/dashboard.md).

use std::path::Path;
use std::process::{Command, Stdio};

use maos_ipc::{UiRequest, UiServing};
use serde::Serialize;

use crate::cli::UiArgs;
use crate::daemon;
use crate::error::{CliError, FailureClass};
use crate::json::SCHEMA_VERSION;
use crate::output::{Output, Render};

/// `maos ui`.
pub(super) fn execute(
    args: &UiArgs,
    data_dir: &Path,
    verbose: u8,
    out: &mut Output,
) -> Result<(), CliError> {
    let client = daemon::client(data_dir, verbose)?;
    let serving = client.serve_ui(&UiRequest {
        address: args.address,
        port: args.port,
    })?;
    if !serving.loopback {
        out.note(&format!(
            "warning: the dashboard listens on {}:{}, not only on this machine: anyone who can \
             reach that address and has the token can read every task, prompt, log and diff, \
             and approve, reject or cancel work. It is plain HTTP: the token crosses the \
             network unencrypted. Serve it on 127.0.0.1 (the default) unless you mean this.",
            serving.address, serving.port
        ));
    }
    let shown = Shown {
        with_token: format!("{}?token={}", serving.url, serving.token),
        serving,
        token_file: data_dir.join(daemon::ui::TOKEN_FILE),
    };
    if args.open {
        open(&shown.with_token)?;
    }
    out.print(&shown)
}

/// Opens `url` in a browser: `$BROWSER`, else `xdg-open`; detached, its output dropped.
fn open(url: &str) -> Result<(), CliError> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".to_owned());
    Command::new(&browser)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot open a browser with {browser:?}: {e}"),
            )
            .with_hint("open the address printed above yourself, or set BROWSER to your browser")
        })
}

struct Shown {
    serving: UiServing,
    with_token: String,
    token_file: std::path::PathBuf,
}

#[derive(Serialize)]
struct UiDoc<'a> {
    schema_version: u32,
    /// The address without the token.
    url: &'a str,
    /// The address to open: the token once, as `?token=`.
    url_with_token: &'a str,
    address: String,
    port: u16,
    loopback: bool,
    /// It was already serving; nothing changed.
    already: bool,
    token_file: String,
}

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        UiDoc {
            schema_version: SCHEMA_VERSION,
            url: &self.serving.url,
            url_with_token: &self.with_token,
            address: self.serving.address.to_string(),
            port: self.serving.port,
            loopback: self.serving.loopback,
            already: self.serving.already,
            token_file: self.token_file.display().to_string(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let verb = if self.serving.already {
            "already serves"
        } else {
            "serves"
        };
        out.text(&format!(
            "The daemon {verb} the dashboard. Open:\n\n    {}\n\nThe token is kept in {} \
             (remove the file and restart the daemon for a new one). The dashboard stops with \
             the daemon (`maos daemon stop`).\n",
            self.with_token,
            self.token_file.display()
        ))
    }
}
