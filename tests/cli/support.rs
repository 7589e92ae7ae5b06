//! The harness: a fresh data directory per test, a way to run the real `maos` binary in it, and
//! transcripts of runs with ids, times and paths replaced by stable placeholders for snapshots.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// The outcome of one run of `maos`.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) args: Vec<String>,
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Stdout parsed as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// The environment variable that selects how the suite's `maos` runs reach the database:
/// `daemon` (the default: through the daemon, started on first need) or `in-process`
/// (`MAOS_NO_DAEMON=1`). The suite runs in both (see `main.rs`), with the same snapshots.
pub(crate) const TRANSPORT_ENV: &str = "MAOS_TEST_TRANSPORT";

/// True when this run of the suite works in process.
pub(crate) fn in_process() -> bool {
    std::env::var(TRANSPORT_ENV).is_ok_and(|t| t == "in-process")
}

/// A data directory and the runs made in it.
#[derive(Debug)]
pub(crate) struct Env {
    dir: TempDir,
    /// `XDG_RUNTIME_DIR` of this test's runs: its daemon's socket lives here.
    runtime: TempDir,
    recorded: RefCell<Vec<Run>>,
    /// Full ids and their placeholders, in order of first appearance in the event log.
    names: RefCell<Vec<(String, String)>>,
    /// Extra replacements a test asks for (applied first).
    extra: RefCell<Vec<(String, String)>>,
    /// Arguments shown differently in transcripts.
    aliases: RefCell<Vec<(String, String)>>,
}

impl Env {
    /// A fresh, empty data directory.
    pub(crate) fn new() -> Self {
        // Private, as maos makes a data directory (it tightens and warns about an open one).
        let dir = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .unwrap();
        Env {
            dir,
            runtime: tempfile::tempdir().unwrap(),
            recorded: RefCell::new(Vec::new()),
            names: RefCell::new(Vec::new()),
            extra: RefCell::new(Vec::new()),
            aliases: RefCell::new(Vec::new()),
        }
    }

    /// Writes the data directory's `config.toml` (before the daemon starts: it reads it then).
    pub(crate) fn config(&self, text: &str) {
        std::fs::write(self.dir().join("config.toml"), text).unwrap();
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The runtime directory (`XDG_RUNTIME_DIR`) of this test's runs.
    pub(crate) fn runtime_dir(&self) -> &Path {
        self.runtime.path()
    }

    /// The database file.
    pub(crate) fn db(&self) -> PathBuf {
        self.dir().join("maos.db")
    }

    /// A `maos` command in this data directory, with a clean environment for colour and width.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        Command::from_std(self.std_command(args))
    }

    /// The same as a plain `std::process::Command`, for runs that stream their output.
    pub(crate) fn std_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_maos"));
        for var in [
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "COLUMNS",
            "MAOS_DATA_DIR",
            "MAOS_NO_DAEMON",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        if in_process() {
            cmd.env("MAOS_NO_DAEMON", "1");
        }
        cmd.env("XDG_RUNTIME_DIR", self.runtime.path());
        // The same on every machine: no `claude` or `codex` of the person running the tests
        // (the tests that drive them name their binaries).
        cmd.env("PATH", path_without_agent_clis());
        // Outside any repository (the tests' own working directory is in MAOS's checkout, which
        // `task create` would otherwise take as the repository to work in).
        cmd.current_dir(self.runtime.path());
        cmd.env("MAOS_DATA_DIR", self.dir()).args(args);
        cmd
    }

    fn exec(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        self.exec_within(args, stdin, env, None)
    }

