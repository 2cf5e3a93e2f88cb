// cargo bench -p kv-benches --bench persist
//! Persistence costs: write throughput under each fsync policy next to memory only,
//! `always` as concurrent writers grow (group commit), and snapshot and recovery time
//! for a million keys.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{SetOptions, Store, StoreBuilder};

/// Values as kvserver stores them: short JSON text.
fn value(i: u64) -> Arc<str> {
    Arc::from(format!("{{\"n\":{i},\"pad\":\"0123456789abcdef\"}}"))
}

/// Runs `writers` threads that together do `total` sets of fresh keys.
fn write(store: &(dyn Store<Arc<str>> + Sync), writers: u64, total: u64, base: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            s.spawn(move || {
                for i in (w..total).step_by(writers as usize) {
                    let key = format!("key:{}", base + i);
                    black_box(store.set(&key, value(i), SetOptions::new()).unwrap());
                }
            });
        }
    });
    started.elapsed()
}

fn options(fsync: Fsync) -> PersistOptions {
    // No compaction during the measurement: it is measured on its own below.
    PersistOptions::default()
        .fsync(fsync)
        .compact_min_bytes(u64::MAX)
}

fn throughput(c: &mut Criterion) {
    const BATCH: u64 = 20_000;
    let mut group = c.benchmark_group("persist/write");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    for policy in ["memory", "no", "everysec"] {
        let dir = tempfile::tempdir().unwrap();
        let store: Box<dyn Store<Arc<str>> + Sync> = match policy {
            "memory" => Box::new(StoreBuilder::new().build().unwrap()),
            p => Box::new(
                StoreBuilder::new()
                    .open(dir.path(), options(p.parse().unwrap()))
                    .unwrap(),
            ),
        };
        let mut base = 0;
        group.bench_function(BenchmarkId::new("1 writer", policy), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        base += BATCH;
                        write(&*store, 1, BATCH, base)
                    })
                    .sum()
            });
        });
    }
    group.finish();

    const ALWAYS: u64 = 400;
    let mut group = c.benchmark_group("persist/always");
    group.throughput(Throughput::Elements(ALWAYS));
    group.sample_size(10);
    for writers in [1, 2, 4, 8, 16] {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreBuilder::new()
            .open::<Arc<str>>(dir.path(), options(Fsync::Always))
            .unwrap();
        let mut base = 0;
        group.bench_function(BenchmarkId::new("writers", writers), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        base += ALWAYS;
                        write(&store, writers, ALWAYS, base)
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

fn million(c: &mut Criterion) {
    const KEYS: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = StoreBuilder::new()
            .open::<Arc<str>>(dir.path(), options(Fsync::No))
            .unwrap();
        write(&store, 2, KEYS, 0);
        store.compact().unwrap();
    }
    let mut group = c.benchmark_group("persist/1M keys");
    group.sample_size(10);
    group.bench_function("recovery", |b| {
        b.iter(|| {
            let store = StoreBuilder::new()
                .open::<Arc<str>>(dir.path(), options(Fsync::No))
                .unwrap();
            assert_eq!(store.len(), KEYS as usize);
        });
    });
    let store = StoreBuilder::new()
        .open::<Arc<str>>(dir.path(), options(Fsync::No))
        .unwrap();
    group.bench_function("snapshot", |b| b.iter(|| store.compact().unwrap()));
    group.finish();
}

criterion_group!(benches, throughput, million);
criterion_main!(benches);
