//! Private files: the data directory is 0700 and every file MAOS writes there (the database and
//! its write-ahead log, the daemon's log and lock, attempts' logs, prompts and results) is 0600,
//! whatever the umask; an existing data directory others could enter is tightened, and that is
//! said once. The runtime directory's parents are checked: an `XDG_RUNTIME_DIR` of another user,
//! or one that others can write to, is refused.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::fixtures::script;
use crate::support::{Env, in_process};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `dir` whose mode lets anyone but the owner in.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            // config.toml is the user's own file; MAOS only reads it.
            if meta.mode() & 0o077 != 0 && entry.file_name() != "config.toml" {
                out.push(format!("{} {:04o}", path.display(), meta.mode() & 0o777));
            }
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

#[test]
fn everything_in_the_data_directory_is_private_whatever_the_umask() {
    let env = Env::new();
    // A data directory that does not exist yet, made by a maos run under umask 000.
    let data = env.dir().join("fresh");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "agent",
        "cat \"$MAOS_PROMPT_FILE\"\necho done\n",
    );
    let umasked = |args: &[&str]| {
        let mut cmd = env.std_command(&[]);
        let exe = cmd.get_program().to_owned();
        cmd.env("MAOS_DATA_DIR", &data);
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 000; exec '{}' {}",
                exe.to_str().unwrap(),
                quoted.join(" ")
            ))
            .envs(
                cmd.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("MAOS_DATA_DIR", &data)
            .current_dir(env.runtime_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    umasked(&[
        "agent",
        "register",
        "w",
        "--adapter",
        "command",
        "--command",
        &agent,
    ]);
    let created = umasked(&[
        "task",
        "create",
        "Secret work",
        "--prompt",
        "the secret plan",
        "--json",
    ]);
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if !in_process() {
        // The daemon ran the agent: its prompt, result and log files exist now.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let shown = umasked(&["task", "show", &id, "--json"]);
            let doc: serde_json::Value = serde_json::from_str(&shown).unwrap();
            if doc["task"]["state"] == "completed" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{doc:#}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(data.join("daemon.log").exists());
        assert!(data.join("logs").exists());
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("maos.db")), 0o600);
    assert_eq!(open_to_others(&data), Vec::<String>::new());
}

#[test]
fn an_open_data_directory_is_tightened_and_that_is_said_once() {
    let env = Env::new();
    std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = env.maos(&["status"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("was open to other users (mode 0755); it is 0700 now"),
        "{}",
        first.stderr
    );
    assert_eq!(mode(env.dir()), 0o700);
    let second = env.maos(&["status"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        !second.stderr.contains("open to other users"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_runtime_directory_of_another_user_or_open_to_others_is_refused() {
    if in_process() {
        return; // no socket without a daemon
    }
    let env = Env::new();
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = env
        .command(&["status"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("writable by other users (mode 0777)"),
        "{stderr}"
    );
    // Another user's, even if private to them.
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let chowned = std::process::Command::new("chown")
        .arg("65534")
        .arg(runtime.path())
        .status()
        .unwrap();
    if chowned.success() {
        let run = env
            .command(&["status"])
            .env("XDG_RUNTIME_DIR", runtime.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(6), "{stderr}");
        assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
    } else {
        eprintln!("SKIPPED the other-user case: cannot chown here (not root)");
    }
    // Nothing was created in the refused directories, and nothing stored.
    assert!(!runtime.path().join("maos").exists());
}
