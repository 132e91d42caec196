//! The page's address: where its WebSocket is, and the `#name` that says which picture it
//! shows, so a link or a reload comes back to the same picture.

use wasm_bindgen::JsValue;

/// The server's WebSocket endpoint on the host that served the page; `wss:` when the page came
/// over https, since browsers refuse plain sockets from secure pages.
pub fn socket_url(page_protocol: &str, host: &str) -> String {
    let scheme = if page_protocol == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}/ws")
}

/// The picture name in a `location.hash` (`#house`, `#caf%C3%A9`), or `None` when there is
/// none. Percent escapes are decoded; broken ones are kept as typed.
pub fn name_from_hash(hash: &str) -> Option<String> {
    let raw = hash.strip_prefix('#').unwrap_or(hash);
    let name = percent_decode(raw);
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The `#name` for a picture, with everything but unreserved URL characters escaped.
pub fn hash_for(name: &str) -> String {
    let mut hash = String::with_capacity(name.len() + 1);
    hash.push('#');
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            hash.push(char::from(byte));
        } else {
            hash.push_str(&format!("%{byte:02X}"));
        }
    }
    hash
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// The address bar of the running page.
pub struct Address {
    window: web_sys::Window,
}

impl Address {
    pub fn new(window: web_sys::Window) -> Address {
        Address { window }
    }

    /// The picture name the address asks for, if any.
    pub fn wanted_name(&self) -> Option<String> {
        let hash = self.window.location().hash().ok()?;
        name_from_hash(&hash)
    }

    /// Points the address at a picture without reloading and without a new history entry.
    pub fn show_name(&self, name: &str) -> Result<(), JsValue> {
        self.window
            .history()?
            .replace_state_with_url(&JsValue::NULL, "", Some(&hash_for(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_follows_the_page() {
        assert_eq!(
            socket_url("http:", "127.0.0.1:8080"),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            socket_url("https:", "pictures.example"),
            "wss://pictures.example/ws"
        );
    }

    #[test]
    fn names_from_hashes() {
        assert_eq!(name_from_hash("#house"), Some("house".into()));
        assert_eq!(name_from_hash("#caf%C3%A9"), Some("café".into()));
        assert_eq!(name_from_hash("#a%20b"), Some("a b".into()));
        assert_eq!(name_from_hash("#100%"), Some("100%".into()));
        assert_eq!(name_from_hash("#%zz"), Some("%zz".into()));
        assert_eq!(name_from_hash("#%FF"), Some("\u{FFFD}".into()));
        assert_eq!(name_from_hash(""), None);
        assert_eq!(name_from_hash("#"), None);
        assert_eq!(name_from_hash("#%20"), None);
    }

    #[test]
    fn hashes_round_trip() {
        for name in ["house", "café", "a b/c#d", "Dog_2-x.y~z"] {
            assert_eq!(name_from_hash(&hash_for(name)).as_deref(), Some(name));
        }
        assert_eq!(hash_for("a b"), "#a%20b");
    }
}