    fn exec_within(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
        timeout: Option<std::time::Duration>,
    ) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(input) = stdin {
            cmd.write_stdin(input.to_owned());
        }
        if let Some(timeout) = timeout {
            cmd.timeout(timeout);
        }
        let out = cmd.output().unwrap();
        Run {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs `maos` in the directory `cwd`, as a person standing in it.
    pub(crate) fn maos_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.current_dir(cwd);
        let out = cmd.output().unwrap();
        Run {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs `maos` without recording it.
    pub(crate) fn maos(&self, args: &[&str]) -> Run {
        self.exec(args, None, &[])
    }

    /// Runs `maos` with `--json`, expects success, and returns the document.
    pub(crate) fn ok_json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let run = self.maos(&all);
        assert_eq!(run.code, 0, "{all:?} failed:\n{}{}", run.stdout, run.stderr);
        run.json()
    }

    /// Runs `maos` and records the run for [`Env::transcript`].
    pub(crate) fn step(&self, args: &[&str]) -> Run {
        self.record(self.exec(args, None, &[]))
    }

    /// Like [`Env::step`], with this on standard input.
    pub(crate) fn step_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.record(self.exec(args, Some(stdin), &[]))
    }

    /// Like [`Env::step_stdin`] (`stdin` may be `None`) with extra environment variables, for
    /// input that could make `maos` block: a run still going after 30 seconds is killed and
    /// recorded with exit code -1, so that the test fails instead of hanging.
    pub(crate) fn step_bounded(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Run {
        let timeout = std::time::Duration::from_secs(30);
        self.record(self.exec_within(args, stdin, env, Some(timeout)))
    }

    /// Runs `maos` with extra environment variables, without recording it.
    pub(crate) fn maos_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.exec(args, None, env)
    }

    fn record(&self, run: Run) -> Run {
        self.recorded.borrow_mut().push(run.clone());
        run
    }

    /// Registers an agent (not recorded).
    pub(crate) fn agent(&self, name: &str, capabilities: &str) {
        let mut args = vec!["agent", "register", name, "--adapter", "external"];
        if !capabilities.is_empty() {
            args.extend(["--capability", capabilities]);
        }
        self.ok_json(&args);
    }

    /// Creates a task (not recorded) and returns its full id.
    pub(crate) fn task(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["task", "create", title];
        args.extend(extra);
        let doc = self.ok_json(&args);
        doc["task"]["id"].as_str().unwrap().to_owned()
    }

