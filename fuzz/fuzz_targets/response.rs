//! What clients parse from a server: response frames, and the catalog, page and change
//! bodies inside them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picture_protocol::{Change, MAX_RESPONSE_BODY, Page, decode_catalog, decode_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((response, used))) = decode_response(data, MAX_RESPONSE_BODY) {
        assert!(used <= data.len());
        let _ = decode_catalog(&response.body);
        let _ = Page::decode(&response.body);
        let _ = Change::decode(&response.body);
    }
    let _ = decode_catalog(data);
    let _ = Page::decode(data);
    let _ = Change::decode(data);
});
