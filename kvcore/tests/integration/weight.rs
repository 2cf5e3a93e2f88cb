//! Weight bounds: the default weight, exact LRU by weight, values too heavy to hold,
//! values that grow (overwrites, incr, batches), weight and count bounds together,
//! counting without a bound, persistence, configuration errors, and the bound held
//! at every moment while writers race.
//!
//! The model test (`model::weight_*`) checks weight-bounded stores against the model
//! in their modes; these are the cases it does not cover.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use kvcore::persist::PersistOptions;
use kvcore::weight::{ENTRY_OVERHEAD, default_weight};
use kvcore::{Error, Expiry, ManualClock, MemoryStore, SetOptions, Store, StoreBuilder};

use crate::util::{dump, race};

/// A store whose entries weigh their value's length.
fn by_length(max: u64) -> MemoryStore<String> {
    StoreBuilder::new()
        .max_weight(max)
        .weigher(|_: &str, v: &String| v.len() as u32)
        .build()
        .unwrap()
}

fn set(store: &dyn Store<String>, k: &str, len: usize) -> kvcore::Result<()> {
    store.set(k, "x".repeat(len), SetOptions::new()).map(|_| ())
}

#[test]
fn the_default_weight_counts_key_value_and_overhead() -> kvcore::Result<()> {
    let overhead = u64::from(ENTRY_OVERHEAD);
    let store = StoreBuilder::new().max_weight(1_000).build::<String>()?;
    store.set("key", "value".into(), SetOptions::new())?;
    assert_eq!(store.weight(), Some(3 + 5 + overhead));
    assert_eq!(store.mode().max_weight, Some(1_000));
    // Room for 1 000 / (8 + 64) = 13 such entries: the 14th evicts the first.
    for i in 0..13 {
        store.set(&format!("k{i:02}"), "value".into(), SetOptions::new())?;
    }
    assert!(!store.contains("key"));
    assert!(store.weight().unwrap() <= 1_000);
    assert_eq!(
        u64::from(default_weight("k00", &"value".to_string())),
        8 + overhead
    );
    // Unbounded stores do not count.
    assert_eq!(StoreBuilder::new().build::<String>()?.weight(), None);
    Ok(())
}

#[test]
fn eviction_is_lru_by_weight() -> kvcore::Result<()> {
    let store = by_length(100);
    set(&store, "a", 40)?;
    set(&store, "b", 30)?;
    set(&store, "c", 30)?;
    assert!(store.get("a").is_some()); // b is now the least recently used
    set(&store, "d", 40)?; // 140: b goes (110), then c (80)
    let keys: Vec<String> = dump(&store).into_keys().collect();
    assert_eq!(keys, ["a", "d"]);
    assert_eq!(store.weight(), Some(80));
    assert_eq!(store.stats().evictions, 2);
    Ok(())
}

#[test]
fn a_value_heavier_than_the_bound_is_refused_and_changes_nothing() -> kvcore::Result<()> {
    let store = by_length(100);
    set(&store, "a", 60)?;
    let err = set(&store, "big", 101).unwrap_err();
    assert!(
        matches!(&err, Error::TooHeavy { key, weight: 101, max_weight: 100 } if key == "big"),
        "{err}"
    );
    assert!(err.to_string().contains("raise max_weight"), "{err}");
    let err = set(&store, "a", 101).unwrap_err(); // an overwrite too
    assert!(matches!(err, Error::TooHeavy { .. }), "{err}");
    let err = store
        .insert_all_absent(
            vec![("p".into(), "x".repeat(60)), ("q".into(), "x".repeat(41))],
            Expiry::Default,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::BatchTooHeavy { weight: 101, .. }),
        "{err}"
    );
    let err = store
        .update_all_present(vec![("a".into(), "x".repeat(101))], Expiry::Default)
        .unwrap_err();
    assert!(matches!(err, Error::BatchTooHeavy { .. }), "{err}");
    assert_eq!(store.get("a").map(|v| v.len()), Some(60));
    assert_eq!(store.weight(), Some(60));
    assert_eq!(store.stats().evictions, 0);
    Ok(())
}

