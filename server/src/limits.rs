//! Bounds on what one client may cost the server. Those in [`Limits`] have command-line
//! flags; the constants are fixed.

use std::time::Duration;

use picture_protocol::MAX_REQUEST_PAYLOAD;

/// Bytes of a bare-choice request that are read; the original client sends one or two.
pub const BARE_CHOICE_MAX: usize = 256;

/// Responses queued on a framed connection before they are written even though more
/// pipelined requests are waiting. Bounds the queue without giving up batching.
pub const MAX_QUEUED_RESPONSES: usize = 64;

/// Connections over the limit that may wait at once for their *busy* answer; one more takes
/// the place of the one that has waited longest.
pub const MAX_BUSY_REJECTIONS: usize = 64;

/// How long a connection over the limit may take to send the request header that its *busy*
/// answer echoes.
pub const BUSY_READ_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; further ones get a *busy* answer.
    pub max_connections: usize,
    /// Connections served at once for one client address (an IPv6 /64); further ones from it
    /// get a *busy* answer.
    pub max_connections_per_ip: usize,
    /// How long a connection may sit between requests, or a peer may accept no bytes, before
    /// it is closed.
    pub idle_timeout: Duration,
    /// How long a client may take to send a whole request once it has started one, and to
    /// send its first byte after connecting.
    pub request_timeout: Duration,
    /// Largest request payload accepted (never more than the protocol's own limit).
    pub max_request_payload: usize,
    /// How long shutdown waits for transfers in flight.
    pub shutdown_grace: Duration,
    /// Largest picture a PUT may upload, in bytes.
    pub max_upload_size: usize,
}

/// Default for [`Limits::max_connections_per_ip`]: enough for a browser's or a benchmark's
/// connections, a sixteenth of the whole.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;

/// Default for [`Limits::max_upload_size`]: 32 MiB.
pub const DEFAULT_MAX_UPLOAD_SIZE: usize = 32 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_request_payload: MAX_REQUEST_PAYLOAD,
            shutdown_grace: Duration::from_secs(10),
            max_upload_size: DEFAULT_MAX_UPLOAD_SIZE,
        }
    }
}

/// Connections the admin port (`--admin-addr`) serves at once: scrapers and probes, a handful
/// at a time. More are closed at once.
pub const MAX_ADMIN_CONNECTIONS: usize = 16;

/// Descriptors kept for everything but client connections: the listeners, standard streams,
/// the database's files (five connections, each with its write-ahead log and shared memory),
/// the admin port's connections (`MAX_ADMIN_CONNECTIONS`), and a margin.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection limits that need one open file each (two for a relayed WebSocket session:
/// its own, and its connection to the upstream server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub tcp: usize,
    pub http: usize,
    pub ws_sessions: usize,
    pub relayed: bool,
}

impl ConnectionLimits {
    /// Open files these limits need at most, with the busy rejections and the reserve.
    pub fn descriptors(&self) -> u64 {
        let per_session = if self.relayed { 2 } else { 1 };
        (self.tcp + MAX_BUSY_REJECTIONS + self.http + self.ws_sessions * per_session) as u64
            + RESERVED_DESCRIPTORS
    }

    /// These limits, lowered in proportion so that they fit in `available` open files; `None`
    /// when they fit already. Each stays at least 1.
    pub fn fitted_to(&self, available: u64) -> Option<ConnectionLimits> {
        let wanted = self.descriptors();
        if wanted <= available {
            return None;
        }
        let fixed = (MAX_BUSY_REJECTIONS as u64) + RESERVED_DESCRIPTORS;
        let room = available.saturating_sub(fixed);
        let scale = |n: usize| match n {
            0 => 0,
            n => ((n as u128 * room as u128 / (wanted - fixed) as u128) as usize).max(1),
        };
        Some(ConnectionLimits {
            tcp: scale(self.tcp),
            http: scale(self.http),
            ws_sessions: scale(self.ws_sessions),
            relayed: self.relayed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: ConnectionLimits = ConnectionLimits {
        tcp: 1024,
        http: 1024,
        ws_sessions: 256,
        relayed: false,
    };

    #[test]
    fn limits_that_fit_are_kept() {
        assert_eq!(DEFAULTS.descriptors(), 1024 + 64 + 1024 + 256 + 64);
        assert_eq!(DEFAULTS.fitted_to(1 << 20), None);
        assert_eq!(DEFAULTS.fitted_to(DEFAULTS.descriptors()), None);
    }

    #[test]
    fn limits_that_do_not_fit_are_lowered_in_proportion() {
        for available in [1024, 2000, 500, 129, 10] {
            let fitted = DEFAULTS.fitted_to(available).unwrap_or(DEFAULTS);
            assert!(fitted.tcp < DEFAULTS.tcp, "{available}: {fitted:?}");
            assert!(fitted.tcp >= 1 && fitted.http >= 1 && fitted.ws_sessions >= 1);
            if available > 200 {
                assert!(fitted.descriptors() <= available, "{available}: {fitted:?}");
            }
        }
        let relayed = ConnectionLimits {
            relayed: true,
            ..DEFAULTS
        };
        let fitted = relayed.fitted_to(1024).unwrap_or(relayed);
        assert!(fitted.descriptors() <= 1024, "{fitted:?}");
    }
}
