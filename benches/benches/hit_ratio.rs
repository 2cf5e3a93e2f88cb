// cargo bench -p kv-benches --bench hit_ratio
//! Hit ratios on a Zipf trace, in two tables:
//!
//! - by count: kvcore's LRU mode at 1%, 10% and 50% capacity, next to moka (its
//!   default TinyLFU policy and its LRU policy), quick_cache and the lru crate, which
//!   as an exact LRU must score exactly what kvcore scores;
//! - by bytes: values of sizes from 16 bytes to 2 KiB (the size fixed by the key),
//!   every store bounded to the same byte budget (1%, 10% and 50% of what the whole
//!   key space weighs), each entry weighing its key, its value and 64 bytes: kvcore
//!   with `max_weight` and its default weigher, moka with a weigher (LRU and TinyLFU),
//!   quick_cache with a `Weighter`.
//!
//! Each store serves the trace as a cache does: a read, and on a miss a write of the
//! key. The first half of the trace warms the store; the second half is counted.
//! Prints Markdown tables.

use std::sync::Arc;

use kv_benches::{Cache, Mode, Val, ZIPF_S, key, quick, zipf_trace};
use kvcore::weight::ENTRY_OVERHEAD;
use kvcore::{MemoryStore, SetOptions, Store, StoreBuilder};

mod common;

use common::{Moka, Peer, Visitor};

/// Runs the cache-aside loop over `trace` and returns the hit ratio of its second half.
fn hit_ratio(cache: &impl Cache, keys: &[String], trace: &[u32]) -> f64 {
    second_half_hits(
        trace,
        || cache.settle(),
        |i| {
            let k = &keys[i as usize];
            let hit = cache.get(k).is_some();
            if !hit {
                cache.set(k, Val::of(u64::from(i)));
            }
            hit
        },
    )
}

/// The share of hits over the second half of `trace`: `look` reads key number `i`
/// and, on a miss, writes it (returning whether it hit); `settle` runs between the
/// halves, so that the first half only warms the cache.
fn second_half_hits(trace: &[u32], settle: impl Fn(), mut look: impl FnMut(u32) -> bool) -> f64 {
    let half = trace.len() / 2;
    let mut hits = 0u64;
    for (n, &i) in trace.iter().enumerate() {
        if n == half {
            settle();
            hits = 0;
        }
        if look(i) {
            hits += 1;
        }
    }
    hits as f64 / (trace.len() - half) as f64
}

struct Measure<'a> {
    keys: &'a [String],
    trace: &'a [u32],
    ratio: f64,
}

impl Visitor for Measure<'_> {
    fn visit<C: Cache>(&mut self, _peer: Peer, make: impl Fn() -> C) {
        self.ratio = hit_ratio(&make(), self.keys, self.trace);
    }
}

/// A store of blobs, for the byte-budget table.
trait Blobs {
    fn get(&self, key: &str) -> bool;
    fn set(&self, key: &str, value: Blob);
    fn settle(&self) {}
}

type Blob = Arc<[u8]>;

/// What every store of the byte-budget table counts an entry as.
fn blob_weight(key: &str, value: &Blob) -> u64 {
    (key.len() + value.len()) as u64 + u64::from(ENTRY_OVERHEAD)
}

impl Blobs for MemoryStore<Blob> {
    fn get(&self, key: &str) -> bool {
        Store::get(self, key).is_some()
    }
    fn set(&self, key: &str, value: Blob) {
        Store::set(self, key, value, SetOptions::new()).expect("every blob fits the budget");
    }
}

struct MokaBlobs(moka::sync::Cache<String, Blob>);

