//! The accept loop: connection limits (in all and per client address), one task per
//! connection, graceful shutdown.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use picture_protocol::{MAGIC, REQUEST_HEADER_LEN, peek_request_header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::answer::{Answer, Service};
use crate::connection::Connection;
use crate::limits::{BUSY_READ_TIMEOUT, Limits, MAX_BUSY_REJECTIONS};
use crate::metrics::{self, Transport};
use crate::per_ip::PerIp;
use crate::refusals::{REFUSALS, Refusal};
use crate::session::{self, Mode, Stats, queue_answer};
use crate::tls::Acceptor;

/// Pause after a failed accept (out of file descriptors, say) before trying again, so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Idle time before the first keepalive probe, and time between probes; the kernel gives up
/// after its usual count of unanswered probes (9 on Linux): a vanished peer is found within
/// about 2.5 minutes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Serves pictures on `listener` until `shutdown` is cancelled, then stops accepting and waits
/// (at most [`Limits::shutdown_grace`]) for the connections in flight to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Acceptor>,
    service: Arc<Service>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let mut rejections = Rejections::default();
    let tracker = TaskTracker::new();
    while let Some((stream, peer)) = next_connection(&listener, &shutdown).await {
        let Some(ip_slot) = per_ip.try_acquire(peer.ip()) else {
            REFUSALS.refused(Refusal::TcpPerIp, peer);
            tracker.spawn(reject_busy(stream, tls.clone(), peer, rejections.admit()));
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            REFUSALS.refused(Refusal::TcpBusy, peer);
            tracker.spawn(reject_busy(stream, tls.clone(), peer, rejections.admit()));
            continue;
        };
        let (service, limits, shutdown) = (service.clone(), limits.clone(), shutdown.clone());
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => handle(stream, peer, &service, &limits, &shutdown).await,
                Some(tls) => match tls.accept(stream, limits.request_timeout).await {
                    Ok(stream) => handle(stream, peer, &service, &limits, &shutdown).await,
                    Err(e) => debug!(%peer, "TLS handshake failed: {e}"),
                },
            }
            drop((permit, ip_slot));
        });
    }
    drop(listener);
    tracker.close();
    if !tracker.is_empty() {
        info!(
            connections = tracker.len(),
            "waiting for connections to finish"
        );
    }
    if timeout(limits.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            connections = tracker.len(),
            "shutdown grace period over: closing the remaining connections"
        );
    }
}

/// The next connection, with Nagle's algorithm off (responses are written whole; waiting to
/// coalesce them only adds latency), or `None` once `shutdown` is cancelled. A failed accept
/// (out of file descriptors, say) is logged and retried after a pause.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    warn!(%peer, "cannot set TCP_NODELAY: {e}");
                }
                // A connection that only waits for change notices never times out by itself:
                // keepalive probes find a peer that vanished (a laptop asleep, a NAT that
                // forgot it) and free its slot.
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(KEEPALIVE_IDLE)
                    .with_interval(KEEPALIVE_INTERVAL);
                if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
                    warn!(%peer, "cannot set TCP keepalive: {e}");
                }
                return Some((stream, peer));
            }
            Err(e) => {
                warn!("accept failed: {e}");
                sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    service: &Service,
    limits: &Limits,
    shutdown: &CancellationToken,
) {
    let started = Instant::now();
    let _open = metrics::Open::new(Transport::Tcp);
    let mut conn = Connection::new(stream);
    let mut stats = Stats::default();
    let end = session::run(&mut conn, service, limits, shutdown, &mut stats).await;
    let transport = match stats.mode {
        Some(Mode::Bare) => Transport::Bare,
        _ => Transport::Tcp,
    };
    metrics::transferred(transport, stats.bytes_out, conn.received());
    info!(
        %peer,
        mode = stats.mode.map_or("none", Mode::name),
        requests = stats.requests,
        bytes = stats.bytes_out,
        ms = started.elapsed().as_millis() as u64,
        "connection closed: {end}"
    );
}

/// The connections over the limit that wait for their first request, to be told *busy*.
///
/// At most [`MAX_BUSY_REJECTIONS`] wait at once, and a new one takes the place of the one that
/// has waited longest: a fixed pool that refused newcomers once full let a few silent
/// connections keep every client that did send its request from its answer.
#[derive(Default)]
struct Rejections {
    /// Oldest first; each is cancelled once its rejection is over.
    waiting: VecDeque<CancellationToken>,
}

impl Rejections {
    /// Makes room for one more rejection and returns what ends it early.
    fn admit(&mut self) -> CancellationToken {
        self.waiting.retain(|done| !done.is_cancelled());
        if self.waiting.len() >= MAX_BUSY_REJECTIONS
            && let Some(oldest) = self.waiting.pop_front()
        {
            oldest.cancel();
        }
        let token = CancellationToken::new();
        self.waiting.push_back(token.clone());
        token
    }
}

/// Answers a connection over the limit, unless `displaced` first. A framed client gets a
/// *busy* response echoing its request id; a bare-choice client has no way to receive an
/// error and is simply closed.
async fn reject_busy(
    stream: TcpStream,
    tls: Option<Acceptor>,
    peer: SocketAddr,
    displaced: CancellationToken,
) {
    let done = displaced.clone().drop_guard();
    let answer = async {
        match tls {
            None => answer_busy(Connection::new(stream)).await,
            Some(tls) => {
                if let Ok(stream) = tls.accept(stream, BUSY_READ_TIMEOUT).await {
                    answer_busy(Connection::new(stream)).await;
                }
            }
        }
    };
    tokio::select! {
        () = answer => debug!(%peer, "connection refused: over the connection limit"),
        () = displaced.cancelled() => {
            debug!(%peer, "over the connection limit: closed unanswered to make room for another");
        }
    }
    drop(done);
}

/// Reads the request header of a connection over the limit (for a little while) and answers
/// it *busy*.
async fn answer_busy<S: AsyncRead + AsyncWrite + Unpin>(mut conn: Connection<S>) {
    let read_header = async {
        while conn.buffer().len() < REQUEST_HEADER_LEN
            && conn.buffer().first().is_none_or(|&b| b == MAGIC)
            && conn.fill().await? > 0
        {}
        std::io::Result::Ok(())
    };
    let _ = timeout(BUSY_READ_TIMEOUT, read_header).await;
    if conn.buffer().first() == Some(&MAGIC) {
        let (id, kind) = peek_request_header(conn.buffer()).unwrap_or((0, None));
        if queue_answer(&mut conn, kind, id, Answer::busy()).is_ok()
            && conn.flush(BUSY_READ_TIMEOUT).await.is_ok()
        {
            conn.close_gracefully().await;
        }
    }
}
