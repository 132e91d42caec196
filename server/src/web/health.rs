//! `/healthz` and `/readyz`, for load balancers and orchestrators: whether the process serves
//! at all, and whether what answers the bridge's requests (this process's store, or the
//! picture server it relays to) answers now. Both are cheap, and a client over its address's
//! connection cap gets them answered too (see `serve_web`): a monitor must not be turned
//! away by the load it is watching.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Upstream;

/// How long `/readyz` waits for the store or the picture server.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// The two probes, for a router whose state holds the upstream.
pub fn routes() -> Router<Arc<Upstream>> {
    Router::new()
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
}

/// What a connection over a cap gets: the probes as usual, anything else 503 saying `why`.
pub fn over_cap(upstream: Arc<Upstream>, why: &'static str) -> Router {
    routes()
        .fallback(
            move || async move { (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, "1")], why) },
        )
        .with_state(upstream)
}

async fn alive() -> &'static str {
    "ok\n"
}

async fn ready(State(upstream): State<Arc<Upstream>>) -> Response {
    match upstream.ready(READY_DEADLINE).await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}
