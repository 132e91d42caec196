//! The results: a table for people, and one JSON object (the last line of standard output) for
//! scripts. Key names in the JSON are relied on by `scripts/bench-compare`.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::page;
use crate::reference::{Reference, Source};
use crate::tally::Tally;
use crate::watch::Propagation;

/// Bytes in a megabyte, as throughput is reported (decimal, like network rates).
const MB: f64 = 1e6;

/// A finished load run.
pub struct Run<'a> {
    pub server: &'a str,
    pub transport: &'static str,
    pub mode: &'static str,
    pub connections: usize,
    pub pipeline: usize,
    pub reference: &'a Reference,
    /// The page asked for, in page mode.
    pub page: Option<&'a page::Summary>,
    pub warmup: Duration,
    /// The measured phase: as asked in a timed run, until the last answer with a count.
    pub measured: Duration,
    pub tally: &'a Tally,
    /// With `--watch`: how long uploads took to be announced on the watched server.
    pub propagation: Option<&'a Propagation>,
}

#[derive(Serialize)]
struct Json<'a> {
    server: &'a str,
    transport: &'a str,
    mode: &'a str,
    connections: usize,
    pipeline: usize,
    /// The picture fetched or uploaded; none in page mode.
    picture: Option<&'a str>,
    page: Option<&'a page::Summary>,
    /// Bytes of each answer's body, or of each upload.
    body_bytes: usize,
    duration_s: f64,
    requests: u64,
    errors: u64,
    mismatches: u64,
    busy: u64,
    requests_per_s: f64,
    mb_per_s: f64,
    latency_us: Latency,
    reference: &'a str,
    first_error: Option<&'a str>,
    /// With `--watch`: microseconds from an upload's answer to its notice on the other server.
    propagation_us: Option<PropagationJson>,
}

#[derive(Serialize)]
struct PropagationJson {
    uploads: u64,
    missing: u64,
    early: u64,
    p50: u64,
    p99: u64,
    max: u64,
}

#[derive(Serialize)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Run<'_> {
    fn per_second(&self, amount: f64) -> f64 {
        let seconds = self.measured.as_secs_f64();
        if seconds > 0.0 { amount / seconds } else { 0.0 }
    }

    fn requests_per_s(&self) -> f64 {
        self.per_second(self.tally.requests as f64)
    }

    fn mb_per_s(&self) -> f64 {
        self.per_second(self.tally.body_bytes as f64 / MB)
    }

    fn latency(&self) -> Latency {
        let h = &self.tally.latency;
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    pub fn print_table(&self, out: &mut impl Write) -> io::Result<()> {
        let t = self.tally;
        let reference = match self.reference.source {
            Source::Catalog => "checked against the catalog's SHA-256",
            Source::FirstBody => {
                "no catalog (the server does not speak framed mode): compared with the first body"
            }
            Source::Page => "compared with the first answer, which was checked against the request",
            Source::Upload => {
                "a different variant each time, each answer checked against its SHA-256"
            }
            Source::FirstVariant => {
                "a variant (scaled or converted): compared with the first answer for it"
            }
        };
        let what = match self.page {
            Some(_) => "page",
            None => "picture",
        };
        let rows = [
            ("target", format!("{} ({})", self.server, self.transport)),
            (
                "mode",
                format!(
                    "{}, {} connections, pipeline {}",
                    self.mode, self.connections, self.pipeline
                ),
            ),
            (
                what,
                format!(
                    "{}, {} bytes, {reference}",
                    self.reference.name,
                    self.reference.bytes.len()
                ),
            ),
            (
                "measured",
                format!(
                    "{:.3} s, after {:.1} s of warm-up",
                    self.measured.as_secs_f64(),
                    self.warmup.as_secs_f64()
                ),
            ),
            ("requests", t.requests.to_string()),
            ("errors", t.errors.to_string()),
            ("mismatches", t.mismatches.to_string()),
            ("requests/s", format!("{:.1}", self.requests_per_s())),
            (
                "MB/s",
                format!(
                    "{:.1} (bodies received, or pictures uploaded; 1 MB = 10^6 bytes)",
                    self.mb_per_s()
                ),
            ),
        ];
        for (what, value) in rows {
            writeln!(out, "{what:<14}{value}")?;
        }
        if t.busy > 0 {
            writeln!(
                out,
                "{:<14}{} (refused as busy, sent again)",
                "busy", t.busy
            )?;
        }
        let l = self.latency();
        for (what, micros) in [
            ("latency p50", l.p50),
            ("latency p90", l.p90),
            ("latency p99", l.p99),
            ("latency p99.9", l.p999),
            ("latency max", l.max),
        ] {
            writeln!(out, "{what:<14}{:.3} ms", micros as f64 / 1000.0)?;
        }
        if let Some(p) = self.propagation {
            let ms = |micros: u64| micros as f64 / 1000.0;
            writeln!(
                out,
                "{:<14}p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms from each answer to its notice on \
                 the watched server ({} uploads, {} notices missing, {} before the answer)",
                "propagation",
                ms(p.delay.value_at_quantile(0.5)),
                ms(p.delay.value_at_quantile(0.99)),
                ms(p.delay.max()),
                p.uploads,
                p.missing,
                p.early
            )?;
        }
        if let Some(error) = &t.first_error {
            writeln!(out, "{:<14}{error}", "first error")?;
        }
        Ok(())
    }

    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(&Json {
            server: self.server,
            transport: self.transport,
            mode: self.mode,
            connections: self.connections,
            pipeline: self.pipeline,
            picture: self.page.is_none().then_some(self.reference.name.as_str()),
            page: self.page,
            body_bytes: self.reference.bytes.len(),
            duration_s: self.measured.as_secs_f64(),
            requests: self.tally.requests,
            errors: self.tally.errors,
            mismatches: self.tally.mismatches,
            busy: self.tally.busy,
            requests_per_s: self.requests_per_s(),
            mb_per_s: self.mb_per_s(),
            latency_us: self.latency(),
            reference: self.reference.source.name(),
            first_error: self.tally.first_error.as_deref(),
            propagation_us: self.propagation.map(|p| PropagationJson {
                uploads: p.uploads,
                missing: p.missing,
                early: p.early,
                p50: p.delay.value_at_quantile(0.5),
                p99: p.delay.value_at_quantile(0.99),
                max: p.delay.max(),
            }),
        })
    }
}

/// The result of `--idle`.
pub struct Idle<'a> {
    pub server: &'a str,
    pub transport: &'static str,
    pub connections: usize,
    pub alive: usize,
    pub held: Duration,
}

impl Idle<'_> {
    pub fn print_table(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{:<14}{} ({})", "target", self.server, self.transport)?;
        writeln!(out, "{:<14}idle", "mode")?;
        writeln!(out, "{:<14}{}", "connections", self.connections)?;
        writeln!(
            out,
            "{:<14}{} (answered a PING after {:.1} s)",
            "alive",
            self.alive,
            self.held.as_secs_f64()
        )
    }

    pub fn json(&self) -> String {
        serde_json::json!({
            "server": self.server,
            "transport": self.transport,
            "mode": "idle",
            "connections": self.connections,
            "alive": self.alive,
        })
        .to_string()
    }
}
