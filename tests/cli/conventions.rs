//! The conventions people bring from gh, git and kubectl: manual pages (`maos man`), completion
//! of live ids and names (`COMPLETE=<shell> maos`), `ls` and `rm` aliases, a pager for long text
//! on a terminal, and a short `-h` beside the long `--help`.

use std::path::Path;
use std::process::Command;

use crate::support::{Env, Run};

// ---- manual pages ----

/// Every command path below `maos`, read from the help the binary prints.
fn command_paths(env: &Env, path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = env.maos(&args).stdout;
    let mut found = vec![path.to_vec()];
    let Some(list) = help.split("\nCommands:\n").nth(1) else {
        return found;
    };
    for line in list.lines() {
        if line.trim().is_empty() || !line.starts_with("  ") {
            break;
        }
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name == "help" || line.starts_with("   ") {
            continue;
        }
        let mut below = path.to_vec();
        below.push(name.to_owned());
        found.extend(command_paths(env, &below));
    }
    found
}

/// The name a page's `.TH` line gives, and the line.
fn title_of(page: &str) -> Option<&str> {
    page.lines()
        .find(|l| l.starts_with(".TH "))
        .and_then(|l| l.split_whitespace().nth(1))
}

#[test]
fn every_command_has_a_manual_page_that_man_can_read() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let run = env.maos(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.starts_with("wrote "), "{}", run.stderr);
    let paths = command_paths(&env, &[]);
    assert!(paths.len() > 40, "{paths:?}");
    let mut files: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut wanted: Vec<String> = paths
        .iter()
        .map(|p| {
            let mut name = vec!["maos".to_owned()];
            name.extend(p.iter().cloned());
            format!("{}.1", name.join("-"))
        })
        .collect();
    wanted.sort();
    assert_eq!(files, wanted, "one page per command");
    let man = Command::new("man").arg("--version").output().is_ok();
    for path in &paths {
        let mut args = vec!["man"];
        args.extend(path.iter().map(String::as_str));
        let printed = env.maos(&args);
        assert_eq!(printed.code, 0, "{args:?}: {}", printed.stderr);
        let name = std::iter::once("maos")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("-");
        assert_eq!(title_of(&printed.stdout), Some(name.as_str()), "{args:?}");
        assert!(
            printed.stdout.contains(".SH NAME") && printed.stdout.contains(".SH SYNOPSIS"),
            "{args:?}"
        );
        let file = std::fs::read_to_string(pages.join(format!("{name}.1"))).unwrap();
        assert_eq!(file, printed.stdout, "{name}: the file is the page printed");
        if man {
            let read = Command::new("man")
                .args(["-l", "-P", "cat"])
                .arg(pages.join(format!("{name}.1")))
                .env("MANWIDTH", "80")
                .output()
                .unwrap();
            assert!(read.status.success(), "{name}: man -l fails");
            let text = String::from_utf8_lossy(&read.stdout);
            assert!(
                text.contains("NAME") && text.contains(&name),
                "{name}: {text}"
            );
        }
    }
}

#[test]
fn man_prints_one_page_and_refuses_an_unknown_command() {
    let env = Env::new();
    let page = env.maos(&["man", "agent", "rm"]);
    assert_eq!(page.code, 0);
    assert_eq!(title_of(&page.stdout), Some("maos-agent-remove"));
    let root = env.maos(&["man"]);
    assert_eq!(title_of(&root.stdout), Some("maos"));
    env.step(&["man", "agent", "remove"]);
    env.step(&["man", "task", "frobnicate"]);
    env.step(&["man", "status", "extra"]);
    insta::assert_snapshot!(env.transcript());
    assert!(!env.db().exists(), "man opens no database");
}

// ---- completion of live data ----

/// Asks `maos` for the completions of the last word, as fish does (one candidate a line, its
/// description after a tab); recorded for the transcript.
fn complete(env: &Env, words: &[&str]) -> Run {
    let mut args = vec!["--", "maos"];
    args.extend(words);
    env.step_bounded(&args, None, &[("COMPLETE", "fish")])
}

