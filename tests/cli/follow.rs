//! The commands that keep running: `maos events --follow` prints the log live (NDJSON with
//! `--json`: the same objects as `maos events --json`, each line tagged with `schema_version`
//! and `"type": "event"`), resumes after a daemon restart with `--since` without gap or
//! duplicate, stops after `--limit` events, and ends with exit 0 on Ctrl-C; `maos status --watch
//! --json` prints a new status line (`"type": "status"`) after each change. Run in both
//! transports like the rest of the suite (in process, other processes' commits are seen within
//! the follow's 200 ms wait).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::{line_of, type_of};
use crate::support::{Env, in_process};

/// How long a test waits for a line or an exit before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A `maos` that keeps running, its stdout read line by line on a thread. Killed when dropped.
struct Live {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::process::ChildStderr>,
}

impl Live {
    /// Starts `maos args` in `env`'s data directory, in this run's transport.
    fn start(env: &Env, args: &[&str]) -> Live {
        let mut child = env
            .std_command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Live {
            child,
            lines,
            stderr,
        }
    }

    /// The next line of stdout; fails the test if none comes in time.
    fn line(&self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no line within {PATIENCE:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("stdout ended"),
        }
    }

    /// The next line, as JSON.
    fn json(&self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"))
    }

    /// Reads NDJSON events until the one with seq `upto`; returns them all, each checked to be
    /// tagged as an event and answered without its tags.
    fn events_until(&self, upto: u64) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = line_of(&self.line(), "event");
            let seq = event["seq"].as_u64().unwrap();
            events.push(event);
            if seq >= upto {
                return events;
            }
        }
    }

    /// Nothing more comes on stdout for `quiet`.
    fn assert_silent_for(&self, quiet: Duration) {
        match self.lines.recv_timeout(quiet) {
            Ok(line) => panic!("unexpected line: {line}"),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    /// Waits for the process to exit; returns its status and stderr.
    fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "it did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
        }
        (status, stderr)
    }

    /// Sends SIGINT, as Ctrl-C does.
    fn interrupt(&self) {
        let sent = Command::new("kill")
            .args(["-s", "INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[test]
fn events_follow_json_prints_what_exists_then_new_events_live_as_ndjson() {
    let env = Env::new();
    env.task("One", &[]);
    let live = Live::start(&env, &["events", "--follow", "--json"]);
    let mut seen = live.events_until(2);
    env.task("Two", &[]);
    env.task("Three", &[]);
    seen.extend(live.events_until(6));
    assert_eq!(seqs(&seen), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(seen[4]["data"]["spec"]["title"], "Three");
    // The same objects as the items of `maos events --json`.
    let listed = env.ok_json(&["events"]);
    assert_eq!(&seen, listed["events"].as_array().unwrap());
    live.assert_silent_for(Duration::from_millis(300));
}

#[test]
fn events_follow_prints_the_same_lines_as_events() {
    let env = Env::new();
    env.task("One", &[]);
    let live = Live::start(&env, &["events", "--follow"]);
    let mut lines = vec![live.line(), live.line()];
    env.task("Two", &[]);
    lines.extend([live.line(), live.line()]);
    let listed = env.maos(&["events"]);
    assert_eq!(listed.stdout, format!("{}\n", lines.join("\n")));
}

#[test]
fn events_follow_resumes_with_since_after_a_daemon_restart_without_gap_or_duplicate() {
    let env = Env::new();
    env.task("One", &[]);
    env.task("Two", &[]);
    let first = Live::start(&env, &["events", "--follow", "--json"]);
    let before = first.events_until(4);
    let last = before.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(last, 4);

    let stop = env.maos(&["daemon", "stop"]);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    if in_process() {
        // No daemon to lose: the follow carries on until it is stopped.
        first.interrupt();
        let (status, _) = first.exit();
        assert_eq!(status.code(), Some(0));
    } else {
        // The daemon ended the stream: exit 6, naming the last seq and the way to resume. The
        // error is a line of the stream too, tagged as one.
        let error = first.json();
        assert_eq!(type_of(&error), "error", "{error}");
        assert_eq!(error["error"]["exit_code"], 6, "{error}");
        let (status, stderr) = first.exit();
        assert_eq!(status.code(), Some(6), "{stderr}");
        assert!(stderr.contains("after seq 4"), "{stderr}");
        assert!(
            stderr.contains("maos events --follow --since 4 --json"),
            "{stderr}"
        );
    }

    // Any command starts the daemon again.
    env.task("Three", &[]);
    let resumed = Live::start(&env, &["events", "--follow", "--json", "--since", "4"]);
    let mut after = resumed.events_until(6);
    env.task("Four", &[]);
    after.extend(resumed.events_until(8));
    assert_eq!(seqs(&after), vec![5, 6, 7, 8]);
    let all: Vec<Value> = before.into_iter().chain(after).collect();
    assert_eq!(&all, env.ok_json(&["events"])["events"].as_array().unwrap());
    resumed.assert_silent_for(Duration::from_millis(300));
}

#[test]
fn events_follow_with_a_limit_stops_after_that_many() {
    let env = Env::new();
    env.task("One", &[]);
    env.task("Two", &[]);
    let run = env.maos(&["events", "--follow", "--limit", "3", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<Value> = run.stdout.lines().map(|l| line_of(l, "event")).collect();
    assert_eq!(seqs(&lines), vec![1, 2, 3]);
    // Waiting for events that do not exist yet.
    let live = Live::start(
        &env,
        &["events", "--follow", "--since", "4", "--limit", "1"],
    );
    env.task("Three", &[]);
    assert!(live.line().starts_with("   5  "));
    let (status, stderr) = live.exit();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn ctrl_c_ends_a_follow_and_a_watch_with_exit_0() {
    let env = Env::new();
    env.task("One", &[]);
    for args in [&["events", "--follow"][..], &["status", "--watch"]] {
        let live = Live::start(&env, args);
        live.line();
        live.interrupt();
        let (status, stderr) = live.exit();
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn status_watch_json_prints_a_document_per_change() {
    let env = Env::new();
    env.task("One", &[]);
    let live = Live::start(&env, &["status", "--watch", "--json"]);
    let first = line_of(&live.line(), "status");
    assert_eq!(first["tasks"]["total"], 1);
    assert_eq!(first["last_event"], 2);
    env.task("Two", &[]);
    let second = line_of(&live.line(), "status");
    assert_eq!(second["tasks"]["total"], 2);
    assert_eq!(second["last_event"], 4);
    // The fields of `maos status --json`.
    let mut status = env.ok_json(&["status"]);
    status.as_object_mut().unwrap().remove("schema_version");
    assert_eq!(second, status);
    // Nothing changes, nothing is printed: it redraws on events, not on a timer.
    live.assert_silent_for(Duration::from_millis(500));
}

#[test]
fn status_watch_without_a_terminal_prints_each_status_after_a_blank_line() {
    let env = Env::new();
    let live = Live::start(&env, &["status", "--watch"]);
    let first: Vec<String> = (0..6).map(|_| live.line()).collect();
    assert_eq!(first[0], "tasks           0");
    assert_eq!(first[5], "cost            $0.00");
    env.task("One", &[]);
    assert_eq!(live.line(), "");
    let mut second = Vec::new();
    loop {
        let line = live.line();
        let done = line.starts_with("cost");
        second.push(line);
        if done {
            break;
        }
    }
    assert_eq!(second[0], "tasks           1");
    assert!(
        second.contains(&"last event      2".to_owned()),
        "{second:?}"
    );
}
