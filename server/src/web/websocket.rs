//! The server side of WebSocket (RFC 6455), reduced to what the bridge needs.
//!
//! The bridge sends pictures of up to several megabytes. A general WebSocket library copies
//! every outgoing message into its own write buffer; here a frame goes out as a few header
//! bytes plus the picture's shared buffer in one vectored write, so the bridge copies nothing
//! that the kernel does not. Incoming messages are tiny requests, parsed from the
//! connection's read buffer.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::ws_frame::{
    MAX_CONTROL_PAYLOAD, MAX_HEAD, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
    apply_mask, parse_head, put_head,
};
use crate::connection::Connection;

/// Close codes this server sends.
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// The session broke a rule of the server's (a wrong admin token, say).
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The `Sec-WebSocket-Accept` value for a valid upgrade request, or why it is not one.
pub fn accept_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
        return Err("not a WebSocket upgrade request");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err("unsupported WebSocket version (13 is required)");
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("missing Sec-WebSocket-Key")?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Binary(Vec<u8>),
    Text,
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// Why a session cannot go on reading.
#[derive(Debug)]
pub enum WsError {
    /// The peer broke the protocol; the session ends with this close code.
    Protocol(u16, &'static str),
    /// The peer closed the connection without a close frame.
    Gone,
    Io(std::io::Error),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(code, reason) => write!(f, "{reason} (close code {code})"),
            WsError::Gone => f.write_str("connection closed without a close frame"),
            WsError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// One frame, unmasked.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Decodes the first frame in `buf`: `Ok(None)` while incomplete, else the frame and the bytes
/// it used. A frame announcing more than `max_payload` is refused from its header.
fn parse_frame(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, WsError> {
    let Some(head) = parse_head(buf) else {
        return Ok(None);
    };
    let refuse = |reason| Err(WsError::Protocol(CLOSE_PROTOCOL_ERROR, reason));
    if head.reserved != 0 {
        return refuse("reserved bits set");
    }
    if !matches!(
        head.opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return refuse("unknown opcode");
    }
    let Some(mask) = head.mask else {
        return refuse("client frames must be masked");
    };
    if head.is_control() && !head.is_valid_control() {
        return refuse("invalid control frame");
    }
    if head.payload_len > max_payload as u64 {
        return Err(WsError::Protocol(CLOSE_TOO_BIG, "message too big"));
    }
    // Bounded by max_payload above.
    let end = head.len + head.payload_len as usize;
    let Some(masked) = buf.get(head.len..end) else {
        return Ok(None);
    };
    let mut payload = masked.to_vec();
    apply_mask(&mut payload, mask);
    Ok(Some((
        Frame {
            fin: head.fin,
            opcode: head.opcode,
            payload,
        },
        end,
    )))
}

/// Reads whole messages, joining fragmented ones.
#[derive(Debug, Default)]
pub struct Reader {
    /// Opcode and payload so far of a fragmented message.
    partial: Option<(u8, Vec<u8>)>,
}

impl Reader {
    /// The next message. Cancel-safe: bytes and fragments already received stay in `conn` and
    /// `self`.
    pub async fn next<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Connection<S>,
        max_message: usize,
    ) -> Result<Incoming, WsError> {
        loop {
            let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len());
            let Some((frame, used)) =
                parse_frame(conn.buffer(), max_message.saturating_sub(so_far))?
            else {
                if conn.fill().await.map_err(WsError::Io)? == 0 {
                    return Err(WsError::Gone);
                }
                continue;
            };
            conn.consume(used);
            if let Some(message) = self.assemble(frame)? {
                return Ok(message);
            }
        }
    }

    /// Bytes of a fragmented message received so far.
    pub fn pending_len(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, p)| p.len())
    }

    fn assemble(&mut self, frame: Frame) -> Result<Option<Incoming>, WsError> {
        let (opcode, payload) = match (frame.opcode, self.partial.take()) {
            (OP_CLOSE, partial) => return self.keep(partial, Incoming::Close),
            (OP_PING, partial) => return self.keep(partial, Incoming::Ping(frame.payload)),
            (OP_PONG, partial) => return self.keep(partial, Incoming::Pong),
            (OP_CONTINUATION, Some((opcode, mut payload))) => {
                payload.extend_from_slice(&frame.payload);
                (opcode, payload)
            }
            (OP_CONTINUATION, None) => {
                return Err(WsError::Protocol(
                    CLOSE_PROTOCOL_ERROR,
                    "unexpected continuation",
                ));
            }
            (_, Some(_)) => {
                return Err(WsError::Protocol(
                    CLOSE_PROTOCOL_ERROR,
                    "expected a continuation",
                ));
            }
            (opcode, None) => (opcode, frame.payload),
        };
        if !frame.fin {
            self.partial = Some((opcode, payload));
            return Ok(None);
        }
        Ok(Some(match opcode {
            OP_BINARY => Incoming::Binary(payload),
            _ => Incoming::Text,
        }))
    }

    /// Control frames may arrive between the fragments of a message: keep those.
    fn keep(
        &mut self,
        partial: Option<(u8, Vec<u8>)>,
        message: Incoming,
    ) -> Result<Option<Incoming>, WsError> {
        self.partial = partial;
        Ok(Some(message))
    }
}

/// The header of one unfragmented, unmasked frame of `len` payload bytes.
fn header(opcode: u8, len: usize) -> Bytes {
    let mut header = Vec::with_capacity(MAX_HEAD);
    put_head(&mut header, true, opcode, len, None);
    Bytes::from(header)
}

