//! TLS end to end with certificates made at run time: the framed protocol over TLS, HTTPS and
//! wss:// through the real binary and the real client, a certificate replaced on SIGHUP, and
//! the errors for certificates that do not fit.

#![cfg(unix)]

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use picture_client::{Client, ClientError};
use picture_protocol::{Selector, Status};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, PublicKeyData,
};
use sha2::{Digest, Sha256};

use crate::common::*;

/// A certificate authority of its own, made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("{e}"));
        TestCa { issuer }
    }

    /// Writes the CA's certificate as `ca.pem` in `dir`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.issuer.pem()).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// Writes a certificate for localhost and 127.0.0.1, and its key, as `NAME.pem` and
    /// `NAME.key` in `dir`.
    pub fn write_server(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key, _) = self.write_server_with_spki(dir, name);
        (cert, key)
    }

    /// [`TestCa::write_server`], and the base64 SHA-256 of the key's SubjectPublicKeyInfo,
    /// which Chromium's `--ignore-certificate-errors-spki-list` takes.
    pub fn write_server_with_spki(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&key_path, key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
        let spki = Sha256::digest(key.subject_public_key_info());
        (cert_path, key_path, STANDARD.encode(spki))
    }
}

/// The server binary with TLS on the HTTP port and on a port of its own for the framed
/// protocol, the plain TCP port kept.
pub async fn start_tls_server(cert: &Path, key: &Path) -> (ServerProcess, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
    command
        .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--tls-addr", "127.0.0.1:0", "--store"])
        .arg(format!("folder:{}", assets_dir().display()))
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key);
    let mut server = ServerProcess::start(command).await;
    let page = server.next_line().await;
    (server, page)
}

/// Sends the server SIGHUP.
async fn hang_up(server: &ServerProcess) {
    let hup = tokio::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hup.success());
}

async fn fetch_first(server: &str, ca: &Path) -> Result<Vec<u8>, ClientError> {
    let mut client = within(Client::connect_trusting(server, Some(ca))).await?;
    let fetched = within(client.get(Selector::Number(1), |_, _| {})).await?;
    assert_eq!(fetched.status, Status::Ok);
    Ok(fetched.bytes)
}

#[tokio::test]
async fn the_framed_protocol_https_and_wss_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = TestCa::new("Test CA");
    let ca_file = ca.write_ca(dir.path());
    let (cert, key) = ca.write_server(dir.path(), "server");
    let (server, page) = start_tls_server(&cert, &key).await;
    assert!(page.contains("page at https://"), "{page}");
    let tls = server.addr("tls://");
    let https = addr_in(&page, "https://");
    let first = catalog(server.addr("tcp://")).await.remove(0);
    let expected = asset_bytes(&first.name);

    // By name and by address, over TLS and over wss://.
    for url in [
        format!("tls://localhost:{}", tls.port()),
        format!("tls://{tls}"),
        format!("wss://localhost:{}/ws", https.port()),
    ] {
        let bytes = fetch_first(&url, &ca_file)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(bytes == expected, "{url}");
    }
    // The plain port still serves the original clients.
    assert!(exchange_raw(server.addr("tcp://"), b"1").await == expected);

    // A client that trusts another authority refuses the server, with a clear error.
    let other = TestCa::new("Other CA");
    let other_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other_file = other.write_ca(other_dir.path());
    match fetch_first(&format!("tls://{tls}"), &other_file).await {
        Err(ClientError::Connect { reason, .. }) => {
            assert!(
                reason.contains("TLS") && reason.contains("certificate"),
                "{reason}"
            );
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_certificate_on_sighup_serves_new_connections_and_old_ones_go_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first_ca = TestCa::new("First CA");
    let first_ca_file = first_ca.write_ca(dir.path());
    let (cert, key) = first_ca.write_server(dir.path(), "server");
    let (server, _) = start_tls_server(&cert, &key).await;
    let tls = format!("tls://{}", server.addr("tls://"));
    let mut old = within(Client::connect_trusting(&tls, Some(&first_ca_file)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The same files, now from another authority.
    let second_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let second_ca = TestCa::new("Second CA");
    let second_ca_file = second_ca.write_ca(second_dir.path());
    let (new_cert, new_key) = second_ca.write_server(second_dir.path(), "server");
    std::fs::copy(&new_cert, &cert).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&new_key, &key).unwrap_or_else(|e| panic!("{e}"));
    hang_up(&server).await;
    server
        .stderr_line("TLS certificate and key read again")
        .await;

    assert!(fetch_first(&tls, &second_ca_file).await.is_ok());
    assert!(fetch_first(&tls, &first_ca_file).await.is_err());
    // The connection made before the reload was not dropped.
    within(old.ping())
        .await
        .unwrap_or_else(|e| panic!("old connection: {e}"));

    // A key that does not fit is refused; the pair in use stays.
    let (_, stray_key) = second_ca.write_server(second_dir.path(), "stray");
    std::fs::copy(&stray_key, &key).unwrap_or_else(|e| panic!("{e}"));
    hang_up(&server).await;
    let warning = server.stderr_line("TLS certificate not replaced").await;
    assert!(warning.contains("does not fit"), "{warning}");
    assert!(fetch_first(&tls, &second_ca_file).await.is_ok());
}

#[tokio::test]
async fn unreadable_or_mismatched_files_stop_the_start_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = TestCa::new("Test CA");
    let (cert, _) = ca.write_server(dir.path(), "one");
    let (_, other_key) = ca.write_server(dir.path(), "two");
    let missing = dir.path().join("missing.pem");
    for (cert, key, expected) in [
        (&cert, &other_key, "does not fit"),
        (&missing, &other_key, "missing.pem"),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"))
            .args([
                "--tcp-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--store",
            ])
            .arg(format!("folder:{}", assets_dir().display()))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .env_remove("RUST_BACKTRACE")
            .output();
        let out = within(out).await.unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn the_plain_port_can_be_turned_off_but_not_with_no_port_left() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = TestCa::new("Test CA");
    let ca_file = ca.write_ca(dir.path());
    let (cert, key) = ca.write_server(dir.path(), "server");
    let command = |tls_port: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_picture-server"));
        command
            .args([
                "--tcp-addr",
                "none",
                "--http-addr",
                "127.0.0.1:0",
                "--store",
            ])
            .arg(format!("folder:{}", assets_dir().display()))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key);
        if tls_port {
            command.args(["--tls-addr", "127.0.0.1:0"]);
        }
        command
    };
    let server = ServerProcess::start(command(true)).await;
    assert!(!server.banner.contains("tcp://"), "{}", server.banner);
    let tls = format!("tls://{}", server.addr("tls://"));
    assert!(fetch_first(&tls, &ca_file).await.is_ok());

    let out = within(command(false).output())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--tcp-addr none"), "{stderr}");
}
