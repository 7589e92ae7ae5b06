//! Black-box tests of the `maos` binary: each test gets a fresh data directory, runs the real
//! binary, and snapshots exit code, stdout and stderr (human and JSON) with insta. Bad input must
//! leave the database exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod bad_input;
mod layering;
mod orchestrate;
mod overview;
mod support;
mod task;
