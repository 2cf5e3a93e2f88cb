//! The writable, in-memory store: sharded maps, lazy expiry indexes, exact LRU.
//!
//! # Layout
//!
//! Keys hash to one of a power-of-two number of shards. Each shard is a
//! `hashbrown::HashTable` of slots under a `parking_lot::RwLock` (reads share it;
//! writes are short and call no user code but a value's `Clone` and, in a store with
//! one, the weigher), plus a min-heap of expiry deadlines.
//!
//! A slot is boxed and holds its key inline when the key is short (up to 22 bytes;
//! longer keys get a box of their own), so a typical entry is one allocation and a
//! table bucket is one pointer. A hash table is between 7/16 and 7/8 full, and a free
//! bucket then costs 8 bytes rather than a whole slot: at a million 12-byte keys with
//! 16-byte values, an entry costs about 63 bytes beyond its key and value, against
//! about 150 for slots stored in the table with a separately allocated key. Index
//! items find their slot by key hash and box address (see `SlotRef`).
//!
//! A hit in a large store then waits on memory three times in a row: for the table's
//! control bytes, for the bucket, for the slot. A lookup asks for the cache lines of
//! the buckets its probe starts at as soon as it has the key's hash, so that the first
//! two waits overlap (see `prefetch.rs`).
//!
//! # Reads take only the shard's read lock
//!
//! Everything a read changes lives in atomics inside the slot: a sliding read stores a
//! new deadline in `expires_at`, an LRU read stores a fresh stamp from a global counter
//! in `used`. Neither touches an index, so a read costs O(1) whatever the mode. The
//! read then counts itself, a hit or a miss, in its thread's own cell (see
//! `tally.rs`), with a plain store rather than an atomic add.
//!
//! A read of a key with a deadline asks the clock's cheap reading
//! ([`Clock::coarse_now`](crate::Clock::coarse_now)) first, and the precise one only
//! when the deadline is within the cheap reading's slack; a sliding restart then
//! counts from the cheap reading's upper bound, so it never ends earlier than a
//! precise one would. A sliding read stores the new deadline only when it moves,
//! which between two ticks of the cheap clock it does not, so a hot key's cache line
//! is not written by every read.
//!
//! A write asks for the time only when a deadline is involved: when the key it
//! replaces has one, when the value gets one, or when expired keys may be due for
//! purging. A precise reading waits for the instructions before it to finish (on x86
//! the vDSO reads the TSC with `rdtscp`); a write that skips it lets its cache misses
//! overlap with the next operation's. So a single-key write asks the cheap reading
//! first too: it decides whether the key the write finds is live as a read does, and
//! a new deadline counts from the cheap reading's upper bound when the slack is at
//! most a thousandth of the TTL (a key then lives at most that much past its TTL,
//! never less); a shorter TTL counts from a precise reading.
//!
//! # Written fields have their own cache lines
//!
//! A core that writes a cache line takes it away from every other core, and their
//! next read of anything on that line waits for it to come back. The fields of the
//! store that operations change (the key count, the LRU counter and mutex, the
//! earliest deadline, the statistics) are therefore each padded to a line of their
//! own (`crossbeam_utils::CachePadded`), away from the fields every read looks at
//! and never changes (the shard array, the hasher, the mode). Shards are padded too,
//! so that a read lock taken on one shard does not take the line of its neighbour's
//! lock. Without the padding, a read of a bounded store (which advances the LRU
//! counter) could make the other core's next operation wait for the line holding the
//! shard array, depending on where the allocation put the line boundaries.
//!
//! # Indexes are lazy lower bounds
//!
//! The expiry heap of a shard holds, for every slot with a deadline, an item whose
//! deadline is no later than the slot's real one (`filed_deadline` says which item is
//! current). When an item comes due, the slot's real deadline decides: expired slots
//! are removed, slid ones are filed again at their real deadline. A sliding read
//! therefore pays nothing; the re-filing happens at most once per deadline passed.
//!
//! The LRU index works the same way across the whole store: one radix heap of
//! `(stamp, slot)` under a mutex (stamps only grow, which is what a radix heap
//! needs), one item per slot, filed when the key is created. To
//! evict, pop the smallest stamp; if the slot has been used since, file it again at its
//! current stamp and pop again; otherwise it is the least recently used key of the
//! whole store, because every other slot's real stamp is at least its filed one. This
//! is exact LRU with reads that never take the LRU lock.
//!
//! # Bounds are never exceeded
//!
//! Only writers holding the LRU mutex may create keys in a bounded store. They make
//! room (expired keys first, then the least recently used) before inserting, so the
//! number of keys never passes the capacity, not even between two steps. Updates of
//! existing keys and all reads go without the mutex.
//!
//! Weight works the same way, with one more rule: the total only grows by a
//! reservation, an atomic add that fails if it would pass the bound, made under the
//! shard lock of the write that needs it and given back if the write is refused. A
//! write whose reservation fails takes the LRU mutex, evicts (never the slots it is
//! about to grow) and tries again. So the total, reservations included, is never
//! above the bound; an overwrite of the same weight or lighter needs no mutex.
//! Entries keep no weight of their own: the weigher weighs an entry again when it is
//! overwritten or removed.
//!
//! # Removals are reported after the locks
//!
//! Every removal goes through `Shared::removed` with its cause, which does the
//! bookkeeping and hands the slot to the operation's `Notices`; the operation hands
//! them to the removal listener once it has released its last lock (see
//! `notices.rs`). Without a listener, a notice is dropped at once.
//!
//! # Loads and computes take turns per key
//!
//! `flights` is the table of keys being loaded or computed (see
//! [`loader`](crate::loader)); a compute leads its key's flight while its function
//! runs, and applies the function's answer only if the shard's write lock was not
//! taken since the function looked (`Table::changes`).
//!
//! # Lock order
//!
//! LRU mutex, then shard locks in ascending index order. Single-key paths hold one
//! shard lock at a time; multi-key writes lock their shards in ascending order.
//!
//! # Where things are
//!
//! This file holds the state and what every path shares, the one removal path
//! (`Shared::removed`) and the weight reservations among it; `store.rs` implements
//! [`Store`] over it; `read.rs` reads and scans; `write.rs` holds the single-key
//! writes and `clear`; `batch.rs` the multi-key writes; `compute.rs` the compare and
//! apply of `compute`; `notices.rs` the removals handed to the listener; `slot.rs` an
//! entry; `expiry.rs` deadlines and purging; `lru.rs` the LRU index and eviction.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use radix_heap::RadixHeapMap;

