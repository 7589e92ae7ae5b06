//! The tools MAOS's built-in agent loop ([`crate::openai`]) offers a model, described by JSON
//! Schema and confined to one working directory.
//!
//! # API
//!
//! ```text
//! pub fn definitions() -> Vec<ToolDefinition>        // name, description, JSON Schema parameters
//! ToolDefinition::openai_json(&self) -> Value        // {"type":"function","function":{...}}
//! Tools::new(workdir: &Path, command_timeout: Duration) -> io::Result<Tools>
//! Tools::with_env(self, extra: Vec<(String, String)>) -> Tools
//! Tools::call(&self, name: &str, arguments: &str, stop: &AtomicBool) -> ToolResult
//! Tools::{read_file, write_file, list_dir, run_command, git_diff, resolve}   // typed entry points
//! ```
//!
//! The tools:
//!
//! - `read_file {path}`: the file's text (the first [`READ_CAP`] bytes; binary files refused).
//! - `write_file {path, content}`: creates or replaces the file, creating parent directories.
//! - `list_dir {path?}`: one entry a line, directories with a trailing `/` (default: `.`).
//! - `run_command {command}`: `sh -c <command>` in the working directory, in a process group of
//!   its own, with the configured timeout; stdout and stderr interleaved, capped at
//!   [`OUTPUT_CAP`] (the head and the tail kept, a marker in between), and the exit code.
//! - `git_diff {}`: `git diff HEAD` (or `git diff` before the first commit) plus the untracked
//!   files, capped at [`OUTPUT_CAP`].
//!
//! **Confinement.** Every path a tool takes is relative to the working directory. Absolute paths
//! and `..` components that climb above it are refused before anything touches the disk; then
//! the deepest existing ancestor of the path is canonicalized (so symbolic links, including one
//! that is the target of a `write_file`, are followed) and must still be inside the canonical
//! working directory. A dangling symbolic link is refused too (writing through it would create
//! its target wherever it points). The tools then operate on that resolved path, never on the
//! raw string. `run_command` is *not* confined: a shell can reach anything the process can; the
//! isolation of a command is the worktree, the environment and the process limits the
//! supervisor sets. Its environment is cleared down to [`ENV_ALLOWLIST`] plus what
//! [`Tools::with_env`] adds, so that secrets in the daemon's environment (an API key) do not
//! reach the model.
//!
//! **Errors** never abort the loop: [`Tools::call`] turns every failure into a [`ToolResult`]
//! with `ok: false` whose text starts with `error: ` and says what to do instead, for the model
//! to read (for example `error: path ../x leaves the working directory`).
//!
//! **Killing.** A command that outlives its timeout (or a run that is stopped) is killed with
//! `SIGKILL` sent to its whole process group, so `sh -c 'sleep 30 & sleep 30'` dies entirely.
//! Processes left in the group when the shell exits are killed the same way. The signal is sent
//! with `libc::kill(-pgid, SIGKILL)` through `crate::sys::signal_group` (the crate's one module
//! with `unsafe` code) rather than by spawning `kill -KILL -- -PGID`, which would need a fork
//! exactly when a runaway command may have exhausted the process limit. At a timeout the group
//! is killed before the shell is reaped, so its id cannot have been reused; the leftovers of a
//! shell that exited are killed just after it is reaped (a group id stays reserved while any
//! member lives, so only an already empty group's id could in theory have been reused then).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Most bytes of command output (stdout and stderr together) a tool result keeps: the first and
/// the last half of it, with a marker saying how much was left out in between.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Most bytes of a file `read_file` returns.
pub const READ_CAP: usize = 64 * 1024;

/// Most entries `list_dir` returns.
pub const LIST_CAP: usize = 2000;

/// Environment variables a command inherits from the process running the loop; everything else
/// is cleared (add more with [`Tools::with_env`]).
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ",
];

/// How often a running command is checked for exit, timeout and stop.
const POLL: Duration = Duration::from_millis(20);

/// How long to wait for the output pipe to close once the command's group is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The names of the tools, in the order [`definitions`] lists them.
pub const TOOL_NAMES: [&str; 5] = [
    "read_file",
    "write_file",
    "list_dir",
    "run_command",
    "git_diff",
];

/// One tool as a model sees it: a name, what it does, and its parameters as JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// The function name the model calls.
    pub name: &'static str,
    /// What the tool does, for the model.
    pub description: &'static str,
    /// A JSON Schema (`type: object`) for the arguments.
    pub parameters: Value,
}

