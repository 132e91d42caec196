//! The picture menu: entries labelled like the original terminal menu (`1. Car`), and which
//! picture a name from the address (`#house`) points at.

use picture_protocol::{Page, PictureInfo, same_name};

/// The part of the catalog the page has loaded, in menu order: the first pages of the pictures
/// matching the search (all pictures when there is none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Menu {
    pictures: Vec<PictureInfo>,
    /// How many pictures match in all, loaded or not.
    total: u32,
    /// The catalog version the pages were read from.
    version: u64,
}

/// One `<option>`: what it says and the picture number it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub label: String,
    pub value: String,
}

/// What a wanted name resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<'a> {
    /// A picture in the catalog.
    Picture(&'a PictureInfo),
    /// A name the catalog does not have. It is still asked for, so that the server answers
    /// with its not-found picture.
    Unknown(String),
    /// Nothing asked for and nothing to show: the catalog is empty.
    Nothing,
}

impl Menu {
    pub fn new(pictures: Vec<PictureInfo>) -> Menu {
        Menu {
            total: pictures.len() as u32,
            pictures,
            version: 0,
        }
    }

    /// The first page of a catalog.
    pub fn from_page(page: Page) -> Menu {
        Menu {
            pictures: page.pictures,
            total: page.total,
            version: page.version,
        }
    }

    /// Adds the next page, if it comes from the same catalog version; otherwise the numbers
    /// may have moved between the pages, and it returns the page for the caller to start over.
    pub fn extend(&mut self, page: Page) -> Result<(), Page> {
        if page.version != self.version {
            return Err(page);
        }
        self.pictures.extend(page.pictures);
        self.total = page.total;
        Ok(())
    }

    /// The loaded pictures, in menu order.
    pub fn pictures(&self) -> &[PictureInfo] {
        &self.pictures
    }

    /// Pictures that match but are not loaded yet.
    pub fn remaining(&self) -> u32 {
        self.total.saturating_sub(self.pictures.len() as u32)
    }

    /// How many pictures are loaded.
    pub fn len(&self) -> usize {
        self.pictures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pictures.is_empty()
    }

    /// The menu number the next page starts after.
    pub fn last_number(&self) -> u32 {
        self.pictures.last().map_or(0, |p| p.number)
    }

    /// The `<option>`s, in menu order.
    pub fn entries(&self) -> impl Iterator<Item = MenuEntry> + '_ {
        self.pictures.iter().map(|p| MenuEntry {
            label: format!("{}. {}", p.number, p.title),
            value: p.number.to_string(),
        })
    }

    pub fn by_number(&self, number: u32) -> Option<&PictureInfo> {
        self.pictures.iter().find(|p| p.number == number)
    }

    /// Names match ignoring case, as the server matches them.
    pub fn by_name(&self, name: &str) -> Option<&PictureInfo> {
        self.pictures.iter().find(|p| same_name(&p.name, name))
    }

    /// The picture to show for a wanted name; with none wanted, the first picture, so the
    /// page shows something at once.
    pub fn resolve(&self, wanted: Option<&str>) -> Target<'_> {
        match wanted {
            Some(name) => self
                .by_name(name)
                .map_or_else(|| Target::Unknown(name.to_owned()), Target::Picture),
            None => self
                .pictures
                .first()
                .map_or(Target::Nothing, Target::Picture),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(number: u32, name: &str, title: &str) -> PictureInfo {
        PictureInfo {
            number,
            name: name.into(),
            title: title.into(),
            mime: "image/png".into(),
            width: 4,
            height: 3,
            size: 100,
            sha256: [0; 32],
        }
    }

    fn menu() -> Menu {
        Menu::new(vec![
            picture(1, "car", "Car"),
            picture(2, "house", "House"),
            picture(7, "Thumbnail", "Dog (thumbnail)"),
        ])
    }

    #[test]
    fn labels_like_the_terminal_menu() {
        let labels: Vec<String> = menu().entries().map(|e| e.label).collect();
        assert_eq!(labels, ["1. Car", "2. House", "7. Dog (thumbnail)"]);
        let values: Vec<String> = menu().entries().map(|e| e.value).collect();
        assert_eq!(values, ["1", "2", "7"]);
    }

    #[test]
    fn names_resolve_ignoring_case() {
        let menu = menu();
        assert_eq!(
            menu.resolve(Some("HOUSE")),
            Target::Picture(&menu.pictures[1])
        );
        assert_eq!(
            menu.resolve(Some("thumbnail")),
            Target::Picture(&menu.pictures[2])
        );
        assert_eq!(
            menu.by_number(7).map(|p| p.name.as_str()),
            Some("Thumbnail")
        );
        assert_eq!(menu.by_number(3), None);
    }

    #[test]
    fn unknown_names_are_still_asked_for() {
        assert_eq!(
            menu().resolve(Some("unicorn")),
            Target::Unknown("unicorn".into())
        );
        assert_eq!(
            Menu::default().resolve(Some("car")),
            Target::Unknown("car".into())
        );
    }

    #[test]
    fn pages_add_up() {
        let page = |numbers: &[u32], total| Page {
            version: 1,
            total,
            pictures: numbers
                .iter()
                .map(|&n| picture(n, &format!("p{n}"), "P"))
                .collect(),
        };
        let mut menu = Menu::from_page(page(&[1, 2], 5));
        assert_eq!(
            (menu.len(), menu.remaining(), menu.last_number()),
            (2, 3, 2)
        );
        assert!(menu.extend(page(&[3, 4, 5], 5)).is_ok());
        assert_eq!(
            (menu.len(), menu.remaining(), menu.last_number()),
            (5, 0, 5)
        );
        let newer = Page {
            version: 2,
            ..page(&[6], 6)
        };
        assert!(
            menu.extend(newer).is_err(),
            "pages of two versions do not mix"
        );
        assert_eq!(menu.len(), 5);
        assert_eq!(Menu::default().last_number(), 0);
    }

    #[test]
    fn nothing_wanted_means_the_first_picture() {
        let menu = menu();
        assert_eq!(menu.resolve(None), Target::Picture(&menu.pictures[0]));
        assert_eq!(Menu::default().resolve(None), Target::Nothing);
    }
}
