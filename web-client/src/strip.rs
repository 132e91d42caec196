//! The strip of thumbnails under the menu: one button per loaded picture, showing its
//! thumbnail once it arrives, for picking a picture by sight.
//!
//! Thumbnails are kept by their picture's SHA-256, as `blob:` URLs made straight from the
//! buffers they arrived in (never copied into wasm memory). A menu read again keeps the ones
//! whose bytes are unchanged, and gives back the memory of the others.

use std::collections::HashMap;

use js_sys::Uint8Array;
use picture_protocol::PictureInfo;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, Document, Element, HtmlImageElement, Url};

use crate::thumbnails::{THUMBNAIL_BOX, Wanted};

pub struct StripView {
    document: Document,
    strip: Element,
    /// The `blob:` URL of each thumbnail received, by its picture's SHA-256.
    urls: HashMap<[u8; 32], String>,
}

impl StripView {
    pub fn new(document: &Document, strip: Element) -> StripView {
        StripView {
            document: document.clone(),
            strip,
            urls: HashMap::new(),
        }
    }

    pub fn element(&self) -> &Element {
        &self.strip
    }

    /// A button for each of `pictures`, with the thumbnails at hand; returns the pictures
    /// whose thumbnails are still wanted, in strip order.
    pub fn fill(&mut self, pictures: &[PictureInfo]) -> Result<Vec<Wanted>, JsValue> {
        self.strip.set_text_content(None);
        let mut wanted = Vec::new();
        for picture in pictures {
            let button = self.document.create_element("button")?;
            button.set_attribute("type", "button")?;
            button.set_attribute("class", "thumb")?;
            button.set_attribute("data-number", &picture.number.to_string())?;
            button.set_attribute("data-name", &picture.name)?;
            button.set_attribute("title", &picture.title)?;
            let image = self
                .document
                .create_element("img")?
                .dyn_into::<HtmlImageElement>()?;
            image.set_alt(&picture.title);
            image.set_width(THUMBNAIL_BOX.0);
            image.set_height(THUMBNAIL_BOX.1);
            image.set_attribute("data-sha256", &hex(&picture.sha256))?;
            match self.urls.get(&picture.sha256) {
                Some(url) => image.set_src(url),
                None => wanted.push((picture.name.clone(), picture.sha256)),
            }
            button.append_child(&image)?;
            self.strip.append_child(&button)?;
        }
        // Thumbnails of pictures no longer in the strip give their memory back.
        let kept: std::collections::HashSet<[u8; 32]> = pictures.iter().map(|p| p.sha256).collect();
        self.urls.retain(|sha256, url| {
            let keep = kept.contains(sha256);
            if !keep {
                let _ = Url::revoke_object_url(url);
            }
            keep
        });
        Ok(wanted)
    }

    /// Shows a thumbnail that arrived on every button of a picture with these bytes.
    pub fn show(
        &mut self,
        sha256: [u8; 32],
        bytes: &Uint8Array,
        mime: &str,
    ) -> Result<(), JsValue> {
        let parts = js_sys::Array::of1(bytes);
        let options = BlobPropertyBag::new();
        options.set_type(mime);
        let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
        let url = Url::create_object_url_with_blob(&blob)?;
        let images = self
            .strip
            .query_selector_all(&format!("img[data-sha256=\"{}\"]", hex(&sha256)))?;
        for n in 0..images.length() {
            if let Some(image) = images
                .item(n)
                .and_then(|i| i.dyn_into::<HtmlImageElement>().ok())
            {
                image.set_attribute("data-mime", mime)?;
                image.set_src(&url);
            }
        }
        if let Some(previous) = self.urls.insert(sha256, url) {
            Url::revoke_object_url(&previous)?;
        }
        Ok(())
    }

    /// Marks the button of picture `number` as the one on show.
    pub fn mark(&self, number: Option<u32>) {
        let buttons = self.strip.children();
        for n in 0..buttons.length() {
            let Some(button) = buttons.item(n) else {
                continue;
            };
            let current = number.is_some_and(|number| {
                button.get_attribute("data-number") == Some(number.to_string())
            });
            let _ = if current {
                button.set_attribute("aria-current", "true")
            } else {
                button.remove_attribute("aria-current")
            };
        }
    }
}

/// The picture number of the strip button a click landed in.
pub fn picked(event: &web_sys::Event) -> Option<u32> {
    event
        .target()?
        .dyn_into::<Element>()
        .ok()?
        .closest("[data-number]")
        .ok()??
        .get_attribute("data-number")?
        .parse()
        .ok()
}

impl Drop for StripView {
    fn drop(&mut self) {
        for url in self.urls.values() {
            let _ = Url::revoke_object_url(url);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
