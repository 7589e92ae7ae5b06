//! The live part: one thread per dashboard follows the event log and keeps its newest events in
//! a ring; every open page streams from there through Server-Sent Events whose `id` is the
//! event's seq, so a browser that reconnects (a network blip, a daemon restart) resumes with
//! `Last-Event-ID` and misses nothing and sees nothing twice (ADR 0018).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use maos_application::{MaosApi, StoredEvent};
use maos_domain::DomainEvent;
use serde::Deserialize;
use tokio::sync::watch;

use crate::ctx::Ctx;

/// How many of the newest events the ring keeps: a page that fell further behind reads the
/// rest from the store.
pub(crate) const RING: usize = 4096;

/// The most events one read from the store gives a page that fell behind.
const CATCH_UP: usize = 1000;

/// How long the follower waits for events before it checks whether to stop.
const POLL: Duration = Duration::from_millis(500);

/// An event as pages receive it: its seq and its JSON (`seq`, `kind`, `subject`, `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveEvent {
    pub(crate) seq: u64,
    pub(crate) data: String,
}

impl LiveEvent {
    fn of(e: &StoredEvent) -> LiveEvent {
        let (subject, id) = match &e.event {
            DomainEvent::Agent { id, .. } => ("agent", id.to_string()),
            DomainEvent::Task { id, .. } => ("task", id.to_string()),
            DomainEvent::Orchestration { id, .. } => ("orchestration", id.to_string()),
            DomainEvent::Memory { id, .. } => ("memory", id.to_string()),
        };
        let data = serde_json::json!({
            "seq": e.seq,
            "kind": e.event.kind(),
            "subject": subject,
            "id": id,
        });
        LiveEvent {
            seq: e.seq,
            data: data.to_string(),
        }
    }
}

/// The event log's newest events, shared by every open page.
#[derive(Clone)]
pub(crate) struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    api: Arc<dyn MaosApi>,
    ring: Mutex<VecDeque<Arc<LiveEvent>>>,
    /// The newest seq, as the follower thread sets it.
    head: watch::Sender<u64>,
    /// The same, relayed by a task on the pages' runtime (see [`Hub::subscribe`]).
    relay: Mutex<Option<Relay>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The runtime's copy of the head: the pages wait on it, so that the follower thread wakes one
/// task (the relay) per batch, and the relay wakes the pages from inside the runtime.
struct Relay {
    head: watch::Sender<u64>,
    alive: Arc<AtomicBool>,
}

/// Marks the relay dead when its task ends or is dropped (its runtime shut down).
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Drop for HubInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Why a page cannot resume where it asked to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// It names an event the log does not have (another data directory, a restored database):
    /// the page must reload.
    Ahead,
}

impl Hub {
    /// Starts following the log from its newest event.
    pub(crate) fn start(api: Arc<dyn MaosApi>) -> Hub {
        let head = api.status().map(|s| s.last_event).unwrap_or(0);
        let (tx, _) = watch::channel(head);
        let stop = Arc::new(AtomicBool::new(false));
        let hub = Hub {
            inner: Arc::new(HubInner {
                api: Arc::clone(&api),
                ring: Mutex::new(VecDeque::with_capacity(RING)),
                head: tx,
                relay: Mutex::new(None),
                stop: Arc::clone(&stop),
                thread: Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&hub.inner);
        let spawned = std::thread::Builder::new()
            .name("maos-web-events".into())
            .spawn(move || follow(api, head, &weak, &stop));
        match spawned {
            Ok(handle) => {
                *hub.inner
                    .thread
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(handle);
            }
            Err(e) => tracing::error!("the dashboard cannot follow the event log: {e}"),
        }
        hub
    }

    /// Stops following the log and waits for the follower to let go of the API (at most one
    /// poll), so that whoever owns the store can close it.
    pub(crate) fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let handle = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// The seq of the newest event the hub has.
    pub(crate) fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    fn push(&self, batch: &[StoredEvent]) {
        let Some(last) = batch.last() else { return };
        {
            let mut ring = self
                .inner
                .ring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for e in batch {
                if ring.len() == RING {
                    ring.pop_front();
                }
                ring.push_back(Arc::new(LiveEvent::of(e)));
            }
        }
        self.inner.head.send_replace(last.seq);
    }

    /// The events after `cursor` (up to [`CATCH_UP`]): from the ring when it still holds them,
    /// else from the store. Empty when the page is up to date.
    pub(crate) async fn after(&self, cursor: u64) -> Result<Vec<Arc<LiveEvent>>, Resume> {
        let head = self.head();
        if cursor > head {
            // The page may have been rendered from a commit the hub's follower has not seen
            // yet (it lags under load): only a log that does not reach `cursor` is ahead of it.
            let api = Arc::clone(&self.inner.api);
            let reached = tokio::task::spawn_blocking(move || api.read_events(cursor - 1, 1))
                .await
                .is_ok_and(|read| read.is_ok_and(|events| !events.is_empty()));
            return if reached {
                Ok(Vec::new())
            } else {
                Err(Resume::Ahead)
            };
        }
        if cursor == head {
            return Ok(Vec::new());
        }
        {
            let ring = self
                .inner
                .ring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(first) = ring.front().map(|f| f.seq)
                && first <= cursor + 1
            {
                // The ring's seqs follow each other: the event after `cursor` is at a known
                // place (no scan of the ring per page and event).
                let skip = usize::try_from(cursor + 1 - first).unwrap_or(usize::MAX);
                return Ok(ring.iter().skip(skip).take(CATCH_UP).cloned().collect());
            }
        }
        let api = Arc::clone(&self.inner.api);
        let read = tokio::task::spawn_blocking(move || api.read_events(cursor, CATCH_UP)).await;
        match read {
            Ok(Ok(events)) => Ok(events.iter().map(|e| Arc::new(LiveEvent::of(e))).collect()),
            Ok(Err(e)) => {
                tracing::warn!("the dashboard cannot read the event log: {e}");
                Ok(Vec::new())
            }
            Err(e) => {
                tracing::warn!("the dashboard's read of the event log failed: {e}");
                Ok(Vec::new())
            }
        }
    }

    /// A receiver that changes whenever the head does. Inside a tokio runtime it is the relay's
    /// (started on the first call, and again should its runtime have gone): a change then wakes
    /// one task from the follower thread, and that task wakes every page on its own thread,
    /// instead of the follower waking each page across threads (which, with a hundred pages,
    /// woke the runtime thread up to a hundred times per event).
    fn subscribe(&self) -> watch::Receiver<u64> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.inner.head.subscribe();
        };
        let mut relay = self
            .inner
            .relay
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = relay.as_ref()
            && r.alive.load(Ordering::Relaxed)
        {
            return r.head.subscribe();
        }
        let mut from = self.inner.head.subscribe();
        let (tx, rx) = watch::channel(*from.borrow_and_update());
        let alive = Arc::new(AtomicBool::new(true));
        let guard = Alive(Arc::clone(&alive));
        let to = tx.clone();
        runtime.spawn(async move {
            let _guard = guard;
            // Ends when the hub goes (its sender is dropped).
            while from.changed().await.is_ok() {
                let head = *from.borrow_and_update();
                to.send_replace(head);
            }
        });
        *relay = Some(Relay { head: tx, alive });
        rx
    }
}

