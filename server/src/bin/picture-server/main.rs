//! `picture-server`: serves the pictures of a store over TCP, and the browser page with its
//! WebSocket bridge over HTTP; `import` and `export` move pictures in and out of a store.

#![forbid(unsafe_code)]

mod config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use picture_protocol::{MAX_REQUEST_PAYLOAD, MAX_TOKEN_LEN, REQUEST_HEADER_LEN};

/// An admin token shorter than this is accepted with a warning: it can be guessed.
const MIN_GOOD_TOKEN_LEN: usize = 16;

/// More connections or sessions than a process can have descriptors for is a typing error.
const MAX_CONNECTIONS: usize = 1 << 20;

/// The smallest WebSocket message limit that still lets every request through.
const MIN_WS_MESSAGE: usize = REQUEST_HEADER_LEN + MAX_REQUEST_PAYLOAD;

/// The folder a new database is seeded from when --assets is not given, if it exists.
const DEFAULT_ASSETS: &str = "assets";
use picture_args as args;
use picture_server::Limits;
use picture_server::access::AdminToken;
use picture_server::answer::Service;
use picture_server::limits::{
    ConnectionLimits, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_UPLOAD_SIZE,
};
use picture_server::metrics::Exporter;
use picture_server::store::{
    BlobSettings, BlobsUrl, DEFAULT_CACHE_SIZE, DEFAULT_POOL_SIZE, MAX_PICTURE_BYTES, PoolSettings,
    Step, Store, StoreOptions, StoreUrl, UploadRules, export, migrate,
};
use picture_server::tls::ServerCert;
use picture_server::variants;
use picture_server::web::{
    AdminConfig, BridgeConfig, OriginPolicy, Site, Upstream, WebConfig, serve_admin, serve_web,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Serves pictures over TCP to framed and bare-choice clients, and to browsers over a WebSocket bridge",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    fn common(&self) -> &CommonArgs {
        match &self.command {
            None => &self.serve.common,
            Some(Command::Config { serve }) => &serve.common,
            Some(
                Command::Bridge { common, .. }
                | Command::Import { common, .. }
                | Command::CleanBlobs { common, .. }
                | Command::Migrate { common, .. }
                | Command::Export { common, .. },
            ) => common,
        }
    }
}

