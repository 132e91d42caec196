//! The page's HTTP side: content types, caching, nothing reachable outside `www/`, and the
//! bounds on connections and on slow or idle clients.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use picture_server::web::{Site, Upstream};

use crate::common::*;

/// Status, lowercase status line and headers, and body of a raw HTTP/1.1 GET of `target`.
async fn fetch(web: &WebServer, target: &str) -> (u16, String, Vec<u8>) {
    let (status, head, body) = fetch_with(web, target, "").await;
    (status, head.to_lowercase(), body)
}

/// [`fetch`] with more header lines, each ending in CRLF, and the head as sent.
async fn fetch_with(web: &WebServer, target: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = connect(web.addr).await;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}\r\n",
        web.addr
    );
    send(&mut stream, request.as_bytes()).await;
    let response = read_to_end(&mut stream).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, head, response[split + 4..].to_vec())
}

/// A `www` folder with a page and a bundle, inside a folder that also holds a secret.
fn site() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let www = root.path().join("www");
    std::fs::create_dir_all(www.join("pkg")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(www.join("index.html"), "<!doctype html><title>t</title>")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(www.join("pkg/app_bg.wasm"), b"\0asm\x01\0\0\0")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(www.join("pkg/app.js"), "export default 1;").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.path().join("secret.txt"), "top secret").unwrap_or_else(|e| panic!("{e}"));
    root
}

#[tokio::test]
async fn page_and_bundle_have_types_and_cache_headers() {
    let root = site();
    let web = WebServer::start(web_config(
        &root.path().join("www"),
        Upstream::tcp("127.0.0.1:1"),
    ))
    .await;

    let (status, head, body) = fetch(&web, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("content-security-policy:"), "{head}");
    assert!(!head.contains("unsafe-inline"), "{head}");
    assert!(body.starts_with(b"<!doctype html>"));

    let (status, head, _) = fetch(&web, "/pkg/app_bg.wasm").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    // Revalidation is cheap: an unchanged file is not sent again.
    let (_, head, _) = fetch_with(&web, "/pkg/app_bg.wasm", "").await;
    let modified = head
        .lines()
        .find_map(|l| l.strip_prefix("last-modified: "))
        .unwrap_or_else(|| panic!("no last-modified in {head}"));
    let (status, _, body) = fetch_with(
        &web,
        "/pkg/app_bg.wasm",
        &format!("If-Modified-Since: {modified}\r\n"),
    )
    .await;
    assert_eq!(status, 304);
    assert!(body.is_empty());

    let (status, head, _) = fetch(&web, "/pkg/app.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("javascript"), "{head}");
}

#[tokio::test]
async fn nothing_outside_www_is_reachable_and_nothing_is_listed() {
    let root = site();
    let web = WebServer::start(web_config(
        &root.path().join("www"),
        Upstream::tcp("127.0.0.1:1"),
    ))
    .await;
    for target in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%5csecret.txt",
        "/pkg/",
        "/pkg",
        "/missing.html",
    ] {
        let (status, _, body) = fetch(&web, target).await;
        assert!(
            matches!(status, 404 | 400),
            "{target} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!String::from_utf8_lossy(&body).contains("top secret"));
    }
}

#[tokio::test]
async fn odd_request_targets_get_client_errors_and_no_redirect_elsewhere() {
    let root = site();
    let web = WebServer::start(web_config(
        &root.path().join("www"),
        Upstream::tcp("127.0.0.1:1"),
    ))
    .await;
    let long_segment = format!("/{}", "a".repeat(256));
    let long_in_pkg = format!("/pkg/{}", "a".repeat(300));
    let long_path = format!("/{}", "a/".repeat(600));
    for (target, expected) in [
        (long_segment.as_str(), 404),
        (long_in_pkg.as_str(), 404),
        (long_path.as_str(), 414),
        ("example.com:80", 400),
        ("*", 400),
        ("//pkg", 404),
        ("//pkg/", 404),
        ("/pkg//app.js", 404),
        ("//example.com/", 404),
    ] {
        let (status, head, _) = fetch(&web, target).await;
        assert_eq!(status, expected, "{target}: {head}");
        assert!(!head.contains("location:"), "{target}: {head}");
    }
    // Ordinary paths are untouched, with or without a trailing slash or a query.
    for target in [
        "/",
        "/index.html",
        "/pkg/app.js",
        "/?x=1",
        "/pkg/app.js?v=2",
    ] {
        let (status, head, _) = fetch(&web, target).await;
        assert_eq!(status, 200, "{target}: {head}");
    }
}

#[tokio::test]
async fn shipped_page_is_served() {
    let server = TestServer::start().await;
    let web = server.start_web().await;
    let (status, _, body) = fetch(&web, "/").await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("id=\"picture\""), "{page}");
    let (status, _, wasm) = fetch(&web, "/pkg/picture_web_bg.wasm").await;
    assert_eq!(status, 200);
    assert!(wasm.starts_with(b"\0asm"));
}

/// The repository's page with these HTTP limits, and a bridge whose upstream is never used.
async fn limited_web(max_connections: usize, request_timeout: Duration) -> WebServer {
    let mut config = web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"));
    config.max_connections = max_connections;
    config.request_timeout = request_timeout;
    WebServer::start(config).await
}

