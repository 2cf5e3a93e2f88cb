//! Unit tests of the memory store's internals.

use super::slot::INLINE_KEY;
use super::*;
use crate::clock::to_nanos;
use crate::{Clock, ManualClock, StoreBuilder};

/// The keys of the first page of a scan, sorted.
fn first_page(s: &MemoryStore<u64>, pattern: Option<&Pattern>, limit: usize) -> Vec<String> {
    let page = s.scan(pattern, None, limit).unwrap();
    let mut keys: Vec<String> = page.items.into_iter().map(|(k, _)| k).collect();
    keys.sort();
    keys
}

fn store(b: StoreBuilder) -> (MemoryStore<u64>, ManualClock) {
    let clock = ManualClock::new();
    (b.clock(clock.clone()).build().unwrap(), clock)
}

const SEC: Duration = Duration::from_secs(1);

/// A clock whose cheap reading lags its precise one by `lag` and claims `slack`,
/// and that counts its readings of each kind.
#[derive(Debug)]
struct Lagging {
    precise: ManualClock,
    lag: Duration,
    slack: Duration,
    precise_reads: AtomicUsize,
    cheap_reads: AtomicUsize,
}

impl Lagging {
    fn new(precise: &ManualClock, lag: Duration, slack: Duration) -> Self {
        Lagging {
            precise: precise.clone(),
            lag,
            slack,
            precise_reads: AtomicUsize::new(0),
            cheap_reads: AtomicUsize::new(0),
        }
    }

    /// Readings of either kind so far.
    fn reads(&self) -> usize {
        self.precise_reads.load(Relaxed) + self.cheap_reads.load(Relaxed)
    }
}

impl Clock for Lagging {
    fn now(&self) -> std::time::SystemTime {
        self.precise_reads.fetch_add(1, Relaxed);
        self.precise.now()
    }

    fn coarse_now(&self) -> (std::time::SystemTime, Duration) {
        self.cheap_reads.fetch_add(1, Relaxed);
        (self.precise.now() - self.lag, self.slack)
    }
}

#[test]
fn reads_decide_from_the_cheap_reading_unless_the_deadline_is_within_its_slack() {
    let ms = Duration::from_millis(1);
    let precise = ManualClock::new();
    let clock = Arc::new(Lagging::new(&precise, 3 * ms, 10 * ms));
    let s = StoreBuilder::new()
        .clock(Arc::clone(&clock))
        .build::<u64>()
        .unwrap();
    s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
    let reads = || clock.precise_reads.load(Relaxed);

    // Far from the deadline: live, from the cheap reading alone.
    let before = reads();
    assert_eq!(s.get("k"), Some(1));
    let ttl = s.ttl("k").flatten().unwrap();
    assert_eq!(reads(), before, "no precise reading far from the deadline");
    // The remaining time counts from the cheap reading's upper bound: 10 - 3 ms
    // less than the precise remaining time.
    assert_eq!(ttl, SEC - 7 * ms);

    // Within the slack: the precise reading decides, both ways.
    precise.advance(SEC - 2 * ms); // cheap reading 5 ms before the deadline
    assert_eq!(s.get("k"), Some(1));
    assert!(reads() > before, "a precise reading near the deadline");
    precise.advance(2 * ms); // precisely at the deadline; cheap reading 3 ms before
    assert_eq!(s.get("k"), None, "dead by the precise reading");
    assert!(!s.contains("k"));

    // Past the deadline by more than the lag: dead from the cheap reading alone.
    s.set("j", 2, SetOptions::new().ttl(SEC)).unwrap();
    precise.advance(SEC + 4 * ms);
    let before = reads();
    assert_eq!(s.get("j"), None);
    assert_eq!(
        reads(),
        before,
        "no precise reading long after the deadline"
    );
}

