//! The `picture-client` program's failures that need no server: each is one line on standard
//! error and exit code 1 (2 means "no such picture"). The end-to-end tests (`tests/e2e/` at the
//! top of the workspace) run it against real servers.

use std::process::{Command, Output};

fn client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picture-client"))
        .args(args)
        .env_remove("PICTURE_SERVER")
        .env_remove("PICTURE_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Standard error, which must be exactly one line.
fn one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_arguments_are_a_one_line_error_not_exit_two() {
    let out = client(&["--server", "127.0.0.1:1", "get", "1", "--bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out).contains("--bogus"));
}

#[test]
fn server_down_is_a_one_line_error() {
    // Bind and drop a listener to find a port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    };
    let out = client(&["--server", &addr.to_string(), "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out).contains("cannot connect"));
}

#[test]
fn an_unknown_scheme_is_named() {
    let out = client(&["--server", "http://127.0.0.1:1/", "ping"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out).contains("unknown scheme http://"));
}
