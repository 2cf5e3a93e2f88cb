//! The manifest: which files a data directory must hold.
//!
//! `MANIFEST` names the snapshot's generation (or none) and the newest journal
//! generation. A directory must then hold `snapshot.kvs` (when one is named) and every
//! journal from the snapshot's generation (1 without a snapshot) to the newest, with
//! no gap: a file deleted or lost in a copy is found when the directory is opened, and
//! named, instead of silently costing the keys it held.
//!
//! ```text
//! MANIFEST: magic "kvmanfst" [8] | version u32 | snapshot u64 | last journal u64 | crc32 u32
//!           (0 for "none"; the checksum covers the 28 bytes before it)
//! ```
//!
//! It is replaced atomically (written to `MANIFEST.tmp`, fsynced, renamed, directory
//! fsynced), always *after* the files it newly names exist and *before* the files it
//! stops naming are deleted. Two states between those steps are therefore legal, and
//! [`plan`] accepts them:
//!
//! - a journal one generation past the newest listed: a journal was created (at open
//!   or by a rotation) and the process stopped before the manifest named it;
//! - a snapshot newer than the one listed: a compaction renamed its snapshot into place
//!   and stopped before the manifest named it. The journals older than that snapshot
//!   are superseded whether or not the manifest still lists them.
//!
//! Files older than the snapshot's generation are stale and are deleted on open, as a
//! compaction that stopped before deleting them leaves them.
//!
//! A directory written before manifests existed has version-2 files and no manifest:
//! it is checked by what its files imply (journals contiguous from the snapshot's
//! generation, or from 1 without one) and given a manifest when opened. Every file
//! this release writes is version 3, so version-3 files without a manifest mean the
//! manifest itself was lost.

use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::format::{self, HeaderError, JOURNAL_MAGIC, SNAPSHOT_MAGIC};
use super::journal::journal_name;
use super::{SNAPSHOT, io_err, journals, write_atomically};
use crate::{Error, Result};

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "MANIFEST";
/// Where a new manifest is written before it is renamed into place.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
const MAGIC: [u8; 8] = *b"kvmanfst";
const VERSION: u32 = 1;
const LEN: usize = 32;
/// The first data-file format version written beside a manifest.
const MANIFEST_SINCE: u32 = 3;
/// At most this many missing files are named in an error.
const NAMED: usize = 20;

/// Serializes read-modify-write updates of manifests in this process (a rotation and
/// the end of a compaction may run on different threads); a directory is never open
/// in two processes.
static UPDATES: Mutex<()> = Mutex::new(());

/// What a manifest says: generations, 0 meaning none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Manifest {
    /// The journal generation the snapshot continues into (its header's generation).
    pub snapshot: u64,
    /// The newest journal.
    pub last_journal: u64,
}

impl Manifest {
    fn encode(self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..20].copy_from_slice(&self.snapshot.to_le_bytes());
        b[20..28].copy_from_slice(&self.last_journal.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        if bytes.len() != LEN {
            return Err(format!("{} bytes, a manifest has {LEN}", bytes.len()));
        }
        if bytes[..8] != MAGIC {
            return Err("not a kv manifest (wrong magic number)".into());
        }
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let long = |i: usize| u64::from(word(i)) | u64::from(word(i + 4)) << 32;
        if word(28) != crc32fast::hash(&bytes[..28]) {
            return Err("checksum mismatch".into());
        }
        if word(8) != VERSION {
            return Err(format!(
                "manifest version {}, but this build reads version {VERSION}",
                word(8)
            ));
        }
        Ok(Manifest {
            snapshot: long(12),
            last_journal: long(20),
        })
    }
}

fn restore_hint() -> &'static str {
    "restore it from a backup of the directory, or rebuild it from the files present \
     with `kvcli DIR repair --accept-missing`"
}

/// Reads `dir/MANIFEST`: `None` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    Manifest::decode(&bytes)
        .map(Some)
        .map_err(|reason| Error::Corrupt {
            hint: restore_hint().replace("DIR", &dir.display().to_string()),
            path,
            offset: 0,
            reason,
        })
}

/// Replaces `dir/MANIFEST` atomically.
pub(crate) fn write(dir: &Path, manifest: Manifest) -> Result<()> {
    write_atomically(dir, &dir.join(MANIFEST), &manifest.encode())
}

