//! Picture variants through real servers: the box fit and the formats, orientation, the limits
//! (a bomb, the deadline, a full pool), and that a variant is made once and then kept (in
//! memory, in the database across a restart, by every server on a shared database) until its
//! picture goes.

use std::io::Cursor;
use std::num::NonZeroU32;
use std::path::Path;

use bytes::Bytes;
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use picture_client::{Client, Fetched};
use picture_protocol::{
    Command, Dimensions, Format, GetRequest, PictureInfo, Selector, Status, Variant,
};
use picture_server::Limits;
use picture_server::answer::Service;
use picture_server::store::{Folder, Store, StoreOptions, StoreUrl};
use picture_server::variants::Settings;

use crate::common::*;
use crate::metrics::{scrape_until, value};
use crate::store::authorized;

/// The largest mean absolute difference (per channel, out of 255) allowed between a variant
/// and the image crate's own Lanczos-3 resize of the decoded original. Lossless PNG output
/// differs only by the two resizers' rounding (and a JPEG source by its scaled decode); JPEG
/// at quality 80 and lossy WebP at 75 add their compression error on top.
const MAX_MEAN_DIFFERENCE: f64 = 6.0;

fn variant(width: u32, height: u32, format: Option<Format>) -> Variant {
    Variant {
        max_width: NonZeroU32::new(width),
        max_height: NonZeroU32::new(height),
        format,
    }
}

