//! The WebSocket bridge, driven by a real WebSocket client.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use picture_protocol::{
    Command, MAX_RESPONSE_BODY, PictureInfo, Response, Selector, Status, decode_catalog,
    decode_response,
};
use picture_server::Limits;
use picture_server::web::Upstream;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::*;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(url: &str, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap_or_else(|e| panic!("{e}"));
    if let Some(origin) = origin {
        let value = origin.parse().unwrap_or_else(|e| panic!("{e}"));
        request.headers_mut().insert("origin", value);
    }
    within(tokio_tungstenite::connect_async(request))
        .await
        .map(|(socket, _)| socket)
}

async fn open_ok(web: &WebServer) -> Socket {
    open(&web.ws_url(), Some(&web.origin()))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"))
}

/// Sends one binary message and decodes the one binary message that answers it.
async fn exchange(socket: &mut Socket, message: Vec<u8>) -> Response {
    socket
        .send(Message::Binary(Bytes::from(message)))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    receive(socket).await
}

/// The next binary message, decoded as one response.
async fn receive(socket: &mut Socket) -> Response {
    loop {
        let reply = within(socket.next())
            .await
            .unwrap_or_else(|| panic!("session closed"))
            .unwrap_or_else(|e| panic!("receive: {e}"));
        if let Message::Binary(frame) = reply {
            let (response, used) = decode_response(&frame, MAX_RESPONSE_BODY)
                .unwrap_or_else(|e| panic!("invalid response: {e}"))
                .unwrap_or_else(|| panic!("incomplete response in one message"));
            assert_eq!(used, frame.len(), "exactly one frame per message");
            return response;
        }
    }
}

#[tokio::test]
async fn list_and_get_through_the_bridge_return_the_asset_bytes() {
    let server = TestServer::start().await;
    for upstream in [server.local(), server.tcp()] {
        let web = WebServer::start(web_config(&www_dir(), upstream)).await;
        list_and_get_every_picture(&web).await;
        web.stop().await;
    }
}

async fn list_and_get_every_picture(web: &WebServer) {
    let mut socket = open_ok(web).await;
    let list = exchange(&mut socket, frame(1, Command::List)).await;
    assert_eq!((list.head.id, list.head.status), (1, Status::Ok));
    let pictures = decode_catalog(&list.body).unwrap_or_else(|e| panic!("{e}"));
    assert!(pictures.len() >= 6);
    for (i, p) in pictures.iter().enumerate() {
        let id = 100 + i as u32;
        let r = exchange(&mut socket, frame(id, get(Selector::Number(p.number)))).await;
        assert_eq!((r.head.id, r.head.status), (id, Status::Ok));
        assert!(r.body == asset_bytes(&p.name), "bytes of {}", p.name);
    }
    let missing = exchange(&mut socket, frame(7, by_name("unicorn"))).await;
    assert_eq!(missing.head.status, Status::NotFound);
    assert!(missing.body == asset_bytes("not-found"));
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403() {
    let server = TestServer::start().await;
    let web = server.start_web().await;
    for origin in ["http://evil.example", "http://127.0.0.1:1", "null"] {
        match open(&web.ws_url(), Some(origin)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!(
                "{origin}: expected 403, got {:?}",
                other.map(|_| "a session")
            ),
        }
    }
    // The page's own origin, and a client that sends none (not a browser), are let in.
    assert!(open(&web.ws_url(), Some(&web.origin())).await.is_ok());
    assert!(open(&web.ws_url(), None).await.is_ok());
}

#[tokio::test]
async fn handshakes_with_a_key_that_is_not_16_bytes_get_400() {
    let server = TestServer::start().await;
    let web = server.start_web().await;
    for key in ["c2hvcnQ=", "not base64!", "dGhlIHNhbXBsZSBub25jZSEhIQ=="] {
        let mut request = web
            .ws_url()
            .into_client_request()
            .unwrap_or_else(|e| panic!("{e}"));
        let value = key.parse().unwrap_or_else(|e| panic!("{e}"));
        request.headers_mut().insert("sec-websocket-key", value);
        match within(tokio_tungstenite::connect_async(request)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400, "{key}"),
            other => panic!("{key}: expected 400, got {:?}", other.map(|_| "a session")),
        }
    }
    assert!(open(&web.ws_url(), None).await.is_ok());
}

