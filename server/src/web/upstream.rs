//! Where the bridge's requests are answered, and its TCP connection to a picture server
//! elsewhere.
//!
//! Over TCP, a response is relayed in pieces of at most [`RELAY_CHUNK`] bytes, never gathered
//! whole: a session holds at most one read buffer however large the picture, and the buffer's
//! memory is reused from one response to the next once the pieces sent before have been
//! written.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use picture_protocol::{
    Command, DecodeError, EncodeError, MAX_RESPONSE_BODY, Request, ResponseHead,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::answer::Service;
use crate::store::{Store, StoreError};

/// How long the bridge waits for its picture server to accept a connection or send more.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest piece relayed at once. Gathering this much before writing keeps system calls
/// few (a 100 KB picture goes out in one write) while bounding a session's memory: the piece
/// being read, and the one before, copied into the WebSocket's write buffer as one frame,
/// waiting for a browser that does not read: under 256 KiB in all.
const RELAY_CHUNK: usize = 128 * 1024;

/// What answers the requests the bridge has checked. Never chosen by the browser.
#[derive(Clone)]
pub struct Upstream(pub(super) Source);

#[derive(Clone)]
pub(super) enum Source {
    /// This process's own store, answering as its TCP port would. The picture's shared buffer
    /// goes straight to the WebSocket, instead of crossing loopback twice.
    Local(Arc<Service>),
    /// A picture server over TCP at this address.
    Tcp(String),
}

impl Upstream {
    /// The pictures of this process's store, with its write policy.
    pub fn local(service: Arc<Service>) -> Upstream {
        Upstream(Source::Local(service))
    }

    /// The picture server at `addr` (HOST:PORT).
    pub fn tcp(addr: impl Into<String>) -> Upstream {
        Upstream(Source::Tcp(addr.into()))
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Local(_) => f.write_str("this server's pictures"),
            Source::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Upstream {
    /// This process's store, when that is what answers.
    pub fn store(&self) -> Option<&Arc<Store>> {
        match &self.0 {
            Source::Local(service) => Some(service.store()),
            Source::Tcp(_) => None,
        }
    }

    /// Whether what answers the bridge's requests answers now, within `deadline`: this
    /// process's store, or the picture server over TCP (a PING on a new connection).
    pub async fn ready(&self, deadline: Duration) -> Result<(), NotReady> {
        let check = async {
            match &self.0 {
                Source::Local(service) => service.store().ready().await.map_err(NotReady::Store),
                Source::Tcp(addr) => {
                    let ping = Request {
                        id: 0,
                        command: Command::Ping,
                    };
                    let ping = ping.encode().map_err(|e| NotReady::Upstream(e.into()))?;
                    let mut upstream = TcpUpstream::connect(addr).await?;
                    upstream
                        .send(&ping)
                        .await
                        .map(drop)
                        .map_err(NotReady::Upstream)
                }
            }
        };
        timeout(deadline, check)
            .await
            .unwrap_or(Err(NotReady::Timeout(deadline)))
    }
}

/// Why `/readyz` says no.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the store: {0}")]
    Store(StoreError),
    #[error("the picture server: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no answer within {} s", UPSTREAM_TIMEOUT.as_secs())]
    Timeout,
    #[error("it closed the connection")]
    Closed,
    #[error("it sent an invalid response: {0}")]
    Protocol(#[from] DecodeError),
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
}

/// The bridge session's connection to a picture server over TCP.
pub struct TcpUpstream {
    stream: TcpStream,
    buffer: BytesMut,
}

impl TcpUpstream {
    pub async fn connect(addr: &str) -> Result<TcpUpstream, UpstreamError> {
        let connect_error = |source| UpstreamError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let stream = timeout(UPSTREAM_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        stream.set_nodelay(true)?;
        Ok(TcpUpstream {
            stream,
            buffer: BytesMut::new(),
        })
    }

    /// Sends an encoded request and waits for the head of its response. Returns the length of
    /// the whole response frame, whose bytes [`TcpUpstream::next_piece`] then hands out.
    pub async fn send(&mut self, request: &[u8]) -> Result<usize, UpstreamError> {
        self.stream.write_all(request).await?;
        loop {
            if let Some(head) = ResponseHead::decode(&self.buffer, MAX_RESPONSE_BODY)? {
                return Ok(head.frame_len());
            }
            self.fill(RELAY_CHUNK).await?;
        }
    }

    /// The next piece of the response frame: the rest of it, or [`RELAY_CHUNK`] bytes of it.
    pub async fn next_piece(&mut self, remaining: usize) -> Result<Bytes, UpstreamError> {
        let want = remaining.min(RELAY_CHUNK);
        while self.buffer.len() < want {
            self.fill(want - self.buffer.len()).await?;
        }
        Ok(self.buffer.split_to(want).freeze())
    }

    /// Reads at least one more byte, into room for `wanted` more. Asking for no more than the
    /// piece needs keeps a new allocation (while the piece before is still being sent) to the
    /// size of one piece; the buffer's memory is reused once the pieces before are dropped.
    async fn fill(&mut self, wanted: usize) -> Result<(), UpstreamError> {
        self.buffer.reserve(wanted.max(1));
        match timeout(UPSTREAM_TIMEOUT, self.stream.read_buf(&mut self.buffer)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(0)) => Err(UpstreamError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
        }
    }
}
