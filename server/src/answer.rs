//! What the server answers to each request, independent of how the request arrived: the
//! [`Service`] that the TCP sessions and the WebSocket bridge share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use picture_protocol::{
    CATALOG_MIME, Change, ChangeKind, Command, Dimensions, EncodeError, GetRequest, Kind,
    PAGE_MIME, PictureInfo, RequestError, ResponseHead, Status, TEXT_MIME, VERSION_MIME,
    encode_catalog,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tracing::{error, info, warn};

use crate::access::AdminToken;
use crate::connection::Connection;
use crate::metrics::{self, Transport};
use crate::store::{Store, WriteError};
use crate::variants::{self, Variants};

/// Uploads received or checked at once. Each is held whole in memory from its first byte
/// until it is stored or refused, and decoding it takes more: this and the upload size and
/// pixel limits bound what uploads can cost.
pub const MAX_CONCURRENT_UPLOADS: usize = 4;

/// A response without its framing: the framed session adds id and kind.
pub struct Answer {
    pub status: Status,
    pub mime: String,
    /// The picture's dimensions, in the answer to a request for a variant.
    pub dimensions: Option<Dimensions>,
    pub body: Bytes,
}

impl Answer {
    pub fn text(status: Status, message: impl Into<String>) -> Answer {
        Answer {
            status,
            mime: TEXT_MIME.to_owned(),
            dimensions: None,
            body: Bytes::from(message.into()),
        }
    }

    fn ok(mime: &str, body: impl Into<Bytes>) -> Answer {
        Answer {
            status: Status::Ok,
            mime: mime.to_owned(),
            dimensions: None,
            body: body.into(),
        }
    }

    /// The answer to a frame that could not be decoded.
    pub fn rejection(error: &RequestError) -> Answer {
        let status = if error.error.is_too_large() {
            Status::TooLarge
        } else {
            Status::BadRequest
        };
        Answer::text(status, error.error.to_string())
    }

    /// The answer to a client over the connection limit.
    pub fn busy() -> Answer {
        Answer::text(
            Status::Busy,
            "server is at its connection limit; try again later",
        )
    }

    /// The answer to an upload while [`MAX_CONCURRENT_UPLOADS`] are being received or checked.
    pub fn uploads_busy() -> Answer {
        Answer::text(Status::Busy, "too many uploads at once; try again later")
    }

    /// The notice a watching connection receives for a change.
    pub fn change(change: &Change) -> Answer {
        match change.encode() {
            Ok(body) => Answer::ok(picture_protocol::CHANGE_MIME, body),
            Err(e) => Answer::text(Status::Internal, format!("cannot encode a change: {e}")),
        }
    }

    /// This answer as the response to request `id` of `kind`.
    pub fn encode(self, kind: Option<Kind>, id: u32) -> Result<EncodedAnswer, EncodeError> {
        let head = ResponseHead {
            kind,
            status: self.status,
            id,
            mime: self.mime,
            dimensions: self.dimensions,
            // Bodies are pictures (at most MAX_PICTURE_BYTES), catalogs or short messages.
            body_len: self.body.len() as u32,
        };
        let mut encoded = Vec::with_capacity(head.encoded_len());
        head.encode_into(&mut encoded)?;
        Ok(EncodedAnswer {
            head: Bytes::from(encoded),
            body: self.body,
        })
    }
}

/// A response frame ready to send: its encoded head, then the body's shared buffer, kept
/// apart so that the body is never copied.
pub struct EncodedAnswer {
    head: Bytes,
    body: Bytes,
}

impl EncodedAnswer {
    /// Bytes of the whole frame.
    pub fn frame_len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// The response head and the body, in the order they go out.
    pub fn into_parts(self) -> [Bytes; 2] {
        [self.head, self.body]
    }

    pub fn queue_on<S>(self, conn: &mut Connection<S>) {
        conn.queue(self.head);
        conn.queue(self.body);
    }
}

/// What one connection (or WebSocket session) has established, and how it came.
#[derive(Debug)]
pub struct Caller {
    /// It presented the admin token.
    pub authorized: bool,
    pub transport: Transport,
}

