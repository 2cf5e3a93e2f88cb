// cargo bench -p kv-benches --bench peers
//! Throughput of kvcore in each mode next to moka, quick_cache, lru and dashmap. In
//! the modes with TTLs kvcore runs twice: on its default `SystemClock` (`kvcore`) and
//! on a `TickingClock` (`kvcore-tick`).
//!
//! For each key-space size (100k and 1M keys) and mode, each store that supports the
//! mode is filled with the whole key space (a bounded store keeps the hot half), then
//! runs five operations on 1 and 2 threads:
//!
//! - `get-hit`: reads of present keys, Zipf-distributed;
//! - `get-miss`: reads of keys no store holds, Zipf-distributed;
//! - `insert`: writes of uniformly random keys of the key space (a replace in an
//!   unbounded store; in a bounded one, half of them create a key and evict one);
//! - `mixed-90-10` and `mixed-50-50`: reads and writes of Zipf-distributed keys.
//!
//! Benchmark ids are `SIZE/MODE/OP/STORE/THREADSt`, so a criterion filter picks a
//! slice: `cargo bench -p kv-benches --bench peers -- '100k/lru/'`.
//! `KV_BENCH_QUICK=1` runs the 100k size only, with shorter measurements.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

use common::{Peer, Visitor};
use criterion::{BenchmarkId, Criterion, Throughput};
use kv_benches::{
    Cache, Mode, Val, key, miss_key, prefill, quick, timed_threads, uniform_trace, zipf_trace,
};

/// Operations per thread in one criterion iteration.
const OPS: u64 = 1000;
/// Length of each pre-generated trace; threads cycle through theirs.
const TRACE: usize = 1 << 20;
const THREADS: [usize; 2] = [1, 2];
/// Written by every timed write, the same for every store.
const WRITTEN: Val = Val(*b"written-value-16");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    GetHit,
    GetMiss,
    Insert,
    Mixed9010,
    Mixed5050,
}

impl Op {
    /// In run order: reads first, so they see the store as it was filled.
    const ALL: [Op; 5] = [
        Op::GetHit,
        Op::GetMiss,
        Op::Insert,
        Op::Mixed9010,
        Op::Mixed5050,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::GetHit => "get-hit",
            Op::GetMiss => "get-miss",
            Op::Insert => "insert",
            Op::Mixed9010 => "mixed-90-10",
            Op::Mixed5050 => "mixed-50-50",
        }
    }
}

/// The keys and traces of one key-space size, shared by every store.
struct Workload {
    label: &'static str,
    keys: Vec<String>,
    misses: Vec<String>,
    /// Per thread: Zipf over the key space (mixed), over the miss keys, uniform over
    /// the key space (insert).
    zipf: Vec<Vec<u32>>,
    zipf_miss: Vec<Vec<u32>>,
    uniform: Vec<Vec<u32>>,
}

impl Workload {
    fn new(label: &'static str, n: usize) -> Workload {
        let per_thread = |f: &dyn Fn(u64) -> Vec<u32>| (0..2).map(|t| f(t as u64)).collect();
        Workload {
            label,
            keys: (0..n).map(key).collect(),
            misses: (0..n).map(miss_key).collect(),
            zipf: per_thread(&|t| zipf_trace(n, TRACE, 10 + t)),
            zipf_miss: per_thread(&|t| zipf_trace(n, TRACE, 20 + t)),
            uniform: per_thread(&|t| uniform_trace(n, TRACE, 30 + t)),
        }
    }
}

/// A filled store and the traces of its present keys.
struct Filled<C> {
    cache: C,
    /// Per thread: Zipf over the keys the store holds after filling, as key indexes.
    hits: Vec<Vec<u32>>,
}

fn fill<C: Cache>(make: &impl Fn() -> C, w: &Workload) -> Filled<C> {
    let cache = make();
    prefill(&cache, &w.keys);
    cache.settle();
    let present: Vec<u32> = (0..w.keys.len() as u32)
        .filter(|&i| cache.contains(&w.keys[i as usize]))
        .collect();
    assert!(!present.is_empty(), "a filled store holds keys");
    let hits = (0..2)
        .map(|t| {
            zipf_trace(present.len(), TRACE, 40 + t)
                .into_iter()
                .map(|r| present[r as usize])
                .collect()
        })
        .collect();
    Filled { cache, hits }
}

