//! Persistence: a snapshot plus a checksummed, append-only journal in a data directory.
//!
//! [`StoreBuilder::open`](crate::StoreBuilder::open) opens (or creates) a directory,
//! recovers what it holds and returns a [`PersistentStore`]: a [`MemoryStore`] whose
//! every change is also appended to the journal.
//!
//! ```
//! use kvcore::persist::PersistOptions;
//! use kvcore::{SetOptions, Store, StoreBuilder};
//!
//! let dir = tempfile::tempdir()?;
//! {
//!     let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
//!     store.set("k", "v".into(), SetOptions::new())?;
//! } // dropping the last handle flushes and fsyncs the journal
//! let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
//! assert_eq!(store.get("k").as_deref(), Some("v"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Files
//!
//! - `snapshot.kvs`: every live key at some moment, written to `snapshot.kvs.tmp`,
//!   fsynced, renamed into place and the directory fsynced — so it is always whole.
//! - `journal-<generation>.kvj`: the changes since that snapshot, one checksummed
//!   record each. A snapshot names the journal generation that continues it.
//! - `MANIFEST`: which of those files the directory must hold — the snapshot's
//!   generation (or none) and the newest journal; every journal from the snapshot's
//!   generation to the newest must be there. Replaced atomically like the snapshot.
//! - `LOCK`: held with an exclusive `flock` while a process has the directory open,
//!   and holding that process's id.
//!
//! Every file starts with a magic number and a format version; every record carries
//! its length and a CRC-32 (see the `format` module for the layout).
//!
//! Opening a directory that lacks a file it must hold — `snapshot.kvs`, a journal, or
//! the `MANIFEST` itself — fails with [`Error::MissingFiles`] naming them, before
//! anything is changed: restore the directory from a backup, or, to keep only what is
//! left, run [`accept_missing`] (`kvcli DIR repair --accept-missing`). [`check`]
//! (`kvcli DIR check`) verifies a directory, a backup copy say, without writing to it.
//!
//! The manifest is updated *after* a file it newly names exists and *before* a file it
//! stops naming is deleted, so a crash between any two steps leaves a directory that
//! opens:
//!
//! - creating a store: write a manifest naming nothing, create journal 1, name it. A
//!   manifest naming nothing with no files is an empty store;
//! - rotating to journal g + 1 (a compaction's first step): create it, then name it.
//!   A journal one past the newest named is accepted (and named on open);
//! - finishing a compaction: rename the new snapshot into place, name it, then delete
//!   the journals before it. A snapshot newer than the one named is accepted, and
//!   journals older than the snapshot on disk are stale and deleted on open.
//!
//! A directory written by a release before manifests existed (format version 2, no
//! `MANIFEST`) is checked by what its files imply (journals contiguous from the
//! snapshot's generation, or from 1 without one) and gets a manifest and a fresh
//! journal when opened. This release writes version 3, so version-3 files without a
//! `MANIFEST` mean that it was lost.
//!
//! # Durability ([`Fsync`])
//!
//! - `always`: a write returns only after its record is fsynced. Concurrent writers
//!   share one fsync (group commit).
//! - `everysec` (default): records reach the operating system within about 10 ms and
//!   the disk once a second, so a power failure loses at most about a second and a
//!   crash of the process alone loses at most the last few milliseconds.
//! - `no`: records reach the operating system within about 10 ms; the OS decides when
//!   they reach the disk.
//!
//! A write is applied to memory, and so seen by readers, only once its journal
//! record is taken: written to the buffer that is flushed within about 10 ms under
//! `everysec` and `no`, and fsynced under `always`. Under `always` the write holds its
//! key's shard lock until the fsync returns (sharing it with the writers of other
//! shards), so a write that fails to reach the disk is never seen.
//!
//! # When the disk fails
//!
//! If a journal write or fsync fails (a full disk, `ENOSPC`, or an I/O error), the
//! journal file is cut back to where it was before that flush and the store refuses
//! every write with [`Error::JournalUnavailable`]: the write changed nothing and may
//! be retried later. Reads keep working. Nothing acknowledged is dropped: under
//! `everysec` and `no` a write is acknowledged once the journal took its record into
//! its buffer, and the records of a flush that failed are kept, in order, to be
//! written again; under `always` a write is acknowledged only once fsynced, so the
//! files already hold every acknowledged write.
//!
//! Once a second the store tries to make the journal whole again: it writes and fsyncs
//! the records it kept (under `always`, it starts a new journal file), which needs only
//! as much room as they take; once that succeeds, writes are accepted again (one
//! warning is logged when the journal fails, one when it is back). After a failed
//! fsync the kernel may have dropped earlier writes as well, so then the store starts
//! a new journal file and writes a snapshot of what memory holds instead, which needs
//! room for a snapshot; a failed attempt removes its temporary file.
//! [`PersistentStore::sync`] makes one attempt at once, and reports an error while
//! some acknowledged write is not on disk; dropping the last handle does the same and
//! logs the error. Under `always` that never happens, so there `sync` succeeds even
//! while the disk stays full and writes stay refused. A process that is killed while
//! the journal is failed loses the kept records (under `everysec`, as a power failure
//! would lose the last second).
//!
//! [`Faults`] is a seam through which tests make any step (journal write or fsync,
//! journal creation, snapshot write, fsync or rename, directory fsync) fail with
//! `ENOSPC` or `EIO` at a chosen moment.
//!
//! # Recovery
//!
//! Load the snapshot, then replay the journals from its generation on. Deadlines are
//! stored as absolute wall-clock times, so time spent down counts and an expired key
//! never comes back. Sliding restarts are not journaled (reads do not write): after a
//! restart a sliding key's deadline is the one of its last write or snapshot.
//!
//! A torn tail — an incomplete last record, or a last record that fails its checksum,
//! in the newest journal — is what a crash mid-write leaves; it is dropped with a
//! warning naming the file and byte offset, and the file is truncated there. Damage
//! anywhere else is an [`Error::Corrupt`] naming the file and offset; [`repair`] (the
//! `kvcli DIR repair` command) truncates at the last good record.
//!
//! # Compaction
//!
//! When the journal grows past both [`PersistOptions::compact_min_bytes`] and
//! [`PersistOptions::compact_ratio`] times the snapshot, a background thread rotates
//! to a new journal, writes a new snapshot shard by shard (holding each shard's read
//! lock only while copying it), renames it into place and deletes the old journals.
//! Replaying the new journal over a snapshot taken while writers ran is correct because
//! records hold a key's full state: re-applying one that the snapshot already reflects
//! changes nothing. A crash at any step leaves either the old snapshot with all
//! journals since it, or the new one with its journal (see Files for the manifest).

