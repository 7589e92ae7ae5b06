//! The daemon as a user meets it: start, status, stop, one per data directory, a stale socket
//! replaced, graceful signals, and no acknowledged write lost to `kill -9`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fixtures::assert_verified;
use crate::support::{Env, in_process};

/// `maos daemon status --json` of a running daemon.
fn status(env: &Env) -> serde_json::Value {
    env.ok_json(&["daemon", "status"])
}

fn pid_of(env: &Env) -> String {
    status(env)["pid"].as_u64().unwrap().to_string()
}

fn kill(signal: &str, pid: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {signal} {pid} failed");
}

/// Waits until `pid` is gone (or panics after 10 s).
fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie (dead, not yet reaped by init) counts as gone.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_status_stop() {
    if in_process() {
        return; // daemon-only behaviour; it ran in the daemon pass
    }
    let env = Env::new();
    let none = env.maos(&["daemon", "status"]);
    assert_eq!(none.code, 6, "{none:?}");
    assert!(
        none.stderr.contains("no daemon is running"),
        "{}",
        none.stderr
    );
    assert!(
        none.stderr.contains("hint: `maos daemon start`"),
        "{}",
        none.stderr
    );

    let started = env.maos(&["daemon", "start"]);
    assert_eq!(started.code, 0, "{started:?}");
    assert!(
        started.stdout.starts_with("daemon started: pid "),
        "{}",
        started.stdout
    );
    let again = env.ok_json(&["daemon", "start"]);
    assert_eq!(again["already_running"], true);

    let st = status(&env);
    assert_eq!(st["schema_version"], 1);
    assert_eq!(st["protocol"], 10);
    assert_eq!(
        st["database"].as_str().unwrap(),
        env.dir()
            .canonicalize()
            .unwrap()
            .join("maos.db")
            .to_str()
            .unwrap()
    );
    assert_eq!(st["status"]["tasks"]["total"], 0);
    let socket = Path::new(st["socket"].as_str().unwrap()).to_path_buf();
    assert!(
        socket.starts_with(env.runtime_dir().join("maos")),
        "{}",
        socket.display()
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600, "socket mode");
    assert_eq!(
        mode(socket.parent().unwrap()),
        0o700,
        "socket directory mode"
    );

    // Commands go through it: the daemon's counts follow.
    env.task("Through the daemon", &[]);
    assert_eq!(status(&env)["status"]["tasks"]["total"], 1);

    let pid = st["pid"].as_u64().unwrap();
    let stopped = env.ok_json(&["daemon", "stop"]);
    assert_eq!(stopped["stopped"].as_u64(), Some(pid));
    wait_gone(&pid.to_string());
    assert!(!socket.exists(), "the socket is removed on stop");
    assert_eq!(env.maos(&["daemon", "status"]).code, 6);
    let idle = env.ok_json(&["daemon", "stop"]);
    assert_eq!(idle["stopped"], serde_json::Value::Null);
}

#[test]
fn a_second_daemon_names_the_pid_that_holds_the_data_directory() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.ok_json(&["daemon", "start"]);
    let pid = pid_of(&env);
    let second = env.maos(&["daemon"]);
    assert_eq!(second.code, 4, "{second:?}");
    assert!(
        second
            .stderr
            .contains(&format!("another daemon (pid {pid}) already serves")),
        "{}",
        second.stderr
    );
    // The first one is unharmed.
    assert_eq!(pid_of(&env), pid);
}

#[test]
fn a_stale_socket_left_by_a_killed_daemon_is_replaced() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.agent("survivor", "rust");
    let st = status(&env);
    let pid = st["pid"].as_u64().unwrap().to_string();
    let socket = Path::new(st["socket"].as_str().unwrap()).to_path_buf();
    kill("-9", &pid);
    wait_gone(&pid);
    assert!(socket.exists(), "kill -9 leaves the socket behind");
    // The next command finds no one answering, starts a new daemon, which replaces the socket.
    let agents = env.ok_json(&["agent", "list"]);
    assert_eq!(agents["agents"][0]["name"], "survivor");
    assert_ne!(pid_of(&env), pid);
    assert_verified(&env);
}

#[test]
fn sigterm_and_sigint_stop_the_daemon_gracefully() {
    if in_process() {
        return;
    }
    for signal in ["-TERM", "-INT"] {
        let env = Env::new();
        env.task("Written before the signal", &[]);
        let st = status(&env);
        let pid = st["pid"].as_u64().unwrap().to_string();
        let socket = Path::new(st["socket"].as_str().unwrap()).to_path_buf();
        kill(signal, &pid);
        wait_gone(&pid);
        assert!(!socket.exists(), "{signal}: the socket is removed");
        let log = std::fs::read_to_string(env.dir().join("daemon.log")).unwrap();
        assert!(
            log.contains("daemon stopped"),
            "{signal}: the daemon did not stop cleanly:\n{log}"
        );
        // Everything written is there for the next daemon.
        let tasks = env.ok_json(&["task", "list"]);
        assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{signal}");
    }
}

