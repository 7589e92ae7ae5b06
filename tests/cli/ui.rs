//! `maos ui`: the daemon serves the dashboard on 127.0.0.1 behind a per-data-directory token,
//! prints where, says so again when asked twice, refuses a second address, names a taken port,
//! and serves at start from `[ui]` in config.toml.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::{Env, in_process};

/// A port free right now (the kernel's pick, released for `maos` to take).
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Sends a GET for `path` to the dashboard on `port` and answers the status and the head.
fn get(port: u16, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn ui_serves_the_dashboard_behind_its_token() {
    let env = Env::new();
    if in_process() {
        let run = env.maos(&["ui"]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(
            run.stderr.contains("served by the daemon"),
            "{}",
            run.stderr
        );
        return;
    }
    let port = free_port();
    let doc = env.ok_json(&["ui", "--port", &port.to_string()]);
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(doc["url"], url.as_str(), "{doc}");
    assert_eq!(doc["port"], port);
    assert_eq!(doc["loopback"], true);
    assert_eq!(doc["already"], false);
    // The token: 64 hex digits, kept in a file only its owner reads.
    let file = env.dir().join("ui-token");
    assert_eq!(doc["token_file"], file.display().to_string().as_str());
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        doc["url_with_token"],
        format!("{url}?token={token}").as_str()
    );

    // Refused without the token; the token once gives the cookie, the cookie the page.
    let (status, _) = get(port, "/", None);
    assert_eq!(status, 401);
    let (status, head) = get(port, &format!("/?token={token}"), None);
    assert_eq!(status, 303, "{head}");
    assert!(head.contains(&format!("maos_{port}={token}")), "{head}");
    let (status, page) = get(port, "/", Some(&format!("maos_{port}={token}")));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Overview</h1>"));

    // Asked again: the same place, and it says it already served.
    let again = env.ok_json(&["ui"]);
    assert_eq!(again["url"], url.as_str());
    assert_eq!(again["already"], true);
    // The daemon says where it serves it (never the token).
    let status = env.ok_json(&["daemon", "status"]);
    assert_eq!(status["ui"], url.as_str());
    assert!(!status.to_string().contains(&token));
    let human = env.maos(&["daemon", "status"]);
    assert!(human.stdout.contains(&url), "{}", human.stdout);
    assert!(!human.stdout.contains(&token));

    // Another port while it serves: refused, with where it is.
    let other = env.maos(&["ui", "--port", &free_port().to_string()]);
    assert_eq!(other.code, 4, "{other:?}");
    assert!(other.stderr.contains(&url), "{}", other.stderr);
    assert!(other.stderr.contains("hint:"), "{}", other.stderr);

    // The human form prints the address to open.
    let shown = env.maos(&["ui"]);
    assert_eq!(shown.code, 0);
    assert!(shown.stdout.contains(&format!("{url}?token={token}")));
}

#[test]
fn a_taken_port_is_named_with_the_fix() {
    if in_process() {
        return; // daemon-only behaviour; it ran in the daemon pass
    }
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = env.maos(&["ui", "--port", &port.to_string()]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--port"), "{}", run.stderr);
    assert_eq!(
        env.ok_json(&["daemon", "status"])["ui"],
        serde_json::Value::Null
    );
    drop(taken);
}

#[test]
fn another_address_is_served_only_when_asked_and_says_what_it_exposes() {
    if in_process() {
        return; // daemon-only behaviour; it ran in the daemon pass
    }
    let env = Env::new();
    let port = free_port();
    let run = env.maos(&["ui", "--address", "0.0.0.0", "--port", &port.to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("warning"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not only on this machine"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(&format!("http://0.0.0.0:{port}/")),
        "{}",
        run.stdout
    );
}

#[test]
fn the_daemon_serves_it_at_start_when_config_says_so() {
    if in_process() {
        return; // daemon-only behaviour; it ran in the daemon pass
    }
    let env = Env::new();
    let port = free_port();
    env.config(&format!("[ui]\nserve = true\nport = {port}\n"));
    env.ok_json(&["daemon", "start"]);
    let status = env.ok_json(&["daemon", "status"]);
    assert_eq!(
        status["ui"],
        format!("http://127.0.0.1:{port}/").as_str(),
        "{status}"
    );
    let (code, _) = get(port, "/", None);
    assert_eq!(code, 401);
}

/// Reads the live stream from `port` (resuming after `last`, as a browser's EventSource does
/// after a reconnect) until the event `until` arrives; answers the ids seen.
fn live_ids(port: u16, token: &str, last: u64, until: u64) -> Vec<u64> {
    use std::io::BufRead;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: maos_{port}={token}\r\nLast-Event-ID: {last}\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut ids = Vec::new();
    let mut line = String::new();
    while ids.last().is_none_or(|l| *l < until) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(id) = line.trim_end().strip_prefix("id: ") {
            ids.push(id.parse().unwrap());
        }
    }
    ids
}

#[test]
fn the_live_stream_resumes_across_a_daemon_restart_with_no_gap_and_no_duplicate() {
    if in_process() {
        return; // daemon-only behaviour; it ran in the daemon pass
    }
    let env = Env::new();
    let port = free_port();
    env.config(&format!("[ui]\nserve = true\nport = {port}\n"));
    env.ok_json(&["daemon", "start"]);
    env.task("one", &[]);
    env.task("two", &[]);
    let token = std::fs::read_to_string(env.dir().join("ui-token")).unwrap();
    let token = token.trim();
    let first = env.last_seq();
    let seen = live_ids(port, token, 0, first);
    assert_eq!(seen, (1..=first).collect::<Vec<_>>());

    env.ok_json(&["daemon", "stop"]);
    env.ok_json(&["daemon", "start"]);
    env.task("three", &[]);
    let last = env.last_seq();
    assert!(last > first);
    let resumed = live_ids(port, token, first, last);
    assert_eq!(resumed, (first + 1..=last).collect::<Vec<_>>());
}