#[test]
fn writes_read_the_clock_only_when_a_deadline_is_involved() {
    let clock = Arc::new(Lagging::new(
        &ManualClock::new(),
        Duration::ZERO,
        Duration::ZERO,
    ));
    let s = StoreBuilder::new()
        .clock(Arc::clone(&clock))
        .build::<String>()
        .unwrap();
    let reads = || clock.reads();
    let v = |s: &str| s.to_owned();
    s.set("k", v("1"), SetOptions::new()).unwrap();
    let before = reads();
    let replaced = s.set("k", v("2"), SetOptions::new()).unwrap();
    assert_eq!(replaced, SetOutcome::Replaced);
    assert_eq!(s.incr("n", 1).unwrap(), 1);
    assert_eq!(s.incr("n", 1).unwrap(), 2);
    assert_eq!(reads(), before, "no deadline: no clock");

    // A new deadline, or an old one to check, needs the time.
    s.set("k", v("3"), SetOptions::new().ttl(SEC)).unwrap();
    assert!(reads() > before);
    let before = reads();
    s.set("k", v("4"), SetOptions::new().keep_ttl()).unwrap();
    assert!(reads() > before, "the old deadline is checked");
    assert_eq!(s.ttl("k"), Some(Some(SEC)));
}

/// How far `key`'s stored deadline lies past `precise`'s time, looked at without
/// counting a read or restarting a sliding TTL.
fn until_deadline(s: &MemoryStore<u64>, key: &str, precise: &ManualClock) -> Duration {
    let d = s
        .shared
        .read(key, false, |slot, _| slot.deadline())
        .unwrap();
    Duration::from_nanos(d - to_nanos(precise.now()))
}

#[test]
fn a_write_deadline_counts_from_the_cheap_reading_when_its_slack_is_a_thousandth_of_the_ttl() {
    let ms = Duration::from_millis(1);
    let precise = ManualClock::new();
    let clock = Arc::new(Lagging::new(&precise, 3 * ms, 10 * ms));
    let s = StoreBuilder::new()
        .clock(Arc::clone(&clock))
        .build::<u64>()
        .unwrap();
    let precise_reads = || clock.precise_reads.load(Relaxed);
    let left = |key: &str| until_deadline(&s, key, &precise);

    // 10 ms of slack is at most a thousandth of 10 s: the deadline counts from the
    // cheap reading's upper bound (3 ms behind, 10 ms of slack), with no precise
    // reading, and ends 7 ms after a precise start would.
    let before = precise_reads();
    s.set("long", 1, SetOptions::new().ttl(10 * SEC)).unwrap();
    assert_eq!(precise_reads(), before);
    assert_eq!(left("long"), 10 * SEC + 7 * ms);
    // Replacing it checks its deadline on the cheap reading alone.
    s.set("long", 2, SetOptions::new().keep_ttl()).unwrap();
    assert_eq!(precise_reads(), before);
    // Its remaining time never shows more than the TTL.
    assert_eq!(s.ttl("long"), Some(Some(10 * SEC)));

    // A thousandth of 9.999 s is less than the slack: a precise start.
    s.set("short", 1, SetOptions::new().ttl(10 * SEC - ms))
        .unwrap();
    assert!(precise_reads() > before);
    assert_eq!(left("short"), 10 * SEC - ms);

    // A deadline within the slack of the cheap reading: the precise one decides
    // whether the key a write finds is still there.
    s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
    precise.advance(SEC - ms);
    let if_absent = SetOptions::new().if_absent();
    let before = precise_reads();
    assert_eq!(s.set("k", 2, if_absent).unwrap(), SetOutcome::NotSet);
    assert!(precise_reads() > before);
    precise.advance(ms);
    assert_eq!(s.set("k", 3, if_absent).unwrap(), SetOutcome::Created);
    assert_eq!(s.get("k"), Some(3));
}

