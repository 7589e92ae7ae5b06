//! `maos`: the command line (`maos-cli`) with the web dashboard (`maos-web`) its daemon serves.
//! The composition root (ADR 0019): the one place that puts front ends together.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use maos_application::MaosApi;
use maos_cli::{DashboardServer, DashboardSettings, ServedDashboard};
use maos_web::{Dashboard, DashboardConfig, Secret};

fn main() -> ExitCode {
    maos_cli::main(Some(&Web))
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
        let router = dashboard.router();
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
        Ok(Box::new(Served { dashboard, stop }))
    }
}

/// A dashboard being served.
struct Served {
    dashboard: Dashboard,
    stop: Arc<tokio::sync::Notify>,
}

impl ServedDashboard for Served {
    fn stop(&self) {
        // A permit is kept if the server is not waiting yet, so the stop is never lost.
        self.stop.notify_one();
        self.dashboard.stop();
    }
}
