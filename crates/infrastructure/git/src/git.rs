//! Running git: the one place that builds git commands, with a controlled environment, and turns
//! their failures into [`WorkspaceError`]s.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use maos_application::WorkspaceError;

/// Variables that would point git (or a setup command's git) at another repository, index or
/// object store than the directory it runs in; a daemon started from a git hook would have them.
pub(crate) const REPOSITORY_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

/// Configuration given to every git command (`-c`): stable output, no colour, no advice.
const CONFIG: &[&str] = &[
    "core.quotepath=false",
    "color.ui=false",
    "advice.detachedHead=false",
    "advice.statusHints=false",
    "advice.resolveConflict=false",
    "advice.mergeConflict=false",
    "advice.waitingForEditor=false",
    "advice.forceDeleteBranch=false",
];

/// At most this many bytes of a failed command's error output go into an error.
const ERROR_TAIL: usize = 4000;

/// At most this many bytes of a streamed command's error output are kept (its tail is cut to
/// [`ERROR_TAIL`] for the error).
const STREAM_STDERR_KEPT: u64 = 64 * 1024;

/// The git program.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    program: OsString,
}

impl Git {
    pub(crate) fn new(program: impl Into<OsString>) -> Self {
        Git {
            program: program.into(),
        }
    }

    /// A git command run in `dir`.
    pub(crate) fn at(&self, dir: &Path) -> GitCommand<'_> {
        GitCommand {
            git: self,
            dir: dir.to_path_buf(),
            args: Vec::new(),
            config: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// One git command being built: its directory, arguments, extra `-c` settings and variables.
#[derive(Debug)]
pub(crate) struct GitCommand<'a> {
    git: &'a Git,
    dir: PathBuf,
    args: Vec<OsString>,
    config: Vec<String>,
    env: Vec<(&'static str, OsString)>,
}

impl GitCommand<'_> {
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Adds `-c <setting>` (`key=value`) for each of `settings`.
    pub(crate) fn configs<I, S>(mut self, settings: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.extend(settings.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, key: &'static str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key, value.as_ref().to_os_string()));
        self
    }

    /// The command as it runs: in its directory, with the pinned environment and settings,
    /// standard input closed. Refused when the directory does not exist.
    fn command(&self) -> Result<Command, WorkspaceError> {
        if !self.dir.is_dir() {
            return Err(self.failure("the directory does not exist".into()));
        }
        let mut command = Command::new(&self.git.program);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env("GIT_EDITOR", ":")
            .env("GIT_MERGE_AUTOEDIT", "no")
            .env("GIT_OPTIONAL_LOCKS", "0");
        for name in REPOSITORY_VARIABLES {
            command.env_remove(name);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command.arg("--no-pager");
        for setting in CONFIG
            .iter()
            .copied()
            .chain(self.config.iter().map(String::as_str))
        {
            command.arg("-c").arg(setting);
        }
        command.args(&self.args);
        tracing::trace!(dir = %self.dir.display(), args = %self.args_text(), "git");
        Ok(command)
    }

    /// The error for a git that could not be started.
    fn start_error(&self, e: &io::Error) -> WorkspaceError {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                WorkspaceError::NoGit(format!("{}: {e}", Path::new(&self.git.program).display()))
            }
            // Out of processes or descriptors, say: git is there, running it failed.
            _ => self.failure(format!("cannot start git: {e}")),
        }
    }

    /// Runs the command and answers its output whatever its exit status; only a git that cannot
    /// be started (missing: [`WorkspaceError::NoGit`]) or a directory that does not exist is an
    /// error.
    pub(crate) fn output(&self) -> Result<Output, WorkspaceError> {
        self.command()?.output().map_err(|e| self.start_error(&e))
    }

    /// Runs the command and hands its standard output to `read` as it comes, so that a large
    /// output (every path of a big repository, a big file) is never held whole. `read` may
    /// stop early: the rest is not read and git is stopped, and its answer stands. When `read`
    /// took everything, a non-zero exit is [`WorkspaceError::Git`] with git's error output (of
    /// which at most a few kilobytes are kept).
    pub(crate) fn stream<T>(
        &self,
        read: impl FnOnce(&mut dyn BufRead) -> io::Result<T>,
    ) -> Result<T, WorkspaceError> {
        let mut child = self.command()?.spawn().map_err(|e| self.start_error(&e))?;
        // Drained on a thread of its own, so that git never blocks on a full error pipe while
        // standard output is being read.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut pipe).take(STREAM_STDERR_KEPT).read_to_end(&mut kept);
                let _ = io::copy(&mut pipe, &mut io::sink());
                kept
            })
        });
        let outcome = match child.stdout.take() {
            Some(stdout) => {
                let mut reader = BufReader::new(stdout);
                read(&mut reader).and_then(|value| {
                    let complete = reader.fill_buf()?.is_empty();
                    Ok((value, complete))
                })
            }
            None => Err(io::Error::other("git's standard output is not a pipe")),
        };
        if !matches!(outcome, Ok((_, true))) {
            // Stopped early (on purpose, or reading failed): the rest of the output is not
            // wanted.
            let _ = child.kill();
        }
        let status = child.wait();
        let stderr = stderr
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        let status = status.map_err(|e| self.failure(format!("cannot wait for git: {e}")))?;
        let value = match outcome {
            Ok((value, false)) => return Ok(value),
            Ok((value, true)) => value,
            // git failed by itself, which is likely why its output could not be read: say why.
            Err(_) if status.code().is_some_and(|code| code != 0) => {
                return Err(self.error(&Output {
                    status,
                    stdout: Vec::new(),
                    stderr,
                }));
            }
            Err(e) => return Err(self.failure(format!("cannot read git's output: {e}"))),
        };
        if status.success() {
            Ok(value)
        } else {
            Err(self.error(&Output {
                status,
                stdout: Vec::new(),
                stderr,
            }))
        }
    }

    /// Runs the command; a non-zero exit is [`WorkspaceError::Git`]. Answers standard output.
    pub(crate) fn run(&self) -> Result<String, WorkspaceError> {
        let output = self.output()?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(self.error(&output))
        }
    }

    /// Runs the command and answers its standard output as bytes (for `-z` output).
    pub(crate) fn run_bytes(&self) -> Result<Vec<u8>, WorkspaceError> {
        let output = self.output()?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(self.error(&output))
        }
    }

    /// Runs the command for its exit status: 0 is true, 1 is false, anything else an error
    /// (`merge-base --is-ancestor`, `rev-parse --verify --quiet`, `symbolic-ref -q`, ...).
    pub(crate) fn test(&self) -> Result<bool, WorkspaceError> {
        let output = self.output()?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.error(&output)),
        }
    }

    /// Runs the command, answering its trimmed standard output when it exits 0 and `None` when
    /// it exits 1 (`rev-parse --verify --quiet` of a name that does not exist).
    pub(crate) fn maybe(&self) -> Result<Option<String>, WorkspaceError> {
        let output = self.output()?;
        match output.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            )),
            Some(1) => Ok(None),
            _ => Err(self.error(&output)),
        }
    }

    /// The error for a failed run: its error output (or, when empty, its standard output).
    pub(crate) fn error(&self, output: &Output) -> WorkspaceError {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut text = stderr.trim().to_owned();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        if text.is_empty() {
            text = match output.status.code() {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".into(),
            };
        }
        self.failure(tail(&text, ERROR_TAIL))
    }

    fn failure(&self, stderr: String) -> WorkspaceError {
        WorkspaceError::Git {
            dir: self.dir.clone(),
            args: self.args_text(),
            stderr,
        }
    }

    fn args_text(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The last `max` bytes of `text` (at a character boundary), marked when cut.
pub(crate) fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}
