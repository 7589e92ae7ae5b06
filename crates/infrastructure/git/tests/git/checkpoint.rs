//! Checkpoints, diffs and rollbacks in a task's worktree.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use maos_application::{Setup, Trailer, WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, git, git_output, parents, read, write};

fn trailer(key: &str, value: &str) -> Trailer {
    Trailer {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn checkpoints_commit_everything_with_message_and_trailers() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let task = repo.task("t");
    write(&task.path, "new/file.rs", "fn main() {}\n");
    write(&task.path, "README.md", "hello, changed\n");
    write(&task.path, "build.log", "ignored\n");
    fs::remove_file(task.path.join("file.txt")).unwrap();
    assert!(ws.is_dirty(&task).unwrap());

    let c1 = ws
        .checkpoint(
            &task,
            "after attempt 1",
            &[trailer("Maos-Task", "01abc"), trailer("Maos-Attempt", "1")],
        )
        .unwrap();
    assert_eq!(git(&task.path, &["rev-parse", "HEAD"]), c1);
    assert_eq!(parents(&task.path, &c1), [task.base.as_str()]);
    assert_eq!(
        git(&task.path, &["log", "-1", "--format=%B", &c1]),
        "after attempt 1\n\nMaos-Task: 01abc\nMaos-Attempt: 1"
    );
    assert_eq!(
        git(
            &task.path,
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Maos-Task,valueonly)",
                &c1
            ]
        ),
        "01abc"
    );
    let files = git(&task.path, &["ls-tree", "-r", "--name-only", &c1]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [".gitignore", "README.md", "new/file.rs"]
    );
    // The ignored file stays, uncommitted; nothing else is left over.
    assert!(task.path.join("build.log").exists());
    assert!(!ws.is_dirty(&task).unwrap());
    // The checkpoint went to the task's branch only.
    assert_eq!(repo.git(&["rev-parse", "maos/t"]), c1);
    assert_eq!(repo.git(&["rev-parse", "main"]), task.base);

    // A key git would not read back as a trailer is refused before anything is staged.
    write(&task.path, "pending.txt", "x\n");
    let err = ws
        .checkpoint(&task, "x", &[trailer("Bad Key", "1")])
        .unwrap_err();
    assert!(err.to_string().contains("invalid trailer key"), "{err}");
    assert_eq!(
        git(&task.path, &["status", "--porcelain"]),
        "?? pending.txt"
    );
    std::fs::remove_file(task.path.join("pending.txt")).unwrap();

    let c2 = ws.checkpoint(&task, "before attempt 2", &[]).unwrap();
    assert_ne!(c2, c1);
    assert_eq!(parents(&task.path, &c2), [c1.as_str()]);
    assert_eq!(
        git(&task.path, &["log", "-1", "--format=%B"]),
        "before attempt 2"
    );
}

