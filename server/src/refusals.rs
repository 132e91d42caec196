//! Warnings about refused clients, at most one line per interval: a flood of connections over
//! a limit must not become a flood of log lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::metrics;

/// Shortest time between two warnings.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Why a client was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// Over `--max-connections`: told *busy*.
    TcpBusy,
    /// Over `--max-connections-per-ip`: told *busy*.
    TcpPerIp,
    /// Over `--max-http-connections`: 503.
    HttpBusy,
    /// Over `--max-http-connections-per-ip`: 503.
    HttpPerIp,
    /// Over `--max-ws-sessions`: 503.
    WsBusy,
    /// Over `--max-ws-sessions-per-ip`: 503.
    WsPerIp,
    /// A WebSocket handshake from a page of another origin: 403.
    Origin,
    /// Over the admin port's connection bound: closed.
    AdminBusy,
}

const REASONS: usize = 8;

impl Refusal {
    /// The refusal's label in the metrics.
    fn label(self) -> &'static str {
        match self {
            Refusal::TcpBusy => "tcp_busy",
            Refusal::TcpPerIp => "tcp_per_ip",
            Refusal::HttpBusy => "http_busy",
            Refusal::HttpPerIp => "http_per_ip",
            Refusal::WsBusy => "ws_busy",
            Refusal::WsPerIp => "ws_per_ip",
            Refusal::Origin => "origin",
            Refusal::AdminBusy => "admin_busy",
        }
    }

    fn describe(index: usize) -> &'static str {
        [
            "over the connection limit",
            "over the per-address connection limit",
            "over the HTTP connection limit",
            "over the per-address HTTP connection limit",
            "over the WebSocket session limit",
            "over the per-address WebSocket session limit",
            "WebSocket from another origin",
            "over the admin port's connection limit",
        ][index]
    }
}

/// Counts refusals and reports them: the first one at once, then a summary of those since
/// the last warning once the interval has passed.
pub struct RefusalLog {
    counts: [AtomicU64; REASONS],
    last_warning: Mutex<Option<Instant>>,
}

/// The process's refusal log.
pub static REFUSALS: RefusalLog = RefusalLog::new();

impl RefusalLog {
    pub const fn new() -> RefusalLog {
        RefusalLog {
            counts: [const { AtomicU64::new(0) }; REASONS],
            last_warning: Mutex::new(None),
        }
    }

    /// Records a refusal of `peer` (a client address), warning if it is time to.
    pub fn refused(&self, reason: Refusal, peer: impl std::fmt::Display) {
        metrics::refused(reason.label());
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|last| now.duration_since(last) < WARNING_INTERVAL) {
            return;
        }
        let since = last.map(|last| now.duration_since(last));
        *last = Some(now);
        drop(last);
        let summary = self.take_summary();
        match since {
            None => warn!(%peer, "refused: {summary}"),
            Some(since) => warn!(
                latest = %peer,
                "refused in the last {} s: {summary}",
                since.as_secs()
            ),
        }
    }

    /// "3 over the connection limit, 1 WebSocket from another origin", and the counts reset.
    fn take_summary(&self) -> String {
        let parts: Vec<String> = (0..REASONS)
            .filter_map(|i| match self.counts[i].swap(0, Ordering::Relaxed) {
                0 => None,
                n => Some(format!("{n} {}", Refusal::describe(i))),
            })
            .collect();
        parts.join(", ")
    }
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_between_warnings_are_summed_up() {
        let log = RefusalLog::new();
        log.refused(Refusal::TcpBusy, "10.0.0.1:5");
        // Within the interval: counted, not written.
        for _ in 0..1000 {
            log.refused(Refusal::TcpPerIp, "10.0.0.1:6");
        }
        log.refused(Refusal::Origin, "10.0.0.1:7");
        assert_eq!(
            log.take_summary(),
            "1000 over the per-address connection limit, 1 WebSocket from another origin"
        );
        assert_eq!(log.take_summary(), "");
    }
}
