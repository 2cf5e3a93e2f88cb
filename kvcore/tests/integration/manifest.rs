//! The files a data directory must hold (`MANIFEST`), the read-only `check`, and
//! directories written by format version 2.
//!
//! What they check:
//! 1. deleting the snapshot, the newest journal, a middle journal or the manifest makes
//!    opening fail with `Error::MissingFiles` naming the file, and changes nothing;
//! 2. the directory states a crash can leave between a file's creation or rename and
//!    the manifest update that follows it still open, with every key;
//! 3. a damaged manifest, or a snapshot older than the manifest names, is refused;
//! 4. the version-2 fixture (made by the release before manifests) opens with every
//!    key, gets a manifest, and is then protected like a new directory;
//! 5. `check` reports what it finds and never changes a byte or a file name;
//! 6. `accept_missing` rebuilds a directory from the files that are left.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kvcore::persist::{self, Cut, Fsync, PersistOptions};
use kvcore::{Error, ManualClock, PersistentStore, SetOptions, Store, StoreBuilder};
use tempfile::TempDir;

use crate::util::copy_dir;

const SNAPSHOT: &str = "snapshot.kvs";
const MANIFEST: &str = "MANIFEST";
const HOUR: Duration = Duration::from_secs(3600);

fn opts() -> PersistOptions {
    PersistOptions::default().fsync(Fsync::Always)
}

fn open(dir: &Path, clock: &ManualClock) -> kvcore::Result<PersistentStore<String>> {
    StoreBuilder::new()
        .clock(clock.clone())
        .open::<String>(dir, opts())
}

fn journal(generation: u64) -> String {
    format!("journal-{generation:020}.kvj")
}

/// Every file of `dir` (by name) with its contents.
fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, fs::read(e.path()).unwrap())
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    listing(dir).into_keys().collect()
}

fn set(store: &PersistentStore<String>, key: &str, value: &str) {
    store.set(key, value.into(), SetOptions::new()).unwrap();
}

/// Every live key and value.
fn dump(store: &PersistentStore<String>) -> BTreeMap<String, String> {
    let page = store.scan(None, None, 100_000).unwrap();
    page.items.into_iter().collect()
}

/// A compaction that rotates the journal and then fails to write its snapshot (a
/// directory stands where the temporary snapshot goes): the way several journals
/// come to be live at once.
fn rotate(store: &PersistentStore<String>) {
    let blocker = store.dir().join("snapshot.kvs.tmp");
    fs::create_dir(&blocker).unwrap();
    assert!(store.compact().is_err());
    fs::remove_dir(&blocker).unwrap();
}

/// A directory with no snapshot and journals 1, 2 and 3, each holding one key.
fn three_journals(clock: &ManualClock) -> (TempDir, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), clock).unwrap();
    set(&store, "one", "1");
    rotate(&store);
    set(&store, "two", "2");
    rotate(&store);
    set(&store, "three", "3");
    let keys = dump(&store);
    drop(store);
    assert_eq!(
        names(dir.path()),
        ["LOCK", MANIFEST, &journal(1), &journal(2), &journal(3)]
    );
    (dir, keys)
}

/// A directory with a snapshot (generation 2) and journals 2 and 3.
fn snapshot_and_journals(clock: &ManualClock) -> (TempDir, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), clock).unwrap();
    set(&store, "in-snapshot", "s");
    store.compact().unwrap();
    set(&store, "in-2", "2");
    rotate(&store);
    set(&store, "in-3", "3");
    let keys = dump(&store);
    drop(store);
    assert_eq!(
        names(dir.path()),
        ["LOCK", MANIFEST, &journal(2), &journal(3), SNAPSHOT]
    );
    (dir, keys)
}

/// Every file but `LOCK`, which opening creates (to take the lock) before it looks.
fn data_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = listing(dir);
    files.remove("LOCK");
    files
}

/// Opening fails naming exactly `missing`, and leaves the data files as they were.
fn refused_naming(dir: &Path, clock: &ManualClock, missing: &[&str]) -> String {
    let before = data_files(dir);
    let err = open(dir, clock).unwrap_err();
    let message = err.to_string();
    match &err {
        Error::MissingFiles { dir: d, files, .. } => {
            assert_eq!(d, dir);
            let want: Vec<PathBuf> = missing.iter().map(|m| dir.join(m)).collect();
            assert_eq!(files, &want, "{message}");
        }
        other => panic!("expected MissingFiles, got {other:?}"),
    }
    for name in missing {
        assert!(message.contains(name), "{message}");
    }
    assert!(message.contains("backup"), "{message}");
    assert_eq!(
        data_files(dir),
        before,
        "a refused open changed the directory"
    );
    // check refuses the same way, and changes nothing at all.
    let before = listing(dir);
    assert!(matches!(
        persist::check::<String>(dir),
        Err(Error::MissingFiles { .. })
    ));
    assert_eq!(listing(dir), before);
    message
}

