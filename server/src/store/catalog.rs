//! The catalog as the server holds it in memory: every picture's entry in menu order, with an
//! index by name. A catalog is never changed in place: an edit makes a new one, which the
//! store publishes whole, so readers never lock and never see half an edit.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use picture_protocol::{
    ChangeKind, EncodeError, Page, PageRequest, PictureInfo, Selector, encode_catalog,
};

/// The key a name is looked up by: names are unique and matched without regard to case (the
/// same folding as [`picture_protocol::same_name`]).
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

#[derive(Debug, Default)]
pub struct Catalog {
    /// Bumped by every change; clients compare it to know whether what they hold is current.
    version: u64,
    /// In menu order: picture number n is at index n - 1, and its `number` says so.
    entries: Vec<Arc<PictureInfo>>,
    /// [`name_key`] to index in `entries`.
    by_name: HashMap<String, usize>,
    /// The encoded body of a whole-catalog LIST, made on first use.
    list_body: OnceLock<Result<Bytes, EncodeError>>,
    /// Each entry's name and title in lower case, what searches look in; made on first use.
    search_keys: OnceLock<Vec<String>>,
}

/// One change to a catalog, addressed by index. The same edit is applied to the database and
/// to the catalog in memory, so the two cannot drift apart.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Appends a picture at the end of the menu.
    Append(PictureInfo),
    /// New content (and title) for the picture at an index.
    Replace(usize, PictureInfo),
    Remove(usize),
    Rename(usize, String),
    Retitle(usize, String),
    /// Moves the picture at the first index to the second.
    Move(usize, usize),
}

impl Edit {
    /// What subscribers are told the edit was.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Edit::Append(_) => ChangeKind::Added,
            Edit::Replace(..) => ChangeKind::Replaced,
            Edit::Remove(_) => ChangeKind::Removed,
            Edit::Rename(..) => ChangeKind::Renamed,
            Edit::Retitle(..) => ChangeKind::Retitled,
            Edit::Move(..) => ChangeKind::Moved,
        }
    }

    /// The index of the picture the edit changes, none for an append.
    pub fn index(&self) -> Option<usize> {
        match self {
            Edit::Append(_) => None,
            Edit::Replace(index, _)
            | Edit::Remove(index)
            | Edit::Rename(index, _)
            | Edit::Retitle(index, _)
            | Edit::Move(index, _) => Some(*index),
        }
    }

    /// Whether the edit can be made to a catalog of `len` pictures (an edit read from another
    /// server's log is checked before it is applied).
    pub fn fits(&self, len: usize) -> bool {
        match self {
            Edit::Append(info) => info.number as usize == len + 1,
            Edit::Move(from, to) => *from < len && *to < len,
            other => other.index().is_some_and(|index| index < len),
        }
    }
}

impl Catalog {
    /// A catalog of `pictures` in this order; their numbers are set from it.
    pub fn new(version: u64, pictures: Vec<PictureInfo>) -> Catalog {
        Catalog::from_entries(version, pictures.into_iter().map(Arc::new).collect())
    }

