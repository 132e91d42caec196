//! The clients' side of TLS, with rustls and aws-lc-rs (no OpenSSL): whom to trust, and the
//! name a server's certificate must carry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no certificate that can be trusted")]
    NoCertificate(PathBuf),
    #[error("no trusted certificates: the system has none ({0}); give one with --ca-cert")]
    NoRoots(String),
    #[error("cannot set up TLS: {0}")]
    Config(#[from] rustls::Error),
    #[error("{0} is not a name a certificate can carry")]
    Name(String),
}

/// The name a server's certificate must carry, from `HOST:PORT`, `[IPv6]:PORT` or a host
/// alone.
pub fn server_name(authority: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host),
    };
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Name(host.to_owned()))
}

/// A connector that trusts the system's roots, or only the certificates in `ca_file` when one
/// is given (a private CA), and offers `alpn`.
pub fn connector(ca_file: Option<&Path>, alpn: &[&[u8]]) -> Result<TlsConnector, TlsError> {
    let roots = match ca_file {
        Some(path) => private_roots(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The certificate authorities of a PEM file: at least one must be usable.
fn private_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let unreadable = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        // A certificate rustls cannot use as an anchor is passed over, as the system's are.
        let _ = roots.add(cert.map_err(unreadable)?);
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(TlsError::NoRoots(why.join("; ")));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        let name = |authority| server_name(authority).map(|n| n.to_str().into_owned());
        assert_eq!(name("localhost:40675").ok().as_deref(), Some("localhost"));
        assert_eq!(
            name("pictures.example").ok().as_deref(),
            Some("pictures.example")
        );
        assert_eq!(name("127.0.0.1:1").ok().as_deref(), Some("127.0.0.1"));
        assert_eq!(name("[::1]:8080").ok().as_deref(), Some("::1"));
        assert!(name(":1").is_err());
    }
}
