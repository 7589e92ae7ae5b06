//! Integration tests of maos-git: every test works on real git repositories made in temporary
//! directories, through the `Workspaces` port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "git/support.rs"]
mod support;

#[path = "git/check.rs"]
mod check;
#[path = "git/checkpoint.rs"]
mod checkpoint;
#[path = "git/errors.rs"]
mod errors;
#[path = "git/merge.rs"]
mod merge;
#[path = "git/prepare.rs"]
mod prepare;
#[path = "git/remove.rs"]
mod remove;
#[path = "git/summary.rs"]
mod summary;
