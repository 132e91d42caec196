//! `picture-bench`: a load generator for the picture server. It measures requests per second,
//! throughput and latency, and checks every picture it receives against a reference, so that a
//! fast answer is also known to be a right one.
//!
//! * `stream`: TCP, or a WebSocket read as a byte stream. `ws`: the WebSocket client.
//! * `conn`: framed requests out, response frames cut out of the stream.
//! * `reference`: the picture every answer is compared with.
//! * `plan`: what each connection asks for and when the measured phase starts and ends.
//! * `framed`, `bare`, `upload`: one task's load in each mode; `page` adds the reference of
//!   a PAGE run, which runs as `framed` does. `idle`: `--idle`.
//! * `variants`: JPEGs that differ in their pixels, so that no upload is deduplicated.
//! * `watch`: `--watch`, the time from an upload's answer to its notice on another server.
//! * `tally`: what a task counted. `report`: the table and the JSON line.

#![forbid(unsafe_code)]

mod bare;
mod conn;
mod framed;
mod idle;
mod page;
mod plan;
mod reference;
mod report;
mod stream;
mod tally;
mod upload;
mod variants;
mod watch;
mod ws;
mod ws_frame;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum, value_parser};
use futures_util::{StreamExt, TryStreamExt, stream as futures_stream};
use std::num::NonZeroU32;

use picture_protocol::{
    Command, Format, GetRequest, MAX_PAGE_SIZE, PageRequest, Selector, Variant,
};
use tokio::task::JoinSet;

use crate::conn::{Conn, OPEN_CONCURRENCY};
use crate::plan::{Job, Length, Plan};
use crate::reference::Reference;
use crate::stream::Target;
use crate::tally::Tally;

#[derive(Debug, Parser)]
#[command(
    name = "picture-bench",
    version,
    about = "Load generator for the picture server: requests/s, MB/s and latency, with every \
             picture received checked",
    after_help = "The load runs on one tokio worker thread per core; set TOKIO_WORKER_THREADS \
                  to change that."
)]
struct Args {
    /// The server: tcp://HOST:PORT (tls:// over TLS), or ws://HOST:PORT/PATH (wss://) for a
    /// WebSocket bridge.
    #[arg(long)]
    server: String,
    /// PEM file of the certificate authority to trust for tls:// and wss:// instead of the
    /// system's.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// framed: GETs on persistent connections, each with --pipeline requests in flight.
    /// bare: the original client's way, a new TCP connection per request. page: PAGE
    /// requests (--after, --limit, --search) as framed mode sends GETs. upload: PUTs of
    /// --file with --token, one at a time per connection, each a different picture.
    #[arg(long, value_enum, default_value_t = Mode::Framed)]
    mode: Mode,
    /// Concurrent connections (in bare mode: concurrent requests).
    #[arg(long, default_value_t = 8, value_parser = value_parser!(u32).range(1..=1_000_000))]
    connections: u32,
    /// Requests in flight on each connection (framed and page modes).
    #[arg(long, default_value_t = 1, value_parser = value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// Seconds measured, after the warm-up; --requests takes precedence.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = picture_args::seconds)]
    duration: Duration,
    /// Requests measured, after the warm-up, instead of a duration.
    #[arg(long, value_name = "N", value_parser = value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Seconds of load, served and checked but not measured, before measuring starts.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds_or_zero)]
    warmup: Duration,
    /// The picture to ask for: its menu number or its name.
    #[arg(long, value_name = "NAME|NUMBER", default_value = "1")]
    picture: String,
    /// Framed mode: ask for the picture scaled down to at most this width (a variant).
    #[arg(long, value_name = "PIXELS", value_parser = value_parser!(u32).range(1..))]
    width: Option<u32>,
    /// Framed mode: ask for the picture scaled down to at most this height.
    #[arg(long, value_name = "PIXELS", value_parser = value_parser!(u32).range(1..))]
    height: Option<u32>,
    /// Framed mode: ask for the picture in this format: jpeg, png or webp.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Framed mode, with a variant: connection N asks for a box N pixels narrower and lower
    /// than --width x --height, so that no two connections ask for the same variant (with
    /// a server that keeps none, every request then makes one).
    #[arg(long, requires = "width")]
    distinct: bool,
    /// Page mode: the page starts after this menu number (0: from the first picture).
    #[arg(long, value_name = "NUMBER", default_value_t = 0)]
    after: u32,
    /// Page mode: entries asked for in each page.
    #[arg(long, value_name = "N", default_value_t = MAX_PAGE_SIZE, value_parser = value_parser!(u16).range(1..=i64::from(MAX_PAGE_SIZE)))]
    limit: u16,
    /// Page mode: only pictures whose name or title contains this text (ignoring case).
    #[arg(long, value_name = "TEXT", default_value = "")]
    search: String,
    /// Upload mode: the JPEG to upload. Every upload is a variant of it with different pixels
    /// and the same size; two are held in memory per connection.
    #[arg(long, value_name = "PATH", required_if_eq("mode", "upload"))]
    file: Option<PathBuf>,
    /// Upload mode: the server's admin token (better given through the environment).
    #[arg(
        long,
        env = "PICTURE_TOKEN",
        hide_env_values = true,
        required_if_eq("mode", "upload")
    )]
    token: Option<String>,
    /// Upload mode: connection N uploads as PREFIX-N, replacing it each time.
    #[arg(long, value_name = "PREFIX", default_value = "bench-upload")]
    name: String,
    /// Upload mode, with one connection: also WATCH this server (tcp://HOST:PORT, another
    /// server on the same store) and measure, for every upload, the time from its answer to
    /// the change notice on it.
    #[arg(long, value_name = "SERVER")]
    watch: Option<String>,
    /// WebSocket subprotocol to ask for (websockify wants "binary" for raw bytes).
    #[arg(long, value_name = "NAME")]
    ws_protocol: Option<String>,
    /// Instead of load: open N framed connections, PING each, hold them open for --duration
    /// seconds and report how many still answer (to measure the server's memory per
    /// connection). "holding N connections" on standard error says when all are open.
    #[arg(
        long,
        value_name = "N",
        value_parser = value_parser!(u32).range(1..),
        conflicts_with_all = ["mode", "pipeline", "requests", "warmup", "picture"]
    )]
    idle: Option<u32>,
    /// Also print the results as one JSON object, the last line of standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Framed,
    Bare,
    Page,
    Upload,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Framed => "framed",
            Mode::Bare => "bare",
            Mode::Page => "page",
            Mode::Upload => "upload",
        }
    }
}