mod check;
mod codec;
mod compaction;
mod faults;
mod format;
mod journal;
mod lock;
mod manifest;
mod recovery;
mod repair;

pub use self::check::{CheckReport, CheckedFile, check, check_with};
use self::compaction::background;
use self::lock::DirLock;
pub use self::lock::holder;
pub(crate) use self::recovery::open;
use self::recovery::{Replay, load_snapshot, open_with, replay_journal};
use self::repair::write_atomically;
pub use self::repair::{AcceptReport, accept_missing, repair};

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex};

use self::faults::Fs;
pub use self::faults::{Fault, Faults, Step};
use self::format::{Damage, HeaderError, JOURNAL_MAGIC, Record, Records, SNAPSHOT_MAGIC};
use self::journal::Journal;
pub use self::journal::JournalStats;
use self::manifest::{Kind, MANIFEST_TMP};
use crate::compute::{Compute, Computed};
use crate::loader::{Failed, Load, LoadAsync, LoadFuture};
use crate::memory::{Changes, WriteLog};
use crate::store::{Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
use crate::{Error, MemoryStore, Pattern, Result, StoreBuilder, Value};

const SNAPSHOT: &str = "snapshot.kvs";
const SNAPSHOT_TMP: &str = "snapshot.kvs.tmp";
const LOCK: &str = "LOCK";

/// When journal records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Before the write returns (group commit shares fsyncs between writers).
    Always,
    /// Once a second, in the background.
    #[default]
    EverySec,
    /// When the operating system decides.
    No,
}

impl FromStr for Fsync {
    type Err = Error;

    /// Parses `always`, `everysec` or `no`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "no" => Ok(Fsync::No),
            other => Err(Error::Config(format!(
                "unknown fsync policy {other:?}: use always, everysec or no"
            ))),
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        })
    }
}

/// How a data directory is kept.
///
/// ```
/// use kvcore::persist::{Fsync, PersistOptions};
/// let opts = PersistOptions::default().fsync(Fsync::Always).compact_min_bytes(1 << 20);
/// assert_eq!(opts.fsync, Fsync::Always);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistOptions {
    /// When records reach the disk (default: every second).
    pub fsync: Fsync,
    /// Never compact a journal smaller than this (default: 64 MiB).
    pub compact_min_bytes: u64,
    /// Compact when the journal is this many times the snapshot's size (default: 2;
    /// values below 1 count as 1).
    pub compact_ratio: u64,
}

