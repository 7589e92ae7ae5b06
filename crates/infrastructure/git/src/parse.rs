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

/// One entry of `git ls-tree -z` (`<mode> SP <type> SP <object> TAB <path>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeEntry<'a> {
    /// The mode as git writes it (`100644`, `100755`, `120000` for a symbolic link, `160000`
    /// for a submodule).
    pub(crate) mode: &'a [u8],
    /// The object's name (hexadecimal).
    pub(crate) object: &'a [u8],
    /// The path, relative to the tree, as git stores it (bytes, not always UTF-8).
    pub(crate) path: &'a [u8],
}

impl TreeEntry<'_> {
    /// A file's content as it is (not a symbolic link, not a submodule).
    pub(crate) fn is_regular_file(&self) -> bool {
        matches!(self.mode, b"100644" | b"100755" | b"100664")
    }
}

/// Parses one NUL-separated entry of `git ls-tree -z` (without its NUL); `None` when it is not
/// one.
pub(crate) fn tree_entry(field: &[u8]) -> Option<TreeEntry<'_>> {
    let tab = field.iter().position(|b| *b == b'\t')?;
    let (info, path) = (&field[..tab], &field[tab + 1..]);
    let mut parts = info.split(|b| *b == b' ').filter(|p| !p.is_empty());
    let (mode, _kind, object) = (parts.next()?, parts.next()?, parts.next()?);
    if path.is_empty() || parts.next().is_some() {
        return None;
    }
    Some(TreeEntry { mode, object, path })
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

    #[test]
    fn tree_entries_are_parsed_with_tabs_and_spaces_in_paths() {
        let entry = tree_entry(b"100644 blob 0123abcd\tdocs/a file\twith tab.md").unwrap();
        assert_eq!(entry.mode, b"100644");
        assert_eq!(entry.object, b"0123abcd");
        assert_eq!(entry.path, b"docs/a file\twith tab.md");
        assert!(entry.is_regular_file());
        let link = tree_entry(b"120000 blob 0123abcd\tREADME.md").unwrap();
        assert!(!link.is_regular_file());
        let module = tree_entry(b"160000 commit 0123abcd\tvendor/lib").unwrap();
        assert!(!module.is_regular_file());
        assert_eq!(tree_entry(b"no tab here"), None);
        assert_eq!(tree_entry(b"100644 blob\tpath"), None);
        assert_eq!(tree_entry(b"100644 blob abc\t"), None);
    }
}
