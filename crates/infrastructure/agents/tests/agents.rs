//! Integration tests of maos-agents: real processes, transcripts replayed by executable test
//! doubles, and a local HTTP server standing in for a model endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod claude;
mod codex;
mod openai;
