//! What the runtime does around an attempt of a task that works in a repository: its worktree
//! (prepared once, reused by every attempt), the checkpoint commits before and after each
//! attempt, the verification command, and a free TCP port for tasks that ask for one.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use maos_application::{Launch, MaosApi, Setup, Trailer, Workspace, Workspaces};
use maos_domain::{TaskWorkspace, Verification};

use crate::sys;

/// The most of a verification's output kept with the attempt (the whole is in its file).
pub(crate) const VERIFY_TAIL: usize = 4096;

/// The branch of a task: `maos/<short id>`.
pub(crate) fn branch_of(launch: &Launch) -> String {
    format!("maos/{}", launch.task.id.short())
}

/// The task's worktree, prepared on its first attempt and reused by the next ones; recorded on
/// the task. An error says why the attempt cannot start.
pub(crate) fn prepare(
    git: &dyn Workspaces,
    api: &dyn MaosApi,
    launch: &Launch,
    data_dir: &Path,
    daemon_env: &[(OsString, OsString)],
) -> Result<Workspace, String> {
    let ws = match &launch.task.workspace {
        Some(known) if !known.removed => Workspace {
            repo: PathBuf::from(&known.repo),
            path: PathBuf::from(&known.path),
            branch: known.branch.clone(),
            base: known.base.clone(),
        },
        _ => {
            let Some(spec) = &launch.task.spec.workspace else {
                return Err("the task names no repository".into());
            };
            let repo = PathBuf::from(&spec.repo);
            let branch = branch_of(launch);
            let path = data_dir.join("worktrees").join(launch.task.id.to_string());
            let base = match &launch.task.workspace {
                // The worktree was removed (`maos gc`): its branch is still there.
                Some(known) => known.base.clone(),
                None => git
                    .check(&repo, launch.start_from.as_deref().or(spec.base.as_deref()))
                    .map_err(|e| e.to_string())?,
            };
            let setup = setup_of(&repo, daemon_env);
            git.prepare(&repo, &branch, &base, &path, &setup)
                .map_err(|e| e.to_string())?
        }
    };
    let recorded = TaskWorkspace {
        repo: ws.repo.display().to_string(),
        path: ws.path.display().to_string(),
        branch: ws.branch.clone(),
        base: ws.base.clone(),
        removed: false,
    };
    api.record_workspace(launch.task.id, launch.fencing, recorded)
        .map_err(|e| format!("cannot record the worktree: {e}"))?;
    Ok(ws)
}

/// A repository's worktree setup, from `.maos/setup` files in its main working tree:
/// `.maos/copy` lists files to copy into each new worktree (one path per line, `#` comments),
/// `.maos/setup.sh` is run in each new worktree (with `sh`, 10 minutes at most) with the
/// environment agents get (the allowlist, from `daemon_env`) plus the variables `.maos/env`
/// names (one name per line, `#` comments).
pub(crate) fn setup_of(repo: &Path, daemon_env: &[(OsString, OsString)]) -> Setup {
    let dir = repo.join(".maos");
    let copy = listed(&dir.join("copy"))
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let command = dir
        .join("setup.sh")
        .is_file()
        .then(|| "sh .maos/setup.sh".to_owned());
    let named = listed(&dir.join("env"));
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    let env = crate::plan::allowlisted(daemon_env, &named);
    Setup {
        copy,
        command,
        timeout: Duration::from_secs(600),
        env: Some(env),
    }
}

/// The lines of a `.maos/` list file (at most its first 64 KiB), trimmed, without blank lines
/// and `#` comments; none when it does not exist.
fn listed(path: &Path) -> Vec<String> {
    use std::io::Read;
    let mut text = String::new();
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if file.take(64 << 10).read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A checkpoint commit of everything in the worktree, `which` being `before` or `after`.
pub(crate) fn checkpoint(
    git: &dyn Workspaces,
    ws: &Workspace,
    launch: &Launch,
    which: &str,
) -> Result<String, String> {
    let message = format!(
        "maos: {which} attempt {} of task {}\n\n{}",
        launch.attempt,
        launch.task.id.short(),
        launch.task.spec.title
    );
    let trailers = [
        Trailer {
            key: "Maos-Task".into(),
            value: launch.task.id.to_string(),
        },
        Trailer {
            key: "Maos-Attempt".into(),
            value: launch.attempt.to_string(),
        },
        Trailer {
            key: "Maos-Checkpoint".into(),
            value: which.into(),
        },
    ];
    git.checkpoint(ws, &message, &trailers)
        .map_err(|e| format!("cannot make the {which} checkpoint: {e}"))
}

/// The most of a verification's output kept on disk (its end).
const VERIFY_KEPT: u64 = 16 << 20;

/// Rewrites the verification output at `path` with its secrets replaced (keeping its last 16
/// MiB at most), so that no file MAOS keeps holds them.
fn redact_file(path: &Path, redactor: &crate::redact::Redactor) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let skip = len.saturating_sub(VERIFY_KEPT);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(skip)).is_err()
        || file.take(VERIFY_KEPT).read_to_end(&mut bytes).is_err()
    {
        return;
    }
    if skip > 0 {
        // Begin at a whole line: the line the cut went through may hold part of a secret.
        let start = bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..start);
    }
    let mut clean = redactor.bytes(&bytes);
    if skip > 0 {
        let mut marked =
            format!("[maos: {skip} earlier bytes of output were dropped]\n").into_bytes();
        marked.append(&mut clean);
        clean = marked;
    }
    let _ = crate::private::write(path, &clean);
}

