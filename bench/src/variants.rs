//! Variants of one JPEG that differ in their pixels and cost the server exactly as much to
//! check as the original, so that every upload of a run is new content.
//!
//! The server stores content by SHA-256 and writes no bytes it already holds, and before
//! hashing it removes metadata and whatever follows the end marker. Uploading one file over
//! and over, or the same file with a different comment, would therefore measure a cheaper
//! path than real uploads take. A variant here changes four entries of the file's first
//! quantisation table: the factors by which the decoder multiplies the four lowest-frequency
//! AC coefficients of every block, which almost every block of a photograph has. So each
//! variant decodes to different pixels, while the entropy-coded data, the file's size and the
//! work of decoding, checking and hashing it are those of the original. Making variants this
//! way costs a copy of the file, where decoding and re-encoding one would cost more than the
//! server's own check, and would change its size.

use anyhow::{bail, ensure};

/// Entries of the first quantisation table that variants change: positions 1 to 4 in the
/// table's zigzag order, the lowest AC frequencies (position 0 is the DC factor).
const VARIED: [usize; 4] = [1, 2, 3, 4];

/// How many different variants there are: every combination of the varied entries but the
/// original's own.
pub const COUNT: u64 = 255u64.pow(VARIED.len() as u32) - 1;

/// A JPEG and where in it the varied entries are.
pub struct Jpeg {
    bytes: Vec<u8>,
    /// Offset of each varied entry (its first byte).
    entries: [usize; VARIED.len()],
    /// The table holds 16-bit entries instead of 8-bit ones.
    wide: bool,
}

impl Jpeg {
    /// Finds the first quantisation table of a JPEG; anything else is an error.
    pub fn parse(bytes: Vec<u8>) -> anyhow::Result<Jpeg> {
        ensure!(
            bytes.starts_with(&[0xFF, 0xD8]),
            "not a JPEG (upload mode varies a JPEG's quantisation tables to make every upload \
             new content)"
        );
        let mut at = 2;
        loop {
            // Markers may be preceded by any number of 0xFF fill bytes.
            while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
                bail!("the JPEG's headers are damaged at byte {at}");
            };
            // Markers without a length: restart markers and TEM.
            if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                at += 2;
                continue;
            }
            if marker == 0xDA || marker == 0xD9 {
                bail!("the JPEG has no quantisation table before its first scan");
            }
            let Some(len) = bytes.get(at + 2..at + 4) else {
                bail!("the JPEG ends inside its headers");
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let segment = at + 4..at + 2 + len;
            ensure!(
                len >= 2 && segment.end <= bytes.len(),
                "the JPEG's segment at byte {at} is cut short"
            );
            if marker == 0xDB {
                let Some(&spec) = bytes.get(segment.start) else {
                    bail!("the JPEG's quantisation table is empty");
                };
                let wide = spec >> 4 == 1;
                let width = if wide { 2 } else { 1 };
                let table = segment.start + 1;
                ensure!(
                    spec >> 4 <= 1 && table + 64 * width <= segment.end,
                    "the JPEG's quantisation table is malformed"
                );
                let entries = VARIED.map(|position| table + position * width);
                return Ok(Jpeg {
                    bytes,
                    entries,
                    wide,
                });
            }
            at = segment.end;
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Variant `n`: for every `n` below [`COUNT`], different bytes from every other `n`'s
    /// and from the original (larger `n` wrap around).
    pub fn variant(&self, n: u64) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        // 1 to COUNT, written in base 255: one digit per entry, not all of them 0.
        let mut digits = n % COUNT + 1;
        // Entry values run from 1 to `top`; each is moved on by its digit, wrapping round, so
        // each digit gives a different value and digit 0 the original one.
        let top: u32 = if self.wide { 65535 } else { 255 };
        for &at in &self.entries {
            let digit = (digits % 255) as u32;
            digits /= 255;
            let value = if self.wide {
                u32::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
            } else {
                u32::from(bytes[at])
            };
            // A stored 0 is invalid; it is treated as 1.
            let varied = 1 + (value.max(1) - 1 + digit) % top;
            if self.wide {
                bytes[at..at + 2].copy_from_slice(&(varied as u16).to_be_bytes());
            } else {
                bytes[at] = varied as u8;
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A small JPEG with detail everywhere, as a photograph has.
    fn photo() -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            let v = (x * 37 + y * 91 + (x * y) % 17) as u8;
            image::Rgb([v, v.wrapping_mul(3), 255 - v])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("encoding a test JPEG: {e}"));
        out.into_inner()
    }

    fn pixels(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory(bytes)
            .unwrap_or_else(|e| panic!("decoding a variant: {e}"))
            .to_rgb8()
            .into_raw()
    }

    #[test]
    fn variants_decode_to_different_pixels_at_the_same_size() {
        let original = photo();
        let jpeg = Jpeg::parse(original.clone()).unwrap_or_else(|e| panic!("{e}"));
        let variants: Vec<Vec<u8>> = [0, 1, 254, 255, 1_000_000, COUNT - 1]
            .into_iter()
            .map(|n| jpeg.variant(n))
            .collect();
        let mut seen = vec![pixels(&original)];
        for variant in &variants {
            assert_eq!(variant.len(), original.len());
            let decoded = pixels(variant);
            assert!(!seen.contains(&decoded), "two variants decode alike");
            seen.push(decoded);
        }
        // Past the count, variants come round again.
        assert_eq!(jpeg.variant(COUNT), variants[0]);
    }

    #[test]
    fn what_is_not_a_jpeg_with_tables_is_refused() {
        assert!(Jpeg::parse(b"\x89PNG\r\n\x1a\n".to_vec()).is_err());
        let original = photo();
        let cut = original[..30].to_vec();
        assert!(Jpeg::parse(cut).is_err());
        assert!(Jpeg::parse(vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]).is_err());
    }
}
