//! The page's state and what each event does to it: connect and list the pictures, fetch the
//! one asked for, show it, and recover when the connection drops.

use std::cell::RefCell;
use std::rc::Rc;

use std::num::NonZeroU32;

use picture_protocol::{
    Change, ChangeKind, Command, Format, GetRequest, Kind, Page, PageRequest, Request, Selector,
    Variant, same_name,
};
use wasm_bindgen::JsValue;
use web_sys::{Document, Window};

use crate::address::{Address, socket_url};
use crate::answer::{self, Received, ReceivedPicture};
use crate::backoff::Backoff;
use crate::clock;
use crate::connection::{Connection, ConnectionState};
use crate::describe_js_error;
use crate::editor::EditorView;
use crate::events::{Dispatcher, Event, Listener, SocketNews};
use crate::format::{Details, human_duration};
use crate::menu::{Menu, Target};
use crate::pending::Pending;
use crate::status::StatusLine;
use crate::strip::{self, StripView};
use crate::thumbnails::{self, THUMBNAIL_BOX, Thumbnails};
use crate::view::View;

/// Menu entries loaded at a time: a dropdown stays usable, and the rest comes page by page.
const PAGE_SIZE: u16 = 200;
/// The most entries one request may bring (the protocol's largest page).
const MAX_PAGE: u16 = picture_protocol::MAX_PAGE_SIZE;

/// What an empty catalog shows: how pictures get in.
const NO_PICTURES: &str = "No pictures yet. Add some with the admin token under Edit pictures \
     below, with picture-client put FILE, or with picture-server import FOLDER.";

/// How long a request may wait for its answer before it fails.
const REQUEST_TIMEOUT_MS: u32 = 15_000;
/// How long an upload may take, sending included.
const UPLOAD_TIMEOUT_MS: u32 = 120_000;
/// How often the upload's progress bar moves.
const PROGRESS_INTERVAL_MS: u32 = 100;
/// The most requests waiting for answers at once; a reader cannot click faster than this
/// matters, a stuck server hits it.
const MAX_PENDING: usize = 16 + thumbnails::MAX_IN_FLIGHT;
/// Reconnection delays: quick at first, at most every 8 s.
const BACKOFF_FIRST_MS: u32 = 250;
const BACKOFF_MAX_MS: u32 = 8_000;
/// A connection that stayed up this long was a success: the next drop retries quickly again.
/// One that drops sooner (a server that accepts and then hangs up) keeps the delays growing.
const STABLE_CONNECTION_MS: f64 = 10_000.0;

thread_local! {
    /// The running page; it lives as long as the page does.
    static PAGE: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Starts the app on the page that loaded it, talking to the server that served the page.
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let location = window.location();
    let url = socket_url(&location.protocol()?, &location.host()?);
    let running = Running::mount(&window, &document, url)?;
    PAGE.with(|page| page.replace(Some(running)));
    Ok(())
}

/// An app wired to a document. Dropping it unregisters its listeners and closes its socket.
pub struct Running {
    _app: Rc<RefCell<App>>,
}

