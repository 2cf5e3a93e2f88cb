//! Integration tests for the persistence layer (`kvcore::persist`).
//!
//! What they check:
//! 1. every truncation point of a small journal: opening succeeds, a torn tail is
//!    reported exactly when the cut is not at a record boundary, the contents are
//!    those of the records before the cut, and the file is cut back to the boundary;
//! 2. a flipped byte in an early journal record is `Error::Corrupt` at that record
//!    (and `repair` cuts there), while one in the last record is a torn tail; a
//!    damaged length field is corruption too, not a torn tail;
//! 3. a damaged or truncated snapshot is `Error::Corrupt` naming it, and `repair`
//!    rewrites it; the files a compaction cut short at any step leaves are recovered,
//!    and damage in a journal other than the newest is corruption;
//! 4. SIGKILL at random moments (this binary re-executes itself as the child) never
//!    loses a write acknowledged under `Fsync::Always`, compactions included;
//! 5. compactions (background and explicit) racing writers lose nothing;
//! 6. TTLs are absolute: time spent down counts, expired keys never come back, and a
//!    sliding key restarts from its last write or snapshot;
//! 7. the directory lock, also while another thread spawns processes;
//! 8. the fsync policies; 9. value codecs; 10. capacity: evictions are journaled, and
//!    recovering a snapshot taken while writers ran evicts nothing;
//! 11. a model-based property test: reopen and compact at random points.
//!
//! No test sleeps for a TTL: clocks are `ManualClock`s moved by the tests. Every test
//! works in its own temporary directory.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use kvcore::persist::{self, Cut, Fsync, Holder, PersistOptions, ValueCodec};
use kvcore::{
    Clock, Error, Expiry, ManualClock, PersistentStore, SetOptions, Store, StoreBuilder, Value,
};
use proptest::prelude::*;
use proptest::sample::select;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------
// Helpers: files, records, contents.

/// Length of every file header (magic, version, generation, checksum).
const HEADER_LEN: usize = 24;
/// Length of every record frame (length, its checksum, the payload's checksum).
const FRAME_LEN: usize = 12;
const SNAPSHOT: &str = "snapshot.kvs";
const SEC: Duration = Duration::from_secs(1);

/// A small deterministic PRNG (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Spawning a process copies every open file descriptor into the child until it
/// execs, and with them the `flock`s on other tests' LOCK files: a directory dropped
/// and reopened at that moment is reported locked by this very process (see
/// `a_dropped_store_unlocks_even_while_another_thread_spawns_processes`). So the tests
/// that spawn processes run while no other test does.
static SPAWNING: RwLock<()> = RwLock::new(());

fn no_spawning() -> RwLockReadGuard<'static, ()> {
    SPAWNING.read().unwrap_or_else(PoisonError::into_inner)
}

fn always() -> PersistOptions {
    PersistOptions::default().fsync(Fsync::Always)
}

fn open<V: ValueCodec>(
    dir: &Path,
    clock: &ManualClock,
    opts: PersistOptions,
) -> PersistentStore<V> {
    StoreBuilder::new()
        .clock(clock.clone())
        .open(dir, opts)
        .unwrap_or_else(|e| panic!("opening {}: {e}", dir.display()))
}

/// Journal files in `dir` as (generation, path), oldest first.
fn journal_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().ok()?;
            let generation = name.strip_prefix("journal-")?.strip_suffix(".kvj")?;
            Some((generation.parse().ok()?, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The one journal of `dir`.
fn only_journal(dir: &Path) -> PathBuf {
    let journals = journal_files(dir);
    assert_eq!(journals.len(), 1, "one journal expected: {journals:?}");
    journals[0].1.clone()
}

/// The generation in a file's header.
fn header_generation(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[12..20].try_into().unwrap())
}

/// The record boundaries of a whole file, parsed from the frame lengths alone: the end
/// of the header, then the end of each record (`len u32 | crc32 u32 | crc32 u32 | payload`).
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut ends = vec![HEADER_LEN];
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += FRAME_LEN + len;
        assert!(at <= bytes.len(), "a frame runs past the end of the file");
        ends.push(at);
    }
    ends
}

