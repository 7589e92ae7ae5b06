//! Removing worktrees, and the merge test garbage collection relies on.

use maos_application::{WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, change, git_output, read, write};

#[test]
fn remove_refuses_a_dirty_worktree_without_force_and_keeps_branches_and_objects() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let dirty = repo.task("dirty");
    let merged = repo.task("merged");
    let unmerged = repo.task("unmerged");
    let bystander = repo.task("bystander");
    let hd = change(&dirty, "d.txt", "committed\n");
    write(&dirty.path, "d.txt", "not committed\n");
    write(&dirty.path, "new.txt", "not committed either\n");
    let hm = change(&merged, "m.txt", "m\n");
    let hu = change(&unmerged, "u.txt", "u\n");
    ws.merge(&repo.path, "maos/merged", "maos/orch", "main")
        .unwrap();

    assert!(
        ws.is_merged(&repo.path, "maos/merged", "maos/orch")
            .unwrap()
    );
    assert!(
        !ws.is_merged(&repo.path, "maos/unmerged", "maos/orch")
            .unwrap()
    );
    assert!(
        !ws.is_merged(&repo.path, "maos/merged", "maos/no-orch")
            .unwrap()
    );
    assert!(ws.is_merged(&repo.path, "maos/bystander", "main").unwrap());

    match ws.remove(&dirty, false) {
        Err(e @ WorkspaceError::Unsafe { .. }) => {
            assert!(e.to_string().contains("d.txt"), "{e}");
            assert!(e.to_string().contains("new.txt"), "{e}");
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
    assert_eq!(read(&dirty.path, "d.txt"), "not committed\n");
    assert_eq!(read(&dirty.path, "new.txt"), "not committed either\n");

    ws.remove(&dirty, true).unwrap();
    assert!(!dirty.path.exists());
    // Ignored files do not make a worktree dirty, and go with it.
    write(&unmerged.path, "debug.log", "ignored\n");
    ws.remove(&unmerged, false).unwrap();
    assert!(!unmerged.path.exists());
    ws.remove(&merged, false).unwrap();
    // Already gone: nothing to do.
    ws.remove(&merged, false).unwrap();

    for (branch, head) in [
        ("maos/dirty", &hd),
        ("maos/merged", &hm),
        ("maos/unmerged", &hu),
    ] {
        assert_eq!(&repo.git(&["rev-parse", branch]), head);
    }
    let listed = repo.worktree_paths();
    assert_eq!(listed, [repo.path.clone(), bystander.path.clone()]);
    assert!(bystander.path.join("README.md").exists());
    assert_eq!(read(&repo.path, "README.md"), "hello\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let fsck = git_output(&repo.path, &["fsck", "--no-dangling"]);
    assert!(
        fsck.status.success() && fsck.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

#[test]
fn remove_refuses_what_is_not_a_task_worktree() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let mut main = repo.task("t");
    main.path = repo.path.clone();
    assert!(matches!(
        ws.remove(&main, true),
        Err(WorkspaceError::Unsafe { detail, .. }) if detail.contains("main working tree")
    ));
    let mut stranger = repo.task("t2");
    stranger.path = repo.at("stranger");
    write(&stranger.path, "precious.txt", "keep\n");
    assert!(matches!(
        ws.remove(&stranger, true),
        Err(WorkspaceError::Unsafe { detail, .. }) if detail.contains("not a worktree of")
    ));
    assert_eq!(read(&stranger.path, "precious.txt"), "keep\n");
    assert!(repo.path.join("README.md").exists());
}
