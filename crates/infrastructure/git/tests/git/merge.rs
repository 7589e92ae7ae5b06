//! Integration merges (never in a checked-out tree) and merges into the user's branch.

use std::fs;
use std::path::Path;
use std::thread;

use maos_application::{MergeOutcome, WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, change, git, git_output, parents, read, write};

/// What the user can see of the main checkout.
fn snapshot(repo: &Repo) -> (String, String, String, String) {
    (
        repo.head(),
        repo.git(&["symbolic-ref", "HEAD"]),
        repo.git(&["status", "--porcelain", "--ignored"]),
        read(&repo.path, "README.md"),
    )
}

/// Asserts that no merge is in progress and no temporary worktree is left.
fn assert_no_leftovers(repo: &Repo) {
    let listed = repo.worktree_paths();
    assert!(
        listed
            .iter()
            .all(|p| !p.to_string_lossy().contains("maos-merge")),
        "{listed:?}"
    );
    let git_dir = repo.path.join(".git");
    assert!(!git_dir.join("MERGE_HEAD").exists());
    for entry in fs::read_dir(&git_dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with("maos-merge"),
            "{name:?}"
        );
    }
    if let Ok(entries) = fs::read_dir(git_dir.join("worktrees")) {
        for entry in entries {
            let dir = entry.unwrap().path();
            assert!(!dir.join("MERGE_HEAD").exists(), "{}", dir.display());
        }
    }
}

fn merged(outcome: MergeOutcome) -> String {
    match outcome {
        MergeOutcome::Merged { commit } => commit,
        other => panic!("expected Merged, got {other:?}"),
    }
}

#[test]
fn branches_merge_in_order_into_a_new_integration_branch_without_touching_main() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    write(&repo.path, "build.log", "the user's ignored file\n");
    let before = snapshot(&repo);
    let main = repo.head();

    let t1 = repo.task("t1");
    let h1 = change(&t1, "one.txt", "1\n");
    let t2 = repo.task("t2");
    let h2 = change(&t2, "two.txt", "2\n");

    let m1 = merged(
        ws.merge(&repo.path, "maos/t1", "maos/orch-x", "main")
            .unwrap(),
    );
    assert_eq!(parents(&repo.path, &m1), [main.clone(), h1.clone()]);
    assert_eq!(repo.git(&["rev-parse", "maos/orch-x"]), m1);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &m1]),
        "Merge maos/t1 into maos/orch-x"
    );
    let m2 = merged(
        ws.merge(&repo.path, "maos/t2", "maos/orch-x", "main")
            .unwrap(),
    );
    assert_eq!(parents(&repo.path, &m2), [m1.clone(), h2]);
    assert_eq!(repo.git(&["rev-parse", "maos/orch-x"]), m2);
    let files = repo.git(&["ls-tree", "--name-only", &m2]);
    assert!(
        files.contains("one.txt") && files.contains("two.txt"),
        "{files}"
    );

    // Merging again changes nothing.
    assert_eq!(
        ws.merge(&repo.path, "maos/t1", "maos/orch-x", "main")
            .unwrap(),
        MergeOutcome::UpToDate { commit: m2.clone() }
    );
    assert!(ws.is_merged(&repo.path, "maos/t1", "maos/orch-x").unwrap());

    assert_eq!(snapshot(&repo), before);
    assert_eq!(repo.git(&["rev-parse", "main"]), main);
    assert!(!repo.path.join("one.txt").exists());
    // The task worktrees are as they were.
    assert_eq!(git(&t1.path, &["rev-parse", "HEAD"]), h1);
    assert!(!t1.path.join("two.txt").exists());
    assert_no_leftovers(&repo);
}

#[test]
fn a_conflict_is_reported_and_changes_nothing() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let before = snapshot(&repo);
    let a = repo.task("a");
    change(&a, "file.txt", "one\nTWO (a)\nthree\n");
    let b = repo.task("b");
    let hb = change(&b, "file.txt", "one\nTWO (b)\nthree\n");

    let m = merged(
        ws.merge(&repo.path, "maos/a", "maos/orch-x", "main")
            .unwrap(),
    );
    assert_eq!(
        ws.merge(&repo.path, "maos/b", "maos/orch-x", "main")
            .unwrap(),
        MergeOutcome::Conflict {
            paths: vec!["file.txt".into()]
        }
    );
    assert_eq!(repo.git(&["rev-parse", "maos/orch-x"]), m);
    assert_eq!(repo.git(&["rev-parse", "maos/b"]), hb);
    assert!(!ws.is_merged(&repo.path, "maos/b", "maos/orch-x").unwrap());
    assert_eq!(snapshot(&repo), before);
    assert!(!ws.is_dirty(&b).unwrap());
    assert_no_leftovers(&repo);
}

