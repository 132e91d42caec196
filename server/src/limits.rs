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

/// Default for [`Limits::max_upload_size`]: 32 MiB.
pub const DEFAULT_MAX_UPLOAD_SIZE: usize = 32 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_request_payload: MAX_REQUEST_PAYLOAD,
            shutdown_grace: Duration::from_secs(10),
            max_upload_size: DEFAULT_MAX_UPLOAD_SIZE,
        }
    }
}
