//! The picture server.
//!
//! Layout, from the outside in:
//!
//! * [`server`]: the accept loop. Enforces the connection limit, spawns one task per
//!   connection and drains them on shutdown.
//! * `session`: one connection's life. Its first byte picks the mode: framed (pipelined
//!   requests, see the `picture-protocol` crate) or bare choice (the original client's text
//!   protocol).
//! * `connection`: a socket with its read buffer and a queue of outgoing chunks written with
//!   vectored writes, so picture bytes are never copied.
//! * [`answer`]: what each request gets, whatever way it came in: the [`answer::Service`]
//!   that applies the write policy of [`access`] to the [`store`].
//! * [`store`]: the catalog and the picture bytes (a SQLite or PostgreSQL database, the bytes
//!   there or in an S3-compatible object store; or a read-only folder), the checks uploads
//!   pass, the feed of changes, and keeping servers that share a database in step.
//! * [`variants`]: pictures scaled down or converted on request, made on a bounded pool of
//!   threads, kept in memory and in the store, each made once however many ask at once.
//! * [`metrics`]: the numbers `/metrics` shows, recorded where they happen.
//! * [`limits`]: every bound a client is held to; `per_ip`: the caps per client address;
//!   `refusals`: warnings about refused clients, at most one line per interval.
//! * [`web`]: the HTTP server for the browser page and the WebSocket bridge that answers the
//!   page's requests from the same store, or forwards them to a picture server over TCP; and
//!   the admin port for `/metrics` and the health probes.
//! * [`tls`]: the server's reloadable certificate, with rustls.
//! * [`shutdown`]: Ctrl-C and SIGTERM as one future.
//! * `fuzzing` (only with the `fuzzing` feature): the entry points of the fuzz targets.
//!
//! The `picture-server` program (`src/bin/picture-server/`) reads the settings and starts
//! these. The other programs are crates of their own: `picture-client` (which the end-to-end
//! tests use as their client library too) and `picture-bench`; `picture-args` holds what the
//! three share on their command lines.

#![forbid(unsafe_code)]

pub mod access;
pub mod answer;
mod connection;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod limits;
pub mod metrics;
mod per_ip;
mod refusals;
pub mod server;
mod session;
pub mod shutdown;
pub mod store;
pub mod tls;
pub mod variants;
pub mod web;

pub use limits::Limits;
pub use server::serve;
