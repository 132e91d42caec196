//! Responses: a fixed 16-byte header, the MIME type, then the body.
//!
//! ```text
//! 0      1        2     3       4          8                12         13        14         16
//! +------+--------+-----+-------+----------+----------------+----------+---------+----------+------+-----------+------+
//! | 0xFB | version| kind| status| id (u32) | body len (u32) | mime len | ext len | reserved | mime | extension | body |
//! +------+--------+-----+-------+----------+----------------+----------+---------+----------+------+-----------+------+
//! ```
//!
//! The fixed header tells the whole frame length, so a reader knows how much to wait for and can
//! refuse an oversized body before receiving it. The extension is empty except in answers to a
//! request for a picture variant, which carry the picture's [`Dimensions`] there: a client that
//! never asks for a variant receives exactly the frames of the first version of the protocol.

use crate::wire::Reader;
use crate::{DecodeError, EncodeError, Kind, MAGIC, VERSION};

/// Length of the fixed part of every response.
pub const RESPONSE_HEADER_LEN: usize = 16;

/// Length of the extension that carries a picture's [`Dimensions`].
pub const DIMENSIONS_LEN: usize = 8;

/// Longest head: the fixed header, the longest MIME type and the extension.
pub const MAX_RESPONSE_HEAD_LEN: usize = RESPONSE_HEADER_LEN + u8::MAX as usize + DIMENSIONS_LEN;

/// Width and height in pixels of the picture a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

/// The outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok = 0,
    /// No such picture; the body is the server's not-found picture.
    NotFound = 1,
    /// The request was malformed or asks for something unsupported; the body explains.
    /// The server closes the connection after a malformed frame.
    BadRequest = 2,
    /// The request exceeded a limit; the connection is closed after this answer.
    TooLarge = 3,
    /// The server is at its connection limit; try again later.
    Busy = 4,
    /// The server failed; the body explains.
    Internal = 5,
    /// A write without the right credential (none presented, or a wrong one).
    Unauthorized = 6,
    /// Writes are disabled: the server has no credential configured, or its store is
    /// read-only.
    WritesDisabled = 7,
    /// The upload or the new name was refused: not a picture, corrupt, too many pixels, a name
    /// that breaks the rules. The body explains.
    Rejected = 8,
    /// The name is already taken by another picture.
    Conflict = 9,
}

impl Status {
    pub fn from_code(code: u8) -> Result<Status, DecodeError> {
        Ok(match code {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadRequest,
            3 => Status::TooLarge,
            4 => Status::Busy,
            5 => Status::Internal,
            6 => Status::Unauthorized,
            7 => Status::WritesDisabled,
            8 => Status::Rejected,
            9 => Status::Conflict,
            other => return Err(DecodeError::UnknownStatus(other)),
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotFound => "not found",
            Status::BadRequest => "bad request",
            Status::TooLarge => "too large",
            Status::Busy => "server busy",
            Status::Internal => "internal server error",
            Status::Unauthorized => "not authorised",
            Status::WritesDisabled => "writes disabled",
            Status::Rejected => "rejected",
            Status::Conflict => "name taken",
        }
    }
}

/// Everything of a response but its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The kind of the request answered, or `None` when the request was unreadable.
    pub kind: Option<Kind>,
    pub status: Status,
    /// The id of the request answered (0 when the request was unreadable).
    pub id: u32,
    pub mime: String,
    /// The picture's width and height: present in the answer to a request for a variant, and
    /// only there.
    pub dimensions: Option<Dimensions>,
    pub body_len: u32,
}

impl ResponseHead {
    /// Length of the encoded head: the fixed header, the MIME type and the extension.
    pub fn encoded_len(&self) -> usize {
        RESPONSE_HEADER_LEN + self.mime.len() + self.extension_len()
    }

    fn extension_len(&self) -> usize {
        if self.dimensions.is_some() {
            DIMENSIONS_LEN
        } else {
            0
        }
    }

