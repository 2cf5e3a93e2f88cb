//! The writable, in-memory store: sharded maps, lazy expiry indexes, exact LRU.
//!
//! # Layout
//!
//! Keys hash to one of a power-of-two number of shards. Each shard is a
//! `hashbrown::HashTable` of slots under a `parking_lot::RwLock` (reads share it;
//! writes are short and never call user code), plus a min-heap of expiry deadlines.
//!
//! A slot is boxed and holds its key inline when the key is short (up to 22 bytes;
//! longer keys get a box of their own), so a typical entry is one allocation and a
//! table bucket is one pointer. A hash table is between 7/16 and 7/8 full, and a free
//! bucket then costs 8 bytes rather than a whole slot: at a million 12-byte keys with
//! 16-byte values, an entry costs about 63 bytes beyond its key and value, against
//! about 150 for slots stored in the table with a separately allocated key. Index
//! items find their slot by key hash and box address (see `SlotRef`).
//!
//! # Reads take only the shard's read lock
//!
//! Everything a read changes lives in atomics inside the slot: a sliding read stores a
//! new deadline in `expires_at`, an LRU read stores a fresh stamp from a global counter
//! in `used`. Neither touches an index, so a read costs O(1) whatever the mode.
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
//! # Capacity is never exceeded
//!
//! Only writers holding the LRU mutex may create keys in a bounded store. They make
//! room (expired keys first, then the least recently used) before inserting, so the
//! number of keys never passes the capacity, not even between two steps. Updates of
//! existing keys and all reads go without the mutex.
//!
//! # Lock order
//!
//! LRU mutex, then shard locks in ascending index order. Single-key paths hold one
//! shard lock at a time; multi-key writes lock their shards in ascending order.

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
use crate::cursor::Cursor;
use crate::store::{Condition, Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
use crate::{Error, Pattern, Result, Value};

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
            .field("len", &self.shared.len.load(Relaxed))
            .field("capacity", &self.shared.capacity)
            .field("sliding", &self.shared.sliding)
            .finish()
    }
}

/// What the builder hands to [`MemoryStore::new`].
pub(crate) struct Config {
    pub shards: usize,
    pub clock: Timer,
    pub default_ttl: Option<Duration>,
    pub sliding: bool,
    pub capacity: Option<usize>,
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
    /// Where every change is recorded, once a persistent store has recovered.
    log: OnceLock<Box<dyn WriteLog<V>>>,
    /// Slots in all shards, expired-but-unpurged ones included.
    len: CachePadded<AtomicUsize>,
    /// Source of LRU stamps; only advanced in bounded stores.
    tick: CachePadded<AtomicU64>,
    /// The LRU index; its mutex is also the licence to create keys in a bounded store.
    lru: CachePadded<Mutex<LruIndex>>,
    /// No deadline in any expiry heap is earlier than this (u64::MAX: none filed).
    next_deadline: CachePadded<AtomicU64>,
    expirations: CachePadded<AtomicU64>,
    evictions: CachePadded<AtomicU64>,
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
    /// `key` now holds `value` with this deadline and TTL length (nanoseconds; 0: none).
    fn put(&self, key: &str, value: &V, deadline: u64, ttl: u64);
    /// `key` was removed.
    fn delete(&self, key: &str);
    /// Every key was removed.
    fn clear(&self);
    /// Refuses a write before it starts while the log cannot take one.
    fn check(&self) -> Result<()>;
    /// Makes what was recorded so far as durable as the log promises; an error means
    /// the write must not be applied.
    fn commit(&self) -> Result<()>;
}

/// One shard, aligned so that two shards' hot words never share a cache line.
#[repr(align(128))]
struct Shard<V> {
    table: RwLock<Table<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Table<V> {
    /// Boxed, so that a bucket is one pointer: the table's free buckets (up to half
    /// of them just after it grows) then cost 8 bytes each instead of a whole slot.
    slots: HashTable<Box<Slot<V>>>,
    expiry: DeadlineHeap,
}

/// Keys up to this many bytes live inside their slot; longer ones get a box of their
/// own. With it, a key is 24 bytes in the slot.
const INLINE_KEY: usize = 22;

/// A key as its slot holds it: short keys inline, so that a typical entry is a single
/// allocation.
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<str>),
}

impl Key {
    fn new(key: &str) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Boxed(key.into()),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Boxed(key) => key.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Key::Inline { .. } => match std::str::from_utf8(self.as_bytes()) {
                Ok(key) => key,
                Err(_) => unreachable!("inline keys are copied whole from a str"),
            },
            Key::Boxed(key) => key,
        }
    }

    // Inlined into every lookup, which is compiled in the caller's crate (generic over V).
    #[inline]
    fn is(&self, key: &str) -> bool {
        self.as_bytes() == key.as_bytes()
    }
}

/// How an index item (expiry heap, LRU index) finds its slot: the key's hash, to find
/// the shard and bucket, and the address of the slot's box, to tell it from others
/// there. A box does not move while its slot lives, but a new slot may get the address
/// of a removed one, so an item can come to name a slot it was not filed for. Every
/// decision an item leads to is therefore checked against the slot's own state (its
/// filed deadline, its stamp, its real deadline), which makes such an item merely
/// stale, as if its slot had been used since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SlotRef {
    hash: u64,
    addr: usize,
}

impl SlotRef {
    fn new<V>(hash: u64, slot: &Slot<V>) -> SlotRef {
        SlotRef {
            hash,
            addr: std::ptr::from_ref(slot).addr(),
        }
    }

    fn is<V>(self, slot: &Slot<V>) -> bool {
        std::ptr::from_ref(slot).addr() == self.addr
    }
}

struct Slot<V> {
    key: Key,
    value: V,
    /// Deadline in nanoseconds since the Unix epoch; 0 for none. Sliding reads move it
    /// forward under the shard's read lock.
    expires_at: AtomicU64,
    /// The TTL the key was last written with, in nanoseconds (0: none); a sliding read
    /// restarts the deadline at this length.
    ttl: u64,
    /// The deadline of this slot's current item in the expiry heap (0: none filed).
    filed_deadline: u64,
    /// LRU stamp of the last use.
    used: AtomicU64,
}

impl<V> Slot<V> {
    fn deadline(&self) -> u64 {
        self.expires_at.load(Relaxed)
    }

    fn is_live(&self, now: u64) -> bool {
        let d = self.deadline();
        d == 0 || d > now
    }

    fn remaining(&self, now: u64) -> Option<Duration> {
        match self.deadline() {
            0 => None,
            d => Some(Duration::from_nanos(d.saturating_sub(now))),
        }
    }
}

/// The time as one single-key write sees it: read only if the write needs it, and
/// the cheap reading first, as reads do (see the module docs).
struct WriteTime<'c> {
    clock: &'c Timer,
    coarse: OnceCell<(u64, u64)>,
    precise: OnceCell<u64>,
}

impl<'c> WriteTime<'c> {
    fn new(clock: &'c Timer) -> Self {
        WriteTime {
            clock,
            coarse: OnceCell::new(),
            precise: OnceCell::new(),
        }
    }

    /// The cheap reading: the earliest the time can be, and how much later it may be.
    fn coarse(&self) -> (u64, u64) {
        *self.coarse.get_or_init(|| self.clock.coarse_now())
    }

