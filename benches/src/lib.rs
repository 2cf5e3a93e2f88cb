//! Workloads shared by the bench targets in `benches/benches/`.
//!
//! Every store is measured with the same keys (`String`, `key:00000042`), the same
//! values ([`Val`], 16 bytes held inline) and the same pre-generated index traces, so
//! that the only thing that differs between two measurements is the store. The peers
//! are dev-dependencies of the bench targets; this library knows only kvcore and the
//! [`Cache`] trait the targets implement for each peer.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use kvcore::{MemoryStore, SetOptions, Store, StoreBuilder, StoreExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Uniform, Zipf};

/// The Zipf exponent of every skewed trace (YCSB's default).
pub const ZIPF_S: f64 = 0.99;

/// The TTL of the TTL modes: long enough that nothing expires while a benchmark runs,
/// so what is measured is the bookkeeping a TTL costs, not expiry itself.
pub const TTL: Duration = Duration::from_secs(3600);

/// The value every store holds: 16 bytes inline, so a clone is a copy and no
/// measurement includes a reference count shared between threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Val(pub [u8; 16]);

impl Val {
    /// The value stored under key number `i`: `i` as 16 decimal digits.
    pub fn of(i: u64) -> Val {
        let mut bytes = [b'0'; 16];
        let mut n = i;
        for b in bytes.iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
        Val(bytes)
    }
}

impl kvcore::Value for Val {}

/// Key number `i` of the key space.
pub fn key(i: usize) -> String {
    format!("key:{i:08}")
}

/// A key that no store ever holds.
pub fn miss_key(i: usize) -> String {
    format!("miss:{i:08}")
}

/// The raw bytes of the first `n` keys and their values: what a store must hold at
/// the least.
pub fn raw_bytes(n: usize) -> usize {
    (0..n).map(|i| key(i).len() + size_of::<Val>()).sum()
}

/// The operations every store under test offers.
pub trait Cache: Send + Sync {
    /// The value of `key`, counting as a use where the store tracks use.
    fn get(&self, key: &str) -> Option<Val>;
    /// Stores `value` under `key`, creating or replacing it.
    fn set(&self, key: &str, value: Val);
    /// Whether `key` is present, without counting as a use.
    fn contains(&self, key: &str) -> bool;
    /// Finishes maintenance the store defers (moka's admission and eviction), so that
    /// what is measured next starts from a settled store.
    fn settle(&self) {}
    /// The value of `key`, or `init()`, stored: the store's own get-or-load call, with
    /// single flight where the store has it (kvcore `get_with`, moka
    /// `get_with_by_ref`, quick_cache `get_or_insert_with`).
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val;
    /// Removes `key`.
    fn remove(&self, key: &str);
}

impl Cache for MemoryStore<Val> {
    fn get(&self, key: &str) -> Option<Val> {
        Store::get(self, key)
    }
    fn set(&self, key: &str, value: Val) {
        Store::set(self, key, value, SetOptions::new()).expect("a plain set never fails");
    }
    fn contains(&self, key: &str) -> bool {
        Store::contains(self, key)
    }
    fn get_with(&self, key: &str, init: impl FnOnce() -> Val) -> Val {
        StoreExt::get_with(self, key, init).expect("a plain load never fails")
    }
    fn remove(&self, key: &str) {
        Store::delete(self, key).expect("a delete in memory never fails");
    }
}

/// The store configurations compared. Each peer is configured as close to the mode
/// as it allows; a peer that cannot express a mode is left out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unbounded, no TTL.
    Plain,
    /// Every key lives [`TTL`] after its last write.
    Ttl,
    /// Every key lives [`TTL`] after its last read or write.
    Sliding,
    /// At most half the key space, least recently used evicted.
    Lru,
    /// [`Mode::Lru`] and [`Mode::Ttl`] together.
    LruTtl,
    /// At most half the key space's weight in bytes (key, value and per-entry
    /// overhead, as kvcore's default weight counts them), least recently used
    /// evicted. Not in [`Mode::ALL`]: the `targets` bench measures it.
    Weight,
}

