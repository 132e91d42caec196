//! Where pictures come from, and where uploads go.
//!
//! Storage is split the way pict-rs splits it: the *catalog* (names, titles, menu order, and
//! for each name the SHA-256 of its content, with the content's type and size) and the
//! *bytes*, content-addressed by SHA-256, so the same picture uploaded under two names is
//! stored once. The server always answers from an in-memory [`Catalog`] that is replaced
//! whole on every change (readers never lock); bytes come from memory for a folder store, and
//! through a byte-bounded cache from the database for the SQLite store.
//!
//! * [`Store`]: what the server holds: the catalog, the bytes, the change feed, the writes.
//! * `catalog`: the catalog in memory and the [`catalog::Edit`]s that change it.
//! * `sqlite`: the database (schema, migrations, transactions); `cache`: its bytes in memory.
//! * `folder`: reading a folder of pictures (the `folder:` store, first-start import,
//!   `import`), and `transfer`: `export`.
//! * `upload`: checking an upload; `metadata`: removing EXIF and the like from it.
//! * `picture`: one picture file, and the rules for names and titles.

mod cache;
pub mod catalog;
mod folder;
pub(crate) mod manifest;
mod metadata;
mod picture;
mod sqlite;
mod transfer;
pub(crate) mod upload;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use picture_protocol::{Change, ChangeKind, PictureInfo, Selector};
use tokio::sync::{Mutex, broadcast};
use tracing::info;

use crate::metrics;

use cache::ByteCache;
pub use catalog::Catalog;
use catalog::Edit;
pub use folder::{Folder, LoadError};
use manifest::title_from_name;
pub use picture::{
    MAX_PICTURE_BYTES, NameError, Picture, PictureError, check_name, check_title, inspect,
};
pub use sqlite::DbError;
pub use transfer::{ExportError, export};
pub use upload::{UploadError, UploadRules};

/// Change notices kept for subscribers that are slow to take them; one that falls further
/// behind is told it lost some and reloads the catalog.
const CHANGE_BACKLOG: usize = 256;

/// Default for the byte cache of a database store.
pub const DEFAULT_CACHE_SIZE: u64 = 256 * 1024 * 1024;

/// Which store: `sqlite:PATH` (the default) or `folder:DIR` (read-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Folder(PathBuf),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a store URL (sqlite:PATH or folder:DIR)"))?;
        if rest.is_empty() {
            return Err(format!("{s:?} names no path"));
        }
        match scheme {
            "sqlite" => Ok(StoreUrl::Sqlite(rest.into())),
            "folder" => Ok(StoreUrl::Folder(rest.into())),
            "postgres" | "postgresql" => Err("PostgreSQL stores are not supported yet".into()),
            other => Err(format!(
                "unknown store type {other:?} (sqlite:PATH or folder:DIR)"
            )),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Folder(path) => write!(f, "folder:{}", path.display()),
        }
    }
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of pictures a database store keeps in memory.
    pub cache_size: u64,
    pub upload: UploadRules,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: DEFAULT_CACHE_SIZE,
            upload: UploadRules::default(),
        }
    }
}

/// A picture ready to send: its catalog entry and its bytes, a shared buffer that every
/// response sends without copying.
#[derive(Debug, Clone)]
pub struct Found {
    pub info: Arc<PictureInfo>,
    pub bytes: Bytes,
}

/// A store failed (not: the picture does not exist).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the bytes of picture {0:?} are missing from the store")]
    MissingBytes(String),
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a write was not done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("this store is read-only (folder:); use a sqlite: store to change pictures")]
    ReadOnly,
    #[error("there is no picture {0}")]
    NotFound(Selector),
    #[error("the name {0:?} is already taken (ignoring case)")]
    Conflict(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("picture refused: {0}")]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What readers see: the current catalog, and the feed of changes to it.
struct Published {
    catalog: ArcSwap<Catalog>,
    changes: broadcast::Sender<Change>,
}

impl Published {
    /// Makes an edit that the database has committed visible: the new catalog for readers, a
    /// notice for subscribers. Returns the edited picture, if it is still there.
    fn publish(
        &self,
        before: &Catalog,
        edit: &Edit,
        version: u64,
        kind: ChangeKind,
        name: String,
    ) -> Option<Arc<PictureInfo>> {
        let after = before.edited(edit, version);
        let picture = match edit {
            Edit::Append(_) => after.entries().last(),
            Edit::Replace(index, _) | Edit::Rename(index, _) | Edit::Retitle(index, _) => {
                after.entries().get(*index)
            }
            Edit::Move(_, to) => after.entries().get(*to),
            Edit::Remove(_) => None,
        }
        .cloned();
        self.catalog.store(Arc::new(after));
        // No subscriber is not an error.
        let _ = self.changes.send(Change {
            version,
            kind,
            name,
            picture: picture.as_deref().cloned(),
        });
        picture
    }
}

