//! Errors across the wire: the schema's `Error {kind, message, hint}` to and from the
//! application's [`RemoteError`], and the errors of the connection itself (an unreachable
//! daemon, a broken connection, an answer that does not decode).

use maos_application::{ErrorInfo, ErrorKind, Hints, RemoteError};

use crate::convert::{DecodeError, read_opt_text, read_text};
use crate::maos_capnp as wire;

/// The hint given whenever the daemon cannot be reached or the connection to it broke.
pub const DAEMON_HINT: &str = "is the daemon running? `maos daemon status`";

/// The wire's kind of an application error kind.
pub fn kind_to_wire(kind: ErrorKind) -> wire::ErrorKind {
    match kind {
        ErrorKind::InvalidInput => wire::ErrorKind::InvalidInput,
        ErrorKind::NotFound => wire::ErrorKind::NotFound,
        ErrorKind::Conflict => wire::ErrorKind::Conflict,
        ErrorKind::Storage => wire::ErrorKind::Storage,
        ErrorKind::Unavailable => wire::ErrorKind::Unavailable,
        ErrorKind::Internal => wire::ErrorKind::Internal,
        ErrorKind::Denied => wire::ErrorKind::Denied,
    }
}

/// The application's kind of a wire error kind. A version mismatch means the daemon cannot serve
/// this client: it is `unavailable` (exit code 6 in the CLI).
pub fn kind_from_wire(kind: wire::ErrorKind) -> ErrorKind {
    match kind {
        wire::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
        wire::ErrorKind::NotFound => ErrorKind::NotFound,
        wire::ErrorKind::Conflict => ErrorKind::Conflict,
        wire::ErrorKind::Storage => ErrorKind::Storage,
        wire::ErrorKind::Unavailable | wire::ErrorKind::VersionMismatch => ErrorKind::Unavailable,
        wire::ErrorKind::Internal => ErrorKind::Internal,
        wire::ErrorKind::Denied => ErrorKind::Denied,
    }
}

/// Writes any application error as a wire error, with the hint `hints` gives it.
pub fn write_error<E: ErrorInfo + 'static>(e: &E, hints: Hints, b: wire::error::Builder<'_>) {
    write_remote_error(&RemoteError::from_error(e, hints), b);
}

/// Writes a remote error as a wire error.
pub fn write_remote_error(e: &RemoteError, b: wire::error::Builder<'_>) {
    write_wire_error(kind_to_wire(e.kind), &e.message, e.hint.as_deref(), b);
}

/// Writes a wire error of any kind (`versionMismatch` has no application kind).
pub fn write_wire_error(
    kind: wire::ErrorKind,
    message: &str,
    hint: Option<&str>,
    mut b: wire::error::Builder<'_>,
) {
    b.set_kind(kind);
    b.set_message(message);
    if let Some(hint) = hint {
        b.set_hint(hint);
    }
}

/// Reads a wire error. An error that cannot itself be read becomes an `internal` one.
pub fn read_error(r: wire::error::Reader<'_>) -> RemoteError {
    let read = || -> Result<RemoteError, DecodeError> {
        Ok(RemoteError {
            kind: kind_from_wire(r.get_kind()?),
            message: read_text(r.get_message())?,
            hint: read_opt_text(r.has_hint(), r.get_hint())?,
        })
    };
    read().unwrap_or_else(|e| undecodable(&e))
}

/// The error for a daemon that cannot be reached or whose connection broke.
pub fn unavailable(what: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(ErrorKind::Unavailable, what.to_string()).with_hint(DAEMON_HINT)
}

/// The error for an RPC that failed (rather than answering with an error): the connection
/// broke or the daemon failed.
pub fn rpc_failed(e: &capnp::Error) -> RemoteError {
    unavailable(format!("the call to the MAOS daemon failed: {e}"))
}

/// The error for an answer from the daemon that this client cannot read.
pub fn undecodable(e: &DecodeError) -> RemoteError {
    RemoteError::new(
        ErrorKind::Internal,
        format!("cannot read the MAOS daemon's answer: {e}"),
    )
    .with_hint(
        "the daemon may run another MAOS version than this client: compare `maos --version` \
         with `maos daemon status`",
    )
}

/// The error for a request that the server cannot decode: a value the domain refuses is
/// invalid input, as on the command line.
pub fn bad_request(e: &DecodeError) -> RemoteError {
    RemoteError::new(ErrorKind::InvalidInput, e.to_string())
}
