//! MAOS's tools for agents as MAOS's own model loop (`openai`, `ollama`) offers them to its
//! model, beside its workspace tools: the same tools, checks and answers as over MCP, called in
//! process with the attempt's credential. Their names carry the prefix [`PREFIX`]
//! (`maos_report_progress`), so that they never clash with the loop's own `read_file` and the
//! like.

use std::sync::Arc;

use maos_application::{AgentCredential, AgentToolbox, MaosApi, ToolAnswer, ToolSpec};
use rmcp::model::JsonObject;
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::calls::{self, ToolError};
use crate::tools::{self, Tool};

/// What every tool's name starts with in the model loop.
pub const PREFIX: &str = "maos_";

/// MAOS's tools for agents, over the daemon's API, for the model loop.
#[derive(Clone)]
pub struct Toolbox {
    api: Arc<dyn MaosApi>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox").finish_non_exhaustive()
    }
}

impl Toolbox {
    /// The tools for agents over `api` (the daemon's service).
    pub fn new(api: Arc<dyn MaosApi>) -> Toolbox {
        Toolbox { api }
    }
}

impl AgentToolbox for Toolbox {
    fn tools(&self) -> Vec<ToolSpec> {
        tools::for_agents()
            .map(|t| ToolSpec {
                name: format!("{PREFIX}{}", t.name()),
                description: t.description().to_owned(),
                schema: t.schema().to_string(),
            })
            .collect()
    }

    fn call(&self, credential: &AgentCredential, name: &str, arguments: &str) -> ToolAnswer {
        let answer = tool_named(name).and_then(|tool| {
            let args = arguments_of(tool, arguments)?;
            calls::call(&*self.api, &Caller::Agent(credential.clone()), tool, &args)
        });
        match answer {
            Ok(value) => ToolAnswer {
                json: value.to_string(),
                is_error: false,
            },
            Err(e) => ToolAnswer {
                json: json!({"error": e.to_json()}).to_string(),
                is_error: true,
            },
        }
    }
}

/// The tool an agent may call by `name` (with the prefix).
fn tool_named(name: &str) -> Result<Tool, ToolError> {
    name.strip_prefix(PREFIX)
        .and_then(Tool::named)
        .ok_or_else(|| {
            ToolError::invalid(format!(
                "there is no MAOS tool named {:?}; MAOS's tools are {}",
                maos_application::text::clip(name, 60),
                tools::for_agents()
                    .map(|t| format!("{PREFIX}{}", t.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The arguments of a call to `tool`: a JSON object (empty text counts as `{}`).
fn arguments_of(tool: Tool, arguments: &str) -> Result<JsonObject, ToolError> {
    if arguments.len() > crate::MAX_MESSAGE_BYTES {
        return Err(ToolError::invalid(format!(
            "the arguments of {PREFIX}{} are {} bytes; at most {} are taken",
            tool.name(),
            arguments.len(),
            crate::MAX_MESSAGE_BYTES
        )));
    }
    if arguments.trim().is_empty() {
        return Ok(JsonObject::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(args)) => Ok(args),
        Ok(_) => Err(ToolError::invalid(format!(
            "the arguments of {PREFIX}{} must be a JSON object",
            tool.name()
        ))),
        Err(e) => Err(ToolError::invalid(format!(
            "the arguments of {PREFIX}{} are not JSON: {e}",
            tool.name()
        ))),
    }
}
