//! Checking an uploaded picture before anything is stored: what it is (from its content, never
//! from what the client says), how large it claims to be (refused before decoding, so a
//! decompression bomb costs a header read), and whether it decodes whole.

use std::io::Cursor;

use bytes::Bytes;
use image::{ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use super::metadata::strip_metadata;

/// Formats an upload may have.
const ACCEPTED: &[ImageFormat] = &[
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::WebP,
];

/// Bytes per pixel the decoder may need beyond the pixels themselves (16-bit RGBA is 8).
const DECODE_BYTES_PER_PIXEL: u64 = 8;

/// What reading a header may allocate. Headers are small, but a PNG's colour profile is
/// compressed in its header: without this, a small file could make the header read inflate
/// hundreds of megabytes before the pixel limit is even checked.
const HEADER_ALLOC: u64 = 8 * 1024 * 1024;

/// Largest colour profile accepted, once inflated. Real ICC profiles are a few kilobytes to a
/// few hundred; a stored picture must not be a bomb for the clients that decode it either.
const MAX_ICC_PROFILE: usize = 4 * 1024 * 1024;

/// How uploads are checked.
#[derive(Debug, Clone, Copy)]
pub struct UploadRules {
    /// Largest picture accepted, in pixels (width times height).
    pub max_pixels: u64,
    /// Keep EXIF, XMP and text metadata instead of removing it.
    pub keep_metadata: bool,
}

impl Default for UploadRules {
    fn default() -> Self {
        UploadRules {
            max_pixels: 50_000_000,
            keep_metadata: false,
        }
    }
}

/// An upload that passed every check, ready to store.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The bytes to store: the upload, without its metadata unless told to keep it.
    pub bytes: Bytes,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub sha256: [u8; 32],
}

/// Why an upload was refused. Every variant is the uploader's doing.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("not a JPEG, PNG, GIF or WebP picture")]
    UnknownFormat,
    #[error("{0} pictures are not accepted (only JPEG, PNG, GIF and WebP)")]
    Unaccepted(&'static str),
    #[error("{width}x{height} is more than the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("{0}x{1} is not a usable size")]
    Empty(u32, u32),
    #[error("the picture does not decode: {0}")]
    Corrupt(image::ImageError),
    #[error("its colour profile expands to more than {MAX_ICC_PROFILE} bytes")]
    ProfileTooLarge,
    #[error("the picture is damaged: {0}")]
    Structure(#[from] super::metadata::MetadataError),
}

/// Checks an upload: format from the content, dimensions from the header against the pixel
/// limit, then one whole decode and a walk of its container; strips metadata and hashes what
/// will be stored. CPU-heavy:
/// call it off the async runtime's workers.
pub fn check(bytes: Bytes, rules: UploadRules) -> Result<Checked, UploadError> {
    let format = image::guess_format(&bytes).map_err(|_| UploadError::UnknownFormat)?;
    if !ACCEPTED.contains(&format) {
        return Err(UploadError::Unaccepted(format.to_mime_type()));
    }
    let measured = measure(&bytes, rules.max_pixels)?;
    let (width, height) = (measured.width, measured.height);
    measured.reader().decode().map_err(UploadError::Corrupt)?;
    // Walking the container also finds what a lenient decoder forgives, such as a JPEG cut
    // short, which decodes to a grey lower half: it runs even when metadata is kept.
    let stripped = strip_metadata(&bytes, format)?;
    let bytes = if rules.keep_metadata {
        bytes
    } else {
        stripped.bytes
    };
    Ok(Checked {
        sha256: Sha256::digest(&bytes).into(),
        bytes,
        mime: format.to_mime_type(),
        width,
        height,
    })
}

/// A picture whose header passed the checks every decode starts with: its format read from
/// its content, a PNG's colour profile and the header read within small budgets, its size
/// non-zero and within the pixel limit. Nothing is decoded yet. Uploads and variants both
/// start here, so a picture a store holds (perhaps from a folder, or from before the limit
/// was lowered) costs a variant no more than an upload may.
pub struct Measured<'a> {
    bytes: &'a [u8],
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Measures `bytes` against `max_pixels`: see [`Measured`].
pub fn measure(bytes: &Bytes, max_pixels: u64) -> Result<Measured<'_>, UploadError> {
    let format = image::guess_format(bytes).map_err(|_| UploadError::UnknownFormat)?;
    if format == ImageFormat::Png {
        check_png_profile(bytes)?;
    }
    let mut header = ImageReader::with_format(Cursor::new(&bytes[..]), format);
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(HEADER_ALLOC);
    header.limits(header_limits);
    let (width, height) = header.into_dimensions().map_err(UploadError::Corrupt)?;
    if width == 0 || height == 0 {
        return Err(UploadError::Empty(width, height));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(UploadError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    Ok(Measured {
        bytes,
        format,
        width,
        height,
    })
}

impl Measured<'_> {
    /// The picture's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// A reader of the whole picture whose allocations are bounded by what its size needs.
    pub fn reader(&self) -> ImageReader<Cursor<&[u8]>> {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.width);
        limits.max_image_height = Some(self.height);
        limits.max_alloc =
            Some(u64::from(self.width) * u64::from(self.height) * DECODE_BYTES_PER_PIXEL);
        let mut reader = ImageReader::with_format(Cursor::new(self.bytes), self.format);
        reader.limits(limits);
        reader
    }
}

