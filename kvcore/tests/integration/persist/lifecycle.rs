//! A store over its life: compaction racing writers, TTLs across restarts, the
//! directory lock, fsync policies, value codecs, and capacity.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use kvcore::persist::{self, Fsync, Holder, PersistOptions, ValueCodec};
use kvcore::{Clock, Error, ManualClock, PersistentStore, SetOptions, Store, StoreBuilder};

use super::*;
use crate::util::Rng;

// ---------------------------------------------------------------------------------
// 5. Compaction racing writers.

#[test]
fn compaction_racing_writers_loses_nothing() {
    const WRITERS: usize = 3;
    const OPS: usize = 3000;
    const KEYS: u64 = 150;
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = PersistOptions::default()
        .fsync(Fsync::No)
        .compact_min_bytes(1)
        .compact_ratio(1);
    let store = open::<String>(dir.path(), &clock, opts);
    let writing = AtomicUsize::new(WRITERS);
    type Model = BTreeMap<String, (String, Option<Duration>)>;
    let (models, explicit) = thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (store, writing) = (&store, &writing);
                scope.spawn(move || {
                    let mut rng = Rng::new(t as u64);
                    let mut model = Model::new();
                    let counter = format!("c{t}");
                    for i in 0..OPS {
                        let key = format!("w{t}-{}", rng.below(KEYS));
                        match rng.below(10) {
                            0 | 1 => {
                                let was = store.delete(&key).unwrap();
                                assert_eq!(was, model.remove(&key).is_some());
                            }
                            2 => {
                                let ttl = Duration::from_secs(1 + rng.below(1000));
                                store
                                    .set(&key, format!("{t}:{i}"), SetOptions::new().ttl(ttl))
                                    .unwrap();
                                model.insert(key, (format!("{t}:{i}"), Some(ttl)));
                            }
                            3 => {
                                let n = store.incr(&counter, 1).unwrap();
                                model.insert(counter.clone(), (n.to_string(), None));
                            }
                            _ => {
                                store
                                    .set(&key, format!("{t}:{i}"), SetOptions::new())
                                    .unwrap();
                                model.insert(key, (format!("{t}:{i}"), None));
                            }
                        }
                    }
                    writing.fetch_sub(1, SeqCst);
                    model
                })
            })
            .collect();
        let compactor = scope.spawn(|| {
            let mut n = 0;
            while writing.load(SeqCst) > 0 || n < 3 {
                store.compact().unwrap();
                n += 1;
            }
            n
        });
        let models: Vec<Model> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        (models, compactor.join().unwrap())
    });
    let expected: Model = models.into_iter().flatten().collect();
    assert_eq!(dump_ttl(&store), expected, "before reopening");
    let info = store.snapshot_info();
    assert!(info.compactions >= explicit, "{info:?}");
    drop(store);

    let store = open::<String>(dir.path(), &clock, opts);
    assert_eq!(store.recovery().torn_tail, None);
    assert_eq!(
        dump_ttl(&store),
        expected,
        "after reopening ({explicit} explicit compactions)"
    );

    // The files are consistent: a whole snapshot, and only the journal continuing it.
    let snapshot = fs::read(dir.path().join(SNAPSHOT)).unwrap();
    let generation = header_generation(&snapshot);
    let journals = journal_files(dir.path());
    assert_eq!(
        journals.iter().map(|j| j.0).collect::<Vec<_>>(),
        vec![generation],
        "{journals:?}"
    );
    assert_eq!(store.journal_stats().generation, generation);
    assert!(!dir.path().join("snapshot.kvs.tmp").exists());
    assert_eq!(
        store.recovery().snapshot_records as usize,
        boundaries(&snapshot).len() - 2
    );
}

