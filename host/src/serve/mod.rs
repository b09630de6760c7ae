//! `sluice serve`: many tenants' connections in one process, each sync in its own sandbox
//! store, scheduled fairly under per-tenant caps, controlled and observed over HTTP.
//!
//! - [`deployment`]: the deployment file and the isolation rules checked when it is loaded;
//! - [`schedule`]: intervals and cron expressions;
//! - [`engine`]: the scheduler, caps, shared rate budgets, reload and graceful shutdown;
//! - [`control`]: the control API; [`metrics`]: Prometheus metrics.

pub mod control;
pub mod deployment;
pub mod engine;
pub mod metrics;
pub mod schedule;

use std::net::SocketAddr;
use std::sync::Arc;

pub use deployment::Deployment;
pub use engine::Engine;

use crate::sandbox::Runtime;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The deployment or a connector is wrong, or the store cannot be opened.
    #[error(transparent)]
    Start(#[from] engine::StartError),
    /// The control API's address cannot be used.
    #[error("cannot listen on `{addr}` for the control API: {source}; change [control] listen")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The control API failed.
    #[error("the control API failed: {0}")]
    Control(#[source] std::io::Error),
}

/// A started server: the engine and where its control API listens.
pub struct Server {
    /// The scheduler.
    pub engine: Arc<Engine>,
    /// The control API's bound address (useful when the deployment asked for port 0).
    pub control_addr: SocketAddr,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Starts scheduling `deployment` and binds the control API.
    pub async fn start(runtime: Runtime, deployment: Deployment) -> Result<Self, Error> {
        let addr = deployment.control.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        let control_addr = listener
            .local_addr()
            .map_err(|source| Error::Listen { addr, source })?;
        let engine = Engine::start(runtime, deployment)?;
        Ok(Self {
            engine,
            control_addr,
            listener,
        })
    }

    /// Serves the control API until SIGTERM or Ctrl-C, reloading the deployment on SIGHUP;
    /// then shuts down gracefully (see [`Engine::shutdown`]).
    pub async fn run_until_signalled(self) -> Result<(), Error> {
        let engine = Arc::clone(&self.engine);
        let stop = tokio_util::sync::CancellationToken::new();
        let api = axum::serve(self.listener, control::router(Arc::clone(&engine)))
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        let api = tokio::spawn(async move { api.await });
        wait_for_termination(&engine).await;
        engine.shutdown().await;
        stop.cancel();
        match api.await {
            Ok(result) => result.map_err(Error::Control),
            Err(_) => Ok(()),
        }
    }
}

/// Returns on SIGTERM or Ctrl-C; reloads the deployment on each SIGHUP meanwhile.
#[cfg(unix)]
async fn wait_for_termination(engine: &Arc<Engine>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("Cannot install signal handlers; stop sluice with Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hangup.recv() => match engine.reload() {
                Ok(report) => tracing::info!(?report, "Reloaded the deployment on SIGHUP."),
                Err(error) => tracing::error!(%error, "Reload on SIGHUP failed; the previous deployment stays in force."),
            },
        }
    }
}

/// Returns on Ctrl-C.
#[cfg(not(unix))]
async fn wait_for_termination(_engine: &Arc<Engine>) {
    let _ = tokio::signal::ctrl_c().await;
}
