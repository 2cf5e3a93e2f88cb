//! The append-only journal: buffered appends, group commit, rotation.
//!
//! Writers append encoded records to an in-memory buffer under a short mutex (they
//! hold their shard's lock meanwhile, which is what orders a key's records). Bytes
//! reach the file in `flush`, which holds the `io` mutex for the whole write so that
//! buffers land in the order they were taken.
//!
//! Group commit: under `Fsync::Always` a writer that needs its record durable takes
//! the `io` mutex; if a flush that finished while it waited already covered its
//! record it returns at once, otherwise it writes and fsyncs everything buffered so
//! far — its own record and those of every writer queued behind it — in one fsync.
//!
//! Failure: when a write or an fsync fails, the file is cut back to its length before
//! that flush, the records of the flush are dropped, and the journal is *failed*:
//! every later commit is refused with [`Error::JournalUnavailable`], so no write is
//! applied or acknowledged that the journal did not take. The store's background
//! worker then calls [`Journal::restart`] and writes a snapshot until one succeeds,
//! which makes everything in memory durable again, and [`Journal::recovered`] lets
//! writes in.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::faults::{Fs, Step};
use super::format::{self, JOURNAL_MAGIC};
use super::{Fsync, sync_dir};
use crate::{Error, Result};

/// The file name of journal generation `generation`.
pub(crate) fn journal_name(generation: u64) -> String {
    format!("journal-{generation:020}.kvj")
}

/// Creates a journal file with its header, durably (file and directory fsynced), then
/// names it in the directory's manifest.
pub(crate) fn create(fs: &Fs, dir: &Path, generation: u64) -> Result<File> {
    let path = dir.join(journal_name(generation));
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let created = fs.check(Step::JournalCreate).and_then(|()| {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
    });
    let mut file = created.map_err(io)?;
    let header = format::header(JOURNAL_MAGIC, generation);
    let written = fs
        .write_all(Step::JournalCreate, &mut file, &header)
        .and_then(|()| fs.sync_all(Step::JournalCreate, &file));
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(&path); // half a header is no journal
        return Err(io(source));
    }
    sync_dir(fs, dir)?;
    super::manifest::journal_created(dir, generation)?;
    Ok(file)
}

struct Pending {
    buf: Vec<u8>,
    /// Sequence number of the last record appended.
    appended: u64,
}

struct Io {
    file: File,
    path: PathBuf,
    generation: u64,
    /// Bytes in the current file.
    bytes: u64,
    /// When the file was last fsynced (for the `everysec` policy).
    last_sync: Instant,
}

/// Counters about the journal, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Bytes in the current journal file.
    pub bytes: u64,
    /// The current journal generation.
    pub generation: u64,
    /// fsyncs of journal files so far.
    pub fsyncs: u64,
    /// Total time spent in those fsyncs.
    pub fsync_time: Duration,
    /// The longest single fsync.
    pub fsync_max: Duration,
    /// Whether the journal cannot be written now, so that writes are refused.
    pub failed: bool,
}

/// Why the journal cannot be written, while it cannot.
struct Failure {
    kind: std::io::ErrorKind,
    reason: String,
    since: Instant,
}

pub(crate) struct Journal {
    dir: PathBuf,
    policy: Fsync,
    fs: Fs,
    pending: Mutex<Pending>,
    io: Mutex<Io>,
    /// Sequence number of the last record known fsynced.
    synced: AtomicU64,
    /// Set while the journal cannot be written; `failure` says why.
    failed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    /// Writes refused since the journal failed.
    refused: AtomicU64,
    /// Set while recovering the failed journal needs a snapshot (see
    /// [`Journal::needs_snapshot`]).
    needs_snapshot: AtomicBool,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    fsync_max_nanos: AtomicU64,
}

