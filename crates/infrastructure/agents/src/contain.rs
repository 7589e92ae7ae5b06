//! Containment: finding every process an attempt started, however it left its process group
//! (a new group, a new session, `setsid`, reparenting to init), and killing them all with the
//! attempt.
//!
//! Two mechanisms, chosen once when the supervisor starts (ADR 0011):
//!
//! - **cgroup v2** where the daemon can create cgroups below its own: every attempt's process
//!   is moved into `<root>/<task>-<attempt>` before it runs, so all its descendants are in
//!   there whatever they do; killing the attempt writes `cgroup.kill`. The root is recorded in
//!   `<data dir>/containment` before any agent starts, so the next daemon kills what a crashed
//!   one left behind even if the crash came between spawning an agent and recording its pid.
//! - **process tree** otherwise: the daemon is the child subreaper of its descendants (orphans
//!   are adopted by it, not by init), an attempt's processes are its leader's descendants plus
//!   every process whose environment carries the attempt's marker (`MAOS_TASK_ID` and
//!   `MAOS_ATTEMPT`, chosen before the spawn), and the orphans it kills or saw are reaped here.
//!   A process that clears its environment and daemonizes after its parent died escapes this
//!   mode; the cgroup mode has no such gap.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use maos_domain::TaskId;
use tracing::{debug, info, warn};

use crate::sys;

/// The file in the data directory that records how attempts are contained.
pub(crate) const CONTAINMENT_FILE: &str = "containment";

/// How long a kill waits for an attempt's processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// How an attempt's processes are kept together.
#[derive(Debug)]
pub(crate) struct Containment {
    mode: Mode,
    /// cgroup roots a previous daemon of this data directory recorded (leftovers live there).
    previous: Option<PathBuf>,
    /// Processes seen in attempts' trees (pid and start time), so that an orphan adopted by
    /// the daemon (process-tree mode) is reaped once it ends, and never another process.
    seen: Mutex<HashMap<u32, u64>>,
    /// The daemon's own children of attempts (agents, verification commands), which their
    /// runner waits for: never reaped here. Its lock is held across each spawn, so that a
    /// child cannot be reaped between its birth and its registration.
    spawned: Mutex<HashSet<u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Cgroup { root: PathBuf },
    Tree,
}

/// What `daemon status` says of the containment in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainmentKind {
    /// A cgroup v2 per attempt, below this directory.
    Cgroup(PathBuf),
    /// The daemon as child subreaper, with a walk of each attempt's processes.
    ProcessTree,
}

impl std::fmt::Display for ContainmentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainmentKind::Cgroup(root) => write!(f, "cgroup v2 ({})", root.display()),
            ContainmentKind::ProcessTree => f.write_str("process tree (child subreaper)"),
        }
    }
}

