//! The admin port (`--admin-addr`): `/metrics`, `/healthz` and `/readyz` on an address of
//! their own, so that an operator can keep the numbers on an internal network while the page
//! and the bridge face the public. The HTTP port then serves no `/metrics`.

use std::sync::Arc;

use super::{HttpTimeouts, Upstream, health, metrics_routes, serve_http};
use crate::limits::MAX_ADMIN_CONNECTIONS;
use crate::metrics::Exporter;
use crate::refusals::{REFUSALS, Refusal};
use crate::server::next_connection;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the admin port serves, and how long its clients may take.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// What `/metrics` shows, if anything (404 without).
    pub metrics: Option<Exporter>,
    /// What `/readyz` asks.
    pub upstream: Upstream,
    /// How long a client may take to send a request, or sit idle between two.
    pub request_timeout: std::time::Duration,
    /// How long a client may take to accept bytes sent to it.
    pub stall_timeout: std::time::Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: std::time::Duration,
}

/// Serves the admin routes until `shutdown` is cancelled.
pub async fn serve_admin(listener: TcpListener, config: AdminConfig, shutdown: CancellationToken) {
    let upstream = Arc::new(config.upstream);
    let app: Router = metrics_routes(config.metrics, upstream.clone())
        .merge(health::routes().with_state(upstream));
    let timeouts = HttpTimeouts {
        request: config.request_timeout,
        stall: config.stall_timeout,
        keep_alive: true,
    };
    let connections = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    let tracker = TaskTracker::new();
    while let Some((socket, peer)) = next_connection(&listener, &shutdown).await {
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            REFUSALS.refused(Refusal::AdminBusy, peer);
            continue;
        };
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tracker.spawn(async move {
            serve_http(socket, peer, app, timeouts, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let _ = timeout(config.shutdown_grace, tracker.wait()).await;
}