/// Refuses a PNG whose compressed colour profile (`iCCP`) inflates beyond
/// [`MAX_ICC_PROFILE`], inflating it at most that far.
fn check_png_profile(bytes: &Bytes) -> Result<(), UploadError> {
    // A PNG that does not parse is refused by the decoder with a better message.
    let Ok(png) = img_parts::png::Png::from_bytes(bytes.clone()) else {
        return Ok(());
    };
    for chunk in png.chunks_by_type(*b"iCCP") {
        let contents = chunk.contents();
        // Profile name (1-79 bytes), a zero byte, the compression method, then zlib data.
        let Some(end) = contents.iter().position(|&b| b == 0) else {
            continue;
        };
        let data = contents.get(end + 2..).unwrap_or_default();
        if miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_ICC_PROFILE).is_err() {
            return Err(UploadError::ProfileTooLarge);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png)
            .unwrap_or_else(|e| panic!("encoding a test PNG: {e}"));
        out.into_inner()
    }

    fn checked(bytes: Vec<u8>) -> Result<Checked, UploadError> {
        check(Bytes::from(bytes), UploadRules::default())
    }

    #[test]
    fn accepts_a_picture_and_describes_it() {
        let bytes = png(30, 20);
        let c = checked(bytes.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.mime, c.width, c.height), ("image/png", 30, 20));
        assert_eq!(c.sha256, <[u8; 32]>::from(Sha256::digest(&c.bytes)));
    }

    #[test]
    fn refuses_what_is_not_an_accepted_picture() {
        assert!(matches!(
            checked(b"hello".to_vec()),
            Err(UploadError::UnknownFormat)
        ));
        let mut bmp = Cursor::new(Vec::new());
        image::RgbImage::new(2, 2)
            .write_to(&mut bmp, ImageFormat::Bmp)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            checked(bmp.into_inner()),
            Err(UploadError::Unaccepted(_))
        ));
    }

    #[test]
    fn refuses_a_truncated_picture() {
        let bytes = png(64, 64);
        let cut = bytes[..bytes.len() - 40].to_vec();
        assert!(matches!(checked(cut), Err(UploadError::Corrupt(_))));
        // A JPEG cut in half decodes (the decoder fills in grey) but is still refused.
        let mut jpeg = Cursor::new(Vec::new());
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 0]))
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{e}"));
        let jpeg = jpeg.into_inner();
        let half = jpeg[..jpeg.len() / 2].to_vec();
        for rules in [
            UploadRules::default(),
            UploadRules {
                keep_metadata: true,
                ..UploadRules::default()
            },
        ] {
            assert!(check(Bytes::from(half.clone()), rules).is_err());
        }
    }

    #[test]
    fn refuses_a_colour_profile_bomb() {
        // 64 MiB of zeros deflate to about 64 KB: a profile no picture needs, which every
        // client decoding the stored file would inflate again.
        let profile = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0; 64 << 20], 10);
        let mut iccp = b"bomb\0\0".to_vec();
        iccp.extend_from_slice(&profile);
        let png = png(4, 4);
        let mut crc_input = b"iCCP".to_vec();
        crc_input.extend_from_slice(&iccp);
        let mut chunk = (iccp.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(&crc_input);
        chunk.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
        // After the signature (8) and IHDR (25).
        let bomb = [&png[..33], &chunk[..], &png[33..]].concat();
        assert!(matches!(checked(bomb), Err(UploadError::ProfileTooLarge)));
    }

    #[test]
    fn refuses_a_bomb_from_its_header() {
        // A valid PNG header declaring 100,000 x 100,000 pixels, with no pixel data at all: the
        // refusal must come from the header, since decoding would need 30 GB.
        let mut bytes = png(1, 1);
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        // The IHDR chunk's CRC covers its type and data (bytes 12..29).
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            checked(bytes),
            Err(UploadError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                ..
            })
        ));
    }
}
