//! Upload load: persistent, authorised connections that each PUT a picture over and over, one
//! upload at a time, every answer checked against what was sent.
//!
//! Every upload must be content the server does not hold, or it would skip writing the bytes
//! (see `variants`). Each connection has a name of its own, `PREFIX-N`, which every upload
//! replaces, and alternates between two variants of its own: the content a PUT brings is
//! never the content it replaces, nor held by any other name, so none is deduplicated. Since
//! each upload replaces the last, the store stays the size it was and a run can be repeated
//! as often as wanted; the variants come from a random start, so a repeated run does not meet
//! the content of the one before either.
//!
//! Before the clock starts, the file is uploaded once as it is and read back: the server
//! removes metadata, so the variants are made from the bytes it stored, and every answer can
//! then be checked against the SHA-256 of the exact bytes sent.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures_util::{StreamExt, TryStreamExt, stream};
use picture_protocol::{
    Command, GetRequest, Kind, MAX_TOKEN_LEN, PictureInfo, PutRequest, Request, Selector, Status,
    Variant, decode_catalog,
};
use sha2::{Digest, Sha256};
use tokio::time::{Instant, sleep, timeout, timeout_at};

use crate::conn::{Conn, OPEN_CONCURRENCY};
use crate::plan::{MAX_FAILURES_IN_A_ROW, Plan, backoff};
use crate::reference::{Reference, Source};
use crate::stream::Target;
use crate::tally::Tally;
use crate::variants::{self, Jpeg};
use crate::watch::{self, Answered, Answers};

/// How long to look for the server's answer after it stopped reading an upload.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// One picture to upload and the SHA-256 the server must answer with.
struct Content {
    bytes: Vec<u8>,
    sha256: [u8; 32],
}

impl Content {
    fn new(bytes: Vec<u8>) -> Content {
        Content {
            sha256: Sha256::digest(&bytes).into(),
            bytes,
        }
    }
}

/// What every connection uploads; shared by all of them.
pub struct Job {
    pub target: Target,
    token: Vec<u8>,
    /// For each connection: its name, and the two variants it alternates between.
    slots: Vec<(String, [Content; 2])>,
    /// With `--watch`: where every answer is noted.
    pub answers: Option<Answers>,
}

/// Reads the file, uploads it once as it is and reads back what the server stored, and makes
/// two variants of that per connection. Returns the job and the stored file as the reference.
pub async fn prepare(
    target: Target,
    token: &str,
    file: &Path,
    prefix: &str,
    connections: usize,
) -> anyhow::Result<(Job, Reference)> {
    ensure!(
        matches!(target, Target::Tcp { .. }),
        "upload mode needs a tcp:// server"
    );
    ensure!(
        !token.is_empty() && token.len() <= MAX_TOKEN_LEN,
        "the admin token must be 1 to {MAX_TOKEN_LEN} bytes"
    );
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Refused before anything is sent, and again below on what the server stored.
    Jpeg::parse(bytes.clone()).with_context(|| format!("{}", file.display()))?;
    let token = token.as_bytes().to_vec();
    let names: Vec<String> = (1..=connections).map(|n| format!("{prefix}-{n}")).collect();
    let first = &names[0];

    let mut conn = connect(&target, &token).await?;
    let answer = conn
        .call_with(&put(2, first, bytes.len()), &bytes)
        .await
        .with_context(|| format!("the first upload of {} failed", file.display()))?;
    let stored = entry(&answer)?;
    let get = Command::Get(GetRequest {
        selector: Selector::Name(first.clone()),
        variant: Variant::default(),
    });
    let stored_bytes = conn
        .call(&Request {
            id: 3,
            command: get,
        })
        .await
        .with_context(|| format!("reading back {first} failed"))?;
    ensure!(
        stored_bytes.len() == stored.size as usize
            && Sha256::digest(&stored_bytes).as_slice() == stored.sha256,
        "the server sent {first} back different from what it said it stored"
    );
    let jpeg = Jpeg::parse(stored_bytes).context("the picture as the server stored it")?;

    let start = RandomState::new().hash_one(prefix) % variants::COUNT;
    let slots = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let n = start + 2 * i as u64;
            let pair = [n, n + 1].map(|n| Content::new(jpeg.variant(n)));
            (name, pair)
        })
        .collect();
    let reference = Reference {
        name: file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        bytes: jpeg.bytes().to_vec(),
        source: Source::Upload,
    };
    let job = Job {
        target,
        token,
        slots,
        answers: None,
    };
    Ok((job, reference))
}

/// Opens one authorised connection per slot, before the clock starts: connecting is not what
/// an upload costs.
pub async fn open(job: &Job) -> anyhow::Result<Vec<Conn>> {
    stream::iter(0..job.slots.len())
        .map(|_| connect(&job.target, &job.token))
        .buffered(OPEN_CONCURRENCY)
        .try_collect()
        .await
}

/// A new connection that has presented the admin token.
async fn connect(target: &Target, token: &[u8]) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(target, None).await?;
    let auth = Request {
        id: 1,
        command: Command::Auth(token.to_vec().into()),
    };
    conn.call(&auth).await.context("AUTH failed")?;
    Ok(conn)
}

/// A PUT of `size` bytes replacing `name`, keeping its title (or making one from the name).
fn put(id: u32, name: &str, size: usize) -> Request {
    Request {
        id,
        command: Command::Put(PutRequest {
            name: name.to_owned(),
            title: String::new(),
            replace: true,
            // Files this large are refused by the server from the header anyway.
            size: u32::try_from(size).unwrap_or(u32::MAX),
        }),
    }
}