#[test]
fn a_sliding_restart_counts_from_the_cheap_readings_upper_bound() {
    let ms = Duration::from_millis(1);
    let precise = ManualClock::new();
    let clock = Lagging::new(&precise, 3 * ms, 10 * ms);
    let s = StoreBuilder::new()
        .default_ttl(SEC)
        .sliding(true)
        .clock(clock)
        .build::<u64>()
        .unwrap();
    s.set("k", 1, SetOptions::new()).unwrap();
    precise.advance(SEC / 2);
    assert_eq!(s.get("k"), Some(1));
    // Restarted at (precise - 3 ms + 10 ms) + 1 s: 7 ms later than a precise
    // restart, never earlier.
    assert_eq!(until_deadline(&s, "k", &precise), SEC + 7 * ms);
    precise.advance(SEC + 6 * ms);
    assert_eq!(s.get("k"), Some(1), "still live 1.006 s after the read");
}

#[test]
fn expired_at_exactly_the_deadline() {
    let (s, clock) = store(StoreBuilder::new());
    s.set("k", 1, SetOptions::new().ttl(SEC)).unwrap();
    clock.advance(SEC - Duration::from_nanos(1));
    assert_eq!(s.get("k"), Some(1));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(s.get("k"), None);
    assert_eq!(s.ttl("k"), None);
    assert!(!s.contains("k"));
}

#[test]
fn purge_removes_expired_in_bounded_steps() {
    let (s, clock) = store(StoreBuilder::new().shards(1));
    for i in 0..10 {
        s.set(&format!("k{i}"), i, SetOptions::new().ttl(SEC))
            .unwrap();
    }
    s.set("forever", 0, SetOptions::new()).unwrap();
    clock.advance(SEC);
    assert_eq!(s.purge_expired(3), 3);
    assert_eq!(s.shared.slots(), 8);
    assert_eq!(s.purge_expired(100), 7);
    assert_eq!(s.purge_expired(100), 0);
    assert_eq!(s.len(), 1);
    assert_eq!(s.stats().expirations, 10);
}

#[test]
fn sliding_reads_refile_lazily_and_purge_keeps_live_keys() {
    let (s, clock) = store(
        StoreBuilder::new()
            .default_ttl(10 * SEC)
            .sliding(true)
            .shards(1),
    );
    s.set("k", 7, SetOptions::new()).unwrap();
    for _ in 0..5 {
        clock.advance(6 * SEC);
        assert_eq!(s.get("k"), Some(7));
    }
    // The heap item (filed at the first deadline) is long due; purging must refile,
    // not remove.
    assert_eq!(s.purge_expired(10), 0);
    assert_eq!(s.shared.shards[0].table.read().expiry.len(), 1);
    assert_eq!(s.ttl("k"), Some(Some(10 * SEC)));
    clock.advance(10 * SEC);
    assert_eq!(s.purge_expired(10), 1);
    assert_eq!(s.len(), 0);
}

#[test]
fn shortened_ttl_is_filed_again_and_longer_one_is_not() {
    let (s, clock) = store(StoreBuilder::new().shards(1));
    s.set("k", 1, SetOptions::new().ttl(100 * SEC)).unwrap();
    s.expire("k", 200 * SEC).unwrap();
    assert_eq!(s.shared.shards[0].table.read().expiry.len(), 1);
    s.expire("k", 5 * SEC).unwrap();
    assert_eq!(s.shared.shards[0].table.read().expiry.len(), 2);
    clock.advance(5 * SEC);
    assert_eq!(s.purge_expired(10), 1);
}

#[test]
fn stale_heap_items_are_compacted() {
    let (s, _clock) = store(StoreBuilder::new().shards(1));
    for i in 0..1000 {
        let key = format!("k{i}");
        s.set(&key, i, SetOptions::new().ttl(SEC)).unwrap();
        s.delete(&key).unwrap();
    }
    s.purge_expired(1);
    assert!(s.shared.shards[0].table.read().expiry.len() <= 64);
}

#[test]
fn lru_index_is_compacted_after_churn() {
    let (s, _clock) = store(StoreBuilder::new().capacity(10));
    for i in 0..5000 {
        let key = format!("k{i}");
        s.set(&key, i, SetOptions::new()).unwrap();
        s.delete(&key).unwrap();
    }
    assert!(s.shared.lru.lock().len() <= 2 * 10 + 1024 + 1);
}

