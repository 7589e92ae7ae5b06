//! MAOS as a Model Context Protocol server: the tools and resources an agent (or a person's MCP
//! client) uses to talk back to MAOS — read its task and briefing, report progress, split off
//! subtasks, ask a person, search and add memory — served over stdio (`maos mcp`) or Streamable
//! HTTP (on the daemon, beside the dashboard), on the official Rust SDK (`rmcp`).
//!
//! Who calls decides what may be done ([`Caller`]): a person may use every tool on anything; an
//! agent, with the credential its attempt was given, only its own task, its orchestration and
//! its memory scopes, and only while that attempt runs (every call checks it again).
//!
//! The same tools for agents, with the same checks, reach the models of MAOS's own loop
//! ([`Toolbox`], the application's `AgentToolbox` port), named with the prefix `maos_`.

mod args;
mod caller;
mod calls;
mod http;
mod render;
mod resources;
mod toolbox;
mod tools;

use std::sync::Arc;

use maos_application::MaosApi;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};

pub use caller::Caller;
pub use http::{HttpSettings, router};
pub use toolbox::{PREFIX as TOOL_PREFIX, Toolbox};

/// The most bytes one JSON-RPC message over stdio may have (a longer line is dropped with an
/// error to the client).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What the server tells clients about itself when they connect.
const INSTRUCTIONS: &str = "MAOS runs AI coding agents on tasks. As an agent working on a MAOS \
task, use these tools to read your task and briefing again (get_task, get_briefing), say how you \
are getting on (report_progress), split your task into subtasks (create_subtasks, then \
wait_for_tasks), ask a person a question (request_approval), and search or add to what earlier \
tasks learned (memory_search, memory_add).";

/// The MCP server over one connection (stdio) or one HTTP endpoint: the API, and who calls
/// when the transport does not say (stdio: the one caller; HTTP: each request's credential).
#[derive(Clone)]
pub struct McpServer {
    api: Arc<dyn MaosApi>,
    caller: Option<Caller>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// A server for one caller (stdio).
    pub fn new(api: Arc<dyn MaosApi>, caller: Caller) -> McpServer {
        McpServer {
            api,
            caller: Some(caller),
        }
    }

    /// A server whose caller every request names (HTTP: the bearer credential).
    fn per_request(api: Arc<dyn MaosApi>) -> McpServer {
        McpServer { api, caller: None }
    }

    /// Who makes the request in `context`.
    fn caller_of(&self, context: &RequestContext<RoleServer>) -> Option<Caller> {
        if let Some(c) = &self.caller {
            return Some(c.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("maos", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let person = matches!(self.caller_of(&context), Some(Caller::Person));
        Ok(ListToolsResult::with_all_items(tools::listed(person)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = tools::Tool::named(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "there is no tool named {:?}; tools/list names them",
                    maos_application::text::clip(&request.name, 60)
                ),
                None,
            ));
        };
        let Some(caller) = self.caller_of(&context) else {
            return Ok(tools::refusal(&calls::ToolError::no_credential()).into());
        };
        let api = Arc::clone(&self.api);
        let args = request.arguments.unwrap_or_default();
        let answer = tokio::task::spawn_blocking(move || calls::call(&*api, &caller, tool, &args))
            .await
            .unwrap_or_else(|e| Err(calls::ToolError::internal(format!("the call failed: {e}"))));
        Ok(match answer {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => tools::refusal(&e),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let Some(caller) = self.caller_of(&context) else {
            return Ok(ListResourcesResult::with_all_items(Vec::new()));
        };
        let api = Arc::clone(&self.api);
        let listed = tokio::task::spawn_blocking(move || resources::list(&*api, &caller))
            .await
            .unwrap_or_else(|e| Err(calls::ToolError::internal(format!("the call failed: {e}"))));
        listed
            .map(ListResourcesResult::with_all_items)
            .map_err(|e| resources::protocol_error(&e))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(caller) = self.caller_of(&context) else {
            return Err(resources::protocol_error(&calls::ToolError::no_credential()));
        };
        let api = Arc::clone(&self.api);
        let uri = request.uri;
        let read = tokio::task::spawn_blocking(move || resources::read(&*api, &caller, &uri))
            .await
            .unwrap_or_else(|e| Err(calls::ToolError::internal(format!("the call failed: {e}"))));
        read.map(Into::into)
            .map_err(|e| resources::protocol_error(&e))
    }
}

/// Serves MCP over this process's stdin and stdout until the client closes stdin.
pub async fn serve_stdio(api: Arc<dyn MaosApi>, caller: Caller) -> Result<(), McpError> {
    let (stdin, stdout) = rmcp::transport::stdio();
    serve_io(api, caller, stdin, stdout).await
}

/// Serves MCP as newline-delimited JSON-RPC over `read` and `write` (stdio, or a pipe in tests)
/// until the client closes its end.
pub async fn serve_io<R, W>(
    api: Arc<dyn MaosApi>,
    caller: Caller,
    read: R,
    write: W,
) -> Result<(), McpError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use rmcp::ServiceExt as _;
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(read, write)
        .with_max_line_length(MAX_MESSAGE_BYTES);
    let running = McpServer::new(api, caller)
        .serve(transport)
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Stopped(e.to_string()))?;
    Ok(())
}

/// What went wrong serving MCP.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The client did not complete the MCP handshake.
    #[error("the MCP client did not start a session: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the MCP session ended with an error: {0}")]
    Stopped(String),
}
