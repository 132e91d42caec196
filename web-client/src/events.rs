//! How browser callbacks reach the app: every socket message, timer and DOM event becomes an
//! [`Event`] handed to [`App::handle`] one at a time, so the app's state has a single owner and
//! no callback ever finds it borrowed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::EventTarget;

use crate::answer::Received;
use crate::app::App;

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    /// The page is ready: connect.
    Start,
    /// News from the socket of connection attempt `generation`; older attempts are ignored.
    Socket { generation: u32, news: SocketNews },
    /// Time to try connecting again.
    ReconnectDue,
    /// The request with this id has waited too long, unless it was answered meanwhile.
    TimedOut(u32),
    /// The reader picked an entry of the menu.
    Chosen,
    /// The reader clicked in the strip of thumbnails: on the picture with this number, or
    /// between buttons.
    Picked(Option<u32>),
    /// The reader asked for the picture on show at full size.
    FullSizeWanted,
    /// The `#name` in the address changed.
    HashChanged,
    /// The picture element finished decoding what it was given...
    ImageLoaded,
    /// ...or could not decode it.
    ImageFailed,
    /// The search text changed.
    SearchChanged,
    /// The reader asked for more of the menu.
    MoreWanted,
    /// The editor's token form was sent.
    Unlock,
    /// The upload form was sent.
    UploadWanted,
    /// A file was dropped on the picture (or something that is not a file).
    Dropped(Option<web_sys::File>),
    /// A file dragged over the picture entered (true) or left (false).
    Dragging(bool),
    /// Time to tell how far the upload with this id has gone.
    UploadProgress(u32),
    /// The edit form was sent.
    SaveWanted,
    /// The delete button was pressed.
    DeleteWanted,
}

#[derive(Debug)]
pub enum SocketNews {
    Opened,
    /// The response a message carries, or why the message could not be read as one.
    Message(Result<Received, String>),
    /// The socket is closed, and why.
    Closed(String),
}

/// Hands events to the app. Cheap to clone into callbacks; holds the app weakly, so callbacks
/// left behind by a closed page do nothing.
#[derive(Clone)]
pub struct Dispatcher {
    app: Weak<RefCell<App>>,
    queue: Rc<RefCell<VecDeque<Event>>>,
}

impl Dispatcher {
    pub(crate) fn new(app: Weak<RefCell<App>>) -> Dispatcher {
        Dispatcher {
            app,
            queue: Rc::default(),
        }
    }

    /// Handles `event` now, or, if an event is being handled already (a browser call that
    /// fires an event synchronously), right after it.
    pub fn dispatch(&self, event: Event) {
        let Some(app) = self.app.upgrade() else {
            return; // The page's app is gone; so is anything this event was about.
        };
        self.queue.borrow_mut().push_back(event);
        let Ok(mut app) = app.try_borrow_mut() else {
            return;
        };
        while let Some(event) = self.next_queued() {
            app.handle(event);
        }
    }

    fn next_queued(&self) -> Option<Event> {
        self.queue.borrow_mut().pop_front()
    }

    /// Turns DOM events of type `kind` on `target` into app events, for as long as the returned
    /// listener lives.
    pub fn listen(
        &self,
        target: &EventTarget,
        kind: &'static str,
        to_event: impl Fn(&web_sys::Event) -> Event + 'static,
    ) -> Result<Listener, JsValue> {
        let dispatcher = self.clone();
        let closure = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
            dispatcher.dispatch(to_event(&event));
        });
        target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())?;
        Ok(Listener {
            target: target.clone(),
            kind,
            closure,
        })
    }
}

/// A registered event listener; dropping it unregisters it before its closure is freed.
pub struct Listener {
    target: EventTarget,
    kind: &'static str,
    closure: Closure<dyn Fn(web_sys::Event)>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Failing to unregister leaves a listener that reports a freed closure; nothing better
        // can be done while dropping.
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.closure.as_ref().unchecked_ref());
    }
}
