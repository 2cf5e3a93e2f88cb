//! `keys`, `count` and `clear`: the whole key space.

use std::io::Write;

use kvcore::persist;
use kvcore::{Bytes, Pattern, Store};

use super::{Command, Spec};
use crate::Error;
use crate::exec::{Outcome, Session, line};
use crate::transfer::PAGE;

/// `keys [PATTERN]`
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    /// The glob the keys must match; every key when `None`.
    pub pattern: Option<Pattern>,
}

/// The spec of [`Keys`].
pub const KEYS: Spec = Spec {
    name: "keys",
    aliases: &[],
    args: "[PATTERN]",
    about: "list keys, sorted; PATTERN is a glob: * ? [a-z] [^a] \\x",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("scan", "keys"), ("ls", "keys"), ("list", "keys")],
    parse: |args| match args {
        [] => Ok(Command::Keys(Keys { pattern: None })),
        [pattern] => Ok(Command::Keys(Keys {
            pattern: Some(Pattern::new(pattern)?),
        })),
        _ => Err(KEYS.usage()),
    },
};

impl Keys {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let store = session.open()?;
        let mut keys = Vec::new();
        for page in kvcore::Pages::new(&store, self.pattern.as_ref(), PAGE) {
            keys.extend(page?.items.into_iter().map(|(key, _)| key));
        }
        keys.sort_unstable();
        for key in keys {
            line(out, &key)?;
        }
        Ok(Outcome::Done)
    }
}

/// `count`
#[derive(Debug, Clone, PartialEq)]
pub struct Count;

/// The spec of [`Count`].
pub const COUNT: Spec = Spec {
    name: "count",
    aliases: &[],
    args: "",
    about: "print the number of keys",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("dbsize", "count"), ("size", "count"), ("len", "count")],
    parse: |args| match args {
        [] => Ok(Command::Count(Count)),
        _ => Err(COUNT.usage()),
    },
};

impl Count {
    /// With the store closed (a one-shot `kvcli DIR count`) the directory is only
    /// read, as `check` reads it: no lock, no new journal.
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let count = if session.is_open() {
            session.open()?.len()
        } else {
            persist::check::<Bytes>(session.dir())?.live_keys
        };
        line(out, &count.to_string())?;
        Ok(Outcome::Done)
    }
}

/// `clear`
#[derive(Debug, Clone, PartialEq)]
pub struct Clear;

/// The spec of [`Clear`].
pub const CLEAR: Spec = Spec {
    name: "clear",
    aliases: &[],
    args: "",
    about: "remove every key; print how many there were",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("flushdb", "clear"), ("flushall", "clear")],
    parse: |args| match args {
        [] => Ok(Command::Clear(Clear)),
        _ => Err(CLEAR.usage()),
    },
};

impl Clear {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        line(out, &session.open()?.clear()?.to_string())?;
        Ok(Outcome::Done)
    }
}