/// Like the server's durations, and 0 too.
fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => picture_args::seconds(text),
    }
}

fn main() -> ExitCode {
    let args: Args = match picture_args::parse("picture-bench") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picture-bench: {}", picture_args::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.server, args.ca_cert.as_deref())?;
    if args.mode == Mode::Bare && target.transport() != "tcp" {
        bail!("bare mode needs a tcp:// server: bare choices have no WebSocket or TLS form");
    }
    if args.mode == Mode::Upload && matches!(target, Target::Ws { .. }) {
        bail!("upload mode needs a tcp:// server");
    }
    if args.watch.is_some() && (args.mode != Mode::Upload || args.connections != 1) {
        bail!("--watch goes with --mode upload and --connections 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match args.idle {
            Some(count) => idle(args, target, count as usize).await,
            None => load(args, target).await,
        }
    })
}

async fn idle(args: &Args, target: Target, count: usize) -> anyhow::Result<()> {
    let alive = idle::run(&target, args.ws_protocol.as_deref(), count, args.duration).await?;
    let report = report::Idle {
        server: &args.server,
        transport: target.transport(),
        connections: count,
        alive,
        held: args.duration,
    };
    let mut out = std::io::stdout().lock();
    report.print_table(&mut out)?;
    if args.json {
        writeln!(out, "{}", report.json())?;
    }
    Ok(())
}

/// What the load tasks of a run share.
enum Work {
    /// GETs or PAGEs on framed connections, or bare requests.
    Requests(Arc<Job>),
    /// Uploads, and the picture as the server stored it.
    Upload(Arc<upload::Job>, Reference),
}

impl Work {
    fn reference(&self) -> &Reference {
        match self {
            Work::Requests(job) => &job.reference,
            Work::Upload(_, reference) => reference,
        }
    }
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| "not jpeg, png or webp".to_owned())
}

impl Args {
    /// The variant connection `slot` asks for (the picture as stored without --width,
    /// --height and --format).
    fn variant(&self, slot: u32) -> Variant {
        let shrink = if self.distinct { slot } else { 0 };
        let side = |side: Option<u32>| side.and_then(|s| NonZeroU32::new(s.saturating_sub(shrink)));
        Variant {
            max_width: side(self.width),
            max_height: side(self.height),
            format: self.format,
        }
    }
}

