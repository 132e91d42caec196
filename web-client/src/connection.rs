//! The WebSocket to the server: opening it, sending request frames, and telling the app what
//! happens to it. Reconnecting is the app's decision; this only makes each attempt and tags its
//! news with the attempt's generation, so news from an abandoned socket is recognised.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, Blob, CloseEvent, MessageEvent, WebSocket};

use crate::answer::{Received, read_message};
use crate::describe_js_error;
use crate::events::{Dispatcher, Event, Listener, SocketNews};

/// Values of `#connection[data-state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
        }
    }
}

/// One connection to the server's `/ws` endpoint, reopened on demand.
pub struct Connection {
    url: String,
    socket: Option<Socket>,
    generation: u32,
    state: ConnectionState,
}

/// An open or opening socket and the listeners that report on it.
struct Socket {
    socket: WebSocket,
    _listeners: [Listener; 3],
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Closing an already closed socket does nothing; the error case is a bad close code.
        let _ = self.socket.close();
    }
}

impl Connection {
    pub fn new(url: String) -> Connection {
        Connection {
            url,
            socket: None,
            generation: 0,
            state: ConnectionState::Disconnected,
        }
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Whether news of attempt `generation` is about the current socket.
    pub fn is_current(&self, generation: u32) -> bool {
        generation == self.generation
    }

    /// Abandons any previous socket and starts a new attempt; its news arrives as
    /// [`Event::Socket`].
    pub fn open(&mut self, dispatcher: &Dispatcher) -> Result<(), JsValue> {
        self.socket = None;
        self.generation = self.generation.wrapping_add(1);
        self.state = ConnectionState::Connecting;
        let generation = self.generation;
        let socket = WebSocket::new(&self.url)?;
        socket.set_binary_type(BinaryType::Arraybuffer);
        let news = move |news| Event::Socket { generation, news };
        let listeners = [
            dispatcher.listen(&socket, "open", move |_| news(SocketNews::Opened))?,
            dispatcher.listen(&socket, "message", move |event| {
                news(SocketNews::Message(message_response(event)))
            })?,
            dispatcher.listen(&socket, "close", move |event| {
                news(SocketNews::Closed(close_reason(event)))
            })?,
        ];
        self.socket = Some(Socket {
            socket,
            _listeners: listeners,
        });
        Ok(())
    }

    /// Records that the current socket opened.
    pub fn opened(&mut self) {
        self.state = ConnectionState::Connected;
    }

    /// Records that the current socket is gone (or could not be made).
    pub fn closed(&mut self) {
        self.state = ConnectionState::Disconnected;
    }

    /// Sends one request frame as one binary message.
    pub fn send(&self, frame: &[u8]) -> Result<(), String> {
        self.open_socket()?
            .send_with_u8_array(frame)
            .map_err(could_not_send)
    }

    /// Sends a PUT frame and the picture it announces as one binary message. The message is a
    /// Blob of the two, which the browser reads and sends itself: the picture never passes
    /// through wasm memory. A file that can no longer be read as it was picked (changed or
    /// removed since) makes the browser fail the connection, and the upload is lost with it;
    /// the bridge refuses a message whose picture is not the size announced.
    pub fn send_upload(&self, frame: &[u8], picture: &Blob) -> Result<(), String> {
        let socket = self.open_socket()?;
        // Blob parts may be byte arrays and Blobs alike.
        let parts = js_sys::Array::of2(&js_sys::Uint8Array::from(frame), picture);
        let message = Blob::new_with_blob_sequence(&parts).map_err(could_not_send)?;
        socket.send_with_blob(&message).map_err(could_not_send)
    }

    /// The socket, if it is open.
    fn open_socket(&self) -> Result<&WebSocket, String> {
        match &self.socket {
            Some(socket) if self.state == ConnectionState::Connected => Ok(&socket.socket),
            _ => Err("Not connected to the server.".to_owned()),
        }
    }

    /// Bytes sent but not yet handed to the network, to tell how far an upload is.
    pub fn buffered_amount(&self) -> u32 {
        self.socket
            .as_ref()
            .map_or(0, |socket| socket.socket.buffered_amount())
    }

    /// Closes the socket because the server spoke nonsense; the usual close news follows.
    pub fn close(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.socket.close();
        }
    }
}

fn could_not_send(error: JsValue) -> String {
    format!("Could not send the request: {}", describe_js_error(&error))
}

/// The response a message carries, read where the browser received it (see [`read_message`]).
fn message_response(event: &web_sys::Event) -> Result<Received, String> {
    let data = event
        .dyn_ref::<MessageEvent>()
        .map(MessageEvent::data)
        .ok_or("The socket delivered something that is not a message.")?;
    let buffer = data
        .dyn_ref::<js_sys::ArrayBuffer>()
        .ok_or("The server sent a text message; it only ever sends binary frames.")?;
    read_message(buffer)
}

fn close_reason(event: &web_sys::Event) -> String {
    match event.dyn_ref::<CloseEvent>() {
        Some(close) if !close.reason().is_empty() => {
            format!("closed with code {}: {}", close.code(), close.reason())
        }
        Some(close) => format!("closed with code {}", close.code()),
        None => "closed".to_owned(),
    }
}
