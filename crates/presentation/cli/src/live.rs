//! What the commands that keep running share (`maos events --follow`, `maos status --watch`):
//! how long one wait for events lasts, the error that ends them, and Ctrl-C as their way to end.
//! They read the log through `MaosApi::follow_events`, so they behave the same through the
//! daemon and in process.
//!
//! Every line is flushed as it is printed, so Ctrl-C (which ends them with exit 0) loses
//! nothing that was printed, and no line is ever cut in half.

use std::time::Duration;

use maos_application::ErrorInfo;

use crate::error::{CliError, FailureClass};

/// How long one wait for new events lasts. Through the daemon it only bounds how often the loop
/// turns; in process it is also the latency with which commits of *other* processes are seen
/// (this process's own commits, and the daemon's, wake the wait at once).
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// The error that ends a live command: what stopped, why, and how to carry on.
pub(crate) fn ended(e: &(dyn ErrorInfo + 'static), what: &str, next: String) -> CliError {
    let hint = match crate::hints::hint(e) {
        Some(hint) if e.kind() != maos_application::ErrorKind::Unavailable => {
            format!("{next}; {hint}")
        }
        _ => format!("{next} (the next command starts the daemon again if it stopped)"),
    };
    CliError::new(FailureClass::from(e.kind()), format!("{what}: {e}")).with_hint(hint)
}

/// Makes SIGINT (Ctrl-C) end the process with exit 0 instead of the signal's default: stopping
/// a live command is how it is meant to end. Returns once the handler is in place. Everything
/// printed so far is on its way already: live commands flush every line.
pub(crate) fn exit_quietly_on_interrupt() {
    let (installed, ready) = std::sync::mpsc::sync_channel::<()>(1);
    let watcher = std::thread::Builder::new()
        .name("maos-sigint".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch SIGINT; Ctrl-C keeps its default");
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let interrupt = signal(SignalKind::interrupt());
                let _ = installed.send(());
                match interrupt {
                    Ok(mut interrupt) => {
                        if interrupt.recv().await.is_some() {
                            std::process::exit(0);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot watch SIGINT; Ctrl-C keeps its default");
                    }
                }
            });
        });
    if watcher.is_ok() {
        let _ = ready.recv();
    }
}
