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

mod faults;
mod format;
mod journal;
mod manifest;

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

impl ValueCodec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

impl ValueCodec for Arc<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|e| e.to_string())
    }
}

impl ValueCodec for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        Ok(bytes.to_vec())
    }
}

impl ValueCodec for Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        Ok(Arc::from(bytes))
    }
}

impl ValueCodec for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| "an i64 takes 8 bytes".to_string())?;
        Ok(i64::from_le_bytes(b))
    }
}

/// JSON values are stored as compact JSON text.
impl ValueCodec for serde_json::Value {
    fn encode(&self, out: &mut Vec<u8>) {
        // Writing a `Value` to a Vec cannot fail: every map key is a string.
        let _ = serde_json::to_writer(out, self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
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
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Files the directory should have held and did not: only ever non-empty after
    /// [`accept_missing`], since opening refuses such a directory otherwise.
    pub missing: Vec<PathBuf>,
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// Files cut short: the file, the offset of the first bad record, bytes dropped.
    pub truncated: Vec<(PathBuf, u64, u64)>,
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

/// The exclusive lock on a data directory, released when dropped.
///
/// Across processes: an exclusive `flock` on `DIR/LOCK`, which holds the owner's pid.
/// Within this process: a registry of open directories, since a lock is also held,
/// for a moment, by every child process forked while it is open (until the child
/// execs and its copy closes); an open that finds only such a copy waits it out.
#[derive(Debug)]
struct DirLock {
    _file: File,
    dir: PathBuf,
}

/// Directories this process has open, canonicalized.
static OPEN_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How long an open waits for forked children to let go of a lock this process held.
const FORK_GRACE: Duration = Duration::from_secs(2);

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock> {
        let canonical = dir.canonicalize().map_err(io_err(dir))?;
        let ours = std::process::id();
        let mut open = OPEN_DIRS.lock();
        if open.contains(&canonical) {
            return Err(Error::Locked {
                path: dir.to_path_buf(),
                pid: Some(ours),
            });
        }
        let path = dir.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut waited = Duration::ZERO;
        loop {
            match try_lock(&mut file, &path)? {
                None => break,
                // Only a fork of ours holds it; that copy closes when the child execs.
                Some(Some(pid)) if pid == ours && waited < FORK_GRACE => {
                    std::thread::sleep(Duration::from_millis(1));
                    waited += Duration::from_millis(1);
                }
                Some(pid) => {
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                        pid,
                    });
                }
            }
        }
        // Looking for a holder may have read the file: write the pid from the start.
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(ours.to_string().as_bytes()))
            .map_err(io_err(&path))?;
        open.push(canonical.clone());
        Ok(DirLock {
            _file: file,
            dir: canonical,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        OPEN_DIRS.lock().retain(|d| *d != self.dir);
    }
}

/// Tries the `flock` on `file`: `None` when taken, `Some(holder pid)` when held.
fn try_lock(file: &mut File, path: &Path) -> Result<Option<Option<u32>>> {
    match file.try_lock() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.read_to_string(&mut text);
            Ok(Some(text.trim().parse().ok()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether a process holds `dir` open, and its id when known: `None` when the
/// directory is free or does not exist. Looking changes nothing in the directory.
pub fn holder(dir: &Path) -> Option<Option<u32>> {
    if let Ok(canonical) = dir.canonicalize()
        && OPEN_DIRS.lock().contains(&canonical)
    {
        return Some(Some(std::process::id()));
    }
    let path = dir.join(LOCK);
    let mut file = File::open(&path).ok()?;
    // Dropping the file releases the lock if this look took it.
    try_lock(&mut file, &path).ok().flatten()
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

/// Opens `dir` (creating it if needed) into `store`, which must be freshly built.
pub(crate) fn open<V: ValueCodec>(
    store: MemoryStore<V>,
    dir: &Path,
    options: PersistOptions,
    faults: Option<Faults>,
) -> Result<PersistentStore<V>> {
    open_with(store, dir, options, faults, false)
}

/// [`open`], replaying what is there when `accept_missing` even if files the
/// directory should hold are missing.
fn open_with<V: ValueCodec>(
    store: MemoryStore<V>,
    dir: &Path,
    options: PersistOptions,
    faults: Option<Faults>,
    accept_missing: bool,
) -> Result<PersistentStore<V>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock = DirLock::acquire(dir)?;
    let files = Fs::new(faults);
    // Left by a compaction or a manifest update that did not finish.
    for tmp in [SNAPSHOT_TMP, MANIFEST_TMP] {
        let tmp = dir.join(tmp);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(io_err(&tmp))?;
        }
    }
    // Every file the directory should hold is accounted for before anything changes.
    let inventory = manifest::inventory(dir)?;
    let plan = manifest::plan(dir, &inventory, accept_missing)?;
    for path in &plan.missing {
        tracing::warn!(file = %path.display(), "replaying without a missing data file");
    }
    let mut recovery = RecoveryReport {
        missing: plan.missing.clone(),
        ..RecoveryReport::default()
    };
    let snapshot_bytes = if plan.snapshot {
        load_snapshot(&store, dir, &mut recovery)?.1
    } else {
        0
    };

    // Journals older than the snapshot are superseded (a compaction was cut short
    // before deleting them); the rest are replayed, oldest first.
    for path in &plan.stale {
        fs::remove_file(path).map_err(io_err(path))?;
    }
    for (i, (g, path)) in plan.replay.iter().enumerate() {
        let newest = i + 1 == plan.replay.len();
        replay_journal(
            &store,
            dir,
            *g,
            path,
            Replay::Open { newest },
            &mut recovery,
        )?;
    }
    let listed = plan.manifest;
    if inventory.manifest != Some(listed) {
        manifest::write(dir, listed)?;
    }
    // Appends go to the newest journal, except that a directory of an earlier release
    // (or one just rebuilt without its missing files) starts a journal of this
    // format, so that losing its new manifest is noticed.
    let fresh = plan.kind == Kind::Earlier || accept_missing;
    let newest = plan.replay.last().filter(|_| !fresh);
    let (file, bytes, generation) = match newest {
        Some((g, path)) => {
            let mut file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_err(path))?;
            let bytes = file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
            (file, bytes, *g)
        }
        None => {
            // Named in the manifest by `create`, once it exists.
            let generation = (listed.last_journal + 1).max(listed.snapshot).max(1);
            let file = journal::create(&files, dir, generation)?;
            (file, format::HEADER_LEN as u64, generation)
        }
    };
    let journal = Arc::new(Journal::new(
        dir,
        options.fsync,
        files,
        file,
        generation,
        bytes,
    ));
    store.attach_log(Box::new(Logger {
        journal: Arc::clone(&journal),
        _values: PhantomData,
    }));
    // A bounded store replays without evicting, then trims to its capacity here,
    // journaling what it evicts.
    store.finish_restore()?;
    journal.flush(true)?;
    let core = Arc::new(Core {
        store,
        journal,
        dir: dir.to_path_buf(),
        options,
        snapshot: Mutex::new(SnapshotInfo {
            bytes: snapshot_bytes,
            last_written: snapshot_mtime(dir, snapshot_bytes),
            ..SnapshotInfo::default()
        }),
        compaction: Mutex::new(None),
        final_sync: Core::sync,
    });
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let worker = {
        let core = Arc::clone(&core);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("kv-journal".into())
            .spawn(move || background(&core, &stop))
            .map_err(io_err(dir))?
    };
    Ok(PersistentStore {
        handle: Arc::new(Handle {
            core,
            stop,
            worker: Some(worker),
            recovery,
            _lock: lock,
        }),
    })
}

/// When the snapshot found at open was written: its modification time, if it has
/// one (`snapshot_bytes` is 0 when there is no snapshot).
fn snapshot_mtime(dir: &Path, snapshot_bytes: u64) -> Option<SystemTime> {
    if snapshot_bytes == 0 {
        return None;
    }
    fs::metadata(dir.join(SNAPSHOT))
        .and_then(|m| m.modified())
        .ok()
}

/// Loads `snapshot.kvs` if there is one. Returns the journal generation that
/// continues it (1 without a snapshot) and the file's size.
fn load_snapshot<V: ValueCodec>(
    store: &MemoryStore<V>,
    dir: &Path,
    recovery: &mut RecoveryReport,
) -> Result<(u64, u64)> {
    let path = dir.join(SNAPSHOT);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((1, 0)),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let generation = match format::parse_header(&bytes, SNAPSHOT_MAGIC) {
        Ok(g) => g,
        Err(HeaderError::Short) => return Err(corrupt(&path, 0, "truncated header", dir)),
        Err(HeaderError::Bad(reason)) => return Err(corrupt(&path, 0, reason, dir)),
    };
    let now = store.now_nanos();
    let mut puts = 0u64;
    let mut records = Records::new(&bytes);
    let mut ended = false;
    for record in records.by_ref() {
        let (offset, record) = record.map_err(|damage| damage_error(&path, damage, dir))?;
        match record {
            Record::Put {
                key,
                deadline,
                ttl,
                value,
            } => {
                puts += 1;
                if deadline == 0 || deadline > now {
                    let value = V::decode(value).map_err(|e| corrupt(&path, offset, e, dir))?;
                    store.restore(key, value, deadline, ttl)?;
                }
            }
            Record::End { count } if count == puts => {
                ended = true;
                break;
            }
            Record::End { count } => {
                let reason = format!("END says {count} records, {puts} were read");
                return Err(corrupt(&path, offset, reason, dir));
            }
            _ => {
                return Err(corrupt(
                    &path,
                    offset,
                    "unexpected record in a snapshot",
                    dir,
                ));
            }
        }
    }
    if !ended {
        let reason = "the snapshot ends without its END record";
        return Err(corrupt(&path, records.offset(), reason, dir));
    }
    recovery.snapshot_records = puts;
    Ok((generation, bytes.len() as u64))
}

fn damage_error(path: &Path, damage: Damage, dir: &Path) -> Error {
    match damage {
        Damage::TornTail { offset } => corrupt(path, offset, "incomplete record", dir),
        Damage::Corrupt { offset, reason } => corrupt(path, offset, reason, dir),
    }
}

/// How a journal is replayed.
#[derive(Debug, Clone, Copy)]
enum Replay {
    /// Opening the store: a torn tail of the newest journal is cut off the file.
    Open { newest: bool },
    /// Checking the directory: a torn tail is only reported; nothing is written.
    Check { newest: bool },
}

impl Replay {
    fn newest(self) -> bool {
        match self {
            Replay::Open { newest } | Replay::Check { newest } => newest,
        }
    }
}

/// Replays one journal into `store`. In the newest journal a torn tail is dropped
/// (and, when opening, the file truncated); anywhere else damage is an error.
fn replay_journal<V: ValueCodec>(
    store: &MemoryStore<V>,
    dir: &Path,
    generation: u64,
    path: &Path,
    how: Replay,
    recovery: &mut RecoveryReport,
) -> Result<()> {
    let newest = how.newest();
    let writes = matches!(how, Replay::Open { .. });
    let bytes = fs::read(path).map_err(io_err(path))?;
    match format::parse_header(&bytes, JOURNAL_MAGIC) {
        Ok(g) if g == generation => {}
        Ok(g) => {
            let reason = format!("header says generation {g}, file name says {generation}");
            return Err(corrupt(path, 0, reason, dir));
        }
        Err(HeaderError::Short) if newest => {
            // Cut short while being created: it never held a record.
            if writes {
                warn_torn(path, 0, bytes.len() as u64, recovery);
                journal::create(&Fs::default(), dir, generation)?;
            } else {
                recovery.torn_tail = Some((path.to_path_buf(), 0, bytes.len() as u64));
            }
            return Ok(());
        }
        Err(HeaderError::Short) => return Err(corrupt(path, 0, "truncated header", dir)),
        Err(HeaderError::Bad(reason)) => return Err(corrupt(path, 0, reason, dir)),
    }
    let now = store.now_nanos();
    for record in Records::new(&bytes) {
        let (offset, record) = match record {
            Ok(r) => r,
            Err(Damage::TornTail { offset }) if newest && !writes => {
                recovery.torn_tail =
                    Some((path.to_path_buf(), offset, bytes.len() as u64 - offset));
                break;
            }
            Err(Damage::TornTail { offset }) if newest => {
                warn_torn(path, offset, bytes.len() as u64 - offset, recovery);
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                file.set_len(offset)
                    .and_then(|()| file.sync_all())
                    .map_err(io_err(path))?;
                break;
            }
            Err(damage) => return Err(damage_error(path, damage, dir)),
        };
        recovery.journal_records += 1;
        match record {
            Record::Put {
                key,
                deadline,
                ttl,
                value,
            } => {
                if deadline != 0 && deadline <= now {
                    store.delete(key)?;
                } else {
                    let value = V::decode(value).map_err(|e| corrupt(path, offset, e, dir))?;
                    store.restore(key, value, deadline, ttl)?;
                }
            }
            Record::Del { key } => {
                store.delete(key)?;
            }
            Record::Clear => {
                store.clear()?;
            }
            Record::End { .. } => {
                return Err(corrupt(
                    path,
                    offset,
                    "unexpected END record in a journal",
                    dir,
                ));
            }
        }
    }
    Ok(())
}

fn warn_torn(path: &Path, offset: u64, dropped: u64, recovery: &mut RecoveryReport) {
    tracing::warn!(
        file = %path.display(),
        offset,
        dropped,
        "dropping a torn journal tail (an incomplete last record, left by a crash mid-write)"
    );
    recovery.torn_tail = Some((path.to_path_buf(), offset, dropped));
}

/// Truncates every journal of `dir` at its first bad record, and a snapshot at its
/// first bad record (rewritten whole, with the records before it). Refuses a
/// directory that another process holds.
///
/// Records after the cut are lost; the report says where each cut was made.
pub fn repair(dir: &Path) -> Result<RepairReport> {
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
        });
    }
    let _lock = DirLock::acquire(dir)?;
    // A directory of an earlier release gets its manifest first, so that a file this
    // release rewrites (in its own format version) is not taken for a lost manifest.
    if let Ok(inventory) = manifest::inventory(dir)
        && inventory.manifest.is_none()
        && let Ok(plan) = manifest::plan(dir, &inventory, true)
        && plan.kind == Kind::Earlier
    {
        manifest::write(dir, plan.manifest)?;
    }
    let mut report = RepairReport::default();
    let snapshot = dir.join(SNAPSHOT);
    if snapshot.exists() {
        repair_snapshot(dir, &snapshot, &mut report)?;
    }
    for (generation, path) in journals(dir)? {
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let cut = match format::parse_header(&bytes, JOURNAL_MAGIC) {
            Err(HeaderError::Short) => Some(0),
            Err(HeaderError::Bad(reason)) => return Err(corrupt(&path, 0, reason, dir)),
            Ok(_) => Records::new(&bytes).find_map(|r| match r {
                Err(Damage::TornTail { offset } | Damage::Corrupt { offset, .. }) => Some(offset),
                Ok(_) => None,
            }),
        };
        if let Some(offset) = cut {
            if offset == 0 {
                journal::create(&Fs::default(), dir, generation)?;
            } else {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                file.set_len(offset)
                    .and_then(|()| file.sync_all())
                    .map_err(io_err(&path))?;
            }
            report
                .truncated
                .push((path, offset, bytes.len() as u64 - offset));
        }
    }
    Ok(report)
}