impl Default for PersistOptions {
    fn default() -> Self {
        PersistOptions {
            fsync: Fsync::EverySec,
            compact_min_bytes: 64 << 20,
            compact_ratio: 2,
        }
    }
}

impl PersistOptions {
    /// Sets the fsync policy.
    pub fn fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets the journal size below which no compaction happens.
    pub fn compact_min_bytes(mut self, bytes: u64) -> Self {
        self.compact_min_bytes = bytes;
        self
    }

    /// Sets the journal-to-snapshot size ratio that triggers compaction.
    pub fn compact_ratio(mut self, ratio: u64) -> Self {
        self.compact_ratio = ratio;
        self
    }
}

/// How values are written to and read from disk.
///
/// ```
/// use kvcore::persist::ValueCodec;
///
/// let mut buf = Vec::new();
/// "héllo".to_string().encode(&mut buf);
/// assert_eq!(String::decode(&buf).as_deref(), Ok("héllo"));
/// ```
pub trait ValueCodec: Value {
    /// Appends this value's bytes to `out`. Called while a shard lock is held: it must
    /// not call back into the store.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads a value written by `encode`; the error says what is wrong.
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String>;
}

/// Where a file was cut short, or would be: the file, the byte offset of the first
/// byte dropped, and how many bytes were dropped from there on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The file.
    pub file: PathBuf,
    /// Where the bad data starts.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub dropped: u64,
}

impl Cut {
    /// A cut of `file` at `offset`, dropping `dropped` bytes.
    pub fn new(file: impl Into<PathBuf>, offset: u64, dropped: u64) -> Cut {
        Cut {
            file: file.into(),
            offset,
            dropped,
        }
    }
}

/// A process that holds a data directory open (see [`holder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its process id, when the lock file names one.
    pub pid: Option<u32>,
}

/// What recovery found when a directory was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Keys loaded from the snapshot (live or not).
    pub snapshot_records: u64,
    /// Journal records replayed.
    pub journal_records: u64,
    /// A torn journal tail that was dropped: the file, the offset it was cut at, and
    /// how many bytes were dropped.
    pub torn_tail: Option<Cut>,
    /// Files the directory should have held and did not: only ever non-empty after
    /// [`accept_missing`], since opening refuses such a directory otherwise.
    pub missing: Vec<PathBuf>,
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Files cut short: the file, the offset of the first bad record, bytes dropped.
    pub truncated: Vec<Cut>,
}

/// Facts about the last snapshot, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// Size of the snapshot file in bytes (0 if there is none).
    pub bytes: u64,
    /// When the snapshot was last written: by this process, on the store's clock;
    /// before this process writes one, the modification time the file had at open
    /// (`None` when there is no snapshot).
    pub last_written: Option<SystemTime>,
    /// Compactions completed by this process.
    pub compactions: u64,
}

/// A store kept in a data directory. Cheap to clone; the directory stays locked until
/// the last clone is dropped, which flushes and fsyncs the journal.
///
/// Implements [`Store`] exactly as the [`MemoryStore`] inside it, except that each
/// write is journaled and, under [`Fsync::Always`], returns only once durable.
pub struct PersistentStore<V> {
    handle: Arc<Handle<V>>,
}

impl<V> Clone for PersistentStore<V> {
    fn clone(&self) -> Self {
        PersistentStore {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<V> fmt::Debug for PersistentStore<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentStore")
            .field("dir", &self.handle.core.dir)
            .field("options", &self.handle.core.options)
            .finish()
    }
}

/// Owned by user handles: dropping it stops the worker and flushes.
struct Handle<V> {
    core: Arc<Core<V>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    worker: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    _lock: DirLock,
}

/// Shared by the handle and the background worker.
struct Core<V> {
    store: MemoryStore<V>,
    journal: Arc<Journal>,
    dir: PathBuf,
    options: PersistOptions,
    snapshot: Mutex<SnapshotInfo>,
    /// The background compaction in progress, if any.
    compaction: Mutex<Option<JoinHandle<()>>>,
    /// `Core::sync`, for `Drop`, which cannot name `V: ValueCodec`.
    final_sync: fn(&Core<V>) -> Result<()>,
}

/// Feeds a store's changes into the journal.
struct Logger<V> {
    journal: Arc<Journal>,
    _values: PhantomData<fn(&V)>,
}

/// A write's records, encoded into the journal's buffer.
struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
}

impl<V: ValueCodec> Changes<V> for Encoder<'_> {
    fn put(&mut self, key: &str, value: &V, deadline: u64, ttl: u64) {
        format::put(self.buf, key, deadline, ttl, |p| value.encode(p));
    }
    fn delete(&mut self, key: &str) {
        format::del(self.buf, key);
    }
    fn clear(&mut self) {
        format::clear(self.buf);
    }
}

