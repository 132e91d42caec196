//! Framed-mode load, of GETs or of PAGEs: one persistent connection per task, kept
//! `--pipeline` requests deep, every answer compared with the reference.
//!
//! The task alternates between reading and sending: once a read completes answers, it sends
//! as many new requests in one write, then checks those answers. So each read of a busy
//! connection is answered by one batch of requests, as a real pipelining client would.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::bail;
use picture_protocol::{Request, ResponseHead, Status};
use tokio::time::{Instant, sleep, timeout_at};

use crate::conn::Conn;
use crate::plan::{Job, MAX_FAILURES_IN_A_ROW, Plan, backoff};
use crate::tally::Tally;

/// A request sent and not yet answered.
struct InFlight {
    id: u32,
    sent: Instant,
    measured: bool,
}

struct Worker {
    job: Arc<Job>,
    /// Which of the run's connections this is.
    slot: usize,
    plan: Arc<Plan>,
    tally: Tally,
    /// The request sent over and over (a GET or a PAGE), its id changed each time.
    request: Request,
    /// Answers come in request order, so the oldest request is the one answered next.
    in_flight: VecDeque<InFlight>,
    failures_in_a_row: u32,
}

/// Runs one connection's load until the plan ends, reconnecting after errors; `conn` was
/// opened beforehand so that connecting is not part of the measurement.
pub async fn run(conn: Conn, slot: usize, job: Arc<Job>, plan: Arc<Plan>, tally: Tally) -> Tally {
    let command = job.command_for(slot).clone();
    let mut worker = Worker {
        in_flight: VecDeque::with_capacity(job.pipeline),
        slot,
        job,
        plan: Arc::clone(&plan),
        tally,
        request: Request { id: 0, command },
        failures_in_a_row: 0,
    };
    let work = worker.run(conn);
    match plan.until {
        // A timed run ends at its deadline, with whatever is in flight left unanswered.
        Some(until) => {
            let _ = timeout_at(until, work).await;
        }
        None => work.await,
    }
    worker.tally
}

impl Worker {
    async fn run(&mut self, first: Conn) {
        let mut next = Ok(first);
        loop {
            let result = match next {
                Ok(mut conn) => self.drive(&mut conn).await,
                Err(e) => Err(e),
            };
            let Err(error) = result else {
                return;
            };
            self.tally.error(&error);
            let lost = self.in_flight.drain(..).filter(|r| r.measured).count();
            self.plan.give_back(lost as u64);
            self.failures_in_a_row += 1;
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                return;
            }
            sleep(backoff(self.failures_in_a_row)).await;
            next = Conn::connect(&self.job.target, self.job.ws_protocol.as_deref()).await;
        }
    }

    /// Keeps the pipeline full on one connection until the plan has no more requests and
    /// every one sent is answered.
    async fn drive(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        loop {
            // Answers that have arrived no longer keep the server busy: replace them before
            // checking them, so that the server is not left idle while large bodies are
            // compared (with one connection and one request in flight, that idle time would
            // otherwise be a good part of the measurement).
            let ready = conn.ready();
            self.top_up(conn, ready).await?;
            if self.in_flight.is_empty() {
                return Ok(());
            }
            if ready == 0 {
                conn.receive().await?;
                continue;
            }
            let at = conn.received_at();
            while let Some((head, body)) = conn.front() {
                self.check(head, body, at)?;
                conn.consume();
            }
        }
    }

    /// Sends, in one write, as many requests as the plan allows to have `--pipeline` requests
    /// at the server besides the `answered` ones whose answers have arrived.
    async fn top_up(&mut self, conn: &mut Conn, answered: usize) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut queued = false;
        while self.in_flight.len().saturating_sub(answered) < self.job.pipeline {
            let Some(measured) = self.plan.take(now) else {
                break;
            };
            self.request.id = self.request.id.wrapping_add(1).max(1);
            self.in_flight.push_back(InFlight {
                id: self.request.id,
                sent: now,
                measured,
            });
            conn.queue(&self.request)?;
            queued = true;
        }
        if queued {
            conn.flush().await?;
        }
        Ok(())
    }

    /// Checks one answer against the oldest request in flight and the reference picture.
    fn check(&mut self, head: &ResponseHead, body: &[u8], at: Instant) -> anyhow::Result<()> {
        let Some(request) = self.in_flight.front() else {
            bail!("the server sent an answer (id {}) to no request", head.id);
        };
        if head.id != request.id {
            bail!(
                "the server answered request {} while {} was the oldest in flight",
                head.id,
                request.id
            );
        }
        if head.status != Status::Ok {
            bail!(
                "the server answered {}: {:.200}",
                head.status.describe(),
                String::from_utf8_lossy(body)
            );
        }
        let kind = self.request.command.kind();
        if head.kind != Some(kind) {
            bail!("the server answered a {} as {:?}", kind.name(), head.kind);
        }
        self.failures_in_a_row = 0;
        if request.measured && self.plan.in_window(at) {
            let matches = body == self.job.reference_for(self.slot);
            self.tally
                .answer(at - request.sent, body.len(), matches, at);
        }
        self.in_flight.pop_front();
        Ok(())
    }
}
