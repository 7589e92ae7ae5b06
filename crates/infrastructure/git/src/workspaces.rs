//! [`GitWorkspaces`]: the application's [`Workspaces`] port through the git command line.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use maos_application::{
    MergeOutcome, RepoSummary, Setup, SummaryLimits, Trailer, Workspace, WorkspaceError, Workspaces,
};

use crate::git::Git;
use crate::parse::{self, WorktreeEntry};
use crate::setup;
use crate::summary::{self, FileText, TopFile, TreeWalk};

/// The identity of MAOS's commits in a repository that has no `user.email`.
const DEFAULT_NAME: &str = "MAOS";
const DEFAULT_EMAIL: &str = "maos@localhost";

/// The file in a worktree's administrative directory (`.git/worktrees/<name>/`) that records a
/// finished setup; `git worktree remove` removes it with the rest.
const SETUP_MARKER: &str = "maos-setup-done";

/// The name of temporary merge worktrees (in the repository's `.git` directory) and diff
/// indexes (in the worktree's administrative directory).
const MERGE_PREFIX: &str = "maos-merge-";
const DIFF_INDEX_PREFIX: &str = "maos-diff-index-";

/// Settings of checkpoint commits: never signed (nothing could answer a passphrase prompt), and
/// trailers placed the way git does by default, whatever the user configured.
const CHECKPOINT_CONFIG: &[&str] = &[
    "commit.gpgSign=false",
    "trailer.where=end",
    "trailer.ifExists=addIfDifferentNeighbor",
    "trailer.ifMissing=add",
];

/// Settings of MAOS's temporary merge worktrees: no hooks, no recorded conflict resolutions.
const TEMP_MERGE_CONFIG: &[&str] = &["core.hooksPath=/dev/null", "rerere.enabled=false"];

/// How many times a merge is tried when other merges keep moving the target branch first.
const MERGE_TRIES: u32 = 10;

/// Makes unique names for temporary files and worktrees of this process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Task workspaces as git worktrees, run through the `git` program.
///
/// Every git command runs with `LC_ALL=C`, `GIT_TERMINAL_PROMPT=0`, no pager, no colour,
/// `core.quotepath=false`, `GIT_OPTIONAL_LOCKS=0` (MAOS's `git status` never competes with the
/// user's git for the index lock), no advice, standard input closed, and without the variables
/// that would point it at another repository (`GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE`, ...).
///
/// Policies:
/// - **Dirty** means what `git status` lists: staged and unstaged changes and untracked files,
///   but not the files git ignores (`.gitignore`, `.git/info/exclude`, `core.excludesFile`).
///   An untracked `.env` that is not ignored makes a tree dirty; `node_modules/` in
///   `.gitignore` does not.
/// - Commits made by MAOS use the repository's identity; when it has no `user.email`, MAOS's
///   own (`MAOS <maos@localhost>`) for the missing parts. Environment variables such as
///   `GIT_AUTHOR_NAME` still win, as they do in git.
/// - Setup files are copied as they are; one the repository does not ignore is a new file in
///   the worktree, and the first checkpoint commits it like any other (list `.env` in
///   `.gitignore`).
/// - `diff` against the working tree stages everything into a temporary copy of the worktree's
///   index (`GIT_INDEX_FILE`), so new files show and the real index is never touched.
/// - Merges into MAOS's integration branches happen in a temporary detached worktree under the
///   repository's `.git` directory (`.git/maos-merge-<pid>-<n>-<ns>`), removed with
///   `git worktree remove --force` on every way out; the branch is then moved with a
///   compare-and-swap `git update-ref`.
/// - MAOS never removes a directory itself: worktrees go with `git worktree remove`.
#[derive(Debug, Clone)]
pub struct GitWorkspaces {
    git: Git,
}

impl Default for GitWorkspaces {
    fn default() -> Self {
        Self::new()
    }
}

impl GitWorkspaces {
    /// Workspaces run with the `git` found on the `PATH`.
    pub fn new() -> Self {
        GitWorkspaces {
            git: Git::new("git"),
        }
    }

    /// The top directory of the working tree `dir` is in (a repository named by one of its
    /// subdirectories is the same repository).
    pub fn top_level(&self, dir: &Path) -> Result<PathBuf, WorkspaceError> {
        Ok(self.repo_dirs(dir)?.top)
    }

    /// Runs `program` as git instead (a path, or a name looked up on the `PATH`).
    pub fn with_git(mut self, program: impl Into<OsString>) -> Self {
        self.git = Git::new(program);
        self
    }

    /// The repository's directories as git sees them from `repo` (any directory inside it).
    fn repo_dirs(&self, repo: &Path) -> Result<RepoDirs, WorkspaceError> {
        let not_a_repository = || WorkspaceError::NotARepository {
            path: repo.to_path_buf(),
        };
        if !repo.is_dir() {
            return Err(not_a_repository());
        }
        let command = self.git.at(repo).args([
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        ]);
        let output = command.output()?;
        if !output.status.success() {
            if String::from_utf8_lossy(&output.stderr).contains("not a git repository") {
                return Err(not_a_repository());
            }
            return Err(command.error(&output));
        }
        let mut lines = output
            .stdout
            .split(|b| *b == b'\n')
            .map(|line| PathBuf::from(OsStr::from_bytes(line)));
        match (lines.next(), lines.next(), lines.next()) {
            (Some(top), Some(git_dir), Some(common_dir)) => Ok(RepoDirs {
                top,
                git_dir,
                common_dir,
            }),
            _ => Err(command.error(&output)),
        }
    }

