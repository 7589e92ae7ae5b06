//! Black-box tests of the `maos` binary: each test gets a fresh data directory, runs the real
//! binary, and snapshots exit code, stdout and stderr (human and JSON) with insta. Bad input must
//! leave the database exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod agent;
mod bad_input;
mod containment;
mod conventions;
mod daemon;
mod doctor;
mod escaping;
mod file_problems;
mod fixtures;
mod flood;
mod follow;
mod init;
mod input;
mod layering;
mod live_view;
mod lost;
mod mcp;
mod memory;
mod orchestrate;
mod overview;
mod planning;
mod planning_agents;
mod plans;
mod privacy;
mod real_cli;
mod recovery;
mod runtime;
mod secrets;
mod standing;
mod support;
mod task;
mod ui;
mod workspaces;

/// Runs this whole suite a second time with the other transport (`maos` in process instead of
/// through the daemon): the same tests, the same snapshots.
#[test]
fn the_whole_suite_passes_in_process_too() {
    if support::in_process() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env(support::TRANSPORT_ENV, "in-process")
        .args([
            "--skip",
            "the_whole_suite_passes_in_process_too",
            "--test-threads",
            "4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the suite failed in process:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test result: ok"), "{stdout}");
}
