//! The PostgreSQL database behind a store that several servers share: the same tables as the
//! SQLite store (contents, their bytes, pictures in menu order) plus a log of recent edits.
//!
//! Every edit locks the catalog's version row, checks the version its writer decided against,
//! writes the edit and a copy of it into the change log, bumps the version and sends a
//! `NOTIFY`, all in one transaction. The other servers, `LISTEN`ing (see `listen`), read the
//! log from their version on and apply the same edits to their catalogs in memory; one that
//! finds a gap (the log is kept short, and `import` leaves none) reads the whole catalog.
//!
//! Every call has a deadline: the pool's wait, connect and check timeouts, PostgreSQL's
//! `statement_timeout` on every connection, and one around each whole operation.

mod listen;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use picture_protocol::{ChangeKind, PictureInfo};
use tokio_postgres::NoTls;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::catalog::{Edit, name_key};
use super::db::{Applied, Loaded};
use super::statements::{self, Statement, Value};
use super::variants::{self, StoredVariant, VariantKey};
use crate::metrics;

/// The channel edits are announced on.
const CHANNEL: &str = "picture_changes";

/// Edits kept in the change log. A server further behind than this (one that lost its
/// database connection for a while) reads the whole catalog instead.
const CHANGE_LOG_KEEP: i64 = 1000;

/// Change-log rows read at once while catching up.
pub(in crate::store) const CHANGE_LOG_PAGE: i64 = 256;

/// How many times the deadline of one call a call that moves a whole catalog (reading it,
/// importing, replacing it) may take; each of its statements still has the call's deadline.
const BULK_FACTOR: u32 = 12;

/// Taken while migrating, so that servers starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7069_6374_7572_6573; // "pictures"

/// The schema, one step per version, as for SQLite; `schema_version` records where a database
/// is. Every integer is a `bigint`, the one integer type statements shared with SQLite bind.
const MIGRATIONS: &[&str] = &[
    // 1: as SQLite's first version, with the catalog's state in a one-row table and the log.
    "CREATE TABLE contents (
         sha256 bytea PRIMARY KEY CHECK (length(sha256) = 32),
         mime text NOT NULL,
         width bigint NOT NULL,
         height bigint NOT NULL,
         size bigint NOT NULL
     );
     CREATE TABLE blobs (
         sha256 bytea PRIMARY KEY REFERENCES contents (sha256) ON DELETE CASCADE,
         bytes bytea NOT NULL
     );
     CREATE TABLE pictures (
         id bigserial PRIMARY KEY,
         position bigint NOT NULL,
         name text NOT NULL,
         name_key text NOT NULL UNIQUE,
         title text NOT NULL,
         sha256 bytea NOT NULL REFERENCES contents (sha256)
     );
     CREATE INDEX pictures_position ON pictures (position);
     CREATE INDEX pictures_sha256 ON pictures (sha256);
     CREATE TABLE catalog_state (
         id bigint PRIMARY KEY CHECK (id = 1),
         version bigint NOT NULL,
         seeded boolean NOT NULL,
         not_found bytea REFERENCES contents (sha256)
     );
     INSERT INTO catalog_state (id, version, seeded) VALUES (1, 0, false);
     -- One row per recent edit: which edit (its change kind's code), the position it
     -- addresses, and what it sets.
     CREATE TABLE changes (
         version bigint PRIMARY KEY,
         kind smallint NOT NULL,
         position bigint NOT NULL,
         target bigint,
         name text,
         title text,
         mime text,
         width bigint,
         height bigint,
         size bigint,
         sha256 bytea
     );",
    // 2: variants, as SQLite's second version.
    "CREATE TABLE variants (
         source bytea NOT NULL REFERENCES contents (sha256) ON DELETE CASCADE,
         max_width bigint NOT NULL,
         max_height bigint NOT NULL,
         format bigint NOT NULL,
         width bigint NOT NULL,
         height bigint NOT NULL,
         bytes bytea NOT NULL,
         PRIMARY KEY (source, max_width, max_height, format)
     );",
];

