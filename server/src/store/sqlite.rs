//! The SQLite database behind the default store: the catalog (names, titles, order, the
//! content each name points to) and the picture bytes, content-addressed by SHA-256.
//!
//! Every function here blocks; the store calls them from tokio's blocking pool, never on the
//! async workers. One connection writes (SQLite allows one writer at a time anyway); a few
//! more read picture bytes on cache misses, which WAL lets run beside a write.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use picture_protocol::PictureInfo;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};

use super::catalog::{Edit, name_key};
use super::db::{Applied, Loaded};
use super::statements::{self, Statement, Value, for_sqlite};
use super::variants::{self, StoredVariant, VariantKey};
use crate::metrics;

/// How long a connection waits for another one's lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections that read picture bytes on cache misses at once.
pub const READERS: usize = 4;

/// The schema, one step per version: step n takes a database from version n to n + 1.
/// `PRAGMA user_version` records where a database is.
const MIGRATIONS: &[&str] = &[
    // 1: contents are what pictures point to, one row per distinct SHA-256; their bytes live
    // in a table of their own so that reading the catalog never touches them.
    "CREATE TABLE contents (
         sha256 BLOB PRIMARY KEY CHECK (length(sha256) = 32),
         mime TEXT NOT NULL,
         width INTEGER NOT NULL,
         height INTEGER NOT NULL,
         size INTEGER NOT NULL
     );
     CREATE TABLE blobs (
         sha256 BLOB PRIMARY KEY REFERENCES contents (sha256) ON DELETE CASCADE,
         bytes BLOB NOT NULL
     );
     CREATE TABLE pictures (
         id INTEGER PRIMARY KEY,
         position INTEGER NOT NULL,
         name TEXT NOT NULL,
         name_key TEXT NOT NULL UNIQUE,
         title TEXT NOT NULL,
         sha256 BLOB NOT NULL REFERENCES contents (sha256)
     );
     CREATE INDEX pictures_position ON pictures (position);
     CREATE INDEX pictures_sha256 ON pictures (sha256);
     CREATE TABLE settings (key TEXT PRIMARY KEY, value ANY) STRICT;
     INSERT INTO settings (key, value) VALUES ('version', 0);",
    // 2: variants (scaled or converted pictures), kept by content and dropped with it.
    "CREATE TABLE variants (
         source BLOB NOT NULL REFERENCES contents (sha256) ON DELETE CASCADE,
         max_width INTEGER NOT NULL,
         max_height INTEGER NOT NULL,
         format INTEGER NOT NULL,
         width INTEGER NOT NULL,
         height INTEGER NOT NULL,
         bytes BLOB NOT NULL,
         PRIMARY KEY (source, max_width, max_height, format)
     );",
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this program knows ({known}); \
         use a newer picture-server"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "an edit changed {0} rows where one was expected: the database's rows are not where \
         this server's catalog says; restart it"
    )]
    RowsMoved(usize),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The database: one writing connection, and a few for reading bytes.