enum Backend {
    /// Every picture's bytes in memory, by SHA-256; no writes.
    Folder(HashMap<[u8; 32], Bytes>),
    Sqlite {
        db: Arc<sqlite::Database>,
        cache: ByteCache,
    },
}

pub struct Store {
    published: Arc<Published>,
    not_found: Found,
    backend: Backend,
    /// Writes one at a time, so that each edit is made against the catalog it was checked
    /// against, in the database and in memory alike.
    writes: Mutex<()>,
    upload: UploadRules,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("pictures", &self.published.catalog.load().len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `url` names. An empty database that was never seeded imports `seed`
    /// (the assets folder) first, if that folder exists. Blocks: call it before the server
    /// starts, or from a blocking task.
    pub fn open(
        url: &StoreUrl,
        seed: Option<&Path>,
        options: &StoreOptions,
    ) -> Result<Store, OpenError> {
        match url {
            StoreUrl::Folder(dir) => Ok(Store::from_folder(Folder::load(dir)?)),
            StoreUrl::Sqlite(path) => Store::open_sqlite(path, seed, options),
        }
    }

    /// A read-only store of a loaded folder.
    pub fn from_folder(folder: Folder) -> Store {
        let bytes = folder
            .pictures
            .iter()
            .map(|p| (p.info.sha256, p.bytes.clone()))
            .collect();
        let infos = folder.pictures.into_iter().map(|p| p.info).collect();
        Store::new(
            Catalog::new(1, infos),
            found(folder.not_found),
            Backend::Folder(bytes),
            UploadRules::default(),
        )
    }

    fn open_sqlite(
        path: &Path,
        seed: Option<&Path>,
        options: &StoreOptions,
    ) -> Result<Store, OpenError> {
        let db = sqlite::Database::open(path)?;
        let mut loaded = db.load()?;
        if !loaded.seeded && loaded.pictures.is_empty() {
            match seed.filter(|dir| dir.is_dir()) {
                Some(dir) => {
                    let folder = Folder::load(dir)?;
                    info!(
                        pictures = folder.pictures.len(),
                        "first start: importing {}",
                        dir.display()
                    );
                    import_folder(&db, &folder)?;
                }
                None => {
                    db.import(&[], None)?;
                }
            }
            loaded = db.load()?;
        }
        let not_found = match loaded.not_found {
            Some((bytes, _)) => inspect(
                0,
                "not-found".into(),
                "Not found".into(),
                Bytes::from(bytes),
            )
            .map_err(LoadError::BuiltinNotFound)?,
            None => folder::builtin_not_found()?,
        };
        let cache = ByteCache::new(options.cache_size);
        Ok(Store::new(
            Catalog::new(loaded.version, loaded.pictures),
            found(not_found),
            Backend::Sqlite {
                db: Arc::new(db),
                cache,
            },
            options.upload,
        ))
    }

    fn new(catalog: Catalog, not_found: Found, backend: Backend, upload: UploadRules) -> Store {
        Store {
            published: Arc::new(Published {
                catalog: ArcSwap::from_pointee(catalog),
                changes: broadcast::channel(CHANGE_BACKLOG).0,
            }),
            not_found,
            backend,
            writes: Mutex::new(()),
            upload,
        }
    }

    /// The catalog as it is now. Cheap; hold it only as long as one answer needs it.
    pub fn catalog(&self) -> Guard<Arc<Catalog>> {
        self.published.catalog.load()
    }

    /// What a request for an unknown picture receives.
    pub fn not_found(&self) -> Found {
        self.not_found.clone()
    }

    /// Whether this store accepts writes.
    pub fn is_writable(&self) -> bool {
        matches!(self.backend, Backend::Sqlite { .. })
    }

    /// Bytes of pictures the cache holds (0 for a folder store, which holds every picture).
    pub fn cached_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite { cache, .. } => cache.weight(),
            Backend::Folder(_) => 0,
        }
    }

    /// Change notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.published.changes.subscribe()
    }

    /// The picture a selector names, or `None` when there is no such picture.
    pub async fn get(&self, selector: &Selector) -> Result<Option<Found>, StoreError> {
        loop {
            let (info, version) = {
                let catalog = self.published.catalog.load();
                match catalog.get(selector) {
                    Some(info) => (info.clone(), catalog.version()),
                    None => return Ok(None),
                }
            };
            match self.bytes_of(&info).await {
                Ok(bytes) => return Ok(Some(Found { info, bytes })),
                // Deleted or replaced between reading the catalog and reading its bytes: the
                // catalog has moved on since, so ask it again.
                Err(StoreError::MissingBytes(_))
                    if self.published.catalog.load().version() != version => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn bytes_of(&self, info: &PictureInfo) -> Result<Bytes, StoreError> {
        let missing = || StoreError::MissingBytes(info.name.clone());
        match &self.backend {
            Backend::Folder(bytes) => bytes.get(&info.sha256).cloned().ok_or_else(missing),
            Backend::Sqlite { db, cache } => {
                let cached = cache.get(&info.sha256);
                metrics::cache_lookup(cached.is_some());
                if let Some(bytes) = cached {
                    return Ok(bytes);
                }
                let (db, cache, sha256) = (db.clone(), cache.clone(), info.sha256);
                // Concurrent misses for one picture read it once: the others wait for it.
                let read = blocking(move || {
                    cache.get_or_read(&sha256, || match db.read_bytes(&sha256) {
                        Ok(Some(bytes)) => Ok(Bytes::from(bytes)),
                        Ok(None) => Err(None),
                        Err(e) => Err(Some(e)),
                    })
                })
                .await?;
                read.map_err(|e| match e {
                    None => missing(),
                    Some(e) => StoreError::Database(e),
                })
            }
        }
    }

    /// Stores an upload under `name`. A name that is taken is an error unless `replace`; an
    /// empty title is made from the name (or, when replacing, keeps the picture's title).
    pub async fn put(
        &self,
        name: &str,
        title: &str,
        replace: bool,
        bytes: Bytes,
    ) -> Result<Arc<PictureInfo>, WriteError> {
        let db = self.db()?;
        check_name(name)?;
        check_title(title)?;
        let rules = self.upload;
        let checked = blocking(move || upload::check(bytes, rules)).await??;
        let _write = self.writes.lock().await;
        let catalog = self.published.catalog.load_full();
        let existing = catalog.index_of_name(name);
        if existing.is_some() && !replace {
            return Err(WriteError::Conflict(name.to_owned()));
        }
        let title = match (title, existing) {
            ("", Some(index)) => catalog.entries()[index].title.clone(),
            ("", None) => title_from_name(name),
            (title, _) => title.to_owned(),
        };
        let info = PictureInfo {
            number: existing.map_or(catalog.len() + 1, |i| i + 1) as u32,
            name: name.to_owned(),
            title,
            mime: checked.mime.to_owned(),
            width: checked.width,
            height: checked.height,
            // Uploads are bounded far below 4 GiB by the server's upload limit.
            size: checked.bytes.len() as u32,
            sha256: checked.sha256,
        };
        let (edit, kind) = match existing {
            Some(index) => (Edit::Replace(index, info.clone()), ChangeKind::Replaced),
            None => (Edit::Append(info.clone()), ChangeKind::Added),
        };
        if let Backend::Sqlite { cache, .. } = &self.backend {
            // Content-addressed: caching it before the commit can never show wrong bytes.
            cache.insert(info.sha256, checked.bytes.clone());
        }
        let old_name =
            existing.map_or_else(|| name.to_owned(), |i| catalog.entries()[i].name.clone());
        let stored = self
            .commit(db, catalog, edit, Some(checked.bytes), kind, old_name)
            .await?;
        Ok(stored.unwrap_or_else(|| Arc::new(info)))
    }

    pub async fn delete(&self, selector: &Selector) -> Result<(), WriteError> {
        self.edit(selector, |_, index| {
            Ok((Edit::Remove(index), ChangeKind::Removed))
        })
        .await
        .map(drop)
    }

    pub async fn rename(
        &self,
        selector: &Selector,
        name: &str,
    ) -> Result<Arc<PictureInfo>, WriteError> {
        check_name(name)?;
        self.edit(selector, |catalog, index| {
            match catalog.index_of_name(name) {
                Some(other) if other != index => Err(WriteError::Conflict(name.to_owned())),
                _ => Ok((Edit::Rename(index, name.to_owned()), ChangeKind::Renamed)),
            }
        })
        .await?
        .ok_or_else(|| WriteError::NotFound(selector.clone()))
    }

    pub async fn retitle(
        &self,
        selector: &Selector,
        title: &str,
    ) -> Result<Arc<PictureInfo>, WriteError> {
        check_title(title)?;
        let title = title.to_owned();
        self.edit(selector, |_, index| {
            Ok((Edit::Retitle(index, title), ChangeKind::Retitled))
        })
        .await?
        .ok_or_else(|| WriteError::NotFound(selector.clone()))
    }

    /// Moves a picture to a 1-based menu position; past the end means last.
    pub async fn move_to(
        &self,
        selector: &Selector,
        position: u32,
    ) -> Result<Arc<PictureInfo>, WriteError> {
        self.edit(selector, |catalog, index| {
            let to = (position as usize).saturating_sub(1).min(catalog.len() - 1);
            Ok((Edit::Move(index, to), ChangeKind::Moved))
        })
        .await?
        .ok_or_else(|| WriteError::NotFound(selector.clone()))
    }

    /// An edit of the picture `selector` names, decided by `decide` against the current
    /// catalog. Returns the picture after the edit (`None` once removed).
    async fn edit(
        &self,
        selector: &Selector,
        decide: impl FnOnce(&Catalog, usize) -> Result<(Edit, ChangeKind), WriteError>,
    ) -> Result<Option<Arc<PictureInfo>>, WriteError> {
        let db = self.db()?;
        let _write = self.writes.lock().await;
        let catalog = self.published.catalog.load_full();
        let index = catalog
            .index_of(selector)
            .ok_or_else(|| WriteError::NotFound(selector.clone()))?;
        let (edit, kind) = decide(&catalog, index)?;
        let old_name = catalog.entries()[index].name.clone();
        self.commit(db, catalog, edit, None, kind, old_name).await
    }

    /// Commits an edit checked against `before` and publishes it, both in one blocking task:
    /// that task runs to its end even if the request that asked for it is dropped, so the
    /// database and the catalog in memory never part.
    async fn commit(
        &self,
        db: Arc<sqlite::Database>,
        before: Arc<Catalog>,
        edit: Edit,
        content: Option<Bytes>,
        kind: ChangeKind,
        name: String,
    ) -> Result<Option<Arc<PictureInfo>>, WriteError> {
        let published = self.published.clone();
        let expected = before.version();
        let dropped = match &edit {
            Edit::Replace(index, _) | Edit::Remove(index) => {
                before.entries().get(*index).map(|old| old.sha256)
            }
            _ => None,
        };
        let done = blocking(move || {
            db.apply(&edit, content.as_deref(), expected, |version| {
                published.publish(&before, &edit, version, kind, name)
            })
        })
        .await??;
        if let (Some(sha256), Backend::Sqlite { cache, .. }) = (dropped, &self.backend) {
            // Bytes no name shows any more are not worth their room in the cache.
            let catalog = self.published.catalog.load();
            if !catalog.entries().iter().any(|entry| entry.sha256 == sha256) {
                cache.remove(&sha256);
            }
        }
        Ok(done)
    }

    fn db(&self) -> Result<Arc<sqlite::Database>, WriteError> {
        match &self.backend {
            Backend::Sqlite { db, .. } => Ok(db.clone()),
            Backend::Folder(_) => Err(WriteError::ReadOnly),
        }
    }

    /// Imports a folder of pictures (with its `catalog.toml`) into a database store: names
    /// already present get the folder's picture and title, new ones are appended in the
    /// folder's order. Made for a store no server is running on.
    pub async fn import(&self, dir: &Path) -> Result<usize, OpenError> {
        let dir = dir.to_path_buf();
        let folder = blocking(move || Folder::load(&dir)).await??;
        self.import_folder(folder).await
    }

    /// Imports loaded pictures, as [`Store::import`] does, in one transaction, and makes them
    /// visible. Returns how many there were.
    pub async fn import_folder(&self, folder: Folder) -> Result<usize, OpenError> {
        let db = self.db()?;
        let _write = self.writes.lock().await;
        let count = folder.pictures.len();
        let reader = db.clone();
        let loaded = blocking(move || -> Result<sqlite::Loaded, DbError> {
            import_folder(&db, &folder)?;
            reader.load()
        })
        .await??;
        self.published
            .catalog
            .store(Arc::new(Catalog::new(loaded.version, loaded.pictures)));
        Ok(count)
    }

    /// Whether the store answers: a database store reads its pictures table (on the blocking
    /// pool, so a caller that puts a deadline on this also covers a pool that is full).
    pub async fn ready(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok(()),
            Backend::Sqlite { db, .. } => {
                let db = db.clone();
                Ok(blocking(move || db.ping()).await??)
            }
        }
    }

    /// `PRAGMA integrity_check` of a database store ("ok" when sound).
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok("ok".into()),
            Backend::Sqlite { db, .. } => {
                let db = db.clone();
                Ok(blocking(move || db.integrity_check()).await??)
            }
        }
    }
}

fn import_folder(db: &sqlite::Database, folder: &Folder) -> Result<u64, DbError> {
    let pictures: Vec<(PictureInfo, &[u8])> = folder
        .pictures
        .iter()
        .map(|p| (p.info.clone(), &p.bytes[..]))
        .collect();
    db.import(
        &pictures,
        Some((&folder.not_found.info, &folder.not_found.bytes[..])),
    )
}

fn found(picture: Picture) -> Found {
    Found {
        info: Arc::new(picture.info),
        bytes: picture.bytes,
    }
}

/// Runs blocking work (database calls, decoding) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

impl From<DbError> for WriteError {
    fn from(e: DbError) -> Self {
        WriteError::Store(StoreError::Database(e))
    }
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        std::io::Error::other(e)
    }
}
