//! The client side of WebSocket (RFC 6455), reduced to what a load generator needs: masked
//! binary frames out, and the payloads of the server's binary frames read as one byte stream.
//!
//! A general WebSocket library reads into its own buffer, then copies each message out; the
//! caller copies it again into the stream it cuts responses from. At tens of thousands of
//! 100 KB pictures a second, those copies made the load generator cost as much CPU as the
//! server it measures. Here the socket is read straight into the caller's buffer and the frame
//! headers are taken out in place: when a header sits at the start of what is unread, dropping
//! it is a pointer move; otherwise the payload after it moves down by a few bytes' distance,
//! each byte at most once per read.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::ws_frame::{
    FrameHead, MAX_HEAD, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
    parse_head, put_client_frame,
};
use anyhow::{Context, anyhow, bail, ensure};
use bytes::{Buf, BytesMut};
use picture_client::Link;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The largest handshake response accepted.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// Where the WebSocket endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The `Host` header: the URL's authority.
    pub host: String,
    /// The request target: the URL's path and query.
    pub path: String,
}

pub struct WsClient {
    socket: Box<dyn Link>,
    /// Frames queued to go out with the next flush.
    out: Vec<u8>,
    unframer: Unframer,
    /// `unframer.pending` holds bytes that came with the handshake response, not yet parsed.
    handshake_tail: bool,
    masks: MaskSource,
}

impl WsClient {
    /// Completes the opening handshake on a connected socket, asking for `protocol` as the
    /// subprotocol when given.
    pub async fn handshake(
        mut socket: Box<dyn Link>,
        endpoint: &Endpoint,
        protocol: Option<&str>,
    ) -> anyhow::Result<WsClient> {
        let key = generate_key();
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            endpoint.path, endpoint.host
        );
        if let Some(protocol) = protocol {
            ensure!(
                protocol.bytes().all(|b| b.is_ascii_graphic()),
                "invalid WebSocket subprotocol {protocol:?}"
            );
            request.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).await?;
        // TLS holds the last records until flushed.
        socket.flush().await?;

        let mut response = Vec::with_capacity(1024);
        let head_len = loop {
            ensure!(
                response.len() < MAX_HANDSHAKE,
                "the handshake response is over {MAX_HANDSHAKE} bytes"
            );
            if socket.read_buf(&mut response).await? == 0 {
                bail!("the server closed the connection during the handshake");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) = parsed
                .parse(&response)
                .context("invalid handshake response")?
            {
                check_upgrade(&parsed, &key)?;
                break len;
            }
        };
        let mut unframer = Unframer::default();
        // Frames the server sent right after its response arrived with it.
        unframer.pending.extend_from_slice(&response[head_len..]);
        Ok(WsClient {
            socket,
            out: Vec::new(),
            unframer,
            handshake_tail: true,
            masks: MaskSource::new(),
        })
    }

    /// Queues `payload` as one binary message; it leaves with the next [`WsClient::flush`].
    pub fn queue(&mut self, payload: &[u8]) {
        put_client_frame(&mut self.out, true, OP_BINARY, payload, self.masks.next());
    }

    /// Sends everything queued, pongs included.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        for pong in self.unframer.pings.drain(..) {
            put_client_frame(&mut self.out, true, OP_PONG, &pong, self.masks.next());
        }
        self.socket.write_all(&self.out).await?;
        self.socket.flush().await?;
        self.out.clear();
        Ok(())
    }

    /// Appends to `buf` the payload bytes that arrive next, having made room for `room` of
    /// them. Returns how many were appended; 0 means the session ended.
    pub async fn read(&mut self, buf: &mut BytesMut, room: usize) -> anyhow::Result<usize> {
        loop {
            if self.unframer.closed {
                return Ok(0);
            }
            let start = buf.len();
            // The start of a frame left over from the last read goes back in front of what is
            // read now, so that frames are always parsed from one slice.
            buf.reserve(self.unframer.pending.len() + room + MAX_HEAD);
            buf.extend_from_slice(&self.unframer.pending);
            self.unframer.pending.clear();
            // Bytes that came with the handshake response may hold whole frames already.
            let handshake_tail = std::mem::take(&mut self.handshake_tail) && buf.len() > start;
            if !handshake_tail && self.socket.read_buf(buf).await? == 0 {
                if buf.len() > start || self.unframer.payload_left > 0 {
                    bail!("the server closed the connection in the middle of a frame");
                }
                return Ok(0);
            }
            let added = self.unframer.unframe(buf, start)?;
            if added > 0 || self.unframer.closed {
                return Ok(added);
            }
            if !self.unframer.pings.is_empty() {
                self.flush().await?;
            }
        }
    }
}