#[tokio::test]
async fn allowed_origins_are_let_in() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.origins = picture_server::web::OriginPolicy::new(["https://pictures.example".into()]);
    let web = WebServer::start(config).await;
    assert!(
        open(&web.ws_url(), Some("https://pictures.example"))
            .await
            .is_ok()
    );
    match open(&web.ws_url(), Some("https://other.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| "a session")),
    }
}

#[tokio::test]
async fn malformed_messages_get_error_answers_and_the_session_survives() {
    let server = TestServer::start().await;
    let web = server.start_web().await;
    let mut socket = open_ok(&web).await;
    let two_frames = [frame(1, Command::Ping), frame(2, Command::Ping)].concat();
    let half_frame = frame(3, Command::List)[..6].to_vec();
    let cases: Vec<(Vec<u8>, Status)> = vec![
        (b"garbage".to_vec(), Status::BadRequest),
        (vec![0xFB, 1, 0x42, 0, 0, 0, 0, 9, 0, 0], Status::BadRequest),
        (two_frames, Status::BadRequest),
        (half_frame, Status::BadRequest),
        (vec![0xFB, 1, 2, 0, 0, 0, 0, 4, 0x10, 0], Status::TooLarge),
        (vec![], Status::BadRequest),
    ];
    for (message, status) in cases {
        let r = exchange(&mut socket, message.clone()).await;
        assert_eq!(r.head.status, status, "{message:?}");
        assert!(!r.text().is_empty());
    }
    // Text messages are not requests either.
    socket
        .send(Message::Text("LIST".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = receive(&mut socket).await;
    assert_eq!(
        r.head.status,
        Status::BadRequest,
        "answer to the text message"
    );
    let r = exchange(&mut socket, frame(5, Command::Ping)).await;
    assert_eq!(
        (r.head.id, r.head.status),
        (5, Status::Ok),
        "session still works"
    );
}

#[tokio::test]
async fn oversized_message_ends_the_session_but_not_the_server() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.max_message = 4096;
    let web = WebServer::start(config).await;
    let mut socket = open_ok(&web).await;
    let _ = socket
        .send(Message::Binary(Bytes::from(vec![0xFB; 100_000])))
        .await;
    let ended = within(async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return true,
                Some(Ok(Message::Close(frame))) => {
                    return frame.is_none_or(|f| u16::from(f.code) == 1009);
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended);
    let mut fresh = open_ok(&web).await;
    let r = exchange(&mut fresh, frame(1, Command::Ping)).await;
    assert_eq!(r.head.status, Status::Ok);
}

#[tokio::test]
async fn upstream_down_gives_an_error_answer_then_recovers() {
    // A port where nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let upstream = format!("127.0.0.1:{port}");
    let web = WebServer::start(web_config(&www_dir(), Upstream::tcp(upstream.clone()))).await;
    let mut socket = open_ok(&web).await;
    let r = exchange(&mut socket, frame(1, Command::List)).await;
    assert_eq!((r.head.id, r.head.status), (1, Status::Internal));
    assert!(r.text().contains("unavailable"), "{}", r.text());

    // The picture server comes up; the same session reconnects on its next request.
    let addr = upstream.parse().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_at(addr, &assets_dir(), Limits::default()).await;
    let r = exchange(&mut socket, frame(2, Command::List)).await;
    assert_eq!((r.head.id, r.head.status), (2, Status::Ok));

    // It goes down again: an error answer, not a silent close.
    let _stopping = server.begin_shutdown();
    // The kept connection may still finish requests while the server drains: ask until the
    // answer changes (bounded by the tests' patience), and it must be an error answer.
    let answer = within(async {
        for id in 3.. {
            let answer = exchange(&mut socket, frame(id, Command::Ping)).await;
            if answer.head.status != Status::Ok {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        unreachable!("ids do not run out")
    })
    .await;
    assert_eq!(answer.head.status, Status::Internal);
}

#[tokio::test]
async fn malformed_messages_never_reach_a_tcp_upstream() {
    // An upstream that only counts the connections it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let upstream = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, SeqCst);
            drop(socket);
        }
    });
    let web = WebServer::start(web_config(&www_dir(), Upstream::tcp(upstream.to_string()))).await;
    let mut socket = open_ok(&web).await;
    let half_frame = frame(2, Command::List)[..6].to_vec();
    for message in [
        b"garbage".to_vec(),
        half_frame,
        [frame(3, Command::Ping), frame(4, Command::Ping)].concat(),
    ] {
        let r = exchange(&mut socket, message).await;
        assert_eq!(r.head.status, Status::BadRequest);
    }
    assert_eq!(
        connections.load(SeqCst),
        0,
        "opened lazily, for valid requests only"
    );
    // The first valid request opens the session's one upstream connection (this upstream
    // closes it at once, so the answer is an error).
    let r = exchange(&mut socket, frame(5, Command::Ping)).await;
    assert_eq!(r.head.status, Status::Internal);
    assert_eq!(connections.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sessions() {
    let server = TestServer::start().await;
    let pictures = catalog(server.addr).await;
    for upstream in [server.local(), server.tcp()] {
        let web = WebServer::start(web_config(&www_dir(), upstream)).await;
        assert_eq!(sessions_served(&web, &pictures).await, 64);
        web.stop().await;
    }
}

/// Opens 64 sessions at once, each asking for the catalog and a picture; returns how many
/// got both right.
async fn sessions_served(web: &WebServer, pictures: &[PictureInfo]) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64usize {
        let (url, origin) = (web.ws_url(), web.origin());
        let p = pictures[i % pictures.len()].clone();
        tasks.spawn(async move {
            let mut socket = open(&url, Some(&origin))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let list = exchange(&mut socket, frame(1, Command::List)).await;
            let r = exchange(&mut socket, frame(2, get(Selector::Number(p.number)))).await;
            list.head.status == Status::Ok && r.body == asset_bytes(&p.name)
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        ok += usize::from(result.unwrap_or_else(|e| panic!("{e}")));
    }
    ok
}

#[tokio::test]
async fn sessions_over_the_limit_get_503() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.max_sessions = 2;
    let web = WebServer::start(config).await;
    let _a = open_ok(&web).await;
    let _b = open_ok(&web).await;
    match open(&web.ws_url(), Some(&web.origin())).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| "a session")),
    }
}

