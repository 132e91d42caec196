//! `--config FILE` of the real binary: settings from a TOML file, below flags and the
//! environment, shown by `picture-server config` with the token masked.

#![cfg(unix)]

use std::path::Path;
use std::process::Output;

use crate::common::*;

async fn picture_server(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output();
    within(out).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The line `picture-server config` prints for `name`.
fn setting<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in {listing}"))
}

#[tokio::test]
async fn flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("server.toml"),
        r#"
tcp-addr = "127.0.0.1:5555"
max_connections = 2048
idle-timeout = 5
allow-origin = ["https://a.example", "https://b.example"]
keep-metadata = true
admin-token = "a-long-and-secret-token"
# Taken by `bridge`, not by the server: left to it.
upstream = "elsewhere:40674"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = picture_server(
        &[
            "config",
            "--config",
            "server.toml",
            "--tcp-addr",
            "127.0.0.1:7777",
        ],
        &[("PICTURE_IDLE_TIMEOUT", "30")],
        dir.path(),
    )
    .await;
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for expected in [
        "tcp-addr = \"127.0.0.1:7777\"  # flag",
        "idle-timeout = 30  # environment",
        "max-connections = 2048  # config file",
        "allow-origin = [\"https://a.example\", \"https://b.example\"]  # config file",
        "keep-metadata = true  # config file",
        "max-ws-sessions = 256  # default",
        "admin-token = \"********\"  # config file",
    ] {
        let name = expected.split(" = ").next().unwrap_or_default();
        assert_eq!(setting(&listing, name), expected);
    }
    assert!(!listing.contains("a-long-and-secret-token"), "{listing}");
}

#[tokio::test]
async fn the_server_runs_with_the_file_settings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "tcp-addr = \"127.0.0.1:0\"\nhttp-addr = \"127.0.0.1:0\"\nstore = \"sqlite:{}\"\n\
             assets = \"{}\"\nadmin-token = \"a-long-and-secret-token\"\n",
            dir.path().join("from-file.db").display(),
            assets_dir().display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command.arg("--config").arg(&config);
    let server = ServerProcess::start(command).await;
    assert!(server.banner.contains("from-file.db"), "{}", server.banner);
    assert!(
        server.banner.contains("writes need the admin token"),
        "{}",
        server.banner
    );
    let pictures = catalog(server.addr("tcp://")).await;
    assert_eq!(pictures.len(), manifest_names().len());
}

#[tokio::test]
async fn unknown_settings_and_bad_values_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("typo.toml"), "max-conections = 5\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("bad.toml"), "idle-timeout = 0\n")
        .unwrap_or_else(|e| panic!("{e}"));
    for (file, code, named) in [
        ("typo.toml", 1, "unknown setting \"max-conections\""),
        ("bad.toml", 2, "--idle-timeout"),
        ("missing.toml", 1, "missing.toml"),
    ] {
        let out = picture_server(&["config", "--config", file], &[], dir.path()).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{file}: {stderr}");
        assert!(stderr.contains(named), "{file}: {stderr}");
    }
}
