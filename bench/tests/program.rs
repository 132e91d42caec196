//! The `picture-bench` program's failures that need no server: one line on standard error, exit
//! code 1 and no report. The end-to-end tests (`tests/e2e/` at the top of the workspace) run it
//! against real servers.

use std::process::Command;

#[test]
fn setup_failures_exit_1_with_one_line() {
    for args in [
        &["--server", "ws://127.0.0.1:1/ws", "--mode", "bare"][..],
        &["--server", "tcp://127.0.0.1:1"],
        &["--server", "tcp://127.0.0.1:1", "--duration", "0"],
        &["--server", "gopher://127.0.0.1:1"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_picture-bench"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
