//! The body of a `LIST` response: the catalog, in menu order.
//!
//! ```text
//! count (u16), then per picture:
//!   number (u32) | name (u8 len + UTF-8) | title (u8 len + UTF-8) | mime (u8 len + ASCII)
//!   | width (u32) | height (u32) | byte size (u32) | SHA-256 of the bytes (32 bytes)
//! ```

use crate::selector::same_name;
use crate::wire::{Reader, put_short_str};
use crate::{DecodeError, EncodeError, MAX_NAME_LEN, Selector};

/// What a client needs to know about a picture before fetching it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PictureInfo {
    /// 1-based position in the menu.
    pub number: u32,
    /// Short name, unique ignoring case, usable in a `GET`.
    pub name: String,
    /// What the menu shows.
    pub title: String,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    /// Length of the picture's bytes.
    pub size: u32,
    /// SHA-256 of the picture's bytes, so clients can verify and cache what they receive.
    pub sha256: [u8; 32],
}

impl PictureInfo {
    /// Whether a request with `selector` asks for this picture.
    pub fn is_selected_by(&self, selector: &Selector) -> bool {
        match selector {
            Selector::Number(n) => self.number == *n,
            Selector::Name(name) => same_name(&self.name, name),
        }
    }

    /// The hash as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Encodes a catalog. Fails if it holds more than 65 535 pictures or a text field too long for
/// its length byte.
pub fn encode_catalog(pictures: &[PictureInfo]) -> Result<Vec<u8>, EncodeError> {
    crate::error::check_len("catalog", pictures.len(), usize::from(u16::MAX))?;
    let mut out = Vec::with_capacity(2 + pictures.len() * 96);
    out.extend_from_slice(&(pictures.len() as u16).to_be_bytes());
    for p in pictures {
        out.extend_from_slice(&p.number.to_be_bytes());
        crate::error::check_len("picture name", p.name.len(), MAX_NAME_LEN)?;
        put_short_str(&mut out, "picture name", &p.name)?;
        put_short_str(&mut out, "picture title", &p.title)?;
        put_short_str(&mut out, "MIME type", &p.mime)?;
        for n in [p.width, p.height, p.size] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&p.sha256);
    }
    Ok(out)
}

/// Decodes a `LIST` body.
pub fn decode_catalog(body: &[u8]) -> Result<Vec<PictureInfo>, DecodeError> {
    let mut r = Reader::new(body, "catalog");
    let count = r.u16()?;
    // Each entry takes at least 48 bytes, so a lying count cannot make us over-allocate.
    let mut pictures = Vec::with_capacity(usize::from(count).min(body.len() / 48));
    for _ in 0..count {
        pictures.push(PictureInfo {
            number: r.u32()?,
            name: r.short_str("picture name")?.to_owned(),
            title: r.short_str("picture title")?.to_owned(),
            mime: r.short_str("MIME type")?.to_owned(),
            width: r.u32()?,
            height: r.u32()?,
            size: r.u32()?,
            sha256: r.array()?,
        });
    }
    r.finish()?;
    Ok(pictures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car() -> PictureInfo {
        PictureInfo {
            number: 1,
            name: "car".into(),
            title: "Car".into(),
            mime: "image/jpeg".into(),
            width: 640,
            height: 480,
            size: 123_456,
            sha256: [0xAB; 32],
        }
    }

    #[test]
    fn round_trip() {
        let list = vec![
            car(),
            PictureInfo {
                number: 2,
                name: "ocean".into(),
                title: "Océan à l'aube".into(),
                ..car()
            },
        ];
        let bytes = encode_catalog(&list).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode_catalog(&bytes), Ok(list));
    }

    #[test]
    fn selected_by_number_or_by_name_in_any_case() {
        assert!(car().is_selected_by(&Selector::Number(1)));
        assert!(car().is_selected_by(&Selector::Name("CAR".into())));
        assert!(!car().is_selected_by(&Selector::Number(2)));
        assert!(!car().is_selected_by(&Selector::Name("dog".into())));
    }

    #[test]
    fn empty_catalog() {
        let bytes = encode_catalog(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bytes, [0, 0]);
        assert_eq!(decode_catalog(&bytes), Ok(vec![]));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_rejected() {
        let bytes = encode_catalog(&[car()]).unwrap_or_else(|e| panic!("{e}"));
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_catalog(&bytes[..cut]),
                Err(DecodeError::Truncated("catalog"))
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_catalog(&longer),
            Err(DecodeError::TrailingBytes(1, "catalog"))
        );
    }

    #[test]
    fn lying_count_does_not_allocate_wildly() {
        assert_eq!(
            decode_catalog(&[0xFF, 0xFF]),
            Err(DecodeError::Truncated("catalog"))
        );
    }

    #[test]
    fn overlong_fields_are_refused() {
        let long = PictureInfo {
            title: "t".repeat(256),
            ..car()
        };
        assert!(encode_catalog(&[long]).is_err());
        let long_name = PictureInfo {
            name: "n".repeat(65),
            ..car()
        };
        assert!(encode_catalog(&[long_name]).is_err());
    }

    #[test]
    fn hex_hash() {
        assert_eq!(car().sha256_hex(), "ab".repeat(32));
    }
}
