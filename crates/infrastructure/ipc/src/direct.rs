//! The client's direct connection: plain calls made on the caller's own thread.
//!
//! capnp-rpc's `RpcSystem` is `!Send`, so it must stay on one thread, and a call through it from
//! another thread costs two thread handoffs (the caller wakes the RPC thread, the RPC thread wakes
//! the caller), each as expensive as the socket round trip itself on a machine whose idle cores
//! sleep. Most calls need none of what the RPC system offers: they target the one `Api`
//! capability, carry no capabilities either way and wait for their answer. This connection makes
//! exactly those calls, speaking the Cap'n Proto RPC protocol (`rpc.capnp`, the two-party vat
//! network's framing) on a socket owned by whichever thread holds the connection: a `Call`
//! message goes out, the thread reads until the matching `Return`, and the `Finish` the protocol
//! owes the daemon rides along with the next call. The daemon cannot tell it from any other
//! client.
//!
//! Waiting for the answer: a thread that sleeps on the socket is woken by the kernel, which on a
//! machine whose idle cores halt (a virtual machine, typically) costs tens of microseconds,
//! more than the daemon takes to answer a call that does not touch the database. So a caller
//! first polls the socket for up to [`SPIN`] (yielding the core to anyone else who needs it),
//! and sleeps only if no answer has come by then. It polls only for methods whose previous
//! answer came within [`QUICK`]: a durable write (most of a millisecond, mostly the disk's
//! flush) polls on its method's first call only, then sleeps at once and costs no extra CPU.
//!
//! Subscriptions (which need an `EventSink` served on the client's side, and a thread that keeps
//! driving it) and calls made while another thread holds this connection go through the client's
//! RPC thread instead (see `client.rs`).

use std::fmt;
use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use capnp::capability::FromTypelessPipeline;
use capnp::message::{Builder, HeapAllocator, ReaderOptions};
use capnp::serialize::OwnedSegments;
use capnp::traits::{HasTypeId, Owned, Pipelined};
use capnp_rpc::rpc_capnp::{cap_descriptor, exception, message, payload, return_};

use crate::client::ConnectError;
use crate::convert::{DecodeError, read_daemon_info};
use crate::daemon::DaemonInfo;
use crate::maos_capnp::{self as wire, bootstrap};

/// A method of the schema: its interface, its ordinal and its parameter and result structs.
pub(crate) trait Method: 'static {
    const INTERFACE: u64;
    const ID: u16;
    type Params: Owned;
    type Results: Owned + Pipelined<Pipeline: FromTypelessPipeline> + Unpin;
}

/// `Bootstrap.handshake`.
struct Handshake;

impl Method for Handshake {
    const INTERFACE: u64 = <bootstrap::Client as HasTypeId>::TYPE_ID;
    const ID: u16 = 0;
    type Params = bootstrap::handshake_params::Owned;
    type Results = bootstrap::handshake_results::Owned;
}

/// Why a direct call failed.
#[derive(Debug)]
pub(crate) enum DirectError {
    /// The connection failed (or the daemon raised an RPC exception): as `capnp::Error`, so that
    /// it reads like the same failure on the RPC thread.
    Rpc(capnp::Error),
    /// The answer does not decode.
    Decode(DecodeError),
}

impl From<capnp::Error> for DirectError {
    fn from(e: capnp::Error) -> Self {
        DirectError::Decode(e.into())
    }
}

impl From<capnp::NotInSchema> for DirectError {
    fn from(e: capnp::NotInSchema) -> Self {
        DirectError::Decode(e.into())
    }
}

impl From<DecodeError> for DirectError {
    fn from(e: DecodeError) -> Self {
        DirectError::Decode(e)
    }
}