pub struct Database {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Database {
    /// Opens (creating if need be) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| DbError::Folder {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut writer = Connection::open(path).map_err(open_error)?;
        configure(&writer).map_err(open_error)?;
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        migrate(&mut writer, path)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&reader)?;
                Ok(reader)
            })
            .collect::<Result<_, rusqlite::Error>>()
            .map_err(open_error)?;
        Ok(Database {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
        })
    }

    /// Reads the catalog and the not-found picture.
    pub fn load(&self) -> Result<Loaded, DbError> {
        let conn = self.writer();
        let mut statement = conn.prepare(&for_sqlite(statements::CATALOG))?;
        let pictures = statement
            .query_map([], |row| {
                Ok(PictureInfo {
                    number: row.get(0)?,
                    name: row.get(1)?,
                    title: row.get(2)?,
                    mime: row.get(3)?,
                    width: row.get(4)?,
                    height: row.get(5)?,
                    size: row.get(6)?,
                    sha256: row.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (index, picture) in pictures.iter().enumerate() {
            if picture.number as usize != index + 1 {
                return Err(DbError::Damaged {
                    path: self.path.clone(),
                    reason: format!(
                        "picture {:?} is at position {} where {} was expected",
                        picture.name,
                        picture.number,
                        index + 1
                    ),
                });
            }
        }
        let not_found = match setting::<Vec<u8>>(&conn, "not_found")? {
            Some(sha256) => conn
                .query_row(
                    "SELECT b.bytes, c.mime FROM blobs b JOIN contents c ON c.sha256 = b.sha256
                     WHERE b.sha256 = ?1",
                    [sha256],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?,
            None => None,
        };
        Ok(Loaded {
            version: setting::<i64>(&conn, "version")?.unwrap_or(0) as u64,
            seeded: setting::<i64>(&conn, "seeded")?.is_some(),
            pictures,
            not_found,
        })
    }

    /// The bytes of the content with this hash, from one of the reading connections.
    pub fn read_bytes(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, DbError> {
        self.read(|conn| read_bytes(conn, sha256))
    }

    /// A stored variant, from one of the reading connections.
    pub fn read_variant(&self, key: &VariantKey) -> Result<Option<StoredVariant>, DbError> {
        self.read(|conn| {
            conn.prepare_cached(&statements::for_sqlite(variants::VARIANT))?
                .query_row(rusqlite::params_from_iter(key.params()), |row| {
                    Ok(StoredVariant {
                        width: row.get(0)?,
                        height: row.get(1)?,
                        bytes: Bytes::from(row.get::<_, Vec<u8>>(2)?),
                    })
                })
                .optional()
        })
    }

    /// Keeps a variant, unless one is there or its content is gone.
    pub fn store_variant(&self, key: &VariantKey, variant: &StoredVariant) -> Result<(), DbError> {
        timed("write", || {
            self.writer()
                .prepare_cached(&statements::for_sqlite(variants::INSERT_VARIANT))?
                .execute(rusqlite::params_from_iter(key.insert_params(variant)))?;
            Ok(())
        })
    }

    /// Whether the database file can be opened and read now. The open connections would not
    /// tell: they keep working on a file deleted under them, and answer from their caches. A
    /// new connection reads the file's header and schema.
    pub fn ping(&self) -> Result<(), DbError> {
        let open_error = |source| DbError::Open {
            path: self.path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.query_row("SELECT 1 FROM pictures LIMIT 1", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }

    /// Takes the database's write lock on a connection of its own, so that no edit commits
    /// until the lock is released (or dropped, which closes the connection and so ends the
    /// transaction).
    pub fn lock_writes(&self) -> Result<WriteLock, DbError> {
        let open_error = |source| DbError::Open {
            path: self.path.clone(),
            source,
        };
        let conn = Connection::open(&self.path).map_err(open_error)?;
        configure(&conn).map_err(open_error)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(WriteLock(conn))
    }

    /// Runs `read` on one of the reading connections.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, DbError> {
        timed("read", || {
            let reader = self.readers.lock().ok().and_then(|mut r| r.pop());
            let result = match &reader {
                Some(conn) => read(conn),
                // Every reader is busy: the writer can read too (WAL readers never block it long).
                None => read(&self.writer()),
            };
            if let (Some(conn), Ok(mut readers)) = (reader, self.readers.lock()) {
                readers.push(conn);
            }
            Ok(result?)
        })
    }

    /// Applies one edit in one transaction, storing `content` first if it is new, and bumps the
    /// catalog version from `expected`.
    ///
    /// The edit was checked against the in-memory catalog of version `expected`: a database
    /// at another version (another process changed it) makes nothing and says so, and rows
    /// that are not where that catalog says fail the whole transaction rather than drift apart.
    pub fn apply(
        &self,
        edit: &Edit,
        content: Option<&[u8]>,
        expected: u64,
    ) -> Result<Applied, DbError> {
        timed("write", || {
            let mut conn = self.writer();
            let tx = conn.transaction()?;
            let found = setting::<i64>(&tx, "version")?.unwrap_or(0) as u64;
            if found != expected {
                return Ok(Applied::Stale);
            }
            if let Edit::Append(info) | Edit::Replace(_, info) = edit {
                store_content(&tx, info, content)?;
            }
            // The content an edit may leave unused: checking just that one keeps a write's cost
            // independent of the catalog's size.
            let replaced: Option<Vec<u8>> = match edit {
                Edit::Replace(index, _) | Edit::Remove(index) => tx
                    .query_row(
                        "SELECT sha256 FROM pictures WHERE position = ?1",
                        [*index as i64 + 1],
                        |row| row.get(0),
                    )
                    .optional()?,
                _ => None,
            };
            apply_edit(&tx, edit)?;
            if let Some(sha256) = replaced {
                tx.execute(
                    "DELETE FROM contents WHERE sha256 = ?1
                     AND NOT EXISTS (SELECT 1 FROM pictures WHERE sha256 = ?1)
                     AND ?1 IS NOT (SELECT value FROM settings WHERE key = 'not_found')",
                    [sha256],
                )?;
            }
            let version = bump_version(&tx)?;
            tx.commit()?;
            Ok(Applied::Done(version))
        })
    }

    /// Imports pictures in one transaction: a name already present gets the new content and
    /// title, a new one is appended. Marks the database as seeded. Returns the new version.
    pub fn import(
        &self,
        pictures: &[(PictureInfo, Option<&[u8]>)],
        not_found: Option<(&PictureInfo, &[u8])>,
    ) -> Result<u64, DbError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let mut len: u32 = tx.query_row("SELECT count(*) FROM pictures", [], |row| row.get(0))?;
        for (info, bytes) in pictures {
            store_content(&tx, info, *bytes)?;
            let existing: Option<i64> = tx
                .query_row(
                    &for_sqlite(statements::POSITION_OF_NAME),
                    [name_key(&info.name)],
                    |row| row.get(0),
                )
                .optional()?;
            let edit = match existing {
                Some(position) => Edit::Replace(position as usize - 1, info.clone()),
                None => {
                    len += 1;
                    Edit::Append(PictureInfo {
                        number: len,
                        ..info.clone()
                    })
                }
            };
            apply_edit(&tx, &edit)?;
        }
        let version = settle_catalog(&tx, not_found)?;
        tx.commit()?;
        Ok(version)
    }

    /// Whether the bytes of this content are in the database.
    pub fn has_bytes(&self, sha256: &[u8; 32]) -> Result<bool, DbError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM blobs WHERE sha256 = ?1")?
                .exists([&sha256[..]])
        })
    }

    /// Records a content (no picture points to it yet) and its bytes if given (`None`: they
    /// are in an object store), unless they are there.
    pub fn store_bytes(&self, info: &PictureInfo, bytes: Option<&[u8]>) -> Result<(), DbError> {
        timed("write", || {
            let mut conn = self.writer();
            let tx = conn.transaction()?;
            store_content(&tx, info, bytes)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Makes the catalog exactly `pictures`, in this order, and the not-found picture
    /// `not_found`, in one transaction. Every picture's content must be stored already, its
    /// bytes in the database or in the object store.
    pub fn replace_catalog(
        &self,
        pictures: &[PictureInfo],
        not_found: (&PictureInfo, &[u8]),
    ) -> Result<u64, DbError> {
        timed("write", || {
            let mut conn = self.writer();
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM pictures", [])?;
            for (index, info) in pictures.iter().enumerate() {
                store_content(&tx, info, None)?;
                let numbered = PictureInfo {
                    number: index as u32 + 1,
                    ..info.clone()
                };
                apply_edit(&tx, &Edit::Append(numbered))?;
            }
            let version = settle_catalog(&tx, Some(not_found))?;
            tx.commit()?;
            Ok(version)
        })
    }

    /// `PRAGMA integrity_check`: "ok", or what is wrong.
    pub fn integrity_check(&self) -> Result<String, DbError> {
        Ok(self
            .writer()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection inconsistent: SQLite rolls
        // back the transaction that was open when the `Transaction` was dropped.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// See [`Database::lock_writes`].
pub struct WriteLock(Connection);

impl WriteLock {
    /// Which of `candidates` no catalog entry (nor the not-found picture) points to.
    pub fn unreferenced(&self, candidates: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, DbError> {
        let mut statement = self.0.prepare("SELECT 1 FROM contents WHERE sha256 = ?1")?;
        let mut unreferenced = Vec::new();
        for candidate in candidates {
            if !statement.exists([&candidate[..]])? {
                unreferenced.push(*candidate);
            }
        }
        Ok(unreferenced)
    }

    pub fn release(self) -> Result<(), DbError> {
        Ok(self.0.execute_batch("COMMIT")?)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn setting<T: rusqlite::types::FromSql>(
    conn: &Connection,
    key: &str,
) -> rusqlite::Result<Option<T>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

fn read_bytes(conn: &Connection, sha256: &[u8; 32]) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(&for_sqlite(statements::BLOB))?
        .query_row([&sha256[..]], |row| row.get(0))
        .optional()
}

/// Records a content, and its bytes when they are kept in the database (`None`: they are in
/// an object store).
fn store_content(
    tx: &Transaction<'_>,
    info: &PictureInfo,
    bytes: Option<&[u8]>,
) -> Result<(), DbError> {
    run(tx, &statements::insert_content(info))?;
    if let Some(bytes) = bytes {
        run(tx, &statements::insert_blob(&info.sha256, bytes))?;
    }
    Ok(())
}

fn apply_edit(tx: &Transaction<'_>, edit: &Edit) -> Result<(), DbError> {
    for statement in statements::edit_statements(edit) {
        run(tx, &statement)?;
    }
    Ok(())
}

/// Runs one statement; returns how many rows it changed.
fn run(conn: &Connection, statement: &Statement<'_>) -> Result<usize, DbError> {
    let changed = conn
        .prepare_cached(&for_sqlite(statement.sql))?
        .execute(rusqlite::params_from_iter(&statement.params))?;
    if statement.changes_one_row && changed != 1 {
        return Err(DbError::RowsMoved(changed));
    }
    Ok(changed)
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(n) => ToSqlOutput::from(*n),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// What ends an import or a whole catalog's replacement: the not-found picture (if given),
/// the mark that the database was seeded, contents no picture uses removed, the version
/// bumped. Returns the new version.
fn settle_catalog(
    tx: &Transaction<'_>,
    not_found: Option<(&PictureInfo, &[u8])>,
) -> Result<u64, DbError> {
    if let Some((info, bytes)) = not_found {
        store_content(tx, info, Some(bytes))?;
        tx.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('not_found', ?1)",
            [&info.sha256[..]],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES ('seeded', 1)",
        [],
    )?;
    remove_unused_contents(tx)?;
    Ok(bump_version(tx)?)
}

/// Content no picture points to any more (nor the not-found setting) goes, with its bytes.
fn remove_unused_contents(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM contents WHERE sha256 NOT IN (SELECT sha256 FROM pictures)
         AND sha256 IS NOT (SELECT value FROM settings WHERE key = 'not_found')",
        [],
    )?;
    Ok(())
}

fn bump_version(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let version: i64 = tx.query_row(
        "UPDATE settings SET value = value + 1 WHERE key = 'version' RETURNING value",
        [],
        |row| row.get(0),
    )?;
    Ok(version as u64)
}

/// Runs one database operation, recording how long it took and whether it failed.
fn timed<T>(
    op: &'static str,
    operation: impl FnOnce() -> Result<T, DbError>,
) -> Result<T, DbError> {
    let started = Instant::now();
    let result = operation();
    metrics::store_operation(op, started.elapsed(), result.is_err());
    result
}