/// What [`accept_missing`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptReport {
    /// The files that were missing, now forgotten.
    pub missing: Vec<PathBuf>,
    /// What the [`repair`] run first did.
    pub repaired: RepairReport,
    /// Live keys in the rebuilt directory.
    pub keys: usize,
}

/// Makes a directory that lacks some of its files open again, keeping what is left:
/// [`repair`]s damaged files, replays the snapshot and journals that are there
/// (skipping the missing ones), and writes a new snapshot, journal and manifest that
/// describe the result. The keys the missing files held are lost, and a key whose
/// later changes were in a missing journal has an older value.
///
/// This is the explicit override for [`Error::MissingFiles`] (`kvcli DIR repair
/// --accept-missing`); restoring the directory from a backup loses nothing and is
/// better when there is one. Refuses a directory that another process holds.
pub fn accept_missing(dir: &Path) -> Result<AcceptReport> {
    let repaired = repair(dir)?;
    let store = StoreBuilder::new().build::<Vec<u8>>()?;
    let opened = open_with(
        store,
        dir,
        PersistOptions::default().fsync(Fsync::Always),
        None,
        true,
    )?;
    opened.compact()?;
    opened.sync()?;
    Ok(AcceptReport {
        missing: opened.recovery().missing.clone(),
        repaired,
        keys: opened.len(),
    })
}

