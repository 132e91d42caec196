//! The editor under the picture: unlocking with the admin token (kept in the tab's session
//! storage only), uploading by file picker or by dropping a file, renaming, retitling and
//! deleting the picture on show. The element ids are a contract with `www/index.html` and the
//! browser tests.

use picture_protocol::{Command, PictureInfo, PutRequest, Selector};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Document, Element, File, HtmlElement, HtmlInputElement, HtmlProgressElement, Storage,
};

use crate::status::StatusLine;

/// Where the token is kept: the tab's session storage, gone when the tab closes.
const TOKEN_KEY: &str = "picture-admin-token";

/// Handles on the editor's elements.
pub struct EditorView {
    unlock: HtmlElement,
    token: HtmlInputElement,
    tools: HtmlElement,
    upload: HtmlElement,
    file: HtmlInputElement,
    upload_name: HtmlInputElement,
    upload_title: HtmlInputElement,
    progress: HtmlProgressElement,
    edit: HtmlElement,
    edit_name: HtmlInputElement,
    edit_title: HtmlInputElement,
    delete: HtmlElement,
    drop_zone: HtmlElement,
    status: Element,
    storage: Option<Storage>,
}

impl EditorView {
    pub fn find(document: &Document) -> Result<EditorView, JsValue> {
        let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
        Ok(EditorView {
            unlock: element(document, "unlock")?,
            token: element(document, "token")?,
            tools: element(document, "tools")?,
            upload: element(document, "upload")?,
            file: element(document, "upload-file")?,
            upload_name: element(document, "upload-name")?,
            upload_title: element(document, "upload-title")?,
            progress: element(document, "upload-progress")?,
            edit: element(document, "edit")?,
            edit_name: element(document, "edit-name")?,
            edit_title: element(document, "edit-title")?,
            delete: element(document, "delete")?,
            drop_zone: element(document, "frame")?,
            status: element(document, "editor-status")?,
            storage,
        })
    }

    pub fn unlock_form(&self) -> &HtmlElement {
        &self.unlock
    }

    pub fn upload_form(&self) -> &HtmlElement {
        &self.upload
    }

    pub fn edit_form(&self) -> &HtmlElement {
        &self.edit
    }

    pub fn delete_button(&self) -> &HtmlElement {
        &self.delete
    }

    pub fn drop_zone(&self) -> &HtmlElement {
        &self.drop_zone
    }

    /// The token typed, which is also kept for the tab from now on.
    pub fn take_typed_token(&self) -> Option<String> {
        let token = self.token.value().trim().to_owned();
        self.token.set_value("");
        if token.is_empty() {
            return None;
        }
        if let Some(storage) = &self.storage {
            let _ = storage.set_item(TOKEN_KEY, &token);
        }
        Some(token)
    }

    /// The token kept for this tab, presented again after a reconnection.
    pub fn kept_token(&self) -> Option<String> {
        self.storage.as_ref()?.get_item(TOKEN_KEY).ok().flatten()
    }

    pub fn forget_token(&self) {
        if let Some(storage) = &self.storage {
            let _ = storage.remove_item(TOKEN_KEY);
        }
    }

    /// Shows the tools once the server accepted the token, or the token form again.
    pub fn set_unlocked(&self, unlocked: bool) {
        self.tools.set_hidden(!unlocked);
        self.unlock.set_hidden(unlocked);
    }

    /// Whether the tools are on show (the server accepted the token).
    pub fn is_unlocked(&self) -> bool {
        !self.tools.hidden()
    }

    /// The file chosen in the file picker.
    pub fn picked_file(&self) -> Option<File> {
        self.file.files()?.get(0)
    }

    /// The name and title typed for an upload (empty when left blank).
    pub fn upload_fields(&self) -> (String, String) {
        (
            self.upload_name.value().trim().to_owned(),
            self.upload_title.value().trim().to_owned(),
        )
    }

    /// Clears the upload form after a successful upload.
    pub fn clear_upload(&self) {
        self.file.set_value("");
        self.upload_name.set_value("");
        self.upload_title.set_value("");
    }

    /// The upload's progress (0 to 1), or none to hide the bar.
    pub fn set_progress(&self, done: Option<f64>) {
        self.progress.set_hidden(done.is_none());
        self.progress.set_value(done.unwrap_or(0.0));
    }

    /// Fills the edit form with the picture on show.
    pub fn show_current(&self, picture: Option<&PictureInfo>) {
        self.edit_name
            .set_value(picture.map_or("", |p| p.name.as_str()));
        self.edit_title
            .set_value(picture.map_or("", |p| p.title.as_str()));
    }

