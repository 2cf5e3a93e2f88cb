//! The background worker: flushing the journal, compacting it into a snapshot, and
//! recovering a journal that could not be written.

use super::*;

/// How often a failed journal is tried again.
pub(super) const RETRY_EVERY: Duration = Duration::from_secs(1);

pub(super) fn background<V: ValueCodec>(core: &Arc<Core<V>>, stop: &(Mutex<bool>, Condvar)) {
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
    pub(super) fn should_compact(&self) -> bool {
        if self.journal.is_failed() {
            return false;
        }
        let journal = self.journal.stats().bytes;
        let snapshot = self.snapshot.lock().bytes;
        journal > self.options.compact_min_bytes
            && journal > snapshot.saturating_mul(self.options.compact_ratio.max(1))
    }

    /// Rotates the journal, writes a snapshot, and deletes the journals it replaces.
    pub(super) fn compact(&self) -> Result<()> {
        let mut info = self.snapshot.lock(); // one compaction at a time
        let generation = self.journal.rotate()?;
        self.write_snapshot(generation, &mut info)
    }

    /// Makes a failed journal whole again, then lets writes in: writes the records of
    /// acknowledged writes it kept (under `always`, where it kept none, starts a new
    /// journal file); or, after a failed fsync, starts a new journal file and writes a
    /// snapshot of what memory holds, which replaces the journals before it.
    pub(super) fn recover(&self) -> Result<()> {
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
    pub(super) fn write_snapshot(&self, generation: u64, info: &mut SnapshotInfo) -> Result<()> {
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
    pub(super) fn write_snapshot_file(&self, tmp: &Path, generation: u64) -> Result<(u64, u64)> {
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
    pub(super) fn sync(&self) -> Result<()> {
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
    pub(super) fn final_sync(&self) -> Result<()> {
        (self.final_sync)(self)
    }
}