#[tokio::test]
async fn one_address_over_its_session_limit_gets_503_and_others_are_served() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.max_sessions_per_ip = 2;
    let web = WebServer::start(config).await;
    let _a = open_ok(&web).await;
    let _b = open_ok(&web).await;
    match open(&web.ws_url(), Some(&web.origin())).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("from your address"), "{body}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "a session")),
    }
    // A session from another address is served.
    let stream = connect_from([127, 0, 0, 2], web.addr).await;
    let mut request = web
        .ws_url()
        .into_client_request()
        .unwrap_or_else(|e| panic!("{e}"));
    let origin = web.origin().parse().unwrap_or_else(|e| panic!("{e}"));
    request.headers_mut().insert("origin", origin);
    let (mut other, _) = within(tokio_tungstenite::client_async(request, stream))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    other
        .send(Message::Binary(Bytes::from(frame(3, Command::Ping))))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let reply = within(other.next()).await;
    assert!(matches!(reply, Some(Ok(Message::Binary(_)))), "{reply:?}");
}

#[tokio::test]
async fn idle_sessions_are_pinged_and_dead_ones_closed() {
    let server = TestServer::start().await;
    let mut config = web_config(&www_dir(), server.local());
    config.bridge.idle_timeout = Duration::from_millis(400);
    let web = WebServer::start(config).await;
    let mut socket = open_ok(&web).await;
    // A client that reads (and so answers pings, as tungstenite does) is kept...
    let mut pings = 0;
    while pings < 3 {
        match within(socket.next()).await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(_))) | None => panic!("a live client was disconnected"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let r = exchange(&mut socket, frame(1, Command::Ping)).await;
    assert_eq!(r.head.status, Status::Ok);
    // ...a client that stops answering is closed.
    let silent = open_ok(&web).await;
    let (_write, mut read) = silent.split();
    drop(_write);
    // Not reading means no pongs go out; the server closes the session.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let closed = within(async {
        loop {
            match read.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed);
}

