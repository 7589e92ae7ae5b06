//! The few operating-system calls the supervisor needs that the standard library lacks: signals
//! to a whole process group, resource limits, a parent-death signal and a move into the
//! attempt's cgroup set in the child between `fork` and `exec`, the child-subreaper flag,
//! reaping an adopted orphan, and reading `/proc` to find an attempt's processes.
//!
//! This is the only module of the crate with `unsafe` code; each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use maos_domain::ResourceLimits;

/// Sends `signal` to every process of the process group `pgid`. A group that no longer exists
/// is not an error.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Ok(());
    };
    if pgid <= 1 {
        // Never signal "every process" (0, -1) or init's group by mistake.
        return Ok(());
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(err)
}

/// Sends `signal` to one process; one that no longer exists is not an error.
pub(crate) fn signal_process(pid: u32, signal: i32) -> io::Result<()> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Ok(());
    };
    if pid <= 1 {
        return Ok(());
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

/// True while some process of group `pgid` is alive: exists and is not a zombie (a dead
/// process whose parent has not reaped it yet, which an init that reaps slowly keeps around).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(group) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if group <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission; no memory is touched.
    let rc = unsafe { libc::kill(-group, 0) };
    if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(stat_of)
            .is_some_and(|(state, pgrp)| pgrp == pgid && !matches!(state, 'Z' | 'X'))
    })
}

/// The state and process group of process `pid`, from `/proc/<pid>/stat`.
fn stat_of(pid: u32) -> Option<(char, u32)> {
    stat(pid).map(|s| (s.state, s.pgrp))
}

/// Makes the child the leader of a new process group, asks the kernel to kill it when the thread
/// that spawned it dies (so children die with the daemon even after `kill -9`), moves it into
/// the attempt's cgroup (`cgroup_procs`: that cgroup's `cgroup.procs` file) so that everything
/// it starts stays in there, and applies the agent's resource limits, all before the program
/// starts.
pub(crate) fn prepare(cmd: &mut Command, limits: ResourceLimits, cgroup_procs: Option<CString>) {
    cmd.process_group(0);
    let limits = limits.effective();
    let rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)> = [
        (libc::RLIMIT_CPU, limits.cpu_seconds),
        (
            libc::RLIMIT_AS,
            limits.memory_mib.map(|m| m.saturating_mul(1 << 20)),
        ),
        (libc::RLIMIT_NOFILE, limits.open_files),
        (libc::RLIMIT_NPROC, limits.processes),
    ]
    .into_iter()
    .filter_map(|(resource, value)| {
        value.map(|v| (resource, (v as libc::rlim_t).min(hard_limit(resource))))
    })
    .collect();
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec. It only makes async-signal-safe
    // system calls (prctl, getppid, open, write, close, setrlimit) on values prepared before the
    // fork, and allocates nothing: `rlimits` and `cgroup_procs` were built in the parent and are
    // only read here.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &cgroup_procs {
                // Writing "0" to cgroup.procs moves the writing process; its children follow.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(err);
                }
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            for (resource, value) in &rlimits {
                let limit = libc::rlimit {
                    rlim_cur: *value,
                    rlim_max: *value,
                };
                if libc::setrlimit(*resource, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// This process's hard limit of `resource` (what an unprivileged child may go up to).
fn hard_limit(resource: libc::__rlimit_resource_t) -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit writes only to `limit`, a local we own.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return libc::RLIM_INFINITY;
    }
    limit.rlim_max
}

/// Makes this process the child subreaper of its descendants: an orphan among them is adopted
/// by this process instead of init, so it stays findable (and must be reaped here).
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps `pid` if it is a child of this process that has ended; true when it was reaped.
/// Never waits, and never touches another pid (so it cannot steal a status that a
/// `std::process::Child` waits for, as long as `pid` is not one).
pub(crate) fn reap(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, a local we own.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc == pid
}

/// What `/proc/<pid>/stat` says of a process: its state, parent, process group and start time
/// (clock ticks after boot, which tells a reused pid from the process that had it before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) state: char,
    pub(crate) ppid: u32,
    pub(crate) pgrp: u32,
    pub(crate) start: u64,
}

impl Stat {
    /// A zombie or a dead process: it runs no more.
    pub(crate) fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// The [`Stat`] of `pid`, if it exists.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: fields after the
    // last ')' are "state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice num_threads itrealvalue starttime ...".
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process id in `/proc` now.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .collect()
}

/// The values of the variables `a` and `b` (each given as `NAME=`) in the environment of `pid`,
/// when it has both.
pub(crate) fn environ_values(pid: u32, a: &[u8], b: &[u8]) -> Option<(String, String)> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let mut found = (None, None);
    for var in environ.split(|c| *c == 0) {
        if let Some(v) = var.strip_prefix(a) {
            found.0 = Some(String::from_utf8_lossy(v).into_owned());
        } else if let Some(v) = var.strip_prefix(b) {
            found.1 = Some(String::from_utf8_lossy(v).into_owned());
        }
    }
    Some((found.0?, found.1?))
}
