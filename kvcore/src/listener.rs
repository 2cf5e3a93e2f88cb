//! Removal listeners: learning what left a store, and why.
//!
//! [`StoreBuilder::removal_listener`](crate::StoreBuilder::removal_listener) sets a
//! function that receives `(key, value, cause)` for every value that leaves a
//! [`MemoryStore`](crate::MemoryStore) or a [`PersistentStore`](crate::PersistentStore):
//!
//! - **Exactly once per removal.** Every way a value leaves goes through one function
//!   in the store, which hands it to the listener: [`Store::delete`](crate::Store::delete),
//!   [`Store::clear`](crate::Store::clear), overwrites (`set`, `incr`, the batch
//!   writes, [`Store::compute`](crate::Store::compute)), evictions under `capacity` or
//!   `max_weight`, and expired keys, whether [`Store::purge_expired`](crate::Store::purge_expired),
//!   a write, [`Store::len`](crate::Store::len) or eviction removes them. A value
//!   evicted by one writer is reported by that writer only, however many race.
//! - **After the locks are released.** Removals are collected while the operation
//!   holds its locks and handed to the listener once it has let go of them, on the
//!   thread of the operation that removed them, before that operation returns. The
//!   listener may call the store, even write to it (what such a write removes is
//!   reported too, by that write).
//! - **A panic is contained.** A listener that panics does not poison the store nor
//!   lose the other notifications of the same operation; each panic is counted in
//!   [`Stats::listener_panics`](crate::Stats::listener_panics) (and printed by the
//!   panic hook, as any panic is).
//! - **Recovery reports nothing.** What a [`PersistentStore`](crate::PersistentStore)
//!   replays from its data directory when it opens (keys set and deleted again in
//!   the journal, expired keys, keys trimmed to the capacity) is not reported: those
//!   values left before this process had them. The listener starts with the first
//!   operation on the opened store.
//!
//! Expired keys are reported as [`RemovalCause::Expired`] when they leave memory,
//! which may be well after their deadline (see [`Stats`](crate::Stats)); a key whose
//! deadline has passed is reported as expired even when a `delete`, a `clear` or a
//! write over it is what removes it. Within one operation, notifications come in the
//! order of the removals.
//!
//! ```
//! use kvcore::{RemovalCause, SetOptions, Store, StoreBuilder};
//! use std::sync::{Arc, Mutex};
//!
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&log);
//! let store = StoreBuilder::new()
//!     .capacity(2)
//!     .removal_listener(move |key: &str, value: String, cause| {
//!         sink.lock().unwrap().push(format!("{key}={value} {cause:?}"));
//!     })
//!     .build::<String>()?;
//! store.set("a", "1".into(), SetOptions::new())?;
//! store.set("a", "2".into(), SetOptions::new())?; // replaces 1
//! store.set("b", "3".into(), SetOptions::new())?;
//! store.set("c", "4".into(), SetOptions::new())?; // full: a, the least recently used, goes
//! store.delete("b")?;
//! assert_eq!(
//!     *log.lock().unwrap(),
//!     ["a=1 Replaced", "a=2 Evicted", "b=3 Deleted"]
//! );
//! # Ok::<(), kvcore::Error>(())
//! ```

use std::sync::Arc;

/// Why a value left the store, as a removal listener is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its TTL had passed. Reported when the key leaves memory: by a purge, by a write
    /// in its place, by `delete` or `clear`, or when a bounded store makes room.
    Expired,
    /// A live key evicted, the least recently used, to make room under the store's
    /// `capacity` or `max_weight`.
    Evicted,
    /// Removed by [`Store::delete`](crate::Store::delete) or by a
    /// [`Store::compute`](crate::Store::compute) that returned
    /// [`Compute::Delete`](crate::Compute::Delete).
    Deleted,
    /// Overwritten by a new value: the value reported is the old one.
    Replaced,
    /// Removed by [`Store::clear`](crate::Store::clear).
    Cleared,
}

impl RemovalCause {
    /// Whether the store removed the value by itself (it expired or was evicted),
    /// rather than because a caller asked.
    ///
    /// ```
    /// use kvcore::RemovalCause;
    /// assert!(RemovalCause::Evicted.was_automatic());
    /// assert!(!RemovalCause::Replaced.was_automatic());
    /// ```
    pub fn was_automatic(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Evicted)
    }
}

/// A removal listener, as a store holds it.
pub(crate) type Listener<V> = Arc<dyn Fn(&str, V, RemovalCause) + Send + Sync>;
