//! The time to make one variant, side by side with libvips' `vipsthumbnail` making the same
//! thumbnail from the same file, measured in the same run (BENCHMARKS.md, "Variants").
//!
//! `cargo bench -p picture-server --bench variants [-- ITERATIONS] [--json] [--steps]`
//! (`--json`: the figures also as one JSON line, for `scripts/bench-compare --variants`;
//! `--steps`: also each step of ours beside what it replaced). Ours is
//! [`render`](picture_server::variants::render::render) on one thread, the bytes already in
//! memory; vipsthumbnail gets every copy of the file in one invocation (its start-up spread
//! over all of them, its best case), once with its own thread pool and once on one thread.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use picture_protocol::Format;
use picture_server::variants::render::{Bounds, Made, Target, render};

struct Case {
    file: &'static str,
    side: u32,
    format: Format,
}

const CASES: [Case; 4] = [
    Case {
        file: "mountain.jpg",
        side: 400,
        format: Format::Jpeg,
    },
    Case {
        file: "mountain.jpg",
        side: 400,
        format: Format::WebP,
    },
    Case {
        file: "forest-small.jpg",
        side: 200,
        format: Format::Jpeg,
    },
    Case {
        file: "forest-small.jpg",
        side: 200,
        format: Format::WebP,
    },
];

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let json = std::env::args().any(|a| a == "--json");
    let mut figures = Vec::new();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{:<18} {:>6} {:>5}  {:>10} {:>14} {:>14}  {:>6} {:>6}",
        "file", "box", "out", "ours ms", "vips ms", "vips 1 thr ms", "ratio", "1 thr"
    );
    for case in CASES {
        let source = bytes::Bytes::from(
            std::fs::read(assets.join(case.file)).unwrap_or_else(|e| panic!("{e}")),
        );
        let ours = ours(&source, &case, iterations);
        let vips = vipsthumbnail(
            &assets.join(case.file),
            scratch.path(),
            &case,
            iterations,
            None,
        );
        let vips_one = vipsthumbnail(
            &assets.join(case.file),
            scratch.path(),
            &case,
            iterations,
            Some(1),
        );
        let ms = |d: Option<Duration>| {
            d.map_or("?".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
        };
        let ratio = |theirs: Option<Duration>| {
            theirs.map_or("?".to_owned(), |t| {
                format!("{:.2}x", ours.as_secs_f64() / t.as_secs_f64())
            })
        };
        println!(
            "{:<18} {:>6} {:>5}  {:>10} {:>14} {:>14}  {:>6} {:>6}",
            case.file,
            format!("{0}x{0}", case.side),
            case.format.name(),
            ms(Some(ours)),
            ms(vips),
            ms(vips_one),
            ratio(vips),
            ratio(vips_one),
        );
        let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        figures.push(serde_json::json!({
            "file": case.file,
            "side": case.side,
            "format": case.format.name(),
            "ours_s": ours.as_secs_f64(),
            "vips_s": seconds(vips),
            "vips_one_thread_s": seconds(vips_one),
        }));
    }
    println!(
        "ms: per image, the mean over {iterations}; ratio: ours / vipsthumbnail's (below 1: ours is faster)"
    );
    if std::env::args().any(|a| a == "--steps") {
        steps(&assets, iterations);
    }
    if json {
        println!("{}", serde_json::Value::Array(figures));
    }
}

