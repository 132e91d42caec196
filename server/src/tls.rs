//! TLS, with rustls and aws-lc-rs (no OpenSSL): the server's certificate, reloadable while
//! connections go on. (The clients' side is in the `picture-client` crate.)
//!
//! The server's certificate and key are read from PEM files at start-up and again on
//! [`ServerCert::reload`] (the binary calls it on SIGHUP): a handshake takes whichever pair is
//! current, so connections already open keep theirs and new ones get the new one. A pair that
//! cannot be read, or whose key does not match the certificate, is refused with the reason and
//! the current one stays. Only rustls' safe defaults are offered: TLS 1.2 and 1.3, with
//! forward-secret suites.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto rustls uses here: aws-lc-rs's.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's certificate chain and key, from two PEM files, replaceable while it runs.
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl ServerCert {
    /// Reads the pair, or says why it cannot be used.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerCert>, TlsError> {
        let current = ArcSwap::from_pointee(read_pair(cert, key)?);
        Ok(Arc::new(ServerCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current,
        }))
    }

    /// Reads the files again; new handshakes use the new pair. On an error the pair in use
    /// stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current
            .store(Arc::new(read_pair(&self.cert, &self.key)?));
        Ok(())
    }

    /// An acceptor offering `alpn` (the application protocols, most preferred first).
    pub fn acceptor(self: &Arc<ServerCert>, alpn: &[&[u8]]) -> Result<Acceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Acceptor(TlsAcceptor::from(Arc::new(config))))
    }
}

/// The server's side of TLS on one port.
#[derive(Clone)]
pub struct Acceptor(TlsAcceptor);

impl Acceptor {
    /// The server's side of a handshake, which the client must finish within `patience`.
    pub async fn accept(
        &self,
        stream: TcpStream,
        patience: Duration,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        timeout(patience, self.0.accept(stream))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    }
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TLS acceptor")
    }
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerCert({}, {})",
            self.cert.display(),
            self.key.display()
        )
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
        path: key.to_path_buf(),
        source,
    })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}
