//! Helpers every suite of the integration binary shares: a deterministic PRNG,
//! directory copies, and a store's contents.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;

use kvcore::{Store, Value};

/// A small deterministic PRNG (xorshift64*), so runs are reproducible and need no
/// extra dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Copies the files directly in `from` into `to` (created if need be).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every live pair, through a paged scan (a scan counts as a read).
pub fn dump<V: Value>(store: &dyn Store<V>) -> BTreeMap<String, V> {
    let (mut all, mut cursor) = (BTreeMap::new(), None::<String>);
    loop {
        let page = store.scan(None, cursor.as_deref(), 97).unwrap();
        for (k, v) in page.items {
            assert!(all.insert(k.clone(), v).is_none(), "{k} scanned twice");
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// Runs `work(t)` for t in 0..n on threads that start together, while each watcher
/// runs in a loop on a thread of its own until the workers are done. Returns what
/// the workers returned, in order.
pub fn race<R: Send>(n: usize, watchers: &[&Watcher], work: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let (done, start) = (AtomicBool::new(false), Barrier::new(n + watchers.len()));
    let (work, done, start) = (&work, &done, &start);
    thread::scope(|s| {
        for watch in watchers {
            s.spawn(move || {
                start.wait();
                while !done.load(SeqCst) {
                    watch();
                    thread::yield_now();
                }
            });
        }
        let workers: Vec<_> = (0..n)
            .map(|t| s.spawn(move || (start.wait(), work(t)).1))
            .collect();
        // Join them all before a panic is passed on, so that the watchers stop.
        let results: Vec<_> = workers.into_iter().map(|h| h.join()).collect();
        done.store(true, SeqCst);
        results.into_iter().map(|r| r.unwrap()).collect()
    })
}

pub type Watcher<'a> = dyn Fn() + Sync + 'a;
