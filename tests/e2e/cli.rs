//! The `picture-client` binary against a real server.

use std::path::Path;
use std::process::{Output, Stdio};

use picture_protocol::PictureInfo;

use crate::common::*;

async fn client(server: &str, args: &[&str], dir: &Path, stdin: &[u8]) -> Output {
    let mut child = tokio::process::Command::new(client_program())
        .arg("--server")
        .arg(server)
        .args(args)
        .current_dir(dir)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut input) = child.stdin.take() {
        send(&mut input, stdin).await;
    }
    within(child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The picture was saved in `dir` as `<name>.<extension of its type>`, byte for byte.
fn assert_saved_under_its_name(dir: &Path, picture: &PictureInfo) {
    let extension = match picture.mime.as_str() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        other => panic!("unexpected type {other}"),
    };
    let path = dir.join(format!("{}.{extension}", picture.name));
    let saved = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(saved == asset_bytes(&picture.name), "{}", path.display());
}

#[tokio::test]
async fn list_prints_a_table_and_json() {
    let server = TestServer::start().await;
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pictures = catalog(server.addr).await;

    let table = client(&addr, &["list"], dir.path(), b"").await;
    assert!(table.status.success(), "{}", text(&table.stderr));
    let out = text(&table.stdout);
    for p in &pictures {
        assert!(out.contains(&p.title) && out.contains(&p.name), "{out}");
    }

    let json = client(&addr, &["list", "--json"], dir.path(), b"").await;
    assert!(json.status.success());
    let parsed: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}"));
    let entries = parsed.as_array().unwrap_or_else(|| panic!("not an array"));
    assert_eq!(entries.len(), pictures.len());
    assert_eq!(entries[0]["name"], pictures[0].name.as_str());
    assert_eq!(entries[0]["sha256"], pictures[0].sha256_hex().as_str());
}

#[tokio::test]
async fn get_saves_the_picture_and_exits_zero() {
    let server = TestServer::start().await;
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pictures = catalog(server.addr).await;

    let out = client(&addr, &["get", "2", "-o", "x.img"], dir.path(), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saved = std::fs::read(dir.path().join("x.img")).unwrap_or_else(|e| panic!("{e}"));
    assert!(saved == asset_bytes(&pictures[1].name));

    // Without -o the file is named after the picture.
    let name = pictures[0].name.to_uppercase();
    let out = client(&addr, &["get", &name], dir.path(), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_saved_under_its_name(dir.path(), &pictures[0]);
}

#[tokio::test]
async fn get_to_stdout() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = catalog(server.addr).await.remove(0);
    let out = client(
        &server.addr.to_string(),
        &["get", "1", "-o", "-"],
        dir.path(),
        b"",
    )
    .await;
    assert!(out.status.success());
    assert!(out.stdout == asset_bytes(&first.name));
}

#[tokio::test]
async fn get_unknown_exits_two_and_writes_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = client(
        &server.addr.to_string(),
        &["get", "unicorn", "-o", "u.jpg"],
        dir.path(),
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not found"));
    assert!(!dir.path().join("u.jpg").exists());
}

#[tokio::test]
async fn ping_exits_zero() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Both the plain address and the form the server's banner prints.
    for addr in [server.addr.to_string(), format!("tcp://{}", server.addr)] {
        let out = client(&addr, &["ping"], dir.path(), b"").await;
        assert!(out.status.success(), "{addr}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("answered"));
    }
}

#[tokio::test]
async fn interactive_menu_like_the_original() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pictures = catalog(server.addr).await;
    // Choose 1, show it (no display: a terminal preview), then another: 99 (not found), stop.
    let out = client(
        &server.addr.to_string(),
        &[],
        dir.path(),
        b"1\ny\ny\n99\nn\n",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let screen = text(&out.stdout);
    assert!(screen.contains("What picture do you want?"), "{screen}");
    assert!(screen.contains(&format!("1. {}", pictures[0].title)));
    assert!(screen.contains("Number of choice:"));
    assert!(screen.contains(&format!("{}x{}", pictures[0].width, pictures[0].height)));
    assert!(screen.contains('▀'), "a terminal preview was drawn");
    assert!(screen.contains("not-found picture"));
    assert_saved_under_its_name(dir.path(), &pictures[0]);
}

/// `picture-client` with the admin token in its environment.
async fn with_token(server: &str, args: &[&str], dir: &Path) -> Output {
    let output = tokio::process::Command::new(client_program())
        .arg("--server")
        .arg(server)
        .args(args)
        .current_dir(dir)
        .env("PICTURE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    within(output).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn put_rename_retitle_move_delete_with_their_exit_codes() {
    let (server, _db) = crate::writes::writable_server().await;
    let addr = server.addr.to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("trip.jpg");
    std::fs::copy(asset_path("forest-small"), &file).unwrap_or_else(|e| panic!("{e}"));

    let put = with_token(
        &addr,
        &["put", "trip.jpg", "--title", "The trip"],
        dir.path(),
    )
    .await;
    assert!(put.status.success(), "{}", text(&put.stderr));
    assert!(
        text(&put.stdout).contains("stored The trip (trip): number 9"),
        "{}",
        text(&put.stdout)
    );
    assert!(call(server.addr, by_name("trip")).await.body == asset_bytes("forest-small"));

    // The same name again: refused (4) unless --replace.
    let again = with_token(&addr, &["put", "trip.jpg"], dir.path()).await;
    assert_eq!(again.status.code(), Some(4), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("name taken"),
        "{}",
        text(&again.stderr)
    );
    let replaced = with_token(&addr, &["put", "trip.jpg", "--replace"], dir.path()).await;
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));

    for args in [
        &["rename", "trip", "journey"][..],
        &["retitle", "journey", "The journey"],
        &["move", "journey", "1"],
    ] {
        let out = with_token(&addr, args, dir.path()).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let first = &catalog(server.addr).await[0];
    assert_eq!(
        (first.name.as_str(), first.title.as_str()),
        ("journey", "The journey")
    );

    let searched = client(
        &addr,
        &["list", "--search", "JOURN", "--json"],
        dir.path(),
        b"",
    )
    .await;
    let listed: serde_json::Value =
        serde_json::from_slice(&searched.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let deleted = with_token(&addr, &["delete", "1"], dir.path()).await;
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let missing = with_token(&addr, &["delete", "journey"], dir.path()).await;
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));

    // Not a picture: 4. No token, or a wrong one: 3.
    std::fs::write(dir.path().join("notes.png"), b"not a picture")
        .unwrap_or_else(|e| panic!("{e}"));
    let rejected = with_token(&addr, &["put", "notes.png"], dir.path()).await;
    assert_eq!(
        rejected.status.code(),
        Some(4),
        "{}",
        text(&rejected.stderr)
    );
    let anonymous = client(&addr, &["delete", "car"], dir.path(), b"").await;
    assert_eq!(
        anonymous.status.code(),
        Some(3),
        "{}",
        text(&anonymous.stderr)
    );
    let wrong = client(
        &addr,
        &["--token", "wrong", "delete", "car"],
        dir.path(),
        b"",
    )
    .await;
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong.stderr));
    assert_eq!(
        text(&wrong.stderr).lines().count(),
        1,
        "{}",
        text(&wrong.stderr)
    );
    assert_eq!(catalog(server.addr).await.len(), manifest_names().len());
}

