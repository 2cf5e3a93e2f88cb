//! Running a [`Command`] against a data directory.
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
//! [`Session::execute`] writes a command's output to the writer it is given, one
//! value per line, and says how it ended: an [`Outcome`], or an [`Error`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kvcore::dataset::Format;
use kvcore::limits::Limits;
use kvcore::persist::{self, Fsync, PersistOptions};
use kvcore::{JsonText, PersistentStore, SetOptions, Store, StoreBuilder};

use crate::Error;
use crate::command::{Command, Place, help_text};
use crate::transfer::{self, PAGE};

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
    dir: PathBuf,
    options: PersistOptions,
    store: Option<PersistentStore<JsonText>>,
    /// Whether import and export draw progress bars.
    progress: bool,
    /// The format `--format` named on kvcli's own command line.
    default_format: Option<Format>,
    /// Whether `import -` may read standard input (not when it carries the commands).
    stdin_free: bool,
    /// Where commands come from, for `help`.
    place: Place,
    /// The key and value rules writes must pass.
    limits: Limits,
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
    pub fn open(&mut self) -> Result<PersistentStore<JsonText>, Error> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        // kvcore takes the directory's lock before it reads or writes anything else in
        // it, so a held directory is refused untouched.
        let store = StoreBuilder::new().open::<JsonText>(&self.dir, self.options)?;
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
    pub fn store(&self) -> Option<PersistentStore<JsonText>> {
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
        match cmd {
            Command::Help => {
                write_out(out, &help_text(self.place))?;
                return Ok(Outcome::Done);
            }
            Command::Quit => return Ok(Outcome::Quit),
            Command::Repair { accept_missing } => return self.repair(*accept_missing, out),
            Command::Check => return self.check(out),
            Command::Count if !self.is_open() => {
                let report = persist::check::<JsonText>(&self.dir)?;
                line(out, &report.live_keys.to_string())?;
                return Ok(Outcome::Done);
            }
            _ => {}
        }
        // Keys and values, an import's file and an export's format are checked before
        // the store is opened, so that a refused command creates no data directory.
        let mut source = None;
        match cmd {
            Command::Set { key, value, .. } => self.limits.check_pair(key, value)?,
            Command::Incr { key, .. } => self.limits.check_key(key)?,
            Command::Import { file, format } => {
                if file == Path::new("-") && !self.stdin_free {
                    return Err(Error::Usage(
                        "import - reads standard input, which only a one-shot command can \
                         spare: run `kvcli DIR import - < FILE`"
                            .into(),
                    ));
                }
                source = Some(transfer::Source::open(
                    file,
                    format.or(self.default_format),
                )?);
            }
            Command::Export { file, format } => {
                transfer::resolve_format(file, format.or(self.default_format))?;
            }
            _ => {}
        }
        let store = self.open()?;
        let not_found = |key: &str| Ok(Outcome::NotFound(Some(key.to_string())));
        match cmd {
            Command::Set { key, value, ttl } => {
                let mut opts = SetOptions::new().no_ttl();
                if let Some(ttl) = ttl {
                    opts = opts.ttl(*ttl);
                }
                store.set(key, value.clone(), opts)?;
            }
            Command::Get { key } => match store.get(key) {
                Some(value) => line(out, value.as_str())?,
                None => return not_found(key),
            },
            Command::Del { key } => {
                if !store.delete(key)? {
                    return not_found(key);
                }
            }
            Command::Exists { key } => {
                let live = store.contains(key);
                line(out, if live { "true" } else { "false" })?;
                if !live {
                    return Ok(Outcome::NotFound(None));
                }
            }
            Command::Keys { pattern } => {
                let mut keys = Vec::new();
                for page in kvcore::Pages::new(&store, pattern.as_ref(), PAGE) {
                    keys.extend(page?.items.into_iter().map(|(key, _)| key));
                }
                keys.sort_unstable();
                for key in keys {
                    line(out, &key)?;
                }
            }
            Command::Ttl { key } => match store.ttl(key) {
                Some(ttl) => line(out, &format_ttl(ttl))?,
                None => return not_found(key),
            },
            Command::Expire { key, ttl } => {
                if !store.expire(key, *ttl)? {
                    return not_found(key);
                }
            }
            Command::Persist { key } => {
                if !store.clear_ttl(key)? {
                    return not_found(key);
                }
            }
            Command::Incr { key, by } => line(out, &store.incr(key, *by)?.to_string())?,
            Command::Count => line(out, &store.len().to_string())?,
            Command::Clear => line(out, &store.clear()?.to_string())?,
            Command::Import { .. } => {
                if let Some(source) = source {
                    let n = transfer::import(&store, source, &self.limits, self.progress)?;
                    line(out, &format!("imported {n} records"))?;
                }
            }
            Command::Export { file, format } => {
                let format = format.or(self.default_format);
                if file == Path::new("-") {
                    transfer::export(&store, file, format, false, out)?;
                } else {
                    let n = transfer::export(&store, file, format, self.progress, out)?;
                    line(out, &format!("exported {n} records"))?;
                }
            }
            Command::Stats => {
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
            }
            Command::Compact => {
                store.compact()?;
                let bytes = store.snapshot_info().bytes;
                line(
                    out,
                    &format!("compacted: {} keys in a {bytes}-byte snapshot", store.len()),
                )?;
            }
            Command::Help | Command::Quit | Command::Repair { .. } | Command::Check => {}
        }
        Ok(Outcome::Done)
    }

    /// Closes the store, repairs the directory, and reopens it if it was open.
    fn repair(&mut self, accept_missing: bool, out: &mut dyn Write) -> Result<Outcome, Error> {
        if !self.dir.is_dir() {
            return Err(Error::NoDir(self.dir.clone()));
        }
        let was_open = self.is_open();
        self.close()?;
        let (report, accepted) = if accept_missing {
            let accepted = persist::accept_missing(&self.dir)?;
            (accepted.repaired.clone(), Some(accepted))
        } else {
            (persist::repair(&self.dir)?, None)
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
            self.open()?;
        }
        Ok(Outcome::Done)
    }

    /// Closes the store, checks the directory read-only, and reopens it if it was
    /// open. A directory that would not open is the error; one that would prints
    /// what was found.
    fn check(&mut self, out: &mut dyn Write) -> Result<Outcome, Error> {
        if !self.dir.is_dir() {
            return Err(Error::NoDir(self.dir.clone()));
        }
        let was_open = self.is_open();
        self.close()?;
        let checked = persist::check::<JsonText>(&self.dir);
        if was_open {
            self.open()?;
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

fn line(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    writeln!(out, "{text}").map_err(Error::Output)
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Error> {
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
