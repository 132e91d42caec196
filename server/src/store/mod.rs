//! Where pictures come from. The server only talks to [`PictureStore`], so the folder-backed
//! store used today can be replaced by a database-backed one without touching the protocol
//! code.

mod folder;
mod manifest;
mod picture;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use picture_protocol::Selector;

pub use folder::{FolderStore, LoadError};
pub use picture::{Picture, PictureError, inspect};

/// A source of pictures.
///
/// Methods are async so that a store may fetch from a database or over the network; the folder
/// store answers from memory.
pub trait PictureStore: Send + Sync + 'static {
    /// The encoded body of a `LIST` response: the catalog in menu order.
    fn list(&self) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// The picture a selector names, or `None` when there is no such picture.
    fn get(
        &self,
        selector: &Selector,
    ) -> impl Future<Output = Result<Option<Arc<Picture>>, StoreError>> + Send;

    /// What a request for an unknown picture receives.
    fn not_found(&self) -> Arc<Picture>;
}

/// A store failed to answer (not: the picture does not exist).
#[derive(Debug, thiserror::Error)]
#[error("picture store failed: {0}")]
pub struct StoreError(pub String);
