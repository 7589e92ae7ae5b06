//! `maos doctor` through the real binary: a fresh machine has no problem (and nothing is
//! created), a broken setup reports each problem once with what to do and exits 9, and the
//! value of an environment variable an agent names is never printed.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::fixtures::Repo;
use crate::support::Env;

/// The findings of a `doctor --json` document whose `check` is `check`.
fn of<'a>(doc: &'a Value, check: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

#[test]
fn a_fresh_data_directory_has_no_problem_and_doctor_creates_nothing() {
    let env = Env::new();
    let absent = env.dir().join("not-yet");
    // No global git identity here: one warning more, the same on every machine.
    let no_identity = [("GIT_CONFIG_GLOBAL", "/dev/null")];
    let run = env.maos_env(
        &["--data-dir", absent.to_str().unwrap(), "doctor", "--json"],
        &no_identity,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(doc["problems"], 0, "{doc:#}");
    assert_eq!(of(&doc, "data directory")[0]["status"], "ok");
    assert_eq!(of(&doc, "agents")[0]["status"], "warning", "{doc:#}");
    assert_eq!(of(&doc, "git")[0]["status"], "ok", "{doc:#}");
    assert_eq!(of(&doc, "daemon")[0]["status"], "ok", "{doc:#}");
    assert!(!absent.exists(), "doctor created the data directory");

    // Text for people: a line per finding and the count; exit 0.
    let run = env.maos(&["--data-dir", absent.to_str().unwrap(), "doctor"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("ok       git: git version"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("0 problems, 1 warning\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_broken_setup_reports_each_problem_once_with_a_fix_and_exits_9() {
    let env = Env::new();
    // An agent whose program went away after it was registered, and one that names two
    // variables: one unset, one set to a secret that must never be printed.
    let bin = tempfile::tempdir().unwrap();
    let program = bin.path().join("vanishing-agent");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let command = format!("{} --flag", program.display());
    env.ok_json(&[
        "agent",
        "register",
        "ghost",
        "--adapter",
        "command",
        "--command",
        &command,
    ]);
    std::fs::remove_file(&program).unwrap();
    env.ok_json(&[
        "agent",
        "register",
        "keyed",
        "--adapter",
        "command",
        "--command",
        "sh -c true",
        "--env",
        "MAOS_DOCTOR_UNSET_VAR",
        "--env",
        "MAOS_DOCTOR_SECRET",
    ]);
    // A repository with a git lock held (a problem) and uncommitted changes.
    let repo = Repo::new();
    std::fs::write(repo.path().join(".git").join("index.lock"), "").unwrap();
    // The data directory opened to others.
    std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let secret = "s3cr3t-value-never-printed";
    let mut cmd = env.command(&["doctor", "--repo", repo.path().to_str().unwrap(), "--json"]);
    cmd.env("MAOS_DOCTOR_SECRET", secret)
        .env_remove("MAOS_DOCTOR_UNSET_VAR");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(9), "{stdout}{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    let doc: Value = serde_json::from_str(&stdout).unwrap();

    let ghost = of(&doc, "agent ghost: program");
    assert_eq!(ghost.len(), 1, "{doc:#}");
    assert_eq!(ghost[0]["status"], "problem");
    assert!(
        ghost[0]["message"]
            .as_str()
            .unwrap()
            .contains("vanishing-agent is not found"),
        "{doc:#}"
    );
    assert!(ghost[0]["fix"].is_string());

    let env_findings = of(&doc, "agent keyed: environment");
    assert_eq!(env_findings.len(), 2, "{doc:#}");
    let unset = env_findings
        .iter()
        .find(|f| f["message"] == "MAOS_DOCTOR_UNSET_VAR is not set here")
        .expect("the unset variable is named");
    assert_eq!(unset["status"], "problem");
    let set = env_findings
        .iter()
        .find(|f| f["message"] == "MAOS_DOCTOR_SECRET is set")
        .expect("the set variable is named, its value not");
    assert_eq!(set["status"], "ok");

    let repo_findings = of(&doc, "repository");
    assert_eq!(repo_findings.len(), 1, "{doc:#}");
    assert_eq!(repo_findings[0]["status"], "problem");
    assert!(
        repo_findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("index.lock"),
        "{doc:#}"
    );
    let data = of(&doc, "data directory");
    assert_eq!(data[0]["status"], "warning", "{doc:#}");
    assert!(data[0]["fix"].as_str().unwrap().starts_with("chmod 700"));

    // Every problem once: the count is the number of problem findings, and no check repeats
    // a problem.
    let problems: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "problem")
        .collect();
    assert_eq!(doc["problems"], problems.len(), "{doc:#}");
    assert_eq!(problems.len(), 3, "{doc:#}");
    // With --json the document says it all: no error document follows it on stdout.
    assert_eq!(stdout.matches("\"schema_version\"").count(), 1);
}

#[test]
fn a_cli_agent_whose_program_is_missing_is_registered_with_a_warning_that_doctor_repeats() {
    let env = Env::new();
    // A PATH without `claude` on it.
    let empty = tempfile::tempdir().unwrap();
    let path = format!("{}:/usr/bin:/bin", empty.path().display());
    let mut cmd = env.command(&["agent", "register", "c1", "--adapter", "claude-code"]);
    cmd.env("PATH", &path);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: \"claude\" is not on your PATH: install it (npm install -g @anthropic-ai/claude-code)"),
        "{stderr}"
    );
    let mut cmd = env.command(&["doctor", "--json"]);
    cmd.env("PATH", &path);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let program = of(&doc, "agent c1: program");
    assert_eq!(program.len(), 1, "{doc:#}");
    assert_eq!(program[0]["status"], "problem");
    assert!(
        program[0]["fix"]
            .as_str()
            .unwrap()
            .starts_with("npm install -g @anthropic-ai/claude-code"),
        "{doc:#}"
    );
}

#[test]
fn doctor_output_for_people_and_as_json() {
    let env = Env::new();
    let absent = env.dir().join("not-yet");
    let dir = absent.to_str().unwrap();
    env.replace(dir, "<data dir>");
    // What depends on the machine: git's version, a free port, free space. (No global git
    // identity: the warning is the same everywhere.)
    let volatile = ["git", "ports", "disk"];
    let no_identity = [("GIT_CONFIG_GLOBAL", "/dev/null")];
    let json = env.maos_env(&["--data-dir", dir, "doctor", "--json"], &no_identity);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let mut doc = json.json();
    for f in doc["findings"].as_array_mut().unwrap() {
        if volatile.contains(&f["check"].as_str().unwrap()) {
            f["message"] = Value::from("<depends on the machine>");
        }
    }
    let text = env.maos_env(&["--data-dir", dir, "doctor"], &no_identity);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| {
            !volatile
                .iter()
                .any(|v| l.starts_with(&format!("ok       {v}:")))
        })
        .collect();
    insta::assert_snapshot!(env.normalize(&format!(
        "{}\n\n{}",
        lines.join("\n"),
        serde_json::to_string_pretty(&doc).unwrap()
    )));
}

#[test]
fn doctor_reports_a_running_daemon_its_protocol_and_containment() {
    if crate::support::in_process() {
        return; // no daemon runs in process
    }
    let env = Env::new();
    let st = env.ok_json(&["daemon", "start"]);
    let doc = {
        let run = env.maos_env(&["doctor", "--json"], &[("GIT_CONFIG_GLOBAL", "/dev/null")]);
        run.json()
    };
    let daemon = of(&doc, "daemon");
    assert_eq!(daemon.len(), 1, "{doc:#}");
    assert_eq!(daemon[0]["status"], "ok");
    let said = daemon[0]["message"].as_str().unwrap();
    assert!(
        said.contains(&format!("pid {}", st["pid"])) && said.contains("protocol 10"),
        "{said}"
    );
    let containment = of(&doc, "containment");
    assert_eq!(containment.len(), 1, "{doc:#}");
    // Which one depends on whether the daemon may make cgroups here; it is named either way.
    let expected = match st["containment"].as_str().unwrap() {
        "cgroup" => "ok",
        _ => "warning",
    };
    assert_eq!(containment[0]["status"], expected, "{doc:#}");
    // The database exists now and passes SQLite's own check.
    assert_eq!(of(&doc, "database")[0]["status"], "ok", "{doc:#}");
}
