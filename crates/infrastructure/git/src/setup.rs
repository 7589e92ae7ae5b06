//! Preparing a new worktree: copying the files git does not track (such as `.env`) and running
//! the repository's setup command with a time limit.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::git::REPOSITORY_VARIABLES;

/// The time limit of a setup command whose [`Setup::timeout`](maos_application::Setup) is zero.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// How much of a setup command's output is kept for its error.
const OUTPUT_TAIL: usize = 4000;

/// How long to wait for the output pipe to close once the command has exited (a background
/// process it started may hold it open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Copies each of `files` (relative to `from`) that exists as a file into the same place under
/// `to`, creating directories. A missing file, or a directory, is skipped. Errors describe the
/// file.
pub(crate) fn copy_files(from: &Path, to: &Path, files: &[PathBuf]) -> Result<(), String> {
    for file in files {
        if file.as_os_str().is_empty()
            || !file
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "{} is not a path inside the repository",
                file.display()
            ));
        }
        let source = from.join(file);
        if !source.is_file() {
            tracing::debug!(file = %source.display(), "setup: nothing to copy");
            continue;
        }
        let target = to.join(file);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::copy(&source, &target).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                source.display(),
                target.display()
            )
        })?;
    }
    Ok(())
}

/// Runs `command` with `sh -c` in `dir`, in a process group of its own, its standard output and
/// error going to one pipe. Past `timeout` (zero: [`DEFAULT_SETUP_TIMEOUT`]) the whole group is
/// killed. A failure is described with the end of the output.
pub(crate) fn run_command(
    dir: &Path,
    command: &str,
    timeout: Duration,
    env: Option<&[(std::ffi::OsString, std::ffi::OsString)]>,
) -> Result<(), String> {
    let timeout = if timeout.is_zero() {
        DEFAULT_SETUP_TIMEOUT
    } else {
        timeout
    };
    let (mut reader, writer) = io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let mut process = Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(
            writer
                .try_clone()
                .map_err(|e| format!("cannot make a pipe: {e}"))?,
        )
        .stderr(writer)
        .process_group(0);
    if let Some(env) = env {
        process.env_clear().envs(env.iter().cloned());
    }
    for name in REPOSITORY_VARIABLES {
        process.env_remove(name);
    }
    let mut child = process
        .spawn()
        .map_err(|e| format!("cannot run `sh -c {command}`: {e}"))?;
    // Our copies of the pipe's writing end go with the command, so that the reader sees the end
    // of the output once the command's processes are done with it.
    drop(process);

    let output = Arc::new(Mutex::new(Tail::default()));
    let (done_tx, done_rx) = mpsc::channel();
    let sink = Arc::clone(&output);
    thread::Builder::new()
        .name("maos-git-setup".into())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;

    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for `{command}`: {e}")),
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            let status = child
                .wait()
                .map_err(|e| format!("cannot wait for `{command}`: {e}"))?;
            break (status, true);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let _ = done_rx.recv_timeout(OUTPUT_GRACE);
    let text = output.lock().unwrap_or_else(PoisonError::into_inner).text();
    let what = if timed_out {
        format!(
            "`{command}` did not finish within {} and was killed",
            seconds(timeout)
        )
    } else if status.success() {
        return Ok(());
    } else {
        format!("`{command}` {}", describe(status))
    };
    Err(if text.is_empty() {
        format!("{what} (no output)")
    } else {
        format!("{what}; its output ended with:\n{text}")
    })
}

/// Kills the process group `pgid` with `kill -KILL -- -<pgid>` (this crate has no `unsafe` to
/// call `kill(2)` itself).
fn kill_group(pgid: u32) {
    let result = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = result {
        tracing::warn!(pgid, error = %e, "cannot run kill for a setup command's process group");
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".into(),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The last bytes of an output.
#[derive(Debug, Default)]
struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(OUTPUT_TAIL);
        self.bytes.drain(..excess);
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; OUTPUT_TAIL]);
        tail.push(b"end\n");
        let text = tail.text();
        assert!(text.ends_with("end"));
        assert_eq!(text.len(), OUTPUT_TAIL - 1);
    }

    #[test]
    fn copies_refuse_paths_outside() {
        let err = copy_files(Path::new("/a"), Path::new("/b"), &[PathBuf::from("../x")]);
        assert!(matches!(err, Err(e) if e.contains("not a path inside")));
        let err = copy_files(Path::new("/a"), Path::new("/b"), &[PathBuf::from("/etc/x")]);
        assert!(err.is_err());
    }
}
