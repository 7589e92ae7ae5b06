//! Attempt logs: what an agent wrote to stdout and stderr, as raw bytes (never decoded, so any
//! output is safe) with its secrets replaced (line by line, before they reach the file: see
//! `redact.rs`), one file per attempt under `<data dir>/logs/<task id>/<attempt>.log`,
//! capped with a marker that says what was cut. [`FileLogs`] reads them back for
//! `maos task logs` (the application's `AttemptLogs` port).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maos_application::{AttemptLogs, StoreError};
use maos_domain::TaskId;

use crate::redact::Redactor;

/// The default cap of one attempt's log: 10 MiB.
pub const DEFAULT_LOG_CAP: u64 = 10 << 20;

/// Where the log of `attempt` of `task` lives under `logs_dir`.
pub fn log_path(logs_dir: &Path, task: TaskId, attempt: u32) -> PathBuf {
    logs_dir
        .join(task.to_string())
        .join(format!("{attempt}.log"))
}

/// Writes one attempt's log, up to a cap; what comes after the cap is counted, not kept.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: File,
    written: u64,
    cap: u64,
    discarded: u64,
    /// The file does not end with a newline: the next note starts a line of its own.
    mid_line: bool,
    /// Replaces the attempt's secrets before anything is written.
    redactor: Redactor,
    /// Output not written yet: the end of a line, held until the line is whole (a secret may
    /// span two reads).
    pending: Vec<u8>,
}

/// How much of a line without a newline is held back before it is written anyway.
const HOLD_MAX: usize = 64 << 10;

impl LogWriter {
    /// Creates (or truncates) the log file, and its directory.
    #[cfg(test)]
    pub(crate) fn create(path: &Path, cap: u64) -> io::Result<LogWriter> {
        Self::redacting(path, cap, Redactor::default())
    }

    /// Creates the log of an attempt whose secrets `redactor` replaces.
    pub(crate) fn redacting(path: &Path, cap: u64, redactor: Redactor) -> io::Result<LogWriter> {
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir)?;
        }
        let file = crate::private::open(path, false)?;
        Ok(LogWriter {
            file,
            written: 0,
            cap,
            discarded: 0,
            mid_line: false,
            redactor,
            pending: Vec::new(),
        })
    }

    /// Appends output, its secrets replaced: whole lines at once (the end of a line waits for
    /// the rest, or until it is long); past the cap, writes a marker once and then only counts.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        let cut = match self.pending.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if self.pending.len() >= HOLD_MAX => {
                // Keep enough back that a secret cut here is whole in the next write, and never
                // cut through one.
                let hold = self.redactor.longest().max(64);
                let cut = self.pending.len().saturating_sub(hold);
                self.redactor.safe_cut(&self.pending, cut)
            }
            None => return Ok(()),
        };
        self.flush_pending(cut)
    }

    fn flush_pending(&mut self, upto: usize) -> io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let clean = self.redactor.bytes(&chunk);
        self.write_raw(&clean)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let room = self.cap.saturating_sub(self.written);
        let keep = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if keep > 0 {
            self.file.write_all(&bytes[..keep])?;
            self.written += keep as u64;
            self.mid_line = bytes[..keep].last() != Some(&b'\n');
        }
        let cut = bytes.len() - keep;
        if cut > 0 {
            if self.discarded == 0 {
                let marker = format!(
                    "\n[maos: the log reached its cap of {} bytes; further output is discarded]\n",
                    self.cap
                );
                self.file.write_all(marker.as_bytes())?;
                self.mid_line = false;
            }
            self.discarded += cut as u64;
        }
        Ok(())
    }

    /// A line of MAOS's own (what an in-process agent did, how a process ended), outside the cap.
    pub(crate) fn note(&mut self, line: &str) -> io::Result<()> {
        self.flush_pending(self.pending.len())?;
        let line = self.redactor.text(line);
        let start = if self.mid_line { "\n" } else { "" };
        self.mid_line = false;
        self.file
            .write_all(format!("{start}[maos: {line}]\n").as_bytes())
    }

    /// Bytes discarded past the cap.
    #[cfg(test)]
    pub(crate) fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Finishes the log: says how much was discarded and syncs the file.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.flush_pending(self.pending.len())?;
        if self.discarded > 0 {
            let line = format!("{} more bytes were discarded", self.discarded);
            self.note(&line)?;
        }
        self.file.sync_data()
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // A log dropped without `finish` still gets its last, unfinished line.
        let _ = self.flush_pending(self.pending.len());
    }
}