/// Without any explicit `compact()`, the background thread compacts a journal grown
/// past both thresholds, and the metrics say so.
#[test]
fn the_background_thread_compacts_a_grown_journal() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = PersistOptions::default()
        .fsync(Fsync::No)
        .compact_min_bytes(4096)
        .compact_ratio(1);
    let want: BTreeMap<String, String> = (0..200)
        .map(|i| (format!("k{i:03}"), format!("{i}").repeat(20)))
        .collect();
    {
        let store = open::<String>(dir.path(), &clock, opts);
        let info = store.snapshot_info();
        assert_eq!(
            (info.bytes, info.last_written, info.compactions),
            (0, None, 0)
        );
        for (k, v) in &want {
            store.set(k, v.clone(), SetOptions::new()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.snapshot_info().compactions == 0 {
            assert!(Instant::now() < deadline, "no background compaction");
            thread::sleep(Duration::from_millis(5));
        }
        store.sync().unwrap();
        let info = store.snapshot_info();
        assert_eq!(info.last_written, Some(clock.now()), "by the store's clock");
        assert!(info.bytes > 0);
        let stats = store.journal_stats();
        let (generation, journal) = journal_files(dir.path()).pop().unwrap();
        assert_eq!(stats.generation, generation);
        assert!(stats.generation > 1, "{stats:?}");
        assert_eq!(stats.bytes, file_len(&journal));
        assert_eq!(dump(&store), want);
    }
    let store = open::<String>(dir.path(), &clock, opts);
    assert_eq!(dump(&store), want);
    let info = store.snapshot_info();
    assert_eq!(
        info.bytes,
        file_len(&dir.path().join(SNAPSHOT)),
        "the loaded snapshot's size"
    );
    let mtime = fs::metadata(dir.path().join(SNAPSHOT))
        .and_then(|m| m.modified())
        .unwrap();
    assert_eq!(
        (info.last_written, info.compactions),
        (Some(mtime), 0),
        "the loaded snapshot's time; no compaction by this process"
    );
    assert_eq!(journal_files(dir.path()).len(), 1);
}

// ---------------------------------------------------------------------------------
// 6. TTLs across a restart.

#[test]
fn time_spent_down_counts_and_expired_keys_never_come_back() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = always();
    {
        let store = open::<String>(dir.path(), &clock, opts);
        store
            .set("short", s("10s"), SetOptions::new().ttl(10 * SEC))
            .unwrap();
        store
            .set("long", s("100s"), SetOptions::new().ttl(100 * SEC))
            .unwrap();
        store.set("forever", s("none"), SetOptions::new()).unwrap();
        store
            .set("snap", s("snapshotted"), SetOptions::new().ttl(30 * SEC))
            .unwrap();
        store
            .set("dies-running", s("x"), SetOptions::new().ttl(5 * SEC))
            .unwrap();
        store.compact().unwrap(); // "snap" and "dies-running" are in the snapshot with deadlines
        clock.advance(6 * SEC);
        // Expired in memory but not yet purged: touching it must not revive it.
        assert!(!store.clear_ttl("dies-running").unwrap());
        assert!(!store.expire("dies-running", 1000 * SEC).unwrap());
        let opts = SetOptions::new().keep_ttl().if_present();
        assert_eq!(
            store.set("dies-running", s("y"), opts).unwrap(),
            kvcore::SetOutcome::NotSet
        );
    }
    clock.advance(44 * SEC); // 50 s after the writes, spent down
    {
        let store = open::<String>(dir.path(), &clock, opts);
        assert_eq!(store.get("short"), None, "a 10 s key is gone after 50 s");
        assert_eq!(
            store.ttl("long"),
            Some(Some(50 * SEC)),
            "a 100 s key has 50 s left"
        );
        assert_eq!(store.get("long").as_deref(), Some("100s"));
        assert_eq!(store.ttl("forever"), Some(None));
        assert_eq!(store.get("snap"), None, "a snapshotted key expires too");
        assert_eq!(store.get("dies-running"), None);
        assert_eq!(store.len(), 2);
        store.compact().unwrap();
    }
    {
        let store = open::<String>(dir.path(), &clock, opts);
        assert_eq!(
            dump(&store).into_keys().collect::<Vec<_>>(),
            ["forever", "long"]
        );
        assert_eq!(store.ttl("long"), Some(Some(50 * SEC)));
    }
    clock.advance(50 * SEC); // "long" is due now (exactly at its deadline)
    {
        let store = open::<String>(dir.path(), &clock, opts);
        assert_eq!(
            store.recovery().snapshot_records,
            2,
            "the snapshot held both"
        );
        assert_eq!(store.get("long"), None, "expired exactly at its deadline");
        store.compact().unwrap();
    }
    let store = open::<String>(dir.path(), &clock, opts);
    assert_eq!(
        store.recovery().snapshot_records,
        1,
        "an expired key is not snapshotted"
    );
    assert_eq!(dump(&store).into_keys().collect::<Vec<_>>(), ["forever"]);
}

