//! The loaders (`StoreExt`): what they return and store, errors (shared, stored
//! nowhere, the store's refusals), options, read-only and persistent stores; single
//! flight under 8 threads × 1,000 keys, each `init` counted, wave after wave; loaders
//! of different keys never waiting for each other; the async loaders under tokio
//! (many tasks, a cancelled leader under `tokio::time::pause`) and under a bare
//! executor of a few lines.
//!
//! Waiters sharing one error and a panicking leader are tested inside the crate
//! (`memory/tests.rs`), where the test can see that the waiters are waiting.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use kvcore::persist::PersistOptions;
use kvcore::{Error, ManualClock, SetOptions, Store, StoreBuilder, StoreExt};

use crate::util::race;

#[derive(Debug, PartialEq)]
enum DbError {
    NotFound(String),
    Store(String),
}

impl From<Error> for DbError {
    fn from(e: Error) -> Self {
        DbError::Store(e.to_string())
    }
}

#[test]
fn a_miss_loads_and_stores_a_hit_loads_nothing() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    assert_eq!(store.get_with("k", || "loaded".to_string())?, "loaded");
    assert_eq!(store.get("k").as_deref(), Some("loaded"));
    assert_eq!(store.get_with("k", || unreachable!("a hit"))?, "loaded");
    // One miss, then one hit: each call counts once, whoever loads; the get above
    // is the other hit.
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (2, 1));
    Ok(())
}

#[test]
fn options_give_the_stored_value_its_ttl() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let store = StoreBuilder::new()
        .default_ttl(Duration::from_secs(100))
        .clock(clock.clone())
        .build::<String>()?;
    store.get_with("default", || "d".into())?;
    assert_eq!(store.ttl("default"), Some(Some(Duration::from_secs(100))));
    let opts = SetOptions::new().ttl(Duration::from_secs(5));
    store.get_with_options("short", opts, || "s".into())?;
    assert_eq!(store.ttl("short"), Some(Some(Duration::from_secs(5))));
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        store.get_with_options("short", opts, || "again".into())?,
        "again"
    );
    // A bad TTL is the store's refusal: nothing is stored.
    let bad = SetOptions::new().ttl(Duration::ZERO);
    let err = store
        .get_with_options("bad", bad, || "x".into())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtl { .. }), "{err}");
    assert!(!store.contains("bad"));
    // `if_present` makes no sense for a loader.
    let runs = AtomicUsize::new(0);
    let err = store
        .get_with_options("p", SetOptions::new().if_present(), || {
            runs.fetch_add(1, SeqCst);
            "x".into()
        })
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert_eq!(runs.load(SeqCst), 0);
    Ok(())
}

#[test]
fn a_failed_load_stores_nothing_and_the_next_call_loads_again() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let err = store
        .try_get_with("user:9", || Err(DbError::NotFound("user:9".into())))
        .unwrap_err();
    assert_eq!(*err, DbError::NotFound("user:9".into()));
    assert!(!store.contains("user:9"));
    let name = store.try_get_with("user:9", || Ok::<_, DbError>("nine".into()));
    assert_eq!(name.as_deref(), Ok("nine"));
    Ok(())
}

#[test]
fn the_stores_refusal_comes_back_as_the_callers_error() -> kvcore::Result<()> {
    let store = StoreBuilder::new()
        .max_weight(10)
        .weigher(|_: &str, v: &String| v.len() as u32)
        .build::<String>()?;
    let err = store
        .try_get_with("big", || Ok::<_, DbError>("x".repeat(11)))
        .unwrap_err();
    assert!(
        matches!(&*err, DbError::Store(m) if m.contains("weighs 11")),
        "{err:?}"
    );
    let err = store.get_with("big", || "x".repeat(11)).unwrap_err();
    assert!(matches!(err, Error::TooHeavy { weight: 11, .. }), "{err}");
    assert!(!store.contains("big"));
    Ok(())
}

#[test]
fn a_value_another_writer_stored_meanwhile_is_kept() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let got = store.get_with("k", || {
        store.set("k", "theirs".into(), SetOptions::new()).unwrap();
        "ours".to_string()
    })?;
    assert_eq!(got, "theirs");
    assert_eq!(store.get("k").as_deref(), Some("theirs"));
    Ok(())
}