use crate::clock::Timer;
use crate::compute::{Compute, Computed};
use crate::cursor::{Cursor, MEMORY_TAG};
use crate::listener::{Listener, RemovalCause};
use crate::loader::flight::{Flights, Role};
use crate::loader::{Failed, Joined, Load, LoadAsync, LoadFuture, Loadable};
use crate::store::{Condition, Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
use crate::tally::Tally;
use crate::weight::Weigher;
use crate::{Error, Pattern, Result, Value};

mod batch;
mod compute;
mod expiry;
mod lru;
mod notices;
mod prefetch;
mod read;
mod slot;
mod store;
mod write;

use self::expiry::{WriteTime, before_deadline};
use self::lru::LruIndex;
use self::notices::{NoticeKey, Notices};
use self::prefetch::BucketEnd;
pub(crate) use self::slot::Key;
use self::slot::{Slot, SlotRef};
use self::write::{Change, Done, Op, check_expiry, check_ttl};

type Hasher = hashbrown::DefaultHashBuilder;
type DeadlineHeap = BinaryHeap<Reverse<(u64, SlotRef)>>;

/// The longest time-to-live a store accepts: ten years.
pub const MAX_TTL: Duration = Duration::from_secs(315_360_000);

/// How much expiry work a write does on its own shard before returning.
const PURGE_ON_WRITE: usize = 2;
/// Most keys `set_many` locks, journals and applies at once.
const SET_CHUNK: usize = 1024;

/// A writable in-memory store. Build one with [`StoreBuilder`](crate::StoreBuilder).
///
/// Cloning is cheap and every clone is a handle to the same data.
///
/// ```
/// use kvcore::{ManualClock, SetOptions, Store, StoreBuilder};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let store = StoreBuilder::new().capacity(2).clock(clock.clone()).build::<u64>()?;
/// store.set("a", 1, SetOptions::new())?;
/// store.set("b", 2, SetOptions::new().ttl(Duration::from_secs(1)))?;
/// assert_eq!(store.get("a"), Some(1)); // a is now the most recently used
/// store.set("c", 3, SetOptions::new())?; // full: b, the least recently used, goes
/// assert!(!store.contains("b"));
/// assert_eq!(store.stats().evictions, 1);
/// # Ok::<(), kvcore::Error>(())
/// ```
pub struct MemoryStore<V> {
    shared: Arc<Shared<V>>,
}

impl<V> Clone for MemoryStore<V> {
    fn clone(&self) -> Self {
        MemoryStore {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<V> fmt::Debug for MemoryStore<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shared.shards.len())
            .field("len", &self.shared.slots())
            .field("capacity", &self.shared.capacity)
            .field(
                "max_weight",
                &(self.shared.max_weight != u64::MAX).then_some(self.shared.max_weight),
            )
            .field("sliding", &self.shared.sliding)
            .finish_non_exhaustive()
    }
}

/// What the builder hands to [`MemoryStore::new`].
pub(crate) struct Config<V> {
    pub shards: usize,
    pub clock: Timer,
    pub default_ttl: Option<Duration>,
    pub sliding: bool,
    pub capacity: Option<usize>,
    pub max_weight: Option<u64>,
    pub weigher: Option<Weigher<V>>,
    pub listener: Option<Listener<V>>,
}

/// Fields a running store never writes come first; every field it does write is on a
/// cache line of its own (see "Written fields have their own cache lines" above).
struct Shared<V> {
    shards: Box<[CachePadded<Shard<V>>]>,
    hasher: Hasher,
    clock: Timer,
    /// Default TTL in nanoseconds; 0 for none.
    default_ttl: u64,
    sliding: bool,
    capacity: Option<usize>,
    /// The weight bound; `u64::MAX` for none.
    max_weight: u64,
    /// Gives entries their weights; `None`: weights are not counted.
    weigher: Option<Weigher<V>>,
    /// A capacity or a weight bound: creating keys needs the licence, and reads stamp
    /// their LRU order.
    bounded: bool,
    /// Where every change is recorded, once a persistent store has recovered.
    log: OnceLock<Box<dyn WriteLog<V>>>,
    /// Told of every removal, once set (a persistent store sets it after recovery).
    listener: OnceLock<Listener<V>>,
    /// The keys being loaded or computed, one flight each.
    flights: Flights<V>,
    /// Hits and misses, counted by each thread in a cell of its own.
    reads: Tally,
    /// Slots in all shards, expired-but-unpurged ones included; kept in a bounded
    /// store only, whose writes need it to create keys. An unbounded store counts its
    /// tables instead (see [`Shared::slots`]): an atomic add on every created key
    /// and removed one costs more than `len` saves.
    len: CachePadded<AtomicUsize>,
    /// The weight of every slot, plus what writes holding a shard lock have reserved;
    /// never above `max_weight`.
    weight: CachePadded<AtomicU64>,
    /// Source of LRU stamps; only advanced in bounded stores.
    tick: CachePadded<AtomicU64>,
    /// The LRU index; its mutex is also the licence to create keys in a bounded store.
    lru: CachePadded<Mutex<LruIndex>>,
    /// No deadline in any expiry heap is earlier than this (u64::MAX: none filed).
    next_deadline: CachePadded<AtomicU64>,
    expirations: CachePadded<AtomicU64>,
    evictions: CachePadded<AtomicU64>,
    listener_panics: CachePadded<AtomicU64>,
    /// The shard `purge_expired` starts at next, so successive calls go round.
    purge_next: CachePadded<AtomicUsize>,
}

/// Receives every change as the full resulting state of a key, called under the lock
/// of the key's shard so that the log's order for a key is the order of its changes.
/// Expirations are not logged: deadlines are absolute, so replay reaches the same
/// verdict. Sliding restarts are not logged either: reads do not write.
///
/// A write records its change, then asks [`WriteLog::commit`], and applies the change
/// only if the log took it, all under the same locks: nobody ever sees a write that
/// the log refused. Evictions are the exception: they are recorded and applied at
/// once, and ride on the commit of the write that made room.
pub(crate) trait WriteLog<V>: Send + Sync {
    /// Takes the records `write` makes, all of them or, when the log cannot take a
    /// write now, none (an error).
    fn record(&self, write: &mut dyn FnMut(&mut dyn Changes<V>)) -> Result<()>;
    /// Refuses a write before it starts while the log cannot take one.
    fn check(&self) -> Result<()>;
    /// Makes what was recorded so far as durable as the log promises; an error means
    /// the write must not be applied.
    fn commit(&self) -> Result<()>;
}

/// The changes of one write, as [`WriteLog::record`] collects them.
pub(crate) trait Changes<V> {
    /// `key` now holds `value` with this deadline and TTL length (nanoseconds; 0: none).
    fn put(&mut self, key: &str, value: &V, deadline: u64, ttl: u64);
    /// `key` was removed.
    fn delete(&mut self, key: &str);
    /// Every key was removed.
    fn clear(&mut self);
}

/// One shard, aligned so that two shards' hot words never share a cache line.
#[repr(align(128))]
struct Shard<V> {
    table: RwLock<Table<V>>,
}

struct Table<V> {
    /// Boxed, so that a bucket is one pointer: the table's free buckets (up to half
    /// of them just after it grows) then cost 8 bytes each instead of a whole slot.
    slots: HashTable<Box<Slot<V>>>,
    /// Where `slots` keeps its buckets, for lookups to prefetch (see `prefetch.rs`);
    /// `insert` keeps it up to date.
    buckets: BucketEnd,
    expiry: DeadlineHeap,
    /// How many times the write lock was taken: a compute applies its change only if
    /// nobody else took it since its function looked.
    changes: u64,
}

impl<V> Table<V> {
    /// Asks for the cache lines of the buckets a lookup of `hash` will read first.
    #[inline(always)]
    fn prefetch(&self, hash: u64) {
        let buckets = self.slots.num_buckets();
        self.buckets.prefetch::<Box<Slot<V>>>(hash, buckets);
    }

    /// Adds a slot for a key the table does not hold, and learns where the buckets
    /// are now, since adding is what may move them.
    fn insert(&mut self, hash: u64, slot: Box<Slot<V>>, rehash: impl Fn(&Box<Slot<V>>) -> u64) {
        let entry = self.slots.insert_unique(hash, slot, rehash);
        self.buckets = BucketEnd::learn(std::ptr::from_ref(entry.get()), entry.bucket_index());
    }
}

impl<V> Shard<V> {
    /// The write lock of the shard's table, counted in `changes`.
    fn write(&self) -> RwLockWriteGuard<'_, Table<V>> {
        let mut table = self.table.write();
        table.changes = table.changes.wrapping_add(1);
        table
    }
}

