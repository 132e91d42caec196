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
    Auth = 4,
    Put = 5,
    Delete = 6,
    Rename = 7,
    Retitle = 8,
    Move = 9,
    Watch = 10,
    Page = 11,
    /// Only in responses: a change notice sent to a connection that asked to WATCH.
    Change = 12,
}

impl Kind {
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::List,
            2 => Kind::Get,
            3 => Kind::Ping,
            4 => Kind::Auth,
            5 => Kind::Put,
            6 => Kind::Delete,
            7 => Kind::Rename,
            8 => Kind::Retitle,
            9 => Kind::Move,
            10 => Kind::Watch,
            11 => Kind::Page,
            12 => Kind::Change,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::List => "LIST",
            Kind::Get => "GET",
            Kind::Ping => "PING",
            Kind::Auth => "AUTH",
            Kind::Put => "PUT",
            Kind::Delete => "DELETE",
            Kind::Rename => "RENAME",
            Kind::Retitle => "RETITLE",
            Kind::Move => "MOVE",
            Kind::Watch => "WATCH",
            Kind::Page => "PAGE",
            Kind::Change => "CHANGE",
        }
    }

    /// Whether a request of this kind changes the catalog, and so needs the credential.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Kind::Put | Kind::Delete | Kind::Rename | Kind::Retitle | Kind::Move
        )
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
    /// Every format, in code order.
    pub const ALL: [Format; 3] = [Format::Jpeg, Format::Png, Format::WebP];

    /// The MIME type of a picture in this format.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
        }
    }

    /// The format's usual short name, as users type it: `jpeg`, `png`, `webp`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::WebP => "webp",
        }
    }

    /// The format named `name` (any case; `jpg` for JPEG too).
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "jpg" => Some(Format::Jpeg),
            _ => Format::ALL.into_iter().find(|f| f.name() == name),
        }
    }

    /// The format whose MIME type is `mime`.
    pub fn from_mime(mime: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.mime() == mime)
    }

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

/// How a client wants a picture transformed: scaled down to fit inside a box (never up, aspect
/// ratio kept), converted to another format, or both. The default asks for the picture as
/// stored. A server answers a request for a variant with the picture's dimensions in the
/// response head (see [`crate::Dimensions`]).
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

/// Upload of a picture. Its bytes follow the request frame on the wire: `size` of them, which
/// a server can refuse from this header before any of them arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRequest {
    pub name: String,
    /// What the menu shows; empty means "made from the name".
    pub title: String,
    /// Replace the picture of this name if there is one (otherwise a clash is an error).
    pub replace: bool,
    /// Length of the picture bytes that follow the frame.
    pub size: u32,
}

/// One page of the catalog, optionally only the pictures whose name or title contains a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The page starts after the picture with this menu number (0: from the start).
    pub after: u32,
    /// At most this many entries (1 to [`MAX_PAGE_SIZE`]).
    pub limit: u16,
    /// Matched ignoring case against names and titles; empty matches everything.
    pub search: String,
}

/// The admin token an AUTH request carries. Its `Debug` hides it, so that no log line or panic
/// message that prints a request prints the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl Token {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Token {
    fn from(bytes: Vec<u8>) -> Self {
        Token(bytes)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} bytes, hidden)", self.0.len())
    }
}

/// Largest page a PAGE request may ask for.
pub const MAX_PAGE_SIZE: u16 = 1000;

/// Longest credential an AUTH request may carry, in bytes.
pub const MAX_TOKEN_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The catalog: every picture's number, name, title, type, size and hash.
    List,
    /// One picture.
    Get(GetRequest),
    /// Liveness check; answered with an empty body.
    Ping,
    /// Presents the write credential for the rest of the connection.
    Auth(Token),
    /// Stores a picture under a name.
    Put(PutRequest),
    /// Removes a picture from the catalog.
    Delete(Selector),
    /// Gives a picture a new name.
    Rename { selector: Selector, name: String },
    /// Gives a picture a new title.
    Retitle { selector: Selector, title: String },
    /// Moves a picture to a 1-based menu position (past the end means last).
    Move { selector: Selector, position: u32 },
    /// Asks for change notices on this connection from now on.
    Watch,
    /// One page of the catalog.
    Page(PageRequest),
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Command::List => Kind::List,
            Command::Get(_) => Kind::Get,
            Command::Ping => Kind::Ping,
            Command::Auth(_) => Kind::Auth,
            Command::Put(_) => Kind::Put,
            Command::Delete(_) => Kind::Delete,
            Command::Rename { .. } => Kind::Rename,
            Command::Retitle { .. } => Kind::Retitle,
            Command::Move { .. } => Kind::Move,
            Command::Watch => Kind::Watch,
            Command::Page(_) => Kind::Page,
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
    /// Encodes the whole frame (for PUT, without the picture bytes that follow it). Fails only
    /// for fields no server would accept.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let payload = encode_payload(&self.command)?;
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + payload.len());
        out.extend_from_slice(&[MAGIC, VERSION, self.command.kind() as u8, 0]);
        out.extend_from_slice(&self.id.to_be_bytes());
        // Every payload is built from bounded fields, and checked against the limit below.
        check_len("request payload", payload.len(), MAX_REQUEST_PAYLOAD)?;
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