/// Sliding restarts are not journaled: after a restart a sliding key's deadline is the
/// one of its last write, or of the last snapshot (which records the slid deadline).
/// The TTL length survives, so reads slide it again after the restart.
#[test]
fn a_sliding_deadline_restarts_from_the_last_write_or_snapshot() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let sliding = || {
        StoreBuilder::new()
            .clock(clock.clone())
            .default_ttl(10 * SEC)
            .sliding(true)
            .open::<String>(dir.path(), always())
            .unwrap()
    };
    {
        let store = sliding();
        store.set("journaled", s("j"), SetOptions::new()).unwrap();
        store.set("snapshotted", s("s"), SetOptions::new()).unwrap();
        clock.advance(8 * SEC);
        assert_eq!(store.get("journaled").as_deref(), Some("j"));
        assert_eq!(store.get("snapshotted").as_deref(), Some("s"));
        assert_eq!(
            store.ttl("journaled"),
            Some(Some(10 * SEC)),
            "slid in memory"
        );
        store.compact().unwrap(); // records both slid deadlines (now + 10 s)
        clock.advance(SEC);
        assert_eq!(store.get("journaled").as_deref(), Some("j")); // slides to now + 10 s
        store
            .set("journaled", s("j2"), SetOptions::new().keep_ttl())
            .unwrap(); // journaled
        clock.advance(SEC);
        assert_eq!(store.get("journaled").as_deref(), Some("j2")); // slid, not journaled
        assert_eq!(store.get("snapshotted").as_deref(), Some("s")); // slid, not journaled
        assert_eq!(store.ttl("snapshotted"), Some(Some(10 * SEC)));
    }
    // Restart at the same moment: the slides since the last write or snapshot are lost.
    let store = sliding();
    assert_eq!(
        store.ttl("journaled"),
        Some(Some(9 * SEC)),
        "deadline of the last write"
    );
    assert_eq!(
        store.ttl("snapshotted"),
        Some(Some(8 * SEC)),
        "deadline in the snapshot"
    );
    assert_eq!(store.get("snapshotted").as_deref(), Some("s"));
    assert_eq!(
        store.ttl("snapshotted"),
        Some(Some(10 * SEC)),
        "reads slide it again"
    );
    clock.advance(9 * SEC);
    assert_eq!(store.get("journaled"), None);
    assert_eq!(store.get("snapshotted").as_deref(), Some("s"));
}

// ---------------------------------------------------------------------------------
// 7. The directory lock.