    /// The first lock file found of those a git process holds while changing what MAOS is
    /// about to use: the index, HEAD, the checked-out branch, the reftable.
    fn lock(dirs: &RepoDirs, branch_ref: Option<&str>) -> Option<PathBuf> {
        let mut candidates = vec![
            dirs.git_dir.join("index.lock"),
            dirs.git_dir.join("HEAD.lock"),
            dirs.common_dir.join("reftable/tables.list.lock"),
        ];
        if let Some(branch_ref) = branch_ref {
            candidates.push(dirs.common_dir.join(format!("{branch_ref}.lock")));
        }
        candidates
            .into_iter()
            .find(|p| p.symlink_metadata().is_ok())
    }

    /// The full name of the branch checked out in `dir` (`refs/heads/x`), `None` when detached.
    fn head_branch(&self, dir: &Path) -> Result<Option<String>, WorkspaceError> {
        self.git
            .at(dir)
            .args(["symbolic-ref", "-q", "HEAD"])
            .maybe()
    }

    /// The commit HEAD is at in `dir`.
    fn head(&self, dir: &Path) -> Result<String, WorkspaceError> {
        Ok(self
            .git
            .at(dir)
            .args(["rev-parse", "--verify", "HEAD"])
            .run()?
            .trim()
            .to_owned())
    }

    /// The commit `rev` names in `dir`'s repository, `None` when it names none.
    fn resolve(&self, dir: &Path, rev: &str) -> Result<Option<String>, WorkspaceError> {
        if rev.is_empty() {
            return Ok(None);
        }
        self.git
            .at(dir)
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .maybe()
    }

    /// The commit of the local branch `name`, `None` when there is no such branch.
    fn branch_commit(&self, dir: &Path, name: &str) -> Result<Option<String>, WorkspaceError> {
        if name.is_empty() {
            return Ok(None);
        }
        self.resolve(dir, &format!("refs/heads/{name}"))
    }

    /// The commit of `name` as a local branch first, then as any revision.
    fn branch_or_rev(&self, dir: &Path, name: &str) -> Result<Option<String>, WorkspaceError> {
        match self.branch_commit(dir, name)? {
            Some(commit) => Ok(Some(commit)),
            None => self.resolve(dir, name),
        }
    }

    fn is_ancestor(&self, dir: &Path, commit: &str, of: &str) -> Result<bool, WorkspaceError> {
        self.git
            .at(dir)
            .args(["merge-base", "--is-ancestor", commit, of])
            .test()
    }

    /// What `git status` lists in the working tree `dir` (untracked files included, ignored
    /// ones not).
    fn dirty_paths(&self, dir: &Path) -> Result<Vec<String>, WorkspaceError> {
        let output = self
            .git
            .at(dir)
            .args(["status", "--porcelain=v1", "-z", "--untracked-files=normal"])
            .run_bytes()?;
        Ok(parse::status_paths(&output))
    }

    fn worktrees(&self, top: &Path) -> Result<Vec<WorktreeEntry>, WorkspaceError> {
        let output = self
            .git
            .at(top)
            .args(["worktree", "list", "--porcelain", "-z"])
            .run_bytes()?;
        Ok(parse::worktrees(&output))
    }

