//! One client connection from its first byte to its close, in either mode.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use picture_protocol::{
    Change, Command, GetRequest, Kind, MAGIC, Selector, Status, Variant, decode_request,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::answer::{Answer, Caller, Service, Watch};
use crate::connection::Connection;
use crate::limits::{BARE_CHOICE_MAX, Limits, MAX_QUEUED_RESPONSES};
use crate::metrics::Transport;

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
    /// An upload was refused from its header; its bytes were not read.
    UploadRefused,
    /// AUTH presented a wrong token.
    WrongToken,
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
            End::UploadRefused => f.write_str("upload refused"),
            End::WrongToken => f.write_str("wrong admin token"),
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
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    service: &Service,
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
                serve_framed(conn, service, limits, shutdown, stats).await
            }
            _ => {
                stats.mode = Some(Mode::Bare);
                serve_bare(conn, service, limits, stats).await
            }
        }
    };
    result.await.unwrap_or_else(|end| end)
}

/// Reads more bytes, failing with [`End::StalledRequest`] at the deadline.
async fn read_more<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    deadline: Instant,
) -> Result<usize, End> {
    match timeout_at(deadline, conn.fill()).await {
        Ok(read) => Ok(read?),
        Err(_) => Err(End::StalledRequest),
    }
}

/// What a framed connection waits for between requests.
enum Wake {
    Shutdown,
    Read(Result<io::Result<usize>, tokio::time::error::Elapsed>),
    Change(Option<Change>),
}

/// Framed mode: answer requests in order for as long as the client keeps the connection.
async fn serve_framed<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    service: &Service,
    limits: &Limits,
    shutdown: &CancellationToken,
    stats: &mut Stats,
) -> Result<End, End> {
    let mut caller = Caller::new(Transport::Tcp);
    let mut watch: Option<Watch> = None;
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
                    let kind = request.command.kind();
                    // An upload's slot is held until it is stored or refused: the picture is
                    // in memory, and decoding it takes more.
                    let (upload, _slot) = match &request.command {
                        Command::Put(put) => {
                            stats.bytes_out += conn.flush(limits.idle_timeout).await?;
                            match receive_upload(conn, service, &caller, put.size, limits).await? {
                                Ok((upload, slot)) => (upload, Some(slot)),
                                Err(refusal) => {
                                    // The picture's bytes are on their way and will not be
                                    // read: the connection cannot go on.
                                    queue_answer(conn, Some(kind), request.id, refusal)?;
                                    stats.bytes_out += conn.flush(limits.idle_timeout).await?;
                                    conn.close_gracefully().await;
                                    return Ok(End::UploadRefused);
                                }
                            }
                        }
                        Command::Watch if watch.is_none() => {
                            // Subscribed before answering, so no change after the version
                            // in the answer is missed.
                            watch = Some(service.watch(request.id));
                            (Bytes::new(), None)
                        }
                        _ => (Bytes::new(), None),
                    };
                    let answer = service.answer(&mut caller, &request.command, upload).await;
                    let refused_auth = kind == Kind::Auth && answer.status == Status::Unauthorized;
                    queue_answer(conn, Some(kind), request.id, answer)?;
                    if refused_auth {
                        // One guess per connection.
                        stats.bytes_out += conn.flush(limits.idle_timeout).await?;
                        conn.close_gracefully().await;
                        return Ok(End::WrongToken);
                    }
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
            // A watching connection waits for notices as long as it likes: it is the server
            // that has something to say.
            let idle = if watch.is_some() {
                Duration::MAX
            } else {
                limits.idle_timeout
            };
            let wake = tokio::select! {
                biased;
                () = shutdown.cancelled() => Wake::Shutdown,
                change = Watch::next_of(&mut watch) => Wake::Change(change),
                read = tokio::time::timeout(idle, conn.fill()) => Wake::Read(read),
            };
            match wake {
                Wake::Shutdown => return Ok(End::Shutdown),
                Wake::Change(None) => watch = None,
                Wake::Change(Some(change)) => {
                    let id = watch.as_ref().map_or(0, Watch::id);
                    queue_answer(conn, Some(Kind::Change), id, Answer::change(&change))?;
                }
                Wake::Read(read) => match read.map_err(|_| End::Idle)?? {
                    0 => return Ok(End::Done),
                    _ => request_started = Some(Instant::now()),
                },
            }
        } else {
            let started = *request_started.get_or_insert_with(Instant::now);
            if read_more(conn, started + limits.request_timeout).await? == 0 {
                return Ok(End::ClosedMidRequest);
            }
        }
    }
}

