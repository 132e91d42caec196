//! The page logic against a real DOM in a browser: what the reader sees for pictures, errors
//! and a dead connection.

#![cfg(target_arch = "wasm32")]

use picture_protocol::{Kind, Response, ResponseHead, Status, TEXT_MIME};
use picture_web::answer;
use picture_web::app::Running;
use picture_web::menu::Menu;
use picture_web::status::StatusLine;
use picture_web::strip::StripView;
use picture_web::view::View;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Document, Element, HtmlImageElement, HtmlSelectElement, Window};

wasm_bindgen_test_configure!(run_in_browser);

/// A 3 × 2 red PNG.
const PNG: [u8; 73] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xF1,
    0x4D, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0x00,
    0x41, 0x0C, 0x70, 0x16, 0x00, 0x41, 0xD2, 0x05, 0xFB, 0x87, 0xF0, 0xB9, 0x48, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// The page's elements, added to the test page for one test and removed after it.
struct Fixture {
    window: Window,
    document: Document,
    root: Element,
}

impl Fixture {
    fn new() -> Fixture {
        let window = web_sys::window().unwrap_or_else(|| panic!("no window"));
        let document = window.document().unwrap_or_else(|| panic!("no document"));
        let root = document
            .create_element("div")
            .unwrap_or_else(|e| panic!("{e:?}"));
        root.set_inner_html(
            r#"<label for="picture">Picture</label><select id="picture"></select>
               <input id="search" type="search"><button id="more" hidden></button><nav id="strip"></nav>
               <form id="unlock"><input id="token"></form><div id="tools"><form id="upload"><input id="upload-file" type="file"><input id="upload-name"><input id="upload-title"><progress id="upload-progress"></progress></form><form id="edit"><input id="edit-name"><input id="edit-title"><button id="delete"></button></form></div><p id="editor-status"></p><figure id="frame"></figure>
               <div><img id="view" alt=""></div><p id="details"></p><button id="full-size" hidden></button>
               <p id="connection" data-state="connecting"></p><p id="status" data-state="idle"></p>"#,
        );
        document
            .body()
            .unwrap_or_else(|| panic!("no body"))
            .append_child(&root)
            .unwrap_or_else(|e| panic!("{e:?}"));
        Fixture {
            window,
            document,
            root,
        }
    }

