//! What goes wrong around the calls: a client or daemon of another protocol version, garbage on
//! the socket, a client that vanishes mid-call, many threads sharing one client, no daemon at
//! all, a peer that never answers, a daemon whose backlog is full, and a daemon that shuts down.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp_rpc::twoparty::VatNetwork;
use capnp_rpc::{RpcSystem, rpc_twoparty_capnp::Side};
use maos_application::{ErrorInfo, ErrorKind, MaosApi, QueryError};
use maos_ipc::maos_capnp::{ErrorKind as WireErrorKind, bootstrap, handshake_result};
use maos_ipc::{ConnectError, IpcClient};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::support::{TestDaemon, raw_session, remote_hint, task};

#[test]
fn a_client_of_another_protocol_version_is_refused_with_both_versions() {
    let daemon = TestDaemon::start();
    let (kind, message, hint) = raw_session(&daemon.socket, |bootstrap| async move {
        let mut hello = bootstrap.handshake_request();
        hello.get().set_protocol(999);
        hello.get().set_client("maos-from-the-future 9.9.9");
        let answer = hello.send().promise.await.unwrap();
        let result = answer.get().unwrap().get_result().unwrap();
        let handshake_result::Which::Err(e) = result.which().unwrap() else {
            panic!("protocol 999 was accepted");
        };
        let e = e.unwrap();
        (
            e.get_kind().unwrap(),
            e.get_message().unwrap().to_string().unwrap(),
            e.has_hint(),
        )
    });
    assert_eq!(kind, WireErrorKind::VersionMismatch);
    assert!(message.contains("999"), "{message}");
    assert!(
        message.contains(&format!("protocol {}", maos_ipc::PROTOCOL_VERSION)),
        "{message}"
    );
    assert!(hint);
    // The daemon still serves clients of its own version.
    daemon.client().status().unwrap();
}

#[test]
fn garbage_on_one_connection_ends_only_that_connection() {
    let daemon = TestDaemon::start();
    let client = daemon.client();
    client.create_task(task("Before")).unwrap();

    let frames: [&[u8]; 4] = [
        // Random bytes.
        b"GET / HTTP/1.1\r\nHost: maos\r\n\r\n\xff\xfe\x00\x01garbage",
        // A segment table announcing 2^32 segments.
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        // One segment of 2^28 words: more than a message may hold.
        &[0, 0, 0, 0, 0, 0, 0, 0x10],
        // A well-framed message whose root pointer points far out of its segment.
        &[0, 0, 0, 0, 1, 0, 0, 0, 0xfc, 0xff, 0xff, 0x7f, 0, 0, 1, 0],
    ];
    for frame in frames {
        let mut raw = UnixStream::connect(&daemon.socket).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.write_all(frame).unwrap();
        // The server ends this connection: the read sees its end (or a reset), not a timeout.
        let mut buf = [0u8; 4096];
        loop {
            match raw.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    assert_ne!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock,
                        "the server kept a connection that sent garbage ({frame:?})"
                    );
                    break;
                }
            }
        }
        // A client that was connected before, and a new one, are both served.
        client.create_task(task("During")).unwrap();
        daemon.client().status().unwrap();
    }
    // A connection that sends half a frame and hangs up.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.write_all(&[0, 0, 0, 0, 10, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(raw);
    assert_eq!(
        client.status().unwrap().tasks.values().sum::<u64>(),
        1 + frames.len() as u64
    );
}

#[test]
fn a_client_that_disconnects_mid_call_does_not_hurt_the_others() {
    let daemon = TestDaemon::start();
    let other = daemon.client();
    for round in 0..5 {
        // A big batch sent, then the connection dropped before the answer arrives.
        raw_session(&daemon.socket, |bootstrap| async move {
            let mut hello = bootstrap.handshake_request();
            hello.get().set_protocol(maos_ipc::PROTOCOL_VERSION);
            hello.get().set_client("quitter");
            let answer = hello.send().promise.await.unwrap();
            let handshake_result::Which::Ok(ok) =
                answer.get().unwrap().get_result().unwrap().which().unwrap()
            else {
                panic!("the handshake failed");
            };
            let api = ok.get_api().unwrap();
            let mut request = api.create_tasks_request();
            let mut tasks = request.get().init_tasks(200);
            for i in 0..200 {
                let mut t = tasks.reborrow().get(i);
                t.set_title(format!("Abandoned {round}.{i}").as_str());
                t.set_max_attempts(1);
            }
            let pending = request.send();
            // Give the request time to leave, then vanish without waiting for the answer.
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(pending);
        });
        other
            .create_task(task(&format!("Still here {round}")))
            .unwrap();
    }
    let status = other.status().unwrap();
    // Each abandoned batch either committed whole or not at all.
    let total = status.tasks.values().sum::<u64>();
    assert_eq!((total - 5) % 200, 0, "{total}");
    assert_eq!(status, daemon.service.status().unwrap());
}

