// cargo bench -p kv-benches --bench hit_ratio
//! Hit ratio of kvcore's LRU mode on a Zipf trace at 1%, 10% and 50% capacity, next
//! to moka (its default TinyLFU policy and its LRU policy), quick_cache and the lru
//! crate, which as an exact LRU must score exactly what kvcore scores.
//!
//! Each store serves the trace as a cache does: a read, and on a miss a write of the
//! key. The first half of the trace warms the store; the second half is counted.
//! Prints a Markdown table.

use kv_benches::{Cache, Mode, Val, ZIPF_S, key, quick, zipf_trace};

mod common;

use common::{Moka, Peer, Visitor};

/// Runs the cache-aside loop over `trace` and returns the hit ratio of its second half.
fn hit_ratio(cache: &impl Cache, keys: &[String], trace: &[u32]) -> f64 {
    let half = trace.len() / 2;
    let mut hits = 0u64;
    for (n, &i) in trace.iter().enumerate() {
        if n == half {
            cache.settle();
            hits = 0;
        }
        let k = &keys[i as usize];
        if cache.get(k).is_some() {
            hits += 1;
        } else {
            cache.set(k, Val::of(u64::from(i)));
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
}
