//! The MCP server end to end in one process: a real SQLite-backed service, the server speaking
//! JSON-RPC over a pipe, and a small line client (the real MCP clients — the TypeScript SDK, Claude
//! Code — talk to the `maos` binary in tests/cli/mcp.rs).

// A test fails by panicking: an unwrap in a helper is a failed test, as in a test function.
#![allow(clippy::unwrap_used)]

mod agents;
mod bad_input;
mod people;
mod support;
mod toolbox;
