//! The routes: one module per page (or family of pages), each adding its own routes; the
//! embedded assets; the live stream; and the guards around all of them.

mod approvals;
mod events;
mod metrics;
mod orchestration;
mod overview;
mod plan;
mod task;
mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth;
use crate::ctx::Ctx;
use crate::hub;

/// The dashboard's own script: the live updates, confirmations, the log follower.
pub(crate) const APP_JS: &str = include_str!("../../assets/app.js");
/// Its style sheet.
pub(crate) const APP_CSS: &str = include_str!("../../assets/app.css");

/// Every route, behind the guards.
pub(crate) fn routes(ctx: Ctx) -> Router {
    let router = Router::new()
        .route("/live", get(hub::live))
        .route(
            "/assets/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        );
    let router = overview::routes(router);
    let router = orchestration::routes(router);
    let router = plan::routes(router);
    let router = task::routes(router);
    let router = tasks::routes(router);
    let router = approvals::routes(router);
    let router = events::routes(router);
    let router = metrics::routes(router);
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(auth::MAX_FORM))
        .layer(middleware::from_fn_with_state(ctx.clone(), auth::guard))
        .layer(middleware::from_fn(auth::headers))
        .with_state(ctx)
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn not_found() -> Response {
    crate::ctx::WebError {
        kind: maos_application::ErrorKind::NotFound,
        message: "there is no such page".to_owned(),
    }
    .into_response()
}

/// Parses an id reference from a path segment, as the CLI does from an argument.
pub(crate) fn id_ref(raw: &str) -> Result<maos_application::IdRef, crate::ctx::WebError> {
    maos_application::IdRef::parse(raw).map_err(|e| crate::ctx::WebError::invalid(e.to_string()))
}
