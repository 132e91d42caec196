//! Graceful shutdown: transfers in flight finish, new connections are refused.

use std::time::Duration;

use picture_protocol::{Command, Selector, Status};
use picture_server::Limits;
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

use crate::common::*;

#[tokio::test]
async fn shutdown_finishes_the_transfer_in_flight() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let largest = catalog(addr)
        .await
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap_or_else(|| panic!("empty catalog"));
    let expected = asset_bytes(&largest.name);

    // A small receive buffer keeps most of the picture on the server's side until we read.
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = within(socket.connect(addr))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    send(
        &mut stream,
        &crate::common::frame(7, get(Selector::Number(largest.number))),
    )
    .await;
    let mut first = [0u8; 1];
    within(stream.read_exact(&mut first))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let stopped = server.begin_shutdown();
    let mut buf = first.to_vec();
    let response = read_response(&mut stream, &mut buf).await;
    assert_eq!((response.head.id, response.head.status), (7, Status::Ok));
    assert!(response.body == expected, "the whole picture arrived");
    // Having nothing more in flight, the connection is closed and the server stops.
    assert!(read_to_end(&mut stream).await.is_empty());
    within(stopped)
        .await
        .unwrap_or_else(|e| panic!("server task: {e}"));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once() {
    let server = TestServer::start().await;
    let mut idle = connect(server.addr).await;
    send(&mut idle, &frame(1, Command::Ping)).await;
    let _ = read_response(&mut idle, &mut Vec::new()).await;
    let stopped = server.begin_shutdown();
    assert!(read_to_end(&mut idle).await.is_empty());
    within(stopped)
        .await
        .unwrap_or_else(|e| panic!("server task: {e}"));
}

#[tokio::test]
async fn shutdown_gives_up_on_a_client_that_never_reads() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let largest = catalog(server.addr)
        .await
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap_or_else(|| panic!("empty catalog"));
    // A small receive buffer, and no reading: the transfer cannot finish.
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stuck = within(socket.connect(server.addr))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    send(&mut stuck, &frame(1, get(Selector::Number(largest.number)))).await;
    let mut first = [0u8; 1];
    within(stuck.read_exact(&mut first))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The server stops after its grace period (within the tests' patience), not never.
    within(server.begin_shutdown())
        .await
        .unwrap_or_else(|e| panic!("server task: {e}"));
}

#[cfg(unix)]
#[tokio::test]
async fn server_binary_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = start_server_binary(&dir.path().join("p.db"), &[]).await;
    let shipped = manifest_names().len();
    let banner = &server.banner;
    assert!(banner.contains(&format!("{shipped} pictures")), "{banner}");
    assert_eq!(
        call(server.addr("tcp://"), Command::Ping).await.head.status,
        Status::Ok
    );
    let page = server.next_line().await;
    assert!(page.contains("page at http://127.0.0.1:"), "{page}");

    let pid = server.pid();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(kill.success());
    let status = within(server.child.wait())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status {status}");
}
