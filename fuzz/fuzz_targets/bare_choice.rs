//! What the original client's bare choice ("1", "dog") becomes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picture_protocol::Selector;

fuzz_target!(|data: &[u8]| {
    let _ = Selector::from_choice(data);
});
