//! The live view of `orchestrate run --watch` on a real terminal (a pseudo-terminal made by
//! `script`): redrawn in place under the plan's preview (never a cleared screen), task states in
//! colour, a spinner and a clock for a running attempt, the last line its agent printed, and what
//! waits for a person with the exact command while the run goes on.

use std::process::Command;
use std::time::Duration;

use crate::fixtures::{command_agent, script};
use crate::support::{Env, in_process};

/// The spinner's frames (one of them shows while an attempt runs).
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[test]
fn the_live_view_redraws_in_place_with_colours_a_spinner_the_agents_last_line_and_who_must_act() {
    if in_process() {
        return; // agents run only in the daemon
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "talker",
        "echo 'step one: reading the code'\nsleep 2\necho 'step two: writing'\nsleep 1\n",
    );
    command_agent(&env, "talker", 2, &agent);
    // The talker's capability is `command` agents' default: none; the plan asks for none.
    let plan = env.dir().join("plan.toml");
    std::fs::write(
        &plan,
        "goal = \"Talk\"\n\n\
         [[task]]\nid = \"talk\"\ntitle = \"Talk a while\"\n\n\
         [[task]]\nid = \"risky\"\ntitle = \"Risky change\"\nrisk = \"high\"\n",
    )
    .unwrap();
    let line = format!(
        "{} orchestrate run {} --yes --watch",
        env!("CARGO_BIN_EXE_maos"),
        plan.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("MAOS_DATA_DIR", env.dir())
        .env("XDG_RUNTIME_DIR", env.runtime_dir())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("MAOS_NO_DAEMON")
        .current_dir(env.runtime_dir());
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(90))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = text.replace('\x1b', "<ESC>");
    // The risky task waits for a person's approval: watching ends with exit 7.
    assert_eq!(out.status.code(), Some(7), "{shown}");

    // The plan's preview stays: the view never clears the screen, it goes back over its own
    // block (cursor up, clear below).
    assert!(text.contains("Plan \"Talk\""), "{shown}");
    assert!(!text.contains("\x1b[2J"), "the screen was cleared: {shown}");
    assert!(text.contains("A\r\x1b[J"), "no redraw in place: {shown}");
    // States in colour; a spinner and a clock while the attempt runs; what its agent printed.
    assert!(text.contains("\x1b[32mcompleted"), "{shown}");
    assert!(text.contains("\x1b[36mrunning"), "{shown}");
    assert!(text.contains(SPINNER), "no spinner: {shown}");
    assert!(
        text.contains("step one: reading the code") || text.contains("step two: writing"),
        "the agent's last line is not shown: {shown}"
    );
    // Who must act, with the command, while the view is still live (before its last frame's
    // "watching" line), not only in the final summary.
    let asked = text
        .find("Needs a person:")
        .expect("what waits for a person is shown");
    let watching_after = text[asked..].find("(watching; Ctrl-C stops watching");
    assert!(watching_after.is_some(), "only in the summary: {shown}");
    assert!(text[asked..].contains("maos approve "), "{shown}");
}
