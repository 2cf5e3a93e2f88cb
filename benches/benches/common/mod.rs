//! The peers behind the [`Cache`] trait, each configured as close to a [`Mode`] as it
//! allows, and the one place that decides which peer takes part in which mode.
//!
//! Every peer hashes with the same function as kvcore (hashbrown's default, foldhash)
//! so that hashing cost is not what tells the stores apart.

// Each bench target uses part of this module.
#![allow(dead_code)]

pub mod workload;

use std::convert::Infallible;
use std::num::NonZeroUsize;

use kv_benches::{Cache, Mode, Val};
use kvcore::TickingClock;
use parking_lot::Mutex;

type Hasher = hashbrown::DefaultHashBuilder;

/// A store under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Kvcore,
    /// kvcore with a removal listener that does nothing: what listening costs.
    KvcoreListener,
    /// kvcore on a [`TickingClock`], in the modes with TTLs.
    KvcoreTick,
    Moka,
    QuickCache,
    Lru,
    DashMap,
}

impl Peer {
    /// Every store, in report order.
    pub const ALL: [Peer; 7] = [
        Peer::Kvcore,
        Peer::KvcoreListener,
        Peer::KvcoreTick,
        Peer::Moka,
        Peer::QuickCache,
        Peer::Lru,
        Peer::DashMap,
    ];

    /// The store's name in benchmark ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Kvcore => "kvcore",
            Peer::KvcoreListener => "kvcore+listener",
            Peer::KvcoreTick => "kvcore-tick",
            Peer::Moka => "moka",
            Peer::QuickCache => "quick_cache",
            Peer::Lru => "lru",
            Peer::DashMap => "dashmap",
        }
    }

    /// Whether the store can be configured for `mode`. quick_cache and lru have no
    /// TTLs, and lru no weights; dashmap has neither TTLs nor a bound and is measured
    /// once, unbounded, as the ceiling every mode is compared with. kvcore's clock
    /// matters only where keys have deadlines.
    pub fn supports(self, mode: Mode) -> bool {
        match self {
            Peer::Kvcore | Peer::KvcoreListener | Peer::Moka => true,
            Peer::KvcoreTick => mode.ttl().is_some(),
            Peer::QuickCache => matches!(mode, Mode::Plain | Mode::Lru | Mode::Weight),
            Peer::Lru => matches!(mode, Mode::Plain | Mode::Lru),
            Peer::DashMap => mode == Mode::Plain,
        }
    }
}

/// Receives a constructor of one store, with its concrete type, so that benchmark
/// loops are compiled for each store and no measurement pays a virtual call.
pub trait Visitor {
    fn visit<C: Cache + 'static>(&mut self, peer: Peer, make: impl Fn() -> C + 'static);
}

/// Hands `visitor` a constructor of an empty `peer` configured for `mode` over a key
/// space of `n` keys.
pub fn visit(peer: Peer, mode: Mode, n: usize, visitor: &mut impl Visitor) {
    match peer {
        Peer::Kvcore => visitor.visit(peer, move || mode.kvcore(n)),
        Peer::KvcoreListener => visitor.visit(peer, move || {
            let builder = mode.kvcore_builder(n);
            let store = builder.removal_listener(|_: &str, _: Val, _| {}).build();
            store.expect("a valid configuration")
        }),
        Peer::KvcoreTick => visitor.visit(peer, move || {
            let clock = TickingClock::new().expect("the clock's thread starts");
            let store = mode.kvcore_builder(n).clock(clock).build();
            store.expect("a valid configuration")
        }),
        Peer::Moka => visitor.visit(peer, move || moka(mode, n)),
        // quick_cache is always bounded; in the unbounded mode it gets room for
        // twice the key space, so that uneven shards never make it evict.
        Peer::QuickCache => match mode.max_weight(n) {
            Some(max) => visitor.visit(peer, move || {
                let cache = quick_cache::sync::Cache::with_weighter(n / 2, max, ByWeight);
                QuickCache(cache)
            }),
            None => visitor.visit(peer, move || {
                let cap = mode.capacity(n).unwrap_or(2 * n);
                QuickCache(quick_cache::sync::Cache::new(cap))
            }),
        },
        Peer::Lru => visitor.visit(peer, move || {
            let cache = match mode.capacity(n).and_then(NonZeroUsize::new) {
                Some(cap) => lru::LruCache::with_hasher(cap, Hasher::default()),
                None => lru::LruCache::unbounded_with_hasher(Hasher::default()),
            };
            Lru(Mutex::new(cache))
        }),
        Peer::DashMap => visitor.visit(peer, move || {
            DashMap(dashmap::DashMap::with_hasher(Hasher::default()))
        }),
    }
}