impl Running {
    /// Wires an app to the elements of `document` and connects to `socket_url`.
    pub fn mount(
        window: &Window,
        document: &Document,
        socket_url: String,
    ) -> Result<Running, JsValue> {
        let view = View::find(document)?;
        let editor = EditorView::find(document)?;
        let strip = StripView::new(document, view.strip().clone());
        let app = Rc::new_cyclic(|weak| {
            RefCell::new(App {
                view,
                editor,
                strip,
                thumbnails: Thumbnails::default(),
                uploading: None,
                address: Address::new(window.clone()),
                connection: Connection::new(socket_url),
                pending: Pending::new(MAX_PENDING),
                backoff: Backoff::new(BACKOFF_FIRST_MS, BACKOFF_MAX_MS),
                menu: Menu::default(),
                connected_at_ms: None,
                current: None,
                latest_get: None,
                latest_menu: None,
                refresh_again: false,
                decoding: None,
                dispatcher: Dispatcher::new(weak.clone()),
                listeners: Vec::new(),
            })
        });
        let dispatcher = app.borrow().dispatcher.clone();
        let listeners = {
            let app = app.borrow();
            let (menu, picture) = (app.view.menu(), app.view.picture());
            vec![
                dispatcher.listen(menu, "change", |_| Event::Chosen)?,
                dispatcher.listen(app.view.search(), "input", |_| Event::SearchChanged)?,
                dispatcher.listen(app.view.more(), "click", |_| Event::MoreWanted)?,
                dispatcher.listen(app.strip.element(), "click", |e| {
                    Event::Picked(strip::picked(e))
                })?,
                dispatcher.listen(app.view.full_size(), "click", |_| Event::FullSizeWanted)?,
                dispatcher.listen(app.editor.unlock_form(), "submit", |e| {
                    e.prevent_default();
                    Event::Unlock
                })?,
                dispatcher.listen(app.editor.upload_form(), "submit", |e| {
                    e.prevent_default();
                    Event::UploadWanted
                })?,
                dispatcher.listen(app.editor.edit_form(), "submit", |e| {
                    e.prevent_default();
                    Event::SaveWanted
                })?,
                dispatcher.listen(app.editor.delete_button(), "click", |_| Event::DeleteWanted)?,
                // Dropping needs dragover's default (refusing the drop) prevented.
                dispatcher.listen(app.editor.drop_zone(), "dragover", |e| {
                    e.prevent_default();
                    Event::Dragging(true)
                })?,
                dispatcher.listen(app.editor.drop_zone(), "dragleave", |_| {
                    Event::Dragging(false)
                })?,
                dispatcher.listen(app.editor.drop_zone(), "drop", |e| {
                    e.prevent_default();
                    Event::Dropped(crate::editor::dropped_file(e))
                })?,
                dispatcher.listen(window, "hashchange", |_| Event::HashChanged)?,
                dispatcher.listen(picture, "load", |_| Event::ImageLoaded)?,
                dispatcher.listen(picture, "error", |_| Event::ImageFailed)?,
            ]
        };
        app.borrow_mut().listeners = listeners;
        dispatcher.dispatch(Event::Start);
        Ok(Running { _app: app })
    }
}

/// What a request was sent for.
#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    /// The first page of the menu, and then the picture wanted.
    List,
    /// The menu again (as much of it as is loaded) after a change: the picture on show stays.
    Refresh,
    /// The first page of the menu for a new search.
    Search,
    /// The next page of the menu.
    More,
    /// Change notices from now on.
    Watch,
    /// The admin token, for the editor.
    Auth,
    /// A change made in the editor, and what to call it in the editor's status.
    Write(Kind, String),
    Get(Wanted),
    /// A thumbnail for the strip, of the picture with these bytes.
    Thumbnail([u8; 32]),
}

/// A picture asked for: its name (for the address and `data-name`), what to call it, and
/// whether at full size (otherwise fitted to the space the page gives it).
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    name: String,
    title: String,
    full: bool,
}

impl Purpose {
    fn describe(&self) -> String {
        match self {
            Purpose::List | Purpose::Refresh | Purpose::Search | Purpose::More => {
                "the list of pictures".to_owned()
            }
            Purpose::Watch => "news of changes".to_owned(),
            Purpose::Auth => "the admin token's check".to_owned(),
            Purpose::Write(_, what) => what.clone(),
            Purpose::Get(wanted) => wanted.title.clone(),
            Purpose::Thumbnail(_) => "a thumbnail".to_owned(),
        }
    }
}

/// A picture handed to the picture element, waiting for it to be decoded before the page
/// says it is on show.
struct Decoding {
    url: String,
    on_show: StatusLine,
    details: Details,
}

/// An upload on its way, for its progress bar.
struct Uploading {
    id: u32,
    total: f64,
}

/// The page's state. Only [`Dispatcher`] calls into it, one event at a time.
pub(crate) struct App {
    view: View,
    editor: EditorView,
    strip: StripView,
    thumbnails: Thumbnails,
    /// The upload being sent, if any.
    uploading: Option<Uploading>,
    address: Address,
    connection: Connection,
    pending: Pending<Purpose>,
    backoff: Backoff,
    menu: Menu,
    /// When the current connection opened.
    connected_at_ms: Option<f64>,
    /// The name of the picture on show or on its way, kept across reconnections.
    current: Option<String>,
    /// The id of the latest GET: answers to earlier ones are dropped, so a slow answer never
    /// replaces a later choice.
    latest_get: Option<u32>,
    /// The id of the latest request for the menu, for the same reason.
    latest_menu: Option<u32>,
    /// The catalog changed while a reload of the menu was on its way: reload once more.
    refresh_again: bool,
    decoding: Option<Decoding>,
    dispatcher: Dispatcher,
    /// The page's own listeners, unregistered when the app goes.
    listeners: Vec<Listener>,
}

