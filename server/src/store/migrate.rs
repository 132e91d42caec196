//! `migrate`: a store's pictures and catalog copied into another store, of any kind.
//!
//! First the bytes, one content at a time, each stored (and read back and checked) before the
//! next: contents the destination holds already are skipped, so a migration that was stopped
//! goes on where it was, and one that is run again copies nothing. Then the catalog (names,
//! titles, order, the not-found picture), in one transaction, and only if it differs: until
//! then, the destination's servers go on serving its old catalog.

use std::collections::HashSet;

use bytes::Bytes;
use picture_protocol::PictureInfo;
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// How a migration went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Pictures in the source's catalog.
    pub pictures: usize,
    /// Contents (distinct pictures' bytes) copied, and their bytes.
    pub copied: usize,
    pub copied_bytes: u64,
    /// Whether the destination's catalog had to change.
    pub catalog_changed: bool,
}

/// What a migration reports as it goes.
pub enum Step {
    /// About to copy this many contents, of this many bytes in all.
    Start { contents: u64, bytes: u64 },
    /// One content done (copied or found there), of this many bytes.
    Done { bytes: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the destination is read-only (folder:): use `export` to write pictures to a folder")]
    ReadOnlyDestination,
    #[error("the source has no pictures: nothing to migrate")]
    EmptySource,
    #[error("the source's bytes of picture {0:?} do not have the SHA-256 its catalog records")]
    SourceDamaged(String),
    #[error("picture {0:?} read back from the destination differs from what was copied")]
    CopyDamaged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies every picture of `from`, and its catalog, into `to`.
pub async fn migrate(
    from: &Store,
    to: &Store,
    mut progress: impl FnMut(Step),
) -> Result<Migrated, MigrateError> {
    let writer = to.writer().map_err(|_| MigrateError::ReadOnlyDestination)?;
    let catalog = from.published.catalog.load_full();
    if catalog.is_empty() {
        return Err(MigrateError::EmptySource);
    }
    let mut seen = HashSet::new();
    let contents: Vec<&PictureInfo> = catalog
        .entries()
        .iter()
        .map(|entry| &**entry)
        .filter(|info| seen.insert(info.sha256))
        .collect();
    progress(Step::Start {
        contents: contents.len() as u64,
        bytes: contents.iter().map(|info| u64::from(info.size)).sum(),
    });
    let (mut copied, mut copied_bytes) = (0, 0);
    for info in contents {
        if !writer.holds(info).await? {
            let bytes = from.bytes_of(info).await?;
            if !has_sha256(&bytes, info) {
                return Err(MigrateError::SourceDamaged(info.name.clone()));
            }
            writer.store_bytes(info, bytes.clone()).await?;
            if !has_sha256(&writer.fetch(info).await?, info) {
                return Err(MigrateError::CopyDamaged(info.name.clone()));
            }
            copied += 1;
            copied_bytes += bytes.len() as u64;
        }
        progress(Step::Done {
            bytes: u64::from(info.size),
        });
    }
    let wanted: Vec<PictureInfo> = catalog.entries().iter().map(|e| (**e).clone()).collect();
    let not_found = from.not_found();
    let same = to
        .catalog()
        .entries()
        .iter()
        .map(|e| &**e)
        .eq(wanted.iter())
        && to.not_found().info.sha256 == not_found.info.sha256;
    if !same {
        let not_found = ((*not_found.info).clone(), not_found.bytes);
        writer.replace_catalog(wanted, not_found).await?;
    }
    Ok(Migrated {
        pictures: catalog.len(),
        copied,
        copied_bytes,
        catalog_changed: !same,
    })
}

fn has_sha256(bytes: &Bytes, info: &PictureInfo) -> bool {
    <[u8; 32]>::from(Sha256::digest(bytes)) == info.sha256
}
