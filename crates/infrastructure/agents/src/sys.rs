//! The few operating-system calls the supervisor needs that the standard library lacks: signals
//! to a whole process group, resource limits and a parent-death signal set in the child between
//! `fork` and `exec`, and finding the processes of a group a dead daemon left behind.
//!
//! This is the only module of the crate with `unsafe` code; each block says why it is sound.
#![allow(unsafe_code)]

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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: fields after the
    // last ')' are "state ppid pgrp ...".
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Makes the child the leader of a new process group, asks the kernel to kill it when the thread
/// that spawned it dies (so children die with the daemon even after `kill -9`), and applies the
/// agent's resource limits, all before the program starts.
pub(crate) fn prepare(cmd: &mut Command, limits: ResourceLimits) {
    cmd.process_group(0);
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
    .filter_map(|(resource, value)| value.map(|v| (resource, v as libc::rlim_t)))
    .collect();
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec. It only makes async-signal-safe
    // system calls (prctl, getppid, setrlimit) on values prepared before the fork, and allocates
    // nothing: `rlimits` was built in the parent and is only read here.
    unsafe {
        cmd.pre_exec(move || {
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

/// The processes of group `pgid` whose environment says they belong to `attempt` of `task` (as
/// the supervisor set `MAOS_TASK_ID` and `MAOS_ATTEMPT`): what a dead daemon's attempt left
/// running. Checking the environment keeps a reused process id from being mistaken for one.
pub(crate) fn leftovers(pgid: u32, task: &str, attempt: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want_task = format!("MAOS_TASK_ID={task}");
    let want_attempt = format!("MAOS_ATTEMPT={attempt}");
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if stat_of(pid).is_none_or(|(_, pgrp)| pgrp != pgid) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if vars.contains(&want_task.as_bytes()) && vars.contains(&want_attempt.as_bytes()) {
            out.push(pid);
        }
    }
    out
}
