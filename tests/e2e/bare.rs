//! Bare-choice mode: what the original client does.

use tokio::io::AsyncWriteExt;

use crate::common::*;

#[tokio::test]
async fn bare_number_gets_the_raw_picture_then_eof() {
    let server = TestServer::start().await;
    let pictures = catalog(server.addr).await;
    // Exactly what the original client does: send b"1", keep its side open, read to EOF.
    let bytes = exchange_raw(server.addr, b"1").await;
    assert!(bytes == asset_bytes(&pictures[0].name));
}

#[tokio::test]
async fn bare_choice_with_trailing_newline() {
    let server = TestServer::start().await;
    let pictures = catalog(server.addr).await;
    assert!(exchange_raw(server.addr, b"2\n").await == asset_bytes(&pictures[1].name));
    assert!(exchange_raw(server.addr, b"3\r\n").await == asset_bytes(&pictures[2].name));
}

#[tokio::test]
async fn bare_name_in_any_case() {
    let server = TestServer::start().await;
    let first = &catalog(server.addr).await[0].name;
    let shouted = format!("{}\n", first.to_uppercase());
    assert!(exchange_raw(server.addr, shouted.as_bytes()).await == asset_bytes(first));
}

#[tokio::test]
async fn bare_unknown_choice_gets_the_not_found_picture() {
    let server = TestServer::start().await;
    let not_found = asset_bytes("not-found");
    for choice in [
        &b"99"[..],
        b"0",
        b"unicorn\n",
        b"\n",
        b"1 2 3",
        &[0xC3, 0x28],
    ] {
        assert!(
            exchange_raw(server.addr, choice).await == not_found,
            "{choice:?}"
        );
    }
}

#[tokio::test]
async fn bare_client_that_closes_its_sending_side_still_gets_the_picture() {
    // The original client keeps its side open (see above); one-shot tools such as
    // `printf 1 | nc` close it right after the choice.
    let server = TestServer::start().await;
    let pictures = catalog(server.addr).await;
    let mut stream = connect(server.addr).await;
    send(&mut stream, b"1").await;
    stream
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    let bytes = read_to_end(&mut stream).await;
    assert!(bytes == asset_bytes(&pictures[0].name));
}

#[tokio::test]
async fn overlong_bare_choice_is_not_found_not_a_crash() {
    let server = TestServer::start().await;
    let long = vec![b'7'; 5000];
    assert!(exchange_raw(server.addr, &long).await == asset_bytes("not-found"));
    // And the server goes on serving.
    assert!(!catalog(server.addr).await.is_empty());
}
