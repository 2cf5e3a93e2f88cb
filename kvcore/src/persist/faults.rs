//! The fault-injection seam of the file layer: every write, fsync, create and rename
//! that persistence makes asks a [`Faults`] first whether it should fail, as SQLite's
//! test VFS does. A store opened without one (the default) checks nothing: the test is
//! one branch on a `None`.
//!
//! ```
//! use kvcore::persist::{Fault, Faults, PersistOptions, Step};
//! use kvcore::{Error, SetOptions, Store, StoreBuilder};
//!
//! let dir = tempfile::tempdir()?;
//! let faults = Faults::new();
//! let opts = PersistOptions::default();
//! let store = StoreBuilder::new().open_with_faults::<String>(dir.path(), opts, faults.clone())?;
//! store.set("k", "old".into(), SetOptions::new())?;
//! store.sync()?;
//!
//! faults.fail(Step::JournalWrite, Fault::NoSpace); // the disk is full from now on
//! store.set("k", "new".into(), SetOptions::new())?; // buffered: accepted...
//! assert!(store.sync().is_err()); // ...but the journal cannot take it
//! assert!(matches!(
//!     store.set("k", "newer".into(), SetOptions::new()),
//!     Err(Error::JournalUnavailable { .. })
//! ));
//! assert_eq!(store.get("k").as_deref(), Some("new")); // reads keep working
//!
//! faults.heal(); // space is back: the store recovers by itself, or on `sync`
//! store.sync()?;
//! store.set("k", "newest".into(), SetOptions::new())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

/// A step of the file layer that a [`Faults`] rule can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Creating a journal file (and writing its header).
    JournalCreate,
    /// Appending records to the journal.
    JournalWrite,
    /// Fsyncing the journal.
    JournalSync,
    /// Writing a snapshot's temporary file.
    SnapshotWrite,
    /// Fsyncing a snapshot's temporary file.
    SnapshotSync,
    /// Renaming a snapshot's temporary file into place.
    SnapshotRename,
    /// Fsyncing the data directory after a file was created or renamed.
    DirSync,
}

/// The error a failing step returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `ENOSPC`: a write stores the first half of its bytes, then fails, as a write
    /// that fills the disk does; other steps fail outright.
    NoSpace,
    /// `EIO`: the step fails and writes nothing.
    Io,
}

impl Fault {
    fn error(self, step: Step) -> io::Error {
        match self {
            Fault::NoSpace => io::Error::new(
                io::ErrorKind::StorageFull,
                format!("no space left on device (injected at {step:?})"),
            ),
            Fault::Io => io::Error::other(format!("input/output error (injected at {step:?})")),
        }
    }
}

#[derive(Debug)]
struct Rule {
    step: Step,
    fault: Fault,
    /// Occurrences of the step still let through before the rule fires.
    skip: u64,
    /// Failures left before the rule retires (`None`: until healed).
    times: Option<u64>,
}

/// Rules that make chosen steps of the file layer fail. Cheap to clone: clones share
/// their rules, so a test keeps one and hands the other to
/// [`StoreBuilder::open_with_faults`](crate::StoreBuilder::open_with_faults).
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Faults").field(&*self.rules.lock()).finish()
    }
}

impl PartialEq for Faults {
    /// Two `Faults` are equal when they share their rules.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.rules, &other.rules)
    }
}

impl Eq for Faults {}

impl Faults {
    /// An injector with no rules yet, whose clones share the rules added later.
    pub fn new() -> Faults {
        Faults::default()
    }

    fn add(&self, step: Step, fault: Fault, skip: u64, times: Option<u64>) -> &Self {
        self.rules.lock().push(Rule {
            step,
            fault,
            skip,
            times,
        });
        self
    }

    /// Every `step` from now on fails with `fault`, until [`Faults::heal`].
    pub fn fail(&self, step: Step, fault: Fault) -> &Self {
        self.add(step, fault, 0, None)
    }

    /// The next `step` fails with `fault`; later ones succeed.
    pub fn fail_once(&self, step: Step, fault: Fault) -> &Self {
        self.add(step, fault, 0, Some(1))
    }

    /// The next `successes` occurrences of `step` succeed, and every one after them
    /// fails with `fault` until [`Faults::heal`].
    pub fn fail_after(&self, step: Step, successes: u64, fault: Fault) -> &Self {
        self.add(step, fault, successes, None)
    }