/// A connection to the daemon driven by the thread that calls it.
pub(crate) struct Direct {
    /// The socket, read through a buffer and written directly (`&UnixStream` is `Write`).
    stream: BufReader<UnixStream>,
    /// The import id of the `Api` capability.
    api: u32,
    next_question: u32,
    /// Questions answered but not yet finished: the `Finish` goes out with the next message.
    unfinished: Vec<(u32, bool)>,
    /// The encoded outgoing messages, reused from call to call.
    out: Vec<u8>,
    /// Why the connection is unusable, once it is.
    broken: Option<String>,
    /// Whether the socket is in non-blocking mode (after the handshake).
    polling: bool,
    /// Per method ordinal: whether its last answer came within [`QUICK`].
    quick: [bool; QUICK_METHODS],
}

/// How long a caller polls the socket for an answer before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// A method whose last answer came within this polls for the next one.
const QUICK: Duration = Duration::from_micros(200);

/// Methods whose answer times are remembered (ordinals below this; the `Api` has 23).
const QUICK_METHODS: usize = 32;

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("api", &self.api)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// Connects to `path`, bootstraps and shakes hands. The connection is made or refused at
    /// once; the handshake gives up after `timeout`.
    pub(crate) fn connect(
        path: &Path,
        name: &str,
        timeout: Duration,
    ) -> Result<(Direct, DaemonInfo), ConnectError> {
        let stream = connect_socket(path)?;
        let deadline = Instant::now() + timeout;
        let mut direct = Direct {
            stream: BufReader::with_capacity(64 * 1024, stream),
            api: 0,
            next_question: 0,
            unfinished: Vec::new(),
            out: Vec::with_capacity(4096),
            broken: None,
            polling: false,
            quick: [true; QUICK_METHODS],
        };
        let failed = |e: DirectError| match e {
            DirectError::Rpc(e) if is_timeout(&e) => ConnectError::Handshake(format!(
                "no answer from {} within {timeout:?}",
                path.display()
            )),
            DirectError::Rpc(e) => ConnectError::Handshake(e.to_string()),
            DirectError::Decode(e) => ConnectError::Handshake(format!("unreadable answer: {e}")),
        };
        direct
            .set_deadline(Some(deadline))
            .map_err(ConnectError::Start)?;
        let daemon = direct.bootstrap_and_shake_hands(name).map_err(failed)??;
        direct.set_deadline(None).map_err(ConnectError::Start)?;
        direct
            .stream
            .get_ref()
            .set_nonblocking(true)
            .map_err(ConnectError::Start)?;
        direct.polling = true;
        Ok((direct, daemon))
    }

    /// Sets (or clears) the time by which every read and write must be done.
    fn set_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let left = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let stream = self.stream.get_ref();
        stream.set_read_timeout(left)?;
        stream.set_write_timeout(left)
    }

    /// Asks for the bootstrap capability, then calls `handshake` on it: answers what the daemon
    /// said about itself, or its refusal.
    fn bootstrap_and_shake_hands(
        &mut self,
        name: &str,
    ) -> Result<Result<DaemonInfo, ConnectError>, DirectError> {
        let question = self.question();
        let mut request = Builder::new(HeapAllocator::new().first_segment_words(16));
        request
            .init_root::<message::Builder<'_>>()
            .init_bootstrap()
            .set_question_id(question);
        let answer = self.round_trip(question, &request)?;
        let bootstrap = only_capability(results(&answer)?)?;

        let handshake_question = self.question();
        let request =
            call_message::<Handshake, DirectError>(handshake_question, bootstrap, |mut p| {
                p.set_protocol(wire::PROTOCOL_VERSION);
                p.set_client(name);
                Ok(())
            })?;
        let answer = self.round_trip(handshake_question, &request)?;
        // The bootstrap capability was needed for the handshake only: finishing its question
        // releases it. The handshake's answer holds the `Api` capability, which this connection
        // keeps.
        self.unfinished.push((question, true));
        self.unfinished.push((handshake_question, false));
        let payload = results(&answer)?;
        let handshake = payload
            .get_content()
            .get_as::<bootstrap::handshake_results::Reader<'_>>()?;
        Ok(match handshake.get_result()?.which()? {
            wire::handshake_result::Which::Ok(ok) => {
                if !ok.has_api() {
                    return Err(DirectError::Decode(
                        capnp::Error::failed("the handshake's answer holds no Api".into()).into(),
                    ));
                }
                self.api = only_capability(payload)?;
                Ok(read_daemon_info(ok.get_daemon()?)?)
            }
            wire::handshake_result::Which::Err(e) => Err(ConnectError::from_handshake_error(e?)),
        })
    }

    /// Calls `M` on the `Api`: `fill` writes the parameters, `read` decodes the results.
    pub(crate) fn call<M, T, E>(
        &mut self,
        fill: impl FnOnce(<M::Params as Owned>::Builder<'_>) -> Result<(), E>,
        read: impl FnOnce(<M::Results as Owned>::Reader<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        M: Method,
        E: From<DirectError>,
    {
        let question = self.question();
        let request = call_message::<M, E>(question, self.api, fill)?;
        let quick = self.quick.get(usize::from(M::ID)).copied().unwrap_or(false);
        let started = Instant::now();
        let answer = self.round_trip_spinning(question, &request, quick)?;
        if let Some(q) = self.quick.get_mut(usize::from(M::ID)) {
            *q = started.elapsed() <= QUICK;
        }
        if !no_finish_needed(&answer).map_err(DirectError::from)? {
            self.unfinished.push((question, true));
        }
        let content = results(&answer)?.get_content();
        let typed = content
            .get_as::<<M::Results as Owned>::Reader<'_>>()
            .map_err(DirectError::from)?;
        read(typed)
    }

    fn question(&mut self) -> u32 {
        let q = self.next_question;
        self.next_question = self.next_question.wrapping_add(1);
        q
    }

    /// Sends the `Finish`es owed and `request`, then reads until the `Return` to `question`.
    fn round_trip(
        &mut self,
        question: u32,
        request: &Builder<HeapAllocator>,
    ) -> Result<capnp::message::Reader<OwnedSegments>, DirectError> {
        self.round_trip_spinning(question, request, false)
    }

    /// [`Direct::round_trip`]; with `spin`, polls the socket for the answer for up to [`SPIN`]
    /// before it sleeps (else it sleeps at once).
    fn round_trip_spinning(
        &mut self,
        question: u32,
        request: &Builder<HeapAllocator>,
        spin: bool,
    ) -> Result<capnp::message::Reader<OwnedSegments>, DirectError> {
        if let Some(why) = &self.broken {
            return Err(DirectError::Rpc(capnp::Error::disconnected(why.clone())));
        }
        let sent = self.send(request);
        let answered = sent.and_then(|()| self.receive(question, spin));
        answered.map_err(|e| {
            // A failure half-way through a message leaves the stream unreadable: the connection
            // is over, and every later call says why.
            self.broken = Some(e.extra.clone());
            DirectError::Rpc(e)
        })
    }

    fn send(&mut self, request: &Builder<HeapAllocator>) -> capnp::Result<()> {
        self.out.clear();
        for (question, release) in self.unfinished.drain(..) {
            let mut finish = Builder::new(HeapAllocator::new().first_segment_words(8));
            let mut f = finish.init_root::<message::Builder<'_>>().init_finish();
            f.set_question_id(question);
            f.set_release_result_caps(release);
            capnp::serialize::write_message(&mut self.out, &finish)?;
        }
        capnp::serialize::write_message(&mut self.out, request)?;
        let mut stream = self.stream.get_ref();
        let mut rest = &self.out[..];
        while !rest.is_empty() {
            match stream.write(rest) {
                Ok(0) => {
                    return Err(capnp::Error::disconnected(
                        "the MAOS daemon closed the connection".into(),
                    ));
                }
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A large request fills the socket's buffer: wait for room.
                Err(e) if self.polling && e.kind() == io::ErrorKind::WouldBlock => {
                    let written = blocking(stream, |mut s| s.write_all(rest));
                    written.map_err(|e| io_failed("sending a call", &e))?;
                    rest = &[];
                }
                Err(e) => return Err(io_failed("sending a call", &e)),
            }
        }
        Ok(())
    }

    fn receive(
        &mut self,
        question: u32,
        spin: bool,
    ) -> capnp::Result<capnp::message::Reader<OwnedSegments>> {
        let mut spin_until = spin.then(|| Instant::now() + SPIN);
        loop {
            let mut watched = Watched {
                inner: &mut self.stream,
                error: None,
                polling: self.polling,
                spin_until: &mut spin_until,
            };
            let read = capnp::serialize::try_read_message(&mut watched, ReaderOptions::new());
            let answer = match (read, watched.error) {
                (Ok(Some(answer)), _) => answer,
                (Ok(None), _) => {
                    return Err(capnp::Error::disconnected(
                        "the MAOS daemon closed the connection".into(),
                    ));
                }
                (Err(_), Some(kind)) if is_timeout_kind(kind) => {
                    return Err(timed_out("reading an answer"));
                }
                (Err(e), _) => {
                    return Err(capnp::Error::disconnected(format!(
                        "reading an answer from the MAOS daemon failed: {e}"
                    )));
                }
            };
            let which = answer
                .get_root::<message::Reader<'_>>()
                .and_then(|m| Ok(m.which()?));
            match which {
                Ok(message::Return(Ok(r))) if r.get_answer_id() == question => return Ok(answer),
                Ok(message::Abort(e)) => {
                    let reason = e.and_then(|e| Ok(e.get_reason()?.to_string()?));
                    return Err(capnp::Error::disconnected(format!(
                        "the MAOS daemon aborted the connection: {}",
                        reason.unwrap_or_else(|e| e.to_string())
                    )));
                }
                // Nothing else is addressed to this connection (it exports nothing and asks one
                // question at a time); whatever it is, it needs no answer.
                _ => {}
            }
        }
    }
}

/// Connects a socket to `path` without blocking: a daemon that has stopped accepting (so that
/// its backlog is full) refuses at once instead of holding the caller forever. `std` connects
/// only in blocking mode, so tokio connects, on a runtime built for the purpose (tens of
/// microseconds), unless the caller is inside a runtime already, where std's connect must do.
fn connect_socket(path: &Path) -> Result<UnixStream, ConnectError> {
    let failed = |source| ConnectError::Connect {
        path: path.to_path_buf(),
        source,
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        return UnixStream::connect(path).map_err(failed);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(ConnectError::Start)?;
    let stream = runtime
        .block_on(tokio::net::UnixStream::connect(path))
        .and_then(tokio::net::UnixStream::into_std)
        .map_err(failed)?;
    stream.set_nonblocking(false).map_err(ConnectError::Start)?;
    Ok(stream)
}

/// The socket's reader as capnp reads messages from it: on a non-blocking socket it polls until
/// `spin_until`, then sleeps until data comes; and it remembers the kind of the last io error,
/// which capnp's error does not keep.
struct Watched<'a> {
    inner: &'a mut BufReader<UnixStream>,
    error: Option<io::ErrorKind>,
    polling: bool,
    spin_until: &'a mut Option<Instant>,
}

impl io::Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = loop {
            match self.inner.read(buf) {
                Err(e) if self.polling && e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(until) = *self.spin_until
                        && Instant::now() < until
                    {
                        std::thread::yield_now();
                        continue;
                    }
                    *self.spin_until = None;
                    self.inner.get_ref().set_nonblocking(false)?;
                    let read = self.inner.read(buf);
                    self.inner.get_ref().set_nonblocking(true)?;
                    break read;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                read => break read,
            }
        };
        read.inspect_err(|e| self.error = Some(e.kind()))
    }
}

