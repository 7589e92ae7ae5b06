//! `prepare`: task worktrees, their setup, and retries.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use maos_application::{Setup, Workspace, WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, git, git_output, read, write};

fn setup(command: &str) -> Setup {
    Setup {
        copy: vec![
            PathBuf::from(".env"),
            PathBuf::from("config/local.toml"),
            PathBuf::from("missing.txt"),
        ],
        command: Some(command.into()),
        timeout: Duration::from_secs(20),
        env: None,
    }
}

#[test]
fn two_tasks_prepared_in_parallel_get_their_own_worktrees_branches_and_setup() {
    let repo = Repo::new();
    let base = repo.head();
    // Files git does not track: one ignored, one not.
    write(&repo.path, ".env", "TOKEN=abc\n");
    write(&repo.path, "config/local.toml", "port = 1\n");
    let setup = setup("printf 'ready in %s\\n' \"$(basename \"$PWD\")\" > setup-done.txt");

    let workspaces: Vec<Workspace> = thread::scope(|s| {
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (repo, setup) = (&repo, &setup);
                s.spawn(move || {
                    GitWorkspaces::new()
                        .prepare(
                            &repo.path,
                            &format!("maos/{name}"),
                            "main",
                            &repo.at(name),
                            setup,
                        )
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    for (ws, name) in workspaces.iter().zip(["a", "b"]) {
        assert_eq!(ws.repo, repo.path);
        assert_eq!(ws.path, repo.at(name));
        assert_eq!(ws.branch, format!("maos/{name}"));
        assert_eq!(ws.base, base);
        assert_eq!(
            git(&ws.path, &["branch", "--show-current"]),
            format!("maos/{name}")
        );
        assert_eq!(git(&ws.path, &["rev-parse", "HEAD"]), base);
        assert_eq!(read(&ws.path, ".env"), "TOKEN=abc\n");
        assert_eq!(read(&ws.path, "config/local.toml"), "port = 1\n");
        assert!(!ws.path.join("missing.txt").exists());
        assert_eq!(
            read(&ws.path, "setup-done.txt"),
            format!("ready in {name}\n")
        );
        write(&ws.path, &format!("only-{name}.txt"), name);
    }
    assert!(workspaces[0].path.join("only-a.txt").exists());
    assert!(!workspaces[0].path.join("only-b.txt").exists());
    assert!(!workspaces[1].path.join("only-a.txt").exists());
    assert!(!repo.path.join("only-a.txt").exists());
    let listed = repo.worktree_paths();
    assert!(listed.contains(&repo.at("a")) && listed.contains(&repo.at("b")));
    // The main checkout is where it was.
    assert_eq!(repo.git(&["branch", "--show-current"]), "main");
}

#[test]
fn prepare_is_idempotent_and_resolves_the_repository_from_a_subdirectory() {
    let repo = Repo::new();
    let counter = repo.at("setup-runs");
    let setup = Setup {
        copy: vec![],
        command: Some(format!("echo run >> '{}'", counter.display())),
        timeout: Duration::from_secs(20),
        env: None,
    };
    let ws = GitWorkspaces::new();
    fs::create_dir(repo.path.join("sub")).unwrap();
    let first = ws
        .prepare(
            &repo.path.join("sub"),
            "maos/t",
            "main",
            &repo.at("t"),
            &setup,
        )
        .unwrap();
    assert_eq!(first.repo, repo.path);
    write(&first.path, "work.txt", "in progress\n");
    let again = ws
        .prepare(&repo.path, "maos/t", "main", &repo.at("t"), &setup)
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(read(&again.path, "work.txt"), "in progress\n");
    assert_eq!(fs::read_to_string(&counter).unwrap(), "run\n");

    // A setup that never finished (MAOS stopped during it) runs again.
    let marker = git(&first.path, &["rev-parse", "--absolute-git-dir"]);
    fs::remove_file(PathBuf::from(marker).join("maos-setup-done")).unwrap();
    ws.prepare(&repo.path, "maos/t", "main", &repo.at("t"), &setup)
        .unwrap();
    assert_eq!(fs::read_to_string(&counter).unwrap(), "run\nrun\n");
    assert_eq!(read(&first.path, "work.txt"), "in progress\n");

    // Even once main has moved on, the base stays where the branch started.
    write(&repo.path, "later.txt", "x");
    repo.git(&["add", "later.txt"]);
    repo.git(&["commit", "-q", "-m", "later"]);
    let later = ws
        .prepare(&repo.path, "maos/t", "main", &repo.at("t"), &setup)
        .unwrap();
    assert_eq!(later.base, first.base);
}

#[test]
fn a_branch_without_a_worktree_gets_one_again() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let first = repo.task("t");
    write(&first.path, "done.txt", "done\n");
    let commit = ws.checkpoint(&first, "attempt 1", &[]).unwrap();
    ws.remove(&first, false).unwrap();
    assert!(!first.path.exists());

    let again = ws
        .prepare(
            &repo.path,
            "maos/t",
            "main",
            &repo.at("t-again"),
            &Setup::default(),
        )
        .unwrap();
    assert_eq!(again.base, first.base);
    assert_eq!(git(&again.path, &["rev-parse", "HEAD"]), commit);
    assert_eq!(read(&again.path, "done.txt"), "done\n");

    // A worktree whose directory vanished is replaced, not refused.
    fs::remove_dir_all(&again.path).unwrap();
    let third = ws
        .prepare(
            &repo.path,
            "maos/t",
            "main",
            &repo.at("t-again"),
            &Setup::default(),
        )
        .unwrap();
    assert_eq!(read(&third.path, "done.txt"), "done\n");
}

#[test]
fn a_failing_setup_reports_its_output_and_leaves_nothing_behind() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let path = repo.at("fail");
    let err = ws
        .prepare(
            &repo.path,
            "maos/fail",
            "main",
            &path,
            &setup("echo installing; echo 'npm ERR! missing lockfile' >&2; exit 3"),
        )
        .unwrap_err();
    match &err {
        WorkspaceError::Setup { path: p, detail } => {
            assert_eq!(p, &path);
            assert!(detail.contains("exited with status 3"), "{detail}");
            assert!(detail.contains("installing"), "{detail}");
            assert!(detail.contains("npm ERR! missing lockfile"), "{detail}");
        }
        other => panic!("expected Setup, got {other:?}"),
    }
    assert!(err.to_string().contains("the setup of the worktree"));
    assert!(!path.exists());
    assert!(!repo.worktree_paths().contains(&path));
    assert!(
        !git_output(
            &repo.path,
            &["rev-parse", "--verify", "-q", "refs/heads/maos/fail"]
        )
        .status
        .success(),
        "the branch made for the failed worktree is gone"
    );

    // A retry starts clean and works.
    let ws2 = ws
        .prepare(&repo.path, "maos/fail", "main", &path, &setup("touch ok"))
        .unwrap();
    assert!(ws2.path.join("ok").exists());
}

#[test]
fn a_setup_past_its_timeout_is_killed_with_its_children() {
    let repo = Repo::new();
    let pid_file = repo.at("child.pid");
    let started = Instant::now();
    let err = GitWorkspaces::new()
        .prepare(
            &repo.path,
            "maos/slow",
            "main",
            &repo.at("slow"),
            &Setup {
                copy: vec![],
                command: Some(format!(
                    "sleep 60 & echo $! > '{}'; echo waiting; wait",
                    pid_file.display()
                )),
                timeout: Duration::from_millis(400),
                env: None,
            },
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match err {
        WorkspaceError::Setup { detail, .. } => {
            assert!(detail.contains("did not finish within 0.4 s"), "{detail}");
            assert!(detail.contains("waiting"), "{detail}");
        }
        other => panic!("expected Setup, got {other:?}"),
    }
    assert!(!repo.at("slow").exists());
    let pid = fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(&pid) {
        assert!(
            Instant::now() < deadline,
            "the setup's child {pid} survived"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn an_unknown_base_or_a_taken_path_is_refused() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    assert!(matches!(
        ws.prepare(&repo.path, "maos/x", "nope", &repo.at("x"), &Setup::default()),
        Err(WorkspaceError::UnknownBase { base, .. }) if base == "nope"
    ));
    write(&repo.at("taken"), "user-file.txt", "mine\n");
    let err = ws
        .prepare(
            &repo.path,
            "maos/y",
            "main",
            &repo.at("taken"),
            &Setup::default(),
        )
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::Git { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(read(&repo.at("taken"), "user-file.txt"), "mine\n");
}