impl ToolDefinition {
    /// The entry of an OpenAI chat request's `tools` array:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    pub fn openai_json(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// The tool registry: every tool the loop offers, with its JSON Schema.
pub fn definitions() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "read_file",
            description: "Read a text file of the working directory. Returns its content \
                          (the first 64 KiB of a larger file; use run_command with sed or grep \
                          to see other parts).",
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the working directory."}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        },
        ToolDefinition {
            name: "write_file",
            description: "Create or replace a file of the working directory with the given \
                          content, creating missing parent directories. Write the whole file.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the working directory."},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        },
        ToolDefinition {
            name: "list_dir",
            description: "List a directory of the working directory (not recursive): one entry \
                          a line, directories end with '/'.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory relative to the working directory; default \".\"."}
                },
                "additionalProperties": false
            }),
        },
        ToolDefinition {
            name: "run_command",
            description: "Run a shell command (sh -c) in the working directory, for example to \
                          build or test. Returns the exit code and the combined stdout and stderr \
                          (long output is cut in the middle). The command is killed when it runs \
                          too long; do not start servers or other programs that keep running.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command line."}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        },
        ToolDefinition {
            name: "git_diff",
            description: "Show the changes made so far in the working directory: `git diff` \
                          against the last commit, and the untracked files.",
            parameters: json!({
                "type": "object",
                "properties": {},
                "additionalProperties": false
            }),
        },
    ]
}

/// What one tool call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// Whether the tool did what was asked (for `run_command`: the command ran and exited 0).
    pub ok: bool,
    /// The text sent back to the model (starts with `error: ` when the call failed).
    pub content: String,
    /// One line for logs and events.
    pub summary: String,
    /// The file `write_file` wrote, relative to the working directory (symbolic links resolved).
    pub written: Option<PathBuf>,
}

impl ToolResult {
    fn ok(content: String, summary: String) -> Self {
        ToolResult {
            ok: true,
            content,
            summary,
            written: None,
        }
    }

    fn error(err: &ToolError) -> Self {
        ToolResult {
            ok: false,
            content: format!("error: {err}"),
            summary: format!("error: {err}"),
            written: None,
        }
    }
}

/// Why a tool call failed; the message is what the model reads after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool by that name.
    #[error(
        "there is no tool named {name:?}; the tools are read_file, write_file, list_dir, run_command and git_diff"
    )]
    UnknownTool {
        /// The name the model used.
        name: String,
    },
    /// The arguments are not JSON.
    #[error(
        "the arguments of {tool} are not valid JSON ({reason}): send one JSON object that matches the tool's parameters"
    )]
    BadJson {
        /// The tool called.
        tool: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The arguments are JSON but not an object.
    #[error("the arguments of {tool} must be a JSON object, like {example}")]
    NotObject {
        /// The tool called.
        tool: String,
        /// A valid example.
        example: &'static str,
    },
    /// A required argument is missing or not a string.
    #[error("{tool} needs a string argument {field:?}")]
    MissingField {
        /// The tool called.
        tool: String,
        /// The argument's name.
        field: &'static str,
    },
    /// An empty path.
    #[error("the path is empty: give a path relative to the working directory")]
    EmptyPath,
    /// An absolute path.
    #[error("path {path} is absolute: give a path relative to the working directory")]
    Absolute {
        /// The path as given.
        path: String,
    },
    /// `..` components that climb above the working directory.
    #[error("path {path} leaves the working directory")]
    Escapes {
        /// The path as given.
        path: String,
    },
    /// A symbolic link on the way points outside the working directory, or nowhere.
    #[error(
        "path {path} leaves the working directory through a symbolic link (or goes through a link whose target does not exist)"
    )]
    SymlinkEscape {
        /// The path as given.
        path: String,
    },
    /// The path names a directory where a file is needed.
    #[error("{path} is a directory: use list_dir to see its entries")]
    IsDirectory {
        /// The path as given.
        path: String,
    },
    /// The file holds binary data.
    #[error("{path} is a binary file ({bytes} bytes); read_file only shows text")]
    Binary {
        /// The path as given.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// A file-system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "list", ...).
        action: &'static str,
        /// The path as given.
        path: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The working directory is not in a git repository.
    #[error(
        "the working directory is not a git repository, so there is no diff; use list_dir and read_file"
    )]
    NotGit,
    /// The run was asked to stop while the tool was running (the command was killed).
    #[error("the run was stopped; the command was killed")]
    Stopped,
}

