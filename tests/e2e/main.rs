//! End-to-end tests: real servers on ephemeral ports, real sockets, the real binaries.

mod bare;
mod bench;
mod blobs;
mod browser;
mod cli;
mod common;
mod config;
mod crash;
mod framed;
mod health;
mod http;
mod live;
mod metrics;
mod migrate;
mod pg;
mod robustness;
mod s3;
mod shared;
mod shutdown;
mod store;
mod tls;
mod variants;
mod websocket;
mod writes;