#[test]
fn a_new_directory_has_a_manifest_and_every_file_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    drop(open(dir.path(), &clock).unwrap());
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(1)]);
    drop(open(dir.path(), &clock).unwrap());
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(1)]);
}

#[test]
fn a_deleted_snapshot_is_named() {
    let clock = ManualClock::new();
    let (dir, _) = snapshot_and_journals(&clock);
    fs::remove_file(dir.path().join(SNAPSHOT)).unwrap();
    let message = refused_naming(dir.path(), &clock, &[SNAPSHOT]);
    assert!(message.contains("--accept-missing"), "{message}");
}

#[test]
fn a_deleted_newest_journal_is_named() {
    let clock = ManualClock::new();
    let (dir, _) = snapshot_and_journals(&clock);
    fs::remove_file(dir.path().join(journal(3))).unwrap();
    refused_naming(dir.path(), &clock, &[&journal(3)]);

    // Also the only journal, the one the snapshot continues into.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &clock).unwrap();
    set(&store, "k", "v");
    store.compact().unwrap();
    drop(store);
    fs::remove_file(dir.path().join(journal(2))).unwrap();
    refused_naming(dir.path(), &clock, &[&journal(2)]);
}

#[test]
fn deleted_middle_and_first_journals_are_named() {
    let clock = ManualClock::new();
    let (dir, _) = three_journals(&clock);
    fs::remove_file(dir.path().join(journal(2))).unwrap();
    refused_naming(dir.path(), &clock, &[&journal(2)]);
    fs::remove_file(dir.path().join(journal(1))).unwrap();
    refused_naming(dir.path(), &clock, &[&journal(1), &journal(2)]);
}

#[test]
fn a_deleted_manifest_is_named() {
    let clock = ManualClock::new();
    let (dir, _) = snapshot_and_journals(&clock);
    fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    let message = refused_naming(dir.path(), &clock, &[MANIFEST]);
    assert!(message.contains("--accept-missing"), "{message}");
}

#[test]
fn a_damaged_manifest_or_an_older_snapshot_is_refused() {
    let clock = ManualClock::new();
    let (dir, _) = snapshot_and_journals(&clock);
    let path = dir.path().join(MANIFEST);
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[14] ^= 1;
    fs::write(&path, &bad).unwrap();
    match open(dir.path(), &clock) {
        Err(Error::Corrupt { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    fs::write(&path, &good[..10]).unwrap();
    assert!(matches!(
        open(dir.path(), &clock),
        Err(Error::Corrupt { .. })
    ));
    fs::write(&path, &good).unwrap();

    // A snapshot from an older copy than the manifest (and its journals) describe.
    let older = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), older.path());
    let store = open(dir.path(), &clock).unwrap();
    store.compact().unwrap();
    drop(store);
    fs::copy(older.path().join(SNAPSHOT), dir.path().join(SNAPSHOT)).unwrap();
    match open(dir.path(), &clock) {
        Err(Error::Corrupt { path, reason, .. }) => {
            assert_eq!(path, dir.path().join(SNAPSHOT));
            assert!(reason.contains("older copy"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_journal_created_before_the_manifest_names_it_is_adopted() {
    let clock = ManualClock::new();
    let (dir, keys) = snapshot_and_journals(&clock);
    // The manifest as it was before journal 3 was created: a crash between the two.
    let manifest = fs::read(dir.path().join(MANIFEST)).unwrap();
    let store = open(dir.path(), &clock).unwrap();
    rotate(&store);
    set(&store, "in-4", "4");
    let mut keys_after = keys.clone();
    keys_after.insert("in-4".into(), "4".into());
    drop(store);
    let named_four = fs::read(dir.path().join(MANIFEST)).unwrap();
    fs::write(dir.path().join(MANIFEST), &manifest).unwrap();
    let store = open(dir.path(), &clock).unwrap();
    assert_eq!(dump(&store), keys_after);
    assert_eq!(store.journal_stats().generation, 4);
    drop(store);
    assert_eq!(fs::read(dir.path().join(MANIFEST)).unwrap(), named_four);
}

#[test]
fn a_snapshot_renamed_before_the_manifest_names_it_is_used() {
    let clock = ManualClock::new();
    let (dir, keys) = snapshot_and_journals(&clock);
    let before = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), before.path());
    let store = open(dir.path(), &clock).unwrap();
    store.compact().unwrap(); // journal 4, snapshot 4, journals 2 and 3 deleted
    drop(store);
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(4), SNAPSHOT]);
    // A crash after the rename, before the manifest update: the old manifest and
    // journals, a leftover temporary manifest, and the new snapshot and journal.
    for name in [MANIFEST, &journal(2), &journal(3)] {
        fs::copy(before.path().join(name), dir.path().join(name)).unwrap();
    }
    fs::write(dir.path().join("MANIFEST.tmp"), b"half").unwrap();
    let report = persist::check::<String>(dir.path()).unwrap();
    assert_eq!(report.stale.len(), 2);
    assert_eq!(report.live_keys, keys.len());
    let store = open(dir.path(), &clock).unwrap();
    assert_eq!(dump(&store), keys);
    drop(store);
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(4), SNAPSHOT]);
    drop(open(dir.path(), &clock).unwrap());
}

