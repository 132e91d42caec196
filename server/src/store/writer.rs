//! A database store's writes, and its picture bytes through the cache.
//!
//! A write is decided against the catalog in memory, made in the database only if the
//! database's catalog is still at that version, then published. On a database other servers
//! write to, the version may have moved on: the writer then catches up with their edits
//! (see `follow`) and decides again, so that a name taken on another server a moment ago is a
//! clash here too. Writes on one server take turns; on several, the database's row lock makes
//! them take turns.
//!
//! Picture bytes go into the database with the edit, in the same transaction; or, with an
//! object store, into the store first (an upload that is then not committed leaves an object
//! that `clean-blobs` removes).

use std::sync::Arc;

use bytes::Bytes;
use picture_protocol::PictureInfo;
use tokio::sync::Mutex;

use super::blobs::Bucket;
use super::cache::ByteCache;
use super::catalog::{Catalog, Edit};
use super::db::{Applied, Database, Import};
use super::{Published, StoreError, WriteError};
use crate::metrics;

/// Times a write is decided again because other servers changed the catalog first, before
/// it gives up.
const MAX_WRITE_ATTEMPTS: usize = 8;

/// Where a database store keeps picture bytes.
pub enum Blobs {
    /// In the database, beside the catalog.
    InDatabase,
    /// In an S3-compatible object store.
    Bucket(Bucket),
}

/// The bytes of an upload, by content.
#[derive(Clone)]
pub struct Upload {
    pub sha256: [u8; 32],
    pub bytes: Bytes,
}

pub struct Writer {
    pub(super) db: Database,
    pub(super) blobs: Blobs,
    pub(super) cache: ByteCache,
    pub(super) published: Arc<Published>,
    /// Held from deciding a write to publishing it, and while catching up, so that the
    /// catalog in memory changes one edit at a time.
    pub(super) turn: Mutex<()>,
}

impl Writer {
    pub fn new(db: Database, blobs: Blobs, cache: ByteCache, published: Arc<Published>) -> Writer {
        Writer {
            db,
            blobs,
            cache,
            published,
            turn: Mutex::new(()),
        }
    }

    pub fn cached_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Keeps bytes in the cache (an upload, before it is committed).
    pub fn remember(&self, sha256: [u8; 32], bytes: Bytes) {
        self.cache.insert(sha256, bytes);
    }

    /// The bytes of a picture, from the cache or else the database.
    pub async fn bytes_of(&self, info: &PictureInfo) -> Result<Bytes, StoreError> {
        let cached = self.cache.get(&info.sha256);
        metrics::cache_lookup(cached.is_some());
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        // Concurrent misses for one picture read it once: the others wait for it.
        self.cache.get_or_read(&info.sha256, self.fetch(info)).await
    }

    /// The bytes of a picture from where they are stored, past the cache.
    pub async fn fetch(&self, info: &PictureInfo) -> Result<Bytes, StoreError> {
        let read = match &self.blobs {
            Blobs::InDatabase => self.db.read_bytes(info.sha256).await?,
            Blobs::Bucket(bucket) => bucket.get(&info.sha256, info.size as usize).await?,
        };
        read.ok_or_else(|| StoreError::MissingBytes(info.name.clone()))
    }

    /// Whether the bytes of this picture's content are stored.
    pub async fn holds(&self, info: &PictureInfo) -> Result<bool, StoreError> {
        Ok(match &self.blobs {
            Blobs::InDatabase => self.db.has_bytes(info.sha256).await?,
            Blobs::Bucket(bucket) => bucket.exists(&info.sha256).await?,
        })
    }

    /// Stores the bytes of a content that no picture points to yet. With an object store, the
    /// content is recorded in the database too, so that `clean-blobs` leaves its object alone
    /// however long the catalog takes to name it.
    pub async fn store_bytes(&self, info: &PictureInfo, bytes: Bytes) -> Result<(), StoreError> {
        match &self.blobs {
            Blobs::InDatabase => self.db.store_bytes(info.clone(), Some(bytes)).await,
            Blobs::Bucket(bucket) => {
                self.db.store_bytes(info.clone(), None).await?;
                Ok(bucket.put(&info.sha256, bytes).await?)
            }
        }
    }

    /// Makes the catalog exactly `pictures` (whose bytes are stored already), and publishes it.
    pub async fn replace_catalog(
        &self,
        pictures: Vec<PictureInfo>,
        not_found: (PictureInfo, Bytes),
    ) -> Result<(), StoreError> {
        let _turn = self.turn.lock().await;
        self.db.replace_catalog(pictures, not_found).await?;
        self.reload().await
    }