/// Runs `ops` operations of `op` on `cache` for thread `t`, from position `start` of
/// its traces.
fn run<C: Cache>(op: Op, cache: &Filled<C>, w: &Workload, t: usize, start: usize, ops: u64) {
    let c = &cache.cache;
    let mask = TRACE - 1;
    let mut pos = start & mask;
    let (keys, trace) = match op {
        Op::GetHit => (&w.keys, &cache.hits[t]),
        Op::GetMiss => (&w.misses, &w.zipf_miss[t]),
        Op::Insert => (&w.keys, &w.uniform[t]),
        Op::Mixed9010 | Op::Mixed5050 => (&w.keys, &w.zipf[t]),
    };
    // Which positions write: none, all, every tenth or every other one.
    let writes_every = match op {
        Op::GetHit | Op::GetMiss => 0,
        Op::Insert => 1,
        Op::Mixed9010 => 10,
        Op::Mixed5050 => 2,
    };
    for _ in 0..ops {
        let k = &keys[trace[pos] as usize];
        if writes_every != 0 && pos.is_multiple_of(writes_every) {
            c.set(k, WRITTEN);
        } else {
            black_box(c.get(k));
        }
        pos = (pos + 1) & mask;
    }
}

/// One store of the mode being measured, filled on its first measurement.
trait Runner {
    fn peer(&self) -> Peer;
    /// Fills the store unless it is filled.
    fn prepare(&self);
    /// Runs `iters` iterations of `op` on `threads` threads from position `start` of
    /// the traces, and returns the time they took.
    fn run(&self, op: Op, threads: usize, iters: u64, start: usize) -> Duration;
}

struct Lazy<'w, C, F> {
    peer: Peer,
    make: F,
    w: &'w Workload,
    filled: OnceCell<Filled<C>>,
}

impl<C: Cache, F: Fn() -> C> Runner for Lazy<'_, C, F> {
    fn peer(&self) -> Peer {
        self.peer
    }

    fn prepare(&self) {
        self.filled.get_or_init(|| fill(&self.make, self.w));
    }

    fn run(&self, op: Op, threads: usize, iters: u64, start: usize) -> Duration {
        let f = self.filled.get_or_init(|| fill(&self.make, self.w));
        timed_threads(threads, iters, |t, iters| {
            run(op, f, self.w, t, start, iters * OPS);
        })
    }
}

/// Collects the stores of one mode.
struct Stores<'w> {
    w: &'w Workload,
    runners: Vec<Box<dyn Runner + 'w>>,
}

impl<'w> Visitor for Stores<'w> {
    fn visit<C: Cache + 'static>(&mut self, peer: Peer, make: impl Fn() -> C + 'static) {
        self.runners.push(Box::new(Lazy {
            peer,
            make,
            w: self.w,
            filled: OnceCell::new(),
        }));
    }
}

/// Measures every operation of `mode` on every store that supports it. For each
/// operation and thread count the stores run one after another, so that the figures a
/// ratio compares are taken within seconds of each other: on a shared machine, how
/// much CPU a benchmark gets drifts over minutes.
fn bench_mode(c: &mut Criterion, w: &Workload, mode: Mode, n: usize) {
    let mut stores = Stores {
        w,
        runners: Vec::new(),
    };
    for peer in Peer::ALL.into_iter().filter(|p| p.supports(mode)) {
        common::visit(peer, mode, n, &mut stores);
    }
    for op in Op::ALL {
        let mut group = c.benchmark_group(format!("{}/{}/{}", w.label, mode.name(), op.name()));
        for threads in THREADS {
            group.throughput(Throughput::Elements(OPS * threads as u64));
            for store in &stores.runners {
                // Each sample continues where the last one stopped in the traces.
                let mut cursor = 0usize;
                let id = BenchmarkId::new(store.peer().name(), format!("{threads}t"));
                group.bench_function(id, |b| {
                    // Filled on first use, so that a filter that skips a store skips
                    // its filling; and here, not in `iter_custom`, whose wall time
                    // criterion's warm-up counts: a fill there ends the warm-up at
                    // once and leaves every sample a single iteration.
                    store.prepare();
                    b.iter_custom(|iters| {
                        let start = cursor;
                        cursor = cursor.wrapping_add((iters * OPS) as usize);
                        store.run(op, threads, iters, start)
                    });
                });
            }
        }
        group.finish();
    }
}

fn main() {
    let quick = quick();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if quick { 200 } else { 500 }))
        .measurement_time(Duration::from_millis(if quick { 500 } else { 1500 }))
        .configure_from_args();
    let sizes: &[(&str, usize)] = if quick {
        &[("100k", 100_000)]
    } else {
        &[("100k", 100_000), ("1M", 1_000_000)]
    };
    for &(label, n) in sizes {
        let w = Workload::new(label, n);
        for mode in Mode::ALL {
            bench_mode(&mut c, &w, mode, n);
        }
    }
    c.final_summary();
}
