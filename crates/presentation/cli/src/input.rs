//! Reading the files a person hands MAOS (prompt, plan, agents, workflow files and the data
//! directory's `config.toml`), bounded: only regular files (or `-`, standard input, where a
//! command documents it), never more than a limit per kind of file, and UTF-8 text whose bad
//! bytes are placed by line and column. The limits are in docs/cli.md ("Input files").
//!
//! A FIFO, a directory or a device is refused before it is opened: the path's type is read with
//! `std::fs::metadata` (symlinks followed), since opening a FIFO for reading blocks until a writer
//! comes. The opened file's metadata is checked again, and at most limit + 1 bytes are read, so a
//! file that grows after the check is still refused. (A path swapped for a FIFO between the check
//! and the open could still block; that needs someone racing the person's own command.)

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::error::{CliError, FailureClass};

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// What a file is for; each kind has its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `task create --prompt-file` (or `-`).
    Prompt,
    /// `orchestrate run <PLAN>`.
    Plan,
    /// `agent register --from-file`.
    Agents,
    /// A workflow file (`orchestrate run --workflow FILE`, `<data dir>/workflows/`).
    Workflow,
    /// The data directory's `config.toml`.
    Config,
    /// `memory add -`: the text of a memory entry on standard input.
    Memory,
    /// `task create --from-file`: tasks, one JSON object a line (or `-`).
    Tasks,
}

impl FileKind {
    /// What the file is, in an error message.
    pub(crate) fn what(self) -> &'static str {
        match self {
            FileKind::Prompt => "prompt file",
            FileKind::Plan => "plan file",
            FileKind::Agents => "agents file",
            FileKind::Workflow => "workflow file",
            FileKind::Config => "configuration file",
            FileKind::Memory => "memory text",
            FileKind::Tasks => "tasks file",
        }
    }

    /// What the file holds, for standard input ("the prompt on standard input").
    fn noun(self) -> &'static str {
        match self {
            FileKind::Prompt => "prompt",
            FileKind::Plan => "plan",
            FileKind::Agents => "agents file",
            FileKind::Workflow => "workflow",
            FileKind::Config => "configuration",
            FileKind::Memory => "memory text",
            FileKind::Tasks => "tasks",
        }
    }

    /// What to do when the file cannot be read.
    fn readable_hint(self) -> &'static str {
        match self {
            FileKind::Prompt => {
                "--prompt-file takes a readable UTF-8 text file, or - for standard input"
            }
            FileKind::Plan => {
                "name a readable TOML or JSON file (docs/orchestrations.md shows the format)"
            }
            FileKind::Agents => {
                "--from-file takes a readable TOML file (docs/agents.md shows the format)"
            }
            FileKind::Workflow => {
                "name a readable workflow file (docs/orchestrations.md describes the format)"
            }
            FileKind::Config => "make the file readable, or remove it to use the defaults",
            FileKind::Memory => {
                "give the text as the argument, or - and the text on standard input"
            }
            FileKind::Tasks => {
                "--from-file takes a readable UTF-8 file of JSON lines, or - for standard input \
                 (docs/cli.md shows the format)"
            }
        }
    }

    /// The limit when no environment variable changes it.
    pub(crate) fn default_limit(self) -> u64 {
        match self {
            FileKind::Plan => 16 * MIB,
            FileKind::Prompt | FileKind::Agents | FileKind::Workflow | FileKind::Config => MIB,
            // An entry holds at most 8 KiB once trimmed; more than this is surely a mistake.
            FileKind::Memory => 64 * 1024,
            // About 100,000 ordinary tasks.
            FileKind::Tasks => 64 * MIB,
        }
    }

    /// The environment variable that changes the limit, for the kinds whose size is the
    /// person's work rather than settings.
    pub(crate) fn limit_env(self) -> Option<&'static str> {
        match self {
            FileKind::Prompt => Some("MAOS_MAX_PROMPT_BYTES"),
            FileKind::Plan => Some("MAOS_MAX_PLAN_BYTES"),
            FileKind::Tasks => Some("MAOS_MAX_TASKS_BYTES"),
            FileKind::Agents | FileKind::Workflow | FileKind::Config | FileKind::Memory => None,
        }
    }

    /// The largest limit the environment variable may set.
    fn max_limit(self) -> u64 {
        match self {
            FileKind::Plan | FileKind::Tasks => 256 * MIB,
            _ => 64 * MIB,
        }
    }

    /// The limit in force: the environment variable's, or the default.
    pub(crate) fn limit(self) -> Result<u64, ReadError> {
        let Some(var) = self.limit_env() else {
            return Ok(self.default_limit());
        };
        match std::env::var(var) {
            Err(std::env::VarError::NotPresent) => Ok(self.default_limit()),
            Ok(v) if v.trim().is_empty() => Ok(self.default_limit()),
            Ok(v) => parse_size(&v)
                .filter(|n| (1..=self.max_limit()).contains(n))
                .ok_or(ReadError::BadLimit {
                    var,
                    value: maos_plans::diagnostics::shorten(&v),
                    max: self.max_limit(),
                }),
            Err(std::env::VarError::NotUnicode(_)) => Err(ReadError::BadLimit {
                var,
                value: "(not UTF-8)".to_owned(),
                max: self.max_limit(),
            }),
        }
    }
}

