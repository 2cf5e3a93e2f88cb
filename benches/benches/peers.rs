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

use std::time::Duration;

use common::Peer;
use common::workload::{self, OPS, Op, THREADS, Workload};
use criterion::{BenchmarkId, Criterion, Throughput};
use kv_benches::{Mode, quick};

/// Measures every operation of `mode` on every store that supports it. For each
/// operation and thread count the stores run one after another, so that the figures a
/// ratio compares are taken within seconds of each other: on a shared machine, how
/// much CPU a benchmark gets drifts over minutes.
fn bench_mode(c: &mut Criterion, w: &Workload, mode: Mode) {
    // The listener's cost is the `targets` bench's: here, the stores themselves.
    let peers: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| p.supports(mode) && *p != Peer::KvcoreListener)
        .collect();
    let stores = workload::stores(w, mode, &peers);
    for op in Op::ALL {
        let mut group = c.benchmark_group(format!("{}/{}/{}", w.label, mode.name(), op.name()));
        for threads in THREADS {
            group.throughput(Throughput::Elements(OPS * threads as u64));
            for store in &stores {
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
            bench_mode(&mut c, &w, mode);
        }
    }
    c.final_summary();
}
