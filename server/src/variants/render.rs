//! Making one variant from a picture's bytes: decode (a JPEG at a reduced scale when the box
//! allows, as libvips' shrink-on-load does), turn it the way its EXIF orientation says, scale
//! it down with a SIMD resizer, encode it. Blocking and CPU-bound: it runs on the variant
//! pool's threads (see [`super::pool`]), never on the async workers.

use std::num::NonZeroU32;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use bytes::Bytes;
use fast_image_resize as fr;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, RgbImage};
use picture_protocol::{Dimensions, Format};

use crate::store::{Measured, UploadError, measure};

/// JPEG quality of a variant: what libvips and most image servers default to (75 to 85),
/// small enough for a thumbnail strip, with no visible blocking at thumbnail sizes.
pub const JPEG_QUALITY: f32 = 80.0;

/// WebP quality of a variant (lossy): libwebp's and libvips' default.
pub const WEBP_QUALITY: f32 = 75.0;

/// What to make: the box the picture must fit in (`None`: no bound on that side) and the
/// format to encode it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub max_width: Option<NonZeroU32>,
    pub max_height: Option<NonZeroU32>,
    pub format: Format,
}

/// What a variant may cost.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The upload limit on pixels, checked again from the header before decoding: a store
    /// may hold a picture from before the limit was lowered, or a folder anything.
    pub max_pixels: u64,
    /// Largest variant, in bytes.
    pub max_bytes: usize,
    /// The work stops at the next step after this instant.
    pub deadline: Instant,
}

/// What [`render`] made.
#[derive(Debug, PartialEq, Eq)]
pub enum Made {
    /// The picture as stored is the answer: it fits in the box and is in the format asked
    /// for. Its dimensions as shown (orientation applied).
    Original(Dimensions),
    /// A new picture.
    Variant {
        bytes: Vec<u8>,
        dimensions: Dimensions,
    },
}

