//! The picture server's page in the browser: a menu of the server's pictures and the one
//! chosen, fetched over a WebSocket in the server's own framed protocol (`picture-protocol`).
//!
//! [`app`] owns the state and reacts to [`events`]; [`connection`] keeps the socket, [`view`]
//! changes the page and [`editor`] the editor under it. The rest is pure and tested natively too: [`menu`], [`address`],
//! [`answer`], [`pending`], [`backoff`], [`status`] and [`format`].

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
pub mod view;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// Starts the page. Called by `www/index.html` once the module is loaded; an error is shown
/// there.
#[wasm_bindgen]
pub fn run() -> Result<(), JsValue> {
    app::start()
}

/// A JavaScript error in words, for the status line.
pub(crate) fn describe_js_error(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}
