//! `maos`: the command line (`maos-cli`) with the web dashboard (`maos-web`) and the MCP server
//! (`maos-mcp`: over stdio for `maos mcp`, over HTTP at `/mcp` beside the dashboard) its daemon
//! serves. The composition root (ADR 0019): the one place that puts front ends together.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use maos_application::{AgentCredential, AgentToolbox, MaosApi};
use maos_cli::{DashboardServer, DashboardSettings, McpFrontEnd, ServedDashboard};
use maos_mcp::{Caller, HttpSettings};
use maos_web::{Dashboard, DashboardConfig, Secret};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    maos_cli::main(Some(&Web), Some(&Mcp))
}

/// The MCP server over stdio (`maos mcp`), and MAOS's tools for the daemon's model loop.
#[derive(Debug)]
struct Mcp;

impl McpFrontEnd for Mcp {
    fn serve_stdio(
        &self,
        api: Arc<dyn MaosApi>,
        agent: Option<AgentCredential>,
    ) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the MCP server's runtime: {e}"))?;
        let caller = agent.map_or(Caller::Person, Caller::Agent);
        runtime
            .block_on(maos_mcp::serve_stdio(api, caller))
            .map_err(|e| e.to_string())
    }

    fn toolbox(&self, api: Arc<dyn MaosApi>) -> Arc<dyn AgentToolbox> {
        Arc::new(maos_mcp::Toolbox::new(api))
    }
}

/// The web dashboard, as the daemon serves it.
#[derive(Debug)]
struct Web;

impl DashboardServer for Web {
    fn serve(
        &self,
        api: Arc<dyn MaosApi>,
        settings: DashboardSettings,
        listener: TcpListener,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Box<dyn ServedDashboard>, String> {
        let token = Secret::parse(&settings.token).map_err(|e| format!("the token: {e}"))?;
        let csrf = Secret::parse(&settings.csrf).map_err(|e| format!("the CSRF token: {e}"))?;
        let stop_mcp = CancellationToken::new();
        let mcp = maos_mcp::router(
            Arc::clone(&api),
            HttpSettings {
                person_token: settings.token.clone(),
                loopback: settings.loopback,
                stop: stop_mcp.clone(),
            },
        );
        let dashboard = Dashboard::new(
            api,
            DashboardConfig {
                token,
                csrf,
                port: settings.port,
                loopback: settings.loopback,
                label: settings.label,
            },
        );
        // `/mcp` has its own guard (bearer tokens, no cookie or CSRF field); every other path is
        // the dashboard's.
        let router = mcp.merge(dashboard.router());
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::clone(&stop);
        runtime.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("the dashboard cannot listen: {e}");
                    return;
                }
            };
            let served = maos_web::serve(listener, router, async move {
                stopped.notified().await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!("the dashboard stopped serving: {e}");
            }
        });
        Ok(Box::new(Served {
            dashboard,
            stop,
            stop_mcp,
        }))
    }
}

/// A dashboard being served.
struct Served {
    dashboard: Dashboard,
    stop: Arc<tokio::sync::Notify>,
    stop_mcp: CancellationToken,
}

impl ServedDashboard for Served {
    fn stop(&self) {
        // A permit is kept if the server is not waiting yet, so the stop is never lost.
        self.stop.notify_one();
        self.stop_mcp.cancel();
        self.dashboard.stop();
    }
}
