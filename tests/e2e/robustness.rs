//! Bad input, slow or vanishing clients, limits, and broken picture files: each leaves the
//! server serving everyone else.

use std::time::Duration;

use picture_protocol::{Command, Kind, MAX_RESPONSE_BODY, Selector, Status, decode_response};
use picture_server::Limits;
use picture_server::limits::MAX_BUSY_REJECTIONS;
use tokio::io::AsyncReadExt;

use crate::common::*;

/// The server still answers a fresh client correctly.
async fn assert_still_serving(server: &TestServer) {
    let r = call(server.addr, Command::Ping).await;
    assert_eq!(r.head.status, Status::Ok);
    let first = &catalog(server.addr).await[0];
    let r = call(server.addr, get(Selector::Number(1))).await;
    assert!(r.body == asset_bytes(&first.name));
}

/// `n` framed clients, each served once and kept open: they hold `n` slots.
async fn hold_served(addr: std::net::SocketAddr, n: u32) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for id in 0..n {
        let mut stream = connect(addr).await;
        send(&mut stream, &frame(id, Command::Ping)).await;
        let r = read_response(&mut stream, &mut Vec::new()).await;
        assert_eq!(r.head.status, Status::Ok);
        held.push(stream);
    }
    held
}

/// Waits until a new client is served again; until then every answer is *busy*.
async fn served_again(addr: std::net::SocketAddr) {
    for _ in 0..1000 {
        let r = call(addr, Command::Ping).await;
        if r.head.status == Status::Ok {
            return;
        }
        assert_eq!(r.head.status, Status::Busy);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no slot came back");
}

#[tokio::test]
async fn garbage_after_the_magic_byte_gets_bad_request_and_close() {
    let server = TestServer::start().await;
    for garbage in [
        &[0xFB, 0x01, 0x09, 0x00, 0, 0, 0, 4, 0, 0][..], // unknown kind
        &[0xFB, 0x07, 0x01, 0x00, 0, 0, 0, 4, 0, 0],     // unknown version
        &[0xFB, 0x01, 0x02, 0x00, 0, 0, 0, 4, 0, 3, 9, 9, 9], // bad GET payload
        &[
            0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ],
    ] {
        let mut stream = connect(server.addr).await;
        send(&mut stream, garbage).await;
        let mut buf = Vec::new();
        let r = read_response(&mut stream, &mut buf).await;
        assert!(
            matches!(r.head.status, Status::BadRequest),
            "{garbage:?} got {:?}",
            r.head.status
        );
        assert!(!r.text().is_empty(), "the error answer explains itself");
        assert!(
            read_to_end(&mut stream).await.is_empty(),
            "then the server closes"
        );
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn garbage_after_a_good_request_answers_both() {
    let server = TestServer::start().await;
    let mut stream = connect(server.addr).await;
    let mut bytes = frame(1, Command::Ping);
    bytes.extend_from_slice(&[0xFB, 0x01, 0x55, 0x00, 0, 0, 0, 2, 0, 0]);
    send(&mut stream, &bytes).await;
    let mut buf = Vec::new();
    let first = read_response(&mut stream, &mut buf).await;
    assert_eq!((first.head.id, first.head.status), (1, Status::Ok));
    let second = read_response(&mut stream, &mut buf).await;
    assert_eq!(
        (second.head.id, second.head.status),
        (2, Status::BadRequest)
    );
}

#[tokio::test]
async fn answers_sent_before_an_error_arrive_even_when_more_input_follows() {
    let server = TestServer::start().await;
    let large = catalog(server.addr)
        .await
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap_or_else(|| panic!("no pictures"));
    let mut stream = connect(server.addr).await;
    let mut bytes = frame(1, get(Selector::Name(large.name.clone())));
    bytes.extend_from_slice(&[0xFB, 0x01, 0x55, 0x00, 0, 0, 0, 2, 0, 0]);
    // Input that will never be read: closing on it would reset the connection.
    bytes.extend(std::iter::repeat_n(b'x', 100 * 1024));
    send(&mut stream, &bytes).await;
    // Read only once everything is sent, as a client that writes first would.
    let mut buf = Vec::new();
    let picture = read_response(&mut stream, &mut buf).await;
    assert_eq!((picture.head.id, picture.head.status), (1, Status::Ok));
    assert!(picture.body == asset_bytes(&large.name));
    let error = read_response(&mut stream, &mut buf).await;
    assert_eq!((error.head.id, error.head.status), (2, Status::BadRequest));
}

#[tokio::test]
async fn random_binary_garbage_never_hurts_the_server() {
    // Garbage that announces more than it sends waits out the request timeout: keep it short.
    let limits = Limits {
        request_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let not_found = asset_bytes("not-found");
    let mut seed = 0x2545F4914F6CDD1Du64;
    for round in 0..40 {
        let mut garbage = Vec::new();
        for _ in 0..(round * 37 % 700 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            garbage.push(seed as u8);
        }
        if round % 2 == 0 {
            garbage[0] = 0xFB;
        }
        // The connection ends with a proper answer, or with none when the garbage announces
        // more bytes than it sends, and nothing else breaks.
        let reply = exchange_raw(server.addr, &garbage).await;
        if garbage[0] != 0xFB {
            assert!(
                reply == not_found,
                "round {round}: a bare choice gets not-found"
            );
        } else if !reply.is_empty() {
            let answer = decode_response(&reply, MAX_RESPONSE_BODY);
            assert!(
                matches!(&answer, Ok(Some((r, _))) if matches!(r.head.status, Status::BadRequest | Status::TooLarge)),
                "round {round}: {answer:?}"
            );
        }
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn oversized_length_field_gets_too_large_with_the_id() {
    let server = TestServer::start().await;
    let mut stream = connect(server.addr).await;
    // A GET announcing 65535 payload bytes, far over the limit.
    send(
        &mut stream,
        &[0xFB, 0x01, 0x02, 0x00, 0, 0, 0x30, 0x39, 0xFF, 0xFF],
    )
    .await;
    let r = read_response(&mut stream, &mut Vec::new()).await;
    assert_eq!(r.head.status, Status::TooLarge);
    assert_eq!((r.head.id, r.head.kind), (12345, Some(Kind::Get)));
    assert!(read_to_end(&mut stream).await.is_empty());
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn configured_request_size_limit_applies() {
    let limits = Limits {
        max_request_payload: 8,
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let long_name = by_name("a-name-long-enough-to-exceed-eight-bytes");
    let r = call(server.addr, long_name).await;
    assert_eq!(r.head.status, Status::TooLarge);
}

#[tokio::test]
async fn stalled_half_request_is_dropped_and_frees_its_slot() {
    let limits = Limits {
        max_connections: 1,
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let mut stalled = connect(server.addr).await;
    send(&mut stalled, &frame(1, Command::Ping)[..5]).await;
    // The server gives up on it and closes the connection...
    assert!(read_to_end(&mut stalled).await.is_empty());
    // ...so the only slot is free again.
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn silent_connection_is_dropped_and_frees_its_slot() {
    let limits = Limits {
        max_connections: 1,
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let mut silent = connect(server.addr).await;
    assert!(read_to_end(&mut silent).await.is_empty());
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn idle_framed_connection_is_closed() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, &frame(1, Command::Ping)).await;
    let mut buf = Vec::new();
    assert_eq!(
        read_response(&mut stream, &mut buf).await.head.status,
        Status::Ok
    );
    assert!(read_to_end(&mut stream).await.is_empty());
}

#[tokio::test]
async fn client_vanishing_mid_transfer_does_not_disturb_others() {
    let server = TestServer::start().await;
    let largest = catalog(server.addr)
        .await
        .into_iter()
        .max_by_key(|p| p.size)
        .unwrap_or_else(|| panic!("empty catalog"));
    for _ in 0..10 {
        let mut stream = connect(server.addr).await;
        send(
            &mut stream,
            &frame(1, get(Selector::Number(largest.number))),
        )
        .await;
        let mut some = [0u8; 1000];
        let _ = within(stream.read(&mut some)).await;
        drop(stream);
        // The same, in bare mode.
        let mut bare = connect(server.addr).await;
        send(&mut bare, largest.number.to_string().as_bytes()).await;
        drop(bare);
    }
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn over_the_connection_limit_gets_busy() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    // Two clients hold both slots (each has been served once, so both are accepted).
    let mut held = hold_served(server.addr, 2).await;
    let busy = call(server.addr, get(Selector::Number(1))).await;
    assert_eq!(busy.head.status, Status::Busy);
    assert_eq!((busy.head.id, busy.head.kind), (1, Some(Kind::Get)));
    assert!(!busy.text().is_empty());

    // A bare-choice client over the limit is closed without bytes.
    assert!(exchange_raw(server.addr, b"1").await.is_empty());

    // Silent connections waiting to be told: however many there are, a framed client that
    // sends its request still gets its busy answer.
    let mut silent = Vec::new();
    for _ in 0..MAX_BUSY_REJECTIONS + 16 {
        silent.push(connect(server.addr).await);
    }
    for _ in 0..10 {
        let busy = call(server.addr, Command::Ping).await;
        assert_eq!((busy.head.id, busy.head.status), (1, Status::Busy));
    }
    drop(silent);

    // Once a slot frees up, clients are served again.
    drop(held.pop());
    served_again(server.addr).await;
}

#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    let limits = Limits {
        max_connections_per_ip: 2,
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let held = hold_served(server.addr, 2).await;
    // A third from the same address is told busy, with its request's id.
    let busy = call(server.addr, get(Selector::Number(1))).await;
    assert_eq!((busy.head.id, busy.head.status), (1, Status::Busy));
    assert!(!busy.text().is_empty());
    // Another address is served.
    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    send(&mut other, &frame(7, Command::Ping)).await;
    let r = read_response(&mut other, &mut Vec::new()).await;
    assert_eq!((r.head.id, r.head.status), (7, Status::Ok));
    // And the address's slots come back as its connections close.
    drop(held);
    served_again(server.addr).await;
}

#[tokio::test]
async fn corrupt_and_foreign_files_in_the_assets_folder_are_skipped() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good_name = manifest_names().remove(0);
    let good = asset_path(&good_name);
    std::fs::copy(&good, dir.path().join(good.file_name().unwrap_or_default()))
        .unwrap_or_else(|e| panic!("{e}"));
    let png = std::fs::read(assets_dir().join("not-found.png")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("garbage.jpg"), b"not a jpeg at all")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("truncated.png"), &png[..20]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("empty.gif"), b"").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("catalog.toml"), b"this is = = not toml")
        .unwrap_or_else(|e| panic!("{e}"));

    let server = TestServer::start_with(dir.path(), Limits::default()).await;
    let names: Vec<String> = catalog(server.addr)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, [good_name]);
    // With no not-found picture in the folder, the built-in one is served.
    let r = call(server.addr, by_name("garbage")).await;
    assert_eq!(r.head.status, Status::NotFound);
    assert!(image::load_from_memory(&r.body).is_ok());
}

#[cfg(unix)]
#[tokio::test]
async fn under_a_low_open_file_limit_the_server_says_so_and_answers_everyone() {
    // A hard limit of 300 open files, far below what the default limits need.
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", "ulimit -n 300 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_picture-server"))
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .arg("--store")
        .arg(format!("folder:{}", assets_dir().display()));
    let server = ServerProcess::start(command).await;
    let warning = server.stderr_line("open files").await;
    assert!(
        warning.contains("only 300 open files allowed") && warning.contains("TCP connections"),
        "{warning}"
    );
    let addr = server.addr("tcp://");

    // More clients than descriptors, all connected at once: each is served or told busy.
    let mut held = Vec::new();
    let (mut served, mut busy) = (0, 0);
    for id in 0..400 {
        let mut stream = connect(addr).await;
        send(&mut stream, &frame(id, Command::Ping)).await;
        let r = read_response(&mut stream, &mut Vec::new()).await;
        match r.head.status {
            Status::Ok => served += 1,
            Status::Busy => busy += 1,
            other => panic!("client {id} got {other:?}"),
        }
        held.push(stream);
    }
    assert!(served > 0 && busy > 0, "served {served}, busy {busy}");
    drop(held);
    served_again(addr).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_flood_of_refused_clients_is_one_warning_then_a_summary_per_interval() {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--max-connections-per-ip", "1"])
        .arg("--store")
        .arg(format!("folder:{}", assets_dir().display()));
    let server = ServerProcess::start(command).await;
    let addr = server.addr("tcp://");
    let _held = hold_served(addr, 1).await;
    let refuse = async |clients: u32| {
        for _ in 0..clients {
            assert_eq!(call(addr, Command::Ping).await.head.status, Status::Busy);
        }
    };
    refuse(200).await;
    let first = server.stderr_line("refused").await;
    assert!(
        first.contains("1 over the per-address connection limit"),
        "{first}"
    );
    // The server's interval between warnings is 10 s: the next refusal after it brings the
    // summary of the 199 since.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    refuse(1).await;
    let summary = server.stderr_line("refused in the last").await;
    assert!(
        summary.contains("200 over the per-address connection limit"),
        "{summary}"
    );
    let lines = server
        .stderr()
        .lines()
        .filter(|l| l.contains("refused"))
        .count();
    assert_eq!(lines, 2, "{}", server.stderr());
}
