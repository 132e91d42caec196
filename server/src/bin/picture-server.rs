//! `picture-server`: serves the pictures of a folder over TCP.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use picture_protocol::MAX_REQUEST_PAYLOAD;
use picture_server::Limits;
use picture_server::store::FolderStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Serves pictures over TCP, to framed and bare-choice clients"
)]
struct Args {
    /// Address for the picture protocol.
    #[arg(long, env = "PICTURE_TCP_ADDR", default_value = "127.0.0.1:40674")]
    tcp_addr: String,
    /// Folder of pictures (with an optional catalog.toml).
    #[arg(long, env = "PICTURE_ASSETS", default_value = default_assets())]
    assets: PathBuf,
    /// Connections served at once; more get a "busy" answer.
    #[arg(long, env = "PICTURE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection may sit idle (or not read) before it is closed.
    #[arg(long, env = "PICTURE_IDLE_TIMEOUT", default_value = "60", value_parser = seconds)]
    idle_timeout: Duration,
    /// Seconds a client may take to send a whole request.
    #[arg(long, env = "PICTURE_REQUEST_TIMEOUT", default_value = "10", value_parser = seconds)]
    request_timeout: Duration,
    /// Largest request payload in bytes.
    #[arg(long, env = "PICTURE_MAX_REQUEST_SIZE", default_value_t = MAX_REQUEST_PAYLOAD,
          value_parser = request_size)]
    max_request_size: usize,
    /// Seconds shutdown waits for transfers in flight.
    #[arg(long, env = "PICTURE_SHUTDOWN_GRACE", default_value = "10", value_parser = seconds)]
    shutdown_grace: Duration,
}

/// The repository's `assets/` folder, so `cargo run` serves the shipped pictures from anywhere.
fn default_assets() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")
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
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

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
        "picture-server: {} pictures from {}; listening on tcp://{addr}",
        store.len(),
        shown
    );
    if store.is_empty() {
        tracing::warn!("no pictures loaded: every request will get the not-found picture");
    }

    let limits = Limits {
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout,
        request_timeout: args.request_timeout,
        max_request_payload: args.max_request_size,
        shutdown_grace: args.shutdown_grace,
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(picture_server::serve(
        listener,
        Arc::new(store),
        limits,
        shutdown.clone(),
    ));
    picture_server::shutdown::signal().await;
    tracing::info!("shutting down: no new connections, finishing transfers in flight");
    shutdown.cancel();
    server.await?;
    println!("picture-server: stopped");
    Ok(())
}