#[test]
fn an_integration_branch_checked_out_somewhere_is_refused() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let t = repo.task("t");
    change(&t, "t.txt", "t\n");
    repo.git(&["branch", "maos/orch-y", "main"]);
    let user_tree = repo.at("user-tree");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        user_tree.to_str().unwrap(),
        "maos/orch-y",
    ]);
    let before = repo.git(&["rev-parse", "maos/orch-y"]);
    match ws.merge(&repo.path, "maos/t", "maos/orch-y", "main") {
        Err(e @ WorkspaceError::Unsafe { .. }) => {
            let WorkspaceError::Unsafe { path, detail } = &e else {
                unreachable!()
            };
            assert_eq!(path, &user_tree);
            assert!(
                detail.contains("maos/orch-y is checked out there"),
                "{detail}"
            );
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
    assert_eq!(repo.git(&["rev-parse", "maos/orch-y"]), before);
    assert!(!user_tree.join("t.txt").exists());
    // A branch that does not exist cannot be merged; a start that does not exist is refused.
    assert!(matches!(
        ws.merge(&repo.path, "maos/nope", "maos/orch-z", "main"),
        Err(WorkspaceError::UnknownBase { base, .. }) if base == "maos/nope"
    ));
    assert!(matches!(
        ws.merge(&repo.path, "maos/t", "maos/orch-z", "no-start"),
        Err(WorkspaceError::UnknownBase { base, .. }) if base == "no-start"
    ));
    assert!(
        !git_output(&repo.path, &["rev-parse", "--verify", "-q", "maos/orch-z"])
            .status
            .success()
    );
}

fn commit_count(dir: &Path) -> String {
    git(dir, &["rev-list", "--count", "HEAD"])
}

#[test]
fn merging_into_the_users_checked_out_branch_happens_there_when_it_is_clean() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let main = repo.head();
    let t = repo.task("t");
    let ht = change(&t, "feature.txt", "feature\n");

    // Dirty: refused, nothing changed.
    write(&repo.path, "README.md", "the user's edit\n");
    match ws.merge_into_user_branch(&repo.path, "maos/t", "main") {
        Err(WorkspaceError::Dirty { repo: dir, paths }) => {
            assert_eq!(dir, repo.path);
            assert_eq!(paths, ["README.md"]);
        }
        other => panic!("expected Dirty, got {other:?}"),
    }
    assert_eq!(repo.head(), main);
    assert_eq!(read(&repo.path, "README.md"), "the user's edit\n");
    assert!(!repo.path.join("feature.txt").exists());
    repo.git(&["checkout", "--", "README.md"]);

    // Clean: merged there, with a merge commit even though a fast-forward was possible.
    let m = merged(
        ws.merge_into_user_branch(&repo.path, "maos/t", "main")
            .unwrap(),
    );
    assert_eq!(repo.head(), m);
    assert_eq!(parents(&repo.path, &m), [main, ht]);
    assert_eq!(commit_count(&repo.path), "3");
    assert_eq!(read(&repo.path, "feature.txt"), "feature\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(
        ws.merge_into_user_branch(&repo.path, "maos/t", "main")
            .unwrap(),
        MergeOutcome::UpToDate { commit: m }
    );
    assert_no_leftovers(&repo);
}

#[test]
fn merging_into_the_users_branch_aborts_a_conflict_or_uses_a_temporary_tree() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let t = repo.task("t");
    change(&t, "file.txt", "one\nTWO (task)\nthree\n");
    write(&repo.path, "file.txt", "one\nTWO (user)\nthree\n");
    repo.git(&["commit", "-q", "-am", "the user's change"]);
    let before = snapshot(&repo);
    assert_eq!(
        ws.merge_into_user_branch(&repo.path, "maos/t", "main")
            .unwrap(),
        MergeOutcome::Conflict {
            paths: vec!["file.txt".into()]
        }
    );
    assert_eq!(snapshot(&repo), before);
    assert_eq!(read(&repo.path, "file.txt"), "one\nTWO (user)\nthree\n");
    assert_no_leftovers(&repo);

    // A branch of the user's that is checked out nowhere: merged in a temporary worktree.
    let u = repo.task("u");
    let hu = change(&u, "u.txt", "u\n");
    repo.git(&["branch", "release", "main"]);
    let release = repo.git(&["rev-parse", "release"]);
    let m = merged(
        ws.merge_into_user_branch(&repo.path, "maos/u", "release")
            .unwrap(),
    );
    assert_eq!(repo.git(&["rev-parse", "release"]), m);
    assert_eq!(parents(&repo.path, &m), [release, hu]);
    assert_eq!(snapshot(&repo), before);
    assert_no_leftovers(&repo);

    // It must exist.
    assert!(matches!(
        ws.merge_into_user_branch(&repo.path, "maos/u", "no-such-branch"),
        Err(WorkspaceError::UnknownBase { base, .. }) if base == "no-such-branch"
    ));
}

#[test]
fn concurrent_merges_into_one_branch_all_land() {
    let repo = Repo::new();
    let tasks: Vec<_> = ["p", "q", "r"]
        .into_iter()
        .map(|name| {
            let ws = repo.task(name);
            change(&ws, &format!("{name}.txt"), name);
            ws
        })
        .collect();
    let outcomes: Vec<MergeOutcome> = thread::scope(|s| {
        let handles: Vec<_> = tasks
            .iter()
            .map(|ws| {
                let repo = &repo;
                s.spawn(move || {
                    GitWorkspaces::new()
                        .merge(&repo.path, &ws.branch, "maos/orch-c", "main")
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, MergeOutcome::Merged { .. })),
        "{outcomes:?}"
    );
    let ws = GitWorkspaces::new();
    for task in &tasks {
        assert!(
            ws.is_merged(&repo.path, &task.branch, "maos/orch-c")
                .unwrap()
        );
    }
    assert_eq!(
        repo.git(&["rev-list", "--count", "--merges", "maos/orch-c"]),
        "3"
    );
    assert_no_leftovers(&repo);
}
