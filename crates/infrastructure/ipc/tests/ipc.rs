//! Integration tests of maos-ipc: a real server on a real Unix socket in a temporary directory,
//! backed by the real application service over a real SQLite file, driven by the real client
//! (and by raw Cap'n Proto connections where a test needs to misbehave), event streams included;
//! and the check that the committed generated code matches the schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ipc/agent_calls.rs"]
mod agent_calls;
#[path = "ipc/api.rs"]
mod api;
#[path = "ipc/approvals.rs"]
mod approvals;
#[path = "ipc/codegen.rs"]
mod codegen;
#[path = "ipc/faults.rs"]
mod faults;
#[path = "ipc/memory.rs"]
mod memory;
#[path = "ipc/orchestrations.rs"]
mod orchestrations;
#[path = "ipc/planning.rs"]
mod planning;
#[path = "ipc/reports.rs"]
mod reports;
#[path = "ipc/streams.rs"]
mod streams;
#[path = "ipc/support.rs"]
mod support;
