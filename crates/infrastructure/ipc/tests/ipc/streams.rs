//! Event streams: `Api.subscribe` delivers what exists and then what is committed, in order,
//! without gap or duplicate, across many batches and to several subscribers; cancelling or
//! dropping the subscription (or the connection) stops the stream; a subscriber that never
//! completes a push is held back by flow control without holding back anyone else; and a daemon
//! that stops ends every stream with `unavailable`.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use capnp::message::ReaderOptions;
use capnp_rpc::twoparty::VatNetwork;
use capnp_rpc::{RpcSystem, rpc_twoparty_capnp::Side};
use maos_application::{
    CreateTask, ErrorInfo, ErrorKind, EventFollower, MaosApi, ReadStore, StoredEvent,
};
use maos_ipc::maos_capnp::{ErrorKind as WireErrorKind, api, bootstrap, event_sink};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::support::{Svc, TestDaemon, remote_hint, task};

/// How long any wait for a stream may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn tasks(prefix: &str, n: usize) -> Vec<CreateTask> {
    (0..n).map(|i| task(&format!("{prefix} {i}"))).collect()
}

fn last_seq(service: &Svc) -> u64 {
    service.status().unwrap().last_event
}

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Follows until the event with seq `upto` has come; returns everything and the number of
/// non-empty batches.
fn follow_until(follower: &mut dyn EventFollower, upto: u64) -> (Vec<StoredEvent>, usize) {
    let deadline = Instant::now() + PATIENCE;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut batches = 0;
    while events.last().map_or(0, |e| e.seq) < upto {
        assert!(
            Instant::now() < deadline,
            "the stream stopped at {:?}",
            events.last().map(|e| e.seq)
        );
        let batch = follower.next_batch(Duration::from_millis(200)).unwrap();
        batches += usize::from(!batch.is_empty());
        events.extend(batch);
    }
    (events, batches)
}

#[test]
fn a_subscriber_gets_what_exists_then_what_comes_in_order_across_many_batches() {
    let daemon = TestDaemon::start();
    // 2 events per task: 6000 events before the subscription, more than one batch holds.
    daemon.service.create_tasks(tasks("Early", 3000)).unwrap();
    let client = daemon.client();
    let mut follower = client.follow_events(0).unwrap();
    let writer = {
        let service = daemon.service.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                service.create_task(task(&format!("Late {i}"))).unwrap();
            }
        })
    };
    writer.join().unwrap();
    let end = last_seq(&daemon.service);
    let (events, batches) = follow_until(follower.as_mut(), end);
    assert_eq!(seqs(&events), (1..=end).collect::<Vec<_>>());
    assert!(
        events == daemon.service.store().events_after(0, 100_000).unwrap(),
        "the streamed events differ from the log"
    );
    assert!(batches >= 6, "{batches} batches");
    // Nothing more comes until something is written; then exactly that comes.
    assert!(
        follower
            .next_batch(Duration::from_millis(100))
            .unwrap()
            .is_empty()
    );
    client.create_task(task("After")).unwrap();
    let (more, _) = follow_until(follower.as_mut(), end + 2);
    assert_eq!(seqs(&more), vec![end + 1, end + 2]);
}