/// A log shared by the threads that read an agent's stdout and stderr.
pub(crate) type SharedLog = Arc<Mutex<LogWriter>>;

/// Reads attempt logs from files (implements the application's `AttemptLogs` port).
#[derive(Debug, Clone)]
pub struct FileLogs {
    dir: PathBuf,
}

impl FileLogs {
    /// Logs under `dir` (`<data dir>/logs`).
    pub fn new(dir: impl Into<PathBuf>) -> FileLogs {
        FileLogs { dir: dir.into() }
    }

    fn read_now(&self, task: TaskId, attempt: u32, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut file = match File::open(log_path(&self.dir, task, attempt)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(max.min(1 << 16));
        file.take(max as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

impl AttemptLogs for FileLogs {
    fn read(
        &self,
        task: TaskId,
        attempt: u32,
        offset: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<u8>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let bytes = self.read_now(task, attempt, offset, max).map_err(|e| {
                StoreError::Backend(format!(
                    "cannot read the log of attempt {attempt} of task {}: {e}",
                    task.short()
                ))
            })?;
            if !bytes.is_empty() || Instant::now() >= deadline {
                return Ok(bytes);
            }
            std::thread::sleep(Duration::from_millis(25).min(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_head_and_marks_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/1.log");
        let mut log = LogWriter::create(&path, 10).unwrap();
        log.write(b"0123456").unwrap();
        log.write(b"789abc").unwrap();
        log.write(&[0xff, 0xfe]).unwrap();
        // Held until the line is whole.
        assert_eq!(log.discarded(), 0);
        log.write(b"\n").unwrap();
        assert_eq!(log.discarded(), 6);
        log.finish().unwrap();
        let text = std::fs::read(&path).unwrap();
        assert!(text.starts_with(b"0123456789\n[maos: the log reached its cap of 10 bytes"));
        assert!(text.ends_with(b"[maos: 6 more bytes were discarded]\n"));
    }

    #[test]
    fn secrets_are_replaced_even_when_split_between_two_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/2.log");
        let redactor = Redactor::new([b"s3cr3t-v4lue-42".to_vec()]);
        let mut log = LogWriter::redacting(&path, 1 << 20, redactor).unwrap();
        log.write(b"key: s3cr3t-").unwrap();
        log.write(b"v4lue-42\npartial s3cr3t-v4lue-42").unwrap();
        log.note("the agent said s3cr3t-v4lue-42").unwrap();
        log.finish().unwrap();
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(
            text,
            "key: [redacted]\npartial [redacted]\n[maos: the agent said [redacted]]\n"
        );
    }

    #[test]
    fn notes_start_a_line_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/1.log");
        let mut log = LogWriter::create(&path, 100).unwrap();
        log.note("first").unwrap();
        log.write(b"no newline").unwrap();
        log.note("second").unwrap();
        log.write(b"a line\n").unwrap();
        log.note("third").unwrap();
        log.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[maos: first]\nno newline\n[maos: second]\na line\n[maos: third]\n"
        );
    }

    #[test]
    fn file_logs_read_from_an_offset_and_report_nothing_for_a_missing_log() {
        let dir = tempfile::tempdir().unwrap();
        let task = TaskId::from_bits(5);
        let mut log = LogWriter::create(&log_path(dir.path(), task, 2), 1 << 20).unwrap();
        log.write(b"hello \xff world").unwrap();
        log.finish().unwrap();
        let logs = FileLogs::new(dir.path());
        let all = logs.read(task, 2, 0, 100, Duration::ZERO).unwrap();
        assert_eq!(all, b"hello \xff world");
        let tail = logs.read(task, 2, 6, 3, Duration::ZERO).unwrap();
        assert_eq!(tail, b"\xff w");
        assert!(
            logs.read(task, 1, 0, 100, Duration::ZERO)
                .unwrap()
                .is_empty()
        );
        let started = Instant::now();
        assert!(
            logs.read(task, 2, 1000, 10, Duration::from_millis(60))
                .unwrap()
                .is_empty()
        );
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