/// A data file that [`check`] read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedFile {
    /// The file.
    pub path: PathBuf,
    /// Its generation: a journal's own, or the journal a snapshot continues into.
    pub generation: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records read (a snapshot's keys, live or not; a journal's changes).
    pub records: u64,
}

/// What [`check`] found in a data directory that opens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Whether the directory has a `MANIFEST`. A directory written by an earlier
    /// release has none (its files are checked by what they imply), and gets one the
    /// next time it is opened.
    pub manifest: bool,
    /// The snapshot, if there is one.
    pub snapshot: Option<CheckedFile>,
    /// The journals replayed over it, oldest first.
    pub journals: Vec<CheckedFile>,
    /// Journals older than the snapshot: superseded, deleted by the next open.
    pub stale: Vec<PathBuf>,
    /// An incomplete last record in the newest journal (the file, its offset, bytes):
    /// what a crash mid-write leaves; the next open drops it with a warning.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Keys the store would hold if opened now.
    pub live_keys: usize,
}

/// Verifies a data directory without changing it: the manifest, that every file it
/// needs is there, every header and record checksum, and every value (decoded as `V`),
/// then counts the live keys by the system clock.
///
/// Nothing is written — no `LOCK` file, no journal, no truncation of a torn tail —
/// so it suits a backup copy. A directory that a process holds open is refused with
/// [`Error::Locked`] (its files change under a reader); one that would not open is the
/// error opening it would give: [`Error::MissingFiles`] or [`Error::Corrupt`].
///
/// ```
/// use kvcore::persist::{self, PersistOptions};
/// use kvcore::{SetOptions, Store, StoreBuilder};
///
/// let dir = tempfile::tempdir()?;
/// let store = StoreBuilder::new().open::<String>(dir.path(), PersistOptions::default())?;
/// store.set("k", "v".into(), SetOptions::new())?;
/// drop(store);
/// let report = persist::check::<String>(dir.path())?;
/// assert_eq!(report.live_keys, 1);
/// assert!(report.manifest);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check<V: ValueCodec>(dir: &Path) -> Result<CheckReport> {
    check_with::<V>(StoreBuilder::new(), dir)
}

