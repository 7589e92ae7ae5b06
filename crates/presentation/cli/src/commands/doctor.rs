//! `maos doctor`: the pre-flight check of what MAOS needs here. Each registered agent's program
//! and the environment variables it names (names only, never values), git and its identity, the
//! repository (of `--repo`, or the one the current directory is in), a free port, the disk and
//! permissions of the data directory, the database (`PRAGMA quick_check`), the daemon and its
//! protocol, and the process containment in force. Each finding is ok, a warning or a problem,
//! with what to do; a problem ends the command with exit 9. It starts no daemon and writes
//! nothing (a data directory that does not exist yet stays so).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use maos_application::{AgentFilter, ReadStore, WorkspaceError, Workspaces};
use maos_domain::{Agent, AgentStatus};
use serde::Serialize;

use crate::compose::DB_FILE;
use crate::daemon::{self, Seen};
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::json;
use crate::output::{Output, Render, Style, paint};

/// The oldest git MAOS works with (`git worktree` with `--no-track`, `merge-tree`-free merges).
const GIT_MIN: (u32, u32) = (2, 25);
/// How long a program may take to answer its version command.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Free space under which the data directory is a warning, and a problem.
const DISK_WARNING_KIB: u64 = 1024 * 1024;
const DISK_PROBLEM_KIB: u64 = 100 * 1024;

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Ok,
    Warning,
    Problem,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

/// One thing `doctor` checked.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// What was checked: `git`, `agent claude: program`, `database`…
    pub(crate) check: String,
    pub(crate) status: Status,
    /// What it found.
    pub(crate) message: String,
    /// What to do about it (none when it is fine).
    pub(crate) fix: Option<String>,
}

fn finding(check: impl Into<String>, status: Status, message: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        status,
        message: message.into(),
        fix: None,
    }
}

impl Finding {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// `maos doctor [--repo DIR]`.
pub(super) fn execute(dir: &Path, repo: Option<&Path>, out: &mut Output) -> Result<(), CliError> {
    let mut findings = Vec::new();
    let exists = dir.is_dir();
    findings.extend(data_directory(dir));
    let agents = if exists {
        findings.extend(database(dir));
        registered_agents(dir)
    } else {
        Ok(Vec::new())
    };
    match agents {
        Ok(agents) => findings.extend(agent_findings(&agents)),
        Err(e) => findings.push(
            finding("agents", Status::Problem, format!("cannot read them: {e}"))
                .fix("see the database finding"),
        ),
    }
    findings.extend(git());
    findings.extend(repository(repo));
    findings.push(port());
    if exists {
        findings.extend(daemon_findings(dir));
    } else {
        findings.push(finding(
            "daemon",
            Status::Ok,
            "not running (there is no data directory yet; the first command makes both)",
        ));
    }
    let report = Report::new(findings);
    let problems = report.problems;
    out.print(&report)?;
    if problems > 0 {
        return Err(CliError::new(
            FailureClass::Unhealthy,
            format!(
                "{problems} problem{} found",
                if problems == 1 { "" } else { "s" }
            ),
        )
        .with_hint("each problem above says what to do")
        .documented());
    }
    Ok(())
}

/// What `doctor` found, for people and as one JSON document.
#[derive(Debug, Serialize)]
struct Report {
    schema_version: u32,
    findings: Vec<Finding>,
    problems: usize,
    warnings: usize,
}

impl Report {
    fn new(findings: Vec<Finding>) -> Self {
        let count = |s| findings.iter().filter(|f| f.status == s).count();
        Report {
            schema_version: json::SCHEMA_VERSION,
            problems: count(Status::Problem),
            warnings: count(Status::Warning),
            findings,
        }
    }
}

impl Render for Report {
    fn document(&self) -> impl Serialize {
        self
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let color = out.color();
        let mut text = String::new();
        for f in &self.findings {
            let word = format!("{:<8}", f.status.word());
            let word = match f.status {
                Status::Ok => paint(color, Style::Green, &word),
                Status::Warning => paint(color, Style::Yellow, &word),
                Status::Problem => paint(color, Style::Red, &word),
            };
            text.push_str(&format!(
                "{word} {}: {}\n",
                f.check,
                escape::line(&f.message)
            ));
            if let Some(fix) = &f.fix {
                text.push_str(&format!("         fix: {}\n", escape::line(fix)));
            }
        }
        text.push_str(&format!(
            "{} problem{}, {} warning{}",
            self.problems,
            if self.problems == 1 { "" } else { "s" },
            self.warnings,
            if self.warnings == 1 { "" } else { "s" }
        ));
        out.text(&text)
    }
}

// ---- the data directory ----

fn data_directory(dir: &Path) -> Vec<Finding> {
    let shown = dir.display().to_string();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![finding(
                "data directory",
                Status::Ok,
                format!("{shown} does not exist yet: the first command creates it (0700)"),
            )];
        }
        Err(e) => {
            return vec![
                finding(
                    "data directory",
                    Status::Problem,
                    format!("{shown} cannot be read: {e}"),
                )
                .fix("choose another with --data-dir or MAOS_DATA_DIR"),
            ];
        }
    };
    let mut found = Vec::new();
    let mine = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if !meta.is_dir() {
        found.push(
            finding(
                "data directory",
                Status::Problem,
                format!("{shown} is not a directory"),
            )
            .fix("choose another with --data-dir or MAOS_DATA_DIR"),
        );
    } else if mine.is_some_and(|uid| uid != meta.uid()) {
        found.push(
            finding(
                "data directory",
                Status::Problem,
                format!("{shown} belongs to uid {}, not to you", meta.uid()),
            )
            .fix("use a data directory of your own (--data-dir or MAOS_DATA_DIR)"),
        );
    } else if meta.permissions().mode() & 0o077 != 0 {
        found.push(
            finding(
                "data directory",
                Status::Warning,
                format!(
                    "{shown} is open to others (mode {:o})",
                    meta.permissions().mode() & 0o777
                ),
            )
            .fix(format!(
                "chmod 700 '{shown}' (MAOS tightens it itself when it next opens it)"
            )),
        );
    } else {
        found.push(finding(
            "data directory",
            Status::Ok,
            format!("{shown}, private (0700)"),
        ));
    }
    found.push(disk(dir));
    found
}