/// Runs `f` with `stream` in blocking mode, then puts it back in non-blocking mode.
fn blocking<T>(stream: &UnixStream, f: impl FnOnce(&UnixStream) -> io::Result<T>) -> io::Result<T> {
    stream.set_nonblocking(false)?;
    let done = f(stream);
    stream.set_nonblocking(true)?;
    done
}

/// The `Call` message of `M` on `target`, its parameters written by `fill`.
fn call_message<M: Method, E: From<DirectError>>(
    question: u32,
    target: u32,
    fill: impl FnOnce(<M::Params as Owned>::Builder<'_>) -> Result<(), E>,
) -> Result<Builder<HeapAllocator>, E> {
    let mut message = Builder::new(HeapAllocator::new().first_segment_words(128));
    let mut call = message.init_root::<message::Builder<'_>>().init_call();
    call.set_question_id(question);
    call.set_interface_id(M::INTERFACE);
    call.set_method_id(M::ID);
    call.reborrow().init_target().set_imported_cap(target);
    fill(
        call.init_params()
            .init_content()
            .init_as::<<M::Params as Owned>::Builder<'_>>(),
    )?;
    Ok(message)
}

/// Whether the `Return` in `answer` says that no `Finish` is needed.
fn no_finish_needed(answer: &capnp::message::Reader<OwnedSegments>) -> capnp::Result<bool> {
    match answer.get_root::<message::Reader<'_>>()?.which()? {
        message::Return(r) => Ok(r?.get_no_finish_needed()),
        _ => Ok(false),
    }
}

