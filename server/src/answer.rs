//! What the server answers to each request, independent of how the request arrived.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use picture_protocol::{
    CATALOG_MIME, Command, EncodeError, GetRequest, Kind, RequestError, ResponseHead, Status,
    TEXT_MIME,
};
use tracing::error;

use crate::connection::Connection;
use crate::store::PictureStore;

/// A response without its framing: the framed session adds id and kind.
pub struct Answer {
    pub status: Status,
    pub mime: String,
    pub body: Bytes,
}

impl Answer {
    pub fn text(status: Status, message: impl Into<String>) -> Answer {
        Answer {
            status,
            mime: TEXT_MIME.to_owned(),
            body: Bytes::from(message.into()),
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

    /// This answer as the response to request `id` of `kind`.
    pub fn encode(self, kind: Option<Kind>, id: u32) -> Result<EncodedAnswer, EncodeError> {
        let head = ResponseHead {
            kind,
            status: self.status,
            id,
            mime: self.mime,
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
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    pub fn queue_on<S>(self, conn: &mut Connection<S>) {
        conn.queue(self.head);
        conn.queue(self.body);
    }
}

/// Answers requests from a store: what the bridge holds when it serves this process's own
/// pictures. A trait object, so that the web side need not be generic over the store type.
pub trait Answerer: Send + Sync + 'static {
    fn answer<'a>(
        &'a self,
        command: &'a Command,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;
}

impl<S: PictureStore> Answerer for S {
    fn answer<'a>(
        &'a self,
        command: &'a Command,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>> {
        Box::pin(answer(self, command))
    }
}

pub async fn answer<S: PictureStore>(store: &S, command: &Command) -> Answer {
    let result = match command {
        Command::Ping => Ok(Answer {
            status: Status::Ok,
            mime: String::new(),
            body: Bytes::new(),
        }),
        Command::List => store.list().await.map(|body| Answer {
            status: Status::Ok,
            mime: CATALOG_MIME.to_owned(),
            body,
        }),
        Command::Get(get) => answer_get(store, get).await,
    };
    result.unwrap_or_else(|e| {
        error!("{e}");
        Answer::text(Status::Internal, e.to_string())
    })
}

async fn answer_get<S: PictureStore>(
    store: &S,
    get: &GetRequest,
) -> Result<Answer, crate::store::StoreError> {
    if !get.variant.is_original() {
        return Ok(Answer::text(
            Status::BadRequest,
            "picture variants (size, format) are not supported by this server yet",
        ));
    }
    let (status, picture) = match store.get(&get.selector).await? {
        Some(picture) => (Status::Ok, picture),
        None => (Status::NotFound, store.not_found()),
    };
    Ok(Answer {
        status,
        mime: picture.info.mime.clone(),
        body: picture.bytes.clone(),
    })
}