impl Containment {
    /// Chooses the mechanism for the data directory `data_dir` and records it there. A cgroup
    /// is used when `MAOS_CONTAINMENT` is not `tree` and a probe process can be moved into one.
    pub(crate) fn set_up(data_dir: &Path) -> Containment {
        let record = data_dir.join(CONTAINMENT_FILE);
        let previous = std::fs::read_to_string(&record).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("cgroup ").map(PathBuf::from))
        });
        let forced_tree = std::env::var("MAOS_CONTAINMENT").is_ok_and(|v| v == "tree");
        let mode = match (!forced_tree).then(|| cgroup_root(data_dir)).flatten() {
            Some(root) => match probe(&root) {
                Ok(()) => Mode::Cgroup { root },
                Err(e) => {
                    info!(root = %root.display(), error = %e, "cannot contain attempts in cgroups: using the process tree");
                    Mode::Tree
                }
            },
            None => Mode::Tree,
        };
        if mode == Mode::Tree
            && let Err(e) = sys::become_subreaper()
        {
            warn!(error = %e, "cannot become the child subreaper: orphans of agents go to init");
        }
        let text = match &mode {
            Mode::Cgroup { root } => format!("cgroup {}\n", root.display()),
            Mode::Tree => "tree\n".to_owned(),
        };
        if let Err(e) = crate::private::write(&record, text.as_bytes()) {
            warn!(path = %record.display(), error = %e, "cannot record the containment");
        }
        Containment {
            mode,
            previous: previous.filter(|p| p.is_dir()),
            seen: Mutex::new(HashMap::new()),
            spawned: Mutex::new(HashSet::new()),
        }
    }

    /// Which containment is in force.
    pub(crate) fn kind(&self) -> ContainmentKind {
        match &self.mode {
            Mode::Cgroup { root } => ContainmentKind::Cgroup(root.clone()),
            Mode::Tree => ContainmentKind::ProcessTree,
        }
    }

    /// Gets an attempt's cgroup ready before its process is spawned, and returns the file the
    /// child writes itself into (none in process-tree mode).
    pub(crate) fn prepare(&self, task: TaskId, attempt: u32) -> Result<Option<CString>, String> {
        let Mode::Cgroup { root } = &self.mode else {
            return Ok(None);
        };
        let dir = root.join(cgroup_name(task, attempt));
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(format!("cannot create the cgroup {}: {e}", dir.display()));
            }
            // A leftover of an earlier run of this attempt (or of its agent, when this is its
            // verification): empty it, and make it again if that removed it.
            kill_cgroup(&dir);
            if let Err(e) = std::fs::create_dir(&dir)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(format!("cannot create the cgroup {}: {e}", dir.display()));
            }
        }
        CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map(Some)
            .map_err(|_| format!("the cgroup path {} holds a NUL byte", dir.display()))
    }

    /// Spawns `cmd`, a child of the daemon that its caller will wait for: registered so that
    /// it is never reaped here (until [`Containment::forget`]).
    pub(crate) fn spawn(
        &self,
        cmd: &mut std::process::Command,
    ) -> std::io::Result<std::process::Child> {
        let mut spawned = lock(&self.spawned);
        let child = cmd.spawn()?;
        spawned.insert(child.id());
        Ok(child)
    }

    /// The child `pid` was waited for: it is no longer the daemon's to protect.
    pub(crate) fn forget(&self, pid: u32) {
        lock(&self.spawned).remove(&pid);
    }

    /// Sends `signal` to every process of the attempt (`leader`: its first process, when it
    /// started one).
    pub(crate) fn signal(&self, task: TaskId, attempt: u32, leader: Option<u32>, signal: i32) {
        if let Some(pgid) = leader {
            let _ = sys::signal_group(pgid, signal);
        }
        let snap = self.snapshot();
        for pid in self.members(snap.as_ref(), task, attempt, leader) {
            let _ = sys::signal_process(pid, signal);
        }
    }

    /// Kills every process of the attempt and waits (briefly) until they are gone; removes its
    /// cgroup. Returns how many processes it signalled.
    pub(crate) fn kill(&self, task: TaskId, attempt: u32, leader: Option<u32>) -> usize {
        if let Some(pgid) = leader {
            let _ = sys::signal_group(pgid, libc::SIGKILL);
        }
        match &self.mode {
            Mode::Cgroup { root } => kill_cgroup(&root.join(cgroup_name(task, attempt))),
            Mode::Tree => {
                let mut killed = 0;
                let deadline = Instant::now() + KILL_WAIT;
                loop {
                    let snap = Procs::now();
                    let members = self.members(Some(&snap), task, attempt, leader);
                    // Remembered before they die (zombies too), so that the orphans among them
                    // are reaped here.
                    for &pid in &members {
                        self.remember(&snap, pid);
                    }
                    let alive: Vec<u32> = members
                        .into_iter()
                        .filter(|p| snap.stats.get(p).is_some_and(|s| !s.ended()))
                        .collect();
                    if alive.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                    for &pid in &alive {
                        if sys::signal_process(pid, libc::SIGKILL).is_ok() {
                            killed += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    self.reap_adopted();
                }
                self.reap_adopted();
                killed
            }
        }
    }

    /// Kills what a dead daemon of this data directory left running: every process in the
    /// cgroups it recorded, and every process that carries the marker of one of `attempts`.
    pub(crate) fn kill_leftovers(&self, attempts: &[(TaskId, u32, Option<u32>)]) -> usize {
        let mut killed = 0;
        let mut roots: Vec<&Path> = Vec::new();
        if let Some(p) = &self.previous {
            roots.push(p);
        }
        if let Mode::Cgroup { root } = &self.mode
            && Some(root) != self.previous.as_ref()
        {
            roots.push(root);
        }
        for root in roots {
            let Ok(dir) = std::fs::read_dir(root) else {
                continue;
            };
            for entry in dir.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    killed += kill_cgroup(&entry.path());
                }
            }
        }
        let snap = (!attempts.is_empty()).then(Procs::now);
        for (task, attempt, _) in attempts {
            for pid in snap.iter().flat_map(|s| s.marked(*task, *attempt)) {
                if sys::signal_process(pid, libc::SIGKILL).is_ok() {
                    killed += 1;
                }
            }
        }
        killed
    }

    /// Records the processes of running attempts (process-tree mode), and reaps adopted
    /// orphans that ended. Called on the heartbeat.
    pub(crate) fn watch(&self, attempts: &[(TaskId, u32, Option<u32>)]) {
        if self.mode != Mode::Tree {
            return;
        }
        if attempts.is_empty() {
            return self.reap_adopted();
        }
        // One look at /proc for every attempt.
        let snap = Procs::now();
        for (task, attempt, leader) in attempts {
            for pid in self.members(Some(&snap), *task, *attempt, *leader) {
                self.remember(&snap, pid);
            }
        }
        self.reap_adopted();
    }

    /// Removes the (empty) cgroup root when the daemon stops.
    pub(crate) fn close(&self) {
        if let Mode::Cgroup { root } = &self.mode {
            let _ = std::fs::remove_dir(root);
        }
    }

    /// The attempt's processes other than its leader: the cgroup's members, or the leader's
    /// process group and descendants and the processes carrying the attempt's marker.
    fn members(
        &self,
        snap: Option<&Procs>,
        task: TaskId,
        attempt: u32,
        leader: Option<u32>,
    ) -> Vec<u32> {
        match (&self.mode, snap) {
            (Mode::Cgroup { root }, _) => procs_of(&root.join(cgroup_name(task, attempt))),
            (Mode::Tree, None) => Vec::new(),
            (Mode::Tree, Some(snap)) => {
                let mut out: HashSet<u32> = snap.marked(task, attempt).into_iter().collect();
                if let Some(leader) = leader {
                    out.extend(snap.tree_of(leader));
                }
                let me = std::process::id();
                out.retain(|&p| p != me && Some(p) != leader);
                out.into_iter().collect()
            }
        }
    }

    fn remember(&self, snap: &Procs, pid: u32) {
        if let Some(s) = snap.stats.get(&pid) {
            lock(&self.seen).insert(pid, s.start);
        }
    }

    /// A look at `/proc`, when the process-tree mode needs one.
    fn snapshot(&self) -> Option<Procs> {
        (self.mode == Mode::Tree).then(Procs::now)
    }

    /// Reaps the ended processes this daemon adopted that were seen in an attempt's tree (the
    /// start time must match, so a pid reused by a child the daemon waits for is left alone).
    fn reap_adopted(&self) {
        let me = std::process::id();
        let spawned = lock(&self.spawned);
        let mut seen = lock(&self.seen);
        seen.retain(|&pid, &mut start| match sys::stat(pid) {
            None => false,
            Some(s) if s.start != start => false,
            Some(_) if spawned.contains(&pid) => true,
            Some(s) if s.ppid == me && matches!(s.state, 'Z' | 'X') => !sys::reap(pid),
            Some(_) => true,
        });
    }
}