/// The key of the PUT record starting at `at` (payload: 1 | key length u32 | key ...).
fn put_key(bytes: &[u8], at: usize) -> String {
    let p = &bytes[at + FRAME_LEN..];
    assert_eq!(p[0], 1, "a PUT record");
    let klen = u32::from_le_bytes(p[1..5].try_into().unwrap()) as usize;
    String::from_utf8(p[5..5 + klen].to_vec()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Every live pair, through a paged scan (a scan counts as a read).
fn dump<V: Value>(store: &dyn Store<V>) -> BTreeMap<String, V> {
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

/// Every live pair with its remaining TTL.
fn dump_ttl<V: Value>(store: &dyn Store<V>) -> BTreeMap<String, (V, Option<Duration>)> {
    dump(store)
        .into_iter()
        .map(|(k, v)| {
            let ttl = store.ttl(&k).expect("a scanned key is live");
            (k, (v, ttl))
        })
        .collect()
}

fn s(text: &str) -> String {
    text.to_string()
}

// ---------------------------------------------------------------------------------
// 1. Every truncation point of a small journal.

type Op = fn(&dyn Store<String>);

/// A known sequence of writes, each of which journals exactly one record.
fn journal_ops() -> Vec<Op> {
    vec![
        |st| {
            assert_eq!(
                st.set("a", s("1"), SetOptions::new()).ok(),
                Some(kvcore::SetOutcome::Created)
            )
        },
        |st| {
            st.set("b", s("2"), SetOptions::new().ttl(100 * SEC))
                .unwrap();
        },
        |st| {
            st.set("a", s("one"), SetOptions::new()).unwrap(); // overwrite
        },
        |st| assert!(st.delete("b").unwrap()),
        |st| {
            st.set("n", s("10"), SetOptions::new()).unwrap();
        },
        |st| assert_eq!(st.incr("n", 5).unwrap(), 15),
        |st| assert!(st.expire("a", 50 * SEC).unwrap()),
        |st| {
            st.set("ключ", s("значение ✓"), SetOptions::new().ttl(30 * SEC))
                .unwrap();
        },
        |st| assert!(st.clear_ttl("a").unwrap()),
        |st| assert_eq!(st.clear().unwrap(), 3),
        |st| {
            st.set("a", s("again"), SetOptions::new()).unwrap(); // set again after clear
        },
        |st| assert_eq!(st.incr("m", -2).unwrap(), -2), // incr creates
        |st| {
            st.set("c", s(""), SetOptions::new().ttl(7 * SEC)).unwrap();
        },
    ]
}

#[test]
fn every_truncation_point_of_a_small_journal() {
    let _serial = no_spawning();
    let clock = ManualClock::new();
    let src = tempfile::tempdir().unwrap();
    let ops = journal_ops();
    {
        let store = open::<String>(src.path(), &clock, always());
        for op in &ops {
            op(&store);
        }
    }
    let journal = only_journal(src.path());
    let name = journal.file_name().unwrap().to_owned();
    let bytes = fs::read(&journal).unwrap();
    let ends = boundaries(&bytes);
    assert_eq!(ends.len() - 1, ops.len(), "one record per operation");

    // The state after the first k operations, by the in-memory store on the same clock.
    let expected: Vec<_> = (0..=ops.len())
        .map(|k| {
            let m = StoreBuilder::new()
                .clock(clock.clone())
                .build::<String>()
                .unwrap();
            for op in &ops[..k] {
                op(&m);
            }
            dump_ttl(&m)
        })
        .collect();

    for cut in 0..=bytes.len() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut as u64).unwrap();
        drop(file);

        let records = ends.iter().filter(|&&e| e <= cut).count().saturating_sub(1);
        let (torn, len_after) = if cut < HEADER_LEN {
            // A header cut short: the journal never held a record.
            (Some(Cut::new(&path, 0, cut as u64)), HEADER_LEN as u64)
        } else {
            let last = ends[records];
            let torn = (cut != last).then(|| Cut::new(&path, last as u64, (cut - last) as u64));
            (torn, last as u64)
        };

        let store = open::<String>(dir.path(), &clock, always());
        let report = store.recovery();
        assert_eq!(report.torn_tail, torn, "cut at {cut}");
        assert_eq!(report.journal_records, records as u64, "cut at {cut}");
        assert_eq!(
            file_len(&path),
            len_after,
            "cut at {cut}: file truncated to the boundary"
        );
        assert_eq!(
            dump_ttl(&store),
            expected[records],
            "cut at {cut} ({records} records)"
        );

        // The store goes on: a write after recovery lands after the last good record.
        store.set("after", s("x"), SetOptions::new()).unwrap();
        drop(store);
        let store = open::<String>(dir.path(), &clock, always());
        assert_eq!(store.recovery().torn_tail, None, "cut at {cut}, reopened");
        let mut want = expected[records].clone();
        want.insert(s("after"), (s("x"), None));
        assert_eq!(dump_ttl(&store), want, "cut at {cut}, reopened");
    }
}

// ---------------------------------------------------------------------------------
// 2. A flipped byte in a journal.

/// A directory whose journal holds five PUT records, `k{i}` = `value number {i}`. Returns the
/// journal's path, its bytes and its record boundaries.
fn five_records() -> (TempDir, PathBuf, Vec<u8>, Vec<usize>) {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open::<String>(dir.path(), &clock, always());
        for i in 0..5 {
            store
                .set(
                    &format!("k{i}"),
                    format!("value number {i}"),
                    SetOptions::new(),
                )
                .unwrap();
        }
    }
    let path = only_journal(dir.path());
    let bytes = fs::read(&path).unwrap();
    let ends = boundaries(&bytes);
    assert_eq!(ends.len(), 6);
    (dir, path, bytes, ends)
}

