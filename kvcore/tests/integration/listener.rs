//! Removal listeners: every cause, once each; nothing from recovery; the listener
//! runs with no lock held (it may use the store); a panicking listener is counted and
//! loses nothing; exactly once under racing writers that evict and expire.
//!
//! The model test (`model::`) checks the listener's log against the model's removals
//! in every mode; these are the cases it cannot reach.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvcore::persist::PersistOptions;
use kvcore::{Compute, Error, Expiry, ManualClock, RemovalCause, SetOptions, Store, StoreBuilder};

use crate::util::{dump, race};

type Log = Arc<Mutex<Vec<(String, String, RemovalCause)>>>;

/// A builder whose store reports to the returned log.
fn logged() -> (StoreBuilder, Log) {
    let log = Log::default();
    let sink = Arc::clone(&log);
    let builder = StoreBuilder::new().removal_listener(move |k: &str, v: String, cause| {
        sink.lock().unwrap().push((k.to_owned(), v, cause));
    });
    (builder, log)
}

fn take(log: &Log) -> Vec<(String, String, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn entry(k: &str, v: &str, cause: RemovalCause) -> (String, String, RemovalCause) {
    (k.to_owned(), v.to_owned(), cause)
}

fn set(store: &dyn Store<String>, k: &str, v: &str) {
    store.set(k, v.into(), SetOptions::new()).unwrap();
}

#[test]
fn every_cause_is_reported_once() -> kvcore::Result<()> {
    use RemovalCause::*;
    let clock = ManualClock::new();
    let (builder, log) = logged();
    let store = builder.capacity(3).clock(clock.clone()).build::<String>()?;
    set(&store, "a", "1");
    set(&store, "a", "2");
    store.incr("n", 5)?;
    store.incr("n", 1)?;
    assert_eq!(
        take(&log),
        [entry("a", "1", Replaced), entry("n", "5", Replaced)]
    );
    set(&store, "b", "x");
    set(&store, "c", "y"); // full: a, the least recently used, goes
    assert_eq!(take(&log), [entry("a", "2", Evicted)]);
    assert!(store.delete("b")?);
    assert!(!store.delete("b")?);
    store.compute("c", &mut |_| Compute::Delete)?;
    assert_eq!(
        take(&log),
        [entry("b", "x", Deleted), entry("c", "y", Deleted)]
    );
    store.set(
        "t",
        "tmp".into(),
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.get("t"), None);
    assert!(
        take(&log).is_empty(),
        "a read finds it dead but removes nothing"
    );
    assert_eq!(store.purge_expired(1000), 1);
    assert_eq!(take(&log), [entry("t", "tmp", Expired)]);
    store.update_all_present(vec![("n".into(), "7".into())], Expiry::Keep)?;
    store.insert_all_absent(vec![("p".into(), "q".into())], Expiry::Default)?;
    assert_eq!(take(&log), [entry("n", "6", Replaced)]);
    store.set(
        "dead",
        "d".into(),
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.clear()?, 2);
    let mut cleared = take(&log);
    cleared.sort();
    assert_eq!(
        cleared,
        [
            entry("dead", "d", Expired),
            entry("n", "7", Cleared),
            entry("p", "q", Cleared)
        ]
    );
    assert_eq!(store.stats().listener_panics, 0);
    Ok(())
}

#[test]
fn a_write_over_an_expired_key_reports_it_expired() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let (builder, log) = logged();
    let store = builder.clock(clock.clone()).build::<String>()?;
    store.set(
        "k",
        "old".into(),
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    clock.advance(Duration::from_secs(2));
    set(&store, "k", "new");
    assert_eq!(take(&log), [entry("k", "old", RemovalCause::Expired)]);
    Ok(())
}

#[test]
fn recovery_reports_nothing() -> kvcore::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let opts = PersistOptions::default();
    {
        let store = StoreBuilder::new()
            .clock(clock.clone())
            .open::<String>(dir.path(), opts)?;
        for i in 0..10 {
            set(&store, &format!("k{i}"), "v");
        }
        set(&store, "k0", "again");
        store.delete("k1")?;
        store.set(
            "t",
            "tmp".into(),
            SetOptions::new().ttl(Duration::from_secs(1)),
        )?;
    }
    clock.advance(Duration::from_secs(5)); // t expired while down
    let (builder, log) = logged();
    // A smaller capacity: recovery trims the store to it, quietly.
    let store = builder
        .capacity(4)
        .clock(clock.clone())
        .open::<String>(dir.path(), opts)?;
    assert_eq!(store.len(), 4);
    assert!(take(&log).is_empty(), "recovery reported {:?}", take(&log));
    // From then on, everything is reported, evictions included.
    set(&store, "new", "n");
    let evicted = take(&log);
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].2, RemovalCause::Evicted);
    Ok(())
}