/// How the pool and its calls are bounded.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections open at most.
    pub size: usize,
    /// The deadline of every call: a connect, a statement, a whole operation.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the PostgreSQL URL is not valid: {}", with_causes(.0))]
    Url(tokio_postgres::Error),
    /// The cause is in the message, not a `source`: tokio-postgres' own message is only its
    /// kind ("db error"), and a server's answer shows the message alone.
    #[error("PostgreSQL at {target}: {}", with_causes(.error))]
    Sql {
        target: String,
        error: tokio_postgres::Error,
    },
    #[error("PostgreSQL at {target}: {}", with_causes(.error))]
    Pool {
        target: String,
        error: deadpool_postgres::PoolError,
    },
    #[error("PostgreSQL at {target} did not answer within {timeout:?}")]
    Timeout { target: String, timeout: Duration },
    #[error(
        "PostgreSQL at {target} has schema version {found}, newer than this program knows \
         ({known}); use a newer picture-server"
    )]
    TooNew {
        target: String,
        found: i64,
        known: i64,
    },
    #[error("PostgreSQL at {target} holds no picture store (no tables of picture-server's)")]
    NoStore { target: String },
    #[error("PostgreSQL at {target}: the catalog is damaged: {reason}")]
    Damaged { target: String, reason: String },
}

/// An error from a call, before it is told which database it came from.
enum CallError {
    Sql(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    Damaged(String),
}

impl From<tokio_postgres::Error> for CallError {
    fn from(e: tokio_postgres::Error) -> Self {
        CallError::Sql(e)
    }
}

impl From<deadpool_postgres::PoolError> for CallError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        CallError::Pool(e)
    }
}

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// See [`Database::lock_writes`].
pub struct WriteLock(tokio_postgres::Client);

/// The catalog's version, and edits from the change log by version.
pub type Changes = (u64, Vec<(u64, Option<Edit>)>);

pub struct Database {
    pool: Pool,
    /// For the listening connection, which is not the pool's.
    config: tokio_postgres::Config,
    timeout: Duration,
    /// USER@HOST:PORT/DB, for messages: never the password.
    target: String,
}

