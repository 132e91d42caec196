//! `export`: a store's pictures as files plus a `catalog.toml`, which `import` (and the
//! `folder:` store) read back with nothing lost: names, titles, order, the not-found picture.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::manifest::{Entry, MANIFEST_FILE, Manifest};
use super::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not empty: export into a new or empty folder")]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the catalog: {0}")]
    Manifest(#[from] toml::ser::Error),
}

/// The file ending for a picture's MIME type.
fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        _ => "bin",
    }
}

/// Writes every picture of `store` into `dir` (created if need be) as `NAME.EXT`, the
/// not-found picture beside them, and a `catalog.toml` with the menu order and titles.
/// Returns how many pictures were written. Each file is written whole or not at all.
pub async fn export(store: &Store, dir: &Path) -> Result<usize, ExportError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    // Files left from before would be imported back with the export: refuse instead.
    let mut entries = std::fs::read_dir(dir).map_err(write_error(dir))?;
    if entries.next().is_some() {
        return Err(ExportError::NotEmpty(dir.to_path_buf()));
    }
    let catalog = store.catalog().clone();
    let mut manifest = Manifest::default();
    for info in catalog.entries() {
        let bytes = store.bytes_of(info).await?;
        let path = dir.join(format!("{}.{}", info.name, extension(&info.mime)));
        write_atomically(&path, &bytes).map_err(write_error(&path))?;
        manifest.pictures.push(Entry {
            name: info.name.clone(),
            title: Some(info.title.clone()),
        });
    }
    // The not-found picture's file must not take a picture's name.
    let taken = |stem: &str| catalog.index_of_name(stem).is_some();
    let stem = std::iter::once("not-found".to_owned())
        .chain((1..).map(|n| format!("not-found-{n}")))
        .find(|stem| !taken(stem))
        .unwrap_or_default();
    let not_found = store.not_found();
    let path = dir.join(format!("{stem}.{}", extension(&not_found.info.mime)));
    write_atomically(&path, &not_found.bytes).map_err(write_error(&path))?;
    manifest.not_found = stem;
    let text = format!(
        "# Written by picture-server export: menu order, titles and the not-found picture.\n{}",
        toml::to_string(&manifest)?
    );
    let path = dir.join(MANIFEST_FILE);
    write_atomically(&path, text.as_bytes()).map_err(write_error(&path))?;
    Ok(catalog.len())
}

/// Writes a file under a temporary name, flushes it to disk, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
