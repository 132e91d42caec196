//! Bare-choice load, the original client's way: a new TCP connection for every request, the
//! choice sent as text, the picture read until the server closes.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use picture_protocol::MAX_RESPONSE_BODY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep, timeout, timeout_at};

use crate::plan::{Job, MAX_FAILURES_IN_A_ROW, Plan, backoff};
use crate::stream::{IO_TIMEOUT, connect_tcp};
use crate::tally::Tally;

/// Sends bare requests one after another until the plan ends. Latency runs from the start of
/// the connect, since a bare client pays for a connection with every picture.
pub async fn run(job: Arc<Job>, plan: Arc<Plan>, mut tally: Tally) -> Tally {
    // One buffer for every body: it grows to the picture's size once.
    let mut body = Vec::new();
    let work = async {
        let mut failures_in_a_row = 0;
        loop {
            let sent = Instant::now();
            let Some(measured) = plan.take(sent) else {
                return;
            };
            match fetch(job.target.addr(), job.choice.as_bytes(), &mut body).await {
                Ok(()) => {
                    failures_in_a_row = 0;
                    let at = Instant::now();
                    if measured && plan.in_window(at) {
                        let matches = body == job.reference.bytes;
                        tally.answer(at - sent, body.len(), matches, at);
                    }
                }
                Err(error) => {
                    tally.error(&error);
                    if measured {
                        plan.give_back(1);
                    }
                    failures_in_a_row += 1;
                    if failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                        return;
                    }
                    sleep(backoff(failures_in_a_row)).await;
                }
            }
        }
    };
    match plan.until {
        Some(until) => {
            let _ = timeout_at(until, work).await;
        }
        None => work.await,
    }
    tally
}

/// One bare request: connects, sends `choice` and reads into `body` until the server closes.
/// An empty answer is an error: it is how a bare server says it cannot answer.
pub async fn fetch(addr: &str, choice: &[u8], body: &mut Vec<u8>) -> anyhow::Result<()> {
    body.clear();
    let mut socket = connect_tcp(addr).await?;
    socket.write_all(choice).await?;
    // One byte over the limit tells a too-long answer from one exactly at it.
    let limit = u64::from(MAX_RESPONSE_BODY) + 1;
    timeout(IO_TIMEOUT, (&mut socket).take(limit).read_to_end(body))
        .await
        .map_err(|_| anyhow!("the answer took longer than {IO_TIMEOUT:?}"))??;
    if body.len() as u64 == limit {
        bail!("the answer is longer than {MAX_RESPONSE_BODY} bytes");
    }
    if body.is_empty() {
        bail!("the server closed the connection without answering");
    }
    Ok(())
}
