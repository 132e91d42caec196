//! A TCP connection with its read buffer and its queue of outgoing bytes.
//!
//! Responses are queued as separate chunks (a small encoded head, then the picture's shared
//! buffer) and written with vectored writes, so picture bytes are never copied and several
//! pipelined responses leave in as few system calls as the kernel allows.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How much the read buffer grows by when more bytes are wanted. Requests are tiny, so this
/// also bounds what one read can bring in.
const READ_CHUNK: usize = 4096;

/// How long [`Connection::close_gracefully`] waits for the peer to close.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// How much [`Connection::close_gracefully`] reads and discards at most: more than a client
/// pipelines ahead of its answers (64 KiB was not: a client that sent 100 KB after a
/// malformed frame lost the picture answered before it to the reset).
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// A byte stream (a TCP socket, or an upgraded HTTP connection carrying WebSocket frames) with
/// its buffers.
pub struct Connection<S = TcpStream> {
    stream: S,
    buffer: BytesMut,
    outgoing: ChunkQueue,
    /// Bytes read so far.
    received: u64,
}

impl<S> Connection<S> {
    /// Queues bytes to send; nothing is written until [`Connection::flush`].
    pub fn queue(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.outgoing.chunks.push_back(chunk);
        }
    }

    /// Bytes received and not yet consumed.
    pub fn buffer(&self) -> &[u8] {
        &self.buffer
    }

    pub fn consume(&mut self, n: usize) {
        self.buffer.advance(n);
    }

    /// Takes the first `n` buffered bytes out, as a buffer of their own (an upload's bytes).
    pub fn take(&mut self, n: usize) -> Bytes {
        self.buffer.split_to(n.min(self.buffer.len())).freeze()
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Makes room for `n` more bytes in one go, for a large body whose length is known.
    pub fn reserve(&mut self, n: usize) {
        self.buffer.reserve(n.saturating_sub(self.buffer.len()));
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            outgoing: ChunkQueue::default(),
            received: 0,
        }
    }

    /// Reads whatever the peer sends next into the buffer. Returns 0 at end of stream.
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.buffer.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.buffer).await?;
        self.received += read as u64;
        Ok(read)
    }

    /// Writes everything queued. A peer that accepts no bytes for `stall_timeout` is given up
    /// on, so a client that stops reading cannot hold its slot forever. Returns the number of
    /// bytes written.
    pub async fn flush(&mut self, stall_timeout: Duration) -> io::Result<u64> {
        let mut written = 0;
        while self.outgoing.has_remaining() {
            let n = timeout(stall_timeout, self.stream.write_buf(&mut self.outgoing))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"))??;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n as u64;
        }
        // A TLS stream may hold the last records until it is flushed (TCP's flush does
        // nothing).
        timeout(stall_timeout, self.stream.flush())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"))??;
        Ok(written)
    }

    /// Signals end of stream to the peer after a flush.
    pub async fn finish(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }

    /// Ends a connection whose peer may still be sending (more than a bare choice, or after an
    /// error answer).
    ///
    /// Closing a socket with unread input makes the kernel reset the connection, and a reset
    /// can destroy the answer before the peer reads it. So: end our side, then read and
    /// discard for a short while until the peer closes too.
    pub async fn close_gracefully(&mut self) {
        if self.finish().await.is_err() {
            return;
        }
        let drain = async {
            let mut discarded = 0;
            while discarded < LINGER_MAX_BYTES {
                self.buffer.clear();
                match self.fill().await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => discarded += n,
                }
            }
        };
        let _ = timeout(LINGER_TIMEOUT, drain).await;
    }
}

/// A queue of byte chunks that presents itself as one buffer, so that tokio can hand all of
/// them to a single vectored write.
#[derive(Default)]
struct ChunkQueue {
    chunks: VecDeque<Bytes>,
}

impl Buf for ChunkQueue {
    fn remaining(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c[..])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_queue_advances_across_chunks() {
        let mut q = ChunkQueue::default();
        q.chunks.push_back(Bytes::from_static(b"abc"));
        q.chunks.push_back(Bytes::from_static(b"defg"));
        assert_eq!(q.remaining(), 7);
        q.advance(4);
        assert_eq!(q.chunk(), b"efg");
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(q.chunks_vectored(&mut slices), 1);
        q.advance(3);
        assert!(!q.has_remaining());
    }
}
