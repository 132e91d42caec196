//! The page's elements and every change made to them. The element ids are a contract with the
//! page (`www/index.html`) and with the end-to-end browser tests.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Blob, BlobPropertyBag, Document, Element, HtmlButtonElement, HtmlImageElement,
    HtmlInputElement, HtmlOptionElement, HtmlSelectElement, Url,
};

use crate::connection::ConnectionState;
use crate::menu::Menu;
use crate::status::StatusLine;

/// Handles on the elements the app updates.
pub struct View {
    document: Document,
    menu: HtmlSelectElement,
    search: HtmlInputElement,
    more: HtmlButtonElement,
    picture: HtmlImageElement,
    strip: Element,
    full_size: HtmlButtonElement,
    connection: Element,
    status: Element,
    details: Element,
    /// The `blob:` URL the picture element shows, revoked when replaced so pictures seen
    /// earlier do not stay in memory.
    object_url: Option<String>,
}

impl View {
    /// Finds the elements; fails naming the first one missing.
    pub fn find(document: &Document) -> Result<View, JsValue> {
        Ok(View {
            document: document.clone(),
            menu: element(document, "picture")?,
            search: element(document, "search")?,
            more: element(document, "more")?,
            picture: element(document, "view")?,
            strip: element(document, "strip")?,
            full_size: element(document, "full-size")?,
            connection: element(document, "connection")?,
            status: element(document, "status")?,
            details: element(document, "details")?,
            object_url: None,
        })
    }

    pub fn menu(&self) -> &HtmlSelectElement {
        &self.menu
    }

    pub fn picture(&self) -> &HtmlImageElement {
        &self.picture
    }

    pub fn strip(&self) -> &Element {
        &self.strip
    }

    pub fn full_size(&self) -> &HtmlButtonElement {
        &self.full_size
    }

    /// Shows the "Full size" button (for a picture shown smaller than it is), or hides it.
    pub fn offer_full_size(&self, offered: bool) {
        self.full_size.set_hidden(!offered);
    }

    /// Device pixels per CSS pixel of the screen the page is on.
    pub fn pixel_ratio(&self) -> f64 {
        web_sys::window().map_or(1.0, |window| window.device_pixel_ratio())
    }

    /// The most device pixels the picture can take on the page: the width of its frame, and
    /// three quarters of the window's height (`#view`'s `max-height` in `www/style.css`),
    /// each rounded up to a multiple of 64 so that windows of nearly one size share the
    /// variants the server keeps.
    pub fn picture_box(&self) -> (u32, u32) {
        let width = self
            .picture
            .parent_element()
            .map_or(0, |canvas| canvas.client_width().max(0) as u32);
        let height = web_sys::window()
            .and_then(|window| window.inner_height().ok())
            .and_then(|height| height.as_f64())
            .map_or(0, |height| (height * 0.75) as u32);
        let (width, height) = crate::thumbnails::device_box((width, height), self.pixel_ratio());
        (width.next_multiple_of(64), height.next_multiple_of(64))
    }

    /// Records on the picture element the box the picture on its way was asked to fit in
    /// (`data-max-width`, `data-max-height`; 0 for full size), for the browser tests.
    pub fn note_box(&self, width: u32, height: u32) {
        let _ = self
            .picture
            .set_attribute("data-max-width", &width.to_string());
        let _ = self
            .picture
            .set_attribute("data-max-height", &height.to_string());
    }

    pub fn search(&self) -> &HtmlInputElement {
        &self.search
    }

    pub fn more(&self) -> &HtmlButtonElement {
        &self.more
    }

    /// The search text as typed, without surrounding white space.
    pub fn search_text(&self) -> String {
        self.search.value().trim().to_owned()
    }

    pub fn set_connection(&self, state: ConnectionState, text: &str) {
        // Setting attributes only fails for invalid names, and these are constants.
        let _ = self.connection.set_attribute("data-state", state.as_str());
        self.connection.set_text_content(Some(text));
    }

    pub fn set_status(&self, line: &StatusLine) {
        let _ = self.status.set_attribute("data-state", line.state.as_str());
        self.status.set_text_content(Some(&line.text));
    }

    pub fn set_details(&self, text: &str) {
        self.details.set_text_content(Some(text));
    }

    /// Replaces the menu's entries; the menu is disabled while it has none.
    pub fn fill_menu(&self, menu: &Menu) -> Result<(), JsValue> {
        self.menu.set_length(0);
        for entry in menu.entries() {
            let option = self
                .document
                .create_element("option")?
                .dyn_into::<HtmlOptionElement>()?;
            option.set_text(&entry.label);
            option.set_value(&entry.value);
            self.menu.add_with_html_option_element(&option)?;
        }
        self.menu.set_disabled(self.menu.length() == 0);
        let remaining = menu.remaining();
        self.more.set_hidden(remaining == 0);
        self.more
            .set_text_content(Some(&format!("Show more ({remaining} not listed yet)")));
        Ok(())
    }

    /// Selects the entry for picture `number`, or none (for a name the menu lacks).
    pub fn select(&self, number: Option<u32>) {
        match number {
            Some(number) => self.menu.set_value(&number.to_string()),
            None => self.menu.set_selected_index(-1),
        }
    }

    /// The picture number of the selected entry.
    pub fn selected_number(&self) -> Option<u32> {
        self.menu.value().parse().ok()
    }

    /// Starts showing `bytes` as a picture of type `mime`; the element reports `load` or
    /// `error` when it has decoded it. Returns the `blob:` URL it now shows.
    ///
    /// `bytes` is a view of the buffer the picture arrived in: the Blob is made from it
    /// directly, so the picture never passes through wasm memory.
    pub fn show_picture(
        &mut self,
        bytes: &js_sys::Uint8Array,
        mime: &str,
        alt: &str,
        name: &str,
    ) -> Result<String, JsValue> {
        let parts = js_sys::Array::of1(bytes);
        let options = BlobPropertyBag::new();
        options.set_type(mime);
        let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
        let url = Url::create_object_url_with_blob(&blob)?;
        self.picture.set_alt(alt);
        self.picture.set_attribute("data-name", name)?;
        self.picture.set_src(&url);
        if let Some(previous) = self.object_url.replace(url.clone()) {
            // The element has moved on to the new URL, so the old one can go.
            Url::revoke_object_url(&previous)?;
        }
        Ok(url)
    }

    /// The URL the picture element shows now, to tell whose `load` event arrived.
    pub fn picture_src(&self) -> String {
        self.picture.src()
    }

    /// The decoded size of the picture on show.
    pub fn picture_size(&self) -> (u32, u32) {
        (self.picture.natural_width(), self.picture.natural_height())
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(url) = self.object_url.take() {
            let _ = Url::revoke_object_url(&url);
        }
    }
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| JsValue::from_str(&format!("the page has no element #{id}")))?
        .dyn_into::<T>()
        .map_err(|_| JsValue::from_str(&format!("#{id} is not the kind of element expected")))
}
