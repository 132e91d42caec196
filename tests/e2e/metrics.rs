//! What an operator watches on the real binary: `/metrics`, whose counters move as a known
//! load says they must, and the logs as JSON.

#![cfg(unix)]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use picture_protocol::{Command, MAX_RESPONSE_BODY, Selector, Status, decode_response};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;
use crate::health::probe;

/// The value of the series `name` whose labels include all of `labels`, or 0 if there is none.
pub fn value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0.0)
}

pub async fn scrape(http: std::net::SocketAddr) -> String {
    let mut stream = connect(http).await;
    send(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let answer = String::from_utf8_lossy(&read_to_end(&mut stream).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("content-type: text/plain; version=0.0.4"),
        "{answer}"
    );
    answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned())
}

/// Scrapes until `ready` holds of the metrics: counters of a connection are added as it ends.
pub async fn scrape_until(http: std::net::SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    within(async {
        loop {
            let metrics = scrape(http).await;
            if ready(&metrics) {
                return metrics;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test]
async fn counters_follow_a_known_load() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = start_server_binary(&dir.path().join("pictures.db"), &[]).await;
    let tcp = server.addr("tcp://");
    let page = server.next_line().await;
    let http = addr_in(&page, "http://");
    let pictures = catalog(tcp).await;
    let first = &pictures[0];

    // 5 GETs and a PING over one framed connection; 3 bare choices; 2 GETs over WebSocket;
    // one unknown picture; one WebSocket handshake from a foreign page.
    let mut stream = connect(tcp).await;
    let mut buf = Vec::new();
    for id in 0..5 {
        send(&mut stream, &frame(id, get(Selector::Number(1)))).await;
        assert_eq!(
            read_response(&mut stream, &mut buf).await.head.status,
            Status::Ok
        );
    }
    send(&mut stream, &frame(9, Command::Ping)).await;
    read_response(&mut stream, &mut buf).await;
    drop(stream);
    for _ in 0..3 {
        assert!(exchange_raw(tcp, b"1").await == asset_bytes(&first.name));
    }
    assert_eq!(
        call(tcp, by_name("no-such-picture")).await.head.status,
        Status::NotFound
    );
    let (mut socket, _) = within(tokio_tungstenite::connect_async(format!("ws://{http}/ws")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for id in 0..2 {
        let request = Message::Binary(Bytes::from(frame(id, get(Selector::Number(1)))));
        socket.send(request).await.unwrap_or_else(|e| panic!("{e}"));
        let Some(Ok(Message::Binary(answer))) = within(socket.next()).await else {
            panic!("no answer");
        };
        let (response, _) = decode_response(&answer, MAX_RESPONSE_BODY)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("not a response"));
        assert_eq!(response.head.status, Status::Ok);
    }
    socket.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    drop(socket);
    let mut foreign = format!("ws://{http}/ws")
        .into_client_request()
        .unwrap_or_else(|e| panic!("{e}"));
    let origin = "http://evil.example"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    foreign.headers_mut().insert("origin", origin);
    assert!(
        within(tokio_tungstenite::connect_async(foreign))
            .await
            .is_err()
    );

    let requests = |m: &str, op, status, transport| {
        value(
            m,
            "picture_requests_total",
            &[("op", op), ("status", status), ("transport", transport)],
        )
    };
    // Every connection has ended and been counted: the TCP ones have sent their pictures.
    let picture = first.size as f64;
    let metrics = scrape_until(http, |m| {
        value(m, "picture_sent_bytes_total", &[("transport", "bare")]) >= 3.0 * picture
            && value(m, "picture_sent_bytes_total", &[("transport", "websocket")]) >= 2.0 * picture
            && value(m, "picture_open_connections", &[("kind", "tcp")]) == 0.0
            && value(m, "picture_open_connections", &[("kind", "websocket")]) == 0.0
    })
    .await;
    assert_eq!(requests(&metrics, "GET", "ok", "tcp"), 5.0, "{metrics}");
    assert_eq!(requests(&metrics, "PING", "ok", "tcp"), 1.0, "{metrics}");
    assert_eq!(
        requests(&metrics, "GET", "not_found", "tcp"),
        1.0,
        "{metrics}"
    );
    assert_eq!(requests(&metrics, "GET", "ok", "bare"), 3.0, "{metrics}");
    assert_eq!(
        requests(&metrics, "GET", "ok", "websocket"),
        2.0,
        "{metrics}"
    );
    assert!(
        value(
            &metrics,
            "picture_sent_bytes_total",
            &[("transport", "tcp")]
        ) >= 5.0 * picture
    );
    assert!(
        value(
            &metrics,
            "picture_received_bytes_total",
            &[("transport", "bare")]
        ) >= 3.0
    );
    assert_eq!(
        value(&metrics, "picture_refusals_total", &[("reason", "origin")]),
        1.0,
        "{metrics}"
    );
    // The first GET read the picture from the database; the other nine came from the cache.
    let lookups = |result| {
        value(
            &metrics,
            "picture_cache_lookups_total",
            &[("result", result)],
        )
    };
    assert_eq!((lookups("miss"), lookups("hit")), (1.0, 9.0), "{metrics}");
    assert!(
        value(&metrics, "picture_cache_bytes", &[]) >= picture,
        "{metrics}"
    );
    let gets = value(
        &metrics,
        "picture_request_duration_seconds_count",
        &[("op", "GET"), ("transport", "tcp")],
    );
    assert_eq!(gets, 6.0, "{metrics}");
    assert!(
        value(
            &metrics,
            "picture_store_duration_seconds_count",
            &[("op", "read")]
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn json_logs_have_one_object_per_line_with_the_connection_fields() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = start_server_binary(
        &dir.path().join("pictures.db"),
        &[("PICTURE_LOG_FORMAT", "json")],
    )
    .await;
    let tcp = server.addr("tcp://");
    assert!(exchange_raw(tcp, b"1").await.len() > 1000);
    let line = server.stderr_line("connection closed").await;
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "INFO", "{line}");
    assert_eq!(
        entry["fields"]["message"], "connection closed: done",
        "{line}"
    );
    assert_eq!(entry["fields"]["mode"], "bare", "{line}");
    assert_eq!(entry["fields"]["requests"], 1, "{line}");
    assert!(
        entry["fields"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{line}"
    );
    // Every line is an object, the start-up ones too.
    for line in server.stderr().lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line}"
        );
    }
}

#[tokio::test]
async fn an_admin_port_takes_the_metrics_off_the_page_port() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = start_server_binary(
        &dir.path().join("pictures.db"),
        &[("PICTURE_ADMIN_ADDR", "127.0.0.1:0")],
    )
    .await;
    let tcp = server.addr("tcp://");
    let http = addr_in(&server.next_line().await, "http://");
    let admin_line = server.next_line().await;
    assert!(admin_line.contains("metrics and health at"), "{admin_line}");
    let admin = addr_in(&admin_line, "http://");
    assert_ne!(admin, http);

    assert!(exchange_raw(tcp, b"1").await.len() > 1000);
    let metrics = scrape_until(admin, |m| {
        value(m, "picture_requests_total", &[("transport", "bare")]) >= 1.0
    })
    .await;
    assert!(metrics.contains("picture_open_connections"), "{metrics}");
    for target in ["/healthz", "/readyz"] {
        assert_eq!(
            probe(admin, target).await.0,
            200,
            "{target} on the admin port"
        );
        assert_eq!(
            probe(http, target).await.0,
            200,
            "{target} on the page port"
        );
    }
    assert_eq!(probe(http, "/metrics").await.0, 404);
    // The admin port serves nothing else: not the page, not the bridge.
    assert_eq!(probe(admin, "/").await.0, 404);
    assert_eq!(probe(admin, "/ws").await.0, 404);

    // Its connections are bounded: those over the bound are closed without an answer.
    let mut held = Vec::new();
    for _ in 0..picture_server::limits::MAX_ADMIN_CONNECTIONS {
        held.push(served_connection(admin).await);
    }
    assert_eq!(probe(admin, "/healthz").await.0, 0);
    drop(held);
    within(async {
        while probe(admin, "/healthz").await.0 != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // Counted as refusals, as the other ports' are.
    let metrics = scrape(admin).await;
    assert!(
        value(
            &metrics,
            "picture_refusals_total",
            &[("reason", "admin_busy")]
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn without_metrics_the_admin_port_still_answers_the_probes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut server = start_server_binary(
        &dir.path().join("pictures.db"),
        &[
            ("PICTURE_ADMIN_ADDR", "127.0.0.1:0"),
            ("PICTURE_NO_METRICS", "true"),
        ],
    )
    .await;
    let http = addr_in(&server.next_line().await, "http://");
    let admin = addr_in(&server.next_line().await, "http://");
    assert_eq!(probe(admin, "/metrics").await.0, 404);
    assert_eq!(probe(http, "/metrics").await.0, 404);
    assert_eq!(probe(admin, "/readyz").await, (200, "ready\n".to_owned()));
}

/// A kept-alive connection to the HTTP server at `addr` that has been answered once, so that
/// it holds one of the server's connection slots.
async fn served_connection(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = connect(addr).await;
    send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    within(async {
        while !answer.ends_with(b"\r\n\r\nok\n") {
            let mut chunk = [0; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => panic!("closed after {:?}", String::from_utf8_lossy(&answer)),
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    stream
}
