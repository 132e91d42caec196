use thiserror::Error;

/// Why bytes received from a peer are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame does not start with the magic byte 0xFB (found 0x{0:02X})")]
    BadMagic(u8),
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown request kind 0x{0:02X}")]
    UnknownKind(u8),
    #[error("reserved flags must be zero (found 0x{0:02X})")]
    ReservedFlags(u8),
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{0} is truncated")]
    Truncated(&'static str),
    #[error("{0} bytes follow the end of the {1}")]
    TrailingBytes(usize, &'static str),
    #[error("{0} request takes no payload")]
    UnexpectedPayload(&'static str),
    #[error("unknown picture selector 0x{0:02X}")]
    UnknownSelector(u8),
    #[error("picture name is empty")]
    EmptyName,
    #[error("picture number 0 does not exist (numbers start at 1)")]
    ZeroNumber,
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("unknown picture format code {0}")]
    UnknownFormat(u8),
    #[error("a response extension of {0} bytes is not one this version knows (0 or 8)")]
    BadExtension(u8),
    #[error("unknown response status {0}")]
    UnknownStatus(u8),
    #[error("credential is empty")]
    EmptyToken,
    #[error("page size {0} is not between 1 and 1000")]
    BadPageSize(u16),
    #[error("unknown change code {0}")]
    UnknownChange(u8),
    #[error("a change notice carries {0} pictures; it has at most one")]
    TooManyPictures(usize),
}

impl DecodeError {
    /// Whether the peer asked for more than a limit allows, as opposed to sending nonsense.
    /// Servers answer the first with a *too large* status and the second with *bad request*.
    pub fn is_too_large(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

/// Why a value cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("picture name is empty")]
    EmptyName,
    #[error("picture number 0 does not exist (numbers start at 1)")]
    ZeroNumber,
    #[error("credential is empty")]
    EmptyToken,
}

/// Checks a length against a limit, naming the field in the error.
pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
    if len > max {
        return Err(EncodeError::TooLong { what, len, max });
    }
    Ok(())
}
