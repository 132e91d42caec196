//! An uploaded picture, checked as the server checks it before storing it: format sniffing,
//! header reading, the pixel and colour-profile caps, decoding, metadata removal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    picture_server::fuzzing::upload(data);
});