fn lines(run: &Run) -> Vec<&str> {
    run.stdout.lines().collect()
}

#[test]
fn ids_and_names_complete_from_the_database() {
    let env = Env::new();
    env.agent("claude-1", "rust");
    env.agent("claude-2", "");
    env.agent("codex-1", "");
    let fix = env.task("Fix the login test", &[]);
    let docs = env.task("Write the docs", &[]);
    let orch = env.ok_json(&["orchestrate", "create", "Release 2.0"])["orchestration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Agent names, with their status, wherever an agent is named.
    complete(&env, &["agent", "show", "cl"]);
    complete(&env, &["agent", "rm", "co"]);
    complete(&env, &["task", "assign", &fix, "--agent", "claude-"]);
    // Workflows, with their description.
    complete(&env, &["orchestrate", "run", "--workflow", "t"]);
    complete(&env, &["workflow", "show", "s"]);
    // A prefix that names one task or one orchestration completes to its full id and title.
    complete(&env, &["task", "show", &fix[..6]]);
    complete(&env, &["task", "create", "x", "--depends-on", &docs[..6]]);
    complete(&env, &["approve", &docs[..6]]);
    complete(&env, &["orchestrate", "status", &orch[..6]]);
    complete(&env, &["task", "list", "--orchestration", &orch[..6]]);
    // Nothing matches: nothing is offered, and nothing said.
    complete(&env, &["agent", "show", "nobody"]);
    complete(&env, &["task", "show", "iiii"]);
    insta::assert_snapshot!(env.transcript());

    // Any prefix: every task whose id starts with it, and only those.
    for task in [&fix, &docs] {
        let run = complete(&env, &["task", "cancel", &task[..1]]);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains(task.as_str()), "{}", run.stdout);
        for line in lines(&run) {
            assert!(line.starts_with(&task[..1]), "{line}");
        }
    }
    // Upper case is an id too.
    let upper = complete(&env, &["task", "show", &fix[..5].to_uppercase()]);
    assert!(upper.stdout.contains(fix.as_str()), "{}", upper.stdout);
    let _ = env.transcript();
}

#[test]
fn completion_reads_the_data_directory_of_the_line_and_never_starts_a_daemon() {
    let env = Env::new();
    let id = env.task("Somewhere else", &[]);
    let _ = env.maos(&["daemon", "stop"]);
    let empty = Env::new();
    let other = env.dir().to_str().unwrap();

    // The line's --data-dir wins over MAOS_DATA_DIR (here the empty directory).
    for words in [
        vec!["--data-dir", other, "task", "show", &id[..4]],
        vec!["task", "show", "--data-dir", other, &id[..4]],
    ] {
        let run = complete(&empty, &words);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains(id.as_str()),
            "{words:?}: {}",
            run.stdout
        );
    }
    let data_dir = format!("--data-dir={other}");
    let run = complete(&empty, &[&data_dir, "task", "show", &id[..4]]);
    assert!(run.stdout.contains(id.as_str()), "{}", run.stdout);

    // No database: nothing offered, nothing said, nothing made, no daemon started.
    let run = complete(&empty, &["task", "show", "abcd"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    let run = complete(&empty, &["agent", "show", ""]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(
        !run.stdout.contains('\n') || !run.stdout.contains("claude"),
        "{}",
        run.stdout
    );
    assert!(!empty.db().exists(), "completion made a database");
    assert!(
        std::fs::read_dir(empty.runtime_dir())
            .unwrap()
            .next()
            .is_none(),
        "completion started a daemon"
    );
    // Nor with a database and no daemon running.
    let run = complete(&env, &["task", "show", &id[..4]]);
    assert!(run.stdout.contains(id.as_str()), "{}", run.stdout);
    let status = env.maos(&["daemon", "status"]);
    assert_eq!(status.code, 6, "a daemon runs: {}", status.stdout);
    let _ = env.transcript();
    let _ = empty.transcript();
}

#[test]
fn the_shell_gets_a_registration_script_and_the_static_scripts_stay() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.maos_env(&[], &[("COMPLETE", shell)]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("COMPLETE"), "{shell}: {}", run.stdout);
        let static_script = env.maos(&["completions", shell]);
        assert_eq!(static_script.code, 0);
        assert!(!static_script.stdout.is_empty());
    }
    let bash = env.maos_env(&[], &[("COMPLETE", "bash")]);
    assert!(
        bash.stdout
            .contains("complete -o nospace -o bashdefault -F"),
        "{}",
        bash.stdout
    );
    assert!(!env.db().exists());
}

