//! The byte stream a benchmark connection runs on: plain TCP, or the binary messages of a
//! WebSocket read as one continuous stream.
//!
//! Reading WebSocket messages as a byte stream, rather than expecting one frame per message, is
//! what lets the same code measure the project's bridge (one response frame per message) and a
//! generic bridge such as websockify (messages cut wherever its reads happened to end).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, SinkExt, StreamExt};
use picture_protocol::MAX_RESPONSE_BODY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long any connect, write or read may take before the server is considered stuck. Generous,
/// because an overloaded server is slow rather than broken, and that is what is being measured.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest WebSocket message accepted: a whole response frame of the largest body the protocol
/// allows, plus room for its head, so a framing-aware bridge is never refused a real answer.
const MAX_WS_MESSAGE: usize = MAX_RESPONSE_BODY as usize + 64 * 1024;

/// How many bytes of already-arrived WebSocket messages one read gathers at most, so a fast
/// server cannot make a single read grow the buffer without bound.
const MAX_WS_BATCH: usize = 1024 * 1024;

/// Where the server is and how to reach it.
#[derive(Debug, Clone)]
pub enum Target {
    /// The picture protocol straight over TCP.
    Tcp { addr: String },
    /// Framed requests through a WebSocket bridge; `addr` is the URL's host and port.
    Ws { url: String, addr: String },
}

impl Target {
    /// Reads `tcp://HOST:PORT` (or plain `HOST:PORT`) or `ws://HOST:PORT/PATH`.
    pub fn parse(server: &str) -> anyhow::Result<Target> {
        let usage =
            || format!("--server must be tcp://HOST:PORT or ws://HOST:PORT/PATH, not {server:?}");
        if server.starts_with("ws://") {
            let uri: Uri = server.parse().with_context(usage)?;
            let host = uri.host().with_context(usage)?;
            let port = uri.port_u16().unwrap_or(80);
            return Ok(Target::Ws {
                url: server.to_owned(),
                addr: format!("{host}:{port}"),
            });
        }
        let addr = server.strip_prefix("tcp://").unwrap_or(server);
        if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
            bail!(usage());
        }
        Ok(Target::Tcp {
            addr: addr.to_owned(),
        })
    }

    /// The TCP address to connect to.
    pub fn addr(&self) -> &str {
        match self {
            Target::Tcp { addr } | Target::Ws { addr, .. } => addr,
        }
    }

    /// How reports name the transport.
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Tcp { .. } => "tcp",
            Target::Ws { .. } => "ws",
        }
    }
}

/// One open connection, either kind.
pub enum Stream {
    /// `out` gathers queued frames so that a batch leaves in one write.
    Tcp { socket: TcpStream, out: Vec<u8> },
    /// Boxed: a WebSocket stream is much larger than a socket and a buffer.
    Ws(Box<WebSocketStream<TcpStream>>),
}

/// A new TCP connection with Nagle's algorithm off, since requests are tiny and latency is
/// being measured.
pub async fn connect_tcp(addr: &str) -> anyhow::Result<TcpStream> {
    let socket = timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("cannot connect to {addr}: timed out"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    socket.set_nodelay(true)?;
    Ok(socket)
}

impl Stream {
    /// Connects, and for a WebSocket completes the handshake, asking for `ws_protocol` as the
    /// subprotocol when given (websockify wants "binary" for raw bytes).
    pub async fn connect(target: &Target, ws_protocol: Option<&str>) -> anyhow::Result<Stream> {
        let socket = connect_tcp(target.addr()).await?;
        let url = match target {
            Target::Tcp { .. } => {
                return Ok(Stream::Tcp {
                    socket,
                    out: Vec::new(),
                });
            }
            Target::Ws { url, .. } => url,
        };
        let mut request = url.as_str().into_client_request()?;
        if let Some(protocol) = ws_protocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(protocol).context("invalid --ws-protocol")?,
            );
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let handshake = tokio_tungstenite::client_async_with_config(request, socket, Some(config));
        let (socket, _) = timeout(IO_TIMEOUT, handshake)
            .await
            .map_err(|_| anyhow!("WebSocket handshake with {url} timed out"))?
            // tungstenite's messages already include their causes: no context chain.
            .map_err(|e| anyhow!("WebSocket handshake with {url} failed: {e}"))?;
        Ok(Stream::Ws(Box::new(socket)))
    }

    /// Queues one request frame; it leaves with the next [`Stream::flush`]. Over a WebSocket
    /// each frame is its own binary message, as a framing-aware bridge requires.
    pub async fn queue(&mut self, frame: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Stream::Tcp { out, .. } => out.extend_from_slice(&frame),
            Stream::Ws(socket) => socket.feed(Message::Binary(Bytes::from(frame))).await?,
        }
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Stream::Tcp { socket, out } => {
                socket.write_all(out).await?;
                out.clear();
            }
            Stream::Ws(socket) => socket.flush().await?,
        }
        Ok(())
    }

    /// Appends the bytes that arrive next to `buf`, having made room for `room` bytes over TCP.
    /// Returns how many were appended; 0 means the server closed the stream.
    pub async fn read(&mut self, buf: &mut BytesMut, room: usize) -> anyhow::Result<usize> {
        match self {
            Stream::Tcp { socket, .. } => {
                buf.reserve(room);
                Ok(socket.read_buf(buf).await?)
            }
            Stream::Ws(socket) => {
                let before = buf.len();
                let Some(first) = next_binary(socket).await? else {
                    return Ok(0);
                };
                buf.extend_from_slice(&first);
                // Take every message that has already arrived, so that the caller handles
                // them together and answers with one batch of requests.
                while buf.len() - before < MAX_WS_BATCH {
                    match next_binary(socket).now_or_never() {
                        Some(Ok(Some(more))) => buf.extend_from_slice(&more),
                        Some(Ok(None)) | None => break,
                        Some(Err(e)) => return Err(e),
                    }
                }
                Ok(buf.len() - before)
            }
        }
    }
}

/// The next binary message, or `None` at the end of the session. Pings and pongs are skipped
/// (tungstenite answers pings by itself).
async fn next_binary(socket: &mut WebSocketStream<TcpStream>) -> anyhow::Result<Option<Bytes>> {
    loop {
        match socket.next().await.transpose()? {
            None | Some(Message::Close(_)) => return Ok(None),
            Some(Message::Binary(bytes)) => return Ok(Some(bytes)),
            Some(Message::Text(text)) => {
                let text: &str = &text;
                bail!("the server sent a text message instead of a binary one: {text:.200}")
            }
            Some(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(server: &str) -> Option<(&'static str, String)> {
        Target::parse(server)
            .ok()
            .map(|t| (t.transport(), t.addr().to_owned()))
    }

    #[test]
    fn server_forms() {
        let tcp = |addr: &str| Some(("tcp", addr.to_owned()));
        let ws = |addr: &str| Some(("ws", addr.to_owned()));
        assert_eq!(parse("tcp://127.0.0.1:40674"), tcp("127.0.0.1:40674"));
        assert_eq!(parse("localhost:40674"), tcp("localhost:40674"));
        assert_eq!(parse("ws://127.0.0.1:8080/ws"), ws("127.0.0.1:8080"));
        assert_eq!(parse("ws://example.test/"), ws("example.test:80"));
        for bad in [
            "",
            "tcp://",
            "127.0.0.1",
            "tcp://h:1/x",
            "http://h:1/",
            "wss://h/",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