impl Drop for Containment {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cgroup_name(task: TaskId, attempt: u32) -> String {
    format!("{task}-{attempt}")
}

/// The cgroup directory for this data directory's attempts: below the daemon's own cgroup in
/// the cgroup v2 hierarchy, named after the data directory (so two daemons never share one).
fn cgroup_root(data_dir: &Path) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (mount_root, mount_point) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        Some((unescape(fields.get(3)?), unescape(fields.get(4)?)))
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let relative = Path::new(own).strip_prefix(&mount_root).ok()?;
    let canonical = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let name = format!("maos-{:016x}", fnv1a(canonical.as_os_str().as_bytes()));
    Some(Path::new(&mount_point).join(relative).join(name))
}

/// A mount-table path with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// FNV-1a, 64 bits: a stable name for a data directory (the same in every build).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Creates the root and moves a short-lived probe process into a cgroup below it: proof that
/// this daemon may contain attempts in cgroups.
fn probe(root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let dir = root.join("probe");
    let _ = std::fs::create_dir(&dir);
    let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
        .map_err(|_| "a NUL byte in the cgroup path".to_owned())?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "exit 0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    sys::prepare(
        &mut cmd,
        maos_domain::ResourceLimits::default(),
        Some(procs),
    );
    let status = cmd.status();
    kill_cgroup(&dir);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("the probe process ended with {s}")),
        Err(e) => Err(format!("cannot move a process into {}: {e}", dir.display())),
    }
}