    /// `-c` settings that give commits made in `dir` an identity when the repository has no
    /// `user.email`; none when it has one.
    fn identity(&self, dir: &Path) -> Result<Vec<String>, WorkspaceError> {
        let configured = self
            .git
            .at(dir)
            .args(["config", "--get-regexp", r"^user\.(name|email)$"])
            .maybe()?
            .unwrap_or_default();
        let has = |key: &str| {
            configured.lines().any(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .is_some_and(|value| !value.trim().is_empty())
            })
        };
        let mut settings = Vec::new();
        if !has("user.email") {
            settings.push(format!("user.email={DEFAULT_EMAIL}"));
            if !has("user.name") {
                settings.push(format!("user.name={DEFAULT_NAME}"));
            }
        }
        Ok(settings)
    }

    /// Refuses a workspace whose worktree is not on its branch (an agent switched branches):
    /// MAOS commits and rolls back only the task's branch.
    fn ensure_on_branch(&self, ws: &Workspace) -> Result<(), WorkspaceError> {
        let head = self.head_branch(&ws.path)?;
        let want = format!("refs/heads/{}", ws.branch);
        if head.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        let actual = match &head {
            Some(name) => format!(
                "the branch {}",
                name.strip_prefix("refs/heads/").unwrap_or(name)
            ),
            None => "a detached HEAD".to_owned(),
        };
        Err(WorkspaceError::Unsafe {
            path: ws.path.clone(),
            detail: format!(
                "it is on {actual} instead of {}; switch it back (`git switch {}`)",
                ws.branch, ws.branch
            ),
        })
    }

    /// Copies the setup files and runs the setup command in the new worktree `path`.
    fn run_setup(top: &Path, path: &Path, setup: &Setup) -> Result<(), String> {
        setup::copy_files(top, path, &setup.copy)?;
        if let Some(command) = setup.command.as_deref().filter(|c| !c.trim().is_empty()) {
            setup::run_command(path, command, setup.timeout, setup.env.as_deref())?;
        }
        Ok(())
    }

    /// The setup marker of the worktree `path` (in its administrative directory).
    fn setup_marker(&self, path: &Path) -> Result<PathBuf, WorkspaceError> {
        Ok(self.repo_dirs(path)?.git_dir.join(SETUP_MARKER))
    }

    fn mark_set_up(&self, path: &Path) {
        let result = self
            .setup_marker(path)
            .map_err(|e| e.to_string())
            .and_then(|marker| fs::write(&marker, b"").map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::warn!(worktree = %path.display(), error = %e, "cannot mark the worktree as set up");
        }
    }

    /// An existing worktree of the task's branch, set up again if its setup never finished
    /// (MAOS stopped during it).
    fn reuse(
        &self,
        top: &Path,
        path: PathBuf,
        branch: &str,
        base_commit: &str,
        setup: &Setup,
    ) -> Result<Workspace, WorkspaceError> {
        let base = self.fork_point(top, base_commit, branch)?;
        let needs_setup = !setup.copy.is_empty() || setup.command.is_some();
        if needs_setup && !self.setup_marker(&path)?.exists() {
            // Never removed here: the worktree was not made by this call.
            Self::run_setup(top, &path, setup).map_err(|detail| WorkspaceError::Setup {
                path: path.clone(),
                detail,
            })?;
            self.mark_set_up(&path);
        }
        Ok(Workspace {
            repo: top.to_path_buf(),
            path,
            branch: branch.to_owned(),
            base,
        })
    }

    /// Where an existing `branch` left `base`: the base itself when the branch still contains
    /// it, the last commit they share when the base has moved on since.
    fn fork_point(&self, top: &Path, base: &str, branch: &str) -> Result<String, WorkspaceError> {
        let fork = self
            .git
            .at(top)
            .args(["merge-base", base])
            .arg(format!("refs/heads/{branch}"))
            .maybe()?;
        Ok(fork.unwrap_or_else(|| base.to_owned()))
    }

    /// Undoes a worktree this call made, after its setup failed: the worktree (nothing of the
    /// user's is in it), and the branch if this call created it and it is still at the base.
    fn discard_new(&self, ws: &Workspace, created_branch: bool) {
        let removed = self
            .git
            .at(&ws.repo)
            .args(["worktree", "remove", "--force", "--"])
            .arg(&ws.path)
            .run();
        if let Err(e) = removed {
            tracing::warn!(worktree = %ws.path.display(), error = %e, "cannot remove a worktree whose setup failed");
        }
        if created_branch {
            let deleted = self
                .git
                .at(&ws.repo)
                .args(["update-ref", "-d"])
                .arg(format!("refs/heads/{}", ws.branch))
                .arg(&ws.base)
                .run();
            if let Err(e) = deleted {
                tracing::warn!(branch = %ws.branch, error = %e, "cannot delete a branch whose setup failed");
            }
        }
    }

    /// Merges `branch_commit` into the branch `into` (at `into_commit`, checked out nowhere) in
    /// a temporary worktree, then moves `into` to the merge commit if nobody moved it meanwhile
    /// (compare-and-swap); when another merge moved it first, merges again on top of that, a
    /// few times at most.
    fn merge_detached(
        &self,
        dirs: &RepoDirs,
        branch: &str,
        branch_commit: &str,
        into: &str,
        into_commit: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let mut into_commit = into_commit.to_owned();
        let mut tries = 0;
        loop {
            tries += 1;
            match self.merge_once(dirs, branch, branch_commit, into, &into_commit)? {
                Ok(outcome) => return Ok(outcome),
                Err(moved) => {
                    let now = self.branch_commit(&dirs.top, into)?;
                    match now {
                        Some(now) if tries < MERGE_TRIES => {
                            if now == into_commit {
                                // Not moved yet: another merge holds the ref's lock while it
                                // moves it. Give it a moment, then look again.
                                std::thread::sleep(std::time::Duration::from_millis(
                                    10 * u64::from(tries),
                                ));
                            } else {
                                tracing::debug!(
                                    into,
                                    "the branch moved during a merge; merging again"
                                );
                            }
                            into_commit = now;
                        }
                        _ => return Err(moved),
                    }
                }
            }
        }
    }

    /// One try of [`merge_detached`](Self::merge_detached): `Ok(Err(e))` when the merge
    /// succeeded but `into` could not be moved to it (`e` says why).
    fn merge_once(
        &self,
        dirs: &RepoDirs,
        branch: &str,
        branch_commit: &str,
        into: &str,
        into_commit: &str,
    ) -> Result<Result<MergeOutcome, WorkspaceError>, WorkspaceError> {
        let top = &dirs.top;
        if self.is_ancestor(top, branch_commit, into_commit)? {
            return Ok(Ok(MergeOutcome::UpToDate {
                commit: into_commit.to_owned(),
            }));
        }
        let temp = TempWorktree::add(self, dirs, into_commit)?;
        let message = format!("Merge {branch} into {into}");
        let merge = self
            .git
            .at(&temp.path)
            .configs(self.identity(top)?)
            .configs(TEMP_MERGE_CONFIG.iter().copied())
            .args([
                "merge",
                "--no-ff",
                "--no-edit",
                "--no-verify",
                "--quiet",
                "-m",
                &message,
                branch_commit,
            ]);
        let output = merge.output()?;
        if !output.status.success() {
            let paths = self.conflicts(&temp.path)?;
            self.abort_merge(&temp.path);
            return if paths.is_empty() {
                Err(merge.error(&output))
            } else {
                Ok(Ok(MergeOutcome::Conflict { paths }))
            };
        }
        let commit = self.head(&temp.path)?;
        drop(temp);
        let moved = self
            .git
            .at(top)
            .args(["update-ref", "-m", &message])
            .arg(format!("refs/heads/{into}"))
            .args([&commit, into_commit])
            .run();
        Ok(moved.map(|_| MergeOutcome::Merged { commit }))
    }

    /// Merges `branch_commit` into `into` where the user has it checked out (`tree`), refusing a
    /// tree with uncommitted changes or held by another git process.
    fn merge_in_tree(
        &self,
        tree: &Path,
        branch: &str,
        branch_commit: &str,
        into: &str,
        into_commit: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let dirs = self.repo_dirs(tree)?;
        let into_ref = format!("refs/heads/{into}");
        if let Some(lock) = Self::lock(&dirs, Some(&into_ref)) {
            return Err(WorkspaceError::Locked {
                repo: dirs.top,
                lock,
            });
        }
        let dirty = self.dirty_paths(&dirs.top)?;
        if !dirty.is_empty() {
            return Err(WorkspaceError::Dirty {
                repo: dirs.top,
                paths: dirty,
            });
        }
        if self.is_ancestor(&dirs.top, branch_commit, into_commit)? {
            return Ok(MergeOutcome::UpToDate {
                commit: into_commit.to_owned(),
            });
        }
        let message = format!("Merge {branch} into {into}");
        let merge = self
            .git
            .at(&dirs.top)
            .configs(self.identity(&dirs.top)?)
            .args([
                "merge",
                "--no-ff",
                "--no-edit",
                "--quiet",
                "-m",
                &message,
                branch_commit,
            ]);
        let output = merge.output()?;
        if output.status.success() {
            return Ok(MergeOutcome::Merged {
                commit: self.head(&dirs.top)?,
            });
        }
        let paths = self.conflicts(&dirs.top)?;
        if self.resolve(&dirs.top, "MERGE_HEAD")?.is_some() {
            self.abort_merge(&dirs.top);
        }
        if paths.is_empty() {
            Err(merge.error(&output))
        } else {
            Ok(MergeOutcome::Conflict { paths })
        }
    }

    /// The unmerged paths of a stopped merge in `dir`.
    fn conflicts(&self, dir: &Path) -> Result<Vec<String>, WorkspaceError> {
        let output = self
            .git
            .at(dir)
            .args(["diff", "--name-only", "--diff-filter=U", "-z"])
            .run_bytes()?;
        let mut paths: Vec<String> = output
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// One pass over every path tracked at `commit` (`git ls-tree -r -z`), streamed: what the
    /// summary needs is gathered as the paths go by, none of them kept beyond the limits.
    fn walk_tree(
        &self,
        top: &Path,
        commit: &str,
        limits: &SummaryLimits,
    ) -> Result<TreeWalk, WorkspaceError> {
        self.git
            .at(top)
            .args(["ls-tree", "-r", "-z", "--full-tree", commit])
            .stream(|out| {
                let mut walk = TreeWalk::new(limits);
                let mut field = Vec::new();
                loop {
                    field.clear();
                    let read = (&mut *out)
                        .take(summary::MAX_TREE_ENTRY)
                        .read_until(0, &mut field)?;
                    if read == 0 {
                        return Ok(walk);
                    }
                    if field.last() == Some(&0) {
                        field.pop();
                    } else if read as u64 == summary::MAX_TREE_ENTRY {
                        return Err(std::io::Error::other(format!(
                            "an entry longer than {} bytes",
                            summary::MAX_TREE_ENTRY
                        )));
                    }
                    if let Some(entry) = parse::tree_entry(&field) {
                        walk.add(&entry);
                    }
                }
            })
    }

    /// The start of a blob: at most `max` bytes, and whether that was all of it.
    fn blob_start(
        &self,
        top: &Path,
        blob: &str,
        max: usize,
    ) -> Result<(Vec<u8>, bool), WorkspaceError> {
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        self.git
            .at(top)
            .args(["cat-file", "blob", blob])
            .stream(|out| {
                let mut bytes = Vec::new();
                out.take(limit).read_to_end(&mut bytes)?;
                let whole = bytes.len() <= max;
                bytes.truncate(max);
                Ok((bytes, whole))
            })
    }

    /// A top-level file's text (at most [`summary::MAX_FILE_BYTES`]), `None` when it is not a
    /// regular file.
    fn top_file_text(
        &self,
        top: &Path,
        file: &TopFile,
    ) -> Result<Option<FileText>, WorkspaceError> {
        let Some(blob) = &file.blob else {
            return Ok(None);
        };
        let (bytes, whole) = self.blob_start(top, blob, summary::MAX_FILE_BYTES)?;
        Ok(Some(FileText {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            whole,
        }))
    }

    /// The README's name and the start of its text, cut to `chars` characters.
    fn readme(
        &self,
        top: &Path,
        walk: &TreeWalk,
        chars: usize,
    ) -> Result<Option<(String, String)>, WorkspaceError> {
        let Some(file) = walk.readme() else {
            return Ok(None);
        };
        let Some(blob) = &file.blob else {
            return Ok(None);
        };
        // A character is at most 4 bytes: this is enough for one more than asked, which tells
        // whether there is more.
        let max = chars
            .saturating_add(1)
            .saturating_mul(4)
            .min(summary::MAX_FILE_BYTES);
        let (bytes, whole) = self.blob_start(top, blob, max)?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(Some((
            file.name.clone(),
            summary::cut_text(&text, chars, !whole),
        )))
    }

    /// `git log -n <count> --format=%h %s` from `commit`, newest first, each subject cut.
    fn recent_commits(
        &self,
        top: &Path,
        commit: &str,
        count: usize,
    ) -> Result<Vec<String>, WorkspaceError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        self.git
            .at(top)
            .configs(["log.showSignature=false"])
            .args(["log", "-z", "--no-color", "--format=%h %s"])
            .arg(format!("--max-count={count}"))
            .args([commit, "--"])
            .stream(|out| {
                let mut lines = Vec::new();
                let mut line = Vec::new();
                // A subject is one line, but of any length: only its start is kept.
                let max = summary::MAX_SUBJECT_CHARS * 4 + 4;
                while lines.len() < count {
                    line.clear();
                    let read = (&mut *out).take(max as u64).read_until(0, &mut line)?;
                    if read == 0 {
                        break;
                    }
                    let ended = line.last() == Some(&0);
                    if ended {
                        line.pop();
                    } else {
                        skip_past_nul(out)?;
                    }
                    let text = String::from_utf8_lossy(&line);
                    lines.push(summary::cut_text(
                        text.trim_end(),
                        summary::MAX_SUBJECT_CHARS,
                        !ended,
                    ));
                }
                Ok(lines)
            })
    }

    fn abort_merge(&self, dir: &Path) {
        if let Err(e) = self.git.at(dir).args(["merge", "--abort"]).run() {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot abort a merge");
        }
    }
}