    fn precise(&self) -> u64 {
        *self.precise.get_or_init(|| self.clock.now())
    }

    /// A time no later than now: what has expired by it has surely expired.
    fn earliest(&self) -> u64 {
        self.coarse().0
    }

    /// Whether deadline `d` (0: none) has not passed; a precise reading decides only
    /// when `d` falls within the cheap reading's slack.
    fn is_live(&self, d: u64) -> bool {
        d == 0 || before_deadline(self.coarse(), || d, || self.precise()).is_some()
    }

    /// The deadline of a TTL of `ttl` nanoseconds that starts now. It counts from the
    /// cheap reading's upper bound when the slack is at most a thousandth of the TTL,
    /// so that it ends no earlier than a precise start would and at most a thousandth
    /// of the TTL later; a shorter TTL counts from a precise reading.
    fn deadline(&self, ttl: u64) -> u64 {
        let (earliest, slack) = self.coarse();
        let start = if slack <= ttl / 1000 {
            earliest.saturating_add(slack)
        } else {
            self.precise()
        };
        start.saturating_add(ttl)
    }
}

/// Decides whether a deadline (non-zero) has passed: `None` if it has, else a time no
/// earlier than now and before the deadline. The cheap reading `(earliest, slack)`
/// decides unless the deadline falls within its slack; then `precise()` does.
/// `deadline()` is loaded after each reading, so that a sliding restart that
/// happened before a reading is seen.
#[inline]
fn before_deadline(
    (earliest, slack): (u64, u64),
    deadline: impl Fn() -> u64,
    precise: impl FnOnce() -> u64,
) -> Option<u64> {
    let latest = earliest.saturating_add(slack);
    let d = deadline();
    if latest < d {
        return Some(latest);
    }
    if earliest >= d {
        return None;
    }
    let now = precise();
    let d = deadline();
    (d == 0 || d > now).then_some(now)
}

/// Items `(stamp, slot)`, popped smallest stamp first.
///
/// Stamps come from one counter that only goes up, so an item filed now is never
/// older than the last one popped: the index is a monotone priority queue. A radix
/// heap serves one in O(1) per push and amortized O(log distance) per pop, by
/// sequential passes over a few vectors, where a binary heap of a million items
/// takes a cache miss for each level it sifts through.
#[derive(Default)]
struct LruIndex {
    heap: RadixHeapMap<Reverse<u64>, SlotRef>,
}

impl LruIndex {
    /// Files `at` at `stamp`. A stamp older than the last one popped (two reads of a
    /// key raced, and the older stamp was stored last) is filed at that one instead:
    /// the slot was used at least that recently.
    fn push(&mut self, stamp: u64, at: SlotRef) {
        let floor = self.heap.top().map_or(0, |Reverse(top)| top);
        self.heap.push(Reverse(stamp.max(floor)), at);
    }

