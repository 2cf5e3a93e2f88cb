//! The persistence layer (`kvcore::persist`).
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
//!    and damage in a journal other than the newest is corruption (`damage.rs`);
//! 4. SIGKILL at random moments never loses a write acknowledged under
//!    `Fsync::Always` (the `crash` test binary, which re-executes itself);
//! 5. compactions (background and explicit) racing writers lose nothing;
//! 6. TTLs are absolute: time spent down counts, expired keys never come back, and a
//!    sliding key restarts from its last write or snapshot;
//! 7. the directory lock (while another thread spawns processes: the `crash` binary);
//! 8. the fsync policies; 9. value codecs; 10. capacity: evictions are journaled, and
//!    recovering a snapshot taken while writers ran evicts nothing (`lifecycle.rs`);
//! 11. a model-based property test: reopen and compact at random points (`reopen.rs`).
//!
//! No test sleeps for a TTL: clocks are `ManualClock`s moved by the tests. Every test
//! works in its own temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kvcore::persist::{Fsync, PersistOptions, ValueCodec};
use kvcore::{ManualClock, PersistentStore, Store, StoreBuilder, Value};

pub use crate::util::dump;

mod damage;
mod lifecycle;
mod reopen;

// ---------------------------------------------------------------------------------
// Helpers: files, records, contents.

/// Length of every file header (magic, version, generation, checksum).
const HEADER_LEN: usize = 24;
/// Length of every record frame (length, its checksum, the payload's checksum).
const FRAME_LEN: usize = 12;
const SNAPSHOT: &str = "snapshot.kvs";
const SEC: Duration = Duration::from_secs(1);

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

fn flip_byte(path: &Path, at: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

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
