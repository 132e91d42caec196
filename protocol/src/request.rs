//! Requests: a fixed 10-byte header followed by a payload whose layout depends on the kind.
//!
//! ```text
//! 0      1        2     3      4          8            10
//! +------+--------+-----+------+----------+------------+---------+
//! | 0xFB | version| kind| flags| id (u32) | len (u16)  | payload |
//! +------+--------+-----+------+----------+------------+---------+
//! ```

use std::num::NonZeroU32;

use crate::error::check_len;
use crate::wire::{Reader, put_short_str};
use crate::{
    DecodeError, EncodeError, MAGIC, MAX_NAME_LEN, MAX_REQUEST_PAYLOAD, Selector, VERSION,
};

/// Length of the fixed part of every request.
pub const REQUEST_HEADER_LEN: usize = 10;

const SELECTOR_NUMBER: u8 = 1;
const SELECTOR_NAME: u8 = 2;

/// What a request asks for. Responses echo it, so a reader of a stream of frames knows how to
/// interpret each body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    List = 1,
    Get = 2,
    Ping = 3,
}

impl Kind {
    pub fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::List),
            2 => Some(Kind::Get),
            3 => Some(Kind::Ping),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::List => "LIST",
            Kind::Get => "GET",
            Kind::Ping => "PING",
        }
    }
}

/// A picture format a client may ask a variant to be encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg = 1,
    Png = 2,
    WebP = 3,
}

impl Format {
    fn from_code(code: u8) -> Result<Option<Format>, DecodeError> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(Format::Jpeg)),
            2 => Ok(Some(Format::Png)),
            3 => Ok(Some(Format::WebP)),
            other => Err(DecodeError::UnknownFormat(other)),
        }
    }
}

/// How a client wants a picture transformed. The default asks for the picture as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    pub max_width: Option<NonZeroU32>,
    pub max_height: Option<NonZeroU32>,
    pub format: Option<Format>,
}

