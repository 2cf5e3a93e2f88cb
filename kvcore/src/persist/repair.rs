//! Repairing a damaged data directory: cutting files at their last good record, and
//! accepting files that are missing. Also the atomic file replacement they share.

use super::*;

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
                .push(Cut::new(path, offset, bytes.len() as u64 - offset));
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

pub(super) fn repair_snapshot(dir: &Path, path: &Path, report: &mut RepairReport) -> Result<()> {
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
        .push(Cut::new(path, offset, bytes.len() as u64 - offset));
    Ok(())
}

/// Writes `bytes` to `path` (a file of `dir`) through a temporary file (its name and
/// `.tmp`), fsync, rename and an fsync of the directory.
pub(super) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
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