    /// The name and title in the edit form.
    pub fn edit_fields(&self) -> (String, String) {
        (
            self.edit_name.value().trim().to_owned(),
            self.edit_title.value().trim().to_owned(),
        )
    }

    pub fn set_dragging(&self, over: bool) {
        let _ = self
            .drop_zone
            .set_attribute("data-drop", if over { "over" } else { "" });
    }

    pub fn set_status(&self, line: &StatusLine) {
        let _ = self.status.set_attribute("data-state", line.state.as_str());
        self.status.set_text_content(Some(&line.text));
    }
}

/// The file a drop event carries, if any.
pub fn dropped_file(event: &web_sys::Event) -> Option<File> {
    event
        .dyn_ref::<web_sys::DragEvent>()?
        .data_transfer()?
        .files()?
        .get(0)
}

/// The name an upload is stored under: the one typed, or the file's name without its ending.
pub fn upload_name(typed: &str, file_name: &str) -> String {
    if !typed.is_empty() {
        return typed.to_owned();
    }
    match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => file_name.to_owned(),
    }
}

/// A file's size (`File.size`, a JavaScript number) as a PUT announces it, if it can: in a u32.
pub fn upload_size(size: f64) -> Option<u32> {
    // Sizes are whole numbers of bytes: the range check makes the conversion exact.
    (0.0..=f64::from(u32::MAX))
        .contains(&size)
        .then_some(size as u32)
}

/// The PUT frame's command for an upload of `size` bytes.
pub fn put_command(name: String, title: String, size: u32) -> Command {
    Command::Put(PutRequest {
        name,
        title,
        replace: false,
        size,
    })
}

/// What saving the edit form asks of the server for the picture `current`: a retitle, a
/// rename, both, or nothing. By name, not by menu number: another client may have moved or
/// deleted pictures since the menu was loaded, and a number would then name another picture.
/// The retitle goes first, while the picture still has the name both use.
pub fn edits(current: &PictureInfo, name: &str, title: &str) -> Vec<Command> {
    let selector = Selector::Name(current.name.clone());
    let mut commands = Vec::new();
    if title != current.title {
        commands.push(Command::Retitle {
            selector: selector.clone(),
            title: title.to_owned(),
        });
    }
    if !name.is_empty() && name != current.name {
        commands.push(Command::Rename {
            selector,
            name: name.to_owned(),
        });
    }
    commands
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| JsValue::from_str(&format!("the page has no element #{id}")))?
        .dyn_into::<T>()
        .map_err(|_| JsValue::from_str(&format!("#{id} is not the kind of element expected")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car() -> PictureInfo {
        PictureInfo {
            number: 4,
            name: "car".into(),
            title: "Car".into(),
            mime: "image/jpeg".into(),
            width: 1,
            height: 1,
            size: 1,
            sha256: [0; 32],
        }
    }

    #[test]
    fn upload_names_come_from_the_file_unless_typed() {
        assert_eq!(upload_name("", "Sunset.JPG"), "Sunset");
        assert_eq!(upload_name("", "archive.tar.gz"), "archive.tar");
        assert_eq!(upload_name("", "noext"), "noext");
        assert_eq!(upload_name("", ".png"), ".png");
        assert_eq!(upload_name("dusk", "Sunset.jpg"), "dusk");
    }

    #[test]
    fn upload_sizes_fit_a_put() {
        assert_eq!(upload_size(0.0), Some(0));
        assert_eq!(upload_size(20_284_213.0), Some(20_284_213));
        assert_eq!(upload_size(f64::from(u32::MAX)), Some(u32::MAX));
        assert_eq!(upload_size(f64::from(u32::MAX) + 1.0), None);
        assert_eq!(upload_size(f64::NAN), None);
    }

    #[test]
    fn saving_sends_only_what_changed() {
        assert!(edits(&car(), "car", "Car").is_empty());
        assert_eq!(
            edits(&car(), "auto", "Car"),
            [Command::Rename {
                selector: Selector::Name("car".into()),
                name: "auto".into()
            }]
        );
        let both = edits(&car(), "auto", "An auto");
        assert_eq!(both.len(), 2);
        assert!(matches!(&both[0], Command::Retitle { title, .. } if title == "An auto"));
        assert!(matches!(&both[1], Command::Rename { name, .. } if name == "auto"));
        // An emptied name field is not a rename; an emptied title is a retitle.
        assert_eq!(edits(&car(), "", "Car"), []);
        assert_eq!(edits(&car(), "car", "").len(), 1);
    }
}
