//! The server side of a WebSocket session, on tokio-tungstenite: the check of the upgrade
//! request, and the socket the bridge takes messages from and sends answers on.
//!
//! tungstenite does the protocol (masking, fragments, control frames between fragments,
//! UTF-8 of text and close frames, close codes, answering pings and closes), and is tested
//! upstream against the Autobahn conformance suite. This module adds what the bridge needs
//! beyond it:
//! - A message limit that changes during a session: one that presented the admin token may
//!   upload pictures of many megabytes, the others may send only small requests. tungstenite
//!   fixes its limit when a session starts, so its limit is the largest any session may have,
//!   and [`Metered`], under it, stops reading once a session has sent more than its own limit
//!   since its last whole message.
//! - Answers of up to 64 MiB without a copy of the whole: tungstenite copies each frame into
//!   its write buffer, so an answer goes out as one message in frames of at most
//!   [`SEND_PIECE`] bytes, each written before the next is copied.
//! - How much a session has received, which tells the idle check a slow upload from a dead
//!   client (a browser cannot answer pings in the middle of sending a message).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::HeaderMap;
use axum::http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf, Take};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::connection::Connection;

/// Close codes this server sends (RFC 6455, 7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// A text message or close reason that is not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// The session broke a rule of the server's (a wrong admin token, say).
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The server could not answer.
pub const CLOSE_INTERNAL: u16 = 1011;

/// The largest frame an answer is sent in. tungstenite copies a frame into its write buffer
/// whole before writing it, so this bounds that buffer (a session whose browser does not
/// read holds at most about one piece there). Larger pieces mean fewer writes: with the
/// 3 MB picture at 8 sessions, 64 KiB pieces gave 2,311 MB/s and 256 KiB 2,662 MB/s.
pub const SEND_PIECE: usize = 256 * 1024;

/// Buffered frames are written once they are more than this.
const WRITE_AT: usize = 4096;

/// Bytes of frame headers a message may bring beyond its payload limit: a message sent in
/// many small fragments carries a header (up to 14 bytes) with each.
const HEADER_ALLOWANCE: u64 = 4096;

/// Why a request is not a WebSocket handshake the bridge takes (answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a WebSocket upgrade request")]
    NotUpgrade,
    #[error("unsupported WebSocket version (13 is required)")]
    Version,
    #[error("missing Sec-WebSocket-Key")]
    NoKey,
    #[error("Sec-WebSocket-Key must be 16 bytes in base64")]
    BadKey,
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request, or why it is not one.
pub fn accept_key(headers: &HeaderMap) -> Result<String, HandshakeError> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
        return Err(HandshakeError::NotUpgrade);
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(HandshakeError::Version);
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::NoKey)?;
    // RFC 6455, 4.2.1: the key is 16 bytes, base64-encoded.
    if BASE64.decode(key.as_bytes()).map(|k| k.len()) != Ok(16) {
        return Err(HandshakeError::BadKey);
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// A whole message from the browser. Pings are answered before they get here.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Binary(Bytes),
    Text,
    /// The browser closed the session (its close frame is answered by [`Socket::close`]).
    Close,
}

/// Why a session cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The browser broke the protocol; the session ends with this close code.
    #[error("{reason} (close code {code})")]
    Protocol { code: u16, reason: String },
    #[error("connection closed without a close frame")]
    Gone,
    #[error("{0}")]
    Io(io::Error),
}

impl WsError {
    fn from_tungstenite(error: Error, over_limit: bool) -> WsError {
        let protocol = |code, reason: String| WsError::Protocol { code, reason };
        match error {
            _ if over_limit => protocol(CLOSE_TOO_BIG, "message too big".to_owned()),
            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                protocol(CLOSE_TOO_BIG, "message too big".to_owned())
            }
            Error::Capacity(e) => protocol(CLOSE_TOO_BIG, e.to_string()),
            Error::ConnectionClosed
            | Error::AlreadyClosed
            | Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => WsError::Gone,
            Error::Protocol(e) => protocol(CLOSE_PROTOCOL_ERROR, e.to_string()),
            Error::Utf8(_) => protocol(CLOSE_INVALID_DATA, "text that is not UTF-8".to_owned()),
            Error::Io(e) => WsError::Io(e),
            other => WsError::Io(io::Error::other(other.to_string())),
        }
    }
}