fn first_keys(n: usize) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| (format!("k{i}"), format!("value number {i}")))
        .collect()
}

#[test]
fn a_flipped_byte_in_an_early_record_is_corruption_and_repair_cuts_there() {
    let _serial = no_spawning();
    let (src, journal, bytes, ends) = five_records();
    let name = journal.file_name().unwrap().to_owned();
    let clock = ManualClock::new();
    let (start, end) = (ends[1], ends[2]); // the second record
    // Every byte of the record's checksum and payload (the length field: see below).
    for at in start + 4..end {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        flip_byte(&path, at, 0x20);

        let err = StoreBuilder::new()
            .clock(clock.clone())
            .open::<String>(dir.path(), always())
            .expect_err("a damaged early record must not open");
        let message = err.to_string();
        match err {
            Error::Corrupt {
                path: p, offset, ..
            } => {
                assert_eq!(p, path, "byte {at}");
                assert_eq!(
                    offset, start as u64,
                    "byte {at}: the damaged record's offset"
                );
            }
            other => panic!("byte {at}: expected Corrupt, got {other:?}"),
        }
        assert!(
            message.contains("repair"),
            "the message says how to repair: {message}"
        );
        assert!(
            message.contains(&start.to_string()),
            "the message names the offset: {message}"
        );

        let report = persist::repair(dir.path()).unwrap();
        let dropped = (bytes.len() - start) as u64;
        assert_eq!(
            report.truncated,
            vec![Cut::new(&path, start as u64, dropped)],
            "byte {at}"
        );
        assert_eq!(file_len(&path), start as u64);

        let store = open::<String>(dir.path(), &clock, always());
        assert_eq!(store.recovery().torn_tail, None);
        assert_eq!(
            dump(&store),
            first_keys(1),
            "byte {at}: the records before the damage"
        );
        drop(store);
        assert_eq!(
            persist::repair(dir.path()).unwrap().truncated,
            vec![],
            "nothing left to repair"
        );
    }
}

/// A damaged length field in an early record can make the record appear to run past
/// the end of the file. That is not a torn tail (four good records follow the damaged
/// one), so it must be `Error::Corrupt`, not silently truncated away on open.
#[test]
fn a_damaged_length_field_in_an_early_record_is_corruption_not_a_torn_tail() {
    let _serial = no_spawning();
    let (src, journal, _bytes, ends) = five_records();
    let name = journal.file_name().unwrap().to_owned();
    let clock = ManualClock::new();
    let start = ends[1];
    for (byte, mask) in [(1, 0x01), (2, 0x01), (0, 0x80)] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        flip_byte(&path, start + byte, mask);
        match StoreBuilder::new()
            .clock(clock.clone())
            .open::<String>(dir.path(), always())
        {
            Err(Error::Corrupt {
                path: p, offset, ..
            }) => {
                assert_eq!((p, offset), (path.clone(), start as u64));
            }
            Err(other) => panic!("length byte {byte}: expected Corrupt, got {other:?}"),
            Ok(store) => panic!(
                "length byte {byte} ^ {mask:#x} of record 2 of 5: open succeeded with torn_tail \
                 {:?}, keeping {:?}; the journal is now {} bytes (was {}): four acknowledged \
                 records were silently discarded",
                store.recovery().torn_tail,
                dump(&store).keys().collect::<Vec<_>>(),
                file_len(&path),
                file_len(&src.path().join(&name)),
            ),
        }
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_is_a_torn_tail() {
    let _serial = no_spawning();
    let (src, journal, bytes, ends) = five_records();
    let name = journal.file_name().unwrap().to_owned();
    let clock = ManualClock::new();
    let start = ends[4];
    for at in start + 4..bytes.len() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        flip_byte(&path, at, 0x01);
        let store = open::<String>(dir.path(), &clock, always());
        let torn = Some(Cut::new(&path, start as u64, (bytes.len() - start) as u64));
        assert_eq!(store.recovery().torn_tail, torn, "byte {at}");
        assert_eq!(store.recovery().journal_records, 4);
        assert_eq!(dump(&store), first_keys(4), "byte {at}");
        assert_eq!(file_len(&path), start as u64);
    }
}