/// The outcome of a command that ran to its end or was killed at its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code, when the command exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it ran past the timeout and was killed.
    pub timed_out: bool,
    /// stdout and stderr interleaved, capped at [`OUTPUT_CAP`] (lossy UTF-8).
    pub output: String,
    /// How many bytes the command wrote in all.
    pub total_bytes: u64,
}

/// The tools, bound to one working directory.
#[derive(Debug, Clone)]
pub struct Tools {
    root: PathBuf,
    command_timeout: Duration,
    extra_env: Vec<(String, String)>,
    /// Where the commands run: the attempt's containment, when the runtime gives one.
    scope: Option<Arc<dyn CommandScope>>,
}

/// How the runtime contains the commands a model runs (the supervisor's containment of the
/// attempt): set up before the spawn, spawned, and everything they left killed once done.
pub trait CommandScope: Send + Sync + std::fmt::Debug {
    /// Prepares `cmd` to run inside the attempt (its own process group included).
    fn prepare(&self, cmd: &mut Command) -> io::Result<()>;
    /// Spawns `cmd`, a child the caller waits for.
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child>;
    /// The command `pid` was waited for: kill whatever it left.
    fn done(&self, pid: u32);
}

/// A path a tool may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Absolute, with every symbolic link of its existing part resolved; inside the root.
    pub absolute: PathBuf,
    /// The same path relative to the (canonical) working directory.
    pub relative: PathBuf,
}

