//! One picture: its bytes exactly as stored, and what the catalog says about it.

use std::io::Cursor;

use bytes::Bytes;
use image::ImageReader;
use picture_protocol::{MAX_NAME_LEN, PictureInfo};
use sha2::{Digest, Sha256};

/// Largest picture file the server will hold. Keeps one bad file from exhausting memory and
/// keeps sizes within the protocol's 32-bit length fields.
pub const MAX_PICTURE_BYTES: usize = 64 * 1024 * 1024;

/// A picture ready to serve. The bytes are a shared immutable buffer: every response sends the
/// same memory, never a copy.
#[derive(Debug)]
pub struct Picture {
    pub info: PictureInfo,
    pub bytes: Bytes,
}

/// Why a file is not a picture the server can serve.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("{0} bytes is more than the limit of {MAX_PICTURE_BYTES}")]
    TooLarge(u64),
    #[error("not a recognised image format")]
    UnknownFormat,
    #[error("unreadable image: {0}")]
    Corrupt(#[from] image::ImageError),
    #[error("{0}x{1} is not a usable size")]
    EmptyImage(u32, u32),
}

/// Checks that `bytes` hold an image, reading its format from the content and its size from
/// the header (without decoding the pixels), and builds the catalog entry for it.
pub fn inspect(
    number: u32,
    name: String,
    title: String,
    bytes: Bytes,
) -> Result<Picture, PictureError> {
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(PictureError::TooLarge(bytes.len() as u64));
    }
    let reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| PictureError::Corrupt(image::ImageError::IoError(e)))?;
    let format = reader.format().ok_or(PictureError::UnknownFormat)?;
    let (width, height) = reader.into_dimensions()?;
    if width == 0 || height == 0 {
        return Err(PictureError::EmptyImage(width, height));
    }
    let info = PictureInfo {
        number,
        name,
        title,
        mime: format.to_mime_type().to_owned(),
        width,
        height,
        // Bounded by MAX_PICTURE_BYTES above.
        size: bytes.len() as u32,
        sha256: Sha256::digest(&bytes).into(),
    };
    Ok(Picture { info, bytes })
}

/// Why a name or title cannot be given to a picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a picture name must be 1 to {MAX_NAME_LEN} bytes long")]
    Length,
    #[error("an all-digit name would be read as a menu number")]
    AllDigits,
    #[error("a picture name may not contain white space or control characters")]
    Space,
    #[error(
        "a picture name may not contain / or \\ or start with a dot (it names a file on export)"
    )]
    NotAFileName,
    #[error("a title must be at most 255 bytes long")]
    TitleLength,
    #[error("a title may not contain control characters")]
    TitleControl,
}

/// The rules every picture name follows, whether it comes from a file or an upload: usable in a
/// GET by name, in a bare choice, and as a file name when the catalog is exported.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(NameError::Length);
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::AllDigits);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameError::Space);
    }
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(NameError::NotAFileName);
    }
    Ok(())
}

/// The rules for a title: what a menu line can show.
pub fn check_title(title: &str) -> Result<(), NameError> {
    if title.len() > usize::from(u8::MAX) {
        return Err(NameError::TitleLength);
    }
    if title.chars().any(char::is_control) {
        return Err(NameError::TitleControl);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert_eq!(check_name("red-car"), Ok(()));
        assert_eq!(check_name("Élan"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Length));
        assert_eq!(check_name(&"x".repeat(65)), Err(NameError::Length));
        assert_eq!(check_name("123"), Err(NameError::AllDigits));
        assert_eq!(check_name("two words"), Err(NameError::Space));
        assert_eq!(check_name("bell\u{7}"), Err(NameError::Space));
        assert_eq!(check_name("a/b"), Err(NameError::NotAFileName));
        assert_eq!(check_name(".hidden"), Err(NameError::NotAFileName));
        assert_eq!(check_title("Océan à l'aube"), Ok(()));
        assert_eq!(check_title("a\nb"), Err(NameError::TitleControl));
        assert_eq!(check_title(&"t".repeat(256)), Err(NameError::TitleLength));
    }

    fn png(width: u32, height: u32) -> Bytes {
        let img = image::RgbImage::new(width, height);
        let mut out = Cursor::new(Vec::new());
        match img.write_to(&mut out, image::ImageFormat::Png) {
            Ok(()) => Bytes::from(out.into_inner()),
            Err(e) => panic!("encoding a test PNG: {e}"),
        }
    }

    #[test]
    fn reads_format_and_size_from_content() {
        let bytes = png(3, 2);
        let p = inspect(1, "a".into(), "A".into(), bytes.clone())
            .unwrap_or_else(|e| panic!("valid PNG rejected: {e}"));
        assert_eq!(p.info.mime, "image/png");
        assert_eq!((p.info.width, p.info.height), (3, 2));
        assert_eq!(p.info.size as usize, bytes.len());
        assert_eq!(p.bytes, bytes);
    }

    #[test]
    fn rejects_garbage_and_truncated_headers() {
        let garbage = Bytes::from_static(b"this is not a picture at all");
        assert!(matches!(
            inspect(1, "a".into(), "A".into(), garbage),
            Err(PictureError::UnknownFormat)
        ));
        let truncated = png(3, 2).slice(..12);
        assert!(inspect(1, "a".into(), "A".into(), truncated).is_err());
    }
}