fn encode_payload(command: &Command) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    match command {
        Command::List | Command::Ping | Command::Watch => {}
        Command::Get(get) => encode_get(get, &mut out)?,
        Command::Auth(token) => {
            let token = token.as_bytes();
            if token.is_empty() {
                return Err(EncodeError::EmptyToken);
            }
            check_len("credential", token.len(), MAX_TOKEN_LEN)?;
            out.extend_from_slice(token);
        }
        Command::Put(put) => {
            out.push(u8::from(put.replace));
            put_name(&mut out, &put.name)?;
            put_short_str(&mut out, "picture title", &put.title)?;
            out.extend_from_slice(&put.size.to_be_bytes());
        }
        Command::Delete(selector) => encode_selector(selector, &mut out)?,
        Command::Rename { selector, name } => {
            encode_selector(selector, &mut out)?;
            put_name(&mut out, name)?;
        }
        Command::Retitle { selector, title } => {
            encode_selector(selector, &mut out)?;
            put_short_str(&mut out, "picture title", title)?;
        }
        Command::Move { selector, position } => {
            encode_selector(selector, &mut out)?;
            out.extend_from_slice(&position.to_be_bytes());
        }
        Command::Page(page) => {
            out.extend_from_slice(&page.after.to_be_bytes());
            out.extend_from_slice(&page.limit.to_be_bytes());
            put_short_str(&mut out, "search text", &page.search)?;
        }
    }
    Ok(out)
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), EncodeError> {
    if name.is_empty() {
        return Err(EncodeError::EmptyName);
    }
    check_len("picture name", name.len(), MAX_NAME_LEN)?;
    put_short_str(out, "picture name", name)
}

