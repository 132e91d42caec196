//! The live catalog: change notices over TCP and through the WebSocket bridge, and answers that
//! stay in order on a watching connection.

use picture_client::Client;
use picture_protocol::{Change, ChangeKind, Command, Kind, Selector, Status};

use crate::common::*;
use crate::store::authorized;
use crate::writes::writable_server;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(3, 2, image::Rgb([seed, 0, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    out.into_inner()
}

#[tokio::test]
async fn a_watcher_over_tcp_sees_every_change_made_by_another_client() {
    let (server, _dir) = writable_server().await;
    let mut watcher = connect(server.addr).await;
    send(&mut watcher, &frame(40, Command::Watch)).await;
    let mut buf = Vec::new();
    let answer = read_response(&mut watcher, &mut buf).await;
    assert_eq!(
        (answer.head.kind, answer.head.status),
        (Some(Kind::Watch), Status::Ok)
    );
    let version = u64::from_be_bytes(answer.body.try_into().unwrap_or_else(|_| panic!("8 bytes")));

    let mut writer = authorized(server.addr).await;
    within(writer.put("new-one", "New one", false, &png(1), |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(writer.rename(Selector::Name("new-one".into()), "renamed-one"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(writer.delete(Selector::Name("renamed-one".into())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut seen = Vec::new();
    for _ in 0..3 {
        let notice = read_response(&mut watcher, &mut buf).await;
        assert_eq!((notice.head.kind, notice.head.id), (Some(Kind::Change), 40));
        seen.push(Change::decode(&notice.body).unwrap_or_else(|e| panic!("{e}")));
    }
    let kinds: Vec<_> = seen
        .iter()
        .map(|c| (c.kind, c.name.as_str(), c.version))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Added, "new-one", version + 1),
            (ChangeKind::Renamed, "new-one", version + 2),
            (ChangeKind::Removed, "renamed-one", version + 3),
        ]
    );
    assert_eq!(
        seen[1].picture.as_ref().map(|p| p.name.as_str()),
        Some("renamed-one")
    );
    assert!(seen[2].picture.is_none());
}

#[tokio::test]
async fn pipelined_answers_stay_whole_and_in_order_on_a_watching_connection() {
    let (server, _dir) = writable_server().await;
    let mut watcher = connect(server.addr).await;
    let mut buf = Vec::new();
    send(&mut watcher, &frame(1, Command::Watch)).await;
    read_response(&mut watcher, &mut buf).await;

    // Changes happen while the watcher has many large answers in flight.
    let addr = server.addr;
    let changes = tokio::spawn(async move {
        let mut writer = authorized(addr).await;
        for i in 0..10u8 {
            let name = format!("burst-{i}");
            within(writer.put(&name, "", false, &png(i), |_, _| {}))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let mut requests = Vec::new();
    for id in 100..160u32 {
        let name = if id % 2 == 0 { "mountain" } else { "thumbnail" };
        requests.extend(frame(id, by_name(name)));
    }
    send(&mut watcher, &requests).await;
    let mut next_id = 100;
    let mut notices = 0;
    while next_id < 160 || notices < 10 {
        let response = read_response(&mut watcher, &mut buf).await;
        if response.head.kind == Some(Kind::Change) {
            assert_eq!(response.head.id, 1);
            notices += 1;
            continue;
        }
        assert_eq!(response.head.id, next_id, "answers out of order");
        let name = if next_id % 2 == 0 {
            "mountain"
        } else {
            "thumbnail"
        };
        assert!(
            response.body == asset_bytes(name),
            "answer {next_id} is not whole"
        );
        next_id += 1;
    }
    within(changes).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_watcher_through_the_bridge_sees_an_upload_made_over_tcp() {
    let (server, _dir) = writable_server().await;
    let web = server.start_web().await;
    let mut watcher = within(Client::connect(&web.ws_url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let version = within(watcher.watch())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut writer = authorized(server.addr).await;
    within(writer.put("over-tcp", "", false, &png(7), |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let change = within(watcher.next_change())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (change.kind, change.name.as_str(), change.version),
        (ChangeKind::Added, "over-tcp", version + 1)
    );

    // Writes through the bridge, with the token presented on the WebSocket session.
    let mut web_writer = within(Client::connect(&web.ws_url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    within(web_writer.authenticate(TOKEN))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = png(8);
    let stored = within(web_writer.put("over-ws", "Over WebSocket", false, &bytes, |_, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(call(server.addr, by_name("over-ws")).await.body == bytes);
    let change = within(watcher.next_change())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(change.picture.as_ref(), Some(&stored));
    // Requests still work on the watching session, notices or not.
    within(watcher.ping())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    web.stop().await;
}

#[tokio::test]
async fn a_relaying_bridge_serves_reads_but_no_writes_or_notices() {
    let (server, _dir) = writable_server().await;
    let web = WebServer::start(web_config(&www_dir(), server.tcp())).await;
    let mut client = within(Client::connect(&web.ws_url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        within(client.list()).await.map(|l| l.len()).ok(),
        Some(manifest_names().len())
    );
    let refused = |result: Result<_, picture_client::ClientError>| match result {
        Err(picture_client::ClientError::Server { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(within(client.authenticate(TOKEN)).await),
        Status::WritesDisabled
    );
    assert_eq!(
        refused(within(client.delete(Selector::Number(1))).await),
        Status::WritesDisabled
    );
    assert_eq!(
        refused(within(client.watch()).await.map(drop)),
        Status::BadRequest
    );
    assert_eq!(catalog(server.addr).await.len(), manifest_names().len());
    web.stop().await;
}
