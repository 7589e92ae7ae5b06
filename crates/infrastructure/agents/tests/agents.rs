//! Integration tests of maos-agents: real processes, transcripts replayed by executable test
//! doubles, and a local HTTP server standing in for a model endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "agents/claude.rs"]
mod claude;
#[path = "agents/codex.rs"]
mod codex;
#[path = "agents/openai.rs"]
mod openai;
#[path = "agents/supervisor.rs"]
mod supervisor;
