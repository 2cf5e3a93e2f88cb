//! kvcore: a concurrent in-process key-value store.
//!
//! Keys are strings, values are any [`Value`]. A store is a cheap-to-clone handle that
//! every thread can use at once; the [`Store`] trait is object-safe, so a program can
//! choose the mode at run time and hold an `Arc<dyn Store<V>>`.
//!
//! ```
//! use kvcore::{SetOptions, Store, StoreBuilder};
//! use std::time::Duration;
//!
//! let store = StoreBuilder::new().build::<String>()?;
//! store.set("greeting", "hello".into(), SetOptions::new().ttl(Duration::from_secs(60)))?;
//! assert_eq!(store.get("greeting").as_deref(), Some("hello"));
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Modes
//!
//! Set in the [`StoreBuilder`], combinable:
//!
//! - **Default TTL**, fixed or sliding. Keys written without a TTL get the default. A
//!   *sliding* TTL restarts on every read (`get`, `get_many`, `get_with_ttl`, `scan`)
//!   at the length the key was last written with; `contains` and `ttl` only look.
//!   Keys can also carry their own TTLs ([`SetOptions::ttl`], [`Store::expire`]).
//! - **Capacity** with exact LRU eviction: the store never holds more live keys than
//!   the capacity, not even for a moment under concurrent writers, and when a write
//!   needs room the least recently used key *of the whole store* goes (capacity 3;
//!   `a`, `b`, `c`, read `a`, insert `d`: `b` goes). Expired keys never count: they are
//!   removed before any live key is evicted, and count as expirations.
//! - **Read-only**: [`StoreBuilder::build_read_only`] builds an immutable
//!   [`ReadOnlyStore`] from an iterator of pairs; reads take no lock and every write
//!   is [`Error::ReadOnly`].
//!
//! # Time
//!
//! All expiry decisions ask a [`Clock`]. [`SystemClock`] is the default; tests use a
//! [`ManualClock`] and advance it instead of sleeping; [`TickingClock`] spends a
//! background thread to make reads of keys with TTLs cheaper in large stores. A key whose TTL has passed is
//! never returned, whether or not it has been removed from memory yet. Removal
//! happens in bounded steps: [`Store::purge_expired`] (call it on a timer), a little on
//! every write, and all at once when a bounded store needs room.
//!
//! # Concurrency
//!
//! [`MemoryStore`] spreads keys over shards, each a `hashbrown` table under a
//! `parking_lot` read-write lock. Reads take one shard's read lock and record what
//! they change — a slid deadline, an LRU stamp — in atomics inside the entry, so no
//! read takes a global lock or pays O(log n) index upkeep. Expiry and LRU indexes
//! are lazy: they hold lower bounds that are corrected when an entry reaches their
//! front (see the [`memory`] module docs). Multi-key writes lock their shards in
//! ascending order; no lock is held while user code runs.
//!
//! # Errors
//!
//! One [`Error`] enum, `#[non_exhaustive]`, with messages that say what to do.

#![warn(missing_docs)]

pub mod builder;
pub mod clock;
mod cursor;
pub mod dataset;
pub mod error;
pub mod glob;
pub mod json;
pub mod limits;
pub mod memory;
pub mod persist;
pub mod readonly;
pub mod store;
pub mod value;

pub use builder::StoreBuilder;
pub use clock::{Clock, ManualClock, SystemClock, TickingClock};
pub use error::{Error, Result};
pub use glob::Pattern;
pub use json::JsonText;
pub use memory::{MAX_TTL, MemoryStore};
pub use persist::PersistentStore;
pub use readonly::ReadOnlyStore;
pub use store::{Condition, Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
pub use value::Value;