impl Database {
    /// Connects to the database `url` names and brings its schema up to date; with `create`,
    /// makes the tables if there are none, else that is an error.
    pub async fn open(
        url: &str,
        settings: PoolSettings,
        create: bool,
    ) -> Result<Database, PgError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(PgError::Url)?;
        let timeout = settings.timeout;
        let statement_timeout = format!("-c statement_timeout={}", timeout.as_millis());
        let options = match config.get_options() {
            Some(given) => format!("{given} {statement_timeout}"),
            None => statement_timeout,
        };
        config
            .options(options)
            .application_name("picture-server")
            .connect_timeout(timeout)
            // A peer that vanished without closing is noticed within a minute, not hours.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(20))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A connection whose socket closed is dropped; a query tells the rest.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| PgError::Damaged {
                target: describe(&config),
                reason: format!("no connection pool: {e}"),
            })?;
        let db = Database {
            pool,
            target: describe(&config),
            config,
            timeout,
        };
        db.migrate(create).await?;
        Ok(db)
    }

    async fn migrate(&self, create: bool) -> Result<(), PgError> {
        let found = self
            .call("migrate", async {
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                if !create {
                    let exists: bool = tx
                        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
                        .await?
                        .get(0);
                    if !exists {
                        return Ok(Err(None));
                    }
                }
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL)",
                )
                .await?;
                let found: Option<i64> = tx
                    .query_opt("SELECT version FROM schema_version", &[])
                    .await?
                    .map(|row| row.get(0));
                let found = match found {
                    Some(found) => found,
                    None => {
                        tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                            .await?;
                        0
                    }
                };
                let known = MIGRATIONS.len() as i64;
                if found > known {
                    return Ok(Err(Some((found, known))));
                }
                for sql in MIGRATIONS.iter().skip(found as usize) {
                    tx.batch_execute(sql).await?;
                }
                tx.execute("UPDATE schema_version SET version = $1", &[&known])
                    .await?;
                tx.commit().await?;
                Ok(Ok(()))
            })
            .await?;
        found.map_err(|refused| match refused {
            Some((found, known)) => PgError::TooNew {
                target: self.target.clone(),
                found,
                known,
            },
            None => PgError::NoStore {
                target: self.target.clone(),
            },
        })
    }

    /// Reads the catalog and the not-found picture, as one snapshot.
    pub async fn load(&self) -> Result<Loaded, PgError> {
        self.bulk_call("read", async {
            let mut client = self.pool.get().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let state = tx
                .query_one(
                    "SELECT version, seeded, not_found FROM catalog_state WHERE id = 1",
                    &[],
                )
                .await?;
            let mut pictures = Vec::new();
            for row in tx.query(statements::CATALOG, &[]).await? {
                pictures.push(PictureInfo {
                    number: int(row.get(0))?,
                    name: row.get(1),
                    title: row.get(2),
                    mime: row.get(3),
                    width: int(row.get(4))?,
                    height: int(row.get(5))?,
                    size: int(row.get(6))?,
                    sha256: sha256(row.get(7))?,
                });
            }
            for (index, picture) in pictures.iter().enumerate() {
                if picture.number as usize != index + 1 {
                    return Err(CallError::Damaged(format!(
                        "picture {:?} is at position {} where {} was expected",
                        picture.name,
                        picture.number,
                        index + 1
                    )));
                }
            }
            let not_found = match state.get::<_, Option<Vec<u8>>>(2) {
                Some(sha256) => tx
                    .query_opt(
                        "SELECT b.bytes, c.mime FROM blobs b JOIN contents c USING (sha256)
                         WHERE sha256 = $1",
                        &[&sha256],
                    )
                    .await?
                    .map(|row| (row.get(0), row.get(1))),
                None => None,
            };
            tx.commit().await?;
            Ok(Loaded {
                version: state.get::<_, i64>(0) as u64,
                seeded: state.get(1),
                pictures,
                not_found,
            })
        })
        .await
    }

    /// The bytes of the content with this hash.
    pub async fn read_bytes(&self, sha256: &[u8; 32]) -> Result<Option<Bytes>, PgError> {
        self.call("read", async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(statements::BLOB).await?;
            let row = client.query_opt(&statement, &[&&sha256[..]]).await?;
            Ok(row.map(|row| Bytes::from(row.get::<_, Vec<u8>>(0))))
        })
        .await
    }

    /// A stored variant.
    pub async fn read_variant(&self, key: &VariantKey) -> Result<Option<StoredVariant>, PgError> {
        self.call("read", async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(variants::VARIANT).await?;
            let params = key.params();
            let row = client.query_opt(&statement, &dyn_params(&params)).await?;
            // A row whose dimensions do not fit is not one this server wrote: no variant.
            Ok(row.and_then(|row| {
                Some(StoredVariant {
                    width: u32::try_from(row.get::<_, i64>(0)).ok()?,
                    height: u32::try_from(row.get::<_, i64>(1)).ok()?,
                    bytes: Bytes::from(row.get::<_, Vec<u8>>(2)),
                })
            }))
        })
        .await
    }

    /// Keeps a variant, unless one is there or its content is gone.
    pub async fn store_variant(
        &self,
        key: &VariantKey,
        variant: &StoredVariant,
    ) -> Result<(), PgError> {
        self.call("write", async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(variants::INSERT_VARIANT).await?;
            let params = key.insert_params(variant);
            client.execute(&statement, &dyn_params(&params)).await?;
            Ok(())
        })
        .await
    }

    /// Applies one edit in one transaction if the catalog is still at version `expected`
    /// (else [`Applied::Stale`]), storing `content` first if it is new; logs and announces it.
    pub async fn apply(
        &self,
        edit: &Edit,
        content: Option<&[u8]>,
        expected: u64,
    ) -> Result<Applied, PgError> {
        self.call("write", async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let (found, _) = lock_catalog(&tx).await?;
            if found != expected {
                return Ok(Applied::Stale);
            }
            if let Edit::Append(info) | Edit::Replace(_, info) = edit {
                store_content(&tx, info, content).await?;
            }
            let replaced: Option<Vec<u8>> = match edit {
                Edit::Replace(index, _) | Edit::Remove(index) => tx
                    .query_opt(
                        "SELECT sha256 FROM pictures WHERE position = $1",
                        &[&(*index as i64 + 1)],
                    )
                    .await?
                    .map(|row| row.get(0)),
                _ => None,
            };
            for statement in statements::edit_statements(edit) {
                run(&tx, &statement).await?;
            }
            if let Some(sha256) = replaced {
                tx.execute(
                    "DELETE FROM contents WHERE sha256 = $1
                     AND NOT EXISTS (SELECT 1 FROM pictures WHERE sha256 = $1)
                     AND $1 IS DISTINCT FROM (SELECT not_found FROM catalog_state)",
                    &[&sha256],
                )
                .await?;
            }
            let version = bump_version(&tx).await?;
            log_change(&tx, version, edit).await?;
            tx.commit().await?;
            Ok(Applied::Done(version as u64))
        })
        .await
    }

    /// Imports pictures in one transaction: a name already present gets the new content and
    /// title, a new one is appended. With `only_first`, does nothing if the database was
    /// seeded before. Returns whether it imported. Leaves no change-log row, so that the
    /// servers on this database read the whole catalog again.
    pub async fn import(
        &self,
        pictures: &[(PictureInfo, Option<Bytes>)],
        not_found: Option<(PictureInfo, Bytes)>,
        only_first: bool,
    ) -> Result<bool, PgError> {
        self.bulk_call("write", async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let (_, seeded) = lock_catalog(&tx).await?;
            if seeded && only_first {
                return Ok(false);
            }
            let mut len: i64 = tx
                .query_one("SELECT count(*) FROM pictures", &[])
                .await?
                .get(0);
            for (info, bytes) in pictures {
                store_content(&tx, info, bytes.as_deref()).await?;
                let existing: Option<i64> = tx
                    .query_opt(statements::POSITION_OF_NAME, &[&name_key(&info.name)])
                    .await?
                    .map(|row| row.get(0));
                let edit = match existing {
                    Some(position) => {
                        let index = usize::try_from(position)
                            .ok()
                            .and_then(|p| p.checked_sub(1))
                            .ok_or_else(|| CallError::Damaged(format!("position {position}")))?;
                        Edit::Replace(index, info.clone())
                    }
                    None => {
                        len += 1;
                        Edit::Append(PictureInfo {
                            number: int(len)?,
                            ..info.clone()
                        })
                    }
                };
                for statement in statements::edit_statements(&edit) {
                    run(&tx, &statement).await?;
                }
            }
            let not_found = not_found.as_ref().map(|(info, bytes)| (info, &bytes[..]));
            settle_catalog(&tx, not_found).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Whether the bytes of this content are in the database.
    pub async fn has_bytes(&self, sha256: &[u8; 32]) -> Result<bool, PgError> {
        self.call("read", async {
            let client = self.pool.get().await?;
            let row = client
                .query_opt("SELECT 1 FROM blobs WHERE sha256 = $1", &[&&sha256[..]])
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    /// Records a content (no picture points to it yet) and its bytes if given (`None`: they
    /// are in an object store), unless they are there.
    pub async fn store_bytes(
        &self,
        info: &PictureInfo,
        bytes: Option<&[u8]>,
    ) -> Result<(), PgError> {
        self.call("write", async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            store_content(&tx, info, bytes).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Makes the catalog exactly `pictures`, in this order, and the not-found picture
    /// `not_found`, in one transaction. Every picture's content must be stored already, its
    /// bytes in the database or in the object store. Leaves no change-log row: the servers on
    /// this database read the whole catalog again.
    pub async fn replace_catalog(
        &self,
        pictures: &[PictureInfo],
        not_found: (&PictureInfo, &[u8]),
    ) -> Result<u64, PgError> {
        self.bulk_call("write", async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            lock_catalog(&tx).await?;
            tx.execute("DELETE FROM pictures", &[]).await?;
            for (index, info) in pictures.iter().enumerate() {
                store_content(&tx, info, None).await?;
                let numbered = PictureInfo {
                    number: int(index as i64 + 1)?,
                    ..info.clone()
                };
                for statement in statements::edit_statements(&Edit::Append(numbered)) {
                    run(&tx, &statement).await?;
                }
            }
            let version = settle_catalog(&tx, Some(not_found)).await?;
            tx.commit().await?;
            Ok(version as u64)
        })
        .await
    }

    /// The catalog's version now, and the edits after `version`, oldest first, at most a
    /// page of them; `None` for an edit the log cannot say (the reader then reads the whole
    /// catalog).
    pub async fn changes_since(&self, version: u64) -> Result<Changes, PgError> {
        self.call("read", async {
            let mut client = self.pool.get().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let current: i64 = tx
                .query_one("SELECT version FROM catalog_state WHERE id = 1", &[])
                .await?
                .get(0);
            let rows = tx
                .query(
                    "SELECT version, kind, position, target, name, title, mime, width, height,
                            size, sha256
                     FROM changes WHERE version > $1 ORDER BY version LIMIT $2",
                    &[&(version as i64), &CHANGE_LOG_PAGE],
                )
                .await?;
            tx.commit().await?;
            let edits = rows
                .iter()
                .map(|row| (row.get::<_, i64>(0) as u64, logged_edit(row)))
                .collect();
            Ok((current as u64, edits))
        })
        .await
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), PgError> {
        self.call("ping", async {
            let client = self.pool.get().await?;
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// "ok", or what is wrong with the catalog's rows; `bytes_in_db`: whether every content's
    /// bytes should be in the database too.
    pub async fn check_catalog(&self, bytes_in_db: bool) -> Result<String, PgError> {
        self.call("read", async {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM pictures),
                            (SELECT count(DISTINCT position) FROM pictures),
                            (SELECT coalesce(max(position), 0) FROM pictures),
                            (SELECT count(*) FROM contents c
                             WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = c.sha256))",
                    &[],
                )
                .await?;
            let (count, distinct, last, bytesless): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            Ok(if count != distinct || count != last {
                format!("{count} pictures at {distinct} positions, the last {last}")
            } else if bytes_in_db && bytesless > 0 {
                format!("{bytesless} contents without their bytes")
            } else {
                "ok".to_owned()
            })
        })
        .await
    }

    /// Holds the catalog's version row, on a connection of its own, so that no server commits
    /// an edit until [`Database::release`] (or until the lock is dropped, which closes the
    /// connection and so ends the transaction).
    pub async fn lock_writes(&self) -> Result<WriteLock, PgError> {
        self.call("lock", async {
            let (client, _) = self.own_connection().await?;
            // A clean-up that stalls must not hold every server's writes for long.
            let idle_limit = format!(
                "SET idle_in_transaction_session_timeout = {}",
                self.timeout.as_millis()
            );
            client.batch_execute(&idle_limit).await?;
            client
                .batch_execute(&format!("BEGIN; {LOCK_CATALOG}"))
                .await?;
            Ok(WriteLock(client))
        })
        .await
    }

    /// Which of `candidates` no catalog entry (nor the not-found picture) points to.
    pub async fn unreferenced(
        &self,
        lock: &WriteLock,
        candidates: &[[u8; 32]],
    ) -> Result<Vec<[u8; 32]>, PgError> {
        self.call("read", async {
            let keys: Vec<&[u8]> = candidates.iter().map(|c| &c[..]).collect();
            let rows = lock
                .0
                .query(
                    "SELECT sha256 FROM contents WHERE sha256 = ANY($1)",
                    &[&keys],
                )
                .await?;
            let referenced: Vec<Vec<u8>> = rows.iter().map(|row| row.get(0)).collect();
            Ok(candidates
                .iter()
                .filter(|c| !referenced.iter().any(|r| r[..] == c[..]))
                .copied()
                .collect())
        })
        .await
    }

    pub async fn release(&self, lock: WriteLock) -> Result<(), PgError> {
        self.call("lock", async {
            lock.0.batch_execute("COMMIT").await?;
            Ok(())
        })
        .await
    }

    /// Runs one operation under the deadline, recording how long it took and whether it
    /// failed.
    async fn call<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, PgError> {
        self.call_within(self.timeout, op, operation).await
    }

    /// [`Database::call`] for a call that moves a whole catalog.
    async fn bulk_call<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, PgError> {
        self.call_within(self.timeout * BULK_FACTOR, op, operation)
            .await
    }

    async fn call_within<T>(
        &self,
        deadline: Duration,
        op: &'static str,
        operation: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, PgError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(deadline, operation).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(CallError::Sql(error))) => Err(PgError::Sql {
                target: self.target.clone(),
                error,
            }),
            // A connection that could not be made says why in tokio-postgres' words.
            Ok(Err(CallError::Pool(deadpool_postgres::PoolError::Backend(error)))) => {
                Err(PgError::Sql {
                    target: self.target.clone(),
                    error,
                })
            }
            Ok(Err(CallError::Pool(error))) => Err(PgError::Pool {
                target: self.target.clone(),
                error,
            }),
            Ok(Err(CallError::Damaged(reason))) => Err(PgError::Damaged {
                target: self.target.clone(),
                reason,
            }),
            Err(_) => Err(PgError::Timeout {
                target: self.target.clone(),
                timeout: deadline,
            }),
        };
        metrics::store_operation(op, started.elapsed(), result.is_err());
        result
    }
}

/// An error's message followed by its causes', as "a: b: c".
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let message = next.to_string();
        if !text.ends_with(&message) {
            text = format!("{text}: {message}");
        }
        cause = next.source();
    }
    text
}

/// USER@HOST:PORT/DB of a configuration.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// Records a content, and its bytes when they are kept in the database (`None`: they are in
/// an object store).
async fn store_content(
    tx: &Transaction<'_>,
    info: &PictureInfo,
    bytes: Option<&[u8]>,
) -> Result<(), CallError> {
    run(tx, &statements::insert_content(info)).await?;
    if let Some(bytes) = bytes {
        run(tx, &statements::insert_blob(&info.sha256, bytes)).await?;
    }
    Ok(())
}

/// Locks the catalog's state row until the transaction ends: writers on every server take
/// turns here. Returns the catalog's version and whether the database was seeded.
const LOCK_CATALOG: &str = "SELECT version, seeded FROM catalog_state WHERE id = 1 FOR UPDATE";

/// Runs [`LOCK_CATALOG`] in `tx`.
async fn lock_catalog(tx: &Transaction<'_>) -> Result<(u64, bool), CallError> {
    let row = tx.query_one(LOCK_CATALOG, &[]).await?;
    Ok((row.get::<_, i64>(0) as u64, row.get(1)))
}

/// What ends an import or a whole catalog's replacement: the not-found picture (if given),
/// the mark that the database was seeded, contents no picture uses removed, the version
/// bumped (and announced). Returns the new version.
async fn settle_catalog(
    tx: &Transaction<'_>,
    not_found: Option<(&PictureInfo, &[u8])>,
) -> Result<i64, CallError> {
    if let Some((info, bytes)) = not_found {
        store_content(tx, info, Some(bytes)).await?;
        tx.execute(
            "UPDATE catalog_state SET not_found = $1",
            &[&&info.sha256[..]],
        )
        .await?;
    }
    tx.execute("UPDATE catalog_state SET seeded = true", &[])
        .await?;
    remove_unused_contents(tx).await?;
    bump_version(tx).await
}

/// Content no picture points to any more (nor the not-found picture) goes, with its bytes.
async fn remove_unused_contents(tx: &Transaction<'_>) -> Result<(), CallError> {
    tx.execute(
        "DELETE FROM contents WHERE sha256 NOT IN (SELECT sha256 FROM pictures)
         AND sha256 IS DISTINCT FROM (SELECT not_found FROM catalog_state)",
        &[],
    )
    .await?;
    Ok(())
}

/// Parameters as tokio-postgres takes them.
fn dyn_params<'a>(params: &'a [Value<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

/// Runs one statement; returns how many rows it changed.
async fn run(tx: &Transaction<'_>, statement: &Statement<'_>) -> Result<u64, CallError> {
    let prepared = tx.prepare_cached(statement.sql).await?;
    let changed = tx
        .execute(&prepared, &dyn_params(&statement.params))
        .await?;
    if statement.changes_one_row && changed != 1 {
        return Err(CallError::Damaged(format!(
            "an edit changed {changed} rows where one was expected"
        )));
    }
    Ok(changed)
}

/// Bumps the catalog's version and announces it; the notice goes out at commit.
async fn bump_version(tx: &Transaction<'_>) -> Result<i64, CallError> {
    let version: i64 = tx
        .query_one(
            "UPDATE catalog_state SET version = version + 1 WHERE id = 1 RETURNING version",
            &[],
        )
        .await?
        .get(0);
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &version.to_string()],
    )
    .await?;
    Ok(version)
}