impl<V: Value> MemoryStore<V> {
    pub(crate) fn new(config: Config<V>) -> Self {
        let shards = (0..config.shards)
            .map(|_| {
                CachePadded::new(Shard {
                    table: RwLock::new(Table {
                        slots: HashTable::new(),
                        buckets: BucketEnd::default(),
                        expiry: BinaryHeap::new(),
                        changes: 0,
                    }),
                })
            })
            .collect();
        MemoryStore {
            shared: Arc::new(Shared {
                shards,
                hasher: Hasher::default(),
                clock: config.clock,
                default_ttl: config.default_ttl.map_or(0, nanos),
                sliding: config.sliding,
                capacity: config.capacity,
                max_weight: config.max_weight.unwrap_or(u64::MAX),
                weigher: config.weigher,
                bounded: config.capacity.is_some() || config.max_weight.is_some(),
                log: OnceLock::new(),
                listener: config.listener.map(OnceLock::from).unwrap_or_default(),
                flights: Flights::new(config.shards),
                reads: Tally::new(),
                len: CachePadded::new(AtomicUsize::new(0)),
                weight: CachePadded::new(AtomicU64::new(0)),
                tick: CachePadded::new(AtomicU64::new(1)),
                lru: CachePadded::new(Mutex::new(LruIndex::default())),
                next_deadline: CachePadded::new(AtomicU64::new(u64::MAX)),
                expirations: CachePadded::new(AtomicU64::new(0)),
                evictions: CachePadded::new(AtomicU64::new(0)),
                listener_panics: CachePadded::new(AtomicU64::new(0)),
                purge_next: CachePadded::new(AtomicUsize::new(0)),
            }),
        }
    }
}

