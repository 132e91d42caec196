//! A client for the framed protocol over one persistent TCP connection.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use picture_protocol::{
    Command, DecodeError, EncodeError, GetRequest, MAX_RESPONSE_BODY, PictureInfo, Request,
    ResponseHead, Selector, Status, Variant, decode_catalog,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long the client waits for the server to accept a connection or send the next bytes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connection to the server failed: {0}")]
    Io(#[from] io::Error),
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

pub struct Client {
    stream: TcpStream,
    buffer: BytesMut,
    next_id: u32,
}

impl Client {
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        let connect_error = |source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buffer: BytesMut::with_capacity(64 * 1024),
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

    /// Sends one request and reads its response.
    async fn call(
        &mut self,
        command: Command,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let frame = Request { id, command }.encode()?;
        self.stream.write_all(&frame).await?;

        let head = loop {
            if let Some(head) = ResponseHead::decode(&self.buffer, MAX_RESPONSE_BODY)? {
                break head;
            }
            self.fill().await?;
        };
        self.buffer.advance(head.encoded_len());
        if head.id != id && head.id != 0 {
            return Err(ClientError::WrongId {
                expected: id,
                got: head.id,
            });
        }
        let total = u64::from(head.body_len);
        let mut body = Vec::with_capacity(head.body_len as usize);
        loop {
            let wanted = head.body_len as usize - body.len();
            let take = wanted.min(self.buffer.len());
            body.extend_from_slice(&self.buffer[..take]);
            self.buffer.advance(take);
            progress(body.len() as u64, total);
            if body.len() == head.body_len as usize {
                return Ok((head, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), ClientError> {
        self.buffer.reserve(64 * 1024);
        match timeout(IO_TIMEOUT, self.stream.read_buf(&mut self.buffer)).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Ok(0)) => Err(ClientError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
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