/// [`check`], replaying into a store `builder` builds: its clock decides which keys
/// are live, and its capacity bounds them as an open with it would.
pub fn check_with<V: ValueCodec>(builder: StoreBuilder, dir: &Path) -> Result<CheckReport> {
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
        });
    }
    if let Some(pid) = holder(dir) {
        return Err(Error::Locked {
            path: dir.to_path_buf(),
            pid,
        });
    }
    let store = builder.build::<V>()?;
    let inventory = manifest::inventory(dir)?;
    let plan = manifest::plan(dir, &inventory, false)?;
    let mut recovery = RecoveryReport::default();
    let snapshot = match &inventory.snapshot {
        Some(found) if plan.snapshot => {
            let (generation, bytes) = load_snapshot(&store, dir, &mut recovery)?;
            Some(CheckedFile {
                path: found.path.clone(),
                generation,
                bytes,
                records: recovery.snapshot_records,
            })
        }
        _ => None,
    };
    let mut journals = Vec::new();
    for (i, (generation, path)) in plan.replay.iter().enumerate() {
        let newest = i + 1 == plan.replay.len();
        let before = recovery.journal_records;
        replay_journal(
            &store,
            dir,
            *generation,
            path,
            Replay::Check { newest },
            &mut recovery,
        )?;
        let bytes = fs::metadata(path).map_err(io_err(path))?.len();
        journals.push(CheckedFile {
            path: path.clone(),
            generation: *generation,
            bytes,
            records: recovery.journal_records - before,
        });
    }
    // Trimmed to a capacity as opening would, in memory only.
    store.finish_restore()?;
    Ok(CheckReport {
        manifest: inventory.manifest.is_some(),
        snapshot,
        journals,
        stale: plan.stale,
        torn_tail: recovery.torn_tail,
        live_keys: store.len(),
    })
}

