//! A server process killed (SIGKILL) during an upload restarts with an intact database (SQLite
//! or PostgreSQL) and no half picture.

#![cfg(unix)]

use std::path::Path;

use picture_protocol::{Command, PutRequest, Status};
use picture_server::store::{BlobsUrl, Store, StoreOptions, StoreUrl};

use crate::common::*;
use crate::pg::PgServer;
use crate::s3::S3Server;

/// The server binary on a store (with its bytes in `blobs`, if given), with the test token;
/// and its TCP address.
async fn start_binary(
    store: &StoreUrl,
    blobs: Option<&BlobsUrl>,
) -> (ServerProcess, std::net::SocketAddr) {
    let blobs = blobs.map(ToString::to_string);
    let mut env = vec![("PICTURE_ADMIN_TOKEN", TOKEN)];
    if let Some(blobs) = &blobs {
        env.extend([
            ("PICTURE_BLOBS", blobs.as_str()),
            ("AWS_ACCESS_KEY_ID", crate::s3::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", crate::s3::SECRET_KEY),
        ]);
    }
    let server = start_server_binary_on(store, &env).await;
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

async fn reopen(store: &StoreUrl, blobs: Option<&BlobsUrl>) -> Store {
    let options = match blobs {
        Some(blobs) => crate::blobs::options(blobs),
        None => StoreOptions::default(),
    };
    Store::open(store, None, &options)
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
    let (child, addr) = start_binary(store, None).await;
    let before = catalog(addr).await;
    let picture = asset_bytes("mountain");
    let _stream = upload_part(addr, "half-mountain", &picture, picture.len() / 2).await;
    kill(child).await;

    let store = reopen(store, None).await;
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
    killed_as_an_upload_completes(&sqlite(dir.path()), None).await;
}

#[tokio::test]
async fn on_postgres_killed_as_an_upload_completes_has_all_of_it_or_none() {
    let pg = PgServer::start();
    killed_as_an_upload_completes(&postgres(&pg), None).await;
}

/// With an object store, a kill between the object's put and the commit leaves an object no
/// picture names: clean-blobs removes it, and every picture is still served.
#[tokio::test]
async fn with_an_object_store_killed_as_an_upload_completes_leaves_nothing_clean_blobs_misses() {
    let s3 = S3Server::start().await;
    let blobs = s3.bucket("killed").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = sqlite(dir.path());
    killed_as_an_upload_completes(&store, Some(&blobs)).await;
    let reopened = reopen(&store, Some(&blobs)).await;
    let (objects, deleted) = reopened
        .clean_blobs(std::time::Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let catalog = reopened.catalog().clone();
    let distinct: std::collections::HashSet<_> =
        catalog.entries().iter().map(|e| e.sha256).collect();
    assert_eq!(objects - deleted, distinct.len());
    for entry in catalog.entries() {
        let found = reopened
            .get(&picture_protocol::Selector::Number(entry.number))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{} gone", entry.name));
        assert_eq!(found.bytes.len(), entry.size as usize);
    }
}

async fn killed_as_an_upload_completes(store: &StoreUrl, blobs: Option<&BlobsUrl>) {
    let picture = asset_bytes("mountain");
    // Killed at different moments around the commit: whatever the moment, the picture is
    // there whole, or not at all.
    for round in 0..3u64 {
        let (child, addr) = start_binary(store, blobs).await;
        let name = format!("mountain-{round}");
        let _stream = upload_part(addr, &name, &picture, picture.len()).await;
        tokio::time::sleep(std::time::Duration::from_millis(round * 15)).await;
        kill(child).await;
        let reopened = reopen(store, blobs).await;
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
