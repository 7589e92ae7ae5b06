//! MCP over Streamable HTTP, as the daemon serves it beside the dashboard: `/mcp`, every request
//! with `Authorization: Bearer <token>` — the dashboard's token (a person) or an attempt's
//! credential (an agent, checked before the request reaches the server and again at each call).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use maos_application::{AgentCredential, Denial, ErrorInfo, MaosApi, TaskError};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::{MAX_MESSAGE_BYTES, McpServer};

/// How the endpoint is served.
#[derive(Clone)]
pub struct HttpSettings {
    /// The token a person's requests carry (the dashboard's).
    pub person_token: String,
    /// It listens on a loopback address only: requests must name a loopback host (no DNS
    /// rebinding); otherwise any host, the token guarding it.
    pub loopback: bool,
    /// Cancelled when the daemon stops: open sessions end.
    pub stop: CancellationToken,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Gate {
    api: Arc<dyn MaosApi>,
    person_token: Arc<str>,
}

/// The `/mcp` route, to merge into the daemon's HTTP router.
pub fn router(api: Arc<dyn MaosApi>, settings: HttpSettings) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(settings.stop.clone())
        .with_max_request_body_bytes(MAX_MESSAGE_BYTES);
    if !settings.loopback {
        config = config.disable_allowed_hosts();
    }
    let factory_api = Arc::clone(&api);
    let service: StreamableHttpService<McpServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(McpServer::per_request(Arc::clone(&factory_api))),
        Arc::default(),
        config,
    );
    let gate = Gate {
        api,
        person_token: Arc::from(settings.person_token.as_str()),
    };
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gate, authenticate))
}

/// Lets a request through with its [`Caller`], or answers 401 (no or unknown credential) or 403
/// (an agent's attempt that no longer runs).
async fn authenticate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if presented.is_empty() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the request carries no credential",
            "send `Authorization: Bearer <token>`: the dashboard's token (`maos ui --json` \
             shows where to find it) or the credential MAOS gave your attempt",
        );
    }
    let caller = if maos_application::same_secret(&presented, &gate.person_token) {
        Caller::Person
    } else {
        let Ok(credential) = AgentCredential::parse(&presented) else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the credential is neither the dashboard's token nor an agent's",
                "check the token; an agent's credential is in its MCP configuration",
            );
        };
        let api = Arc::clone(&gate.api);
        let checked = credential.clone();
        let answer = tokio::task::spawn_blocking(move || api.authenticate_agent(&checked)).await;
        match answer {
            Ok(Ok(_)) => Caller::Agent(credential),
            Ok(Err(e)) => {
                // Unknown: not authenticated (401); known but its attempt is over: 403.
                let status = match &e {
                    TaskError::Denied(Denial::UnknownCredential) => StatusCode::UNAUTHORIZED,
                    TaskError::Denied(_) => StatusCode::FORBIDDEN,
                    _ if e.kind() == maos_application::ErrorKind::Denied => StatusCode::FORBIDDEN,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                return refuse(
                    status,
                    &e.to_string(),
                    "an agent's credential works only while its attempt runs",
                );
            }
            Err(_) => {
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the credential could not be checked",
                    "try again",
                );
            }
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn refuse(status: StatusCode, message: &str, hint: &str) -> Response {
    let kind = if status == StatusCode::FORBIDDEN {
        "denied"
    } else {
        "unauthorized"
    };
    let body = json!({"error": {"kind": kind, "message": message, "hint": hint}}).to_string();
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