/// Each step of making the 400 x 300 thumbnail of the 3264 x 2448 photo, beside the simplest
/// alternative: the figures behind each choice of crate.
fn steps(assets: &Path, iterations: u32) {
    use image::{DynamicImage, ImageFormat};
    use picture_protocol::Dimensions;
    use picture_server::store::measure;
    use picture_server::variants::render::{decode, encode, resize};

    let source = bytes::Bytes::from(
        std::fs::read(assets.join("mountain.jpg")).unwrap_or_else(|e| panic!("{e}")),
    );
    let measured = measure(&source, 50_000_000).unwrap_or_else(|e| panic!("{e}"));
    let size = Dimensions {
        width: 400,
        height: 300,
    };
    // Each run returns a number: the width made, or for an encoder the bytes written.
    let time = |what: &str, run: &mut dyn FnMut() -> usize| {
        let made = run();
        let started = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(run());
        }
        let each = started.elapsed() / iterations;
        let bytes = if what.starts_with("encode") {
            format!("{made:>8} bytes")
        } else {
            String::new()
        };
        println!("{what:<62} {:>8.2} ms{bytes}", each.as_secs_f64() * 1e3);
    };
    println!("\nsteps of mountain.jpg to 400x300, per image:");
    let full = image::load_from_memory(&source).unwrap_or_else(|e| panic!("{e}"));
    let scaled = decode(&measured, size).unwrap_or_else(|e| panic!("{e}"));
    time("decode: the image crate, whole (zune-jpeg)", &mut || {
        image::load_from_memory(&source).map_or(0, |i| i.width() as usize)
    });
    time(
        &format!(
            "decode: libjpeg-turbo at a reduced scale ({}x{})",
            scaled.width(),
            scaled.height()
        ),
        &mut || decode(&measured, size).map_or(0, |i| i.width() as usize),
    );
    let lanczos = image::imageops::FilterType::Lanczos3;
    time(
        "resize from 3264x2448: the image crate, Lanczos-3",
        &mut || full.resize_exact(400, 300, lanczos).width() as usize,
    );
    time(
        "resize from 3264x2448: fast_image_resize, Lanczos-3 (and a copy)",
        &mut || resize(full.clone(), size).map_or(0, |i| i.width() as usize),
    );
    time(
        "resize from the reduced scale: the image crate, Lanczos-3",
        &mut || scaled.resize_exact(400, 300, lanczos).width() as usize,
    );
    time(
        "resize from the reduced scale: fast_image_resize (and a copy)",
        &mut || resize(scaled.clone(), size).map_or(0, |i| i.width() as usize),
    );
    let thumbnail: DynamicImage = resize(scaled.clone(), size).unwrap_or_else(|e| panic!("{e}"));
    time("encode JPEG 80: the image crate", &mut || {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&thumbnail)
            .map_or(0, |()| out.len())
    });
    time(
        "encode JPEG 80: libjpeg-turbo (mozjpeg's build)",
        &mut || encode(&thumbnail, Format::Jpeg).map_or(0, |b| b.len()),
    );
    time("encode WebP: the image crate (lossless only)", &mut || {
        let mut out = std::io::Cursor::new(Vec::new());
        thumbnail
            .write_to(&mut out, ImageFormat::WebP)
            .map_or(0, |()| out.get_ref().len())
    });
    time("encode WebP 75: libwebp (lossy)", &mut || {
        encode(&thumbnail, Format::WebP).map_or(0, |b| b.len())
    });
}

/// Our mean time per variant, one thread, after a warm-up.
fn ours(source: &bytes::Bytes, case: &Case, iterations: u32) -> Duration {
    let target = Target {
        max_width: NonZeroU32::new(case.side),
        max_height: NonZeroU32::new(case.side),
        format: case.format,
    };
    let run = || {
        let bounds = Bounds {
            max_pixels: 50_000_000,
            max_bytes: 16 << 20,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        match render(source, target, bounds) {
            Ok(Made::Variant { bytes, .. }) => bytes.len(),
            other => panic!("{}: {other:?}", case.file),
        }
    };
    for _ in 0..3 {
        run();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(run());
    }
    started.elapsed() / iterations
}

/// vipsthumbnail's time per image over `iterations` copies of the file in one invocation;
/// `None` when it is not installed (Debian: libvips-tools).
fn vipsthumbnail(
    file: &Path,
    scratch: &Path,
    case: &Case,
    iterations: u32,
    threads: Option<u32>,
) -> Option<Duration> {
    let inputs = scratch.join("in");
    let _ = std::fs::remove_dir_all(&inputs);
    std::fs::create_dir_all(&inputs).ok()?;
    let copies: Vec<PathBuf> = (0..iterations)
        .map(|n| {
            let copy = inputs.join(format!("{n}-{}", case.file));
            std::fs::copy(file, &copy).map(|_| copy)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    // Same qualities as ours: JPEG 80 with optimised tables, WebP 75; no metadata.
    let output = match case.format {
        Format::Jpeg => "%s-out.jpg[Q=80,optimize_coding,strip]",
        Format::WebP => "%s-out.webp[Q=75,strip]",
        Format::Png => "%s-out.png[strip]",
    };
    let run = || {
        let mut command = Command::new("vipsthumbnail");
        command
            .args(&copies)
            .arg("--size")
            .arg(format!("{0}x{0}", case.side))
            .arg("-o")
            .arg(output);
        if let Some(threads) = threads {
            command.env("VIPS_CONCURRENCY", threads.to_string());
        }
        let started = Instant::now();
        let status = command.status().ok()?;
        status.success().then(|| started.elapsed())
    };
    run()?; // Warm the page cache and the library.
    Some(run()? / iterations)
}
