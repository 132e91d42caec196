//! The body of a `LIST` response: the catalog, in menu order; and the bodies built from it:
//! a `PAGE` of it, and a change notice.
//!
//! ```text
//! count (u16), then per picture:
//!   number (u32) | name (u8 len + UTF-8) | title (u8 len + UTF-8) | mime (u8 len + ASCII)
//!   | width (u32) | height (u32) | byte size (u32) | SHA-256 of the bytes (32 bytes)
//!
//! page:   catalog version (u64) | matching pictures in all (u32) | catalog of this page
//! change: catalog version (u64) | change code (u8) | name before (u8 len + UTF-8)
//!         | catalog of the picture after the change (no entry when it was removed)
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
pub fn encode_catalog<'a, I>(pictures: I) -> Result<Vec<u8>, EncodeError>
where
    I: IntoIterator<Item = &'a PictureInfo>,
    I::IntoIter: ExactSizeIterator,
{
    let pictures = pictures.into_iter();
    let mut out = Vec::with_capacity(2 + pictures.len() * 96);
    put_catalog(&mut out, pictures)?;
    Ok(out)
}

fn put_catalog<'a>(
    out: &mut Vec<u8>,
    pictures: impl ExactSizeIterator<Item = &'a PictureInfo>,
) -> Result<(), EncodeError> {
    crate::error::check_len("catalog", pictures.len(), usize::from(u16::MAX))?;
    out.extend_from_slice(&(pictures.len() as u16).to_be_bytes());
    for p in pictures {
        out.extend_from_slice(&p.number.to_be_bytes());
        crate::error::check_len("picture name", p.name.len(), MAX_NAME_LEN)?;
        put_short_str(out, "picture name", &p.name)?;
        put_short_str(out, "picture title", &p.title)?;
        put_short_str(out, "MIME type", &p.mime)?;
        for n in [p.width, p.height, p.size] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&p.sha256);
    }
    Ok(())
}

/// Decodes a `LIST` body.
pub fn decode_catalog(body: &[u8]) -> Result<Vec<PictureInfo>, DecodeError> {
    let mut r = Reader::new(body, "catalog");
    let pictures = read_catalog(&mut r)?;
    r.finish()?;
    Ok(pictures)
}

fn read_catalog(r: &mut Reader<'_>) -> Result<Vec<PictureInfo>, DecodeError> {
    let count = r.u16()?;
    // Each entry takes at least 48 bytes, so a lying count cannot make us over-allocate.
    let mut pictures = Vec::with_capacity(usize::from(count).min(r.len() / 48));
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
    Ok(pictures)
}

/// One page of the catalog, as a `PAGE` response carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The catalog version the page was taken from.
    pub version: u64,
    /// How many pictures match the search in all pages together.
    pub total: u32,
    /// This page's pictures, in menu order.
    pub pictures: Vec<PictureInfo>,
}

impl Page {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(14 + self.pictures.len() * 96);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        put_catalog(&mut out, self.pictures.iter())?;
        Ok(out)
    }

    pub fn decode(body: &[u8]) -> Result<Page, DecodeError> {
        let mut r = Reader::new(body, "catalog page");
        let page = Page {
            version: r.u64()?,
            total: r.u32()?,
            pictures: read_catalog(&mut r)?,
        };
        r.finish()?;
        Ok(page)
    }
}

/// What happened to a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Added = 1,
    Replaced = 2,
    Removed = 3,
    Renamed = 4,
    Retitled = 5,
    Moved = 6,
    /// Notices were dropped because the connection did not keep up: reload the catalog.
    Lost = 7,
}

impl ChangeKind {
    pub fn from_code(code: u8) -> Result<ChangeKind, DecodeError> {
        Ok(match code {
            1 => ChangeKind::Added,
            2 => ChangeKind::Replaced,
            3 => ChangeKind::Removed,
            4 => ChangeKind::Renamed,
            5 => ChangeKind::Retitled,
            6 => ChangeKind::Moved,
            7 => ChangeKind::Lost,
            other => return Err(DecodeError::UnknownChange(other)),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Replaced => "replaced",
            ChangeKind::Removed => "removed",
            ChangeKind::Renamed => "renamed",
            ChangeKind::Retitled => "retitled",
            ChangeKind::Moved => "moved",
            ChangeKind::Lost => "lost",
        }
    }
}

/// A change to the catalog, as a `CHANGE` notice carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The catalog version this change produced.
    pub version: u64,
    pub kind: ChangeKind,
    /// The picture's name before the change.
    pub name: String,
    /// The picture after the change; `None` when it was removed.
    pub picture: Option<PictureInfo>,
}

impl Change {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(110);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.push(self.kind as u8);
        put_short_str(&mut out, "picture name", &self.name)?;
        put_catalog(&mut out, self.picture.iter())?;
        Ok(out)
    }

    pub fn decode(body: &[u8]) -> Result<Change, DecodeError> {
        let mut r = Reader::new(body, "change notice");
        let version = r.u64()?;
        let kind = ChangeKind::from_code(r.u8()?)?;
        let name = r.short_str("picture name")?.to_owned();
        let mut pictures = read_catalog(&mut r)?;
        r.finish()?;
        if pictures.len() > 1 {
            return Err(DecodeError::TooManyPictures(pictures.len()));
        }
        Ok(Change {
            version,
            kind,
            name,
            picture: pictures.pop(),
        })
    }
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
    fn pages_and_changes_round_trip_and_refuse_every_cut() {
        let page = Page {
            version: 7,
            total: 120,
            pictures: vec![car()],
        };
        let change = Change {
            version: 8,
            kind: ChangeKind::Renamed,
            name: "auto".into(),
            picture: Some(car()),
        };
        let removed = Change {
            kind: ChangeKind::Removed,
            picture: None,
            ..change.clone()
        };
        let page_bytes = page.encode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Page::decode(&page_bytes), Ok(page));
        for c in [change, removed] {
            let bytes = c.encode().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(Change::decode(&bytes), Ok(c));
            for cut in 0..bytes.len() {
                assert!(Change::decode(&bytes[..cut]).is_err());
            }
        }
        for cut in 0..page_bytes.len() {
            assert!(Page::decode(&page_bytes[..cut]).is_err());
        }
        let mut bad = page_bytes.clone();
        bad[8..12].copy_from_slice(&[0xFF; 4]);
        assert!(
            Page::decode(&bad).is_ok(),
            "the total is information, not a length"
        );
    }

    #[test]
    fn a_change_names_at_most_one_picture() {
        let mut body = 3u64.to_be_bytes().to_vec();
        body.extend_from_slice(&[ChangeKind::Moved as u8, 3, b'c', b'a', b'r']);
        body.extend(encode_catalog(&[car(), car()]).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(Change::decode(&body), Err(DecodeError::TooManyPictures(2)));
    }

    #[test]
    fn hex_hash() {
        assert_eq!(car().sha256_hex(), "ab".repeat(32));
    }
}