impl Tools {
    /// Tools working in `workdir` (which must be an existing directory; it is canonicalized),
    /// killing commands after `command_timeout`.
    pub fn new(workdir: &Path, command_timeout: Duration) -> io::Result<Tools> {
        let root = fs::canonicalize(workdir)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Tools {
            root,
            command_timeout,
            extra_env: Vec::new(),
            scope: None,
        })
    }

    /// Runs the commands inside `scope` (the attempt's containment).
    pub fn with_scope(mut self, scope: Option<Arc<dyn CommandScope>>) -> Tools {
        self.scope = scope;
        self
    }

    /// Adds environment variables for the commands (on top of [`ENV_ALLOWLIST`]).
    #[must_use]
    pub fn with_env(mut self, extra: Vec<(String, String)>) -> Tools {
        self.extra_env = extra;
        self
    }

    /// The canonical working directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs the tool `name` with `arguments`, the JSON text the model sent (an empty string is
    /// taken as `{}`). Never fails: errors become a result with `ok: false`.
    pub fn call(&self, name: &str, arguments: &str, stop: &AtomicBool) -> ToolResult {
        if !TOOL_NAMES.contains(&name) {
            return ToolResult::error(&ToolError::UnknownTool {
                name: name.to_owned(),
            });
        }
        let args = if arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str::<Value>(arguments) {
                Ok(value) => value,
                Err(e) => {
                    return ToolResult::error(&ToolError::BadJson {
                        tool: name.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        self.call_value(name, &args, stop)
    }

    /// Runs the tool `name` with already parsed arguments.
    pub fn call_value(&self, name: &str, args: &Value, stop: &AtomicBool) -> ToolResult {
        match self.dispatch(name, args, stop) {
            Ok(result) => result,
            Err(err) => ToolResult::error(&err),
        }
    }

    fn dispatch(
        &self,
        name: &str,
        args: &Value,
        stop: &AtomicBool,
    ) -> Result<ToolResult, ToolError> {
        let example = match name {
            "read_file" => r#"{"path": "src/main.rs"}"#,
            "write_file" => r#"{"path": "src/main.rs", "content": "..."}"#,
            "list_dir" => r#"{"path": "src"}"#,
            "run_command" => r#"{"command": "cargo test"}"#,
            "git_diff" => "{}",
            other => {
                return Err(ToolError::UnknownTool {
                    name: other.to_owned(),
                });
            }
        };
        let Some(args) = args.as_object() else {
            return Err(ToolError::NotObject {
                tool: name.to_owned(),
                example,
            });
        };
        let field = |field: &'static str| -> Result<&str, ToolError> {
            args.get(field)
                .and_then(Value::as_str)
                .ok_or(ToolError::MissingField {
                    tool: name.to_owned(),
                    field,
                })
        };
        match name {
            "read_file" => {
                let path = field("path")?;
                let text = self.read_file(path)?;
                let summary = format!("read {path} ({} bytes)", text.len());
                Ok(ToolResult::ok(text, summary))
            }
            "write_file" => {
                let path = field("path")?;
                let content = field("content")?;
                let written = self.write_file(path, content)?;
                let shown = written.display().to_string();
                let mut result = ToolResult::ok(
                    format!("wrote {shown} ({} bytes)", content.len()),
                    format!("wrote {shown} ({} bytes)", content.len()),
                );
                result.written = Some(written);
                Ok(result)
            }
            "list_dir" => {
                let path = match args.get("path") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => {
                        return Err(ToolError::MissingField {
                            tool: name.to_owned(),
                            field: "path",
                        });
                    }
                };
                let listing = self.list_dir(path)?;
                let entries = listing.lines().count();
                Ok(ToolResult::ok(
                    listing,
                    format!("listed {} ({entries} lines)", path.unwrap_or(".")),
                ))
            }
            "run_command" => {
                let command = field("command")?;
                let out = self.run_command(command, stop)?;
                Ok(command_result(&out, self.command_timeout))
            }
            _ => {
                let diff = self.git_diff(stop)?;
                let summary = format!("git diff ({} bytes)", diff.len());
                Ok(ToolResult::ok(diff, summary))
            }
        }
    }

    /// Resolves `path` (relative to the working directory) to a path inside it, or says why not.
    /// See the module documentation for the rules.
    pub fn resolve(&self, path: &str) -> Result<Resolved, ToolError> {
        if path.is_empty() {
            return Err(ToolError::EmptyPath);
        }
        let raw = Path::new(path);
        if raw.has_root() {
            return Err(ToolError::Absolute {
                path: path.to_owned(),
            });
        }
        let mut lexical = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if !lexical.pop() {
                        return Err(ToolError::Escapes {
                            path: path.to_owned(),
                        });
                    }
                }
                Component::Normal(part) => lexical.push(part),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(ToolError::Absolute {
                        path: path.to_owned(),
                    });
                }
            }
        }
        // The deepest ancestor that exists (a dangling symbolic link counts as existing).
        let mut existing = self.root.join(&lexical);
        let mut missing = Vec::new();
        loop {
            match fs::symlink_metadata(&existing) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let Some(name) = existing.file_name().map(ToOwned::to_owned) else {
                        return Err(ToolError::Io {
                            action: "find",
                            path: path.to_owned(),
                            source: e,
                        });
                    };
                    missing.push(name);
                    if !existing.pop() || !existing.starts_with(&self.root) {
                        return Err(ToolError::Io {
                            action: "find",
                            path: path.to_owned(),
                            source: e,
                        });
                    }
                }
                Err(e) => {
                    return Err(ToolError::Io {
                        action: "find",
                        path: path.to_owned(),
                        source: e,
                    });
                }
            }
        }
        let Ok(canonical) = fs::canonicalize(&existing) else {
            return Err(ToolError::SymlinkEscape {
                path: path.to_owned(),
            });
        };
        if !canonical.starts_with(&self.root) {
            return Err(ToolError::SymlinkEscape {
                path: path.to_owned(),
            });
        }
        let mut absolute = canonical;
        absolute.extend(missing.iter().rev());
        let relative = absolute
            .strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Resolved { absolute, relative })
    }

    /// `read_file`: the text of a file (the first [`READ_CAP`] bytes, with a marker if cut).
    pub fn read_file(&self, path: &str) -> Result<String, ToolError> {
        let resolved = self.resolve(path)?;
        let io_err = |source| ToolError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(&resolved.absolute).map_err(io_err)?;
        if meta.is_dir() {
            return Err(ToolError::IsDirectory {
                path: path.to_owned(),
            });
        }
        let file = fs::File::open(&resolved.absolute).map_err(io_err)?;
        let mut bytes = Vec::new();
        file.take(READ_CAP as u64)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.contains(&0) {
            return Err(ToolError::Binary {
                path: path.to_owned(),
                bytes: meta.len(),
            });
        }
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if meta.len() > READ_CAP as u64 {
            let _ = write!(
                text,
                "\n[... cut: the file has {} bytes and read_file shows the first {READ_CAP}; \
                 use run_command with sed -n or grep to see the rest]",
                meta.len()
            );
        }
        Ok(text)
    }

    /// `write_file`: creates or replaces a file (and its missing parent directories); returns
    /// its path relative to the working directory.
    pub fn write_file(&self, path: &str, content: &str) -> Result<PathBuf, ToolError> {
        let resolved = self.resolve(path)?;
        let io_err = |source| ToolError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        };
        if resolved.relative.as_os_str().is_empty() || resolved.absolute.is_dir() {
            return Err(ToolError::IsDirectory {
                path: path.to_owned(),
            });
        }
        if let Some(parent) = resolved.absolute.parent() {
            fs::create_dir_all(parent).map_err(io_err)?;
        }
        fs::write(&resolved.absolute, content).map_err(io_err)?;
        Ok(resolved.relative)
    }

    /// `list_dir`: the entries of a directory (default: the working directory), sorted, one a
    /// line; directories end with `/`, symbolic links show their target.
    pub fn list_dir(&self, path: Option<&str>) -> Result<String, ToolError> {
        let shown = path.unwrap_or(".");
        let resolved = self.resolve(shown)?;
        let io_err = |source| ToolError::Io {
            action: "list",
            path: shown.to_owned(),
            source,
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(&resolved.absolute).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let line = match entry.file_type() {
                Ok(t) if t.is_dir() => format!("{name}/"),
                Ok(t) if t.is_symlink() => match fs::read_link(entry.path()) {
                    Ok(target) => format!("{name} -> {}", target.display()),
                    Err(_) => format!("{name} -> ?"),
                },
                Ok(_) => match entry.metadata() {
                    Ok(meta) => format!("{name} ({} bytes)", meta.len()),
                    Err(_) => name,
                },
                Err(_) => name,
            };
            entries.push(line);
        }
        entries.sort();
        let total = entries.len();
        entries.truncate(LIST_CAP);
        let mut listing = entries.join("\n");
        if total > LIST_CAP {
            let _ = write!(
                listing,
                "\n[... {} more entries not shown]",
                total - LIST_CAP
            );
        }
        if total == 0 {
            listing.push_str("(empty directory)");
        }
        Ok(listing)
    }

    /// `run_command`: `sh -c command` in the working directory, killed with its whole process
    /// group after the timeout or when `stop` is set (then [`ToolError::Stopped`]).
    pub fn run_command(
        &self,
        command: &str,
        stop: &AtomicBool,
    ) -> Result<CommandOutput, ToolError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command);
        self.run_captured(cmd, "sh", stop)
    }

    /// `git_diff`: the changes against the last commit (or the index, before the first commit)
    /// and the untracked files, capped at [`OUTPUT_CAP`].
    pub fn git_diff(&self, stop: &AtomicBool) -> Result<String, ToolError> {
        let git = |args: &[&str]| -> Result<CommandOutput, ToolError> {
            let mut cmd = Command::new("git");
            cmd.args(["-c", "core.quotepath=off", "--no-pager"])
                .args(args);
            self.run_captured(cmd, "git", stop)
        };
        let inside = git(&["rev-parse", "--is-inside-work-tree"])?;
        if inside.exit_code != Some(0) {
            return Err(ToolError::NotGit);
        }
        let mut diff = git(&["diff", "--no-color", "--no-ext-diff", "HEAD", "--"])?;
        if diff.exit_code != Some(0) {
            // No commit yet: compare with the index instead.
            diff = git(&["diff", "--no-color", "--no-ext-diff", "--"])?;
        }
        let untracked = git(&["ls-files", "--others", "--exclude-standard"])?;
        let mut text = if diff.output.trim().is_empty() {
            "(no changes to tracked files)\n".to_owned()
        } else {
            diff.output
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if untracked.output.trim().is_empty() {
            text.push_str("(no untracked files)\n");
        } else {
            text.push_str("untracked files:\n");
            text.push_str(&untracked.output);
        }
        Ok(cap_text(&text, OUTPUT_CAP))
    }

    /// Runs `cmd` in the working directory with a cleaned environment, stdout and stderr into
    /// one pipe, in its own process group, bounded by the timeout and `stop`.
    fn run_captured(
        &self,
        mut cmd: Command,
        program: &'static str,
        stop: &AtomicBool,
    ) -> Result<CommandOutput, ToolError> {
        let spawn_err = |source| ToolError::Spawn { program, source };
        let (reader, writer) = io::pipe().map_err(spawn_err)?;
        cmd.current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(spawn_err)?)
            .stderr(writer)
            .env_clear()
            .env("GIT_TERMINAL_PROMPT", "0");
        for key in ENV_ALLOWLIST {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        for (key, value) in &self.extra_env {
            cmd.env(key, value);
        }
        match &self.scope {
            Some(scope) => scope.prepare(&mut cmd).map_err(spawn_err)?,
            None => {
                cmd.process_group(0);
            }
        }
        let spawned = match &self.scope {
            Some(scope) => scope.spawn(&mut cmd),
            None => cmd.spawn(),
        };
        // The command holds the pipe's write ends: drop them, or the reader never sees EOF.
        drop(cmd);
        let mut child = spawned.map_err(spawn_err)?;
        let capture = Arc::new(Mutex::new(Capture::new(OUTPUT_CAP)));
        let (done_tx, done_rx) = mpsc::channel();
        {
            let capture = Arc::clone(&capture);
            let mut reader = reader;
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => match capture.lock() {
                            Ok(mut c) => c.push(&buf[..n]),
                            Err(_) => break,
                        },
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = done_tx.send(());
            });
        }
        let deadline = Instant::now() + self.command_timeout;
        let (status, timed_out, stopped) = wait_bounded(&mut child, deadline, stop);
        // Whatever the shell left running (background jobs, in its group or not) goes too.
        match &self.scope {
            Some(scope) => scope.done(child.id()),
            None => kill_process_group(child.id()),
        }
        let _ = done_rx.recv_timeout(DRAIN_GRACE);
        if stopped {
            return Err(ToolError::Stopped);
        }
        let (output, total_bytes) = match capture.lock() {
            Ok(c) => (c.render(), c.total),
            Err(_) => (String::new(), 0),
        };
        Ok(CommandOutput {
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            timed_out,
            output,
            total_bytes,
        })
    }
}

