//! The dashboard in a real browser: Debian's headless chromium, driven over the DevTools protocol
//! by a small client of our own (`cdp.rs`), against the real daemon of the real `maos` binary
//! serving a fresh data directory. Each scenario starts its own daemon and its own chromium; a
//! failing one leaves a screenshot of its page in `target/browser-failures/`. With
//! `MAOS_DOC_SCREENSHOTS=1` the suite also writes the screenshots of docs/dashboard.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod cdp;
mod decisions;
mod keyboard;
mod live;
mod navigation;
mod orchestration;
mod screenshots;
mod support;
