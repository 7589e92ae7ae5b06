//! Following the event log through the daemon, on the client's side: an `EventSink` served on
//! the client's RPC thread takes the daemon's batches and hands them to a [`RemoteFollower`] on
//! the caller's thread through a bounded queue. A push completes only once its batch is in the
//! queue, so a caller that reads slowly holds the daemon back through capnp's stream flow
//! control instead of piling batches up in memory.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use maos_application::{ErrorKind, EventFollower, QueryError, RemoteError, StoredEvent};
use tokio::sync::{Notify, oneshot};

use crate::convert::read_event;
use crate::error::{read_error, unavailable, undecodable};
use crate::maos_capnp::event_sink;

/// Batches queued between the RPC thread and the follower, at most.
pub const FOLLOW_QUEUE: usize = 16;

/// What the sink hands to the follower.
#[derive(Debug)]
pub(crate) enum Delivery {
    Batch(Vec<StoredEvent>),
    /// The daemon ended the stream (it is stopping), or the sink could not read a batch.
    End(RemoteError),
}

/// The queue between the sink and the follower, and the signal that it has room again.
pub(crate) fn queue() -> (SyncSender<Delivery>, Receiver<Delivery>, Arc<Notify>) {
    let (send, receive) = std::sync::mpsc::sync_channel(FOLLOW_QUEUE);
    (send, receive, Arc::new(Notify::new()))
}

/// The `EventSink` the client hands to the daemon.
pub(crate) struct SinkServer {
    deliveries: SyncSender<Delivery>,
    room: Arc<Notify>,
}

impl SinkServer {
    pub(crate) fn new(deliveries: SyncSender<Delivery>, room: Arc<Notify>) -> Self {
        SinkServer { deliveries, room }
    }

    /// Queues `item`, waiting for room; fails once the follower is gone.
    async fn deliver(&self, mut item: Delivery) -> Result<(), capnp::Error> {
        loop {
            match self.deliveries.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    item = back;
                    // The follower notifies after every batch it takes (a permit is kept if we
                    // are not waiting yet), and when it is dropped.
                    self.room.notified().await;
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(capnp::Error::disconnected(
                        "the subscriber stopped following".into(),
                    ));
                }
            }
        }
    }
}

impl event_sink::Server for SinkServer {
    async fn push(self: Rc<Self>, params: event_sink::PushParams) -> Result<(), capnp::Error> {
        let events = params
            .get()?
            .get_events()?
            .iter()
            .map(read_event)
            .collect::<Result<Vec<_>, _>>();
        match events {
            Ok(events) => self.deliver(Delivery::Batch(events)).await,
            Err(e) => {
                let _ = self.deliver(Delivery::End(undecodable(&e))).await;
                Err(capnp::Error::failed(format!(
                    "the client cannot read the events: {e}"
                )))
            }
        }
    }

    async fn end(
        self: Rc<Self>,
        params: event_sink::EndParams,
        _: event_sink::EndResults,
    ) -> Result<(), capnp::Error> {
        let reason = read_error(params.get()?.get_reason()?);
        self.deliver(Delivery::End(reason)).await
    }
}

/// A follower of the daemon's event log: what [`crate::IpcClient`]'s `follow_events` returns.
/// Dropping it cancels the subscription.
#[derive(Debug)]
pub(crate) struct RemoteFollower {
    /// `None` only while dropping.
    deliveries: Option<Receiver<Delivery>>,
    room: Arc<Notify>,
    /// Dropped with the follower: the RPC thread then drops the `Subscription`.
    _subscribed: oneshot::Sender<()>,
    /// The seq of the last event returned.
    last: u64,
    /// Why the stream ended, once it has.
    ended: Option<RemoteError>,
}

impl RemoteFollower {
    pub(crate) fn new(
        deliveries: Receiver<Delivery>,
        room: Arc<Notify>,
        subscribed: oneshot::Sender<()>,
        since: u64,
    ) -> Self {
        RemoteFollower {
            deliveries: Some(deliveries),
            room,
            _subscribed: subscribed,
            last: since,
            ended: None,
        }
    }

    fn end(&mut self, reason: RemoteError) -> QueryError {
        self.ended = Some(reason.clone());
        QueryError::Remote(reason)
    }
}

impl EventFollower for RemoteFollower {
    fn next_batch(&mut self, timeout: Duration) -> Result<Vec<StoredEvent>, QueryError> {
        if let Some(reason) = &self.ended {
            return Err(QueryError::Remote(reason.clone()));
        }
        let received = match &self.deliveries {
            Some(deliveries) => deliveries.recv_timeout(timeout),
            None => Err(RecvTimeoutError::Disconnected),
        };
        let delivery = match received {
            Ok(delivery) => delivery,
            Err(RecvTimeoutError::Timeout) => return Ok(Vec::new()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.end(unavailable("the connection to the MAOS daemon was lost")));
            }
        };
        self.room.notify_one();
        match delivery {
            Delivery::Batch(mut events) => {
                // The daemon sends each event once, in order; hold it to that.
                events.retain(|e| e.seq > self.last);
                if let Some(first) = events.first()
                    && first.seq != self.last + 1
                {
                    return Err(self.end(RemoteError::new(
                        ErrorKind::Internal,
                        format!(
                            "the MAOS daemon's event stream skipped from seq {} to {}",
                            self.last, first.seq
                        ),
                    )));
                }
                if let Some(last) = events.last() {
                    self.last = last.seq;
                }
                Ok(events)
            }
            Delivery::End(reason) => Err(self.end(reason)),
        }
    }
}

impl Drop for RemoteFollower {
    fn drop(&mut self) {
        // Close the queue first: a push waiting for room then wakes, finds it closed and fails.
        self.deliveries.take();
        self.room.notify_one();
    }
}