/// Waits for `child` until it exits, the deadline passes or `stop` is set; kills its process
/// group in the last two cases (before reaping it, so the group id cannot have been reused).
/// Returns the exit status (if it could be collected), whether it timed out, whether stopped.
fn wait_bounded(
    child: &mut Child,
    deadline: Instant,
    stop: &AtomicBool,
) -> (Option<ExitStatus>, bool, bool) {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Some(status), false, false),
            Ok(None) => {}
            Err(_) => {
                kill_process_group(child.id());
                return (child.wait().ok(), false, false);
            }
        }
        let stopped = stop.load(Ordering::Relaxed);
        if stopped || Instant::now() >= deadline {
            kill_process_group(child.id());
            let status = child.wait().ok();
            return (status, !stopped, stopped);
        }
        thread::sleep(POLL);
    }
}

/// Sends `SIGKILL` to the process group `pgid` (a child started with `process_group(0)`, whose
/// group id is its pid), through the crate's one module of system calls (which refuses ids 0
/// and 1). A group that is already gone is fine; any other failure leaves nothing to do but go on.
fn kill_process_group(pgid: u32) {
    let _ = crate::sys::signal_group(pgid, libc::SIGKILL);
}

/// The text a `run_command` result gives the model.
fn command_result(out: &CommandOutput, timeout: Duration) -> ToolResult {
    let mut content = String::new();
    let ok;
    if out.timed_out {
        ok = false;
        let _ = writeln!(
            content,
            "error: the command timed out after {} and was killed, with every process it started; \
             make it faster, run less at once, or do not start programs that keep running",
            human_duration(timeout)
        );
    } else if let Some(code) = out.exit_code {
        ok = code == 0;
        let _ = writeln!(content, "exit code: {code}");
    } else {
        ok = false;
        let _ = writeln!(content, "killed by signal {}", out.signal.unwrap_or(0));
    }
    if out.output.is_empty() {
        content.push_str("(no output)");
    } else {
        let _ = writeln!(
            content,
            "output (stdout and stderr, {} bytes):",
            out.total_bytes
        );
        content.push_str(&out.output);
    }
    let summary = if out.timed_out {
        format!("timed out after {}", human_duration(timeout))
    } else if let Some(code) = out.exit_code {
        format!("exit code {code}, {} bytes of output", out.total_bytes)
    } else {
        format!("killed by signal {}", out.signal.unwrap_or(0))
    };
    ToolResult {
        ok,
        content,
        summary,
        written: None,
    }
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Cuts `text` to about `cap` bytes, keeping the head and the tail (on character boundaries).
fn cap_text(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let mut capture = Capture::new(cap);
    capture.push(text.as_bytes());
    capture.render()
}

/// Command output kept within a cap: the first half as it came, the last half as a ring.
#[derive(Debug)]
struct Capture {
    half: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    fn new(cap: usize) -> Self {
        let half = cap / 2;
        Capture {
            half,
            head: Vec::with_capacity(half.min(8192)),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.half - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            let _ = write!(
                text,
                "\n[... {} bytes of output cut here; {} bytes in all ...]\n",
                self.total - kept,
                self.total
            );
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}
