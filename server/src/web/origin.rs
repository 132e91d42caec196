//! Which web pages may open a WebSocket to the bridge.
//!
//! Browsers send an `Origin` header with every WebSocket handshake, and a page from any site can
//! try to connect to a server on the visitor's machine or network. The bridge therefore accepts
//! only its own page and the origins it is told to trust.
//!
//! "Its own page" means an Origin equal to the `Host` the request was sent to, but only when
//! that host is `localhost` or an IP address. For a domain name, that comparison proves nothing:
//! a hostile site can make its own name resolve to this server (DNS rebinding) and then appear
//! to be same-origin. Pages served under a domain name need `--allow-origin`.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Why a handshake was refused; the text is what the refused page is told (with 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("the Origin header is not text")]
    NotText,
    #[error("origin {0} is not allowed (start the server with --allow-origin {0} to allow it)")]
    NotAllowed(String),
}

#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra origins, lowercase, without a trailing slash.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(allowed: impl IntoIterator<Item = String>) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Accepts a handshake, or says why not.
    ///
    /// A handshake without an Origin does not come from a browser page (browsers always send
    /// one), so no page can abuse it: command-line clients are let through.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), OriginError> {
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(());
        };
        let origin = origin
            .to_str()
            .map_err(|_| OriginError::NotText)?
            .to_ascii_lowercase();
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        if let Some(host) = host
            && is_literal_host(&host)
            && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        {
            return Ok(());
        }
        Err(OriginError::NotAllowed(origin))
    }
}

/// Whether a `Host` value names this machine without DNS: `localhost` or an IP address, with
/// or without a port.
fn is_literal_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        h.insert(HOST, host.parse().unwrap_or_else(|e| panic!("{e}")));
        h
    }

    #[test]
    fn own_page_on_an_address_is_allowed() {
        let p = OriginPolicy::default();
        assert!(
            p.check(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"))
                .is_ok()
        );
        assert!(
            p.check(&headers(Some("http://localhost:8080"), "localhost:8080"))
                .is_ok()
        );
        assert!(
            p.check(&headers(Some("http://[::1]:8080"), "[::1]:8080"))
                .is_ok()
        );
    }

    #[test]
    fn foreign_pages_are_refused() {
        let p = OriginPolicy::default();
        assert_eq!(
            p.check(&headers(Some("http://Evil.example"), "127.0.0.1:8080")),
            Err(OriginError::NotAllowed("http://evil.example".to_owned()))
        );
        assert!(
            p.check(&headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"))
                .is_err()
        );
        assert!(p.check(&headers(Some("null"), "127.0.0.1:8080")).is_err());
    }

    #[test]
    fn rebound_domain_names_are_not_trusted_by_default() {
        let p = OriginPolicy::default();
        let rebound = headers(Some("http://evil.example:8080"), "evil.example:8080");
        assert!(p.check(&rebound).is_err());
        let allowed = OriginPolicy::new(["http://pictures.example:8080/".to_owned()]);
        let h = headers(
            Some("http://Pictures.example:8080"),
            "pictures.example:8080",
        );
        assert!(allowed.check(&h).is_ok());
    }

    #[test]
    fn clients_without_origin_are_not_pages() {
        assert!(OriginPolicy::default().check(&headers(None, "x")).is_ok());
    }
}
