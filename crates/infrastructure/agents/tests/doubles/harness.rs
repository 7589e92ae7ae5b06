//! Runs an agent (here: a test double) the way the supervisor will: plain pipes, each stdout
//! line fed to a [`StreamParser`], its `Write` actions written to the child's stdin and
//! `CloseInput` closing it. A watchdog kills the child if the exchange hangs (a missing answer or
//! an input that is never closed), so a protocol bug fails the test instead of stalling it.
//!
//! Included once, by `tests/agents/claude.rs` with `#[path]`; `tests/agents/codex.rs` uses it
//! from there.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use maos_agents::stream::{StreamAction, StreamOutcome, StreamParser};

/// How long one run may take before the watchdog kills it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A test double's path.
pub(crate) fn double(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/doubles")
        .join(name)
}

/// A transcript's path.
pub(crate) fn transcript(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(name)
}

/// What happened in one run.
#[derive(Debug)]
pub(crate) struct Run {
    /// Every action the parser returned, in order.
    pub(crate) actions: Vec<StreamAction>,
    /// The parser's outcome after the last line.
    pub(crate) outcome: StreamOutcome,
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
    /// The watchdog had to kill the child.
    pub(crate) timed_out: bool,
}

impl Run {
    /// The actions other than writes, for comparing with an expected list.
    pub(crate) fn records(&self) -> Vec<StreamAction> {
        self.actions
            .iter()
            .filter(|a| !matches!(a, StreamAction::Write(_)))
            .cloned()
            .collect()
    }

    /// The bytes of every write, as text.
    pub(crate) fn writes(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                StreamAction::Write(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Asserts that the child exited on its own with status 0 and said nothing on stderr.
    pub(crate) fn assert_clean_exit(&self) {
        assert!(!self.timed_out, "the exchange hung: {self:#?}");
        assert_eq!(self.status.code(), Some(0), "stderr: {}", self.stderr);
        assert_eq!(self.stderr, "");
    }
}

/// A run to make.
pub(crate) struct Spawn {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, OsString)>,
    /// Written to stdin first.
    pub(crate) input: Vec<u8>,
    /// Close stdin after `input` (Codex) instead of waiting for `CloseInput` (Claude).
    pub(crate) close_after_input: bool,
}

impl Spawn {
    /// Runs the program to its end, feeding `parser`.
    pub(crate) fn run(self, parser: &mut dyn StreamParser) -> Run {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        let child = Arc::new(Mutex::new(child));
        let (done, finished) = mpsc::channel::<()>();
        let watchdog = {
            let child = Arc::clone(&child);
            thread::spawn(move || match finished.recv_timeout(TIMEOUT) {
                Ok(()) => false,
                Err(_) => {
                    let _ = child.lock().expect("child lock").kill();
                    true
                }
            })
        };

        // A child that refused its arguments may already be gone: a failed write shows in its
        // exit status and stderr, which the test checks.
        if let Some(pipe) = stdin.as_mut() {
            let _ = pipe.write_all(&self.input).and_then(|()| pipe.flush());
        }
        if self.close_after_input {
            stdin = None;
        }

        let mut actions = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            for action in parser.on_line(&line) {
                match &action {
                    StreamAction::Write(bytes) => {
                        let pipe = stdin
                            .as_mut()
                            .expect("the parser wrote after the input was closed");
                        let _ = pipe.write_all(bytes).and_then(|()| pipe.flush());
                    }
                    StreamAction::CloseInput => stdin = None,
                    _ => {}
                }
                actions.push(action);
            }
        }
        drop(stdin);
        let _ = done.send(());
        let timed_out = watchdog.join().expect("watchdog");
        let status = child.lock().expect("child lock").wait().expect("wait");
        Run {
            actions,
            outcome: parser.outcome(),
            status,
            stderr: stderr.join().expect("stderr reader"),
            timed_out,
        }
    }
}