impl Journal {
    /// Wraps `file`, positioned at its end, as generation `generation`.
    pub fn new(dir: &Path, policy: Fsync, fs: Fs, file: File, generation: u64, bytes: u64) -> Self {
        Journal {
            dir: dir.to_path_buf(),
            policy,
            fs,
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(64 * 1024),
                appended: 0,
            }),
            io: Mutex::new(Io {
                file,
                path: dir.join(journal_name(generation)),
                generation,
                bytes,
                last_sync: Instant::now(),
            }),
            synced: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            refused: AtomicU64::new(0),
            needs_snapshot: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            fsync_max_nanos: AtomicU64::new(0),
        }
    }

    /// Appends one record that `encode` writes into the buffer. A failed journal
    /// takes nothing: its buffer is dropped when it restarts.
    pub fn append(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        // Decided under the buffer's lock, which a failing flush also takes to mark
        // the journal failed: a record taken here is one the journal keeps.
        let mut pending = self.pending.lock();
        if self.failed.load(Relaxed) {
            drop(pending);
            return self.check();
        }
        encode(&mut pending.buf);
        pending.appended += 1;
        Ok(())
    }

    /// Refuses work while the journal cannot be written: what is in memory cannot be
    /// made durable now, and applying or acknowledging more would lose writes.
    pub fn check(&self) -> Result<()> {
        if !self.failed.load(Relaxed) {
            return Ok(());
        }
        self.refused.fetch_add(1, Relaxed);
        Err(self.unavailable())
    }

    /// Whether the journal is failed.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    /// Whether the journal files hold every write applied so far, failed or not. A
    /// failed journal under `always` does, since a failed flush held only records of
    /// writes it refused, unless it could not be cut back; under `everysec` and `no`
    /// it keeps records of acknowledged writes that are not on disk. Records still
    /// buffered are not counted: call after a flush.
    pub fn kept_all(&self) -> bool {
        !self.failed.load(Relaxed) || (self.policy == Fsync::Always && !self.needs_snapshot())
    }

    /// The error a refused write gets.
    fn unavailable(&self) -> Error {
        let failure = self.failure.lock();
        let (kind, reason) = match &*failure {
            Some(f) => (f.kind, f.reason.clone()),
            None => (std::io::ErrorKind::Other, "the journal failed".to_owned()),
        };
        Error::JournalUnavailable {
            dir: self.dir.clone(),
            kind,
            reason,
        }
    }

    /// Returns once everything appended so far is as durable as the policy promises:
    /// fsynced under `always`; buffered otherwise, where a record [`Journal::append`]
    /// took is kept even if its flush fails (it is written again once the disk can take
    /// it). An error means the records were not taken: the caller must not apply its
    /// write.
    pub fn commit(&self) -> Result<()> {
        if self.policy != Fsync::Always {
            return Ok(());
        }
        self.check()?;
        let target = self.pending.lock().appended;
        if self.synced.load(Relaxed) >= target {
            return Ok(());
        }
        let mut io = self.io.lock();
        if self.synced.load(Relaxed) >= target {
            return Ok(()); // a flush that ran while we waited covered our records
        }
        self.flush_locked(&mut io, true)
    }

    /// Writes buffered records to the file, and fsyncs if `sync`.
    pub fn flush(&self, sync: bool) -> Result<()> {
        let mut io = self.io.lock();
        self.flush_locked(&mut io, sync)
    }

    /// The background step: write what is buffered; fsync if the policy says it is time.
    /// Under `always` commits do both.
    pub fn tick(&self) -> Result<()> {
        if self.policy == Fsync::Always {
            return Ok(());
        }
        let mut io = self.io.lock();
        let sync =
            self.policy == Fsync::EverySec && io.last_sync.elapsed() >= Duration::from_secs(1);
        self.flush_locked(&mut io, sync)
    }

    fn flush_locked(&self, io: &mut Io, sync: bool) -> Result<()> {
        self.check()?;
        let (buf, upto) = {
            let mut pending = self.pending.lock();
            let buf = std::mem::replace(&mut pending.buf, Vec::with_capacity(64 * 1024));
            (buf, pending.appended)
        };
        let good = io.bytes;
        match self.write_out(io, &buf, sync) {
            Ok(()) => {
                if sync {
                    self.synced.fetch_max(upto, Relaxed);
                }
                Ok(())
            }
            Err((source, step)) => {
                let reason = self.fail(io, good, buf, &source, step);
                tracing::error!(
                    %reason,
                    "journal write failed; writes are refused until the data directory can be written again"
                );
                Err(self.unavailable())
            }
        }
    }

    /// After a flush of `buf` failed at `step`: cuts the file back to `good` bytes, so
    /// that no record of a refused write comes back at the next start and no half
    /// record stays, keeps or drops the records, and marks the journal failed. Returns
    /// the failure's description.
    fn fail(
        &self,
        io: &mut Io,
        good: u64,
        buf: Vec<u8>,
        source: &std::io::Error,
        step: Step,
    ) -> String {
        io.bytes = good;
        let cut = io
            .file
            .set_len(good)
            .and_then(|()| io.file.seek(SeekFrom::Start(good)).map(|_| ()));
        let mut reason = format!("{}: {source}", io.path.display());
        if let Err(e) = &cut {
            reason.push_str(&format!(" (and cutting it back failed: {e})"));
        }
        // After a failed fsync the kernel may have dropped earlier writes too (under
        // `always` those were fsynced already), and a file that could not be cut back
        // may end in half a record: then only a snapshot of memory can be trusted.
        if cut.is_err() || (step == Step::JournalSync && self.policy != Fsync::Always) {
            self.needs_snapshot.store(true, Relaxed);
        }
        // Under `always` the flush held records of writes that are now refused, and so
        // does the buffer behind it: drop them all. Otherwise they are records of
        // acknowledged writes: keep them, in order, to write again. The journal is
        // marked failed under the same lock, so no record is taken in between.
        let mut pending = self.pending.lock();
        if self.policy == Fsync::Always {
            pending.buf.clear();
        } else {
            let mut kept = buf;
            kept.extend_from_slice(&pending.buf);
            pending.buf = kept;
        }
        let mut failure = self.failure.lock();
        let since = failure.as_ref().map_or_else(Instant::now, |f| f.since);
        *failure = Some(Failure {
            kind: source.kind(),
            reason: reason.clone(),
            since,
        });
        self.failed.store(true, Relaxed);
        reason
    }

    /// For a failed journal whose kept records can be written again (see
    /// [`Journal::needs_snapshot`]): writes and fsyncs them, and under `always`, where
    /// nothing is kept, starts a journal file of the next generation, which tells
    /// whether the disk takes writes again. On success the journal is whole and writes
    /// may be let in ([`Journal::recovered`]).
    pub fn retry(&self) -> Result<()> {
        let mut io = self.io.lock();
        if self.policy == Fsync::Always {
            let generation = io.generation + 1;
            let file = create(&self.fs, &self.dir, generation)?;
            self.switch(&mut io, file, generation);
            return Ok(());
        }
        let (buf, upto) = {
            let mut pending = self.pending.lock();
            (std::mem::take(&mut pending.buf), pending.appended)
        };
        let good = io.bytes;
        match self.write_out(&mut io, &buf, true) {
            Ok(()) => {
                self.synced.fetch_max(upto, Relaxed);
                Ok(())
            }
            Err((source, step)) => {
                let reason = self.fail(&mut io, good, buf, &source, step);
                Err(Error::JournalUnavailable {
                    dir: self.dir.clone(),
                    kind: source.kind(),
                    reason,
                })
            }
        }
    }

    /// Whether recovering this failed journal needs a snapshot of memory: after a failed
    /// fsync, or when a failed flush could not be cut back.
    pub fn needs_snapshot(&self) -> bool {
        self.needs_snapshot.load(Relaxed)
    }

    /// Writes `buf`, and fsyncs if `sync`; an error says which step failed.
    fn write_out(
        &self,
        io: &mut Io,
        buf: &[u8],
        sync: bool,
    ) -> std::result::Result<(), (std::io::Error, Step)> {
        if !buf.is_empty() {
            self.fs
                .write_all(Step::JournalWrite, &mut io.file, buf)
                .map_err(|e| (e, Step::JournalWrite))?;
            io.bytes += buf.len() as u64;
        }
        if sync {
            let started = Instant::now();
            self.fs
                .sync_data(Step::JournalSync, &io.file)
                .map_err(|e| (e, Step::JournalSync))?;
            io.last_sync = Instant::now();
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.fsyncs.fetch_add(1, Relaxed);
            self.fsync_nanos.fetch_add(took, Relaxed);
            self.fsync_max_nanos.fetch_max(took, Relaxed);
        }
        Ok(())
    }

    /// Makes everything so far durable, then directs later records to a new file of
    /// the next generation. Returns that generation.
    pub fn rotate(&self) -> Result<u64> {
        let mut io = self.io.lock();
        self.flush_locked(&mut io, true)?;
        let generation = io.generation + 1;
        let file = create(&self.fs, &self.dir, generation)?;
        self.switch(&mut io, file, generation);
        Ok(generation)
    }

    /// For a failed journal: starts a new file of the next generation and drops what
    /// is buffered (writes that were refused, or that memory holds and the snapshot
    /// about to be written will keep). Writes stay refused until [`Journal::recovered`].
    ///
    /// A journal that holds nothing but its header (cut back to it, or started by an
    /// earlier attempt) is kept rather than followed by another empty file.
    pub fn restart(&self) -> Result<u64> {
        let mut io = self.io.lock();
        if io.bytes > format::HEADER_LEN as u64 {
            let generation = io.generation + 1;
            let file = create(&self.fs, &self.dir, generation)?;
            self.switch(&mut io, file, generation);
        }
        let mut pending = self.pending.lock();
        pending.buf.clear();
        self.synced.fetch_max(pending.appended, Relaxed);
        Ok(io.generation)
    }

    /// Lets writes in again, once a snapshot holds everything the failed journal lost.
    /// Returns how long the journal was failed and how many writes it refused.
    pub fn recovered(&self) -> Option<(Duration, u64)> {
        let failure = self.failure.lock().take()?;
        self.failed.store(false, Relaxed);
        self.needs_snapshot.store(false, Relaxed);
        let refused = self.refused.swap(0, Relaxed);
        Some((failure.since.elapsed(), refused))
    }

    fn switch(&self, io: &mut Io, file: File, generation: u64) {
        io.file = file;
        io.path = self.dir.join(journal_name(generation));
        io.generation = generation;
        io.bytes = format::HEADER_LEN as u64;
        io.last_sync = Instant::now();
    }

    /// The file layer.
    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    pub fn stats(&self) -> JournalStats {
        let io = self.io.lock();
        JournalStats {
            bytes: io.bytes,
            generation: io.generation,
            fsyncs: self.fsyncs.load(Relaxed),
            fsync_time: Duration::from_nanos(self.fsync_nanos.load(Relaxed)),
            fsync_max: Duration::from_nanos(self.fsync_max_nanos.load(Relaxed)),
            failed: self.failed.load(Relaxed),
        }
    }
}
