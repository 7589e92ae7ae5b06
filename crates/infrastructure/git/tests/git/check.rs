//! `check`: which repositories MAOS may start from.

use std::fs;

use maos_application::{WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, write};

#[test]
fn a_clean_repository_answers_its_head_and_a_subdirectory_resolves_to_the_top() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    assert_eq!(ws.check(&repo.path, None).unwrap(), repo.head());
    assert_eq!(ws.check(&repo.path, Some("main")).unwrap(), repo.head());

    fs::create_dir_all(repo.path.join("src/deep")).unwrap();
    assert_eq!(
        ws.check(&repo.path.join("src/deep"), None).unwrap(),
        repo.head()
    );

    // Ignored files do not make a tree dirty.
    write(&repo.path, "build.log", "noise\n");
    write(&repo.path, "ignored/cache.bin", "x");
    write(&repo.path, ".env", "SECRET=1\n");
    assert_eq!(ws.check(&repo.path, None).unwrap(), repo.head());
}

#[test]
fn uncommitted_changes_and_untracked_files_are_refused_by_path() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    write(&repo.path, "README.md", "changed\n");
    match ws.check(&repo.path, None) {
        Err(WorkspaceError::Dirty { repo: dir, paths }) => {
            assert_eq!(dir, repo.path);
            assert_eq!(paths, ["README.md"]);
        }
        other => panic!("expected Dirty, got {other:?}"),
    }
    repo.git(&["checkout", "--", "README.md"]);

    write(&repo.path, "notes with space.txt", "new\n");
    match ws.check(&repo.path, None) {
        Err(WorkspaceError::Dirty { paths, .. }) => assert_eq!(paths, ["notes with space.txt"]),
        other => panic!("expected Dirty, got {other:?}"),
    }
}

#[test]
fn a_detached_head_is_refused_unless_a_base_is_named() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let head = repo.head();
    repo.git(&["checkout", "-q", "--detach"]);
    match ws.check(&repo.path, None) {
        Err(WorkspaceError::DetachedHead { repo: dir }) => assert_eq!(dir, repo.path),
        other => panic!("expected DetachedHead, got {other:?}"),
    }
    assert_eq!(ws.check(&repo.path, Some("main")).unwrap(), head);
    assert_eq!(ws.check(&repo.path, Some(&head[..8])).unwrap(), head);
}

#[test]
fn a_lock_held_by_another_git_is_refused_and_named() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let lock = repo.path.join(".git/index.lock");
    fs::write(&lock, "").unwrap();
    match ws.check(&repo.path, None) {
        Err(e @ WorkspaceError::Locked { .. }) => {
            let WorkspaceError::Locked { lock: named, .. } = &e else {
                unreachable!()
            };
            assert_eq!(named, &lock);
            assert!(e.to_string().contains("index.lock exists"), "{e}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    fs::remove_file(&lock).unwrap();

    let branch_lock = repo.path.join(".git/refs/heads/main.lock");
    fs::write(&branch_lock, "").unwrap();
    assert!(matches!(
        ws.check(&repo.path, None),
        Err(WorkspaceError::Locked { lock, .. }) if lock == branch_lock
    ));
    fs::remove_file(&branch_lock).unwrap();
    assert!(ws.check(&repo.path, None).is_ok());
}

#[test]
fn an_unknown_base_and_a_directory_outside_git_are_refused() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    assert_eq!(
        ws.check(&repo.path, Some("no-such-branch")),
        Err(WorkspaceError::UnknownBase {
            repo: repo.path.clone(),
            base: "no-such-branch".into()
        })
    );
    // An option is a name like any other.
    assert!(matches!(
        ws.check(&repo.path, Some("--all")),
        Err(WorkspaceError::UnknownBase { .. })
    ));

    let plain = repo.at("plain");
    fs::create_dir(&plain).unwrap();
    assert_eq!(
        ws.check(&plain, None),
        Err(WorkspaceError::NotARepository {
            path: plain.clone()
        })
    );
    let missing = repo.at("missing");
    assert_eq!(
        ws.check(&missing, None),
        Err(WorkspaceError::NotARepository { path: missing })
    );
}

#[test]
fn a_repository_without_commits_has_no_base() {
    let repo = Repo::new();
    let empty = repo.at("empty");
    fs::create_dir(&empty).unwrap();
    crate::support::git(&empty, &["init", "-q", "-b", "main"]);
    assert!(matches!(
        GitWorkspaces::new().check(&empty, None),
        Err(WorkspaceError::UnknownBase { base, .. }) if base == "HEAD"
    ));
}
