//! A pictures folder's `catalog.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        picture_server::fuzzing::catalog_toml(text);
    }
});