fn encode_get(get: &GetRequest, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_selector(&get.selector, out)?;
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

fn encode_selector(selector: &Selector, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match selector {
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
    let Some(kind) = kind.filter(|&k| k != Kind::Change) else {
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
    let what = match kind {
        Kind::Get => "GET payload",
        Kind::Put => "PUT payload",
        Kind::Delete => "DELETE payload",
        Kind::Rename => "RENAME payload",
        Kind::Retitle => "RETITLE payload",
        Kind::Move => "MOVE payload",
        Kind::Page => "PAGE payload",
        _ => "payload",
    };
    let mut r = Reader::new(payload, what);
    let command = match kind {
        Kind::List | Kind::Ping | Kind::Watch if !r.is_empty() => {
            return Err(DecodeError::UnexpectedPayload(kind.name()));
        }
        Kind::List => Command::List,
        Kind::Ping => Command::Ping,
        Kind::Watch => Command::Watch,
        Kind::Get => Command::Get(decode_get(&mut r)?),
        Kind::Auth => {
            if payload.is_empty() {
                return Err(DecodeError::EmptyToken);
            }
            if payload.len() > MAX_TOKEN_LEN {
                return Err(too_large("credential", payload.len(), MAX_TOKEN_LEN));
            }
            return Ok(Command::Auth(Token(payload.to_vec())));
        }
        Kind::Put => {
            let replace = match r.u8()? {
                0 => false,
                1 => true,
                other => return Err(DecodeError::ReservedFlags(other)),
            };
            Command::Put(PutRequest {
                replace,
                name: read_name(&mut r)?,
                title: r.short_str("picture title")?.to_owned(),
                size: r.u32()?,
            })
        }
        Kind::Delete => Command::Delete(decode_selector(&mut r)?),
        Kind::Rename => Command::Rename {
            selector: decode_selector(&mut r)?,
            name: read_name(&mut r)?,
        },
        Kind::Retitle => Command::Retitle {
            selector: decode_selector(&mut r)?,
            title: r.short_str("picture title")?.to_owned(),
        },
        Kind::Move => Command::Move {
            selector: decode_selector(&mut r)?,
            position: match r.u32()? {
                0 => return Err(DecodeError::ZeroNumber),
                n => n,
            },
        },
        Kind::Page => {
            let after = r.u32()?;
            let limit = r.u16()?;
            if limit == 0 || limit > MAX_PAGE_SIZE {
                return Err(DecodeError::BadPageSize(limit));
            }
            let search = r.short_str("search text")?.to_owned();
            Command::Page(PageRequest {
                after,
                limit,
                search,
            })
        }
        Kind::Change => return Err(DecodeError::UnknownKind(Kind::Change as u8)),
    };
    r.finish()?;
    Ok(command)
}

fn too_large(what: &'static str, len: usize, max: usize) -> DecodeError {
    DecodeError::TooLarge {
        what,
        len: len as u64,
        max: max as u64,
    }
}

/// A picture name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8.
fn read_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let name = r.short_str("picture name")?;
    if name.is_empty() {
        return Err(DecodeError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(too_large("picture name", name.len(), MAX_NAME_LEN));
    }
    Ok(name.to_owned())
}

fn decode_selector(r: &mut Reader<'_>) -> Result<Selector, DecodeError> {
    Ok(match r.u8()? {
        SELECTOR_NUMBER => match r.u32()? {
            0 => return Err(DecodeError::ZeroNumber),
            n => Selector::Number(n),
        },
        SELECTOR_NAME => Selector::Name(read_name(r)?),
        other => return Err(DecodeError::UnknownSelector(other)),
    })
}

fn decode_get(r: &mut Reader<'_>) -> Result<GetRequest, DecodeError> {
    let selector = decode_selector(r)?;
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
    fn put_layout_announces_the_picture_that_follows() {
        let put = Request {
            id: 2,
            command: Command::Put(PutRequest {
                name: "dot".into(),
                title: "A dot".into(),
                replace: true,
                size: 69,
            }),
        };
        let bytes = encoded(&put);
        assert_eq!(
            bytes,
            [
                0xFB, 1, 5, 0, 0, 0, 0, 2, 0, 15, // header
                1, 3, b'd', b'o', b't', 5, b'A', b' ', b'd', b'o',
                b't', // replace, name, title
                0, 0, 0, 69, // picture length
            ]
        );
        // The picture's bytes after the frame are not part of it.
        let mut stream = bytes.clone();
        stream.extend_from_slice(&[0x89; 69]);
        assert_eq!(
            decode_request(&stream, MAX_REQUEST_PAYLOAD),
            Ok(Some((put, bytes.len())))
        );
    }

    #[test]
    fn write_and_page_payloads_are_checked() {
        let frame = |kind: u8, payload: &[u8]| {
            let mut f = vec![0xFB, 1, kind, 0, 0, 0, 0, 4];
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            f.extend_from_slice(payload);
            decode_err(&f).error
        };
        assert_eq!(frame(4, &[]), DecodeError::EmptyToken);
        assert_eq!(
            frame(5, &[2, 1, b'a', 0, 0, 0, 0, 1]),
            DecodeError::ReservedFlags(2)
        );
        assert_eq!(
            frame(9, &[1, 0, 0, 0, 1, 0, 0, 0, 0]),
            DecodeError::ZeroNumber
        );
        assert_eq!(
            frame(11, &[0, 0, 0, 0, 0, 0, 0]),
            DecodeError::BadPageSize(0)
        );
        assert_eq!(
            frame(11, &[0, 0, 0, 0, 0x03, 0xE9, 0]),
            DecodeError::BadPageSize(1001)
        );
        assert_eq!(frame(10, &[0]), DecodeError::UnexpectedPayload("WATCH"));
        // CHANGE is a notice from the server, never a request.
        assert_eq!(frame(12, &[]), DecodeError::UnknownKind(12));
    }

    #[test]
    fn tokens_never_print() {
        let auth = Command::Auth(b"s3cret".to_vec().into());
        assert!(!format!("{auth:?}").contains("s3cret"));
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