// ---------------------------------------------------------------------------------
// 3. Snapshot damage.

#[test]
fn a_damaged_snapshot_is_corruption_and_repair_rewrites_it() {
    let _serial = no_spawning();
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let values: BTreeMap<String, String> = (0..8)
        .map(|i| (format!("s{i}"), format!("snapshot value {i}")))
        .collect();
    {
        let store = open::<String>(dir.path(), &clock, always());
        for (k, v) in &values {
            store.set(k, v.clone(), SetOptions::new()).unwrap();
        }
        store.compact().unwrap();
        store
            .set("after", s("journaled"), SetOptions::new())
            .unwrap();
    }
    let snapshot = dir.path().join(SNAPSHOT);
    let bytes = fs::read(&snapshot).unwrap();
    let ends = boundaries(&bytes);
    assert_eq!(ends.len(), 1 + 8 + 1, "eight PUTs and an END");
    let keys: Vec<String> = ends[..8].iter().map(|&at| put_key(&bytes, at)).collect();
    let (start, end) = (ends[3], ends[4]); // the fourth record

    flip_byte(&snapshot, end - 2, 0x10); // inside the value
    let err = StoreBuilder::new()
        .clock(clock.clone())
        .open::<String>(dir.path(), always())
        .expect_err("a damaged snapshot must not open");
    let message = err.to_string();
    match err {
        Error::Corrupt { path, offset, .. } => {
            assert_eq!(path, snapshot);
            assert_eq!(offset, start as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        message.contains("snapshot.kvs") && message.contains("repair"),
        "{message}"
    );

    let report = persist::repair(dir.path()).unwrap();
    assert_eq!(
        report.truncated,
        vec![Cut::new(
            &snapshot,
            start as u64,
            (bytes.len() - start) as u64
        )]
    );
    let repaired = fs::read(&snapshot).unwrap();
    assert_eq!(
        boundaries(&repaired).len(),
        1 + 3 + 1,
        "three PUTs and an END"
    );
    assert_eq!(header_generation(&repaired), header_generation(&bytes));

    let store = open::<String>(dir.path(), &clock, always());
    assert_eq!(store.recovery().snapshot_records, 3);
    let mut want: BTreeMap<String, String> = keys[..3]
        .iter()
        .map(|k| (k.clone(), values[k].clone()))
        .collect();
    want.insert(s("after"), s("journaled"));
    assert_eq!(
        dump(&store),
        want,
        "the records before the damage, and the journal"
    );
}

#[test]
fn a_truncated_snapshot_is_corruption() {
    let _serial = no_spawning();
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open::<String>(dir.path(), &clock, always());
        for i in 0..4 {
            store
                .set(&format!("k{i}"), s("v"), SetOptions::new())
                .unwrap();
        }
        store.compact().unwrap();
    }
    let snapshot = dir.path().join(SNAPSHOT);
    let bytes = fs::read(&snapshot).unwrap();
    let ends = boundaries(&bytes);
    // Cut at a record boundary before the END record, and in the middle of a record.
    for cut in [ends[2], ends[2] + 3, 10] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        fs::write(copy.path().join(SNAPSHOT), &bytes[..cut]).unwrap();
        match StoreBuilder::new()
            .clock(clock.clone())
            .open::<String>(copy.path(), always())
        {
            Err(Error::Corrupt { path, .. }) => assert_eq!(path, copy.path().join(SNAPSHOT)),
            other => panic!("cut at {cut}: expected Corrupt, got {other:?}"),
        }
    }
}

