//! The web dashboard: pages rendered on the server from [`MaosApi`] (like the CLI, it knows no
//! adapter), a little JavaScript of its own embedded in the binary, live updates through
//! Server-Sent Events whose ids are the event log's sequence numbers, and every request behind a
//! per-data-directory token (ADR 0018, docs/dashboard.md).
//!
//! The daemon hosts it: [`Dashboard::router`] gives the axum router, [`serve`] runs it on a
//! listener until a shutdown future completes. Every page's queries run on tokio's blocking
//! pool, so a large page never holds up the daemon's other work.

mod auth;
mod chart;
mod ctx;
mod diff;
mod html;
mod hub;
mod pages;
mod svg;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use maos_application::MaosApi;

pub use auth::{Secret, SecretError};

/// What the dashboard needs besides the API: its secrets and where it is served.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// The token every request must carry (in the URL once, then in a cookie).
    pub token: Secret,
    /// The token every form carries, so that another site cannot make a browser post to us.
    pub csrf: Secret,
    /// The port it is served on: it names the cookie, so that two dashboards on one host (two
    /// data directories) keep their tokens apart.
    pub port: u16,
    /// True when it listens on a loopback address only: then a request must name the host as
    /// `127.0.0.1`, `localhost` or `[::1]` (a DNS-rebinding page cannot).
    pub loopback: bool,
    /// What the page header says it serves (the data directory).
    pub label: String,
}

/// The dashboard of one data directory.
#[derive(Clone)]
pub struct Dashboard {
    ctx: ctx::Ctx,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

impl Dashboard {
    /// The dashboard over `api`. It starts following the event log at once (a thread of its
    /// own, stopped when the last clone of the dashboard and of its router is dropped).
    pub fn new(api: Arc<dyn MaosApi>, config: DashboardConfig) -> Dashboard {
        Dashboard {
            ctx: ctx::Ctx::new(api, config),
        }
    }

    /// Every route, behind the token, the CSRF and origin checks and the security headers.
    pub fn router(&self) -> Router {
        pages::routes(self.ctx.clone())
    }

    /// Stops following the event log (open pages stop getting events) and waits until the
    /// follower has let go of the API.
    pub fn stop(&self) {
        self.ctx.hub().stop();
    }
}

/// Serves `router` on `listener` until `shutdown` completes. Open pages are cut off then (their
/// event streams would never end by themselves); a browser reconnects to the next daemon and
/// resumes from the last event it saw. A decision already handed to the API still completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::select! {
        served = axum::serve(listener, router) => served,
        () = shutdown => Ok(()),
    }
}
