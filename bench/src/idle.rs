//! `--idle`: many open, quiet connections instead of load, to measure what each one costs the
//! server in memory.

use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, stream};
use picture_protocol::{Command, Request};

use crate::conn::{Conn, OPEN_CONCURRENCY};
use crate::stream::Target;

/// Opens `count` framed connections and PINGs each, so that every one has been accepted and
/// served; holds them for `hold`; then PINGs each again and returns how many answered.
pub async fn run(
    target: &Target,
    ws_protocol: Option<&str>,
    count: usize,
    hold: Duration,
) -> anyhow::Result<usize> {
    let opened: Vec<anyhow::Result<Conn>> = stream::iter(0..count)
        .map(|_| async {
            let mut conn = Conn::connect(target, ws_protocol).await?;
            ping(&mut conn, 1).await?;
            Ok(conn)
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    let mut conns = Vec::with_capacity(count);
    let mut first_error = None;
    for result in opened {
        match result {
            Ok(conn) => conns.push(conn),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(error) = first_error {
        if conns.is_empty() {
            return Err(error.context("no connection could be opened"));
        }
        eprintln!(
            "picture-bench: {} of {count} connections failed: {error:#}",
            count - conns.len()
        );
    }
    // A script samples the server's memory when it sees this line.
    eprintln!("holding {} connections", conns.len());
    tokio::time::sleep(hold).await;
    let alive = stream::iter(conns)
        .map(|mut conn| async move { ping(&mut conn, 2).await.is_ok() })
        .buffer_unordered(OPEN_CONCURRENCY)
        .filter(|alive| std::future::ready(*alive))
        .count()
        .await;
    Ok(alive)
}

async fn ping(conn: &mut Conn, id: u32) -> anyhow::Result<()> {
    let request = Request {
        id,
        command: Command::Ping,
    };
    conn.call(&request).await.context("PING failed")?;
    Ok(())
}
