//! `/healthz` and `/readyz`: answered as the state of the store or upstream is, and to clients
//! over their address's connection cap too.

use picture_server::web::Upstream;
use tokio::io::AsyncReadExt;

use crate::common::*;

/// Status and body of a GET of `target` from the HTTP server at `addr`, on a connection of
/// its own; status 0 if the server closed it without an answer.
pub async fn probe(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    let mut stream = connect(addr).await;
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    send(&mut stream, request.as_bytes()).await;
    // A connection closed without an answer may also be reset: the request was not read.
    let mut answer = Vec::new();
    let _ = within(stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[tokio::test]
async fn a_server_with_its_store_is_alive_and_ready() {
    let (server, _db) = crate::writes::writable_server().await;
    let web = server.start_web().await;
    assert_eq!(probe(web.addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(
        probe(web.addr, "/readyz").await,
        (200, "ready\n".to_owned())
    );
}

#[tokio::test]
async fn readiness_fails_while_the_store_is_broken() {
    let (server, db) = crate::writes::writable_server().await;
    let web = server.start_web().await;
    assert_eq!(probe(web.addr, "/readyz").await.0, 200);
    // The database file overwritten under the running server: it no longer reads.
    let path = db.path().join("pictures.db");
    let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, vec![0x55; original.len()]).unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = probe(web.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: the store:"), "{body}");
    // Alive all the same: the process serves.
    assert_eq!(probe(web.addr, "/healthz").await.0, 200);
    std::fs::write(&path, original).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(probe(web.addr, "/readyz").await.0, 200);
}

#[tokio::test]
async fn a_relaying_bridge_is_ready_only_while_its_picture_server_answers() {
    let server = TestServer::start().await;
    let web = WebServer::start(web_config(
        &www_dir(),
        Upstream::tcp(server.addr.to_string()),
    ))
    .await;
    assert_eq!(probe(web.addr, "/readyz").await.0, 200);
    let down = WebServer::start(web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"))).await;
    let (status, body) = probe(down.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the picture server: cannot connect"),
        "{body}"
    );
}

#[tokio::test]
async fn probes_are_answered_over_the_connection_caps() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.max_connections_per_ip = 1;
    let web = WebServer::start(config).await;
    let _held = connect(web.addr).await;
    // The held connection counts: anything else is refused...
    let (status, body) = probe(web.addr, "/").await;
    assert_eq!(status, 503, "{body}");
    // ...but not the probes.
    assert_eq!(probe(web.addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(
        probe(web.addr, "/readyz").await,
        (200, "ready\n".to_owned())
    );

    let mut config = web_config(&www_dir(), server.local());
    config.max_connections = 1;
    let web = WebServer::start(config).await;
    let _held = connect(web.addr).await;
    assert_eq!(probe(web.addr, "/").await.0, 503);
    assert_eq!(probe(web.addr, "/healthz").await.0, 200);
}