/// Checks that the response accepts the upgrade that `key` asked for.
fn check_upgrade(response: &httparse::Response, key: &str) -> anyhow::Result<()> {
    let code = response.code.unwrap_or(0);
    ensure!(
        code == 101,
        "the server answered {code} {} instead of switching to WebSocket",
        response.reason.unwrap_or("")
    );
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .ok_or_else(|| anyhow!("the handshake response has no Sec-WebSocket-Accept"))?;
    ensure!(
        accept.value == derive_accept_key(key.as_bytes()).as_bytes(),
        "the handshake response has a wrong Sec-WebSocket-Accept"
    );
    Ok(())
}

/// Parses the head at the start of `bytes`, or `None` if it has not arrived whole, and checks
/// that a server may send it.
fn server_head(bytes: &[u8]) -> anyhow::Result<Option<FrameHead>> {
    let Some(head) = parse_head(bytes) else {
        return Ok(None);
    };
    ensure!(head.reserved == 0, "the server set reserved frame bits");
    ensure!(head.mask.is_none(), "the server masked a frame");
    ensure!(
        !head.is_control() || head.is_valid_control(),
        "the server sent a fragmented or oversized control frame"
    );
    Ok(Some(head))
}

/// Takes the frame headers and control frames out of what the socket delivered, leaving the
/// data frames' payloads as one contiguous stream.
#[derive(Debug, Default)]
struct Unframer {
    /// Payload bytes of the current data frame still to come.
    payload_left: u64,
    /// The start of a frame that has not arrived whole, if that is where the last read ended:
    /// at most a header, or a header and a control frame's payload.
    pending: Vec<u8>,
    /// Payloads of pings to answer.
    pings: Vec<Vec<u8>>,
    /// The server sent a close frame.
    closed: bool,
}

impl Unframer {
    /// Turns `buf[start..]`, raw bytes from the socket, into payload bytes in place, and
    /// returns how many remain.
    fn unframe(&mut self, buf: &mut BytesMut, start: usize) -> anyhow::Result<usize> {
        let mut read = start;
        let mut write = start;
        while read < buf.len() && !self.closed {
            if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - read);
                if write != read {
                    buf.copy_within(read..read + n, write);
                }
                read += n;
                write += n;
                self.payload_left -= n as u64;
                continue;
            }
            let Some(head) = server_head(&buf[read..])? else {
                self.pending.extend_from_slice(&buf[read..]);
                break;
            };
            match head.opcode {
                OP_BINARY | OP_CONTINUATION => {
                    self.payload_left = head.payload_len;
                    let after = buf.len() - read - head.len;
                    if write == read && write < after {
                        // Cheaper to move what comes before the head up over it.
                        buf.copy_within(..write, head.len);
                        buf.advance(head.len);
                    } else {
                        read += head.len;
                    }
                }
                OP_TEXT => bail!("the server sent a text message instead of a binary one"),
                OP_CLOSE => self.closed = true,
                OP_PING | OP_PONG => {
                    // Short: checked by server_head.
                    let end = read + head.len + head.payload_len as usize;
                    if end > buf.len() {
                        self.pending.extend_from_slice(&buf[read..]);
                        break;
                    }
                    if head.opcode == OP_PING {
                        self.pings.push(buf[read + head.len..end].to_vec());
                    }
                    read = end;
                }
                other => bail!("the server sent a frame with unknown opcode {other:#x}"),
            }
        }
        buf.truncate(write);
        Ok(write - start)
    }
}

