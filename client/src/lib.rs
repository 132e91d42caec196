//! The client side of the picture protocol, and the `picture-client` program.
//!
//! Layout:
//!
//! * [`Client`] (`client`): one persistent connection speaking the framed protocol (see the
//!   `picture-protocol` crate) over raw TCP, TLS, or a WebSocket bridge (`ws://`, `wss://`)
//!   for networks that only let HTTP through. Requests are answered in order; change notices
//!   that arrive between answers are kept for [`Client::next_change`].
//! * [`tls`]: whom a client trusts (the system's roots or a private CA) and the name a
//!   server's certificate must carry.
//! * `src/bin/picture-client/`: the command-line program built on them: the numbered menu of
//!   the original client, scriptable `list`, `get` and `ping`, and the writing commands.
//!
//! `picture-bench` and the server's end-to-end tests use this library too.

#![forbid(unsafe_code)]

mod client;
pub mod tls;

pub use client::{Client, ClientError, Fetched, IO_TIMEOUT, Link};
