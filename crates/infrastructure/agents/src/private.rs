//! Files and directories only the user can read: what the runtime writes into the data
//! directory (prompts, results, logs, the containment record) holds prompts and agents' output,
//! so it is created 0600 (directories 0700) whatever the umask, and tightened if it existed.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files the runtime writes.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of the directories the runtime creates.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Opens `path` for writing (created 0600, truncated unless `append`), tightening an existing
/// file that others could read.
pub(crate) fn open(path: &Path, append: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(FILE_MODE)
        .open(path)?;
    tighten(&file)?;
    Ok(file)
}

/// Writes `bytes` to `path` (created 0600 or tightened, then truncated).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = open(path, false)?;
    file.write_all(bytes)
}

/// Creates `dir` and its missing parents 0700; an existing directory is left as it is.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

fn tighten(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_existing_ones_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let fresh = tmp.path().join("d/e/g");
        create_dir_all(fresh.parent().unwrap()).unwrap();
        write(&fresh, b"x").unwrap();
        let dmode = std::fs::metadata(fresh.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
