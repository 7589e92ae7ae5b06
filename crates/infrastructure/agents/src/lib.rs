//! MAOS's agent runtime: turns an assigned attempt into a running agent (a supervised child
//! process or an in-process loop) and reports its progress and result through the application
//! API. Implements the application's `AgentRuntime` port.

pub mod claude;
pub mod codex;
mod contain;
mod credential;
pub mod logs;
pub mod openai;
pub mod plan;
mod private;
pub mod redact;
pub mod report;
pub mod stream;
pub mod supervisor;
mod sys;
pub mod tools;
mod workspace;

pub use contain::ContainmentKind;
pub use credential::CREDENTIAL_ENV;
pub use logs::FileLogs;
pub use supervisor::{McpLaunch, Supervisor, SupervisorConfig};
pub use sys::group_alive;
