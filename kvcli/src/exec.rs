//! The session a [`Command`] runs in: a data directory and its store.
//!
//! A [`Session`] owns the directory for as long as kvcli runs: it opens the store
//! through kvcore's persistence (the format kvserver writes) on first need, keeps it
//! open — and so locked against every other process — and closes it to `repair` and
//! `check`, which work on a closed directory, reopening it afterwards.
//!
//! `check`, and `count` while the store is not open (a one-shot `kvcli DIR count`),
//! only read the directory: they take no lock, create no journal and cut no torn
//! tail, so they suit a backup copy.
//!
//! [`Session::execute`] runs a command (what each one does is its own, in
//! [`crate::cmd`]), which writes its output to the writer it is given, one value per
//! line, and says how it ended: an [`Outcome`], or an [`Error`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kvcore::dataset::Format;
use kvcore::limits::Limits;
use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{Bytes, PersistentStore, StoreBuilder};

use crate::Error;
use crate::cmd::{Command, Place};

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// The key it was about was not there. Carries the key when it is worth a
    /// `not found: KEY` message (`exists` already printed `false`, so it has none).
    NotFound(Option<String>),
    /// `quit`: end the session.
    Quit,
}

/// A data directory and, once opened, its store.
#[derive(Debug)]
pub struct Session {
    pub(crate) dir: PathBuf,
    options: PersistOptions,
    store: Option<PersistentStore<Bytes>>,
    /// Whether import and export draw progress bars.
    pub(crate) progress: bool,
    /// The format `--format` named on kvcli's own command line.
    pub(crate) default_format: Option<Format>,
    /// Whether `import -` may read standard input (not when it carries the commands).
    pub(crate) stdin_free: bool,
    /// Where commands come from, for `help`.
    pub(crate) place: Place,
    /// The key and value rules writes must pass.
    pub(crate) limits: Limits,
}

impl Session {
    /// A session over `dir`, writing with the fsync policy given. Nothing is opened
    /// yet: see [`Session::open`].
    pub fn new(dir: impl Into<PathBuf>, fsync: Fsync) -> Session {
        Session {
            dir: dir.into(),
            options: PersistOptions::default().fsync(fsync),
            store: None,
            progress: false,
            default_format: None,
            stdin_free: false,
            place: Place::CommandLine,
            limits: Limits::default(),
        }
    }

    /// Draw progress bars (on stderr) during import and export.
    pub fn progress(mut self, on: bool) -> Session {
        self.progress = on;
        self
    }

    /// The format import and export use when the command names none.
    pub fn default_format(mut self, format: Option<Format>) -> Session {
        self.default_format = format;
        self
    }

    /// Let `import -` read standard input.
    pub fn stdin_free(mut self, free: bool) -> Session {
        self.stdin_free = free;
        self
    }

    /// Where commands come from, which decides what `help` shows (the command line
    /// unless told otherwise).
    pub fn place(mut self, place: Place) -> Session {
        self.place = place;
        self
    }

    /// The key and value rules that `set`, `incr` and `import` apply
    /// ([`Limits::default`], kvserver's defaults, unless told otherwise).
    pub fn limits(mut self, limits: Limits) -> Session {
        self.limits = limits;
        self
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the directory unless it is open already (creating it if missing), and
    /// returns a handle to the store.
    ///
    /// A directory another process holds is refused with
    /// [`kvcore::Error::Locked`] before anything in it is touched.
    pub fn open(&mut self) -> Result<PersistentStore<Bytes>, Error> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        // kvcore takes the directory's lock before it reads or writes anything else in
        // it, so a held directory is refused untouched.
        let store = StoreBuilder::new().open::<Bytes>(&self.dir, self.options)?;
        self.store = Some(store.clone());
        Ok(store)
    }

    /// Whether the store is open.
    pub fn is_open(&self) -> bool {
        self.store.is_some()
    }

    /// A handle to the store if it is open; `None` (and nothing opened) otherwise.
    ///
    /// The directory stays locked while any handle lives, so drop it before a
    /// command that closes the store (`repair`) runs.
    pub fn store(&self) -> Option<PersistentStore<Bytes>> {
        self.store.clone()
    }

    /// Flushes and closes the store, releasing the directory.
    pub fn close(&mut self) -> Result<(), Error> {
        if let Some(store) = self.store.take() {
            store.sync()?;
        }
        Ok(())
    }

    /// Runs `cmd`, writing what it prints to `out`.
    pub fn execute(&mut self, cmd: &Command, out: &mut dyn Write) -> Result<Outcome, Error> {
        cmd.run(self, out)
    }
}

/// A TTL as seconds with milliseconds, rounded up so that a live key never shows
/// `0.000`; `none` for no TTL.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kvcli::exec::format_ttl(Some(Duration::from_micros(12_345_001))), "12.346");
/// assert_eq!(kvcli::exec::format_ttl(None), "none");
/// ```
pub fn format_ttl(ttl: Option<Duration>) -> String {
    match ttl {
        Some(ttl) => {
            let ms = kvcore::ttl::millis(ttl);
            format!("{}.{:03}", ms / 1000, ms % 1000)
        }
        None => "none".into(),
    }
}

pub(crate) fn line(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    writeln!(out, "{text}").map_err(Error::Output)
}

pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(session: &mut Session, line: &str) -> (Result<Outcome, Error>, String) {
        let cmd = Command::parse_line(line).unwrap().unwrap();
        let mut out = Vec::new();
        let result = session.execute(&cmd, &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn ttl_formatting() {
        assert_eq!(format_ttl(Some(Duration::from_micros(1))), "0.001");
        assert_eq!(format_ttl(Some(Duration::from_secs(90))), "90.000");
        assert_eq!(format_ttl(Some(Duration::from_millis(1500))), "1.500");
    }

    #[test]
    fn commands_against_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Session::new(dir.path(), Fsync::No);
        assert_eq!(run(&mut s, "set a 1").0.unwrap(), Outcome::Done);
        assert_eq!(run(&mut s, "incr a 41").1, "42\n");
        assert_eq!(run(&mut s, "get a").1, "42\n");
        let (outcome, text) = run(&mut s, "get nope");
        assert_eq!(outcome.unwrap(), Outcome::NotFound(Some("nope".into())));
        assert_eq!(text, "");
        assert_eq!(
            run(&mut s, "exists nope").0.unwrap(),
            Outcome::NotFound(None)
        );
        assert_eq!(run(&mut s, "ttl a").1, "none\n");
        run(&mut s, "set b x ttl 100").0.unwrap();
        let left: f64 = run(&mut s, "ttl b").1.trim().parse().unwrap();
        assert!(left > 90.0 && left <= 100.0, "{left}");
        assert_eq!(run(&mut s, "keys").1, "a\nb\n");
        assert_eq!(run(&mut s, "keys b*").1, "b\n");
        assert!(run(&mut s, "incr b").0.is_err());
        // repair closes and reopens an open store
        assert!(run(&mut s, "repair").1.starts_with("nothing to repair"));
        assert!(s.is_open());
        assert_eq!(run(&mut s, "count").1, "2\n");
        // check closes the store to read the directory alone, then reopens it
        let (outcome, text) = run(&mut s, "check");
        assert_eq!(outcome.unwrap(), Outcome::Done);
        assert!(text.ends_with("keys 2\nok\n"), "{text}");
        assert!(s.is_open());
        assert_eq!(run(&mut s, "clear").1, "2\n");
        assert_eq!(run(&mut s, "quit").0.unwrap(), Outcome::Quit);
    }
}
