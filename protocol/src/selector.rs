use std::fmt;

/// Longest picture name a request may carry, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Which picture a client wants: its 1-based menu number or its name (matched without regard
/// to case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    Number(u32),
    Name(String),
}

impl Selector {
    /// Reads a choice as a person types it: surrounding white space (a trailing newline from
    /// `echo` or a terminal) is ignored, all digits means a menu number, anything else a name.
    ///
    /// This is also how bare-choice mode reads the bytes an old client sends. Invalid UTF-8 is
    /// replaced rather than refused: it simply matches no picture.
    pub fn from_choice(raw: &[u8]) -> Selector {
        let text = String::from_utf8_lossy(raw);
        let choice = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if !choice.is_empty() && choice.bytes().all(|b| b.is_ascii_digit()) {
            // A number too large for u32 names no picture; 0 names none either.
            return Selector::Number(choice.parse().unwrap_or(0));
        }
        Selector::Name(choice.to_owned())
    }
}

/// Whether two picture names are the same name: names are matched without regard to case,
/// everywhere (server, clients, page).
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Number(n) => write!(f, "#{n}"),
            Selector::Name(name) => write!(f, "{name:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_numbers() {
        assert_eq!(Selector::from_choice(b"1"), Selector::Number(1));
        assert_eq!(Selector::from_choice(b"12\n"), Selector::Number(12));
        assert_eq!(Selector::from_choice(b" 3\r\n"), Selector::Number(3));
    }

    #[test]
    fn names_are_the_same_ignoring_case() {
        assert!(same_name("Car", "cAR"));
        assert!(same_name("Élan", "élan"));
        assert!(!same_name("car", "cars"));
    }

    #[test]
    fn overflowing_number_matches_nothing() {
        assert_eq!(
            Selector::from_choice(b"99999999999999999999"),
            Selector::Number(0)
        );
    }

    #[test]
    fn words_are_names() {
        assert_eq!(
            Selector::from_choice(b"car\n"),
            Selector::Name("car".into())
        );
        assert_eq!(Selector::from_choice(b"Car"), Selector::Name("Car".into()));
        assert_eq!(Selector::from_choice(b"1a"), Selector::Name("1a".into()));
        assert_eq!(Selector::from_choice(b"\n"), Selector::Name(String::new()));
    }

    #[test]
    fn invalid_utf8_becomes_a_harmless_name() {
        let Selector::Name(name) = Selector::from_choice(&[0xFF, 0xFE, b'x']) else {
            panic!("expected a name");
        };
        assert!(name.ends_with('x'));
    }
}
