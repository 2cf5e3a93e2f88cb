//! Damaged files: every truncation point of a journal, flipped bytes and cut lengths,
//! damaged snapshots, compactions cut short at any step, values the codec rejects.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use kvcore::persist::{self, Cut};
use kvcore::{Error, ManualClock, SetOptions, Store, StoreBuilder};
use tempfile::TempDir;

use super::*;
use crate::util::copy_dir;

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
