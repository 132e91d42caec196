//! The HTTP side: the page, its wasm bundle, and the WebSocket bridge at `/ws`, served over
//! HTTP/1.1 with bounds on connections and sessions (in all and per client address), on the
//! size of a request's head, and on how long a client may take to send a request or to
//! accept an answer; `/metrics` and the health probes there too, or on an admin port of their
//! own (`admin`).

mod admin;
pub(crate) mod bridge;
mod health;
mod origin;
mod site;
mod upstream;
mod websocket;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT,
    UPGRADE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::{debug, warn};

use crate::limits::{BUSY_READ_TIMEOUT, MAX_BUSY_REJECTIONS};
use crate::metrics::{self, Exporter};
use crate::per_ip::PerIp;
use crate::refusals::{REFUSALS, Refusal};
use crate::server::next_connection;
use crate::tls::Acceptor;

pub use admin::{AdminConfig, serve_admin};
pub use bridge::BridgeConfig;
pub use origin::{OriginError, OriginPolicy};
pub use site::Site;
pub use upstream::{NotReady, Upstream};

/// Browsers keep every file but revalidate it on each load (a 304 when unchanged), so a new
/// release reaches them at once: the bundle's file names carry no version, and a page of one
/// release with the bundle of another would not start.
const CACHE: &str = "no-cache";

/// Bytes of a request's head the server buffers; a longer head gets 431. hyper's default
/// (about 400 KiB) let 1,024 connections with unfinished headers take 400 MB. The page's own
/// requests need a few hundred bytes; browsers' cookies for the host a few KiB more.
const MAX_HEADER_BUFFER: usize = 16 * 1024;

/// Longest request path served; a longer one gets 414. The page's own paths are short.
const MAX_PATH_LEN: usize = 1024;

/// Longest path segment served, the longest file name Linux and most file systems allow:
/// asking the file system for a longer one fails with an error that is no fault of ours.
const MAX_SEGMENT_LEN: usize = 255;

/// The page loads only its own scripts, styles and wasm (no inline script), shows blob:
/// pictures and talks only to its own server.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; img-src 'self' blob: data:; \
     script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; \
     frame-ancestors 'none'";

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The page's files.
    pub site: Site,
    /// What `/metrics` shows on this port, if anything (404 without; with an admin port,
    /// the metrics are shown there instead).
    pub metrics: Option<Exporter>,
    /// HTTPS (and so wss://) instead of plain HTTP, when set.
    pub tls: Option<Acceptor>,
    pub bridge: BridgeConfig,
    pub origins: OriginPolicy,
    /// HTTP connections at once; further ones get 503. An upgraded connection counts
    /// against `max_sessions` instead.
    pub max_connections: usize,
    /// HTTP connections at once from one client address; further ones get 503.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle.
    pub request_timeout: Duration,
    /// WebSocket sessions at once; further handshakes get 503.
    pub max_sessions: usize,
    /// WebSocket sessions at once from one client address; further handshakes get 503.
    pub max_sessions_per_ip: usize,
    /// Largest WebSocket message accepted; a larger one ends the session.
    pub max_message: usize,
    /// How long shutdown waits for HTTP requests and WebSocket sessions to finish what they
    /// have in flight.
    pub shutdown_grace: Duration,
}