/// The process ids in a cgroup.
fn procs_of(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process in the cgroup `dir` (`cgroup.kill`, or SIGKILL to each member on
/// kernels without it), waits until it is empty and removes it. Returns how many processes it
/// found there.
fn kill_cgroup(dir: &Path) -> usize {
    let found = procs_of(dir).len();
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        if std::fs::write(dir.join("cgroup.kill"), b"1").is_err() {
            for pid in procs_of(dir) {
                let _ = sys::signal_process(pid, libc::SIGKILL);
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => {
                if Instant::now() >= deadline {
                    debug!(cgroup = %dir.display(), error = %e, "cannot remove a cgroup yet");
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    found
}

/// One look at `/proc`: every process's [`sys::Stat`], and the attempt its environment names
/// (`MAOS_TASK_ID` and `MAOS_ATTEMPT`, set by the supervisor before the spawn: checking them
/// keeps a reused process id from being mistaken for an attempt's).
struct Procs {
    stats: HashMap<u32, sys::Stat>,
    marks: HashMap<u32, (String, String)>,
}

impl Procs {
    fn now() -> Procs {
        let me = std::process::id();
        let mut stats = HashMap::new();
        let mut marks = HashMap::new();
        for pid in sys::all_pids() {
            if pid == me {
                continue;
            }
            let Some(stat) = sys::stat(pid) else { continue };
            stats.insert(pid, stat);
            if let Some(mark) = sys::environ_values(pid, b"MAOS_TASK_ID=", b"MAOS_ATTEMPT=") {
                marks.insert(pid, mark);
            }
        }
        Procs { stats, marks }
    }

    /// The processes whose environment names `attempt` of `task`.
    fn marked(&self, task: TaskId, attempt: u32) -> Vec<u32> {
        let (task, attempt) = (task.to_string(), attempt.to_string());
        self.marks
            .iter()
            .filter(|(_, (t, a))| *t == task && *a == attempt)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Every process of `root`'s process group, and every descendant of `root` and of those.
    fn tree_of(&self, root: u32) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut out = Vec::new();
        for (&pid, s) in &self.stats {
            children.entry(s.ppid).or_default().push(pid);
            if s.pgrp == root && pid != root {
                out.push(pid);
            }
        }
        let mut stack = out.clone();
        stack.push(root);
        let mut seen: HashSet<u32> = stack.iter().copied().collect();
        while let Some(p) = stack.pop() {
            for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
                if seen.insert(c) {
                    out.push(c);
                    stack.push(c);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_escapes_are_undone() {
        assert_eq!(unescape(r"/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\\"), r"/a\\");
    }

    #[test]
    fn an_attempts_leftover_cgroup_is_emptied_and_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Containment::set_up(tmp.path());
        let task = TaskId::from_bits(42);
        let first = c.prepare(task, 1).unwrap();
        let second = c.prepare(task, 1).unwrap();
        match (&c.mode, first, second) {
            (Mode::Cgroup { .. }, Some(a), Some(b)) => {
                assert_eq!(a, b);
                // The file the child writes itself into exists again.
                let path = std::path::PathBuf::from(b.to_str().unwrap());
                assert!(path.exists(), "{}", path.display());
            }
            (Mode::Tree, None, None) => {}
            (mode, a, b) => panic!("{mode:?}: {a:?} {b:?}"),
        }
        c.kill(task, 1, None);
        c.close();
    }

    #[test]
    fn data_directories_get_distinct_stable_names() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"/a"), fnv1a(b"/b"));
        assert_eq!(fnv1a(b"/a"), fnv1a(b"/a"));
    }
}
