//! `picture-server migrate` between every kind of store, as the program runs it.

use std::path::Path;

use picture_protocol::Selector;
use picture_server::store::{Folder, Store, StoreOptions, StoreUrl};

use crate::common::*;
use crate::pg::PgServer;
use crate::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

/// Runs `picture-server migrate ARGS` with the test object store's key.
async fn run_migrate(args: &[String]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
        .arg("migrate")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output();
    within(out).await.unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_migrate`], which must succeed; returns what it printed.
async fn migrate(args: &[String]) -> String {
    let out = run_migrate(args).await;
    assert!(
        out.status.success(),
        "migrate {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// [`run_migrate`], which must fail with exit code 1 and a message holding `why`.
async fn migrate_refused(args: &[String], why: &str) {
    let out = run_migrate(args).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
}

/// How many pictures a report says were copied.
fn copied(report: &str) -> usize {
    report
        .split_once(" copied (")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {report:?}"))
}

/// Every picture of a store: position, name, title, and bytes; and the not-found picture's.
async fn contents(store: &Store) -> (Vec<(u32, String, String, Vec<u8>)>, Vec<u8>) {
    let mut pictures = Vec::new();
    for entry in store.catalog().entries().to_vec() {
        let found = store
            .get(&Selector::Number(entry.number))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{} missing", entry.name));
        pictures.push((
            entry.number,
            entry.name.clone(),
            entry.title.clone(),
            found.bytes.to_vec(),
        ));
    }
    (pictures, store.not_found().bytes.to_vec())
}

fn sqlite(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn a_round_trip_through_every_kind_of_store_keeps_every_picture() {
    let (pg, s3) = (PgServer::start(), S3Server::start().await);
    // Two databases on one PostgreSQL server: bytes in the database, and in the bucket.
    pg.sql("CREATE DATABASE with_blobs");
    let blobs = s3.bucket("migrated").await.to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let folder = format!("folder:{}", assets_dir().display());
    let first = sqlite(&dir.path().join("first.db"));
    let last = sqlite(&dir.path().join("last.db"));
    let (postgres, postgres_s3) = (pg.url(), pg.url_of("with_blobs"));
    let steps: [(&str, Option<&str>, &str, Option<&str>); 4] = [
        (&folder, None, &first, None),
        (&first, None, &postgres, None),
        (&postgres, None, &postgres_s3, Some(&blobs)),
        (&postgres_s3, Some(&blobs), &last, None),
    ];
    let count = manifest_names().len();
    for (from, from_blobs, to, to_blobs) in steps {
        let mut args = vec![
            "--from".to_owned(),
            from.to_owned(),
            "--to".into(),
            to.into(),
        ];
        if let Some(blobs) = from_blobs {
            args.extend(["--from-blobs".into(), blobs.to_owned()]);
        }
        if let Some(blobs) = to_blobs {
            args.extend(["--to-blobs".into(), blobs.to_owned()]);
        }
        let report = migrate(&args).await;
        assert_eq!(copied(&report), count, "{report}");
        assert!(report.contains("catalog written"), "{report}");
        // Run again: nothing is copied twice, and the catalog is left as it is.
        let again = migrate(&args).await;
        assert_eq!(copied(&again), 0, "{again}");
        assert!(again.contains("catalog unchanged"), "{again}");
    }
    let source = Store::from_folder(Folder::load(&assets_dir()).unwrap_or_else(|e| panic!("{e}")));
    let last: StoreUrl = last.parse().unwrap_or_else(|e| panic!("{e}"));
    let result = Store::open(&last, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(contents(&result).await == contents(&source).await);
    assert_intact(&result).await;
    // The database with a bucket holds only the not-found picture's bytes.
    assert_eq!(pg.sql_in("with_blobs", "SELECT count(*) FROM blobs"), "1");
    assert_eq!(
        pg.sql_in("with_blobs", "SELECT count(*) FROM pictures"),
        count.to_string()
    );
}

#[tokio::test]
async fn a_migration_that_stopped_goes_on_with_what_is_missing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Half the pictures copied already (as a migration stopped half-way leaves them).
    let half = dir.path().join("half");
    std::fs::create_dir(&half).unwrap_or_else(|e| panic!("{e}"));
    let names = manifest_names();
    for name in &names[..names.len() / 2] {
        let path = asset_path(name);
        let file = path.file_name().unwrap_or_else(|| panic!("no file name"));
        std::fs::copy(&path, half.join(file)).unwrap_or_else(|e| panic!("{e}"));
    }
    let to = sqlite(&dir.path().join("to.db"));
    let from_half = format!("folder:{}", half.display());
    let report = migrate(&["--from".into(), from_half, "--to".into(), to.clone()]).await;
    assert_eq!(copied(&report), names.len() / 2, "{report}");
    let from_all = format!("folder:{}", assets_dir().display());
    let report = migrate(&["--from".into(), from_all, "--to".into(), to.clone()]).await;
    assert_eq!(copied(&report), names.len() - names.len() / 2, "{report}");
    let to: StoreUrl = to.parse().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&to, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<String> = store
        .catalog()
        .entries()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(order, names);
}

#[tokio::test]
async fn a_source_that_does_not_exist_is_refused_and_not_made() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (missing, to) = (dir.path().join("typo.db"), dir.path().join("to.db"));
    let args = |from: String| vec!["--from".to_owned(), from, "--to".into(), sqlite(&to)];
    migrate_refused(&args(sqlite(&missing)), "there is no database").await;
    assert!(!missing.exists());
    // An empty folder is no source either: it would empty the destination.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap_or_else(|e| panic!("{e}"));
    migrate_refused(&args(format!("folder:{}", empty.display())), "no pictures").await;
}

#[tokio::test]
async fn a_folder_is_not_a_destination() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let args = [
        "--from".to_owned(),
        format!("folder:{}", assets_dir().display()),
        "--to".into(),
        format!("folder:{}", dir.path().display()),
    ];
    migrate_refused(&args, "use `export`").await;
}

#[tokio::test]
async fn on_a_terminal_migrate_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let command = format!(
        "{} migrate --from folder:{} --to {}",
        env!("CARGO_BIN_EXE_picture-server"),
        assets_dir().display(),
        sqlite(&dir.path().join("to.db"))
    );
    // `script` runs it on a pseudo-terminal, as a person would; it prints what was drawn.
    let out = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output();
    let out = within(out).await.unwrap_or_else(|e| panic!("{e}"));
    let drawn = text(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    assert!(
        drawn.contains("of pictures"),
        "no progress bar in {drawn:?}"
    );
    assert!(drawn.contains(" copied ("), "{drawn}");
    // Without a terminal (every other test), no bar: only the report.
    let report = migrate(&[
        "--from".into(),
        format!("folder:{}", assets_dir().display()),
        "--to".into(),
        sqlite(&dir.path().join("other.db")),
    ])
    .await;
    assert!(!report.contains("of pictures"), "{report}");
}