/// Changes the manifest of `dir` with `change`. Without a manifest it does nothing:
/// opening a directory of an earlier release writes its first one after replaying
/// (which may recreate a journal), and one deleted under a running store is reported
/// when the directory is next opened.
fn update(dir: &Path, change: impl FnOnce(&mut Manifest)) -> Result<()> {
    // Held across the read, write and fsyncs: two updates must not interleave.
    let _serial = UPDATES.lock();
    let Some(mut manifest) = read(dir)? else {
        tracing::warn!(dir = %dir.display(), "no MANIFEST to record a new data file in");
        return Ok(());
    };
    let before = manifest;
    change(&mut manifest);
    if manifest == before {
        return Ok(());
    }
    write(dir, manifest)
}

/// Records that journal `generation` now exists (it is created first, so a crash in
/// between leaves an unlisted newest journal, which opening accepts). Called by every
/// creation of a journal file: at open, by rotation, by repair.
pub(crate) fn journal_created(dir: &Path, generation: u64) -> Result<()> {
    update(dir, |m| m.last_journal = m.last_journal.max(generation))
}

/// Records that `snapshot.kvs` now continues into journal `generation` (it is renamed
/// into place first; the journals it supersedes are deleted after this).
pub(crate) fn snapshot_replaced(dir: &Path, generation: u64) -> Result<()> {
    update(dir, |m| {
        m.snapshot = generation;
        m.last_journal = m.last_journal.max(generation);
    })
}

/// A data file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub generation: u64,
    pub path: PathBuf,
    /// The format version of its header, if the header could be read.
    pub version: Option<u32>,
}

/// What a directory holds, read without changing anything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inventory {
    pub manifest: Option<Manifest>,
    pub snapshot: Option<Found>,
    /// Oldest first.
    pub journals: Vec<Found>,
}

/// Reads the manifest and the headers of the snapshot and journals of `dir`.
///
/// A snapshot whose header cannot be read is an error here (nothing can be planned
/// without its generation); a journal's bad header is left for its replay to report.
pub(crate) fn inventory(dir: &Path) -> Result<Inventory> {
    let manifest = read(dir)?;
    let path = dir.join(SNAPSHOT);
    let snapshot = match read_header(&path)? {
        None => None,
        Some(bytes) => {
            let generation = match format::parse_header(&bytes, SNAPSHOT_MAGIC) {
                Ok(g) => g,
                Err(HeaderError::Short) => {
                    return Err(super::corrupt(&path, 0, "truncated header", dir));
                }
                Err(HeaderError::Bad(reason)) => return Err(super::corrupt(&path, 0, reason, dir)),
            };
            Some(Found {
                generation,
                path,
                version: Some(format::version(&bytes)),
            })
        }
    };
    let mut found = Vec::new();
    for (generation, path) in journals(dir)? {
        let bytes = read_header(&path)?.unwrap_or_default();
        let version = format::parse_header(&bytes, JOURNAL_MAGIC)
            .ok()
            .map(|_| format::version(&bytes));
        found.push(Found {
            generation,
            path,
            version,
        });
    }
    Ok(Inventory {
        manifest,
        snapshot,
        journals: found,
    })
}

/// The first bytes of `path` (up to a header), or `None` when it does not exist.
fn read_header(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut bytes = Vec::with_capacity(format::HEADER_LEN);
    file.take(format::HEADER_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    Ok(Some(bytes))
}

/// How a directory's files are accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Its manifest lists them.
    Listed,
    /// No manifest and version-2 files: written by an earlier release.
    Earlier,
    /// No data files at all: a new store.
    Empty,
}

/// What opening (or checking) a directory reads, deletes and writes.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub kind: Kind,
    /// Load `snapshot.kvs`.
    pub snapshot: bool,
    /// Journals to replay, oldest first: every one from the snapshot's generation on.
    pub replay: Vec<(u64, PathBuf)>,
    /// Journals older than the snapshot: superseded, deleted on open.
    pub stale: Vec<PathBuf>,
    /// Files that should be there and are not (empty unless missing files are accepted).
    pub missing: Vec<PathBuf>,
    /// The manifest that describes the directory once the stale files are gone.
    pub manifest: Manifest,
}

