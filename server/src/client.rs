//! A client for the framed protocol over one persistent connection: raw TCP, or a WebSocket
//! bridge (`ws://HOST:PORT/ws`) for networks that only let HTTP through.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use picture_protocol::{
    Command, DecodeError, EncodeError, GetRequest, MAX_RESPONSE_BODY, PictureInfo, Request,
    ResponseHead, Selector, Status, Variant, decode_catalog,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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
}

/// A picture as received.
#[derive(Debug)]
pub struct Fetched {
    /// [`Status::Ok`], or [`Status::NotFound`] with the server's not-found picture.
    pub status: Status,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// How frames travel.
enum Transport {
    /// A byte stream: responses are cut out of `buffer` by their length fields.
    Tcp { stream: TcpStream, buffer: BytesMut },
    /// One binary message per frame, each way.
    WebSocket(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
}

pub struct Client {
    transport: Transport,
    next_id: u32,
}

impl Client {
    /// Connects to `HOST:PORT` (or `tcp://HOST:PORT`, as the server prints it) over TCP, or
    /// to a bridge given as a `ws://` URL.
    pub async fn connect(server: &str) -> Result<Client, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            addr: server.to_owned(),
            reason,
        };
        let transport = if server.starts_with("ws://") {
            let (socket, _) = timeout(IO_TIMEOUT, tokio_tungstenite::connect_async(server))
                .await
                .map_err(|_| connect_error("timed out".into()))?
                .map_err(|e| connect_error(e.to_string()))?;
            Transport::WebSocket(Box::new(socket))
        } else {
            let addr = server.strip_prefix("tcp://").unwrap_or(server);
            let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
                .await
                .map_err(|_| connect_error("timed out".into()))?
                .map_err(|e| connect_error(e.to_string()))?;
            stream.set_nodelay(true)?;
            Transport::Tcp {
                stream,
                buffer: BytesMut::with_capacity(64 * 1024),
            }
        };
        Ok(Client {
            transport,
            next_id: 1,
        })
    }

    pub async fn list(&mut self) -> Result<Vec<PictureInfo>, ClientError> {
        let (head, body) = self.call(Command::List, |_, _| {}).await?;
        ok_or_error(&head, &body)?;
        Ok(decode_catalog(&body)?)
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let (head, body) = self.call(Command::Ping, |_, _| {}).await?;
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
        let command = Command::Get(GetRequest {
            selector,
            variant: Variant::default(),
        });
        let (head, bytes) = self.call(command, progress).await?;
        if head.status != Status::NotFound {
            ok_or_error(&head, &bytes)?;
        }
        Ok(Fetched {
            status: head.status,
            mime: head.mime,
            bytes,
        })
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        match &mut self.transport {
            Transport::Tcp { stream, .. } => stream.write_all(frame).await?,
            Transport::WebSocket(socket) => {
                socket
                    .send(Message::Binary(Bytes::copy_from_slice(frame)))
                    .await?
            }
        }
        Ok(())
    }

    /// Sends one request and reads its response.
    async fn call(
        &mut self,
        command: Command,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send(&Request { id, command }.encode()?).await?;

        let (head, body) = match &mut self.transport {
            Transport::Tcp { stream, buffer } => {
                let head = read_head(stream, buffer).await?;
                buffer.advance(head.encoded_len());
                let body = read_body(stream, buffer, &head, &mut progress).await?;
                (head, body)
            }
            Transport::WebSocket(socket) => {
                let frame = next_binary(socket).await?;
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
        };
        // A response with id 0 answers a request the server could not read.
        if head.id != id && head.id != 0 {
            return Err(ClientError::WrongId {
                expected: id,
                got: head.id,
            });
        }
        Ok((head, body))
    }
}

async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut BytesMut,
) -> Result<ResponseHead, ClientError> {
    loop {
        if let Some(head) = ResponseHead::decode(buffer, MAX_RESPONSE_BODY)? {
            return Ok(head);
        }
        fill(stream, buffer).await?;
    }
}

async fn read_body(
    stream: &mut TcpStream,
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
        fill(stream, buffer).await?;
    }
}

async fn fill(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<(), ClientError> {
    buffer.reserve(64 * 1024);
    match timeout(IO_TIMEOUT, stream.read_buf(buffer)).await {
        Err(_) => Err(ClientError::Timeout),
        Ok(Ok(0)) => Err(ClientError::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
    }
}

/// The next binary message, skipping control messages.
async fn next_binary(
    socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> Result<Bytes, ClientError> {
    loop {
        let message = timeout(IO_TIMEOUT, socket.next())
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