    /// Length of the whole frame, head and body.
    pub fn frame_len(&self) -> usize {
        self.encoded_len() + self.body_len as usize
    }

    /// Appends the encoded head to `out`; the body is written after it by the caller, which
    /// lets a server send a shared picture buffer without copying it into the frame.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::error::check_len("MIME type", self.mime.len(), usize::from(u8::MAX))?;
        out.reserve(self.encoded_len());
        out.extend_from_slice(&[
            MAGIC,
            VERSION,
            self.kind.map_or(0, |k| k as u8),
            self.status as u8,
        ]);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&[self.mime.len() as u8, self.extension_len() as u8, 0, 0]);
        out.extend_from_slice(self.mime.as_bytes());
        if let Some(Dimensions { width, height }) = self.dimensions {
            out.extend_from_slice(&width.to_be_bytes());
            out.extend_from_slice(&height.to_be_bytes());
        }
        Ok(())
    }

    /// Decodes the head at the start of `buf`, or `Ok(None)` until all of it has arrived.
    /// A body longer than `max_body` is refused here, before anyone allocates for it.
    pub fn decode(buf: &[u8], max_body: u32) -> Result<Option<ResponseHead>, DecodeError> {
        if let Some(&first) = buf.first()
            && first != MAGIC
        {
            return Err(DecodeError::BadMagic(first));
        }
        let Some(fixed) = buf.get(..RESPONSE_HEADER_LEN) else {
            return Ok(None);
        };
        let mut r = Reader::new(fixed, "response header");
        let [_magic, version, kind_code, status_code] = r.array()?;
        let id = r.u32()?;
        let body_len = r.u32()?;
        let [mime_len, extension_len, reserved @ ..] = r.array::<4>()?;
        if version != crate::VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind = match kind_code {
            0 => None,
            code => Some(Kind::from_code(code).ok_or(DecodeError::UnknownKind(code))?),
        };
        let status = Status::from_code(status_code)?;
        if reserved != [0; 2] {
            return Err(DecodeError::ReservedFlags(reserved[0] | reserved[1]));
        }
        if !matches!(usize::from(extension_len), 0 | DIMENSIONS_LEN) {
            return Err(DecodeError::BadExtension(extension_len));
        }
        if body_len > max_body {
            return Err(DecodeError::TooLarge {
                what: "response body",
                len: u64::from(body_len),
                max: u64::from(max_body),
            });
        }
        let mime_end = RESPONSE_HEADER_LEN + usize::from(mime_len);
        let end = mime_end + usize::from(extension_len);
        let Some(head) = buf.get(RESPONSE_HEADER_LEN..end) else {
            return Ok(None);
        };
        let (mime, extension) = head.split_at(usize::from(mime_len));
        let mime = std::str::from_utf8(mime).map_err(|_| DecodeError::NotUtf8("MIME type"))?;
        let dimensions = if extension.is_empty() {
            None
        } else {
            let mut r = Reader::new(extension, "response extension");
            Some(Dimensions {
                width: r.u32()?,
                height: r.u32()?,
            })
        };
        Ok(Some(ResponseHead {
            kind,
            status,
            id,
            mime: mime.to_owned(),
            dimensions,
            body_len,
        }))
    }
}

/// A whole response, as a client that buffers frames sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
}

