//! Weights: bounding a store by bytes rather than by keys.
//!
//! [`StoreBuilder::max_weight`](crate::StoreBuilder::max_weight) bounds the total
//! weight of the entries a store holds; a weigher gives each entry's weight, by
//! default [`default_weight`]: its key and value bytes plus [`ENTRY_OVERHEAD`], so that
//! the bound is close to the memory the entries take. A
//! [`StoreBuilder::weigher`](crate::StoreBuilder::weigher) of your own can count
//! anything else (a unit weight per entry, bytes of a nested structure, a cost).
//!
//! - **Exact.** The total weight never passes the bound, not even for a moment under
//!   concurrent writers: a write that adds weight reserves it first (atomically
//!   against the bound), and writes that need room take the store's eviction lock
//!   and evict before they apply. Expired keys still in memory count until they are
//!   removed, and go first when room is needed.
//! - **LRU by weight.** Room is made by evicting the least recently used keys of the
//!   whole store until the new weight fits, as `capacity` does by count. The two
//!   bounds combine: a store with both evicts until both hold.
//! - **Too heavy is an error.** A value heavier than the whole bound is refused with
//!   [`Error::TooHeavy`](crate::Error::TooHeavy) (a batch, with
//!   [`Error::BatchTooHeavy`](crate::Error::BatchTooHeavy)); nothing is evicted for it
//!   and nothing changes.
//! - **What a weigher must do.** Give the same weight for the same key and value
//!   every time (the store weighs an entry again when it leaves rather than keeping
//!   each entry's weight, which would cost memory in every entry), be cheap, and not
//!   panic or call the store: a write weighs its new value before it takes any lock,
//!   but an entry is weighed again under its shard's lock when it is overwritten or
//!   removed, and `incr` weighs its new value there too.
//!
//! [`Store::weight`](crate::Store::weight) is the current total (`None` for a store
//! built without a weigher or bound, which spends nothing on weights).
//!
//! ```
//! use kvcore::{Error, SetOptions, Store, StoreBuilder};
//!
//! // Blobs by their length alone, at most 1 000 bytes in all.
//! let blobs = StoreBuilder::new()
//!     .max_weight(1_000)
//!     .weigher(|_key: &str, blob: &Vec<u8>| blob.len() as u32)
//!     .build::<Vec<u8>>()?;
//! blobs.set("a", vec![0; 600], SetOptions::new())?;
//! blobs.set("b", vec![0; 300], SetOptions::new())?;
//! assert_eq!(blobs.weight(), Some(900));
//! blobs.set("c", vec![0; 200], SetOptions::new())?; // 1 100 would not fit: a goes
//! assert!(!blobs.contains("a"));
//! assert_eq!(blobs.weight(), Some(500));
//! assert!(matches!(
//!     blobs.set("huge", vec![0; 1_001], SetOptions::new()),
//!     Err(Error::TooHeavy { weight: 1_001, .. })
//! ));
//! # Ok::<(), kvcore::Error>(())
//! ```

use std::sync::Arc;

use crate::Value;

/// What an entry costs beyond its key and value bytes, in the default weight: the
/// memory the `memory` benchmark measures per entry of a million-key store (about 63
/// bytes: the slot's bookkeeping, its share of the hash table, the indexes), rounded
/// up.
pub const ENTRY_OVERHEAD: u32 = 64;

/// The default weight of an entry: `key.len()` + [`Value::size_in_bytes`] +
/// [`ENTRY_OVERHEAD`], at most `u32::MAX`.
///
/// ```
/// use kvcore::weight::{ENTRY_OVERHEAD, default_weight};
/// assert_eq!(default_weight("user:1", &"alice".to_string()), 6 + 5 + ENTRY_OVERHEAD);
/// ```
pub fn default_weight<V: Value>(key: &str, value: &V) -> u32 {
    let bytes = key.len().saturating_add(value.size_in_bytes());
    u32::try_from(bytes)
        .unwrap_or(u32::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

/// A weigher, as a store holds it.
pub(crate) type Weigher<V> = Arc<dyn Fn(&str, &V) -> u32 + Send + Sync>;