fn repair_snapshot(dir: &Path, path: &Path, report: &mut RepairReport) -> Result<()> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let generation = match format::parse_header(&bytes, SNAPSHOT_MAGIC) {
        Ok(g) => g,
        Err(HeaderError::Short) => {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason: "truncated header".into(),
                hint: "the snapshot cannot be repaired; restore it from a backup".into(),
            });
        }
        Err(HeaderError::Bad(reason)) => {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason,
                hint: "the snapshot cannot be repaired; restore it from a backup".into(),
            });
        }
    };
    let mut good = Vec::new();
    let mut cut = None;
    let mut ended = false;
    let mut records = Records::new(&bytes);
    for record in records.by_ref() {
        match record {
            Ok((_, Record::End { count })) if count == good.len() as u64 => {
                ended = true;
                break;
            }
            Ok((
                _,
                Record::Put {
                    key,
                    deadline,
                    ttl,
                    value,
                },
            )) => {
                good.push((key, deadline, ttl, value));
            }
            Ok((offset, _)) | Err(Damage::Corrupt { offset, .. } | Damage::TornTail { offset }) => {
                cut = Some(offset);
                break;
            }
        }
    }
    if ended {
        return Ok(()); // every record checks out: nothing to repair
    }
    // Cut at the first bad record, or at the end of a file missing its END record.
    let offset = cut.unwrap_or(records.offset());
    let mut out = format::header(SNAPSHOT_MAGIC, generation).to_vec();
    for (key, deadline, ttl, value) in &good {
        format::put(&mut out, key, *deadline, *ttl, |p| {
            p.extend_from_slice(value)
        });
    }
    format::end(&mut out, good.len() as u64);
    write_atomically(dir, path, &out)?;
    report
        .truncated
        .push((path.to_path_buf(), offset, bytes.len() as u64 - offset));
    Ok(())
}

