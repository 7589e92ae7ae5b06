//! MAOS's agent runtime: turns an assigned attempt into a running agent (a supervised child
//! process or an in-process loop) and reports its progress and result through the application
//! API. Implements the application's `AgentRuntime` port.

pub mod claude;
pub mod codex;
pub mod openai;
pub mod report;
pub mod stream;
pub mod tools;
