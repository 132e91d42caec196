//! One browser's WebSocket session, bridged to the picture protocol.
//!
//! Each binary message from the browser must hold exactly one framed request. It is checked
//! here, so nothing malformed ever reaches the upstream, then answered by this process's store
//! or forwarded on this session's own connection to a picture server over TCP; the one framed
//! response goes back as one binary message. Requests are handled in order, one at a time,
//! which keeps responses in request order and lets a slow browser hold back only itself.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use picture_protocol::{
    Change, Command, Kind, MAX_REQUEST_PAYLOAD, REQUEST_HEADER_LEN, Status, decode_request,
    peek_request_header,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::upstream::{Source, TcpUpstream, Upstream, UpstreamError};
use super::websocket::{
    CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_POLICY, Incoming, Socket, WsError,
};
use crate::answer::{Answer, Caller, Watch};
use crate::metrics::{self, Transport};

/// What a session needs to know.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// What answers every request; never chosen by the browser.
    pub upstream: Upstream,
    /// A session that sends nothing (not even a pong) for this long is closed; so is one that
    /// accepts no bytes for this long.
    pub idle_timeout: Duration,
    pub max_request_payload: usize,
    /// Largest picture a PUT message may carry.
    pub max_upload_size: usize,
}

/// What woke the session up.
enum Event {
    Shutdown,
    Heartbeat,
    Received(Result<Incoming, WsError>),
    Change(Option<Change>),
}

/// What one session has established: the credential, and a subscription to changes.
struct SessionState {
    caller: Caller,
    watch: Option<Watch>,
}

/// How a session ends: with a close frame (code and reason) unless the browser is gone, and
/// what the log says.
struct End {
    close: Option<(u16, String)>,
    why: String,
}

impl End {
    fn closing(code: u16, reason: impl Into<String>) -> End {
        let reason = reason.into();
        End {
            why: reason.clone(),
            close: Some((code, reason)),
        }
    }

    fn gone(why: String) -> End {
        End { close: None, why }
    }
}

pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    config: &BridgeConfig,
    max_message: usize,
    shutdown: &CancellationToken,
) {
    info!(%peer, "WebSocket session opened");
    // A session that presented the admin token may send uploads, each in one message.
    let upload_message =
        max_message.max(config.max_upload_size + REQUEST_HEADER_LEN + MAX_REQUEST_PAYLOAD);
    let mut socket = Socket::new(stream, max_message, upload_message).await;
    let mut upstream = None;
    // Pings at half the idle timeout keep a live browser's session open and find dead ones.
    let period = config.idle_timeout / 2;
    let mut heartbeat = interval_at(Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_active = Instant::now();
    let mut last_received = 0;
    let mut requests = 0u64;
    let mut session = SessionState {
        caller: Caller::new(Transport::WebSocket),
        watch: None,
    };
    let _open = metrics::Open::new(Transport::WebSocket);
    let end = loop {
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled() => Event::Shutdown,
            _ = heartbeat.tick() => Event::Heartbeat,
            change = Watch::next_of(&mut session.watch) => Event::Change(change),
            received = socket.next() => Event::Received(received),
        };
        if let Event::Heartbeat = event {
            // A large message arriving slowly (an upload) is activity too, though it is not
            // whole yet and the browser cannot answer pings in the middle of sending it.
            if socket.received() != last_received {
                last_received = socket.received();
                last_active = Instant::now();
            }
        }
        let message = match event {
            Event::Shutdown => break End::closing(CLOSE_GOING_AWAY, "server shutting down"),
            Event::Heartbeat if last_active.elapsed() >= config.idle_timeout => {
                break End::closing(CLOSE_GOING_AWAY, "idle timeout");
            }
            Event::Heartbeat => match socket.ping().await {
                Ok(()) => continue,
                Err(e) => break End::gone(format!("client gone: {e}")),
            },
            Event::Received(Err(WsError::Protocol { code, reason })) => {
                break End {
                    why: format!("protocol error: {reason}"),
                    close: Some((code, reason)),
                };
            }
            Event::Received(Err(e)) => break End::gone(e.to_string()),
            Event::Change(None) => {
                session.watch = None;
                continue;
            }
            Event::Change(Some(change)) => {
                let id = session.watch.as_ref().map_or(0, Watch::id);
                let notice = Answer::change(&change);
                match send_answer(&mut socket, Some(Kind::Change), id, notice).await {
                    Ok(()) => continue,
                    Err(end) => break end,
                }
            }
            Event::Received(Ok(message)) => message,
        };
        let reply = match message {
            Incoming::Binary(frame) => {
                requests += 1;
                let was_authorized = session.caller.authorized;
                let reply = handle(frame, &mut upstream, &mut session, config).await;
                if session.caller.authorized && !was_authorized {
                    socket.set_max_message(upload_message);
                }
                reply
            }
            Incoming::Text => Reply::Answer(
                None,
                0,
                Answer::text(
                    Status::BadRequest,
                    "requests must be sent as binary messages",
                ),
            ),
            Incoming::Close => break End::closing(CLOSE_NORMAL, "client closed"),
        };
        let sent = match reply {
            Reply::Answer(Some(Kind::Auth), id, answer)
                if answer.status == Status::Unauthorized =>
            {
                // One guess per session.
                if let Err(end) = send_answer(&mut socket, Some(Kind::Auth), id, answer).await {
                    break end;
                }
                break End::closing(CLOSE_POLICY, "wrong admin token");
            }
            Reply::Answer(kind, id, answer) => send_answer(&mut socket, kind, id, answer).await,
            Reply::Relay(len) => relay(&mut socket, &mut upstream, len).await,
        };
        if let Err(end) = sent {
            break end;
        }
        // The message, and a long transfer to a slow browser, are activity.
        last_active = Instant::now();
    };
    metrics::transferred(Transport::WebSocket, socket.sent(), socket.received());
    if let Some((code, reason)) = end.close {
        socket.close(code, &reason).await;
    }
    info!(%peer, requests, "WebSocket session closed: {}", end.why);
}