/// Where git keeps a repository, seen from one of its working trees.
#[derive(Debug)]
/// Serialises, within this process, what adds or removes worktrees of one repository (task
/// worktrees, merges in temporary worktrees, removals): two `git worktree add` at once can trip
/// over each other's half-made administrative directory. Other processes are covered by git's
/// own locks and the merge's compare-and-swap.
struct RepoGuard {
    slot: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl RepoGuard {
    /// Waits until no other thread of this process works on the worktrees of the repository
    /// whose common git directory is `common_dir`.
    fn lock(common_dir: &Path) -> RepoGuard {
        use std::collections::HashMap;
        use std::sync::{Arc, Condvar, Mutex, OnceLock};
        type Slots = Mutex<HashMap<PathBuf, Arc<(Mutex<bool>, Condvar)>>>;
        static SLOTS: OnceLock<Slots> = OnceLock::new();
        let key = std::fs::canonicalize(common_dir).unwrap_or_else(|_| common_dir.to_path_buf());
        let slot = {
            let mut slots = SLOTS
                .get_or_init(Slots::default)
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            Arc::clone(slots.entry(key).or_default())
        };
        {
            let (busy, freed) = &*slot;
            let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
            while *busy {
                busy = freed.wait(busy).unwrap_or_else(|p| p.into_inner());
            }
            *busy = true;
        }
        RepoGuard { slot }
    }
}

impl Drop for RepoGuard {
    fn drop(&mut self) {
        let (busy, freed) = &*self.slot;
        *busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        freed.notify_one();
    }
}

struct RepoDirs {
    /// The working tree's top directory.
    top: PathBuf,
    /// Its git directory (`.git`, or `.git/worktrees/<name>` for a linked worktree).
    git_dir: PathBuf,
    /// The repository's `.git` directory, shared by all its worktrees.
    common_dir: PathBuf,
}

/// A detached worktree for one merge, in the repository's `.git` directory (same file system,
/// same permissions as the repository, out of every working tree), removed when dropped, on
/// every path out of the merge.
#[derive(Debug)]
struct TempWorktree<'a> {
    workspaces: &'a GitWorkspaces,
    top: PathBuf,
    path: PathBuf,
}