#[test]
fn a_directory_opens_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    assert_eq!(
        persist::holder(dir.path()),
        None,
        "nobody holds a fresh directory"
    );
    let first = StoreBuilder::new()
        .open::<String>(dir.path(), PersistOptions::default())
        .unwrap();
    assert_eq!(first.dir(), dir.path());
    first.set("k", s("v"), SetOptions::new()).unwrap();
    for _ in 0..2 {
        match StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default()) {
            Err(e @ Error::Locked { .. }) => {
                assert!(e.to_string().contains(&pid.to_string()), "{e}");
                let Error::Locked { path, pid: holder } = e else {
                    unreachable!()
                };
                assert_eq!((path.as_path(), holder), (dir.path(), Some(pid)));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert_eq!(persist::holder(dir.path()), Some(Holder { pid: Some(pid) }));
    }
    assert!(
        matches!(persist::repair(dir.path()), Err(Error::Locked { .. })),
        "repair refuses too"
    );
    let clone = first.clone();
    drop(first);
    assert_eq!(
        persist::holder(dir.path()),
        Some(Holder { pid: Some(pid) }),
        "a clone keeps the lock"
    );
    drop(clone);
    assert_eq!(persist::holder(dir.path()), None);
    let again = StoreBuilder::new()
        .open::<String>(dir.path(), PersistOptions::default())
        .unwrap();
    assert_eq!(again.get("k").as_deref(), Some("v"));
    assert_eq!(persist::holder(dir.path()), Some(Holder { pid: Some(pid) }));
}

/// The lock belongs to the store, not to whichever process happens to share its file
/// descriptor: a store dropped while another thread spawns a process must leave the
/// directory free for the next open. (An `flock` is shared with every child forked
/// before the descriptor is closed, until that child execs.)

// ---------------------------------------------------------------------------------
// 8. fsync policies.

#[test]
fn every_fsync_policy_keeps_data_across_a_clean_restart() {
    let clock = ManualClock::new();
    for policy in [Fsync::Always, Fsync::EverySec, Fsync::No] {
        let dir = tempfile::tempdir().unwrap();
        let opts = PersistOptions::default().fsync(policy);
        {
            let store = open::<String>(dir.path(), &clock, opts);
            assert_eq!(store.options().fsync, policy);
            let before = store.journal_stats().fsyncs;
            for i in 0..20 {
                store
                    .set(&format!("k{i}"), i.to_string(), SetOptions::new())
                    .unwrap();
            }
            store.delete("k0").unwrap();
            let stats = store.journal_stats();
            if policy == Fsync::Always {
                assert!(stats.fsyncs > before, "{policy}: writes fsync: {stats:?}");
                assert_eq!(
                    file_len(&only_journal(dir.path())),
                    stats.bytes,
                    "{policy}: all written"
                );
            }
            store.sync().unwrap();
            let synced = store.journal_stats();
            assert!(synced.fsyncs > stats.fsyncs, "{policy}: sync() fsyncs");
            assert_eq!(
                file_len(&only_journal(dir.path())),
                synced.bytes,
                "{policy}: sync() writes"
            );
            store.set("last", s("unsynced"), SetOptions::new()).unwrap();
        }
        let store = open::<String>(dir.path(), &clock, opts);
        let mut want: BTreeMap<String, String> =
            (1..20).map(|i| (format!("k{i}"), i.to_string())).collect();
        want.insert(s("last"), s("unsynced"));
        assert_eq!(dump(&store), want, "{policy}");
    }
}

#[test]
fn always_with_concurrent_writers_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    {
        let store = open::<String>(dir.path(), &clock, always());
        thread::scope(|scope| {
            for t in 0..8 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..50 {
                        store
                            .set(&format!("t{t}-{i}"), format!("{t}/{i}"), SetOptions::new())
                            .unwrap();
                    }
                });
            }
        });
        assert!(store.journal_stats().fsyncs >= 1);
    }
    let store = open::<String>(dir.path(), &clock, always());
    let want: BTreeMap<String, String> = (0..8)
        .flat_map(|t| (0..50).map(move |i| (format!("t{t}-{i}"), format!("{t}/{i}"))))
        .collect();
    assert_eq!(dump(&store), want);
}

// ---------------------------------------------------------------------------------
// 9. Value codecs.