#[tokio::test]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let web = limited_web(16, Duration::from_millis(300)).await;
    // Headers that never end: the connection is closed (read_to_end gives up after a while,
    // failing the test, if it is not), and nothing is served.
    let mut slow = connect(web.addr).await;
    send(&mut slow, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let answer = read_to_end(&mut slow).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "served an unfinished request"
    );
    // A kept-alive connection gets its page, then is closed once it sits idle.
    let mut idle = connect(web.addr).await;
    send(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_to_end(&mut idle).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "the page was served first"
    );
}

/// Waits until a new connection is served the page: a slot is free.
async fn served_again(web: &WebServer) {
    within(async {
        loop {
            // A connection over the limit is closed at once, which may reset it.
            let mut stream = connect(web.addr).await;
            let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let mut answer = Vec::new();
            if stream.write_all(request).await.is_ok()
                && stream.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_that_asks_and_never_reads_loses_its_connection() {
    let mut config = web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"));
    config.max_connections = 1;
    config.request_timeout = Duration::from_secs(60);
    config.bridge.idle_timeout = Duration::from_millis(500);
    let web = WebServer::start(config).await;
    // Far more of the bundle than the sockets' buffers hold, asked for and never read.
    let mut greedy = connect(web.addr).await;
    let request = b"GET /pkg/picture_web_bg.wasm HTTP/1.1\r\nHost: x\r\n\r\n";
    send(&mut greedy, &request.repeat(200)).await;
    // Its one slot comes back after the idle timeout, long before the request timeout.
    served_again(&web).await;
    drop(greedy);
}

#[tokio::test]
async fn unfinished_headers_are_bounded_and_refused_early() {
    let mut config = web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"));
    config.request_timeout = Duration::from_secs(60);
    let web = WebServer::start(config).await;
    let mut stream = connect(web.addr).await;
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    head.resize(400 * 1024, b'a');
    // The server may stop reading (and close) before all of it is sent.
    let _ = stream.write_all(&head).await;
    let mut answer = vec![0; 256];
    // Refused long before the 60 s request timeout: with 431, or a close.
    let read = within(stream.read(&mut answer)).await;
    if let Ok(n) = read {
        assert!(
            n == 0 || answer.starts_with(b"HTTP/1.1 431"),
            "{}",
            String::from_utf8_lossy(&answer[..n])
        );
    }
}

#[tokio::test]
async fn one_address_over_its_http_limit_gets_503_and_others_are_served() {
    let mut config = web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"));
    config.max_connections_per_ip = 2;
    let web = WebServer::start(config).await;
    let held = [connect(web.addr).await, connect(web.addr).await];
    let mut third = connect(web.addr).await;
    send(&mut third, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_to_end(&mut third).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("from your address"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{answer}"
    );

    let mut other = connect_from([127, 0, 0, 2], web.addr).await;
    send(
        &mut other,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(read_to_end(&mut other).await.starts_with(b"HTTP/1.1 200"));
    drop(held);
    served_again(&web).await;
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_freed_slots_serve_again() {
    let web = limited_web(2, Duration::from_secs(30)).await;
    let held = [connect(web.addr).await, connect(web.addr).await];
    let mut third = connect(web.addr).await;
    send(&mut third, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = String::from_utf8_lossy(&read_to_end(&mut third).await).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.ends_with("try again later\n"),
        "{answer}"
    );
    drop(held);
    // The slots come back once the server has seen those two close.
    served_again(&web).await;
}

#[tokio::test]
async fn the_built_in_page_is_what_www_held_with_types_and_etags() {
    let mut config = web_config(&www_dir(), Upstream::tcp("127.0.0.1:1"));
    config.site = Site::Builtin;
    let web = WebServer::start(config).await;
    for (target, file, kind) in [
        ("/", "index.html", "text/html"),
        ("/main.js", "main.js", "javascript"),
        (
            "/pkg/picture_web_bg.wasm",
            "pkg/picture_web_bg.wasm",
            "application/wasm",
        ),
    ] {
        let (status, head, body) = fetch(&web, target).await;
        assert_eq!(status, 200, "{target}");
        let shipped = std::fs::read(www_dir().join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert!(body == shipped, "{target}: not the file in www/");
        assert!(
            head.contains(&format!("content-type: {kind}")) || head.contains(kind),
            "{head}"
        );
        assert!(head.contains("cache-control: no-cache"), "{head}");
        assert!(head.contains("content-security-policy:"), "{head}");
        // Revalidation of an unchanged file: 304, no body.
        let (_, head, _) = fetch_with(&web, target, "").await;
        let etag = head
            .lines()
            .find(|l| l.to_lowercase().starts_with("etag: "))
            .map(|l| &l["etag: ".len()..])
            .unwrap_or_else(|| panic!("no etag in {head}"));
        let (status, _, body) =
            fetch_with(&web, target, &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!((status, body.len()), (304, 0), "{target}");
        let (status, _, _) = fetch_with(&web, target, "If-None-Match: \"other\"\r\n").await;
        assert_eq!(status, 200, "{target} with another tag");
    }
    for target in [
        "/../Cargo.toml",
        "/pkg/../../README.md",
        "/%2e%2e/README.md",
        "/pkg/",
        "/pkg",
        "/index.html/",
        "/missing.html",
    ] {
        let (status, _, _) = fetch(&web, target).await;
        assert!(matches!(status, 404 | 400), "{target} answered {status}");
    }
}