// ---- aliases ----

#[test]
fn ls_lists_and_rm_removes_and_help_shows_them() {
    let env = Env::new();
    env.agent("claude-1", "rust");
    env.task("Fix the login test", &[]);
    env.step(&["agent", "ls"]);
    env.step(&["task", "ls"]);
    env.step(&["orchestrate", "ls"]);
    env.step(&["workflow", "ls"]);
    env.step(&["agent", "rm", "claude-1"]);
    env.step(&["agent", "ls", "--json"]);
    insta::assert_snapshot!(env.transcript());
    for (args, alias) in [
        (&["agent", "--help"][..], "[alias: ls]"),
        (&["agent", "-h"], "[alias: rm]"),
        (&["task", "--help"], "[alias: ls]"),
        (&["orchestrate", "-h"], "[alias: ls]"),
        (&["workflow", "--help"], "[alias: ls]"),
    ] {
        let run = env.maos(args);
        assert!(run.stdout.contains(alias), "{args:?}: {}", run.stdout);
    }
}

// ---- short and long help ----

#[test]
fn short_help_leaves_out_the_global_options_that_long_help_shows() {
    let env = Env::new();
    env.step(&["task", "create", "-h"]);
    env.step(&["task", "create", "--help"]);
    insta::assert_snapshot!(env.transcript());
    for args in [&["agent", "list", "-h"][..], &["-h"], &["events", "-h"]] {
        let short = env.maos(args);
        assert!(!short.stdout.contains("Global options"), "{args:?}");
        assert!(!short.stdout.contains("--data-dir"), "{args:?}");
        assert!(short.stdout.contains("see more with '--help'"), "{args:?}");
    }
    let long = env.maos(&["agent", "list", "--help"]);
    assert!(long.stdout.contains("Global options:"));
    assert!(long.stdout.contains("--no-pager"));
}

// ---- the pager ----

/// Runs `maos ARGS` on a terminal (a pseudo-terminal made by `script`) with these variables
/// set; answers what the terminal showed. None where `script` is missing.
fn on_a_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Option<String> {
    on_a_terminal_via(env, env!("CARGO_BIN_EXE_maos"), args, vars)
}