impl Blobs for MokaBlobs {
    fn get(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
    fn set(&self, key: &str, value: Blob) {
        self.0.insert(key.to_owned(), value);
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
}

#[derive(Clone)]
struct BlobWeighter;

impl quick_cache::Weighter<String, Blob> for BlobWeighter {
    fn weight(&self, key: &String, value: &Blob) -> u64 {
        blob_weight(key, value)
    }
}

struct QuickBlobs(quick_cache::sync::Cache<String, Blob, BlobWeighter>);

impl Blobs for QuickBlobs {
    fn get(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
    fn set(&self, key: &str, value: Blob) {
        self.0.insert(key.to_owned(), value);
    }
}

/// [`hit_ratio`] for blobs: on a miss the key's blob (one of `sizes`) is written.
fn blob_hit_ratio(cache: &impl Blobs, keys: &[String], sizes: &[Blob], trace: &[u32]) -> f64 {
    second_half_hits(
        trace,
        || cache.settle(),
        |i| {
            let k = &keys[i as usize];
            let hit = cache.get(k);
            if !hit {
                cache.set(k, Arc::clone(&sizes[size_class(i)]));
            }
            hit
        },
    )
}

/// The size class (0 to 7: 16 bytes to 2 KiB) of key number `i`: a hash of it, so
/// that sizes do not follow popularity.
fn size_class(i: u32) -> usize {
    let h = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 61) as usize
}

fn by_bytes(keys: &[String], trace: &[u32]) {
    let sizes: Vec<Blob> = (0..8).map(|c| vec![0u8; 16 << c].into()).collect();
    let total: u64 = (0..keys.len() as u32)
        .map(|i| blob_weight(&keys[i as usize], &sizes[size_class(i)]))
        .sum();
    println!(
        "\nHit ratio at equal byte budgets, values of 16 B to 2 KiB, {} bytes in all\n",
        total
    );
    println!("| budget | kvcore LRU | moka LRU | moka TinyLFU | quick_cache |");
    println!("|---|---|---|---|---|");
    for percent in [1, 10, 50] {
        let budget = total * percent / 100;
        let kvcore = StoreBuilder::new()
            .max_weight(budget)
            .build::<Blob>()
            .expect("a valid configuration");
        let moka = |lru: bool| {
            let mut b = moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|k: &String, v: &Blob| blob_weight(k, v) as u32);
            if lru {
                b = b.eviction_policy(moka::policy::EvictionPolicy::lru());
            }
            MokaBlobs(b.build())
        };
        let items = (budget / (total / keys.len() as u64)).max(1) as usize;
        let quick = QuickBlobs(quick_cache::sync::Cache::with_weighter(
            items,
            budget,
            BlobWeighter,
        ));
        let row = [
            blob_hit_ratio(&kvcore, keys, &sizes, trace),
            blob_hit_ratio(&moka(true), keys, &sizes, trace),
            blob_hit_ratio(&moka(false), keys, &sizes, trace),
            blob_hit_ratio(&quick, keys, &sizes, trace),
        ];
        let cells: Vec<String> = row.iter().map(|r| format!("{:.2}%", r * 100.0)).collect();
        println!("| {percent}% ({budget} B) | {} |", cells.join(" | "));
    }
}

fn main() {
    // A bench target is also run by `cargo test --benches`; a plain run measures.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: usize = if quick() { 100_000 } else { 1_000_000 };
    let keys: Vec<String> = (0..n).map(key).collect();
    let trace = zipf_trace(n, 10 * n, 7);
    println!(
        "Hit ratio, Zipf s = {ZIPF_S} over {n} keys, {} requests (second half counted)\n",
        trace.len()
    );
    println!("| capacity | kvcore LRU | lru (exact LRU) | moka LRU | moka TinyLFU | quick_cache |");
    println!("|---|---|---|---|---|---|");
    for percent in [1, 10, 50] {
        let cap = n * percent / 100;
        // Mode::Lru bounds a store at half its key space.
        let mut m = Measure {
            keys: &keys,
            trace: &trace,
            ratio: 0.0,
        };
        let mut row = Vec::new();
        for peer in [Peer::Kvcore, Peer::Lru, Peer::Moka] {
            common::visit(peer, Mode::Lru, 2 * cap, &mut m);
            row.push(m.ratio);
        }
        // moka with its default policy, TinyLFU, which the shared configurations
        // leave out.
        let tiny_lfu = Moka(
            moka::sync::Cache::builder()
                .max_capacity(cap as u64)
                .build_with_hasher(Default::default()),
        );
        row.push(hit_ratio(&tiny_lfu, &keys, &trace));
        common::visit(Peer::QuickCache, Mode::Lru, 2 * cap, &mut m);
        row.push(m.ratio);
        let cells: Vec<String> = row.iter().map(|r| format!("{:.2}%", r * 100.0)).collect();
        println!("| {percent}% ({cap}) | {} |", cells.join(" | "));
    }
    by_bytes(&keys, &trace);
}
