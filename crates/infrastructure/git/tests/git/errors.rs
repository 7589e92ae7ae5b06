//! What errors say.

use maos_application::{Setup, WorkspaceError, Workspaces};
use maos_git::GitWorkspaces;

use crate::support::{Repo, write};

#[test]
fn a_missing_git_is_no_git() {
    let repo = Repo::new();
    let err = GitWorkspaces::new()
        .with_git("/nonexistent/bin/git")
        .check(&repo.path, None)
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::NoGit(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot run git: /nonexistent/bin/git: "),
        "{err}"
    );
    assert!(matches!(err, WorkspaceError::NoGit(_)), "{err:?}");
}

#[test]
fn errors_name_the_place_and_what_to_do() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let unknown = ws.check(&repo.path, Some("v9")).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        format!("{} has no branch or commit \"v9\"", repo.path.display())
    );

    write(&repo.path, "README.md", "changed\n");
    write(&repo.path, "b c.txt", "new\n");
    let dirty = ws.check(&repo.path, None).unwrap_err();
    assert_eq!(
        dirty.to_string(),
        format!(
            "{} has uncommitted changes (README.md, b c.txt)",
            repo.path.display()
        )
    );
    assert!(matches!(dirty, WorkspaceError::Dirty { .. }), "{dirty:?}");

    // A failing git command says which, where, and what git said.
    let git = ws
        .prepare(
            &repo.path,
            "maos/bad..name",
            "main",
            &repo.at("bad"),
            &Setup::default(),
        )
        .unwrap_err();
    match &git {
        WorkspaceError::Git { dir, args, stderr } => {
            assert_eq!(dir, &repo.path);
            assert!(args.starts_with("worktree add"), "{args}");
            assert!(stderr.contains("not a valid branch name"), "{stderr}");
        }
        other => panic!("expected Git, got {other:?}"),
    }
    assert!(
        git.to_string()
            .starts_with("git worktree add --quiet --no-track -b maos/bad..name -- "),
        "{git}"
    );
    assert!(matches!(git, WorkspaceError::Git { .. }), "{git:?}");
    assert!(!repo.at("bad").exists());
}
