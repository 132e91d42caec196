//! The framed protocol: listing, fetching, pipelining, many clients.

use picture_protocol::{CATALOG_MIME, Command, Kind, Selector, Status};
use sha2::{Digest, Sha256};

use picture_server::Limits;

use crate::common::*;

#[tokio::test]
async fn list_describes_every_shipped_picture() {
    let server = TestServer::start().await;
    let response = call(server.addr, Command::List).await;
    assert_eq!(response.head.status, Status::Ok);
    assert_eq!(response.head.mime, CATALOG_MIME);
    assert_eq!(response.head.kind, Some(Kind::List));

    let pictures = catalog(server.addr).await;
    assert!(pictures.len() >= 6, "only {} pictures", pictures.len());
    for (i, p) in pictures.iter().enumerate() {
        assert_eq!(p.number as usize, i + 1, "menu numbers run 1, 2, 3...");
        let bytes = asset_bytes(&p.name);
        assert_eq!(p.size as usize, bytes.len(), "size of {}", p.name);
        assert_eq!(
            p.sha256,
            <[u8; 32]>::from(Sha256::digest(&bytes)),
            "hash of {}",
            p.name
        );
        let image = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.width, p.height), (image.width(), image.height()));
        assert!(p.mime.starts_with("image/"));
    }
    assert!(!pictures.iter().any(|p| p.name == "not-found"));
}

#[tokio::test]
async fn list_follows_the_manifest_order() {
    let server = TestServer::start().await;
    let names: Vec<String> = catalog(server.addr)
        .await
        .into_iter()
        .map(|p| p.name)
        .collect();
    let listed = manifest_names();
    assert!(!listed.is_empty());
    assert_eq!(&names[..listed.len()], &listed[..]);
}

#[tokio::test]
async fn get_by_number_and_by_name_returns_the_file_bytes() {
    let server = TestServer::start().await;
    for p in catalog(server.addr).await {
        let expected = asset_bytes(&p.name);
        let by_number = call(server.addr, get(Selector::Number(p.number))).await;
        assert_eq!(by_number.head.status, Status::Ok);
        assert_eq!(by_number.head.mime, p.mime);
        assert!(by_number.body == expected, "bytes of #{}", p.number);

        let by_name = call(server.addr, by_name(&p.name.to_uppercase())).await;
        assert_eq!(
            by_name.head.status,
            Status::Ok,
            "GET {}",
            p.name.to_uppercase()
        );
        assert!(by_name.body == expected, "bytes of {}", p.name);
    }
}

#[tokio::test]
async fn unknown_picture_gets_not_found_with_the_not_found_picture() {
    let server = TestServer::start().await;
    let not_found = asset_bytes("not-found");
    for command in [get(Selector::Number(999)), by_name("unicorn")] {
        let response = call(server.addr, command).await;
        assert_eq!(response.head.status, Status::NotFound);
        assert_eq!(response.head.mime, "image/png");
        assert!(response.body == not_found);
    }
}