/// The free space under `dir`, from `df`.
fn disk(dir: &Path) -> Finding {
    let out = Command::new("df")
        .args(["-Pk", "--"])
        .arg(dir)
        .stdin(Stdio::null())
        .output();
    let free_kib = out.ok().filter(|o| o.status.success()).and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse::<u64>().ok())
    });
    match free_kib {
        None => finding(
            "disk",
            Status::Warning,
            "cannot tell how much space is free (df failed)",
        ),
        Some(kib) => {
            let said = format!("{} free under the data directory", size(kib));
            if kib < DISK_PROBLEM_KIB {
                finding("disk", Status::Problem, said)
                    .fix("free some space: attempts' logs and worktrees live there")
            } else if kib < DISK_WARNING_KIB {
                finding("disk", Status::Warning, said)
                    .fix("free some space, or `maos gc` the worktrees of finished tasks")
            } else {
                finding("disk", Status::Ok, said)
            }
        }
    }
}

fn size(kib: u64) -> String {
    match kib {
        k if k >= 1024 * 1024 => format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)),
        k if k >= 1024 => format!("{} MiB", k / 1024),
        k => format!("{k} KiB"),
    }
}

// ---- the database ----

fn database(dir: &Path) -> Vec<Finding> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return vec![finding(
            "database",
            Status::Ok,
            "none yet: the first command creates it",
        )];
    }
    match maos_sqlite::SqliteStore::quick_check(&db) {
        Ok(found) if found.is_empty() => vec![finding(
            "database",
            Status::Ok,
            format!("{}: quick_check ok", db.display()),
        )],
        Ok(found) => vec![
            finding(
                "database",
                Status::Problem,
                format!(
                    "{}: quick_check found {}",
                    db.display(),
                    found.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ),
            )
            .fix(format!(
                "stop the daemon (`maos daemon stop`), restore {} from a backup, or move it \
                 away to start afresh",
                db.display()
            )),
        ],
        Err(e) => vec![
            finding("database", Status::Problem, e.to_string())
                .fix(crate::hints::hint(&e).unwrap_or_else(|| "see the message".into())),
        ],
    }
}

