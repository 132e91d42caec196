//! One browser's WebSocket session, bridged to the picture server over TCP.
//!
//! Each binary message from the browser must hold exactly one framed request. It is checked
//! here, so nothing malformed ever reaches the upstream, then forwarded on this session's own
//! upstream connection; the one framed response is sent back as one binary message. Requests
//! are handled in order, one at a time, which keeps responses in request order and lets a slow
//! browser hold back only itself.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use picture_protocol::{Status, decode_request, peek_request_header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, interval};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::websocket::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, Incoming, Reader, WsError, queue_binary, queue_close,
    queue_ping, queue_pong,
};
use crate::answer::Answer;
use crate::client::{Client, ClientError};
use crate::connection::Connection;

/// What a session needs to know.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The picture server every request goes to; never chosen by the browser.
    pub upstream: String,
    /// A session that sends nothing (not even a pong) for this long is closed; so is one that
    /// accepts no bytes for this long.
    pub idle_timeout: Duration,
    pub max_request_payload: usize,
}

/// What woke the session up.
enum Event {
    Shutdown,
    Heartbeat,
    Received(Result<Incoming, WsError>),
}

pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    peer: SocketAddr,
    config: &BridgeConfig,
    max_message: usize,
    shutdown: &CancellationToken,
) {
    info!(%peer, "WebSocket session opened");
    let mut reader = Reader::default();
    let mut upstream = None;
    // Pings at half the idle timeout keep a live browser's session open and find dead ones.
    let mut heartbeat = interval(config.idle_timeout / 2);
    let mut last_heard = Instant::now();
    let mut requests = 0u64;
    let end = loop {
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled() => Event::Shutdown,
            _ = heartbeat.tick() => Event::Heartbeat,
            received = reader.next(conn, max_message) => Event::Received(received),
        };
        let message = match event {
            Event::Shutdown => {
                queue_close(conn, CLOSE_GOING_AWAY, "server shutting down");
                break "server shutdown".to_owned();
            }
            Event::Heartbeat if last_heard.elapsed() >= config.idle_timeout => {
                queue_close(conn, CLOSE_GOING_AWAY, "idle timeout");
                break "idle timeout".to_owned();
            }
            Event::Heartbeat => {
                queue_ping(conn);
                if let Err(e) = conn.flush(config.idle_timeout).await {
                    break format!("client gone: {e}");
                }
                continue;
            }
            Event::Received(Err(WsError::Protocol(code, reason))) => {
                queue_close(conn, code, reason);
                break format!("protocol error: {reason}");
            }
            Event::Received(Err(e)) => break e.to_string(),
            Event::Received(Ok(message)) => message,
        };
        last_heard = Instant::now();
        let reply = match message {
            Incoming::Binary(frame) => {
                requests += 1;
                handle(&frame, &mut upstream, config).await
            }
            Incoming::Text => Answer::text(
                Status::BadRequest,
                "requests must be sent as binary messages",
            )
            .into_frame(None, 0),
            Incoming::Close => {
                queue_close(conn, CLOSE_NORMAL, "");
                break "client closed".to_owned();
            }
            Incoming::Ping(payload) => {
                queue_pong(conn, payload);
                if let Err(e) = conn.flush(config.idle_timeout).await {
                    break format!("sending failed: {e}");
                }
                continue;
            }
            Incoming::Pong => continue,
        };
        queue_binary(conn, reply);
        if let Err(e) = conn.flush(config.idle_timeout).await {
            break format!("sending failed: {e}");
        }
    };
    if conn.flush(config.idle_timeout).await.is_ok() {
        conn.close_gracefully().await;
    }
    info!(%peer, requests, "WebSocket session closed: {end}");
}

/// The response frame for one message from the browser.
async fn handle(frame: &[u8], upstream: &mut Option<Client>, config: &BridgeConfig) -> Bytes {
    let request = match decode_request(frame, config.max_request_payload) {
        Ok(Some((request, used))) if used == frame.len() => request,
        Ok(Some((request, used))) => {
            let message = format!(
                "a message must hold exactly one request; {} bytes follow it",
                frame.len() - used
            );
            return Answer::text(Status::BadRequest, message)
                .into_frame(Some(request.command.kind()), request.id);
        }
        Ok(None) => {
            let (id, kind) = peek_request_header(frame).unwrap_or((0, None));
            return Answer::text(
                Status::BadRequest,
                "the message holds an incomplete request",
            )
            .into_frame(kind, id);
        }
        Err(error) => return Answer::rejection(&error).into_frame(error.kind, error.id),
    };
    match forward(frame, upstream, &config.upstream).await {
        Ok(response) => response,
        Err(e) => {
            warn!(upstream = %config.upstream, "picture server unavailable: {e}");
            Answer::text(Status::Internal, format!("picture server unavailable: {e}"))
                .into_frame(Some(request.command.kind()), request.id)
        }
    }
}

/// Sends a checked request upstream, opening the connection on first use and again after a
/// failure.
async fn forward(
    frame: &[u8],
    upstream: &mut Option<Client>,
    addr: &str,
) -> Result<Bytes, ClientError> {
    // A kept connection may have been closed by the upstream in the meantime (its idle
    // timeout, a restart): one retry on a fresh connection covers that. Every request kind is
    // safe to repeat.
    if let Some(client) = upstream.as_mut() {
        match client.exchange_frame(frame).await {
            Ok(response) => return Ok(response),
            Err(e) => {
                debug!("upstream connection lost ({e}); reconnecting");
                *upstream = None;
            }
        }
    }
    let client = upstream.insert(Client::connect(addr).await?);
    let result = client.exchange_frame(frame).await;
    if result.is_err() {
        *upstream = None;
    }
    result
}