/// What goes back for one message from the browser.
enum Reply {
    /// An answer made in this process, to request `id` of a kind: from the store, or an error.
    Answer(Option<Kind>, u32, Answer),
    /// The TCP upstream's response frame, this many bytes long, waiting to be relayed.
    Relay(usize),
}

/// Checks one message from the browser and, if it is a request, has it answered.
async fn handle(
    frame: Bytes,
    upstream: &mut Option<TcpUpstream>,
    session: &mut SessionState,
    config: &BridgeConfig,
) -> Reply {
    let (request, used) = match decode_request(&frame, config.max_request_payload) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => {
            let (id, kind) = peek_request_header(&frame).unwrap_or((0, None));
            let answer = Answer::text(
                Status::BadRequest,
                "the message holds an incomplete request",
            );
            return Reply::Answer(kind, id, answer);
        }
        Err(error) => return Reply::Answer(error.kind, error.id, Answer::rejection(&error)),
    };
    let kind = Some(request.command.kind());
    let refuse =
        |status, message: String| Reply::Answer(kind, request.id, Answer::text(status, message));
    // A PUT's picture follows its frame in the same message; nothing else may follow a frame.
    let upload_size = match &request.command {
        Command::Put(put) => put.size as usize,
        _ => 0,
    };
    if upload_size > config.max_upload_size {
        let message = format!(
            "the picture of {upload_size} bytes exceeds the upload limit of {}",
            config.max_upload_size
        );
        return refuse(Status::TooLarge, message);
    }
    if frame.len() - used != upload_size {
        let message = format!(
            "a message must hold exactly one request (and, after a PUT, its picture); {} bytes \
             follow the request where {upload_size} were announced",
            frame.len() - used
        );
        return refuse(Status::BadRequest, message);
    }
    let addr = match &config.upstream.0 {
        Source::Local(service) => {
            if request.command == Command::Watch && session.watch.is_none() {
                session.watch = Some(service.watch(request.id));
            }
            // An upload holds a slot until it is stored or refused, as over TCP.
            let slot = match &request.command {
                // The picture is in memory already (it came in the message): no waiting.
                Command::Put(_) => match service.upload_slot(Duration::ZERO).await {
                    Some(slot) => Some(slot),
                    None => return Reply::Answer(kind, request.id, Answer::uploads_busy()),
                },
                _ => None,
            };
            let upload = frame.slice(used..);
            let answer = service
                .answer(&mut session.caller, &request.command, upload)
                .await;
            drop(slot);
            return Reply::Answer(kind, request.id, answer);
        }
        // A relayed connection may be replaced at any time (see `send_upstream`), which would
        // lose a credential or a subscription and could repeat a write: none goes through.
        Source::Tcp(_) if request.command == Command::Watch => {
            let message = "WATCH is not available through a bridge that relays to another server";
            return refuse(Status::BadRequest, message.to_owned());
        }
        Source::Tcp(_) if kind.is_some_and(|k| k.is_write() || k == Kind::Auth) => {
            let message = "writes are not available through a bridge that relays to another \
                           server: connect to that server";
            return refuse(Status::WritesDisabled, message.to_owned());
        }
        Source::Tcp(addr) => addr,
    };
    match send_upstream(&frame, upstream, addr).await {
        Ok(len) => Reply::Relay(len),
        Err(e) => {
            warn!(upstream = %addr, "picture server unavailable: {e}");
            let answer = Answer::text(Status::Internal, format!("picture server unavailable: {e}"));
            Reply::Answer(kind, request.id, answer)
        }
    }
}