fn registered_agents(dir: &Path) -> Result<Vec<Agent>, String> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return Ok(Vec::new());
    }
    let store = maos_sqlite::SqliteStore::open_for_reading(&db).map_err(|e| e.to_string())?;
    store
        .agents(&AgentFilter::default())
        .map_err(|e| e.to_string())
}

// ---- agents ----

fn agent_findings(agents: &[Agent]) -> Vec<Finding> {
    let live: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.status != AgentStatus::Removed)
        .collect();
    if live.is_empty() {
        return vec![
            finding("agents", Status::Warning, "no agent is registered")
                .fix("`maos agent register` (or `--from-file agents.toml`) registers one"),
        ];
    }
    let mut found = Vec::new();
    for a in live {
        let check = |what: &str| format!("agent {}: {what}", a.name);
        if a.status == AgentStatus::Draining {
            found.push(
                finding(
                    check("status"),
                    Status::Warning,
                    format!(
                        "draining{}",
                        a.drained_because
                            .as_deref()
                            .map(|w| format!(": {w}"))
                            .unwrap_or_default()
                    ),
                )
                .fix(format!("`maos agent resume {}` takes it back", a.name)),
            );
        }
        match maos_agents::plan::agent_program(a) {
            Ok(None) => {}
            Ok(Some(words)) => found.extend(program(a, &words, check("program"))),
            Err(e) => found.push(
                finding(check("program"), Status::Problem, e)
                    .fix(format!("register it again with a command that splits into words (`maos agent remove {}` first)", a.name)),
            ),
        }
        let names = a.settings.env.iter().chain(a.settings.api_key_env.iter());
        for name in names {
            // Names only: a value is never read beyond whether there is one.
            if std::env::var_os(name.as_str()).is_none_or(|v| v.is_empty()) {
                found.push(
                    finding(
                        check("environment"),
                        Status::Problem,
                        format!("{} is not set here", name.as_str()),
                    )
                    .fix(format!(
                        "export {} where you start MAOS (the daemon passes it on)",
                        name.as_str()
                    )),
                );
            } else {
                found.push(finding(
                    check("environment"),
                    Status::Ok,
                    format!("{} is set", name.as_str()),
                ));
            }
        }
    }
    found
}

/// The agent's program: found, and (for the CLIs MAOS knows) answering its version command.
fn program(a: &Agent, words: &[String], check: String) -> Vec<Finding> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    let Some(path) = resolve(first) else {
        return vec![
            finding(
                check,
                Status::Problem,
                format!("{first} is not found (not on the PATH, or not executable)"),
            )
            .fix(match a.adapter {
                maos_domain::AdapterKind::ClaudeCode => {
                    "npm install -g @anthropic-ai/claude-code, or name the program with --command"
                }
                maos_domain::AdapterKind::Codex => {
                    "npm install -g @openai/codex, or name the program with --command"
                }
                _ => "install it, or register the agent again with the right --command",
            }),
        ];
    };
    let shown = path.display().to_string();
    if !matches!(
        a.adapter,
        maos_domain::AdapterKind::ClaudeCode | maos_domain::AdapterKind::Codex
    ) {
        return vec![finding(check, Status::Ok, shown)];
    }
    match version_of(&path, &words[1..]) {
        Ok(v) => vec![finding(check, Status::Ok, format!("{shown}: {v}"))],
        Err(e) => vec![
            finding(
                check,
                Status::Problem,
                format!("{shown} does not answer --version: {e}"),
            )
            .fix("run it by hand to see what it needs (a login, a newer Node.js)"),
        ],
    }
}

/// `program` as the daemon would find it: a path, or a name on the `PATH`; executable.
fn resolve(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// The first line `program --version` prints, within [`VERSION_TIMEOUT`].
fn version_of(program: &Path, leading: &[String]) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(leading)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", VERSION_TIMEOUT.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.by_ref().take(4096).read_to_string(&mut text);
    }
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no version printed)")
        .to_owned())
}

// ---- git and the repository ----