impl<'a> TempWorktree<'a> {
    fn add(
        workspaces: &'a GitWorkspaces,
        dirs: &RepoDirs,
        commit: &str,
    ) -> Result<Self, WorkspaceError> {
        let path = dirs.common_dir.join(unique_name(MERGE_PREFIX));
        workspaces
            .git
            .at(&dirs.top)
            .configs(TEMP_MERGE_CONFIG.iter().copied())
            .args(["worktree", "add", "--detach", "--quiet", "--"])
            .arg(&path)
            .arg(commit)
            .run()?;
        Ok(TempWorktree {
            workspaces,
            top: dirs.top.clone(),
            path,
        })
    }
}

impl Drop for TempWorktree<'_> {
    fn drop(&mut self) {
        let removed = self
            .workspaces
            .git
            .at(&self.top)
            .args(["worktree", "remove", "--force", "--force", "--"])
            .arg(&self.path)
            .run();
        if let Err(e) = removed {
            tracing::warn!(worktree = %self.path.display(), error = %e, "cannot remove a temporary merge worktree");
        }
    }
}

/// A copy of a worktree's index in its administrative directory, removed when dropped: lets
/// MAOS stage everything to diff it without touching the real index.
#[derive(Debug)]
struct TempIndex {
    path: PathBuf,
}

impl TempIndex {
    fn copy_of(git_dir: &Path) -> Result<Self, WorkspaceError> {
        let path = git_dir.join(unique_name(DIFF_INDEX_PREFIX));
        let index = git_dir.join("index");
        let temp = TempIndex { path };
        if index.exists() {
            fs::copy(&index, &temp.path).map_err(|e| WorkspaceError::Git {
                dir: git_dir.to_path_buf(),
                args: "diff".into(),
                stderr: format!("cannot copy the index to {}: {e}", temp.path.display()),
            })?;
        }
        Ok(temp)
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let mut lock = self.path.clone().into_os_string();
        lock.push(".lock");
        let _ = fs::remove_file(lock);
    }
}