/// Writes `edit` into the change log as version `version`, and forgets the oldest.
async fn log_change(tx: &Transaction<'_>, version: i64, edit: &Edit) -> Result<(), CallError> {
    let position = |index: &usize| *index as i64 + 1;
    let none = None::<&PictureInfo>;
    let (at, target, info, name, title) = match edit {
        Edit::Append(info) => (i64::from(info.number), None, Some(info), None, None),
        Edit::Replace(index, info) => (position(index), None, Some(info), None, None),
        Edit::Remove(index) => (position(index), None, none, None, None),
        Edit::Rename(index, name) => (position(index), None, none, Some(name), None),
        Edit::Retitle(index, title) => (position(index), None, none, None, Some(title)),
        Edit::Move(from, to) => (position(from), Some(position(to)), none, None, None),
    };
    tx.execute(
        "INSERT INTO changes (version, kind, position, target, name, title, mime, width,
                              height, size, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &version,
            &i16::from(edit.kind() as u8),
            &at,
            &target,
            &name.or(info.map(|i| &i.name)),
            &title.or(info.map(|i| &i.title)),
            &info.map(|i| &i.mime),
            &info.map(|i| i64::from(i.width)),
            &info.map(|i| i64::from(i.height)),
            &info.map(|i| i64::from(i.size)),
            &info.map(|i| &i.sha256[..]),
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM changes WHERE version <= $1",
        &[&(version - CHANGE_LOG_KEEP)],
    )
    .await?;
    Ok(())
}