/// One session's WebSocket.
pub struct Socket<S> {
    ws: WebSocketStream<Metered<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// A session on a connection whose upgrade has been answered. `max_message` is the
    /// session's limit until [`Socket::set_max_message`] changes it; `largest_message` is the
    /// most it may ever be set to.
    pub async fn new(stream: S, max_message: usize, largest_message: usize) -> Socket<S> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(largest_message))
            // Control frames carry up to 125 bytes whatever the limit.
            .max_frame_size(Some(largest_message.max(125)))
            // Anything more than a response head goes out at once: the buffer holds at most
            // the frame being written (and a relayed piece is not held while the next is
            // read).
            .write_buffer_size(WRITE_AT)
            .max_write_buffer_size(4 * SEND_PIECE)
            .read_buffer_size(16 * 1024);
        let metered = Metered::new(stream, max_message as u64);
        let ws = WebSocketStream::from_raw_socket(metered, Role::Server, Some(config)).await;
        Socket { ws }
    }

    /// Changes the session's message limit, from the message being received on.
    pub fn set_max_message(&mut self, max_message: usize) {
        let metered = self.ws.get_mut();
        metered.limit = max_message as u64;
        metered.start_message();
    }

    /// Bytes received so far, frame headers and all.
    pub fn received(&self) -> u64 {
        self.ws.get_ref().received
    }

    /// Bytes sent so far, frame headers and all.
    pub fn sent(&self) -> u64 {
        self.ws.get_ref().sent
    }

    /// The next message. Cancel-safe: what has arrived of a message stays with the socket.
    pub async fn next(&mut self) -> Result<Incoming, WsError> {
        loop {
            let message = match self.ws.next().await {
                None => return Err(WsError::Gone),
                Some(Err(e)) => {
                    return Err(WsError::from_tungstenite(e, self.ws.get_ref().over_limit));
                }
                Some(Ok(message)) => message,
            };
            self.ws.get_mut().start_message();
            match message {
                Message::Binary(payload) => return Ok(Incoming::Binary(payload)),
                Message::Text(_) => return Ok(Incoming::Text),
                Message::Close(_) => return Ok(Incoming::Close),
                // Answered by tungstenite; activity shows in `received`.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Sends a binary message whose bytes are `parts`, one after the other.
    pub async fn send_message(&mut self, parts: &[Bytes]) -> Result<(), WsError> {
        for (i, part) in parts.iter().enumerate() {
            self.send_part(part.clone(), i == 0, i + 1 == parts.len())
                .await?;
        }
        Ok(())
    }

    /// Sends `part` of a binary message: its start if `first`, its end if `last` (then the
    /// message is flushed), in frames of at most [`SEND_PIECE`] bytes. A message too large to
    /// hold in memory, or arriving in pieces, goes out this way one part at a time.
    pub async fn send_part(
        &mut self,
        mut part: Bytes,
        first: bool,
        last: bool,
    ) -> Result<(), WsError> {
        let mut opcode = OpCode::Data(if first { Data::Binary } else { Data::Continue });
        loop {
            let piece = part.split_to(part.len().min(SEND_PIECE));
            let fin = last && part.is_empty();
            self.ws
                .feed(Message::Frame(Frame::message(piece, opcode, fin)))
                .await
                .map_err(|e| WsError::from_tungstenite(e, false))?;
            opcode = OpCode::Data(Data::Continue);
            if part.is_empty() {
                break;
            }
        }
        if last {
            self.ws
                .flush()
                .await
                .map_err(|e| WsError::from_tungstenite(e, false))?;
        }
        Ok(())
    }

    pub async fn ping(&mut self) -> Result<(), WsError> {
        self.ws
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(|e| WsError::from_tungstenite(e, false))
    }

    /// Ends the session: a close frame with `code` (or the answer to the browser's), then the
    /// end of the connection without a reset (see [`Connection::close_gracefully`]).
    pub async fn close(mut self, code: u16, reason: &str) {
        // A close frame's reason takes at most 123 bytes (RFC 6455, 5.5.1).
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let frame = CloseFrame {
            code: code.into(),
            reason: reason[..end].into(),
        };
        // Already answered if the browser closed first: tungstenite then sends its answer.
        if self.ws.send(Message::Close(Some(frame))).await.is_err() {
            let _ = self.ws.flush().await;
        }
        let mut conn = Connection::new(self.ws.into_inner().into_inner());
        conn.close_gracefully().await;
    }
}

/// The session's connection as tungstenite reads it: it counts what arrives and lets
/// through at most the session's message limit (and frame headers) after the last whole
/// message, so unfinished input holds at most about that much memory.
struct Metered<S> {
    inner: Take<S>,
    /// Bytes a message may take: the session's limit.
    limit: u64,
    /// Bytes read so far.
    received: u64,
    /// Bytes written so far.
    sent: u64,
    /// The session sent more than its limit without finishing a message.
    over_limit: bool,
}

impl<S: AsyncRead> Metered<S> {
    fn new(stream: S, limit: u64) -> Metered<S> {
        let mut metered = Metered {
            inner: stream.take(0),
            limit,
            received: 0,
            sent: 0,
            over_limit: false,
        };
        metered.start_message();
        metered
    }

    /// A whole message was taken: the next one may take the limit again. (Bytes of the next
    /// one already read count as allowed, so a session holds at most twice the limit.)
    fn start_message(&mut self) {
        self.inner.set_limit(self.limit + HEADER_ALLOWANCE);
    }

    fn into_inner(self) -> S {
        self.inner.into_inner()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.inner.limit() == 0 {
            this.over_limit = true;
            return Poll::Ready(Err(io::Error::other("message over the session's limit")));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.received += (buf.filled().len() - before) as u64;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(this.inner.get_mut()).poll_write(cx, buf))?;
        this.sent += written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(this.inner.get_mut()).poll_write_vectored(cx, bufs))?;
        this.sent += written as u64;
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.get_ref().is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().inner.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().inner.get_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::Duration;

    use axum::http::HeaderValue;
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Control;

    use super::*;

    type Browser = WebSocketStream<DuplexStream>;

    /// A session's socket, and the other end as a browser speaks it (tungstenite as a client:
    /// masked frames).
    async fn session(max_message: usize, largest: usize) -> (Socket<DuplexStream>, Browser) {
        let (server, client) = duplex(1 << 20);
        let socket = Socket::new(server, max_message, largest).await;
        let browser = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (socket, browser)
    }

    async fn send_frame(browser: &mut Browser, opcode: OpCode, payload: &[u8], fin: bool) {
        let payload = Bytes::copy_from_slice(payload);
        let frame = match opcode {
            OpCode::Data(_) => Frame::message(payload, opcode, fin),
            OpCode::Control(_) => Frame::from_payload(
                FrameHeader {
                    opcode,
                    ..FrameHeader::default()
                },
                payload,
            ),
        };
        browser
            .send(Message::Frame(frame))
            .await
            .unwrap_or_else(|e| panic!("browser send: {e}"));
    }

    const BINARY: OpCode = OpCode::Data(Data::Binary);
    const TEXT: OpCode = OpCode::Data(Data::Text);
    const CONTINUE: OpCode = OpCode::Data(Data::Continue);
    const CLOSE: OpCode = OpCode::Control(Control::Close);
    const PING: OpCode = OpCode::Control(Control::Ping);

    /// Ends the session as the bridge does after `received`, and returns the close code the
    /// browser gets.
    async fn closed_with(socket: Socket<DuplexStream>, mut browser: Browser, code: u16) -> u16 {
        let browser_side = async {
            while let Some(Ok(message)) = browser.next().await {
                if let Message::Close(frame) = message {
                    return frame.map_or(1005, |f| u16::from(f.code));
                }
            }
            panic!("no close frame");
        };
        tokio::join!(socket.close(code, "closing"), browser_side).1
    }

    fn protocol_code(result: Result<Incoming, WsError>) -> u16 {
        match result {
            Err(WsError::Protocol { code, .. }) => code,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn accept_key_follows_the_rfc_and_refuses_keys_that_are_not_16_bytes() {
        let mut headers = HeaderMap::new();
        let set = |h: &mut HeaderMap, k, v: &'static str| {
            h.insert(k, HeaderValue::from_static(v));
        };
        set(&mut headers, UPGRADE, "websocket");
        set(&mut headers, CONNECTION, "keep-alive, Upgrade");
        set(&mut headers, SEC_WEBSOCKET_VERSION, "13");
        set(&mut headers, SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key(&headers).as_deref(),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        // 15 and 17 bytes, not base64, empty.
        for key in [
            "dGhlIHNhbXBsZSBub25j",
            "dGhlIHNhbXBsZSBub25jZSE=",
            "not a key!",
            "",
        ] {
            let mut bad = headers.clone();
            bad.insert(
                SEC_WEBSOCKET_KEY,
                HeaderValue::from_str(key).unwrap_or_else(|e| panic!("{e}")),
            );
            assert_eq!(accept_key(&bad), Err(HandshakeError::BadKey), "{key:?}");
        }
        let mut keyless = headers.clone();
        keyless.remove(SEC_WEBSOCKET_KEY);
        assert_eq!(accept_key(&keyless), Err(HandshakeError::NoKey));
        set(&mut headers, SEC_WEBSOCKET_VERSION, "8");
        assert_eq!(accept_key(&headers), Err(HandshakeError::Version));
        set(&mut headers, UPGRADE, "h2c");
        assert_eq!(accept_key(&headers), Err(HandshakeError::NotUpgrade));
    }

    #[tokio::test(start_paused = true)]
    async fn text_that_is_not_utf8_closes_with_1007() {
        let (mut socket, mut browser) = session(1024, 1024).await;
        send_frame(&mut browser, TEXT, "ok".as_bytes(), true).await;
        assert_eq!(socket.next().await.ok(), Some(Incoming::Text));
        // Invalid across two fragments, and then in one.
        send_frame(&mut browser, TEXT, &[b'a', 0xC3], false).await;
        send_frame(&mut browser, CONTINUE, &[0x28], true).await;
        assert_eq!(protocol_code(socket.next().await), CLOSE_INVALID_DATA);
        assert_eq!(closed_with(socket, browser, CLOSE_INVALID_DATA).await, 1007);
    }

    #[tokio::test(start_paused = true)]
    async fn close_frames_with_codes_or_reasons_that_may_not_be_sent_are_failed() {
        // 1005 and 1006 are for reporting only; 999 is below the range; 5000 is unassigned.
        for code in [1005u16, 1006, 999, 5000] {
            let (mut socket, mut browser) = session(1024, 1024).await;
            send_frame(&mut browser, CLOSE, &code.to_be_bytes(), true).await;
            assert_eq!(socket.next().await.ok(), Some(Incoming::Close));
            assert_eq!(
                closed_with(socket, browser, CLOSE_NORMAL).await,
                1002,
                "{code}"
            );
        }
        // A one-byte payload cannot hold a code.
        let (mut socket, mut browser) = session(1024, 1024).await;
        send_frame(&mut browser, CLOSE, &[3], true).await;
        assert_eq!(protocol_code(socket.next().await), CLOSE_PROTOCOL_ERROR);
        // A reason that is not UTF-8.
        let (mut socket, mut browser) = session(1024, 1024).await;
        send_frame(&mut browser, CLOSE, &[0x03, 0xE8, 0xFF], true).await;
        assert_eq!(protocol_code(socket.next().await), CLOSE_INVALID_DATA);
        // A valid close is answered with its own code.
        let (mut socket, mut browser) = session(1024, 1024).await;
        send_frame(&mut browser, CLOSE, &3000u16.to_be_bytes(), true).await;
        assert_eq!(socket.next().await.ok(), Some(Incoming::Close));
        assert_eq!(closed_with(socket, browser, CLOSE_NORMAL).await, 3000);
    }

    #[tokio::test(start_paused = true)]
    async fn pings_between_fragments_are_answered_and_not_counted_against_the_limit() {
        let (mut socket, mut browser) = session(10, 10).await;
        send_frame(&mut browser, BINARY, b"abcdef", false).await;
        send_frame(&mut browser, PING, &[7; 125], true).await;
        send_frame(&mut browser, CONTINUE, b"ghij", true).await;
        assert_eq!(
            socket.next().await.unwrap_or_else(|e| panic!("{e}")),
            Incoming::Binary(Bytes::from_static(b"abcdefghij"))
        );
        // The pong went out while the message was read.
        match browser.next().await {
            Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], &[7; 125]),
            other => panic!("expected a pong, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_over_the_limit_closes_with_1009_before_it_is_read_whole() {
        let (mut socket, mut browser) = session(100, 1 << 20).await;
        let browser_side = async {
            // The send fails or not, depending on when the session stops reading.
            let _ = browser
                .send(Message::Binary(Bytes::from(vec![1; 200_000])))
                .await;
            browser
        };
        let (received, browser) = tokio::join!(socket.next(), browser_side);
        assert_eq!(protocol_code(received), CLOSE_TOO_BIG);
        assert!(
            socket.received() <= 100 + HEADER_ALLOWANCE,
            "read {} bytes",
            socket.received()
        );
        assert_eq!(closed_with(socket, browser, CLOSE_TOO_BIG).await, 1009);

        // Over what tungstenite itself allows: refused from the frame's header.
        let (mut socket, mut browser) = session(100, 100).await;
        send_frame(&mut browser, BINARY, &[1; 101], true).await;
        assert_eq!(protocol_code(socket.next().await), CLOSE_TOO_BIG);
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_holds_for_the_message_being_received() {
        let (mut socket, mut browser) = session(100, 1 << 20).await;
        send_frame(&mut browser, BINARY, b"auth", true).await;
        assert!(matches!(socket.next().await, Ok(Incoming::Binary(_))));
        // Sent at once, before the session has raised its limit.
        let upload = vec![2; 300_000];
        let browser_side = async {
            send_frame(&mut browser, BINARY, &upload, true).await;
        };
        let session_side = async {
            socket.set_max_message(400_000);
            socket.next().await
        };
        let (received, ()) = tokio::join!(session_side, browser_side);
        assert_eq!(received.ok(), Some(Incoming::Binary(Bytes::from(upload))));
    }

    #[tokio::test(start_paused = true)]
    async fn unmasked_frames_are_failed_with_1002() {
        let (server, client) = duplex(1 << 16);
        let mut socket = Socket::new(server, 1024, 1024).await;
        // A peer that frames as a server does: unmasked.
        let mut unmasked = WebSocketStream::from_raw_socket(client, Role::Server, None).await;
        send_frame(&mut unmasked, BINARY, b"hello", true).await;
        assert_eq!(protocol_code(socket.next().await), CLOSE_PROTOCOL_ERROR);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partly_received_message_counts_as_activity() {
        let (mut socket, mut browser) = session(1 << 20, 1 << 20).await;
        send_frame(&mut browser, BINARY, &[5; 1000], false).await;
        tokio::select! {
            received = socket.next() => panic!("message not finished yet: {received:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        assert!(socket.received() > 1000);
    }

    /// The frames that make up what `send` writes: (opcode, fin, payload).
    async fn frames_sent(
        send: impl AsyncFnOnce(&mut Socket<DuplexStream>),
    ) -> Vec<(OpCode, bool, Vec<u8>)> {
        let (server, mut client) = duplex(1 << 16);
        let mut socket = Socket::new(server, 1024, 1024).await;
        let mut wire = Vec::new();
        let writer = async {
            send(&mut socket).await;
            drop(socket);
        };
        let reader = client.read_to_end(&mut wire);
        let ((), read) = tokio::join!(writer, reader);
        read.unwrap_or_else(|e| panic!("{e}"));
        let mut cursor = Cursor::new(&wire[..]);
        let mut frames = Vec::new();
        while (cursor.position() as usize) < wire.len() {
            let (header, len) = FrameHeader::parse(&mut cursor)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("cut frame header"));
            assert_eq!(header.mask, None, "a server's frames are not masked");
            let start = cursor.position() as usize;
            let end = start + len as usize;
            frames.push((header.opcode, header.is_final, wire[start..end].to_vec()));
            cursor.set_position(end as u64);
        }
        frames
    }

    /// Checks that `frames` are one binary message of `expected`, none over [`SEND_PIECE`].
    fn assert_one_message(frames: &[(OpCode, bool, Vec<u8>)], expected: &[u8]) {
        let mut joined = Vec::new();
        for (i, (opcode, fin, payload)) in frames.iter().enumerate() {
            let first = if i == 0 { BINARY } else { CONTINUE };
            assert_eq!((*opcode, *fin), (first, i + 1 == frames.len()), "frame {i}");
            assert!(
                payload.len() <= SEND_PIECE,
                "frame {i}: {} bytes",
                payload.len()
            );
            joined.extend_from_slice(payload);
        }
        assert!(joined == expected, "the message's bytes differ");
    }

    #[tokio::test]
    async fn answers_go_out_as_one_message_in_pieces() {
        let head = Bytes::from_static(b"response head");
        let body = Bytes::from((0..600_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let expected = [&head[..], &body[..]].concat();
        let parts = [head.clone(), body.clone()];
        let frames = frames_sent(async |socket| {
            let sent = socket.send_message(&parts).await;
            sent.unwrap_or_else(|e| panic!("{e}"));
        })
        .await;
        assert_one_message(&frames, &expected);
        assert_eq!(frames.len(), 1 + body.len().div_ceil(SEND_PIECE));

        // As a relay sends a response that arrives in pieces.
        let frames = frames_sent(async |socket| {
            for (part, first, last) in [(&head, true, false), (&body, false, true)] {
                let sent = socket.send_part(part.clone(), first, last).await;
                sent.unwrap_or_else(|e| panic!("{e}"));
            }
        })
        .await;
        assert_one_message(&frames, &expected);

        // And a browser reads it as one message.
        let (mut socket, mut browser) = session(1024, 1024).await;
        let (sent, received) = tokio::join!(socket.send_message(&parts), browser.next());
        sent.unwrap_or_else(|e| panic!("{e}"));
        match received {
            Some(Ok(Message::Binary(message))) => assert!(message[..] == expected[..]),
            other => panic!("expected one binary message, got {other:?}"),
        }
    }
}