struct WebState {
    config: WebConfig,
    sessions: Arc<Semaphore>,
    sessions_per_ip: Arc<PerIp>,
    /// HTTP connections and the WebSocket sessions they upgrade to, which shutdown waits for.
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Serves the page and the bridge until `shutdown` is cancelled, then waits (at most the
/// shutdown grace period) for requests and sessions in flight.
pub async fn serve_web(listener: TcpListener, config: WebConfig, shutdown: CancellationToken) {
    let site = config.site.router();
    let upstream = Arc::new(config.bridge.upstream.clone());
    let grace = config.shutdown_grace;
    let (max_connections, request_timeout) = (config.max_connections, config.request_timeout);
    let tls = config.tls.clone();
    let metrics = metrics_routes(config.metrics.clone(), upstream.clone());
    let stall_timeout = config.bridge.idle_timeout;
    let tracker = TaskTracker::new();
    let connections_per_ip = PerIp::new(config.max_connections_per_ip);
    let state = Arc::new(WebState {
        sessions: Arc::new(Semaphore::new(config.max_sessions)),
        sessions_per_ip: PerIp::new(config.max_sessions_per_ip),
        config,
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    });
    let app = Router::new()
        .route("/ws", get(websocket))
        .with_state(state)
        .merge(metrics)
        .merge(health::routes().with_state(upstream.clone()))
        .merge(site)
        .layer(middleware::from_fn(refuse_odd_targets))
        .layer(header(CACHE_CONTROL, CACHE))
        .layer(header(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(
            CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY_VALUE,
        ));
    let connections = Arc::new(Semaphore::new(max_connections));
    // Connections over a cap are answered 503 (health probes as usual) by this many tasks at
    // most, each quickly; the others are closed.
    let refusals = Arc::new(Semaphore::new(MAX_BUSY_REJECTIONS));
    let per_ip_refusal = health::over_cap(upstream.clone(), PER_IP_REFUSAL);
    let busy_refusal = health::over_cap(upstream, BUSY_REFUSAL);
    let timeouts = HttpTimeouts {
        request: request_timeout,
        stall: stall_timeout,
        keep_alive: true,
    };
    while let Some((socket, peer)) = next_connection(&listener, &shutdown).await {
        let refuse = |socket, refusal, app: &Router| {
            REFUSALS.refused(refusal, peer);
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                let (app, shutdown, tls) = (app.clone(), shutdown.clone(), tls.clone());
                tracker.spawn(async move {
                    serve_http_or_https(socket, tls, peer, app, REFUSAL_TIMEOUTS, shutdown).await;
                    drop(permit);
                });
            }
        };
        let Some(ip_slot) = connections_per_ip.try_acquire(peer.ip()) else {
            refuse(socket, Refusal::HttpPerIp, &per_ip_refusal);
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refuse(socket, Refusal::HttpBusy, &busy_refusal);
            continue;
        };
        let (app, shutdown, tls) = (app.clone(), shutdown.clone(), tls.clone());
        tracker.spawn(async move {
            serve_http_or_https(socket, tls, peer, app, timeouts, shutdown).await;
            drop((permit, ip_slot));
        });
    }
    drop(listener);
    tracker.close();
    if timeout(grace, tracker.wait()).await.is_err() {
        warn!(
            connections = tracker.len(),
            "shutdown grace period over: closing the remaining HTTP connections and WebSocket \
             sessions"
        );
    }
}

/// What an HTTP connection over its address's limit is told.
const PER_IP_REFUSAL: &str = "too many connections from your address at once; try again later\n";

/// What an HTTP connection over the server's limit is told.
const BUSY_REFUSAL: &str = "the server has too many connections; try again later\n";

/// A connection over a cap has this long to send its request and to take the answer, which
/// closes it.
const REFUSAL_TIMEOUTS: HttpTimeouts = HttpTimeouts {
    request: BUSY_READ_TIMEOUT,
    stall: BUSY_READ_TIMEOUT,
    keep_alive: false,
};

/// How long an HTTP client may hold its connection without doing its part.
#[derive(Clone, Copy)]
struct HttpTimeouts {
    /// To send each request's headers, counted from the end of the previous response.
    request: Duration,
    /// To accept any of the bytes being sent to it (the idle timeout, as over TCP).
    stall: Duration,
    /// Whether the connection may carry more than one request.
    keep_alive: bool,
}

/// Serves one connection, after a TLS handshake (which must be over by the request timeout)
/// when the server has a certificate.
async fn serve_http_or_https(
    socket: TcpStream,
    tls: Option<Acceptor>,
    peer: SocketAddr,
    app: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
) {
    match tls {
        None => serve_http(socket, peer, app, timeouts, shutdown).await,
        Some(tls) => match tls.accept(socket, timeouts.request).await {
            Ok(socket) => serve_http(socket, peer, app, timeouts, shutdown).await,
            Err(e) => debug!(%peer, "TLS handshake failed: {e}"),
        },
    }
}

/// Serves one HTTP/1.1 connection, here rather than through `axum::serve` for the timeouts
/// and the header bound: neither a slow sender, nor an idle keep-alive connection, nor a
/// client that asks and never reads holds its slot for long, and unfinished headers hold at
/// most `MAX_HEADER_BUFFER` bytes.
async fn serve_http<S: AsyncRead + AsyncWrite + Send + 'static>(
    socket: S,
    peer: SocketAddr,
    app: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
) {
    let service = TowerToHyperService::new(AddExtension::new(app, ConnectInfo(peer)));
    let mut socket = TimeoutStream::new(socket);
    socket.set_write_timeout(Some(timeouts.stall));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.request)
        .keep_alive(timeouts.keep_alive)
        .max_buf_size(MAX_HEADER_BUFFER)
        .serve_connection(TokioIo::new(Box::pin(socket)), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            // Finishes the request in flight, then closes.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, "HTTP connection ended: {e}");
    }
}