/// The edit a change-log row records, if the row makes sense.
fn logged_edit(row: &tokio_postgres::Row) -> Option<Edit> {
    let kind = ChangeKind::from_code(u8::try_from(row.get::<_, i16>(1)).ok()?).ok()?;
    let index = usize::try_from(row.get::<_, i64>(2)).ok()?.checked_sub(1)?;
    let target = || {
        usize::try_from(row.get::<_, Option<i64>>(3)?)
            .ok()?
            .checked_sub(1)
    };
    let name = || row.get::<_, Option<String>>(4);
    let title = || row.get::<_, Option<String>>(5);
    let info = || {
        Some(PictureInfo {
            number: u32::try_from(index + 1).ok()?,
            name: name()?,
            title: title()?,
            mime: row.get::<_, Option<String>>(6)?,
            width: u32::try_from(row.get::<_, Option<i64>>(7)?).ok()?,
            height: u32::try_from(row.get::<_, Option<i64>>(8)?).ok()?,
            size: u32::try_from(row.get::<_, Option<i64>>(9)?).ok()?,
            sha256: row.get::<_, Option<Vec<u8>>>(10)?.try_into().ok()?,
        })
    };
    Some(match kind {
        ChangeKind::Added => Edit::Append(info()?),
        ChangeKind::Replaced => Edit::Replace(index, info()?),
        ChangeKind::Removed => Edit::Remove(index),
        ChangeKind::Renamed => Edit::Rename(index, name()?),
        ChangeKind::Retitled => Edit::Retitle(index, title()?),
        ChangeKind::Moved => Edit::Move(index, target()?),
        ChangeKind::Lost => return None,
    })
}

fn int(value: i64) -> Result<u32, CallError> {
    u32::try_from(value).map_err(|_| CallError::Damaged(format!("{value} is out of range")))
}

fn sha256(value: Vec<u8>) -> Result<[u8; 32], CallError> {
    value
        .try_into()
        .map_err(|v: Vec<u8>| CallError::Damaged(format!("a SHA-256 of {} bytes", v.len())))
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Int(n) => n.to_sql(ty, out),
            Value::Text(text) => text.as_ref().to_sql(ty, out),
            Value::Bytes(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty) || <&[u8] as ToSql>::accepts(ty)
    }

    /// Checks the value's own type against the parameter's, not just the enum's.
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Int(n) => n.to_sql_checked(ty, out),
            Value::Text(text) => text.as_ref().to_sql_checked(ty, out),
            Value::Bytes(bytes) => bytes.to_sql_checked(ty, out),
        }
    }
}
