//! kvcore's integration tests: one test binary, one module per subject, and the
//! helpers they share in `util.rs`. The crash tests, which re-execute their binary
//! and spawn processes, are a binary of their own (`tests/crash.rs`).
//!
//! Run one subject with its module path: `cargo test -p kvcore --test integration model::`.

mod compute;
mod concurrency;
mod dataset;
mod faults;
mod listener;
mod loader;
mod manifest;
mod model;
mod persist;
mod util;
mod weight;
