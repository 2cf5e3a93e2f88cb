//! Persistence when the disk fails: every step of the file layer made to fail through
//! the `Faults` seam (journal write and fsync, journal creation, snapshot write, fsync
//! and rename, directory fsync), and one run on a real, small tmpfs when the tests run
//! as root.
//!
//! The promises checked: a write the journal did not take is refused, is never seen,
//! and is not there after a restart; a write that was acknowledged is never lost while
//! the process lives; reads keep working; once the disk can be written again the store
//! takes writes again by itself, and everything acknowledged is on disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use kvcore::persist::{Fault, Faults, Fsync, PersistOptions, PersistentStore, Step};
use kvcore::{Error, SetOptions, Store, StoreBuilder};

fn open(dir: &Path, fsync: Fsync, faults: &Faults) -> PersistentStore<String> {
    let opts = PersistOptions::default().fsync(fsync);
    StoreBuilder::new()
        .open_with_faults::<String>(dir, opts, faults.clone())
        .expect("open the data directory")
}

/// Reopens `dir` with no faults, as after a restart.
fn reopen(dir: &Path) -> PersistentStore<String> {
    StoreBuilder::new()
        .open::<String>(dir, PersistOptions::default())
        .expect("reopen the data directory")
}

fn set(store: &PersistentStore<String>, key: &str, value: &str) -> kvcore::Result<()> {
    store
        .set(key, value.to_owned(), SetOptions::new())
        .map(|_| ())
}

fn refused(result: kvcore::Result<impl std::fmt::Debug>) -> bool {
    match result {
        Err(Error::JournalUnavailable { .. }) => true,
        other => panic!("expected JournalUnavailable, got {other:?}"),
    }
}

fn contents(store: &PersistentStore<String>) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = store.scan(None, cursor.as_deref(), 1000).expect("scan");
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// Waits, up to 10 s, until the background worker has let writes in again.
fn wait_until_writable(store: &PersistentStore<String>) {
    let started = Instant::now();
    while store.journal_stats().failed {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the store did not recover by itself"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn under_always_a_write_whose_record_fails_is_never_seen_nor_restored() {
    for step in [Step::JournalWrite, Step::JournalSync] {
        for fault in [Fault::NoSpace, Fault::Io] {
            let dir = tempfile::tempdir().unwrap();
            let faults = Faults::new();
            {
                let store = open(dir.path(), Fsync::Always, &faults);
                set(&store, "victim", "old").unwrap();
                // Nothing at all can be written from now on.
                faults
                    .fail(step, fault)
                    .fail(Step::JournalCreate, fault)
                    .fail(Step::SnapshotWrite, fault);
                assert!(refused(set(&store, "victim", "new")), "{step:?} {fault:?}");
                assert_eq!(store.get("victim").as_deref(), Some("old"));
                assert!(refused(store.delete("victim")));
                assert!(refused(store.incr("n", 1)));
                assert!(refused(store.clear()));
                assert!(refused(store.insert_all_absent(
                    vec![("a".into(), "1".into()), ("b".into(), "2".into())],
                    kvcore::Expiry::Default,
                )));
                assert_eq!(store.get("victim").as_deref(), Some("old"));
                assert_eq!(store.len(), 1);
                assert!(store.journal_stats().failed);
                // Writes stay refused, but every acknowledged one is on disk.
                store
                    .sync()
                    .unwrap_or_else(|e| panic!("{step:?} {fault:?}: {e}"));
                assert!(store.journal_stats().failed);
                assert!(refused(set(&store, "victim", "new")));
            } // dropped while the disk still fails, as a crash would leave it
            let store = reopen(dir.path());
            assert_eq!(store.get("victim").as_deref(), Some("old"));
            assert_eq!(store.len(), 1);
            assert_eq!(
                store.recovery().torn_tail,
                None,
                "the failed flush was cut back"
            );
        }
    }
}

#[test]
fn under_everysec_acknowledged_writes_survive_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::EverySec, &faults);
    for i in 0..100 {
        set(&store, &format!("before-{i}"), "x").unwrap();
    }
    store.sync().unwrap();
    // Acknowledged, still buffered when the disk fills.
    faults.fail(Step::JournalWrite, Fault::NoSpace);
    for i in 0..100 {
        set(&store, &format!("buffered-{i}"), "y").unwrap_or_else(|e| {
            // The background flush may already have met the full disk.
            assert!(matches!(e, Error::JournalUnavailable { .. }), "{e}");
            store.sync().ok();
        });
    }
    let acknowledged: Vec<String> = (0..100)
        .map(|i| format!("buffered-{i}"))
        .filter(|k| store.contains(k))
        .collect();
    assert!(store.sync().is_err());
    assert!(refused(set(&store, "after", "z")));
    assert!(!store.contains("after"));
    assert_eq!(store.get("before-7").as_deref(), Some("x"), "reads work");

    faults.heal();
    wait_until_writable(&store);
    set(&store, "after", "z").unwrap();
    drop(store);

    let store = reopen(dir.path());
    for i in 0..100 {
        assert!(store.contains(&format!("before-{i}")));
    }
    for k in &acknowledged {
        assert_eq!(store.get(k).as_deref(), Some("y"), "{k} was acknowledged");
    }
    assert_eq!(store.get("after").as_deref(), Some("z"));
}