impl Caller {
    /// A caller that has presented nothing yet.
    pub fn new(transport: Transport) -> Caller {
        Caller {
            authorized: false,
            transport,
        }
    }
}

/// A connection that asked to WATCH: where its notices come from, and the id they carry.
pub struct Watch {
    id: u32,
    changes: broadcast::Receiver<Change>,
}

impl Watch {
    /// The id of the WATCH request, which every notice carries.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next notice to send (one saying some were lost when this connection fell behind),
    /// or `None` when there will be no more.
    pub async fn next(&mut self) -> Option<Change> {
        match self.changes.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change {
                version: 0,
                kind: ChangeKind::Lost,
                name: String::new(),
                picture: None,
            }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next notice of a connection that may not be watching: never, if it is not.
    pub async fn next_of(watch: &mut Option<Watch>) -> Option<Change> {
        match watch {
            Some(watch) => watch.next().await,
            None => std::future::pending().await,
        }
    }
}

/// Answers requests from a store, applying the write policy.
pub struct Service {
    store: Arc<Store>,
    token: Option<AdminToken>,
    uploads: Arc<Semaphore>,
    variants: Arc<Variants>,
}

impl Service {
    /// A service with the default variant settings.
    pub fn new(store: Arc<Store>, token: Option<AdminToken>) -> Service {
        Service::with_variants(store, token, variants::Settings::default())
    }

