//! Test repositories and a plain git to look at them with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use maos_application::{Setup, Workspace, Workspaces};
use maos_git::GitWorkspaces;
use tempfile::TempDir;

/// A repository `<tmp>/repo` on `main` with a first commit (`README.md`, `file.txt`,
/// `.gitignore` ignoring `*.log` and `ignored/`), and room for worktrees next to it.
pub(crate) struct Repo {
    _tmp: TempDir,
    /// The temporary directory (canonical).
    pub(crate) root: PathBuf,
    /// The repository's main working tree.
    pub(crate) path: PathBuf,
}

impl Repo {
    pub(crate) fn new() -> Repo {
        let tmp = tempfile::Builder::new()
            .prefix("maos-git-test-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let path = root.join("repo");
        fs::create_dir(&path).unwrap();
        git(&path, &["init", "-q", "-b", "main"]);
        git(&path, &["config", "user.name", "Test Person"]);
        git(&path, &["config", "user.email", "test@example.com"]);
        write(&path, "README.md", "hello\n");
        write(&path, "file.txt", "one\ntwo\nthree\n");
        write(&path, ".gitignore", "*.log\nignored/\n.env\n");
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "init"]);
        Repo {
            _tmp: tmp,
            root,
            path,
        }
    }

    /// `<tmp>/<name>`: where a worktree may go.
    pub(crate) fn at(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }

    pub(crate) fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// A task worktree `<tmp>/<name>` on branch `maos/<name>` from main, without setup.
    pub(crate) fn task(&self, name: &str) -> Workspace {
        GitWorkspaces::new()
            .prepare(
                &self.path,
                &format!("maos/{name}"),
                "main",
                &self.at(name),
                &Setup::default(),
            )
            .unwrap()
    }

    /// The paths of `git worktree list --porcelain`.
    pub(crate) fn worktree_paths(&self) -> Vec<PathBuf> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(PathBuf::from)
            .collect()
    }
}

/// Runs git in `dir` (never signing, whatever the user's configuration says), panicking when
/// it fails; answers its trimmed output.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(crate) fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env("LC_ALL", "C")
        .args(["-c", "commit.gpgSign=false", "-c", "core.quotepath=false"])
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn write(dir: &Path, file: &str, content: &str) {
    let path = dir.join(file);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

pub(crate) fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap()
}

/// Writes `file` in `ws` and checkpoints it.
pub(crate) fn change(ws: &Workspace, file: &str, content: &str) -> String {
    write(&ws.path, file, content);
    GitWorkspaces::new()
        .checkpoint(ws, &format!("write {file}"), &[])
        .unwrap()
}

/// The parents of `commit`.
pub(crate) fn parents(dir: &Path, commit: &str) -> Vec<String> {
    git(dir, &["rev-list", "--parents", "-n", "1", commit])
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}