#[test]
fn recovery_waits_while_the_disk_stays_full_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::Always, &faults);
    set(&store, "a", "1").unwrap();
    faults
        .fail(Step::JournalWrite, Fault::NoSpace)
        .fail(Step::JournalCreate, Fault::NoSpace)
        .fail(Step::SnapshotWrite, Fault::NoSpace);
    assert!(refused(set(&store, "b", "2")));
    for _ in 0..3 {
        // Under `always` everything acknowledged is on disk, so this is no error...
        store.sync().unwrap();
        // ...but nothing can be written, so writes stay refused.
        assert!(store.journal_stats().failed);
        assert!(!dir.path().join("snapshot.kvs.tmp").exists());
        assert!(refused(set(&store, "b", "2")));
    }
    faults.heal();
    store.sync().unwrap();
    assert!(!store.journal_stats().failed);
    set(&store, "b", "2").unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(
        contents(&store),
        BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
    );
}

#[test]
fn a_full_disk_keeps_the_acknowledged_records_and_writes_them_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::EverySec, &faults);
    set(&store, "before", "1").unwrap();
    store.sync().unwrap();
    // The disk fills up: no journal write, no snapshot, no new file.
    faults
        .fail(Step::JournalWrite, Fault::NoSpace)
        .fail(Step::JournalCreate, Fault::NoSpace)
        .fail(Step::SnapshotWrite, Fault::NoSpace);
    set(&store, "acknowledged", "2").unwrap();
    assert!(
        store.sync().is_err(),
        "the acknowledged write is not on disk yet"
    );
    assert!(refused(set(&store, "refused", "3")));
    // A little room comes back: enough for the kept records, not for a snapshot.
    faults.heal();
    faults
        .fail(Step::JournalCreate, Fault::NoSpace)
        .fail(Step::SnapshotWrite, Fault::NoSpace);
    store.sync().expect("the kept records fit");
    assert!(!store.journal_stats().failed);
    set(&store, "after", "4").unwrap();
    store.sync().unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(
        contents(&store),
        BTreeMap::from([
            ("acknowledged".into(), "2".into()),
            ("after".into(), "4".into()),
            ("before".into(), "1".into()),
        ])
    );
}