/// The one entry of a PUT's answer.
fn entry(body: &[u8]) -> anyhow::Result<PictureInfo> {
    let mut entries = decode_catalog(body).context("the server's answer to a PUT")?;
    match entries.pop() {
        Some(entry) if entries.is_empty() => Ok(entry),
        _ => bail!(
            "the server answered a PUT with {} entries instead of one",
            entries.len() + 1
        ),
    }
}

struct Worker {
    job: Arc<Job>,
    plan: Arc<Plan>,
    tally: Tally,
    /// Which connection this is: its name and variants.
    slot: usize,
    /// Which of its two variants goes next.
    turn: usize,
    id: u32,
    failures_in_a_row: u32,
}

/// Uploads on one connection until the plan ends, reconnecting (and authorising again) after
/// errors; `conn` was opened beforehand.
pub async fn run(conn: Conn, slot: usize, job: Arc<Job>, plan: Arc<Plan>, tally: Tally) -> Tally {
    let mut worker = Worker {
        job,
        plan: Arc::clone(&plan),
        tally,
        slot,
        turn: 0,
        id: 1,
        failures_in_a_row: 0,
    };
    let work = worker.run(conn);
    match plan.until {
        // A timed run ends at its deadline, with the upload in flight left unanswered.
        Some(until) => {
            let _ = timeout_at(until, work).await;
        }
        None => work.await,
    }
    worker.tally
}

impl Worker {
    async fn run(&mut self, first: Conn) {
        let mut conn = Some(first);
        loop {
            let sent = Instant::now();
            let Some(measured) = self.plan.take(sent) else {
                return;
            };
            let result = match conn.as_mut() {
                Some(open) => self.upload(open, sent, measured).await,
                None => match connect(&self.job.target, &self.job.token).await {
                    Ok(open) => {
                        let open = conn.insert(open);
                        // Latency counts from here: reconnecting is the error's cost.
                        self.upload(open, Instant::now(), measured).await
                    }
                    Err(e) => Err(Failure::Error(e)),
                },
            };
            let Err(failure) = result else {
                self.failures_in_a_row = 0;
                continue;
            };
            match failure {
                // The server closes the connection after refusing an upload.
                Failure::Busy => self.tally.busy += 1,
                Failure::Error(error) => self.tally.error(&error),
            }
            conn = None;
            if measured {
                self.plan.give_back(1);
            }
            self.failures_in_a_row += 1;
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                return;
            }
            sleep(backoff(self.failures_in_a_row)).await;
        }
    }

    /// One upload and its answer, checked.
    async fn upload(
        &mut self,
        conn: &mut Conn,
        sent: Instant,
        measured: bool,
    ) -> Result<(), Failure> {
        match self.try_upload(conn, sent, measured).await? {
            Status::Busy => Err(Failure::Busy),
            _ => Ok(()),
        }
    }

    /// [`Worker::upload`], returning the answer's status: *ok*, or *busy* (the only refusal
    /// that is not an error).
    async fn try_upload(
        &mut self,
        conn: &mut Conn,
        sent: Instant,
        measured: bool,
    ) -> anyhow::Result<Status> {
        let (name, pair) = &self.job.slots[self.slot];
        let content = &pair[self.turn];
        self.id = self.id.wrapping_add(1).max(2);
        let sent_whole = conn
            .send_with(&put(self.id, name, content.bytes.len()), &content.bytes)
            .await;
        if let Err(error) = sent_whole {
            // A server that refuses an upload from its header answers at once and closes the
            // connection without reading the picture, so the client's write fails; the
            // answer saying why may still be there to read.
            return match timeout(REFUSAL_WAIT, conn.answer()).await {
                Ok(Ok(())) => self.check(conn, sent, measured),
                _ => Err(error),
            };
        }
        conn.answer().await?;
        self.check(conn, sent, measured)
    }

    /// Checks the answer to the upload just sent, and counts it.
    fn check(&mut self, conn: &mut Conn, sent: Instant, measured: bool) -> anyhow::Result<Status> {
        let (name, pair) = &self.job.slots[self.slot];
        let content = &pair[self.turn];
        let at = conn.received_at();
        let Some((head, body)) = conn.front() else {
            bail!("the server's answer vanished");
        };
        ensure!(
            head.id == self.id,
            "the server answered request {} instead of {}",
            head.id,
            self.id
        );
        if head.status == Status::Busy {
            return Ok(Status::Busy);
        }
        if head.status != Status::Ok {
            bail!(
                "the server answered {}: {:.200}",
                head.status.describe(),
                String::from_utf8_lossy(body)
            );
        }
        ensure!(
            head.kind == Some(Kind::Put),
            "the server answered a PUT as {:?}",
            head.kind
        );
        let stored = entry(body)?;
        conn.consume();
        let matches = stored.name == *name
            && stored.size as usize == content.bytes.len()
            && stored.sha256 == content.sha256;
        let measured = measured && self.plan.in_window(at);
        if measured {
            self.tally
                .answer(at - sent, content.bytes.len(), matches, at);
        }
        if let Some(answers) = &self.job.answers {
            let sha256 = content.sha256;
            watch::note(
                answers,
                Answered {
                    sha256,
                    at,
                    measured,
                },
            );
        }
        // The next upload brings the other variant: never the content this one stored.
        self.turn ^= 1;
        Ok(Status::Ok)
    }
}

/// Why an upload did not go through.
enum Failure {
    /// The server answered *busy*: too many uploads at once.
    Busy,
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Error(error)
    }
}
