//! `maos mcp`: serves MAOS's MCP tools over stdio, for the person who runs it or, with
//! `MAOS_AGENT_CREDENTIAL`, for the agent's attempt MAOS gave that credential to (docs/mcp.md).
//! The server itself is another front end (`maos-mcp`), handed in by the binary (ADR 0019), as
//! are MAOS's tools for the daemon's own model loop ([`McpFrontEnd::toolbox`]).

use std::sync::{Arc, OnceLock};

use maos_application::{AgentCredential, AgentToolbox, MaosApi};

use crate::error::{CliError, FailureClass};
use crate::output::Output;

/// The variable an agent's MCP configuration carries its attempt's credential in.
pub(crate) const CREDENTIAL_VAR: &str = "MAOS_AGENT_CREDENTIAL";

/// The MCP front end: it serves MCP over this process's stdin and stdout, and gives the daemon's
/// model loop MAOS's tools for agents. The binary gives one to [`crate::main`].
pub trait McpFrontEnd: Send + Sync {
    /// Serves `api` to the client on stdin/stdout until it leaves, for the agent's attempt
    /// `agent` holds the credential of, or for a person (none).
    fn serve_stdio(
        &self,
        api: Arc<dyn MaosApi>,
        agent: Option<AgentCredential>,
    ) -> Result<(), String>;

    /// MAOS's tools for agents over `api` (the daemon's service), as the model loop of an
    /// `openai` or `ollama` agent offers them to its model, with the same checks as over MCP.
    fn toolbox(&self, api: Arc<dyn MaosApi>) -> Arc<dyn AgentToolbox>;
}

static SERVER: OnceLock<&'static dyn McpFrontEnd> = OnceLock::new();

/// Sets the MCP front end of this binary (once, at start).
pub(crate) fn install(server: &'static dyn McpFrontEnd) {
    let _ = SERVER.set(server);
}

/// The MCP front end of this binary, when it has one.
pub(crate) fn installed() -> Option<&'static dyn McpFrontEnd> {
    SERVER.get().copied()
}

/// `maos mcp`.
pub(super) fn execute(
    api: impl FnOnce() -> Result<Arc<dyn MaosApi>, CliError>,
    out: &mut Output,
) -> Result<(), CliError> {
    let Some(server) = SERVER.get() else {
        return Err(CliError::new(
            FailureClass::Failure,
            "this build of maos has no MCP server",
        )
        .with_hint("install the `maos` binary (`cargo install --path crates/maos`)"));
    };
    let agent = match std::env::var(CREDENTIAL_VAR) {
        Ok(raw) if !raw.trim().is_empty() => {
            Some(AgentCredential::parse(raw.trim()).map_err(|_| {
                CliError::new(
                    FailureClass::InvalidInput,
                    format!("{CREDENTIAL_VAR} holds no credential MAOS gives agents"),
                )
                .with_hint(format!(
                    "unset {CREDENTIAL_VAR} to act as yourself; an agent's credential comes from \
                     the MCP configuration MAOS writes for its attempt"
                ))
            })?)
        }
        _ => None,
    };
    let api = api()?;
    // Stdout is the protocol's: the server writes it, not `out`.
    out.without_stdout(|| server.serve_stdio(api, agent))?
        .map_err(|e| {
            CliError::new(FailureClass::Failure, e)
                .with_hint("the MCP client must speak JSON-RPC over stdin and stdout")
        })
}
