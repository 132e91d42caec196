//! The byte stream a benchmark connection runs on: plain TCP, or the binary messages of a
//! WebSocket read as one continuous stream.
//!
//! Reading WebSocket messages as a byte stream, rather than expecting one frame per message, is
//! what lets the same code measure the project's bridge (one response frame per message) and a
//! generic bridge such as websockify (messages cut wherever its reads happened to end).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BytesMut};
use picture_client::Link;
use picture_client::tls;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::ws::{Endpoint, WsClient};

/// How long any connect, write or read may take before the server is considered stuck. Generous,
/// because an overloaded server is slow rather than broken, and that is what is being measured.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is and how to reach it.
#[derive(Debug, Clone)]
pub enum Target {
    /// The picture protocol straight over TCP (or TLS).
    Tcp { addr: String, tls: Option<Tls> },
    /// Framed requests through a WebSocket bridge; `addr` is the URL's host and port.
    Ws {
        endpoint: Endpoint,
        addr: String,
        tls: Option<Tls>,
    },
}

/// TLS on a connection: the client's settings and the name the certificate must carry.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS to {:?}", self.name)
    }
}

impl Tls {
    fn new(authority: &str, ca_cert: Option<&Path>, alpn: &[&[u8]]) -> anyhow::Result<Tls> {
        Ok(Tls {
            connector: tls::connector(ca_cert, alpn)?,
            name: tls::server_name(authority)?,
        })
    }
}

impl Target {
    /// Reads `tcp://HOST:PORT` (or plain `HOST:PORT`), `tls://HOST:PORT`, or
    /// `ws://HOST:PORT/PATH` and `wss://HOST:PORT/PATH`. TLS trusts the system's certificate
    /// authorities, or only those in `ca_cert`.
    pub fn parse(server: &str, ca_cert: Option<&Path>) -> anyhow::Result<Target> {
        let usage = || {
            format!(
                "--server must be tcp://HOST:PORT, tls://HOST:PORT, ws://HOST:PORT/PATH or \
                 wss://HOST:PORT/PATH, not {server:?}"
            )
        };
        if let Some(secure) = server
            .starts_with("ws://")
            .then_some(false)
            .or(server.starts_with("wss://").then_some(true))
        {
            let uri: Uri = server.parse().with_context(usage)?;
            let host = uri.host().with_context(usage)?;
            let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
            let endpoint = Endpoint {
                host: uri.authority().map(|a| a.to_string()).with_context(usage)?,
                path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            };
            let tls = secure
                .then(|| Tls::new(&endpoint.host, ca_cert, &[b"http/1.1"]))
                .transpose()?;
            return Ok(Target::Ws {
                endpoint,
                addr: format!("{host}:{port}"),
                tls,
            });
        }
        let (addr, secure) = match server.strip_prefix("tls://") {
            Some(addr) => (addr, true),
            None => (server.strip_prefix("tcp://").unwrap_or(server), false),
        };
        let Some((host, _)) = addr.rsplit_once(':') else {
            bail!(usage());
        };
        if host.is_empty() || addr.contains('/') {
            bail!(usage());
        }
        let tls = secure.then(|| Tls::new(addr, ca_cert, &[])).transpose()?;
        Ok(Target::Tcp {
            addr: addr.to_owned(),
            tls,
        })
    }

    /// The TCP address to connect to.
    pub fn addr(&self) -> &str {
        match self {
            Target::Tcp { addr, .. } | Target::Ws { addr, .. } => addr,
        }
    }

    fn tls(&self) -> Option<&Tls> {
        match self {
            Target::Tcp { tls, .. } | Target::Ws { tls, .. } => tls.as_ref(),
        }
    }

    /// How reports name the transport.
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Tcp { tls: None, .. } => "tcp",
            Target::Tcp { tls: Some(_), .. } => "tls",
            Target::Ws { tls: None, .. } => "ws",
            Target::Ws { tls: Some(_), .. } => "wss",
        }
    }
}

/// One open connection, either kind.
pub enum Stream {
    /// `out` gathers queued frames so that a batch leaves in one write.
    Tcp {
        socket: Box<dyn Link>,
        out: Vec<u8>,
    },
    Ws(WsClient),
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
        let plain = connect_tcp(target.addr()).await?;
        let socket: Box<dyn Link> = match target.tls() {
            None => Box::new(plain),
            Some(tls) => {
                let handshake = tls.connector.connect(tls.name.clone(), plain);
                let secured = timeout(IO_TIMEOUT, handshake)
                    .await
                    .map_err(|_| anyhow!("TLS handshake with {} timed out", target.addr()))?
                    .with_context(|| format!("TLS handshake with {} failed", target.addr()))?;
                Box::new(secured)
            }
        };
        let endpoint = match target {
            Target::Tcp { .. } => {
                return Ok(Stream::Tcp {
                    socket,
                    out: Vec::new(),
                });
            }
            Target::Ws { endpoint, .. } => endpoint,
        };
        let handshake = WsClient::handshake(socket, endpoint, ws_protocol);
        let client = timeout(IO_TIMEOUT, handshake)
            .await
            .map_err(|_| anyhow!("WebSocket handshake with {} timed out", endpoint.host))?
            .with_context(|| format!("WebSocket handshake with {} failed", endpoint.host))?;
        Ok(Stream::Ws(client))
    }

    /// Queues one request frame; it leaves with the next [`Stream::flush`]. Over a WebSocket
    /// each frame is its own binary message, as a framing-aware bridge requires.
    pub fn queue(&mut self, frame: &[u8]) {
        match self {
            Stream::Tcp { out, .. } => out.extend_from_slice(frame),
            Stream::Ws(client) => client.queue(frame),
        }
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Stream::Tcp { socket, out } => {
                socket.write_all(out).await?;
                // TLS holds the last records until flushed.
                socket.flush().await?;
                out.clear();
            }
            Stream::Ws(client) => client.flush().await?,
        }
        Ok(())
    }

    /// Sends everything queued and then `body`, in one vectored write over TCP: a PUT frame and
    /// the picture after it. A WebSocket bridge wants the two in one message, which this
    /// client does not build.
    pub async fn flush_with(&mut self, body: &[u8]) -> anyhow::Result<()> {
        match self {
            Stream::Tcp { socket, out } => {
                let mut both = Buf::chain(out.as_slice(), body);
                socket.write_all_buf(&mut both).await?;
                socket.flush().await?;
                out.clear();
            }
            Stream::Ws(_) => bail!("uploads need a tcp:// server"),
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
            Stream::Ws(client) => client.read(buf, room).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(server: &str) -> Option<(&'static str, String)> {
        Target::parse(server, None)
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
        assert_eq!(
            parse("tls://localhost:40675"),
            Some(("tls", "localhost:40675".to_owned()))
        );
        assert_eq!(
            parse("wss://localhost/ws"),
            Some(("wss", "localhost:443".to_owned()))
        );
        for bad in [
            "",
            "tcp://",
            "127.0.0.1",
            "tcp://h:1/x",
            "http://h:1/",
            "tls://:1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
