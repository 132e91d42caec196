//! The database behind a writable store, SQLite or PostgreSQL, behind one set of async calls.
//!
//! SQLite's calls block, so they run on tokio's blocking pool; PostgreSQL's are async and
//! carry their own timeouts.

use std::sync::Arc;

use bytes::Bytes;
use picture_protocol::PictureInfo;

use super::catalog::Edit;
use super::variants::{StoredVariant, VariantKey};
use super::{StoreError, blocking, postgres, sqlite};

/// What a database holds apart from picture bytes, as read at start-up.
pub struct Loaded {
    pub version: u64,
    pub pictures: Vec<PictureInfo>,
    /// Whether the assets folder was imported once already.
    pub seeded: bool,
    /// The not-found picture's bytes and MIME type, if one was stored.
    pub not_found: Option<(Vec<u8>, String)>,
}

/// Pictures to import, with their bytes when the database keeps them.
pub type Import = Vec<(PictureInfo, Option<Bytes>)>;

#[derive(Clone)]
pub enum Database {
    Sqlite(Arc<sqlite::Database>),
    Postgres(Arc<postgres::Database>),
}

/// What became of an edit.
pub enum Applied {
    /// Committed; the catalog's new version.
    Done(u64),
    /// Not made: another server (or process) changed the catalog since the version the edit
    /// was checked against. Catch up and decide again.
    Stale,
}

impl Database {
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.load()).await??)
            }
            Database::Postgres(db) => Ok(db.load().await?),
        }
    }

    pub async fn read_bytes(&self, sha256: [u8; 32]) -> Result<Option<Bytes>, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                let read = blocking(move || db.read_bytes(&sha256)).await??;
                Ok(read.map(Bytes::from))
            }
            Database::Postgres(db) => Ok(db.read_bytes(&sha256).await?),
        }
    }

    /// Makes `edit` (checked against the catalog of version `expected`), storing `content`
    /// first if it is new.
    pub async fn apply(
        &self,
        edit: Edit,
        content: Option<Bytes>,
        expected: u64,
    ) -> Result<Applied, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.apply(&edit, content.as_deref(), expected)).await??)
            }
            Database::Postgres(db) => Ok(db.apply(&edit, content.as_deref(), expected).await?),
        }
    }

    /// Imports pictures in one transaction (see [`sqlite::Database::import`]). With
    /// `only_first`, does nothing if the database was seeded already, so that two servers
    /// starting at once on a new database seed it once. Returns whether it imported.
    pub async fn import(
        &self,
        pictures: Import,
        not_found: Option<(PictureInfo, Bytes)>,
        only_first: bool,
    ) -> Result<bool, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                blocking(move || {
                    let pictures: Vec<(PictureInfo, Option<&[u8]>)> = pictures
                        .iter()
                        .map(|(info, b)| (info.clone(), b.as_deref()))
                        .collect();
                    let not_found = not_found.as_ref().map(|(info, b)| (info, &b[..]));
                    db.import(&pictures, not_found).map(|_| true)
                })
                .await?
                .map_err(StoreError::from)
            }
            Database::Postgres(db) => Ok(db.import(&pictures, not_found, only_first).await?),
        }
    }

    /// A variant kept in the database.
    pub async fn read_variant(&self, key: VariantKey) -> Result<Option<StoredVariant>, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.read_variant(&key)).await??)
            }
            Database::Postgres(db) => Ok(db.read_variant(&key).await?),
        }
    }

    /// Keeps a variant in the database, unless one is there or its content is gone.
    pub async fn store_variant(
        &self,
        key: VariantKey,
        variant: StoredVariant,
    ) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.store_variant(&key, &variant)).await??)
            }
            Database::Postgres(db) => Ok(db.store_variant(&key, &variant).await?),
        }
    }

    /// Whether the bytes of this content are in the database.
    pub async fn has_bytes(&self, sha256: [u8; 32]) -> Result<bool, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.has_bytes(&sha256)).await??)
            }
            Database::Postgres(db) => Ok(db.has_bytes(&sha256).await?),
        }
    }

    /// Records a content that no picture points to yet, with its bytes if they are kept in
    /// the database.
    pub async fn store_bytes(
        &self,
        info: PictureInfo,
        bytes: Option<Bytes>,
    ) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.store_bytes(&info, bytes.as_deref())).await??)
            }
            Database::Postgres(db) => Ok(db.store_bytes(&info, bytes.as_deref()).await?),
        }
    }

    /// Makes the catalog exactly `pictures` (whose contents are stored already), in one
    /// transaction.
    pub async fn replace_catalog(
        &self,
        pictures: Vec<PictureInfo>,
        not_found: (PictureInfo, Bytes),
    ) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                blocking(move || db.replace_catalog(&pictures, (&not_found.0, &not_found.1)))
                    .await??;
            }
            Database::Postgres(db) => {
                db.replace_catalog(&pictures, (&not_found.0, &not_found.1))
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.ping()).await??)
            }
            Database::Postgres(db) => Ok(db.ping().await?),
        }
    }

    /// "ok" when the database finds itself sound, else what is wrong.
    pub async fn integrity_check(&self, bytes_in_db: bool) -> Result<String, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(blocking(move || db.integrity_check()).await??)
            }
            // PostgreSQL checks its pages itself; what can be wrong is the catalog's shape.
            Database::Postgres(db) => Ok(db.check_catalog(bytes_in_db).await?),
        }
    }

    /// Holds off every server's edits until the lock is released: see
    /// [`sqlite::Database::lock_writes`] and [`postgres::Database::lock_writes`].
    pub async fn lock_writes(&self) -> Result<WriteLock, StoreError> {
        match self {
            Database::Sqlite(db) => {
                let db = db.clone();
                Ok(WriteLock::Sqlite(
                    blocking(move || db.lock_writes()).await??,
                ))
            }
            Database::Postgres(db) => Ok(WriteLock::Postgres(db.clone(), db.lock_writes().await?)),
        }
    }
}

/// Edits held off, on a connection of its own.
pub enum WriteLock {
    Sqlite(sqlite::WriteLock),
    Postgres(Arc<postgres::Database>, postgres::WriteLock),
}

impl WriteLock {
    /// Which of `candidates` no catalog entry points to, read under the lock.
    pub async fn unreferenced(
        self,
        candidates: Vec<[u8; 32]>,
    ) -> Result<(WriteLock, Vec<[u8; 32]>), StoreError> {
        match self {
            WriteLock::Postgres(db, lock) => {
                let found = db.unreferenced(&lock, &candidates).await?;
                Ok((WriteLock::Postgres(db, lock), found))
            }
            WriteLock::Sqlite(lock) => {
                let (lock, found) = blocking(move || {
                    let found = lock.unreferenced(&candidates);
                    (lock, found)
                })
                .await?;
                Ok((WriteLock::Sqlite(lock), found?))
            }
        }
    }

    pub async fn release(self) -> Result<(), StoreError> {
        match self {
            WriteLock::Postgres(db, lock) => Ok(db.release(lock).await?),
            WriteLock::Sqlite(lock) => Ok(blocking(move || lock.release()).await??),
        }
    }
}