/// Skips what is left of a NUL-terminated field too long to keep (without keeping it).
fn skip_past_nul(out: &mut dyn BufRead) -> std::io::Result<()> {
    loop {
        let buffer = out.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(nul) = buffer.iter().position(|b| *b == 0) {
            out.consume(nul + 1);
            return Ok(());
        }
        let len = buffer.len();
        out.consume(len);
    }
}

/// `<prefix><pid>-<sequence>-<nanoseconds>`: unique in this process, and unlike what an earlier
/// process of the same id left behind.
fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{nanos}",
        process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// `path` made absolute, with symbolic links resolved as far as it exists (git records
/// worktrees by their real path).
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(real) = fs::canonicalize(&absolute) {
        return real;
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || normalize(a) == normalize(b)
}

fn unknown(repo: &Path, base: &str) -> WorkspaceError {
    WorkspaceError::UnknownBase {
        repo: repo.to_path_buf(),
        base: base.to_owned(),
    }
}

/// A `Key: value` trailer line, refusing keys git would not read back as one.
fn trailer_line(trailer: &Trailer, dir: &Path) -> Result<String, WorkspaceError> {
    let key = trailer.key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(WorkspaceError::Git {
            dir: dir.to_path_buf(),
            args: "commit --trailer".into(),
            stderr: format!("invalid trailer key {key:?}: use letters, digits and '-'"),
        });
    }
    let value = trailer.value.replace(['\r', '\n'], " ");
    Ok(format!("{key}: {}", value.trim()))
}

impl Workspaces for GitWorkspaces {
    fn current_branch(&self, repo: &Path) -> Result<Option<String>, WorkspaceError> {
        let dirs = self.repo_dirs(repo)?;
        Ok(self
            .head_branch(&dirs.top)?
            .map(|b| b.trim().trim_start_matches("refs/heads/").to_owned()))
    }

    /// At the commit HEAD names, from what git tracks only: `git ls-tree -r -z` streamed once
    /// (tree, languages, the top-level files), `git cat-file blob` for the README and build
    /// files (their start only), `git log` for the commits. A repository without commits has
    /// an empty summary.
    fn summarise(&self, repo: &Path, limits: SummaryLimits) -> Result<RepoSummary, WorkspaceError> {
        let top = self.repo_dirs(repo)?.top;
        let Some(commit) = self.resolve(&top, "HEAD")? else {
            return Ok(RepoSummary::default());
        };
        let walk = self.walk_tree(&top, &commit, &limits)?;
        let readme = self.readme(&top, &walk, limits.readme_chars)?;
        let commands = summary::detect_commands(&walk, |file| self.top_file_text(&top, file))?;
        let recent_commits = self.recent_commits(&top, &commit, limits.commits)?;
        let languages = walk.languages();
        let mut tree = walk.tree;
        // git lists paths in sorted order already; sorting again costs nothing at this size.
        tree.sort();
        Ok(RepoSummary {
            tree,
            tree_cut: walk.tree_cut,
            readme,
            languages,
            commands,
            recent_commits,
        })
    }

    /// Checks, in this order: a repository (any directory inside one resolves to its top), no
    /// lock held by another git process (`index.lock`, `HEAD.lock`, the branch's ref lock), a
    /// branch checked out unless `base` is given, a clean tree (untracked files count, ignored
    /// ones do not), and a `base` (or HEAD) that names a commit.
    fn check(&self, repo: &Path, base: Option<&str>) -> Result<String, WorkspaceError> {
        let dirs = self.repo_dirs(repo)?;
        let top = &dirs.top;
        let head = self.head_branch(top)?;
        if let Some(lock) = Self::lock(&dirs, head.as_deref()) {
            return Err(WorkspaceError::Locked {
                repo: top.clone(),
                lock,
            });
        }
        if head.is_none() && base.is_none() {
            return Err(WorkspaceError::DetachedHead { repo: top.clone() });
        }
        let dirty = self.dirty_paths(top)?;
        if !dirty.is_empty() {
            return Err(WorkspaceError::Dirty {
                repo: top.clone(),
                paths: dirty,
            });
        }
        let rev = base.unwrap_or("HEAD");
        self.resolve(top, rev)?.ok_or_else(|| unknown(top, rev))
    }

    /// `git worktree add -b <branch> <path> <base commit>` (or, when the branch exists but has
    /// no worktree, `git worktree add <path> <branch>`), then the setup. A failed setup removes
    /// the new worktree (and the branch, if it made it) so that a retry starts clean. An
    /// existing worktree of `branch` at `path` is answered as it is (set up again only if its
    /// setup never finished); its `base` is where the branch left `base`.
    fn prepare(
        &self,
        repo: &Path,
        branch: &str,
        base: &str,
        path: &Path,
        setup: &Setup,
    ) -> Result<Workspace, WorkspaceError> {
        let dirs = self.repo_dirs(repo)?;
        let _one_at_a_time = RepoGuard::lock(&dirs.common_dir);
        let top = dirs.top;
        let base_commit = self
            .resolve(&top, base)?
            .ok_or_else(|| unknown(&top, base))?;
        let path = normalize(path);
        let branch_ref = format!("refs/heads/{branch}");
        for worktree in self.worktrees(&top)? {
            let here = same_path(&worktree.path, &path);
            let ours = worktree.branch.as_deref() == Some(branch_ref.as_str());
            if here && ours && !worktree.prunable {
                return self.reuse(&top, worktree.path, branch, &base_commit, setup);
            }
            if worktree.prunable && (here || ours) {
                // Its directory is gone: clear git's record of it, or git refuses the path or
                // the branch.
                self.git
                    .at(&top)
                    .args(["worktree", "remove", "--"])
                    .arg(&worktree.path)
                    .run()?;
            }
        }
        let existing = self.branch_commit(&top, branch)?;
        let add = self.git.at(&top).args(["worktree", "add", "--quiet"]);
        let add = match existing {
            Some(_) => add.arg("--").arg(&path).arg(branch),
            None => add
                .args(["--no-track", "-b", branch, "--"])
                .arg(&path)
                .arg(&base_commit),
        };
        add.run()?;
        let base = match existing {
            Some(_) => self.fork_point(&top, &base_commit, branch)?,
            None => base_commit,
        };
        let ws = Workspace {
            repo: top,
            path: normalize(&path),
            branch: branch.to_owned(),
            base,
        };
        if let Err(detail) = Self::run_setup(&ws.repo, &ws.path, setup) {
            self.discard_new(&ws, existing.is_none());
            return Err(WorkspaceError::Setup {
                path: ws.path,
                detail,
            });
        }
        self.mark_set_up(&ws.path);
        Ok(ws)
    }