/// The follower thread: pushes each batch into the hub while the hub lives.
fn follow(
    api: Arc<dyn MaosApi>,
    mut after: u64,
    hub: &std::sync::Weak<HubInner>,
    stop: &AtomicBool,
) {
    let mut follower = None;
    while !stop.load(Ordering::Relaxed) {
        let f = match follower.as_mut() {
            Some(f) => f,
            None => match api.follow_events(after) {
                Ok(f) => follower.insert(f),
                Err(e) => {
                    tracing::warn!("the dashboard cannot follow the event log: {e}");
                    std::thread::sleep(POLL);
                    continue;
                }
            },
        };
        match f.next_batch(POLL) {
            Ok(batch) => {
                let Some(inner) = hub.upgrade() else { return };
                if let Some(last) = batch.last() {
                    after = last.seq;
                }
                Hub { inner }.push(&batch);
            }
            Err(e) => {
                tracing::warn!("the dashboard stopped following the event log: {e}");
                follower = None;
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Where a page's first connection starts: the seq it was rendered after.
#[derive(Debug, Deserialize)]
pub(crate) struct After {
    after: Option<u64>,
}

/// `GET /live`: the event stream. A reconnect's `Last-Event-ID` wins over `?after=`; neither
/// starts at the newest event.
pub(crate) async fn live(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let hub = ctx.hub().clone();
    let cursor = resume.or(q.after).unwrap_or_else(|| hub.head());
    let mut response = Body::from_stream(stream(hub, cursor)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The least time between two writes to one page: the events of that stretch go out together,
/// in one write. An event after a quiet spell goes out at once; under a steady stream a page
/// gets at most ten writes a second, whatever the rate of events (each write to a socket costs
/// the daemon far more than the bytes in it).
pub(crate) const PACE: Duration = Duration::from_millis(100);

/// How long a quiet stream waits before it sends a comment, so that proxies and browsers keep
/// it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream's text: first the reconnection delay, then the events after `cursor`, then each
/// new batch as the hub gets it (several events to one chunk); ids strictly increase.
pub(crate) fn stream(hub: Hub, cursor: u64) -> impl Stream<Item = Result<String, Infallible>> {
    // Subscribe before the first read, so that nothing pushed in between is missed.
    let head = hub.subscribe();
    let state = (hub, head, cursor, None::<tokio::time::Instant>, true);
    futures_util::stream::unfold(
        state,
        |(hub, mut head, mut cursor, mut last, first)| async move {
            if first {
                let start = ": maos\nretry: 1000\n\n".to_owned();
                return Some((Ok(start), (hub, head, cursor, last, false)));
            }
            loop {
                match hub.after(cursor).await {
                    Ok(events) if !events.is_empty() => {
                        let mut text = String::with_capacity(events.len() * 128);
                        for e in &events {
                            // Unnamed (a `message`), so one listener takes every kind; the kind
                            // is in the data (one line of JSON).
                            let _ = write!(text, "id: {}\ndata: {}\n\n", e.seq, e.data);
                            cursor = e.seq;
                        }
                        last = Some(tokio::time::Instant::now());
                        return Some((Ok(text), (hub, head, cursor, last, false)));
                    }
                    Ok(_) => match tokio::time::timeout(KEEP_ALIVE, head.changed()).await {
                        Err(_) => {
                            let ping = ": keep-alive\n\n".to_owned();
                            return Some((Ok(ping), (hub, head, cursor, last, false)));
                        }
                        Ok(Err(_)) => return None,
                        Ok(Ok(())) => {
                            let due = last.map(|at| at + PACE);
                            if let Some(due) = due.filter(|d| *d > tokio::time::Instant::now()) {
                                tokio::time::sleep_until(due).await;
                            }
                        }
                    },
                    Err(Resume::Ahead) => {
                        // Nothing this page shows can be trusted: it reloads, and a new stream
                        // starts from the head.
                        cursor = hub.head();
                        let reload = "event: reload\ndata: \n\n".to_owned();
                        return Some((Ok(reload), (hub, head, cursor, last, false)));
                    }
                }
            }
        },
    )
}