impl From<UploadError> for RenderError {
    fn from(error: UploadError) -> RenderError {
        match error {
            UploadError::UnknownFormat => RenderError::UnknownFormat,
            UploadError::TooManyPixels { width, height, max } => {
                RenderError::TooManyPixels { width, height, max }
            }
            other => RenderError::Decode(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the picture is not in a format this server reads")]
    UnknownFormat,
    #[error("the picture is {width}x{height}, more than the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("cannot decode the picture: {0}")]
    Decode(String),
    #[error("cannot encode the variant: {0}")]
    Encode(String),
    #[error("the variant would be {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the variant was not made within its deadline")]
    Deadline,
}

/// The size of a `width` x `height` picture scaled down to fit inside the box, its aspect
/// ratio kept: the side the box bounds gets the box's size exactly, the other is rounded to
/// the nearest pixel (at least 1). A picture the box holds keeps its size: never scaled up.
/// (A picture with no pixels keeps its size too: there is nothing to scale.)
pub fn fit(
    width: u32,
    height: u32,
    max_width: Option<NonZeroU32>,
    max_height: Option<NonZeroU32>,
) -> Dimensions {
    if width == 0 || height == 0 {
        return Dimensions { width, height };
    }
    let box_width = max_width.map_or(width, NonZeroU32::get).min(width);
    let box_height = max_height.map_or(height, NonZeroU32::get).min(height);
    let (w, h) = (u64::from(width), u64::from(height));
    let (bw, bh) = (u64::from(box_width), u64::from(box_height));
    // The width binds when box_width / width <= box_height / height.
    if bw * h <= bh * w {
        let scaled = ((h * bw + w / 2) / w).clamp(1, bh);
        Dimensions {
            width: box_width,
            height: scaled as u32,
        }
    } else {
        let scaled = ((w * bh + h / 2) / h).clamp(1, bw);
        Dimensions {
            width: scaled as u32,
            height: box_height,
        }
    }
}

/// Makes the variant `target` of the picture `source`.
pub fn render(source: &Bytes, target: Target, bounds: Bounds) -> Result<Made, RenderError> {
    // The checks an upload's header passes, under the same budgets: nothing is decoded yet.
    let measured = measure(source, bounds.max_pixels)?;
    let (format, width, height) = (measured.format, measured.width, measured.height);
    let orientation = orientation_of(&measured);
    let turned = swaps_sides(orientation);
    let (shown_width, shown_height) = if turned {
        (height, width)
    } else {
        (width, height)
    };
    let shown = fit(
        shown_width,
        shown_height,
        target.max_width,
        target.max_height,
    );
    if (shown.width, shown.height) == (shown_width, shown_height)
        && Format::from_mime(format.to_mime_type()) == Some(target.format)
    {
        return Ok(Made::Original(shown));
    }
    // The size to scale to, in the picture's stored orientation.
    let stored = if turned {
        Dimensions {
            width: shown.height,
            height: shown.width,
        }
    } else {
        shown
    };

    let decoded = decode(&measured, stored)?;
    check_deadline(bounds)?;
    let mut resized = resize(decoded, stored)?;
    check_deadline(bounds)?;
    resized.apply_orientation(orientation);
    let bytes = encode(&resized, target.format)?;
    check_deadline(bounds)?;
    if bytes.len() > bounds.max_bytes {
        return Err(RenderError::TooLarge {
            len: bytes.len(),
            max: bounds.max_bytes,
        });
    }
    Ok(Made::Variant {
        bytes,
        dimensions: shown,
    })
}

fn check_deadline(bounds: Bounds) -> Result<(), RenderError> {
    if Instant::now() >= bounds.deadline {
        return Err(RenderError::Deadline);
    }
    Ok(())
}

/// Whether a picture with this orientation is shown with its width and height swapped.
fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The picture's EXIF orientation (upright when it has none or it cannot be read).
fn orientation_of(measured: &Measured<'_>) -> Orientation {
    measured
        .reader()
        .into_decoder()
        .and_then(|mut decoder| decoder.orientation())
        .unwrap_or(Orientation::NoTransforms)
}

/// The picture decoded, at least `at_least` in its stored orientation where the format can
/// decode at a reduced scale (JPEG), whole otherwise. (Public, like [`resize`] and
/// [`encode`], for the benchmark that compares each step with its alternatives.)
pub fn decode(measured: &Measured<'_>, at_least: Dimensions) -> Result<DynamicImage, RenderError> {
    if measured.format == ImageFormat::Jpeg
        && let Some(image) = decode_jpeg_scaled(measured, at_least)
    {
        return Ok(image);
    }
    // Animated GIF and WebP: their first frame.
    measured
        .reader()
        .decode()
        .map_err(|e| RenderError::Decode(e.to_string()))
}

/// A JPEG decoded by libjpeg-turbo (mozjpeg's build) at the smallest scale of n/8 that keeps
/// it at least `at_least`: at 1/8 only the DC coefficient of each block is transformed, which
/// makes an 8-megapixel photo's thumbnail several times cheaper than decoding it whole.
/// `None` when libjpeg cannot give RGB (CMYK) or fails: the image crate's decoder then
/// decodes the whole picture, and reports what is wrong with it.
fn decode_jpeg_scaled(measured: &Measured<'_>, at_least: Dimensions) -> Option<DynamicImage> {
    // libjpeg reports errors by unwinding out of its callbacks (mozjpeg's error manager).
    panic::catch_unwind(AssertUnwindSafe(|| {
        let mut decompress = mozjpeg::Decompress::builder()
            .from_mem(measured.bytes())
            .ok()?;
        let (width, height) = (decompress.width(), decompress.height());
        // libjpeg reads the same frame header as the measuring did; should they ever
        // disagree, the image crate decodes it under the measured limits instead.
        if (width, height) != (measured.width as usize, measured.height as usize) {
            return None;
        }
        let eighths = (1..=8u8)
            .find(|&n| {
                let scaled = |side: usize| (side * usize::from(n)).div_ceil(8);
                scaled(width) >= at_least.width as usize
                    && scaled(height) >= at_least.height as usize
            })
            .unwrap_or(8);
        decompress.scale(eighths);
        let mut started = decompress.rgb().ok()?;
        let (width, height) = (started.width(), started.height());
        let pixels: Vec<u8> = started.read_scanlines().ok()?;
        started.finish().ok()?;
        RgbImage::from_raw(
            u32::try_from(width).ok()?,
            u32::try_from(height).ok()?,
            pixels,
        )
        .map(DynamicImage::ImageRgb8)
    }))
    .ok()
    .flatten()
}

/// `image` scaled to exactly `size` with a Lanczos-3 filter (libvips' default for thumbnails),
/// alpha kept when there is one.
pub fn resize(image: DynamicImage, size: Dimensions) -> Result<DynamicImage, RenderError> {
    if (image.width(), image.height()) == (size.width, size.height) {
        return Ok(image);
    }
    let fail = |e: &dyn std::fmt::Display| RenderError::Decode(format!("cannot scale: {e}"));
    let (width, height) = (image.width(), image.height());
    let (pixels, pixel_type) = if image.color().has_alpha() {
        (image.into_rgba8().into_raw(), fr::PixelType::U8x4)
    } else {
        (image.into_rgb8().into_raw(), fr::PixelType::U8x3)
    };
    let source =
        fr::images::Image::from_vec_u8(width, height, pixels, pixel_type).map_err(|e| fail(&e))?;
    let mut scaled = fr::images::Image::new(size.width, size.height, pixel_type);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&source, &mut scaled, &options)
        .map_err(|e| fail(&e))?;
    let pixels = scaled.into_vec();
    let image = if pixel_type == fr::PixelType::U8x4 {
        image::RgbaImage::from_raw(size.width, size.height, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(size.width, size.height, pixels).map(DynamicImage::ImageRgb8)
    };
    image.ok_or_else(|| fail(&"the scaled buffer has the wrong size"))
}

/// `image` in `format`, at the qualities of [`JPEG_QUALITY`] and [`WEBP_QUALITY`].
pub fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, RenderError> {
    let fail = |e: &dyn std::fmt::Display| RenderError::Encode(e.to_string());
    let (width, height) = (image.width(), image.height());
    match format {
        Format::Jpeg => {
            // JPEG has no transparency: the picture is laid on black, as libvips does.
            let rgb = on_black(image);
            panic::catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
                let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
                // libjpeg-turbo's own settings: mozjpeg's trellis search would make files a
                // little smaller at several times the cost.
                compress.set_fastest_defaults();
                compress.set_size(width as usize, height as usize);
                compress.set_quality(JPEG_QUALITY);
                compress.set_optimize_coding(true);
                let mut started = compress.start_compress(Vec::new())?;
                started.write_scanlines(rgb.as_raw())?;
                started.finish()
            }))
            .map_err(|_| fail(&"libjpeg failed"))?
            .map_err(|e| fail(&e))
        }
        Format::Png => {
            let mut out = Vec::new();
            let encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
            let converted;
            let image = match image {
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
                other => {
                    converted = DynamicImage::ImageRgba8(other.to_rgba8());
                    &converted
                }
            };
            encoder
                .write_image(image.as_bytes(), width, height, image.color().into())
                .map_err(|e| fail(&e))?;
            Ok(out)
        }
        Format::WebP => {
            let rgba;
            let rgb;
            let encoder = if image.color().has_alpha() {
                rgba = image.to_rgba8();
                webp::Encoder::from_rgba(rgba.as_raw(), width, height)
            } else {
                rgb = image.to_rgb8();
                webp::Encoder::from_rgb(rgb.as_raw(), width, height)
            };
            encoder
                .encode_simple(false, WEBP_QUALITY)
                .map(|memory| memory.to_vec())
                .map_err(|e| fail(&format!("libwebp: {e:?}")))
        }
    }
}

