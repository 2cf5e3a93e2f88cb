//! `check` and `count` only read: a whole directory, a damaged one, a held one, one
//! written by format version 2; and `repair --accept-missing`, through the real binary.

mod common;

use std::fs;
use std::path::Path;

use common::{listing, ok, run};
use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{JsonText, StoreBuilder};

/// A directory with a snapshot and two journals, as a backup copy has it: no `LOCK`.
fn backup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "a", "1"]);
    ok(d, &["set", "b", "2", "ttl", "1000"]);
    ok(d, &["compact"]);
    ok(d, &["set", "c", "3"]);
    ok(d, &["del", "a"]);
    fs::remove_file(d.join("LOCK")).unwrap();
    dir
}

fn journals(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".kvj"))
        .collect();
    names.sort();
    names
}

#[test]
fn check_and_count_read_a_whole_directory_without_writing() {
    let dir = backup();
    let d = dir.path();
    let before = listing(d);
    let report = ok(d, &["check"]);
    let journal = &journals(d)[0];
    assert!(
        report.starts_with("MANIFEST: every file it lists is there\n"),
        "{report}"
    );
    assert!(report.contains("snapshot.kvs: 2 records, "), "{report}");
    assert!(
        report.contains(&format!("{journal}: 2 records, ")),
        "{report}"
    );
    assert!(report.ends_with("keys 2\nok\n"), "{report}");
    assert_eq!(ok(d, &["count"]), "2\n");
    assert_eq!(listing(d), before, "check or count changed the directory");

    // A torn tail is reported and left in place.
    let path = d.join(journal);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[9, 0]);
    fs::write(&path, &bytes).unwrap();
    let before = listing(d);
    let report = ok(d, &["check"]);
    assert!(
        report.contains("incomplete last record at byte "),
        "{report}"
    );
    assert_eq!(ok(d, &["count"]), "2\n");
    assert_eq!(listing(d), before);
}

#[test]
fn check_and_count_name_a_missing_file_and_change_nothing() {
    for (victim, named) in [
        ("snapshot.kvs", "snapshot.kvs"),
        ("journal", "journal-"),
        ("MANIFEST", "MANIFEST"),
    ] {
        let dir = backup();
        let d = dir.path();
        let file = match victim {
            "journal" => journals(d).pop().unwrap(),
            other => other.to_string(),
        };
        fs::remove_file(d.join(&file)).unwrap();
        let before = listing(d);
        for args in [&["check"][..], &["count"]] {
            let r = run(d, args);
            assert_eq!(r.code, 2, "{victim} {args:?}: {r:?}");
            assert_eq!(r.stdout, "", "{victim} {args:?}");
            assert!(
                r.stderr
                    .contains(&format!("is missing {}", d.join(&file).display())),
                "{r:?}"
            );
            assert!(r.stderr.contains(named), "{r:?}");
            assert!(r.stderr.contains("repair --accept-missing"), "{r:?}");
        }
        assert_eq!(listing(d), before, "{victim}: the directory changed");
    }
}

#[test]
fn accept_missing_makes_a_damaged_directory_open_with_what_is_left() {
    let dir = backup();
    let d = dir.path();
    fs::remove_file(d.join("snapshot.kvs")).unwrap();
    assert_eq!(run(d, &["get", "c"]).code, 2);
    let out = ok(d, &["repair", "--accept-missing"]);
    assert!(out.contains("forgot missing "), "{out}");
    assert!(out.contains("snapshot.kvs"), "{out}");
    assert!(
        out.ends_with("rebuilt from the files present: 1 keys in a new snapshot\n"),
        "{out}"
    );
    // The journal after the snapshot is kept; the keys only the snapshot held are gone.
    assert_eq!(ok(d, &["keys"]), "c\n");
    assert!(ok(d, &["check"]).ends_with("keys 1\nok\n"));
    let r = run(d, &["repair", "--everything"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("usage: repair [--accept-missing]"),
        "{r:?}"
    );
}

#[test]
fn check_refuses_a_held_directory_and_a_missing_one() {
    let dir = backup();
    let d = dir.path();
    let held = StoreBuilder::new()
        .open::<JsonText>(d, PersistOptions::default().fsync(Fsync::Always))
        .unwrap();
    let before = listing(d);
    for args in [&["check"][..], &["count"]] {
        let r = run(d, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("is in use by process"), "{r:?}");
    }
    assert_eq!(listing(d), before);
    drop(held);
    let gone = d.join("nothing");
    let r = run(&gone, &["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    assert!(!gone.exists());
}

#[test]
fn a_version_2_directory_checks_and_counts_and_then_opens() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kvcore/tests/fixtures/datadir-v2");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for entry in fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), d.join(entry.file_name())).unwrap();
    }
    let before = listing(d);
    let report = ok(d, &["check"]);
    assert!(
        report.starts_with("MANIFEST: none (written by an earlier release"),
        "{report}"
    );
    // The fixture's TTL keys expired long ago by the system clock.
    assert!(report.ends_with("keys 3\nok\n"), "{report}");
    assert_eq!(ok(d, &["count"]), "3\n");
    assert_eq!(listing(d), before);
    assert_eq!(ok(d, &["keys"]), "counter\njournal-only\nplain\n");
    assert!(d.join("MANIFEST").exists());
    assert!(ok(d, &["check"]).starts_with("MANIFEST: every file"));
}

/// Warnings (here: replaying without a missing file) go to stderr as plain text when
/// it is not a terminal, so that a log file or a pipe holds no colour codes.
#[test]
fn warnings_on_a_pipe_carry_no_colour_codes() {
    let dir = backup();
    let d = dir.path();
    fs::remove_file(d.join("MANIFEST")).unwrap();
    let r = run(d, &["repair", "--accept-missing"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("WARN"), "no warning: {r:?}");
    assert!(
        !r.stderr.contains('\u{1b}'),
        "colour codes on a pipe: {r:?}"
    );
}
