//! Picture bytes in an S3-compatible object store (SeaweedFS), with the catalog in SQLite or
//! PostgreSQL: served, shared between servers, cleaned up, and an object store that goes away.

use std::path::Path;
use std::time::Duration;

use picture_protocol::{Selector, Status};
use picture_server::Limits;
use picture_server::store::{BlobSettings, BlobsUrl, Store, StoreOptions, StoreUrl};

use crate::common::*;
use crate::pg::PgServer;
use crate::s3::S3Server;
use crate::shared::served_and_announced;
use crate::store::authorized;
use crate::writes::{png, refusal};

/// Store options with the bytes in `blobs`, reached with the test server's key.
pub fn options(blobs: &BlobsUrl) -> StoreOptions {
    StoreOptions {
        blobs: Some(blobs.clone()),
        blob_settings: BlobSettings {
            timeout: Duration::from_secs(2),
            credentials: Some(S3Server::credentials()),
        },
        ..StoreOptions::default()
    }
}

async fn on_sqlite(db: &Path, blobs: &BlobsUrl) -> TestServer {
    let url = StoreUrl::Sqlite(db.to_path_buf());
    TestServer::start_store(&url, Limits::default(), &options(blobs)).await
}

/// A PNG of noise, which does not compress: about `side * side * 3` bytes.
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    out.into_inner()
}

