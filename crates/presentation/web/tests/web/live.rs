//! The live stream: ids are event seqs; a reconnect resumes after `Last-Event-ID` with no gap
//! and no duplicate.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use maos_application::{CreateTask, MaosApi};
use maos_domain::Title;

use crate::support::{Served, TOKEN};

fn create(s: &Served, title: &str) {
    s.api
        .create_task(CreateTask::titled(Title::parse(title).expect("title")))
        .expect("create");
}

/// Opens `/live{query}` with `extra` headers, as a signed-in browser does.
fn open_live(s: &Served, query: &str, extra: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /live{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: maos_{}={TOKEN}\r\n{extra}\r\n",
        s.port, s.port
    )
    .expect("write");
    BufReader::new(stream)
}

/// Opens `/live` with `extra` headers and reads ids until `until` is seen (or 10 s pass).
fn ids(s: &Served, query: &str, extra: &str, until: u64) -> Vec<u64> {
    let mut reader = open_live(s, query, extra);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(id) = line
            .trim()
            .strip_prefix("id: ")
            .or_else(|| line.trim().strip_prefix("id:"))
        {
            let id: u64 = id.trim().parse().expect("numeric id");
            seen.push(id);
            if id >= until {
                break;
            }
        }
    }
    seen
}

#[test]
fn a_reconnect_resumes_after_the_last_event_id() {
    let s = Served::new();
    for i in 0..5 {
        create(&s, &format!("task {i}"));
    }
    // Five tasks: ten events (created, ready).
    assert_eq!(ids(&s, "?after=0", "", 10), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        ids(&s, "?after=0", "Last-Event-ID: 4\r\n", 10),
        (5..=10).collect::<Vec<_>>()
    );
    // Events committed while connected follow without a gap.
    let served = &s;
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| ids(served, "", "Last-Event-ID: 8\r\n", 14));
        std::thread::sleep(Duration::from_millis(200));
        create(served, "later 1");
        create(served, "later 2");
        assert_eq!(reader.join().expect("reader"), (9..=14).collect::<Vec<_>>());
    });
}

/// Many pages at once, a burst of changes: each page gets every event once, in order (the hub
/// writes a page's pending events together, at most one write per pace).
#[test]
fn every_page_gets_every_event_of_a_burst() {
    let s = Served::new();
    create(&s, "before");
    let served = &s;
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| ids(served, "?after=2", "", 62)))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        for i in 0..30 {
            create(served, &format!("burst {i}"));
        }
        for r in readers {
            assert_eq!(r.join().expect("reader"), (3..=62).collect::<Vec<_>>());
        }
    });
}

/// A page that says it saw more of the log than there is (the database was replaced under a
/// running dashboard) is told to reload. (One rendered from a commit the hub has not followed
/// yet is not: `every_page_gets_every_event_of_a_burst` failed that way under load.)
#[test]
fn a_page_ahead_of_the_log_is_told_to_reload() {
    let s = Served::new();
    create(&s, "one");
    let mut reader = open_live(&s, "?after=999", "");
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut told = false;
    while Instant::now() < deadline && !told {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        told = line.trim() == "event: reload";
    }
    assert!(told, "no reload for a page ahead of the log");
}
