//! End-to-end tests: real servers on ephemeral ports, real sockets, the real binaries.

mod bare;
mod bench;
mod browser;
mod cli;
mod common;
mod framed;
mod http;
mod robustness;
mod shutdown;
mod websocket;