/// Why a file could not be read.
#[derive(Debug, Error)]
pub(crate) enum ReadError {
    /// The operating system refused (no such file, no permission, ...).
    #[error("cannot read {}: {source}", subject(*kind, path))]
    Io {
        kind: FileKind,
        path: PathBuf,
        source: io::Error,
    },
    /// Not a regular file: reading it could block forever or never end.
    #[error("{} is {file_type}, not a regular file", subject(*kind, path))]
    NotRegular {
        kind: FileKind,
        path: PathBuf,
        file_type: &'static str,
    },
    /// More bytes than the limit.
    #[error("{} is larger than the limit of {}", subject(*kind, path), bytes(*limit))]
    TooLarge {
        kind: FileKind,
        path: PathBuf,
        limit: u64,
    },
    /// Not UTF-8 text.
    #[error(
        "{} is not UTF-8 text: line {line}, column {column} has a byte that is not UTF-8",
        subject(*kind, path)
    )]
    NotUtf8 {
        kind: FileKind,
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// The environment variable that sets a limit does not hold one.
    #[error("{var}={value} is not a size from 1 byte to {}", bytes(*max))]
    BadLimit {
        var: &'static str,
        value: String,
        max: u64,
    },
}

/// "the plan file plan.toml", or "the prompt on standard input" for `-`.
fn subject(kind: FileKind, path: &Path) -> String {
    if path == Path::new("-") {
        format!("the {} on standard input", kind.noun())
    } else {
        format!("the {} {}", kind.what(), path.display())
    }
}

impl From<ReadError> for CliError {
    fn from(e: ReadError) -> Self {
        let hint = match &e {
            ReadError::Io { kind, .. } => kind.readable_hint().to_owned(),
            ReadError::NotRegular {
                kind: FileKind::Config,
                ..
            } => "replace it with a regular file, or remove it to use the defaults".to_owned(),
            ReadError::NotRegular { .. } => {
                "name a regular file; to pass the output of a command, save it to a file first"
                    .to_owned()
            }
            ReadError::TooLarge { kind, .. } => match kind.limit_env() {
                Some(var) => format!(
                    "make it smaller, or raise the limit with {var} (bytes, or a size like 32MiB)"
                ),
                None => format!(
                    "make it smaller; the limit is there to catch a wrong file (docs/cli.md, \"Input files\"){}",
                    if *kind == FileKind::Config {
                        ", or remove it to use the defaults"
                    } else {
                        ""
                    }
                ),
            },
            ReadError::NotUtf8 { .. } => "save the file as UTF-8 text".to_owned(),
            ReadError::BadLimit { var, .. } => {
                format!("set {var} to a number of bytes, or a size like 4MiB, or unset it")
            }
        };
        CliError::new(FailureClass::InvalidInput, e.to_string()).with_hint(hint)
    }
}