/// `image` without its alpha channel, as if laid on black: each colour scaled by its alpha.
fn on_black(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let scale = |c: u8| ((u16::from(c) * u16::from(a) + 127) / 255) as u8;
        image::Rgb([scale(r), scale(g), scale(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(w: u32, h: u32) -> (Option<NonZeroU32>, Option<NonZeroU32>) {
        (NonZeroU32::new(w), NonZeroU32::new(h))
    }

    fn fitted(width: u32, height: u32, bw: u32, bh: u32) -> (u32, u32) {
        let (max_width, max_height) = boxed(bw, bh);
        let d = fit(width, height, max_width, max_height);
        (d.width, d.height)
    }

    #[test]
    fn a_picture_is_fitted_inside_its_box_and_never_scaled_up() {
        assert_eq!(fitted(3264, 2448, 400, 400), (400, 300));
        assert_eq!(fitted(2448, 3264, 400, 400), (300, 400));
        assert_eq!(fitted(3264, 2448, 400, 0), (400, 300));
        assert_eq!(fitted(3264, 2448, 0, 300), (400, 300));
        assert_eq!(fitted(740, 463, 200, 200), (200, 125));
        // 463 * 200 / 740 = 125.1: the other side is rounded to the nearest pixel.
        assert_eq!(fitted(740, 463, 0, 0), (740, 463));
        assert_eq!(fitted(740, 463, 4000, 4000), (740, 463));
        assert_eq!(fitted(740, 463, 740, 10_000), (740, 463));
        // A very thin picture keeps at least one pixel.
        assert_eq!(fitted(10_000, 1, 100, 100), (100, 1));
        assert_eq!(fitted(1, 10_000, 100, 100), (1, 100));
        assert_eq!(fitted(1, 1, 1, 1), (1, 1));
        assert_eq!(fitted(u32::MAX, u32::MAX, 7, 5), (5, 5));
        // No pixels: nothing to scale, and no division by zero.
        assert_eq!(fitted(0, 10, 5, 5), (0, 10));
        assert_eq!(fitted(10, 0, 5, 5), (10, 0));
    }

    #[test]
    fn transparency_is_laid_on_black_for_jpeg() {
        let image = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(3, 1, |x, _| {
            image::Rgba([200, 100, 50, [255, 128, 0][x as usize]])
        }));
        let flat = on_black(&image);
        assert_eq!(flat.get_pixel(0, 0).0, [200, 100, 50]);
        assert_eq!(flat.get_pixel(1, 0).0, [100, 50, 25]);
        assert_eq!(flat.get_pixel(2, 0).0, [0, 0, 0]);
    }
}