async fn load(args: &Args, target: Target) -> anyhow::Result<()> {
    let ws_protocol = args.ws_protocol.as_deref();
    let transport = target.transport();
    let connections = args.connections as usize;
    let pipeline = match args.mode {
        Mode::Framed | Mode::Page => args.pipeline as usize,
        Mode::Bare | Mode::Upload => 1,
    };
    let mut page = None;
    let mut watching = None;
    let work = match args.mode {
        Mode::Upload => {
            let (Some(file), Some(token)) = (&args.file, &args.token) else {
                bail!("upload mode needs --file and --token");
            };
            let (mut job, reference) =
                upload::prepare(target, token, file, &args.name, connections).await?;
            if let Some(server) = &args.watch {
                let watched = Target::parse(server, args.ca_cert.as_deref())?;
                watching = Some(watch::Watch::start(&watched).await?);
                job.answers = Some(Arc::default());
            }
            Work::Upload(Arc::new(job), reference)
        }
        mode => {
            let selector = Selector::from_choice(args.picture.as_bytes());
            let variant = args.variant(0);
            if !variant.is_original() && mode != Mode::Framed {
                bail!("--width, --height and --format are for framed mode");
            }
            let get = Command::Get(GetRequest {
                selector: selector.clone(),
                variant,
            });
            let mut distinct = Vec::new();
            if args.distinct {
                for slot in 0..connections {
                    let variant = args.variant(slot as u32);
                    let reference =
                        reference::for_variant(&target, ws_protocol, &selector, variant).await?;
                    let command = Command::Get(GetRequest {
                        selector: selector.clone(),
                        variant,
                    });
                    distinct.push((command, reference.bytes));
                }
            }
            let (reference, command) = match mode {
                Mode::Page => {
                    let request = PageRequest {
                        after: args.after,
                        limit: args.limit,
                        search: args.search.clone(),
                    };
                    let (reference, summary) =
                        page::reference(&target, ws_protocol, &request).await?;
                    page = Some(summary);
                    (reference, Command::Page(request))
                }
                Mode::Bare => {
                    let reference = reference::for_bare(&target, &selector, &args.picture).await?;
                    (reference, get)
                }
                _ if !variant.is_original() => {
                    let reference =
                        reference::for_variant(&target, ws_protocol, &selector, variant).await?;
                    (reference, get)
                }
                _ => {
                    let reference =
                        reference::from_catalog(&target, ws_protocol, &selector).await?;
                    (reference, get)
                }
            };
            Work::Requests(Arc::new(Job {
                target,
                ws_protocol: args.ws_protocol.clone(),
                pipeline,
                choice: args.picture.clone(),
                command,
                reference,
                distinct,
            }))
        }
    };
    let reference = work.reference();
    eprintln!(
        "picture-bench: reference {}: {} bytes ({})",
        reference.name,
        reference.bytes.len(),
        reference.source.name()
    );

    // Persistent connections are opened before the clock starts: connecting is not what
    // their requests cost.
    let conns: Vec<Conn> = match (&work, args.mode) {
        (_, Mode::Bare) => Vec::new(),
        (Work::Upload(job, _), _) => upload::open(job).await?,
        (Work::Requests(job), _) => {
            futures_stream::iter(0..connections)
                .map(|_| Conn::connect(&job.target, ws_protocol))
                .buffer_unordered(OPEN_CONCURRENCY)
                .try_collect()
                .await?
        }
    };
    let length = match args.requests {
        Some(n) => Length::Requests(n),
        None => Length::Time(args.duration),
    };
    eprintln!(
        "picture-bench: {connections} {} connections; {:.1} s of warm-up, then {}",
        args.mode.name(),
        args.warmup.as_secs_f64(),
        match length {
            Length::Time(d) => format!("{:.1} s measured", d.as_secs_f64()),
            Length::Requests(n) => format!("{n} requests measured"),
        }
    );
    let plan = Arc::new(Plan::new(args.warmup, length));
    let mut tasks = JoinSet::new();
    match &work {
        Work::Requests(job) if args.mode == Mode::Bare => {
            for _ in 0..connections {
                tasks.spawn(bare::run(Arc::clone(job), Arc::clone(&plan), Tally::new()?));
            }
        }
        Work::Requests(job) => {
            for (slot, conn) in conns.into_iter().enumerate() {
                let work = framed::run(
                    conn,
                    slot,
                    Arc::clone(job),
                    Arc::clone(&plan),
                    Tally::new()?,
                );
                tasks.spawn(work);
            }
        }
        Work::Upload(job, _) => {
            for (slot, conn) in conns.into_iter().enumerate() {
                let work = upload::run(
                    conn,
                    slot,
                    Arc::clone(job),
                    Arc::clone(&plan),
                    Tally::new()?,
                );
                tasks.spawn(work);
            }
        }
    }
    let mut total = Tally::new()?;
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally.context("a load task failed")?)?;
    }

    let propagation = match (watching, &work) {
        (Some(watch), Work::Upload(job, _)) => {
            let answers = job
                .answers
                .as_ref()
                .and_then(|noted| noted.lock().ok().map(|a| a.clone()))
                .unwrap_or_default();
            Some(watch.finish(&answers, Duration::from_secs(5)).await?)
        }
        _ => None,
    };
    let measured = match length {
        Length::Time(duration) => duration,
        Length::Requests(_) => total.last_answer.map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(plan.measure_from)
        }),
    };
    let run = report::Run {
        server: &args.server,
        transport,
        mode: args.mode.name(),
        connections,
        pipeline,
        reference,
        page: page.as_ref(),
        warmup: args.warmup,
        measured,
        tally: &total,
        propagation: propagation.as_ref(),
    };
    let mut out = std::io::stdout().lock();
    run.print_table(&mut out)?;
    if args.json {
        writeln!(out, "{}", run.json()?)?;
    }
    Ok(())
}