/// Writes `pairs`, then checks them after a reopen (journal replay), after a
/// compaction and reopen (snapshot load), and after one more reopen.
fn values_round_trip<V: ValueCodec + PartialEq + Debug>(pairs: Vec<(String, V)>) {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let want: BTreeMap<String, V> = pairs.iter().cloned().collect();
    {
        let store = open::<V>(dir.path(), &clock, always());
        for (k, v) in pairs {
            store.set(&k, v, SetOptions::new()).unwrap();
        }
    }
    {
        let store = open::<V>(dir.path(), &clock, always());
        assert_eq!(store.recovery().journal_records as usize, want.len());
        assert_eq!(dump(&store), want, "after journal replay");
        store.compact().unwrap();
        assert_eq!(dump(&store), want, "after compaction");
    }
    for _ in 0..2 {
        let store = open::<V>(dir.path(), &clock, always());
        assert_eq!(store.recovery().snapshot_records as usize, want.len());
        assert_eq!(dump(&store), want, "after snapshot load");
    }
}

#[test]
fn json_values_round_trip() {
    use serde_json::json;
    values_round_trip(vec![
        (s("null"), json!(null)),
        (s("bool"), json!(true)),
        (s("ints"), json!([0, -1, i64::MIN, i64::MAX, u64::MAX])),
        (s("float"), json!(1.5)),
        (s("text"), json!("héllo \"wörld\" \n\t ✓ 🦀 \u{0}")),
        (
            s("nested"),
            json!({"a": {"b": [1, {"c": null}], "d": ""}, "e": []}),
        ),
        (s("ключ 🔑"), json!({"ünïcode": "ключ"})),
    ]);
}