/// What every command takes.
#[derive(Debug, Args)]
struct CommonArgs {
    /// A TOML file of settings, under the flags' names (see README); flags and the environment
    /// take precedence over it.
    #[arg(long, env = "PICTURE_CONFIG")]
    config: Option<PathBuf>,
    /// How log lines (on standard error) are written: text for people, json (one object per
    /// line) for log shippers.
    #[arg(long, env = "PICTURE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the settings the server would run with, and where each comes from (flag,
    /// environment, config file or default); the admin token is masked.
    Config {
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Serve only the page and the WebSocket bridge, for a picture server elsewhere.
    Bridge {
        /// The picture server to forward to, HOST:PORT.
        #[arg(long, env = "PICTURE_UPSTREAM")]
        upstream: String,
        #[command(flatten)]
        web: WebArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Add the pictures of a folder (and the titles and order of its catalog.toml) to a store;
    /// pictures whose name is already there are replaced. Run it while no server uses the store.
    Import {
        /// Folder of pictures, as `export` writes it.
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete the objects of the object store (--blobs) that no picture of the catalog needs
    /// any more: those of replaced and deleted pictures, and of uploads that were never
    /// committed. Safe while servers run.
    CleanBlobs {
        /// Leave objects written less than this many seconds ago.
        #[arg(long, default_value = "3600", value_parser = args::seconds)]
        older_than: Duration,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Copy every picture and the catalog (order, titles, names) of one store into another:
    /// folder, SQLite or PostgreSQL, with or without an object store. Every copy is read back
    /// and its SHA-256 checked; stopped, it goes on where it was when run again; run again,
    /// it copies nothing. The destination's catalog changes in one step, at the end.
    Migrate {
        /// The store to copy from (sqlite:PATH, postgres://..., folder:DIR).
        #[arg(long)]
        from: StoreUrl,
        /// The object store the source keeps its picture bytes in, if any.
        #[arg(long)]
        from_blobs: Option<BlobsUrl>,
        /// The store to copy into (sqlite:PATH or postgres://...; made if new, never seeded).
        #[arg(long)]
        to: StoreUrl,
        /// The object store the destination is to keep its picture bytes in, if any.
        #[arg(long)]
        to_blobs: Option<BlobsUrl>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write every picture of a store into a folder, with a catalog.toml that `import` reads.
    Export {
        /// Folder to write into (created if missing).
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// Where pictures are kept: sqlite:PATH (created on first start, seeded from --assets),
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB (a database several servers can share;
    /// tables made on first start) or folder:DIR (read-only). Relative paths are from the
    /// working folder.
    #[arg(long, env = "PICTURE_STORE", default_value = "sqlite:data/pictures.db")]
    store: StoreUrl,
    /// Bytes of pictures a database store keeps in memory.
    #[arg(long, env = "PICTURE_CACHE_SIZE", default_value_t = DEFAULT_CACHE_SIZE)]
    cache_size: u64,
    /// Largest picture accepted for upload, in pixels (width times height).
    #[arg(long, env = "PICTURE_MAX_PIXELS", default_value_t = UploadRules::default().max_pixels, value_parser = args::within(1, u64::MAX))]
    max_pixels: u64,
    /// Keep EXIF, XMP and text metadata of uploads (by default it is removed).
    #[arg(long, env = "PICTURE_KEEP_METADATA")]
    keep_metadata: bool,
    /// Connections a PostgreSQL store opens at most (one more listens for other servers'
    /// changes).
    #[arg(long, env = "PICTURE_DB_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE, value_parser = args::within(1usize, 1000))]
    db_pool_size: usize,
    /// Deadline of every call to a PostgreSQL store, in seconds: connecting, each statement,
    /// each whole operation. A request that needs the database past it answers internal error.
    #[arg(long, env = "PICTURE_DB_TIMEOUT", default_value = "5", value_parser = args::seconds)]
    db_timeout: Duration,
    /// Keep picture bytes in an S3-compatible object store instead of the database:
    /// s3://BUCKET?endpoint=URL&region=REGION (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "PICTURE_BLOBS")]
    blobs: Option<BlobsUrl>,
    /// Deadline of every request to the object store, in seconds, retries included.
    #[arg(long, env = "PICTURE_BLOBS_TIMEOUT", default_value = "30", value_parser = args::seconds)]
    blobs_timeout: Duration,
}

impl StoreArgs {
    /// Opens the store, seeding an empty new database from `seed`.
    async fn open(&self, seed: Option<PathBuf>) -> anyhow::Result<Store> {
        Ok(Store::open(&self.store, seed.as_deref(), &self.options(true)).await?)
    }

    /// Opens a store that must exist already (for commands that read or clean one).
    async fn open_existing(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.store, None, &self.options(false)).await?)
    }

    fn options(&self, create: bool) -> StoreOptions {
        StoreOptions {
            cache_size: self.cache_size,
            upload: UploadRules {
                max_pixels: self.max_pixels,
                keep_metadata: self.keep_metadata,
            },
            pool: PoolSettings {
                size: self.db_pool_size,
                timeout: self.db_timeout,
            },
            blobs: self.blobs.clone(),
            blob_settings: BlobSettings {
                timeout: self.blobs_timeout,
                credentials: None,
            },
            create,
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address for the picture protocol, or none for no plain TCP port (the original
    /// bare-choice clients need one: they cannot speak TLS).
    #[arg(long, env = "PICTURE_TCP_ADDR", default_value = "127.0.0.1:40674")]
    tcp_addr: String,
    /// Address for the picture protocol over TLS (needs --tls-cert); off unless set.
    #[arg(long, env = "PICTURE_TLS_ADDR", requires = "tls_cert")]
    tls_addr: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Folder of pictures (with an optional catalog.toml) that an empty new database is seeded
    /// from on its first start [default: ./assets if that folder exists; else the database
    /// starts empty].
    #[arg(long, env = "PICTURE_ASSETS")]
    assets: Option<PathBuf>,
    /// The admin token that writes need (uploads, deletes, renames); without one, writes are
    /// disabled. Prefer --admin-token-file or the environment: arguments are visible to
    /// other users of the machine.
    #[arg(
        long,
        env = "PICTURE_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    admin_token: Option<String>,
    /// File holding the admin token (its first line).
    #[arg(long, env = "PICTURE_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Largest picture upload in bytes.
    #[arg(long, env = "PICTURE_MAX_UPLOAD_SIZE", default_value_t = DEFAULT_MAX_UPLOAD_SIZE, value_parser = upload_size)]
    max_upload_size: usize,
    /// Connections served at once; more get a "busy" answer.
    #[arg(long, env = "PICTURE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_connections: usize,
    /// Connections served at once for one client address (IPv6: one /64); more get "busy".
    #[arg(long, env = "PICTURE_MAX_CONNECTIONS_PER_IP", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_connections_per_ip: usize,
    /// Picture server the bridge forwards to over TCP, HOST:PORT [default: none; the bridge
    /// answers from this process's own pictures].
    #[arg(long, env = "PICTURE_UPSTREAM")]
    upstream: Option<String>,
    #[command(flatten)]
    variants: VariantArgs,
    #[command(flatten)]
    web: WebArgs,
}

/// Pictures scaled or converted on request (a GET with a size or a format).
#[derive(Debug, Args)]
struct VariantArgs {
    /// Variants made at once, each on a thread of its own [default: one per core].
    #[arg(long, env = "PICTURE_VARIANT_WORKERS", value_parser = args::within(1usize, 1024))]
    variant_workers: Option<usize>,
    /// Variants that may wait for a free worker; more are answered "busy" [default: 8 per
    /// worker].
    #[arg(long, env = "PICTURE_VARIANT_QUEUE", value_parser = args::within(0usize, 100_000))]
    variant_queue: Option<usize>,
    /// Seconds a variant may take, waiting included; past it the answer is "busy".
    #[arg(long, env = "PICTURE_VARIANT_TIMEOUT", default_value = "10", value_parser = args::seconds)]
    variant_timeout: Duration,
    /// Largest variant in bytes; a larger one is not sent (internal error).
    #[arg(long, env = "PICTURE_MAX_VARIANT_SIZE", default_value_t = variants::DEFAULT_MAX_BYTES, value_parser = args::within(1usize, MAX_PICTURE_BYTES))]
    max_variant_size: usize,
    /// Bytes of variants kept in memory (they are kept in a database store too).
    #[arg(long, env = "PICTURE_VARIANT_CACHE_SIZE", default_value_t = variants::Settings::default().cache_size)]
    variant_cache_size: u64,
}

impl VariantArgs {
    fn settings(&self) -> variants::Settings {
        let defaults = variants::Settings::default();
        let workers = self.variant_workers.unwrap_or(defaults.workers);
        variants::Settings {
            workers,
            queue: self
                .variant_queue
                .unwrap_or(workers * variants::QUEUE_PER_WORKER),
            timeout: self.variant_timeout,
            max_bytes: self.max_variant_size,
            cache_size: self.variant_cache_size,
        }
    }
}

#[derive(Debug, Args)]
struct WebArgs {
    /// Address for the web page and the WebSocket bridge.
    #[arg(long, env = "PICTURE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// PEM file with the certificate chain: the HTTP port serves HTTPS (the bridge wss://),
    /// and --tls-addr the picture protocol over TLS. Read again on SIGHUP.
    #[arg(long, env = "PICTURE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key.
    #[arg(long, env = "PICTURE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Folder with the page and its wasm bundle, served instead of the page built into the
    /// binary (for working on the page).
    #[arg(long, env = "PICTURE_WWW")]
    www: Option<PathBuf>,
    /// Another origin whose pages may use the bridge, e.g. https://pictures.example (repeatable).
    #[arg(
        long = "allow-origin",
        env = "PICTURE_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Seconds a client may take to send a whole request (over TCP, or an HTTP request's
    /// headers); also how long a kept-alive HTTP connection may sit idle.
    #[arg(long, env = "PICTURE_REQUEST_TIMEOUT", default_value = "10", value_parser = args::seconds)]
    request_timeout: Duration,
    /// HTTP connections at once (WebSocket sessions count against --max-ws-sessions); more get
    /// 503.
    #[arg(long, env = "PICTURE_MAX_HTTP_CONNECTIONS", default_value_t = 1024, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_http_connections: usize,
    /// HTTP connections at once from one client address (IPv6: one /64); more get 503.
    #[arg(long, env = "PICTURE_MAX_HTTP_CONNECTIONS_PER_IP", default_value_t = 64, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_http_connections_per_ip: usize,
    /// WebSocket sessions at once; more are refused with 503.
    #[arg(long, env = "PICTURE_MAX_WS_SESSIONS", default_value_t = 256, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_ws_sessions: usize,
    /// WebSocket sessions at once from one client address (IPv6: one /64); more get 503.
    #[arg(long, env = "PICTURE_MAX_WS_SESSIONS_PER_IP", default_value_t = 16, value_parser = args::within(1, MAX_CONNECTIONS))]
    max_ws_sessions_per_ip: usize,
    /// Serve no /metrics (and record none).
    #[arg(long, env = "PICTURE_NO_METRICS")]
    no_metrics: bool,
    /// Address for /metrics, /healthz and /readyz apart from the page, e.g. on an internal
    /// network: /metrics then leaves the HTTP port [default: none; all on --http-addr].
    #[arg(long, env = "PICTURE_ADMIN_ADDR")]
    admin_addr: Option<String>,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, env = "PICTURE_MAX_WS_MESSAGE", default_value_t = 64 * 1024, value_parser = args::within(MIN_WS_MESSAGE, MAX_PICTURE_BYTES))]
    max_ws_message: usize,
    /// Seconds a connection or WebSocket session may sit idle (or not read) before it is closed.
    #[arg(long, env = "PICTURE_IDLE_TIMEOUT", default_value = "60", value_parser = args::seconds)]
    idle_timeout: Duration,
    /// Largest request payload in bytes.
    #[arg(long, env = "PICTURE_MAX_REQUEST_SIZE", default_value_t = MAX_REQUEST_PAYLOAD, value_parser = request_size)]
    max_request_size: usize,
    /// Seconds shutdown waits for transfers in flight.
    #[arg(long, env = "PICTURE_SHUTDOWN_GRACE", default_value = "10", value_parser = args::seconds)]
    shutdown_grace: Duration,
    /// Set from the server's --max-upload-size (a bridge relaying to another server takes no
    /// uploads at all).
    #[arg(skip = DEFAULT_MAX_UPLOAD_SIZE)]
    max_upload_size: usize,
}

fn request_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_REQUEST_PAYLOAD => Ok(n),
        Ok(_) => Err(format!("the protocol's limit is {MAX_REQUEST_PAYLOAD}")),
        Err(e) => Err(e.to_string()),
    }
}

fn upload_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_PICTURE_BYTES => Ok(n),
        Ok(_) => Err(format!(
            "the largest picture the server holds is {MAX_PICTURE_BYTES} bytes"
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picture-server: {}", args::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let command = Cli::command();
    let (argv, from_file) = config::with_file_settings(&command, std::env::args_os().collect())?;
    let matches = command.clone().get_matches_from(argv);
    let cli = Cli::from_arg_matches(&matches)?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            // The object store's client logs each retry; what fails in the end is reported once.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,object_store=warn".into()),
        )
        .with_writer(std::io::stderr);
    match cli.common().log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let shutdown = CancellationToken::new();
    // Installed before anything is served: what is recorded before it is lost (see metrics).
    let (serving, metrics_wanted) = match &cli.command {
        None => (true, !cli.serve.web.no_metrics),
        Some(Command::Bridge { web, .. }) => (true, !web.no_metrics),
        Some(_) => (false, false),
    };
    // For the commands that serve, before anything is served: a SIGTERM as soon as the
    // server says it listens is a graceful stop too. (The others keep the signals' default
    // action: Ctrl-C stops an import or a migration at once, which they are made to survive.)
    let stop_asked = serving.then(picture_server::shutdown::listen);
    let metrics = metrics_wanted
        .then(Exporter::install)
        .transpose()
        .context("cannot set up the metrics")?;
    let tasks = match cli.command {
        None => start_server(cli.serve, metrics, &shutdown).await?,
        Some(Command::Config { .. }) => {
            let (sub, sub_matches) = matches
                .subcommand()
                .and_then(|(name, m)| Some((command.find_subcommand(name)?, m)))
                .context("no config subcommand")?;
            print!("{}", config::describe(sub, sub_matches, &from_file));
            return Ok(());
        }
        Some(Command::Bridge {
            upstream, mut web, ..
        }) => {
            let fitted = fit_to_open_files(ConnectionLimits {
                tcp: 0,
                http: web.max_http_connections,
                ws_sessions: web.max_ws_sessions,
                relayed: true,
            });
            (web.max_http_connections, web.max_ws_sessions) = (fitted.http, fitted.ws_sessions);
            let cert = server_cert(&web)?;
            vec![start_web(&web, Upstream::tcp(upstream), cert, metrics, &shutdown).await?]
        }
        Some(Command::Import { dir, store, .. }) => {
            let store = store.open(None).await?;
            let count = store
                .import(&dir)
                .await
                .with_context(|| format!("importing {}", dir.display()))?;
            println!(
                "picture-server: imported {count} pictures from {}",
                dir.display()
            );
            return Ok(());
        }
        Some(Command::CleanBlobs {
            older_than, store, ..
        }) => {
            anyhow::ensure!(
                store.blobs.is_some(),
                "clean-blobs needs --blobs (PICTURE_BLOBS)"
            );
            let store = store.open_existing().await?;
            let (objects, deleted) = store.clean_blobs(older_than).await?;
            println!("picture-server: {objects} objects, {deleted} no picture needed: deleted");
            return Ok(());
        }
        Some(Command::Migrate {
            from,
            from_blobs,
            to,
            to_blobs,
            ..
        }) => {
            migrate_stores((&from, from_blobs), (&to, to_blobs)).await?;
            return Ok(());
        }
        Some(Command::Export { dir, store, .. }) => {
            let store = store.open_existing().await?;
            let count = export(&store, &dir)
                .await
                .with_context(|| format!("exporting to {}", dir.display()))?;
            println!(
                "picture-server: exported {count} pictures to {}",
                dir.display()
            );
            return Ok(());
        }
    };
    if let Some(stop_asked) = stop_asked {
        stop_asked.await;
    }
    tracing::info!("shutting down: no new connections, finishing transfers in flight");
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    println!("picture-server: stopped");
    Ok(())
}

/// `picture-server migrate`, with a progress bar on a terminal.
async fn migrate_stores(
    from: (&StoreUrl, Option<BlobsUrl>),
    to: (&StoreUrl, Option<BlobsUrl>),
) -> anyhow::Result<()> {
    // Every picture is read once: a cache would only hold on to memory.
    let options = |blobs, create| StoreOptions {
        cache_size: 0,
        blobs,
        create,
        ..StoreOptions::default()
    };
    let source = Store::open(from.0, None, &options(from.1, false))
        .await
        .with_context(|| format!("opening {}", from.0))?;
    let destination = Store::open(to.0, None, &options(to.1, true))
        .await
        .with_context(|| format!("opening {}", to.0))?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} of pictures, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = migrate(&source, &destination, |step| match step {
        Step::Start { bytes, .. } => bar.set_length(bytes),
        Step::Done { bytes } => bar.inc(bytes),
    })
    .await;
    bar.finish_and_clear();
    let done = done.with_context(|| format!("migrating {} to {}", from.0, to.0))?;
    println!(
        "picture-server: {} pictures from {} in {}: {} copied ({} bytes, every one read back \
         and checked), the rest there already; catalog {}",
        done.pictures,
        from.0,
        to.0,
        done.copied,
        done.copied_bytes,
        if done.catalog_changed {
            "written"
        } else {
            "unchanged"
        }
    );
    Ok(())
}

/// The picture server on TCP, and the page with its bridge.
async fn start_server(
    mut args: ServeArgs,
    metrics: Option<Exporter>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    // --max-connections holds for each port of the picture protocol.
    let tcp_ports = usize::from(args.tcp_addr != "none") + usize::from(args.tls_addr.is_some());
    let wanted = ConnectionLimits {
        tcp: args.max_connections * tcp_ports,
        http: args.web.max_http_connections,
        ws_sessions: args.web.max_ws_sessions,
        relayed: args.upstream.is_some(),
    };
    let fitted = fit_to_open_files(wanted);
    args.max_connections = fitted.tcp / tcp_ports.max(1);
    (args.web.max_http_connections, args.web.max_ws_sessions) = (fitted.http, fitted.ws_sessions);
    let token = match (&args.admin_token, &args.admin_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("admin token file {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        (None, None) => None,
    };
    let token = match token.as_deref().map(str::trim) {
        Some(text) => {
            anyhow::ensure!(
                text.len() <= MAX_TOKEN_LEN,
                "the admin token is {} bytes long; clients can present at most {MAX_TOKEN_LEN}",
                text.len()
            );
            if text.len() < MIN_GOOD_TOKEN_LEN {
                tracing::warn!(
                    "the admin token is shorter than {MIN_GOOD_TOKEN_LEN} characters: easy to guess"
                );
            }
            Some(AdminToken::new(text).context("the admin token is empty")?)
        }
        None => None,
    };
    let seed = match &args.assets {
        Some(dir) if !dir.is_dir() => anyhow::bail!("--assets {}: no such folder", dir.display()),
        Some(dir) => Some(dir.clone()),
        None => Some(PathBuf::from(DEFAULT_ASSETS)).filter(|dir| dir.is_dir()),
    };
    let cert = server_cert(&args.web)?;
    let store = args.store.open(seed).await?;
    // The picture protocol's ports: plain, over TLS, or both.
    let mut ports = Vec::new();
    if args.tcp_addr != "none" {
        ports.push(("tcp", listen(&args.tcp_addr).await?, None));
    }
    if let (Some(addr), Some(cert)) = (&args.tls_addr, &cert) {
        ports.push(("tls", listen(addr).await?, Some(cert.acceptor(&[])?)));
    }
    anyhow::ensure!(
        !ports.is_empty(),
        "--tcp-addr none and no --tls-addr: the picture protocol would have no port"
    );
    let listening = ports
        .iter()
        .map(|(scheme, listener, _)| Ok(format!("{scheme}://{}", listener.local_addr()?)))
        .collect::<std::io::Result<Vec<_>>>()?
        .join(", ");
    let writes = match (&token, store.is_writable()) {
        (Some(_), true) => "writes need the admin token",
        (None, true) => "writes disabled (no admin token)",
        (_, false) => "read-only",
    };
    println!(
        "picture-server: {} pictures in {}, {writes}; listening on {listening}",
        store.catalog().len(),
        args.store.store,
    );
    if store.catalog().is_empty() {
        tracing::warn!("no pictures yet: every request will get the not-found picture");
    }
    let limits = Limits {
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        idle_timeout: args.web.idle_timeout,
        request_timeout: args.web.request_timeout,
        max_request_payload: args.web.max_request_size,
        shutdown_grace: args.web.shutdown_grace,
        max_upload_size: args.max_upload_size,
    };
    let service = Arc::new(Service::with_variants(
        Arc::new(store),
        token,
        args.variants.settings(),
    ));
    let upstream = match args.upstream {
        Some(addr) => Upstream::tcp(addr),
        None => Upstream::local(service.clone()),
    };
    let mut web_args = args.web;
    web_args.max_upload_size = limits.max_upload_size;
    let mut tasks: Vec<JoinHandle<()>> = ports
        .into_iter()
        .map(|(_, listener, tls)| {
            tokio::spawn(picture_server::serve(
                listener,
                tls,
                service.clone(),
                limits.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    tasks.push(start_web(&web_args, upstream, cert, metrics, shutdown).await?);
    Ok(tasks)
}

async fn listen(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// The TLS certificate and key, if given, read again on each SIGHUP (a pair that cannot be
/// used leaves the one in use, with a warning).
fn server_cert(args: &WebArgs) -> anyhow::Result<Option<Arc<ServerCert>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let loaded = ServerCert::load(cert, key)?;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
        let reloading = loaded.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match reloading.reload() {
                    Ok(()) => tracing::info!("TLS certificate and key read again"),
                    Err(e) => {
                        tracing::warn!("TLS certificate not replaced (the one in use stays): {e}")
                    }
                }
            }
        });
    }
    Ok(Some(loaded))
}

/// Raises the soft limit on open files as far as the hard limit allows, and lowers the
/// connection limits (saying so) if they still need more: otherwise accept would fail once
/// the descriptors run out, and clients would hang with no answer at all.
fn fit_to_open_files(wanted: ConnectionLimits) -> ConnectionLimits {
    let available = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(available) => available,
        Err(e) => {
            tracing::warn!("cannot read the limit on open files: {e}");
            return wanted;
        }
    };
    let Some(fitted) = wanted.fitted_to(available) else {
        return wanted;
    };
    let tcp = match fitted.tcp {
        0 => String::new(),
        n => format!("{n} TCP connections, "),
    };
    eprintln!(
        "picture-server: only {available} open files allowed, {} needed: serving at most {tcp}{} \
         HTTP connections and {} WebSocket sessions (raise the limit, e.g. `ulimit -n {}`, for \
         the configured ones)",
        wanted.descriptors(),
        fitted.http,
        fitted.ws_sessions,
        wanted.descriptors(),
    );
    fitted
}

async fn start_web(
    args: &WebArgs,
    upstream: Upstream,
    cert: Option<Arc<ServerCert>>,
    metrics: Option<Exporter>,
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    let addr = listener.local_addr()?;
    let site = args.www.clone().map_or(Site::Builtin, Site::Folder);
    if !site.has_bundle() {
        tracing::warn!(
            "{site} has no pkg/ bundle: the page will not work (build it with scripts/build-web)"
        );
    }
    let tls = cert.map(|cert| cert.acceptor(&[b"http/1.1"])).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("picture-server: page at {scheme}://{addr}/ (bridge to {upstream})");
    let (metrics, admin) = match &args.admin_addr {
        None => (metrics, None),
        Some(admin_addr) => {
            let listener = TcpListener::bind(admin_addr)
                .await
                .with_context(|| format!("cannot listen on {admin_addr}"))?;
            println!(
                "picture-server: metrics and health at http://{}/",
                listener.local_addr()?
            );
            let config = AdminConfig {
                metrics,
                upstream: upstream.clone(),
                request_timeout: args.request_timeout,
                stall_timeout: args.idle_timeout,
                shutdown_grace: args.shutdown_grace,
            };
            (None, Some(serve_admin(listener, config, shutdown.clone())))
        }
    };
    let config = WebConfig {
        site,
        metrics,
        tls,
        bridge: BridgeConfig {
            upstream,
            idle_timeout: args.idle_timeout,
            max_request_payload: args.max_request_size,
            max_upload_size: args.max_upload_size,
        },
        origins: OriginPolicy::new(args.allow_origins.iter().cloned()),
        max_connections: args.max_http_connections,
        max_connections_per_ip: args.max_http_connections_per_ip,
        request_timeout: args.request_timeout,
        max_sessions: args.max_ws_sessions,
        max_sessions_per_ip: args.max_ws_sessions_per_ip,
        max_message: args.max_ws_message,
        shutdown_grace: args.shutdown_grace,
    };
    let web = serve_web(listener, config, shutdown.clone());
    Ok(tokio::spawn(async move {
        match admin {
            Some(admin) => drop(tokio::join!(web, admin)),
            None => web.await,
        }
    }))
}