#[test]
fn the_listener_runs_without_locks_and_may_use_the_store() -> kvcore::Result<()> {
    // One shard: a listener called under its lock would wait for itself.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let handle: Arc<Mutex<Option<kvcore::MemoryStore<String>>>> = Arc::default();
    let (seen2, handle2) = (Arc::clone(&seen), Arc::clone(&handle));
    let store = StoreBuilder::new()
        .shards(1)
        .capacity(2)
        .removal_listener(move |k: &str, v: String, cause| {
            seen2.lock().unwrap().push(format!("{k}={v} {cause:?}"));
            let store = handle2.lock().unwrap().clone();
            if let Some(store) = store
                && cause == RemovalCause::Evicted
                && !k.starts_with("old-")
            {
                // Move what was evicted aside (itself evicting, reported in turn).
                assert!(store.get("anything").is_none());
                store
                    .set(&format!("old-{k}"), v, SetOptions::new())
                    .unwrap();
            }
        })
        .build::<String>()?;
    *handle.lock().unwrap() = Some(store.clone());
    set(&store, "a", "1");
    set(&store, "b", "2");
    // c evicts a, whose listener stores old-a, evicting b, whose listener stores
    // old-b, evicting c, whose listener stores old-c, evicting old-a.
    set(&store, "c", "3");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "a=1 Evicted",
            "b=2 Evicted",
            "c=3 Evicted",
            "old-a=1 Evicted"
        ]
    );
    assert_eq!(
        dump(&store).into_keys().collect::<Vec<_>>(),
        ["old-b", "old-c"]
    );
    *handle.lock().unwrap() = None; // no cycle between the store and its listener
    Ok(())
}

#[test]
fn a_panicking_listener_is_counted_and_loses_nothing() -> kvcore::Result<()> {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    let store = StoreBuilder::new()
        .removal_listener(move |k: &str, _: String, _| {
            counted.fetch_add(1, SeqCst);
            if k == "boom" {
                panic!("the listener fails on {k}");
            }
        })
        .build::<String>()?;
    for k in ["a", "boom", "c"] {
        set(&store, k, "v");
    }
    assert_eq!(store.clear()?, 3);
    assert_eq!(
        calls.load(SeqCst),
        3,
        "the notices after the panic were delivered"
    );
    assert_eq!(store.stats().listener_panics, 1);
    // Nothing is poisoned.
    set(&store, "boom", "v");
    assert!(store.delete("boom")?);
    assert_eq!(store.stats().listener_panics, 2);
    set(&store, "x", "y");
    assert_eq!(store.get("x").as_deref(), Some("y"));
    Ok(())
}

#[test]
fn a_listener_for_another_value_type_is_refused() {
    let builder = StoreBuilder::new().removal_listener(|_: &str, _: u64, _| {});
    let err = builder.clone().build::<String>().unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("u64")),
        "{err}"
    );
    assert!(builder.clone().build::<u64>().is_ok());
    let err = builder
        .build_read_only(vec![("k".to_string(), 1u64)])
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// Writers race over a bounded store with TTLs while a watcher purges and moves the
/// clock: every value written (each one unique) is, at the end, either still in the
/// store or reported exactly once.
#[test]
fn every_value_is_reported_exactly_once_under_racing_writers() -> kvcore::Result<()> {
    const THREADS: usize = 8;
    const WRITES: usize = 2000;
    for shards in [1, 64] {
        let clock = ManualClock::new();
        let (builder, log) = logged();
        let store = builder
            .capacity(64)
            .shards(shards)
            .clock(clock.clone())
            .build::<String>()?;
        let purge = || {
            store.purge_expired(8);
            clock.advance(Duration::from_millis(3));
        };
        race(THREADS, &[&purge], |t| {
            for i in 0..WRITES {
                let key = format!("k{}", (i * 7 + t) % 150);
                let value = format!("{t}/{i}");
                let opts = match i % 4 {
                    0 => SetOptions::new().ttl(Duration::from_millis(20)),
                    _ => SetOptions::new(),
                };
                match i % 10 {
                    9 => {
                        store.delete(&key).unwrap();
                    }
                    8 => {
                        let batch = vec![(key, value), (format!("b{t}"), format!("{t}/{i}b"))];
                        store.set_many(batch, Expiry::Default).unwrap();
                    }
                    _ => {
                        store.set(&key, value, opts).unwrap();
                    }
                }
            }
        });
        store.purge_expired(usize::MAX);
        let reported = take(&log);
        let mut seen: BTreeMap<&str, RemovalCause> = BTreeMap::new();
        for (_, v, cause) in &reported {
            assert!(seen.insert(v, *cause).is_none(), "{v} reported twice");
        }
        let live: HashSet<String> = dump(&store).into_values().collect();
        for v in &live {
            assert!(
                !seen.contains_key(v.as_str()),
                "{v} is live and was reported"
            );
        }
        // Every value written is accounted for, once.
        let written = THREADS * WRITES + THREADS * WRITES / 10; // sets, and batches' twins
        let deletes = THREADS * WRITES / 10; // a delete writes nothing
        assert_eq!(
            reported.len() + live.len(),
            written - deletes,
            "shards {shards}"
        );
        let evicted = reported
            .iter()
            .filter(|r| r.2 == RemovalCause::Evicted)
            .count();
        assert_eq!(store.stats().evictions, evicted as u64);
        assert!(evicted > 0);
        assert_eq!(store.stats().listener_panics, 0);
    }
    Ok(())
}
