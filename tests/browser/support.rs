//! The world a browser scenario runs in: a fresh data directory served by the real daemon of the
//! real `maos` binary (`maos ui` makes it serve the dashboard), a throwaway git repository,
//! scripted command agents, and one headless chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::cdp::Browser;

/// A data directory, its daemon (started by the first command that needs it, stopped on drop)
/// and the dashboard it serves.
#[derive(Debug)]
pub(crate) struct Maos {
    dir: TempDir,
    /// `XDG_RUNTIME_DIR` of its runs: the daemon's socket lives here.
    runtime: TempDir,
    /// Where the scripts of its agents are written.
    pub(crate) work: TempDir,
}

impl Maos {
    /// A fresh, empty data directory.
    pub(crate) fn new() -> Maos {
        let dir = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .expect("a data directory");
        Maos {
            dir,
            runtime: tempfile::tempdir().expect("a runtime directory"),
            work: tempfile::tempdir().expect("a work directory"),
        }
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `maos` command in this data directory, as a person would run it, outside any repository.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_maos"));
        for var in [
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "COLUMNS",
            "MAOS_DATA_DIR",
            "MAOS_NO_DAEMON",
            "RUST_LOG",
            "BROWSER",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("MAOS_DATA_DIR", self.dir())
            .current_dir(self.runtime.path())
            .stdin(std::process::Stdio::null())
            .args(args);
        cmd
    }

    /// Runs `maos args` (at most a minute; killed and failed after that).
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Like [`Maos::run`], with extra environment variables.
    pub(crate) fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        bounded(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("maos {args:?}: {e}"))
    }

    /// Runs `maos args --json`, expects success, and answers the document.
    pub(crate) fn ok_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "maos {all:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("maos {all:?} printed no JSON ({e}):\n{stdout}"))
    }

    /// Has the daemon serve the dashboard (`maos ui`) on a free port; answers where.
    pub(crate) fn ui(&self) -> Ui {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().to_string();
            let out = self.run(&["ui", "--port", &port, "--json"]);
            if out.status.success() {
                let doc: Value = serde_json::from_slice(&out.stdout).expect("maos ui --json");
                let url = doc["url"].as_str().expect("the url").to_owned();
                let with_token = doc["url_with_token"]
                    .as_str()
                    .expect("the url with the token")
                    .to_owned();
                assert!(doc["loopback"] == true, "{doc:#}");
                return Ui {
                    base: url.trim_end_matches('/').to_owned(),
                    with_token,
                };
            }
            // Someone took the port in between: try another.
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("maos ui failed five times; last:\n{last}");
    }

    /// Writes an agent script (POSIX sh) and answers the command that runs it.
    pub(crate) fn script(&self, name: &str, body: &str) -> String {
        let path = self.work.path().join(format!("{name}.sh"));
        std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}")).expect("script written");
        format!("sh {}", path.display())
    }

    /// Registers a `command` agent running `command`, with `capabilities` (comma-separated).
    pub(crate) fn agent(&self, name: &str, capabilities: &str, slots: u32, command: &str) {
        let slots = slots.to_string();
        self.ok_json(&[
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
            "--capability",
            capabilities,
        ]);
    }

    /// Writes `text` into the work directory as `name` and answers its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let path = self.work.path().join(name);
        std::fs::write(&path, text).expect("file written");
        path.to_str().expect("a UTF-8 path").to_owned()
    }

    /// Runs a plan (`maos orchestrate run PLAN --repo REPO --yes`) and answers the
    /// orchestration's id and its tasks' ids by plan key.
    pub(crate) fn run_plan(&self, plan: &str, repo: &Repo) -> (String, Vec<(String, String)>) {
        let path = self.file("plan.toml", plan);
        let doc = self.ok_json(&["orchestrate", "run", &path, "--repo", &repo.arg(), "--yes"]);
        let id = doc["orchestration"]["id"]
            .as_str()
            .expect("the orchestration's id")
            .to_owned();
        let tasks = doc["tasks"]
            .as_array()
            .expect("its tasks")
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap_or_default().to_owned(),
                    t["task"]["id"].as_str().expect("a task id").to_owned(),
                )
            })
            .collect();
        (id, tasks)
    }

    /// The task as `maos task show` has it.
    pub(crate) fn task(&self, id: &str) -> Value {
        self.ok_json(&["task", "show", id])["task"].clone()
    }

    /// Waits until the task is in `state` (at most a minute: the machine may be busy).
    pub(crate) fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.task(id);
            if t["state"] == state {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never became {state}: {t:#}\nlogs:\n{}",
                String::from_utf8_lossy(&self.run(&["task", "logs", id]).stdout)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Maos {
    fn drop(&mut self) {
        // The daemon must not outlive the test.
        let _ = bounded(
            &mut self.command(&["daemon", "stop", "-q"]),
            Duration::from_secs(30),
        );
    }
}

/// Runs `cmd` to its end, its output read as it comes (a full pipe never blocks it); kills it
/// after `limit`.
fn bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut all);
            }
            all
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not end within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Where the dashboard is served.
#[derive(Debug, Clone)]
pub(crate) struct Ui {
    /// `http://127.0.0.1:PORT`, without a slash at the end.
    pub(crate) base: String,
    /// The address `maos ui` prints: the token once, as `?token=`.
    pub(crate) with_token: String,
}