/// What persistence needs from a store: replaying a log into it, attaching a log,
/// and reading every live entry for a snapshot.
impl<V: Value> MemoryStore<V> {
    /// Sets `key` to exactly this state, as a log recorded it. Not logged.
    pub(crate) fn restore(&self, key: &str, value: V, deadline: u64, ttl: u64) -> Result<()> {
        // No listener is attached yet: recovery reports nothing.
        let mut notices = Notices::new(&self.shared);
        self.shared
            .write(key, Op::Restore(value, deadline, ttl), &mut notices)
            .map(|_| ())
    }

    /// Ends a recovery: files every key in the LRU index and, if the replayed log left
    /// more keys than the capacity, evicts the least recently restored (logged as
    /// deletes once a log is attached).
    pub(crate) fn finish_restore(&self) -> Result<()> {
        let s = &*self.shared;
        if !s.bounded {
            return Ok(());
        }
        let mut lru = s.lru.lock();
        s.rebuild_lru(&mut lru);
        // No listener is attached yet: recovery reports nothing.
        let mut notices = Notices::new(s);
        s.make_room(&mut lru, 0, 0, s.now(), &[], &mut notices)
    }

    /// From now on, every removal is reported to `listener`. Only the first call counts.
    pub(crate) fn attach_listener(&self, listener: Listener<V>) {
        let _ = self.shared.listener.set(listener);
    }

