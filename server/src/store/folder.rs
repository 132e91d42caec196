//! Reading a folder of pictures: the `folder:` store, the first-start import and `import`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use picture_protocol::same_name;
use tracing::{debug, info, warn};

use super::catalog::name_key;
use super::manifest::{MANIFEST_FILE, Manifest, title_from_name};
use super::picture::{MAX_PICTURE_BYTES, Picture, PictureError, check_name, check_title, inspect};

/// File endings the loader looks at. The format itself is read from the content.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp"];

/// Served for unknown choices when the folder has no not-found picture of its own.
const BUILTIN_NOT_FOUND: &[u8] = include_bytes!("../../../assets/not-found.png");

/// Why a folder could not be loaded at all. Single bad pictures never cause this: they are
/// skipped with a warning.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the assets folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the not-found picture is unreadable: {0}")]
    BuiltinNotFound(PictureError),
}

/// The pictures of one folder, checked, in menu order, with its not-found picture.
#[derive(Debug)]
pub struct Folder {
    pub pictures: Vec<Picture>,
    pub not_found: Picture,
}

impl Folder {
    /// Loads every image file in `dir`, checking each one: a file that is not a readable
    /// picture, or whose name breaks the name rules, is skipped with a warning naming it.
    /// Menu order and titles come from `catalog.toml`; unlisted pictures follow alphabetically.
    pub fn load(dir: &Path) -> Result<Folder, LoadError> {
        let manifest = read_manifest(dir);
        let folder_error = |source| LoadError::Folder {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(folder_error)? {
            let path = entry.map_err(folder_error)?.path();
            if let Some(name) = picture_name(&path) {
                files.push((name, path));
            }
        }
        files.sort();

        let mut pictures: Vec<Picture> = Vec::new();
        let mut not_found = None;
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for (name, path) in files {
            if let Err(reason) = check_name(&name) {
                warn!(file = %path.display(), "skipping picture: {reason}");
                continue;
            }
            if let Some(first) = seen.get(&name_key(&name)) {
                warn!(file = %path.display(), "skipping picture: its name is already taken by {}", first.display());
                continue;
            }
            let Some(picture) = load_picture(&path, &name, &manifest) else {
                continue;
            };
            seen.insert(name_key(&name), path);
            if same_name(&name, &manifest.not_found) {
                not_found = Some(picture);
            } else {
                pictures.push(picture);
            }
        }
        for entry in &manifest.pictures {
            if !seen.contains_key(&name_key(&entry.name)) {
                warn!(name = %entry.name, "{MANIFEST_FILE} lists a picture that was not loaded");
            }
        }

        // Files were read in name order and the sort is stable: unlisted pictures stay
        // alphabetical after the listed ones.
        pictures.sort_by_key(|p| manifest.position_of(&p.info.name));
        for (index, picture) in pictures.iter_mut().enumerate() {
            picture.info.number = index as u32 + 1;
        }
        let not_found = match not_found {
            Some(p) => p,
            None => builtin_not_found()?,
        };
        Ok(Folder {
            pictures,
            not_found,
        })
    }
}

/// Reads the manifest; a missing one is normal, a broken one is reported and ignored so that
/// the pictures are still served (in alphabetical order).
fn read_manifest(dir: &Path) -> Manifest {
    let path = dir.join(MANIFEST_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Manifest::default(),
        Err(e) => {
            warn!(file = %path.display(), "ignoring unreadable manifest: {e}");
            return Manifest::default();
        }
    };
    Manifest::parse(&text).unwrap_or_else(|e| {
        warn!(file = %path.display(), "ignoring invalid manifest: {e}");
        Manifest::default()
    })
}

/// The picture name for a path if it looks like an image file (by its ending).
fn picture_name(path: &Path) -> Option<String> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    let stem = path.file_stem()?.to_str()?;
    if stem.starts_with('.') || !IMAGE_EXTENSIONS.contains(&extension.as_str()) {
        debug!(file = %path.display(), "not a picture file");
        return None;
    }
    Some(stem.to_owned())
}

/// Reads and checks one file, logging why it is skipped if it is.
fn load_picture(path: &Path, name: &str, manifest: &Manifest) -> Option<Picture> {
    let skip = |reason: &dyn std::fmt::Display| {
        warn!(file = %path.display(), "skipping picture: {reason}");
    };
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return None,
        Ok(meta) if meta.len() > MAX_PICTURE_BYTES as u64 => {
            skip(&PictureError::TooLarge(meta.len()));
            return None;
        }
        Ok(_) => {}
        Err(e) => {
            skip(&e);
            return None;
        }
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            skip(&e);
            return None;
        }
    };
    let title = match manifest.title_of(name) {
        Some(title) => match check_title(title) {
            Ok(()) => title.to_owned(),
            Err(e) => {
                warn!(file = %path.display(), "manifest title not used ({e}); using the name");
                title_from_name(name)
            }
        },
        None => title_from_name(name),
    };
    match inspect(0, name.to_owned(), title, bytes) {
        Ok(picture) => {
            info!(
                name,
                mime = %picture.info.mime,
                width = picture.info.width,
                height = picture.info.height,
                bytes = picture.info.size,
                "loaded picture"
            );
            Some(picture)
        }
        Err(e) => {
            skip(&e);
            None
        }
    }
}

/// The not-found picture compiled into the server.
pub(super) fn builtin_not_found() -> Result<Picture, LoadError> {
    inspect(
        0,
        "not-found".into(),
        "Not found".into(),
        Bytes::from_static(BUILTIN_NOT_FOUND),
    )
    .map_err(LoadError::BuiltinNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_not_found_picture_is_valid() {
        let p = builtin_not_found().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.info.mime, "image/png");
    }

    #[test]
    fn names() {
        assert_eq!(picture_name(Path::new("a/Car.JPG")), Some("Car".into()));
        assert_eq!(picture_name(Path::new("a/notes.txt")), None);
        assert_eq!(picture_name(Path::new("a/.hidden.png")), None);
        assert_eq!(picture_name(Path::new("a/catalog.toml")), None);
    }
}