/// Receives the `size` bytes of a picture that follow a PUT frame, after checking that they
/// would be accepted at all: a refusal (too large, not authorised, too many uploads) is
/// decided from the header, before a byte of the picture is read.
async fn receive_upload<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    service: &Service,
    caller: &Caller,
    size: u32,
    limits: &Limits,
) -> Result<Result<(Bytes, OwnedSemaphorePermit), Answer>, End> {
    let size = size as usize;
    if size > limits.max_upload_size {
        return Ok(Err(Answer::text(
            Status::TooLarge,
            format!(
                "the picture of {size} bytes exceeds the upload limit of {}",
                limits.max_upload_size
            ),
        )));
    }
    if let Err(refusal) = service.check_write(caller) {
        return Ok(Err(refusal));
    }
    let Some(slot) = service.upload_slot(limits.request_timeout).await else {
        return Ok(Err(Answer::uploads_busy()));
    };
    conn.reserve(size);
    while conn.buffer().len() < size {
        // The picture must keep arriving: no pause longer than the request timeout.
        if read_more(conn, Instant::now() + limits.request_timeout).await? == 0 {
            return Err(End::ClosedMidRequest);
        }
    }
    Ok(Ok((conn.take(size), slot)))
}

/// Bare-choice mode: the first read is the whole request; answer with the picture's bytes and
/// close, as the original server did.
async fn serve_bare<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    service: &Service,
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
    let answer = service
        .answer(&mut Caller::new(Transport::Bare), &get, Bytes::new())
        .await;
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
pub fn queue_answer<S>(
    conn: &mut Connection<S>,
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

#[cfg(test)]
mod tests {
    //! One session over an in-memory stream, with tokio's clock paused: the timeouts pass in
    //! no time at all.

    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use picture_protocol::{MAX_RESPONSE_BODY, Request, decode_response};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;
    use crate::store::{Folder, Store};

    fn service() -> Service {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let folder = Folder::load(&assets).unwrap_or_else(|e| panic!("{e}"));
        Service::new(Arc::new(Store::from_folder(folder)), None)
    }

    fn frame(id: u32, command: Command) -> Vec<u8> {
        Request { id, command }
            .encode()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a session on one end of an in-memory stream and hands the other end to `client`;
    /// returns how the session ended and when, by tokio's clock.
    async fn session<F: Future<Output = ()>>(
        limits: Limits,
        client: impl FnOnce(DuplexStream) -> F,
    ) -> (End, Duration) {
        let (server_side, client_side) = duplex(1 << 20);
        let service = service();
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let serve = async {
            let mut conn = Connection::new(server_side);
            let end = run(
                &mut conn,
                &service,
                &limits,
                &shutdown,
                &mut Stats::default(),
            )
            .await;
            (end, started.elapsed())
        };
        let (ended, ()) = tokio::join!(serve, client(client_side));
        ended
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_closed_at_the_idle_timeout() {
        let limits = Limits {
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        };
        let (end, took) = session(limits, async |mut client| {
            client
                .write_all(&frame(1, Command::Ping))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut answer = vec![0; 64];
            let n = client
                .read(&mut answer)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (response, _) = decode_response(&answer[..n], MAX_RESPONSE_BODY)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no whole response"));
            assert_eq!((response.head.id, response.head.status), (1, Status::Ok));
            // Then nothing, while holding the connection open.
            let _ = client.read(&mut answer).await;
        })
        .await;
        assert!(matches!(end, End::Idle), "{end}");
        assert!(took >= Duration::from_secs(60), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn half_a_request_is_given_up_on_at_the_request_timeout() {
        let limits = Limits {
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            ..Limits::default()
        };
        let (end, took) = session(limits, async |mut client| {
            let request = frame(1, Command::List);
            client
                .write_all(&request[..request.len() - 1])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = client.read(&mut [0; 16]).await;
        })
        .await;
        assert!(matches!(end, End::StalledRequest), "{end}");
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(600),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bare_choice_gets_the_picture_and_the_end_of_the_stream() {
        let expected =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/car.jpg"))
                .unwrap_or_else(|e| panic!("{e}"));
        let (end, _) = session(Limits::default(), async |mut client| {
            client
                .write_all(b"car")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut received = Vec::new();
            client
                .read_to_end(&mut received)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(received == expected, "{} bytes", received.len());
        })
        .await;
        assert!(matches!(end, End::Done), "{end}");
    }

    #[tokio::test(start_paused = true)]
    async fn pipelined_requests_are_answered_in_order() {
        let (end, _) = session(Limits::default(), async |mut client| {
            let requests: Vec<u8> = (1..=5).flat_map(|id| frame(id, Command::Ping)).collect();
            client
                .write_all(&requests)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            client.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
            let mut received = Vec::new();
            client
                .read_to_end(&mut received)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut rest = &received[..];
            for id in 1..=5 {
                let (response, used) = decode_response(rest, MAX_RESPONSE_BODY)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| panic!("response {id} missing"));
                assert_eq!(response.head.id, id);
                rest = &rest[used..];
            }
            assert!(rest.is_empty());
        })
        .await;
        assert!(matches!(end, End::Done), "{end}");
    }
}