    /// Drops every rule: from now on every step succeeds.
    pub fn heal(&self) {
        self.rules.lock().clear();
    }

    /// The fault `step` meets now, if any, counting this occurrence.
    fn hit(&self, step: Step) -> Option<Fault> {
        let mut rules = self.rules.lock();
        let mut fired = None;
        for rule in rules.iter_mut().filter(|r| r.step == step) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if fired.is_none() {
                fired = Some(rule.fault);
                if let Some(times) = &mut rule.times {
                    *times -= 1;
                }
            }
        }
        rules.retain(|r| r.times != Some(0));
        fired
    }
}

/// The file layer persistence writes through: plain file calls, unless a [`Faults`]
/// was given, which is asked first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fs {
    faults: Option<Faults>,
}

impl Fs {
    pub(crate) fn new(faults: Option<Faults>) -> Fs {
        Fs { faults }
    }

    fn hit(&self, step: Step) -> Option<Fault> {
        self.faults.as_ref()?.hit(step)
    }

    /// Fails if a rule says `step` fails now.
    pub(crate) fn check(&self, step: Step) -> io::Result<()> {
        match self.hit(step) {
            Some(fault) => Err(fault.error(step)),
            None => Ok(()),
        }
    }

    /// `file.write_all(buf)` as `step`.
    pub(crate) fn write_all(
        &self,
        step: Step,
        file: &mut impl Write,
        buf: &[u8],
    ) -> io::Result<()> {
        match self.hit(step) {
            None => file.write_all(buf),
            Some(Fault::NoSpace) => {
                file.write_all(&buf[..buf.len() / 2])?;
                Err(Fault::NoSpace.error(step))
            }
            Some(fault) => Err(fault.error(step)),
        }
    }

    /// `file.sync_data()` as `step`.
    pub(crate) fn sync_data(&self, step: Step, file: &File) -> io::Result<()> {
        self.check(step)?;
        file.sync_data()
    }

    /// `file.sync_all()` as `step`.
    pub(crate) fn sync_all(&self, step: Step, file: &File) -> io::Result<()> {
        self.check(step)?;
        file.sync_all()
    }

    /// `fs::rename(from, to)` as `step`.
    pub(crate) fn rename(&self, step: Step, from: &Path, to: &Path) -> io::Result<()> {
        self.check(step)?;
        std::fs::rename(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_in_order_and_retire() {
        let faults = Faults::new();
        let fs = Fs::new(Some(faults.clone()));
        faults.fail_once(Step::JournalSync, Fault::Io).fail_after(
            Step::JournalWrite,
            2,
            Fault::NoSpace,
        );
        assert!(fs.check(Step::JournalSync).is_err());
        assert!(fs.check(Step::JournalSync).is_ok(), "fail_once retires");
        assert!(fs.check(Step::JournalWrite).is_ok());
        assert!(fs.check(Step::JournalWrite).is_ok());
        let e = fs.check(Step::JournalWrite).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(fs.check(Step::JournalWrite).is_err(), "fail_after persists");
        assert!(fs.check(Step::SnapshotRename).is_ok(), "other steps pass");
        faults.heal();
        assert!(fs.check(Step::JournalWrite).is_ok());
    }

    #[test]
    fn a_full_disk_takes_half_a_write() {
        let faults = Faults::new();
        let fs = Fs::new(Some(faults.clone()));
        faults.fail_once(Step::JournalWrite, Fault::NoSpace);
        let mut out = Vec::new();
        assert!(
            fs.write_all(Step::JournalWrite, &mut out, b"abcdef")
                .is_err()
        );
        assert_eq!(out, b"abc");
        fs.write_all(Step::JournalWrite, &mut out, b"gh").unwrap();
        assert_eq!(out, b"abcgh");
    }

    #[test]
    fn no_faults_means_plain_calls_and_clones_share_rules() {
        assert!(Fs::default().check(Step::DirSync).is_ok());
        let a = Faults::new();
        let b = a.clone();
        a.fail(Step::DirSync, Fault::Io);
        assert!(Fs::new(Some(b.clone())).check(Step::DirSync).is_err());
        assert_eq!(a, b);
        assert_ne!(a, Faults::new());
    }
}