impl App {
    pub(crate) fn handle(&mut self, event: Event) {
        match event {
            Event::Start | Event::ReconnectDue => self.connect(),
            Event::Socket { generation, .. } if !self.connection.is_current(generation) => {}
            Event::Socket { news, .. } => match news {
                SocketNews::Opened => self.on_open(),
                SocketNews::Message(Ok(response)) => self.on_message(response),
                SocketNews::Message(Err(problem)) => self.on_garbage(problem),
                SocketNews::Closed(reason) => self.on_closed(&reason),
            },
            Event::TimedOut(id) => self.on_timeout(id),
            Event::Chosen => self.on_chosen(),
            Event::Picked(Some(number)) => self.choose(number),
            Event::Picked(None) => {}
            Event::FullSizeWanted => {
                if let Some(name) = self.current.clone() {
                    self.fetch_sized(Some(&name), true);
                }
            }
            Event::HashChanged => self.on_hash_changed(),
            Event::ImageLoaded => self.on_image_loaded(),
            Event::ImageFailed => self.on_image_failed(),
            Event::SearchChanged => self.on_search_changed(),
            Event::MoreWanted => self.on_more_wanted(),
            Event::Unlock => self.on_unlock(),
            Event::UploadWanted => {
                let file = self.editor.picked_file();
                self.on_file(file);
            }
            Event::Dropped(file) => {
                self.editor.set_dragging(false);
                self.on_file(file);
            }
            Event::Dragging(over) => self.editor.set_dragging(over),
            Event::UploadProgress(id) => self.on_upload_progress(id),
            Event::SaveWanted => self.on_save(),
            Event::DeleteWanted => self.on_delete(),
        }
    }

    fn connect(&mut self) {
        self.view
            .set_connection(ConnectionState::Connecting, "Connecting…");
        if let Err(error) = self.connection.open(&self.dispatcher) {
            self.on_closed(&describe_js_error(&error));
        }
    }

    fn on_open(&mut self) {
        self.connection.opened();
        self.connected_at_ms = Some(clock::now_ms());
        self.view
            .set_connection(ConnectionState::Connected, "Connected");
        // Watching first: no change after the catalog is read can be missed.
        self.request(Purpose::Watch, Command::Watch);
        // A tab that unlocked the editor presents its token again on every connection.
        if let Some(token) = self.editor.kept_token() {
            self.request(Purpose::Auth, Command::Auth(token.into_bytes().into()));
        }
        self.load_menu(Purpose::List, 0, PAGE_SIZE);
    }

