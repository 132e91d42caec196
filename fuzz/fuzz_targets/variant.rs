//! A picture made into variants, as the server makes them from what a store holds: format
//! sniffing, the pixel cap, JPEG decoding at a reduced scale (libjpeg-turbo), the other
//! decoders, orientation, resizing, and the JPEG, PNG and WebP encoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    picture_server::fuzzing::variant(data);
});
