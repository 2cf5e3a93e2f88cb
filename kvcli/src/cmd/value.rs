//! `set`, `get`, `del`, `exists` and `incr`: one key's value.

use std::io::Write;
use std::time::Duration;

use kvcore::{JsonText, SetOptions, Store};

use super::{Command, Spec};
use crate::Error;
use crate::command::{parse_seconds, parse_value};
use crate::exec::{Outcome, Session, line};

/// `set KEY VALUE [ttl SECONDS]`
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    /// The key.
    pub key: String,
    /// The value: the argument's JSON if it parses as JSON, else a JSON string.
    pub value: JsonText,
    /// The time-to-live, if one was given.
    pub ttl: Option<Duration>,
}

/// The spec of [`Set`].
pub const SET: Spec = Spec {
    name: "set",
    aliases: &[],
    args: "KEY VALUE [ttl SECONDS]",
    about: "store VALUE (as JSON if it parses as JSON, else as a string)",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[
        ("put", "set"),
        ("setex", "set KEY VALUE ttl SECONDS"),
        ("psetex", "set KEY VALUE ttl SECONDS"),
    ],
    parse: |args| {
        let ttl = match args {
            [_, _] => None,
            [_, _, word, seconds] if word.eq_ignore_ascii_case("ttl") => {
                Some(parse_seconds(seconds)?)
            }
            _ => return Err(SET.usage()),
        };
        Ok(Command::Set(Set {
            key: args[0].to_string(),
            value: parse_value(args[1]),
            ttl,
        }))
    },
};

impl Set {
    pub(crate) fn run(
        &self,
        session: &mut Session,
        _out: &mut dyn Write,
    ) -> Result<Outcome, Error> {
        // Checked before the store is opened, so that a refused command creates no
        // data directory.
        session.limits.check_pair(&self.key, &self.value)?;
        let store = session.open()?;
        let mut opts = SetOptions::new().no_ttl();
        if let Some(ttl) = self.ttl {
            opts = opts.ttl(ttl);
        }
        store.set(&self.key, self.value.clone().into(), opts)?;
        Ok(Outcome::Done)
    }
}

/// `get KEY`
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    /// The key.
    pub key: String,
}

/// The spec of [`Get`].
pub const GET: Spec = Spec {
    name: "get",
    aliases: &[],
    args: "KEY",
    about: "print the value as compact JSON",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[],
    parse: |args| match args {
        [key] => Ok(Command::Get(Get {
            key: key.to_string(),
        })),
        _ => Err(GET.usage()),
    },
};

impl Get {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        match session.open()?.get(&self.key) {
            Some(value) => line(out, value.to_json().get())?,
            None => return Ok(Outcome::NotFound(Some(self.key.clone()))),
        }
        Ok(Outcome::Done)
    }
}

/// `del KEY`
#[derive(Debug, Clone, PartialEq)]
pub struct Del {
    /// The key.
    pub key: String,
}

/// The spec of [`Del`].
pub const DEL: Spec = Spec {
    name: "del",
    aliases: &[],
    args: "KEY",
    about: "remove the key",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[
        ("delete", "del"),
        ("remove", "del"),
        ("rm", "del"),
        ("unlink", "del"),
    ],
    parse: |args| match args {
        [key] => Ok(Command::Del(Del {
            key: key.to_string(),
        })),
        _ => Err(DEL.usage()),
    },
};

impl Del {
    pub(crate) fn run(
        &self,
        session: &mut Session,
        _out: &mut dyn Write,
    ) -> Result<Outcome, Error> {
        if !session.open()?.delete(&self.key)? {
            return Ok(Outcome::NotFound(Some(self.key.clone())));
        }
        Ok(Outcome::Done)
    }
}

/// `exists KEY`
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    /// The key.
    pub key: String,
}

/// The spec of [`Exists`].
pub const EXISTS: Spec = Spec {
    name: "exists",
    aliases: &[],
    args: "KEY",
    about: "print true, or false",
    status: " (and exit 1)",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[],
    parse: |args| match args {
        [key] => Ok(Command::Exists(Exists {
            key: key.to_string(),
        })),
        _ => Err(EXISTS.usage()),
    },
};

impl Exists {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let live = session.open()?.contains(&self.key);
        line(out, if live { "true" } else { "false" })?;
        if !live {
            return Ok(Outcome::NotFound(None));
        }
        Ok(Outcome::Done)
    }
}

/// `incr KEY [BY]`
#[derive(Debug, Clone, PartialEq)]
pub struct Incr {
    /// The key.
    pub key: String,
    /// The increment (default 1; may be negative).
    pub by: i64,
}

/// The spec of [`Incr`].
pub const INCR: Spec = Spec {
    name: "incr",
    aliases: &[],
    args: "KEY [BY]",
    about: "add BY (default 1) to an integer value; print the result",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[
        ("incrby", "incr KEY BY"),
        ("decr", "incr KEY -1"),
        ("decrby", "incr KEY -BY"),
    ],
    parse: |args| {
        let by = match args {
            [_] => 1,
            [_, by] => by
                .parse()
                .map_err(|_| Error::Usage(format!("BY must be a 64-bit integer, not {by:?}")))?,
            _ => return Err(INCR.usage()),
        };
        Ok(Command::Incr(Incr {
            key: args[0].to_string(),
            by,
        }))
    },
};

impl Incr {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        session.limits.check_key(&self.key)?;
        let store = session.open()?;
        line(out, &store.incr(&self.key, self.by)?.to_string())?;
        Ok(Outcome::Done)
    }
}