#[test]
fn diffs_and_rollback_between_checkpoints() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let task = repo.task("t");
    let c1 = ws.checkpoint(&task, "checkpoint 1", &[]).unwrap();
    write(&task.path, "b.txt", "bee\n");
    write(&task.path, "file.txt", "one\ntwo\nthree\nfour\n");
    let c2 = ws.checkpoint(&task, "checkpoint 2", &[]).unwrap();

    let diff = ws.diff(&task, &c1, Some(&c2), false).unwrap();
    assert!(diff.contains("+++ b/b.txt"), "{diff}");
    assert!(diff.contains("+four"), "{diff}");
    let stat = ws.diff(&task, &c1, Some(&c2), true).unwrap();
    assert!(stat.contains("b.txt    | 1 +"), "{stat}");
    assert!(stat.contains("2 files changed, 2 insertions(+)"), "{stat}");
    assert_eq!(
        ws.shortstat(&task, &c1, &c2).unwrap(),
        "2 files changed, 2 insertions(+)"
    );
    assert_eq!(ws.shortstat(&task, &c2, &c2).unwrap(), "no changes");
    assert_eq!(ws.diff(&task, &c2, None, false).unwrap(), "");

    // Against the working tree: changes and new files, not ignored ones, index untouched.
    write(&task.path, "untracked.txt", "new\n");
    write(&task.path, "b.txt", "bee\nbuzz\n");
    write(&task.path, "debug.log", "ignored\n");
    let status_before = git(&task.path, &["status", "--porcelain"]);
    let live = ws.diff(&task, &c2, None, false).unwrap();
    assert!(live.contains("+++ b/untracked.txt"), "{live}");
    assert!(live.contains("+buzz"), "{live}");
    assert!(!live.contains("debug.log"), "{live}");
    let live_stat = ws.diff(&task, &c1, None, true).unwrap();
    assert!(live_stat.contains("untracked.txt"), "{live_stat}");
    assert!(live_stat.contains("3 files changed"), "{live_stat}");
    assert_eq!(git(&task.path, &["status", "--porcelain"]), status_before);
    assert!(status_before.contains("?? untracked.txt"));
    let git_dir = git(&task.path, &["rev-parse", "--absolute-git-dir"]);
    let leftovers: Vec<_> = fs::read_dir(&git_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("maos-diff"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let c3 = ws.checkpoint(&task, "checkpoint 3", &[]).unwrap();
    write(&task.path, "scratch/after.txt", "uncommitted\n");

    ws.rollback(&task, &c1).unwrap();
    assert_eq!(git(&task.path, &["rev-parse", "HEAD"]), c1);
    assert_eq!(repo.git(&["rev-parse", "maos/t"]), c1);
    assert!(!task.path.join("b.txt").exists());
    assert!(!task.path.join("untracked.txt").exists());
    assert!(!task.path.join("scratch").exists());
    assert_eq!(read(&task.path, "file.txt"), "one\ntwo\nthree\n");
    assert!(task.path.join("debug.log").exists(), "ignored files stay");
    assert!(!ws.is_dirty(&task).unwrap());
    // The later commits are off the branch but still in the repository.
    for later in [&c2, &c3] {
        assert!(
            !git_output(
                &repo.path,
                &["merge-base", "--is-ancestor", later, "maos/t"]
            )
            .status
            .success()
        );
        repo.git(&["cat-file", "-e", later]);
    }
    let fsck = git_output(&repo.path, &["fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );

    // A rollback only goes back.
    match ws.rollback(&task, &c3) {
        Err(WorkspaceError::Unsafe { path, detail }) => {
            assert_eq!(path, task.path);
            assert!(
                detail.contains("not a commit of the branch maos/t"),
                "{detail}"
            );
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
    assert_eq!(git(&task.path, &["rev-parse", "HEAD"]), c1);
    assert!(matches!(
        ws.rollback(&task, "no-such-commit"),
        Err(WorkspaceError::UnknownBase { .. })
    ));
    ws.rollback(&task, &c1).unwrap();
}

#[test]
fn a_worktree_moved_off_its_branch_is_refused() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let task = repo.task("t");
    git(&task.path, &["switch", "-q", "-c", "elsewhere"]);
    match ws.checkpoint(&task, "x", &[]) {
        Err(WorkspaceError::Unsafe { detail, .. }) => {
            assert!(detail.contains("elsewhere instead of maos/t"), "{detail}");
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
    assert_eq!(repo.git(&["rev-parse", "elsewhere"]), task.base);
}

/// A git that sees no global or system configuration, so that the repository's own is all
/// there is.
fn isolated_git(repo: &Repo) -> GitWorkspaces {
    let script = repo.at("isolated-git");
    fs::write(
        &script,
        "#!/bin/sh\nGIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 exec git \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    GitWorkspaces::new().with_git(script)
}

#[test]
fn commits_use_the_repository_identity_or_maos_when_there_is_none() {
    let repo = Repo::new();
    let ws = isolated_git(&repo);
    let task = ws
        .prepare(
            &repo.path,
            "maos/t",
            "main",
            &repo.at("t"),
            &Setup::default(),
        )
        .unwrap();
    ws.checkpoint(&task, "mine", &[]).unwrap();
    assert_eq!(
        git(&task.path, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]),
        "Test Person <test@example.com>|Test Person <test@example.com>"
    );

    repo.git(&["config", "--unset", "user.email"]);
    repo.git(&["config", "--unset", "user.name"]);
    ws.checkpoint(&task, "anonymous", &[]).unwrap();
    assert_eq!(
        git(&task.path, &["log", "-1", "--format=%an <%ae>"]),
        "MAOS <maos@localhost>"
    );
    // The user's configuration is never changed.
    assert!(
        !git_output(&repo.path, &["config", "--local", "user.email"])
            .status
            .success()
    );
}
