//! Request frames, as the server decodes them from any client: never a panic, never more
//! consumed than given, and what decodes encodes back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picture_protocol::{MAX_REQUEST_PAYLOAD, decode_request, peek_request_header};

fuzz_target!(|data: &[u8]| {
    let _ = peek_request_header(data);
    if let Ok(Some((request, used))) = decode_request(data, MAX_REQUEST_PAYLOAD) {
        assert!(used <= data.len());
        let encoded = request.encode().expect("a decoded request encodes");
        let again = decode_request(&encoded, MAX_REQUEST_PAYLOAD);
        assert!(matches!(again, Ok(Some((ref r, n))) if *r == request && n == encoded.len()));
    }
});