#[test]
fn no_acknowledged_write_is_lost_to_kill_9() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut refused = 0;
    for round in 0..3 {
        // A writer creates tasks one after another while the daemon is killed under it.
        let pid = {
            env.task(&format!("round {round} opener"), &[]);
            pid_of(&env)
        };
        acknowledged.push(format!("round {round} opener"));
        let killer = {
            let pid = pid.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                kill("-9", &pid);
            })
        };
        let start = Instant::now();
        let mut i = 0;
        while start.elapsed() < Duration::from_millis(600) {
            let title = format!("round {round} write {i}");
            let key = format!("k-{round}-{i}");
            let run = env.maos(&[
                "task",
                "create",
                &title,
                "--idempotency-key",
                &key,
                "--json",
            ]);
            if run.code == 0 {
                acknowledged.push(title);
            } else {
                refused += 1;
            }
            i += 1;
        }
        killer.join().unwrap();
        wait_gone(&pid);
    }
    // Restart (the next command starts a daemon) and count.
    let page = env.ok_json(&["task", "list", "--limit", "10000"]);
    let stored: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|t| !stored.contains(&t.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(
        acknowledged.len() > 10,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
    // Writes in flight at a kill may fail (exit 6) or go through a new daemon; none is stored
    // twice (each carried its own idempotency key).
    let mut unique = stored.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "a task was stored twice");
    // And what is stored agrees with the log, after three kills.
    assert_verified(&env);
    eprintln!(
        "kill -9 x3: {} acknowledged writes all present, {refused} refused during the kills",
        acknowledged.len()
    );
}

/// Runs `python3 -c script` as the unprivileged user `nobody` (uid 65534): directly when this
/// process is root, else through passwordless sudo. `None` when neither is possible here.
fn as_nobody(script: &str) -> Option<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root {
        return std::process::Command::new("python3")
            .args(["-c", script])
            .uid(65534)
            .gid(65534)
            .output()
            .ok();
    }
    let sudo = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    sudo.then(|| {
        std::process::Command::new("sudo")
            .args(["-n", "-u", "nobody", "python3", "-c", script])
            .output()
            .ok()
    })
    .flatten()
}

#[test]
fn a_connection_from_another_user_is_refused_and_logged() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.ok_json(&["daemon", "start"]);
    let st = status(&env);
    let socket = Path::new(st["socket"].as_str().unwrap()).to_path_buf();
    // Open the way on purpose (as a careless admin might), so that only the daemon's own check
    // stands between the other user and the API.
    for (path, mode) in [(socket.parent().unwrap(), 0o755), (socket.as_path(), 0o666)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.connect({:?})\n\
         s.settimeout(5)\n\
         try:\n    s.sendall(b'\\x00' * 64)\n    data = s.recv(4096)\nexcept OSError as e:\n    data = b''\n\
         print('received', len(data))\n",
        socket.display().to_string()
    );
    let Some(out) = as_nobody(&script) else {
        eprintln!(
            "SKIPPED: cannot run a process as another user here (needs root or passwordless sudo)"
        );
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("received 0"),
        "the other user got an answer: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The refusal is logged with the reason.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(env.dir().join("daemon.log")).unwrap_or_default();
        if log.contains("refusing connection from uid 65534") {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // And the daemon still serves its own user.
    assert_eq!(env.ok_json(&["status"])["schema_version"], 1);
}

#[test]
fn a_daemon_whose_data_directory_is_deleted_stops() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let st = env.ok_json(&["daemon", "start"]);
    let pid = st["pid"].as_u64().unwrap().to_string();
    // Delete the data directory's contents under the running daemon (the TempDir itself stays
    // for the harness to clean up).
    for entry in std::fs::read_dir(env.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    wait_gone(&pid);
}

#[test]
fn a_lock_held_for_a_moment_by_a_process_that_never_answers_does_not_fail_the_next_command() {
    if in_process() {
        return;
    }
    // What a dead daemon's half-spawned child does (it holds the lock between fork and exec):
    // here `flock` holds it for a second and a half without ever serving the socket. The
    // command must wait for the lock to come free and then start a daemon, not judge once and
    // fail with "holds daemon.lock but does not answer".
    let env = Env::new();
    let lock = env.dir().join("daemon.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1.5"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "flock never made the lock file");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let listed = env.maos(&["task", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(holder.wait().unwrap().success());
    assert!(status(&env)["pid"].as_u64().is_some());
}
