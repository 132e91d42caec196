//! Time in the browser: a monotonic clock for transfer times, and one-shot timers.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds since the page started, from `performance.now()` (0 where it is missing).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// Runs `task` once, `delay_ms` from now. The timer is never cancelled: tasks check when they
/// run whether they still apply, which keeps every timer's closure freed after it fires.
pub fn after(delay_ms: u32, task: impl FnOnce() + 'static) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window for a timer"))?;
    let callback = Closure::once_into_js(task);
    let delay = i32::try_from(delay_ms).unwrap_or(i32::MAX);
    window
        .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), delay)?;
    Ok(())
}
