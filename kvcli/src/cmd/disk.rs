//! `stats`, `compact`, `check` and `repair`: the data directory itself.
//!
//! `check` and `repair` work on a closed directory: they close the session's store
//! and reopen it afterwards if it was open.

use std::io::Write;
use std::path::Path;

use kvcore::persist;
use kvcore::{Bytes, Store};

use super::{Command, Spec};
use crate::Error;
use crate::exec::{Outcome, Session, line, write_out};

/// `stats`
#[derive(Debug, Clone, PartialEq)]
pub struct Stats;

/// The spec of [`Stats`].
pub const STATS: Spec = Spec {
    name: "stats",
    aliases: &[],
    args: "",
    about: "print the key count, counters and file sizes",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("info", "stats")],
    parse: |args| match args {
        [] => Ok(Command::Stats(Stats)),
        _ => Err(STATS.usage()),
    },
};

impl Stats {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let store = session.open()?;
        let stats = store.stats();
        let journal = store.journal_stats();
        let snapshot = store.snapshot_info();
        let text = format!(
            "keys {}\nhits {}\nmisses {}\nexpirations {}\nevictions {}\n\
             journal_bytes {}\njournal_generation {}\nsnapshot_bytes {}\n",
            store.len(),
            stats.hits,
            stats.misses,
            stats.expirations,
            stats.evictions,
            journal.bytes,
            journal.generation,
            snapshot.bytes,
        );
        write_out(out, &text)?;
        Ok(Outcome::Done)
    }
}

/// `compact`
#[derive(Debug, Clone, PartialEq)]
pub struct Compact;

/// The spec of [`Compact`].
pub const COMPACT: Spec = Spec {
    name: "compact",
    aliases: &[],
    args: "",
    about: "write a snapshot and start a fresh journal",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[
        ("save", "compact"),
        ("bgsave", "compact"),
        ("bgrewriteaof", "compact"),
    ],
    parse: |args| match args {
        [] => Ok(Command::Compact(Compact)),
        _ => Err(COMPACT.usage()),
    },
};

impl Compact {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let store = session.open()?;
        store.compact()?;
        let bytes = store.snapshot_info().bytes;
        line(
            out,
            &format!("compacted: {} keys in a {bytes}-byte snapshot", store.len()),
        )?;
        Ok(Outcome::Done)
    }
}

/// `check`
#[derive(Debug, Clone, PartialEq)]
pub struct Check;

/// The spec of [`Check`].
pub const CHECK: Spec = Spec {
    name: "check",
    aliases: &[],
    args: "",
    about: "verify every file and record, writing nothing",
    status: "; exit 2 naming a problem",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[],
    parse: |args| match args {
        [] => Ok(Command::Check(Check)),
        _ => Err(CHECK.usage()),
    },
};

impl Check {
    /// Closes the store, checks the directory read-only, and reopens it if it was
    /// open. A directory that would not open is the error; one that would prints
    /// what was found.
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        if !session.dir.is_dir() {
            return Err(Error::NoDir(session.dir.clone()));
        }
        let was_open = session.is_open();
        session.close()?;
        let checked = persist::check::<Bytes>(&session.dir);
        if was_open {
            session.open()?;
        }
        let report = checked?;
        let name = |path: &Path| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        let mut text = if report.manifest {
            "MANIFEST: every file it lists is there\n".to_string()
        } else {
            "MANIFEST: none (written by an earlier release, or new); the next open writes one\n"
                .to_string()
        };
        if let Some(s) = &report.snapshot {
            text += &format!(
                "{}: {} records, {} bytes, continued by journal {}\n",
                name(&s.path),
                s.records,
                s.bytes,
                s.generation
            );
        }
        for j in &report.journals {
            text += &format!(
                "{}: {} records, {} bytes\n",
                name(&j.path),
                j.records,
                j.bytes
            );
        }
        for path in &report.stale {
            text += &format!(
                "{}: older than the snapshot; the next open deletes it\n",
                name(path)
            );
        }
        if let Some(persist::Cut {
            file: path,
            offset,
            dropped: bytes,
        }) = &report.torn_tail
        {
            text += &format!(
                "{}: incomplete last record at byte {offset} ({bytes} bytes), as a crash \
                 mid-write leaves; the next open drops it\n",
                name(path)
            );
        }
        text += &format!("keys {}\nok\n", report.live_keys);
        write_out(out, &text)?;
        Ok(Outcome::Done)
    }
}

/// `repair [--accept-missing]`
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    /// Also rebuild a directory that lacks files it must hold from the files that
    /// are left (their keys are lost).
    pub accept_missing: bool,
}

/// The spec of [`Repair`].
pub const REPAIR: Spec = Spec {
    name: "repair",
    aliases: &[],
    args: "[--accept-missing]",
    about: "cut damaged files at the last good record (and forget missing ones)",
    status: "",
    writes: false,
    needs_dir: false,
    takes_format: false,
    synonyms: &[("fsck", "repair")],
    parse: |args| match args {
        [] => Ok(Command::Repair(Repair {
            accept_missing: false,
        })),
        ["--accept-missing"] => Ok(Command::Repair(Repair {
            accept_missing: true,
        })),
        _ => Err(REPAIR.usage()),
    },
};

impl Repair {
    /// Closes the store, repairs the directory, and reopens it if it was open.
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        if !session.dir.is_dir() {
            return Err(Error::NoDir(session.dir.clone()));
        }
        let was_open = session.is_open();
        session.close()?;
        let (report, accepted) = if self.accept_missing {
            let accepted = persist::accept_missing(&session.dir)?;
            (accepted.repaired.clone(), Some(accepted))
        } else {
            (persist::repair(&session.dir)?, None)
        };
        if report.truncated.is_empty() && accepted.is_none() {
            line(out, "nothing to repair: every record checks out")?;
        }
        for persist::Cut {
            file: path,
            offset,
            dropped,
        } in &report.truncated
        {
            line(
                out,
                &format!(
                    "truncated {} at byte {offset} ({dropped} bytes dropped)",
                    path.display()
                ),
            )?;
        }
        if let Some(accepted) = accepted {
            for path in &accepted.missing {
                line(out, &format!("forgot missing {}", path.display()))?;
            }
            line(
                out,
                &format!(
                    "rebuilt from the files present: {} keys in a new snapshot",
                    accepted.keys
                ),
            )?;
        }
        if was_open {
            session.open()?;
        }
        Ok(Outcome::Done)
    }
}
