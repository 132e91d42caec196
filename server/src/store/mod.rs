//! Where pictures come from, and where uploads go.
//!
//! Storage is split the way pict-rs splits it: the *catalog* (names, titles, menu order, and
//! for each name the SHA-256 of its content, with the content's type and size) and the
//! *bytes*, content-addressed by SHA-256, so the same picture uploaded under two names is
//! stored once. The server always answers from an in-memory [`Catalog`] that is replaced
//! whole on every change (readers never lock); bytes come from memory for a folder store, and
//! through a byte-bounded cache from the database for a database store.
//!
//! * [`Store`]: what the server holds: the catalog, the bytes, the change feed.
//! * `catalog`: the catalog in memory and the [`catalog::Edit`]s that change it.
//! * `writer`: a database store's writes, and its byte cache (`cache`); `blobs`: picture
//!   bytes in an S3-compatible object store instead of the database.
//! * `db`: the database, `sqlite` (one server) or `postgres` (several servers on one
//!   database), with the SQL they share in `statements`; `follow`: how a server on a shared
//!   database learns of the others' edits.
//! * `folder`: reading a folder of pictures (the `folder:` store, first-start import,
//!   `import`), `transfer`: `export`, and `migrate`: one store copied into another.
//! * `upload`: checking an upload; `metadata`: removing EXIF and the like from it.
//! * `picture`: one picture file, and the rules for names and titles.

mod blobs;
pub mod cache;
pub mod catalog;
mod db;
mod folder;
mod follow;
pub(crate) mod manifest;
mod metadata;
mod migrate;
mod picture;
mod postgres;
mod sqlite;
mod statements;
mod transfer;
pub(crate) mod upload;
mod variants;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use picture_protocol::{Change, ChangeKind, PictureInfo, Selector};
use tokio::sync::broadcast;
use tokio_util::sync::DropGuard;
use tracing::info;

pub use blobs::{BlobError, BlobSettings, BlobsUrl, Credentials};
use cache::ByteCache;
pub use catalog::Catalog;
use catalog::Edit;
use db::Database;
pub use folder::{Folder, LoadError};
use manifest::title_from_name;
pub use migrate::{MigrateError, Migrated, Step, migrate};
pub use picture::{
    MAX_PICTURE_BYTES, NameError, Picture, PictureError, check_name, check_title, inspect,
};
pub use postgres::{PgError, PoolSettings};
pub use sqlite::DbError;
pub use transfer::{ExportError, export};
pub use upload::{Measured, UploadError, UploadRules, measure};
pub use variants::{StoredVariant, VariantKey};
use writer::{Blobs, Upload, Writer};

/// Change notices kept for subscribers that are slow to take them; one that falls further
/// behind is told it lost some and reloads the catalog.
const CHANGE_BACKLOG: usize = 256;

/// Objects `clean-blobs` checks and deletes while edits wait, at most.
const CLEAN_BATCH: usize = 16;

/// Default for the byte cache of a database store.
pub const DEFAULT_CACHE_SIZE: u64 = 256 * 1024 * 1024;

/// Default number of connections to a PostgreSQL store.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Default deadline of every call to a PostgreSQL store.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Default deadline of every request to an object store (a large picture takes a while).
pub const DEFAULT_BLOBS_TIMEOUT: Duration = Duration::from_secs(30);

/// Which store: `sqlite:PATH` (the default), `postgres://...` (shared by several servers) or
/// `folder:DIR` (read-only).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Folder(PathBuf),
    /// A PostgreSQL connection URL, as libpq reads it.
    Postgres(String),
}