/// A 300 x 200 picture with smooth gradients and a sharp-edged disk.
fn scene() -> RgbImage {
    RgbImage::from_fn(300, 200, |x, y| {
        let (dx, dy) = (x as i32 - 150, y as i32 - 100);
        let disk = dx * dx + dy * dy < 60 * 60;
        Rgb([
            (x * 255 / 299) as u8,
            (y * 255 / 199) as u8,
            if disk { 230 } else { 40 },
        ])
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(image)
            .unwrap_or_else(|e| panic!("{e}")),
        other => image
            .write_to(&mut out, other)
            .unwrap_or_else(|e| panic!("{e}")),
    }
    out.into_inner()
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap_or_else(|e| panic!("the variant does not decode: {e}"))
}

/// Mean absolute difference per channel between two images of one size.
fn mean_difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

async fn fetch(client: &mut Client, name: &str, wanted: Variant) -> Fetched {
    within(client.get_variant(Selector::Name(name.into()), wanted, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{name} {wanted:?}: {e}"))
}

async fn put(client: &mut Client, name: &str, bytes: &[u8]) -> PictureInfo {
    within(client.put(name, "", true, bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e}"))
}

fn sqlite(dir: &tempfile::TempDir) -> StoreUrl {
    StoreUrl::Sqlite(dir.path().join("pictures.db"))
}

/// A writable server on a new SQLite database (seeded with the shipped pictures), its folder,
/// and a client that presented the token.
async fn writable() -> (TestServer, tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server =
        TestServer::start_store(&sqlite(&dir), Limits::default(), &StoreOptions::default()).await;
    let client = authorized(server.addr).await;
    (server, dir, client)
}

/// Whether a pixel is the tests' red (220, 20, 20) or blue (20, 20, 220), give or take what
/// lossy encoding does to it.
fn is_red(pixel: &Rgb<u8>) -> bool {
    pixel[0] > 150 && pixel[2] < 100
}

fn is_blue(pixel: &Rgb<u8>) -> bool {
    pixel[2] > 150 && pixel[0] < 100
}

/// How many variants of the content `sha256` a SQLite database keeps.
fn kept_variants(db: &Path, sha256: &[u8; 32]) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
    conn.query_row(
        "SELECT count(*) FROM variants WHERE source = ?1",
        [&sha256[..]],
        |row| row.get(0),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn every_format_pair_fits_its_box_and_looks_like_the_original() {
    let (_server, _dir, mut client) = writable().await;
    let original = DynamicImage::ImageRgb8(scene());
    for (source, source_format) in [
        ("scene-jpeg", ImageFormat::Jpeg),
        ("scene-png", ImageFormat::Png),
        ("scene-webp", ImageFormat::WebP),
    ] {
        let bytes = encode(&original, source_format);
        put(&mut client, source, &bytes).await;
        // What the server was given, decoded, then resized by another implementation.
        let reference = decode(&bytes).resize_exact(120, 80, image::imageops::Lanczos3);
        for format in Format::ALL {
            let got = fetch(&mut client, source, variant(120, 120, Some(format))).await;
            let what = format!("{source} as {}", format.name());
            assert_eq!(got.status, Status::Ok, "{what}");
            assert_eq!(got.mime, format.mime(), "{what}");
            assert_eq!(
                image::guess_format(&got.bytes)
                    .ok()
                    .map(|f| f.to_mime_type()),
                Some(format.mime()),
                "{what}"
            );
            // 300 x 200 in 120 x 120: the width binds, 200 * 120 / 300 = 80.
            assert_eq!(
                got.dimensions,
                Some(Dimensions {
                    width: 120,
                    height: 80
                }),
                "{what}"
            );
            let image = decode(&got.bytes);
            assert_eq!(image.dimensions(), (120, 80), "{what}");
            let difference = mean_difference(&image, &reference);
            assert!(
                difference < MAX_MEAN_DIFFERENCE,
                "{what}: mean difference {difference:.2}"
            );
        }
    }
}

#[tokio::test]
async fn a_picture_is_never_scaled_up_and_rounding_is_as_documented() {
    let server = TestServer::start().await;
    let mut client = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let house = asset_bytes("house");
    // A box larger than the picture, in its own format: the picture exactly as stored.
    for wanted in [
        variant(4000, 4000, None),
        variant(720, 360, Some(Format::Png)),
        variant(0, 360, None),
    ] {
        let got = fetch(&mut client, "house", wanted).await;
        assert_eq!(got.bytes, house, "{wanted:?}");
        assert_eq!(got.mime, "image/png");
        assert_eq!(
            got.dimensions,
            Some(Dimensions {
                width: 720,
                height: 360
            })
        );
    }
    // Converted, not scaled.
    let got = fetch(&mut client, "house", variant(4000, 0, Some(Format::Jpeg))).await;
    assert_eq!(got.mime, "image/jpeg");
    assert_eq!(decode(&got.bytes).dimensions(), (720, 360));
    // 740 x 463 in 200 x 200: 463 * 200 / 740 = 125.1, rounded to 125.
    let got = fetch(&mut client, "forest-small", variant(200, 200, None)).await;
    assert_eq!(got.mime, "image/jpeg");
    assert_eq!(
        got.dimensions,
        Some(Dimensions {
            width: 200,
            height: 125
        })
    );
    assert_eq!(decode(&got.bytes).dimensions(), (200, 125));
    // Only the height bounds: 3264 x 2448 at most 300 high is 400 x 300.
    let got = fetch(&mut client, "mountain", variant(0, 300, Some(Format::WebP))).await;
    assert_eq!(decode(&got.bytes).dimensions(), (400, 300));
    // An unknown picture: the not-found picture (640 x 480), scaled the same way.
    let got = fetch(&mut client, "unicorn", variant(64, 64, None)).await;
    assert_eq!(got.status, Status::NotFound);
    assert_eq!(
        (got.mime.as_str(), got.dimensions),
        (
            "image/png",
            Some(Dimensions {
                width: 64,
                height: 48
            })
        )
    );
}

/// A JPEG whose EXIF says "turn 90 degrees clockwise to show": 300 x 200 stored, left half
/// red and right half blue, so that it shows 200 x 300, red on top.
fn sideways_jpeg() -> Vec<u8> {
    let stored = RgbImage::from_fn(300, 200, |x, _| {
        if x < 150 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let jpeg = encode(&DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg);
    // A TIFF structure with one entry in IFD0: Orientation (0x0112), SHORT, 1 value, 6.
    let mut exif = b"MM\0\x2A\0\0\0\x08\0\x01".to_vec();
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    let mut parsed =
        img_parts::jpeg::Jpeg::from_bytes(Bytes::from(jpeg)).unwrap_or_else(|e| panic!("{e}"));
    img_parts::ImageEXIF::set_exif(&mut parsed, Some(Bytes::from(exif)));
    parsed.encoder().bytes().to_vec()
}

#[tokio::test]
async fn orientation_is_applied_before_the_box_is_fitted() {
    let (_server, _dir, mut client) = writable().await;
    put(&mut client, "sideways", &sideways_jpeg()).await;
    for format in Format::ALL {
        let got = fetch(&mut client, "sideways", variant(100, 100, Some(format))).await;
        // Shown 200 x 300: the height binds, 200 * 100 / 300 = 66.7, rounded to 67.
        assert_eq!(
            got.dimensions,
            Some(Dimensions {
                width: 67,
                height: 100
            }),
            "{format:?}"
        );
        let image = decode(&got.bytes).to_rgb8();
        assert_eq!(image.dimensions(), (67, 100), "{format:?}");
        let (top, bottom) = (image.get_pixel(33, 10), image.get_pixel(33, 90));
        assert!(is_red(top), "{format:?}: top {top:?}");
        assert!(is_blue(bottom), "{format:?}: bottom {bottom:?}");
    }
}

/// A two-frame animated GIF, 40 x 30: red, then blue.
fn animated_gif() -> Vec<u8> {
    let frame = |colour: [u8; 4]| {
        image::Frame::new(image::RgbaImage::from_pixel(40, 30, image::Rgba(colour)))
    };
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        encoder
            .set_repeat(image::codecs::gif::Repeat::Infinite)
            .unwrap_or_else(|e| panic!("{e}"));
        encoder
            .encode_frames([frame([220, 20, 20, 255]), frame([20, 20, 220, 255])])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

#[tokio::test]
async fn an_animated_picture_gives_a_still_of_its_first_frame() {
    let (_server, _dir, mut client) = writable().await;
    put(&mut client, "blink", &animated_gif()).await;
    // No format asked for: a GIF comes as a PNG.
    for (wanted, mime) in [
        (variant(20, 20, None), "image/png"),
        (variant(20, 20, Some(Format::WebP)), "image/webp"),
    ] {
        let got = fetch(&mut client, "blink", wanted).await;
        assert_eq!(got.mime, mime);
        let image = decode(&got.bytes).to_rgb8();
        assert_eq!(image.dimensions(), (20, 15));
        let pixel = image.get_pixel(10, 7);
        assert!(is_red(pixel), "{mime}: {pixel:?}");
    }
}

#[tokio::test]
async fn a_picture_over_the_pixel_limit_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A folder holds what it is given: here a 67-byte PNG declaring 100,000 x 100,000.
    std::fs::write(dir.path().join("bomb.png"), png_bomb()).unwrap_or_else(|e| panic!("{e}"));
    let folder = Folder::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let service = Service::new(std::sync::Arc::new(Store::from_folder(folder)), None);
    let server = TestServer::start_service(service, Limits::default()).await;
    let mut stream = connect(server.addr).await;
    let request = Command::Get(GetRequest {
        selector: Selector::Name("bomb".into()),
        variant: variant(100, 100, Some(Format::WebP)),
    });
    send(&mut stream, &frame(1, request)).await;
    let answer = read_response(&mut stream, &mut Vec::new()).await;
    assert_eq!(answer.head.status, Status::Internal, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("more than the limit of 50000000 pixels"),
        "{}",
        answer.text()
    );
    // The connection serves on.
    send(&mut stream, &frame(2, Command::Ping)).await;
    let pong = read_response(&mut stream, &mut Vec::new()).await;
    assert_eq!((pong.head.id, pong.head.status), (2, Status::Ok));
}

/// A server on the shipped pictures whose variants are made one at a time, with `queue` more
/// waiting, each within `timeout`.
async fn constrained(queue: usize, timeout: std::time::Duration) -> TestServer {
    with_settings(Settings {
        workers: 1,
        queue,
        timeout,
        ..Settings::default()
    })
    .await
}

async fn with_settings(settings: Settings) -> TestServer {
    let folder = Folder::load(&assets_dir()).unwrap_or_else(|e| panic!("{e}"));
    let service = Service::with_variants(
        std::sync::Arc::new(Store::from_folder(folder)),
        None,
        settings,
    );
    TestServer::start_service(service, Limits::default()).await
}

#[tokio::test]
async fn a_variant_over_the_size_limit_is_not_sent() {
    let server = with_settings(Settings {
        max_bytes: 1000,
        ..Settings::default()
    })
    .await;
    let mut client = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The 400 x 300 PNG of the photo is far over 1000 bytes; its 16 x 12 JPEG is not.
    let refused = within(client.get_variant(
        Selector::Name("mountain".into()),
        variant(400, 400, Some(Format::Png)),
        |_, _| {},
    ))
    .await;
    let (status, message) = crate::writes::refusal(refused);
    assert_eq!(status, Status::Internal);
    assert!(message.contains("more than the limit of 1000"), "{message}");
    let small = fetch(&mut client, "mountain", variant(16, 16, Some(Format::Jpeg))).await;
    assert!(small.bytes.len() <= 1000, "{}", small.bytes.len());
}

#[tokio::test]
async fn a_variant_past_its_deadline_is_busy_and_the_connection_stays() {
    // Decoding the 3264 x 2448 photo takes tens of milliseconds, far past 1 ms.
    let server = constrained(4, std::time::Duration::from_millis(1)).await;
    let mut client = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = within(client.get_variant(
        Selector::Name("mountain".into()),
        variant(400, 400, None),
        |_, _| {},
    ))
    .await;
    let (status, message) = crate::writes::refusal(refused);
    assert_eq!(status, Status::Busy);
    assert!(message.contains("deadline"), "{message}");
    within(client.ping())
        .await
        .unwrap_or_else(|e| panic!("the connection did not stay: {e}"));
}

#[tokio::test]
async fn variants_beyond_the_workers_and_the_queue_are_busy() {
    let server = constrained(0, std::time::Duration::from_secs(60)).await;
    // Eight different variants of the large photo at once, on eight connections: one is made
    // at a time and none may wait, so while the first is made the others are refused.
    let requests = (0..8u32).map(|n| {
        let addr = server.addr;
        tokio::spawn(async move {
            let mut client = within(Client::connect(&addr.to_string()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let wanted = variant(300 + n, 300 + n, Some(Format::Jpeg));
            let result =
                within(client.get_variant(Selector::Name("mountain".into()), wanted, |_, _| {}))
                    .await;
            let status = match result {
                Ok(fetched) => fetched.status,
                Err(picture_client::ClientError::Server { status, .. }) => status,
                Err(e) => panic!("{e}"),
            };
            // Busy or not, the connection serves on.
            within(client.ping())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            status
        })
    });
    let mut statuses = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        statuses.push(request.await.unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(statuses.contains(&Status::Ok), "{statuses:?}");
    assert!(statuses.contains(&Status::Busy), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, Status::Ok | Status::Busy)),
        "{statuses:?}"
    );
}

/// The variant the made-once test asks for.
fn thumbnail() -> Command {
    Command::Get(GetRequest {
        selector: Selector::Name("mountain".into()),
        variant: variant(300, 300, Some(Format::WebP)),
    })
}

fn made(metrics: &str) -> f64 {
    value(
        metrics,
        "picture_variants_made_total",
        &[("format", "webp"), ("result", "ok")],
    )
}

fn found(metrics: &str, place: &str) -> f64 {
    value(
        metrics,
        "picture_variant_lookups_total",
        &[("found", place)],
    )
}

#[cfg(unix)]
#[tokio::test]
async fn sixteen_requests_at_once_make_a_variant_once_and_a_restart_reads_it_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    let mut server = start_server_binary(&db, &[]).await;
    let (tcp, http) = (
        server.addr("tcp://"),
        addr_in(&server.next_line().await, "http://"),
    );
    let answers = (0..16).map(|_| tokio::spawn(async move { call(tcp, thumbnail()).await }));
    let mut bodies = Vec::new();
    for answer in answers.collect::<Vec<_>>() {
        let response = answer.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.head.status, Status::Ok, "{}", response.text());
        assert_eq!(
            response.head.dimensions,
            Some(Dimensions {
                width: 300,
                height: 225
            })
        );
        bodies.push(response.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let metrics = scrape_until(http, |m| made(m) >= 1.0).await;
    assert_eq!(made(&metrics), 1.0, "{metrics}");
    assert_eq!(found(&metrics, "made"), 1.0, "{metrics}");
    // Asked again: from memory.
    assert_eq!(call(tcp, thumbnail()).await.body, bodies[0]);
    let metrics = scrape_until(http, |m| found(m, "memory") >= 1.0).await;
    assert_eq!(made(&metrics), 1.0, "{metrics}");
    server.child.kill().await.unwrap_or_else(|e| panic!("{e}"));

    // After a restart, from the database: not made again.
    let mut server = start_server_binary(&db, &[]).await;
    let (tcp, http) = (
        server.addr("tcp://"),
        addr_in(&server.next_line().await, "http://"),
    );
    assert_eq!(call(tcp, thumbnail()).await.body, bodies[0]);
    let metrics = scrape_until(http, |m| found(m, "store") >= 1.0).await;
    assert_eq!(made(&metrics), 0.0, "{metrics}");
}

/// A writable server on a new SQLite database holding a 64 x 48 PNG named "pattern": the
/// server, its folder, the database file, a client with the token, and the PNG's SHA-256.
async fn with_pattern() -> (
    TestServer,
    tempfile::TempDir,
    std::path::PathBuf,
    Client,
    [u8; 32],
) {
    let (server, dir, mut client) = writable().await;
    let db = dir.path().join("pictures.db");
    let pattern = put(&mut client, "pattern", &crate::writes::png(64, 48))
        .await
        .sha256;
    (server, dir, db, client, pattern)
}

#[tokio::test]
async fn boxes_larger_than_the_picture_share_a_variant_and_the_database_keeps_a_few() {
    let (_server, _dir, db, mut client, pattern) = with_pattern().await;
    // 64 x 48 as JPEG in boxes of 64, 100 and 4000: none bounds it, one variant.
    for side in [64, 100, 4000] {
        let got = fetch(
            &mut client,
            "pattern",
            variant(side, side, Some(Format::Jpeg)),
        )
        .await;
        assert_eq!(decode(&got.bytes).dimensions(), (64, 48));
    }
    assert_eq!(kept_variants(&db, &pattern), 1);
    // Every smaller width is a variant of its own: the database keeps 32 of them, and the
    // rest are still made and served.
    for width in 1..=40 {
        let got = fetch(&mut client, "pattern", variant(width, 0, Some(Format::Png))).await;
        assert_eq!(got.dimensions.map(|d| d.width), Some(width));
    }
    assert_eq!(kept_variants(&db, &pattern), 32);
}

#[tokio::test]
async fn replacing_or_deleting_a_picture_drops_its_variants() {
    let (server, _dir, db, mut client, first) = with_pattern().await;
    for format in Format::ALL {
        fetch(&mut client, "pattern", variant(32, 32, Some(format))).await;
    }
    assert_eq!(kept_variants(&db, &first), 3);

    // Replaced: the old content goes, its variants with it, and the new one's are made.
    let second = put(&mut client, "pattern", &crate::writes::png(80, 40))
        .await
        .sha256;
    assert_eq!(kept_variants(&db, &first), 0);
    let got = fetch(&mut client, "pattern", variant(32, 32, Some(Format::Png))).await;
    assert_eq!(
        got.dimensions,
        Some(Dimensions {
            width: 32,
            height: 16
        })
    );
    assert_eq!(kept_variants(&db, &second), 1);

    within(client.delete(Selector::Name("pattern".into())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept_variants(&db, &second), 0);
    assert_intact(server.store()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_variant_made_by_one_server_is_read_by_another_on_the_same_database() {
    let pg = crate::pg::PgServer::start();
    let store = StoreUrl::Postgres(pg.url());
    let mut a = start_server_binary_on(&store, &[]).await;
    let mut b = start_server_binary_on(&store, &[]).await;
    let (a_tcp, a_http) = (a.addr("tcp://"), addr_in(&a.next_line().await, "http://"));
    let (b_tcp, b_http) = (b.addr("tcp://"), addr_in(&b.next_line().await, "http://"));
    let from_a = call(a_tcp, thumbnail()).await;
    assert_eq!(from_a.head.status, Status::Ok, "{}", from_a.text());
    let metrics = scrape_until(a_http, |m| made(m) >= 1.0).await;
    assert_eq!(made(&metrics), 1.0, "{metrics}");

    let from_b = call(b_tcp, thumbnail()).await;
    assert_eq!(from_b.body, from_a.body);
    assert_eq!(from_b.head.dimensions, from_a.head.dimensions);
    let metrics = scrape_until(b_http, |m| found(m, "store") >= 1.0).await;
    assert_eq!(made(&metrics), 0.0, "{metrics}");
}