fn git() -> Vec<Finding> {
    let out = Command::new("git")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out.map_err(|e| e.to_string()) else {
        return vec![
            finding("git", Status::Problem, "git is not found on the PATH")
                .fix("install git (apt install git)"),
        ];
    };
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let version = said
        .split_whitespace()
        .nth(2)
        .map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
        })
        .unwrap_or((0, 0));
    let mut found = vec![if version >= GIT_MIN {
        finding("git", Status::Ok, said)
    } else {
        finding(
            "git",
            Status::Problem,
            format!("{said}: MAOS needs {}.{} or newer", GIT_MIN.0, GIT_MIN.1),
        )
        .fix("install a newer git")
    }];
    let email = Command::new("git")
        .args(["config", "--global", "user.email"])
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    found.push(if email.is_empty() {
        finding(
            "git identity",
            Status::Warning,
            "no user.email: in a repository without one, MAOS commits its checkpoints as \
             MAOS <maos@localhost>",
        )
        .fix("git config --global user.email you@example.com (and user.name)")
    } else {
        finding("git identity", Status::Ok, email)
    });
    found
}

fn repository(repo: Option<&Path>) -> Vec<Finding> {
    let git = maos_git::GitWorkspaces::new();
    let dir = match repo {
        Some(r) => r.to_path_buf(),
        None => match std::env::current_dir()
            .ok()
            .and_then(|cwd| git.top_level(&cwd).ok())
        {
            Some(top) => top,
            None => {
                return vec![finding(
                    "repository",
                    Status::Ok,
                    "the current directory is in no repository (tasks get an empty folder, or \
                     --repo)",
                )];
            }
        },
    };
    let shown = dir.display().to_string();
    let branch = git.current_branch(&dir).ok().flatten();
    match git.check(&dir, None) {
        Ok(_) => vec![finding(
            "repository",
            Status::Ok,
            format!(
                "{shown}: clean{}",
                branch.map(|b| format!(", on {b}")).unwrap_or_default()
            ),
        )],
        Err(e) => {
            let status = match e {
                WorkspaceError::Dirty { .. } | WorkspaceError::DetachedHead { .. } => {
                    Status::Warning
                }
                _ => Status::Problem,
            };
            let f = finding("repository", status, e.to_string());
            vec![match crate::hints::hint(&e) {
                Some(h) => f.fix(h),
                None => f,
            }]
        }
    }
}

fn port() -> Finding {
    match std::net::TcpListener::bind(("127.0.0.1", 0)) {
        Ok(l) => finding(
            "ports",
            Status::Ok,
            format!(
                "free ports can be had on 127.0.0.1 (one was {}) for tasks that ask (--port)",
                l.local_addr().map(|a| a.port()).unwrap_or(0)
            ),
        ),
        Err(e) => finding(
            "ports",
            Status::Problem,
            format!("no port can be opened on 127.0.0.1: {e}"),
        )
        .fix("tasks created with --port cannot run here"),
    }
}

// ---- the daemon ----

fn daemon_findings(dir: &Path) -> Vec<Finding> {
    match daemon::look(dir) {
        Ok(Seen::NotRunning) => vec![
            finding(
                "daemon",
                Status::Ok,
                "not running: the next command starts it",
            ),
            finding(
                "containment",
                Status::Ok,
                "decided when the daemon starts (a cgroup per attempt where it can make one)",
            ),
        ],
        Ok(Seen::Running(info)) => {
            let mut found = vec![finding(
                "daemon",
                Status::Ok,
                format!(
                    "running (pid {}, version {}, protocol {})",
                    info.pid, info.version, info.protocol
                ),
            )];
            found.push(match info.containment.as_str() {
                "cgroup" => finding(
                    "containment",
                    Status::Ok,
                    "a cgroup v2 per attempt: everything an agent starts dies with it",
                ),
                "process_tree" => finding(
                    "containment",
                    Status::Warning,
                    "the process tree (no cgroup could be made): a process that leaves its \
                     group and clears its environment could outlive its attempt",
                )
                .fix("run the daemon where it may create cgroups (a systemd user session, or a delegated cgroup)"),
                other => finding("containment", Status::Warning, format!("unknown: {other:?}")),
            });
            found
        }
        Ok(Seen::Refused(message)) => vec![
            finding("daemon", Status::Problem, message)
                .fix("`maos daemon stop` with the maos that started it, then run this one"),
        ],
        Err(e) => vec![
            finding("daemon", Status::Problem, e.message.clone()).fix(
                e.hint
                    .clone()
                    .unwrap_or_else(|| "see `maos daemon status`".into()),
            ),
        ],
    }
}
