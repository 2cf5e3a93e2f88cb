//! The workload of the `peers` and `targets` benches: one key space and its traces,
//! shared by every store, and the stores of one mode behind [`Runner`], each filled on
//! first use.

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

use kv_benches::{
    Cache, Mode, Val, key, miss_key, prefill, timed_threads, uniform_trace, zipf_trace,
};

use super::{Peer, Visitor};

/// Operations per thread in one criterion iteration.
pub const OPS: u64 = 1000;
/// Length of each pre-generated trace; threads cycle through theirs.
pub const TRACE: usize = 1 << 20;
/// The most threads a measurement runs on; each has traces of its own.
const MAX_THREADS: usize = 2;
pub const THREADS: [usize; 2] = [1, MAX_THREADS];
/// Written by every timed write, the same for every store.
pub const WRITTEN: Val = Val(*b"written-value-16");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    GetHit,
    GetMiss,
    Insert,
    Mixed9010,
    Mixed5050,
    /// The store's get-or-load call: 9 in 10 on present keys (Zipf), 1 in 10 on a
    /// key it does not hold (Zipf over the miss keys), which is loaded and then
    /// removed, so that it misses again next time. Not in [`Op::ALL`]: the `targets`
    /// bench measures it.
    GetWith,
}

impl Op {
    /// In run order: reads first, so they see the store as it was filled.
    pub const ALL: [Op; 5] = [
        Op::GetHit,
        Op::GetMiss,
        Op::Insert,
        Op::Mixed9010,
        Op::Mixed5050,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::GetHit => "get-hit",
            Op::GetMiss => "get-miss",
            Op::Insert => "insert",
            Op::Mixed9010 => "mixed-90-10",
            Op::Mixed5050 => "mixed-50-50",
            Op::GetWith => "get-with",
        }
    }
}

/// The keys and traces of one key-space size, shared by every store.
pub struct Workload {
    pub label: &'static str,
    keys: Vec<String>,
    misses: Vec<String>,
    /// Per thread: Zipf over the key space (mixed), over the miss keys, uniform over
    /// the key space (insert).
    zipf: Vec<Vec<u32>>,
    zipf_miss: Vec<Vec<u32>>,
    uniform: Vec<Vec<u32>>,
}

impl Workload {
    pub fn new(label: &'static str, n: usize) -> Workload {
        let per_thread =
            |f: &dyn Fn(u64) -> Vec<u32>| (0..MAX_THREADS).map(|t| f(t as u64)).collect();
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
    let hits = (0..MAX_THREADS as u64)
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
    if op == Op::GetWith {
        for _ in 0..ops {
            if pos.is_multiple_of(10) {
                let k = &w.misses[w.zipf_miss[t][pos] as usize];
                black_box(c.get_with(k, || WRITTEN));
                c.remove(k);
            } else {
                let k = &w.keys[cache.hits[t][pos] as usize];
                black_box(c.get_with(k, || WRITTEN));
            }
            pos = (pos + 1) & mask;
        }
        return;
    }
    let (keys, trace) = match op {
        Op::GetHit => (&w.keys, &cache.hits[t]),
        Op::GetMiss => (&w.misses, &w.zipf_miss[t]),
        Op::Insert => (&w.keys, &w.uniform[t]),
        Op::Mixed9010 | Op::Mixed5050 | Op::GetWith => (&w.keys, &w.zipf[t]),
    };
    // Which positions write: none, all, every tenth or every other one.
    let writes_every = match op {
        Op::GetHit | Op::GetMiss => 0,
        Op::Insert => 1,
        Op::Mixed9010 => 10,
        Op::Mixed5050 => 2,
        Op::GetWith => unreachable!("get-with runs above"),
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
pub trait Runner {
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

/// The stores of `peers`, each configured for `mode` over `w`'s key space, in the
/// order given; none is filled until it is first used.
pub fn stores<'w>(w: &'w Workload, mode: Mode, peers: &[Peer]) -> Vec<Box<dyn Runner + 'w>> {
    let mut stores = Stores {
        w,
        runners: Vec::new(),
    };
    for &peer in peers {
        super::visit(peer, mode, w.keys.len(), &mut stores);
    }
    stores.runners
}