/// Writes `bytes` to `path` (a file of `dir`) through a temporary file (its name and
/// `.tmp`), fsync, rename and an fsync of the directory.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(&Fs::default(), dir)
}

/// How often a failed journal is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

fn background<V: ValueCodec>(core: &Arc<Core<V>>, stop: &(Mutex<bool>, Condvar)) {
    let mut last_try: Option<std::time::Instant> = None;
    loop {
        {
            let mut stopped = stop.0.lock();
            if !*stopped {
                stop.1.wait_for(&mut stopped, Duration::from_millis(10));
            }
            if *stopped {
                return;
            }
        }
        if core.journal.is_failed() {
            // Writes are refused meanwhile; try to make the directory whole again.
            if last_try.is_none_or(|t| t.elapsed() >= RETRY_EVERY) {
                last_try = Some(std::time::Instant::now());
                let _ = core.recover();
            }
            continue;
        }
        // A failure is logged once, when it happens, and refuses later writes.
        let _ = core.journal.tick();
        // Compaction runs on a thread of its own so that flushing never waits for it.
        let mut running = core.compaction.lock();
        let idle = running.as_ref().is_none_or(|t| t.is_finished());
        if idle && core.should_compact() {
            if let Some(done) = running.take() {
                let _ = done.join();
            }
            let core = Arc::clone(core);
            let spawned = std::thread::Builder::new()
                .name("kv-compact".into())
                .spawn(move || {
                    if let Err(e) = core.compact() {
                        tracing::error!(error = %e, "compaction failed; the journal keeps growing");
                    }
                });
            match spawned {
                Ok(thread) => *running = Some(thread),
                Err(e) => tracing::error!(error = %e, "could not start a compaction"),
            }
        }
    }
}

impl<V: ValueCodec> Core<V> {
    fn should_compact(&self) -> bool {
        if self.journal.is_failed() {
            return false;
        }
        let journal = self.journal.stats().bytes;
        let snapshot = self.snapshot.lock().bytes;
        journal > self.options.compact_min_bytes
            && journal > snapshot.saturating_mul(self.options.compact_ratio.max(1))
    }