impl<V: ValueCodec> WriteLog<V> for Logger<V> {
    fn record(&self, write: &mut dyn FnMut(&mut dyn Changes<V>)) -> Result<()> {
        self.journal.append(|buf| write(&mut Encoder { buf }))
    }
    fn check(&self) -> Result<()> {
        self.journal.check()
    }
    fn commit(&self) -> Result<()> {
        self.journal.commit()
    }
}

pub(crate) fn sync_dir(fs: &Fs, dir: &Path) -> Result<()> {
    fs.check(Step::DirSync)
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn repair_hint(dir: &Path) -> String {
    format!(
        "run `kvcli {} repair` to truncate it at the last good record",
        dir.display()
    )
}

/// Journal files in `dir` as (generation, path), oldest first.
fn journals(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(generation) = name
            .strip_prefix("journal-")
            .and_then(|n| n.strip_suffix(".kvj"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>, dir: &Path) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
        hint: repair_hint(dir),
    }
}

impl<V: ValueCodec> PersistentStore<V> {
    /// Writes a snapshot now and starts a fresh journal.
    pub fn compact(&self) -> Result<()> {
        self.handle.core.compact()
    }

    /// Writes and fsyncs everything journaled so far, whatever the policy. If the
    /// journal could not be written, tries once more to make the directory whole (see
    /// "When the disk fails" above); an error means writes applied in memory are not
    /// all on disk.
    pub fn sync(&self) -> Result<()> {
        self.handle.core.sync()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.handle.core.dir
    }

    /// The options the directory was opened with.
    pub fn options(&self) -> PersistOptions {
        self.handle.core.options
    }

    /// What recovery found when the directory was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.handle.recovery
    }

    /// Journal size and fsync timings.
    pub fn journal_stats(&self) -> JournalStats {
        self.handle.core.journal.stats()
    }

    /// Snapshot size and time.
    pub fn snapshot_info(&self) -> SnapshotInfo {
        *self.handle.core.snapshot.lock()
    }

    /// The memory store inside, whose every change is journaled.
    pub(crate) fn store(&self) -> &MemoryStore<V> {
        &self.handle.core.store
    }
}

impl<V: ValueCodec> Store<V> for PersistentStore<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.store().get(key)
    }
    fn get_with_ttl(&self, key: &str) -> Option<(V, Option<Duration>)> {
        self.store().get_with_ttl(key)
    }
    fn get_many(&self, keys: &[&str]) -> Vec<Option<V>> {
        self.store().get_many(keys)
    }
    fn contains(&self, key: &str) -> bool {
        self.store().contains(key)
    }
    fn ttl(&self, key: &str) -> Option<Option<Duration>> {
        self.store().ttl(key)
    }
    fn set(&self, key: &str, value: V, opts: SetOptions) -> Result<SetOutcome> {
        self.store().set(key, value, opts)
    }
    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize> {
        self.store().set_many(items, expiry)
    }
    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.store().insert_all_absent(items, expiry)
    }
    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.store().update_all_present(items, expiry)
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.store().delete(key)
    }
    fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.store().expire(key, ttl)
    }
    fn clear_ttl(&self, key: &str) -> Result<bool> {
        self.store().clear_ttl(key)
    }
    fn incr(&self, key: &str, by: i64) -> Result<i64> {
        self.store().incr(key, by)
    }
    fn len(&self) -> usize {
        self.store().len()
    }
    fn clear(&self) -> Result<usize> {
        self.store().clear()
    }
    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        self.store().scan(pattern, cursor, limit)
    }
    fn stats(&self) -> Stats {
        self.store().stats()
    }
    fn purge_expired(&self, budget: usize) -> usize {
        self.store().purge_expired(budget)
    }
    fn mode(&self) -> Mode {
        self.store().mode()
    }
    fn weight(&self) -> Option<u64> {
        self.store().weight()
    }
    fn compute(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<&V>) -> Compute<V>,
    ) -> Result<Computed<V>> {
        self.store().compute(key, f)
    }
    fn single_flight(
        &self,
        key: &str,
        opts: SetOptions,
        load: &mut Load<'_, V>,
    ) -> std::result::Result<V, Failed> {
        self.store().single_flight(key, opts, load)
    }
    fn single_flight_async<'a>(
        &'a self,
        key: &'a str,
        opts: SetOptions,
        load: LoadAsync<'a, V>,
    ) -> LoadFuture<'a, V> {
        self.store().single_flight_async(key, opts, load)
    }
}

#[cfg(test)]
mod tests;
