//! `picture-server`: serves the pictures of a folder over TCP, and the browser page with its
//! WebSocket bridge over HTTP.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use picture_protocol::MAX_REQUEST_PAYLOAD;
use picture_server::Limits;
use picture_server::store::FolderStore;
use picture_server::web::{BridgeConfig, OriginPolicy, Upstream, WebConfig, serve_web};
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve only the page and the WebSocket bridge, for a picture server elsewhere.
    Bridge {
        /// The picture server to forward to, HOST:PORT.
        #[arg(long, env = "PICTURE_UPSTREAM")]
        upstream: String,
        #[command(flatten)]
        web: WebArgs,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address for the picture protocol.
    #[arg(long, env = "PICTURE_TCP_ADDR", default_value = "127.0.0.1:40674")]
    tcp_addr: String,
    /// Folder of pictures (with an optional catalog.toml).
    #[arg(long, env = "PICTURE_ASSETS", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))]
    assets: PathBuf,
    /// Connections served at once; more get a "busy" answer.
    #[arg(long, env = "PICTURE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Picture server the bridge forwards to over TCP, HOST:PORT [default: none; the bridge
    /// answers from this process's own pictures].
    #[arg(long, env = "PICTURE_UPSTREAM")]
    upstream: Option<String>,
    #[command(flatten)]
    web: WebArgs,
}

#[derive(Debug, Args)]
struct WebArgs {
    /// Address for the web page and the WebSocket bridge.
    #[arg(long, env = "PICTURE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// Folder with the page and its wasm bundle.
    #[arg(long, env = "PICTURE_WWW", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))]
    www: PathBuf,
    /// Another origin whose pages may use the bridge, e.g. https://pictures.example (repeatable).
    #[arg(
        long = "allow-origin",
        env = "PICTURE_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Seconds a client may take to send a whole request (over TCP, or an HTTP request's
    /// headers); also how long a kept-alive HTTP connection may sit idle.
    #[arg(long, env = "PICTURE_REQUEST_TIMEOUT", default_value = "10", value_parser = seconds)]
    request_timeout: Duration,
    /// HTTP connections at once (WebSocket sessions count against --max-ws-sessions); more are
    /// closed.
    #[arg(long, env = "PICTURE_MAX_HTTP_CONNECTIONS", default_value_t = 1024)]
    max_http_connections: usize,
    /// WebSocket sessions at once; more are refused with 503.
    #[arg(long, env = "PICTURE_MAX_WS_SESSIONS", default_value_t = 256)]
    max_ws_sessions: usize,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, env = "PICTURE_MAX_WS_MESSAGE", default_value_t = 64 * 1024)]
    max_ws_message: usize,
    /// Seconds a connection or WebSocket session may sit idle (or not read) before it is closed.
    #[arg(long, env = "PICTURE_IDLE_TIMEOUT", default_value = "60", value_parser = seconds)]
    idle_timeout: Duration,
    /// Largest request payload in bytes.
    #[arg(long, env = "PICTURE_MAX_REQUEST_SIZE", default_value_t = MAX_REQUEST_PAYLOAD, value_parser = request_size)]
    max_request_size: usize,
    /// Seconds shutdown waits for transfers in flight.
    #[arg(long, env = "PICTURE_SHUTDOWN_GRACE", default_value = "10", value_parser = seconds)]
    shutdown_grace: Duration,
}

fn request_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_REQUEST_PAYLOAD => Ok(n),
        Ok(_) => Err(format!("the protocol's limit is {MAX_REQUEST_PAYLOAD}")),
        Err(e) => Err(e.to_string()),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    let tasks = match cli.command {
        None => start_server(cli.serve, &shutdown).await?,
        Some(Command::Bridge { upstream, web }) => {
            vec![start_web(&web, Upstream::tcp(upstream), &shutdown).await?]
        }
    };
    picture_server::shutdown::signal().await;
    tracing::info!("shutting down: no new connections, finishing transfers in flight");
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    println!("picture-server: stopped");
    Ok(())
}

/// The picture server on TCP, and the page with its bridge.
async fn start_server(
    args: ServeArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let assets = std::fs::canonicalize(&args.assets)
        .with_context(|| format!("assets folder {}", args.assets.display()))?;
    let shown = assets.display().to_string();
    let store = tokio::task::spawn_blocking(move || FolderStore::load(&assets))
        .await
        .context("loading pictures")??;
    let listener = TcpListener::bind(&args.tcp_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.tcp_addr))?;
    let addr = listener.local_addr()?;
    println!(
        "picture-server: {} pictures from {shown}; listening on tcp://{addr}",
        store.len()
    );
    if store.is_empty() {
        tracing::warn!("no pictures loaded: every request will get the not-found picture");
    }
    let limits = Limits {
        max_connections: args.max_connections,
        idle_timeout: args.web.idle_timeout,
        request_timeout: args.web.request_timeout,
        max_request_payload: args.web.max_request_size,
        shutdown_grace: args.web.shutdown_grace,
    };
    let store = Arc::new(store);
    let upstream = match args.upstream {
        Some(addr) => Upstream::tcp(addr),
        None => Upstream::local(store.clone()),
    };
    let tcp = tokio::spawn(picture_server::serve(
        listener,
        store,
        limits,
        shutdown.clone(),
    ));
    let web = start_web(&args.web, upstream, shutdown).await?;
    Ok(vec![tcp, web])
}

async fn start_web(
    args: &WebArgs,
    upstream: Upstream,
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    let addr = listener.local_addr()?;
    if !args.www.join("pkg").is_dir() {
        tracing::warn!(
            "{} has no pkg/ bundle: the page will not work (build it with scripts/build-web)",
            args.www.display()
        );
    }
    println!("picture-server: page at http://{addr}/ (bridge to {upstream})");
    let config = WebConfig {
        www: args.www.clone(),
        bridge: BridgeConfig {
            upstream,
            idle_timeout: args.idle_timeout,
            max_request_payload: args.max_request_size,
        },
        origins: OriginPolicy::new(args.allow_origins.iter().cloned()),
        max_connections: args.max_http_connections,
        request_timeout: args.request_timeout,
        max_sessions: args.max_ws_sessions,
        max_message: args.max_ws_message,
        shutdown_grace: args.shutdown_grace,
    };
    let shutdown = shutdown.clone();
    Ok(tokio::spawn(serve_web(listener, config, shutdown)))
}