const STORE_FORMS: &str = "sqlite:PATH, postgres://USER@HOST:PORT/DB or folder:DIR";

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a store URL ({STORE_FORMS})"))?;
        if rest.is_empty() {
            return Err(format!("{s:?} names no path"));
        }
        match scheme {
            "sqlite" => Ok(StoreUrl::Sqlite(rest.into())),
            "folder" => Ok(StoreUrl::Folder(rest.into())),
            "postgres" | "postgresql" => match s.parse::<tokio_postgres::Config>() {
                Ok(_) => Ok(StoreUrl::Postgres(s.to_owned())),
                Err(e) => Err(format!(
                    "not a PostgreSQL URL: {}",
                    postgres::with_causes(&e)
                )),
            },
            other => Err(format!("unknown store type {other:?} ({STORE_FORMS})")),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Folder(path) => write!(f, "folder:{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// Debug output shows what Display shows: never a password.
impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// A URL with the password of its `user:password@` part, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let host_onwards = &rest[userinfo.len()..];
            format!("{scheme}://{user}:***{host_onwards}")
        }
        _ => url.to_owned(),
    }
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of pictures a database store keeps in memory.
    pub cache_size: u64,
    pub upload: UploadRules,
    /// Connections and deadlines of a PostgreSQL store.
    pub pool: PoolSettings,
    /// The object store picture bytes go to, instead of the database.
    pub blobs: Option<BlobsUrl>,
    pub blob_settings: BlobSettings,
    /// Whether a database store that does not exist is made (and seeded); else opening it is
    /// an error. Off for what works on an existing store: `migrate`'s source, `clean-blobs`.
    pub create: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: DEFAULT_CACHE_SIZE,
            upload: UploadRules::default(),
            pool: PoolSettings {
                size: DEFAULT_POOL_SIZE,
                timeout: DEFAULT_DB_TIMEOUT,
            },
            blobs: None,
            blob_settings: BlobSettings {
                timeout: DEFAULT_BLOBS_TIMEOUT,
                credentials: None,
            },
            create: true,
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
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("the bytes of picture {0:?} are missing from the store")]
    MissingBytes(String),
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a write was not done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "this store is read-only (folder:); use a database store (sqlite: or postgres://) to \
         change pictures"
    )]
    ReadOnly,
    #[error("there is no picture {0}")]
    NotFound(Selector),
    #[error("the name {0:?} is already taken (ignoring case)")]
    Conflict(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("picture refused: {0}")]
    Upload(#[from] UploadError),
    #[error(
        "the catalog kept changing under this write (other servers are writing to the same \
         store); try again"
    )]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why `clean-blobs` did not clean.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error("this store keeps no picture bytes in an object store (--blobs)")]
    NoObjectStore,
    #[error(
        "the catalog is empty: every object would be deleted; is this the store the servers use?"
    )]
    EmptyCatalog,
    #[error(transparent)]
    Blobs(#[from] BlobError),
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
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("an object store for picture bytes needs a database store (sqlite: or postgres://)")]
    BlobsWithoutDatabase,
    #[error("there is no database at {}", .0.display())]
    Missing(PathBuf),
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
    fn new(catalog: Catalog) -> Published {
        Published {
            catalog: ArcSwap::from_pointee(catalog),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
        }
    }

    /// Makes an edit that the database has committed visible: the new catalog for readers,
    /// then `settle` with it (before anyone is told), then a notice for subscribers. Returns the
    /// edited picture, if it is still there.
    fn publish(
        &self,
        before: &Catalog,
        edit: &Edit,
        version: u64,
        settle: impl FnOnce(&Catalog),
    ) -> Option<Arc<PictureInfo>> {
        let name = match (edit, edit.index()) {
            (Edit::Append(info), _) => info.name.clone(),
            (_, Some(index)) => before.entries()[index].name.clone(),
            (_, None) => String::new(),
        };
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
        let after = Arc::new(after);
        self.catalog.store(after.clone());
        settle(&after);
        // No subscriber is not an error.
        let _ = self.changes.send(Change {
            version,
            kind: edit.kind(),
            name,
            picture: picture.as_deref().cloned(),
        });
        picture
    }

    /// Replaces the whole catalog, and tells subscribers to read it again.
    fn replace(&self, catalog: Catalog) {
        let version = catalog.version();
        self.catalog.store(Arc::new(catalog));
        let _ = self.changes.send(Change {
            version,
            kind: ChangeKind::Lost,
            name: String::new(),
            picture: None,
        });
    }
}

enum Backend {
    /// Every picture's bytes in memory, by SHA-256; no writes.
    Folder(HashMap<[u8; 32], Bytes>),
    Database(Arc<Writer>),
}

