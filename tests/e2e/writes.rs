//! Changing the catalog over the framed protocol: the credential, uploads and their checks,
//! deletes, renames, retitles and moves.

use std::io::Cursor;

use picture_client::{Client, ClientError};
use picture_protocol::{Command, PutRequest, Request, Selector, Status};
use picture_server::Limits;
use tokio::io::AsyncReadExt;

use crate::common::*;
use crate::store::authorized;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A new SQLite store in a temporary folder, seeded with the shipped pictures.
pub async fn writable_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_sqlite(&dir.path().join("pictures.db"), Limits::default()).await;
    (server, dir)
}

fn put_frame(id: u32, name: &str, size: usize) -> Vec<u8> {
    frame(
        id,
        Command::Put(PutRequest {
            name: name.into(),
            title: String::new(),
            replace: false,
            size: size as u32,
        }),
    )
}

/// The status and message of a write that the server refused.
pub fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (Status, String) {
    match result {
        Err(ClientError::Server { status, message }) => (status, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    out.into_inner()
}

#[tokio::test]
async fn an_upload_is_served_by_number_by_name_and_bare() {
    let (server, _dir) = writable_server().await;
    let mut client = authorized(server.addr).await;
    let bytes = png(40, 30);
    let stored = within(client.put("Sunset", "A sunset", false, &bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count = manifest_names().len() as u32;
    assert_eq!(
        (stored.number, stored.name.as_str(), stored.title.as_str()),
        (count + 1, "Sunset", "A sunset")
    );
    assert_eq!(
        (stored.width, stored.height, stored.mime.as_str()),
        (40, 30, "image/png")
    );
    let listed = catalog(server.addr).await;
    assert_eq!(listed.last(), Some(&stored));

    assert!(
        call(server.addr, get(Selector::Number(count + 1)))
            .await
            .body
            == bytes
    );
    assert!(call(server.addr, by_name("sunset")).await.body == bytes);
    assert!(exchange_raw(server.addr, b"SUNSET\n").await == bytes);
    let number = format!("{}", count + 1);
    assert!(exchange_raw(server.addr, number.as_bytes()).await == bytes);
}

#[tokio::test]
async fn replace_rename_retitle_move_and_delete() {
    let (server, _dir) = writable_server().await;
    let mut client = authorized(server.addr).await;
    let first = png(10, 10);
    within(client.put("tree", "Tree", false, &first, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // A clash is refused unless replacing; the name matches ignoring case.
    let clash = within(client.put("TREE", "", false, &png(5, 5), |_, _| {})).await;
    assert_eq!(refusal(clash).0, Status::Conflict);
    let second = png(12, 8);
    let replaced = within(client.put("TREE", "", true, &second, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (replaced.width, replaced.title.as_str()),
        (12, "Tree"),
        "the title is kept"
    );
    assert!(call(server.addr, by_name("tree")).await.body == second);

    let renamed = within(client.rename(Selector::Name("tree".into()), "oak"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(renamed.name, "oak");
    assert_eq!(
        call(server.addr, by_name("tree")).await.head.status,
        Status::NotFound
    );
    let taken = within(client.rename(Selector::Name("oak".into()), "Car")).await;
    assert_eq!(refusal(taken).0, Status::Conflict);

    let retitled = within(client.retitle(Selector::Name("oak".into()), "An old oak"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(retitled.title, "An old oak");

    let moved = within(client.move_to(Selector::Name("oak".into()), 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved.number, 1);
    let listed = catalog(server.addr).await;
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    let mut expected = vec!["oak".to_owned()];
    expected.extend(manifest_names());
    assert_eq!(names, expected);
    assert!(
        exchange_raw(server.addr, b"1").await == second,
        "bare choice 1 is the new first"
    );

    within(client.delete(Selector::Number(1)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = catalog(server.addr).await;
    assert_eq!(
        listed.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        manifest_names()
    );
    assert_eq!(listed[0].number, 1);
    let missing = within(client.delete(Selector::Name("oak".into()))).await;
    assert_eq!(refusal(missing).0, Status::NotFound);
}

#[tokio::test]
async fn writes_need_the_token() {
    let (server, _dir) = writable_server().await;
    let mut anonymous = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, message) = refusal(within(anonymous.delete(Selector::Number(1))).await);
    assert_eq!(status, Status::Unauthorized, "{message}");
    assert!(message.contains("AUTH"), "{message}");
    // Reads stay open, on the same connection.
    assert_eq!(
        within(anonymous.list()).await.map(|l| l.len()).ok(),
        Some(manifest_names().len())
    );

    // A wrong token is refused, and the connection closed: one guess per connection.
    let mut guesser = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, _) = refusal(within(guesser.authenticate("not-the-token")).await);
    assert_eq!(status, Status::Unauthorized);
    assert!(
        within(guesser.ping()).await.is_err(),
        "the connection stayed open"
    );
    assert_eq!(catalog(server.addr).await.len(), manifest_names().len());
}

#[tokio::test]
async fn writes_are_disabled_without_a_token_or_on_a_folder_store() {
    let folder = TestServer::start().await;
    let mut client = within(Client::connect(&folder.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, message) = refusal(within(client.authenticate("anything")).await);
    assert_eq!(status, Status::WritesDisabled, "{message}");
    let (status, message) = refusal(within(client.rename(Selector::Number(1), "x-car")).await);
    assert_eq!(status, Status::WritesDisabled, "{message}");
}

#[tokio::test]
async fn an_oversized_upload_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let limits = Limits {
        max_upload_size: 1000,
        ..Limits::default()
    };
    let server = TestServer::start_sqlite(&dir.path().join("p.db"), limits).await;
    let mut stream = connect(server.addr).await;
    let auth = frame(1, Command::Auth(TOKEN.as_bytes().to_vec().into()));
    send(&mut stream, &auth).await;
    let mut buf = Vec::new();
    assert_eq!(
        read_response(&mut stream, &mut buf).await.head.status,
        Status::Ok
    );
    // Only the header: the answer must come without a byte of the picture.
    send(&mut stream, &put_frame(2, "big", 5_000_000)).await;
    let response = read_response(&mut stream, &mut buf).await;
    assert_eq!(
        (response.head.id, response.head.status),
        (2, Status::TooLarge)
    );
    assert!(
        response.text().contains("upload limit of 1000"),
        "{}",
        response.text()
    );
    let mut rest = Vec::new();
    within(stream.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rest.is_empty(),
        "the connection is closed after the refusal"
    );

    // Without the token, the refusal also comes from the header.
    let mut stream = connect(server.addr).await;
    send(&mut stream, &put_frame(3, "small", 100)).await;
    let response = read_response(&mut stream, &mut Vec::new()).await;
    assert_eq!(
        (response.head.id, response.head.status),
        (3, Status::Unauthorized)
    );
}

#[tokio::test]
async fn hostile_and_broken_uploads_are_refused_and_nothing_is_stored() {
    let (server, dir) = writable_server().await;
    let mut client = authorized(server.addr).await;
    let before = catalog(server.addr).await;

    // A PNG declaring 100,000 x 100,000 pixels: refused from its header, cheaply.
    let bomb = png_bomb();
    let (status, message) = refusal(within(client.put("bomb", "", false, &bomb, |_, _| {})).await);
    assert_eq!(status, Status::Rejected);
    assert!(message.contains("100000x100000"), "{message}");

    let jpeg = asset_bytes("forest-small");
    let truncated = &jpeg[..jpeg.len() / 2];
    let (status, message) =
        refusal(within(client.put("half", "", false, truncated, |_, _| {})).await);
    assert_eq!(status, Status::Rejected, "{message}");
    assert!(message.contains("truncated"), "{message}");

    let (status, message) =
        refusal(within(client.put("text", "", false, b"hello, world", |_, _| {})).await);
    assert_eq!(status, Status::Rejected);
    assert!(
        message.contains("not a JPEG, PNG, GIF or WebP"),
        "{message}"
    );

    for name in ["123", "two words", "a/b", ".hidden", "tab\there"] {
        let result = within(client.put(name, "", false, &png(2, 2), |_, _| {})).await;
        assert_eq!(refusal(result).0, Status::Rejected, "{name:?}");
    }
    let result = within(client.put("ok-name", "bad\ntitle", false, &png(2, 2), |_, _| {})).await;
    assert_eq!(refusal(result).0, Status::Rejected);

    // The same connection still works, and nothing was stored.
    within(client.ping())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog(server.addr).await, before);
    assert_intact(server.store()).await;
    drop(dir);
}

#[tokio::test]
async fn an_upload_loses_its_gps_position_but_not_its_orientation_or_pixels() {
    let (server, _dir) = writable_server().await;
    let mut client = authorized(server.addr).await;
    let original = fixture("gps-rotated.jpg");
    let stored = within(client.put("trip", "", false, &original, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let served = call(server.addr, by_name("trip")).await.body;
    assert_eq!(stored.size as usize, served.len());
    assert!(served.len() < original.len());
    for secret in [
        &b"SN-4242-SECRET"[..],
        b"SecretCam",
        b"Jane Secret",
        b"secret comment",
    ] {
        assert!(
            !served.windows(secret.len()).any(|w| w == secret),
            "{}",
            String::from_utf8_lossy(secret)
        );
    }
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(&served))
        .unwrap_or_else(|e| panic!("no EXIF left for the orientation: {e}"));
    assert!(
        exif.get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
            .is_none()
    );
    let orientation = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0));
    assert_eq!(orientation, Some(6));
    let decode = |bytes: &[u8]| {
        image::load_from_memory(bytes)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_rgba8()
    };
    assert!(decode(&served) == decode(&original), "pixels changed");
}

#[tokio::test]
async fn keep_metadata_stores_the_upload_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = picture_server::store::StoreOptions {
        upload: picture_server::store::UploadRules {
            keep_metadata: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let db = dir.path().join("p.db");
    let server = TestServer::start_sqlite_with(&db, Limits::default(), &options).await;
    let mut client = authorized(server.addr).await;
    let original = fixture("gps-rotated.jpg");
    within(client.put("trip", "", false, &original, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(call(server.addr, by_name("trip")).await.body == original);
}

#[tokio::test]
async fn protocol_md_write_examples_match_the_server() {
    let (server, _dir) = writable_server().await;
    let doc = std::fs::read_to_string(assets_dir().join("../PROTOCOL.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The examples of the write section are one session: AUTH with the documented token
    // first, so the test server's token is presented by the example's own bytes.
    let section = doc
        .split("### Example session: writing")
        .nth(1)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no write example session"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut stream = connect(server.addr).await;
    let mut buf = Vec::new();
    let mut checked = 0;
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(request) = crate::framed::hex_after(line, "request:") else {
            continue;
        };
        send(&mut stream, &request).await;
        // The answer, then any notices, each on a line of its own.
        while let Some(expected) = lines.peek().and_then(|l| {
            crate::framed::hex_after(l, "response:")
                .or_else(|| crate::framed::hex_after(l, "notice:"))
        }) {
            lines.next();
            let response = read_response(&mut stream, &mut buf).await;
            let encoded = response.encode().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                &encoded[..expected.len()],
                &expected[..],
                "answer to {line}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} examples found");
}

#[test]
fn the_documented_token_is_the_test_token() {
    // The write examples in PROTOCOL.md authenticate with the test servers' token.
    let encoded = Request {
        id: 1,
        command: Command::Auth(TOKEN.as_bytes().to_vec().into()),
    }
    .encode()
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(encoded.len(), 10 + TOKEN.len());
}