    fn view(&self) -> View {
        View::find(&self.document).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn element<T: JsCast>(&self, id: &str) -> T {
        self.document
            .get_element_by_id(id)
            .and_then(|e| e.dyn_into::<T>().ok())
            .unwrap_or_else(|| panic!("no #{id}"))
    }

    fn state(&self, id: &str) -> String {
        self.element::<Element>(id)
            .get_attribute("data-state")
            .unwrap_or_default()
    }

    fn text(&self, id: &str) -> String {
        self.element::<Element>(id)
            .text_content()
            .unwrap_or_default()
    }

    /// Waits until `done` holds, failing after `timeout_ms`.
    async fn wait_for(&self, what: &str, timeout_ms: i32, done: impl Fn(&Fixture) -> bool) {
        let mut waited = 0;
        while !done(self) {
            assert!(waited < timeout_ms, "timed out waiting for {what}");
            sleep(&self.window, 20).await;
            waited += 20;
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.root.remove();
    }
}

async fn sleep(window: &Window, ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

#[wasm_bindgen_test]
fn menu_fills_the_select() {
    let fixture = Fixture::new();
    let view = fixture.view();
    let menu = Menu::new(vec![
        picture_protocol::PictureInfo {
            number: 1,
            name: "car".into(),
            title: "Car".into(),
            mime: "image/jpeg".into(),
            width: 1,
            height: 1,
            size: 1,
            sha256: [0; 32],
        },
        picture_protocol::PictureInfo {
            number: 2,
            name: "house".into(),
            title: "House".into(),
            mime: "image/png".into(),
            width: 1,
            height: 1,
            size: 1,
            sha256: [0; 32],
        },
    ]);
    view.fill_menu(&menu).unwrap_or_else(|e| panic!("{e:?}"));
    let more: web_sys::HtmlButtonElement = fixture.element("more");
    assert!(more.hidden(), "the whole catalog is listed");
    let partial = Menu::from_page(picture_protocol::Page {
        version: 1,
        total: 5,
        pictures: vec![],
    });
    view.fill_menu(&partial).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!more.hidden());
    assert!(
        more.text_content()
            .unwrap_or_default()
            .contains("5 not listed")
    );
    view.fill_menu(&menu).unwrap_or_else(|e| panic!("{e:?}"));
    let select: HtmlSelectElement = fixture.element("picture");
    let labels: Vec<String> = (0..select.length())
        .filter_map(|i| select.item(i))
        .filter_map(|option| option.text_content())
        .collect();
    assert_eq!(labels, ["1. Car", "2. House"]);
    view.select(Some(2));
    assert_eq!(view.selected_number(), Some(2));
    view.select(None);
    assert_eq!(view.selected_number(), None);
    view.fill_menu(&Menu::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(select.disabled());
}

#[wasm_bindgen_test]
fn error_answer_shows_its_text_in_the_status() {
    let fixture = Fixture::new();
    let body = b"cannot reach the picture server at 127.0.0.1:40674".to_vec();
    let response = Response {
        head: ResponseHead {
            kind: Some(Kind::Get),
            status: Status::Internal,
            id: 4,
            mime: TEXT_MIME.into(),
            dimensions: None,
            body_len: body.len() as u32,
        },
        body,
    };
    let message = response.encode().unwrap_or_else(|e| panic!("{e}"));
    let message = js_sys::Uint8Array::from(&message[..]).buffer();
    let Err(problem) = answer::read_message(&message).and_then(answer::picture) else {
        panic!("an internal error is a failure");
    };
    fixture.view().set_status(&StatusLine::error(problem));
    assert_eq!(fixture.state("status"), "error");
    assert!(fixture.text("status").contains("internal server error"));
    assert!(
        fixture
            .text("status")
            .contains("cannot reach the picture server")
    );
}

#[wasm_bindgen_test]
async fn picture_is_shown_from_a_blob_url() {
    let fixture = Fixture::new();
    let mut view = fixture.view();
    let png = js_sys::Uint8Array::from(&PNG[..]);
    let first = view
        .show_picture(&png, "image/png", "Red", "red")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let img: HtmlImageElement = fixture.element("view");
    assert!(first.starts_with("blob:"));
    assert_eq!(img.src(), first);
    assert_eq!(img.alt(), "Red");
    assert_eq!(img.get_attribute("data-name").as_deref(), Some("red"));
    fixture
        .wait_for("the picture to decode", 5000, |_| {
            img.complete() && img.natural_width() > 0
        })
        .await;
    assert_eq!(view.picture_size(), (3, 2));
    let second = view
        .show_picture(&png, "image/png", "Red again", "red")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_ne!(first, second);
}

#[wasm_bindgen_test]
async fn requests_fail_at_once_while_disconnected() {
    let fixture = Fixture::new();
    // Nothing listens on the discard port, so every connection attempt fails.
    let running = Running::mount(
        &fixture.window,
        &fixture.document,
        "ws://127.0.0.1:9/ws".into(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    fixture
        .wait_for("the connection to fail", 5000, |f| {
            f.state("connection") == "disconnected"
        })
        .await;
    assert!(fixture.text("connection").contains("Disconnected"));

    let location = fixture.window.location();
    location
        .set_hash("house")
        .unwrap_or_else(|e| panic!("{e:?}"));
    fixture
        .wait_for("the request to fail", 2000, |f| {
            f.state("status") == "error"
        })
        .await;
    assert!(
        fixture.text("status").contains("not connected"),
        "{}",
        fixture.text("status")
    );
    drop(running);
    location.set_hash("").unwrap_or_else(|e| panic!("{e:?}"));
}

fn entry(number: u32, name: &str, sha256: u8) -> picture_protocol::PictureInfo {
    picture_protocol::PictureInfo {
        number,
        name: name.into(),
        title: name.to_uppercase(),
        mime: "image/png".into(),
        width: 3,
        height: 2,
        size: 73,
        sha256: [sha256; 32],
    }
}

#[wasm_bindgen_test]
fn the_strip_keeps_thumbnails_by_their_bytes_and_marks_the_one_on_show() {
    let fixture = Fixture::new();
    let element: Element = fixture.element("strip");
    let mut strip = StripView::new(&fixture.document, element.clone());
    let (car, house) = (entry(1, "car", 1), entry(2, "house", 2));
    let wanted = strip
        .fill(&[car.clone(), house.clone()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        wanted,
        vec![("car".to_owned(), [1; 32]), ("house".to_owned(), [2; 32])]
    );
    let png = js_sys::Uint8Array::from(&PNG[..]);
    strip
        .show([1; 32], &png, "image/png")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let car_image = |strip: &Element| {
        strip
            .query_selector("button[data-name=car] img")
            .ok()
            .flatten()
            .and_then(|i| i.dyn_into::<HtmlImageElement>().ok())
            .unwrap_or_else(|| panic!("no thumbnail for car"))
    };
    let url = car_image(&element).src();
    assert!(url.starts_with("blob:"), "{url}");
    assert_eq!(car_image(&element).alt(), "CAR");

    // Moved to another number, same bytes: the thumbnail is kept, not asked for again.
    let moved = entry(2, "car", 1);
    let wanted = strip
        .fill(&[entry(1, "house", 2), moved])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(wanted, vec![("house".to_owned(), [2; 32])]);
    assert_eq!(car_image(&element).src(), url);

    strip.mark(Some(2));
    let marked: Vec<String> = (0..element.children().length())
        .filter_map(|n| element.children().item(n))
        .filter(|b| b.get_attribute("aria-current").as_deref() == Some("true"))
        .filter_map(|b| b.get_attribute("data-name"))
        .collect();
    assert_eq!(marked, ["car"]);
}
