//! Fetching one picture: progress bar, then checks that what arrived is the picture the
//! catalog describes before anything is saved or shown.

use std::io::Cursor;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use picture_client::{Client, Fetched};
use picture_protocol::{PictureInfo, Selector, Status, Variant};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;

/// Transfers quicker than this finish without a progress bar flashing up.
const PROGRESS_DELAY: Duration = Duration::from_millis(300);

/// A progress bar on standard error that shows up only for transfers that take more than a
/// moment.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
            started: Instant::now(),
        }
    }

    pub fn update(&self, done: u64, total: u64) {
        if self.bar.is_hidden() && self.started.elapsed() > PROGRESS_DELAY {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.set_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A picture received and checked.
pub struct Received {
    pub info: PictureInfo,
    pub bytes: Vec<u8>,
    pub elapsed: Duration,
}

pub enum Outcome {
    Found(Received),
    NotFound,
}

impl Received {
    /// One line for people: what arrived and how fast.
    pub fn summary(&self) -> String {
        format!(
            "{} ({}): {}x{} {}, {} in {:.2} s",
            self.info.title,
            self.info.name,
            self.info.width,
            self.info.height,
            self.info.mime,
            human_bytes(self.bytes.len() as u64),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Fetches the picture `selector` names, or its `variant`. The catalog is fetched first so
/// that what arrives can be checked against it (see [`fetch_from`]).
pub fn fetch(
    rt: &Runtime,
    client: &mut Client,
    selector: &Selector,
    variant: Variant,
) -> anyhow::Result<Outcome> {
    let catalog = rt.block_on(client.list())?;
    fetch_from(rt, client, &catalog, selector, variant)
}

/// [`fetch`] with a catalog already at hand. The picture as stored is checked against the
/// size, hash and dimensions the catalog gives; a variant against the format asked for and
/// the dimensions the answer gives, and described by them.
pub fn fetch_from(
    rt: &Runtime,
    client: &mut Client,
    catalog: &[PictureInfo],
    selector: &Selector,
    variant: Variant,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let bar = Progress::new();
    let fetched = rt.block_on(
        client.get_variant(selector.clone(), variant, |done, total| {
            bar.update(done, total)
        }),
    );
    bar.finish();
    let fetched = fetched?;
    if fetched.status == Status::NotFound {
        return Ok(Outcome::NotFound);
    }
    let Some(info) = catalog.iter().find(|p| p.is_selected_by(selector)) else {
        bail!("the server sent picture {selector}, which its catalog does not list");
    };
    let info = if variant.is_original() {
        check(info, &fetched.bytes)?;
        info.clone()
    } else {
        let info = variant_info(info, variant, &fetched)?;
        check_pixels(&info, &fetched.bytes)?;
        info
    };
    Ok(Outcome::Found(Received {
        info,
        bytes: fetched.bytes,
        elapsed: started.elapsed(),
    }))
}

/// What a variant of `info` that arrived as `fetched` is: its format and dimensions as the
/// answer gives them, its own size and hash.
fn variant_info(
    info: &PictureInfo,
    variant: Variant,
    fetched: &Fetched,
) -> anyhow::Result<PictureInfo> {
    let Some(dimensions) = fetched.dimensions else {
        bail!(
            "the server sent a variant of {} without its dimensions",
            info.name
        );
    };
    if let Some(format) = variant.format
        && fetched.mime != format.mime()
    {
        bail!(
            "asked for {}, the server sent {}",
            format.mime(),
            fetched.mime
        );
    }
    Ok(PictureInfo {
        mime: fetched.mime.clone(),
        width: dimensions.width,
        height: dimensions.height,
        size: u32::try_from(fetched.bytes.len()).unwrap_or(u32::MAX),
        sha256: Sha256::digest(&fetched.bytes).into(),
        ..info.clone()
    })
}

/// Confirms that `bytes` are the picture `info` describes and that they decode as an image.
fn check(info: &PictureInfo, bytes: &[u8]) -> anyhow::Result<()> {
    if bytes.len() as u64 != u64::from(info.size) {
        bail!(
            "received {} bytes of {}, the catalog says {}",
            bytes.len(),
            info.name,
            info.size
        );
    }
    if <[u8; 32]>::from(Sha256::digest(bytes)) != info.sha256 {
        bail!(
            "the bytes received for {} do not match the catalog's hash",
            info.name
        );
    }
    check_pixels(info, bytes)
}

/// Confirms that `bytes` decode as a picture of the dimensions `info` gives (as shown: turned
/// the way its EXIF orientation says, as a variant's dimensions are).
fn check_pixels(info: &PictureInfo, bytes: &[u8]) -> anyhow::Result<()> {
    let invalid = || {
        format!(
            "the server sent bytes for {} that are not a valid picture",
            info.name
        )
    };
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .with_context(invalid)?
        .into_decoder()
        .with_context(invalid)?;
    let turned = matches!(
        decoder.orientation().with_context(invalid)?,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let image = DynamicImage::from_decoder(decoder).with_context(invalid)?;
    let (width, height) = (image.width(), image.height());
    let as_stored = (info.width, info.height) == (width, height);
    let as_shown = (info.width, info.height) == (height, width) && turned;
    if !as_stored && !as_shown {
        bail!(
            "{} decodes as {}x{}, the catalog says {}x{}",
            info.name,
            image.width(),
            image.height(),
            info.width,
            info.height
        );
    }
    Ok(())
}

/// A file name for a picture: its name and the usual extension of its type.
pub fn file_name(info: &PictureInfo) -> String {
    let extension = image::ImageFormat::from_mime_type(&info.mime)
        .and_then(|f| f.extensions_str().first().copied())
        .unwrap_or("img");
    // Names come from the server: keep only what is safe in a file name.
    let safe: String = info
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.{extension}")
}

/// A file name for a variant: the picture's, with its size, so that it never overwrites the
/// picture saved at full size (`mountain-400x300.webp`).
pub fn variant_file_name(info: &PictureInfo) -> String {
    let plain = file_name(info);
    match plain.rsplit_once('.') {
        Some((stem, extension)) => {
            format!("{stem}-{}x{}.{extension}", info.width, info.height)
        }
        None => plain,
    }
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1024 * 1024 => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
        n if n >= 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}
