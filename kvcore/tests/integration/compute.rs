//! `Store::compute`: what each answer of the function does, TTLs, atomicity against
//! plain writers (an `incr` racing computes loses nothing), the function running
//! without locks (it may read and write the store, and runs again when a write got
//! in between), persistence, bounds, read-only stores, and `Arc<dyn Store>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

use kvcore::persist::PersistOptions;
use kvcore::{
    Compute, Computed, Error, Expiry, ManualClock, SetOptions, Store, StoreBuilder, StoreExt,
};

fn append(store: &dyn Store<String>, key: &str, suffix: &str) -> kvcore::Result<Computed<String>> {
    store.compute(key, &mut |old| {
        Compute::Set(format!("{}{suffix}", old.map_or("", String::as_str)))
    })
}

#[test]
fn each_answer_does_what_it_says() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    assert_eq!(append(&store, "k", "a")?, Computed::Created("a".into()));
    assert_eq!(append(&store, "k", "b")?, Computed::Replaced("ab".into()));
    let seen = store.compute("k", &mut |old| {
        assert_eq!(old.map(String::as_str), Some("ab"));
        Compute::Keep
    })?;
    assert_eq!(seen, Computed::Unchanged(Some("ab".into())));
    assert_eq!(
        store.compute("k", &mut |_| Compute::Delete)?,
        Computed::Deleted
    );
    assert!(!store.contains("k"));
    assert_eq!(
        store.compute("k", &mut |_| Compute::Delete)?,
        Computed::Unchanged(None)
    );
    assert_eq!(
        store.compute("k", &mut |_| Compute::Keep)?,
        Computed::Unchanged(None)
    );
    assert!(!store.contains("k"));
    // A compute counts neither hits nor misses.
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0));
    Ok(())
}

#[test]
fn set_keeps_the_ttl_and_set_with_gives_one() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new()
        .default_ttl(Duration::from_secs(100))
        .clock(clock.clone())
        .build::<String>()?;
    // A new key gets the default TTL.
    append(&store, "new", "x")?;
    assert_eq!(store.ttl("new"), Some(Some(Duration::from_secs(100))));
    store.set(
        "k",
        "v".into(),
        SetOptions::new().ttl(Duration::from_secs(10)),
    )?;
    clock.advance(Duration::from_secs(4));
    append(&store, "k", "w")?; // keeps the 6 s left
    assert_eq!(store.ttl("k"), Some(Some(Duration::from_secs(6))));
    let ttl = Expiry::After(Duration::from_secs(30));
    store.compute("k", &mut |_| Compute::SetWith("z".into(), ttl))?;
    assert_eq!(store.ttl("k"), Some(Some(Duration::from_secs(30))));
    store.compute("k", &mut |_| Compute::SetWith("z".into(), Expiry::Never))?;
    assert_eq!(store.ttl("k"), Some(None));
    // A bad TTL is refused and changes nothing.
    let bad = Expiry::After(Duration::ZERO);
    let err = store.compute("k", &mut |_| Compute::SetWith("q".into(), bad));
    assert!(matches!(err, Err(Error::InvalidTtl { .. })), "{err:?}");
    assert_eq!(store.get("k").as_deref(), Some("z"));
    // An expired key is absent to the function.
    store.set(
        "gone",
        "old".into(),
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        append(&store, "gone", "new")?,
        Computed::Created("new".into())
    );
    Ok(())
}

#[test]
fn computes_racing_incr_lose_nothing() -> kvcore::Result<()> {
    const THREADS: usize = 4;
    const ROUNDS: i64 = 2000;
    for shards in [1, 64] {
        let store = StoreBuilder::new().shards(shards).build::<String>()?;
        store.set("n", "0".into(), SetOptions::new())?;
        let runs = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (store, runs) = (&store, &runs);
                s.spawn(move || {
                    for i in 0..ROUNDS {
                        if t % 2 == 0 {
                            // A plain writer, with no part in computes' turn-taking.
                            store.incr("n", 1).unwrap();
                        } else {
                            store
                                .compute("n", &mut |old| {
                                    runs.fetch_add(1, SeqCst);
                                    let n: i64 = old.unwrap().parse().unwrap();
                                    Compute::Set((n + 1).to_string())
                                })
                                .unwrap();
                        }
                        // Other keys of the shard change too.
                        store
                            .set(&format!("{t}-{}", i % 7), "x".into(), SetOptions::new())
                            .unwrap();
                    }
                });
            }
        });
        let total = THREADS as i64 * ROUNDS;
        assert_eq!(store.get("n"), Some(total.to_string()), "shards {shards}");
        assert!(runs.load(SeqCst) >= total as usize / 2);
    }
    Ok(())
}