impl Response {
    /// Encodes head and body into one buffer.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.head.frame_len());
        self.head.encode_into(&mut out)?;
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// The body as text, for error answers.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes the first whole response in `buf`: `Ok(None)` while incomplete, otherwise the
/// response and how many bytes it used.
pub fn decode_response(
    buf: &[u8],
    max_body: u32,
) -> Result<Option<(Response, usize)>, DecodeError> {
    let Some(head) = ResponseHead::decode(buf, max_body)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(head.encoded_len()..head.frame_len()) else {
        return Ok(None);
    };
    let body = body.to_vec();
    let used = head.frame_len();
    Ok(Some((Response { head, body }, used)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_RESPONSE_BODY;

    fn sample() -> Response {
        Response {
            head: ResponseHead {
                kind: Some(Kind::Get),
                status: Status::Ok,
                id: 0x0A0B0C0D,
                mime: "image/png".into(),
                dimensions: None,
                body_len: 3,
            },
            body: vec![1, 2, 3],
        }
    }

    fn encoded(r: &Response) -> Vec<u8> {
        r.encode().unwrap_or_else(|e| panic!("encode: {e}"))
    }

    #[test]
    fn layout() {
        let bytes = encoded(&sample());
        let mut expected = vec![
            0xFB, 1, 2, 0, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 0, 3, 9, 0, 0, 0,
        ];
        expected.extend_from_slice(b"image/png");
        expected.extend_from_slice(&[1, 2, 3]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn round_trip_and_incomplete() {
        let bytes = encoded(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode_response(&bytes[..cut], MAX_RESPONSE_BODY), Ok(None));
        }
        assert_eq!(
            decode_response(&bytes, MAX_RESPONSE_BODY),
            Ok(Some((sample(), bytes.len())))
        );
    }

    #[test]
    fn oversized_body_is_refused_from_the_header() {
        let bytes = encoded(&sample());
        assert!(matches!(
            decode_response(&bytes[..RESPONSE_HEADER_LEN], 2),
            Err(DecodeError::TooLarge { len: 3, max: 2, .. })
        ));
    }

    #[test]
    fn malformed_heads_are_rejected() {
        let good = encoded(&sample());
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            decode_response(&b, MAX_RESPONSE_BODY)
        };
        assert_eq!(with(0, 0x47), Err(DecodeError::BadMagic(0x47)));
        assert_eq!(with(1, 2), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(with(2, 0x33), Err(DecodeError::UnknownKind(0x33)));
        assert_eq!(with(3, 42), Err(DecodeError::UnknownStatus(42)));
        assert_eq!(with(13, 4), Err(DecodeError::BadExtension(4)));
        assert_eq!(with(14, 1), Err(DecodeError::ReservedFlags(1)));
        assert_eq!(with(15, 2), Err(DecodeError::ReservedFlags(2)));
        assert_eq!(with(16, 0xFF), Err(DecodeError::NotUtf8("MIME type")));
    }

    #[test]
    fn a_variant_answer_carries_its_dimensions_after_the_mime_type() {
        let mut variant = sample();
        variant.head.dimensions = Some(Dimensions {
            width: 400,
            height: 0x0102_0304,
        });
        let bytes = encoded(&variant);
        let mut expected = vec![
            0xFB, 1, 2, 0, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 0, 3, 9, 8, 0, 0,
        ];
        expected.extend_from_slice(b"image/png");
        expected.extend_from_slice(&[0, 0, 1, 0x90, 1, 2, 3, 4]);
        expected.extend_from_slice(&[1, 2, 3]);
        assert_eq!(bytes, expected);
        for cut in 0..bytes.len() {
            assert_eq!(decode_response(&bytes[..cut], MAX_RESPONSE_BODY), Ok(None));
        }
        assert_eq!(
            decode_response(&bytes, MAX_RESPONSE_BODY),
            Ok(Some((variant, bytes.len())))
        );
    }

    #[test]
    fn error_answers_may_have_no_kind() {
        let r = Response {
            head: ResponseHead {
                kind: None,
                status: Status::BadRequest,
                id: 0,
                mime: crate::TEXT_MIME.into(),
                dimensions: None,
                body_len: 4,
            },
            body: b"oops".to_vec(),
        };
        let bytes = encoded(&r);
        let decoded = decode_response(&bytes, MAX_RESPONSE_BODY);
        assert_eq!(decoded, Ok(Some((r, bytes.len()))));
    }
}