#[tokio::test]
async fn cli_speaks_through_the_bridge() {
    let server = TestServer::start().await;
    let web = server.start_web().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pictures = catalog(server.addr).await;
    let out = tokio::process::Command::new(client_program())
        .args(["--server", &web.ws_url(), "get", "2", "-o", "x.jpg"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read(dir.path().join("x.jpg")).unwrap_or_else(|e| panic!("{e}"));
    assert!(saved == asset_bytes(&pictures[1].name));
    let out = tokio::process::Command::new(client_program())
        .args(["--server", &web.ws_url(), "get", "unicorn"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn bridge_binary_takes_its_settings_from_the_environment() {
    let server = TestServer::start().await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .arg("bridge")
        .env("PICTURE_UPSTREAM", server.addr.to_string())
        .env("PICTURE_HTTP_ADDR", "127.0.0.1:0")
        .env("PICTURE_ALLOW_ORIGIN", "https://pictures.example");
    let bridge = ServerProcess::start(command).await;
    let banner = &bridge.banner;
    assert!(
        banner.ends_with(&format!("(bridge to tcp://{})", server.addr)),
        "{banner}"
    );
    let http = bridge.addr("http://");
    let url = format!("ws://{http}/ws");
    let mut socket = open(&url, Some("https://pictures.example"))
        .await
        .unwrap_or_else(|e| panic!("an allowed origin: {e}"));
    let first = &catalog(server.addr).await[0];
    let r = exchange(&mut socket, frame(1, get(Selector::Number(1)))).await;
    assert!(r.body == asset_bytes(&first.name));
    match open(&url, Some("https://other.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| "a session")),
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_relaying_bridge_holds_at_most_256_kib_for_a_session_that_never_reads() {
    const SESSIONS: u64 = 128;
    let server = TestServer::start().await;
    let large = catalog(server.addr)
        .await
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap_or_else(|| panic!("no pictures"));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .args([
            "bridge",
            "--http-addr",
            "127.0.0.1:0",
            "--max-ws-sessions-per-ip",
            "200",
        ])
        .arg("--upstream")
        .arg(server.addr.to_string());
    let bridge = ServerProcess::start(command).await;
    let (pid, addr) = (bridge.pid(), bridge.addr("http://"));
    let url = format!("ws://{addr}/ws");
    // Warm up: one session fetches the picture whole.
    let mut warm = open(&url, None).await.unwrap_or_else(|e| panic!("{e}"));
    let name = Selector::Name(large.name.clone());
    assert_eq!(
        exchange(&mut warm, frame(1, get(name.clone())))
            .await
            .head
            .status,
        Status::Ok
    );
    let before = proc_status_kib(pid, "VmRSS");

    let mut greedy = Vec::new();
    for _ in 0..SESSIONS {
        let mut socket = open(&url, None).await.unwrap_or_else(|e| panic!("{e}"));
        let request = Message::Binary(Bytes::from(frame(1, get(name.clone()))));
        socket
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
        greedy.push(socket);
    }
    // Until the bridge has taken all it will take: its memory stops growing.
    let mut last = proc_status_kib(pid, "VmRSS");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = proc_status_kib(pid, "VmRSS");
        if now <= last + 64 {
            break;
        }
        last = now;
    }
    let per_session = proc_status_kib(pid, "VmRSS").saturating_sub(before) / SESSIONS;
    assert!(per_session <= 300, "{per_session} KiB per session");
    eprintln!("{per_session} KiB per session");
    drop(greedy);
}
