//! What every connection of a run does and when: the request to send, the warm-up, and the
//! end of the measured phase, in time or in requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use picture_protocol::Command;
use tokio::time::Instant;

use crate::reference::Reference;
use crate::stream::Target;

/// After this many failures in a row with no good response in between, a connection stops
/// trying: the server is down or refuses it, and a run with a request count would never end.
pub const MAX_FAILURES_IN_A_ROW: u32 = 20;

/// What to ask for and where; shared by every connection.
pub struct Job {
    pub target: Target,
    pub ws_protocol: Option<String>,
    pub pipeline: usize,
    /// `--picture` as given: what a bare request sends.
    pub choice: String,
    /// What a framed connection sends over and over: a GET of `--picture`, or a PAGE.
    pub command: Command,
    /// What every answer's body must be.
    pub reference: Reference,
    /// With `--distinct`: what each connection sends instead of `command`, and the body its
    /// answers must have.
    pub distinct: Vec<(Command, Vec<u8>)>,
}

impl Job {
    /// What connection `slot` sends over and over.
    pub fn command_for(&self, slot: usize) -> &Command {
        self.distinct.get(slot).map_or(&self.command, |(c, _)| c)
    }

    /// The body every answer on connection `slot` must have.
    pub fn reference_for(&self, slot: usize) -> &[u8] {
        self.distinct
            .get(slot)
            .map_or(self.reference.bytes.as_slice(), |(_, r)| r)
    }
}

/// How long the measured phase lasts.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    Time(Duration),
    Requests(u64),
}

pub struct Plan {
    /// Requests sent before this are warm-up: served and checked, but not measured.
    pub measure_from: Instant,
    /// The end of a timed run; connections stop here whatever they have in flight.
    pub until: Option<Instant>,
    /// Measured requests not yet started, in a run with a request count.
    budget: Option<AtomicU64>,
}

impl Plan {
    /// A plan that starts now.
    pub fn new(warmup: Duration, length: Length) -> Plan {
        let measure_from = Instant::now() + warmup;
        match length {
            Length::Time(duration) => Plan {
                measure_from,
                until: Some(measure_from + duration),
                budget: None,
            },
            Length::Requests(n) => Plan {
                measure_from,
                until: None,
                budget: Some(AtomicU64::new(n)),
            },
        }
    }

    /// Whether a request may be sent at `now`: `Some(true)` for a measured one, `Some(false)`
    /// during warm-up, `None` once the run is over for new requests.
    pub fn take(&self, now: Instant) -> Option<bool> {
        if now < self.measure_from {
            return Some(false);
        }
        if self.until.is_some_and(|until| now >= until) {
            return None;
        }
        match &self.budget {
            None => Some(true),
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .ok()
                .map(|_| true),
        }
    }

    /// Returns measured requests that were lost to an error, so that they are sent again and a
    /// run with a request count still completes that many.
    pub fn give_back(&self, n: u64) {
        if let Some(left) = &self.budget {
            left.fetch_add(n, Ordering::AcqRel);
        }
    }

    /// Whether a response that arrived at `at` is inside the measured window.
    pub fn in_window(&self, at: Instant) -> bool {
        self.until.is_none_or(|until| at <= until)
    }
}

/// How long to wait before trying again after `failures` failures in a row: short at first, so
/// a dropped connection costs little, then longer, so a refusing server is not hammered.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis(10 << failures.min(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_count_is_handed_out_exactly_and_lost_requests_come_back() {
        let plan = Plan::new(Duration::ZERO, Length::Requests(2));
        let now = Instant::now();
        assert_eq!(plan.take(now), Some(true));
        assert_eq!(plan.take(now), Some(true));
        assert_eq!(plan.take(now), None);
        plan.give_back(1);
        assert_eq!(plan.take(now), Some(true));
        assert_eq!(plan.take(now), None);
    }

    #[test]
    fn warm_up_is_unmeasured_and_a_timed_run_ends() {
        let plan = Plan::new(Duration::from_secs(1), Length::Time(Duration::from_secs(2)));
        let start = plan.measure_from - Duration::from_secs(1);
        assert_eq!(plan.take(start), Some(false));
        assert_eq!(plan.take(plan.measure_from), Some(true));
        let end = plan.measure_from + Duration::from_secs(2);
        assert!(plan.in_window(end));
        assert_eq!(plan.take(end), None);
        assert!(!plan.in_window(end + Duration::from_millis(1)));
    }
}