    fn pop(&mut self) -> Option<(u64, SlotRef)> {
        self.heap.pop().map(|(Reverse(stamp), at)| (stamp, at))
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn clear(&mut self) {
        self.heap.clear();
    }
}

/// A single-key write.
enum Op<V> {
    Set(V, SetOptions),
    Incr(i64),
    /// Recovery: the key's state as a log recorded it.
    Restore(V, u64, u64),
}

enum Done {
    Set(SetOutcome),
    Incr(i64),
}

/// A batch entry with its hash and shard worked out once.
struct Item<V> {
    hash: u64,
    shard: usize,
    key: String,
    value: V,
}

impl<V: Value> MemoryStore<V> {
    pub(crate) fn new(config: Config) -> Self {
        let shards = (0..config.shards)
            .map(|_| {
                CachePadded::new(Shard {
                    table: RwLock::new(Table {
                        slots: HashTable::new(),
                        expiry: BinaryHeap::new(),
                    }),
                    hits: AtomicU64::new(0),
                    misses: AtomicU64::new(0),
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
                log: OnceLock::new(),
                len: CachePadded::new(AtomicUsize::new(0)),
                tick: CachePadded::new(AtomicU64::new(1)),
                lru: CachePadded::new(Mutex::new(LruIndex::default())),
                next_deadline: CachePadded::new(AtomicU64::new(u64::MAX)),
                expirations: CachePadded::new(AtomicU64::new(0)),
                evictions: CachePadded::new(AtomicU64::new(0)),
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
        self.shared
            .write(key, Op::Restore(value, deadline, ttl))
            .map(|_| ())
    }

    /// Ends a recovery: files every key in the LRU index and, if the replayed log left
    /// more keys than the capacity, evicts the least recently restored (logged as
    /// deletes once a log is attached).
    pub(crate) fn finish_restore(&self) -> Result<()> {
        let s = &*self.shared;
        if s.capacity.is_none() {
            return Ok(());
        }
        let mut lru = s.lru.lock();
        s.rebuild_lru(&mut lru);
        s.make_room(&mut lru, 0, s.now())
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
    fn journal(&self, records: impl FnOnce(&dyn WriteLog<V>)) -> Result<()> {
        match self.log.get() {
            Some(log) => {
                records(&**log);
                log.commit()
            }
            None => Ok(()),
        }
    }

    fn log_delete(&self, key: &str) {
        if let Some(log) = self.log.get() {
            log.delete(key);
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
        if self.capacity.is_some() {
            slot.used.store(self.tick.fetch_add(1, Relaxed), Relaxed);
        }
    }

    /// Files `slot`'s deadline `d` in the shard's expiry heap unless an item no later
    /// than `d` is already there. `hash` is the slot's key's.
    fn file_deadline(&self, heap: &mut DeadlineHeap, hash: u64, slot: &mut Slot<V>) {
        let d = slot.deadline();
        if d != 0 && (slot.filed_deadline == 0 || d < slot.filed_deadline) {
            heap.push(Reverse((d, SlotRef::new(hash, slot))));
            slot.filed_deadline = d;
            self.next_deadline.fetch_min(d, Relaxed);
        }
    }

    /// Replaces the value and TTL of a live slot. The caller has journaled the change.
    fn overwrite(
        &self,
        heap: &mut DeadlineHeap,
        hash: u64,
        slot: &mut Slot<V>,
        value: V,
        (d, ttl): (u64, u64),
    ) {
        slot.value = value;
        slot.expires_at.store(d, Relaxed);
        slot.ttl = ttl;
        self.file_deadline(heap, hash, slot);
        self.touch_lru(slot);
    }

    /// Inserts a key known to have no live slot, removing an expired one in the way.
    /// The caller has journaled the change.
    fn insert(
        &self,
        table: &mut Table<V>,
        lru: Option<&mut LruIndex>,
        hash: u64,
        key: &str,
        value: V,
        (d, ttl): (u64, u64),
    ) {
        if let Ok(old) = table.slots.find_entry(hash, |s| s.key.is(key)) {
            old.remove();
            self.len.fetch_sub(1, Relaxed);
            self.expirations.fetch_add(1, Relaxed);
        }
        let stamp = if self.capacity.is_some() {
            self.tick.fetch_add(1, Relaxed)
        } else {
            0
        };
        let mut slot = Box::new(Slot {
            key: Key::new(key),
            value,
            expires_at: AtomicU64::new(d),
            ttl,
            filed_deadline: 0,
            used: AtomicU64::new(stamp),
        });
        self.file_deadline(&mut table.expiry, hash, &mut slot);
        if let Some(lru) = lru {
            lru.push(stamp, SlotRef::new(hash, &slot));
        }
        table.slots.insert_unique(hash, slot, self.rehasher());
        self.len.fetch_add(1, Relaxed);
    }

    /// Works through due items of one shard's expiry heap, at most `budget` of them.
    /// Returns how many keys it removed.
    fn purge_table(&self, table: &mut Table<V>, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            match table.expiry.peek() {
                Some(Reverse((d, _))) if *d <= now => {}
                _ => break,
            }
            let Some(Reverse((d, at))) = table.expiry.pop() else {
                break;
            };
            let Ok(mut entry) = table.slots.find_entry(at.hash, |s| at.is(s)) else {
                continue; // the key was deleted or re-created since it was filed
            };
            let slot = entry.get_mut();
            if slot.filed_deadline != d {
                continue; // superseded by an earlier item
            }
            match slot.deadline() {
                0 => slot.filed_deadline = 0,
                real if real > now => {
                    // Slid or extended since filing: file it at its real deadline.
                    slot.filed_deadline = real;
                    table.expiry.push(Reverse((real, at)));
                }
                _ => {
                    entry.remove();
                    self.len.fetch_sub(1, Relaxed);
                    self.expirations.fetch_add(1, Relaxed);
                    removed += 1;
                }
            }
        }
        // Deleted keys leave their items behind; rebuild when they dominate.
        if table.expiry.len() > 2 * table.slots.len() + 64 {
            table.expiry = table
                .slots
                .iter()
                .filter(|s| s.filed_deadline != 0)
                .map(|s| {
                    let at = SlotRef::new(self.hash(s.key.as_str()), s);
                    Reverse((s.filed_deadline, at))
                })
                .collect();
        }
        removed
    }

    /// Purges every due key in every shard and recomputes `next_deadline`.
    fn purge_all(&self, now: u64) -> usize {
        // Reset first: deadlines filed while the pass runs lower it again themselves.
        self.next_deadline.store(u64::MAX, Relaxed);
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut table = shard.table.write();
            removed += self.purge_table(&mut table, now, usize::MAX);
            if let Some(Reverse((d, _))) = table.expiry.peek() {
                self.next_deadline.fetch_min(*d, Relaxed);
            }
        }
        removed
    }

    /// Purges due keys everywhere if any might exist.
    fn purge_if_due(&self, now: u64) {
        if self.next_deadline.load(Relaxed) <= now {
            self.purge_all(now);
        }
    }

    /// Makes room for `needed` new keys in a bounded store: expired keys go first,
    /// then the least recently used. The caller holds the LRU mutex and no shard lock.
    fn make_room(&self, lru: &mut LruIndex, needed: usize, now: u64) -> Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        if needed > capacity {
            return Err(Error::BatchTooLarge {
                requested: needed,
                capacity,
            });
        }
        if self.len.load(Relaxed) + needed > capacity {
            self.purge_if_due(now);
        }
        while self.len.load(Relaxed) + needed > capacity {
            if !self.evict_one(lru, now) {
                self.rebuild_lru(lru);
                if !self.evict_one(lru, now) {
                    break; // nothing left to evict; the count is settling elsewhere
                }
            }
        }
        Ok(())
    }

    /// Removes the least recently used key. Returns false if the index is empty.
    fn evict_one(&self, lru: &mut LruIndex, now: u64) -> bool {
        while let Some((stamp, at)) = lru.pop() {
            let mut table = self.shard(at.hash).table.write();
            let Ok(entry) = table.slots.find_entry(at.hash, |s| at.is(s)) else {
                continue; // deleted or re-created since it was filed
            };
            let used = entry.get().used.load(Relaxed);
            if used != stamp {
                lru.push(used, at);
                continue;
            }
            let live = entry.get().is_live(now);
            let (slot, _) = entry.remove();
            self.len.fetch_sub(1, Relaxed);
            self.log_delete(slot.key.as_str());
            if live {
                self.evictions.fetch_add(1, Relaxed);
            } else {
                self.expirations.fetch_add(1, Relaxed);
            }
            return true;
        }
        false
    }

    /// Refiles every slot at its current stamp, dropping stale items.
    fn rebuild_lru(&self, lru: &mut LruIndex) {
        lru.clear();
        for shard in self.shards.iter() {
            let table = shard.table.read();
            for s in table.slots.iter() {
                lru.push(
                    s.used.load(Relaxed),
                    SlotRef::new(self.hash(s.key.as_str()), s),
                );
            }
        }
    }

    /// Drops stale LRU items once they outnumber the keys.
    fn maybe_compact_lru(&self, lru: &mut LruIndex) {
        if lru.len() > 2 * self.len.load(Relaxed) + 1024 {
            self.rebuild_lru(lru);
        }
    }

    /// One single-key write: a set or an incr.
    fn write(&self, key: &str, op: Op<V>) -> Result<Done> {
        if let Op::Set(_, opts) = &op {
            check_expiry(opts.expiry)?;
        }
        self.log_ready()?;
        let hash = self.hash(key);
        let shard = self.shard(hash);
        // In a bounded store, creating a key needs the LRU mutex (taken before the
        // shard lock, per the lock order), so a create goes round the loop once more.
        let mut licence: Option<MutexGuard<'_, LruIndex>> = None;
        loop {
            // Read the clock only if the write needs it: replacing a key that has no
            // deadline with a value that gets none does not.
            let time = WriteTime::new(&self.clock);
            let mut guard = shard.table.write();
            let table = &mut *guard;
            if let Some(slot) = table.slots.find_mut(hash, |s| s.key.is(key))
                && time.is_live(slot.deadline())
            {
                return match op {
                    Op::Set(_, opts) if opts.condition == Condition::IfAbsent => {
                        Ok(Done::Set(SetOutcome::NotSet))
                    }
                    Op::Set(value, opts) => {
                        let old = Some((slot.deadline(), slot.ttl));
                        let ttl = self.resolve(opts.expiry, old, |ttl| time.deadline(ttl));
                        self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
                        self.overwrite(&mut table.expiry, hash, slot, value, ttl);
                        Ok(Done::Set(SetOutcome::Replaced))
                    }
                    Op::Incr(by) => {
                        let n = incremented(key, slot.value.to_i64(), by)?;
                        let value = V::from_i64(n).ok_or(Error::IncrUnsupported)?;
                        let (d, ttl) = (slot.deadline(), slot.ttl);
                        self.journal(|log| log.put(key, &value, d, ttl))?;
                        slot.value = value;
                        self.touch_lru(slot);
                        Ok(Done::Incr(n))
                    }
                    Op::Restore(value, d, ttl) => {
                        self.overwrite(&mut table.expiry, hash, slot, value, (d, ttl));
                        Ok(Done::Set(SetOutcome::Replaced))
                    }
                };
            }
            // The key is absent (or only expired).
            match &op {
                Op::Set(_, opts) if opts.condition == Condition::IfPresent => {
                    return Ok(Done::Set(SetOutcome::NotSet));
                }
                Op::Incr(by) if V::from_i64(*by).is_none() => return Err(Error::IncrUnsupported),
                _ => {}
            }
            // Recovery replays a log whose states never exceeded the capacity but
            // whose order may briefly do so; it inserts freely and trims at the end.
            let bounded = self.capacity.is_some() && !matches!(op, Op::Restore(..));
            if bounded && licence.is_none() {
                // Take the licence, then look at the key again: another writer may
                // have created it meanwhile, and then no room is needed.
                drop(guard);
                licence = Some(self.lru.lock());
                continue;
            }
            if let Some(lru) = licence.as_deref_mut().filter(|_| bounded) {
                // Eviction locks other shards, so ours is released while room is
                // made. Holding the licence, nobody else can create this key meanwhile.
                drop(guard);
                self.make_room(lru, 1, time.precise())?;
                guard = shard.table.write();
            }
            let table = &mut *guard;
            let (value, ttl, done) = match op {
                Op::Set(value, opts) => (
                    value,
                    self.resolve(opts.expiry, None, |ttl| time.deadline(ttl)),
                    Done::Set(SetOutcome::Created),
                ),
                Op::Incr(by) => {
                    let value = V::from_i64(by).ok_or(Error::IncrUnsupported)?;
                    (
                        value,
                        self.resolve(Expiry::Default, None, |ttl| time.deadline(ttl)),
                        Done::Incr(by),
                    )
                }
                Op::Restore(value, d, ttl) => (value, (d, ttl), Done::Set(SetOutcome::Created)),
            };
            self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
            self.insert(table, licence.as_deref_mut(), hash, key, value, ttl);
            if !table.expiry.is_empty() {
                self.purge_table(table, time.earliest(), PURGE_ON_WRITE);
            }
            if let Some(lru) = licence.as_deref_mut() {
                drop(guard);
                self.maybe_compact_lru(lru);
            }
            return Ok(done);
        }
    }

    /// Hashes, shards and de-duplicates a batch (the last pair for a key wins).
    fn items(&self, pairs: Vec<(String, V)>) -> Vec<Item<V>> {
        let mut items: Vec<Item<V>> = Vec::with_capacity(pairs.len());
        let mut seen = HashTable::<usize>::with_capacity(pairs.len());
        for (key, value) in pairs {
            let hash = self.hash(&key);
            match seen.entry(hash, |&i| items[i].key == key, |&i| items[i].hash) {
                Entry::Occupied(e) => items[*e.get()].value = value,
                Entry::Vacant(e) => {
                    e.insert(items.len());
                    items.push(Item {
                        hash,
                        shard: self.shard_index(hash),
                        key,
                        value,
                    });
                }
            }
        }
        items
    }

    /// Write-locks the shards `items` live in, in ascending order.
    fn lock_shards(&self, items: &[Item<V>]) -> Vec<(usize, RwLockWriteGuard<'_, Table<V>>)> {
        let mut order: Vec<usize> = items.iter().map(|i| i.shard).collect();
        order.sort_unstable();
        order.dedup();
        order
            .into_iter()
            .map(|i| (i, self.shards[i].table.write()))
            .collect()
    }

    fn insert_all_absent(&self, pairs: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        check_expiry(expiry)?;
        self.log_ready()?;
        let items = self.items(pairs);
        if let Some(capacity) = self.capacity
            && items.len() > capacity
        {
            return Err(Error::BatchTooLarge {
                requested: items.len(),
                capacity,
            });
        }
        let mut licence = self.capacity.map(|_| self.lru.lock());
        let now = self.now();
        let mut guards = self.lock_shards(&items);
        let any_live = items.iter().any(|item| {
            let table = guard_for(&mut guards, item.shard);
            table
                .slots
                .find(item.hash, |s| s.key.is(&item.key))
                .is_some_and(|s| s.is_live(now))
        });
        if any_live {
            return Ok(false);
        }
        if let Some(lru) = licence.as_deref_mut() {
            // Eviction locks other shards, so let go of ours first. While we hold the
            // LRU mutex nobody else can create keys, so ours stay absent meanwhile.
            drop(guards);
            self.make_room(lru, items.len(), now)?;
            guards = self.lock_shards(&items);
        }
        let ttl = self.resolve(expiry, None, |ttl| now.saturating_add(ttl));
        self.journal(|log| {
            for item in &items {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        for item in items {
            let table = guard_for(&mut guards, item.shard);
            self.insert(
                table,
                licence.as_deref_mut(),
                item.hash,
                &item.key,
                item.value,
                ttl,
            );
        }
        Ok(true)
    }

    /// Sets every pair. In an unbounded store a chunk at a time: each chunk's shards
    /// are locked together, its records journaled with one commit, and then applied.
    /// In a bounded store one pair at a time, since each new key may evict, and which
    /// key goes depends on the writes before it. Not all-or-nothing: the pairs before
    /// a failure stay written.
    fn set_all(&self, pairs: Vec<(String, V)>, expiry: Expiry) -> Result<()> {
        check_expiry(expiry)?;
        self.log_ready()?;
        if self.capacity.is_some() {
            let opts = SetOptions {
                expiry,
                condition: Condition::Always,
            };
            for (key, value) in pairs {
                self.write(&key, Op::Set(value, opts))?;
            }
            return Ok(());
        }
        let mut items = self.items(pairs);
        while !items.is_empty() {
            let rest = items.split_off(SET_CHUNK.min(items.len()));
            self.set_chunk(items, expiry)?;
            items = rest;
        }
        Ok(())
    }

    /// Sets a chunk of distinct keys in an unbounded store.
    fn set_chunk(&self, items: Vec<Item<V>>, expiry: Expiry) -> Result<()> {
        let now = self.now();
        let mut guards = self.lock_shards(&items);
        let old: Vec<Option<(u64, u64)>> = items
            .iter()
            .map(|item| {
                guard_for(&mut guards, item.shard)
                    .slots
                    .find(item.hash, |s| s.key.is(&item.key))
                    .filter(|s| s.is_live(now))
                    .map(|s| (s.deadline(), s.ttl))
            })
            .collect();
        let ttls: Vec<(u64, u64)> = old
            .iter()
            .map(|&old| self.resolve(expiry, old, |ttl| now.saturating_add(ttl)))
            .collect();
        self.journal(|log| {
            for (item, ttl) in items.iter().zip(&ttls) {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        for ((item, old), ttl) in items.into_iter().zip(old).zip(ttls) {
            let table = guard_for(&mut guards, item.shard);
            if old.is_some() {
                let Table {
                    slots,
                    expiry: heap,
                } = table;
                if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                    self.overwrite(heap, item.hash, slot, item.value, ttl);
                }
            } else {
                self.insert(table, None, item.hash, &item.key, item.value, ttl);
            }
        }
        Ok(())
    }

    fn update_all_present(&self, pairs: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        check_expiry(expiry)?;
        let items = self.items(pairs);
        let now = self.now();
        let mut guards = self.lock_shards(&items);
        let all_live = items.iter().all(|item| {
            let table = guard_for(&mut guards, item.shard);
            table
                .slots
                .find(item.hash, |s| s.key.is(&item.key))
                .is_some_and(|s| s.is_live(now))
        });
        if !all_live {
            return Ok(false);
        }
        // Each key's new deadline and TTL, worked out before anything changes.
        let ttls: Vec<(u64, u64)> = items
            .iter()
            .map(|item| {
                let table = guard_for(&mut guards, item.shard);
                let old = table
                    .slots
                    .find(item.hash, |s| s.key.is(&item.key))
                    .map(|slot| (slot.deadline(), slot.ttl));
                self.resolve(expiry, old, |ttl| now.saturating_add(ttl))
            })
            .collect();
        self.journal(|log| {
            for (item, ttl) in items.iter().zip(&ttls) {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        for (item, ttl) in items.into_iter().zip(ttls) {
            let table = guard_for(&mut guards, item.shard);
            let Table {
                slots,
                expiry: heap,
            } = table;
            if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                self.overwrite(heap, item.hash, slot, item.value, ttl);
            }
        }
        Ok(true)
    }

    /// Runs `f` on the live slot of `key` (and its hash) under the shard's write lock.
    fn with_live_slot<R>(
        &self,
        key: &str,
        f: impl FnOnce(&Self, &mut DeadlineHeap, u64, &mut Slot<V>, u64) -> R,
    ) -> Option<R> {
        let hash = self.hash(key);
        let mut guard = self.shard(hash).table.write();
        let now = self.now();
        let Table { slots, expiry } = &mut *guard;
        let slot = slots.find_mut(hash, |s| s.key.is(key))?;
        slot.is_live(now).then(|| f(self, expiry, hash, slot, now))
    }

    /// Runs `f` on the live slot of `key` under the shard's read lock, counting a hit
    /// or a miss when `count` is set.
    fn read<R>(&self, key: &str, count: bool, f: impl FnOnce(&Slot<V>, u64) -> R) -> Option<R> {
        let hash = self.hash(key);
        let shard = self.shard(hash);
        let table = shard.table.read();
        let found = table.slots.find(hash, |s| s.key.is(key)).and_then(|slot| {
            // Only keys with a deadline need the time.
            let now = match slot.deadline() {
                0 => 0,
                _ => self.live_at(slot)?,
            };
            Some(f(slot, now))
        });
        if count {
            let counter = if found.is_some() {
                &shard.hits
            } else {
                &shard.misses
            };
            counter.fetch_add(1, Relaxed);
        }
        found
    }

    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        let mut at = match cursor {
            Some(text) => Cursor::decode(text, self.shards.len())?,
            None => Cursor {
                shard: 0,
                after: None,
            },
        };
        let pattern = pattern.filter(|p| !p.matches_all());
        let mut items = Vec::new();
        let now = self.now();
        while at.shard < self.shards.len() && items.len() < limit {
            let want = limit - items.len();
            let table = self.shards[at.shard].table.read();
            let mut found: Vec<&Slot<V>> = table
                .slots
                .iter()
                .map(|s| &**s)
                .filter(|s| {
                    let after = at.after.as_deref();
                    after.is_none_or(|after| s.key.as_bytes() > after.as_bytes())
                })
                .filter(|s| s.is_live(now))
                .filter(|s| pattern.is_none_or(|p| p.matches(s.key.as_str())))
                .collect();
            let complete = found.len() <= want;
            // Byte order is str order.
            let by_key = |a: &&Slot<V>, b: &&Slot<V>| a.key.as_bytes().cmp(b.key.as_bytes());
            if !complete {
                found.select_nth_unstable_by(want - 1, by_key);
                found.truncate(want);
            }
            found.sort_unstable_by(by_key);
            for slot in &found {
                self.touch_read(slot, || now);
                items.push((slot.key.as_str().to_owned(), slot.value.clone()));
            }
            at = if complete {
                Cursor {
                    shard: at.shard + 1,
                    after: None,
                }
            } else {
                let last = found.last().map(|s| s.key.as_str().to_owned());
                Cursor {
                    shard: at.shard,
                    after: last,
                }
            };
        }
        let next_cursor = (at.shard < self.shards.len()).then(|| at.encode());
        Ok(ScanPage { items, next_cursor })
    }

    fn clear(&self) -> Result<usize> {
        // All shards are locked at once (in order, after the LRU mutex) so that the
        // log's CLEAR falls between the same two writes in every shard.
        let mut lru = self.lru.lock();
        let mut tables: Vec<_> = self.shards.iter().map(|s| s.table.write()).collect();
        self.journal(|log| log.clear())?;
        let now = self.now();
        let mut live = 0;
        for table in &mut tables {
            live += table.slots.iter().filter(|s| s.is_live(now)).count();
            self.len.fetch_sub(table.slots.len(), Relaxed);
            table.slots.clear();
            table.expiry.clear();
        }
        lru.clear();
        Ok(live)
    }

    fn purge_expired(&self, budget: usize) -> usize {
        let now = self.now();
        let n = self.shards.len();
        let start = self.purge_next.fetch_add(1, Relaxed);
        let mut removed = 0;
        let mut left = budget;
        for i in 0..n {
            if left == 0 {
                break;
            }
            let mut table = self.shards[(start + i) % n].table.write();
            let before = table.expiry.len();
            removed += self.purge_table(&mut table, now, left);
            left = left.saturating_sub(before.saturating_sub(table.expiry.len()).max(1));
        }
        removed
    }
}

/// The guard for shard `index` among guards sorted by index.
fn guard_for<'a, 'g, V>(
    guards: &'a mut [(usize, RwLockWriteGuard<'g, Table<V>>)],
    index: usize,
) -> &'a mut Table<V> {
    let pos = guards
        .binary_search_by_key(&index, |(i, _)| *i)
        .unwrap_or_else(|_| unreachable!("every item's shard is locked"));
    &mut guards[pos].1
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::InvalidTtl { ttl });
    }
    Ok(())
}

fn check_expiry(expiry: Expiry) -> Result<()> {
    match expiry {
        Expiry::After(ttl) => check_ttl(ttl),
        _ => Ok(()),
    }
}

fn incremented(key: &str, current: Option<i64>, by: i64) -> Result<i64> {
    let current = current.ok_or_else(|| Error::NotAnInteger {
        key: key.to_owned(),
    })?;
    current.checked_add(by).ok_or_else(|| Error::Overflow {
        key: key.to_owned(),
        by,
    })
}

impl<V: Value> Store<V> for MemoryStore<V> {
    fn get(&self, key: &str) -> Option<V> {
        let s = &*self.shared;
        s.read(key, true, |slot, now| {
            s.touch_read(slot, || now);
            slot.value.clone()
        })
    }

    fn get_with_ttl(&self, key: &str) -> Option<(V, Option<Duration>)> {
        let s = &*self.shared;
        s.read(key, true, |slot, now| {
            s.touch_read(slot, || now);
            (slot.value.clone(), slot.remaining(now))
        })
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Option<V>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn contains(&self, key: &str) -> bool {
        self.shared.read(key, false, |_, _| ()).is_some()
    }

    fn ttl(&self, key: &str) -> Option<Option<Duration>> {
        self.shared
            .read(key, false, |slot, now| slot.remaining(now))
    }

    fn set(&self, key: &str, value: V, opts: SetOptions) -> Result<SetOutcome> {
        match self.shared.write(key, Op::Set(value, opts))? {
            Done::Set(outcome) => Ok(outcome),
            Done::Incr(_) => unreachable!("a set reports a set outcome"),
        }
    }

    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize> {
        let n = items.len();
        self.shared.set_all(items, expiry)?;
        Ok(n)
    }

    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.shared.insert_all_absent(items, expiry)
    }

    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.shared.update_all_present(items, expiry)
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let s = &*self.shared;
        let hash = s.hash(key);
        let mut table = s.shard(hash).table.write();
        let Ok(entry) = table.slots.find_entry(hash, |slot| slot.key.is(key)) else {
            return Ok(false);
        };
        let live = entry.get().is_live(s.now());
        if live {
            // An expired key needs no record: replay finds it expired too.
            s.journal(|log| log.delete(key))?;
        }
        entry.remove();
        s.len.fetch_sub(1, Relaxed);
        if !live {
            s.expirations.fetch_add(1, Relaxed);
        }
        Ok(live)
    }

    fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        check_ttl(ttl)?;
        let ttl = nanos(ttl);
        self.shared
            .with_live_slot(key, |s, heap, hash, slot, now| {
                let d = now.saturating_add(ttl);
                s.journal(|log| log.put(key, &slot.value, d, ttl))?;
                slot.expires_at.store(d, Relaxed);
                slot.ttl = ttl;
                s.file_deadline(heap, hash, slot);
                s.touch_lru(slot);
                Ok(())
            })
            .transpose()
            .map(|done| done.is_some())
    }

    fn persist(&self, key: &str) -> Result<bool> {
        self.shared
            .with_live_slot(key, |s, _, _, slot, _| {
                s.journal(|log| log.put(key, &slot.value, 0, 0))?;
                slot.expires_at.store(0, Relaxed);
                slot.ttl = 0;
                s.touch_lru(slot);
                Ok(())
            })
            .transpose()
            .map(|done| done.is_some())
    }

    fn incr(&self, key: &str, by: i64) -> Result<i64> {
        match self.shared.write(key, Op::Incr(by))? {
            Done::Incr(n) => Ok(n),
            Done::Set(_) => unreachable!("an incr reports a number"),
        }
    }

    fn len(&self) -> usize {
        let s = &*self.shared;
        s.purge_if_due(s.now());
        s.len.load(Relaxed)
    }

    fn clear(&self) -> Result<usize> {
        self.shared.clear()
    }

    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        self.shared.scan(pattern, cursor, limit)
    }

    fn stats(&self) -> Stats {
        let s = &*self.shared;
        let (hits, misses) = s.shards.iter().fold((0, 0), |(h, m), shard| {
            (h + shard.hits.load(Relaxed), m + shard.misses.load(Relaxed))
        });
        Stats {
            hits,
            misses,
            expirations: s.expirations.load(Relaxed),
            evictions: s.evictions.load(Relaxed),
        }
    }

    fn purge_expired(&self, budget: usize) -> usize {
        self.shared.purge_expired(budget)
    }

    fn mode(&self) -> Mode {
        self.shared.mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::to_nanos;
    use crate::{Clock, ManualClock, StoreBuilder};

    /// The keys of the first page of a scan, sorted.
    fn first_page(s: &MemoryStore<u64>, pattern: Option<&Pattern>, limit: usize) -> Vec<String> {
        let page = s.scan(pattern, None, limit).unwrap();
        let mut keys: Vec<String> = page.items.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    }

    fn store(b: StoreBuilder) -> (MemoryStore<u64>, ManualClock) {
        let clock = ManualClock::new();
        (b.clock(clock.clone()).build().unwrap(), clock)
    }

    const SEC: Duration = Duration::from_secs(1);

    /// A clock whose cheap reading lags its precise one by `lag` and claims `slack`,
    /// and that counts its readings of each kind.
    #[derive(Debug)]
    struct Lagging {
        precise: ManualClock,
        lag: Duration,
        slack: Duration,
        precise_reads: AtomicUsize,
        cheap_reads: AtomicUsize,
    }

    impl Lagging {
        fn new(precise: &ManualClock, lag: Duration, slack: Duration) -> Self {
            Lagging {
                precise: precise.clone(),
                lag,
                slack,
                precise_reads: AtomicUsize::new(0),
                cheap_reads: AtomicUsize::new(0),
            }
        }

        /// Readings of either kind so far.
        fn reads(&self) -> usize {
            self.precise_reads.load(Relaxed) + self.cheap_reads.load(Relaxed)
        }
    }

    impl Clock for Lagging {
        fn now(&self) -> std::time::SystemTime {
            self.precise_reads.fetch_add(1, Relaxed);
            self.precise.now()
        }

        fn coarse_now(&self) -> (std::time::SystemTime, Duration) {
            self.cheap_reads.fetch_add(1, Relaxed);
            (self.precise.now() - self.lag, self.slack)
        }
    }

    #[test]
    fn reads_decide_from_the_cheap_reading_unless_the_deadline_is_within_its_slack() {
        let ms = Duration::from_millis(1);
        let precise = ManualClock::new();
        let clock = Arc::new(Lagging::new(&precise, 3 * ms, 10 * ms));
        let s = StoreBuilder::new()
            .clock(Arc::clone(&clock))
            .build::<u64>()
            .unwrap();
        s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
        let reads = || clock.precise_reads.load(Relaxed);

        // Far from the deadline: live, from the cheap reading alone.
        let before = reads();
        assert_eq!(s.get("k"), Some(1));
        let ttl = s.ttl("k").flatten().unwrap();
        assert_eq!(reads(), before, "no precise reading far from the deadline");
        // The remaining time counts from the cheap reading's upper bound: 10 - 3 ms
        // less than the precise remaining time.
        assert_eq!(ttl, SEC - 7 * ms);

        // Within the slack: the precise reading decides, both ways.
        precise.advance(SEC - 2 * ms); // cheap reading 5 ms before the deadline
        assert_eq!(s.get("k"), Some(1));
        assert!(reads() > before, "a precise reading near the deadline");
        precise.advance(2 * ms); // precisely at the deadline; cheap reading 3 ms before
        assert_eq!(s.get("k"), None, "dead by the precise reading");
        assert!(!s.contains("k"));

        // Past the deadline by more than the lag: dead from the cheap reading alone.
        s.set("j", 2, SetOptions::new().ttl(SEC)).unwrap();
        precise.advance(SEC + 4 * ms);
        let before = reads();
        assert_eq!(s.get("j"), None);
        assert_eq!(
            reads(),
            before,
            "no precise reading long after the deadline"
        );
    }

    #[test]
    fn writes_read_the_clock_only_when_a_deadline_is_involved() {
        let clock = Arc::new(Lagging::new(
            &ManualClock::new(),
            Duration::ZERO,
            Duration::ZERO,
        ));
        let s = StoreBuilder::new()
            .clock(Arc::clone(&clock))
            .build::<String>()
            .unwrap();
        let reads = || clock.reads();
        let v = |s: &str| s.to_owned();
        s.set("k", v("1"), SetOptions::new()).unwrap();
        let before = reads();
        let replaced = s.set("k", v("2"), SetOptions::new()).unwrap();
        assert_eq!(replaced, SetOutcome::Replaced);
        assert_eq!(s.incr("n", 1).unwrap(), 1);
        assert_eq!(s.incr("n", 1).unwrap(), 2);
        assert_eq!(reads(), before, "no deadline: no clock");

        // A new deadline, or an old one to check, needs the time.
        s.set("k", v("3"), SetOptions::new().ttl(SEC)).unwrap();
        assert!(reads() > before);
        let before = reads();
        s.set("k", v("4"), SetOptions::new().keep_ttl()).unwrap();
        assert!(reads() > before, "the old deadline is checked");
        assert_eq!(s.ttl("k"), Some(Some(SEC)));
    }

    /// How far `key`'s stored deadline lies past `precise`'s time, looked at without
    /// counting a read or restarting a sliding TTL.
    fn until_deadline(s: &MemoryStore<u64>, key: &str, precise: &ManualClock) -> Duration {
        let d = s
            .shared
            .read(key, false, |slot, _| slot.deadline())
            .unwrap();
        Duration::from_nanos(d - to_nanos(precise.now()))
    }

    #[test]
    fn a_write_deadline_counts_from_the_cheap_reading_when_its_slack_is_a_thousandth_of_the_ttl() {
        let ms = Duration::from_millis(1);
        let precise = ManualClock::new();
        let clock = Arc::new(Lagging::new(&precise, 3 * ms, 10 * ms));
        let s = StoreBuilder::new()
            .clock(Arc::clone(&clock))
            .build::<u64>()
            .unwrap();
        let precise_reads = || clock.precise_reads.load(Relaxed);
        let left = |key: &str| until_deadline(&s, key, &precise);

        // 10 ms of slack is at most a thousandth of 10 s: the deadline counts from the
        // cheap reading's upper bound (3 ms behind, 10 ms of slack), with no precise
        // reading, and ends 7 ms after a precise start would.
        let before = precise_reads();
        s.set("long", 1, SetOptions::new().ttl(10 * SEC)).unwrap();
        assert_eq!(precise_reads(), before);
        assert_eq!(left("long"), 10 * SEC + 7 * ms);
        // Replacing it checks its deadline on the cheap reading alone.
        s.set("long", 2, SetOptions::new().keep_ttl()).unwrap();
        assert_eq!(precise_reads(), before);
        // Its remaining time never shows more than the TTL.
        assert_eq!(s.ttl("long"), Some(Some(10 * SEC)));

        // A thousandth of 9.999 s is less than the slack: a precise start.
        s.set("short", 1, SetOptions::new().ttl(10 * SEC - ms))
            .unwrap();
        assert!(precise_reads() > before);
        assert_eq!(left("short"), 10 * SEC - ms);

        // A deadline within the slack of the cheap reading: the precise one decides
        // whether the key a write finds is still there.
        s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
        precise.advance(SEC - ms);
        let if_absent = SetOptions::new().if_absent();
        let before = precise_reads();
        assert_eq!(s.set("k", 2, if_absent).unwrap(), SetOutcome::NotSet);
        assert!(precise_reads() > before);
        precise.advance(ms);
        assert_eq!(s.set("k", 3, if_absent).unwrap(), SetOutcome::Created);
        assert_eq!(s.get("k"), Some(3));
    }

    #[test]
    fn a_sliding_restart_counts_from_the_cheap_readings_upper_bound() {
        let ms = Duration::from_millis(1);
        let precise = ManualClock::new();
        let clock = Lagging::new(&precise, 3 * ms, 10 * ms);
        let s = StoreBuilder::new()
            .default_ttl(SEC)
            .sliding(true)
            .clock(clock)
            .build::<u64>()
            .unwrap();
        s.set("k", 1, SetOptions::new()).unwrap();
        precise.advance(SEC / 2);
        assert_eq!(s.get("k"), Some(1));
        // Restarted at (precise - 3 ms + 10 ms) + 1 s: 7 ms later than a precise
        // restart, never earlier.
        assert_eq!(until_deadline(&s, "k", &precise), SEC + 7 * ms);
        precise.advance(SEC + 6 * ms);
        assert_eq!(s.get("k"), Some(1), "still live 1.006 s after the read");
    }

    #[test]
    fn expired_at_exactly_the_deadline() {
        let (s, clock) = store(StoreBuilder::new());
        s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
        clock.advance(SEC - Duration::from_nanos(1));
        assert_eq!(s.get("k"), Some(1));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(s.get("k"), None);
        assert_eq!(s.ttl("k"), None);
        assert!(!s.contains("k"));
    }

    #[test]
    fn purge_removes_expired_in_bounded_steps() {
        let (s, clock) = store(StoreBuilder::new().shards(1));
        for i in 0..10 {
            s.set(&format!("k{i}"), i, SetOptions::new().ttl(SEC))
                .unwrap();
        }
        s.set("forever", 0, SetOptions::new()).unwrap();
        clock.advance(SEC);
        assert_eq!(s.purge_expired(3), 3);
        assert_eq!(s.shared.len.load(Relaxed), 8);
        assert_eq!(s.purge_expired(100), 7);
        assert_eq!(s.purge_expired(100), 0);
        assert_eq!(s.len(), 1);
        assert_eq!(s.stats().expirations, 10);
    }

    #[test]
    fn sliding_reads_refile_lazily_and_purge_keeps_live_keys() {
        let (s, clock) = store(
            StoreBuilder::new()
                .default_ttl(10 * SEC)
                .sliding(true)
                .shards(1),
        );
        s.set("k", 7, SetOptions::new()).unwrap();
        for _ in 0..5 {
            clock.advance(6 * SEC);
            assert_eq!(s.get("k"), Some(7));
        }
        // The heap item (filed at the first deadline) is long due; purging must refile,
        // not remove.
        assert_eq!(s.purge_expired(10), 0);
        assert_eq!(s.shared.shards[0].table.read().expiry.len(), 1);
        assert_eq!(s.ttl("k"), Some(Some(10 * SEC)));
        clock.advance(10 * SEC);
        assert_eq!(s.purge_expired(10), 1);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn shortened_ttl_is_filed_again_and_longer_one_is_not() {
        let (s, clock) = store(StoreBuilder::new().shards(1));
        s.set("k", 1, SetOptions::new().ttl(100 * SEC)).unwrap();
        s.expire("k", 200 * SEC).unwrap();
        assert_eq!(s.shared.shards[0].table.read().expiry.len(), 1);
        s.expire("k", 5 * SEC).unwrap();
        assert_eq!(s.shared.shards[0].table.read().expiry.len(), 2);
        clock.advance(5 * SEC);
        assert_eq!(s.purge_expired(10), 1);
    }

    #[test]
    fn stale_heap_items_are_compacted() {
        let (s, _clock) = store(StoreBuilder::new().shards(1));
        for i in 0..1000 {
            let key = format!("k{i}");
            s.set(&key, i, SetOptions::new().ttl(SEC)).unwrap();
            s.delete(&key).unwrap();
        }
        s.purge_expired(1);
        assert!(s.shared.shards[0].table.read().expiry.len() <= 64);
    }

    #[test]
    fn lru_index_is_compacted_after_churn() {
        let (s, _clock) = store(StoreBuilder::new().capacity(10));
        for i in 0..5000 {
            let key = format!("k{i}");
            s.set(&key, i, SetOptions::new()).unwrap();
            s.delete(&key).unwrap();
        }
        assert!(s.shared.lru.lock().len() <= 2 * 10 + 1024 + 1);
    }

    #[test]
    fn lru_index_pops_oldest_first_and_files_a_raced_stamp_at_the_last_popped() {
        let at = |n: u64| SlotRef { hash: n, addr: 0 };
        let mut index = LruIndex::default();
        for stamp in [7, 3, 9, 5] {
            index.push(stamp, at(stamp));
        }
        assert_eq!(index.pop(), Some((3, at(3))));
        assert_eq!(index.pop(), Some((5, at(5))));
        // Older than the last popped stamp: filed at 5, so it comes out next.
        index.push(4, at(4));
        index.push(8, at(8));
        assert_eq!(index.pop(), Some((5, at(4))));
        let rest: Vec<_> = std::iter::from_fn(|| index.pop()).collect();
        assert_eq!(rest, [(7, at(7)), (8, at(8)), (9, at(9))]);
        assert_eq!(index.len(), 0);
        // A cleared index takes any stamp again.
        index.push(100, at(100));
        index.clear();
        index.push(1, at(1));
        assert_eq!(index.pop(), Some((1, at(1))));
    }

    #[test]
    fn inline_and_boxed_keys_behave_alike() {
        let (s, _clock) = store(StoreBuilder::new().capacity(2));
        let boxed = "k".repeat(INLINE_KEY + 1);
        let inline = "é".repeat(INLINE_KEY / 2); // exactly INLINE_KEY bytes
        assert!(matches!(Key::new(&boxed), Key::Boxed(_)));
        assert!(matches!(Key::new(&inline), Key::Inline { .. }));
        s.set(&boxed, 1, SetOptions::new().ttl(SEC)).unwrap();
        s.set(&inline, 2, SetOptions::new()).unwrap();
        assert_eq!(first_page(&s, None, 10), [boxed.clone(), inline.clone()]);
        assert_eq!((s.get(&boxed), s.get(&inline)), (Some(1), Some(2)));
        s.set("new", 3, SetOptions::new()).unwrap(); // evicts the boxed key, used first
        assert!(!s.contains(&boxed) && s.contains(&inline));
        assert_eq!(s.stats().evictions, 1);
    }

    #[test]
    fn eviction_prefers_expired_keys_and_counts_them_apart() {
        let (s, clock) = store(StoreBuilder::new().capacity(2));
        s.set("old", 1, SetOptions::new().ttl(SEC)).unwrap();
        s.set("keep", 2, SetOptions::new()).unwrap();
        clock.advance(SEC);
        s.set("new", 3, SetOptions::new()).unwrap();
        assert_eq!(s.get("keep"), Some(2));
        assert_eq!(s.get("new"), Some(3));
        let stats = s.stats();
        assert_eq!((stats.evictions, stats.expirations), (0, 1));
    }

    #[test]
    fn exact_lru_across_shards() {
        let (s, _clock) = store(StoreBuilder::new().capacity(3).shards(64));
        for k in ["a", "b", "c"] {
            s.set(k, 0, SetOptions::new()).unwrap();
        }
        s.get("a");
        s.set("d", 0, SetOptions::new()).unwrap();
        assert!(!s.contains("b"));
        s.set("c", 1, SetOptions::new()).unwrap(); // a write is a use too
        s.set("e", 0, SetOptions::new()).unwrap();
        assert!(!s.contains("a"));
        assert!(s.contains("c") && s.contains("d") && s.contains("e"));
    }

    #[test]
    fn conditional_failure_in_full_store_evicts_nothing() {
        let (s, _clock) = store(StoreBuilder::new().capacity(1));
        s.set("a", 1, SetOptions::new()).unwrap();
        let out = s.set("b", 2, SetOptions::new().if_present()).unwrap();
        assert_eq!(out, SetOutcome::NotSet);
        assert!(
            !s.insert_all_absent(vec![("a".into(), 5)], Expiry::Default)
                .unwrap()
        );
        assert_eq!(s.get("a"), Some(1));
        assert_eq!(s.stats().evictions, 0);
    }

    #[test]
    fn scan_pages_return_each_key_once_despite_writes() {
        let (s, _clock) = store(StoreBuilder::new().shards(4));
        for i in 0..500 {
            s.set(&format!("k{i:03}"), i, SetOptions::new()).unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = None;
        let mut round = 0;
        loop {
            let page = s.scan(None, cursor.as_deref(), 7).unwrap();
            assert!(page.items.len() <= 7);
            for (k, _) in page.items {
                assert!(seen.insert(k.clone()), "{k} returned twice");
            }
            // Churn between pages: new keys and deletions of keys added meanwhile.
            round += 1;
            s.set(&format!("new{round}"), 0, SetOptions::new()).unwrap();
            if round % 2 == 0 {
                s.delete(&format!("new{}", round - 1)).unwrap();
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        for i in 0..500 {
            assert!(seen.contains(&format!("k{i:03}")));
        }
    }

    #[test]
    fn scan_filters_and_rejects_bad_cursors() {
        let (s, _clock) = store(StoreBuilder::new());
        for k in ["word", "world", "wod", "other"] {
            s.set(k, 1, SetOptions::new()).unwrap();
        }
        let p = Pattern::new("wo$d").unwrap();
        assert_eq!(first_page(&s, Some(&p), 100), ["wod", "word", "world"]);
        assert!(matches!(
            s.scan(None, Some("nope"), 10),
            Err(Error::InvalidCursor { .. })
        ));
    }

    #[test]
    fn incr_errors_change_nothing() {
        let n = StoreBuilder::new().build::<i64>().unwrap();
        n.set("n", 5, SetOptions::new()).unwrap();
        assert_eq!(n.incr("n", -10).unwrap(), -5);
        n.set("top", i64::MAX, SetOptions::new()).unwrap();
        assert!(matches!(n.incr("top", 1), Err(Error::Overflow { .. })));
        assert_eq!(n.get("top"), Some(i64::MAX));

        let (s, _clock) = store(StoreBuilder::new());
        s.set("max", u64::MAX, SetOptions::new()).unwrap();
        // u64 does not hold integers for incr.
        assert!(matches!(s.incr("max", 1), Err(Error::NotAnInteger { .. })));
        assert!(matches!(s.incr("fresh", 1), Err(Error::IncrUnsupported)));
        assert!(!s.contains("fresh"));
    }

    #[test]
    fn bad_ttls_are_refused() {
        let (s, _clock) = store(StoreBuilder::new());
        for ttl in [Duration::ZERO, MAX_TTL + Duration::from_nanos(1)] {
            assert!(matches!(
                s.set("k", 1, SetOptions::new().ttl(ttl)),
                Err(Error::InvalidTtl { .. })
            ));
            assert!(matches!(s.expire("k", ttl), Err(Error::InvalidTtl { .. })));
        }
        assert!(!s.contains("k"));
    }
}
