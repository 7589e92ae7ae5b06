//! The daemon under a bad client: one that pipelines calls and never reads the answers. The
//! daemon stops reading its calls (so its writes block) and stays bounded (memory, open files,
//! threads), measured on the real daemon process through /proc, while other clients are served.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use capnp::message::{Builder, ReaderOptions};
use capnp::serialize;
use capnp::traits::HasTypeId;
use capnp_rpc::rpc_capnp::{cap_descriptor, message, return_};
use maos_ipc::maos_capnp::{api, bootstrap};

use crate::support::{Env, in_process};

/// What the daemon process uses.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    rss_kib: u64,
    fds: usize,
    threads: usize,
}

impl Usage {
    fn of(pid: u64) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        let count = |dir: &str| {
            std::fs::read_dir(format!("/proc/{pid}/{dir}"))
                .unwrap()
                .count()
        };
        Usage {
            rss_kib,
            fds: count("fd"),
            threads: count("task"),
        }
    }

    fn max(self, other: Usage) -> Usage {
        Usage {
            rss_kib: self.rss_kib.max(other.rss_kib),
            fds: self.fds.max(other.fds),
            threads: self.threads.max(other.threads),
        }
    }
}

/// Writes one RPC message.
fn send(stream: &mut impl Write, build: impl FnOnce(message::Builder<'_>)) -> capnp::Result<()> {
    let mut m = Builder::new_default();
    build(m.init_root());
    serialize::write_message(stream, &m)
}

/// Reads until the `Return` of `question` and answers the import id of the capability it
/// carries.
fn capability_of(stream: &mut UnixStream, question: u32) -> u32 {
    loop {
        let m = serialize::read_message(&mut *stream, ReaderOptions::new()).unwrap();
        let root = m.get_root::<message::Reader<'_>>().unwrap();
        let Ok(message::Return(r)) = root.which() else {
            continue;
        };
        let r = r.unwrap();
        if r.get_answer_id() != question {
            continue;
        }
        let Ok(return_::Results(p)) = r.which() else {
            panic!("question {question} was not answered with results");
        };
        let table = p.unwrap().get_cap_table().unwrap();
        let Ok(cap_descriptor::SenderHosted(id)) = table.get(0).which() else {
            panic!("question {question}'s answer carries no capability of the daemon");
        };
        return id;
    }
}

/// Bootstraps and shakes hands on a raw connection, reading those two answers; answers the
/// import id of the `Api`.
fn shake_hands(stream: &mut UnixStream) -> u32 {
    send(stream, |m| m.init_bootstrap().set_question_id(0)).unwrap();
    let bootstrap_cap = capability_of(stream, 0);
    send(stream, |m| {
        let mut call = m.init_call();
        call.set_question_id(1);
        call.set_interface_id(<bootstrap::Client as HasTypeId>::TYPE_ID);
        call.set_method_id(0);
        call.reborrow()
            .init_target()
            .set_imported_cap(bootstrap_cap);
        let mut p = call
            .init_params()
            .get_content()
            .init_as::<bootstrap::handshake_params::Builder<'_>>();
        p.set_protocol(maos_ipc::PROTOCOL_VERSION);
        p.set_client("a client that never reads");
    })
    .unwrap();
    capability_of(stream, 1)
}

/// `Api.status` (method 18), as question `question`, encoded.
fn status_call(api_cap: u32, question: u32, out: &mut Vec<u8>) {
    send(out, |m| {
        let mut call = m.init_call();
        call.set_question_id(question);
        call.set_interface_id(<api::Client as HasTypeId>::TYPE_ID);
        call.set_method_id(18);
        call.reborrow().init_target().set_imported_cap(api_cap);
        call.init_params()
            .get_content()
            .init_as::<api::status_params::Builder<'_>>();
    })
    .unwrap();
}

/// How many calls the bad client tries to write.
const CALLS: u32 = 200_000;

#[test]
fn a_client_that_pipelines_calls_and_never_reads_leaves_the_daemon_bounded() {
    if in_process() {
        return; // the daemon's behaviour
    }
    let env = Env::new();
    env.agent("worker", "rust");
    let st = env.ok_json(&["daemon", "status"]);
    let pid = st["pid"].as_u64().unwrap();
    let socket = Path::new(st["socket"].as_str().unwrap()).to_path_buf();
    let before = Usage::of(pid);

    let mut raw = UnixStream::connect(&socket).unwrap();
    let api_cap = shake_hands(&mut raw);
    // From here on it only writes: pipelined calls, a thousand at a time, until a write has
    // waited 2 s (the daemon stopped reading) or all are written.
    raw.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut writing = raw.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut written = 0u32;
        let mut batch = Vec::new();
        while written < CALLS {
            batch.clear();
            for q in 0..1000 {
                status_call(api_cap, 2 + written + q, &mut batch);
            }
            if writing.write_all(&batch).is_err() {
                break;
            }
            written += 1000;
        }
        written
    });

    // The daemon's peak use while the client writes, and a while after.
    let mut peak = before;
    let mut served = 0;
    let mut after_writer = None;
    loop {
        peak = peak.max(Usage::of(pid));
        if writer.is_finished() && after_writer.is_none() {
            after_writer = Some(Instant::now());
        }
        if after_writer.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
            break;
        }
        // A well-behaved client is served meanwhile.
        if served < 5 {
            let status = env.ok_json(&["status"]);
            assert_eq!(status["agents"]["total"], 1, "{status}");
            served += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = writer.join().unwrap();
    peak = peak.max(Usage::of(pid));
    eprintln!("{written} calls written; the daemon before {before:?}, at its peak {peak:?}");
    assert!(
        written < CALLS,
        "the daemon read all {CALLS} calls of a client that reads none of the answers"
    );
    assert_eq!(served, 5);
    let grown_mib = peak.rss_kib.saturating_sub(before.rss_kib) / 1024;
    assert!(
        grown_mib < 48,
        "the daemon grew by {grown_mib} MiB (before {before:?}, peak {peak:?}, {written} calls written)"
    );
    // Calls run on at most 64 threads of their own (docs/ipc.md); the daemon's other threads
    // (runtime, store writer, checkpointer, supervisor) were there before. Without the bound a
    // flood reaches the runtime's default of 512. (Under load, with calls slower, the pool does
    // grow to its 64: a bound of 64 threads in all failed on a busy machine.)
    assert!(
        peak.threads < before.threads + 64 + 8,
        "threads: {peak:?} (before {before:?})"
    );
    assert!(peak.fds < 100, "open files: {peak:?} (before {before:?})");
    // Still serving, and once the bad client goes, its connection is closed.
    drop(raw);
    let status = env.ok_json(&["status"]);
    assert_eq!(status["agents"]["total"], 1, "{status}");
}
