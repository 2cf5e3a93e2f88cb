//! The runner: one store and the model side by side, compared after every operation,
//! and the properties, one per mode.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvcore::{ManualClock, Pattern, RemovalCause, Store, StoreBuilder};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::reference::weight;
use super::*;

/// What the store's removal listener was told, in order.
type Log = Arc<Mutex<Vec<(String, String, RemovalCause)>>>;

#[derive(Debug, Clone)]
struct Setup {
    shards: Option<usize>,
    default_ttl: Option<Duration>,
    sliding: bool,
    capacity: Option<usize>,
    /// A weight bound, entries weighing `weight(key, value)`.
    max_weight: Option<u64>,
    /// `Some`: a read-only store over these pairs.
    dataset: Option<Pairs>,
}

impl Setup {
    fn writable(shards: Option<usize>) -> Self {
        Setup {
            shards,
            default_ttl: None,
            sliding: false,
            capacity: None,
            max_weight: None,
            dataset: None,
        }
    }
}

fn build(setup: &Setup, clock: &ManualClock) -> (Box<dyn Store<String>>, Model, Log) {
    let log = Log::default();
    let mut model = Model::new(nanos(ManualClock::START));
    if let Some(pairs) = &setup.dataset {
        let store = StoreBuilder::new()
            .build_read_only(owned(pairs))
            .expect("a read-only store over any pairs");
        model.read_only = true;
        for &(k, v) in pairs {
            let used = model.stamp();
            model.entries.insert(
                k.to_owned(),
                Entry {
                    value: v.to_owned(),
                    deadline: None,
                    ttl_len: None,
                    used,
                },
            );
        }
        return (Box::new(store), model, log);
    }
    let sink = Arc::clone(&log);
    let mut builder = StoreBuilder::new().clock(clock.clone()).removal_listener(
        move |key: &str, value: String, cause| {
            sink.lock().unwrap().push((key.to_owned(), value, cause));
        },
    );
    if let Some(ttl) = setup.default_ttl {
        builder = builder.default_ttl(ttl);
    }
    if let Some(capacity) = setup.capacity {
        builder = builder.capacity(capacity);
    }
    if let Some(shards) = setup.shards {
        builder = builder.shards(shards);
    }
    if let Some(max) = setup.max_weight {
        builder = builder
            .max_weight(max)
            .weigher(|key: &str, value: &String| weight(key, value) as u32);
    }
    let store = builder
        .sliding(setup.sliding)
        .build::<String>()
        .expect("a valid configuration");
    model.default_ttl = setup.default_ttl.map(nanos);
    model.sliding = setup.sliding;
    model.capacity = setup.capacity;
    model.max_weight = setup.max_weight;
    (Box::new(store), model, log)
}

/// What the listener reported as expired so far, checked against what the model can
/// prove: every expired entry the model dropped was reported, and nothing was
/// reported that was not an expired entry of the model.
#[derive(Debug, Default)]
struct Listened {
    expired: BTreeMap<(String, String), u64>,
}

impl Listened {
    /// Takes the listener's new reports: the removals other than expirations must be
    /// the model's, cause by cause (in any order within one operation: a `clear` goes
    /// shard by shard); expirations are counted.
    fn take(&mut self, log: &Log, model: &mut Model, at: &str) -> Result<(), TestCaseError> {
        let mut got: Vec<(String, String, RemovalCause)> = Vec::new();
        for (k, v, cause) in log.lock().unwrap().drain(..) {
            if cause == RemovalCause::Expired {
                *self.expired.entry((k, v)).or_default() += 1;
            } else {
                got.push((k, v, cause));
            }
        }
        let mut want = std::mem::take(&mut model.log);
        let key =
            |e: &(String, String, RemovalCause)| (e.0.clone(), e.1.clone(), format!("{:?}", e.2));
        got.sort_by_key(key);
        want.sort_by_key(key);
        prop_assert_eq!(
            got,
            want,
            "{}: removals, listener (left) vs model (right)",
            at
        );
        let dead = model.dead();
        for ((k, v), &n) in &self.expired {
            let gone = model
                .expired_gone
                .get(&(k.clone(), v.clone()))
                .copied()
                .unwrap_or(0);
            let pending = dead.get(&(k.clone(), v.clone())).copied().unwrap_or(0);
            prop_assert!(
                n <= gone + pending,
                "{}: {:?}={:?} reported expired {} times, the model dropped {} and holds {}",
                at,
                k,
                v,
                n,
                gone,
                pending
            );
        }
        for ((k, v), &gone) in &model.expired_gone {
            let n = self
                .expired
                .get(&(k.clone(), v.clone()))
                .copied()
                .unwrap_or(0);
            prop_assert!(
                n >= gone,
                "{}: {:?}={:?} reported expired {} times, the model dropped it {} times",
                at,
                k,
                v,
                n,
                gone
            );
        }
        Ok(())
    }
}