    fn on_closed(&mut self, reason: &str) {
        self.connection.closed();
        if self.uploading.take().is_some() {
            // Also what a file changed since it was picked comes to: the browser cannot read it
            // and fails the connection.
            self.editor.set_status(&StatusLine::error(format!(
                "The connection closed during the upload ({reason}); it may not have been \
                 stored. A file changed since it was picked must be picked again."
            )));
        }
        self.editor.set_progress(None);
        let stayed_up = self
            .connected_at_ms
            .take()
            .is_some_and(|since| clock::now_ms() - since >= STABLE_CONNECTION_MS);
        if stayed_up {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay_ms();
        self.view.set_connection(
            ConnectionState::Disconnected,
            &format!(
                "Disconnected, retrying in {}",
                human_duration(f64::from(delay))
            ),
        );
        let lost = self.pending.take_all();
        self.thumbnails.reset();
        if let Some(request) = lost
            .iter()
            .find(|r| self.is_shown_to_reader(r.id, &r.purpose))
        {
            self.view.set_status(&StatusLine::error(format!(
                "Lost the connection to the server ({reason}) while loading {}. Reconnecting…",
                request.purpose.describe()
            )));
        }
        let dispatcher = self.dispatcher.clone();
        if let Err(error) = clock::after(delay, move || dispatcher.dispatch(Event::ReconnectDue)) {
            self.fail(format!(
                "Cannot retry connecting: {}",
                describe_js_error(&error)
            ));
        }
    }

    /// Whether the outcome of a request is for the reader to see: the catalog always, a
    /// picture only if no later one was asked for.
    fn is_shown_to_reader(&self, id: u32, purpose: &Purpose) -> bool {
        match purpose {
            Purpose::Watch | Purpose::Auth | Purpose::Write(..) => true,
            Purpose::Get(_) => self.latest_get == Some(id),
            // The strip shows what it can: a thumbnail that fails leaves its button blank.
            Purpose::Thumbnail(_) => false,
            // A later search or reload of the menu makes earlier ones moot.
            _ => self.latest_menu == Some(id),
        }
    }

    fn on_garbage(&mut self, problem: String) {
        // Which request the nonsense answered is unknown: fail them all (so that the news of
        // the closing does not hide this message) and start over on a new connection.
        self.pending.take_all();
        self.fail(problem);
        self.connection.close();
    }

    fn on_message(&mut self, response: Received) {
        if answer::is_notice(&response) {
            return match answer::change(response) {
                Ok(change) => self.on_change(&change),
                Err(problem) => self.fail(problem),
            };
        }
        let Some(request) = self.pending.take(response.head.id) else {
            return; // The answer to a request that already failed by timing out.
        };
        if request.purpose == Purpose::Refresh && std::mem::take(&mut self.refresh_again) {
            self.refresh_menu();
        }
        if let Purpose::Thumbnail(sha256) = request.purpose {
            return self.on_thumbnail(sha256, response);
        }
        if !self.is_shown_to_reader(request.id, &request.purpose) {
            return;
        }
        let elapsed_ms = clock::now_ms() - request.sent_ms;
        match request.purpose.clone() {
            Purpose::List | Purpose::Refresh | Purpose::Search | Purpose::More => {
                match answer::page(response) {
                    Ok(page) => self.on_page(&request.purpose, page),
                    Err(problem) => self.fail(problem),
                }
            }
            // A server that cannot watch still serves pictures: the menu is only not live.
            Purpose::Watch => {}
            Purpose::Auth => self.on_auth_answer(response),
            Purpose::Write(kind, what) => self.on_written(request.id, kind, &what, response),
            Purpose::Get(wanted) => match answer::picture(response) {
                Ok(picture) => self.show(&wanted, picture, elapsed_ms),
                Err(problem) => self.fail(problem),
            },
            Purpose::Thumbnail(_) => {}
        }
    }

    fn on_thumbnail(&mut self, sha256: [u8; 32], response: Received) {
        self.thumbnails.finished();
        // A picture renamed or deleted while its thumbnail was on its way is answered with the
        // not-found picture, which is no thumbnail of it: the next menu asks again.
        if let Ok(picture) = answer::picture(response)
            && picture.found
            && let Err(error) = self.strip.show(sha256, &picture.bytes, &picture.mime)
        {
            self.fail(format!(
                "Cannot show a thumbnail: {}",
                describe_js_error(&error)
            ));
        }
        self.ask_for_thumbnails();
    }

    /// Asks for the next thumbnails the strip lacks, a few at a time, each fitted to the
    /// strip's box in device pixels, as WebP (the smallest of the formats at that size).
    fn ask_for_thumbnails(&mut self) {
        let (width, height) = thumbnails::device_box(THUMBNAIL_BOX, self.view.pixel_ratio());
        while self.connection.state() == ConnectionState::Connected
            && let Some((name, sha256)) = self.thumbnails.next_to_ask()
        {
            let command = Command::Get(GetRequest {
                selector: Selector::Name(name),
                variant: Variant {
                    max_width: NonZeroU32::new(width),
                    max_height: NonZeroU32::new(height),
                    format: Some(Format::WebP),
                },
            });
            if self.request(Purpose::Thumbnail(sha256), command).is_none() {
                self.thumbnails.finished();
                break;
            }
        }
    }

    /// Asks for the menu's pictures after number `after` that match the search.
    fn load_menu(&mut self, purpose: Purpose, after: u32, limit: u16) {
        let command = Command::Page(PageRequest {
            after,
            limit,
            search: self.view.search_text(),
        });
        self.latest_menu = self.request(purpose, command);
    }

    /// A page of the menu: the first one (then the picture wanted is fetched, keeping the one
    /// on show after a reconnection), a reload, a new search, or the next page.
    fn on_page(&mut self, purpose: &Purpose, page: Page) {
        match purpose {
            Purpose::More => match self.menu.extend(page) {
                Ok(()) => {
                    self.show_menu();
                }
                // The catalog changed since the menu was read: read it again as far as wanted.
                Err(_) => self.refresh_menu(),
            },
            Purpose::List => {
                if self.refill_menu(page) {
                    let wanted = self.current.clone().or_else(|| self.address.wanted_name());
                    self.fetch(wanted.as_deref());
                }
            }
            _ => {
                self.refill_menu(page);
            }
        }
    }

    fn on_search_changed(&mut self) {
        self.load_menu(Purpose::Search, 0, PAGE_SIZE);
    }

    fn on_more_wanted(&mut self) {
        let after = self.menu.last_number();
        self.load_menu(Purpose::More, after, PAGE_SIZE);
    }

    /// Puts a page in the menu, keeping the selection on the picture on show. Returns
    /// whether it could.
    fn refill_menu(&mut self, page: Page) -> bool {
        self.menu = Menu::from_page(page);
        self.show_menu()
    }

    fn show_menu(&mut self) -> bool {
        if let Err(error) = self.view.fill_menu(&self.menu) {
            self.fail(format!(
                "Cannot fill the menu: {}",
                describe_js_error(&error)
            ));
            return false;
        }
        match self.strip.fill(self.menu.pictures()) {
            Ok(wanted) => {
                self.thumbnails.want(wanted);
                self.ask_for_thumbnails();
            }
            Err(error) => self.fail(format!(
                "Cannot fill the strip of thumbnails: {}",
                describe_js_error(&error)
            )),
        }
        let shown = self
            .current
            .as_deref()
            .and_then(|name| self.menu.by_name(name))
            .map(|p| p.number);
        self.view.select(shown);
        self.strip.mark(shown);
        true
    }

    /// Something changed on the server: read the catalog again, and say so if the picture on
    /// show is gone or has a new name.
    fn on_change(&mut self, change: &Change) {
        let is_current = self
            .current
            .as_ref()
            .is_some_and(|current| same_name(current, &change.name));
        if is_current {
            match (change.kind, &change.picture) {
                (ChangeKind::Removed, _) => {
                    let title = self
                        .menu
                        .by_name(&change.name)
                        .map_or_else(|| format!("\"{}\"", change.name), |p| p.title.clone());
                    self.view.set_status(&StatusLine::deleted(&title));
                }
                (ChangeKind::Renamed, Some(picture)) => {
                    self.current = Some(picture.name.clone());
                    if let Err(error) = self.address.show_name(&picture.name) {
                        self.fail(format!(
                            "Cannot update the address: {}",
                            describe_js_error(&error)
                        ));
                    }
                }
                // New bytes under the name on show: show them.
                (ChangeKind::Replaced, Some(picture)) => {
                    let name = picture.name.clone();
                    self.fetch(Some(&name));
                }
                _ => {}
            }
        }
        self.refresh_menu();
    }

    /// Reads the menu again, as much of it as is loaded. One reload at a time: changes that
    /// arrive while one is on its way are covered by one more after it.
    fn refresh_menu(&mut self) {
        if self.pending.is_waiting(&Purpose::Refresh) {
            self.refresh_again = true;
            return;
        }
        let loaded = u16::try_from(self.menu.len() + usize::from(PAGE_SIZE)).unwrap_or(MAX_PAGE);
        self.load_menu(Purpose::Refresh, 0, loaded.clamp(PAGE_SIZE, MAX_PAGE));
    }

    fn on_chosen(&mut self) {
        if let Some(number) = self.view.selected_number() {
            self.choose(number);
        }
    }

    /// The reader picked picture `number`, in the menu or in the strip.
    fn choose(&mut self, number: u32) {
        let Some(picture) = self.menu.by_number(number) else {
            return;
        };
        let name = picture.name.clone();
        self.fetch(Some(&name));
        if let Err(error) = self.address.show_name(&name) {
            self.fail(format!(
                "Cannot update the address: {}",
                describe_js_error(&error)
            ));
        }
    }

    fn on_hash_changed(&mut self) {
        let Some(name) = self.address.wanted_name() else {
            return;
        };
        let already = self
            .current
            .as_ref()
            .is_some_and(|current| same_name(current, &name));
        if !already {
            self.fetch(Some(&name));
        }
    }

    /// Selects and fetches the picture `wanted` names, or the first one when none is named,
    /// fitted to the space the page gives it.
    fn fetch(&mut self, wanted: Option<&str>) {
        self.fetch_sized(wanted, false);
    }

    /// [`App::fetch`], at full size if `full`.
    fn fetch_sized(&mut self, wanted: Option<&str>, full: bool) {
        let (selector, wanted) = match self.menu.resolve(wanted) {
            Target::Picture(picture) => (
                Selector::Number(picture.number),
                Wanted {
                    name: picture.name.clone(),
                    title: picture.title.clone(),
                    full,
                },
            ),
            Target::Unknown(name) => (
                Selector::Name(name.clone()),
                Wanted {
                    title: format!("\"{name}\""),
                    name,
                    full,
                },
            ),
            Target::Nothing => {
                return self.view.set_status(&StatusLine::idle(NO_PICTURES));
            }
        };
        let number = self.menu.by_name(&wanted.name).map(|p| p.number);
        self.view.select(number);
        self.strip.mark(number);
        self.editor.show_current(self.menu.by_name(&wanted.name));
        self.current = Some(wanted.name.clone());
        self.view.set_status(&StatusLine::loading(&wanted.title));
        let variant = self.view_variant(full);
        let command = Command::Get(GetRequest { selector, variant });
        self.latest_get = self.request(Purpose::Get(wanted), command);
    }

    /// The picture as large as the page shows it (in device pixels), or at full size.
    fn view_variant(&self, full: bool) -> Variant {
        let (width, height) = if full {
            (0, 0)
        } else {
            self.view.picture_box()
        };
        self.view.note_box(width, height);
        Variant {
            max_width: NonZeroU32::new(width),
            max_height: NonZeroU32::new(height),
            format: None,
        }
    }

    /// Sends a request, or says at once why it cannot be sent. Returns its id.
    fn request(&mut self, purpose: Purpose, command: Command) -> Option<u32> {
        self.send_request(purpose, command, None, REQUEST_TIMEOUT_MS)
    }

    /// [`App::request`] with the file that follows a PUT frame, if any, and its own timeout.
    fn send_request(
        &mut self,
        purpose: Purpose,
        command: Command,
        upload: Option<&web_sys::File>,
        timeout_ms: u32,
    ) -> Option<u32> {
        let what = purpose.describe();
        if self.connection.state() != ConnectionState::Connected {
            self.fail(format!(
                "Cannot load {what}: not connected to the server. Reconnecting…"
            ));
            return None;
        }
        let Ok(id) = self.pending.start(purpose, clock::now_ms()) else {
            self.fail(format!(
                "Cannot load {what}: too many requests are waiting for the server."
            ));
            return None;
        };
        let sent = Request { id, command }
            .encode()
            .map_err(|error| format!("Cannot ask for {what}: {error}."))
            .and_then(|frame| match upload {
                None => self.connection.send(&frame),
                Some(picture) => self.connection.send_upload(&frame, picture),
            });
        if let Err(problem) = sent {
            self.pending.take(id);
            self.fail(problem);
            return None;
        }
        let dispatcher = self.dispatcher.clone();
        if let Err(error) =
            clock::after(timeout_ms, move || dispatcher.dispatch(Event::TimedOut(id)))
        {
            // Without its timer the request could wait for ever: give up on it now.
            self.pending.take(id);
            self.fail(format!(
                "Cannot time the request: {}",
                describe_js_error(&error)
            ));
            return None;
        }
        Some(id)
    }

    fn on_timeout(&mut self, id: u32) {
        let Some(request) = self.pending.take(id) else {
            return; // Answered in time.
        };
        if let Purpose::Thumbnail(_) = request.purpose {
            self.thumbnails.finished();
            return self.ask_for_thumbnails();
        }
        let editor_request = match &request.purpose {
            Purpose::Write(_, what) => Some(what.clone()),
            Purpose::Auth => Some("the token's check".to_owned()),
            _ => None,
        };
        if let Some(what) = editor_request {
            self.uploading = None;
            self.editor.set_progress(None);
            return self.editor.set_status(&StatusLine::error(format!(
                "The server did not answer in time: {what} may not have been done."
            )));
        }
        if self.is_shown_to_reader(id, &request.purpose) {
            self.fail(format!(
                "The server did not answer within {} while loading {}.",
                human_duration(f64::from(REQUEST_TIMEOUT_MS)),
                request.purpose.describe()
            ));
        }
    }

    /// Hands a received picture to the picture element; the status changes once it is decoded.
    fn show(&mut self, wanted: &Wanted, picture: ReceivedPicture, elapsed_ms: f64) {
        let (title, on_show) = if picture.found {
            (wanted.title.clone(), StatusLine::shown(&wanted.title))
        } else {
            (
                format!("Not found: \"{}\"", wanted.name),
                StatusLine::not_found(&wanted.name),
            )
        };
        // A variant smaller than the picture: the reader may ask for it at full size.
        let full_size = self
            .menu
            .by_name(&wanted.name)
            .filter(|_| picture.found && !wanted.full)
            .map(|p| (p.width, p.height))
            .filter(|&(width, height)| {
                picture.dimensions.is_some_and(|shown| {
                    u64::from(shown.width) * u64::from(shown.height)
                        < u64::from(width) * u64::from(height)
                })
            });
        self.view.offer_full_size(full_size.is_some());
        let url = self
            .view
            .show_picture(&picture.bytes, &picture.mime, &title, &wanted.name);
        match url {
            Ok(url) => {
                self.decoding = Some(Decoding {
                    url,
                    on_show,
                    details: Details {
                        title,
                        // Known once the picture is decoded.
                        width: 0,
                        height: 0,
                        full_size,
                        mime: picture.mime,
                        bytes: u64::from(picture.bytes.length()),
                        elapsed_ms,
                    },
                })
            }
            Err(error) => self.fail(format!(
                "Cannot show {}: {}",
                wanted.title,
                describe_js_error(&error)
            )),
        }
    }

    /// Takes the picture being decoded, if the element's news is about it rather than about a
    /// picture it has since been given instead of it.
    fn take_decoding(&mut self) -> Option<Decoding> {
        if self.decoding.as_ref()?.url != self.view.picture_src() {
            return None;
        }
        self.decoding.take()
    }

    fn on_image_loaded(&mut self) {
        let Some(Decoding {
            on_show,
            mut details,
            ..
        }) = self.take_decoding()
        else {
            return;
        };
        (details.width, details.height) = self.view.picture_size();
        self.view.set_details(&details.text());
        self.view.set_status(&on_show);
    }

    fn on_image_failed(&mut self) {
        let Some(Decoding { details, .. }) = self.take_decoding() else {
            return;
        };
        self.view.set_details("");
        self.fail(format!(
            "The browser cannot display {} ({}, {}).",
            details.title,
            details.mime,
            crate::format::human_size(details.bytes)
        ));
    }

    fn on_unlock(&mut self) {
        let Some(token) = self.editor.take_typed_token() else {
            return;
        };
        self.editor.set_status(&StatusLine {
            state: crate::status::StatusState::Loading,
            text: "Checking the token…".to_owned(),
        });
        self.request(Purpose::Auth, Command::Auth(token.into_bytes().into()));
    }

    fn on_auth_answer(&mut self, response: Received) {
        // The server ends the session after a wrong token: take it as gone now, so that
        // nothing is sent on it meanwhile; the close that follows brings a new connection.
        if response.head.status == picture_protocol::Status::Unauthorized {
            self.connection.closed();
            self.view
                .set_connection(ConnectionState::Disconnected, "Reconnecting…");
            self.connection.close();
        }
        match answer::written(Kind::Auth, response) {
            Ok(_) => {
                // After a reconnection the kept token is presented again: the editor keeps
                // what it last said (such as an upload cut off by the drop).
                if !self.editor.is_unlocked() {
                    self.editor.set_unlocked(true);
                    self.editor.set_status(&StatusLine::idle(
                        "Unlocked: upload, rename, retitle or delete pictures.",
                    ));
                }
            }
            Err(problem) => {
                // A wrong token also ends the connection: the page reconnects without it.
                self.editor.forget_token();
                self.editor.set_unlocked(false);
                self.editor.set_status(&StatusLine::error(problem));
            }
        }
    }

    /// A file to upload, from the picker or dropped on the picture: send it.
    fn on_file(&mut self, file: Option<web_sys::File>) {
        let Some(file) = file else {
            return self
                .editor
                .set_status(&StatusLine::error("Choose a picture file to upload first."));
        };
        if self.editor.kept_token().is_none() {
            return self.editor.set_status(&StatusLine::error(
                "Unlock the editor with the admin token first.",
            ));
        }
        let Some(size) = crate::editor::upload_size(file.size()) else {
            return self
                .editor
                .set_status(&StatusLine::error("The file is far too large to upload."));
        };
        let (typed_name, title) = self.editor.upload_fields();
        let name = crate::editor::upload_name(&typed_name, &file.name());
        self.editor
            .set_status(&StatusLine::loading(&format!("\"{name}\"")));
        let what = format!("the upload of \"{name}\"");
        let command = crate::editor::put_command(name, title, size);
        let purpose = Purpose::Write(Kind::Put, what);
        if let Some(id) = self.send_request(purpose, command, Some(&file), UPLOAD_TIMEOUT_MS) {
            self.uploading = Some(Uploading {
                id,
                total: f64::from(size),
            });
            self.editor.set_progress(Some(0.0));
            self.schedule_progress(id);
        } else {
            self.editor
                .set_status(&StatusLine::error("The upload could not be sent."));
        }
    }

    fn schedule_progress(&self, id: u32) {
        let dispatcher = self.dispatcher.clone();
        let _ = clock::after(PROGRESS_INTERVAL_MS, move || {
            dispatcher.dispatch(Event::UploadProgress(id))
        });
    }

    fn on_upload_progress(&mut self, id: u32) {
        let Some(upload) = self.uploading.as_ref().filter(|u| u.id == id) else {
            return; // Answered (or failed) meanwhile.
        };
        let left = f64::from(self.connection.buffered_amount());
        let done = (1.0 - left / upload.total.max(1.0)).clamp(0.0, 1.0);
        self.editor.set_progress(Some(done));
        if done >= 1.0 {
            self.editor.set_status(&StatusLine {
                state: crate::status::StatusState::Loading,
                text: "Sent; the server is checking the picture…".to_owned(),
            });
        } else {
            self.schedule_progress(id);
        }
    }

    fn on_written(&mut self, id: u32, kind: Kind, what: &str, response: Received) {
        if self.uploading.as_ref().is_some_and(|u| u.id == id) {
            self.uploading = None;
            self.editor.set_progress(None);
        }
        match answer::written(kind, response) {
            Ok(Some(picture)) if kind == Kind::Put => {
                self.editor.clear_upload();
                self.editor.set_status(&StatusLine::idle(format!(
                    "Stored {} as number {}.",
                    picture.title, picture.number
                )));
                // Show what was uploaded; the menu follows through the change notice.
                self.current = Some(picture.name.clone());
                let _ = self.address.show_name(&picture.name);
                self.fetch_picture(&picture);
            }
            Ok(_) => {
                let mut done = what.to_owned();
                if let Some(first) = done.get(..1) {
                    done = first.to_uppercase() + &done[1..];
                }
                self.editor
                    .set_status(&StatusLine::idle(format!("{done}: done.")));
            }
            Err(problem) => self.editor.set_status(&StatusLine::error(problem)),
        }
    }

    /// Fetches a picture the menu may not list yet (just uploaded).
    fn fetch_picture(&mut self, picture: &picture_protocol::PictureInfo) {
        let wanted = Wanted {
            name: picture.name.clone(),
            title: picture.title.clone(),
            full: false,
        };
        self.view.set_status(&StatusLine::loading(&wanted.title));
        self.view
            .select(self.menu.by_name(&picture.name).map(|p| p.number));
        self.editor.show_current(Some(picture));
        let command = Command::Get(GetRequest {
            selector: Selector::Name(picture.name.clone()),
            variant: self.view_variant(false),
        });
        self.latest_get = self.request(Purpose::Get(wanted), command);
    }

    fn current_picture(&self) -> Option<picture_protocol::PictureInfo> {
        self.current
            .as_deref()
            .and_then(|name| self.menu.by_name(name))
            .cloned()
    }

    fn on_save(&mut self) {
        let Some(current) = self.current_picture() else {
            return self
                .editor
                .set_status(&StatusLine::error("No picture from the menu is on show."));
        };
        let (name, title) = self.editor.edit_fields();
        let commands = crate::editor::edits(&current, &name, &title);
        if commands.is_empty() {
            return self
                .editor
                .set_status(&StatusLine::idle("Nothing to save."));
        }
        for command in commands {
            let (kind, what) = match &command {
                Command::Rename { name, .. } => (Kind::Rename, format!("renaming to \"{name}\"")),
                _ => (Kind::Retitle, format!("the new title of {}", current.name)),
            };
            self.request(Purpose::Write(kind, what), command);
        }
    }

    fn on_delete(&mut self) {
        let Some(current) = self.current_picture() else {
            return self
                .editor
                .set_status(&StatusLine::error("No picture from the menu is on show."));
        };
        let question = format!(
            "Delete {} ({}) from the server?",
            current.title, current.name
        );
        let confirmed = web_sys::window()
            .and_then(|w| w.confirm_with_message(&question).ok())
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        let what = format!("deleting {}", current.title);
        self.request(
            Purpose::Write(Kind::Delete, what),
            // By name: the number may have changed since the menu was loaded.
            Command::Delete(Selector::Name(current.name.clone())),
        );
    }

    fn fail(&self, problem: impl Into<String>) {
        self.view.set_status(&StatusLine::error(problem));
    }
}