/// Like [`on_a_terminal`], running `program ARGS` in the environment of `maos`.
fn on_a_terminal_via(
    env: &Env,
    program: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Option<String> {
    let maos = env.std_command(args);
    let mut line = shell_quote(program);
    for arg in maos.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(arg.to_str().unwrap()));
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (k, v) in maos.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    for var in ["PAGER", "MAOS_PAGER", "LESS"] {
        script.env_remove(var);
    }
    script.env("TERM", "dumb");
    for (k, v) in vars {
        script.env(k, v);
    }
    let out = script.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A pager that records its arguments and what it reads into `seen`.
fn fake_pager(dir: &Path, seen: &Path) -> String {
    let path = dir.join("pager");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"args:$*\" > '{0}'\necho \"less:$LESS\" >> '{0}'\ncat >> '{0}'\n",
            seen.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path.display().to_string()
}

#[test]
fn long_output_on_a_terminal_goes_through_the_pager() {
    if Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let env = Env::new();
    let id = env.task("Fix the login test", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    let pager = fake_pager(tmp.path(), &seen);
    let read = || std::fs::read_to_string(&seen).unwrap_or_default();
    let clear = || {
        let _ = std::fs::remove_file(&seen);
    };

    // $PAGER (with its flags), for each long output and for help.
    let with_flags = format!("{pager} --flag");
    for args in [
        &["task", "list"][..],
        &["task", "show", &id],
        &["events"],
        &["task", "create", "--help"],
    ] {
        clear();
        let Some(shown) = on_a_terminal(&env, args, &[("PAGER", &with_flags)]) else {
            return;
        };
        let got = read();
        assert!(
            got.starts_with("args:--flag\nless:FRX\n"),
            "{args:?}: {got}"
        );
        assert!(got.len() > 40, "{args:?}: {got}");
        assert!(
            !shown.contains("Fix the login test"),
            "{args:?}: printed too: {shown}"
        );
    }
    assert!(
        read().contains("What the agent is asked to do"),
        "{}",
        read()
    );
    // MAOS_PAGER comes first.
    clear();
    on_a_terminal(
        &env,
        &["task", "list"],
        &[("PAGER", "false"), ("MAOS_PAGER", &pager)],
    );
    assert!(read().contains("Fix the login test"));

    // Off: --no-pager, an empty MAOS_PAGER or PAGER, --json, a short output, a pager that
    // cannot start (the text is printed instead).
    for (args, vars) in [
        (
            &["task", "list", "--no-pager"][..],
            &[("PAGER", pager.as_str())][..],
        ),
        (
            &["task", "list"],
            &[("PAGER", pager.as_str()), ("MAOS_PAGER", "")],
        ),
        (&["task", "list"], &[("PAGER", "")]),
        (&["task", "list", "--json"], &[("PAGER", pager.as_str())]),
        (&["status"], &[("PAGER", pager.as_str())]),
        (&["task", "list"], &[("PAGER", "/nonexistent/pager -R")]),
    ] {
        clear();
        let shown = on_a_terminal(&env, args, vars).unwrap();
        assert!(!seen.exists(), "{args:?} {vars:?}: paged");
        let wanted = if args[0] == "status" {
            "ready"
        } else {
            "Fix the login test"
        };
        assert!(shown.contains(wanted), "{args:?} {vars:?}: {shown}");
    }
    // An error says itself, with no pager.
    clear();
    let shown = on_a_terminal(&env, &["task", "show", "zzzzzz"], &[("PAGER", &pager)]).unwrap();
    assert!(shown.contains("no task"), "{shown}");
    assert!(!seen.exists());
}

#[test]
fn without_a_terminal_nothing_is_paged() {
    let env = Env::new();
    env.task("Fix the login test", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    let pager = fake_pager(tmp.path(), &seen);
    for args in [&["task", "list"][..], &["events"], &["--help"]] {
        let run = env.maos_env(args, &[("PAGER", &pager), ("MAOS_PAGER", &pager)]);
        assert_eq!(run.code, 0);
        assert!(!run.stdout.is_empty());
        assert!(!seen.exists(), "{args:?}");
    }
}

#[test]
fn ctrl_c_while_the_pager_runs_is_the_pagers() {
    let env = Env::new();
    env.task("Fix the login test", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    // A slow pager that ignores Ctrl-C, as less does, and reads everything at the end.
    let pager = tmp.path().join("pager");
    std::fs::write(
        &pager,
        format!(
            "#!/bin/sh\ntrap '' INT\nsleep 1\ncat > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&pager).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&pager, perms).unwrap();
    // maos on a terminal, interrupted while it waits for the pager.
    let interrupt = tmp.path().join("interrupt.py");
    std::fs::write(
        &interrupt,
        "import signal, subprocess, sys, time\n\
         p = subprocess.Popen(sys.argv[1:])\n\
         time.sleep(0.4)\n\
         p.send_signal(signal.SIGINT)\n\
         print('exit', p.wait())\n",
    )
    .unwrap();
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        return;
    }
    let mut args = vec![interrupt.to_str().unwrap(), env!("CARGO_BIN_EXE_maos")];
    args.extend(["task", "list"]);
    let Some(shown) = on_a_terminal_via(
        &env,
        "python3",
        &args,
        &[("PAGER", pager.to_str().unwrap())],
    ) else {
        return;
    };
    // maos waited for the pager instead of dying under it, and the pager got the whole list.
    assert!(shown.contains("exit 0"), "{shown}");
    let got = std::fs::read_to_string(&seen).unwrap();
    assert!(got.contains("Fix the login test"), "{got}");
}
