//! Opening a data directory: loading the snapshot, replaying the journals, and
//! dropping a torn tail.

use super::*;

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
pub(super) fn open_with<V: ValueCodec>(
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
pub(super) fn snapshot_mtime(dir: &Path, snapshot_bytes: u64) -> Option<SystemTime> {
    if snapshot_bytes == 0 {
        return None;
    }
    fs::metadata(dir.join(SNAPSHOT))
        .and_then(|m| m.modified())
        .ok()
}

/// Loads `snapshot.kvs` if there is one. Returns the journal generation that
/// continues it (1 without a snapshot) and the file's size.
pub(super) fn load_snapshot<V: ValueCodec>(
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

pub(super) fn damage_error(path: &Path, damage: Damage, dir: &Path) -> Error {
    match damage {
        Damage::TornTail { offset } => corrupt(path, offset, "incomplete record", dir),
        Damage::Corrupt { offset, reason } => corrupt(path, offset, reason, dir),
    }
}

/// How a journal is replayed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Replay {
    /// Opening the store: a torn tail of the newest journal is cut off the file.
    Open { newest: bool },
    /// Checking the directory: a torn tail is only reported; nothing is written.
    Check { newest: bool },
}

impl Replay {
    pub(super) fn newest(self) -> bool {
        match self {
            Replay::Open { newest } | Replay::Check { newest } => newest,
        }
    }
}

/// Replays one journal into `store`. In the newest journal a torn tail is dropped
/// (and, when opening, the file truncated); anywhere else damage is an error.
pub(super) fn replay_journal<V: ValueCodec>(
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
                recovery.torn_tail = Some(Cut::new(path, 0, bytes.len() as u64));
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
                recovery.torn_tail = Some(Cut::new(path, offset, bytes.len() as u64 - offset));
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

pub(super) fn warn_torn(path: &Path, offset: u64, dropped: u64, recovery: &mut RecoveryReport) {
    tracing::warn!(
        file = %path.display(),
        offset,
        dropped,
        "dropping a torn journal tail (an incomplete last record, left by a crash mid-write)"
    );
    recovery.torn_tail = Some(Cut::new(path, offset, dropped));
}