#[test]
fn one_client_serves_many_threads_at_once() {
    let daemon = TestDaemon::start();
    let client = Arc::new(daemon.client());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..25 {
                    client.create_task(task(&format!("T{t}.{i}"))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.status().unwrap().tasks.values().sum::<u64>(), 200);
}

#[test]
fn connecting_where_no_daemon_listens_is_unavailable_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let e = IpcClient::connect(&dir.path().join("none.sock"), "tests").unwrap_err();
    assert!(matches!(e, ConnectError::Connect { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.hint().unwrap().contains("maos daemon status"));

    // A socket file that nobody listens on (a crashed daemon's): refused, not a hang.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let e = IpcClient::connect(&stale, "tests").unwrap_err();
    let ConnectError::Connect { source, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn shutdown_stops_the_server_and_later_calls_are_unavailable() {
    let mut daemon = TestDaemon::start();
    let client = daemon.client();
    client.create_task(task("Before")).unwrap();
    client.shutdown().unwrap();
    assert!(daemon.wait_stopped(), "the server did not stop");
    let e = client.status().unwrap_err();
    assert!(matches!(e, QueryError::Remote(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        remote_hint(&e)
            .flatten()
            .unwrap()
            .contains("maos daemon status"),
        "{e}"
    );
    let e = IpcClient::connect(&daemon.socket, "tests").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

/// A stand-in daemon of another protocol version: its bootstrap refuses every handshake.
struct FromTheFuture;

impl bootstrap::Server for FromTheFuture {
    async fn handshake(
        self: Rc<Self>,
        params: bootstrap::HandshakeParams,
        mut results: bootstrap::HandshakeResults,
    ) -> Result<(), capnp::Error> {
        let client = params.get()?.get_protocol();
        let mut e = results.get().init_result().init_err();
        e.set_kind(WireErrorKind::VersionMismatch);
        e.set_message(format!("the client speaks protocol {client}, the daemon 999").as_str());
        e.set_hint("upgrade");
        Ok(())
    }
}

/// Serves `FromTheFuture` to one connection on `listener`, on a thread of its own.
fn serve_one(listener: std::os::unix::net::UnixListener) -> std::thread::JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (read, write) = stream.into_split();
            let network = VatNetwork::new(
                read.compat(),
                write.compat_write(),
                Side::Server,
                ReaderOptions::new(),
            );
            let bootstrap: bootstrap::Client = capnp_rpc::new_client(FromTheFuture);
            let _ = RpcSystem::new(Box::new(network), Some(bootstrap.client)).await;
        });
    })
}

#[test]
fn the_client_reports_a_daemon_of_another_protocol_version() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("future.sock");
    let server = serve_one(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let e = IpcClient::connect(&socket, "tests").unwrap_err();
    let ConnectError::VersionMismatch { message, hint } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(
        message,
        &format!(
            "the client speaks protocol {}, the daemon 999",
            maos_ipc::PROTOCOL_VERSION
        )
    );
    assert_eq!(hint.as_deref(), Some("upgrade"));
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    server.join().unwrap();
}

#[test]
fn a_peer_that_never_answers_the_handshake_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Accepts (the kernel does, from the backlog) but never reads or writes.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let started = std::time::Instant::now();
    let e =
        IpcClient::connect_with_timeout(&socket, "tests", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, ConnectError::Handshake(_)), "{e:?}");
    assert!(e.to_string().contains("no answer"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_peer_of_another_uid_is_refused_before_anything_is_read() {
    // The server serves a uid that is not ours, so this process is the other user.
    let own = maos_ipc::peer::current_uid().unwrap();
    let daemon = TestDaemon::start_with(|server| server.serving_uid(own.wrapping_add(1)));
    let e = IpcClient::connect(&daemon.socket, "tests").unwrap_err();
    assert!(matches!(e, ConnectError::Handshake(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // The connection is closed without an answer.
    let mut raw = UnixStream::connect(&daemon.socket).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a refused peer got an answer");
    assert_eq!(daemon.service.status().unwrap().last_event, 0);
}

#[test]
fn a_daemon_whose_backlog_is_full_refuses_at_once() {
    // A daemon that has stopped accepting (hung) and whose backlog is full: connecting must
    // fail at once, not block until someone accepts.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hung.sock");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let listener = runtime.block_on(async {
        let s = tokio::net::UnixSocket::new_stream().unwrap();
        s.bind(&socket).unwrap();
        s.listen(1).unwrap()
    });
    let mut waiting = Vec::new();
    let full = loop {
        match runtime.block_on(tokio::net::UnixStream::connect(&socket)) {
            Ok(s) => waiting.push(s),
            Err(e) => break e,
        }
        assert!(waiting.len() < 100, "the backlog never filled");
    };
    assert_eq!(full.kind(), std::io::ErrorKind::WouldBlock, "{full}");
    let started = std::time::Instant::now();
    let e = IpcClient::connect_with_timeout(&socket, "tests", Duration::from_secs(30)).unwrap_err();
    assert!(matches!(e, ConnectError::Connect { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[test]
fn a_connection_that_never_shakes_hands_is_closed_after_the_deadline() {
    let daemon = TestDaemon::start_with(|s| s.handshake_deadline(Duration::from_millis(300)));
    // A client that shook hands is not affected by the deadline.
    let client = daemon.client();
    let mut silent = UnixStream::connect(&daemon.socket).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the daemon sent {n} bytes to a client that said nothing"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the silent connection was not closed: {e}"
        ),
    }
    std::thread::sleep(Duration::from_millis(400));
    client.status().unwrap();
    client.create_task(task("After the deadline")).unwrap();
}
