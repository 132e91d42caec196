//! How a server on a shared (PostgreSQL) database keeps its catalog in step with the edits
//! other servers make.
//!
//! A task listens for the database's notices; on each, and on every (re)connection, it
//! catches up: it reads the change log from its catalog's version on and applies the same
//! edits, or, when the log cannot bring it up to date (it was away too long, or `import`
//! rewrote the catalog), reads the whole catalog. No polling: while nothing changes, nothing
//! is read.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::MutexGuard;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{info, warn};

use super::StoreError;
use super::db::Database;
use super::postgres;
use super::writer::Writer;

/// Waits between attempts to reach a database that went away, doubling up to the last.
const RECONNECT_DELAYS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Starts following a shared database's edits, until the guard is dropped. `None` for a
/// database only this server writes to.
pub fn start(writer: &Arc<Writer>) -> Option<DropGuard> {
    let Database::Postgres(db) = &writer.db else {
        return None;
    };
    let stop = CancellationToken::new();
    tokio::spawn(follow(writer.clone(), db.clone(), stop.clone()));
    Some(stop.drop_guard())
}

async fn follow(writer: Arc<Writer>, db: Arc<postgres::Database>, stop: CancellationToken) {
    let mut failures = 0;
    loop {
        let session = async {
            let mut listener = db.listen().await?;
            // Edits made while this server was not listening.
            writer.catch_up_in_turn().await?;
            if failures > 0 {
                info!("following the database's changes again");
            }
            failures = 0;
            while listener.changed().await {
                writer.catch_up_in_turn().await?;
            }
            Ok::<_, StoreError>(())
        };
        let ended = tokio::select! {
            _ = stop.cancelled() => return,
            ended = session => ended,
        };
        if failures == 0 {
            match ended {
                Err(e) => warn!("not following the database's changes: {e}; retrying"),
                Ok(()) => warn!("the database's connection for changes closed; reconnecting"),
            }
        }
        let delay = RECONNECT_DELAYS[failures.min(RECONNECT_DELAYS.len() - 1)];
        failures += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

impl Writer {
    /// Catches up, in turn with writes.
    pub(super) async fn catch_up_in_turn(&self) -> Result<(), StoreError> {
        let turn = self.turn.lock().await;
        self.catch_up(&turn).await
    }

    /// Brings the catalog in memory up to the database's version. Only while holding the
    /// writer's turn (`_turn` says so), so that no write publishes in between.
    pub(super) async fn catch_up(&self, _turn: &MutexGuard<'_, ()>) -> Result<(), StoreError> {
        let Database::Postgres(db) = &self.db else {
            return self.reload().await;
        };
        loop {
            let mut catalog = self.published.catalog.load_full();
            let (current, changes) = db.changes_since(catalog.version()).await?;
            if current == catalog.version() {
                return Ok(());
            }
            let full_page = changes.len() == super::postgres::CHANGE_LOG_PAGE as usize;
            for (version, edit) in changes {
                match edit {
                    Some(edit) if version == catalog.version() + 1 && edit.fits(catalog.len()) => {
                        self.publish(&catalog, &edit, version);
                        catalog = self.published.catalog.load_full();
                    }
                    // A gap in the log, or an edit that does not fit: read everything.
                    _ => return self.reload().await,
                }
            }
            if catalog.version() == current {
                return Ok(());
            }
            if !full_page {
                return self.reload().await;
            }
        }
    }
}