    fn from_entries(version: u64, mut entries: Vec<Arc<PictureInfo>>) -> Catalog {
        for (index, entry) in entries.iter_mut().enumerate() {
            let number = index as u32 + 1;
            if entry.number != number {
                Arc::make_mut(entry).number = number;
            }
        }
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, p)| (name_key(&p.name), i))
            .collect();
        Catalog {
            version,
            entries,
            by_name,
            list_body: OnceLock::new(),
            search_keys: OnceLock::new(),
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Arc<PictureInfo>] {
        &self.entries
    }

    /// The index of the picture a selector names.
    pub fn index_of(&self, selector: &Selector) -> Option<usize> {
        match selector {
            Selector::Number(n) => {
                let index = (*n as usize).checked_sub(1)?;
                (index < self.entries.len()).then_some(index)
            }
            Selector::Name(name) => self.index_of_name(name),
        }
    }

    pub fn index_of_name(&self, name: &str) -> Option<usize> {
        // The common case, a name already in lower case, needs no allocation.
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(&name_key(name)))
            .copied()
    }

    pub fn get(&self, selector: &Selector) -> Option<&Arc<PictureInfo>> {
        self.entries.get(self.index_of(selector)?)
    }

    /// The body of a whole-catalog LIST; an error when the catalog is too large for that format.
    pub fn list_body(&self) -> Result<Bytes, EncodeError> {
        self.list_body
            .get_or_init(|| encode_catalog(self.entries.iter().map(|e| &**e)).map(Bytes::from))
            .clone()
    }

    /// One page of the pictures whose name or title contains `search` (ignoring case).
    pub fn page(&self, request: &PageRequest) -> Page {
        let search = request.search.to_lowercase();
        let start = (request.after as usize).min(self.entries.len());
        let limit = usize::from(request.limit);
        let (total, pictures) = if search.is_empty() {
            let end = (start + limit).min(self.entries.len());
            let page = self.entries[start..end].iter().map(|e| (**e).clone());
            (self.entries.len(), page.collect())
        } else {
            let keys = self.search_keys.get_or_init(|| {
                let key = |p: &PictureInfo| format!("{}\n{}", p.name, p.title).to_lowercase();
                self.entries.iter().map(|e| key(e)).collect()
            });
            let mut total = 0;
            let mut page = Vec::new();
            for (index, key) in keys.iter().enumerate() {
                if key.contains(&search) {
                    total += 1;
                    if index >= start && page.len() < limit {
                        page.push((*self.entries[index]).clone());
                    }
                }
            }
            (total, page)
        };
        Page {
            version: self.version,
            total: total as u32,
            pictures,
        }
    }

    /// The catalog after `edit`, with version `version`. Indices must be valid (the store
    /// checks them against this catalog before editing the database).
    pub fn edited(&self, edit: &Edit, version: u64) -> Catalog {
        let mut entries = self.entries.clone();
        match edit {
            Edit::Append(info) => entries.push(Arc::new(info.clone())),
            Edit::Replace(index, info) => entries[*index] = Arc::new(info.clone()),
            Edit::Remove(index) => {
                entries.remove(*index);
            }
            Edit::Rename(index, name) => Arc::make_mut(&mut entries[*index]).name = name.clone(),
            Edit::Retitle(index, title) => {
                Arc::make_mut(&mut entries[*index]).title = title.clone();
            }
            Edit::Move(from, to) => {
                let entry = entries.remove(*from);
                entries.insert(*to, entry);
            }
        }
        Catalog::from_entries(version, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(name: &str) -> PictureInfo {
        PictureInfo {
            number: 0,
            name: name.into(),
            title: format!("Title of {name}"),
            mime: "image/png".into(),
            width: 1,
            height: 1,
            size: 1,
            sha256: [0; 32],
        }
    }

    fn names(c: &Catalog) -> Vec<(u32, &str)> {
        c.entries()
            .iter()
            .map(|e| (e.number, e.name.as_str()))
            .collect()
    }

    #[test]
    fn numbers_follow_the_order_after_every_edit() {
        let c = Catalog::new(1, vec![picture("a"), picture("b"), picture("c")]);
        assert_eq!(names(&c), [(1, "a"), (2, "b"), (3, "c")]);
        let c = c.edited(&Edit::Move(0, 2), 2);
        assert_eq!(names(&c), [(1, "b"), (2, "c"), (3, "a")]);
        let c = c.edited(&Edit::Remove(0), 3);
        assert_eq!(names(&c), [(1, "c"), (2, "a")]);
        let c = c.edited(&Edit::Rename(1, "Zed".into()), 4);
        assert_eq!(c.index_of_name("zED"), Some(1));
        assert_eq!(c.index_of_name("a"), None);
        let c = c.edited(&Edit::Append(picture("d")), 5);
        assert_eq!(
            c.get(&Selector::Number(3)).map(|p| p.name.as_str()),
            Some("d")
        );
        assert_eq!(c.version(), 5);
    }

    #[test]
    fn pages_and_search() {
        let pictures = (0..25).map(|i| picture(&format!("p{i:02}"))).collect();
        let c = Catalog::new(9, pictures);
        let page = |after, limit, search: &str| {
            c.page(&PageRequest {
                after,
                limit,
                search: search.into(),
            })
        };
        let first = page(0, 10, "");
        assert_eq!(
            (first.total, first.pictures.len(), first.version),
            (25, 10, 9)
        );
        assert_eq!(first.pictures[9].number, 10);
        let last = page(20, 10, "");
        assert_eq!(last.pictures.len(), 5);
        assert!(page(25, 10, "").pictures.is_empty());
        let found = page(0, 2, "P1");
        assert_eq!(found.total, 10);
        let numbers: Vec<u32> = found.pictures.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [11, 12]);
        let next = page(12, 100, "title of p1");
        assert_eq!(next.pictures.len(), 8);
        assert_eq!(next.pictures[0].name, "p12");
    }
}
