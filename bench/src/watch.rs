//! `--watch`: how long an upload takes to reach the watchers of another server on the same
//! store. A connection to that server WATCHes its catalog and notes when each change notice
//! arrives; the (single) upload connection notes when each upload was answered. Both come in
//! commit order, so the n-th answer goes with the next notice of the same content.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use hdrhistogram::Histogram;
use picture_protocol::{Change, Command, Kind, Request};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::conn::Conn;
use crate::stream::Target;

/// Notices or answers noted at most; a longer run stops noting (and reports fewer).
pub const MAX_NOTED: usize = 1_000_000;

/// One upload's answer: the content stored, when the answer arrived, and whether it was in
/// the measured phase.
#[derive(Clone, Copy)]
pub struct Answered {
    pub sha256: [u8; 32],
    pub at: Instant,
    pub measured: bool,
}

/// Where the upload connection notes its answers.
pub type Answers = Arc<Mutex<Vec<Answered>>>;

/// Notes `answer`, unless [`MAX_NOTED`] are noted already.
pub fn note(answers: &Answers, answer: Answered) {
    if let Ok(mut noted) = answers.lock()
        && noted.len() < MAX_NOTED
    {
        noted.push(answer);
    }
}

/// Notices noted: the content each announced, and when it arrived.
type Notices = Arc<Mutex<Vec<([u8; 32], Instant)>>>;

/// The watching connection, noting notices as they arrive.
pub struct Watch {
    notices: Notices,
    task: JoinHandle<()>,
}

impl Watch {
    pub async fn start(target: &Target) -> anyhow::Result<Watch> {
        let mut conn = Conn::connect(target, None).await?;
        let watch = Request {
            id: 1,
            command: Command::Watch,
        };
        conn.call(&watch)
            .await
            .context("WATCH on the watched server")?;
        let notices = Notices::default();
        let noted = Arc::clone(&notices);
        let task = tokio::spawn(async move {
            // Ends with the connection, or when the run is over and the task is stopped.
            while conn.receive().await.is_ok() {
                let at = conn.received_at();
                while let Some((head, body)) = conn.front() {
                    let sha256 = (head.kind == Some(Kind::Change))
                        .then(|| Change::decode(body).ok()?.picture.map(|p| p.sha256))
                        .flatten();
                    if let (Some(sha256), Ok(mut noted)) = (sha256, noted.lock())
                        && noted.len() < MAX_NOTED
                    {
                        noted.push((sha256, at));
                    }
                    conn.consume();
                }
            }
        });
        Ok(Watch { notices, task })
    }

    /// Stops watching once every answer has its notice, or after `patience`; matches them.
    pub async fn finish(
        self,
        answers: &[Answered],
        patience: std::time::Duration,
    ) -> anyhow::Result<Propagation> {
        let deadline = Instant::now() + patience;
        loop {
            let propagation = {
                let notices = self
                    .notices
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?;
                match_up(answers, &notices)?
            };
            if propagation.missing == 0 || Instant::now() >= deadline {
                self.task.abort();
                return Ok(propagation);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// How long measured uploads took to be announced on the watched server.
pub struct Propagation {
    /// Measured uploads, and those whose notice never came.
    pub uploads: u64,
    pub missing: u64,
    /// Notices that arrived before the upload's answer (counted as 0).
    pub early: u64,
    /// Microseconds from each answer to its notice.
    pub delay: Histogram<u64>,
}

fn match_up(answers: &[Answered], notices: &[([u8; 32], Instant)]) -> anyhow::Result<Propagation> {
    let mut propagation = Propagation {
        uploads: 0,
        missing: 0,
        early: 0,
        delay: Histogram::new(3).context("cannot create a histogram")?,
    };
    let mut next = 0;
    for answer in answers {
        let found = notices[next..]
            .iter()
            .position(|(sha256, _)| *sha256 == answer.sha256)
            .map(|offset| next + offset);
        if let Some(index) = found {
            next = index + 1;
        }
        if !answer.measured {
            continue;
        }
        propagation.uploads += 1;
        match found {
            Some(index) => {
                let at = notices[index].1;
                if at < answer.at {
                    propagation.early += 1;
                }
                let micros = at.saturating_duration_since(answer.at).as_micros();
                propagation
                    .delay
                    .record(u64::try_from(micros).unwrap_or(u64::MAX))
                    .context("cannot record a delay")?;
            }
            None => propagation.missing += 1,
        }
    }
    Ok(propagation)
}
