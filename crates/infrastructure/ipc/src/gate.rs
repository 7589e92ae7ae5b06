//! Back pressure on one connection: the server stops reading a connection's calls while too many
//! of them are unanswered, or while its answers cannot be written.
//!
//! capnp-rpc reads every message a peer sends and queues every answer in memory, without a
//! limit: a client that pipelines calls and never reads the answers would make the daemon read
//! calls, run them and keep their answers for as long as it writes. The [`Gate`] of a connection
//! counts the calls the server has taken in and not yet answered ([`Gate::enter`], in the
//! methods), and notices when the socket takes no more of the answers (the peer does not read:
//! a write would block). The connection's read half ([`Gated`]) reads nothing while the count is
//! at [`MAX_CALLS_PER_CONNECTION`] or while writing is stalled, so such a peer's calls stay in
//! its own socket buffer (and its writes block), and what the daemon holds for it is bounded: at
//! most that many calls, their answers, and one buffer each way.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most calls one connection may have taken in and not answered yet. Beyond it the server
/// reads nothing more from that connection until an answer is done.
pub const MAX_CALLS_PER_CONNECTION: usize = 32;

/// The back pressure state of one connection (on the server's thread).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Calls taken in and not answered yet.
    calls: Cell<usize>,
    /// The last write (or flush) into the socket could not complete: the peer does not read.
    stalled: Cell<bool>,
    /// The read half, waiting for the gate to open.
    reader: RefCell<Option<Waker>>,
}

impl Gate {
    /// Whether the connection's calls may be read now.
    fn open(&self) -> bool {
        self.calls.get() < MAX_CALLS_PER_CONNECTION && !self.stalled.get()
    }

    /// Counts a call of this connection in until the returned guard drops.
    pub(crate) fn enter(self: &Rc<Self>) -> Unanswered {
        self.calls.set(self.calls.get() + 1);
        Unanswered(Rc::clone(self))
    }

    fn wake_reader(&self) {
        if self.open()
            && let Some(w) = self.reader.borrow_mut().take()
        {
            w.wake();
        }
    }

    fn wrote(&self, stalled: bool) {
        let was = self.stalled.replace(stalled);
        if was && !stalled {
            self.wake_reader();
        }
    }
}

/// One call of a connection, counted until it is answered (dropped).
#[derive(Debug)]
pub(crate) struct Unanswered(Rc<Gate>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        self.0.calls.set(self.0.calls.get().saturating_sub(1));
        self.0.wake_reader();
    }
}

/// A connection's read half that reads only while its [`Gate`] is open.
#[derive(Debug)]
pub(crate) struct Gated<R> {
    inner: R,
    gate: Rc<Gate>,
}

impl<R> Gated<R> {
    pub(crate) fn new(inner: R, gate: Rc<Gate>) -> Self {
        Gated { inner, gate }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Gated<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.gate.open() {
            *self.gate.reader.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// A connection's write half that tells its [`Gate`] whether the socket takes what is written.
#[derive(Debug)]
pub(crate) struct Watched<W> {
    inner: W,
    gate: Rc<Gate>,
}

impl<W> Watched<W> {
    pub(crate) fn new(inner: W, gate: Rc<Gate>) -> Self {
        Watched { inner, gate }
    }

    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.gate.wrote(poll.is_pending());
        poll
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Watched<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(poll)
    }
}
