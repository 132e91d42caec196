//! A client for the framed protocol over one persistent connection: raw TCP or TLS, or a
//! WebSocket bridge (`ws://HOST:PORT/ws`, `wss://`) for networks that only let HTTP through.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use picture_protocol::{
    Change, Command, DecodeError, Dimensions, EncodeError, GetRequest, Kind, MAX_PAGE_SIZE,
    MAX_RESPONSE_BODY, MAX_RESPONSE_HEAD_LEN, Page, PageRequest, PictureInfo, PutRequest, Request,
    ResponseHead, Selector, Status, Variant, decode_catalog,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::tls;

/// How long the client waits for the server to accept a connection or send the next bytes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to the server failed: {0}")]
    Io(#[from] io::Error),
    #[error("WebSocket failed: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("the server did not answer within {} s", IO_TIMEOUT.as_secs())]
    Timeout,
    #[error("the server closed the connection before answering")]
    Closed,
    #[error("the server sent an invalid response: {0}")]
    Protocol(#[from] DecodeError),
    #[error("invalid request: {0}")]
    Request(#[from] EncodeError),
    #[error("the server answered request {got} while request {expected} was waiting")]
    WrongId { expected: u32, got: u32 },
    #[error("{}: {message}", status.describe())]
    Server { status: Status, message: String },
    #[error("the server sent a {0} frame where none was expected")]
    Unexpected(&'static str),
}

/// A picture as received.
#[derive(Debug)]
pub struct Fetched {
    /// [`Status::Ok`], or [`Status::NotFound`] with the server's not-found picture.
    pub status: Status,
    pub mime: String,
    /// Width and height, which the server sends with a variant.
    pub dimensions: Option<Dimensions>,
    pub bytes: Vec<u8>,
}

/// A connection to the server: TCP, or TLS over TCP.
pub trait Link: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Link for S {}

/// How frames travel.
enum Transport {
    /// A byte stream: responses are cut out of `buffer` by their length fields.
    Tcp {
        stream: Box<dyn Link>,
        buffer: BytesMut,
    },
    /// One binary message per frame, each way.
    WebSocket(Box<WebSocketStream<Box<dyn Link>>>),
}

pub struct Client {
    transport: Transport,
    next_id: u32,
    /// Change notices that arrived while a response was awaited, oldest first.
    changes: VecDeque<Change>,
}

/// How long to wait for the answer that explains why an upload's connection broke.
const REFUSAL_PATIENCE: Duration = Duration::from_secs(2);

/// Bytes of an upload written at a time, so that progress can be shown as it goes.
const UPLOAD_PIECE: usize = 256 * 1024;

/// `authority` with the port a WebSocket URL implies when it names none (80, or 443 for
/// wss); a TCP or TLS address must name its port.
fn with_port(scheme: &str, authority: &str) -> String {
    let has_port = match authority.rsplit_once(':') {
        Some((host, _)) => !host.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    match scheme {
        "ws" if !has_port => format!("{authority}:80"),
        "wss" if !has_port => format!("{authority}:443"),
        _ => authority.to_owned(),
    }
}

impl Client {
    /// Connects to `HOST:PORT` (or `tcp://HOST:PORT`, as the server prints it) over TCP,
    /// `tls://HOST:PORT` over TLS, or to a bridge given as a `ws://` or `wss://` URL. TLS
    /// trusts the system's certificate authorities.
    pub async fn connect(server: &str) -> Result<Client, ClientError> {
        Client::connect_trusting(server, None).await
    }

    /// [`Client::connect`], trusting only the certificates in `ca_file` for TLS when one is
    /// given (a private certificate authority).
    pub async fn connect_trusting(
        server: &str,
        ca_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            addr: server.to_owned(),
            reason,
        };
        let (scheme, rest) = server.split_once("://").unwrap_or(("tcp", server));
        let authority = rest.split('/').next().unwrap_or(rest);
        let tls = matches!(scheme, "tls" | "wss");
        if !matches!(scheme, "tcp" | "tls" | "ws" | "wss") {
            return Err(connect_error(format!(
                "unknown scheme {scheme}:// (tcp, tls, ws or wss)"
            )));
        }
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(with_port(scheme, authority)))
            .await
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|e| connect_error(e.to_string()))?;
        stream.set_nodelay(true)?;
        let link: Box<dyn Link> = if tls {
            let alpn: &[&[u8]] = if scheme == "wss" { &[b"http/1.1"] } else { &[] };
            let connector =
                tls::connector(ca_file, alpn).map_err(|e| connect_error(e.to_string()))?;
            let name = tls::server_name(authority).map_err(|e| connect_error(e.to_string()))?;
            let secured = timeout(IO_TIMEOUT, connector.connect(name, stream))
                .await
                .map_err(|_| connect_error("timed out".into()))?
                .map_err(|e| connect_error(format!("TLS: {e}")))?;
            Box::new(secured)
        } else {
            Box::new(stream)
        };
        let transport = if scheme.starts_with("ws") {
            // Every answer the protocol allows, which is more than tungstenite's defaults.
            let largest = Some(MAX_RESPONSE_HEAD_LEN + MAX_RESPONSE_BODY as usize);
            let config = WebSocketConfig::default()
                .max_message_size(largest)
                .max_frame_size(largest);
            let handshake = tokio_tungstenite::client_async_with_config(server, link, Some(config));
            let (socket, _) = timeout(IO_TIMEOUT, handshake)
                .await
                .map_err(|_| connect_error("timed out".into()))?
                .map_err(|e| connect_error(e.to_string()))?;
            Transport::WebSocket(Box::new(socket))
        } else {
            Transport::Tcp {
                stream: link,
                buffer: BytesMut::with_capacity(64 * 1024),
            }
        };
        Ok(Client {
            transport,
            next_id: 1,
            changes: VecDeque::new(),
        })
    }

    /// Presents the admin token: writes on this connection are allowed from now on.
    pub async fn authenticate(&mut self, token: &str) -> Result<(), ClientError> {
        let command = Command::Auth(token.trim().as_bytes().to_vec().into());
        let (head, body) = self.call(command, &[], |_, _| {}).await?;
        ok_or_error(&head, &body)
    }

    /// Uploads a picture under `name`; `progress` is called with bytes sent and bytes in all.
    /// Returns the catalog entry the server made for it.
    pub async fn put(
        &mut self,
        name: &str,
        title: &str,
        replace: bool,
        picture: &[u8],
        progress: impl FnMut(u64, u64),
    ) -> Result<PictureInfo, ClientError> {
        let size = u32::try_from(picture.len()).map_err(|_| EncodeError::TooLong {
            what: "picture",
            len: picture.len(),
            max: u32::MAX as usize,
        })?;
        let command = Command::Put(PutRequest {
            name: name.to_owned(),
            title: title.to_owned(),
            replace,
            size,
        });
        self.edit(command, picture, progress).await
    }

    pub async fn delete(&mut self, selector: Selector) -> Result<(), ClientError> {
        let (head, body) = self.call(Command::Delete(selector), &[], |_, _| {}).await?;
        ok_or_error(&head, &body)
    }

    pub async fn rename(
        &mut self,
        selector: Selector,
        name: &str,
    ) -> Result<PictureInfo, ClientError> {
        let name = name.to_owned();
        self.edit(Command::Rename { selector, name }, &[], |_, _| {})
            .await
    }

    pub async fn retitle(
        &mut self,
        selector: Selector,
        title: &str,
    ) -> Result<PictureInfo, ClientError> {
        let title = title.to_owned();
        self.edit(Command::Retitle { selector, title }, &[], |_, _| {})
            .await
    }

    /// Moves a picture to a 1-based menu position.
    pub async fn move_to(
        &mut self,
        selector: Selector,
        position: u32,
    ) -> Result<PictureInfo, ClientError> {
        self.edit(Command::Move { selector, position }, &[], |_, _| {})
            .await
    }

    /// A write whose answer is the picture's new catalog entry.
    async fn edit(
        &mut self,
        command: Command,
        upload: &[u8],
        progress: impl FnMut(u64, u64),
    ) -> Result<PictureInfo, ClientError> {
        let (head, body) = self.call(command, upload, progress).await?;
        ok_or_error(&head, &body)?;
        decode_catalog(&body)?
            .pop()
            .ok_or(ClientError::Protocol(DecodeError::Truncated(
                "catalog entry",
            )))
    }

    /// One page of the catalog: pictures after number `after` whose name or title contains
    /// `search`.
    pub async fn page(
        &mut self,
        after: u32,
        limit: u16,
        search: &str,
    ) -> Result<Page, ClientError> {
        let command = Command::Page(PageRequest {
            after,
            limit,
            search: search.to_owned(),
        });
        let (head, body) = self.call(command, &[], |_, _| {}).await?;
        ok_or_error(&head, &body)?;
        Ok(Page::decode(&body)?)
    }

    /// Every picture whose name or title contains `search` (all of them when it is empty),
    /// read page by page, so catalogs too large for one LIST can be listed.
    pub async fn list_all(&mut self, search: &str) -> Result<Vec<PictureInfo>, ClientError> {
        // Pages of different catalog versions may not fit together (numbers move): start again
        // when the catalog changes under the listing, a few times at most.
        let mut attempts = 0;
        'listing: loop {
            attempts += 1;
            let mut pictures: Vec<PictureInfo> = Vec::new();
            let mut version = None;
            loop {
                let after = pictures.last().map_or(0, |p| p.number);
                let page = self.page(after, MAX_PAGE_SIZE, search).await?;
                if *version.get_or_insert(page.version) != page.version && attempts < 5 {
                    continue 'listing;
                }
                let full = page.pictures.len() == usize::from(MAX_PAGE_SIZE);
                pictures.extend(page.pictures);
                if !full {
                    return Ok(pictures);
                }
            }
        }
    }

    /// Asks for change notices; returns the catalog version they start from.
    pub async fn watch(&mut self) -> Result<u64, ClientError> {
        let (head, body) = self.call(Command::Watch, &[], |_, _| {}).await?;
        ok_or_error(&head, &body)?;
        let version: [u8; 8] = body
            .try_into()
            .map_err(|_| DecodeError::Truncated("catalog version"))?;
        Ok(u64::from_be_bytes(version))
    }

    /// The next change notice, after [`Client::watch`]. Waits as long as it takes.
    pub async fn next_change(&mut self) -> Result<Change, ClientError> {
        if let Some(change) = self.changes.pop_front() {
            return Ok(change);
        }
        let (head, body) = self.receive(&mut |_, _| {}, None).await?;
        if head.kind != Some(Kind::Change) {
            return Err(ClientError::Unexpected(
                head.kind.map_or("unreadable", Kind::name),
            ));
        }
        Ok(Change::decode(&body)?)
    }

    pub async fn list(&mut self) -> Result<Vec<PictureInfo>, ClientError> {
        let (head, body) = self.call(Command::List, &[], |_, _| {}).await?;
        ok_or_error(&head, &body)?;
        Ok(decode_catalog(&body)?)
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let (head, body) = self.call(Command::Ping, &[], |_, _| {}).await?;
        ok_or_error(&head, &body)
    }

    /// Fetches a picture. `progress` is called with bytes received and bytes expected as the
    /// body arrives. An unknown picture is not an error: it comes back with
    /// [`Status::NotFound`] and the server's not-found picture.
    pub async fn get(
        &mut self,
        selector: Selector,
        progress: impl FnMut(u64, u64),
    ) -> Result<Fetched, ClientError> {
        self.get_variant(selector, Variant::default(), progress)
            .await
    }

    /// Fetches a picture scaled down to fit a box, or converted, or both (see [`Variant`]):
    /// the answer carries its dimensions.
    pub async fn get_variant(
        &mut self,
        selector: Selector,
        variant: Variant,
        progress: impl FnMut(u64, u64),
    ) -> Result<Fetched, ClientError> {
        let command = Command::Get(GetRequest { selector, variant });
        let (head, bytes) = self.call(command, &[], progress).await?;
        if head.status != Status::NotFound {
            ok_or_error(&head, &bytes)?;
        }
        Ok(Fetched {
            status: head.status,
            mime: head.mime,
            dimensions: head.dimensions,
            bytes,
        })
    }

    /// Sends a frame and the upload that follows it (empty for all but PUT).
    async fn send(
        &mut self,
        frame: &[u8],
        upload: &[u8],
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<(), ClientError> {
        let total = upload.len() as u64;
        match &mut self.transport {
            Transport::Tcp { stream, .. } => {
                stream.write_all(frame).await?;
                let mut sent = 0;
                for piece in upload.chunks(UPLOAD_PIECE) {
                    timeout(IO_TIMEOUT, stream.write_all(piece))
                        .await
                        .map_err(|_| ClientError::Timeout)??;
                    sent += piece.len() as u64;
                    progress(sent, total);
                }
                // TLS holds the last records until flushed.
                timeout(IO_TIMEOUT, stream.flush())
                    .await
                    .map_err(|_| ClientError::Timeout)??;
            }
            Transport::WebSocket(socket) => {
                let message = [frame, upload].concat();
                socket.send(Message::Binary(Bytes::from(message))).await?;
                progress(total, total);
            }
        }
        Ok(())
    }

    /// Sends one request and reads its response. The progress of an upload is reported while
    /// it is sent, that of a download while it arrives.
    async fn call(
        &mut self,
        command: Command,
        upload: &[u8],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let frame = Request { id, command }.encode()?;
        if let Err(error) = self.send(&frame, upload, &mut progress).await {
            // A server refuses an upload from its frame (too large, not authorised, busy),
            // answers and closes while the picture is still being sent: its answer says more
            // than the broken connection does.
            if upload.is_empty() {
                return Err(error);
            }
            return match self.receive(&mut progress, Some(REFUSAL_PATIENCE)).await {
                Ok((head, body)) if head.id == id => Ok((head, body)),
                _ => Err(error),
            };
        }
        loop {
            let (head, body) = self.receive(&mut progress, Some(IO_TIMEOUT)).await?;
            if head.kind == Some(Kind::Change) {
                // A notice for a watching connection, between two answers: kept for later.
                self.changes.push_back(Change::decode(&body)?);
                continue;
            }
            // A response with id 0 answers a request the server could not read.
            if head.id != id && head.id != 0 {
                return Err(ClientError::WrongId {
                    expected: id,
                    got: head.id,
                });
            }
            return Ok((head, body));
        }
    }

    /// Reads the next frame from the server, waiting at most `patience` for each piece of it.
    async fn receive(
        &mut self,
        progress: &mut impl FnMut(u64, u64),
        patience: Option<Duration>,
    ) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        Ok(match &mut self.transport {
            Transport::Tcp { stream, buffer } => {
                let head = read_head(stream, buffer, patience).await?;
                buffer.advance(head.encoded_len());
                let body = read_body(stream, buffer, &head, progress).await?;
                (head, body)
            }
            Transport::WebSocket(socket) => {
                let frame = next_binary(socket, patience).await?;
                let (response, used) =
                    picture_protocol::decode_response(&frame, MAX_RESPONSE_BODY)?
                        .ok_or(DecodeError::Truncated("response message"))?;
                if used != frame.len() {
                    return Err(
                        DecodeError::TrailingBytes(frame.len() - used, "response message").into(),
                    );
                }
                progress(response.body.len() as u64, response.body.len() as u64);
                (response.head, response.body)
            }
        })
    }
}