    /// `git add -A` and `git commit --allow-empty --no-verify` with the trailers (`--trailer`),
    /// unsigned. Ignored files stay out, as git's rules say. Refused when the worktree is not on
    /// its branch.
    fn checkpoint(
        &self,
        ws: &Workspace,
        message: &str,
        trailers: &[Trailer],
    ) -> Result<String, WorkspaceError> {
        self.ensure_on_branch(ws)?;
        let trailers = trailers
            .iter()
            .map(|t| trailer_line(t, &ws.path))
            .collect::<Result<Vec<_>, _>>()?;
        self.git.at(&ws.path).args(["add", "-A"]).run()?;
        let mut commit = self
            .git
            .at(&ws.path)
            .configs(self.identity(&ws.path)?)
            .configs(CHECKPOINT_CONFIG.iter().copied())
            .args([
                "commit",
                "--quiet",
                "--allow-empty",
                "--allow-empty-message",
                "--no-verify",
                "--cleanup=whitespace",
                "-m",
                message,
            ]);
        for trailer in &trailers {
            commit = commit.arg("--trailer").arg(trailer);
        }
        commit.run()?;
        self.head(&ws.path)
    }

    /// `git diff <from> <to>`; with `to` none, the worktree as a checkpoint would commit it now:
    /// everything is staged into a temporary copy of the index (`GIT_INDEX_FILE`), so new files
    /// show as added, ignored files stay out, and the worktree's own index is never touched.
    fn diff(
        &self,
        ws: &Workspace,
        from: &str,
        to: Option<&str>,
        stat: bool,
    ) -> Result<String, WorkspaceError> {
        let from_commit = self
            .resolve(&ws.path, from)?
            .ok_or_else(|| unknown(&ws.path, from))?;
        let stat = stat.then_some("--stat");
        match to {
            Some(to) => {
                let to_commit = self
                    .resolve(&ws.path, to)?
                    .ok_or_else(|| unknown(&ws.path, to))?;
                self.git
                    .at(&ws.path)
                    .args(["diff", "--no-ext-diff"])
                    .args(stat)
                    .args([from_commit.as_str(), to_commit.as_str(), "--"])
                    .run()
            }
            None => {
                let dirs = self.repo_dirs(&ws.path)?;
                let index = TempIndex::copy_of(&dirs.git_dir)?;
                self.git
                    .at(&dirs.top)
                    .env("GIT_INDEX_FILE", &index.path)
                    .args(["add", "-A"])
                    .run()?;
                self.git
                    .at(&dirs.top)
                    .env("GIT_INDEX_FILE", &index.path)
                    .args(["diff", "--cached", "--no-ext-diff"])
                    .args(stat)
                    .args([from_commit.as_str(), "--"])
                    .run()
            }
        }
    }

    /// `git diff --shortstat <from> <to>`, or `no changes`.
    fn shortstat(&self, ws: &Workspace, from: &str, to: &str) -> Result<String, WorkspaceError> {
        let from_commit = self
            .resolve(&ws.path, from)?
            .ok_or_else(|| unknown(&ws.path, from))?;
        let to_commit = self
            .resolve(&ws.path, to)?
            .ok_or_else(|| unknown(&ws.path, to))?;
        let out = self
            .git
            .at(&ws.path)
            .args(["diff", "--shortstat", &from_commit, &to_commit, "--"])
            .run()?;
        let line = out.trim();
        Ok(if line.is_empty() {
            "no changes".to_owned()
        } else {
            line.to_owned()
        })
    }

    /// `git reset --hard <commit>` and `git clean -fd` (ignored files stay). Refuses a commit
    /// that is not on the branch (an ancestor of its head, or the head): a rollback only goes
    /// back.
    fn rollback(&self, ws: &Workspace, commit: &str) -> Result<(), WorkspaceError> {
        self.ensure_on_branch(ws)?;
        let target = self
            .resolve(&ws.path, commit)?
            .ok_or_else(|| unknown(&ws.path, commit))?;
        let branch_ref = format!("refs/heads/{}", ws.branch);
        if !self.is_ancestor(&ws.path, &target, &branch_ref)? {
            return Err(WorkspaceError::Unsafe {
                path: ws.path.clone(),
                detail: format!(
                    "{commit} is not a commit of the branch {}: a rollback only returns to one of \
                     the branch's earlier checkpoints",
                    ws.branch
                ),
            });
        }
        self.git
            .at(&ws.path)
            .args(["reset", "--hard", "--quiet", &target])
            .run()?;
        self.git.at(&ws.path).args(["clean", "-fdq"]).run()?;
        Ok(())
    }