#[test]
fn a_growing_value_evicts_others_never_itself() -> kvcore::Result<()> {
    let store = by_length(100);
    set(&store, "a", 30)?;
    set(&store, "b", 30)?;
    set(&store, "c", 30)?;
    set(&store, "a", 70)?; // a is the least recently used, yet b goes
    assert_eq!(dump(&store).into_keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(store.weight(), Some(100));
    set(&store, "a", 100)?; // and then c
    assert_eq!(dump(&store).into_keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(store.weight(), Some(100));
    set(&store, "a", 10)?; // shrinking frees weight
    assert_eq!(store.weight(), Some(10));
    // A batch that grows its keys evicts the others.
    set(&store, "b", 40)?;
    set(&store, "c", 40)?;
    let grown = vec![
        ("a".to_string(), "x".repeat(50)),
        ("b".to_string(), "x".repeat(50)),
    ];
    assert!(store.update_all_present(grown, Expiry::Keep)?);
    assert_eq!(dump(&store).into_keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(store.weight(), Some(100));
    Ok(())
}

#[test]
fn incr_weighs_its_new_value() -> kvcore::Result<()> {
    let store = by_length(3);
    assert_eq!(store.incr("n", 99)?, 99);
    assert_eq!(store.weight(), Some(2));
    assert_eq!(store.incr("n", 1)?, 100);
    assert_eq!(store.weight(), Some(3));
    let err = store.incr("n", 900).unwrap_err(); // "1000" would weigh 4
    assert!(matches!(err, Error::TooHeavy { weight: 4, .. }), "{err}");
    assert_eq!(store.get("n").as_deref(), Some("100"));
    Ok(())
}

#[test]
fn count_and_weight_bounds_hold_together() -> kvcore::Result<()> {
    let store = StoreBuilder::new()
        .capacity(3)
        .max_weight(100)
        .weigher(|_: &str, v: &String| v.len() as u32)
        .build::<String>()?;
    for k in ["a", "b", "c"] {
        set(&store, k, 10)?;
    }
    set(&store, "d", 10)?; // the count evicts a
    assert!(!store.contains("a"));
    set(&store, "e", 85)?; // the weight evicts b and c: 10 + 85 fits
    assert_eq!(dump(&store).into_keys().collect::<Vec<_>>(), ["d", "e"]);
    assert_eq!(store.weight(), Some(95));
    Ok(())
}

#[test]
fn weights_leave_with_their_keys() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new()
        .weigher(|_: &str, v: &String| v.len() as u32) // counted, not bounded
        .clock(clock.clone())
        .build::<String>()?;
    assert_eq!(store.mode().max_weight, None);
    store.set_many(
        vec![("a".into(), "123".into()), ("b".into(), "45".into())],
        Expiry::Default,
    )?;
    assert_eq!(store.weight(), Some(5));
    store.delete("a")?;
    assert_eq!(store.weight(), Some(2));
    store.set(
        "t",
        "1234".into(),
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.weight(),
        Some(6),
        "an expired key weighs until it is removed"
    );
    store.purge_expired(1000);
    assert_eq!(store.weight(), Some(2));
    store.set("c", "x".repeat(10), SetOptions::new())?;
    store.clear()?;
    assert_eq!(store.weight(), Some(0));
    Ok(())
}

#[test]
fn a_reopened_store_with_a_smaller_bound_is_trimmed_to_it() -> kvcore::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let opts = PersistOptions::default();
    let weigher = |_: &str, v: &String| v.len() as u32;
    {
        let store = StoreBuilder::new()
            .max_weight(1_000)
            .weigher(weigher)
            .open::<String>(dir.path(), opts)?;
        for i in 0..10 {
            set(&store, &format!("k{i}"), 50)?;
        }
        assert_eq!(store.weight(), Some(500));
    }
    let store = StoreBuilder::new()
        .max_weight(200)
        .weigher(weigher)
        .open::<String>(dir.path(), opts)?;
    assert_eq!(store.weight(), Some(200));
    assert_eq!(store.len(), 4);
    Ok(())
}

#[test]
fn bad_weight_settings_are_refused() {
    let err = StoreBuilder::new()
        .max_weight(0)
        .build::<String>()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("max_weight")),
        "{err}"
    );
    let err = StoreBuilder::new()
        .weigher(|_: &str, _: &u64| 1)
        .build::<String>()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("weigher")),
        "{err}"
    );
    let err = StoreBuilder::new()
        .max_weight(10)
        .build_read_only(vec![("k".to_string(), 1u64)])
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// Writers create, grow, shrink, delete and batch while a watcher reads the weight
/// as often as it can: it is never above the bound, and once they stop it is exactly
/// the weight of what the store holds.
#[test]
fn the_bound_holds_at_every_moment_while_writers_race() -> kvcore::Result<()> {
    const MAX: u64 = 2_000;
    for shards in [1, 64] {
        let store = StoreBuilder::new()
            .max_weight(MAX)
            .weigher(|k: &str, v: &String| (k.len() + v.len()) as u32)
            .shards(shards)
            .build::<String>()?;
        let over = AtomicBool::new(false);
        let watch = || {
            if store.weight().unwrap() > MAX {
                over.store(true, SeqCst);
            }
        };
        race(4, &[&watch], |t| {
            for i in 0..3000usize {
                let key = format!("k{}", (i * 13 + t * 7) % 120);
                let len = (i * 37 + t * 11) % 200;
                match i % 9 {
                    0 => {
                        store.delete(&key).unwrap();
                    }
                    1 => {
                        let batch = vec![
                            (key, "y".repeat(len)),
                            (format!("b{t}"), "z".repeat(len / 2)),
                        ];
                        store.insert_all_absent(batch, Expiry::Default).unwrap();
                    }
                    2 => {
                        let batch = vec![(key, "y".repeat(len))];
                        store.update_all_present(batch, Expiry::Keep).unwrap();
                    }
                    _ => {
                        store.set(&key, "x".repeat(len), SetOptions::new()).unwrap();
                    }
                }
            }
        });
        assert!(
            !over.load(SeqCst),
            "the weight went over {MAX} (shards {shards})"
        );
        let held: u64 = dump(&store)
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        assert_eq!(store.weight(), Some(held), "shards {shards}");
        assert!(held <= MAX);
        assert!(store.stats().evictions > 0);
    }
    Ok(())
}