#[test]
fn under_everysec_racing_writers_lose_nothing_they_were_told_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::EverySec, &faults);
    faults.fail_after(Step::JournalWrite, 3, Fault::NoSpace);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..300)
                    .map(|i| {
                        let key = format!("t{t}-{i}");
                        let ok = set(&store, &key, "v").is_ok();
                        assert_eq!(store.contains(&key), ok, "{key}");
                        if i % 50 == 0 {
                            let _ = store.sync(); // flushes, and meets the full disk
                        }
                        (key, ok)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<(String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a writer thread"))
        .collect();
    let taken = outcomes.iter().filter(|(_, ok)| *ok).count();
    assert!(taken > 0 && taken < outcomes.len(), "{taken} taken");
    faults.heal();
    store.sync().expect("room again");
    drop(store);
    let store = reopen(dir.path());
    for (key, ok) in &outcomes {
        assert_eq!(store.contains(key), *ok, "{key}");
    }
}

#[test]
fn recovery_survives_failures_at_every_step_it_takes() {
    for step in [
        Step::JournalCreate,
        Step::SnapshotWrite,
        Step::SnapshotSync,
        Step::SnapshotRename,
        Step::DirSync,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let store = open(dir.path(), Fsync::EverySec, &faults);
        set(&store, "kept", "1").unwrap();
        store.sync().unwrap();
        set(&store, "acknowledged", "1").unwrap();
        // A failed fsync: only a snapshot of memory can be trusted now.
        faults.fail_once(Step::JournalSync, Fault::Io);
        assert!(store.sync().is_err());
        faults.fail_once(step, Fault::Io);
        assert!(store.sync().is_err(), "{step:?} fails the first attempt");
        assert!(refused(set(&store, "x", "1")));
        store
            .sync()
            .unwrap_or_else(|e| panic!("{step:?}: second attempt: {e}"));
        set(&store, "later", "2").unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.get("kept").as_deref(), Some("1"), "{step:?}");
        assert_eq!(store.get("acknowledged").as_deref(), Some("1"), "{step:?}");
        assert_eq!(store.get("later").as_deref(), Some("2"), "{step:?}");
        assert!(!store.contains("x"), "{step:?}");
    }
}

#[test]
fn a_failed_compaction_changes_nothing_and_keeps_writes_coming() {
    for step in [
        Step::JournalCreate,
        Step::SnapshotWrite,
        Step::SnapshotSync,
        Step::SnapshotRename,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let store = open(dir.path(), Fsync::Always, &faults);
        for i in 0..50 {
            set(&store, &format!("k{i}"), "v").unwrap();
        }
        faults.fail_once(step, Fault::NoSpace);
        assert!(store.compact().is_err(), "{step:?}");
        assert!(!dir.path().join("snapshot.kvs.tmp").exists(), "{step:?}");
        assert!(
            !store.journal_stats().failed,
            "{step:?}: the journal is fine"
        );
        set(&store, "after", "v").unwrap();
        store.compact().unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.len(), 51, "{step:?}");
    }
}

#[test]
fn racing_writers_see_only_what_the_journal_took() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::Always, &faults);
    faults.fail_after(Step::JournalSync, 40, Fault::Io);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| {
                        let key = format!("t{t}-{i}");
                        let ok = set(&store, &key, "v").is_ok();
                        // A refused write is never seen, not even for a moment.
                        assert_eq!(store.contains(&key), ok, "{key}");
                        (key, ok)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outcomes: Vec<(String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a writer thread"))
        .collect();
    let taken = outcomes.iter().filter(|(_, ok)| *ok).count();
    assert!(taken > 0 && taken < outcomes.len(), "{taken} taken");
    drop(store); // the disk still fails: nothing more reaches it
    let store = reopen(dir.path());
    for (key, ok) in &outcomes {
        assert_eq!(store.contains(key), *ok, "{key}");
    }
}

#[test]
fn shared_handles_and_the_last_drop_retry_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::No, &faults);
    let other = store.clone();
    set(&store, "a", "1").unwrap();
    faults.fail_once(Step::JournalWrite, Fault::NoSpace);
    assert!(store.sync().is_err());
    assert!(refused(set(&other, "b", "2")));
    drop(store);
    drop(other); // the disk has room again: the final sync recovers
    let store = reopen(dir.path());
    assert_eq!(store.get("a").as_deref(), Some("1"));
    assert!(!store.contains("b"));
}