    /// Rotates the journal, writes a snapshot, and deletes the journals it replaces.
    fn compact(&self) -> Result<()> {
        let mut info = self.snapshot.lock(); // one compaction at a time
        let generation = self.journal.rotate()?;
        self.write_snapshot(generation, &mut info)
    }

    /// Makes a failed journal whole again, then lets writes in: writes the records of
    /// acknowledged writes it kept (under `always`, where it kept none, starts a new
    /// journal file); or, after a failed fsync, starts a new journal file and writes a
    /// snapshot of what memory holds, which replaces the journals before it.
    fn recover(&self) -> Result<()> {
        let mut info = self.snapshot.lock();
        if !self.journal.is_failed() {
            return Ok(());
        }
        // Most failures need only the kept records written again (a few kilobytes);
        // after a failed fsync, only a snapshot of memory can be trusted.
        let attempt = if self.journal.needs_snapshot() {
            self.journal
                .restart()
                .and_then(|generation| self.write_snapshot(generation, &mut info))
        } else {
            self.journal.retry()
        };
        if let Err(e) = &attempt {
            tracing::debug!(error = %e, "the data directory still cannot be written");
        } else if let Some((down, refused)) = self.journal.recovered() {
            tracing::warn!(
                after = ?down,
                refused,
                "the data directory can be written again; writes are accepted"
            );
        }
        attempt
    }

    /// Writes a snapshot of the store that journal `generation` continues, renames it
    /// into place and deletes the journals before that generation. The caller holds
    /// the snapshot lock (one snapshot at a time). A failure removes the temporary
    /// file, so that a full disk is not made fuller.
    fn write_snapshot(&self, generation: u64, info: &mut SnapshotInfo) -> Result<()> {
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let written = self.write_snapshot_file(&tmp, generation);
        let (count, bytes) = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let path = self.dir.join(SNAPSHOT);
        let fs = self.journal.fs();
        if let Err(e) = fs.rename(Step::SnapshotRename, &tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        sync_dir(fs, &self.dir)?;
        manifest::snapshot_replaced(&self.dir, generation)?;
        for (g, old) in journals(&self.dir)? {
            if g < generation {
                fs::remove_file(&old).map_err(io_err(&old))?;
            }
        }
        info.bytes = bytes;
        info.last_written = Some(crate::clock::from_nanos(self.store.now_nanos()));
        info.compactions += 1;
        tracing::info!(keys = count, bytes, generation, "snapshot written");
        Ok(())
    }

    /// Writes and fsyncs the snapshot's temporary file. Returns its keys and bytes.
    fn write_snapshot_file(&self, tmp: &Path, generation: u64) -> Result<(u64, u64)> {
        let fs = self.journal.fs();
        let file = File::create(tmp).map_err(io_err(tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut failed = None;
        let mut count = 0u64;
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(&format::header(SNAPSHOT_MAGIC, generation));
        self.store.for_each_shard(|entries| {
            for (key, value, deadline, ttl) in entries {
                format::put(&mut buf, &key, deadline, ttl, |p| value.encode(p));
                count += 1;
            }
            if failed.is_none()
                && let Err(e) = fs.write_all(Step::SnapshotWrite, &mut out, &buf)
            {
                failed = Some(e);
            }
            buf.clear();
        });
        format::end(&mut buf, count);
        let written = match failed {
            Some(e) => Err(e),
            None => fs
                .write_all(Step::SnapshotWrite, &mut out, &buf)
                .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
                .and_then(|file| fs.sync_all(Step::SnapshotSync, &file).map(|()| file)),
        };
        let file = written.map_err(io_err(tmp))?;
        let bytes = file.metadata().map_err(io_err(tmp))?.len();
        Ok((count, bytes))
    }

    /// Makes everything applied so far durable: flushes and fsyncs the journal, or,
    /// if it failed, tries once more to recover it. Under `always` a failed journal
    /// still holds every applied write, so a failed attempt is no error then: writes
    /// stay refused, but nothing acknowledged is missing from the disk.
    fn sync(&self) -> Result<()> {
        if !self.journal.is_failed() {
            return self.journal.flush(true);
        }
        let attempt = self.recover();
        match attempt {
            Err(e) if self.journal.kept_all() => {
                tracing::warn!(
                    error = %e,
                    "the data directory still cannot be written; every acknowledged \
                     write is on disk"
                );
                Ok(())
            }
            other => other,
        }
    }
}

impl<V> Drop for Handle<V> {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        if let Some(compaction) = self.core.compaction.lock().take() {
            let _ = compaction.join();
        }
        if let Err(e) = self.core.final_sync() {
            tracing::error!(error = %e, "final journal flush failed");
        }
    }
}

impl<V> Core<V> {
    /// [`Core::sync`] without the bound on `V` that `Drop` cannot carry.
    fn final_sync(&self) -> Result<()> {
        (self.final_sync)(self)
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

    /// Runs a write on the memory store, then waits for the journal as the policy says.
    /// A write: the memory store journals each change and applies it only once the
    /// journal took it (see `WriteLog`).
    fn write<R>(&self, f: impl FnOnce(&MemoryStore<V>) -> Result<R>) -> Result<R> {
        f(&self.handle.core.store)
    }

    fn store(&self) -> &MemoryStore<V> {
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
        self.write(|s| s.set(key, value, opts))
    }
    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize> {
        self.write(|s| s.set_many(items, expiry))
    }
    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.write(|s| s.insert_all_absent(items, expiry))
    }
    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.write(|s| s.update_all_present(items, expiry))
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.write(|s| s.delete(key))
    }
    fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.write(|s| s.expire(key, ttl))
    }
    fn clear_ttl(&self, key: &str) -> Result<bool> {
        self.write(|s| s.clear_ttl(key))
    }
    fn incr(&self, key: &str, by: i64) -> Result<i64> {
        self.write(|s| s.incr(key, by))
    }
    fn len(&self) -> usize {
        self.store().len()
    }
    fn clear(&self) -> Result<usize> {
        self.write(|s| s.clear())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, StoreBuilder};

