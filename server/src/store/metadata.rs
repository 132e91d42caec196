//! Removes what an uploaded picture says about who took it, where and with what (EXIF with its
//! GPS position and camera serial numbers, XMP, IPTC, text comments) before anyone else can
//! download it.
//!
//! Only the container is edited: segments and chunks are dropped whole and the compressed
//! pixel data is copied as it is, so the result decodes to exactly the pixels of the original
//! and loses nothing to a second lossy encoding. What a viewer needs to show the picture as
//! its author saw it stays: colour profiles, transparency, gamma, animation, and the EXIF
//! orientation, which is written back alone in a minimal EXIF block so that a photo taken with
//! the phone held upright is still shown upright.
//!
//! Each format keeps a list of what rendering needs and drops everything else, rather than
//! dropping a list of known metadata: decoders skip what they do not know, so an unknown
//! segment is never needed to show the picture, and it may well be a vendor's metadata.

use bytes::{Bytes, BytesMut};
use image::ImageFormat;
use img_parts::ImageEXIF;
use img_parts::jpeg::{Jpeg, JpegSegment, markers};
use img_parts::png::Png;
use img_parts::riff::{RiffChunk, RiffContent};
use img_parts::webp::WebP;

use super::picture::MAX_PICTURE_BYTES;

/// A picture without its metadata, and how much that saved, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The picture's new encoded bytes.
    pub bytes: Bytes,
    /// How many bytes shorter the picture is: the metadata dropped, less the few bytes of the
    /// orientation written back.
    pub removed: usize,
}

/// Why a picture's metadata could not be removed. The picture is then not safe to publish as
/// it is: the caller should refuse it rather than serve the original.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0} bytes is more than the limit of {MAX_PICTURE_BYTES}")]
    TooLarge(usize),
    #[error("not a {0:?} file: the signature does not match")]
    WrongSignature(ImageFormat),
    #[error("truncated {0:?} file: it ends inside a block or before its end marker")]
    Truncated(ImageFormat),
    #[error("corrupt PNG file: a chunk fails its CRC check")]
    BadCrc,
    #[error("malformed {format:?} file: {problem}")]
    Malformed {
        format: ImageFormat,
        problem: &'static str,
    },
}

/// Removes privacy-sensitive metadata from a picture encoded as `format`, keeping its pixels
/// and its orientation.
///
/// JPEG, PNG, WebP and GIF are edited. Other formats come back unchanged: of the formats the
/// server serves that leaves BMP, which has no metadata blocks; formats it does not serve
/// (TIFF, AVIF) are returned with whatever metadata they hold.
///
/// # Errors
///
/// When the bytes are not a whole, well-formed file of `format`. Whatever is kept is copied
/// from the input, so the result is never much larger than the input (the orientation block
/// adds at most a few dozen bytes), however hostile the input.
pub fn strip_metadata(bytes: &[u8], format: ImageFormat) -> Result<Stripped, MetadataError> {
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(MetadataError::TooLarge(bytes.len()));
    }
    let stripped = match format {
        ImageFormat::Jpeg => strip_jpeg(Bytes::copy_from_slice(bytes))?,
        ImageFormat::Png => strip_png(Bytes::copy_from_slice(bytes))?,
        ImageFormat::WebP => strip_webp(Bytes::copy_from_slice(bytes))?,
        ImageFormat::Gif => strip_gif(bytes)?,
        _ => Bytes::copy_from_slice(bytes),
    };
    Ok(Stripped {
        removed: bytes.len().saturating_sub(stripped.len()),
        bytes: stripped,
    })
}

/// JPEG: keeps the segments that decoding needs (tables, frame and scan headers) and of the
/// application segments only JFIF (APP0), the ICC profile (APP2, the colours) and Adobe
/// (APP14, which says how to read CMYK and YCCK). Drops EXIF and XMP (APP1), Photoshop and
/// IPTC (APP13), comments, MPF and every other APPn, any application segment between scans,
/// and everything after the end marker, where phones append more pictures (each with its own
/// EXIF) and motion-photo videos.
fn strip_jpeg(input: Bytes) -> Result<Bytes, MetadataError> {
    const F: ImageFormat = ImageFormat::Jpeg;
    let mut jpeg = Jpeg::from_bytes(input.clone()).map_err(|e| container_error(F, e))?;
    // img-parts parses up to the first scan header and keeps the rest of the file, from the
    // first scan's data on, as that segment's "entropy".
    let Some(scan) = jpeg.segments().last().filter(|s| s.has_entropy()) else {
        return Err(MetadataError::Malformed {
            format: F,
            problem: "no scan",
        });
    };
    let tail_len = scan.len_with_entropy() - scan.len();
    let tail_start = input
        .len()
        .checked_sub(tail_len)
        .ok_or(MetadataError::Malformed {
            format: F,
            problem: "scan data longer than the file",
        })?;
    let scan = JpegSegment::new_with_entropy(
        markers::SOS,
        scan.contents().clone(),
        strip_jpeg_scans(&input.slice(tail_start..))?,
    );

    let headers = &jpeg.segments()[..jpeg.segments().len() - 1];
    // The first EXIF segment, the one most readers take (zune-jpeg takes the last, but files
    // with two are rare); none reads EXIF after the first scan.
    let orientation = headers
        .iter()
        .filter(|s| s.marker() == markers::APP1)
        .find_map(|s| s.contents().strip_prefix(b"Exif\0\0"))
        .and_then(orientation_of);
    let mut kept: Vec<JpegSegment> = headers.iter().filter_map(jpeg_header_segment).collect();
    kept.push(scan);
    *jpeg.segments_mut() = kept;
    if let Some(orientation) = orientation.filter(|&o| o != 1) {
        // After JFIF and before the frame header, where EXIF belongs.
        jpeg.set_exif(Some(orientation_exif(orientation)));
    }
    Ok(jpeg.encoder().bytes())
}

