//! Parsing git's machine-readable (`-z`) output.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The paths of `git status --porcelain=v1 -z` (for a rename, the new path).
pub(crate) fn status_paths(output: &[u8]) -> Vec<String> {
    let mut paths = Vec::new();
    let mut fields = output.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        if entry.len() < 4 {
            continue;
        }
        let (x, y) = (entry[0], entry[1]);
        paths.push(String::from_utf8_lossy(&entry[3..]).into_owned());
        // A rename or copy is followed by the path it came from.
        if matches!(x, b'R' | b'C') || matches!(y, b'R' | b'C') {
            fields.next();
        }
    }
    paths
}

/// One worktree of `git worktree list --porcelain -z`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WorktreeEntry {
    pub(crate) path: PathBuf,
    /// The full name of the branch checked out (`refs/heads/x`), if any.
    pub(crate) branch: Option<String>,
    pub(crate) bare: bool,
    pub(crate) detached: bool,
    /// Its directory is gone (git would prune its administrative files).
    pub(crate) prunable: bool,
}

/// Parses `git worktree list --porcelain -z`: attributes separated by NUL, worktrees by an
/// empty attribute. The first is the main working tree.
pub(crate) fn worktrees(output: &[u8]) -> Vec<WorktreeEntry> {
    let mut list = Vec::new();
    let mut current: Option<WorktreeEntry> = None;
    for field in output.split(|b| *b == 0) {
        if field.is_empty() {
            list.extend(current.take());
            continue;
        }
        let (key, value) = match field.iter().position(|b| *b == b' ') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => (field, &field[field.len()..]),
        };
        if key == b"worktree" {
            list.extend(current.take());
            current = Some(WorktreeEntry {
                path: PathBuf::from(OsStr::from_bytes(value)),
                ..WorktreeEntry::default()
            });
            continue;
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        match key {
            b"branch" => entry.branch = Some(String::from_utf8_lossy(value).into_owned()),
            b"bare" => entry.bare = true,
            b"detached" => entry.detached = true,
            b"prunable" => entry.prunable = true,
            _ => {}
        }
    }
    list.extend(current);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_follow_renames_and_keep_spaces() {
        let out = b"?? new file.txt\0R  to.txt\0from.txt\0 M dir/a\0";
        assert_eq!(status_paths(out), ["new file.txt", "to.txt", "dir/a"]);
        assert!(status_paths(b"").is_empty());
    }

    #[test]
    fn worktree_list_is_parsed() {
        let out = b"worktree /r\0HEAD abc\0branch refs/heads/main\0\0worktree /w x\0HEAD abc\0detached\0\0worktree /gone\0HEAD abc\0branch refs/heads/t\0prunable gitdir file points to non-existent location\0\0";
        let list = worktrees(out);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].path, PathBuf::from("/r"));
        assert_eq!(list[0].branch.as_deref(), Some("refs/heads/main"));
        assert_eq!(list[1].path, PathBuf::from("/w x"));
        assert!(list[1].detached && list[1].branch.is_none());
        assert!(list[2].prunable);
    }
}