    fn open_at(dir: &Path, clock: &ManualClock, opts: PersistOptions) -> PersistentStore<String> {
        StoreBuilder::new()
            .clock(clock.clone())
            .open(dir, opts)
            .unwrap()
    }

    #[test]
    fn survives_reopen_with_deletes_clear_and_ttls() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let opts = PersistOptions::default();
        {
            let s = open_at(dir.path(), &clock, opts);
            s.set("gone", "x".into(), SetOptions::new()).unwrap();
            s.clear().unwrap();
            s.set("a", "1".into(), SetOptions::new()).unwrap();
            s.set("b", "2".into(), SetOptions::new()).unwrap();
            s.delete("b").unwrap();
            s.set(
                "t",
                "3".into(),
                SetOptions::new().ttl(Duration::from_secs(10)),
            )
            .unwrap();
            s.incr("a", 4).unwrap();
        }
        clock.advance(Duration::from_secs(5));
        {
            let s = open_at(dir.path(), &clock, opts);
            assert_eq!(s.get("a").as_deref(), Some("5"));
            assert_eq!(s.get("b"), None);
            assert_eq!(s.get("gone"), None);
            assert_eq!(s.ttl("t"), Some(Some(Duration::from_secs(5))));
            s.compact().unwrap();
            s.set("after", "4".into(), SetOptions::new()).unwrap();
        }
        clock.advance(Duration::from_secs(5)); // time spent down counts
        let s = open_at(dir.path(), &clock, opts);
        assert_eq!(s.get("t"), None);
        assert_eq!(s.get("after").as_deref(), Some("4"));
        assert_eq!(s.len(), 2);
        assert_eq!(journals(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_second_open_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let _s = open_at(dir.path(), &clock, PersistOptions::default());
        let err = StoreBuilder::new()
            .open::<String>(dir.path(), PersistOptions::default())
            .unwrap_err();
        match err {
            Error::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other}"),
        }
        assert_eq!(holder(dir.path()), Some(Some(std::process::id())));
    }
}