/// Masking keys for outgoing frames (xorshift64*, seeded per connection by the standard
/// library's random hasher keys). RFC 6455 wants them unpredictable so that a hostile page
/// cannot steer the bytes an intermediary sees; for a load generator, varied is what matters.
struct MaskSource(u64);

impl MaskSource {
    fn new() -> MaskSource {
        MaskSource(RandomState::new().hash_one(0u64) | 1)
    }

    fn next(&mut self) -> [u8; 4] {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let [a, b, c, d, ..] = bits.to_be_bytes();
        [a, b, c, d]
    }
}

#[cfg(test)]
mod tests {
    use crate::ws_frame::put_head;

    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        put_head(&mut frame, true, opcode, payload.len(), None);
        frame.extend_from_slice(payload);
        frame
    }

    /// Feeds `wire` in reads of the given sizes and returns the payload stream and the pings.
    fn unframe_in_reads(wire: &[u8], prefix: &[u8], sizes: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut unframer = Unframer::default();
        let mut buf = BytesMut::from(prefix);
        let mut rest = wire;
        let mut sizes = sizes.iter().cycle();
        while !rest.is_empty() && !unframer.closed {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            let start = buf.len();
            buf.extend_from_slice(&unframer.pending);
            unframer.pending.clear();
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            unframer
                .unframe(&mut buf, start)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(unframer.pending.is_empty(), "bytes left over");
        (buf.to_vec(), unframer.pings)
    }

    #[test]
    fn payloads_become_one_stream_however_the_reads_fall() {
        let short = b"short".to_vec();
        let medium: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let long: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let mut wire = Vec::new();
        wire.extend(server_frame(OP_BINARY, &short));
        wire.extend(server_frame(OP_PING, b"are you there"));
        wire.extend(server_frame(OP_BINARY, &medium));
        wire.extend(server_frame(OP_CONTINUATION, &[]));
        wire.extend(server_frame(OP_PONG, b""));
        wire.extend(server_frame(OP_BINARY, &long));
        let expected = [b"kept".as_slice(), &short, &medium, &long].concat();
        for sizes in [
            &[usize::MAX][..],
            &[1],
            &[2, 3],
            &[7, 64 * 1024],
            &[300, 1],
            &[9, 10, 11],
        ] {
            let (stream, pings) = unframe_in_reads(&wire, b"kept", sizes);
            assert!(stream == expected, "reads of {sizes:?}");
            assert_eq!(pings, [b"are you there".to_vec()], "reads of {sizes:?}");
        }
    }

    #[test]
    fn a_close_frame_ends_the_stream() {
        let mut wire = server_frame(OP_BINARY, b"last");
        wire.extend(server_frame(OP_CLOSE, &1000u16.to_be_bytes()));
        wire.extend(server_frame(OP_BINARY, b"ignored"));
        let (stream, _) = unframe_in_reads(&wire, b"", &[usize::MAX]);
        assert_eq!(stream, b"last");
    }

    #[test]
    fn frames_a_server_must_not_send_are_refused() {
        let masked = [0x82, 0x81, 1, 2, 3, 4, 5];
        let reserved = [0xC2, 0x00];
        let text = server_frame(OP_TEXT, b"hi");
        let long_ping = server_frame(OP_PING, &[0; 126]);
        let fragmented_ping = [0x09, 0x00];
        let unknown = [0x83, 0x00];
        for wire in [
            &masked[..],
            &reserved,
            &text,
            &long_ping,
            &fragmented_ping,
            &unknown,
        ] {
            let mut buf = BytesMut::from(wire);
            assert!(
                Unframer::default().unframe(&mut buf, 0).is_err(),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn masks_vary() {
        let mut masks = MaskSource::new();
        assert_ne!(masks.next(), masks.next());
    }
}