async fn read_head(
    stream: &mut Box<dyn Link>,
    buffer: &mut BytesMut,
    patience: Option<Duration>,
) -> Result<ResponseHead, ClientError> {
    loop {
        if let Some(head) = ResponseHead::decode(buffer, MAX_RESPONSE_BODY)? {
            return Ok(head);
        }
        match patience {
            Some(patience) => fill(stream, buffer, patience).await?,
            // Waiting for a notice: once its first bytes are in, the rest is a response like any.
            None if buffer.is_empty() => fill(stream, buffer, Duration::MAX).await?,
            None => fill(stream, buffer, IO_TIMEOUT).await?,
        }
    }
}

async fn read_body(
    stream: &mut Box<dyn Link>,
    buffer: &mut BytesMut,
    head: &ResponseHead,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Vec<u8>, ClientError> {
    let len = head.body_len as usize;
    let mut body = Vec::with_capacity(len);
    loop {
        let take = (len - body.len()).min(buffer.len());
        body.extend_from_slice(&buffer[..take]);
        buffer.advance(take);
        progress(body.len() as u64, len as u64);
        if body.len() == len {
            return Ok(body);
        }
        fill(stream, buffer, IO_TIMEOUT).await?;
    }
}

async fn fill(
    stream: &mut Box<dyn Link>,
    buffer: &mut BytesMut,
    patience: Duration,
) -> Result<(), ClientError> {
    buffer.reserve(64 * 1024);
    match timeout(patience, stream.read_buf(buffer)).await {
        Err(_) => Err(ClientError::Timeout),
        Ok(Ok(0)) => Err(ClientError::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
    }
}

/// The next binary message, skipping control messages.
async fn next_binary(
    socket: &mut WebSocketStream<Box<dyn Link>>,
    patience: Option<Duration>,
) -> Result<Bytes, ClientError> {
    loop {
        let message = timeout(patience.unwrap_or(Duration::MAX), socket.next())
            .await
            .map_err(|_| ClientError::Timeout)?
            .ok_or(ClientError::Closed)??;
        match message {
            Message::Binary(frame) => return Ok(frame),
            Message::Close(_) => return Err(ClientError::Closed),
            Message::Text(text) => {
                return Err(ClientError::Server {
                    status: Status::BadRequest,
                    message: text.to_string(),
                });
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

fn ok_or_error(head: &ResponseHead, body: &[u8]) -> Result<(), ClientError> {
    match head.status {
        Status::Ok => Ok(()),
        status => Err(ClientError::Server {
            status,
            message: String::from_utf8_lossy(body).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_without_a_port_get_the_scheme_s_own() {
        assert_eq!(with_port("ws", "pictures.example"), "pictures.example:80");
        assert_eq!(with_port("wss", "pictures.example"), "pictures.example:443");
        assert_eq!(with_port("wss", "[::1]"), "[::1]:443");
        assert_eq!(with_port("wss", "[::1]:8443"), "[::1]:8443");
        assert_eq!(with_port("ws", "127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(with_port("tls", "localhost:40675"), "localhost:40675");
        assert_eq!(with_port("tcp", "localhost"), "localhost");
    }
}