#[test]
fn two_subscribers_each_get_every_event_from_where_they_started() {
    let daemon = TestDaemon::start();
    daemon.service.create_tasks(tasks("Early", 10)).unwrap();
    let (one, two) = (daemon.client(), daemon.client());
    let mut from_start = one.follow_events(0).unwrap();
    let mut from_middle = two.follow_events(7).unwrap();
    // A second follower on the same client too.
    let mut also = one.follow_events(19).unwrap();
    daemon.service.create_tasks(tasks("Late", 5)).unwrap();
    let end = last_seq(&daemon.service);
    assert_eq!(end, 30);
    let (a, _) = follow_until(from_start.as_mut(), end);
    let (b, _) = follow_until(from_middle.as_mut(), end);
    let (c, _) = follow_until(also.as_mut(), end);
    assert_eq!(seqs(&a), (1..=30).collect::<Vec<_>>());
    assert_eq!(seqs(&b), (8..=30).collect::<Vec<_>>());
    assert_eq!(seqs(&c), vec![20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
}

#[test]
fn a_stopping_daemon_ends_every_stream_with_unavailable() {
    let mut daemon = TestDaemon::start();
    daemon.service.create_tasks(tasks("Early", 2)).unwrap();
    let client = daemon.client();
    let mut follower = client.follow_events(0).unwrap();
    follow_until(follower.as_mut(), 4);
    let other = daemon.client();
    other.shutdown().unwrap();
    assert!(daemon.wait_stopped(), "the server did not stop");
    let deadline = Instant::now() + PATIENCE;
    let e = loop {
        assert!(Instant::now() < deadline, "the stream did not end");
        match follower.next_batch(Duration::from_millis(100)) {
            Ok(batch) => assert!(batch.is_empty(), "{batch:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // The daemon's own `end`, not a broken connection.
    assert!(e.to_string().contains("stopping"), "{e}");
    assert!(
        remote_hint(&e).flatten().unwrap().contains("since"),
        "{e:?}"
    );
    // The follower stays ended.
    assert_eq!(
        follower.next_batch(Duration::ZERO).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

// ---- raw subscribers, with sinks of our own -------------------------------------------------

/// What a test sink saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    pushes: Rc<Cell<usize>>,
    seqs: Rc<RefCell<Vec<u64>>>,
    /// The payload bytes of each push.
    sizes: Rc<RefCell<Vec<usize>>>,
    ended: Rc<RefCell<Option<(WireErrorKind, String)>>>,
    /// The daemon let go of the sink (the stream's task ended).
    released: Rc<Cell<bool>>,
}

/// An `EventSink` that records what it gets; with `park`, its first push never completes.
struct TestSink {
    seen: Seen,
    park: bool,
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.seen.released.set(true);
    }
}

impl event_sink::Server for TestSink {
    async fn push(self: Rc<Self>, params: event_sink::PushParams) -> Result<(), capnp::Error> {
        self.seen.pushes.set(self.seen.pushes.get() + 1);
        if self.park {
            std::future::pending::<()>().await;
        }
        let mut seqs = self.seen.seqs.borrow_mut();
        let mut size = 0;
        for e in params.get()?.get_events()? {
            seqs.push(e.get_seq());
            size += e.get_payload()?.len();
        }
        self.seen.sizes.borrow_mut().push(size);
        Ok(())
    }

    async fn end(
        self: Rc<Self>,
        params: event_sink::EndParams,
        _: event_sink::EndResults,
    ) -> Result<(), capnp::Error> {
        let reason = params.get()?.get_reason()?;
        *self.seen.ended.borrow_mut() = Some((
            reason.get_kind()?,
            reason.get_message()?.to_string().unwrap(),
        ));
        Ok(())
    }
}

/// The read half of a connection, counting the bytes the daemon sent.
struct Counted<R> {
    inner: R,
    bytes: Rc<Cell<usize>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.bytes.set(self.bytes.get() + read);
        polled
    }
}

/// A raw connection (on the current `LocalSet`) that has shaken hands: its `Api`, the bytes it
/// has read so far, and the handle that closes it.
async fn connect(socket: &Path) -> (api::Client, Rc<Cell<usize>>, capnp_rpc::Disconnector<Side>) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (read, write) = stream.into_split();
    let bytes = Rc::new(Cell::new(0));
    let network = VatNetwork::new(
        Counted {
            inner: read,
            bytes: Rc::clone(&bytes),
        }
        .compat(),
        write.compat_write(),
        Side::Client,
        ReaderOptions::new(),
    );
    let mut rpc = RpcSystem::new(Box::new(network), None);
    let bootstrap: bootstrap::Client = rpc.bootstrap(Side::Server);
    let disconnector = rpc.get_disconnector();
    tokio::task::spawn_local(rpc);
    let mut hello = bootstrap.handshake_request();
    hello.get().set_protocol(maos_ipc::PROTOCOL_VERSION);
    hello.get().set_client("stream tests");
    let answer = hello.send().promise.await.unwrap();
    let maos_ipc::maos_capnp::handshake_result::Which::Ok(ok) =
        answer.get().unwrap().get_result().unwrap().which().unwrap()
    else {
        panic!("the handshake failed");
    };
    (ok.get_api().unwrap(), bytes, disconnector)
}

/// Subscribes with a test sink; returns the subscription and what the sink sees.
async fn subscribe(
    api: &api::Client,
    since: u64,
    park: bool,
) -> (maos_ipc::maos_capnp::subscription::Client, Seen) {
    let seen = Seen::default();
    let sink: event_sink::Client = capnp_rpc::new_client(TestSink {
        seen: seen.clone(),
        park,
    });
    let mut request = api.subscribe_request();
    request.get().set_since(since);
    request.get().set_sink(sink);
    let answer = request.send().promise.await.unwrap();
    (answer.get().unwrap().get_subscription().unwrap(), seen)
}

/// Waits (on the `LocalSet`, so that the connections keep running) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `session` on a runtime and `LocalSet` of its own.
fn session<T>(f: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, f)
}

/// Writes `n` tasks through the service on the blocking pool.
async fn write(service: &std::sync::Arc<Svc>, prefix: &'static str, n: usize) {
    let service = std::sync::Arc::clone(service);
    tokio::task::spawn_blocking(move || {
        for chunk in tasks(prefix, n).chunks(500) {
            service.create_tasks(chunk.to_vec()).unwrap();
        }
    })
    .await
    .unwrap();
}

#[test]
fn cancelling_or_dropping_the_subscription_or_the_connection_stops_the_stream() {
    let daemon = TestDaemon::start();
    let service = daemon.service.clone();
    session(async {
        let (api, _, _) = connect(&daemon.socket).await;
        let (cancelled, a) = subscribe(&api, 0, false).await;
        let (dropped, b) = subscribe(&api, 0, false).await;
        let (api2, _, disconnect) = connect(&daemon.socket).await;
        let (_kept, c) = subscribe(&api2, 0, false).await;
        write(&service, "First", 3).await;
        for seen in [&a, &b, &c] {
            until("every sink has the first events", || {
                seen.seqs.borrow().last() == Some(&6)
            })
            .await;
        }

        cancelled.cancel_request().send().promise.await.unwrap();
        until("the cancelled stream lets go of its sink", || {
            a.released.get()
        })
        .await;
        drop(dropped);
        until("the dropped stream lets go of its sink", || {
            b.released.get()
        })
        .await;
        disconnect.await.unwrap();
        until("the disconnected stream lets go of its sink", || {
            c.released.get()
        })
        .await;

        // Later events reach none of them, and the daemon still serves.
        write(&service, "Second", 3).await;
        let (_still_subscribed, d) = subscribe(&api, 6, false).await;
        until("a new subscriber gets the new events", || {
            d.seqs.borrow().last() == Some(&12)
        })
        .await;
        for seen in [&a, &b, &c] {
            assert_eq!(*seen.seqs.borrow(), vec![1, 2, 3, 4, 5, 6]);
            assert!(seen.ended.borrow().is_none());
        }
        drop(cancelled);
    });
}

#[test]
fn a_subscriber_that_never_completes_a_push_holds_back_only_itself() {
    const TASKS: usize = 10_000; // 20,000 events
    let mut daemon = TestDaemon::start();
    let service = daemon.service.clone();
    let (parked, stalled_bytes, reader, reading_bytes) = session(async {
        let (stalled_api, stalled_bytes, _) = connect(&daemon.socket).await;
        let (_stalled_sub, parked) = subscribe(&stalled_api, 0, true).await;
        let (reading_api, reading_bytes, _) = connect(&daemon.socket).await;
        let (_reading_sub, reader) = subscribe(&reading_api, 0, false).await;

        write(&service, "Load", TASKS).await;
        // Calls from other clients are served meanwhile.
        let socket = daemon.socket.clone();
        tokio::task::spawn_blocking(move || {
            let client = maos_ipc::IpcClient::connect(&socket, "another client").unwrap();
            assert_eq!(client.status().unwrap().last_event, 2 * TASKS as u64);
        })
        .await
        .unwrap();
        until("the reading subscriber has every event", || {
            reader.seqs.borrow().len() == 2 * TASKS
        })
        .await;
        // Give the daemon time to send whatever it would send the stalled one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        (parked, stalled_bytes.get(), reader, reading_bytes.get())
    });
    assert_eq!(
        *reader.seqs.borrow(),
        (1..=2 * TASKS as u64).collect::<Vec<_>>()
    );
    // The stalled sink got one push, which never completed: the daemon keeps the others behind
    // it...
    assert_eq!(parked.pushes.get(), 1);
    // ...and sends at most a flow-control window of them (64 KiB plus the largest batch, so
    // about two batches of 1000 events here): a small part of what the reading subscriber got.
    assert!(
        stalled_bytes * 4 < reading_bytes,
        "the daemon sent {stalled_bytes} bytes to a subscriber that acknowledged nothing, and \
         {reading_bytes} to one that read everything"
    );
    // The daemon still stops promptly.
    daemon.client().shutdown().unwrap();
    assert!(daemon.wait_stopped(), "the server did not stop");
}

#[test]
fn a_stopping_daemon_calls_end_on_every_sink() {
    let mut daemon = TestDaemon::start();
    let service = daemon.service.clone();
    let socket = daemon.socket.clone();
    let (seen, _subscription) = session(async {
        let (api, _, _) = connect(&socket).await;
        let (subscription, seen) = subscribe(&api, 0, false).await;
        write(&service, "Some", 2).await;
        until("the sink has the events", || seen.seqs.borrow().len() == 4).await;
        let stop = tokio::task::spawn_blocking(move || {
            maos_ipc::IpcClient::connect(&socket, "stopper")
                .unwrap()
                .shutdown()
                .unwrap();
        });
        stop.await.unwrap();
        until("the daemon ends the stream", || {
            seen.ended.borrow().is_some()
        })
        .await;
        (seen, subscription)
    });
    assert!(daemon.wait_stopped(), "the server did not stop");
    let (kind, message) = seen.ended.borrow().clone().unwrap();
    assert_eq!(kind, WireErrorKind::Unavailable);
    assert!(message.contains("stopping"), "{message}");
}

#[test]
fn subscriptions_beyond_the_limit_are_refused_and_calls_are_still_served() {
    let daemon = TestDaemon::start();
    let socket = daemon.socket.clone();
    session(async {
        let (api, _, _) = connect(&socket).await;
        let mut held = Vec::new();
        for _ in 0..maos_ipc::MAX_SUBSCRIPTIONS {
            held.push(subscribe(&api, 0, false).await);
        }
        let sink: event_sink::Client = capnp_rpc::new_client(TestSink {
            seen: Seen::default(),
            park: false,
        });
        let mut request = api.subscribe_request();
        request.get().set_sink(sink);
        let refused = request.send().promise.await.err().expect("one too many");
        assert_eq!(refused.kind, capnp::ErrorKind::Overloaded, "{refused}");
        // Idle subscribers do not starve calls.
        let started = Instant::now();
        tokio::task::spawn_blocking(move || {
            let client = maos_ipc::IpcClient::connect(&socket, "caller").unwrap();
            client.create_task(task("Served")).unwrap();
        })
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        // Every subscriber gets the event; and once one lets go, a new one is accepted.
        for (_, seen) in &held {
            until("every subscriber has the event", || {
                seen.seqs.borrow().len() == 2
            })
            .await;
        }
        let (gone, seen) = held.pop().unwrap();
        drop(gone);
        until("the dropped stream lets go of its sink", || {
            seen.released.get()
        })
        .await;
        subscribe(&api, 0, false).await;
    });
}

#[test]
fn large_events_are_pushed_in_pieces_of_about_a_mebibyte() {
    let daemon = TestDaemon::start();
    // 40 tasks with 100 KB prompts: about 4 MB of events, in one read of the log.
    let big: Vec<CreateTask> = (0..40)
        .map(|i| {
            let mut t = task(&format!("Big {i}"));
            t.prompt = "x".repeat(100_000);
            t
        })
        .collect();
    daemon.service.create_tasks(big).unwrap();
    let socket = daemon.socket.clone();
    let seen = session(async {
        let (api, _, _) = connect(&socket).await;
        let (_subscription, seen) = subscribe(&api, 0, false).await;
        until("the sink has every event", || {
            seen.seqs.borrow().len() == 80
        })
        .await;
        seen
    });
    assert_eq!(*seen.seqs.borrow(), (1..=80).collect::<Vec<u64>>());
    let sizes = seen.sizes.borrow();
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 1 << 20), "{sizes:?}");
}