/// A real full disk: a 2 MiB tmpfs, filled by the store's own writes. Needs root (to
/// mount); skipped, visibly, otherwise.
#[test]
fn a_real_full_tmpfs() {
    let Some(mount) = Tmpfs::mount("2m") else {
        return;
    };
    let dir = mount.path().join("data");
    let faults = Faults::new();
    let store = open(&dir, Fsync::Always, &faults);
    let value = "v".repeat(1000);
    let mut acknowledged = Vec::new();
    let mut refusals = 0;
    for i in 0..5000 {
        let key = format!("key-{i:05}");
        match set(&store, &key, &value) {
            Ok(()) => acknowledged.push(key),
            Err(Error::JournalUnavailable { kind, .. }) => {
                assert_eq!(kind, std::io::ErrorKind::StorageFull);
                assert!(!store.contains(&key));
                refusals += 1;
                if refusals > 20 {
                    break;
                }
            }
            Err(e) => panic!("{key}: {e}"),
        }
    }
    assert!(refusals > 0, "the tmpfs never filled");
    assert!(store.get(&acknowledged[0]).is_some(), "reads work");
    // Free room the way an operator would: delete an unrelated file. Recovery writes a
    // snapshot, so it needs room for one.
    std::fs::remove_file(mount.path().join("ballast")).unwrap();
    store.sync().expect("recovers once there is room");
    set(&store, "after", "x").unwrap();
    drop(store);
    let store = reopen(&dir);
    for key in &acknowledged {
        assert!(store.contains(key), "{key} was acknowledged");
    }
    assert!(store.contains("after"));
}

/// A tmpfs mounted on a temporary directory, with a 1 MiB ballast file that a test
/// can delete to free room; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let name = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_owned();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir = tempfile::tempdir().ok()?;
        let mounted = root
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped {name}: mounting a tmpfs needs root (the Faults tests cover the same paths)"
            );
            return None;
        }
        std::fs::write(dir.path().join("ballast"), vec![0u8; 1 << 20]).ok()?;
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_batch_is_journaled_with_one_commit_and_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::Always, &faults);
    let batch = |tag: &str| -> Vec<(String, String)> {
        (0..500)
            .map(|i| (format!("{tag}-{i}"), "v".into()))
            .collect()
    };
    let before = store.journal_stats().fsyncs;
    assert_eq!(
        store.set_many(batch("a"), kvcore::Expiry::Default).unwrap(),
        500
    );
    assert_eq!(
        store.journal_stats().fsyncs - before,
        1,
        "one fsync for the batch"
    );
    faults.fail(Step::JournalSync, Fault::Io);
    assert!(refused(store.set_many(batch("b"), kvcore::Expiry::Default)));
    assert_eq!(store.len(), 500, "no key of the refused batch was applied");
}

#[test]
fn a_retry_whose_fsync_fails_turns_to_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = open(dir.path(), Fsync::EverySec, &faults);
    set(&store, "kept", "1").unwrap();
    faults.fail_once(Step::JournalWrite, Fault::NoSpace);
    assert!(store.sync().is_err(), "the write fails; the record is kept");
    // The retry writes the kept record, but its fsync fails: the kernel may have lost
    // it, so the next attempt must write a snapshot, which fails here once.
    faults.fail_once(Step::JournalSync, Fault::Io);
    assert!(store.sync().is_err(), "the retry's fsync fails");
    faults.fail_once(Step::SnapshotWrite, Fault::NoSpace);
    assert!(
        store.sync().is_err(),
        "a snapshot is what recovery writes now"
    );
    store.sync().expect("the snapshot is written");
    drop(store);
    assert_eq!(reopen(dir.path()).get("kept").as_deref(), Some("1"));
}
