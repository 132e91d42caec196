//! What one connection (or one bare-request loop) counted. Each task keeps its own, with no
//! sharing while the load runs, and the orchestrator merges them at the end.

use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Longest latency recorded, in microseconds (an hour); longer ones count as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

pub struct Tally {
    /// Measured requests answered, with a matching body or not.
    pub requests: u64,
    /// Failures: I/O errors, protocol errors, wrong statuses, wrong ids.
    pub errors: u64,
    /// Answers whose body differs from the reference in length or content.
    pub mismatches: u64,
    /// Uploads the server refused as *busy* (too many at once), which were sent again: not
    /// errors, since the protocol tells a client to try again later.
    pub busy: u64,
    /// Body bytes of the measured answers.
    pub body_bytes: u64,
    /// Microseconds from sending a request to the last byte of its answer.
    pub latency: Histogram<u64>,
    /// The first failure, as a hint to what went wrong.
    pub first_error: Option<String>,
    /// When the last measured answer arrived: the end of a run with a request count.
    pub last_answer: Option<Instant>,
}

impl Tally {
    pub fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            requests: 0,
            errors: 0,
            mismatches: 0,
            busy: 0,
            body_bytes: 0,
            // Three significant digits: 1 µs resolution up to 2 ms, 0.1 % beyond. The
            // histogram grows to the longest latency seen, so a task whose answers take
            // milliseconds holds tens of KiB rather than the couple of hundred that an hour's
            // range would take, which matters with thousands of connections.
            latency: Histogram::new(3).context("cannot create a latency histogram")?,
            first_error: None,
            last_answer: None,
        })
    }

    /// One measured answer.
    pub fn answer(&mut self, latency: Duration, body_len: usize, matches: bool, at: Instant) {
        self.requests += 1;
        self.body_bytes += body_len as u64;
        if !matches {
            self.mismatches += 1;
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let micros = micros.clamp(1, MAX_LATENCY_US);
        // `record` grows the histogram to fit; it fails only if it cannot grow, and then the
        // sample is kept at the largest value the histogram holds rather than lost.
        // (`saturating_record` never grows it, so it would clip everything above 2 ms.)
        if self.latency.record(micros).is_err() {
            self.latency.saturating_record(micros);
        }
        self.last_answer = self.last_answer.max(Some(at));
    }

    pub fn error(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{error:#}"));
        }
    }

    pub fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.mismatches += other.mismatches;
        self.busy += other.busy;
        self.body_bytes += other.body_bytes;
        self.latency
            .add(&other.latency)
            .context("cannot merge latency histograms")?;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_answer = self.last_answer.max(other.last_answer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn long_latencies_are_kept_and_tallies_merge() {
        let at = Instant::now();
        let mut a = tally();
        a.answer(Duration::from_micros(250), 10, true, at);
        a.answer(Duration::from_secs(5), 10, false, at);
        let mut b = tally();
        b.answer(Duration::from_millis(40), 10, true, at);
        b.error(&anyhow::anyhow!("boom"));
        a.merge(b).unwrap_or_else(|e| panic!("{e}"));

        assert_eq!(
            (a.requests, a.mismatches, a.errors, a.body_bytes),
            (3, 1, 1, 30)
        );
        assert_eq!(a.first_error.as_deref(), Some("boom"));
        assert_eq!(a.latency.value_at_quantile(0.0), 250);
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        let (p50, max) = (a.latency.value_at_quantile(0.5), a.latency.max());
        assert!(near(p50, 40_000), "p50 {p50}");
        assert!(near(max, 5_000_000), "max {max}");
    }
}
