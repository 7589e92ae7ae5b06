//! The workspace port: where a task's agent works. Each task that targets a repository gets its
//! own branch `maos/<task short id>` in its own `git worktree`, checkpoints (commits) before and
//! after each attempt, and its approved work merged into the orchestration's integration branch.
//! `maos-git` implements it with the git command line; the application and the agent runtime
//! only see this trait.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// A task's worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The repository's main working tree (where `.git` is).
    pub repo: PathBuf,
    /// The worktree's directory.
    pub path: PathBuf,
    /// The worktree's branch, such as `maos/3kq9m2xv`.
    pub branch: String,
    /// The commit the branch was created from.
    pub base: String,
}

/// How to prepare a new worktree of a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    /// Files (relative to the repository's root) copied into each new worktree when they exist,
    /// such as `.env`: files git does not track.
    pub copy: Vec<PathBuf>,
    /// A shell command run in each new worktree (`sh -c`), such as `npm ci`.
    pub command: Option<String>,
    /// How long the command may run.
    pub timeout: Duration,
    /// The command's whole environment (`None`: the daemon's own). The runtime gives it what it
    /// gives agents (the allowlist) plus what the repository's `.maos/env` names, never the
    /// daemon's secrets unasked.
    pub env: Option<Vec<(std::ffi::OsString, std::ffi::OsString)>>,
}

/// What a merge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The branch is merged; the target now points at this commit.
    Merged { commit: String },
    /// Already contained in the target: nothing to do.
    UpToDate { commit: String },
    /// The merge conflicts on these paths; nothing was changed.
    Conflict { paths: Vec<String> },
}

/// A trailer line of a checkpoint commit (`Maos-Task: <id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    pub key: String,
    pub value: String,
}

/// What went wrong with a workspace. Every message names the repository or worktree and what to
/// do about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkspaceError {
    #[error("{path} is not a git repository")]
    NotARepository { path: PathBuf },
    #[error("{repo} has uncommitted changes ({})", paths.join(", "))]
    Dirty { repo: PathBuf, paths: Vec<String> },
    #[error("{repo} is on a detached HEAD")]
    DetachedHead { repo: PathBuf },
    #[error("{repo} is locked by another git process ({lock} exists)")]
    Locked { repo: PathBuf, lock: PathBuf },
    #[error("{repo} has no branch or commit {base:?}")]
    UnknownBase { repo: PathBuf, base: String },
    #[error("the setup of the worktree {path} failed: {detail}")]
    Setup { path: PathBuf, detail: String },
    #[error("the worktree {path} has uncommitted or unmerged work: {detail}")]
    Unsafe { path: PathBuf, detail: String },
    #[error("git {args} failed in {dir}: {stderr}")]
    Git {
        dir: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("cannot run git: {0}")]
    NoGit(String),
}

/// What a planner is told about a repository (`Workspaces::summarise`): enough to plan work in
/// it without reading it all. Every list is bounded by [`SummaryLimits`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoSummary {
    /// Tracked paths to the depth asked, directories ending in `/`, sorted; `tree_cut` says
    /// how many were left out past the limit.
    pub tree: Vec<String>,
    pub tree_cut: usize,
    /// The README's file name and the start of its text.
    pub readme: Option<(String, String)>,
    /// Languages by tracked files (name, files), the most files first.
    pub languages: Vec<(String, usize)>,
    /// The build and test commands the repository's files show (a `Cargo.toml`, a
    /// `package.json`'s scripts, a `Makefile`'s targets…).
    pub commands: Vec<DetectedCommand>,
    /// The newest commits on HEAD, one line each (`<short hash> <subject>`), newest first.
    pub recent_commits: Vec<String>,
}

/// A command a repository's files show for building or testing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedCommand {
    /// `build` or `test`.
    pub purpose: CommandPurpose,
    /// The command line, such as `cargo test`.
    pub command: String,
    /// The file it was found in, relative to the repository (`Cargo.toml`).
    pub source: String,
}

/// What a detected command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommandPurpose {
    Build,
    Test,
}

