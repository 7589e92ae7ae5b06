//! Fixtures of the end-to-end tests that need git repositories and agents the daemon runs:
//! throwaway repositories, agent scripts, waiting for a task to reach a state.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::Env;

// ---- git ----

/// `git` in `dir`, without any variable that would point it at another repository.
pub(crate) fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C").arg("-C").arg(dir).args(args);
    cmd
}

/// Runs git in `dir`, expects success, and returns its stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// True when git succeeds in `dir`.
pub(crate) fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_command(dir, args).output().unwrap().status.success()
}

/// A path with symbolic links resolved, for comparing what git and MAOS print.
pub(crate) fn real(path: impl AsRef<Path>) -> PathBuf {
    std::fs::canonicalize(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// A fresh git repository in a temporary directory, on `main`, with one commit holding
/// `README.md`.
pub(crate) struct Repo {
    pub(crate) dir: TempDir,
}

pub(crate) const README: &str = "# A project\n";

impl Repo {
    pub(crate) fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "commit.gpgSign", "false"]);
        repo.write("README.md", README);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    pub(crate) fn path(&self) -> PathBuf {
        real(self.dir.path())
    }

    pub(crate) fn arg(&self) -> String {
        self.path().to_str().unwrap().to_owned()
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(self.dir.path(), args)
    }

    pub(crate) fn git_ok(&self, args: &[&str]) -> bool {
        git_ok(self.dir.path(), args)
    }

    pub(crate) fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// The commit `rev` names.
    pub(crate) fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", rev]).trim().to_owned()
    }

    /// What `git status --porcelain` lists in the main working tree.
    pub(crate) fn status(&self) -> String {
        self.git(&["status", "--porcelain", "--untracked-files=all"])
    }

    /// The file `name` as the commit `rev` holds it, if it does.
    pub(crate) fn show(&self, rev: &str, name: &str) -> Option<String> {
        let out = git_command(self.dir.path(), &["show", &format!("{rev}:{name}")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    /// True when `commit` is contained in `into`.
    pub(crate) fn contains(&self, into: &str, commit: &str) -> bool {
        self.git_ok(&["merge-base", "--is-ancestor", commit, into])
    }

    /// The directories of every worktree git knows, the main one first.
    pub(crate) fn worktrees(&self) -> Vec<PathBuf> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(PathBuf::from)
            .collect()
    }

    /// The local branches.
    pub(crate) fn branches(&self) -> Vec<String> {
        self.git(&["branch", "--format=%(refname:short)"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Asserts that the user's side is untouched: on `main` at `head`, nothing uncommitted,
    /// README.md as `Repo::new` wrote it.
    pub(crate) fn assert_untouched(&self, head: &str) {
        assert_eq!(
            self.git(&["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/main"
        );
        assert_eq!(self.rev("HEAD"), head);
        assert_eq!(self.rev("refs/heads/main"), head);
        assert_eq!(self.status(), "", "the user's working tree changed");
        assert_eq!(self.read("README.md"), README);
    }
}

// ---- maos ----

/// Writes an agent script (POSIX sh) into `dir` and returns the command that runs it.
pub(crate) fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}")).unwrap();
    format!("sh {}", path.display())
}

/// Registers a `command` agent running `command` (its prompt in `$MAOS_PROMPT_FILE`).
pub(crate) fn command_agent(env: &Env, name: &str, slots: u32, command: &str) {
    register_command(env, name, &[], slots, command);
}

/// Creates an orchestration working in `repo`; answers its id and integration branch.
pub(crate) fn orchestration(env: &Env, repo: &Repo, extra: &[&str]) -> (String, String) {
    let repo = repo.arg();
    let mut args = vec!["orchestrate", "create", "Integrate", "--repo", &repo];
    args.extend(extra);
    let doc = env.ok_json(&args);
    let o = &doc["orchestration"];
    let id = o["id"].as_str().unwrap().to_owned();
    // Its tasks get agents once it runs.
    assert_eq!(
        env.ok_json(&["orchestrate", "start", &id])["orchestration"]["status"],
        "running"
    );
    let branch = o["integration_branch"].as_str().unwrap().to_owned();
    assert_eq!(branch, format!("maos/orch-{}", &id[..8]));
    (id, branch)
}

/// Creates a task and answers its document.
pub(crate) fn create(env: &Env, title: &str, extra: &[&str]) -> Value {
    let mut args = vec!["task", "create", title];
    args.extend(extra);
    env.ok_json(&args)["task"].clone()
}

/// Runs a `task create` command line, expects success, and answers the task's id.
pub(crate) fn create_ok(env: &Env, args: &[&str]) -> String {
    env.ok_json(args)["task"]["id"].as_str().unwrap().to_owned()
}

pub(crate) fn id_of(task: &Value) -> String {
    task["id"].as_str().unwrap().to_owned()
}

/// Waits until `task show --json` satisfies `done`, and returns the task.
pub(crate) fn wait_for(env: &Env, task: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = env.ok_json(&["task", "show", task]);
        if done(&doc["task"]) {
            return doc["task"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {task} never became {what}: {doc:#}\nlogs:\n{}",
            env.maos(&["task", "logs", task]).stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the task is in `state`.
pub(crate) fn wait_state(env: &Env, task: &str, state: &str) -> Value {
    wait_for(env, task, state, |t| t["state"] == state)
}

/// Waits until the task stops moving on its own (completed, blocked, cancelled or waiting for a
/// person), and asserts that it is in `state`.
pub(crate) fn settle(env: &Env, task: &str, state: &str) -> Value {
    let t = wait_for(env, task, "settled", |t| {
        matches!(
            t["state"].as_str(),
            Some("completed" | "blocked" | "cancelled" | "awaiting_approval")
        )
    });
    assert_eq!(
        t["state"],
        state,
        "{t:#}\nlogs:\n{}",
        env.maos(&["task", "logs", task]).stdout
    );
    t
}

/// The `data` of the task's one event of `kind`.
pub(crate) fn event_data(env: &Env, task: &str, kind: &str) -> Value {
    let doc = env.ok_json(&["events", "--limit", "10000"]);
    let found: Vec<&Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["aggregate_id"] == task && e["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "events {kind} of {task}: {found:#?}");
    found[0]["data"].clone()
}

/// A line of an NDJSON stream, checked to begin with `"schema_version":1` and `"type"` `kind`;
/// answers its other fields (what the line carried before lines were tagged).
pub(crate) fn line_of(line: &str, kind: &str) -> Value {
    let head = format!("{{\"schema_version\":1,\"type\":\"{kind}\",");
    assert!(
        line.starts_with(&head),
        "a line of a stream starts with {head}: {line}"
    );
    let mut v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"));
    let fields = v.as_object_mut().unwrap();
    fields.remove("schema_version");
    fields.remove("type");
    v
}

/// The `type` of a line of an NDJSON stream (which says what the line is).
pub(crate) fn type_of(line: &Value) -> &str {
    assert_eq!(line["schema_version"], 1, "{line}");
    str_of(&line["type"], "type")
}

pub(crate) fn short(id: &str) -> &str {
    &id[..8]
}

pub(crate) fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// The task's worktree and branch, checked against where and how MAOS promises to make them.
pub(crate) fn worktree_of(env: &Env, task: &Value) -> (PathBuf, String) {
    let id = id_of(task);
    let ws = &task["workspace"];
    let branch = str_of(&ws["branch"], "workspace.branch").to_owned();
    assert_eq!(branch, format!("maos/{}", short(&id)));
    let path = PathBuf::from(str_of(&ws["path"], "workspace.path"));
    assert_eq!(path, real(env.dir()).join("worktrees").join(&id));
    (path, branch)
}

pub(crate) fn tasks_listed(env: &Env) -> usize {
    env.ok_json(&["task", "list"])["tasks"]
        .as_array()
        .unwrap()
        .len()
}

/// Registers a `command` agent of `tier` offering `capabilities` (comma-separated), with `slots`
/// slots, its prompt in a file.
pub(crate) fn tiered_agent(
    env: &Env,
    name: &str,
    capabilities: &str,
    tier: &str,
    slots: u32,
    command: &str,
) {
    register_command(
        env,
        name,
        &["--capability", capabilities, "--tier", tier],
        slots,
        command,
    );
}

/// `maos agent register NAME --adapter command --command COMMAND` with `extra` options, its
/// prompt in a file and a timeout of a minute.
fn register_command(env: &Env, name: &str, extra: &[&str], slots: u32, command: &str) {
    let slots = slots.to_string();
    let mut args = vec![
        "agent",
        "register",
        name,
        "--adapter",
        "command",
        "--command",
        command,
        "--prompt-via",
        "file",
        "--slots",
        &slots,
        "--timeout",
        "1m",
    ];
    args.extend(extra);
    env.ok_json(&args);
}

/// Every event of the log (the first 10,000).
pub(crate) fn events(env: &Env) -> Vec<Value> {
    env.ok_json(&["events", "--limit", "10000"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// Asserts that attempts `a` and `b` ran at the same time for a while: each started before the
/// other ended (times are RFC 3339 in UTC with milliseconds, so they compare as text).
pub(crate) fn assert_overlap(a: &Value, b: &Value) {
    for (x, y) in [(a, b), (b, a)] {
        assert!(
            str_of(&x["started_at"], "started_at") < str_of(&y["ended_at"], "ended_at"),
            "the attempts did not overlap:\n{a:#}\n{b:#}"
        );
    }
}

/// Runs `maos <args>` on a pseudo-terminal (util-linux `script`), typing `answer` once it asks;
/// answers the exit code and everything the terminal showed.
pub(crate) fn on_a_terminal(env: &Env, args: &[&str], answer: &str) -> (i32, String) {
    // The same environment as every other run, on a terminal: `script` runs the command line
    // with the shell, so each word is quoted.
    let inner = env.std_command(args);
    let mut line = format!("'{}'", inner.get_program().to_str().unwrap());
    for a in inner.get_args() {
        line.push_str(&format!(
            " '{}'",
            a.to_str().unwrap().replace('\'', "'\\''")
        ));
    }
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    // What maos itself shows, not a pager's screen (the pager has its own tests, conventions.rs).
    cmd.env("MAOS_PAGER", "");
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (it gives the command a terminal)");
    // The question comes after the graph; what is typed before it waits in the terminal.
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{answer}\n").as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Asserts that `maos admin verify` finds the database in agreement with its event log (exit 0,
/// a clean document), whatever happened to the daemon before.
pub(crate) fn assert_verified(env: &Env) {
    let run = env.maos(&["admin", "verify", "--json"]);
    assert_eq!(run.code, 0, "admin verify: {}\n{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(doc["clean"], true, "{doc:#}");
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc:#}");
    assert_eq!(doc["last_seq"], doc["events"], "{doc:#}");
}