/// Answers what the file service must never see: a target that is not a path (authority
/// form, `*`), a path too long for the file system, and empty segments, whose redirect
/// (`//pkg` to `//pkg/`) a browser would read as a link to another host.
async fn refuse_odd_targets(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with('/') {
        return (StatusCode::BAD_REQUEST, "the request target must be a path").into_response();
    }
    if path.len() > MAX_PATH_LEN {
        return StatusCode::URI_TOO_LONG.into_response();
    }
    let mut segments = path[1..].split('/');
    // A trailing slash leaves one empty segment at the end, which names a folder.
    let last = segments.next_back().unwrap_or_default();
    if last.len() > MAX_SEGMENT_LEN
        || segments.any(|segment| segment.is_empty() || segment.len() > MAX_SEGMENT_LEN)
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

fn header(
    name: axum::http::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// `/metrics`, showing `exporter`'s figures (no route without one, so a 404).
fn metrics_routes(exporter: Option<Exporter>, upstream: Arc<Upstream>) -> Router {
    let Some(exporter) = exporter else {
        return Router::new();
    };
    Router::new()
        .route("/metrics", get(metrics_page))
        .with_state((exporter, upstream))
}

/// The process's metrics in Prometheus' text format.
async fn metrics_page(State((exporter, upstream)): State<(Exporter, Arc<Upstream>)>) -> Response {
    if let Some(store) = upstream.store() {
        metrics::cache_size(store.cached_bytes());
    }
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(CONTENT_TYPE, content_type)], exporter.render()).into_response()
}

async fn websocket(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    if let Err(reason) = state.config.origins.check(headers) {
        REFUSALS.refused(Refusal::Origin, peer);
        debug!(%peer, "WebSocket refused: {reason}");
        return (StatusCode::FORBIDDEN, reason.to_string()).into_response();
    }
    let accept = match websocket::accept_key(headers) {
        Ok(accept) => accept,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason.to_string()).into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return (StatusCode::BAD_REQUEST, "connection cannot be upgraded").into_response();
    };
    let Some(ip_slot) = state.sessions_per_ip.try_acquire(peer.ip()) else {
        REFUSALS.refused(Refusal::WsPerIp, peer);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket sessions from your address at once; try again later",
        )
            .into_response();
    };
    let Ok(permit) = state.sessions.clone().try_acquire_owned() else {
        REFUSALS.refused(Refusal::WsBusy, peer);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket sessions; try again later",
        )
            .into_response();
    };
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let session_state = state.clone();
    state.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let state = session_state;
                let max_message = state.config.max_message;
                bridge::run(
                    TokioIo::new(upgraded),
                    peer,
                    &state.config.bridge,
                    max_message,
                    &state.shutdown,
                )
                .await;
            }
            Err(e) => warn!(%peer, "WebSocket upgrade failed: {e}"),
        }
        drop((permit, ip_slot));
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}
