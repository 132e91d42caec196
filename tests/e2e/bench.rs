//! The `picture-bench` binary: short runs against real servers, checked through its JSON line.
//! Counts and correctness only; nothing here depends on how fast anything is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Output;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use picture_server::Limits;
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

async fn run_bench(server: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(bench_program())
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("PICTURE_TOKEN")
        .kill_on_drop(true)
        .output();
    within(child).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a successful bench and returns its JSON report (the last line of its output).
async fn bench(server: &str, args: &[&str]) -> Value {
    bench_with_stderr(server, args).await.0
}

/// [`bench`], and what the bench wrote on standard error.
async fn bench_with_stderr(server: &str, args: &[&str]) -> (Value, String) {
    let out = run_bench(server, &[args, &["--json"]].concat()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let report = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (report, stderr.into_owned())
}

/// Asserts that exactly `requests` were measured, all of them answered right.
fn assert_clean(report: &Value, requests: u64) {
    assert_eq!(report["requests"], requests, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["mismatches"], 0, "{report}");
}

#[tokio::test]
async fn framed_tcp_with_pipelining() {
    let server = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    let args = [
        "--picture",
        "thumbnail",
        "--connections",
        "4",
        "--pipeline",
        "4",
        "--requests",
        "400",
        "--warmup",
        "0",
    ];
    let report = bench(&tcp, &args).await;
    assert_clean(&report, 400);
    assert_eq!(report["transport"], "tcp");
    assert_eq!(report["mode"], "framed");
    assert_eq!(report["pipeline"], 4);
    assert_eq!(report["picture"], "thumbnail");
    assert_eq!(report["body_bytes"], asset_bytes("thumbnail").len());
    assert_eq!(report["reference"], "catalog");
    let latency = &report["latency_us"];
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency[key].as_u64().is_some_and(|us| us > 0), "{report}");
    }
}

#[tokio::test]
async fn bare_tcp_checks_against_the_catalog() {
    let server = TestServer::start().await;
    let second = catalog(server.addr).await.swap_remove(1);
    let tcp = format!("tcp://{}", server.addr);
    let args = [
        "--mode",
        "bare",
        "--picture",
        "2",
        "--connections",
        "4",
        "--requests",
        "200",
        "--warmup",
        "0",
    ];
    let report = bench(&tcp, &args).await;
    assert_clean(&report, 200);
    assert_eq!(report["mode"], "bare");
    assert_eq!(report["picture"], second.name.as_str());
    assert_eq!(report["body_bytes"], second.size);
    assert_eq!(report["reference"], "catalog");
}

#[tokio::test]
async fn framed_through_the_websocket_bridge() {
    let server = TestServer::start().await;
    for upstream in [server.local(), server.tcp()] {
        let web = WebServer::start(web_config(&www_dir(), upstream)).await;
        framed_through(&web).await;
        web.stop().await;
    }
}

async fn framed_through(web: &WebServer) {
    let args = [
        "--picture",
        "thumbnail",
        "--connections",
        "4",
        "--pipeline",
        "2",
        "--requests",
        "300",
        "--warmup",
        "0",
    ];
    let report = bench(&web.ws_url(), &args).await;
    assert_clean(&report, 300);
    assert_eq!(report["transport"], "ws");
}

