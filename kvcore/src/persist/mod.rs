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
//! - `LOCK`: held with an exclusive `flock` while a process has the directory open,
//!   and holding that process's id.
//!
//! Every file starts with a magic number and a format version; every record carries
//! its length and a CRC-32 (see the `format` module for the layout).
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
//! If a journal write or fsync fails, the store refuses every later write with an
//! [`Error::Io`] rather than acknowledge writes it cannot keep.
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
//! journals since it, or the new one with its journal.

mod format;
mod journal;

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

use self::format::{Damage, HeaderError, JOURNAL_MAGIC, Record, Records, SNAPSHOT_MAGIC};
use self::journal::Journal;
pub use self::journal::JournalStats;
use crate::memory::WriteLog;
use crate::store::{Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
use crate::{Error, MemoryStore, Pattern, Result, Value};

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
}

/// Feeds a store's changes into the journal.
struct Logger<V> {
    journal: Arc<Journal>,
    _values: PhantomData<fn(&V)>,
}

impl<V: ValueCodec> WriteLog<V> for Logger<V> {
    fn put(&self, key: &str, value: &V, deadline: u64, ttl: u64) {
        self.journal
            .append(|buf| format::put(buf, key, deadline, ttl, |p| value.encode(p)));
    }
    fn delete(&self, key: &str) {
        self.journal.append(|buf| format::del(buf, key));
    }
    fn clear(&self) {
        self.journal.append(format::clear);
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
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
) -> Result<PersistentStore<V>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock = DirLock::acquire(dir)?;
    let tmp = dir.join(SNAPSHOT_TMP);
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(io_err(&tmp))?; // a compaction that did not finish
    }
    let mut recovery = RecoveryReport::default();
    let (mut generation, snapshot_bytes) = load_snapshot(&store, dir, &mut recovery)?;

    // Journals older than the snapshot are superseded (a compaction was cut short
    // before deleting them); the rest are replayed, oldest first.
    let mut live = Vec::new();
    for (g, path) in journals(dir)? {
        if g < generation {
            fs::remove_file(&path).map_err(io_err(&path))?;
        } else {
            live.push((g, path));
        }
    }
    for (i, (g, path)) in live.iter().enumerate() {
        let newest = i + 1 == live.len();
        replay_journal(&store, dir, *g, path, newest, &mut recovery)?;
    }
    let (file, bytes) = match live.last() {
        Some((g, path)) => {
            generation = *g;
            let mut file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_err(path))?;
            let bytes = file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
            (file, bytes)
        }
        None => (journal::create(dir, generation)?, format::HEADER_LEN as u64),
    };
    let journal = Arc::new(Journal::new(dir, options.fsync, file, generation, bytes));
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

/// Replays one journal into `store`. In the newest journal a torn tail is dropped
/// (and the file truncated); anywhere else damage is an error.
fn replay_journal<V: ValueCodec>(
    store: &MemoryStore<V>,
    dir: &Path,
    generation: u64,
    path: &Path,
    newest: bool,
    recovery: &mut RecoveryReport,
) -> Result<()> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    match format::parse_header(&bytes, JOURNAL_MAGIC) {
        Ok(g) if g == generation => {}
        Ok(g) => {
            let reason = format!("header says generation {g}, file name says {generation}");
            return Err(corrupt(path, 0, reason, dir));
        }
        Err(HeaderError::Short) if newest => {
            // Cut short while being created: it never held a record.
            warn_torn(path, 0, bytes.len() as u64, recovery);
            journal::create(dir, generation)?;
            return Ok(());
        }
        Err(HeaderError::Short) => return Err(corrupt(path, 0, "truncated header", dir)),
        Err(HeaderError::Bad(reason)) => return Err(corrupt(path, 0, reason, dir)),
    }
    let now = store.now_nanos();
    for record in Records::new(&bytes) {
        let (offset, record) = match record {
            Ok(r) => r,
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
                journal::create(dir, generation)?;
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

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

fn background<V: ValueCodec>(core: &Arc<Core<V>>, stop: &(Mutex<bool>, Condvar)) {
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
        if self.journal.check().is_err() {
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
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
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
                && let Err(e) = out.write_all(&buf)
            {
                failed = Some(e);
            }
            buf.clear();
        });
        format::end(&mut buf, count);
        let written = match failed {
            Some(e) => Err(e),
            None => out
                .write_all(&buf)
                .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
                .and_then(|file| file.sync_all().map(|()| file)),
        };
        let file = written.map_err(io_err(&tmp))?;
        let bytes = file.metadata().map_err(io_err(&tmp))?.len();
        let path = self.dir.join(SNAPSHOT);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
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
        if let Err(e) = self.core.journal.flush(true) {
            tracing::error!(error = %e, "final journal flush failed");
        }
    }
}

impl<V: ValueCodec> PersistentStore<V> {
    /// Writes a snapshot now and starts a fresh journal.
    pub fn compact(&self) -> Result<()> {
        self.handle.core.compact()
    }

    /// Writes and fsyncs everything journaled so far, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        self.handle.core.journal.flush(true)
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
    fn write<R>(&self, f: impl FnOnce(&MemoryStore<V>) -> Result<R>) -> Result<R> {
        let core = &self.handle.core;
        core.journal.check()?;
        let result = f(&core.store)?;
        core.journal.commit()?;
        Ok(result)
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
    fn persist(&self, key: &str) -> Result<bool> {
        self.write(|s| s.persist(key))
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