/// Decides, from what `dir` holds, which files recovery uses, and whether any that it
/// needs are missing: an [`Error::MissingFiles`] naming them unless `accept_missing`.
pub(crate) fn plan(dir: &Path, inv: &Inventory, accept_missing: bool) -> Result<Plan> {
    let snapshot_gen = inv.snapshot.as_ref().map(|s| s.generation);
    let mut missing = Vec::new();
    let mut hint = "its MANIFEST lists every file the directory must hold; restore the \
                    directory from a backup (`kvcli COPY check` verifies a copy), or keep only \
                    what is left with `kvcli DIR repair --accept-missing`";
    let lowest = inv.journals.first().map(|j| j.generation);
    let (kind, from, listed_last) = match inv.manifest {
        Some(m) => {
            if m.snapshot != 0 {
                match snapshot_gen {
                    None => missing.push(dir.join(SNAPSHOT)),
                    Some(g) if g < m.snapshot => {
                        return Err(Error::Corrupt {
                            path: dir.join(SNAPSHOT),
                            offset: 0,
                            reason: format!(
                                "snapshot of generation {g}, but MANIFEST lists generation {}: \
                                 it comes from an older copy",
                                m.snapshot
                            ),
                            hint: format!(
                                "restore the directory from one backup, not files from several \
                                 (or keep what is there with `kvcli {} repair --accept-missing`)",
                                dir.display()
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            let from = snapshot_gen.unwrap_or(m.snapshot).max(1);
            (Kind::Listed, from, m.last_journal)
        }
        None => {
            let newer = inv
                .snapshot
                .iter()
                .chain(&inv.journals)
                .any(|f| f.version.is_some_and(|v| v >= MANIFEST_SINCE));
            let kind = if newer {
                missing.push(dir.join(MANIFEST));
                hint = "this release's files are always kept beside a MANIFEST; restore it from \
                        a backup of the directory, or rebuild it from the files present with \
                        `kvcli DIR repair --accept-missing`";
                Kind::Listed
            } else if inv.snapshot.is_none() && inv.journals.is_empty() {
                Kind::Empty
            } else {
                Kind::Earlier
            };
            let from = match (snapshot_gen, lowest) {
                (Some(g), _) => g.max(1),
                // Journals after the first continue a snapshot: one that is gone.
                (None, Some(low)) if low > 1 => {
                    missing.push(dir.join(SNAPSHOT));
                    if !newer {
                        hint = "its journals continue a snapshot that is not there; restore the \
                                directory from a backup, or keep only what is left with `kvcli \
                                DIR repair --accept-missing`";
                    }
                    low
                }
                (None, _) => 1,
            };
            (kind, from, 0)
        }
    };
    let highest = inv.journals.last().map_or(0, |j| j.generation);
    let mut to = listed_last.max(highest);
    if snapshot_gen.is_some() {
        to = to.max(from); // a snapshot's own journal is created before it
    }
    let mut replay = Vec::new();
    let mut stale = Vec::new();
    let mut next = from;
    let mut unnamed = 0u64;
    for j in &inv.journals {
        if j.generation < from {
            stale.push(j.path.clone());
            continue;
        }
        for g in next..j.generation {
            if missing.len() < NAMED {
                missing.push(dir.join(journal_name(g)));
            } else {
                unnamed += j.generation - g;
                break;
            }
        }
        next = j.generation + 1;
        replay.push((j.generation, j.path.clone()));
    }
    for g in next..=to {
        if missing.len() < NAMED {
            missing.push(dir.join(journal_name(g)));
        } else {
            unnamed += to - g + 1;
            break;
        }
    }
    if !missing.is_empty() && !accept_missing {
        let mut hint = hint.replace("DIR", &dir.display().to_string());
        if unnamed > 0 {
            hint = format!("{unnamed} more journals are missing; {hint}");
        }
        return Err(Error::MissingFiles {
            dir: dir.to_path_buf(),
            files: missing,
            hint,
        });
    }
    Ok(Plan {
        kind,
        snapshot: snapshot_gen.is_some(),
        replay,
        stale,
        missing,
        manifest: Manifest {
            snapshot: snapshot_gen.unwrap_or(0),
            last_journal: to,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(generation: u64, version: u32) -> Found {
        Found {
            generation,
            path: PathBuf::from(journal_name(generation)),
            version: Some(version),
        }
    }

    fn inv(manifest: Option<(u64, u64)>, snapshot: Option<u64>, journals: &[u64]) -> Inventory {
        Inventory {
            manifest: manifest.map(|(snapshot, last_journal)| Manifest {
                snapshot,
                last_journal,
            }),
            snapshot: snapshot.map(|g| Found {
                path: PathBuf::from(SNAPSHOT),
                ..found(g, 3)
            }),
            journals: journals.iter().map(|&g| found(g, 3)).collect(),
        }
    }

    fn missing(result: Result<Plan>) -> Vec<String> {
        match result {
            Err(Error::MissingFiles { files, .. }) => files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect(),
            other => panic!("expected MissingFiles, got {other:?}"),
        }
    }

    #[test]
    fn manifests_round_trip_and_damage_is_refused() {
        let m = Manifest {
            snapshot: 7,
            last_journal: 9,
        };
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Ok(m));
        for i in 0..LEN {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
        }
        assert!(Manifest::decode(&bytes[..LEN - 1]).is_err());
    }

    #[test]
    fn a_whole_directory_replays_from_its_snapshot() {
        let dir = Path::new("d");
        let p = plan(dir, &inv(Some((3, 5)), Some(3), &[2, 3, 4, 5]), false).unwrap();
        assert_eq!(p.kind, Kind::Listed);
        assert!(p.snapshot);
        assert_eq!(p.replay.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(p.stale, [PathBuf::from(journal_name(2))]);
        assert_eq!(
            p.manifest,
            Manifest {
                snapshot: 3,
                last_journal: 5
            }
        );
    }

    #[test]
    fn each_missing_file_is_named() {
        let dir = Path::new("d");
        let j = |g| journal_name(g);
        assert_eq!(
            missing(plan(dir, &inv(Some((3, 5)), None, &[3, 4, 5]), false)),
            [SNAPSHOT]
        );
        assert_eq!(
            missing(plan(dir, &inv(Some((3, 5)), Some(3), &[3, 4]), false)),
            [j(5)]
        );
        assert_eq!(
            missing(plan(dir, &inv(Some((3, 5)), Some(3), &[3, 5]), false)),
            [j(4)]
        );
        assert_eq!(
            missing(plan(dir, &inv(Some((0, 2)), None, &[2]), false)),
            [j(1)]
        );
        // Without a manifest, version-3 files say it is the manifest that is gone.
        assert_eq!(
            missing(plan(dir, &inv(None, Some(3), &[3]), false)),
            [MANIFEST]
        );
        // A snapshot's own journal is always there.
        assert_eq!(
            missing(plan(dir, &inv(Some((3, 3)), Some(3), &[]), false)),
            [j(3)]
        );
        // Accepted, they are reported and skipped.
        let p = plan(dir, &inv(Some((3, 6)), Some(3), &[3, 5]), true).unwrap();
        assert_eq!(p.missing, [dir.join(j(4)), dir.join(j(6))]);
        assert_eq!(p.replay.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 5]);
    }

    #[test]
    fn the_states_between_manifest_steps_are_accepted() {
        let dir = Path::new("d");
        // A journal created, the manifest not yet naming it.
        let p = plan(dir, &inv(Some((3, 4)), Some(3), &[3, 4, 5]), false).unwrap();
        assert_eq!(p.manifest.last_journal, 5);
        // A new snapshot renamed into place, the manifest still naming the old one.
        let p = plan(dir, &inv(Some((3, 5)), Some(5), &[3, 4, 5]), false).unwrap();
        assert_eq!(p.replay.iter().map(|r| r.0).collect::<Vec<_>>(), [5]);
        assert_eq!(p.stale.len(), 2);
        assert_eq!(
            p.manifest,
            Manifest {
                snapshot: 5,
                last_journal: 5
            }
        );
        // The first manifest written, its journal not yet created.
        let p = plan(dir, &inv(Some((0, 0)), None, &[]), false).unwrap();
        assert!(p.replay.is_empty() && p.kind == Kind::Listed);
        // An older snapshot than the manifest names is from another copy.
        assert!(matches!(
            plan(dir, &inv(Some((5, 5)), Some(3), &[3, 4, 5]), false),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn directories_of_earlier_releases_are_checked_by_what_their_files_imply() {
        let dir = Path::new("d");
        let mut old = inv(None, Some(4), &[4, 5]);
        for f in old.snapshot.iter_mut().chain(&mut old.journals) {
            f.version = Some(2);
        }
        let p = plan(dir, &old, false).unwrap();
        assert_eq!(p.kind, Kind::Earlier);
        assert_eq!(
            p.manifest,
            Manifest {
                snapshot: 4,
                last_journal: 5
            }
        );
        let mut no_snapshot = old.clone();
        no_snapshot.snapshot = None;
        assert_eq!(missing(plan(dir, &no_snapshot, false)), [SNAPSHOT]);
        let mut gap = old.clone();
        gap.journals.remove(0);
        assert_eq!(missing(plan(dir, &gap, false)), [journal_name(4)]);
        assert_eq!(
            plan(dir, &Inventory::default(), false).unwrap().kind,
            Kind::Empty
        );
    }
}
