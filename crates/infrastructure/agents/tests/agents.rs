//! Integration tests of maos-agents: real processes, transcripts replayed by executable test
//! doubles, a local HTTP server standing in for a model endpoint, and the real Claude Code and
//! Codex CLIs against local fakes of their model APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "agents/claude.rs"]
mod claude;
#[path = "agents/codex.rs"]
mod codex;
#[path = "agents/credentials.rs"]
mod credentials;
#[path = "agents/fakes.rs"]
mod fakes;
#[path = "agents/lessons.rs"]
mod lessons;
#[path = "agents/openai.rs"]
mod openai;
#[path = "agents/real_cli.rs"]
mod real_cli;
#[path = "agents/supervisor.rs"]
mod supervisor;
