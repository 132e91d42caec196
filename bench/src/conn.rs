//! A framed-protocol connection: request frames out, response frames cut out of the incoming
//! byte stream by their headers and lent in place, so that a body is checked where it landed
//! instead of being copied out.

use std::collections::VecDeque;

use anyhow::{Context, anyhow, bail, ensure};
use bytes::{Buf, BytesMut};
use picture_protocol::{DecodeError, MAX_RESPONSE_BODY, Request, ResponseHead, Status};
use tokio::time::{Instant, timeout};

use crate::stream::{IO_TIMEOUT, Stream, Target};

/// Room made in the read buffer before a read when no bigger frame is known to be coming.
const READ_CHUNK: usize = 64 * 1024;

/// Connections opened at once when a run opens many. Opening thousands at the same moment
/// would overflow the server's listen backlog and turn into SYN retries a second later.
pub const OPEN_CONCURRENCY: usize = 256;

pub struct Conn {
    stream: Stream,
    /// Bytes received and not yet consumed. It grows to the largest frame received (at most
    /// [`MAX_RESPONSE_BODY`] plus a head) and is then reused.
    buf: BytesMut,
    /// Heads of the responses at the front of `buf` that have arrived whole, in order.
    whole: VecDeque<ResponseHead>,
    /// Bytes at the front of `buf` that those responses take.
    whole_len: usize,
    /// The head of the response after them once it is in, while its body is still arriving:
    /// kept so that a large body arriving over many reads has its head decoded only once, and
    /// so that room for all of it is made at once.
    partial: Option<ResponseHead>,
    /// When the last read returned, which is when every response it completed arrived.
    received_at: Instant,
}

impl Conn {
    pub async fn connect(target: &Target, ws_protocol: Option<&str>) -> anyhow::Result<Conn> {
        Ok(Conn {
            stream: Stream::connect(target, ws_protocol).await?,
            buf: BytesMut::new(),
            whole: VecDeque::new(),
            whole_len: 0,
            partial: None,
            received_at: Instant::now(),
        })
    }

    /// Encodes a request and queues it for the next [`Conn::flush`].
    pub fn queue(&mut self, request: &Request) -> anyhow::Result<()> {
        let frame = request.encode().context("cannot encode the request")?;
        self.stream.queue(&frame);
        Ok(())
    }

    /// Sends every queued request.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        timeout(IO_TIMEOUT, self.stream.flush())
            .await
            .map_err(|_| anyhow!("the server accepted no bytes for {IO_TIMEOUT:?}"))?
    }

    /// Encodes a request and sends it with `body` after it (a PUT and its picture), together
    /// with anything queued before.
    pub async fn send_with(&mut self, request: &Request, body: &[u8]) -> anyhow::Result<()> {
        self.queue(request)?;
        timeout(IO_TIMEOUT, self.stream.flush_with(body))
            .await
            .map_err(|_| anyhow!("the server accepted no bytes for {IO_TIMEOUT:?}"))?
    }

    /// Waits until at least one response has arrived whole.
    pub async fn answer(&mut self) -> anyhow::Result<()> {
        while self.whole.is_empty() {
            self.receive().await?;
        }
        Ok(())
    }

    /// Waits for more bytes from the server and finds the responses they complete. The end of
    /// the stream is an error: nothing is expected to end while requests are in flight. So is
    /// a head announcing a body over [`MAX_RESPONSE_BODY`], which keeps the buffer bounded.
    pub async fn receive(&mut self) -> anyhow::Result<()> {
        let room = match &self.partial {
            Some(head) => head.frame_len() - (self.buf.len() - self.whole_len),
            None => 0,
        };
        let read = self.stream.read(&mut self.buf, room.max(READ_CHUNK));
        let n = timeout(IO_TIMEOUT, read)
            .await
            .map_err(|_| anyhow!("the server sent nothing for {IO_TIMEOUT:?}"))??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.received_at = Instant::now();
        self.scan().context("invalid response from the server")
    }

    /// Moves every response that is now whole from the unread part of `buf` to `whole`.
    fn scan(&mut self) -> Result<(), DecodeError> {
        loop {
            let head = match self.partial.take() {
                Some(head) => head,
                None => match ResponseHead::decode(&self.buf[self.whole_len..], MAX_RESPONSE_BODY)?
                {
                    Some(head) => head,
                    None => return Ok(()),
                },
            };
            if self.buf.len() - self.whole_len < head.frame_len() {
                self.partial = Some(head);
                return Ok(());
            }
            self.whole_len += head.frame_len();
            self.whole.push_back(head);
        }
    }

    /// When the responses completed by the last [`Conn::receive`] arrived.
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// How many responses have arrived whole and are not consumed yet.
    pub fn ready(&self) -> usize {
        self.whole.len()
    }

    /// The oldest response that has arrived whole, head and body, until [`Conn::consume`].
    pub fn front(&self) -> Option<(&ResponseHead, &[u8])> {
        let head = self.whole.front()?;
        Some((head, &self.buf[head.encoded_len()..head.frame_len()]))
    }

    /// Drops the response that [`Conn::front`] returns.
    pub fn consume(&mut self) {
        if let Some(head) = self.whole.pop_front() {
            self.buf.advance(head.frame_len());
            self.whole_len -= head.frame_len();
        }
    }

    /// Sends one request and waits for its answer, which must have status *ok*: for setting up
    /// a run, where a copy of the body is fine.
    pub async fn call(&mut self, request: &Request) -> anyhow::Result<Vec<u8>> {
        self.call_with(request, &[]).await
    }

    /// [`Conn::call`] for a request followed by `body`: a PUT and its picture.
    pub async fn call_with(&mut self, request: &Request, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        if body.is_empty() {
            self.queue(request)?;
            self.flush().await?;
        } else {
            self.send_with(request, body).await?;
        }
        loop {
            if let Some((head, body)) = self.front() {
                ensure!(
                    head.id == request.id,
                    "the server answered request {} instead of {}",
                    head.id,
                    request.id
                );
                ensure!(
                    head.status == Status::Ok,
                    "the server answered {}: {}",
                    head.status.describe(),
                    String::from_utf8_lossy(body)
                );
                let body = body.to_vec();
                self.consume();
                return Ok(body);
            }
            self.receive().await?;
        }
    }
}
