//! MAOS's task workspaces through the git command line: implements the application's
//! [`Workspaces`](maos_application::Workspaces) port as [`GitWorkspaces`].
//!
//! Each task works on its own branch in its own `git worktree`: [`prepare`] makes it (and runs
//! the repository's setup: files to copy such as `.env`, a command such as `npm ci`, with a time
//! limit), [`checkpoint`] commits everything before and after each attempt, [`rollback`] returns
//! to a checkpoint, [`merge`] integrates approved work into the orchestration's branch, and
//! [`remove`] takes the worktree away with `git worktree remove`. [`summarise`] tells a planner
//! what a repository holds at HEAD (tree, README, languages, build and test commands, recent
//! commits), reading only what git tracks and only as much as its limits allow.
//!
//! Everything goes through the `git` program (`std::process::Command`), never a git library, so
//! MAOS sees the repository exactly as the user's git does (hooks for `git worktree add`, config,
//! attributes, reftable). Rules this crate keeps:
//!
//! - It never touches a checked-out working tree it did not make, except in
//!   [`merge_into_user_branch`] where the user asked for it, and then only when that tree is
//!   clean. Integration merges happen in a temporary detached worktree under the repository's
//!   `.git` directory (`maos-merge-*`), removed on every way out, and the target branch is moved
//!   with a compare-and-swap `git update-ref`.
//! - It never deletes a directory itself (only `git worktree remove`), never prunes objects and
//!   never rewrites anything but a task's own branch (`rollback`) and the integration branch
//!   (`merge`, fast-forward of the ref to a new merge commit).
//! - "Dirty" means what `git status` lists, untracked files included and ignored files not.
//!
//! Git ≥ 2.36 is assumed (`rev-parse --path-format`, `commit --trailer`, `worktree list -z`).
//!
//! [`prepare`]: maos_application::Workspaces::prepare
//! [`checkpoint`]: maos_application::Workspaces::checkpoint
//! [`rollback`]: maos_application::Workspaces::rollback
//! [`merge`]: maos_application::Workspaces::merge
//! [`remove`]: maos_application::Workspaces::remove
//! [`summarise`]: maos_application::Workspaces::summarise
//! [`merge_into_user_branch`]: maos_application::Workspaces::merge_into_user_branch

mod git;
mod parse;
mod setup;
mod summary;
mod workspaces;

pub use setup::DEFAULT_SETUP_TIMEOUT;
pub use workspaces::GitWorkspaces;