#[test]
fn read_only_stores_return_what_they_have_and_load_nothing() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build_read_only(vec![("k".to_string(), "v".to_string())])?;
    assert_eq!(store.get_with("k", || unreachable!("a hit"))?, "v");
    let runs = AtomicUsize::new(0);
    let err = store
        .get_with("other", || {
            runs.fetch_add(1, SeqCst);
            "x".into()
        })
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err}");
    let err = store
        .try_get_with("other", || Ok::<_, DbError>("x".into()))
        .unwrap_err();
    assert!(
        matches!(&*err, DbError::Store(m) if m.contains("read-only")),
        "{err:?}"
    );
    assert_eq!(runs.load(SeqCst), 0);
    Ok(())
}

#[test]
fn a_persistent_store_journals_what_it_loads() -> kvcore::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
        store.get_with("k", || "loaded".into())?;
    }
    let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
    assert_eq!(store.get("k").as_deref(), Some("loaded"));
    Ok(())
}

#[test]
fn dyn_stores_have_the_loaders() -> kvcore::Result<()> {
    let store: Arc<dyn Store<u64>> = Arc::new(StoreBuilder::new().build::<u64>()?);
    assert_eq!(store.get_with("k", || 7)?, 7);
    let by_ref: &dyn Store<u64> = &*store;
    assert_eq!(by_ref.get_with("k", || 8)?, 7);
    Ok(())
}

/// 8 threads ask for the same 1,000 keys, in different orders: each key's `init` runs
/// once per wave, and everyone gets its value.
#[test]
fn eight_threads_a_thousand_keys_one_load_per_key_per_wave() -> kvcore::Result<()> {
    const THREADS: usize = 8;
    const KEYS: usize = 1000;
    let store = StoreBuilder::new().build::<String>()?;
    let runs: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    for wave in 0..3 {
        race(THREADS, &[], |t| {
            for i in 0..KEYS {
                let k = (i * (2 * t + 1) + t * 97) % KEYS;
                let value = store
                    .get_with(&format!("key{k}"), || {
                        runs[k].fetch_add(1, SeqCst);
                        thread::yield_now(); // let the others pile up
                        format!("{k}@{wave}")
                    })
                    .unwrap();
                assert_eq!(value, format!("{k}@{wave}"));
            }
        });
        for (k, n) in runs.iter().enumerate() {
            assert_eq!(n.load(SeqCst), wave + 1, "key{k} in wave {wave}");
        }
        let stats = store.stats();
        assert_eq!(
            stats.hits + stats.misses,
            ((wave + 1) * THREADS * KEYS) as u64
        );
        store.clear()?; // the next wave misses everything again
    }
    Ok(())
}

/// Errors and panics in loaders under 8 threads: nothing gets stuck, nothing is
/// stored for a failed load, and the load after a failure succeeds.
#[test]
fn failing_and_panicking_loaders_leave_nothing_stuck() -> kvcore::Result<()> {
    const THREADS: usize = 8;
    const KEYS: usize = 200;
    let store = StoreBuilder::new().build::<String>()?;
    let runs: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    let outcomes = race(THREADS, &[], |t| {
        let (mut ok, mut failed, mut panicked) = (0, 0, 0);
        for i in 0..KEYS {
            let k = (i * 7 + t * 31) % KEYS;
            let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.try_get_with(&format!("key{k}"), || {
                    // The first load of a key fails, the second panics, the rest work.
                    match runs[k].fetch_add(1, SeqCst) {
                        0 => Err(DbError::NotFound(k.to_string())),
                        1 => panic!("loader of key{k} panics"),
                        _ => Ok(k.to_string()),
                    }
                })
            }));
            match call {
                Ok(Ok(v)) => {
                    assert_eq!(v, k.to_string());
                    ok += 1;
                }
                Ok(Err(e)) => {
                    assert_eq!(*e, DbError::NotFound(k.to_string()));
                    failed += 1;
                }
                Err(_) => panicked += 1,
            }
        }
        (ok, failed, panicked)
    });
    for (k, runs) in runs.iter().enumerate() {
        // The third load of a key stores it; a key whose callers all shared the
        // first two loads is absent, and loads now.
        let key = format!("key{k}");
        match runs.load(SeqCst) {
            3 => assert_eq!(store.get(&key), Some(k.to_string()), "{key}"),
            1 | 2 => assert!(!store.contains(&key), "{key}"),
            n => panic!("{key} loaded {n} times"),
        }
        let got = store.try_get_with(&key, || Ok::<_, DbError>(k.to_string()));
        assert_eq!(got, Ok(k.to_string()), "{key}");
    }
    let panicked: usize = outcomes.iter().map(|o| o.2).sum();
    let calls: usize = outcomes.iter().map(|o| o.0 + o.1 + o.2).sum();
    assert_eq!(calls, THREADS * KEYS);
    assert!(panicked <= KEYS, "one panic per key at most: {panicked}");
    Ok(())
}