#[test]
fn lru_index_pops_oldest_first_and_files_a_raced_stamp_at_the_last_popped() {
    let at = |n: u64| SlotRef { hash: n, addr: 0 };
    let mut index = LruIndex::default();
    for stamp in [7, 3, 9, 5] {
        index.push(stamp, at(stamp));
    }
    assert_eq!(index.pop(), Some((3, at(3))));
    assert_eq!(index.pop(), Some((5, at(5))));
    // Older than the last popped stamp: filed at 5, so it comes out next.
    index.push(4, at(4));
    index.push(8, at(8));
    assert_eq!(index.pop(), Some((5, at(4))));
    let rest: Vec<_> = std::iter::from_fn(|| index.pop()).collect();
    assert_eq!(rest, [(7, at(7)), (8, at(8)), (9, at(9))]);
    assert_eq!(index.len(), 0);
    // A cleared index takes any stamp again.
    index.push(100, at(100));
    index.clear();
    index.push(1, at(1));
    assert_eq!(index.pop(), Some((1, at(1))));
}

#[test]
fn inline_and_boxed_keys_behave_alike() {
    let (s, _clock) = store(StoreBuilder::new().capacity(2));
    let boxed = "k".repeat(INLINE_KEY + 1);
    let inline = "é".repeat(INLINE_KEY / 2); // exactly INLINE_KEY bytes
    assert!(matches!(Key::new(&boxed), Key::Boxed(_)));
    assert!(matches!(Key::new(&inline), Key::Inline { .. }));
    s.set(&boxed, 1, SetOptions::new().ttl(SEC)).unwrap();
    s.set(&inline, 2, SetOptions::new()).unwrap();
    assert_eq!(first_page(&s, None, 10), [boxed.clone(), inline.clone()]);
    assert_eq!((s.get(&boxed), s.get(&inline)), (Some(1), Some(2)));
    s.set("new", 3, SetOptions::new()).unwrap(); // evicts the boxed key, used first
    assert!(!s.contains(&boxed) && s.contains(&inline));
    assert_eq!(s.stats().evictions, 1);
}

#[test]
fn eviction_prefers_expired_keys_and_counts_them_apart() {
    let (s, clock) = store(StoreBuilder::new().capacity(2));
    s.set("old", 1, SetOptions::new().ttl(SEC)).unwrap();
    s.set("keep", 2, SetOptions::new()).unwrap();
    clock.advance(SEC);
    s.set("new", 3, SetOptions::new()).unwrap();
    assert_eq!(s.get("keep"), Some(2));
    assert_eq!(s.get("new"), Some(3));
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.expirations), (0, 1));
}

#[test]
fn exact_lru_across_shards() {
    let (s, _clock) = store(StoreBuilder::new().capacity(3).shards(64));
    for k in ["a", "b", "c"] {
        s.set(k, 0, SetOptions::new()).unwrap();
    }
    s.get("a");
    s.set("d", 0, SetOptions::new()).unwrap();
    assert!(!s.contains("b"));
    s.set("c", 1, SetOptions::new()).unwrap(); // a write is a use too
    s.set("e", 0, SetOptions::new()).unwrap();
    assert!(!s.contains("a"));
    assert!(s.contains("c") && s.contains("d") && s.contains("e"));
}

#[test]
fn conditional_failure_in_full_store_evicts_nothing() {
    let (s, _clock) = store(StoreBuilder::new().capacity(1));
    s.set("a", 1, SetOptions::new()).unwrap();
    let out = s.set("b", 2, SetOptions::new().if_present()).unwrap();
    assert_eq!(out, SetOutcome::NotSet);
    assert!(
        !s.insert_all_absent(vec![("a".into(), 5)], Expiry::Default)
            .unwrap()
    );
    assert_eq!(s.get("a"), Some(1));
    assert_eq!(s.stats().evictions, 0);
}

