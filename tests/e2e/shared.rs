//! Several servers on one PostgreSQL database: what one stores, all serve; every edit reaches
//! every server's watchers and caches; a database that goes away and comes back.

use std::time::Duration;

use picture_protocol::{Change, ChangeKind, Command, Kind, Selector, Status};
use picture_server::Limits;
use picture_server::store::{StoreOptions, StoreUrl};
use tokio::net::TcpStream;

use crate::common::*;
use crate::pg::PgServer;
use crate::store::authorized;
use crate::writes::{png, refusal};

/// A writable server on the database of `pg`.
pub async fn on_postgres(pg: &PgServer) -> TestServer {
    let url: StoreUrl = pg.url().parse().unwrap_or_else(|e| panic!("{e}"));
    TestServer::start_store(&url, Limits::default(), &StoreOptions::default()).await
}

/// A connection watching a server's catalog.
struct Watcher {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Watcher {
    async fn start(server: &TestServer) -> Watcher {
        let mut stream = connect(server.addr).await;
        send(&mut stream, &frame(7, Command::Watch)).await;
        let mut buf = Vec::new();
        let answer = read_response(&mut stream, &mut buf).await;
        assert_eq!(answer.head.kind, Some(Kind::Watch));
        Watcher { stream, buf }
    }

    async fn next(&mut self) -> Change {
        let notice = read_response(&mut self.stream, &mut self.buf).await;
        assert_eq!(notice.head.kind, Some(Kind::Change));
        Change::decode(&notice.body).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[tokio::test]
async fn an_upload_through_one_server_is_served_and_announced_by_the_other() {
    let pg = PgServer::start();
    let a = on_postgres(&pg).await;
    let b = on_postgres(&pg).await;
    served_and_announced(&a, &b).await;
}

/// Two servers on one fresh store: an upload through A is served and announced by B, a
/// delete through B leaves A (and A's cache), and every kind of edit reaches A in order.
pub async fn served_and_announced(a: &TestServer, b: &TestServer) {
    // B did not seed the database again: both see the shipped pictures once.
    let count = manifest_names().len() as u32;
    assert_eq!(catalog(b.addr).await.len() as u32, count);
    let mut watching_b = Watcher::start(b).await;
    let mut watching_a = Watcher::start(a).await;

    let bytes = png(31, 17);
    let stored = within(
        authorized(a.addr)
            .await
            .put("Harbour", "", false, &bytes, |_, _| {}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let notice = within(watching_b.next()).await;
    assert_eq!(
        (notice.kind, notice.name.as_str(), notice.picture.as_ref()),
        (ChangeKind::Added, "Harbour", Some(&stored))
    );
    assert_eq!(catalog(b.addr).await, catalog(a.addr).await);
    assert!(call(b.addr, get(Selector::Number(count + 1))).await.body == bytes);
    assert!(call(b.addr, by_name("harbour")).await.body == bytes);
    assert!(exchange_raw(b.addr, format!("{}", count + 1).as_bytes()).await == bytes);
    assert_eq!(within(watching_a.next()).await.kind, ChangeKind::Added);

    // A holds the upload in its cache; a delete through B takes it out of A's too.
    let cached = a.store().cached_bytes();
    assert!(cached >= bytes.len() as u64, "{cached}");
    within(
        authorized(b.addr)
            .await
            .delete(Selector::Name("harbour".into())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let notice = within(watching_a.next()).await;
    assert_eq!(
        (notice.kind, notice.name.as_str()),
        (ChangeKind::Removed, "Harbour")
    );
    assert_eq!(a.store().cached_bytes(), cached - bytes.len() as u64);
    assert_eq!(
        call(a.addr, by_name("harbour")).await.head.status,
        Status::NotFound
    );

    // Every kind of edit made on one server reaches the other in order.
    let mut writer = authorized(b.addr).await;
    let first = manifest_names()[0].clone();
    within(writer.retitle(Selector::Name(first.clone()), "Retitled"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(writer.move_to(Selector::Name(first.clone()), count))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(writer.rename(Selector::Name(first), "renamed-first"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let kinds = [
        within(watching_a.next()).await.kind,
        within(watching_a.next()).await.kind,
        within(watching_a.next()).await.kind,
    ];
    assert_eq!(
        kinds,
        [ChangeKind::Retitled, ChangeKind::Moved, ChangeKind::Renamed]
    );
    assert_eq!(catalog(a.addr).await, catalog(b.addr).await);
    assert_eq!(
        catalog(a.addr).await.last().map(|p| p.name.clone()),
        Some("renamed-first".into())
    );
}

#[tokio::test]
async fn the_same_name_uploaded_through_two_servers_at_once_is_stored_once() {
    let pg = PgServer::start();
    let a = on_postgres(&pg).await;
    let b = on_postgres(&pg).await;
    for round in 0..5u32 {
        let name = format!("clash-{round}");
        let (one, other) = (png(20 + round, 9), png(9, 20 + round));
        let (mut to_a, mut to_b) = (authorized(a.addr).await, authorized(b.addr).await);
        let (through_a, through_b) = tokio::join!(
            within(to_a.put(&name, "", false, &one, |_, _| {})),
            within(to_b.put(&name, "", false, &other, |_, _| {})),
        );
        let winner = match (through_a, through_b) {
            (Ok(_), lost) => {
                assert_eq!(refusal(lost).0, Status::Conflict);
                &one
            }
            (lost, Ok(_)) => {
                assert_eq!(refusal(lost).0, Status::Conflict);
                &other
            }
            (a, b) => panic!("neither upload was stored: {a:?} {b:?}"),
        };
        for server in [&a, &b] {
            let answer = within(async {
                loop {
                    let answer = call(server.addr, by_name(&name)).await;
                    if answer.head.status == Status::Ok {
                        return answer;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            assert!(answer.body == *winner, "round {round}");
        }
    }
    assert_eq!(catalog(a.addr).await, catalog(b.addr).await);
    let stored = pg.sql("SELECT count(*) FROM pictures WHERE name LIKE 'clash-%'");
    assert_eq!(stored, "5");
    assert_intact(a.store()).await;
}

#[tokio::test]
async fn an_import_into_the_shared_database_reaches_every_server() {
    let pg = PgServer::start();
    let a = on_postgres(&pg).await;
    let mut watching_a = Watcher::start(&a).await;
    // `picture-server import` from elsewhere: it leaves no change-log entry to follow, so the
    // servers read the whole catalog again and tell their watchers to reload.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("extra.png"), png(7, 7)).unwrap_or_else(|e| panic!("{e}"));
    let url: StoreUrl = pg.url().parse().unwrap_or_else(|e| panic!("{e}"));
    let other = picture_server::store::Store::open(&url, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    other
        .import(dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let notice = within(watching_a.next()).await;
    assert_eq!(notice.kind, ChangeKind::Lost);
    assert_eq!(notice.version, other.catalog().version());
    assert!(call(a.addr, by_name("extra")).await.body == png(7, 7));
    assert_eq!(catalog(a.addr).await.len(), manifest_names().len() + 1);
    // And the servers' next edits follow on from it.
    within(
        authorized(a.addr)
            .await
            .delete(Selector::Name("extra".into())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(within(watching_a.next()).await.kind, ChangeKind::Removed);
}

#[tokio::test]
async fn a_database_that_goes_away_and_comes_back() {
    let mut pg = PgServer::start();
    let a = on_postgres(&pg).await;
    let names = manifest_names();
    let kept = call(a.addr, by_name(&names[0])).await;
    assert_eq!(kept.head.status, Status::Ok);

    pg.stop();
    // What the cache holds is still served; what it does not is an internal error that says
    // why, and readiness reports it.
    assert!(call(a.addr, by_name(&names[0])).await.body == kept.body);
    let missed = within(call(a.addr, by_name(&names[1]))).await;
    assert_eq!(missed.head.status, Status::Internal);
    let message = text(&missed.body);
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(a.store().ready().await.is_err());
    let refused = within(
        authorized(a.addr)
            .await
            .delete(Selector::Name(names[0].clone())),
    )
    .await;
    assert_eq!(refusal(refused).0, Status::Internal);

    pg.resume();
    within(async {
        while a.store().ready().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let answer = call(a.addr, by_name(&names[1])).await;
    assert_eq!(answer.head.status, Status::Ok);
    assert!(answer.body == asset_bytes(&names[1]));
    // Following the others' edits resumed too: an upload through a new server reaches A.
    let mut watching_a = Watcher::start(&a).await;
    let b = on_postgres(&pg).await;
    within(
        authorized(b.addr)
            .await
            .put("after", "", false, &png(3, 3), |_, _| {}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let notice = within(watching_a.next()).await;
    assert_eq!(
        (notice.kind, notice.name.as_str()),
        (ChangeKind::Added, "after")
    );
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_one_line_and_exit_code_1() {
    let pg = PgServer::start();
    let url = pg.url();
    drop(pg);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--store", &url, "--db-timeout", "2"])
        .output();
    let out = within(out).await.unwrap_or_else(|e| panic!("{e}"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PostgreSQL at postgres@127.0.0.1"),
        "{stderr}"
    );
}