#[tokio::test]
async fn ping_answers_with_an_empty_body() {
    let server = TestServer::start().await;
    let response = call(server.addr, Command::Ping).await;
    assert_eq!(response.head.status, Status::Ok);
    assert_eq!(response.head.kind, Some(Kind::Ping));
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn a_variant_is_answered_in_order_with_its_dimensions_between_pipelined_requests() {
    use picture_protocol::{Dimensions, GetRequest, Variant};
    let server = TestServer::start().await;
    let mut stream = connect(server.addr).await;
    let variant = Command::Get(GetRequest {
        selector: Selector::Number(1),
        variant: Variant {
            max_width: std::num::NonZeroU32::new(100),
            ..Variant::default()
        },
    });
    let mut bytes = frame(5, variant);
    bytes.extend(frame(6, get(Selector::Number(1))));
    bytes.extend(frame(7, Command::Ping));
    send(&mut stream, &bytes).await;
    let mut buf = Vec::new();
    let first = read_response(&mut stream, &mut buf).await;
    assert_eq!((first.head.id, first.head.status), (5, Status::Ok));
    // Car is 1500 x 938: 938 * 100 / 1500 = 62.5, rounded up.
    assert_eq!(
        first.head.dimensions,
        Some(Dimensions {
            width: 100,
            height: 63
        })
    );
    let second = read_response(&mut stream, &mut buf).await;
    assert_eq!((second.head.id, second.head.dimensions), (6, None));
    assert_eq!(second.body, asset_bytes("car"));
    let third = read_response(&mut stream, &mut buf).await;
    assert_eq!((third.head.id, third.head.status), (7, Status::Ok));
}

#[tokio::test]
async fn an_unknown_variant_format_is_a_malformed_frame() {
    // GET number 1, no box, format code 9.
    let request = [
        0xFB, 1, 2, 0, 0, 0, 0, 4, 0, 14, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    let answer = exchange_raw(TestServer::start().await.addr, &request).await;
    let (response, used) = picture_protocol::decode_response(&answer, u32::MAX)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no answer in {answer:?}"));
    assert_eq!(
        (response.head.id, response.head.status),
        (4, Status::BadRequest)
    );
    assert!(
        response.text().contains("format code 9"),
        "{}",
        response.text()
    );
    assert_eq!(used, answer.len(), "the connection is closed after it");
}

#[tokio::test]
async fn pipelined_requests_come_back_in_order() {
    let server = TestServer::start().await;
    let pictures = catalog(server.addr).await;
    let mut stream = connect(server.addr).await;
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for id in 0..150u32 {
        let p = &pictures[id as usize % pictures.len()];
        let command = match id % 3 {
            0 => get(Selector::Number(p.number)),
            1 => Command::Ping,
            _ => by_name("missing"),
        };
        expected.push((id, command.kind()));
        batch.extend(frame(id, command));
    }
    send(&mut stream, &batch).await;
    let mut buf = Vec::new();
    for (id, kind) in expected {
        let r = read_response(&mut stream, &mut buf).await;
        assert_eq!((r.head.id, r.head.kind), (id, Some(kind)));
        let status = if id % 3 == 2 {
            Status::NotFound
        } else {
            Status::Ok
        };
        assert_eq!(r.head.status, status);
        if id % 3 == 0 {
            let p = &pictures[id as usize % pictures.len()];
            assert_eq!(r.body.len(), p.size as usize);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients_all_succeed() {
    // They all come from loopback: as many as there are, from one address.
    let limits = Limits {
        max_connections_per_ip: 200,
        ..Limits::default()
    };
    let server = TestServer::start_with(&assets_dir(), limits).await;
    let pictures = catalog(server.addr).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200usize {
        let p = pictures[i % pictures.len()].clone();
        let addr = server.addr;
        tasks.spawn(async move {
            if i % 2 == 0 {
                let r = call(addr, get(Selector::Number(p.number))).await;
                assert_eq!(r.head.status, Status::Ok);
                r.body == asset_bytes(&p.name)
            } else {
                exchange_raw(addr, p.number.to_string().as_bytes()).await == asset_bytes(&p.name)
            }
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap_or_else(|e| panic!("client task: {e}")) {
            ok += 1;
        }
    }
    assert_eq!(ok, 200);
}

/// Hex bytes at the start of a line after `label`, up to the first token that is not a byte.
pub fn hex_after(line: &str, label: &str) -> Option<Vec<u8>> {
    let rest = line.trim().strip_prefix(label)?;
    Some(
        rest.split_whitespace()
            .map_while(|t| u8::from_str_radix(t, 16).ok().filter(|_| t.len() == 2))
            .collect(),
    )
}

#[tokio::test]
async fn protocol_md_examples_match_the_server() {
    let server = TestServer::start().await;
    let doc = std::fs::read_to_string(assets_dir().join("../PROTOCOL.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The write examples are one session against a writable store: see writes.rs.
    let reads = doc
        .split("## Changing the catalog")
        .next()
        .unwrap_or_default();
    let mut checked = 0;
    let mut lines = reads.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(request) = hex_after(line, "request:") else {
            continue;
        };
        let Some(expected) = lines.peek().and_then(|l| hex_after(l, "response:")) else {
            continue;
        };
        let mut stream = connect(server.addr).await;
        send(&mut stream, &request).await;
        let response = read_response(&mut stream, &mut Vec::new()).await;
        let encoded = response.encode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            &encoded[..expected.len()],
            &expected[..],
            "answer to {line}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} examples found");
}