    /// The current time of the store's clock, in nanoseconds since the Unix epoch.
    pub(crate) fn now_nanos(&self) -> u64 {
        self.shared.now()
    }

    /// From now on, every change is recorded in `log`. Only the first call counts.
    pub(crate) fn attach_log(&self, log: Box<dyn WriteLog<V>>) {
        let _ = self.shared.log.set(log);
    }

    /// Calls `f` with the live entries of each shard in turn, as (key, value, deadline,
    /// ttl). Entries are copied out under the shard's read lock and `f` runs without it.
    pub(crate) fn for_each_shard(&self, mut f: impl FnMut(Vec<(Arc<str>, V, u64, u64)>)) {
        let s = &*self.shared;
        for shard in s.shards.iter() {
            let now = s.now();
            let entries = {
                let table = shard.table.read();
                table
                    .slots
                    .iter()
                    .filter(|slot| slot.is_live(now))
                    .map(|slot| {
                        let key = Arc::from(slot.key.as_str());
                        (key, slot.value.clone(), slot.deadline(), slot.ttl)
                    })
                    .collect()
            };
            f(entries);
        }
    }
}

impl<V> Shared<V> {
    /// Slots in all shards, expired-but-unpurged ones included.
    fn slots(&self) -> usize {
        match self.bounded {
            true => self.len.load(Relaxed),
            false => self.shards.iter().map(|s| s.table.read().slots.len()).sum(),
        }
    }
}

