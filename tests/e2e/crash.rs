//! A server process killed (SIGKILL) during an upload restarts with an intact database (SQLite
//! or PostgreSQL) and no half picture.

#![cfg(unix)]

use std::path::Path;

use picture_protocol::{Command, PutRequest, Status};
use picture_server::store::{Store, StoreOptions, StoreUrl};

use crate::common::*;
use crate::pg::PgServer;

/// The server binary on a store, with the test token; and its TCP address.
async fn start_binary(store: &StoreUrl) -> (ServerProcess, std::net::SocketAddr) {
    let server = start_server_binary_on(store, &[("PICTURE_ADMIN_TOKEN", TOKEN)]).await;
    assert!(
        server.banner.contains("writes need the admin token"),
        "{}",
        server.banner
    );
    let addr = server.addr("tcp://");
    (server, addr)
}

async fn kill(mut server: ServerProcess) {
    server.child.start_kill().unwrap_or_else(|e| panic!("{e}"));
    within(server.child.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// An authorised connection that has sent a PUT of `picture` under `name`, `sent` bytes of it.
async fn upload_part(
    addr: std::net::SocketAddr,
    name: &str,
    picture: &[u8],
    sent: usize,
) -> tokio::net::TcpStream {
    let mut stream = connect(addr).await;
    send(
        &mut stream,
        &frame(1, Command::Auth(TOKEN.as_bytes().to_vec().into())),
    )
    .await;
    assert_eq!(
        read_response(&mut stream, &mut Vec::new())
            .await
            .head
            .status,
        Status::Ok
    );
    let put = Command::Put(PutRequest {
        name: name.into(),
        title: String::new(),
        replace: false,
        size: picture.len() as u32,
    });
    send(&mut stream, &frame(2, put)).await;
    send(&mut stream, &picture[..sent]).await;
    stream
}

async fn reopen(store: &StoreUrl) -> Store {
    Store::open(store, None, &StoreOptions::default())
        .await
        .unwrap_or_else(|e| panic!("reopening after the kill: {e}"))
}

fn sqlite(dir: &Path) -> StoreUrl {
    StoreUrl::Sqlite(dir.join("pictures.db"))
}

fn postgres(pg: &PgServer) -> StoreUrl {
    pg.url().parse().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn killed_in_the_middle_of_an_upload_restarts_without_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    killed_in_the_middle_of_an_upload(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn on_postgres_killed_in_the_middle_of_an_upload_restarts_without_it() {
    let pg = PgServer::start();
    killed_in_the_middle_of_an_upload(&postgres(&pg)).await;
}

async fn killed_in_the_middle_of_an_upload(store: &StoreUrl) {
    let (child, addr) = start_binary(store).await;
    let before = catalog(addr).await;
    let picture = asset_bytes("mountain");
    let _stream = upload_part(addr, "half-mountain", &picture, picture.len() / 2).await;
    kill(child).await;

    let store = reopen(store).await;
    assert_intact(&store).await;
    let after: Vec<_> = store
        .catalog()
        .entries()
        .iter()
        .map(|p| (**p).clone())
        .collect();
    assert_eq!(after, before, "the catalog changed");
}

#[tokio::test]
async fn killed_as_an_upload_completes_has_all_of_it_or_none() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    killed_as_an_upload_completes(&sqlite(dir.path())).await;
}

#[tokio::test]
async fn on_postgres_killed_as_an_upload_completes_has_all_of_it_or_none() {
    let pg = PgServer::start();
    killed_as_an_upload_completes(&postgres(&pg)).await;
}

async fn killed_as_an_upload_completes(store: &StoreUrl) {
    let picture = asset_bytes("mountain");
    // Killed at different moments around the commit: whatever the moment, the picture is
    // there whole, or not at all.
    for round in 0..3u64 {
        let (child, addr) = start_binary(store).await;
        let name = format!("mountain-{round}");
        let _stream = upload_part(addr, &name, &picture, picture.len()).await;
        tokio::time::sleep(std::time::Duration::from_millis(round * 15)).await;
        kill(child).await;
        let reopened = reopen(store).await;
        assert_intact(&reopened).await;
        if let Some(found) = reopened
            .get(&picture_protocol::Selector::Name(name.clone()))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        {
            assert_eq!(found.bytes.len(), found.info.size as usize);
            let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&found.bytes).into();
            assert_eq!(sha, found.info.sha256, "{name} is stored half");
        }
    }
}

#[tokio::test]
async fn decompression_bombs_are_refused_without_the_server_growing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // One malloc arena: on a loaded machine each check may run on a new blocking thread, and
    // glibc gives each thread an arena of its own, which would count the same bounded
    // allocations once per thread (47 MiB seen) where this test looks for a decode.
    let env = [("PICTURE_ADMIN_TOKEN", TOKEN), ("MALLOC_ARENA_MAX", "1")];
    let child = start_server_binary(&dir.path().join("pictures.db"), &env).await;
    let (addr, pid) = (child.addr("tcp://"), child.pid());
    let before = proc_status_kib(pid, "VmHWM");
    let bomb = png_bomb();
    let mut client = crate::store::authorized(addr).await;
    for i in 0..20 {
        let result = within(client.put(&format!("bomb-{i}"), "", false, &bomb, |_, _| {})).await;
        assert!(
            matches!(
                result,
                Err(picture_client::ClientError::Server {
                    status: Status::Rejected,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    let grown = proc_status_kib(pid, "VmHWM").saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "the server's peak memory grew by {grown} KiB"
    );
    kill(child).await;
}
