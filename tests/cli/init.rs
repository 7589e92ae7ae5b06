//! `maos init` through the real binary, on a machine whose agent CLIs are stand-ins (scripts
//! named `claude`, `codex`, `gemini` that answer their version command, and a fake of Ollama's
//! `/api/tags` on 127.0.0.1): what it finds, the file it writes, the agents it registers, that a
//! second run changes nothing, and every refusal.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{Env, in_process};

/// A directory of stand-in CLIs, each printing `version` for `--version`.
fn fake_clis(dir: &Path, clis: &[(&str, &str)]) {
    for (name, version) in clis {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\n[ \"$1\" = --version ] && echo '{version}' && exit 0\nexit 1\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `maos ARGS` with the stand-ins first on the PATH and a config directory of its own.
fn init(
    env: &Env,
    bin: &Path,
    config: &Path,
    ollama: &str,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd: Command = env.std_command(args);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("XDG_CONFIG_HOME", config)
        .env("OLLAMA_HOST", ollama);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An address where nothing listens (so the machine's own Ollama, if any, is not seen).
fn nobody() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    addr
}

#[test]
fn init_writes_the_agents_file_registers_its_agents_and_a_second_run_changes_nothing() {
    let env = Env::new();
    let bin = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    fake_clis(
        bin.path(),
        &[
            ("claude", "2.1.0 (Claude Code)"),
            ("codex", "codex-cli 0.171.0"),
            ("gemini", "0.9.0"),
        ],
    );
    let off = nobody();
    let (code, stdout, stderr) = init(
        &env,
        bin.path(),
        config.path(),
        &off,
        &["init", "--yes", "--only", "claude,codex", "--json"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let file = config.path().join("maos").join("agents.toml");
    assert_eq!(doc["file"], file.display().to_string().as_str());
    assert_eq!(doc["written"], true);
    assert_eq!(doc["registered"], serde_json::json!(["claude", "codex"]));
    let found: Vec<&str> = doc["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["claude", "codex"], "--only leaves gemini out");
    assert_eq!(doc["found"][0]["version"], "2.1.0 (Claude Code)");

    // The file: Codex with its sandbox flag, Claude Code allowed to edit and asked for the rest.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("args = [\"--sandbox\", \"workspace-write\"]"),
        "{text}"
    );
    assert!(text.contains("ask = [\"Bash\""), "{text}");
    let agents = env.ok_json(&["agent", "list"]);
    let by_name = |n: &str| {
        agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} is not registered: {agents:#}"))
    };
    assert_eq!(by_name("claude")["adapter"], "claude-code");
    assert_eq!(by_name("claude")["tier"], "strategic");
    assert_eq!(by_name("codex")["adapter"], "codex");
    if !in_process() {
        let st = env.ok_json(&["daemon", "status"]);
        assert!(st["pid"].as_u64().is_some(), "the daemon runs: {st:#}");
    }

    // Again: nothing changes, and it says so.
    let before = std::fs::read_to_string(&file).unwrap();
    let (code, stdout, stderr) = init(
        &env,
        bin.path(),
        config.path(),
        &off,
        &["init", "--yes", "--only", "claude,codex"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "Nothing changed: {} and its 2 agents are set up already.",
            file.display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    // A file the person changed is kept (and registered as it is) unless --force.
    std::fs::write(&file, format!("{before}\n# mine\n")).unwrap();
    let (code, stdout, _) = init(
        &env,
        bin.path(),
        config.path(),
        &off,
        &["init", "--yes", "--only", "claude,codex"],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("Kept "), "{stdout}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .ends_with("# mine\n")
    );
}

#[test]
fn init_finds_a_running_ollama_and_its_models() {
    let env = Env::new();
    let bin = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    // A fake of Ollama's API: `GET /api/tags` answers its models, once per connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let body = r#"{"models":[{"name":"qwen2.5-coder:7b"},{"name":"llama3.2:3b"}]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let (code, stdout, stderr) = init(
        &env,
        bin.path(),
        config.path(),
        &addr,
        &["init", "--yes", "--json"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["found"][0]["name"], "ollama", "{doc:#}");
    let text = std::fs::read_to_string(config.path().join("maos").join("agents.toml")).unwrap();
    assert!(text.contains("model = \"qwen2.5-coder:7b\""), "{text}");
    assert!(
        text.contains(&format!("base_url = \"http://{addr}/v1\"")),
        "{text}"
    );
    let agent = env.ok_json(&["agent", "show", "ollama"]);
    assert_eq!(agent["agent"]["adapter"], "ollama", "{agent:#}");
}

#[test]
fn init_refuses_what_it_cannot_do_and_changes_nothing() {
    let env = Env::new();
    let bin = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let off = nobody();
    // Nothing installed: it says what it looked for and how to install one (exit 3).
    let (code, _, stderr) = init(&env, bin.path(), config.path(), &off, &["init", "--yes"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("found no agent CLI: looked for claude, codex, gemini, opencode, aider"),
        "{stderr}"
    );
    assert!(
        stderr.contains("npm install -g @anthropic-ai/claude-code"),
        "{stderr}"
    );

    fake_clis(bin.path(), &[("codex", "codex-cli 0.171.0")]);
    // No terminal to ask on and no --yes: a usage error, nothing written.
    let (code, _, stderr) = init(&env, bin.path(), config.path(), &off, &["init"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("run again with --yes"), "{stderr}");
    // --only with a name init does not know.
    let (code, _, stderr) = init(
        &env,
        bin.path(),
        config.path(),
        &off,
        &["init", "--only", "cursor"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("name some of: claude, codex"), "{stderr}");
    // --repo-local outside any repository.
    let (code, _, stderr) = init(
        &env,
        bin.path(),
        config.path(),
        &off,
        &["init", "--yes", "--repo-local"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        !config.path().join("maos").exists(),
        "something was written"
    );
    assert_eq!(
        env.ok_json(&["agent", "list"])["agents"],
        serde_json::json!([])
    );
}

#[test]
fn init_says_what_it_found_proposes_and_did() {
    let env = Env::new();
    let bin = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    fake_clis(
        bin.path(),
        &[
            ("claude", "2.1.0 (Claude Code)"),
            ("codex", "codex-cli 0.171.0"),
        ],
    );
    let off = nobody();
    env.replace(&config.path().display().to_string(), "<config>");
    env.replace(&bin.path().display().to_string(), "<bin>");
    env.replace(&off, "<nobody>");
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let vars = [
        ("PATH", path.as_str()),
        ("XDG_CONFIG_HOME", config.path().to_str().unwrap()),
        ("OLLAMA_HOST", off.as_str()),
    ];
    for args in [
        &["init", "--yes"][..],
        &["init", "--yes"],
        &["init", "--yes", "--json"],
        &["init", "--only", "cursor"],
        &["init", "--only", "gemini", "--json"],
    ] {
        env.step_bounded(args, None, &vars);
    }
    insta::assert_snapshot!(env.transcript());
}
