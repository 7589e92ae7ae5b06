//! `summarise`: what a planner learns about a repository, from what git tracks at HEAD.

use std::fs;

use maos_application::{
    CommandPurpose, DetectedCommand, RepoSummary, SummaryLimits, WorkspaceError, Workspaces,
};
use maos_git::GitWorkspaces;

use crate::support::{Repo, git, write};

fn limits(depth: usize, entries: usize) -> SummaryLimits {
    SummaryLimits {
        depth,
        entries,
        ..SummaryLimits::default()
    }
}

fn command(purpose: CommandPurpose, command: &str, source: &str) -> DetectedCommand {
    DetectedCommand {
        purpose,
        command: command.into(),
        source: source.into(),
    }
}

/// The test repository, with nested directories, a long README, a Cargo.toml, a package.json
/// (pnpm) and a Makefile, committed; untracked and ignored files beside them.
fn project() -> Repo {
    let repo = Repo::new();
    let readme = format!("# Project\n\nÜber {}\n", "wörd ".repeat(2000));
    write(&repo.path, "README.md", &readme);
    write(
        &repo.path,
        "Cargo.toml",
        "[workspace]\nmembers = [\"crates/*\"]\n",
    );
    write(
        &repo.path,
        "package.json",
        r#"{"name": "web", "scripts": {"build": "vite build", "test": "vitest run", "lint": "eslint"}}"#,
    );
    write(&repo.path, "pnpm-lock.yaml", "lockfileVersion: '9.0'\n");
    write(
        &repo.path,
        "Makefile",
        ".PHONY: build test\nbuild:\n\tcargo build\ntest: build\n\tcargo test\n",
    );
    write(&repo.path, "crates/core/src/lib.rs", "pub fn f() {}\n");
    write(&repo.path, "crates/core/src/model.rs", "pub struct M;\n");
    write(&repo.path, "crates/cli/src/main.rs", "fn main() {}\n");
    write(&repo.path, "web/src/app.ts", "export {}\n");
    write(&repo.path, "web/src/view.tsx", "export {}\n");
    write(&repo.path, "scripts/run.py", "print(1)\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "add the project"]);
    repo.git(&["commit", "-q", "--allow-empty", "-m", "third commit"]);
    // Never in a summary: untracked, ignored, staged but not committed.
    write(&repo.path, "untracked/notes.rs", "x\n");
    write(&repo.path, "ignored/cache.rs", "x\n");
    write(&repo.path, "build.log", "x\n");
    write(&repo.path, "staged.go", "package x\n");
    repo.git(&["add", "staged.go"]);
    repo
}

#[test]
fn a_project_is_summarised_from_what_head_tracks() {
    let repo = project();
    let ws = GitWorkspaces::new();

    let one = ws.summarise(&repo.path, limits(1, 100)).unwrap();
    assert_eq!(
        one.tree,
        [
            ".gitignore",
            "Cargo.toml",
            "Makefile",
            "README.md",
            "crates/",
            "file.txt",
            "package.json",
            "pnpm-lock.yaml",
            "scripts/",
            "web/"
        ]
    );
    assert_eq!(one.tree_cut, 0);

    let two = ws.summarise(&repo.path, limits(2, 100)).unwrap();
    assert_eq!(
        two.tree,
        [
            ".gitignore",
            "Cargo.toml",
            "Makefile",
            "README.md",
            "crates/",
            "crates/cli/",
            "crates/core/",
            "file.txt",
            "package.json",
            "pnpm-lock.yaml",
            "scripts/",
            "scripts/run.py",
            "web/",
            "web/src/"
        ]
    );
    assert_eq!(two.tree_cut, 0);

    let cut = ws.summarise(&repo.path, limits(2, 5)).unwrap();
    assert_eq!(cut.tree, two.tree[..5]);
    assert_eq!(cut.tree_cut, two.tree.len() - 5);

    // Rust 3 files, TypeScript 2, Python 1; the untracked and ignored .rs files and the staged
    // .go file are not counted.
    assert_eq!(
        two.languages,
        [
            ("Rust".to_owned(), 3),
            ("TypeScript".to_owned(), 2),
            ("Python".to_owned(), 1)
        ]
    );

    let (name, text) = two.readme.clone().unwrap();
    assert_eq!(name, "README.md");
    assert_eq!(text.chars().count(), SummaryLimits::default().readme_chars);
    assert!(text.starts_with("# Project\n\nÜber wörd wörd"), "{text}");
    assert!(text.ends_with('…'), "{text}");
    let short = ws
        .summarise(
            &repo.path,
            SummaryLimits {
                readme_chars: 13,
                ..SummaryLimits::default()
            },
        )
        .unwrap();
    assert_eq!(short.readme.unwrap().1, "# Project\n\nÜ…");

    assert_eq!(
        two.commands,
        [
            command(CommandPurpose::Build, "cargo build", "Cargo.toml"),
            command(CommandPurpose::Test, "cargo test", "Cargo.toml"),
            command(CommandPurpose::Build, "pnpm run build", "package.json"),
            command(CommandPurpose::Test, "pnpm test", "package.json"),
            command(CommandPurpose::Build, "make build", "Makefile"),
            command(CommandPurpose::Test, "make test", "Makefile"),
        ]
    );

    let short_head = repo.git(&["rev-parse", "--short", "HEAD"]);
    assert_eq!(two.recent_commits.len(), 3);
    assert_eq!(two.recent_commits[0], format!("{short_head} third commit"));
    assert!(two.recent_commits[1].ends_with(" add the project"));
    assert!(two.recent_commits[2].ends_with(" init"));
    let one_commit = ws
        .summarise(
            &repo.path,
            SummaryLimits {
                commits: 1,
                ..SummaryLimits::default()
            },
        )
        .unwrap();
    assert_eq!(one_commit.recent_commits, two.recent_commits[..1]);

    // Everything a summary holds comes from HEAD: nothing of the working tree shows.
    let all = format!("{two:?}");
    for never in ["untracked", "ignored", "build.log", "staged.go", "Go"] {
        assert!(!all.contains(never), "{never} in {all}");
    }
    // A subdirectory names the same repository.
    assert_eq!(
        ws.summarise(&repo.path.join("crates/core"), limits(2, 100))
            .unwrap(),
        two
    );
}

#[test]
fn other_build_files_show_their_commands() {
    let repo = Repo::new();
    write(&repo.path, "go.mod", "module example.com/x\n");
    write(&repo.path, "pyproject.toml", "[project]\nname = \"x\"\n");
    write(&repo.path, "pom.xml", "<project/>\n");
    write(&repo.path, "build.gradle.kts", "plugins {}\n");
    write(&repo.path, "justfile", "test *args:\n    go test ./...\n");
    // npm's placeholder test script is no test command; yarn's lock file picks yarn.
    write(
        &repo.path,
        "package.json",
        r#"{"scripts": {"build": "tsc", "test": "echo \"Error: no test specified\" && exit 1"}}"#,
    );
    write(&repo.path, "yarn.lock", "\n");
    // A makefile without those targets shows nothing.
    write(&repo.path, "makefile", "all:\n\ttrue\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "build files"]);
    let summary = GitWorkspaces::new()
        .summarise(&repo.path, SummaryLimits::default())
        .unwrap();
    assert_eq!(
        summary.commands,
        [
            command(CommandPurpose::Build, "yarn build", "package.json"),
            command(CommandPurpose::Build, "go build ./...", "go.mod"),
            command(CommandPurpose::Test, "go test ./...", "go.mod"),
            command(CommandPurpose::Test, "python -m pytest", "pyproject.toml"),
            command(CommandPurpose::Build, "mvn -q package", "pom.xml"),
            command(CommandPurpose::Test, "mvn -q test", "pom.xml"),
            command(CommandPurpose::Build, "./gradlew build", "build.gradle.kts"),
            command(CommandPurpose::Test, "./gradlew test", "build.gradle.kts"),
            command(CommandPurpose::Test, "just test", "justfile"),
        ]
    );
}

#[test]
fn a_readme_with_invalid_utf8_is_read_with_replacements() {
    let repo = Repo::new();
    repo.git(&["rm", "-q", "README.md"]);
    fs::write(repo.path.join("readme.txt"), b"caf\xe9 au lait\n").unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "latin-1 readme"]);
    let summary = GitWorkspaces::new()
        .summarise(&repo.path, SummaryLimits::default())
        .unwrap();
    assert_eq!(
        summary.readme,
        Some(("readme.txt".to_owned(), "caf\u{fffd} au lait\n".to_owned()))
    );
}