    /// Everything the database holds, as the CLI reports it: the event log, every task, every
    /// agent (removed ones too) and every orchestration.
    pub(crate) fn state(&self) -> String {
        let mut agents = vec!["agent", "list"];
        for s in ["available", "busy", "draining", "offline", "removed"] {
            agents.extend(["--status", s]);
        }
        [
            vec!["events", "--limit", "10000"],
            vec!["task", "list", "--limit", "10000"],
            agents,
            vec!["orchestrate", "list"],
        ]
        .iter()
        .map(|args| self.ok_json(args).to_string())
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// The sequence number of the newest event.
    pub(crate) fn last_seq(&self) -> u64 {
        self.ok_json(&["status"])["last_event"].as_u64().unwrap()
    }

    /// Replace `from` by `to` in transcripts (before ids are replaced).
    pub(crate) fn replace(&self, from: &str, to: &str) {
        self.extra
            .borrow_mut()
            .push((from.to_owned(), to.to_owned()));
    }

    /// Show the argument `arg` as `shown` in transcripts.
    pub(crate) fn alias(&self, arg: &str, shown: &str) {
        self.aliases
            .borrow_mut()
            .push((arg.to_owned(), shown.to_owned()));
    }

    /// Learns the ids in the event log and names them `task-1`, `agnt-1`, `orch-1`, ... in order.
    fn learn_ids(&self) {
        if !self.db().exists() {
            return;
        }
        let run = self.maos(&["events", "--limit", "10000", "--json"]);
        if run.code != 0 {
            return;
        }
        let doc = run.json();
        let mut names = self.names.borrow_mut();
        for e in doc["events"].as_array().unwrap() {
            let id = e["aggregate_id"].as_str().unwrap().to_owned();
            if names.iter().any(|(full, _)| *full == id) {
                continue;
            }
            let prefix = match e["aggregate"].as_str().unwrap() {
                "agent" => "agnt",
                "task" => "task",
                "memory" => "memo",
                _ => "orch",
            };
            let n = names.iter().filter(|(_, l)| l.starts_with(prefix)).count() + 1;
            names.push((id, format!("{prefix}-{n}")));
        }
    }

    /// Text with the data directory, ids and times replaced by placeholders.
    pub(crate) fn normalize(&self, text: &str) -> String {
        self.learn_ids();
        let mut s = text.replace(&self.dir().display().to_string(), "<data-dir>");
        for (from, to) in self.extra.borrow().iter() {
            s = s.replace(from, to);
        }
        let names = self.names.borrow();
        for (full, label) in names.iter() {
            s = s.replace(full, &format!("<{label}>"));
        }
        for (full, label) in names.iter() {
            s = s.replace(&full[..8], &format!("[{label}]"));
        }
        replace_ms(&replace_times(&s))
    }

    /// `<task-1:4>` for an argument that is a 4-to-24-character prefix of the id of `task-1`.
    fn prefix_name(&self, arg: &str) -> Option<String> {
        if !(4..25).contains(&arg.len()) {
            return None;
        }
        let names = self.names.borrow();
        let (_, label) = names.iter().find(|(full, _)| full.starts_with(arg))?;
        Some(format!("<{label}:{}>", arg.len()))
    }

    /// The recorded runs since the last transcript, normalized, for a snapshot.
    pub(crate) fn transcript(&self) -> String {
        let runs: Vec<Run> = self.recorded.borrow_mut().drain(..).collect();
        self.learn_ids();
        let mut out = String::new();
        for run in runs {
            let args: Vec<String> = run
                .args
                .iter()
                .map(|a| {
                    let aliases = self.aliases.borrow();
                    if let Some((_, shown)) = aliases.iter().find(|(arg, _)| arg == a) {
                        shown.clone()
                    } else if let Some(prefix) = self.prefix_name(a) {
                        prefix
                    } else if a.is_empty() || a.contains(char::is_whitespace) {
                        format!("'{a}'")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            out.push_str(&format!(
                "$ maos {}\nexit: {}\n--- stdout\n{}--- stderr\n{}\n",
                args.join(" "),
                run.code,
                run.stdout,
                run.stderr
            ));
        }
        self.normalize(&out)
    }
}

/// Replaces RFC 3339 times (`2026-11-21T05:33:18.123Z`) by a same-width placeholder.
impl Drop for Env {
    fn drop(&mut self) {
        // Stop this test's daemon, if one was started (a test may start one even in process, by
        // running `maos` by hand), so that none outlives the suite.
        let _ = self.command(&["daemon", "stop", "-q"]).output();
    }
}

fn replace_times(s: &str) -> String {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let window = bytes.get(i..i + PATTERN.len());
        let is_time = window.is_some_and(|w| {
            w.iter().zip(PATTERN).all(|(c, p)| match p {
                b'd' => c.is_ascii_digit(),
                _ => c == p,
            })
        });
        if is_time {
            out.extend_from_slice(b"YYYY-MM-DDThh:mm:ss.sssZ");
            i += PATTERN.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Replaces runs of exactly 13 digits (milliseconds since the epoch) by `<ms>`.
fn replace_ms(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut digits = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() == 13 {
            out.push_str("<ms>");
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[test]
fn placeholders_replace_times_and_millis() {
    assert_eq!(
        replace_times("at 2026-11-21T05:33:18.123Z."),
        "at YYYY-MM-DDThh:mm:ss.sssZ."
    );
    assert_eq!(
        replace_ms("a 1795239777965.x 12 12345678901234"),
        "a <ms>.x 12 12345678901234"
    );
}

/// `PATH` without the directories that hold a `claude` or `codex` program (npm's global `bin`,
/// typically), except the system's own (`/usr/bin`, `/bin`), which the tests need.
pub(crate) fn path_without_agent_clis() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let system = [Path::new("/usr/bin"), Path::new("/bin")];
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| {
            system.contains(&dir.as_path())
                || !["claude", "codex"].iter().any(|p| dir.join(p).exists())
        })
        .collect();
    std::env::join_paths(kept).unwrap_or(path)
}