pub struct Store {
    published: Arc<Published>,
    not_found: Found,
    backend: Backend,
    upload: UploadRules,
    /// Stops following other servers' edits when the store goes.
    _follower: Option<DropGuard>,
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
    /// (the assets folder) first, if that folder exists.
    pub async fn open(
        url: &StoreUrl,
        seed: Option<&Path>,
        options: &StoreOptions,
    ) -> Result<Store, OpenError> {
        let db = match url {
            StoreUrl::Folder(_) if options.blobs.is_some() => {
                return Err(OpenError::BlobsWithoutDatabase);
            }
            StoreUrl::Folder(dir) => {
                let dir = dir.clone();
                let folder = blocking(move || Folder::load(&dir)).await??;
                return Ok(Store::from_folder(folder));
            }
            StoreUrl::Sqlite(path) if !options.create && !path.is_file() => {
                return Err(OpenError::Missing(path.clone()));
            }
            StoreUrl::Sqlite(path) => {
                let path = path.clone();
                Database::Sqlite(Arc::new(
                    blocking(move || sqlite::Database::open(&path)).await??,
                ))
            }
            StoreUrl::Postgres(url) => Database::Postgres(Arc::new(
                postgres::Database::open(url, options.pool, options.create).await?,
            )),
        };
        let blobs = match &options.blobs {
            Some(url) => Blobs::Bucket(blobs::Bucket::open(url, &options.blob_settings).await?),
            None => Blobs::InDatabase,
        };
        Store::open_database(db, blobs, seed, options).await
    }

    /// A read-only store of a loaded folder.
    pub fn from_folder(folder: Folder) -> Store {
        let bytes = folder
            .pictures
            .iter()
            .map(|p| (p.info.sha256, p.bytes.clone()))
            .collect();
        let infos = folder.pictures.into_iter().map(|p| p.info).collect();
        Store {
            published: Arc::new(Published::new(Catalog::new(1, infos))),
            not_found: found(folder.not_found),
            backend: Backend::Folder(bytes),
            upload: UploadRules::default(),
            _follower: None,
        }
    }