/// The results of the `Return` in `answer`, or the failure it reports.
fn results(
    answer: &capnp::message::Reader<OwnedSegments>,
) -> Result<payload::Reader<'_>, DirectError> {
    let message::Return(r) = answer.get_root::<message::Reader<'_>>()?.which()? else {
        return Err(DirectError::Decode(
            capnp::Error::failed("expected a Return".into()).into(),
        ));
    };
    match r?.which()? {
        return_::Results(p) => Ok(p?),
        return_::Exception(e) => Err(DirectError::Rpc(remote_exception(e?))),
        return_::Canceled(()) => Err(DirectError::Rpc(capnp::Error::failed(
            "the MAOS daemon canceled the call".into(),
        ))),
        return_::ResultsSentElsewhere(())
        | return_::TakeFromOtherQuestion(_)
        | return_::AcceptFromThirdParty(_) => Err(DirectError::Rpc(capnp::Error::unimplemented(
            "the MAOS daemon answered in a way this client does not support".into(),
        ))),
    }
}

/// The import id of the one capability a payload carries (hosted by the daemon).
fn only_capability(payload: payload::Reader<'_>) -> Result<u32, DirectError> {
    let table = payload.get_cap_table()?;
    if table.len() != 1 {
        return Err(DirectError::Decode(
            capnp::Error::failed(format!(
                "expected one capability in the answer, found {}",
                table.len()
            ))
            .into(),
        ));
    }
    match table.get(0).which()? {
        cap_descriptor::SenderHosted(id) => Ok(id),
        _ => Err(DirectError::Rpc(capnp::Error::unimplemented(
            "the MAOS daemon answered with a capability this client does not support".into(),
        ))),
    }
}