/// A segment before the first scan as it is kept, or `None` to drop it.
fn jpeg_header_segment(segment: &JpegSegment) -> Option<JpegSegment> {
    let contents = segment.contents();
    match segment.marker() {
        // JFIF may carry a thumbnail, which can show what the picture looked like before it
        // was cropped: its size fields become 0 and its pixels go. The first 12 bytes are the
        // identifier, version, density unit and densities.
        markers::APP0 if contents.starts_with(b"JFIF\0") => {
            if contents.len() > 14 {
                let mut jfif = BytesMut::from(&contents[..12]);
                jfif.extend_from_slice(&[0, 0]);
                Some(JpegSegment::new_with_contents(markers::APP0, jfif.freeze()))
            } else {
                Some(segment.clone())
            }
        }
        markers::APP2 if contents.starts_with(b"ICC_PROFILE\0") => Some(segment.clone()),
        markers::APP14 if contents.starts_with(b"Adobe") => Some(segment.clone()),
        markers::APP0..=markers::APP15 | markers::COM => None,
        _ => Some(segment.clone()),
    }
}

/// What follows the first scan header of a JPEG (the scans, the segments between them and
/// the end marker) without its application segments and comments, and without whatever
/// follows the end marker.
///
/// Inside a scan's entropy-coded data every 0xFF is followed by a stuffed 0x00 or a restart
/// marker, so the first other marker ends the scan; segments are then skipped by their
/// length, since their contents (Huffman tables, say) may hold any byte.
fn strip_jpeg_scans(tail: &Bytes) -> Result<Bytes, MetadataError> {
    const F: ImageFormat = ImageFormat::Jpeg;
    let data: &[u8] = tail;
    let mut kept: Vec<&[u8]> = Vec::new();
    // The start of the bytes not yet taken into `kept`.
    let mut from = 0;
    let mut at = 0;
    loop {
        let start = data
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .map(|offset| at + offset)
            .ok_or(MetadataError::Truncated(F))?;
        // Any number of 0xFF fill bytes may come before a marker.
        let mut next = start + 1;
        while data.get(next) == Some(&0xFF) {
            next += 1;
        }
        let marker = *data.get(next).ok_or(MetadataError::Truncated(F))?;
        next += 1;
        match marker {
            // A stuffed 0xFF byte, a restart marker, or another marker without a length.
            0x00 | 0x01 | markers::RST0..=markers::RST7 | markers::SOI => at = next,
            // Nothing dropped: the scans as they are, without a copy.
            markers::EOI if kept.is_empty() => return Ok(tail.slice(..next)),
            markers::EOI => {
                kept.push(&data[from..next]);
                return Ok(concat(&kept));
            }
            _ => {
                let length = data
                    .get(next..next + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(MetadataError::Truncated(F))?;
                if length < 2 {
                    return Err(MetadataError::Malformed {
                        format: F,
                        problem: "segment length below 2",
                    });
                }
                let end = next + length;
                if end > data.len() {
                    return Err(MetadataError::Truncated(F));
                }
                // JFIF, the ICC profile and Adobe must come before the frame header, so
                // decoders use no application segment found here.
                if matches!(marker, markers::APP0..=markers::APP15 | markers::COM) {
                    kept.push(&data[from..start]);
                    from = end;
                }
                at = end;
            }
        }
    }
}

/// PNG chunks kept besides the critical ones: those that change how the picture is shown.
/// (`mDCv` and `cLLi` are the names the HDR chunks had in drafts, which some files use.)
const PNG_KEPT: [[u8; 4]; 18] = [
    *b"tRNS", *b"cHRM", *b"gAMA", *b"iCCP", *b"sBIT", *b"sRGB", *b"cICP", *b"mDCV", *b"cLLI",
    *b"mDCv", *b"cLLi", *b"bKGD", *b"hIST", *b"pHYs", *b"sPLT", *b"acTL", *b"fcTL", *b"fdAT",
];

/// PNG: keeps the critical chunks (IHDR, PLTE, IDAT, IEND: a decoder must understand those)
/// and the ancillary chunks of [`PNG_KEPT`] (colour, transparency, density, APNG animation).
/// Drops eXIf, tEXt, zTXt, iTXt (XMP lives there), tIME, private chunks (which tools use for
/// their own metadata) and anything after IEND.
fn strip_png(input: Bytes) -> Result<Bytes, MetadataError> {
    const F: ImageFormat = ImageFormat::Png;
    let mut png = Png::from_bytes(input).map_err(|e| container_error(F, e))?;
    if png.chunks().first().map(|c| c.kind()) != Some(*b"IHDR") {
        return Err(MetadataError::Malformed {
            format: F,
            problem: "the first chunk is not IHDR",
        });
    }
    // img-parts stops at IEND, or at the end of the bytes.
    if png.chunks().last().map(|c| c.kind()) != Some(*b"IEND") {
        return Err(MetadataError::Truncated(F));
    }
    let orientation = png
        .chunk_by_type(*b"eXIf")
        .and_then(|c| orientation_of(c.contents()));
    // Bit 5 of a chunk type's first letter is clear (upper case) for critical chunks.
    png.chunks_mut()
        .retain(|c| c.kind()[0] & 0x20 == 0 || PNG_KEPT.contains(&c.kind()));
    if let Some(orientation) = orientation.filter(|&o| o != 1) {
        // Right after IHDR: decoders read eXIf only before the image data.
        png.set_exif(Some(orientation_exif(orientation)));
    }
    Ok(png.encoder().bytes())
}

/// WebP chunks kept: the image data, its alpha, the colour profile and animation.
const WEBP_KEPT: [[u8; 4]; 7] = [
    *b"VP8X", *b"VP8 ", *b"VP8L", *b"ALPH", *b"ICCP", *b"ANIM", *b"ANMF",
];
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// WebP: keeps the chunks of [`WEBP_KEPT`]; drops EXIF, XMP, unknown chunks (a RIFF LIST of
/// text, say) and anything after the RIFF chunk, and clears the EXIF and XMP flags of the
/// extended header, which decoders check against the chunks present.
///
/// Only the extended format (with a VP8X header) can carry EXIF, so only there is the
/// orientation written back; a simple file with an EXIF chunk is malformed, and decoders
/// ignore its orientation anyway.
fn strip_webp(input: Bytes) -> Result<Bytes, MetadataError> {
    const F: ImageFormat = ImageFormat::WebP;
    let mut webp = WebP::from_bytes(input).map_err(|e| container_error(F, e))?;
    // The first EXIF chunk, with or without the "Exif\0\0" prefix some writers put in.
    let orientation = webp
        .exif()
        .and_then(|exif| orientation_of(&exif))
        .filter(|&o| o != 1);
    webp.chunks_mut().retain(|c| WEBP_KEPT.contains(&c.id()));
    let chunks = webp.chunks_mut();
    let Some(vp8x) = chunks.iter_mut().find(|c| c.id() == *b"VP8X") else {
        return Ok(webp.encoder().bytes());
    };
    let header = match vp8x.content() {
        RiffContent::Data(data) if data.len() >= 10 => data,
        _ => {
            return Err(MetadataError::Malformed {
                format: F,
                problem: "VP8X chunk shorter than 10 bytes",
            });
        }
    };
    let mut header = BytesMut::from(&header[..]);
    if let Some(flags) = header.first_mut() {
        *flags &= !(VP8X_EXIF | VP8X_XMP);
        if orientation.is_some() {
            *flags |= VP8X_EXIF;
        }
    }
    *vp8x.content_mut() = RiffContent::Data(header.freeze());
    if let Some(orientation) = orientation {
        // After the image data, where the format puts metadata.
        chunks.push(RiffChunk::new(
            *b"EXIF",
            RiffContent::Data(orientation_exif(orientation)),
        ));
    }
    Ok(webp.encoder().bytes())
}

/// GIF application extensions kept: the animation loop count (Netscape's and its twin) and
/// the colour profile.
const GIF_KEPT_APPLICATIONS: [&[u8; 11]; 3] = [b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"];

/// GIF: a GIF has no EXIF, hence no GPS position or orientation, but it may carry comment
/// extensions and XMP or IPTC in application extensions. Keeps the image blocks, the graphic
/// control and plain text extensions (which change what is shown) and the application
/// extensions of [`GIF_KEPT_APPLICATIONS`]; drops comments, other extensions and anything
/// after the trailer. Every block is walked by its sub-block lengths, the way decoders skip
/// what they do not read, so no image data can be mistaken for a block.
fn strip_gif(input: &[u8]) -> Result<Bytes, MetadataError> {
    const F: ImageFormat = ImageFormat::Gif;
    let byte = |at: usize| input.get(at).copied().ok_or(MetadataError::Truncated(F));
    match input.get(..6) {
        Some(b"GIF87a" | b"GIF89a") => {}
        None if b"GIF89a".starts_with(input) || b"GIF87a".starts_with(input) => {
            return Err(MetadataError::Truncated(F));
        }
        _ => return Err(MetadataError::WrongSignature(F)),
    }
    // The 7-byte logical screen descriptor follows; its flags say whether a global colour
    // table of 2^(n+1) RGB entries follows it.
    let mut at = 13 + colour_table_len(byte(10)?);
    if at > input.len() {
        return Err(MetadataError::Truncated(F));
    }
    let mut kept: Vec<&[u8]> = vec![&input[..at]];
    loop {
        let start = at;
        match byte(at)? {
            // The trailer.
            0x3B => {
                kept.push(&input[at..at + 1]);
                return Ok(concat(&kept));
            }
            // An image: a 10-byte descriptor, a local colour table if its flags say so, the
            // LZW code size and the image data as sub-blocks.
            0x2C => {
                at += 10 + colour_table_len(byte(at + 9)?) + 1;
                at = skip_gif_sub_blocks(input, at)?;
                kept.push(&input[start..at]);
            }
            0x21 => {
                let label = byte(at + 1)?;
                let data = at + 2;
                at = skip_gif_sub_blocks(input, data)?;
                let keep = match label {
                    // Graphic control (delay, transparency) and plain text.
                    0xF9 | 0x01 => true,
                    // An application extension: its first sub-block, of 11 bytes, names it.
                    0xFF => {
                        byte(data)? == 11
                            && input.get(data + 1..data + 12).is_some_and(|id| {
                                GIF_KEPT_APPLICATIONS.iter().any(|kept| kept[..] == *id)
                            })
                    }
                    // Comments (0xFE) and extensions no decoder knows.
                    _ => false,
                };
                if keep {
                    kept.push(&input[start..at]);
                }
            }
            _ => {
                return Err(MetadataError::Malformed {
                    format: F,
                    problem: "unknown block type",
                });
            }
        }
    }
}

/// The length of the colour table that a GIF descriptor's flags announce.
fn colour_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Where the GIF sub-blocks starting at `at` end: each is a length byte and that many bytes,
/// and a length of 0 ends them.
fn skip_gif_sub_blocks(input: &[u8], mut at: usize) -> Result<usize, MetadataError> {
    loop {
        let len = *input
            .get(at)
            .ok_or(MetadataError::Truncated(ImageFormat::Gif))?;
        at += 1 + usize::from(len);
        if len == 0 {
            return Ok(at);
        }
        if at > input.len() {
            return Err(MetadataError::Truncated(ImageFormat::Gif));
        }
    }
}

/// The orientation (tag 0x0112 in IFD0) that an EXIF block's TIFF structure holds, read the
/// way the image crate reads it (the first such entry that is one SHORT), so the value
/// written back is the one viewers applied. `None` when there is none or it is not one of the
/// eight valid values.
fn orientation_of(tiff: &[u8]) -> Option<u16> {
    let big_endian = match tiff.get(..4)? {
        b"MM\0\x2A" => true,
        b"II\x2A\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let b = tiff.get(at..at.checked_add(2)?)?;
        let b = [b[0], b[1]];
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd0)?;
    for n in 0..usize::from(entries) {
        // Each entry: tag, type, count, then the value (a SHORT in its first 2 bytes).
        let entry = ifd0.checked_add(2 + 12 * n)?;
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1 {
            return u16_at(entry + 8).filter(|o| (1..=8).contains(o));
        }
    }
    None
}

/// A minimal EXIF block (a TIFF structure, without JPEG's "Exif\0\0" prefix) holding nothing
/// but `orientation`: the byte order, IFD0 with its single entry, and no next IFD.
fn orientation_exif(orientation: u16) -> Bytes {
    let mut tiff = BytesMut::with_capacity(26);
    tiff.extend_from_slice(b"MM\0\x2A");
    tiff.extend_from_slice(&8u32.to_be_bytes()); // IFD0 right after this header
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // the value field's padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff.freeze()
}

fn container_error(format: ImageFormat, error: img_parts::Error) -> MetadataError {
    match error {
        img_parts::Error::WrongSignature => MetadataError::WrongSignature(format),
        img_parts::Error::BadCRC => MetadataError::BadCrc,
        img_parts::Error::Truncated => MetadataError::Truncated(format),
    }
}

fn concat(pieces: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use exif::{Field, In, Rational, Tag, Value};
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::metadata::Orientation;
    use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};
    use img_parts::png::PngChunk;

    use super::*;

    // What the fixtures carry that must not survive.
    const MAKE: &[u8] = b"SecretCam";
    const SERIAL: &[u8] = b"SN-4242-SECRET";
    const XMP: &[u8] = b"<x:xmpmeta><dc:creator>xmp-secret-creator</dc:creator></x:xmpmeta>";
    const TEXT: &[u8] = b"text-secret-comment";
    const IPTC: &[u8] = b"iptc-secret-byline";
    const TRAILER: &[u8] = b"trailer-secret-after-the-end";
    // What must survive: a (fake) colour profile.
    const ICC: &[u8] = b"a colour profile, kept byte for byte";

    fn picture() -> RgbImage {
        RgbImage::from_fn(13, 7, |x, y| {
            Rgb([(x * 19) as u8, (y * 37) as u8, ((x + 3 * y) * 11) as u8])
        })
    }

    fn encode(format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        if format == ImageFormat::Gif {
            // Through the encoder, for a Netscape loop extension that must be kept.
            let mut gif = GifEncoder::new(&mut out);
            let frame = image::Frame::new(DynamicImage::ImageRgb8(picture()).to_rgba8());
            gif.set_repeat(Repeat::Infinite)
                .and_then(|()| gif.encode_frame(frame))
                .unwrap_or_else(|e| panic!("encoding a test GIF: {e}"));
            drop(gif);
        } else {
            picture()
                .write_to(&mut out, format)
                .unwrap_or_else(|e| panic!("encoding a test {format:?}: {e}"));
        }
        out.into_inner()
    }

    /// The latitude 52° 31' 12.34" as the fixtures' EXIF holds it: what must not survive.
    fn latitude(little_endian: bool) -> Vec<u8> {
        [52u32, 1, 31, 1, 1234, 100]
            .iter()
            .flat_map(|n| {
                if little_endian {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                }
            })
            .collect()
    }

    /// An EXIF block (TIFF structure) with a camera make, an orientation, a serial number in
    /// the Exif IFD and a GPS IFD with a latitude and a longitude.
    fn exif_with_gps(orientation: u16, little_endian: bool) -> Vec<u8> {
        let rational = |num, denom| Rational { num, denom };
        let ascii = |s: &[u8]| Value::Ascii(vec![s.to_vec()]);
        let fields = [
            (Tag::Make, ascii(MAKE)),
            (Tag::Orientation, Value::Short(vec![orientation])),
            (Tag::BodySerialNumber, ascii(SERIAL)),
            (Tag::GPSLatitudeRef, ascii(b"N")),
            (
                Tag::GPSLatitude,
                Value::Rational(vec![rational(52, 1), rational(31, 1), rational(1234, 100)]),
            ),
            (Tag::GPSLongitudeRef, ascii(b"E")),
            (
                Tag::GPSLongitude,
                Value::Rational(vec![rational(13, 1), rational(24, 1), rational(5678, 100)]),
            ),
        ]
        .map(|(tag, value)| Field {
            tag,
            ifd_num: In::PRIMARY,
            value,
        });
        let mut writer = exif::experimental::Writer::new();
        for field in &fields {
            writer.push_field(field);
        }
        let mut out = Cursor::new(Vec::new());
        writer
            .write(&mut out, little_endian)
            .unwrap_or_else(|e| panic!("writing test EXIF: {e}"));
        out.into_inner()
    }

    fn xmp_packet() -> Vec<u8> {
        [&b"<?xpacket begin=''?>"[..], XMP, b"<?xpacket end='w'?>"].concat()
    }

    fn jpeg_segment(marker: u8, parts: &[&[u8]]) -> JpegSegment {
        JpegSegment::new_with_contents(marker, Bytes::from(parts.concat()))
    }

    /// A JPEG with EXIF (GPS, serial number, `orientation`), XMP, IPTC, comments before and
    /// after the scan, an MPF segment and a trailer after the end marker; and an ICC profile
    /// and an Adobe segment, which must stay.
    fn jpeg_with_metadata(orientation: u16) -> Vec<u8> {
        let mut jpeg = Jpeg::from_bytes(encode(ImageFormat::Jpeg).into())
            .unwrap_or_else(|e| panic!("parsing the test JPEG: {e}"));
        let exif = exif_with_gps(orientation, false);
        let iptc_dataset = [&[0x1C, 0x02, 0x50, 0x00, IPTC.len() as u8][..], IPTC].concat();
        let iptc_size = (iptc_dataset.len() as u32).to_be_bytes();
        let segments = [
            jpeg_segment(markers::APP1, &[b"Exif\0\0", &exif]),
            jpeg_segment(
                markers::APP1,
                &[b"http://ns.adobe.com/xap/1.0/\0", &xmp_packet()],
            ),
            jpeg_segment(markers::APP2, &[b"ICC_PROFILE\0\x01\x01", ICC]),
            jpeg_segment(markers::APP2, &[b"MPF\0MM\0\x2A\0\0\0\x08"]),
            jpeg_segment(
                markers::APP13,
                &[
                    b"Photoshop 3.0\08BIM\x04\x04\0\0",
                    &iptc_size,
                    &iptc_dataset,
                ],
            ),
            jpeg_segment(markers::APP14, &[b"Adobe\0\x64\0\0\0\0\x01"]),
            jpeg_segment(markers::COM, &[TEXT]),
        ];
        jpeg.segments_mut().splice(1..1, segments);
        let mut bytes = jpeg.encoder().bytes().to_vec();
        assert_eq!(bytes[bytes.len() - 2..], [0xFF, 0xD9]);
        // A comment after the scan data, before the end marker.
        let after_scan = [&[0xFF, 0xFE, 0, 2 + TEXT.len() as u8][..], TEXT].concat();
        bytes.splice(bytes.len() - 2..bytes.len() - 2, after_scan);
        bytes.extend_from_slice(TRAILER);
        bytes
    }

    fn png_chunk(kind: &[u8; 4], parts: &[&[u8]]) -> PngChunk {
        PngChunk::new(*kind, Bytes::from(parts.concat()))
    }

    /// `data` as a zlib stream of one stored (uncompressed) deflate block.
    fn zlib_stored(data: &[u8]) -> Vec<u8> {
        let len = data.len() as u16;
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        [
            &[0x78, 0x01, 0x01][..],
            &len.to_le_bytes(),
            &(!len).to_le_bytes(),
            data,
            &((b << 16) | a).to_be_bytes(),
        ]
        .concat()
    }

    /// A PNG with eXIf (GPS, serial number, `orientation`), tEXt, zTXt, iTXt (XMP), tIME, a
    /// private chunk and bytes after IEND; and pHYs and gAMA, which must stay.
    fn png_with_metadata(orientation: u16) -> Vec<u8> {
        let mut png = Png::from_bytes(encode(ImageFormat::Png).into())
            .unwrap_or_else(|e| panic!("parsing the test PNG: {e}"));
        let chunks = [
            png_chunk(b"eXIf", &[&exif_with_gps(orientation, true)]),
            png_chunk(b"pHYs", &[&[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]]),
            png_chunk(b"tEXt", &[b"Author\0", TEXT]),
            png_chunk(b"zTXt", &[b"Comment\0\0", &zlib_stored(TEXT)]),
            png_chunk(b"iTXt", &[b"XML:com.adobe.xmp\0\0\0\0\0", &xmp_packet()]),
            png_chunk(b"gAMA", &[&45455u32.to_be_bytes()]),
            png_chunk(b"tIME", &[&[0x07, 0xE8, 5, 17, 12, 30, 0]]),
            png_chunk(b"prVW", &[MAKE]),
        ];
        png.chunks_mut().splice(1..1, chunks);
        let mut bytes = png.encoder().bytes().to_vec();
        bytes.extend_from_slice(TRAILER);
        bytes
    }

    fn riff_chunk(id: &[u8; 4], data: &[u8]) -> RiffChunk {
        RiffChunk::new(*id, RiffContent::Data(Bytes::copy_from_slice(data)))
    }

    /// A WebP in the extended format with EXIF (GPS, serial number, `orientation`), XMP, an
    /// unknown chunk and bytes after the RIFF chunk; and an ICC profile, which must stay.
    fn webp_with_metadata(orientation: u16) -> Vec<u8> {
        let simple = WebP::from_bytes(encode(ImageFormat::WebP).into())
            .unwrap_or_else(|e| panic!("parsing the test WebP: {e}"));
        let Some(image) = simple.chunk_by_id(*b"VP8L") else {
            panic!("the image crate wrote no VP8L chunk");
        };
        // Flags (ICC, EXIF, XMP), 3 reserved bytes, canvas width - 1 and height - 1.
        let vp8x = [0x20 | VP8X_EXIF | VP8X_XMP, 0, 0, 0, 12, 0, 0, 6, 0, 0];
        let chunks = vec![
            riff_chunk(b"VP8X", &vp8x),
            riff_chunk(b"ICCP", ICC),
            image.clone(),
            riff_chunk(b"EXIF", &exif_with_gps(orientation, true)),
            riff_chunk(b"XMP ", &xmp_packet()),
            riff_chunk(b"NOTE", TEXT),
        ];
        let riff = RiffChunk::new(
            *b"RIFF",
            RiffContent::List {
                kind: Some(*b"WEBP"),
                subchunks: chunks,
            },
        );
        let mut bytes = riff.encoder().bytes().to_vec();
        bytes.extend_from_slice(TRAILER);
        bytes
    }

    /// Sub-blocks of up to 255 bytes and the 0 that ends them.
    fn gif_sub_blocks(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for block in data.chunks(255) {
            out.push(block.len() as u8);
            out.extend_from_slice(block);
        }
        out.push(0);
        out
    }

    /// The GIF the image crate writes, with a comment, an XMP application extension and
    /// bytes after the trailer. Also returns how many bytes that added.
    fn gif_with_metadata() -> (Vec<u8>, usize) {
        let mut bytes = encode(ImageFormat::Gif);
        let at = 13 + colour_table_len(bytes[10]);
        let comment = [&[0x21, 0xFE][..], &gif_sub_blocks(TEXT)].concat();
        let xmp = [
            &[0x21, 0xFF, 11][..],
            b"XMP DataXMP",
            &gif_sub_blocks(&xmp_packet()),
        ]
        .concat();
        let added = comment.len() + xmp.len() + TRAILER.len();
        bytes.splice(at..at, [comment, xmp].concat());
        bytes.extend_from_slice(TRAILER);
        (bytes, added)
    }

    fn strip(bytes: &[u8], format: ImageFormat) -> Stripped {
        strip_metadata(bytes, format)
            .unwrap_or_else(|e| panic!("stripping a valid {format:?} failed: {e}"))
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// Every secret of the fixtures, for byte searches.
    fn secrets() -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = [MAKE, SERIAL, XMP, TEXT, IPTC, TRAILER]
            .iter()
            .map(|s| s.to_vec())
            .collect();
        all.extend([
            b"xmp-secret-creator".to_vec(),
            latitude(false),
            latitude(true),
        ]);
        all
    }

    fn assert_no_secrets(bytes: &[u8]) {
        for secret in secrets() {
            assert!(
                !contains(bytes, &secret),
                "{:?} survived",
                String::from_utf8_lossy(&secret)
            );
        }
    }

    fn decoded(bytes: &[u8], format: ImageFormat) -> DynamicImage {
        image::load_from_memory_with_format(bytes, format)
            .unwrap_or_else(|e| panic!("decoding a {format:?}: {e}"))
    }

    fn assert_same_pixels(a: &[u8], b: &[u8], format: ImageFormat) {
        let (a, b) = (decoded(a, format), decoded(b, format));
        assert_eq!(
            (a.width(), a.height(), a.color()),
            (b.width(), b.height(), b.color())
        );
        assert!(a.as_bytes() == b.as_bytes(), "the pixels changed");
    }

    /// A decoder for `bytes`, to read back what the image crate sees.
    fn decoder(bytes: &[u8], format: ImageFormat) -> impl ImageDecoder + '_ {
        ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .unwrap_or_else(|e| panic!("reading a {format:?} header: {e}"))
    }

    fn orientation(bytes: &[u8], format: ImageFormat) -> Orientation {
        decoder(bytes, format)
            .orientation()
            .unwrap_or_else(|e| panic!("reading the orientation of a {format:?}: {e}"))
    }

    /// Parses the EXIF of `bytes` and checks that it holds the orientation and nothing else.
    fn assert_only_orientation(bytes: &[u8], expected: u16) {
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(bytes))
            .unwrap_or_else(|e| panic!("no readable EXIF left: {e}"));
        let fields: Vec<Tag> = exif.fields().map(|f| f.tag).collect();
        assert_eq!(fields, [Tag::Orientation]);
        let value = exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
        assert_eq!(value, Some(u32::from(expected)));
    }

    fn assert_no_exif(bytes: &[u8]) {
        let exif = exif::Reader::new().read_from_container(&mut Cursor::new(bytes));
        assert!(
            exif.is_err(),
            "EXIF left: {:?}",
            exif.map(|e| e.fields().count())
        );
    }

    #[test]
    fn the_fixtures_carry_what_they_should() {
        // Checks the checks: every secret and the GPS position are there to be removed.
        let jpeg = jpeg_with_metadata(6);
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&jpeg))
            .unwrap_or_else(|e| panic!("the fixture's EXIF is unreadable: {e}"));
        assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());
        assert!(exif.get_field(Tag::BodySerialNumber, In::PRIMARY).is_some());
        assert_eq!(orientation(&jpeg, ImageFormat::Jpeg), Orientation::Rotate90);
        let mut jpeg_decoder = decoder(&jpeg, ImageFormat::Jpeg);
        assert!(matches!(jpeg_decoder.xmp_metadata(), Ok(Some(_))));
        assert!(matches!(jpeg_decoder.iptc_metadata(), Ok(Some(_))));
        for (bytes, format) in [
            (&jpeg, ImageFormat::Jpeg),
            (&png_with_metadata(6), ImageFormat::Png),
            (&webp_with_metadata(6), ImageFormat::WebP),
        ] {
            for secret in [
                MAKE,
                SERIAL,
                XMP,
                TRAILER,
                &latitude(format != ImageFormat::Jpeg),
            ] {
                assert!(contains(bytes, secret), "{format:?} fixture lacks a secret");
            }
            assert_eq!(orientation(bytes, format), Orientation::Rotate90);
        }
        let (gif, _) = gif_with_metadata();
        assert!(contains(&gif, TEXT) && contains(&gif, XMP));
        decoded(&gif, ImageFormat::Gif);
    }

    #[test]
    fn jpeg_keeps_pixels_orientation_and_colour_and_nothing_else() {
        let original = jpeg_with_metadata(6);
        let stripped = strip(&original, ImageFormat::Jpeg);
        assert_eq!(stripped.removed, original.len() - stripped.bytes.len());
        assert_no_secrets(&stripped.bytes);
        assert_only_orientation(&stripped.bytes, 6);
        assert_eq!(
            orientation(&stripped.bytes, ImageFormat::Jpeg),
            Orientation::Rotate90
        );
        assert_same_pixels(&original, &stripped.bytes, ImageFormat::Jpeg);

        let mut decoder = decoder(&stripped.bytes, ImageFormat::Jpeg);
        assert!(matches!(decoder.xmp_metadata(), Ok(None)));
        assert!(matches!(decoder.iptc_metadata(), Ok(None)));
        assert_eq!(decoder.icc_profile().ok().flatten().as_deref(), Some(ICC));
        let jpeg = Jpeg::from_bytes(stripped.bytes.clone())
            .unwrap_or_else(|e| panic!("the stripped JPEG does not parse: {e}"));
        let markers: Vec<u8> = jpeg.segments().iter().map(|s| s.marker()).collect();
        let kept_app: Vec<u8> = markers
            .iter()
            .copied()
            .filter(|m| m & 0xF0 == 0xE0)
            .collect();
        assert_eq!(
            kept_app,
            [markers::APP0, markers::APP1, markers::APP2, markers::APP14]
        );
        assert!(!markers.contains(&markers::COM));
        // The end marker ends the file.
        assert!(stripped.bytes.ends_with(&[0xFF, 0xD9]));
        assert!(!contains(&stripped.bytes, b"MPF\0"));
    }

    #[test]
    fn png_keeps_pixels_orientation_and_rendering_chunks_and_nothing_else() {
        let original = png_with_metadata(6);
        let stripped = strip(&original, ImageFormat::Png);
        assert_eq!(stripped.removed, original.len() - stripped.bytes.len());
        assert_no_secrets(&stripped.bytes);
        assert_only_orientation(&stripped.bytes, 6);
        assert_eq!(
            orientation(&stripped.bytes, ImageFormat::Png),
            Orientation::Rotate90
        );
        assert_same_pixels(&original, &stripped.bytes, ImageFormat::Png);
        assert!(matches!(
            decoder(&stripped.bytes, ImageFormat::Png).xmp_metadata(),
            Ok(None)
        ));
        let png = Png::from_bytes(stripped.bytes.clone())
            .unwrap_or_else(|e| panic!("the stripped PNG does not parse: {e}"));
        let mut kinds: Vec<[u8; 4]> = png.chunks().iter().map(|c| c.kind()).collect();
        kinds.dedup();
        assert_eq!(
            kinds,
            [*b"IHDR", *b"eXIf", *b"pHYs", *b"gAMA", *b"IDAT", *b"IEND"]
        );
    }

    #[test]
    fn webp_keeps_pixels_orientation_and_colour_and_nothing_else() {
        let original = webp_with_metadata(6);
        let stripped = strip(&original, ImageFormat::WebP);
        assert_eq!(stripped.removed, original.len() - stripped.bytes.len());
        assert_no_secrets(&stripped.bytes);
        assert_only_orientation(&stripped.bytes, 6);
        assert_eq!(
            orientation(&stripped.bytes, ImageFormat::WebP),
            Orientation::Rotate90
        );
        assert_same_pixels(&original, &stripped.bytes, ImageFormat::WebP);
        let mut decoder = decoder(&stripped.bytes, ImageFormat::WebP);
        assert!(matches!(decoder.xmp_metadata(), Ok(None)));
        assert_eq!(decoder.icc_profile().ok().flatten().as_deref(), Some(ICC));

        let webp = WebP::from_bytes(stripped.bytes.clone())
            .unwrap_or_else(|e| panic!("the stripped WebP does not parse: {e}"));
        let ids: Vec<[u8; 4]> = webp.chunks().iter().map(|c| c.id()).collect();
        assert_eq!(ids, [*b"VP8X", *b"ICCP", *b"VP8L", *b"EXIF"]);
        let flags = webp
            .chunk_by_id(*b"VP8X")
            .and_then(|c| c.content().data())
            .and_then(|d| d.first().copied());
        assert_eq!(flags, Some(0x20 | VP8X_EXIF));
    }

    #[test]
    fn gif_loses_comments_and_xmp_but_keeps_its_loop() {
        let (original, added) = gif_with_metadata();
        let stripped = strip(&original, ImageFormat::Gif);
        assert_eq!(stripped.removed, added);
        assert_eq!(stripped.bytes, encode(ImageFormat::Gif));
        assert!(contains(&stripped.bytes, b"NETSCAPE2.0"));
        assert_same_pixels(&original, &stripped.bytes, ImageFormat::Gif);
    }

    #[test]
    fn orientation_1_or_none_leaves_no_exif_at_all() {
        let no_orientation = |format| {
            let clean = encode(format);
            let stripped = strip(&clean, format);
            assert_eq!(
                orientation(&stripped.bytes, format),
                Orientation::NoTransforms
            );
            assert_no_exif(&stripped.bytes);
        };
        for (original, format) in [
            (jpeg_with_metadata(1), ImageFormat::Jpeg),
            (png_with_metadata(1), ImageFormat::Png),
            (webp_with_metadata(1), ImageFormat::WebP),
        ] {
            let stripped = strip(&original, format);
            assert_no_secrets(&stripped.bytes);
            assert_no_exif(&stripped.bytes);
            assert_eq!(
                orientation(&stripped.bytes, format),
                Orientation::NoTransforms
            );
            assert_same_pixels(&original, &stripped.bytes, format);
            no_orientation(format);
        }
        let webp = strip(&webp_with_metadata(1), ImageFormat::WebP).bytes;
        let webp = WebP::from_bytes(webp).unwrap_or_else(|e| panic!("unparsable WebP: {e}"));
        let flags = webp
            .chunk_by_id(*b"VP8X")
            .and_then(|c| c.content().data())
            .and_then(|d| d.first().copied());
        assert_eq!(flags, Some(0x20));
    }

    #[test]
    fn other_orientations_survive_too() {
        for value in 2..=8 {
            let stripped = strip(&jpeg_with_metadata(value), ImageFormat::Jpeg);
            assert_only_orientation(&stripped.bytes, value);
            let expected = Orientation::from_exif(value as u8);
            assert_eq!(
                Some(orientation(&stripped.bytes, ImageFormat::Jpeg)),
                expected
            );
        }
    }

    #[test]
    fn clean_pictures_come_back_byte_identical() {
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Gif,
            ImageFormat::Bmp,
        ] {
            let clean = encode(format);
            let stripped = strip(&clean, format);
            assert!(stripped.bytes == clean, "{format:?} changed");
            assert_eq!(stripped.removed, 0);
        }
    }

    #[test]
    fn the_orientation_is_read_like_the_image_crate_reads_it() {
        for little_endian in [false, true] {
            for value in 1..=8 {
                assert_eq!(
                    orientation_of(&exif_with_gps(value, little_endian)),
                    Some(value)
                );
            }
            assert_eq!(orientation_of(&exif_with_gps(0, little_endian)), None);
            assert_eq!(orientation_of(&exif_with_gps(9, little_endian)), None);
        }
        let minimal = orientation_exif(6);
        assert_eq!(minimal.len(), 26);
        assert_eq!(orientation_of(&minimal), Some(6));
        assert_eq!(
            Orientation::from_exif_chunk(&minimal),
            Some(Orientation::Rotate90)
        );
        // Cut anywhere, or pointing anywhere, it gives an answer and no panic.
        let exif = exif_with_gps(6, true);
        for cut in 0..exif.len() {
            let _ = orientation_of(&exif[..cut]);
        }
        assert_eq!(orientation_of(b"II\x2A\0\xFF\xFF\xFF\xFF"), None);
        assert_eq!(orientation_of(b"II\x2A\0\x08\0\0\0\xFF\xFF"), None);
        assert_eq!(orientation_of(b"Exif\0\0MM\0\x2A"), None);
    }

    #[test]
    fn segments_between_scans_and_after_the_end_go() {
        let tail = [
            // Entropy-coded data with a stuffed 0xFF and a restart marker.
            &[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56][..],
            // A Huffman table whose contents look like an end marker and an APP1.
            &[0xFF, 0xC4, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xE1],
            // XMP between scans, and a comment after a fill byte.
            &[0xFF, 0xE1, 0x00, 0x06],
            b"GPS!",
            &[0xFF, 0xFF, 0xFE, 0x00, 0x04, b'h', b'i'],
            // The next scan's header and data, and the end.
            &[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00],
            &[0x78, 0xFF, 0x00, 0xFF, 0xD9],
            TRAILER,
        ]
        .concat();
        let expected = [
            &[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56][..],
            &[0xFF, 0xC4, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xE1],
            &[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00],
            &[0x78, 0xFF, 0x00, 0xFF, 0xD9],
        ]
        .concat();
        let stripped = strip_jpeg_scans(&Bytes::from(tail.clone()))
            .unwrap_or_else(|e| panic!("valid scans rejected: {e}"));
        assert_eq!(stripped, expected);
        // Without its end marker, the same is truncated wherever it is cut.
        let end = tail.len() - TRAILER.len();
        for cut in 0..end {
            assert_eq!(
                strip_jpeg_scans(&Bytes::copy_from_slice(&tail[..cut])),
                Err(MetadataError::Truncated(ImageFormat::Jpeg))
            );
        }
    }

    #[test]
    fn a_jfif_thumbnail_goes() {
        let mut jpeg = Jpeg::from_bytes(encode(ImageFormat::Jpeg).into())
            .unwrap_or_else(|e| panic!("parsing the test JPEG: {e}"));
        let original_jfif = jpeg.segments()[0].contents().clone();
        assert!(original_jfif.starts_with(b"JFIF\0") && original_jfif.len() == 14);
        // A 2x1 thumbnail: 6 bytes of RGB.
        let mut with_thumbnail = original_jfif[..12].to_vec();
        with_thumbnail.extend_from_slice(&[2, 1, 1, 2, 3, 4, 5, 6]);
        jpeg.segments_mut()[0] =
            JpegSegment::new_with_contents(markers::APP0, with_thumbnail.into());
        let original = jpeg.encoder().bytes();
        let stripped = strip(&original, ImageFormat::Jpeg);
        assert_eq!(stripped.removed, 6);
        assert_eq!(stripped.bytes, encode(ImageFormat::Jpeg));
    }

    #[test]
    fn truncated_pictures_give_an_error_or_a_clean_picture() {
        let (gif, _) = gif_with_metadata();
        for (original, format) in [
            (jpeg_with_metadata(6), ImageFormat::Jpeg),
            (png_with_metadata(6), ImageFormat::Png),
            (webp_with_metadata(6), ImageFormat::WebP),
            (gif, ImageFormat::Gif),
        ] {
            let mut errors = 0;
            for cut in 0..original.len() {
                match strip_metadata(&original[..cut], format) {
                    Ok(stripped) => {
                        assert_no_secrets(&stripped.bytes);
                        assert!(stripped.bytes.len() <= cut);
                    }
                    Err(_) => errors += 1,
                }
            }
            // Only a cut in the trailer leaves a whole picture.
            assert!(errors >= original.len() - TRAILER.len(), "{format:?}");
            let half = &original[..original.len() / 2];
            assert_eq!(
                strip_metadata(half, format),
                Err(MetadataError::Truncated(format))
            );
        }
    }

    #[test]
    fn corrupt_pictures_never_panic() {
        // xorshift: the same corruptions on every run.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (gif, _) = gif_with_metadata();
        for (original, format) in [
            (jpeg_with_metadata(6), ImageFormat::Jpeg),
            (png_with_metadata(6), ImageFormat::Png),
            (webp_with_metadata(6), ImageFormat::WebP),
            (gif, ImageFormat::Gif),
        ] {
            for _ in 0..1000 {
                let mut bytes = original.clone();
                for _ in 0..1 + random() % 4 {
                    let at = (random() % bytes.len() as u64) as usize;
                    bytes[at] = random() as u8;
                }
                if let Ok(stripped) = strip_metadata(&bytes, format) {
                    assert!(stripped.bytes.len() <= bytes.len() + 26 + 10);
                }
            }
        }
    }

    #[test]
    fn the_wrong_format_is_an_error() {
        let png = encode(ImageFormat::Png);
        let jpeg = encode(ImageFormat::Jpeg);
        for (bytes, format) in [
            (&png, ImageFormat::Jpeg),
            (&jpeg, ImageFormat::Png),
            (&jpeg, ImageFormat::WebP),
            (&jpeg, ImageFormat::Gif),
        ] {
            assert_eq!(
                strip_metadata(bytes, format),
                Err(MetadataError::WrongSignature(format))
            );
        }
        let mut corrupt = png.clone();
        let last_idat_byte = corrupt.len() - 12 - 4 - 1;
        corrupt[last_idat_byte] ^= 0xFF;
        assert_eq!(
            strip_metadata(&corrupt, ImageFormat::Png),
            Err(MetadataError::BadCrc)
        );
        let too_large = vec![0; MAX_PICTURE_BYTES + 1];
        assert_eq!(
            strip_metadata(&too_large, ImageFormat::Bmp),
            Err(MetadataError::TooLarge(MAX_PICTURE_BYTES + 1))
        );
    }

    #[test]
    fn the_committed_fixture_loses_its_gps_but_not_its_orientation() {
        let original = include_bytes!("../../../tests/fixtures/gps-rotated.jpg");
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&original[..]))
            .unwrap_or_else(|e| panic!("the fixture's EXIF is unreadable: {e}"));
        assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());
        assert_eq!(
            orientation(original, ImageFormat::Jpeg),
            Orientation::Rotate90
        );

        let stripped = strip(original, ImageFormat::Jpeg);
        assert_only_orientation(&stripped.bytes, 6);
        assert_eq!(
            orientation(&stripped.bytes, ImageFormat::Jpeg),
            Orientation::Rotate90
        );
        assert_same_pixels(original, &stripped.bytes, ImageFormat::Jpeg);
        assert!(!contains(&stripped.bytes, b"GPS"));
    }
}
