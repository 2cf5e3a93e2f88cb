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
//! - **Weight** ([`StoreBuilder::max_weight`]): a bound on the total weight of the
//!   entries, by default their key and value bytes plus a per-entry overhead, so a
//!   bound in bytes; exact and LRU like the capacity, with which it combines (see
//!   [Bounding by bytes](#bounding-by-bytes)).
//! - **Read-only**: [`StoreBuilder::build_read_only`] builds an immutable
//!   [`ReadOnlyStore`] from an iterator of pairs; reads take no lock and every write
//!   is [`Error::ReadOnly`].
//!
//! # Cache-aside: loaders
//!
//! [`StoreExt::get_with`] returns a key's value or loads it, once, however many
//! threads miss the key at once: the others wait for that load and share its value,
//! or its error ([`StoreExt::try_get_with`]). `_async` variants take a future and work
//! under any executor; `_options` variants give the loaded value a TTL. See
//! [`loader`] for the single-flight rules (panics, cancelled futures, errors).
//!
//! ```
//! use kvcore::{SetOptions, StoreBuilder, StoreExt};
//! use std::time::Duration;
//!
//! let users = StoreBuilder::new().capacity(10_000).build::<String>()?;
//! let fetch = |id: &str| format!("user {id} from the database"); // slow, in real life
//! let opts = SetOptions::new().ttl(Duration::from_secs(60));
//! let name = users.get_with_options("42", opts, || fetch("42"))?;
//! assert_eq!(name, "user 42 from the database");
//! assert_eq!(users.get_with("42", || unreachable!("a hit loads nothing"))?, name);
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Atomic compute
//!
//! [`Store::compute`] reads a key, lets a function decide (a new value, a delete, or
//! nothing) and applies that atomically against every other writer, with the function
//! running outside every lock (see [`compute`]):
//!
//! ```
//! use kvcore::{Compute, Store, StoreBuilder};
//!
//! let counters = StoreBuilder::new().build::<u64>()?;
//! for _ in 0..3 {
//!     counters.compute("visits", &mut |n| Compute::Set(n.copied().unwrap_or(0) + 1))?;
//! }
//! assert_eq!(counters.get("visits"), Some(3));
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Removal listeners
//!
//! [`StoreBuilder::removal_listener`] is told of every value that leaves the store,
//! with its [`RemovalCause`], exactly once, after the store's locks are released;
//! recovering a persistent store reports nothing (see [`listener`]):
//!
//! ```
//! use kvcore::{RemovalCause, SetOptions, Store, StoreBuilder};
//! use std::sync::{Arc, Mutex};
//!
//! let evicted = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&evicted);
//! let cache = StoreBuilder::new()
//!     .capacity(1)
//!     .removal_listener(move |key: &str, _value: String, cause| {
//!         if cause == RemovalCause::Evicted {
//!             sink.lock().unwrap().push(key.to_owned());
//!         }
//!     })
//!     .build::<String>()?;
//! cache.set("a", "1".into(), SetOptions::new())?;
//! cache.set("b", "2".into(), SetOptions::new())?;
//! assert_eq!(*evicted.lock().unwrap(), ["a"]);
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Bounding by bytes
//!
//! [`StoreBuilder::max_weight`] bounds the total weight; entries weigh what
//! [`StoreBuilder::weigher`] says, by default [`weight::default_weight`] (key and
//! value bytes, [`Value::size_in_bytes`], plus [`weight::ENTRY_OVERHEAD`]). The bound
//! is never exceeded, the least recently used keys go first, and a value heavier than
//! the whole bound is refused with [`Error::TooHeavy`] (see [`weight`]):
//!
//! ```
//! use kvcore::{Error, SetOptions, Store, StoreBuilder};
//!
//! let blobs = StoreBuilder::new().max_weight(64 << 20).build::<Vec<u8>>()?; // 64 MiB
//! blobs.set("small", vec![0; 1 << 20], SetOptions::new())?;
//! assert!(blobs.weight().unwrap() > 1 << 20);
//! let huge = blobs.set("huge", vec![0; 65 << 20], SetOptions::new());
//! assert!(matches!(huge, Err(Error::TooHeavy { .. })));
//! # Ok::<(), kvcore::Error>(())
//! ```
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
//! ascending order.
//!
//! What runs while a lock is held, exactly: a value's `Clone` (a read copies the value
//! out under the shard's read lock; a scan copies a page, and a snapshot a shard, the
//! same way) and, in a [`PersistentStore`], its
//! [`ValueCodec::encode`](persist::ValueCodec::encode) (a write records its change under
//! the key's write lock, so that the journal's order for a key is the order of its
//! changes), and in a store with a weigher, the weigher when an entry is overwritten
//! or removed (a new value is weighed before any lock is taken, but an `incr`'s is
//! only known under it). Under [`Fsync::Always`](persist::Fsync::Always) a write also
//! waits for its fsync under that lock, so that nobody sees a write before it is on
//! disk: readers of that shard wait for it too. Keep `Clone`, `encode` and the weigher
//! cheap and free of calls into the store; for large values, store an `Arc`. What never
//! runs under a lock: a loader's `init`, a [`Store::compute`] function and a removal
//! listener, which may all call the store (a loader or compute function not for its
//! own key, which it would wait for).
//!
//! # Coming from moka or quick_cache
//!
//! A [`MemoryStore`] does what `moka::sync::Cache` (moka 0.12) and
//! `quick_cache::sync::Cache` (quick_cache 0.7) do, under a different contract: keys are strings, a full store evicts exactly the least
//! recently used key, and bounds are exact. Like a moka `Cache`, a store is a
//! cheap-to-clone handle; no `Arc` is needed to share it.
//!
//! | moka (`sync::Cache`) | quick_cache (`sync::Cache`) | kvcore |
//! |---|---|---|
//! | `Cache::builder()` … `.build()`, `Cache::new(n)` | `Cache::new(n)` | [`StoreBuilder::new`] … [`build`](StoreBuilder::build)`::<V>()?` (bad settings are an [`Error`], not a panic) |
//! | `.max_capacity(n)` | the `n` of `Cache::new(n)` | [`.capacity(n)`](StoreBuilder::capacity): live keys |
//! | `.time_to_live(d)` | (no TTLs) | [`.default_ttl(d)`](StoreBuilder::default_ttl) |
//! | `.time_to_idle(d)` | (no TTLs) | `.default_ttl(d)` with [`.sliding(true)`](StoreBuilder::sliding); one or the other, not both at once |
//! | `.expire_after(expiry)` | (no TTLs) | per write: [`SetOptions::ttl`]; later: [`Store::expire`], [`Store::clear_ttl`] |
//! | `.max_capacity(n)` with `.weigher(f)` | `Cache::with_weighter(.., w, weighter)` | [`.max_weight(n)`](StoreBuilder::max_weight), [`.weigher(f)`](StoreBuilder::weigher) (default: key and value bytes) |
//! | `.eviction_listener(f)` | `Lifecycle::on_evict` | [`.removal_listener(f)`](StoreBuilder::removal_listener): every removal with its [`RemovalCause`] |
//! | `get(&k)` | `get(&k)` | [`get(k)`](Store::get): counts as use (LRU place, sliding TTL) |
//! | `contains_key(&k)` | `contains_key(&k)`, `peek(&k)` | [`contains(k)`](Store::contains), [`ttl(k)`](Store::ttl): only look, return no value |
//! | `insert(k, v)` | `insert(k, v)` | [`set(k, v, SetOptions::new())?`](Store::set) |
//! | `entry(k).or_insert(v)` | `replace(k, v, _)` | `set` with [`.if_absent()`](SetOptions::if_absent), [`.if_present()`](SetOptions::if_present) |
//! | `get_with(k, f)`, `try_get_with(k, f)` | `get_or_insert_with(&k, f)` | [`get_with(k, f)?`](StoreExt::get_with), [`try_get_with(k, f)`](StoreExt::try_get_with): single flight, errors shared as `Arc<E>` |
//! | `future::Cache::get_with(k, fut)` | `get_value_or_guard_async(&k)` | [`get_with_async(k, fut)`](StoreExt::get_with_async), on any executor |
//! | `entry(k).and_compute_with(f)` | (none) | [`compute(k, &mut f)?`](Store::compute) |
//! | `invalidate(&k)`, `remove(&k)` | `remove(&k)` | [`delete(k)?`](Store::delete): whether it was live |
//! | `invalidate_all()` | `clear()` | [`clear()?`](Store::clear) |
//! | `entry_count()` (an estimate) | `len()` | [`len()`](Store::len): live keys, exact |
//! | `iter()` | `iter()` | [`scan(pattern, cursor, limit)`](Store::scan): pages, glob patterns |
//! | `run_pending_tasks()` | (nothing to run) | [`purge_expired(budget)`](Store::purge_expired) |
//! | (no counters) | `hits()`, `misses()` (feature `stats`) | [`stats()`](Store::stats) |
//!
//! How kvcore differs:
//!
//! - **Exact LRU.** moka's default policy is TinyLFU: LRU order behind an admission
//!   filter that may turn a new entry away in favour of a more popular one
//!   (`EvictionPolicy::lru()` drops the filter). quick_cache uses a variant of
//!   CLOCK-Pro close to S3-FIFO. These policies aim at hit ratio and resist scans;
//!   neither crate says which key a full cache drops. kvcore always keeps what you
//!   `set`, and makes room by evicting the least recently used key of the whole store
//!   (capacity 3; `a`, `b`, `c`, read `a`, insert `d`: `b` goes), which a test can
//!   predict. The price: a one-off pass over many cold keys pushes the working set out.
//! - **Capacity in keys, never exceeded.** Both peers bound their size on a best-effort
//!   basis (quick_cache per shard); a kvcore store never holds more live keys than its
//!   capacity, not even for a moment, nor more weight than its `max_weight`; an entry
//!   heavier than the whole bound is an error rather than a value silently dropped.
//!   Expired keys do not count toward the capacity.
//! - **A weigher runs again when an entry leaves** (as quick_cache's does): kvcore
//!   keeps no weight in each entry, so the weigher must give the same weight for the
//!   same key and value every time.
//! - **Expired keys are removed by [`Store::purge_expired`], which you call on a
//!   timer.** A read never returns a key whose TTL has passed, but it does not remove it
//!   either. Removal happens in `purge_expired` (kvserver calls it from a background
//!   task on a short interval, with a budget that bounds each call), a little in
//!   writes that create keys, all at once in [`Store::len`], and before any eviction in
//!   a bounded store. No kvcore thread purges for you: if nobody calls it, a store with
//!   steady writes still clears its dead keys slowly, but a read-mostly store keeps
//!   them in memory (never returned, never counted by `len`) until something purges.
//! - **[`Stats`] counts what the store did.** `hits` and `misses` count the reads that
//!   return values; `evictions` counts live keys dropped for room; `expirations` counts
//!   expired keys *when they are removed*. A `get` that finds a key dead returns `None`
//!   and counts a miss, and the expiration shows only after a purge (see [`Stats`]).
//!   Counting is always on, exact, and costs a read no atomic add: each thread counts
//!   its reads of a store in a cell that only it writes, and `stats()` sums the cells.
//!
//! The kvcore column at work, on a [`ManualClock`] so that the test moves time:
//!
//! ```
//! use kvcore::{ManualClock, SetOptions, Store, StoreBuilder, StoreExt};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! // Cache::builder().max_capacity(3).time_to_idle(Duration::from_secs(60)).build()
//! let cache = StoreBuilder::new()
//!     .capacity(3)
//!     .default_ttl(Duration::from_secs(60))
//!     .sliding(true)
//!     .clock(clock.clone())
//!     .build::<String>()?;
//!
//! cache.set("a", "1".into(), SetOptions::new())?; // insert
//! assert_eq!(cache.get("a").as_deref(), Some("1")); // get: a hit
//! assert!(cache.delete("a")?); // invalidate
//! assert_eq!(cache.get_with("a", || "loaded".into())?, "loaded"); // a miss, then a load
//! assert_eq!(cache.get_with("a", || panic!("a hit loads nothing"))?, "loaded");
//!
//! cache.set("b", "2".into(), SetOptions::new())?;
//! cache.set("c", "3".into(), SetOptions::new())?;
//! assert!(cache.get("a").is_some()); // a is now the most recently used: b the least
//! cache.set("d", "4".into(), SetOptions::new())?; // full: b goes, exactly
//! assert!(!cache.contains("b"));
//! assert_eq!(cache.len(), 3);
//!
//! clock.advance(Duration::from_secs(61)); // idle past the sliding TTL
//! assert_eq!(cache.get("a"), None); // dead keys are never returned...
//! assert_eq!(cache.stats().expirations, 0); // ...but still in memory
//! assert_eq!(cache.purge_expired(100), 3); // a, c and d
//!
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses), (3, 2));
//! assert_eq!((stats.evictions, stats.expirations), (1, 3));
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Using kvcore from async code
//!
//! The loaders have async variants ([`StoreExt::get_with_async`] and its kin), which
//! wait for another caller's load without blocking the thread. The rest of kvcore has
//! no async API and needs none for most calls: reads and the writes of a
//! [`MemoryStore`] take one shard's lock for a short, bounded step (a bounded store's
//! new keys also take the LRU mutex for a moment), never wait for I/O, and return no
//! guard, so an async task calls them directly and nothing is held across an
//! `.await`. Reads of a [`PersistentStore`] are the same: they never touch the disk.
//!
//! These calls can block the thread for as long as the disk takes:
//!
//! - [`StoreBuilder::open`]: takes the directory's lock and recovers the snapshot and
//!   journals, reading every record.
//! - Writes to a [`PersistentStore`] opened with
//!   [`Fsync::Always`](persist::Fsync::Always): each returns only after its journal
//!   record is fsynced. Under `Fsync::EverySec` (the default) and `Fsync::No` a write
//!   only appends to a buffer that a background thread writes out.
//! - [`PersistentStore::compact`] (writes a snapshot) and [`PersistentStore::sync`]
//!   (writes and fsyncs the journal), and [`persist::repair`].
//! - Dropping the last handle of a [`PersistentStore`]: it waits for the background
//!   thread and any compaction in progress, then flushes and fsyncs the journal.
//! - Loading or writing a dataset with [`dataset::read`] and [`dataset::Writer`],
//!   which do the reader's and writer's I/O.
//!
//! And some calls do work in proportion to the store rather than to the call:
//! [`Store::clear`] and [`StoreBuilder::build_read_only`] over many keys, or
//! [`Store::len`] when many keys have expired since the last purge.
//!
//! In a Tokio program, run those on the blocking pool with
//! `tokio::task::spawn_blocking`, moving a clone of the handle into the closure; or,
//! when losing up to about a second of writes to a power failure is acceptable, open
//! with `Fsync::EverySec` so that writes never wait for the disk. Keep
//! [`Store::purge_expired`] budgets small so that a timer task calling it stays short.
//!
//! ```
//! use kvcore::persist::{Fsync, PersistOptions};
//! use kvcore::{SetOptions, SetOutcome, Store, StoreBuilder};
//! use tokio::task::spawn_blocking;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let dir = tempfile::tempdir()?;
//!     let path = dir.path().to_owned();
//!     let options = PersistOptions::default().fsync(Fsync::Always);
//!
//!     // Recovery reads the directory: off the async threads.
//!     let store = spawn_blocking(move || StoreBuilder::new().open::<String>(path, options))
//!         .await??;
//!
//!     // Under Fsync::Always a write returns after its fsync: on the blocking pool too.
//!     let handle = store.clone();
//!     let fsyncs = store.journal_stats().fsyncs;
//!     let outcome = spawn_blocking(move || {
//!         handle.set("user:1", "alice".into(), SetOptions::new())
//!     })
//!     .await??;
//!     assert_eq!(outcome, SetOutcome::Created);
//!     assert!(store.journal_stats().fsyncs > fsyncs);
//!
//!     // Reads never touch the disk: call them directly.
//!     assert_eq!(store.get("user:1").as_deref(), Some("alice"));
//!
//!     // Dropping the last handle flushes and fsyncs the journal.
//!     spawn_blocking(move || drop(store)).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Errors
//!
//! One [`Error`] enum, `#[non_exhaustive]`, with messages that say what to do.

#![warn(missing_docs)]

pub mod builder;
pub mod bytes;
pub mod clock;
pub mod compute;
pub mod cursor;
pub mod dataset;
pub mod error;
pub mod glob;
pub mod json;
pub mod limits;
pub mod listener;
pub mod loader;
pub mod memory;
pub mod persist;
pub mod readonly;
pub mod store;
mod tally;
pub mod ttl;
pub mod value;
pub mod weight;

pub use builder::StoreBuilder;
pub use bytes::Bytes;
pub use clock::{Clock, ManualClock, SystemClock, TickingClock};
pub use compute::{Compute, Computed};
pub use error::{Error, Result};
pub use glob::Pattern;
pub use json::JsonText;
pub use listener::RemovalCause;
pub use loader::StoreExt;
pub use memory::{MAX_TTL, MemoryStore};
pub use persist::PersistentStore;
pub use readonly::ReadOnlyStore;
pub use store::{
    Condition, Expiry, Mode, Pages, Paging, ScanPage, SetOptions, SetOutcome, Stats, Store,
};
pub use value::Value;
