//! The SQLite store: first-start import, restarts, deduplication, import/export, schema
//! versions, and a catalog of 100,000 pictures.

use std::path::Path;

use bytes::Bytes;
use picture_client::Client;
use picture_protocol::{Command, PageRequest, Selector};
use picture_server::Limits;
use picture_server::store::{Folder, Store, StoreOptions, StoreUrl, export, inspect};

use crate::common::*;

async fn open(db: &Path) -> Store {
    Store::open(
        &StoreUrl::Sqlite(db.to_path_buf()),
        Some(&assets_dir()),
        &StoreOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("opening {}: {e}", db.display()))
}

fn count(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Name, title and hash of each picture, in menu order.
fn summary(store: &Store) -> Vec<(u32, String, String, [u8; 32])> {
    store
        .catalog()
        .entries()
        .iter()
        .map(|p| (p.number, p.name.clone(), p.title.clone(), p.sha256))
        .collect()
}

pub async fn authorized(addr: std::net::SocketAddr) -> Client {
    let mut client = within(Client::connect(&addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(client.authenticate(TOKEN))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
}

#[tokio::test]
async fn first_start_imports_the_assets_and_serves_them_like_the_folder() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("data/pictures.db");
    let server = TestServer::start_sqlite(&db, Limits::default()).await;
    let folder = TestServer::start().await;
    assert_eq!(catalog(server.addr).await, catalog(folder.addr).await);
    for name in manifest_names() {
        let response = call(server.addr, by_name(&name)).await;
        assert!(response.body == asset_bytes(&name), "{name}");
    }
    // Bare choices too, byte for byte.
    assert!(exchange_raw(server.addr, b"2").await == asset_bytes("house"));
    let unknown = exchange_raw(server.addr, b"unicorn").await;
    assert!(unknown == asset_bytes("not-found"));
    assert_eq!(count(&db, "pictures"), manifest_names().len() as i64);
}

#[tokio::test]
async fn restart_keeps_every_change_and_never_imports_twice() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    let store = open(&db).await;
    let version = store.catalog().version();
    store
        .delete(&Selector::Name("car".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .rename(&Selector::Name("dog".into()), "hound")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = summary(&store);
    drop(store);

    let store = open(&db).await;
    assert_eq!(summary(&store), before, "a restart changes nothing");
    assert!(store.catalog().version() > version);
    assert!(
        store.catalog().index_of_name("car").is_none(),
        "car was imported again"
    );
    assert_eq!(store.catalog().entries()[1].name, "hound");
    assert_intact(&store).await;
}

#[tokio::test]
async fn the_same_bytes_under_two_names_are_stored_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    let server = TestServer::start_sqlite(&db, Limits::default()).await;
    let blobs = count(&db, "blobs");
    let bytes = asset_bytes("thumbnail");
    let mut client = authorized(server.addr).await;
    let a = within(client.put("copy-one", "", false, &bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = within(client.put("copy-two", "Second copy", false, &bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(
        count(&db, "blobs"),
        blobs,
        "the thumbnail's bytes were already stored"
    );
    assert_eq!(
        (a.title.as_str(), b.title.as_str()),
        ("Copy one", "Second copy")
    );
    // A new picture adds exactly one copy; deleting both of its names removes it.
    let house = asset_bytes("house");
    let mut new_bytes = house.clone();
    new_bytes.extend_from_slice(b"trailing bytes make other content");
    within(client.put("house-too", "", false, &new_bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&db, "blobs"), blobs + 1);
    within(client.delete(Selector::Name("house-too".into())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&db, "blobs"), blobs);
}

#[tokio::test]
async fn export_then_import_loses_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir.path().join("a.db")).await;
    store
        .retitle(&Selector::Name("ocean".into()), "Océan à l'aube")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .move_to(&Selector::Name("thumbnail".into()), 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("export");
    let written = export(&store, &out).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written, store.catalog().len());

    // Into an empty database that has never been seeded (nothing to seed it from).
    let url = StoreUrl::Sqlite(dir.path().join("b.db"));
    let copy = Store::open(&url, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(copy.catalog().is_empty());
    copy.import(&out).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary(&copy), summary(&store));
    assert_eq!(copy.not_found().bytes, store.not_found().bytes);
    // The export is a folder store of its own, too.
    let folder = Store::from_folder(Folder::load(&out).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(summary(&folder), summary(&store));
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    drop(open(&db).await);
    let conn = rusqlite::Connection::open(&db).unwrap_or_else(|e| panic!("{e}"));
    conn.pragma_update(None, "user_version", 99)
        .unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    let url = StoreUrl::Sqlite(db);
    let error = Store::open(&url, None, &StoreOptions::default())
        .await
        .err()
        .unwrap_or_else(|| panic!("a newer schema was opened"));
    let message = error.to_string();
    assert!(
        message.contains("schema version 99") && message.contains("newer"),
        "{message}"
    );
}

#[tokio::test]
async fn replaced_and_deleted_pictures_leave_the_cache() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(&dir.path().join("pictures.db")).await;
    // Contents no shipped picture has (those are in the store already).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gps-rotated.jpg");
    let first = Bytes::from(std::fs::read(fixture).unwrap_or_else(|e| panic!("{e}")));
    let mut png = Vec::new();
    image::RgbImage::from_pixel(4, 4, image::Rgb([200, 10, 10]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    let second = Bytes::from(png);
    let base = store.cached_bytes();
    let put = |bytes: Bytes, replace| store.put("cached", "", replace, bytes);
    let stored = put(first.clone(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.cached_bytes(), base + u64::from(stored.size));
    // The first content is no one's any more: its room goes to the second.
    let replaced = put(second, true).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.cached_bytes(), base + u64::from(replaced.size));
    store
        .delete(&Selector::Name("cached".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.cached_bytes(), base);
    // Content another name still shows stays.
    put(first.clone(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let twin = store
        .put("twin", "", false, first)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .delete(&Selector::Name("cached".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.cached_bytes(), base + u64::from(twin.size));
}

#[tokio::test]
async fn a_small_cache_still_serves_every_picture() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = StoreUrl::Sqlite(dir.path().join("pictures.db"));
    let options = StoreOptions {
        cache_size: 200_000,
        ..StoreOptions::default()
    };
    let store = Store::open(&url, Some(&assets_dir()), &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..2 {
        for name in manifest_names() {
            let found = store
                .get(&Selector::Name(name.clone()))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(found.bytes == asset_bytes(&name), "{name}");
        }
    }
}

/// A new database at `db` holding `count` generated pictures, numbered from 1 in menu order,
/// each named and titled by `label(number)`.
pub async fn generated_catalog(db: &Path, count: u32, label: impl Fn(u32) -> (String, String)) {
    let url = StoreUrl::Sqlite(db.to_path_buf());
    let store = Store::open(&url, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pictures = (1..=count)
        .map(|n| {
            let (name, title) = label(n);
            inspect(0, name, title, tiny_png(n)).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let not_found = Folder::load(&assets_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .not_found;
    store
        .import_folder(Folder {
            pictures,
            not_found,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A small PNG whose pixels encode `n`, so every picture is different.
fn tiny_png(n: u32) -> Bytes {
    let [a, b, c, d] = n.to_be_bytes();
    let img = image::RgbaImage::from_raw(2, 1, vec![a, b, c, 255, d, 0, 0, 255])
        .unwrap_or_else(|| panic!("pixel buffer size"));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    Bytes::from(out.into_inner())
}

#[tokio::test]
async fn a_hundred_thousand_pictures_page_and_search() {
    const PICTURES: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    generated_catalog(&db, PICTURES, |n| {
        let word = if n % 1000 == 0 { "Zebra" } else { "Picture" };
        (format!("pic-{n:06}"), format!("{word} {n}"))
    })
    .await;

    // A server on the database as it is after a restart.
    let server = TestServer::start_sqlite(&db, Limits::default()).await;
    let mut client = within(Client::connect(&server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let page = within(client.page(0, 1000, ""))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((page.total, page.pictures.len()), (PICTURES, 1000));
    assert_eq!(page.pictures[999].name, "pic-001000");
    let page = within(client.page(99_990, 1000, ""))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let numbers: Vec<u32> = page.pictures.iter().map(|p| p.number).collect();
    assert_eq!(numbers, (99_991..=PICTURES).collect::<Vec<_>>());
    let zebras = within(client.page(0, 50, "zEbRa"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((zebras.total, zebras.pictures.len()), (100, 50));
    assert!(
        zebras
            .pictures
            .iter()
            .all(|p| p.number % 1000 == 0 && p.title.starts_with("Zebra"))
    );
    let next = within(client.page(zebras.pictures[49].number, 50, "zebra"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next.pictures[0].number, 51_000);
    assert_eq!(next.pictures.len(), 50);
    let by_name = within(client.page(0, 10, "pic-04242"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_name.total, 10);
    // The picture itself, by number and by name.
    let response = call(server.addr, get(Selector::Number(77_777))).await;
    assert!(response.body == tiny_png(77_777));
    // The whole-catalog LIST cannot carry 100,000 entries: a clear refusal, and the
    // connection stays usable.
    let list = call(server.addr, Command::List).await;
    assert_eq!(list.head.status, picture_protocol::Status::BadRequest);
    assert!(list.text().contains("use PAGE"), "{}", list.text());
    let page = server.store().catalog().page(&PageRequest {
        after: 0,
        limit: 1,
        search: "pic-100000".into(),
    });
    assert_eq!(page.pictures[0].number, PICTURES);
}

#[tokio::test]
async fn a_database_changed_by_another_process_is_read_again_not_drifted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    let serving = open(&db).await;
    // Another process imports into the same file while this store serves it.
    let other = open(&db).await;
    let out = dir.path().join("export");
    export(&other, &out).await.unwrap_or_else(|e| panic!("{e}"));
    other.import(&out).await.unwrap_or_else(|e| panic!("{e}"));
    // The serving store's next write finds the database changed, reads it again, and makes
    // the write against what is there.
    let before = serving.catalog().version();
    serving
        .delete(&Selector::Name("car".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = serving.catalog();
    assert!(
        after.version() > before + 1,
        "the import's version was skipped"
    );
    assert_eq!(after.len(), manifest_names().len() - 1);
    assert!(after.index_of_name("car").is_none());
    drop((serving, other, after));
    // Nothing half-done: the database opens, as the serving store last saw it.
    assert_eq!(open(&db).await.catalog().len(), manifest_names().len() - 1);

    // Exporting again into the same folder would mix two exports: refused.
    let again = export(&open(&db).await, &out).await;
    assert!(again.is_err_and(|e| e.to_string().contains("not empty")));
}
