//! A WebSocket bridge session fed what a browser might send after the handshake: frames,
//! masks, fragments, control frames, and the requests inside messages.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use picture_server::fuzzing::Bridge;

fn bridge() -> &'static Bridge {
    static BRIDGE: OnceLock<Bridge> = OnceLock::new();
    BRIDGE.get_or_init(|| {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        Bridge::new(&assets).unwrap_or_else(|e| panic!("no bridge over {}: {e}", assets.display()))
    })
}

fuzz_target!(|data: &[u8]| {
    bridge().session(data);
});
