//! The optional `catalog.toml` beside the pictures: menu order, titles and which file is the
//! not-found picture.

use picture_protocol::same_name;
use serde::{Deserialize, Serialize};

/// File name of the manifest inside an assets folder.
pub const MANIFEST_FILE: &str = "catalog.toml";

/// Stem of the not-found picture when the manifest does not name one.
pub const DEFAULT_NOT_FOUND: &str = "not-found";

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default = "default_not_found")]
    pub not_found: String,
    #[serde(default, rename = "picture")]
    pub pictures: Vec<Entry>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// File stem of the picture.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

fn default_not_found() -> String {
    DEFAULT_NOT_FOUND.to_owned()
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            not_found: default_not_found(),
            pictures: Vec::new(),
        }
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, toml::de::Error> {
        toml::from_str(text)
    }

    /// The title the manifest gives a picture, if any.
    pub fn title_of(&self, name: &str) -> Option<&str> {
        self.pictures
            .iter()
            .find(|e| same_name(&e.name, name))
            .and_then(|e| e.title.as_deref())
    }

    /// Where the manifest puts a picture in the menu; unlisted pictures sort after all listed
    /// ones.
    pub fn position_of(&self, name: &str) -> usize {
        self.pictures
            .iter()
            .position(|e| same_name(&e.name, name))
            .unwrap_or(usize::MAX)
    }
}

/// A readable title for a picture the manifest does not mention: `red-car` becomes `Red car`.
pub fn title_from_name(name: &str) -> String {
    let spaced = name.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_order_titles_and_not_found() {
        let m = Manifest::parse(
            r#"
            not_found = "missing"
            [[picture]]
            name = "car"
            title = "A car"
            [[picture]]
            name = "dog"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.not_found, "missing");
        assert_eq!(m.title_of("CAR"), Some("A car"));
        assert_eq!(m.title_of("dog"), None);
        assert_eq!(m.position_of("dog"), 1);
        assert_eq!(m.position_of("cat"), usize::MAX);
    }

    #[test]
    fn names_match_ignoring_case_beyond_ascii() {
        // The store matches file names with Unicode case folding; the manifest must too.
        let m = Manifest::parse(
            r#"
            [[picture]]
            name = "Élan"
            title = "Momentum"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.title_of("élan"), Some("Momentum"));
        assert_eq!(m.position_of("ÉLAN"), 0);
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(Manifest::parse("colour = 3").is_err());
    }

    #[test]
    fn titles_from_names() {
        assert_eq!(title_from_name("red-car"), "Red car");
        assert_eq!(title_from_name("snow_fox"), "Snow fox");
        assert_eq!(title_from_name(""), "");
    }
}
