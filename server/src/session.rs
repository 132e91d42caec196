//! One client connection from its first byte to its close, in either mode.

use std::fmt;
use std::io;

use picture_protocol::{
    Command, GetRequest, Kind, MAGIC, Selector, Status, Variant, decode_request,
};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::answer::{Answer, answer};
use crate::connection::Connection;
use crate::limits::{BARE_CHOICE_MAX, Limits, MAX_QUEUED_RESPONSES};
use crate::store::PictureStore;

/// What a session did, for its log line.
#[derive(Debug, Default)]
pub struct Stats {
    pub mode: Option<Mode>,
    pub requests: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Framed,
    Bare,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Framed => "framed",
            Mode::Bare => "bare",
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// The client closed the connection between requests, or a bare choice was answered.
    Done,
    /// The client closed the connection in the middle of a request.
    ClosedMidRequest,
    /// No request for the idle timeout.
    Idle,
    /// A request was started and not finished within the request timeout.
    StalledRequest,
    /// The server is shutting down and the connection had nothing in flight.
    Shutdown,
    /// The client sent something that is not a request; it got an error answer.
    Rejected(picture_protocol::RequestError),
    /// A bare choice could not be answered because the store failed.
    StoreFailed,
    Io(io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Done => f.write_str("done"),
            End::ClosedMidRequest => f.write_str("client closed mid-request"),
            End::Idle => f.write_str("idle timeout"),
            End::StalledRequest => f.write_str("request timeout"),
            End::Shutdown => f.write_str("server shutdown"),
            End::Rejected(e) => write!(f, "rejected: {e}"),
            End::StoreFailed => f.write_str("store failed"),
            End::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

/// Serves one connection until it ends, returning why.
pub async fn run<S: PictureStore>(
    conn: &mut Connection,
    store: &S,
    limits: &Limits,
    shutdown: &CancellationToken,
    stats: &mut Stats,
) -> End {
    let result = async {
        let first_deadline = Instant::now() + limits.request_timeout;
        match read_more(conn, first_deadline).await? {
            0 => Ok(End::Done),
            _ if conn.buffer().first() == Some(&MAGIC) => {
                stats.mode = Some(Mode::Framed);
                serve_framed(conn, store, limits, shutdown, stats).await
            }
            _ => {
                stats.mode = Some(Mode::Bare);
                serve_bare(conn, store, limits, stats).await
            }
        }
    };
    result.await.unwrap_or_else(|end| end)
}

/// Reads more bytes, failing with [`End::StalledRequest`] at the deadline.
async fn read_more(conn: &mut Connection, deadline: Instant) -> Result<usize, End> {
    match timeout_at(deadline, conn.fill()).await {
        Ok(read) => Ok(read?),
        Err(_) => Err(End::StalledRequest),
    }
}

/// Framed mode: answer requests in order for as long as the client keeps the connection.
async fn serve_framed<S: PictureStore>(
    conn: &mut Connection,
    store: &S,
    limits: &Limits,
    shutdown: &CancellationToken,
    stats: &mut Stats,
) -> Result<End, End> {
    // When the request now being received began; it must be whole by the request timeout.
    let mut request_started = Some(Instant::now());
    loop {
        // Answer everything already buffered before writing, so pipelined responses leave
        // together.
        let mut queued = 0;
        loop {
            match decode_request(conn.buffer(), limits.max_request_payload) {
                Ok(Some((request, used))) => {
                    conn.consume(used);
                    request_started = None;
                    stats.requests += 1;
                    let answer = answer(store, &request.command).await;
                    queue_answer(conn, Some(request.command.kind()), request.id, answer)?;
                    queued += 1;
                    if queued >= MAX_QUEUED_RESPONSES {
                        stats.bytes_out += conn.flush(limits.idle_timeout).await?;
                        queued = 0;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    queue_answer(conn, error.kind, error.id, Answer::rejection(&error))?;
                    stats.bytes_out += conn.flush(limits.idle_timeout).await?;
                    conn.close_gracefully().await;
                    return Ok(End::Rejected(error));
                }
            }
        }
        stats.bytes_out += conn.flush(limits.idle_timeout).await?;

        if conn.buffer().is_empty() {
            let read = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(End::Shutdown),
                read = tokio::time::timeout(limits.idle_timeout, conn.fill()) => read,
            };
            match read.map_err(|_| End::Idle)?? {
                0 => return Ok(End::Done),
                _ => request_started = Some(Instant::now()),
            }
        } else {
            let started = *request_started.get_or_insert_with(Instant::now);
            if read_more(conn, started + limits.request_timeout).await? == 0 {
                return Ok(End::ClosedMidRequest);
            }
        }
    }
}

/// Bare-choice mode: the first read is the whole request; answer with the picture's bytes and
/// close, as the original server did.
async fn serve_bare<S: PictureStore>(
    conn: &mut Connection,
    store: &S,
    limits: &Limits,
    stats: &mut Stats,
) -> Result<End, End> {
    let take = conn.buffer().len().min(BARE_CHOICE_MAX);
    let selector = Selector::from_choice(&conn.buffer()[..take]);
    stats.requests = 1;
    let get = Command::Get(GetRequest {
        selector,
        variant: Variant::default(),
    });
    let answer = answer(store, &get).await;
    if !matches!(answer.status, Status::Ok | Status::NotFound) {
        // There is no way to report an error in this mode; sending the message as if it were
        // a picture would be worse than closing.
        return Ok(End::StoreFailed);
    }
    conn.queue(answer.body);
    stats.bytes_out += conn.flush(limits.idle_timeout).await?;
    conn.close_gracefully().await;
    Ok(End::Done)
}

/// Queues a framed response.
pub fn queue_answer(
    conn: &mut Connection,
    kind: Option<Kind>,
    id: u32,
    answer: Answer,
) -> Result<(), End> {
    let encoded = answer
        .encode(kind, id)
        .map_err(|e| End::Io(io::Error::other(e)))?;
    encoded.queue_on(conn);
    Ok(())
}
