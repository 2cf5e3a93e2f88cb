//! kvserver's integration tests, as one test binary: one module per suite, and the
//! helpers they share in [`util`].
//!
//! `util` comes first so that its macros (`redis_or_skip!`) are in scope below it.

#[macro_use]
mod util;

mod cluster;
mod connections;
mod disk;
mod docs;
mod mistakes;
mod openapi;
mod outcomes;
mod redis;
mod resp;
mod router;
mod server;
