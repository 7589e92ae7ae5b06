//! The CLI's error type: what failed, what to do about it, and the exit code it ends with
//! (the table is in docs/exit-codes.md).

use std::io;

use maos_application::{
    AgentError, ErrorInfo, ErrorKind, MemoryError, OrchestrationError, QueryError, RemoteError,
    StoreError, TaskError,
};
use thiserror::Error;

/// The class of a failure, as the CLI reports it: it decides the exit code and the `kind` named
/// in a JSON error document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// Anything else that went wrong (exit 1).
    Failure,
    /// The command line does not parse (exit 2).
    Usage,
    /// A value is malformed or an id prefix is ambiguous (exit 2).
    InvalidInput,
    /// Something named does not exist (exit 3).
    NotFound,
    /// The request contradicts stored state: a duplicate, an illegal transition, a cycle (exit 4).
    Conflict,
    /// The database failed or is not a MAOS database (exit 5).
    Storage,
    /// The daemon cannot be reached (exit 6).
    DaemonUnavailable,
    /// A watched orchestration stopped with tasks that did not complete (exit 7).
    Unfinished,
    /// `admin verify` found stored state that disagrees with the event log (exit 8).
    Inconsistent,
    /// `doctor` found a problem that stops MAOS from working here (exit 9).
    Unhealthy,
    /// An agent's credential was refused, or it asked for more than it may (exit 10).
    Denied,
    /// Stdout was closed by its reader: not an error, the command stops quietly (exit 0).
    BrokenPipe,
}

impl FailureClass {
    /// The process exit code.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            FailureClass::BrokenPipe => 0,
            FailureClass::Failure => 1,
            FailureClass::Usage | FailureClass::InvalidInput => 2,
            FailureClass::NotFound => 3,
            FailureClass::Conflict => 4,
            FailureClass::Storage => 5,
            FailureClass::DaemonUnavailable => 6,
            FailureClass::Unfinished => 7,
            FailureClass::Inconsistent => 8,
            FailureClass::Unhealthy => 9,
            FailureClass::Denied => 10,
        }
    }

    /// The stable name used in JSON error documents.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureClass::Failure => "failure",
            FailureClass::Usage => "usage",
            FailureClass::InvalidInput => "invalid_input",
            FailureClass::NotFound => "not_found",
            FailureClass::Conflict => "conflict",
            FailureClass::Storage => "storage",
            FailureClass::DaemonUnavailable => "daemon_unavailable",
            FailureClass::Unfinished => "unfinished",
            FailureClass::Inconsistent => "inconsistent",
            FailureClass::Unhealthy => "unhealthy",
            FailureClass::Denied => "denied",
            FailureClass::BrokenPipe => "broken_pipe",
        }
    }
}

impl From<ErrorKind> for FailureClass {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidInput => FailureClass::InvalidInput,
            ErrorKind::NotFound => FailureClass::NotFound,
            ErrorKind::Conflict => FailureClass::Conflict,
            ErrorKind::Storage => FailureClass::Storage,
            ErrorKind::Unavailable => FailureClass::DaemonUnavailable,
            ErrorKind::Internal => FailureClass::Failure,
            ErrorKind::Denied => FailureClass::Denied,
        }
    }
}

/// A failed command: a message that names the problem, and a hint that names the fix.
#[derive(Debug, Error)]
#[error("{message}")]
pub(crate) struct CliError {
    pub(crate) class: FailureClass,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    /// The command's JSON document already says what went wrong: no error document follows it.
    pub(crate) documented: bool,
}

impl CliError {
    /// An error of this class.
    pub(crate) fn new(class: FailureClass, message: impl Into<String>) -> Self {
        CliError {
            class,
            message: message.into(),
            hint: None,
            documented: false,
        }
    }

    /// The same error with a hint.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same error, said already by the JSON document the command printed (with `--json`,
    /// stdout then carries that one document and no error document).
    pub(crate) fn documented(mut self) -> Self {
        self.documented = true;
        self
    }

    /// An error of the application, with the CLI's hint for it.
    pub(crate) fn from_info<E: ErrorInfo + 'static>(e: &E) -> Self {
        CliError {
            class: e.kind().into(),
            message: e.to_string(),
            hint: crate::hints::hint(e),
            documented: false,
        }
    }

    /// Writing to stdout failed; a closed pipe is not an error.
    pub(crate) fn stdout(e: &io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::new(FailureClass::BrokenPipe, "stdout was closed")
        } else {
            CliError::new(
                FailureClass::Failure,
                format!("cannot write to stdout: {e}"),
            )
        }
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }
}

macro_rules! from_application_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::from_info(&e)
            }
        }
    )+};
}

from_application_errors!(
    AgentError,
    TaskError,
    OrchestrationError,
    QueryError,
    MemoryError,
    RemoteError
);

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        // The application's query error knows the hints for store failures.
        CliError::from(QueryError::Store(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_documented_exit_code() {
        let codes: Vec<(&str, u8)> = [
            FailureClass::BrokenPipe,
            FailureClass::Failure,
            FailureClass::Usage,
            FailureClass::InvalidInput,
            FailureClass::NotFound,
            FailureClass::Conflict,
            FailureClass::Storage,
            FailureClass::DaemonUnavailable,
            FailureClass::Unfinished,
            FailureClass::Inconsistent,
            FailureClass::Unhealthy,
            FailureClass::Denied,
        ]
        .into_iter()
        .map(|k| (k.as_str(), k.exit_code()))
        .collect();
        assert_eq!(
            codes,
            vec![
                ("broken_pipe", 0),
                ("failure", 1),
                ("usage", 2),
                ("invalid_input", 2),
                ("not_found", 3),
                ("conflict", 4),
                ("storage", 5),
                ("daemon_unavailable", 6),
                ("unfinished", 7),
                ("inconsistent", 8),
                ("unhealthy", 9),
                ("denied", 10),
            ]
        );
    }

    #[test]
    fn store_errors_are_storage_errors_with_a_hint() {
        let e = CliError::from(StoreError::NotMaos {
            path: "/x/maos.db".into(),
            detail: "no migrations table".into(),
        });
        assert_eq!(e.exit_code(), 5);
        assert!(e.hint.is_some());
    }
}
