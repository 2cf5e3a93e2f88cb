//! The Redis protocol: `kvserver --resp-listen ADDR` serves the store to Redis
//! clients (`redis-cli`, `redis-benchmark`, client libraries) beside HTTP.
//!
//! Laid out as mini-redis lays out a server:
//!
//! - [`server`]: the accept loop, the connection cap, the idle sweep, shutdown;
//! - [`connection`]: one connection's read–run–write loop (pipelining);
//! - [`codec`] (with [`inline`]): requests in, with their size limits, replies out;
//! - [`frame`]: the replies, in RESP2 or RESP3;
//! - [`cmd`]: the command table and one module per command family;
//! - [`clients`], [`cursors`], [`number`]: what the commands share.
//!
//! Values are the store's bytes, sent and returned exactly. The README's "The Redis
//! protocol" section lists the commands and how they differ from Redis's.

pub mod clients;
pub mod cmd;
pub mod codec;
pub mod connection;
pub mod cursors;
pub mod extended;
pub mod frame;
pub mod inline;
pub mod number;
pub mod server;

pub use server::{RespSettings, serve};