/// Drives a scan to completion; returns every pair in the order the pages gave them.
fn full_scan(
    store: &dyn Store<String>,
    pat: Pat,
    limit: usize,
    at: &str,
) -> Result<Vec<(String, String)>, TestCaseError> {
    let pattern = pat
        .text()
        .map(|t| Pattern::new(t).expect("a valid pattern"));
    let mut cursor: Option<String> = None;
    let mut items = Vec::new();
    for _ in 0..1000 {
        let page = store
            .scan(pattern.as_ref(), cursor.as_deref(), limit)
            .map_err(|e| TestCaseError::fail(format!("{at}: scan failed: {e}")))?;
        prop_assert!(
            page.items.len() <= limit,
            "{}: a page of {} pairs, limit {}",
            at,
            page.items.len(),
            limit
        );
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
    Err(TestCaseError::fail(format!(
        "{at}: scan did not finish within 1000 pages"
    )))
}

/// Compares what can be observed without side effects: every key's TTL (which also
/// says whether it is live) and the counters.
fn check_state(
    store: &dyn Store<String>,
    model: &Model,
    last_expirations: &mut u64,
    at: &str,
) -> Result<(), TestCaseError> {
    if let Some(max) = model.max_weight {
        // The store counts expired entries until it removes them.
        let w = store
            .weight()
            .expect("a weight-bounded store counts weights");
        let (live, dead) = (model.live_weight(), model.dead_weight());
        prop_assert!(w <= max, "{}: weight {} over the bound {}", at, w, max);
        prop_assert!(
            (live..=live + dead).contains(&w),
            "{}: weight {}, the model has {} live and {} expired",
            at,
            w,
            live,
            dead
        );
    } else {
        prop_assert_eq!(store.weight(), None, "{}: weights are not counted", at);
    }
    prop_assert_eq!(store.stats().listener_panics, 0, "{}: listener panics", at);
    for &k in KEYS {
        let want = model.live(k).map(|e| model.remaining(e));
        prop_assert_eq!(
            store.ttl(k),
            want,
            "{}: ttl({:?}), store (left) vs model (right)",
            at,
            k
        );
    }
    let stats = store.stats();
    prop_assert_eq!(
        stats.hits,
        model.hits,
        "{}: hits, store (left) vs model (right)",
        at
    );
    prop_assert_eq!(
        stats.misses,
        model.misses,
        "{}: misses, store (left) vs model (right)",
        at
    );
    prop_assert_eq!(
        stats.evictions,
        model.evictions,
        "{}: evictions, store (left) vs model (right)",
        at
    );
    let low = model.expired_removed;
    let high = model.expired_removed + model.expired_cleared + model.dead_count();
    prop_assert!(
        stats.expirations >= *last_expirations,
        "{}: expirations went down from {} to {}",
        at,
        last_expirations,
        stats.expirations
    );
    prop_assert!(
        (low..=high).contains(&stats.expirations),
        "{}: expirations {} outside {}..={}",
        at,
        stats.expirations,
        low,
        high
    );
    *last_expirations = stats.expirations;
    Ok(())
}

fn run(setup: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let (store, mut model, log) = build(setup, &clock);
    let store = &*store;
    let mut listened = Listened::default();

    let mode = store.mode();
    prop_assert_eq!(mode.read_only, model.read_only);
    prop_assert_eq!(mode.capacity, model.capacity);
    prop_assert_eq!(mode.max_weight, model.max_weight);
    prop_assert_eq!(mode.default_ttl, setup.default_ttl);
    prop_assert_eq!(mode.sliding, model.sliding);

    let mut last_expirations = 0;
    check_state(store, &model, &mut last_expirations, "at the start")?;
    for (i, op) in ops.iter().enumerate() {
        let at = format!("op #{i} {op:?}");
        match op {
            Op::Advance(ms) => {
                clock.advance(Duration::from_millis(*ms));
                model.now += ms * NANOS_PER_MS;
            }
            Op::Purge(budget) => {
                let before = store.stats().expirations;
                let removed = store.purge_expired(*budget);
                let after = store.stats().expirations;
                prop_assert!(removed <= *budget, "{}: removed {}", at, removed);
                prop_assert_eq!(
                    after - before,
                    removed as u64,
                    "{}: expirations counted vs keys removed",
                    at
                );
            }
            Op::Scan(pat, limit) => {
                let items = full_scan(store, *pat, *limit, &at)?;
                model
                    .scan(*pat, &items)
                    .map_err(|m| TestCaseError::fail(format!("{at}: {m}")))?;
            }
            _ => {
                let want = model.apply(op);
                let got = run_on_store(store, op);
                prop_assert_eq!(got, want, "{}: store (left) vs model (right)", at);
            }
        }
        listened.take(&log, &mut model, &at)?;
        check_state(store, &model, &mut last_expirations, &at)?;
    }

    // The final contents.
    let at = "at the end";
    prop_assert_eq!(store.len(), model.live_count(), "{}: len", at);
    prop_assert_eq!(
        store.is_empty(),
        model.live_count() == 0,
        "{}: is_empty",
        at
    );
    let items = full_scan(store, Pat::All, 3, at)?;
    model
        .scan(Pat::All, &items)
        .map_err(|m| TestCaseError::fail(format!("{at}: {m}")))?;
    listened.take(&log, &mut model, at)?;
    check_state(store, &model, &mut last_expirations, at)?;

    // Once every expired key is purged, each expired entry has been counted exactly
    // once — unless `clear` dropped some before the store got to them.
    store.purge_expired(usize::MAX);
    listened.take(&log, &mut model, at)?;
    if !model.read_only {
        // ...and reported exactly once, `clear` or not.
        let mut want = model.expired_gone.clone();
        for (entry, n) in model.dead() {
            *want.entry(entry).or_default() += n;
        }
        prop_assert_eq!(
            &listened.expired,
            &want,
            "{}: expirations reported after a full purge, listener (left) vs model (right)",
            at
        );
    }
    if model.max_weight.is_some() {
        prop_assert_eq!(store.weight(), Some(model.live_weight()), "{}: weight", at);
    }
    let expirations = store.stats().expirations;
    let counted = model.expired_removed + model.dead_count();
    if model.expired_cleared == 0 {
        prop_assert_eq!(
            expirations,
            counted,
            "{}: expirations after a full purge",
            at
        );
    } else {
        prop_assert!(
            (counted..=counted + model.expired_cleared).contains(&expirations),
            "{}: expirations {} after a full purge, {} counted, {} cleared",
            at,
            expirations,
            counted,
            model.expired_cleared
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The properties, one per mode
// ---------------------------------------------------------------------------------

fn shards() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        Just(Some(1)),
        Just(Some(4)),
        (2..=16usize).prop_map(Some)
    ]
}

fn default_ttl() -> impl Strategy<Value = Duration> {
    (1..=20u64).prop_map(|q| Duration::from_millis(q * 250))
}

fn capacity() -> impl Strategy<Value = usize> {
    1..=5usize
}

/// From below the heaviest entry (a two-letter key and a 19-digit value weigh 21) to
/// room for several.
fn max_weight() -> impl Strategy<Value = u64> {
    4..=40u64
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Failures are reported, not written next to this file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plain(shards in shards(), ops in ops()) {
        run(&Setup::writable(shards), &ops)?;
    }

    #[test]
    fn fixed_ttl(shards in shards(), ttl in default_ttl(), ops in ops()) {
        let setup = Setup { default_ttl: Some(ttl), ..Setup::writable(shards) };
        run(&setup, &ops)?;
    }

    #[test]
    fn sliding_ttl(shards in shards(), ttl in default_ttl(), ops in ops()) {
        let setup = Setup { default_ttl: Some(ttl), sliding: true, ..Setup::writable(shards) };
        run(&setup, &ops)?;
    }

    #[test]
    fn lru(shards in shards(), capacity in capacity(), ops in ops()) {
        let setup = Setup { capacity: Some(capacity), ..Setup::writable(shards) };
        run(&setup, &ops)?;
    }

    #[test]
    fn lru_fixed_ttl(
        shards in shards(),
        capacity in capacity(),
        ttl in default_ttl(),
        ops in ops(),
    ) {
        let setup = Setup {
            capacity: Some(capacity),
            default_ttl: Some(ttl),
            ..Setup::writable(shards)
        };
        run(&setup, &ops)?;
    }

    #[test]
    fn lru_sliding_ttl(
        shards in shards(),
        capacity in capacity(),
        ttl in default_ttl(),
        ops in ops(),
    ) {
        let setup = Setup {
            capacity: Some(capacity),
            default_ttl: Some(ttl),
            sliding: true,
            ..Setup::writable(shards)
        };
        run(&setup, &ops)?;
    }

    #[test]
    fn read_only(dataset in vec((key(), value()), 0..12), ops in ops()) {
        let setup = Setup { dataset: Some(dataset), ..Setup::writable(None) };
        run(&setup, &ops)?;
    }

    #[test]
    fn weight_bound(shards in shards(), max in max_weight(), ops in ops()) {
        let setup = Setup { max_weight: Some(max), ..Setup::writable(shards) };
        run(&setup, &ops)?;
    }

    #[test]
    fn weight_fixed_ttl(
        shards in shards(),
        max in max_weight(),
        ttl in default_ttl(),
        ops in ops(),
    ) {
        let setup = Setup {
            max_weight: Some(max),
            default_ttl: Some(ttl),
            ..Setup::writable(shards)
        };
        run(&setup, &ops)?;
    }

    #[test]
    fn weight_lru_sliding_ttl(
        shards in shards(),
        max in max_weight(),
        capacity in capacity(),
        ttl in default_ttl(),
        ops in ops(),
    ) {
        let setup = Setup {
            max_weight: Some(max),
            capacity: Some(capacity),
            default_ttl: Some(ttl),
            sliding: true,
            ..Setup::writable(shards)
        };
        run(&setup, &ops)?;
    }
}