/// Sends an answer made here as one binary message: the response head, then the body from
/// its shared buffer.
async fn send_answer<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut Socket<S>,
    kind: Option<Kind>,
    id: u32,
    answer: Answer,
) -> Result<(), End> {
    let encoded = answer.encode(kind, id).map_err(|e| End {
        close: Some((CLOSE_INTERNAL, "cannot encode a response".to_owned())),
        why: format!("cannot encode a response: {e}"),
    })?;
    socket
        .send_message(&encoded.into_parts())
        .await
        .map_err(|e| End::gone(format!("sending failed: {e}")))
}

/// Sends a checked request upstream, opening the connection on first use and again after a
/// failure, and returns the length of the response frame.
async fn send_upstream(
    frame: &[u8],
    upstream: &mut Option<TcpUpstream>,
    addr: &str,
) -> Result<usize, UpstreamError> {
    // A kept connection may have been closed by the upstream in the meantime (its idle
    // timeout, a restart): one retry on a fresh connection covers that. Only reads are relayed
    // (see `handle`), which are safe to repeat, and nothing of the response has been relayed
    // yet.
    // A timeout or an invalid answer is not retried: a second try would fail the same way.
    if let Some(connection) = upstream.as_mut() {
        match connection.send(frame).await {
            Err(e @ (UpstreamError::Closed | UpstreamError::Io(_))) => {
                debug!("upstream connection lost ({e}); reconnecting");
                *upstream = None;
            }
            Err(e) => {
                *upstream = None;
                return Err(e);
            }
            Ok(len) => return Ok(len),
        }
    }
    let connection = upstream.insert(TcpUpstream::connect(addr).await?);
    let result = connection.send(frame).await;
    if result.is_err() {
        *upstream = None;
    }
    result
}

/// Streams the upstream's response of `len` bytes to the browser as one binary message, in
/// pieces of at most the upstream's relay chunk.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut Socket<S>,
    upstream: &mut Option<TcpUpstream>,
    len: usize,
) -> Result<(), End> {
    let Some(source) = upstream.as_mut() else {
        return Err(End::gone("no upstream connection to relay from".to_owned()));
    };
    let mut remaining = len;
    let mut first = true;
    while remaining > 0 {
        // Part of the message may already be out: if the picture server fails now, the only
        // honest end is to drop the session, which the page notices and recovers from.
        let piece = match source.next_piece(remaining).await {
            Ok(piece) => piece,
            Err(e) => {
                *upstream = None;
                let why = format!("picture server failed in the middle of a response: {e}");
                return Err(End::gone(why));
            }
        };
        remaining -= piece.len();
        socket
            .send_part(piece, first, remaining == 0)
            .await
            .map_err(|e| End::gone(format!("sending failed: {e}")))?;
        first = false;
    }
    Ok(())
}
