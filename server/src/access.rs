//! The write credential: who may change the catalog.
//!
//! Reads are open to everyone; every write needs the admin token, presented once per
//! connection with an AUTH request. Without a configured token, writes are disabled.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The admin token. Compared in constant time, and never printed.
#[derive(Clone)]
pub struct AdminToken {
    /// The SHA-256 of the token: comparing digests takes the same time whatever the length
    /// or content of what a client presents.
    digest: [u8; 32],
}

impl AdminToken {
    /// A token from its text; `None` for an empty one (which would let anyone write).
    pub fn new(token: &str) -> Option<AdminToken> {
        let token = token.trim();
        (!token.is_empty()).then(|| AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(hidden)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_token() {
        let token = AdminToken::new("s3cret\n").unwrap_or_else(|| panic!("a valid token"));
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3cret2"));
        assert!(!token.matches(b""));
        assert!(AdminToken::new("  ").is_none());
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