/// Queues one frame: its header, then the payload's own buffer.
fn queue_frame<S>(conn: &mut Connection<S>, opcode: u8, payload: Bytes) {
    conn.queue(header(opcode, payload.len()));
    conn.queue(payload);
}

/// Queues the header of a binary message of `len` bytes, whose payload the caller queues
/// after it, in one piece or several.
pub fn queue_binary_header<S>(conn: &mut Connection<S>, len: usize) {
    conn.queue(header(OP_BINARY, len));
}

pub fn queue_ping<S>(conn: &mut Connection<S>) {
    queue_frame(conn, OP_PING, Bytes::new());
}

pub fn queue_pong<S>(conn: &mut Connection<S>, payload: Vec<u8>) {
    queue_frame(conn, OP_PONG, Bytes::from(payload));
}

pub fn queue_close<S>(conn: &mut Connection<S>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    let reason = &reason.as_bytes()[..reason.len().min(MAX_CONTROL_PAYLOAD - 2)];
    payload.extend_from_slice(reason);
    queue_frame(conn, OP_CLOSE, Bytes::from(payload));
}

#[cfg(test)]
mod tests {
    use super::super::ws_frame::put_client_frame;
    use super::*;

    /// A client frame: masked, as browsers send them.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_client_frame(&mut out, fin, opcode, payload, [0x12, 0x34, 0x56, 0x78]);
        out
    }

    fn parsed(buf: &[u8]) -> (Frame, usize) {
        match parse_frame(buf, 1 << 20) {
            Ok(Some(f)) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn unmasks_frames_of_every_length_form() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = client_frame(true, OP_BINARY, &payload);
            let (frame, used) = parsed(&bytes);
            assert_eq!(used, bytes.len());
            assert_eq!(frame.payload, payload);
            for cut in [0, 1, 3, bytes.len() - 1] {
                assert!(matches!(parse_frame(&bytes[..cut], 1 << 20), Ok(None)));
            }
        }
    }

    #[test]
    fn rejects_what_clients_must_not_send() {
        let mut unmasked = client_frame(true, OP_BINARY, b"x");
        unmasked[1] &= 0x7F;
        let mut reserved = client_frame(true, OP_BINARY, b"x");
        reserved[0] |= 0x40;
        let bad = [
            unmasked,
            reserved,
            client_frame(true, 0x3, b"x"),
            client_frame(false, OP_PING, b"x"),
            client_frame(true, OP_PING, &[0; 126]),
        ];
        for bytes in bad {
            assert!(matches!(
                parse_frame(&bytes, 1 << 20),
                Err(WsError::Protocol(CLOSE_PROTOCOL_ERROR, _))
            ));
        }
        // Refused from its head alone, before any of the payload has arrived.
        let big = client_frame(true, OP_BINARY, &[0; 200]);
        assert!(matches!(
            parse_frame(&big[..8], 100),
            Err(WsError::Protocol(CLOSE_TOO_BIG, _))
        ));
    }

    #[test]
    fn joins_fragments_around_control_frames() {
        let mut reader = Reader::default();
        let first = parsed(&client_frame(false, OP_BINARY, b"ab")).0;
        let ping = parsed(&client_frame(true, OP_PING, b"p")).0;
        let last = parsed(&client_frame(true, OP_CONTINUATION, b"cd")).0;
        assert!(matches!(reader.assemble(first), Ok(None)));
        assert!(matches!(reader.assemble(ping), Ok(Some(Incoming::Ping(p))) if p == b"p"));
        assert!(matches!(
            reader.assemble(last),
            Ok(Some(Incoming::Binary(p))) if p == b"abcd"
        ));
        let stray = parsed(&client_frame(true, OP_CONTINUATION, b"x")).0;
        assert!(reader.assemble(stray).is_err());
    }

    #[test]
    fn accept_key_follows_the_rfc_example() {
        let mut headers = HeaderMap::new();
        let set = |h: &mut HeaderMap, k, v: &'static str| {
            h.insert(k, axum::http::HeaderValue::from_static(v));
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
        set(&mut headers, SEC_WEBSOCKET_VERSION, "8");
        assert!(accept_key(&headers).is_err());
    }

    proptest::proptest! {
        #[test]
        fn client_frames_parse_whole_and_wait_when_cut(
            fin: bool,
            opcode in 0u8..3,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            mask: [u8; 4],
            cut: proptest::sample::Index,
        ) {
            let mut bytes = Vec::new();
            put_client_frame(&mut bytes, fin, opcode, &payload, mask);
            let whole = parse_frame(&bytes, 1 << 20);
            let expected = Frame { fin, opcode, payload: payload.clone() };
            proptest::prop_assert!(matches!(whole, Ok(Some((ref f, n))) if *f == expected && n == bytes.len()));
            let cut = cut.index(bytes.len());
            proptest::prop_assert!(matches!(parse_frame(&bytes[..cut], 1 << 20), Ok(None)));
        }

        #[test]
        fn any_bytes_get_a_frame_an_error_or_a_wait(bytes: Vec<u8>, max in 0usize..300) {
            if let Ok(Some((frame, used))) = parse_frame(&bytes, max) {
                proptest::prop_assert!(used <= bytes.len());
                proptest::prop_assert!(frame.payload.len() <= max);
            }
        }
    }
}