    /// Merges in a temporary detached worktree under the repository's `.git` directory
    /// (`maos-merge-*`), removed on every path out; the branch `into` is then moved with a
    /// compare-and-swap `git update-ref`. Refused (`Unsafe`) while `into` is checked out in any
    /// worktree, since moving it would change that working tree's meaning under its feet.
    fn merge(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
        start: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let dirs = self.repo_dirs(repo)?;
        let _one_at_a_time = RepoGuard::lock(&dirs.common_dir);
        let top = dirs.top.clone();
        let branch_commit = self
            .branch_commit(&top, branch)?
            .ok_or_else(|| unknown(&top, branch))?;
        let into_ref = format!("refs/heads/{into}");
        if let Some(worktree) = self
            .worktrees(&top)?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(into_ref.as_str()))
        {
            return Err(WorkspaceError::Unsafe {
                path: worktree.path,
                detail: format!(
                    "the branch {into} is checked out there, and MAOS never moves a branch under \
                     a working tree; switch that worktree to another branch, then merge again"
                ),
            });
        }
        let into_commit = match self.branch_commit(&top, into)? {
            Some(commit) => commit,
            None => {
                let start_commit = self
                    .resolve(&top, start)?
                    .ok_or_else(|| unknown(&top, start))?;
                let created = self
                    .git
                    .at(&top)
                    .args(["branch", "--no-track", into, &start_commit])
                    .run();
                match created {
                    Ok(_) => start_commit,
                    // Made meanwhile by another merge into it: use that.
                    Err(e) => self.branch_commit(&top, into)?.ok_or(e)?,
                }
            }
        };
        self.merge_detached(&dirs, branch, &branch_commit, into, &into_commit)
    }

    /// Where `into` is checked out, `git merge --no-ff` there (refused while that tree is dirty
    /// or locked; a conflict is aborted); checked out nowhere, as [`merge`](Self::merge) does,
    /// but `into` must exist.
    fn merge_into_user_branch(
        &self,
        repo: &Path,
        branch: &str,
        into: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let dirs = self.repo_dirs(repo)?;
        let _one_at_a_time = RepoGuard::lock(&dirs.common_dir);
        let top = dirs.top.clone();
        let branch_commit = self
            .branch_commit(&top, branch)?
            .ok_or_else(|| unknown(&top, branch))?;
        let into_commit = self
            .branch_commit(&top, into)?
            .ok_or_else(|| unknown(&top, into))?;
        let into_ref = format!("refs/heads/{into}");
        let checked_out = self
            .worktrees(&top)?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(into_ref.as_str()));
        match checked_out {
            None => self.merge_detached(&dirs, branch, &branch_commit, into, &into_commit),
            Some(worktree) if worktree.prunable => Err(WorkspaceError::Unsafe {
                path: worktree.path,
                detail: format!(
                    "the branch {into} is checked out in this worktree, whose directory is \
                     missing; `git worktree prune` clears git's record of it"
                ),
            }),
            Some(worktree) => {
                self.merge_in_tree(&worktree.path, branch, &branch_commit, into, &into_commit)
            }
        }
    }

    fn is_dirty(&self, ws: &Workspace) -> Result<bool, WorkspaceError> {
        Ok(!self.dirty_paths(&ws.path)?.is_empty())
    }

    /// `git merge-base --is-ancestor <branch> <into>`; false when `into` does not exist.
    fn is_merged(&self, repo: &Path, branch: &str, into: &str) -> Result<bool, WorkspaceError> {
        let top = self.repo_dirs(repo)?.top;
        let branch_commit = self
            .branch_or_rev(&top, branch)?
            .ok_or_else(|| unknown(&top, branch))?;
        match self.branch_or_rev(&top, into)? {
            Some(into_commit) => self.is_ancestor(&top, &branch_commit, &into_commit),
            None => Ok(false),
        }
    }

    /// `git worktree remove [--force]`, nothing else: the branch and every object stay. A
    /// worktree already gone is fine; a directory git does not know as a worktree of the
    /// repository, or its main working tree, is refused.
    fn remove(&self, ws: &Workspace, force: bool) -> Result<(), WorkspaceError> {
        let dirs = self.repo_dirs(&ws.repo)?;
        let _one_at_a_time = RepoGuard::lock(&dirs.common_dir);
        let top = dirs.top;
        let worktrees = self.worktrees(&top)?;
        let Some(index) = worktrees.iter().position(|w| same_path(&w.path, &ws.path)) else {
            if ws.path.exists() {
                return Err(WorkspaceError::Unsafe {
                    path: ws.path.clone(),
                    detail: format!(
                        "it is not a worktree of {}; MAOS removes only worktrees git knows",
                        top.display()
                    ),
                });
            }
            return Ok(());
        };
        let worktree = &worktrees[index];
        if index == 0 {
            return Err(WorkspaceError::Unsafe {
                path: worktree.path.clone(),
                detail: "it is the repository's main working tree".into(),
            });
        }
        if !force && !worktree.prunable {
            let dirty = self.dirty_paths(&worktree.path)?;
            if !dirty.is_empty() {
                return Err(WorkspaceError::Unsafe {
                    path: worktree.path.clone(),
                    detail: format!("uncommitted changes ({})", dirty.join(", ")),
                });
            }
        }
        self.git
            .at(&top)
            .args(["worktree", "remove"])
            .args(force.then_some("--force"))
            .arg("--")
            .arg(&worktree.path)
            .run()?;
        Ok(())
    }
}
