//! The MCP server end to end in one process: a real SQLite-backed service, the server speaking
//! JSON-RPC over a pipe, and a small line client (the real MCP clients — the TypeScript SDK, Claude
//! Code — talk to the `maos` binary in tests/cli/mcp.rs).

mod agents;
mod bad_input;
mod people;
mod support;
