//! PAGE load: one page of the catalog, or of a search, asked for over and over on persistent
//! connections. The connections run as in framed mode (`framed`), with a PAGE instead of a
//! GET; what this module adds is the reference every answer is compared with.
//!
//! No catalog entry vouches for a page the way a SHA-256 vouches for a picture, so the first
//! answer is checked against the request itself before it becomes the reference: no more
//! entries than asked for, in menu order after `after`, each one matching the search text,
//! and no fewer than there are. The catalog does not change during a run (nothing else is
//! expected to write to the server), so every later answer must be the same bytes.

use anyhow::{Context, ensure};
use picture_protocol::{Command, Page, PageRequest, Request};
use serde::Serialize;

use crate::conn::Conn;
use crate::reference::{Reference, Source};
use crate::stream::Target;

/// The page that a run asks for, as the JSON report gives it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub after: u32,
    pub limit: u16,
    pub search: String,
    /// Entries in the page.
    pub entries: usize,
    /// Pictures matching the search in the whole catalog.
    pub total: u32,
    pub version: u64,
}

impl Summary {
    /// One line for the table.
    pub fn describe(&self) -> String {
        let search = if self.search.is_empty() {
            "no search".to_owned()
        } else {
            format!("search {:?}", self.search)
        };
        format!(
            "{} entries after number {} (limit {}, {search}, {} matching in all, catalog version {})",
            self.entries, self.after, self.limit, self.total, self.version
        )
    }
}

/// Asks for the page once and checks it; returns it as the reference.
pub async fn reference(
    target: &Target,
    ws_protocol: Option<&str>,
    request: &PageRequest,
) -> anyhow::Result<(Reference, Summary)> {
    let mut conn = Conn::connect(target, ws_protocol).await?;
    let body = conn
        .call(&Request {
            id: 1,
            command: Command::Page(request.clone()),
        })
        .await
        .context("PAGE failed")?;
    let page = Page::decode(&body).context("the server sent an invalid page")?;
    check(&page, request)?;
    let summary = Summary {
        after: request.after,
        limit: request.limit,
        search: request.search.clone(),
        entries: page.pictures.len(),
        total: page.total,
        version: page.version,
    };
    let reference = Reference {
        name: summary.describe(),
        bytes: body,
        source: Source::Page,
    };
    Ok((reference, summary))
}

/// Whether a page is what `request` asks for, as far as the page itself can tell.
fn check(page: &Page, request: &PageRequest) -> anyhow::Result<()> {
    let entries = page.pictures.len();
    ensure!(
        entries <= usize::from(request.limit),
        "the server sent {entries} entries when at most {} were asked for",
        request.limit
    );
    ensure!(
        entries as u64 <= u64::from(page.total),
        "the page has {entries} entries but says {} pictures match",
        page.total
    );
    let search = request.search.to_lowercase();
    let mut last = request.after;
    for picture in &page.pictures {
        ensure!(
            picture.number > last,
            "picture {} ({}) is out of menu order after {last}",
            picture.number,
            picture.name
        );
        if search.is_empty() {
            ensure!(
                picture.number == last + 1,
                "the page skips from number {last} to {} with no search",
                picture.number
            );
        } else {
            ensure!(
                picture.name.to_lowercase().contains(&search)
                    || picture.title.to_lowercase().contains(&search),
                "picture {} ({}) does not match the search {:?}",
                picture.number,
                picture.name,
                request.search
            );
        }
        last = picture.number;
    }
    // Without a search, every picture counts, so a short page must be the catalog's end.
    if search.is_empty() && entries < usize::from(request.limit) {
        ensure!(
            u64::from(request.after) + entries as u64 == u64::from(page.total)
                || (entries == 0 && request.after >= page.total),
            "the page stops at number {last} before the limit, but {} pictures match",
            page.total
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use picture_protocol::PictureInfo;

    use super::*;

    fn picture(number: u32, name: &str) -> PictureInfo {
        PictureInfo {
            number,
            name: name.into(),
            title: format!("Title {number}"),
            mime: "image/png".into(),
            width: 1,
            height: 1,
            size: 1,
            sha256: [0; 32],
        }
    }

    fn request(after: u32, limit: u16, search: &str) -> PageRequest {
        PageRequest {
            after,
            limit,
            search: search.into(),
        }
    }

    fn page(total: u32, pictures: Vec<PictureInfo>) -> Page {
        Page {
            version: 1,
            total,
            pictures,
        }
    }

    #[test]
    fn pages_are_checked_against_their_request() {
        let good = page(5, vec![picture(3, "c"), picture(4, "d")]);
        assert!(check(&good, &request(2, 2, "")).is_ok());
        // Too many, a gap without a search, out of order, too few before the end.
        assert!(check(&good, &request(2, 1, "")).is_err());
        assert!(
            check(
                &page(5, vec![picture(3, "c"), picture(5, "e")]),
                &request(2, 2, "")
            )
            .is_err()
        );
        assert!(
            check(
                &page(5, vec![picture(4, "d"), picture(3, "c")]),
                &request(2, 2, "")
            )
            .is_err()
        );
        assert!(check(&page(9, vec![picture(3, "c")]), &request(2, 5, "")).is_err());
        assert!(check(&page(3, vec![picture(3, "c")]), &request(2, 5, "")).is_ok());
        // A search may skip numbers, but every entry must match it.
        let found = page(2, vec![picture(2, "red-car"), picture(7, "car")]);
        assert!(check(&found, &request(0, 10, "CAR")).is_ok());
        assert!(check(&found, &request(0, 10, "red")).is_err());
        assert!(check(&page(1, vec![]), &request(0, 10, "x")).is_ok());
    }
}