/// moka with `max_capacity` and an LRU eviction policy for the bounded modes (its
/// default, TinyLFU, also refuses to admit new keys), `time_to_live` for fixed TTLs
/// and `time_to_idle` for sliding ones.
fn moka(mode: Mode, n: usize) -> Moka {
    let mut b = moka::sync::Cache::builder();
    if let Some(cap) = mode.capacity(n) {
        b = b
            .max_capacity(cap as u64)
            .eviction_policy(moka::policy::EvictionPolicy::lru());
    }
    if let Some(max) = mode.max_weight(n) {
        b = b
            .max_capacity(max)
            .weigher(|k: &String, v: &Val| weight(k, v) as u32)
            .eviction_policy(moka::policy::EvictionPolicy::lru());
    }
    if let Some(ttl) = mode.ttl() {
        b = match mode {
            Mode::Sliding => b.time_to_idle(ttl),
            _ => b.time_to_live(ttl),
        };
    }
    Moka(b.build_with_hasher(Hasher::default()))
}

/// moka's `sync::Cache`, however configured.
pub struct Moka(pub moka::sync::Cache<String, Val, Hasher>);

impl Cache for Moka {
    fn get(&self, key: &str) -> Option<Val> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: Val) {
        self.0.insert(key.to_owned(), value);
    }
    fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val {
        self.0.get_with_by_ref(key, init)
    }
    fn remove(&self, key: &str) {
        self.0.invalidate(key);
    }
}

/// An entry's weight as kvcore's default weigher counts it: key and value bytes
/// plus kvcore's per-entry overhead. Every weighted peer weighs the same.
pub fn weight(key: &str, _value: &Val) -> u64 {
    (key.len() + size_of::<Val>()) as u64 + u64::from(kvcore::weight::ENTRY_OVERHEAD)
}

/// quick_cache's weigher: [`weight`].
#[derive(Clone, Copy, Debug)]
pub struct ByWeight;

impl quick_cache::Weighter<String, Val> for ByWeight {
    fn weight(&self, key: &String, value: &Val) -> u64 {
        weight(key, value)
    }
}

/// quick_cache, counting entries or, with [`ByWeight`], weighing them by [`weight`].
pub struct QuickCache<W = quick_cache::UnitWeighter>(quick_cache::sync::Cache<String, Val, W>);

impl<W: quick_cache::Weighter<String, Val> + Clone + Send + Sync> Cache for QuickCache<W> {
    fn get(&self, key: &str) -> Option<Val> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: Val) {
        self.0.insert(key.to_owned(), value);
    }
    fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val {
        let loaded = self
            .0
            .get_or_insert_with(key, || Ok::<_, Infallible>(init()));
        loaded.unwrap_or_else(|never| match never {})
    }
    fn remove(&self, key: &str) {
        self.0.remove(key);
    }
}

/// `lru::LruCache` needs `&mut` even to read, so every operation takes the mutex.
pub struct Lru(Mutex<lru::LruCache<String, Val, Hasher>>);

impl Cache for Lru {
    fn get(&self, key: &str) -> Option<Val> {
        self.0.lock().get(key).copied()
    }
    fn set(&self, key: &str, value: Val) {
        self.0.lock().put(key.to_owned(), value);
    }
    fn contains(&self, key: &str) -> bool {
        self.0.lock().contains(key)
    }
    /// Under the one mutex: no two loads of a key, nor of any two keys, run at once.
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val {
        let mut cache = self.0.lock();
        if let Some(v) = cache.get(key) {
            return *v;
        }
        let v = init();
        cache.put(key.to_owned(), v);
        v
    }
    fn remove(&self, key: &str) {
        self.0.lock().pop(key);
    }
}

pub struct DashMap(dashmap::DashMap<String, Val, Hasher>);

impl Cache for DashMap {
    fn get(&self, key: &str) -> Option<Val> {
        self.0.get(key).map(|v| *v)
    }
    fn set(&self, key: &str, value: Val) {
        self.0.insert(key.to_owned(), value);
    }
    fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    /// dashmap's entry API: the shard's write lock is held while `init` runs.
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val {
        if let Some(v) = self.0.get(key) {
            return *v;
        }
        *self.0.entry(key.to_owned()).or_insert_with(init)
    }
    fn remove(&self, key: &str) {
        self.0.remove(key);
    }
}
