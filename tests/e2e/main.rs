//! End-to-end tests: real servers on ephemeral ports, real sockets, the real binaries.

mod bare;
mod cli;
mod common;
mod framed;
mod robustness;
mod shutdown;