#[test]
fn scan_pages_return_each_key_once_despite_writes() {
    let (s, _clock) = store(StoreBuilder::new().shards(4));
    for i in 0..500 {
        s.set(&format!("k{i:03}"), i, SetOptions::new()).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = None;
    let mut round = 0;
    loop {
        let page = s.scan(None, cursor.as_deref(), 7).unwrap();
        assert!(page.items.len() <= 7);
        for (k, _) in page.items {
            assert!(seen.insert(k.clone()), "{k} returned twice");
        }
        // Churn between pages: new keys and deletions of keys added meanwhile.
        round += 1;
        s.set(&format!("new{round}"), 0, SetOptions::new()).unwrap();
        if round % 2 == 0 {
            s.delete(&format!("new{}", round - 1)).unwrap();
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for i in 0..500 {
        assert!(seen.contains(&format!("k{i:03}")));
    }
}

#[test]
fn scan_filters_and_rejects_bad_cursors() {
    let (s, _clock) = store(StoreBuilder::new());
    for k in ["word", "world", "wod", "other"] {
        s.set(k, 1, SetOptions::new()).unwrap();
    }
    let p = Pattern::new("wo$d").unwrap();
    assert_eq!(first_page(&s, Some(&p), 100), ["wod", "word", "world"]);
    assert!(matches!(
        s.scan(None, Some("nope"), 10),
        Err(Error::InvalidCursor { .. })
    ));
}

#[test]
fn incr_errors_change_nothing() {
    let n = StoreBuilder::new().build::<i64>().unwrap();
    n.set("n", 5, SetOptions::new()).unwrap();
    assert_eq!(n.incr("n", -10).unwrap(), -5);
    n.set("top", i64::MAX, SetOptions::new()).unwrap();
    assert!(matches!(n.incr("top", 1), Err(Error::Overflow { .. })));
    assert_eq!(n.get("top"), Some(i64::MAX));

    let (s, _clock) = store(StoreBuilder::new());
    s.set("max", u64::MAX, SetOptions::new()).unwrap();
    // u64 does not hold integers for incr.
    assert!(matches!(s.incr("max", 1), Err(Error::NotAnInteger { .. })));
    assert!(matches!(s.incr("fresh", 1), Err(Error::IncrUnsupported)));
    assert!(!s.contains("fresh"));
}

#[test]
fn bad_ttls_are_refused() {
    let (s, _clock) = store(StoreBuilder::new());
    for ttl in [Duration::ZERO, MAX_TTL + Duration::from_nanos(1)] {
        assert!(matches!(
            s.set("k", 1, SetOptions::new().ttl(ttl)),
            Err(Error::InvalidTtl { .. })
        ));
        assert!(matches!(s.expire("k", ttl), Err(Error::InvalidTtl { .. })));
    }
    assert!(!s.contains("k"));
}

#[test]
fn pages_run_to_the_last_page_and_stop_after_an_error() {
    let (s, _) = store(StoreBuilder::new());
    for i in 0..10u64 {
        s.set(&format!("k{i}"), i, SetOptions::new()).unwrap();
    }
    let sizes: Vec<usize> = crate::Pages::new(&s, None, 4)
        .map(|page| page.unwrap().items.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().all(|&n| n <= 4));
    let mut failing = crate::Pages::new(&s, None, 0);
    assert!(matches!(failing.next(), Some(Err(Error::InvalidLimit))));
    assert!(failing.next().is_none());
}

// ---------------------------------------------------------------- single flight

/// Waits (yielding) until `n` callers wait on the store's flights; panics after a
/// generous while, so that a broken flight fails the test instead of hanging it.
fn until_waiting(s: &MemoryStore<String>, n: usize) {
    for _ in 0..10_000_000 {
        if s.shared.flights.waiting() >= n {
            return;
        }
        std::thread::yield_now();
    }
    panic!("{n} waiters never came");
}

#[derive(Debug)]
struct Failure(usize);

impl From<Error> for Failure {
    fn from(_: Error) -> Self {
        Failure(usize::MAX)
    }
}

#[test]
fn waiters_share_the_leaders_error() {
    use crate::StoreExt;
    let s = StoreBuilder::new().build::<String>().unwrap();
    let runs = AtomicUsize::new(0);
    let errors: Vec<Arc<Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    s.try_get_with("k", || {
                        let run = runs.fetch_add(1, Relaxed);
                        until_waiting(&s, 7);
                        Err::<String, _>(Failure(run))
                    })
                    .unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Relaxed), 1);
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "one error, shared"
    );
    assert_eq!(errors[0].0, 0);
    assert!(!s.contains("k"));
}