#[test]
fn an_empty_repository_has_an_empty_summary_and_a_plain_directory_is_refused() {
    let repo = Repo::new();
    let ws = GitWorkspaces::new();
    let empty = repo.at("empty");
    fs::create_dir(&empty).unwrap();
    git(&empty, &["init", "-q", "-b", "main"]);
    write(&empty, "README.md", "not committed\n");
    assert_eq!(
        ws.summarise(&empty, SummaryLimits::default()).unwrap(),
        RepoSummary::default()
    );

    let plain = repo.at("plain");
    fs::create_dir(&plain).unwrap();
    assert_eq!(
        ws.summarise(&plain, SummaryLimits::default()),
        Err(WorkspaceError::NotARepository {
            path: plain.clone()
        })
    );
    let missing = repo.at("missing");
    assert_eq!(
        ws.summarise(&missing, SummaryLimits::default()),
        Err(WorkspaceError::NotARepository { path: missing })
    );
}

#[test]
fn a_repository_of_many_files_gives_a_bounded_tree() {
    let repo = Repo::new();
    // 5,000 files in 50 directories of 100, written as git objects without a working tree
    // copy: one blob, an index of 5,000 entries.
    let blob = {
        write(&repo.path, "blob.rs", "fn f() {}\n");
        let id = repo.git(&["hash-object", "-w", "blob.rs"]);
        fs::remove_file(repo.path.join("blob.rs")).unwrap();
        id
    };
    let mut index = String::new();
    for d in 0..50 {
        for f in 0..100 {
            index.push_str(&format!("100644 {blob}\tsrc/d{d:02}/f{f:03}.rs\n"));
        }
    }
    let mut child = std::process::Command::new("git")
        .current_dir(&repo.path)
        .args(["update-index", "--index-info"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), index.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    git(
        &repo.path,
        &["-c", "commit.gpgSign=false", "commit", "-q", "-m", "many"],
    );
    assert_eq!(
        git(&repo.path, &["ls-files"]).lines().count(),
        5_003,
        "5,000 files and the first commit's 3"
    );

    let ws = GitWorkspaces::new();
    let summary = ws.summarise(&repo.path, limits(2, 20)).unwrap();
    assert_eq!(summary.tree.len(), 20);
    // .gitignore, README.md, file.txt, src/, and 50 directories in src/.
    assert_eq!(summary.tree_cut, 4 + 50 - 20);
    assert_eq!(summary.tree[3], "src/");
    assert_eq!(summary.tree[4], "src/d00/");
    assert_eq!(summary.languages, [("Rust".to_owned(), 5_000)]);

    let deep = ws.summarise(&repo.path, limits(3, 100)).unwrap();
    assert_eq!(deep.tree.len(), 100);
    assert_eq!(deep.tree_cut, 4 + 50 + 5_000 - 100);
}