#[test]
fn loaders_of_different_keys_never_wait_for_each_other() -> kvcore::Result<()> {
    // One shard and one flight table lock: a loader holding anything of the store's
    // while its `init` runs would make the other wait.
    let store = StoreBuilder::new()
        .shards(1)
        .capacity(10)
        .build::<String>()?;
    let (b_done, b_seen) = mpsc::channel();
    thread::scope(|s| {
        let store = &store;
        s.spawn(move || {
            store
                .get_with("a", || {
                    // "b" loads, start to end, while "a" is still loading.
                    let b = b_seen
                        .recv_timeout(Duration::from_secs(30))
                        .expect("b's loader finished while a's ran");
                    format!("a after {b}")
                })
                .unwrap()
        });
        s.spawn(move || {
            let b = store.get_with("b", || "b".to_string()).unwrap();
            b_done.send(b).unwrap();
        });
    });
    assert_eq!(store.get("a").as_deref(), Some("a after b"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_missing_one_key_await_one_load() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, runs) = (store.clone(), Arc::clone(&runs));
            tokio::spawn(async move {
                store
                    .get_with_async("k", async {
                        runs.fetch_add(1, SeqCst);
                        tokio::task::yield_now().await;
                        "v".to_string()
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap()?, "v");
    }
    assert_eq!(runs.load(SeqCst), 1);
    Ok(())
}

/// A leader whose future is dropped mid-load (an aborted task) hands the load to a
/// waiter, which loads with its own future; the clock is paused, so the slow load
/// takes no time.
#[tokio::test(start_paused = true)]
async fn a_cancelled_load_is_taken_over_by_a_waiter() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let started = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (store, started) = (store.clone(), Arc::clone(&started));
        tokio::spawn(async move {
            store
                .get_with_async("k", async {
                    started.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "slow".to_string()
                })
                .await
        })
    };
    tokio::task::yield_now().await; // the leader starts and waits on its sleep
    assert_eq!(started.load(SeqCst), 1);
    let took_over = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (store, took_over) = (store.clone(), Arc::clone(&took_over));
        tokio::spawn(async move {
            store
                .try_get_with_async("k", async move {
                    took_over.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<_, DbError>("taken over".to_string())
                })
                .await
        })
    };
    tokio::task::yield_now().await; // the waiter joins the flight...
    assert_eq!(took_over.load(SeqCst), 0, "...and waits rather than loads");
    assert!(!waiter.is_finished());
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let got = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the waiter is not left waiting")
        .unwrap();
    assert_eq!(got.as_deref(), Ok("taken over"));
    assert_eq!(store.get("k").as_deref(), Some("taken over"));
    assert_eq!(
        started.load(SeqCst),
        1,
        "the cancelled load never ran again"
    );
    assert_eq!(took_over.load(SeqCst), 1);
    Ok(())
}

/// Runs a future to completion on this thread: the smallest executor there is.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

#[test]
fn the_async_loaders_need_no_runtime() -> kvcore::Result<()> {
    let store = StoreBuilder::new().build::<String>()?;
    let runs = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let got = block_on(store.get_with_async("k", async {
                    runs.fetch_add(1, SeqCst);
                    "v".to_string()
                }));
                assert_eq!(got.unwrap(), "v");
            });
        }
    });
    assert_eq!(runs.load(SeqCst), 1);
    let err = block_on(store.try_get_with_async("e", async {
        Err::<String, _>(DbError::NotFound("e".into()))
    }))
    .unwrap_err();
    assert_eq!(*err, DbError::NotFound("e".into()));
    Ok(())
}