/// The attempt a command belongs to, whose containment it joins.
pub(crate) type Scope<'c> = (&'c crate::contain::Containment, maos_domain::TaskId, u32);

/// Runs the verification command in `dir` (`sh -c`, in its own process group, killed with it
/// at `timeout`), its output going to `out`; passed when it exits with status 0.
pub(crate) fn verify(
    command: &str,
    dir: &Path,
    env: &[(OsString, OsString)],
    out: &Path,
    timeout: Duration,
    scope: Option<Scope<'_>>,
    redactor: &crate::redact::Redactor,
) -> Verification {
    let run = || -> Result<(bool, String), String> {
        let file = crate::private::open(out, false)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let err = file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", out.display()))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        let cgroup = match scope {
            Some((c, task, attempt)) => c.prepare(task, attempt)?,
            None => None,
        };
        sys::prepare(&mut cmd, maos_domain::ResourceLimits::NONE, cgroup);
        let kill = |pid: u32| match scope {
            Some((c, task, attempt)) => {
                c.kill(task, attempt, Some(pid));
            }
            None => {
                let _ = sys::signal_group(pid, libc::SIGKILL);
            }
        };
        let spawned = match scope {
            Some((c, _, _)) => c.spawn(&mut cmd),
            None => cmd.spawn(),
        };
        let mut child = spawned.map_err(|e| format!("cannot run the verification command: {e}"))?;
        let pid = child.id();
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    kill(pid);
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("lost the verification command: {e}")),
            }
        };
        // Whatever it left behind goes too.
        kill(pid);
        if let Some((c, _, _)) = scope {
            c.forget(pid);
        }
        redact_file(out, redactor);
        let mut text = tail(out, VERIFY_TAIL);
        let passed = match status {
            Some(s) if s.success() => true,
            Some(s) => {
                text.push_str(&format!("\n[maos: the verification command failed: {s}]"));
                false
            }
            None => {
                text.push_str(&format!(
                    "\n[maos: the verification command ran past {}s and was killed]",
                    timeout.as_secs()
                ));
                false
            }
        };
        Ok((passed, text))
    };
    match run() {
        Ok((passed, output)) => Verification { passed, output },
        Err(output) => Verification {
            passed: false,
            output,
        },
    }
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max as u64);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).trim().to_owned();
    if start > 0 {
        format!("…{text}")
    } else {
        text
    }
}

/// A TCP port free now on this machine and not given to another running attempt.
pub(crate) fn free_port(taken: &HashSet<u16>) -> Option<u16> {
    (0..32).find_map(|_| {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
        let port = listener.local_addr().ok()?.port();
        (!taken.contains(&port)).then_some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_passes_on_status_zero_and_keeps_the_output_tail() {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let out = dir.path().join("verify.log");
        let ok = verify(
            "echo all good",
            dir.path(),
            &env,
            &out,
            Duration::from_secs(10),
            None,
            &crate::redact::Redactor::default(),
        );
        assert!(ok.passed);
        assert_eq!(ok.output, "all good");
        let bad = verify(
            "echo 2 tests failed >&2; exit 3",
            dir.path(),
            &env,
            &out,
            Duration::from_secs(10),
            None,
            &crate::redact::Redactor::default(),
        );
        assert!(!bad.passed);
        assert!(
            bad.output
                .starts_with("2 tests failed\n[maos: the verification command failed")
        );
        let slow = verify(
            "sleep 30",
            dir.path(),
            &env,
            &out,
            Duration::from_millis(200),
            None,
            &crate::redact::Redactor::default(),
        );
        assert!(!slow.passed);
        assert!(
            slow.output.contains("ran past 0s and was killed"),
            "{}",
            slow.output
        );
    }

    #[test]
    fn free_ports_avoid_the_taken_ones() {
        let first = free_port(&HashSet::new()).unwrap();
        let taken: HashSet<u16> = [first].into_iter().collect();
        let second = free_port(&taken).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn setup_comes_from_the_repository_maos_directory() {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), "/bin".into()),
            ("SECRET_TOKEN".into(), "s3cret".into()),
            ("NPM_TOKEN".into(), "npm-s3cret".into()),
        ];
        assert_eq!(setup_of(dir.path(), &env).copy, Vec::<PathBuf>::new());
        std::fs::create_dir(dir.path().join(".maos")).unwrap();
        std::fs::write(
            dir.path().join(".maos/copy"),
            "# secrets\n.env\n\nconfig/local.toml\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".maos/setup.sh"), "npm ci\n").unwrap();
        std::fs::write(dir.path().join(".maos/env"), "# for npm ci\nNPM_TOKEN\n").unwrap();
        let setup = setup_of(dir.path(), &env);
        // The allowlist and what .maos/env names; never the rest of the daemon's environment.
        assert_eq!(
            setup.env,
            Some(vec![
                ("PATH".into(), "/bin".into()),
                ("NPM_TOKEN".into(), "npm-s3cret".into()),
            ])
        );
        assert_eq!(
            setup.copy,
            vec![PathBuf::from(".env"), PathBuf::from("config/local.toml")]
        );
        assert_eq!(setup.command.as_deref(), Some("sh .maos/setup.sh"));
    }
}