/// A remote exception, as capnp-rpc reports it.
fn remote_exception(e: exception::Reader<'_>) -> capnp::Error {
    let reason = e
        .get_reason()
        .ok()
        .and_then(|r| r.to_string().ok())
        .unwrap_or_else(|| "(malformed error)".into());
    let message = format!("remote exception: {reason}");
    match e.get_type() {
        Ok(exception::Type::Overloaded) => capnp::Error::overloaded(message),
        Ok(exception::Type::Disconnected) => capnp::Error::disconnected(message),
        Ok(exception::Type::Unimplemented) => capnp::Error::unimplemented(message),
        Ok(exception::Type::Failed) | Err(_) => capnp::Error::failed(message),
    }
}

fn io_failed(what: &str, e: &io::Error) -> capnp::Error {
    if is_timeout_kind(e.kind()) {
        return timed_out(what);
    }
    capnp::Error::disconnected(format!("{what} to the MAOS daemon failed: {e}"))
}

/// A socket timeout shows as `WouldBlock` on Linux, `TimedOut` elsewhere.
fn is_timeout_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

const TIMED_OUT: &str = "timed out";

fn timed_out(what: &str) -> capnp::Error {
    capnp::Error::overloaded(format!("{what}: {TIMED_OUT}"))
}

fn is_timeout(e: &capnp::Error) -> bool {
    e.kind == capnp::ErrorKind::Overloaded && e.extra.ends_with(TIMED_OUT)
}