fn sqlite_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
    conn.query_row(sql, [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn two_servers_on_postgres_with_the_bytes_in_an_object_store() {
    let (pg, s3) = (PgServer::start(), S3Server::start().await);
    let blobs = s3.bucket("pictures").await;
    let url: StoreUrl = pg.url().parse().unwrap_or_else(|e| panic!("{e}"));
    let a = TestServer::start_store(&url, Limits::default(), &options(&blobs)).await;
    let b = TestServer::start_store(&url, Limits::default(), &options(&blobs)).await;
    served_and_announced(&a, &b).await;
    // The database holds the catalog, and only the not-found picture's bytes.
    assert_eq!(pg.sql("SELECT count(*) FROM blobs"), "1");
    assert_eq!(
        pg.sql("SELECT count(*) FROM contents"),
        (manifest_names().len() + 1).to_string()
    );
}

#[tokio::test]
async fn a_large_picture_goes_in_parts_and_comes_back_whole_after_a_restart() {
    let s3 = S3Server::start().await;
    let blobs = s3.bucket("large").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    let large = noise_png(1500);
    assert!(large.len() > 6 * 1024 * 1024, "{}", large.len());
    {
        let server = on_sqlite(&db, &blobs).await;
        within(
            authorized(server.addr)
                .await
                .put("noise", "", false, &large, |_, _| {}),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(sqlite_count(&db, "SELECT count(*) FROM blobs"), 1);
    // A new server, its cache empty: every picture comes from the object store.
    let server = on_sqlite(&db, &blobs).await;
    assert_eq!(server.store().cached_bytes(), 0);
    assert!(call(server.addr, by_name("noise")).await.body == large);
    for name in manifest_names() {
        assert!(call(server.addr, by_name(&name)).await.body == asset_bytes(&name));
    }
}

#[tokio::test]
async fn clean_blobs_deletes_only_what_no_picture_needs() {
    let s3 = S3Server::start().await;
    let blobs = s3.bucket("cleaned").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = on_sqlite(&dir.path().join("pictures.db"), &blobs).await;
    let mut client = authorized(server.addr).await;
    let (first, second, kept) = (png(4, 4), png(5, 5), png(6, 6));
    for (name, bytes, replace) in [
        ("a", &first, false),
        ("a", &second, true),
        ("b", &kept, false),
    ] {
        within(client.put(name, "", replace, bytes, |_, _| {}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    within(client.delete(Selector::Name("a".into())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let shipped = manifest_names().len();
    // Objects written just now are left alone...
    let (objects, deleted) = server
        .store()
        .clean_blobs(Duration::from_secs(3600))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((objects, deleted), (shipped + 3, 0));
    // ...and once old enough, the two no picture names go.
    let (objects, deleted) = server
        .store()
        .clean_blobs(Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((objects, deleted), (shipped + 3, 2));
    let restarted = on_sqlite(&dir.path().join("pictures.db"), &blobs).await;
    assert!(call(restarted.addr, by_name("b")).await.body == kept);
    for name in manifest_names() {
        assert!(call(restarted.addr, by_name(&name)).await.body == asset_bytes(&name));
    }
    // Bytes whose object was cleaned away can be uploaded again.
    within(client.put("again", "", false, &first, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let again = on_sqlite(&dir.path().join("pictures.db"), &blobs).await;
    assert!(call(again.addr, by_name("again")).await.body == first);
}

#[tokio::test]
async fn cleaning_refuses_a_store_that_is_missing_or_empty() {
    let s3 = S3Server::start().await;
    let blobs = s3.bucket("guarded").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("pictures.db");
    drop(on_sqlite(&db, &blobs).await);
    let clean = |store: String| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
            .args(["clean-blobs", "--older-than", "0.001", "--store", &store])
            .args(["--blobs", &blobs.to_string()])
            .env("AWS_ACCESS_KEY_ID", crate::s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", crate::s3::SECRET_KEY)
            .output()
    };
    // A mistyped database path is not made (and then taken for a store without pictures).
    let typo = dir.path().join("pictrues.db");
    let out = within(clean(format!("sqlite:{}", typo.display())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no database"),
        "{}",
        text(&out.stderr)
    );
    assert!(!typo.exists());
    // A store without pictures would have every object deleted: refused.
    let empty = dir.path().join("empty.db");
    let store = Store::open(&StoreUrl::Sqlite(empty.clone()), None, &options(&blobs))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    let out = within(clean(format!("sqlite:{}", empty.display())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("catalog is empty"),
        "{}",
        text(&out.stderr)
    );
    // On the real store, with every object needed, nothing goes.
    let out = within(clean(format!("sqlite:{}", db.display())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(", 0 no picture needed"),
        "{}",
        text(&out.stdout)
    );
    let server = on_sqlite(&db, &blobs).await;
    for name in manifest_names() {
        assert!(call(server.addr, by_name(&name)).await.body == asset_bytes(&name));
    }
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_is_refused_at_start() {
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = StoreUrl::Sqlite(dir.path().join("p.db"));
    let error = Store::open(&url, None, &options(&s3.url("no-such-bucket")))
        .await
        .err()
        .unwrap_or_else(|| panic!("a store on a missing bucket opened"));
    assert!(error.to_string().contains("s3://no-such-bucket"), "{error}");
}

#[tokio::test]
async fn an_object_store_that_goes_away_and_comes_back() {
    let mut s3 = S3Server::start().await;
    let blobs = s3.bucket("flaky").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = on_sqlite(&dir.path().join("pictures.db"), &blobs).await;
    let names = manifest_names();
    let kept = call(server.addr, by_name(&names[0])).await;
    assert_eq!(kept.head.status, Status::Ok);

    s3.stop();
    assert!(call(server.addr, by_name(&names[0])).await.body == kept.body);
    let missed = within(call(server.addr, by_name(&names[1]))).await;
    assert_eq!(missed.head.status, Status::Internal);
    let message = text(&missed.body);
    assert!(message.contains("object store"), "{message}");
    assert!(server.store().ready().await.is_err());
    let refused = within(
        authorized(server.addr)
            .await
            .put("x", "", false, &png(2, 2), |_, _| {}),
    )
    .await;
    assert_eq!(refusal(refused).0, Status::Internal);
    assert_eq!(
        call(server.addr, by_name("x")).await.head.status,
        Status::NotFound,
        "an upload whose bytes were not stored is not in the catalog"
    );

    s3.resume().await;
    within(async {
        while server.store().ready().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // Ready once its gateway answers a listing: SeaweedFS' volume server, which holds the
    // bytes, may take a moment longer after a restart on a busy machine.
    let answer = within(async {
        loop {
            let answer = call(server.addr, by_name(&names[1])).await;
            if answer.head.status == Status::Ok {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(answer.body == asset_bytes(&names[1]));
}

#[tokio::test]
async fn an_unreachable_object_store_at_start_is_one_line_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = free_low_port();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .arg("--store")
        .arg(format!("sqlite:{}", dir.path().join("p.db").display()))
        .arg("--blobs")
        .arg(format!("s3://pictures?endpoint=http://127.0.0.1:{port}"))
        .args(["--blobs-timeout", "1"])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .output();
    let out = within(out).await.unwrap_or_else(|e| panic!("{e}"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("object store s3://pictures"), "{stderr}");
}