/// `1 MiB`, `16 MiB`, `1536 bytes`: a limit as people read it.
fn bytes(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// `4096`, `64KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all powers of 1024).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1024 * MIB,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// What a file that is not a regular file is, in words.
fn describe(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The text of the file at `path`, a `kind` of file: a regular file no larger than its limit,
/// UTF-8.
pub(crate) fn read_text(path: &Path, kind: FileKind) -> Result<String, ReadError> {
    read_file(path, kind, false).map(Option::unwrap_or_default)
}

/// Like [`read_text`], with `-` meaning standard input (read up to the limit and refused
/// above it).
pub(crate) fn read_text_or_stdin(path: &Path, kind: FileKind) -> Result<String, ReadError> {
    if path != Path::new("-") {
        return read_text(path, kind);
    }
    let shown = Path::new("-");
    let bytes = read_bounded(io::stdin().lock(), shown, kind)?;
    utf8(bytes, shown, kind)
}

/// Like [`read_text`], but `None` when there is no file at `path`.
pub(crate) fn read_existing(path: &Path, kind: FileKind) -> Result<Option<String>, ReadError> {
    read_file(path, kind, true)
}

/// The text of the file; `None` only when it does not exist and `missing_ok`.
fn read_file(path: &Path, kind: FileKind, missing_ok: bool) -> Result<Option<String>, ReadError> {
    let io_error = |source: io::Error| ReadError::Io {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |t: std::fs::FileType| ReadError::NotRegular {
        kind,
        path: path.to_path_buf(),
        file_type: describe(t),
    };
    let limit = kind.limit()?;
    // Before opening: opening a FIFO would wait for a writer.
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let too_large = || ReadError::TooLarge {
        kind,
        path: path.to_path_buf(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    // The path may have been replaced between the two looks.
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let bytes = read_bounded(file, path, kind)?;
    utf8(bytes, path, kind).map(Some)
}

/// At most `limit` bytes of `source`; more is [`ReadError::TooLarge`].
fn read_bounded(source: impl Read, path: &Path, kind: FileKind) -> Result<Vec<u8>, ReadError> {
    let limit = kind.limit()?;
    let mut bytes = Vec::new();
    source
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            kind,
            path: path.to_path_buf(),
            source,
        })?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > limit) {
        return Err(ReadError::TooLarge {
            kind,
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// The text of `bytes`, or where its first byte that is not UTF-8 is.
fn utf8(bytes: Vec<u8>, path: &Path, kind: FileKind) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = e.utf8_error().valid_up_to();
        let before = bytes.get(..valid).unwrap_or_default();
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        // `before` is valid UTF-8, so this counts its characters.
        let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
            .chars()
            .count()
            + 1;
        ReadError::NotUtf8 {
            kind,
            path: path.to_path_buf(),
            line,
            column,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "p.md", "héllo\n".as_bytes());
        assert_eq!(read_text(&path, FileKind::Prompt).unwrap(), "héllo\n");
        assert!(
            read_existing(&dir.path().join("none"), FileKind::Config)
                .unwrap()
                .is_none()
        );
        let e = read_text(&dir.path().join("none"), FileKind::Plan).unwrap_err();
        assert!(matches!(e, ReadError::Io { .. }), "{e}");
    }

    #[test]
    fn directories_devices_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_text(dir.path(), FileKind::Plan).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = read_text(Path::new("/dev/zero"), FileKind::Prompt).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("/dev/zero is a character device, not a regular file"),
            "{e}"
        );
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_existing(&fifo, FileKind::Config).unwrap_err();
        assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");
    }

    #[test]
    fn a_file_over_its_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limit = usize::try_from(FileKind::Agents.default_limit()).unwrap();
        let at = write(dir.path(), "at.toml", &vec![b'#'; limit]);
        assert_eq!(read_text(&at, FileKind::Agents).unwrap().len(), limit);
        let over = write(dir.path(), "over.toml", &vec![b'#'; limit + 1]);
        let e = read_text(&over, FileKind::Agents).unwrap_err();
        assert!(
            e.to_string().contains("larger than the limit of 1 MiB"),
            "{e}"
        );
        // A source that is longer than its metadata says (a file that grows) stops at limit + 1.
        let e = read_bounded(io::repeat(b'x'), &over, FileKind::Agents).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn bad_utf8_is_placed_by_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.toml",
            b"name = \"a\"\nx = \"\xc3\xa9\xff\"\n",
        );
        let e = read_text(&path, FileKind::Agents).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "a.toml is not UTF-8 text: line 2, column 7 has a byte that is not UTF-8"
            ),
            "{e}"
        );
    }

    #[test]
    fn sizes_read_as_bytes_or_with_a_binary_unit() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("16 MiB"), Some(16 * MIB));
        assert_eq!(parse_size("1g"), Some(1024 * MIB));
        assert_eq!(parse_size("1.5M"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(bytes(16 * MIB), "16 MiB");
        assert_eq!(bytes(1536), "1536 bytes");
    }
}