/// The files a compaction cut short leaves behind, built from two real directories:
/// `y` holds snapshot S (generation g) and journal g; `x` went on to compact again
/// (snapshot S', journal g + 1) and write more.
#[test]
fn a_compaction_cut_short_at_any_step_recovers() {
    let _serial = no_spawning();
    let clock = ManualClock::new();
    let base = tempfile::tempdir().unwrap();
    let (x, y) = (base.path().join("x"), base.path().join("y"));
    {
        let store = open::<String>(&x, &clock, always());
        for i in 0..5 {
            store
                .set(&format!("a{i}"), format!("A{i}"), SetOptions::new())
                .unwrap();
        }
        store.compact().unwrap();
        store.set("b0", s("B0"), SetOptions::new()).unwrap();
        store.delete("a0").unwrap();
        store
            .set("a1", s("A1 again"), SetOptions::new().ttl(100 * SEC))
            .unwrap();
        store
            .set(
                "b-last",
                s("the last record of journal g"),
                SetOptions::new(),
            )
            .unwrap();
    }
    copy_dir(&x, &y);
    let expected = {
        let store = open::<String>(&x, &clock, always());
        store.compact().unwrap();
        store.set("c0", s("C0"), SetOptions::new()).unwrap();
        store.delete("b0").unwrap();
        store.incr("n", 3).unwrap();
        dump_ttl(&store)
    };
    let (y_journal, x_journal) = (only_journal(&y), only_journal(&x));
    let (g_old, g_new) = (journal_files(&y)[0].0, journal_files(&x)[0].0);
    assert_eq!(g_new, g_old + 1);
    let y_records = boundaries(&fs::read(&y_journal).unwrap()).len() as u64 - 1;
    let x_records = boundaries(&fs::read(&x_journal).unwrap()).len() as u64 - 1;
    let name = |p: &Path| p.file_name().unwrap().to_owned();

    // Rotated, the new snapshot not yet in place: the old snapshot, both journals and a
    // half-written temporary snapshot.
    let rotated = base.path().join("rotated");
    copy_dir(&y, &rotated);
    fs::copy(&x_journal, rotated.join(name(&x_journal))).unwrap();
    fs::write(rotated.join("snapshot.kvs.tmp"), b"kvsnapsh half written").unwrap();
    {
        let copy = base.path().join("rotated-open");
        copy_dir(&rotated, &copy);
        let store = open::<String>(&copy, &clock, always());
        assert_eq!(
            dump_ttl(&store),
            expected,
            "the old snapshot and both journals"
        );
        assert_eq!(store.recovery().journal_records, y_records + x_records);
        assert!(
            !copy.join("snapshot.kvs.tmp").exists(),
            "the temporary snapshot is removed"
        );
        let generations: Vec<u64> = journal_files(&copy).iter().map(|j| j.0).collect();
        assert_eq!(generations, [g_old, g_new]);
        assert_eq!(
            store.journal_stats().generation,
            g_new,
            "appends go to the newest"
        );
    }

    // Renamed, the old journal not yet deleted: it is superseded and removed.
    let renamed = base.path().join("renamed");
    copy_dir(&x, &renamed);
    fs::copy(&y_journal, renamed.join(name(&y_journal))).unwrap();
    {
        let store = open::<String>(&renamed, &clock, always());
        assert_eq!(
            dump_ttl(&store),
            expected,
            "the new snapshot and its journal"
        );
        assert_eq!(store.recovery().journal_records, x_records);
        let generations: Vec<u64> = journal_files(&renamed).iter().map(|j| j.0).collect();
        assert_eq!(generations, [g_new]);
    }

    // Damage in a journal that is not the newest is not a torn tail: it is corruption.
    let y_bytes = fs::read(&y_journal).unwrap();
    let y_ends = boundaries(&y_bytes);
    let last = y_ends[y_ends.len() - 2];
    for (cut, offset) in [(y_bytes.len() - 3, last), (10, 0)] {
        let copy = base.path().join(format!("older-cut-{cut}"));
        copy_dir(&rotated, &copy);
        let path = copy.join(name(&y_journal));
        fs::write(&path, &y_bytes[..cut]).unwrap();
        match StoreBuilder::new()
            .clock(clock.clone())
            .open::<String>(&copy, always())
        {
            Err(Error::Corrupt {
                path: p, offset: o, ..
            }) => {
                assert_eq!((p, o), (path.clone(), offset as u64), "cut at {cut}");
            }
            other => panic!("cut at {cut}: expected Corrupt, got {other:?}"),
        }
        let report = persist::repair(&copy).unwrap();
        assert_eq!(
            report.truncated,
            vec![Cut::new(&path, offset as u64, (cut - offset) as u64)]
        );
        let store = open::<String>(&copy, &clock, always());
        let mut want = expected.clone();
        if offset == 0 {
            // Journal g is lost whole: only the old snapshot and journal g + 1 remain.
            want.insert(s("a0"), (s("A0"), None));
            want.insert(s("a1"), (s("A1"), None));
        }
        want.remove("b-last");
        assert_eq!(dump_ttl(&store), want, "cut at {cut}, repaired");
    }

    // A journal whose header names another generation than its file name.
    let misnamed = base.path().join("misnamed");
    copy_dir(&x, &misnamed);
    let wrong = misnamed.join(format!("journal-{:020}.kvj", g_new + 1));
    fs::copy(&x_journal, &wrong).unwrap();
    match StoreBuilder::new()
        .clock(clock.clone())
        .open::<String>(&misnamed, always())
    {
        Err(Error::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (wrong, 0)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A value the codec cannot read is corruption at its record, not a panic or a loss.
#[test]
fn a_value_the_codec_rejects_is_corruption_at_its_record() {
    let _serial = no_spawning();
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open::<Vec<u8>>(dir.path(), &clock, always());
        store
            .set("text", b"fine".to_vec(), SetOptions::new())
            .unwrap();
        store
            .set("bytes", vec![0xff, 0xfe], SetOptions::new())
            .unwrap();
    }
    let journal = only_journal(dir.path());
    let ends = boundaries(&fs::read(&journal).unwrap());
    match StoreBuilder::new()
        .clock(clock.clone())
        .open::<String>(dir.path(), always())
    {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (journal.clone(), ends[1] as u64));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        file_len(&journal),
        *ends.last().unwrap() as u64,
        "a failed open changes nothing"
    );
    let store = open::<Vec<u8>>(dir.path(), &clock, always());
    assert_eq!(store.get("bytes"), Some(vec![0xff, 0xfe]));
}

// ---------------------------------------------------------------------------------
// 4. SIGKILL at random moments.

const CHILD_DIR_ENV: &str = "KV_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "KV_CRASH_CHILD_ROUND";
const CRASH_THREADS: usize = 4;
const CRASH_OPS: usize = 250;
const CRASH_KEYS: usize = 48;

fn crash_options() -> PersistOptions {
    always().compact_min_bytes(4096).compact_ratio(1)
}

/// Operation `j` of thread `t` in round `round`: `(key, Some(value))` sets, `(key,
/// None)` deletes. Each thread owns the keys `t{t}-*`.
fn crash_op(round: u64, t: usize, j: usize) -> (String, Option<String>) {
    if j % 5 == 4 {
        (format!("t{t}-{}", (j * 7) % CRASH_KEYS), None)
    } else {
        (
            format!("t{t}-{}", j % CRASH_KEYS),
            Some(format!("{j} (round {round})")),
        )
    }
}

fn apply_crash_op(state: &mut BTreeMap<String, String>, op: (String, Option<String>)) {
    match op {
        (key, Some(value)) => state.insert(key, value),
        (key, None) => state.remove(&key),
    };
}

/// The child half of the SIGKILL test: does nothing unless the parent set the
/// environment. Writes with four threads and prints `ack <thread> <op>` only after
/// the write returned.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let store = StoreBuilder::new()
        .open::<String>(&dir, crash_options())
        .expect("child: open");
    thread::scope(|scope| {
        for t in 0..CRASH_THREADS {
            let store = &store;
            scope.spawn(move || {
                for j in 0..CRASH_OPS {
                    match crash_op(round, t, j) {
                        (key, Some(value)) => {
                            store.set(&key, value, SetOptions::new()).unwrap();
                        }
                        (key, None) => {
                            store.delete(&key).unwrap();
                        }
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {t} {j}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

/// Per thread, the states its keys may be in: one when the last round was checked,
/// several (one per possibly durable in-flight write) when it was not.
type Candidates = Vec<BTreeMap<String, String>>;

fn own_keys(all: &BTreeMap<String, String>, t: usize) -> BTreeMap<String, String> {
    let prefix = format!("t{t}-");
    all.iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The states thread `t` may have left: from any candidate start, its first `acked`
/// operations, plus perhaps the one in flight when the child died.
fn after_round(start: &Candidates, round: u64, t: usize, acked: usize) -> Candidates {
    let mut out: Candidates = Vec::new();
    for c in start {
        let mut state = c.clone();
        for j in 0..acked {
            apply_crash_op(&mut state, crash_op(round, t, j));
        }
        out.push(state.clone());
        if acked < CRASH_OPS {
            apply_crash_op(&mut state, crash_op(round, t, acked));
            out.push(state);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn sigkill_never_loses_an_acknowledged_write() {
    const ROUNDS: u64 = 30;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let _exclusive = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(0x00C0_FFEE);
    let mut cands: Vec<Candidates> = vec![vec![BTreeMap::new()]; CRASH_THREADS];
    let (mut torn_tails, mut killed_rounds, mut cut_compactions) = (0, 0, 0);
    for round in 0..ROUNDS {
        let target = 1 + rng.below(400) as usize;
        let stderr_path = work.path().join(format!("child-{round}.stderr"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR_ENV, &data)
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut acked = [0usize; CRASH_THREADS];
        let (mut seen, mut killed) = (0, false);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
                break;
            }
            // The harness prints `test crash_child ... ` without a newline before the
            // test runs, so the first ack may share its line.
            let Some(at) = line.find("ack ") else {
                continue; // the harness's own lines
            };
            let rest = line[at + 4..].trim_end();
            let (t, j) = rest.split_once(' ').unwrap();
            let (t, j): (usize, usize) = (t.parse().unwrap(), j.parse().unwrap());
            assert_eq!(j, acked[t], "thread {t} acknowledges in order");
            acked[t] = j + 1;
            seen += 1;
            // Acks already in the pipe when the child dies still count: read them all.
            if seen == target && !killed {
                let _ = child.kill(); // SIGKILL
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        let names: Vec<String> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let journals = names.iter().filter(|n| n.ends_with(".kvj")).count();
        let mid_compaction = journals > 1 || names.iter().any(|n| n.ends_with(".tmp"));
        cut_compactions += usize::from(mid_compaction);
        if !killed {
            assert!(
                status.success() && seen == CRASH_THREADS * CRASH_OPS,
                "round {round}: the child failed after {seen} acks ({status}):\n{}",
                fs::read_to_string(&stderr_path).unwrap()
            );
        } else {
            killed_rounds += 1;
        }
        for (t, c) in cands.iter_mut().enumerate() {
            *c = after_round(c, round, t, acked[t]);
        }
        // Check every other round; otherwise the next child recovers the crash itself.
        if round % 2 == 1 && round + 1 != ROUNDS {
            continue;
        }
        let store = StoreBuilder::new()
            .open::<String>(&data, PersistOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL: {e}"));
        torn_tails += usize::from(store.recovery().torn_tail.is_some());
        let got = dump(&store);
        drop(store);
        let owned: usize = (0..CRASH_THREADS).map(|t| own_keys(&got, t).len()).sum();
        assert_eq!(
            owned,
            got.len(),
            "round {round}: only the threads' keys exist"
        );
        for (t, c) in cands.iter_mut().enumerate() {
            let mine = own_keys(&got, t);
            assert!(
                c.contains(&mine),
                "round {round}, thread {t}: {} acks; recovered {mine:?}\nexpected one of {c:?}",
                acked[t]
            );
            *c = vec![mine];
        }
    }
    eprintln!(
        "sigkill: {killed_rounds} of {ROUNDS} rounds killed, {cut_compactions} mid-compaction, \
         {torn_tails} torn tails"
    );
    assert!(
        killed_rounds >= ROUNDS / 2,
        "the child should usually be killed mid-run"
    );
}

// ---------------------------------------------------------------------------------
// 5. Compaction racing writers.

#[test]
fn compaction_racing_writers_loses_nothing() {
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
#[test]
fn a_dropped_store_unlocks_even_while_another_thread_spawns_processes() {
    let _exclusive = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let opts = PersistOptions::default().fsync(Fsync::No);
    let stop = AtomicBool::new(false);
    let (mut locked, mut opens) = (0, 0);
    /// Stops the spawning thread however the opening loop ends, a failed assertion
    /// included, so that a failure is reported instead of hanging the scope.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| {
            while !stop.load(SeqCst) {
                // The child runs no test: `crash_child` returns at once without its env.
                let status = Command::new(&exe)
                    .args(["--exact", "crash_child", "--test-threads", "1"])
                    .env_remove(CHILD_DIR_ENV)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        });
        for _ in 0..1000 {
            match StoreBuilder::new().open::<String>(dir.path(), opts) {
                Ok(store) => {
                    opens += 1;
                    drop(store);
                }
                Err(Error::Locked { pid, .. }) => {
                    assert_eq!(pid, Some(std::process::id()), "only this process opens it");
                    locked += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(
        locked,
        0,
        "{locked} of {} opens right after a drop failed with Locked naming this very \
         process ({opens} succeeded)",
        locked + opens
    );
}

// ---------------------------------------------------------------------------------
// 8. fsync policies.

#[test]
fn every_fsync_policy_keeps_data_across_a_clean_restart() {
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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
    let _serial = no_spawning();
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

// ---------------------------------------------------------------------------------
// 11. Model-based: reopen and compact at random points.

#[derive(Debug, Clone)]
enum Step {
    Set(&'static str, &'static str, Option<u64>),
    SetIfAbsent(&'static str, &'static str),
    SetKeepTtl(&'static str, &'static str),
    Delete(&'static str),
    Expire(&'static str, u64),
    Persist(&'static str),
    Incr(&'static str, i64),
    Clear,
    SetMany(Vec<(&'static str, &'static str)>, Option<u64>),
    InsertAllAbsent(Vec<(&'static str, &'static str)>),
    UpdateAllPresent(Vec<(&'static str, &'static str)>),
    Advance(u64),
    Purge,
    Reopen,
    Compact,
}

const KEYS: &[&str] = &["a", "b", "c", "d", "ключ"];
const VALUES: &[&str] = &["x", "y", "0", "41", "значение"];

fn step() -> impl Strategy<Value = Step> {
    let key = || select(KEYS);
    let value = || select(VALUES);
    let ttl = || prop_oneof![Just(None), (1..30u64).prop_map(Some)];
    let pairs = || proptest::collection::vec((select(KEYS), select(VALUES)), 1..4);
    prop_oneof![
        4 => (key(), value(), ttl()).prop_map(|(k, v, t)| Step::Set(k, v, t)),
        1 => (key(), value()).prop_map(|(k, v)| Step::SetIfAbsent(k, v)),
        1 => (key(), value()).prop_map(|(k, v)| Step::SetKeepTtl(k, v)),
        2 => key().prop_map(Step::Delete),
        1 => (key(), 1..30u64).prop_map(|(k, t)| Step::Expire(k, t)),
        1 => key().prop_map(Step::Persist),
        2 => (key(), -5..5i64).prop_map(|(k, by)| Step::Incr(k, by)),
        1 => Just(Step::Clear),
        1 => (pairs(), ttl()).prop_map(|(p, t)| Step::SetMany(p, t)),
        1 => pairs().prop_map(Step::InsertAllAbsent),
        1 => pairs().prop_map(Step::UpdateAllPresent),
        2 => (1..15u64).prop_map(Step::Advance),
        1 => Just(Step::Purge),
        2 => Just(Step::Reopen),
        1 => Just(Step::Compact),
    ]
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// Runs a write on a store; returns its result as text so two stores can be compared.
fn run_step(store: &dyn Store<String>, step: &Step) -> String {
    let expiry =
        |t: &Option<u64>| t.map_or(Expiry::Never, |t| Expiry::After(Duration::from_secs(t)));
    match step {
        Step::Set(k, v, t) => {
            let opts = t.map_or(SetOptions::new().no_ttl(), |t| {
                SetOptions::new().ttl(Duration::from_secs(t))
            });
            format!("{:?}", store.set(k, s(v), opts).map_err(|e| e.to_string()))
        }
        Step::SetIfAbsent(k, v) => format!(
            "{:?}",
            store.set(k, s(v), SetOptions::new().if_absent()).ok()
        ),
        Step::SetKeepTtl(k, v) => format!(
            "{:?}",
            store.set(k, s(v), SetOptions::new().keep_ttl()).ok()
        ),
        Step::Delete(k) => format!("{:?}", store.delete(k).ok()),
        Step::Expire(k, t) => format!("{:?}", store.expire(k, Duration::from_secs(*t)).ok()),
        Step::Persist(k) => format!("{:?}", store.clear_ttl(k).ok()),
        Step::Incr(k, by) => format!("{:?}", store.incr(k, *by).map_err(|e| e.to_string())),
        Step::Clear => format!("{:?}", store.clear().ok()),
        Step::SetMany(p, t) => format!("{:?}", store.set_many(owned(p), expiry(t)).ok()),
        Step::InsertAllAbsent(p) => format!(
            "{:?}",
            store.insert_all_absent(owned(p), Expiry::Default).ok()
        ),
        Step::UpdateAllPresent(p) => format!(
            "{:?}",
            store.update_all_present(owned(p), Expiry::Keep).ok()
        ),
        Step::Purge => {
            store.purge_expired(100);
            String::new()
        }
        Step::Advance(_) | Step::Reopen | Step::Compact => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A persistent store and an in-memory twin on the same clock agree after every
    /// step, however often the persistent one is reopened or compacted in between.
    #[test]
    fn reopening_and_compacting_anywhere_changes_nothing(
        steps in proptest::collection::vec(step(), 1..40),
        policy in select(&[Fsync::Always, Fsync::EverySec, Fsync::No][..]),
    ) {
        let _serial = no_spawning();
        let clock = ManualClock::new();
        let dir = tempfile::tempdir().unwrap();
        let opts = PersistOptions::default().fsync(policy);
        let twin = StoreBuilder::new().clock(clock.clone()).build::<String>().unwrap();
        let mut store = open::<String>(dir.path(), &clock, opts);
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Advance(secs) => clock.advance(Duration::from_secs(*secs)),
                Step::Reopen => {
                    drop(store); // the lock is released before the directory is opened again
                    store = open::<String>(dir.path(), &clock, opts);
                    prop_assert_eq!(&store.recovery().torn_tail, &None);
                }
                Step::Compact => store.compact().unwrap(),
                _ => {}
            }
            let st = &store;
            prop_assert_eq!(run_step(st, step), run_step(&twin, step), "step {} {:?}", i, step);
            prop_assert_eq!(dump_ttl(st), dump_ttl(&twin), "after step {} {:?}", i, step);
        }
        drop(store);
        let st = open::<String>(dir.path(), &clock, opts);
        prop_assert_eq!(dump_ttl(&st), dump_ttl(&twin), "after the final reopen");
    }
}