#[test]
fn a_panicking_loader_hands_the_load_to_a_waiter() {
    use crate::StoreExt;
    let s = StoreBuilder::new().build::<String>().unwrap();
    let runs = AtomicUsize::new(0);
    let results: Vec<std::thread::Result<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    s.get_with("k", || {
                        if runs.fetch_add(1, Relaxed) == 0 {
                            until_waiting(&s, 7);
                            panic!("the first load panics");
                        }
                        "second".to_string()
                    })
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    assert_eq!(runs.load(Relaxed), 2, "one waiter loaded again");
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    for r in results.into_iter().flatten() {
        assert_eq!(r, "second");
    }
    assert_eq!(s.shared.flights.waiting(), 0);
    assert_eq!(s.get("k").as_deref(), Some("second"));
}

#[test]
fn a_waiter_with_another_error_type_loads_itself() {
    use crate::StoreExt;
    let s = StoreBuilder::new().build::<String>().unwrap();
    let (leading, led) = std::sync::mpsc::channel();
    let (leader, waiter) = std::thread::scope(|scope| {
        let leader = scope.spawn(|| {
            s.try_get_with("k", || {
                leading.send(()).unwrap();
                until_waiting(&s, 1);
                Err::<String, _>(Failure(1))
            })
        });
        led.recv().unwrap(); // the leader's init runs
        let waiter = scope.spawn(|| s.try_get_with("k", || Ok::<_, Error>("mine".to_string())));
        (leader.join().unwrap(), waiter.join().unwrap())
    });
    assert_eq!(leader.unwrap_err().0, 1);
    assert_eq!(waiter.unwrap(), "mine");
}

/// Reads prefetch a key's bucket where hashbrown's layout puts it (see
/// `prefetch.rs`). This checks that layout against every bucket of a table as it
/// grows: each full bucket is where `BucketEnd` says, and most keys sit in the first
/// sixteen buckets of the probe that starts where `BucketEnd` starts it. It runs
/// under Miri too, prefetch included, with fewer keys (`cargo +nightly miri test -p
/// kvcore --lib prefetched`).
#[test]
fn prefetched_buckets_are_where_the_table_keeps_them() {
    let (s, _) = store(StoreBuilder::new().shards(1));
    let keys = if cfg!(miri) { 600 } else { 5_000u64 };
    let mut checked = 0;
    for i in 0..keys {
        let key = format!("key:{i}");
        s.set(&key, i, SetOptions::new()).unwrap();
        assert_eq!(s.get(&key), Some(i));
        if !(i.is_power_of_two() || i % 499 == 0) {
            continue;
        }
        let table = s.shared.shards[0].table.read();
        let buckets = table.slots.num_buckets();
        let mut full = 0;
        for index in 0..buckets {
            if let Some(bucket) = table.slots.get_bucket(index) {
                let at = std::ptr::from_ref(bucket).addr();
                assert_eq!(at, table.buckets.bucket::<Box<Slot<u64>>>(index));
                full += 1;
            }
        }
        assert_eq!(full, table.slots.len());
        let near = (0..=i)
            .filter(|j| {
                let key = format!("key:{j}");
                let hash = s.shared.hash(&key);
                let index = table.slots.find_bucket_index(hash, |s| s.key.is(&key));
                let start = BucketEnd::probe_start(hash, buckets);
                index.is_some_and(|index| index.wrapping_sub(start) & (buckets - 1) < 16)
            })
            .count();
        assert!(
            near * 10 >= (i as usize + 1) * 9,
            "{near} of {} keys near their probe's start",
            i + 1
        );
        checked += 1;
    }
    assert!(checked >= 10);
}
