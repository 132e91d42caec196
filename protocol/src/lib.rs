//! The picture server's wire format, shared by the server, the command-line client and the
//! browser client. Pure functions over byte slices: no I/O, no async, so the same code runs
//! natively and in WebAssembly.
//!
//! One TCP port speaks two modes, told apart by the first byte of a connection:
//!
//! * **Framed mode** ([`request`], [`response`]): every frame starts with [`MAGIC`], a byte
//!   that can never begin a UTF-8 string, so it cannot be mistaken for a bare choice. Requests
//!   carry an id that the response echoes, which lets clients pipeline requests on one
//!   persistent connection.
//! * **Bare-choice mode** ([`Selector::from_choice`]): the original client's protocol. It sends
//!   a menu number or a picture name as plain text and reads the picture bytes until the server
//!   closes the connection.
//!
//! `PROTOCOL.md` at the repository root documents every byte.

#![forbid(unsafe_code)]

mod catalog;
mod error;
mod request;
mod response;
mod selector;
mod wire;

pub use catalog::{Change, ChangeKind, Page, PictureInfo, decode_catalog, encode_catalog};
pub use error::{DecodeError, EncodeError};
pub use request::{
    Command, Format, GetRequest, Kind, MAX_PAGE_SIZE, MAX_TOKEN_LEN, PageRequest, PutRequest,
    REQUEST_HEADER_LEN, Request, RequestError, Token, Variant, decode_request, peek_request_header,
};
pub use response::{
    DIMENSIONS_LEN, Dimensions, MAX_RESPONSE_HEAD_LEN, RESPONSE_HEADER_LEN, Response, ResponseHead,
    Status, decode_response,
};
pub use selector::{MAX_NAME_LEN, Selector, same_name};

/// First byte of every frame. 0xFB never occurs in UTF-8 text, so a connection that starts
/// with it cannot be an old client typing a choice.
pub const MAGIC: u8 = 0xFB;

/// Protocol version carried in every frame, right after [`MAGIC`].
pub const VERSION: u8 = 1;

/// Largest request payload any peer may send. Requests are tiny (a name and a few numbers), so
/// anything bigger is an error rather than something to buffer. The bytes of an uploaded
/// picture are not part of the payload: they follow the PUT frame, announced by it.
pub const MAX_REQUEST_PAYLOAD: usize = 1024;

/// Largest response body the format allows (the length field is 32 bits, but nothing this
/// server holds comes near it). Clients use it as the default cap before allocating.
pub const MAX_RESPONSE_BODY: u32 = 256 * 1024 * 1024;

/// MIME type of a `LIST` response body (see [`encode_catalog`]).
pub const CATALOG_MIME: &str = "application/vnd.picture-catalog";

/// MIME type of a `PAGE` response body (see [`Page`]).
pub const PAGE_MIME: &str = "application/vnd.picture-page";

/// MIME type of a `CHANGE` notice body (see [`Change`]).
pub const CHANGE_MIME: &str = "application/vnd.picture-change";

/// MIME type of the catalog version a `WATCH` answer carries (8 bytes, big-endian).
pub const VERSION_MIME: &str = "application/vnd.picture-version";

/// MIME type of error message bodies.
pub const TEXT_MIME: &str = "text/plain; charset=utf-8";
