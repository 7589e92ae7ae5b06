//! Who calls MAOS's tools: a person (their own MCP client, on their machine or with the
//! dashboard's token) or an agent, with the credential its attempt was given.

use maos_application::AgentCredential;

/// Who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A person: every tool, on anything.
    Person,
    /// An agent: its own task and orchestration, while its attempt runs.
    Agent(AgentCredential),
}