impl Ui {
    /// The page at `path` (starting with `/`).
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The port it is served on.
    pub(crate) fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the address")
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh git repository on `main` with one commit.
#[derive(Debug)]
pub(crate) struct Repo {
    dir: TempDir,
}

impl Repo {
    pub(crate) fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("a repository directory"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "commit.gpgSign", "false"]);
        std::fs::write(repo.dir.path().join("README.md"), "# A project\n").expect("README");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    pub(crate) fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("the repository's path")
    }

    pub(crate) fn arg(&self) -> String {
        self.path().to_str().expect("a UTF-8 path").to_owned()
    }

    /// Runs git here, expects success, answers its stdout.
    pub(crate) fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_COMMON_DIR",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .env("LC_ALL", "C")
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .output()
            .expect("git ran");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The file `name` as commit `rev` holds it, if it does.
    pub(crate) fn show(&self, rev: &str, name: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .args(["show", &format!("{rev}:{name}")])
            .output()
            .expect("git ran");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Everything a scenario needs: MAOS serving its dashboard, and a browser.
#[derive(Debug)]
pub(crate) struct World {
    // Dropped in this order: the browser first, then the daemon.
    pub(crate) browser: Browser,
    pub(crate) ui: Ui,
    pub(crate) maos: Maos,
}

impl World {
    /// A fresh data directory served, and a browser started.
    pub(crate) fn new() -> World {
        World::with(|_| {})
    }

    /// A fresh data directory prepared by `setup` (before the dashboard is served), served,
    /// and a browser started.
    pub(crate) fn with(setup: impl FnOnce(&Maos)) -> World {
        let maos = Maos::new();
        setup(&maos);
        let ui = maos.ui();
        let browser = Browser::launch();
        World { browser, ui, maos }
    }

    /// A tab that has been given the token (it now holds the cookie) and shows the overview.
    pub(crate) fn signed_in(&self, scenario: &str) -> crate::cdp::Page<'_> {
        let page = self.browser.page(scenario, false);
        page.goto(&self.ui.with_token);
        page.wait_for(
            "document.querySelector('h1') && document.querySelector('h1').textContent === 'Overview'",
            Duration::from_secs(10),
        );
        page
    }
}

/// A data directory with some of everything, for the scenarios that look at every page: an
/// orchestration of three tasks (two completed, the last waiting for a person's approval of its
/// verified work) and a task of its own waiting to be allowed to run.
#[derive(Debug)]
pub(crate) struct Populated {
    pub(crate) orchestration: String,
    /// Completed, with an attempt and a log.
    pub(crate) done: String,
    /// Waiting for approval of its result (it has a diff).
    pub(crate) waiting: String,
    /// Waiting for approval to run.
    pub(crate) high: String,
    /// The repository its orchestration works in (kept alive as long as the world).
    pub(crate) _repo: Repo,
}

/// The plan of [`World::populated`].
const POPULATED_PLAN: &str = r#"name = "Greetings"
goal = "Give the project a greeting library, with its docs"

[defaults]
max_attempts = 2

[[task]]
id = "greet"
title = "Write greet()"
prompt = "Add lib/greet.sh"
capabilities = ["code"]
risk = "low"

[[task]]
id = "farewell"
title = "Write farewell()"
prompt = "Add lib/farewell.sh"
capabilities = ["code"]
risk = "low"

[[task]]
id = "docs"
title = "Document the greetings"
prompt = "Describe both functions"
capabilities = ["docs"]
depends_on = ["greet", "farewell"]
risk = "medium"
"#;

impl World {
    /// A world holding [`Populated`]'s data, settled.
    pub(crate) fn populated() -> (World, Populated) {
        let world = World::new();
        let script = world.maos.script(
            "scribe",
            "echo \"working on: $MAOS_TASK_TITLE\"\n\
             name=$(printf '%s' \"$MAOS_TASK_TITLE\" | tr -c 'A-Za-z0-9\\n' '_')\n\
             mkdir -p notes\n\
             printf '# %s\\n\\nWritten by attempt %s.\\n' \"$MAOS_TASK_TITLE\" \"$MAOS_ATTEMPT\" > \"notes/$name.md\"\n\
             echo \"wrote notes/$name.md\"\n",
        );
        world.maos.agent("scribe-1", "code,docs", 2, &script);
        world.maos.agent("scribe-2", "code", 1, &script);
        let repo = Repo::new();
        let (orchestration, tasks) = world.maos.run_plan(POPULATED_PLAN, &repo);
        let id = |key: &str| {
            tasks
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, id)| id.clone())
                .expect("a planned task")
        };
        let done = id("greet");
        world.maos.wait_state(&done, "completed");
        world.maos.wait_state(&id("farewell"), "completed");
        let waiting = id("docs");
        world.maos.wait_state(&waiting, "awaiting_approval");
        let high = world.maos.ok_json(&[
            "task",
            "create",
            "Rotate the deploy keys",
            "--risk",
            "high",
            "--capability",
            "code",
            "--prompt",
            "Rotate them",
        ])["task"]["id"]
            .as_str()
            .expect("a task id")
            .to_owned();
        let populated = Populated {
            orchestration,
            done,
            waiting,
            high,
            _repo: repo,
        };
        (world, populated)
    }
}

impl Populated {
    /// Every page of the dashboard, by name, with the address of one of its kind.
    pub(crate) fn pages(&self) -> Vec<(&'static str, String)> {
        vec![
            ("overview", "/".to_owned()),
            (
                "orchestration",
                format!("/orchestrations/{}", self.orchestration),
            ),
            ("task", format!("/tasks/{}", self.waiting)),
            ("task-completed", format!("/tasks/{}", self.done)),
            ("task-high", format!("/tasks/{}", self.high)),
            ("tasks", "/tasks".to_owned()),
            ("approvals", "/approvals".to_owned()),
            ("events", "/events".to_owned()),
            ("metrics", "/stats".to_owned()),
        ]
    }
}