/// A WebSocket-to-TCP bridge that knows nothing of frames, as websockify: it sends whatever
/// each read of the server brings, in messages of at most 1000 bytes, so response heads and
/// bodies are cut at arbitrary places.
async fn start_byte_stream_bridge(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(socket).await else {
                    return;
                };
                let Ok(tcp) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut ws_out, mut ws_in) = ws.split();
                let (mut tcp_in, mut tcp_out) = tcp.into_split();
                let requests = async {
                    while let Some(Ok(Message::Binary(bytes))) = ws_in.next().await {
                        if tcp_out.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                };
                let responses = async {
                    let mut chunk = vec![0; 1000];
                    while let Ok(n @ 1..) = tcp_in.read(&mut chunk).await {
                        let message = Message::Binary(Bytes::copy_from_slice(&chunk[..n]));
                        if ws_out.send(message).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::select! {
                    () = requests => {}
                    () = responses => {}
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn framed_through_a_byte_stream_bridge() {
    let server = TestServer::start().await;
    let bridge = start_byte_stream_bridge(server.addr).await;
    let args = [
        "--picture",
        "thumbnail",
        "--connections",
        "2",
        "--pipeline",
        "4",
        "--requests",
        "200",
        "--warmup",
        "0",
    ];
    let report = bench(&format!("ws://{bridge}/"), &args).await;
    assert_clean(&report, 200);
    assert_eq!(report["reference"], "catalog");
}

/// A server that speaks only bare choices, like the original: whatever it is sent, it answers
/// with the next of `bodies`, in turn, and closes.
async fn start_bare_only_server(bodies: &'static [&'static [u8]]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        for body in bodies.iter().cycle() {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut choice = [0; 256];
                if socket.read(&mut choice).await.is_ok() {
                    let _ = socket.write_all(body).await;
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    addr
}

/// A proxy in front of `upstream` that passes framed connections through and, of the bare
/// ones, corrupts the last byte of every fourth answer.
async fn start_corrupting_proxy(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let mut bare = 0usize;
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut first = [0; 256];
            let Ok(n @ 1..) = client.read(&mut first).await else {
                continue;
            };
            let corrupt = first[0] != 0xFB && {
                bare += 1;
                bare.is_multiple_of(4)
            };
            tokio::spawn(async move {
                if server.write_all(&first[..n]).await.is_err() {
                    return;
                }
                if first[0] == 0xFB {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                // A bare answer ends when the server closes.
                let mut answer = Vec::new();
                if server.read_to_end(&mut answer).await.is_err() {
                    return;
                }
                if let (true, Some(last)) = (corrupt, answer.last_mut()) {
                    *last ^= 0xFF;
                }
                let _ = client.write_all(&answer).await;
                let _ = client.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn bodies_that_differ_from_the_catalog_hash_are_counted_as_mismatches() {
    let server = TestServer::start().await;
    let proxy = start_corrupting_proxy(server.addr).await;
    let args = [&BARE_ARGS[..], &["--picture", "thumbnail"]].concat();
    let report = bench(&format!("tcp://{proxy}"), &args).await;
    assert_eq!(report["reference"], "catalog");
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["mismatches"], 50, "{report}");
}

const BARE_ARGS: [&str; 8] = [
    "--mode",
    "bare",
    "--connections",
    "4",
    "--requests",
    "200",
    "--warmup",
    "0",
];

#[tokio::test]
async fn bare_only_server_is_compared_with_the_first_body() {
    let addr = start_bare_only_server(&[b"not a picture, but always the same bytes"]).await;
    let report = bench(&format!("tcp://{addr}"), &BARE_ARGS).await;
    assert_clean(&report, 200);
    assert_eq!(report["reference"], "first-body");
    assert_eq!(report["body_bytes"], 40);
}

#[tokio::test]
async fn bodies_that_differ_are_counted_as_mismatches() {
    // The first connection is the LIST probe and the second brings the reference; the 200
    // measured requests then get the next 200 answers in turn, 2 in every 5 of which differ
    // from the reference, one in content and one in length.
    let addr = start_bare_only_server(&[b"same", b"same", b"SAME", b"same", b"same!"]).await;
    let report = bench(&format!("tcp://{addr}"), &BARE_ARGS).await;
    assert_eq!(report["reference"], "first-body");
    assert_eq!(report["requests"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["mismatches"], 80, "{report}");
}

#[tokio::test]
async fn idle_connections_are_held_and_counted() {
    let server = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    let (report, stderr) = bench_with_stderr(&tcp, &["--idle", "50", "--duration", "0.5"]).await;
    assert!(stderr.contains("holding 50 connections"), "{stderr}");
    assert_eq!(report["mode"], "idle");
    assert_eq!(report["connections"], 50);
    assert_eq!(report["alive"], 50);
}

#[tokio::test]
async fn pages_with_and_without_a_search() {
    let server = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    let args = [
        "--mode",
        "page",
        "--search",
        "FOREST",
        "--connections",
        "2",
        "--pipeline",
        "4",
        "--requests",
        "200",
        "--warmup",
        "0",
    ];
    let report = bench(&tcp, &args).await;
    assert_clean(&report, 200);
    assert_eq!(report["mode"], "page");
    assert_eq!(report["reference"], "first-page");
    assert_eq!(report["picture"], Value::Null);
    let page = &report["page"];
    assert_eq!((&page["entries"], &page["total"]), (&2.into(), &2.into()));
    assert_eq!(page["search"], "FOREST");

    let args = [
        "--mode",
        "page",
        "--after",
        "2",
        "--limit",
        "3",
        "--requests",
        "100",
        "--warmup",
        "0",
    ];
    let report = bench(&tcp, &args).await;
    assert_clean(&report, 100);
    let page = &report["page"];
    let pictures = manifest_names().len();
    assert_eq!(
        (&page["entries"], &page["total"]),
        (&3.into(), &pictures.into())
    );
    assert_eq!((&page["after"], &page["limit"]), (&2.into(), &3.into()));
}

/// Upload arguments for `file` with the test servers' token.
fn upload_args<'a>(file: &'a str, connections: &'a str, requests: &'a str) -> Vec<&'a str> {
    vec![
        "--mode",
        "upload",
        "--token",
        TOKEN,
        "--file",
        file,
        "--connections",
        connections,
        "--requests",
        requests,
        "--warmup",
        "0",
    ]
}

#[tokio::test]
async fn every_upload_is_new_content_checked_against_its_hash() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_sqlite(&dir.path().join("pictures.db"), Limits::default()).await;
    let mut changes = server.store().subscribe();
    let file = asset_path("thumbnail");
    let original = asset_bytes("thumbnail");
    let file = file.to_string_lossy();
    let report = bench(
        &format!("tcp://{}", server.addr),
        &upload_args(&file, "2", "40"),
    )
    .await;
    assert_clean(&report, 40);
    assert_eq!(report["mode"], "upload");
    assert_eq!(report["reference"], "upload");
    assert_eq!(report["picture"], "thumbnail.jpg");
    // The shipped picture has no metadata, so what is sent is what is stored.
    assert_eq!(report["body_bytes"], original.len());

    // The file as it is once (the same content as the shipped "thumbnail"), then the 40
    // measured uploads, each of them content that no picture held when it was stored: none
    // was deduplicated.
    let mut held: HashMap<String, [u8; 32]> = HashMap::new();
    for picture in server.store().catalog().entries() {
        if !picture.name.starts_with("bench-upload-") {
            held.insert(picture.name.clone(), picture.sha256);
        }
    }
    let mut stored = Vec::new();
    while let Ok(change) = changes.try_recv() {
        let picture = change
            .picture
            .unwrap_or_else(|| panic!("{:?}", change.kind));
        assert!(
            picture.name.starts_with("bench-upload-"),
            "{}",
            picture.name
        );
        if !stored.is_empty() {
            assert!(
                !held.values().any(|sha256| *sha256 == picture.sha256),
                "upload {} to {} brought content the store held",
                stored.len(),
                picture.name
            );
        }
        held.insert(picture.name.clone(), picture.sha256);
        stored.push(picture);
    }
    assert_eq!(stored.len(), 41);
    assert_eq!(stored[0].sha256, sha2::Sha256::digest(&original).as_slice());
    let names: Vec<String> = server
        .store()
        .catalog()
        .entries()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let pictures = manifest_names().len();
    assert_eq!(names[pictures..], ["bench-upload-1", "bench-upload-2"]);
    assert!(stored.iter().all(|p| p.size as usize == original.len()));
}

#[tokio::test]
async fn upload_setup_failures_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_sqlite(&dir.path().join("pictures.db"), Limits::default()).await;
    let read_only = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    let jpeg = asset_path("thumbnail").to_string_lossy().into_owned();
    let png = asset_path("house").to_string_lossy().into_owned();
    let wrong_token: Vec<&str> = upload_args(&jpeg, "1", "5")
        .into_iter()
        .map(|arg| if arg == TOKEN { "not-the-token" } else { arg })
        .collect();
    let read_only_tcp = format!("tcp://{}", read_only.addr);
    for (target, args, says) in [
        (tcp.as_str(), wrong_token, "not authorised"),
        (&tcp, upload_args(&png, "1", "5"), "not a JPEG"),
        (
            &tcp,
            upload_args("/nonexistent.jpg", "1", "5"),
            "cannot read",
        ),
        (
            &read_only_tcp,
            upload_args(&jpeg, "1", "5"),
            "writes disabled",
        ),
        (
            "ws://127.0.0.1:1/ws",
            upload_args(&jpeg, "1", "5"),
            "tcp://",
        ),
        (&tcp, vec!["--mode", "upload", "--file", &jpeg], "required"),
    ] {
        let out = run_bench(target, &args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing was stored by the attempts that reached the server.
    assert_eq!(server.store().catalog().len(), manifest_names().len());
}

#[tokio::test]
async fn setup_failures_exit_1_with_one_line() {
    let server = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    for (target, args) in [
        (tcp.as_str(), &["--picture", "unicorn"][..]),
        (&tcp, &["--pipeline", "0"]),
    ] {
        let out = run_bench(target, args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn framed_over_tls_and_wss() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = crate::tls::TestCa::new("Test CA");
    let ca_file = ca.write_ca(dir.path());
    let (cert, key) = ca.write_server(dir.path(), "server");
    let (server, page) = crate::tls::start_tls_server(&cert, &key).await;
    let tls = format!("tls://localhost:{}", server.addr("tls://").port());
    let wss = format!("wss://localhost:{}/ws", addr_in(&page, "https://").port());
    let ca_file = ca_file.display().to_string();
    for (url, transport) in [(tls, "tls"), (wss, "wss")] {
        let args = [
            "--picture",
            "forest-small",
            "--connections",
            "2",
            "--requests",
            "50",
            "--warmup",
            "0",
            "--ca-cert",
            &ca_file,
        ];
        let report = bench(&url, &args).await;
        assert_clean(&report, 50);
        assert_eq!(report["transport"], transport);
    }
}

#[tokio::test]
async fn every_upload_is_matched_with_its_notice_on_a_watched_server() {
    let pg = crate::pg::PgServer::start();
    let a = crate::shared::on_postgres(&pg).await;
    let b = crate::shared::on_postgres(&pg).await;
    let file = asset_path("thumbnail").display().to_string();
    let watched = format!("tcp://{}", b.addr);
    let mut args = upload_args(&file, "1", "30");
    args.extend(["--watch", &watched]);
    let report = bench(&format!("tcp://{}", a.addr), &args).await;
    assert_clean(&report, 30);
    let propagation = &report["propagation_us"];
    assert_eq!(propagation["uploads"], 30, "{report}");
    assert_eq!(propagation["missing"], 0, "{report}");
    assert!(propagation["max"].as_u64() >= propagation["p50"].as_u64());

    // Watching a server that never hears of the uploads: every notice is missing.
    let elsewhere = TestServer::start().await;
    let unrelated = format!("tcp://{}", elsewhere.addr);
    let mut args = upload_args(&file, "1", "5");
    args.extend(["--watch", &unrelated]);
    let report = bench(&format!("tcp://{}", a.addr), &args).await;
    assert_eq!(report["propagation_us"]["missing"], 5, "{report}");
}