/// How much of a repository a summary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryLimits {
    /// Path components of the tree (1: the top level only).
    pub depth: usize,
    /// Entries of the tree.
    pub entries: usize,
    /// Characters of the README.
    pub readme_chars: usize,
    /// Commits.
    pub commits: usize,
}

impl Default for SummaryLimits {
    fn default() -> Self {
        SummaryLimits {
            depth: 2,
            entries: 200,
            readme_chars: 3_000,
            commits: 10,
        }
    }
}

/// Git worktrees and branches for tasks.
pub trait Workspaces: Send + Sync + fmt::Debug {
    /// Refuses a repository MAOS must not start from: not a repository, uncommitted changes, a
    /// detached HEAD (unless `base` names what to start from), or a git lock held by another
    /// process. Answers the commit `base` (or HEAD) resolves to.
    fn check(&self, repo: &Path, base: Option<&str>) -> Result<String, WorkspaceError>;

    /// The short name of the branch checked out in `repo` (`main`), `None` when HEAD is
    /// detached: what an orchestration records as its base when none is named, so that its
    /// work merges back into it by default.
    fn current_branch(&self, repo: &Path) -> Result<Option<String>, WorkspaceError>;

    /// What a planner is told about `repo` at HEAD (tracked files only, never the working
    /// tree's uncommitted or ignored files), within `limits`.
    fn summarise(&self, repo: &Path, limits: SummaryLimits) -> Result<RepoSummary, WorkspaceError>;

    /// The task's worktree at `path` on `branch`, created from `base` and prepared by `setup`
    /// when it does not exist yet; the existing one otherwise (a retry works where the last
    /// attempt left off).
    fn prepare(
        &self,
        repo: &Path,
        branch: &str,
        base: &str,
        path: &Path,
        setup: &Setup,
    ) -> Result<Workspace, WorkspaceError>;

    /// Commits everything in the worktree (new files included) with `message` and `trailers`,
    /// even when nothing changed (an empty commit marks the checkpoint). Answers the commit.
    fn checkpoint(
        &self,
        ws: &Workspace,
        message: &str,
        trailers: &[Trailer],
    ) -> Result<String, WorkspaceError>;

    /// The diff between two commits of the worktree's branch (`to` none: the worktree as it is
    /// now, uncommitted changes included); with `stat`, the summary table.
    fn diff(
        &self,
        ws: &Workspace,
        from: &str,
        to: Option<&str>,
        stat: bool,
    ) -> Result<String, WorkspaceError>;

    /// One line such as `3 files changed, 12 insertions(+), 4 deletions(-)`.
    fn shortstat(&self, ws: &Workspace, from: &str, to: &str) -> Result<String, WorkspaceError>;

    /// Returns the branch and the worktree to `commit`, discarding what came after it (the
    /// commits stay reachable through the reflog).
    fn rollback(&self, ws: &Workspace, commit: &str) -> Result<(), WorkspaceError>;

    /// Merges `branch` into `into` without touching any checked-out working tree (in a
    /// temporary worktree of `into`), creating `into` from `start` when it does not exist. A
    /// conflict is reported, never forced.
    fn merge(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
        start: &str,
    ) -> Result<MergeOutcome, WorkspaceError>;

    /// Merges `branch` into a branch of the user's (`maos orchestrate merge --into`). When that
    /// branch is checked out in the repository's main working tree the merge happens there, and
    /// is refused while that tree has uncommitted changes.
    fn merge_into_user_branch(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
    ) -> Result<MergeOutcome, WorkspaceError>;

    /// True when the worktree has uncommitted changes.
    fn is_dirty(&self, ws: &Workspace) -> Result<bool, WorkspaceError>;

    /// True when every commit of `branch` is contained in `into`.
    fn is_merged(&self, repo: &Path, branch: &str, into: &str) -> Result<bool, WorkspaceError>;

    /// Removes the worktree with git's own `git worktree remove` (its branch stays). Without
    /// `force`, a dirty worktree is refused.
    fn remove(&self, ws: &Workspace, force: bool) -> Result<(), WorkspaceError>;
}