#[test]
fn a_manifest_written_before_the_first_journal_opens() {
    // The first step of creating a store: a manifest that names no file yet.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let mut bytes = b"kvmanfst".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join(MANIFEST), &bytes).unwrap();
    let store = open(dir.path(), &clock).unwrap();
    set(&store, "k", "v");
    drop(store);
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(1)]);
    assert_eq!(
        open(dir.path(), &clock).unwrap().get("k").as_deref(),
        Some("v")
    );
}

fn fixture() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v2");
    copy_dir(&src, dir.path());
    dir
}

/// The keys the fixture holds, by a clock at `ManualClock::START` (when it was made).
/// Its values are JSON texts, as kvserver and kvcli store them.
fn fixture_keys() -> BTreeMap<String, String> {
    [
        ("plain", r#""kept in the snapshot""#),
        ("ttl-snap", r#""expires in an hour""#),
        ("journal-only", r#""written after the snapshot""#),
        ("ttl-journal", r#""expires in a day""#),
        ("counter", "42"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn a_version_2_directory_opens_with_every_key_and_gets_a_manifest() {
    let dir = fixture();
    let clock = ManualClock::new();
    let store = open(dir.path(), &clock).unwrap();
    assert_eq!(dump(&store), fixture_keys());
    assert_eq!(store.ttl("ttl-snap"), Some(Some(HOUR)));
    assert_eq!(store.ttl("ttl-journal"), Some(Some(24 * HOUR)));
    assert_eq!(store.ttl("plain"), Some(None));
    set(&store, "new", "after the upgrade");
    drop(store);
    // A manifest, and a journal of the new format for the writes from now on.
    assert_eq!(
        names(dir.path()),
        ["LOCK", MANIFEST, &journal(2), &journal(3), SNAPSHOT]
    );
    clock.advance(2 * HOUR);
    let store = open(dir.path(), &clock).unwrap();
    let mut want = fixture_keys();
    want.remove("ttl-snap");
    want.insert("new".into(), "after the upgrade".into());
    assert_eq!(dump(&store), want);
    store.compact().unwrap();
    drop(store);
    assert_eq!(names(dir.path()), ["LOCK", MANIFEST, &journal(4), SNAPSHOT]);
    // From now on a lost manifest is noticed.
    fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    refused_naming(dir.path(), &clock, &[MANIFEST]);
}

#[test]
fn a_version_2_directory_missing_a_file_is_refused() {
    let clock = ManualClock::new();
    let dir = fixture();
    fs::remove_file(dir.path().join(journal(2))).unwrap();
    refused_naming(dir.path(), &clock, &[&journal(2)]);
    let dir = fixture();
    fs::remove_file(dir.path().join(SNAPSHOT)).unwrap();
    refused_naming(dir.path(), &clock, &[SNAPSHOT]);
}

#[test]
fn check_reports_a_version_2_directory_without_writing() {
    let dir = fixture();
    let before = listing(dir.path());
    let report =
        persist::check_with::<String>(StoreBuilder::new().clock(ManualClock::new()), dir.path())
            .unwrap();
    assert_eq!(listing(dir.path()), before);
    assert!(!report.manifest);
    assert_eq!(report.live_keys, fixture_keys().len());
    let snapshot = report.snapshot.unwrap();
    assert_eq!((snapshot.generation, snapshot.records), (2, 4));
    assert_eq!(report.journals.len(), 1);
    assert_eq!(
        (report.journals[0].generation, report.journals[0].records),
        (2, 4)
    );
    assert_eq!(report.journals[0].bytes, before[&journal(2)].len() as u64);
    assert_eq!(report.torn_tail, None);
    // By a later clock the TTL keys are gone.
    let later = ManualClock::new();
    later.advance(48 * HOUR);
    let report =
        persist::check_with::<String>(StoreBuilder::new().clock(later), dir.path()).unwrap();
    assert_eq!(report.live_keys, 3);
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn check_reads_everything_and_changes_nothing() {
    let clock = ManualClock::new();
    let (dir, keys) = snapshot_and_journals(&clock);
    fs::remove_file(dir.path().join("LOCK")).unwrap();
    let before = listing(dir.path());
    let report =
        persist::check_with::<String>(StoreBuilder::new().clock(clock.clone()), dir.path())
            .unwrap();
    assert!(report.manifest);
    assert_eq!(report.live_keys, keys.len());
    assert_eq!(
        report
            .journals
            .iter()
            .map(|j| j.generation)
            .collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(report.journals.iter().map(|j| j.records).sum::<u64>(), 2);
    assert!(report.stale.is_empty());
    assert_eq!(
        listing(dir.path()),
        before,
        "no LOCK, no journal, nothing changed"
    );

    // A torn tail is reported, not cut off.
    let newest = dir.path().join(journal(3));
    let mut bytes = fs::read(&newest).unwrap();
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(&[7, 0, 0]);
    fs::write(&newest, &bytes).unwrap();
    let before = listing(dir.path());
    let report = persist::check::<String>(dir.path()).unwrap();
    assert_eq!(report.torn_tail, Some(Cut::new(&newest, whole, 3)));
    assert_eq!(report.live_keys, keys.len());
    assert_eq!(listing(dir.path()), before);

    // Damage before the tail is the error opening would give, and still changes nothing.
    let mut bytes = fs::read(dir.path().join(journal(2))).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0xff;
    bytes.extend_from_slice(b"more records after it");
    fs::write(dir.path().join(journal(2)), &bytes).unwrap();
    let before = listing(dir.path());
    match persist::check::<String>(dir.path()) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, dir.path().join(journal(2))),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn check_refuses_an_open_directory_and_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = open(dir.path(), &clock).unwrap();
    match persist::check::<String>(dir.path()) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(store);
    let gone = dir.path().join("nothing-here");
    assert!(matches!(
        persist::check::<String>(&gone),
        Err(Error::Io { .. })
    ));
    assert!(!gone.exists());
}

#[test]
fn accept_missing_keeps_what_is_left() {
    let clock = ManualClock::new();
    let (dir, mut keys) = three_journals(&clock);
    fs::remove_file(dir.path().join(journal(2))).unwrap();
    let report = persist::accept_missing(dir.path()).unwrap();
    assert_eq!(report.missing, [dir.path().join(journal(2))]);
    assert_eq!(report.keys, 2);
    keys.remove("two");
    let store = open(dir.path(), &clock).unwrap();
    assert_eq!(dump(&store), keys);
    drop(store);
    let report = persist::check::<String>(dir.path()).unwrap();
    assert!(report.manifest && report.snapshot.is_some());

    // A lost manifest is rebuilt from the files present.
    let (dir, keys) = snapshot_and_journals(&clock);
    fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    let report = persist::accept_missing(dir.path()).unwrap();
    assert_eq!(report.missing, [dir.path().join(MANIFEST)]);
    assert_eq!(dump(&open(dir.path(), &clock).unwrap()), keys);
}

#[test]
fn repairing_a_version_2_directory_gives_it_a_manifest_first() {
    let dir = fixture();
    let clock = ManualClock::new();
    // A journal cut inside its header: repair recreates it, in this release's format.
    let path = dir.path().join(journal(2));
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..10]).unwrap();
    let report = persist::repair(dir.path()).unwrap();
    assert_eq!(report.truncated, [Cut::new(path, 0, 10)]);
    assert!(dir.path().join(MANIFEST).exists());
    let store = open(dir.path(), &clock).unwrap();
    // Only what the snapshot held is left.
    let keys: Vec<String> = dump(&store).into_keys().collect();
    assert_eq!(keys, ["counter", "gone", "plain", "ttl-snap"]);
    assert_eq!(store.get("counter").as_deref(), Some("1"));
}

#[test]
fn a_manifest_deleted_under_a_running_store_is_reported_at_the_next_open() {
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &clock).unwrap();
    set(&store, "k", "v");
    fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    // Writes and compactions go on; nothing recreates the manifest behind the
    // operator's back.
    store.compact().unwrap();
    set(&store, "after", "w");
    drop(store);
    assert!(!dir.path().join(MANIFEST).exists());
    refused_naming(dir.path(), &clock, &[MANIFEST]);
}