impl Variant {
    /// Whether this asks for the picture exactly as stored.
    pub fn is_original(&self) -> bool {
        *self == Variant::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRequest {
    pub selector: Selector,
    pub variant: Variant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The catalog: every picture's number, name, title, type, size and hash.
    List,
    /// One picture.
    Get(GetRequest),
    /// Liveness check; answered with an empty body.
    Ping,
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Command::List => Kind::List,
            Command::Get(_) => Kind::Get,
            Command::Ping => Kind::Ping,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Chosen by the client, echoed in the response.
    pub id: u32,
    pub command: Command,
}

impl Request {
    /// Encodes the whole frame. Fails only for selectors no server would accept.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut payload = Vec::new();
        if let Command::Get(get) = &self.command {
            encode_get(get, &mut payload)?;
        }
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + payload.len());
        out.extend_from_slice(&[MAGIC, VERSION, self.command.kind() as u8, 0]);
        out.extend_from_slice(&self.id.to_be_bytes());
        // A GET payload is at most 1 + 1 + MAX_NAME_LEN + 9 bytes, far below u16::MAX.
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

fn encode_get(get: &GetRequest, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match &get.selector {
        Selector::Number(0) => return Err(EncodeError::ZeroNumber),
        Selector::Number(n) => {
            out.push(SELECTOR_NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Selector::Name(name) => {
            if name.is_empty() {
                return Err(EncodeError::EmptyName);
            }
            check_len("picture name", name.len(), MAX_NAME_LEN)?;
            out.push(SELECTOR_NAME);
            put_short_str(out, "picture name", name)?;
        }
    }
    let Variant {
        max_width,
        max_height,
        format,
    } = get.variant;
    out.extend_from_slice(&max_width.map_or(0, NonZeroU32::get).to_be_bytes());
    out.extend_from_slice(&max_height.map_or(0, NonZeroU32::get).to_be_bytes());
    out.push(format.map_or(0, |f| f as u8));
    Ok(())
}

/// A request that cannot be served, with as much of its header as could be trusted so that the
/// error answer can still echo the id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RequestError {
    /// The request's id, or 0 when the header itself was unreadable.
    pub id: u32,
    pub kind: Option<Kind>,
    pub error: DecodeError,
}

/// Decodes the first request in `buf`.
///
/// Returns `Ok(None)` while the frame is incomplete, and `Ok(Some((request, consumed)))` once it
/// is whole. A header announcing more than `max_payload` bytes is refused as soon as the header
/// arrives, so a peer can never make the reader buffer more than that.
pub fn decode_request(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(Request, usize)>, RequestError> {
    let Some(header) = buf.get(..REQUEST_HEADER_LEN) else {
        // Reject a wrong first byte at once instead of waiting for ten bytes of garbage.
        return match buf.first() {
            Some(&b) if b != MAGIC => Err(untrusted(DecodeError::BadMagic(b))),
            _ => Ok(None),
        };
    };
    let mut r = Reader::new(header, "request header");
    let [magic, version, kind_code, flags] = r.array()?;
    let id = r.u32()?;
    let len = usize::from(r.u16()?);
    if magic != MAGIC {
        return Err(untrusted(DecodeError::BadMagic(magic)));
    }
    if version != VERSION {
        return Err(untrusted(DecodeError::UnsupportedVersion(version)));
    }
    let fail = |kind, error| RequestError { id, kind, error };
    let kind = Kind::from_code(kind_code);
    if flags != 0 {
        return Err(fail(kind, DecodeError::ReservedFlags(flags)));
    }
    let max_payload = max_payload.min(MAX_REQUEST_PAYLOAD);
    if len > max_payload {
        let error = DecodeError::TooLarge {
            what: "request payload",
            len: len as u64,
            max: max_payload as u64,
        };
        return Err(fail(kind, error));
    }
    let Some(kind) = kind else {
        return Err(fail(None, DecodeError::UnknownKind(kind_code)));
    };
    let Some(payload) = buf.get(REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + len) else {
        return Ok(None);
    };
    let command = decode_payload(kind, payload).map_err(|error| fail(Some(kind), error))?;
    Ok(Some((Request { id, command }, REQUEST_HEADER_LEN + len)))
}

/// The id and kind in a request header, read without checking the rest of the frame: enough to
/// address an answer to a request that will not be served (a *busy* answer, say).
pub fn peek_request_header(buf: &[u8]) -> Option<(u32, Option<Kind>)> {
    match buf.get(..8)? {
        &[MAGIC, _, kind, _, a, b, c, d] => {
            Some((u32::from_be_bytes([a, b, c, d]), Kind::from_code(kind)))
        }
        _ => None,
    }
}

fn untrusted(error: DecodeError) -> RequestError {
    RequestError {
        id: 0,
        kind: None,
        error,
    }
}

impl From<DecodeError> for RequestError {
    fn from(error: DecodeError) -> Self {
        untrusted(error)
    }
}

fn decode_payload(kind: Kind, payload: &[u8]) -> Result<Command, DecodeError> {
    let mut r = Reader::new(payload, "GET payload");
    let command = match kind {
        Kind::List | Kind::Ping if !r.is_empty() => {
            return Err(DecodeError::UnexpectedPayload(kind.name()));
        }
        Kind::List => Command::List,
        Kind::Ping => Command::Ping,
        Kind::Get => Command::Get(decode_get(&mut r)?),
    };
    r.finish()?;
    Ok(command)
}

fn decode_get(r: &mut Reader<'_>) -> Result<GetRequest, DecodeError> {
    let selector = match r.u8()? {
        SELECTOR_NUMBER => match r.u32()? {
            0 => return Err(DecodeError::ZeroNumber),
            n => Selector::Number(n),
        },
        SELECTOR_NAME => {
            let name = r.short_str("picture name")?;
            if name.is_empty() {
                return Err(DecodeError::EmptyName);
            }
            if name.len() > MAX_NAME_LEN {
                return Err(DecodeError::TooLarge {
                    what: "picture name",
                    len: name.len() as u64,
                    max: MAX_NAME_LEN as u64,
                });
            }
            Selector::Name(name.to_owned())
        }
        other => return Err(DecodeError::UnknownSelector(other)),
    };
    let variant = Variant {
        max_width: NonZeroU32::new(r.u32()?),
        max_height: NonZeroU32::new(r.u32()?),
        format: Format::from_code(r.u8()?)?,
    };
    Ok(GetRequest { selector, variant })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(selector: Selector) -> Request {
        Request {
            id: 7,
            command: Command::Get(GetRequest {
                selector,
                variant: Variant::default(),
            }),
        }
    }

    fn encoded(request: &Request) -> Vec<u8> {
        request.encode().unwrap_or_else(|e| panic!("encode: {e}"))
    }

    fn decode_err(buf: &[u8]) -> RequestError {
        match decode_request(buf, MAX_REQUEST_PAYLOAD) {
            Err(e) => e,
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn get_by_number_layout() {
        let bytes = encoded(&get(Selector::Number(2)));
        assert_eq!(
            bytes,
            [
                0xFB, 1, 2, 0, 0, 0, 0, 7, 0, 14, // header
                1, 0, 0, 0, 2, // selector: number 2
                0, 0, 0, 0, 0, 0, 0, 0, 0, // variant: as stored
            ]
        );
    }

    #[test]
    fn list_and_ping_layout() {
        let list = encoded(&Request {
            id: 1,
            command: Command::List,
        });
        assert_eq!(list, [0xFB, 1, 1, 0, 0, 0, 0, 1, 0, 0]);
        let ping = encoded(&Request {
            id: 0x01020304,
            command: Command::Ping,
        });
        assert_eq!(ping, [0xFB, 1, 3, 0, 1, 2, 3, 4, 0, 0]);
    }

    #[test]
    fn incomplete_frames_wait_for_more() {
        let bytes = encoded(&get(Selector::Name("house".into())));
        for cut in 0..bytes.len() {
            assert_eq!(decode_request(&bytes[..cut], MAX_REQUEST_PAYLOAD), Ok(None));
        }
    }

    #[test]
    fn decodes_only_the_first_of_several_frames() {
        let mut bytes = encoded(&get(Selector::Name("dog".into())));
        let first_len = bytes.len();
        bytes.extend(encoded(&Request {
            id: 9,
            command: Command::Ping,
        }));
        let (req, used) = decode_request(&bytes, MAX_REQUEST_PAYLOAD)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("first frame should decode"));
        assert_eq!(req, get(Selector::Name("dog".into())));
        assert_eq!(used, first_len);
    }

    #[test]
    fn peeks_id_and_kind_of_a_partial_request() {
        let bytes = encoded(&get(Selector::Number(3)));
        assert_eq!(peek_request_header(&bytes[..8]), Some((7, Some(Kind::Get))));
        assert_eq!(peek_request_header(&bytes[..7]), None);
        assert_eq!(peek_request_header(b"12345678"), None);
    }

    #[test]
    fn garbage_first_byte_is_rejected_at_once() {
        let e = decode_err(b"G");
        assert_eq!(e.error, DecodeError::BadMagic(b'G'));
        assert_eq!(e.id, 0);
    }

    #[test]
    fn wrong_version_is_rejected() {
        let e = decode_err(&[0xFB, 9, 1, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(e.error, DecodeError::UnsupportedVersion(9));
    }

    #[test]
    fn unknown_kind_keeps_the_id() {
        let e = decode_err(&[0xFB, 1, 0x77, 0, 0, 0, 0, 5, 0, 0]);
        assert_eq!(e.error, DecodeError::UnknownKind(0x77));
        assert_eq!(e.id, 5);
    }

    #[test]
    fn reserved_flags_are_rejected() {
        let e = decode_err(&[0xFB, 1, 1, 0x80, 0, 0, 0, 5, 0, 0]);
        assert_eq!(e.error, DecodeError::ReservedFlags(0x80));
    }

    #[test]
    fn oversized_length_is_refused_before_the_payload_arrives() {
        let e = decode_err(&[0xFB, 1, 2, 0, 0, 0, 0, 3, 0xFF, 0xFF]);
        assert!(e.error.is_too_large());
        assert_eq!((e.id, e.kind), (3, Some(Kind::Get)));
        // A server may set a lower limit than the protocol's.
        let small = decode_request(&[0xFB, 1, 2, 0, 0, 0, 0, 3, 0, 100], 50);
        assert!(matches!(small, Err(e) if e.error.is_too_large()));
    }

    #[test]
    fn list_with_payload_is_rejected() {
        let e = decode_err(&[0xFB, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0]);
        assert_eq!(e.error, DecodeError::UnexpectedPayload("LIST"));
    }

    fn get_payload(payload: &[u8]) -> DecodeError {
        let mut frame = vec![0xFB, 1, 2, 0, 0, 0, 0, 4];
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(payload);
        decode_err(&frame).error
    }

    #[test]
    fn malformed_get_payloads_are_rejected() {
        let variant = [0u8; 9];
        let with_variant = |head: &[u8]| [head, &variant[..]].concat();
        assert_eq!(get_payload(&[]), DecodeError::Truncated("GET payload"));
        assert_eq!(
            get_payload(&with_variant(&[9])),
            DecodeError::UnknownSelector(9)
        );
        assert_eq!(
            get_payload(&with_variant(&[1, 0, 0, 0, 0])),
            DecodeError::ZeroNumber
        );
        assert_eq!(get_payload(&with_variant(&[2, 0])), DecodeError::EmptyName);
        assert_eq!(
            get_payload(&with_variant(&[2, 2, 0xC3, 0x28])),
            DecodeError::NotUtf8("picture name")
        );
        assert_eq!(
            get_payload(&[1, 0, 0, 0, 1, 0, 0, 0, 0]),
            DecodeError::Truncated("GET payload")
        );
        assert_eq!(
            get_payload(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
            DecodeError::UnknownFormat(7)
        );
        assert_eq!(
            get_payload(&[&with_variant(&[1, 0, 0, 0, 1])[..], &[0]].concat()),
            DecodeError::TrailingBytes(1, "GET payload")
        );
        let long_name = [&[2u8, 65][..], &[b'a'; 65]].concat();
        assert!(get_payload(&with_variant(&long_name)).is_too_large());
    }

    #[test]
    fn unencodable_selectors_are_refused() {
        assert_eq!(
            get(Selector::Number(0)).encode(),
            Err(EncodeError::ZeroNumber)
        );
        assert_eq!(
            get(Selector::Name(String::new())).encode(),
            Err(EncodeError::EmptyName)
        );
        assert!(get(Selector::Name("x".repeat(65))).encode().is_err());
    }
}
