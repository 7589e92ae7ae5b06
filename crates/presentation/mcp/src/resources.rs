//! The resources MAOS offers: an orchestration's report and a task's log, by URI
//! (`maos://orchestrations/<id>/report`, `maos://tasks/<id>/log`), within the caller's scope
//! as the tools are.

use maos_application::{IdRef, LogRequest, MaosApi};
use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};
use serde_json::json;

use crate::caller::Caller;
use crate::calls::{ToolError, Who, who};

/// The most of a log one read returns (its end: the newest output).
const LOG_TAIL: usize = 256 << 10;

/// The resources the caller may read: an agent's own task log and its orchestration's report;
/// a person's, none listed (they read any by URI).
pub(crate) fn list(api: &dyn MaosApi, caller: &Caller) -> Result<Vec<Resource>, ToolError> {
    let Who::Agent(s) = who(api, caller)? else {
        return Ok(Vec::new());
    };
    let mut out = vec![described(
        format!("maos://tasks/{}/log", s.task),
        "task log",
        "What the agent of this task's newest attempt wrote, with MAOS's own notes.",
        "text/plain",
    )];
    if let Some(o) = s.orchestration {
        out.push(described(
            format!("maos://orchestrations/{o}/report"),
            "orchestration report",
            "The orchestration's tasks by state, progress and cost, as JSON.",
            "application/json",
        ));
    }
    Ok(out)
}

fn described(uri: String, name: &str, description: &str, mime: &str) -> Resource {
    let mut r = Resource::new(uri, name);
    r.description = Some(description.to_owned());
    r.mime_type = Some(mime.to_owned());
    r
}

/// Reads the resource at `uri`.
pub(crate) fn read(
    api: &dyn MaosApi,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, ToolError> {
    let unknown = || {
        ToolError::invalid(format!(
            "no resource at {:?}; MAOS serves maos://tasks/<id>/log and \
             maos://orchestrations/<id>/report",
            maos_application::text::clip(uri, 80)
        ))
    };
    let rest = uri.strip_prefix("maos://").ok_or_else(unknown)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["tasks", id, "log"] => {
            let reference = IdRef::parse(id).map_err(|e| ToolError::invalid(e.to_string()))?;
            let args = serde_json::Map::from_iter([("task".to_owned(), json!(*id))]);
            // The same scope check as get_task; a task that has not run has no log yet.
            let shown = crate::calls::call(api, caller, crate::tools::Tool::GetTask, &args)?;
            let text = if shown["task"]["attempts"] == json!(0) {
                String::new()
            } else {
                tail(api, &reference)?
            };
            Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type("text/plain"),
            ]))
        }
        ["orchestrations", id, "report"] => {
            let args = serde_json::Map::from_iter([("orchestration".to_owned(), json!(*id))]);
            let report =
                crate::calls::call(api, caller, crate::tools::Tool::OrchestrationStatus, &args)?;
            Ok(ReadResourceResult::new(vec![
                ResourceContents::text(report["orchestration"].to_string(), uri)
                    .with_mime_type("application/json"),
            ]))
        }
        _ => Err(unknown()),
    }
}

/// The end of a task's newest log, as text (invalid UTF-8 replaced).
fn tail(api: &dyn MaosApi, task: &IdRef) -> Result<String, ToolError> {
    let mut bytes: Vec<u8> = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = api
            .read_log(&LogRequest {
                task: task.clone(),
                attempt: None,
                offset,
                max: LogRequest::MAX_CHUNK,
                wait: std::time::Duration::ZERO,
            })
            .map_err(|e| ToolError::from_app(&e))?;
        if chunk.bytes.is_empty() {
            break;
        }
        offset = chunk.offset + chunk.bytes.len() as u64;
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() > LOG_TAIL {
            bytes.drain(..bytes.len() - LOG_TAIL);
        }
        if chunk.finished {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A refused read, as an MCP protocol error.
pub(crate) fn protocol_error(e: &ToolError) -> ErrorData {
    let data = Some(json!({"error": e.to_json()}));
    match e.kind {
        "invalid_input" => ErrorData::invalid_params(e.message.clone(), data),
        "not_found" => ErrorData::resource_not_found(e.message.clone(), data),
        _ => ErrorData::invalid_request(e.message.clone(), data),
    }
}
