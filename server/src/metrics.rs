//! The server's numbers for Prometheus. The code records them where they happen, through the
//! `metrics` facade (which does nothing until a recorder is installed, as in tests and the
//! other binaries); `picture-server` installs the Prometheus recorder with [`Exporter`], and
//! `/metrics` renders it.
//!
//! Every name and label value is static, so the number of series is fixed (operations x
//! statuses x transports at most), and the series each request updates are kept as handles.
//! A handle made before the recorder is installed records nothing, for good: the binary
//! installs it before it serves anything.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use picture_protocol::{Kind, Status};

/// How often recorded latencies are folded into the histograms: they are held as samples
/// until then.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Histogram buckets for request and store latencies, in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Framed requests over TCP.
    Tcp,
    /// The original clients' bare choice over TCP.
    Bare,
    /// Framed requests in WebSocket messages.
    WebSocket,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Bare => "bare",
            Transport::WebSocket => "websocket",
        }
    }
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::NotFound => "not_found",
        Status::BadRequest => "bad_request",
        Status::TooLarge => "too_large",
        Status::Busy => "busy",
        Status::Internal => "internal",
        Status::Unauthorized => "unauthorized",
        Status::WritesDisabled => "writes_disabled",
        Status::Rejected => "rejected",
        Status::Conflict => "conflict",
    }
}

/// Transports, request kinds (by code, 0 unused) and statuses: the per-request series.
const TRANSPORTS: usize = 3;
const KINDS: usize = 13;
const STATUSES: usize = 10;

/// Handles of the series every request updates, each made on first use. Looking a series up
/// by its labels costs an allocation, a hash and a lock; updating it through its handle, an
/// atomic operation. (With the lookups, metrics took 19% of the tiny picture's requests/s.)
static REQUESTS: [OnceLock<Counter>; TRANSPORTS * KINDS * STATUSES] =
    [const { OnceLock::new() }; TRANSPORTS * KINDS * STATUSES];
static LATENCIES: [OnceLock<Histogram>; TRANSPORTS * KINDS] =
    [const { OnceLock::new() }; TRANSPORTS * KINDS];
static CACHE_LOOKUPS: [OnceLock<Counter>; 2] = [const { OnceLock::new() }; 2];
// Per connection, which in bare mode is per request too.
static SENT: [OnceLock<Counter>; TRANSPORTS] = [const { OnceLock::new() }; TRANSPORTS];
static RECEIVED: [OnceLock<Counter>; TRANSPORTS] = [const { OnceLock::new() }; TRANSPORTS];
static OPEN: [OnceLock<Gauge>; TRANSPORTS] = [const { OnceLock::new() }; TRANSPORTS];

/// A request answered, how, and how long the answer took to make.
pub fn answered(transport: Transport, kind: Kind, status: Status, took: Duration) {
    let op = transport as usize * KINDS + kind as usize;
    let series = op * STATUSES + status as usize;
    let (transport, op_name) = (transport.label(), kind.name());
    let requests = REQUESTS[series].get_or_init(|| {
        counter!("picture_requests_total", "op" => op_name, "status" => status_label(status), "transport" => transport)
    });
    requests.increment(1);
    let latency = LATENCIES[op].get_or_init(|| {
        histogram!("picture_request_duration_seconds", "op" => op_name, "transport" => transport)
    });
    latency.record(took.as_secs_f64());
}

/// Bytes a connection or session sent and received, counted when it ends.
pub fn transferred(transport: Transport, sent: u64, received: u64) {
    let label = transport.label();
    SENT[transport as usize]
        .get_or_init(|| counter!("picture_sent_bytes_total", "transport" => label))
        .increment(sent);
    RECEIVED[transport as usize]
        .get_or_init(|| counter!("picture_received_bytes_total", "transport" => label))
        .increment(received);
}

/// Counts a connection (or WebSocket session) as open while it lives.
pub struct Open(&'static Gauge);

impl Open {
    /// `transport` is `Tcp` or `WebSocket`: bare and framed are told apart only once a
    /// connection has sent something.
    pub fn new(transport: Transport) -> Open {
        let label = transport.label();
        let gauge = OPEN[transport as usize]
            .get_or_init(|| gauge!("picture_open_connections", "kind" => label));
        gauge.increment(1);
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

/// A client refused (over a limit, or a foreign origin); `reason` as the refusal log has it.
pub fn refused(reason: &'static str) {
    counter!("picture_refusals_total", "reason" => reason).increment(1);
}

/// A picture's bytes asked of a database store's cache.
pub fn cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    CACHE_LOOKUPS[usize::from(hit)]
        .get_or_init(|| counter!("picture_cache_lookups_total", "result" => result))
        .increment(1);
}

/// Bytes the store's cache holds now.
pub fn cache_size(bytes: u64) {
    gauge!("picture_cache_bytes").set(bytes as f64);
}

/// One operation on the database (`op`: read, write, ...), how long it took, and whether it
/// failed.
pub fn store_operation(op: &'static str, took: Duration, failed: bool) {
    histogram!("picture_store_duration_seconds", "op" => op).record(took.as_secs_f64());
    if failed {
        counter!("picture_store_errors_total", "op" => op).increment(1);
    }
}

/// Where a variant asked for was found: `memory`, `store`, or `made` (see
/// `picture_variants_made_total` for how many were made).
pub fn variant_lookup(found: &'static str) {
    counter!("picture_variant_lookups_total", "found" => found).increment(1);
}

/// One variant made in `format` on the variant pool, how long it took, and whether it could
/// be made. Concurrent requests for one variant count once.
pub fn variant_rendered(format: &'static str, took: Duration, made: bool) {
    let result = if made { "ok" } else { "failed" };
    counter!("picture_variants_made_total", "format" => format, "result" => result).increment(1);
    histogram!("picture_variant_duration_seconds", "format" => format).record(took.as_secs_f64());
}

/// The Prometheus recorder of this process, and what `/metrics` renders.
#[derive(Clone)]
pub struct Exporter(PrometheusHandle);

impl Exporter {
    /// Installs the recorder for the whole process (once), and folds samples into the
    /// histograms every few seconds, so that they never pile up between scrapes.
    pub fn install() -> Result<Exporter, BuildError> {
        let handle = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)?
            .install_recorder()?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Exporter(handle))
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        self.0.render()
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}