/// The weight of every entry of the benches' key spaces: a 12-byte key, a 16-byte
/// value and kvcore's per-entry overhead.
pub fn entry_weight() -> u64 {
    u64::from(kvcore::weight::default_weight(&key(0), &Val::of(0)))
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 5] = [
        Mode::Plain,
        Mode::Ttl,
        Mode::Sliding,
        Mode::Lru,
        Mode::LruTtl,
    ];

    /// The mode's name in benchmark ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Ttl => "ttl",
            Mode::Sliding => "sliding",
            Mode::Lru => "lru",
            Mode::LruTtl => "lru+ttl",
            Mode::Weight => "weight",
        }
    }

    /// The weight bound of [`Mode::Weight`] over a key space of `n` keys: half of it.
    pub fn max_weight(self, n: usize) -> Option<u64> {
        (self == Mode::Weight).then(|| (n / 2) as u64 * entry_weight())
    }

    /// The capacity of a bounded mode over a key space of `n` keys: half of it, so
    /// that writes of cold keys evict and reads of them miss.
    pub fn capacity(self, n: usize) -> Option<usize> {
        matches!(self, Mode::Lru | Mode::LruTtl).then_some(n / 2)
    }

    /// The TTL the mode gives every key, if any.
    pub fn ttl(self) -> Option<Duration> {
        matches!(self, Mode::Ttl | Mode::Sliding | Mode::LruTtl).then_some(TTL)
    }

    /// An empty kvcore store in this mode for a key space of `n` keys.
    pub fn kvcore(self, n: usize) -> MemoryStore<Val> {
        self.kvcore_builder(n)
            .build()
            .expect("a valid configuration")
    }

    /// A builder of [`kvcore`](Self::kvcore)'s store, to change before building.
    pub fn kvcore_builder(self, n: usize) -> StoreBuilder {
        let mut b = StoreBuilder::new();
        if let Some(ttl) = self.ttl() {
            b = b.default_ttl(ttl).sliding(self == Mode::Sliding);
        }
        if let Some(cap) = self.capacity(n) {
            b = b.capacity(cap);
        }
        if let Some(max) = self.max_weight(n) {
            b = b.max_weight(max);
        }
        b
    }
}

/// Fills `cache` with keys `n-1` down to `0`, so that where a bounded store keeps
/// only part of them it keeps the low-numbered ones: the hot keys of the Zipf traces.
pub fn prefill(cache: &impl Cache, keys: &[String]) {
    for (i, k) in keys.iter().enumerate().rev() {
        cache.set(k, Val::of(i as u64));
    }
}

/// `len` indexes into `0..n`, Zipf-distributed: index 0 is the most frequent.
pub fn zipf_trace(n: usize, len: usize, seed: u64) -> Vec<u32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let zipf = Zipf::new(n as f64, ZIPF_S).expect("n >= 1 and s >= 0");
    (0..len)
        .map(|_| (zipf.sample(&mut rng) as usize - 1).min(n - 1) as u32)
        .collect()
}

/// `len` indexes into `0..n`, uniformly distributed.
pub fn uniform_trace(n: usize, len: usize, seed: u64) -> Vec<u32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let uniform = Uniform::new(0, n as u32).expect("n >= 1");
    (0..len).map(|_| uniform.sample(&mut rng)).collect()
}

/// Runs `work(thread, iters)` on `threads` threads started together and returns the
/// time from the first one's start to the last one's end. Each thread reads the clock
/// itself: on 2 cores a coordinating thread may not get the CPU back until the work
/// is done, and then its own readings would miss most of it.
pub fn timed_threads(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    work(t, iters);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    end - start
}

/// Whether the quick mode (`KV_BENCH_QUICK=1`) is on: fewer sizes, shorter runs.
pub fn quick() -> bool {
    std::env::var("KV_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}