#[test]
fn byte_values_round_trip() {
    values_round_trip(vec![
        (s("empty"), Vec::new()),
        (s("all"), (0..=255u8).collect::<Vec<u8>>()),
        (s("ff"), vec![0xff; 1000]),
        (s("not utf-8"), vec![0xc3, 0x28, 0xff, 0xfe, 0x00]),
        (
            s("big"),
            (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ]);
}

#[test]
fn shared_byte_values_round_trip_and_open_a_json_text_directory() {
    use kvcore::{Bytes, JsonText};
    values_round_trip(vec![
        (s("empty"), Bytes::from("")),
        (s("all"), Bytes::from((0..=255u8).collect::<Vec<u8>>())),
        (s("json"), Bytes::from(r#"{"a": [1, 2.50]}"#)),
        (s("crlf"), Bytes::from(&b"a\r\nb\0"[..])),
    ]);

    // A directory of JsonText values (as kvserver and kvcli stored before values
    // were bytes) opens as Bytes, each value its compact text, from the journal and
    // from a snapshot.
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        ("a", r#"{ "x" : [1, "y z"] }"#),
        ("b", r#""é""#),
        ("c", "-0"),
    ];
    {
        let store = open::<JsonText>(dir.path(), &clock, always());
        for (k, text) in texts {
            let value = JsonText::parse(text).unwrap();
            store.set(k, value, SetOptions::new()).unwrap();
        }
    }
    let want: BTreeMap<String, Bytes> = [("a", r#"{"x":[1,"y z"]}"#), ("b", r#""é""#), ("c", "-0")]
        .into_iter()
        .map(|(k, v)| (s(k), Bytes::from(v)))
        .collect();
    for compact in [true, false] {
        let store = open::<Bytes>(dir.path(), &clock, always());
        assert_eq!(dump(&store), want);
        if compact {
            store.compact().unwrap();
        }
    }
}

#[test]
fn integer_values_round_trip() {
    values_round_trip(vec![
        (s("min"), i64::MIN),
        (s("max"), i64::MAX),
        (s("zero"), 0),
        (s("neg"), -42),
    ]);
    // incr journals the new value.
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open::<i64>(dir.path(), &clock, always());
        store.incr("n", 40).unwrap();
        store.incr("n", 2).unwrap();
        assert!(matches!(
            store.incr("n", i64::MAX),
            Err(Error::Overflow { .. })
        ));
    }
    assert_eq!(open::<i64>(dir.path(), &clock, always()).get("n"), Some(42));
}

#[test]
fn string_values_round_trip() {
    values_round_trip(vec![
        (s(""), s("empty key")),
        (s("empty"), s("")),
        (s("ascii"), s("hello")),
        (s("ключ"), s("значение")),
        (s("emoji 🦀"), s("🦀🔥✓ mixed ñ 中文 \u{0} \u{10FFFF}")),
        (s("long"), "é".repeat(50_000)),
    ]);
}

// ---------------------------------------------------------------------------------
// 10. Capacity.

#[test]
fn evictions_are_journaled() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let bounded = || {
        StoreBuilder::new()
            .clock(clock.clone())
            .capacity(3)
            .open::<String>(dir.path(), always())
            .unwrap()
    };
    {
        let store = bounded();
        for k in ["a", "b", "c"] {
            store.set(k, k.to_uppercase(), SetOptions::new()).unwrap();
        }
        assert_eq!(store.get("a").as_deref(), Some("A"));
        store.set("d", s("D"), SetOptions::new()).unwrap(); // evicts b
        assert!(!store.contains("b"));
        assert_eq!(store.stats().evictions, 1);
    }
    let abc = |store: &PersistentStore<String>| {
        let want: BTreeMap<String, String> = [("a", "A"), ("c", "C"), ("d", "D")]
            .into_iter()
            .map(|(k, v)| (s(k), s(v)))
            .collect();
        assert_eq!(dump(store), want);
        assert_eq!(store.stats().evictions, 0, "recovery evicts nothing");
    };
    {
        let store = bounded();
        abc(&store);
        store.compact().unwrap();
    }
    abc(&bounded());
}

/// A snapshot is written shard by shard while writers run, so it can hold a key that
/// was deleted after its shard was copied together with one created later in a shard
/// copied afterwards: more keys than the capacity. Loading it into a bounded store
/// must not evict a live key (the store never evicted anything: every create follows
/// a delete).
#[test]
fn a_bounded_store_survives_compaction_racing_deletes_and_creates() {
    const CAP: usize = 10_000;
    let clock = ManualClock::new();
    for trial in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let opts = PersistOptions::default().fsync(Fsync::No);
        let bounded = || {
            StoreBuilder::new()
                .clock(clock.clone())
                .capacity(CAP)
                .open::<String>(dir.path(), opts)
                .unwrap()
        };
        let store = bounded();
        for i in 0..CAP {
            store
                .set(&format!("k{i}"), i.to_string(), SetOptions::new())
                .unwrap();
        }
        let (started, stop) = (AtomicBool::new(false), AtomicBool::new(false));
        thread::scope(|scope| {
            scope.spawn(|| {
                // Delete the oldest key, then create one: the store never needs to evict.
                let mut i = CAP;
                while !stop.load(SeqCst) {
                    assert!(store.delete(&format!("k{}", i - CAP)).unwrap());
                    store
                        .set(&format!("k{i}"), i.to_string(), SetOptions::new())
                        .unwrap();
                    i += 1;
                    if i == CAP + 16 {
                        started.store(true, SeqCst);
                    }
                }
            });
            while !started.load(SeqCst) {
                thread::yield_now();
            }
            store.compact().unwrap();
            stop.store(true, SeqCst);
        });
        assert_eq!(store.stats().evictions, 0);
        let want = dump(&store);
        assert_eq!(want.len(), CAP);
        drop(store);
        let snapshot = fs::read(dir.path().join(SNAPSHOT)).unwrap();
        let in_snapshot = boundaries(&snapshot).len() - 2;
        let store = bounded();
        let got = dump(&store);
        let lost: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        // Not assert_eq: the two maps hold 10 000 keys each.
        assert!(
            got == want,
            "trial {trial}: the snapshot held {in_snapshot} keys for a capacity of {CAP}; \
             loading it evicted {} times and lost the live keys {lost:?}",
            store.stats().evictions
        );
        assert_eq!(
            store.stats().evictions,
            0,
            "trial {trial}: recovery evicts nothing"
        );
    }
}
