//! The pure logic, run inside WebAssembly in a browser: the protocol decoding, menu and
//! formatting the page relies on behave there as they do natively.

#![cfg(target_arch = "wasm32")]

use picture_protocol::{
    CATALOG_MIME, Kind, PictureInfo, Response, ResponseHead, Status, encode_catalog,
};
use picture_web::address::{hash_for, name_from_hash, socket_url};
use picture_web::answer::{catalog as catalog_in, read_message};
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

/// A LIST answer exactly as the server frames it.
fn list_message(pictures: &[PictureInfo]) -> Vec<u8> {
    let body = encode_catalog(pictures).unwrap_or_else(|e| panic!("encode catalog: {e}"));
    let response = Response {
        head: ResponseHead {
            kind: Some(Kind::List),
            status: Status::Ok,
            id: 1,
            mime: CATALOG_MIME.into(),
            body_len: body.len() as u32,
        },
        body,
    };
    response
        .encode()
        .unwrap_or_else(|e| panic!("encode response: {e}"))
}

#[wasm_bindgen_test]
fn list_answer_decodes_to_the_catalog() {
    let response = read_message(&list_message(&catalog())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.head.id, 1);
    assert_eq!(catalog_in(response), Ok(catalog()));
}

#[wasm_bindgen_test]
fn truncated_list_answer_is_an_error() {
    let message = list_message(&catalog());
    assert!(read_message(&message[..message.len() - 1]).is_err());
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
        mime: "image/jpeg".into(),
        bytes: 1_016_049,
        elapsed_ms: 20.0,
    };
    assert_eq!(
        details.text(),
        "Car — 1500 × 938, image/jpeg, 992.2 KiB in 20 ms"
    );
}
