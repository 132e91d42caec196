//! The `picture-bench` binary: short runs against real servers, checked through its JSON line.
//! Counts and correctness only; nothing here depends on how fast anything is.

use std::net::SocketAddr;
use std::process::Output;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

async fn run_bench(server: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-bench"))
        .arg("--server")
        .arg(server)
        .args(args)
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
async fn setup_failures_exit_1_with_one_line() {
    let server = TestServer::start().await;
    let tcp = format!("tcp://{}", server.addr);
    for (target, args) in [
        (tcp.as_str(), &["--picture", "unicorn"][..]),
        (&tcp, &["--pipeline", "0"]),
        ("ws://127.0.0.1:1/ws", &["--mode", "bare"]),
        ("tcp://127.0.0.1:1", &[]),
    ] {
        let out = run_bench(target, args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
