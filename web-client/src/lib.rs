//! The picture server's page in the browser: a menu of the server's pictures and the one
//! chosen, fetched over a WebSocket in the server's own framed protocol (`picture-protocol`).
//!
//! [`app`] owns the state and reacts to [`events`]; [`connection`] keeps the socket, [`view`]
//! changes the page, [`strip`] the thumbnails under the menu and [`editor`] the editor under
//! it. The rest is pure and tested natively too: [`menu`], [`address`], [`answer`],
//! [`pending`], [`thumbnails`], [`backoff`], [`status`] and [`format`].

#![forbid(unsafe_code)]

pub mod address;
pub mod answer;
pub mod app;
pub mod backoff;
pub mod clock;
pub mod connection;
pub mod editor;
pub mod events;
pub mod format;
pub mod menu;
pub mod pending;
pub mod status;
pub mod strip;
pub mod thumbnails;
pub mod view;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// Starts the page. Called by `www/index.html` once the module is loaded; an error is shown
/// there.
#[wasm_bindgen]
pub fn run() -> Result<(), JsValue> {
    app::start()
}

/// Bytes of WebAssembly memory the page holds, for diagnostics and for the browser tests that
/// check what loading a picture costs. Wasm memory never shrinks, so this is the most the page
/// has needed at once since it loaded. From the page's console:
/// `(await import('/pkg/picture_web.js')).wasm_memory_bytes()`.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    const PAGE_BYTES: f64 = 65_536.0;
    core::arch::wasm32::memory_size::<0>() as f64 * PAGE_BYTES
}

/// A JavaScript error in words, for the status line.
pub(crate) fn describe_js_error(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}