#[test]
fn the_function_runs_without_locks_and_again_after_a_write_in_between() -> kvcore::Result<()> {
    // One shard: any lock the compute held would be the one these calls need.
    let store = StoreBuilder::new().shards(1).build::<String>()?;
    store.set("k", "1".into(), SetOptions::new())?;
    let mut calls = Vec::new();
    let done = store.compute("k", &mut |old| {
        let old = old.cloned().unwrap_or_default();
        calls.push(old.clone());
        if calls.len() == 1 {
            // Reads and writes from inside the function, the key itself included.
            assert_eq!(store.get("k").as_deref(), Some("1"));
            store.set("other", "o".into(), SetOptions::new()).unwrap();
            store.set("k", "2".into(), SetOptions::new()).unwrap();
        }
        Compute::Set(format!("{old}+"))
    })?;
    // The first answer was dropped: it was based on a value overwritten meanwhile.
    assert_eq!(calls, ["1", "2"]);
    assert_eq!(done, Computed::Replaced("2+".into()));
    assert_eq!(store.get("k").as_deref(), Some("2+"));
    assert_eq!(store.get("other").as_deref(), Some("o"));
    // Keep applies nothing, so nothing can conflict: the function runs once even
    // when the key changes meanwhile.
    let mut seen = Vec::new();
    store.compute("k", &mut |old| {
        seen.push(old.cloned());
        if seen.len() == 1 {
            store.delete("k").unwrap();
        }
        Compute::Keep
    })?;
    assert_eq!(seen, [Some("2+".to_string())]);
    assert!(!store.contains("k"));
    Ok(())
}

#[test]
fn computes_of_one_key_take_turns_with_loaders() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let inside = AtomicUsize::new(0);
    let (store, inside) = (&store, &inside);
    thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for _ in 0..200 {
                    if t == 0 {
                        store.delete("k").unwrap();
                        store
                            .get_with("k", || {
                                assert_eq!(inside.fetch_add(1, SeqCst), 0, "alone on the key");
                                thread::yield_now();
                                inside.fetch_sub(1, SeqCst);
                                "0".to_string()
                            })
                            .unwrap();
                    } else {
                        store
                            .compute("k", &mut |old| {
                                assert_eq!(inside.fetch_add(1, SeqCst), 0, "alone on the key");
                                thread::yield_now();
                                inside.fetch_sub(1, SeqCst);
                                Compute::Set(format!("{}.", old.map_or("", String::as_str)))
                            })
                            .unwrap();
                    }
                }
            });
        }
    });
    Ok(())
}

#[test]
fn a_persistent_store_journals_computes() -> kvcore::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
        append(&store, "log", "a")?;
        append(&store, "log", "b")?;
        append(&store, "gone", "x")?;
        store.compute("gone", &mut |_| Compute::Delete)?;
    }
    let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
    assert_eq!(store.get("log").as_deref(), Some("ab"));
    assert!(!store.contains("gone"));
    Ok(())
}

#[test]
fn a_bounded_store_makes_room_for_a_computed_key() -> kvcore::Result<()> {
    let store = StoreBuilder::new().capacity(2).build::<String>()?;
    append(&store, "a", "1")?;
    append(&store, "b", "2")?;
    append(&store, "a", "1")?; // a is now the most recently used
    append(&store, "c", "3")?;
    assert!(!store.contains("b"));
    assert_eq!(store.len(), 2);
    assert_eq!(store.stats().evictions, 1);
    Ok(())
}

#[test]
fn read_only_stores_refuse_and_dyn_stores_compute() -> kvcore::Result<()> {
    let ro = StoreBuilder::new().build_read_only(vec![("k".to_string(), "v".to_string())])?;
    let err = ro.compute("k", &mut |_| Compute::Keep);
    assert!(matches!(err, Err(Error::ReadOnly)), "{err:?}");
    let store: Arc<dyn Store<String>> = Arc::new(StoreBuilder::new().build::<String>()?);
    assert_eq!(append(&*store, "k", "x")?, Computed::Created("x".into()));
    let n = store.compute("k", &mut |old| Compute::Set(format!("{}y", old.unwrap())))?;
    assert_eq!(n.into_value().as_deref(), Some("xy"));
    Ok(())
}
