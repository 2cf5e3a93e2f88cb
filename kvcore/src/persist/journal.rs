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

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::format::{self, JOURNAL_MAGIC};
use super::{Fsync, sync_dir};
use crate::{Error, Result};

/// The file name of journal generation `generation`.
pub(crate) fn journal_name(generation: u64) -> String {
    format!("journal-{generation:020}.kvj")
}

/// Creates a journal file with its header, durably (file and directory fsynced), then
/// names it in the directory's manifest.
pub(crate) fn create(dir: &Path, generation: u64) -> Result<File> {
    let path = dir.join(journal_name(generation));
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    file.write_all(&format::header(JOURNAL_MAGIC, generation))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    sync_dir(dir)?;
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
}

pub(crate) struct Journal {
    dir: PathBuf,
    policy: Fsync,
    pending: Mutex<Pending>,
    io: Mutex<Io>,
    /// Sequence number of the last record known fsynced.
    synced: AtomicU64,
    /// The first write or sync failure; once set, every write is refused.
    failure: Mutex<Option<String>>,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    fsync_max_nanos: AtomicU64,
}

impl Journal {
    /// Wraps `file`, positioned at its end, as generation `generation`.
    pub fn new(dir: &Path, policy: Fsync, file: File, generation: u64, bytes: u64) -> Self {
        Journal {
            dir: dir.to_path_buf(),
            policy,
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
            failure: Mutex::new(None),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            fsync_max_nanos: AtomicU64::new(0),
        }
    }

    /// Appends one record that `encode` writes into the buffer.
    pub fn append(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = self.pending.lock();
        encode(&mut pending.buf);
        pending.appended += 1;
    }

    /// Refuses work once a write or fsync has failed: what is in memory can no longer
    /// be made durable, and pretending otherwise would lose acknowledged writes.
    pub fn check(&self) -> Result<()> {
        match &*self.failure.lock() {
            None => Ok(()),
            Some(reason) => Err(self.failed(reason)),
        }
    }

    fn failed(&self, reason: &str) -> Error {
        Error::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(format!(
                "the journal can no longer be written ({reason}); writes are refused until the store is reopened"
            )),
        }
    }

    /// Returns once everything appended so far is as durable as the policy promises:
    /// fsynced under `always`; buffered otherwise.
    pub fn commit(&self) -> Result<()> {
        self.check()?;
        if self.policy != Fsync::Always {
            return Ok(());
        }
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
    pub fn tick(&self) -> Result<()> {
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
        let result = self.write_out(io, &buf, sync);
        match result {
            Ok(()) => {
                if sync {
                    self.synced.fetch_max(upto, Relaxed);
                }
                Ok(())
            }
            Err(source) => {
                let reason = format!("{}: {source}", io.path.display());
                tracing::error!(%reason, "journal write failed; refusing further writes");
                *self.failure.lock() = Some(reason.clone());
                Err(self.failed(&reason))
            }
        }
    }

    fn write_out(&self, io: &mut Io, buf: &[u8], sync: bool) -> std::io::Result<()> {
        if !buf.is_empty() {
            io.file.write_all(buf)?;
            io.bytes += buf.len() as u64;
        }
        if sync {
            let started = Instant::now();
            io.file.sync_data()?;
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
        let file = create(&self.dir, generation)?;
        io.file = file;
        io.path = self.dir.join(journal_name(generation));
        io.generation = generation;
        io.bytes = format::HEADER_LEN as u64;
        Ok(generation)
    }

    pub fn stats(&self) -> JournalStats {
        let io = self.io.lock();
        JournalStats {
            bytes: io.bytes,
            generation: io.generation,
            fsyncs: self.fsyncs.load(Relaxed),
            fsync_time: Duration::from_nanos(self.fsync_nanos.load(Relaxed)),
            fsync_max: Duration::from_nanos(self.fsync_max_nanos.load(Relaxed)),
        }
    }
}
