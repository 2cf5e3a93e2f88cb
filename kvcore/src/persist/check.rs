//! A read-only inspection of a data directory, which writes nothing to it.

use super::*;

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
    pub torn_tail: Option<Cut>,
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
    if let Some(Holder { pid }) = holder(dir) {
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
