//! The pure logic, run inside WebAssembly in a browser: the protocol decoding, menu and
//! formatting the page relies on behave there as they do natively.

#![cfg(target_arch = "wasm32")]

use js_sys::{ArrayBuffer, Uint8Array};
use picture_protocol::{
    CATALOG_MIME, Kind, PictureInfo, Response, ResponseHead, Status, encode_catalog,
};
use picture_web::address::{hash_for, name_from_hash, socket_url};
use picture_web::answer::{Body, catalog as catalog_in, picture as picture_in, read_message};
use picture_web::format::{Details, human_duration, human_size};
use picture_web::menu::{Menu, Target};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn picture(number: u32, name: &str, title: &str) -> PictureInfo {
    PictureInfo {
        number,
        name: name.into(),
        title: title.into(),
        mime: "image/jpeg".into(),
        width: 1500,
        height: 938,
        size: 1_016_049,
        sha256: [number as u8; 32],
    }
}

fn catalog() -> Vec<PictureInfo> {
    vec![picture(1, "car", "Car"), picture(2, "house", "House")]
}

/// An answer exactly as the server frames it.
fn message(kind: Kind, status: Status, mime: &str, body: Vec<u8>) -> Vec<u8> {
    let response = Response {
        head: ResponseHead {
            kind: Some(kind),
            status,
            id: 1,
            mime: mime.into(),
            dimensions: None,
            body_len: body.len() as u32,
        },
        body,
    };
    response
        .encode()
        .unwrap_or_else(|e| panic!("encode response: {e}"))
}

/// A LIST answer exactly as the server frames it.
fn list_message(pictures: &[PictureInfo]) -> Vec<u8> {
    let body = encode_catalog(pictures).unwrap_or_else(|e| panic!("encode catalog: {e}"));
    message(Kind::List, Status::Ok, CATALOG_MIME, body)
}

/// `bytes` in a buffer of the browser's, as a WebSocket message arrives.
fn received(bytes: &[u8]) -> ArrayBuffer {
    Uint8Array::from(bytes).buffer()
}

#[wasm_bindgen_test]
fn list_answer_decodes_to_the_catalog() {
    let response =
        read_message(&received(&list_message(&catalog()))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.head.id, 1);
    assert_eq!(catalog_in(response), Ok(catalog()));
}

#[wasm_bindgen_test]
fn truncated_or_longer_list_answer_is_an_error() {
    let message = list_message(&catalog());
    let truncated = read_message(&received(&message[..message.len() - 1]));
    assert!(truncated.is_err_and(|e| e.contains("incomplete")));
    let longer = read_message(&received(&[&message[..], b"xy"].concat()));
    assert!(longer.is_err_and(|e| e.contains("2 bytes after")));
}

#[wasm_bindgen_test]
fn a_picture_stays_in_the_buffer_it_arrived_in() {
    let bytes = message(
        Kind::Get,
        Status::Ok,
        "image/png",
        b"not really a png".to_vec(),
    );
    let buffer = received(&bytes);
    let response = read_message(&buffer).unwrap_or_else(|e| panic!("{e}"));
    let Body::Picture(view) = &response.body else {
        panic!(
            "a picture is not copied into wasm memory: {:?}",
            response.body
        );
    };
    // A view of the very buffer received, just after the head: nothing was copied.
    assert!(js_sys::Object::is(&view.buffer(), &buffer));
    assert_eq!(view.byte_offset() as usize, 16 + "image/png".len());
    let picture = picture_in(response).unwrap_or_else(|e| panic!("{e}"));
    assert!(picture.found);
    assert_eq!(picture.mime, "image/png");
    assert_eq!(picture.bytes.to_vec(), b"not really a png");

    let not_found = message(Kind::Get, Status::NotFound, "image/png", b"nf".to_vec());
    let not_found = read_message(&received(&not_found)).and_then(picture_in);
    assert!(not_found.is_ok_and(|p| !p.found && p.bytes.to_vec() == b"nf"));
}

#[wasm_bindgen_test]
fn menu_labels_follow_the_terminal_menu() {
    let labels: Vec<String> = Menu::new(catalog()).entries().map(|e| e.label).collect();
    assert_eq!(labels, ["1. Car", "2. House"]);
}

#[wasm_bindgen_test]
fn deep_links_resolve_ignoring_case() {
    let menu = Menu::new(catalog());
    let house = picture(2, "house", "House");
    assert_eq!(menu.resolve(Some("HoUsE")), Target::Picture(&house));
    assert_eq!(
        menu.resolve(Some("unicorn")),
        Target::Unknown("unicorn".into())
    );
    assert_eq!(
        menu.resolve(None),
        Target::Picture(&picture(1, "car", "Car"))
    );
    assert_eq!(name_from_hash("#HOUSE").as_deref(), Some("HOUSE"));
    assert_eq!(
        name_from_hash(&hash_for("café au lait")).as_deref(),
        Some("café au lait")
    );
    assert_eq!(
        socket_url("https:", "example.org:8443"),
        "wss://example.org:8443/ws"
    );
}

#[wasm_bindgen_test]
fn formatting() {
    assert_eq!(human_size(1_016_049), "992.2 KiB");
    assert_eq!(human_size(12), "12 B");
    assert_eq!(human_duration(41.6), "42 ms");
    assert_eq!(human_duration(2500.0), "2.5 s");
    let details = Details {
        title: "Car".into(),
        width: 1500,
        height: 938,
        full_size: None,
        mime: "image/jpeg".into(),
        bytes: 1_016_049,
        elapsed_ms: 20.0,
    };
    assert_eq!(
        details.text(),
        "Car — 1500 × 938, image/jpeg, 992.2 KiB in 20 ms"
    );
}