    pub fn with_variants(
        store: Arc<Store>,
        token: Option<AdminToken>,
        settings: variants::Settings,
    ) -> Service {
        Service {
            variants: Variants::new(store.clone(), settings),
            store,
            token,
            uploads: Arc::new(Semaphore::new(MAX_CONCURRENT_UPLOADS)),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Change notices from now on, for a WATCH request with this id.
    pub fn watch(&self, id: u32) -> Watch {
        Watch {
            id,
            changes: self.store.subscribe(),
        }
    }

    /// Whether `caller` may write; the refusal to send if not.
    pub fn check_write(&self, caller: &Caller) -> Result<(), Answer> {
        if !self.store.is_writable() {
            return Err(Answer::text(
                Status::WritesDisabled,
                "writes are disabled: this server's store is read-only",
            ));
        }
        if self.token.is_none() {
            return Err(Answer::text(
                Status::WritesDisabled,
                "writes are disabled: the server has no admin token configured",
            ));
        }
        if !caller.authorized {
            return Err(Answer::text(
                Status::Unauthorized,
                "writes need the admin token: send AUTH first",
            ));
        }
        Ok(())
    }

    /// A slot for receiving and checking one upload, waiting for one at most `patience`;
    /// `None` when uploads stayed at their limit that long. The picture's bytes are not read
    /// while its upload waits, so waiting costs no memory.
    pub async fn upload_slot(&self, patience: Duration) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(patience, self.uploads.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Some(slot),
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Answers one request. `upload` holds the bytes that followed a PUT frame.
    pub async fn answer(&self, caller: &mut Caller, command: &Command, upload: Bytes) -> Answer {
        let started = Instant::now();
        let answer = self.make_answer(caller, command, upload).await;
        metrics::answered(
            caller.transport,
            command.kind(),
            answer.status,
            started.elapsed(),
        );
        answer
    }

    async fn make_answer(&self, caller: &mut Caller, command: &Command, upload: Bytes) -> Answer {
        if command.kind().is_write()
            && let Err(refusal) = self.check_write(caller)
        {
            return refusal;
        }
        let store = &self.store;
        match command {
            Command::Ping => Answer::ok("", Bytes::new()),
            Command::List => match store.catalog().list_body() {
                Ok(body) => Answer::ok(CATALOG_MIME, body),
                Err(_) => Answer::text(
                    Status::BadRequest,
                    format!(
                        "the catalog holds {} pictures, more than a whole LIST can carry; use PAGE",
                        store.catalog().len()
                    ),
                ),
            },
            Command::Page(page) => match store.catalog().page(page).encode() {
                Ok(body) => Answer::ok(PAGE_MIME, body),
                Err(e) => internal(format!("cannot encode a page: {e}")),
            },
            Command::Get(get) => self.answer_get(get).await,
            Command::Watch => Answer::ok(
                VERSION_MIME,
                Bytes::copy_from_slice(&store.catalog().version().to_be_bytes()),
            ),
            Command::Auth(token) => self.authorize(caller, token.as_bytes()),
            Command::Put(put) => {
                let result = store.put(&put.name, &put.title, put.replace, upload).await;
                written("stored", result.map(Some))
            }
            Command::Delete(selector) => {
                written("deleted", store.delete(selector).await.map(|()| None))
            }
            Command::Rename { selector, name } => {
                written("renamed", store.rename(selector, name).await.map(Some))
            }
            Command::Retitle { selector, title } => {
                written("retitled", store.retitle(selector, title).await.map(Some))
            }
            Command::Move { selector, position } => {
                written("moved", store.move_to(selector, *position).await.map(Some))
            }
        }
    }

    fn authorize(&self, caller: &mut Caller, token: &[u8]) -> Answer {
        match &self.token {
            None => Answer::text(
                Status::WritesDisabled,
                "writes are disabled: the server has no admin token configured",
            ),
            Some(expected) if expected.matches(token) => {
                caller.authorized = true;
                Answer::ok("", Bytes::new())
            }
            Some(_) => {
                warn!("AUTH with a wrong token");
                Answer::text(Status::Unauthorized, "wrong admin token")
            }
        }
    }

    async fn answer_get(&self, get: &GetRequest) -> Answer {
        if !get.variant.is_original() {
            return self.answer_variant(get).await;
        }
        let (status, picture) = match self.store.get(&get.selector).await {
            Ok(Some(picture)) => (Status::Ok, picture),
            Ok(None) => (Status::NotFound, self.store.not_found()),
            Err(e) => return internal(e.to_string()),
        };
        Answer {
            status,
            mime: picture.info.mime.clone(),
            dimensions: None,
            body: picture.bytes,
        }
    }

    /// A GET for a variant: found by the catalog alone (its bytes are read only when the
    /// variant has to be made). An unknown picture gets the not-found picture's variant.
    async fn answer_variant(&self, get: &GetRequest) -> Answer {
        let (status, info, bytes) = match self.store.catalog().get(&get.selector) {
            Some(info) => (Status::Ok, info.clone(), None),
            None => {
                let not_found = self.store.not_found();
                (Status::NotFound, not_found.info, Some(not_found.bytes))
            }
        };
        match self.variants.get(&info, bytes, get.variant).await {
            Ok(variant) => Answer {
                status,
                mime: variant.mime.to_owned(),
                dimensions: Some(variant.dimensions),
                body: variant.bytes,
            },
            Err(e) if e.is_busy() => Answer::text(Status::Busy, e.to_string()),
            Err(e) => internal(format!("cannot make a variant of {:?}: {e}", info.name)),
        }
    }
}

fn internal(message: String) -> Answer {
    error!("{message}");
    Answer::text(Status::Internal, message)
}

/// The answer to a write: the picture as it now is (as a one-entry catalog), or why not.
fn written(done: &str, result: Result<Option<Arc<PictureInfo>>, WriteError>) -> Answer {
    let picture = match result {
        Ok(picture) => picture,
        Err(e) => {
            let status = match &e {
                WriteError::ReadOnly => Status::WritesDisabled,
                WriteError::NotFound(_) => Status::NotFound,
                WriteError::Conflict(_) => Status::Conflict,
                WriteError::Contended => Status::Busy,
                WriteError::Name(_) | WriteError::Upload(_) => Status::Rejected,
                WriteError::Store(_) => return internal(e.to_string()),
            };
            return Answer::text(status, e.to_string());
        }
    };
    if let Some(p) = &picture {
        info!(name = %p.name, number = p.number, "picture {done}");
    } else {
        info!("picture {done}");
    }
    match encode_catalog(picture.as_deref()) {
        Ok(body) => Answer::ok(CATALOG_MIME, body),
        Err(e) => internal(format!("cannot encode the picture's entry: {e}")),
    }
}