#[tokio::test]
async fn watch_prints_each_change_as_a_line() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (server, _db) = crate::writes::writable_server().await;
    let addr = server.addr.to_string();
    let mut watcher = tokio::process::Command::new(client_program())
        .args(["--server", &addr, "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Its first line on standard error says it is watching: only then is a change certain
    // to reach it.
    let stderr = watcher.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let ready = within(BufReader::new(stderr).lines().next_line()).await;
    assert!(
        matches!(&ready, Ok(Some(line)) if line.contains("watching")),
        "{ready:?}"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = with_token(&addr, &["retitle", "dog", "A good dog"], dir.path()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = watcher.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let line = within(BufReader::new(stdout).lines().next_line())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("watch printed nothing"));
    let change: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(change["change"], "retitled", "{line}");
    assert_eq!(change["name"], "dog", "{line}");
    assert_eq!(change["picture"]["title"], "A good dog", "{line}");
}

#[tokio::test]
async fn an_upload_refused_from_its_header_is_explained_not_a_broken_pipe() {
    let db = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let limits = picture_server::Limits {
        max_upload_size: 1000,
        ..Default::default()
    };
    let server = TestServer::start_sqlite(&db.path().join("p.db"), limits).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(asset_path("mountain"), dir.path().join("big.jpg"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = with_token(&server.addr.to_string(), &["put", "big.jpg"], dir.path()).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("upload limit of 1000"),
        "{}",
        text(&out.stderr)
    );
}

/// A PNG of noise, which does not compress: about `side * side * 3` bytes.
fn noise_png(side: u32) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_u32;
    let pixels = image::RgbImage::from_fn(side, side, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [r, g, b, _] = seed.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut png = Vec::new();
    pixels
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    png
}

#[tokio::test]
async fn get_through_the_bridge_takes_pictures_over_16_mib() {
    let assets = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let big = noise_png(2400);
    assert!(big.len() > 16 * 1024 * 1024, "{}", big.len());
    std::fs::write(assets.path().join("big.png"), &big).unwrap_or_else(|e| panic!("{e}"));
    let server = TestServer::start_with(assets.path(), Default::default()).await;
    let web = server.start_web().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    let out = client(
        &web.ws_url(),
        &["get", "big", "-o", "big.png"],
        dir.path(),
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saved = std::fs::read(dir.path().join("big.png")).unwrap_or_else(|e| panic!("{e}"));
    assert!(saved == big, "{} bytes saved of {}", saved.len(), big.len());
}

#[tokio::test]
async fn out_of_range_durations_and_counts_are_refused_at_start() {
    for args in [
        ["--idle-timeout", "0.000000001"],
        ["--request-timeout", "1e19"],
        ["--shutdown-grace=-1", ""],
        ["--max-connections", "0"],
        ["--max-ws-message", "10"],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
            .args([
                "--store",
                "folder:/nonexistent",
                "--tcp-addr",
                "127.0.0.1:0",
            ])
            .args(args.iter().filter(|arg| !arg.is_empty()))
            .output();
        let out = within(out).await.unwrap_or_else(|e| panic!("{e}"));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args[0].split('=').next().unwrap_or_default();
        assert!(
            stderr.contains(flag) && stderr.contains("must be"),
            "{args:?}: {stderr}"
        );
    }
}