    /// Makes the edit `decide` picks against the current catalog, with the bytes of `upload`
    /// stored first, and publishes it. Runs in a task of its own, so that it ends the same way
    /// whether or not the request that asked for it is still there. Returns the picture after
    /// the edit (`None` once removed).
    pub async fn write(
        self: &Arc<Self>,
        upload: Option<Upload>,
        decide: impl FnMut(&Catalog) -> Result<Edit, WriteError> + Send + 'static,
    ) -> Result<Option<Arc<PictureInfo>>, WriteError> {
        let writer = self.clone();
        tokio::spawn(async move {
            let content = match (&writer.blobs, &upload) {
                (Blobs::InDatabase, Some(upload)) => Some(upload.bytes.clone()),
                (Blobs::Bucket(bucket), Some(upload)) => {
                    bucket
                        .put(&upload.sha256, upload.bytes.clone())
                        .await
                        .map_err(StoreError::from)?;
                    None
                }
                (_, None) => None,
            };
            let done = writer.write_in_turn(content, decide).await;
            if let Some(upload) = upload {
                // Whether or not the commit said so (a commit can go through and its answer be
                // lost): a clean-up between the put and the commit may have taken the object.
                writer.blobs.ensure(&upload.sha256, upload.bytes).await;
            }
            done
        })
        .await
        .map_err(StoreError::from)?
    }

    async fn write_in_turn(
        &self,
        content: Option<Bytes>,
        mut decide: impl FnMut(&Catalog) -> Result<Edit, WriteError>,
    ) -> Result<Option<Arc<PictureInfo>>, WriteError> {
        let turn = self.turn.lock().await;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let before = self.published.catalog.load_full();
            let edit = decide(&before)?;
            match self
                .db
                .apply(edit.clone(), content.clone(), before.version())
                .await?
            {
                Applied::Done(version) => return Ok(self.publish(&before, &edit, version)),
                Applied::Stale => self.catch_up(&turn).await?,
            }
        }
        Err(WriteError::Contended)
    }

    /// Publishes an edit the database has committed, and drops from the cache the bytes no
    /// picture shows any more (before the change is announced, so that whoever hears of it
    /// finds the cache as it will stay).
    pub(super) fn publish(
        &self,
        before: &Catalog,
        edit: &Edit,
        version: u64,
    ) -> Option<Arc<PictureInfo>> {
        let dropped = match edit {
            Edit::Replace(index, _) | Edit::Remove(index) => {
                before.entries().get(*index).map(|old| old.sha256)
            }
            _ => None,
        };
        self.published.publish(before, edit, version, |after| {
            if let Some(sha256) = dropped
                && !after.entries().iter().any(|entry| entry.sha256 == sha256)
            {
                self.cache.remove(&sha256);
            }
        })
    }

    /// Reads the whole catalog again and publishes it; forgets every cached picture, since
    /// any may have been replaced.
    pub(super) async fn reload(&self) -> Result<(), StoreError> {
        let loaded = self.db.load().await?;
        self.cache.clear();
        self.published
            .replace(Catalog::new(loaded.version, loaded.pictures));
        Ok(())
    }

    /// Imports pictures into the store, and publishes the catalog that results.
    pub async fn import(
        &self,
        pictures: Vec<(PictureInfo, Bytes)>,
        not_found: Option<(PictureInfo, Bytes)>,
    ) -> Result<(), StoreError> {
        let staged = self.blobs.stage(&pictures).await?;
        let _turn = self.turn.lock().await;
        let imported = self.db.import(staged, not_found, false).await;
        self.blobs.ensure_all(&pictures).await;
        imported?;
        self.reload().await
    }

    /// Whether the database, and the object store if there is one, answer now.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        if let Blobs::Bucket(bucket) = &self.blobs {
            bucket.ping().await?;
        }
        Ok(())
    }

    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let bytes_in_db = matches!(self.blobs, Blobs::InDatabase);
        self.db.integrity_check(bytes_in_db).await
    }
}

impl Blobs {
    /// Pictures about to be imported, with their bytes for the database, or, with an object
    /// store, none: those are put in the store now.
    pub async fn stage(&self, pictures: &[(PictureInfo, Bytes)]) -> Result<Import, StoreError> {
        let Blobs::Bucket(bucket) = self else {
            let staged = pictures
                .iter()
                .map(|(info, bytes)| (info.clone(), Some(bytes.clone())));
            return Ok(staged.collect());
        };
        let mut staged = Vec::with_capacity(pictures.len());
        for (info, bytes) in pictures {
            bucket.put(&info.sha256, bytes.clone()).await?;
            staged.push((info.clone(), None));
        }
        Ok(staged)
    }

    /// After a commit that names `sha256`, with an object store: puts the object again if a
    /// clean-up took it between the put and the commit. A failure is logged, not returned: the
    /// commit is made, and the next upload of the bytes or `clean-blobs`' report shows it.
    pub async fn ensure(&self, sha256: &[u8; 32], bytes: Bytes) {
        if let Blobs::Bucket(bucket) = self
            && let Err(e) = bucket.ensure(sha256, bytes).await
        {
            tracing::warn!("an object just committed could not be checked: {e}");
        }
    }

    /// [`Blobs::ensure`] for every picture of an import.
    pub async fn ensure_all(&self, pictures: &[(PictureInfo, Bytes)]) {
        for (info, bytes) in pictures {
            self.ensure(&info.sha256, bytes.clone()).await;
        }
    }
}
