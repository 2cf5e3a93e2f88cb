//! `ttl`, `expire` and `persist`: a key's time-to-live.

use std::io::Write;
use std::time::Duration;

use kvcore::Store;

use super::{Command, Spec};
use crate::Error;
use crate::command::parse_seconds;
use crate::exec::{Outcome, Session, format_ttl, line};

/// `ttl KEY`
#[derive(Debug, Clone, PartialEq)]
pub struct Ttl {
    /// The key.
    pub key: String,
}

/// The spec of [`Ttl`].
pub const TTL: Spec = Spec {
    name: "ttl",
    aliases: &[],
    args: "KEY",
    about: "print the seconds left (like 12.345), or none",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("pttl", "ttl")],
    parse: |args| match args {
        [key] => Ok(Command::Ttl(Ttl {
            key: key.to_string(),
        })),
        _ => Err(TTL.usage()),
    },
};

impl Ttl {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        match session.open()?.ttl(&self.key) {
            Some(ttl) => line(out, &format_ttl(ttl))?,
            None => return Ok(Outcome::NotFound(Some(self.key.clone()))),
        }
        Ok(Outcome::Done)
    }
}

/// `expire KEY SECONDS`
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The key.
    pub key: String,
    /// The new time-to-live.
    pub ttl: Duration,
}

/// The spec of [`Expire`].
pub const EXPIRE: Spec = Spec {
    name: "expire",
    aliases: &[],
    args: "KEY SECONDS",
    about: "make the key expire SECONDS from now",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[("pexpire", "expire KEY SECONDS")],
    parse: |args| match args {
        [key, seconds] => Ok(Command::Expire(Expire {
            key: key.to_string(),
            ttl: parse_seconds(seconds)?,
        })),
        _ => Err(EXPIRE.usage()),
    },
};

impl Expire {
    pub(crate) fn run(
        &self,
        session: &mut Session,
        _out: &mut dyn Write,
    ) -> Result<Outcome, Error> {
        if !session.open()?.expire(&self.key, self.ttl)? {
            return Ok(Outcome::NotFound(Some(self.key.clone())));
        }
        Ok(Outcome::Done)
    }
}

/// `persist KEY`
#[derive(Debug, Clone, PartialEq)]
pub struct Persist {
    /// The key.
    pub key: String,
}

/// The spec of [`Persist`].
pub const PERSIST: Spec = Spec {
    name: "persist",
    aliases: &[],
    args: "KEY",
    about: "remove the key's TTL",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: false,
    synonyms: &[],
    parse: |args| match args {
        [key] => Ok(Command::Persist(Persist {
            key: key.to_string(),
        })),
        _ => Err(PERSIST.usage()),
    },
};

impl Persist {
    pub(crate) fn run(
        &self,
        session: &mut Session,
        _out: &mut dyn Write,
    ) -> Result<Outcome, Error> {
        if !session.open()?.clear_ttl(&self.key)? {
            return Ok(Outcome::NotFound(Some(self.key.clone())));
        }
        Ok(Outcome::Done)
    }
}
