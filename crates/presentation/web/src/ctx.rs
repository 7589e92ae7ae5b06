//! What every handler shares: the API, the configuration and the event hub; running a page's
//! queries off the async runtime; and how an error of the application becomes a response.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maos_application::metrics::Metrics;
use maos_application::{ErrorInfo, ErrorKind, MaosApi};
use maud::Markup;

use crate::DashboardConfig;
use crate::html;
use crate::hub::Hub;

/// The handlers' shared state (cheap to clone).
#[derive(Clone)]
pub(crate) struct Ctx {
    inner: Arc<Inner>,
}

struct Inner {
    api: Arc<dyn MaosApi>,
    config: DashboardConfig,
    hub: Hub,
    /// Today's figures for the overview, and when they were worked out (see [`Ctx::today`]).
    today: std::sync::Mutex<Option<(std::time::Instant, Metrics)>>,
}

/// How long the overview reuses today's figures: working them out reads every task and the
/// whole event log, which a page that refreshes on every event must not do each time.
pub(crate) const TODAY_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// What a page's renderer knows besides its data: the CSRF token its forms carry and the event
/// it was rendered after (its live updates start there).
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) csrf: String,
    pub(crate) seq: u64,
    pub(crate) label: String,
}

impl Ctx {
    pub(crate) fn new(api: Arc<dyn MaosApi>, config: DashboardConfig) -> Ctx {
        let hub = Hub::start(Arc::clone(&api));
        Ctx {
            inner: Arc::new(Inner {
                api,
                config,
                hub,
                today: std::sync::Mutex::new(None),
            }),
        }
    }

    pub(crate) fn config(&self) -> &DashboardConfig {
        &self.inner.config
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(crate) fn api(&self) -> Arc<dyn MaosApi> {
        Arc::clone(&self.inner.api)
    }

    /// The figures since midnight (UTC), worked out at most once per [`TODAY_TTL`] (and again
    /// when the day changes). Call it on the blocking pool.
    pub(crate) fn today(&self, api: &dyn MaosApi) -> Result<Metrics, WebError> {
        let midnight = start_of_day(now());
        let mut cached = self
            .inner
            .today
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < TODAY_TTL
            && m.since == Some(midnight)
        {
            return Ok(m.clone());
        }
        let fresh = api.metrics(Some(midnight))?;
        *cached = Some((std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// The cookie holding the token: named after the port, so that two dashboards on one host
    /// keep theirs apart.
    pub(crate) fn cookie_name(&self) -> String {
        format!("maos_{}", self.inner.config.port)
    }

    /// The `Set-Cookie` value that keeps `token` for this dashboard.
    pub(crate) fn cookie(&self, token: &str) -> String {
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name()
        )
    }

    fn view(&self) -> View {
        View {
            csrf: self.inner.config.csrf.expose().to_owned(),
            seq: self.inner.hub.head(),
            label: self.inner.config.label.clone(),
        }
    }

    /// Renders a page: `render` runs on the blocking pool with the API and the view (whose
    /// `seq` is read before any query, so a change made while it renders still reaches the
    /// page live).
    pub(crate) async fn page<F>(&self, render: F) -> Response
    where
        F: FnOnce(&dyn MaosApi, &View) -> Result<Markup, WebError> + Send + 'static,
    {
        let api = self.api();
        let view = self.view();
        match tokio::task::spawn_blocking(move || render(api.as_ref(), &view)).await {
            Ok(Ok(markup)) => html::page_response(markup),
            Ok(Err(e)) => e.into_response(),
            Err(e) => WebError::internal(format!("the page failed to render: {e}")).into_response(),
        }
    }

    /// Runs a change (a posted form) on the blocking pool, then sends the browser to `then`
    /// (the page it came from, by default), or shows why the change was refused.
    pub(crate) async fn act<F>(&self, act: F) -> Response
    where
        F: FnOnce(&dyn MaosApi) -> Result<String, WebError> + Send + 'static,
    {
        let api = self.api();
        match tokio::task::spawn_blocking(move || act(api.as_ref())).await {
            Ok(Ok(to)) => Redirect::to(&to).into_response(),
            Ok(Err(e)) => e.into_response(),
            Err(e) => WebError::internal(format!("the change failed: {e}")).into_response(),
        }
    }

    /// Runs `f` on the blocking pool (for handlers that answer something other than a page).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MaosApi) -> Result<T, WebError> + Send + 'static,
    {
        let api = self.api();
        tokio::task::spawn_blocking(move || f(api.as_ref()))
            .await
            .map_err(|e| WebError::internal(format!("the request failed: {e}")))?
    }
}

/// A failure shown as a page: its kind (which gives the status) and the application's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl WebError {
    pub(crate) fn internal(message: impl Into<String>) -> WebError {
        WebError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> WebError {
        WebError {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Denied => StatusCode::FORBIDDEN,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Storage | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl<E: ErrorInfo> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = html::page_response(html::error_page(&self));
        *response.status_mut() = status;
        response
    }
}

/// The time now, from the system clock (the dashboard's pages say "today" and "ago").
pub(crate) fn now() -> maos_domain::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    maos_domain::Timestamp::from_millis(ms)
}

/// Midnight (UTC) of the day `at` falls in.
pub(crate) fn start_of_day(at: maos_domain::Timestamp) -> maos_domain::Timestamp {
    let ms = at.as_millis();
    maos_domain::Timestamp::from_millis(ms - ms.rem_euclid(86_400_000))
}