impl<V: Value> Shared<V> {
    fn hash(&self, key: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The shard for a hash. Uses bits 32.. so that the low bits hashbrown uses to pick
    /// a bucket stay evenly spread within each shard.
    fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    fn shard(&self, hash: u64) -> &Shard<V> {
        &self.shards[self.shard_index(hash)]
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// For a read of `slot`, which has a deadline: `None` if the deadline has passed,
    /// else a time to act on — no earlier than now, and before the deadline. The cheap
    /// reading decides unless the deadline falls within its slack; then the precise one
    /// does (see the [`clock`](crate::clock) module docs). The deadline is loaded after
    /// each reading, so a sliding restart that happened before it is seen.
    fn live_at(&self, slot: &Slot<V>) -> Option<u64> {
        before_deadline(self.clock.coarse_now(), || slot.deadline(), || self.now())
    }

    fn mode(&self) -> Mode {
        Mode {
            read_only: false,
            capacity: self.capacity,
            default_ttl: (self.default_ttl != 0).then(|| Duration::from_nanos(self.default_ttl)),
            sliding: self.sliding,
            max_weight: (self.max_weight != u64::MAX).then_some(self.max_weight),
        }
    }

    /// The weight of an entry; 0 when weights are not counted.
    fn weigh(&self, key: &str, value: &V) -> u64 {
        match &self.weigher {
            Some(weigher) => u64::from(weigher(key, value)),
            None => 0,
        }
    }

    /// Adds `w` to the weight if the total stays within the bound.
    fn try_reserve(&self, w: u64) -> bool {
        w == 0
            || self
                .weight
                .fetch_update(Relaxed, Relaxed, |total| {
                    total.checked_add(w).filter(|&t| t <= self.max_weight)
                })
                .is_ok()
    }

    /// Takes `w` off the weight.
    fn release(&self, w: u64) {
        if w != 0 {
            let _ = self
                .weight
                .fetch_update(Relaxed, Relaxed, |total| Some(total.saturating_sub(w)));
        }
    }

    fn rehasher(&self) -> impl Fn(&Box<Slot<V>>) -> u64 + '_ {
        move |slot| self.hash(slot.key.as_str())
    }

    /// The (deadline, ttl) a write gives a key, from its options and what it had.
    /// `deadline` turns a TTL into the deadline it ends at; it is asked only when the
    /// key gets a new deadline.
    fn resolve(
        &self,
        expiry: Expiry,
        old: Option<(u64, u64)>,
        deadline: impl FnOnce(u64) -> u64,
    ) -> (u64, u64) {
        let after = |ttl: u64| (deadline(ttl), ttl);
        match expiry {
            Expiry::After(ttl) => after(nanos(ttl)),
            Expiry::Never => (0, 0),
            Expiry::Keep if old.is_some() => old.unwrap_or_default(),
            Expiry::Default | Expiry::Keep => match self.default_ttl {
                0 => (0, 0),
                ttl => after(ttl),
            },
        }
    }

    /// Refuses a write up front while the log cannot take one, so that nothing is
    /// evicted to make room for a write that would be refused.
    fn log_ready(&self) -> Result<()> {
        match self.log.get() {
            Some(log) => log.check(),
            None => Ok(()),
        }
    }

    /// Records a write's changes and waits for the log's verdict. The caller holds the
    /// locks of the keys involved and applies the changes only after `Ok`.
    fn journal(&self, mut records: impl FnMut(&mut dyn Changes<V>)) -> Result<()> {
        match self.log.get() {
            Some(log) => {
                log.record(&mut records)?;
                log.commit()
            }
            None => Ok(()),
        }
    }

    /// The one place every removal of a key goes through, called once the slot has
    /// left its table (under its shard's lock): the bookkeeping (see
    /// [`Shared::forget`]), the weight, and the removal listener, to which the slot is
    /// handed once the operation has released its locks.
    fn removed<'a>(&self, slot: Box<Slot<V>>, cause: RemovalCause, notices: &mut Notices<'a, V>) {
        self.forget(&slot, cause);
        if self.weigher.is_some() {
            self.release(self.weigh(slot.key.as_str(), &slot.value));
        }
        notices.removed(slot, cause);
    }

    /// The bookkeeping of a removal: the key count, the statistics, and the write log.
    /// A deletion or a clear was journaled and committed by the caller before anything
    /// was removed; an eviction is journaled here and rides on the commit of the write
    /// that made room; an expiration needs no record, since replay finds the key
    /// expired too.
    fn forget(&self, slot: &Slot<V>, cause: RemovalCause) {
        if self.bounded {
            self.len.fetch_sub(1, Relaxed);
        }
        match cause {
            RemovalCause::Expired => {
                self.expirations.fetch_add(1, Relaxed);
            }
            RemovalCause::Evicted => {
                self.evictions.fetch_add(1, Relaxed);
                if let Some(log) = self.log.get() {
                    // Taken or not, the key is gone: the write that made room is
                    // refused if the log cannot take writes, and replay trims to the
                    // capacity anyway.
                    let _ = log.record(&mut |r| r.delete(slot.key.as_str()));
                }
            }
            _ => {}
        }
    }

    /// Records a use of `slot` by a read: restarts a sliding TTL, refreshes LRU order.
    fn touch_read(&self, slot: &Slot<V>, now: impl FnOnce() -> u64) {
        if self.sliding && slot.ttl != 0 {
            // Look before writing: between two ticks of the cheap clock every read
            // computes the same deadline, and a store only when it moves keeps a hot
            // key's cache line shared between cores instead of bouncing on each read.
            let d = now().saturating_add(slot.ttl);
            if slot.expires_at.load(Relaxed) < d {
                slot.expires_at.fetch_max(d, Relaxed);
            }
        }
        self.touch_lru(slot);
    }

    fn touch_lru(&self, slot: &Slot<V>) {
        if self.bounded {
            slot.used.store(self.tick.fetch_add(1, Relaxed), Relaxed);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
