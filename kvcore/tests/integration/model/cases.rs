//! The canonical cases, by hand.

use std::time::Duration;

use kvcore::{ManualClock, SetOptions, SetOutcome, Store, StoreBuilder};

fn set(store: &dyn Store<String>, key: &str, opts: SetOptions) -> kvcore::Result<SetOutcome> {
    store.set(key, format!("value of {key}"), opts)
}

#[test]
fn capacity_three_evicts_the_least_recently_used_key() -> kvcore::Result<()> {
    for shards in [1, 4, 64] {
        let store = StoreBuilder::new()
            .capacity(3)
            .shards(shards)
            .clock(ManualClock::new())
            .build::<String>()?;
        for key in ["a", "b", "c"] {
            assert_eq!(set(&store, key, SetOptions::new())?, SetOutcome::Created);
        }
        assert_eq!(store.get("a").as_deref(), Some("value of a"));
        assert_eq!(set(&store, "d", SetOptions::new())?, SetOutcome::Created);
        assert!(!store.contains("b"), "shards {shards}: b should be evicted");
        for key in ["a", "c", "d"] {
            assert!(store.contains(key), "shards {shards}: {key} should stay");
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.stats().evictions, 1);
    }
    Ok(())
}

#[test]
fn sliding_ttl_restarts_on_every_read() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new()
        .default_ttl(Duration::from_secs(10))
        .sliding(true)
        .clock(clock.clone())
        .build::<String>()?;
    set(&store, "read", SetOptions::new())?;
    set(&store, "unread", SetOptions::new())?;
    clock.advance(Duration::from_secs(6));
    assert_eq!(store.get("read").as_deref(), Some("value of read"));
    clock.advance(Duration::from_secs(6));
    // 12 s after the write: only the key read at 6 s is still there.
    assert!(store.contains("read"));
    assert!(!store.contains("unread"));
    // `ttl` and `contains` only look.
    assert_eq!(store.ttl("read"), Some(Some(Duration::from_secs(4))));
    assert_eq!(store.ttl("read"), Some(Some(Duration::from_secs(4))));
    clock.advance(Duration::from_secs(11));
    assert!(!store.contains("read"));
    assert_eq!(store.get("read"), None);
    assert_eq!(store.len(), 0);
    Ok(())
}

#[test]
fn a_key_is_expired_exactly_at_its_deadline() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new().clock(clock.clone()).build::<String>()?;
    set(&store, "k", SetOptions::new().ttl(Duration::from_secs(5)))?;
    clock.advance(Duration::from_secs(5) - Duration::from_nanos(1));
    assert!(store.contains("k"));
    assert_eq!(store.ttl("k"), Some(Some(Duration::from_nanos(1))));
    clock.advance(Duration::from_nanos(1));
    assert!(!store.contains("k"));
    assert_eq!(store.ttl("k"), None);
    assert_eq!(store.get("k"), None);
    assert_eq!(store.get_with_ttl("k"), None);
    assert_eq!(store.len(), 0);
    assert_eq!(
        set(&store, "k", SetOptions::new().if_present())?,
        SetOutcome::NotSet
    );
    assert!(!store.expire("k", Duration::from_secs(1))?);
    assert!(!store.clear_ttl("k")?);
    assert_eq!(store.incr("k", 2)?, 2);
    Ok(())
}

#[test]
fn expired_keys_never_count_toward_capacity() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new()
        .capacity(2)
        .clock(clock.clone())
        .build::<String>()?;
    set(
        &store,
        "short",
        SetOptions::new().ttl(Duration::from_secs(1)),
    )?;
    set(&store, "long", SetOptions::new())?;
    clock.advance(Duration::from_secs(1));
    assert_eq!(set(&store, "new", SetOptions::new())?, SetOutcome::Created);
    assert!(store.contains("long") && store.contains("new"));
    assert_eq!(store.len(), 2);
    let stats = store.stats();
    assert_eq!((stats.evictions, stats.expirations), (0, 1));
    Ok(())
}