    async fn open_database(
        db: Database,
        blobs: Blobs,
        seed: Option<&Path>,
        options: &StoreOptions,
    ) -> Result<Store, OpenError> {
        let mut loaded = db.load().await?;
        if options.create && !loaded.seeded && loaded.pictures.is_empty() {
            let folder = match seed.filter(|dir| dir.is_dir()) {
                Some(dir) => {
                    let dir = dir.to_path_buf();
                    let folder = blocking(move || Folder::load(&dir)).await??;
                    info!(
                        pictures = folder.pictures.len(),
                        "first start: importing the assets"
                    );
                    Some(folder)
                }
                None => None,
            };
            let (pictures, not_found) = match folder {
                Some(folder) => unpack(folder),
                None => (Vec::new(), None),
            };
            let staged = blobs.stage(&pictures).await?;
            let imported = db.import(staged, not_found, true).await;
            blobs.ensure_all(&pictures).await;
            imported?;
            loaded = db.load().await?;
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
        let published = Arc::new(Published::new(Catalog::new(
            loaded.version,
            loaded.pictures,
        )));
        let writer = Arc::new(Writer::new(
            db,
            blobs,
            ByteCache::new(options.cache_size),
            published.clone(),
        ));
        Ok(Store {
            published,
            not_found: found(not_found),
            _follower: follow::start(&writer),
            backend: Backend::Database(writer),
            upload: options.upload,
        })
    }

    /// The catalog as it is now. Cheap; hold it only as long as one answer needs it.
    pub fn catalog(&self) -> Guard<Arc<Catalog>> {
        self.published.catalog.load()
    }

    /// What a request for an unknown picture receives.
    /// The rules uploads are held to; variants are made under the same pixel limit.
    pub fn upload_rules(&self) -> UploadRules {
        self.upload
    }

    pub fn not_found(&self) -> Found {
        self.not_found.clone()
    }

    /// Whether this store accepts writes.
    pub fn is_writable(&self) -> bool {
        matches!(self.backend, Backend::Database(_))
    }

    /// Bytes of pictures the cache holds (0 for a folder store, which holds every picture).
    pub fn cached_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Database(writer) => writer.cached_bytes(),
            Backend::Folder(_) => 0,
        }
    }

    /// Change notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.published.changes.subscribe()
    }

    /// The picture a selector names, or `None` when there is no such picture.
    pub async fn get(&self, selector: &Selector) -> Result<Option<Found>, StoreError> {
        let mut caught_up = false;
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
                // Still the same catalog: another server (or process) removed the picture and
                // this one has not heard yet. Catch up once, and ask again.
                Err(StoreError::MissingBytes(_)) if !caught_up => {
                    if let Backend::Database(writer) = &self.backend {
                        writer.catch_up_in_turn().await?;
                    }
                    caught_up = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The bytes of the picture `info` describes.
    pub async fn bytes_of(&self, info: &PictureInfo) -> Result<Bytes, StoreError> {
        match &self.backend {
            Backend::Folder(bytes) => bytes
                .get(&info.sha256)
                .cloned()
                .ok_or_else(|| StoreError::MissingBytes(info.name.clone())),
            Backend::Database(writer) => writer.bytes_of(info).await,
        }
    }

    /// A variant kept in the store: `None` when there is none, or the store keeps none (a
    /// folder).
    pub async fn stored_variant(
        &self,
        key: VariantKey,
    ) -> Result<Option<StoredVariant>, StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok(None),
            Backend::Database(writer) => writer.db.read_variant(key).await,
        }
    }

    /// Keeps a variant in the store, where every server on it finds it (a folder keeps none).
    pub async fn keep_variant(
        &self,
        key: VariantKey,
        variant: StoredVariant,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok(()),
            Backend::Database(writer) => writer.db.store_variant(key, variant).await,
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
        let writer = self.writer()?;
        check_name(name)?;
        check_title(title)?;
        let rules = self.upload;
        let checked = blocking(move || upload::check(bytes, rules)).await??;
        // Content-addressed: caching it before the commit can never show wrong bytes.
        writer.remember(checked.sha256, checked.bytes.clone());
        let (name, title) = (name.to_owned(), title.to_owned());
        let selector = Selector::Name(name.clone());
        let upload = Upload {
            sha256: checked.sha256,
            bytes: checked.bytes.clone(),
        };
        let stored = writer
            .write(Some(upload), move |catalog: &Catalog| {
                let existing = catalog.index_of_name(&name);
                if existing.is_some() && !replace {
                    return Err(WriteError::Conflict(name.clone()));
                }
                let title = match (title.as_str(), existing) {
                    ("", Some(index)) => catalog.entries()[index].title.clone(),
                    ("", None) => title_from_name(&name),
                    (title, _) => title.to_owned(),
                };
                let info = PictureInfo {
                    number: existing.map_or(catalog.len() + 1, |i| i + 1) as u32,
                    name: name.clone(),
                    title,
                    mime: checked.mime.to_owned(),
                    width: checked.width,
                    height: checked.height,
                    // Uploads are bounded far below 4 GiB by the server's upload limit.
                    size: checked.bytes.len() as u32,
                    sha256: checked.sha256,
                };
                Ok(match existing {
                    Some(index) => Edit::Replace(index, info),
                    None => Edit::Append(info),
                })
            })
            .await?;
        stored.ok_or(WriteError::NotFound(selector))
    }

    pub async fn delete(&self, selector: &Selector) -> Result<(), WriteError> {
        self.edit(selector, |_, index| Ok(Edit::Remove(index)))
            .await
            .map(drop)
    }

    pub async fn rename(
        &self,
        selector: &Selector,
        name: &str,
    ) -> Result<Arc<PictureInfo>, WriteError> {
        check_name(name)?;
        let name = name.to_owned();
        self.edit(selector, move |catalog, index| {
            match catalog.index_of_name(&name) {
                Some(other) if other != index => Err(WriteError::Conflict(name.clone())),
                _ => Ok(Edit::Rename(index, name.clone())),
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
        self.edit(selector, move |_, index| {
            Ok(Edit::Retitle(index, title.clone()))
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
        self.edit(selector, move |catalog, index| {
            let to = (position as usize).saturating_sub(1).min(catalog.len() - 1);
            Ok(Edit::Move(index, to))
        })
        .await?
        .ok_or_else(|| WriteError::NotFound(selector.clone()))
    }

    /// An edit of the picture `selector` names, decided by `decide` against the current
    /// catalog (again, if another server changed it first). Returns the picture after the
    /// edit (`None` once removed).
    async fn edit(
        &self,
        selector: &Selector,
        mut decide: impl FnMut(&Catalog, usize) -> Result<Edit, WriteError> + Send + 'static,
    ) -> Result<Option<Arc<PictureInfo>>, WriteError> {
        let selector = selector.clone();
        self.writer()?
            .write(None, move |catalog: &Catalog| {
                let index = catalog
                    .index_of(&selector)
                    .ok_or_else(|| WriteError::NotFound(selector.clone()))?;
                decide(catalog, index)
            })
            .await
    }

    fn writer(&self) -> Result<&Arc<Writer>, WriteError> {
        match &self.backend {
            Backend::Database(writer) => Ok(writer),
            Backend::Folder(_) => Err(WriteError::ReadOnly),
        }
    }

    /// Imports a folder of pictures (with its `catalog.toml`) into a database store: names
    /// already present get the folder's picture and title, new ones are appended in the
    /// folder's order.
    pub async fn import(&self, dir: &Path) -> Result<usize, OpenError> {
        let dir = dir.to_path_buf();
        let folder = blocking(move || Folder::load(&dir)).await??;
        self.import_folder(folder).await
    }

    /// Imports loaded pictures, as [`Store::import`] does, in one transaction, and makes them
    /// visible. Returns how many there were.
    pub async fn import_folder(&self, folder: Folder) -> Result<usize, OpenError> {
        let count = folder.pictures.len();
        let (pictures, not_found) = unpack(folder);
        self.writer()?.import(pictures, not_found).await?;
        Ok(count)
    }

    /// Whether the store answers: a database store asks its database (SQLite on the blocking
    /// pool, so a caller that puts a deadline on this also covers a pool that is full).
    pub async fn ready(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok(()),
            Backend::Database(writer) => writer.ready().await,
        }
    }

    /// Deletes the object store's objects that no catalog entry names and that were written
    /// more than `older_than` ago (an upload puts its object before the catalog names it).
    /// Edits wait while the catalog is checked and the objects deleted, and an upload makes
    /// sure its object is there once committed, so no object a picture needs is lost.
    /// Returns how many objects there were, and how many were deleted.
    pub async fn clean_blobs(&self, older_than: Duration) -> Result<(usize, usize), CleanError> {
        let writer = self.writer().map_err(|_| CleanError::NoObjectStore)?;
        let Blobs::Bucket(bucket) = &writer.blobs else {
            return Err(CleanError::NoObjectStore);
        };
        if self.catalog().is_empty() {
            return Err(CleanError::EmptyCatalog);
        }
        let objects = bucket.list().await?;
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let candidates: Vec<[u8; 32]> = objects
            .iter()
            .filter(|(_, written)| *written <= cutoff)
            .map(|(sha256, _)| *sha256)
            .collect();
        let mut deleted = 0;
        for batch in candidates.chunks(CLEAN_BATCH) {
            let lock = writer.db.lock_writes().await?;
            let (lock, unreferenced) = lock.unreferenced(batch.to_vec()).await?;
            for sha256 in &unreferenced {
                // Written again since the listing (an upload of the same bytes, not committed
                // yet): left alone.
                match bucket.written(sha256).await? {
                    Some(written) if written <= cutoff => {
                        bucket.delete(sha256).await?;
                        deleted += 1;
                    }
                    _ => {}
                }
            }
            lock.release().await?;
        }
        Ok((objects.len(), deleted))
    }

    /// Whether the database finds itself sound ("ok"), or what is wrong: SQLite's
    /// `PRAGMA integrity_check`, PostgreSQL's catalog rows checked.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        match &self.backend {
            Backend::Folder(_) => Ok("ok".into()),
            Backend::Database(writer) => writer.integrity_check().await,
        }
    }
}

/// A loaded folder's pictures and not-found picture, as a database imports them.
#[allow(clippy::type_complexity)]
fn unpack(folder: Folder) -> (Vec<(PictureInfo, Bytes)>, Option<(PictureInfo, Bytes)>) {
    let pictures = folder
        .pictures
        .into_iter()
        .map(|p| (p.info, p.bytes))
        .collect();
    let not_found = Some((folder.not_found.info, folder.not_found.bytes));
    (pictures, not_found)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        let url: StoreUrl = "postgres://pic:s3cr%3At@db.example:5433/pictures?sslmode=disable"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = url.to_string();
        assert_eq!(
            shown,
            "postgres://pic:***@db.example:5433/pictures?sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("s3cr"));
        let plain = "postgresql://pic@db.example/pictures";
        assert_eq!(
            plain.parse::<StoreUrl>().map(|u| u.to_string()),
            Ok(plain.into())
        );
    }

    #[test]
    fn store_urls_name_their_kind() {
        assert_eq!(
            "sqlite:data/p.db".parse(),
            Ok(StoreUrl::Sqlite("data/p.db".into()))
        );
        assert!("mysql://x".parse::<StoreUrl>().is_err());
        assert!("postgres://db.example:port/x".parse::<StoreUrl>().is_err());
    }
}
