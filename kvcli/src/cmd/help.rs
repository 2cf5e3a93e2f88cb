//! `help` and `quit`, and the help text, which lists every command of the registry.

use std::fmt::Write as _;
use std::io::Write;

use super::{COMMANDS, Command, Spec};
use crate::Error;
use crate::exec::{Outcome, Session, write_out};

/// `help` (any arguments are ignored)
#[derive(Debug, Clone, PartialEq)]
pub struct Help;

/// The spec of [`Help`].
pub const HELP: Spec = Spec {
    name: "help",
    aliases: &[],
    args: "",
    about: "show this help",
    status: "",
    writes: false,
    needs_dir: false,
    takes_format: false,
    synonyms: &[("?", "help")],
    parse: |_| Ok(Command::Help(Help)),
};

impl Help {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        write_out(out, &help_text(session.place))?;
        Ok(Outcome::Done)
    }
}

/// `quit` (also `exit`)
#[derive(Debug, Clone, PartialEq)]
pub struct Quit;

/// The spec of [`Quit`].
pub const QUIT: Spec = Spec {
    name: "quit",
    aliases: &["exit"],
    args: "",
    about: "leave (also exit, or Ctrl-D)",
    status: "",
    writes: false,
    needs_dir: false,
    takes_format: false,
    synonyms: &[("q", "quit")],
    parse: |args| match args {
        [] => Ok(Command::Quit(Quit)),
        _ => Err(QUIT.usage()),
    },
};

impl Quit {
    pub(crate) fn run(
        &self,
        _session: &mut Session,
        _out: &mut dyn Write,
    ) -> Result<Outcome, Error> {
        Ok(Outcome::Quit)
    }
}

/// Where commands are typed, which decides what `help` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Place {
    /// One command on kvcli's command line (and `kvcli --help`): the exit status and
    /// piped mode apply.
    #[default]
    CommandLine,
    /// The interactive REPL: its keys apply, exit statuses do not.
    Repl,
    /// A script read from a pipe: how its lines run and fail applies.
    Script,
}

/// The help text for `place`: every command and the argument rules, then what
/// applies there — exit statuses and piped mode on the command line, the editing
/// keys in the REPL, how lines run in a script.
///
/// `kvcli --help` shows the command-line text after the flags; `help` shows the text
/// for where it is typed.
///
/// ```
/// use kvcli::cmd::{Place, help_text};
///
/// assert!(help_text(Place::CommandLine).contains("Exit status"));
/// assert!(help_text(Place::Repl).contains("Tab completes"));
/// assert!(!help_text(Place::Repl).contains("Exit status"));
/// ```
pub fn help_text(place: Place) -> String {
    let mut out = String::from("Commands (names are case-insensitive):\n");
    for info in COMMANDS {
        let usage = format!("{} {}", info.name, info.args);
        let status = if place == Place::CommandLine {
            info.status
        } else {
            ""
        };
        let _ = writeln!(out, "  {:<28} {}{status}", usage.trim_end(), info.about);
    }
    out.push_str(
        "
Values: a VALUE that parses as JSON is stored as that JSON (42, true, {\"a\":1}),
anything else as a JSON string (hello -> \"hello\"). Values print as compact JSON,
one per line. To store the string \"42\", quote the quotes: '\"42\"'. A value a
Redis client stored is bytes: it prints (and exports) as the JSON it parses as,
else as a JSON string of its text, else, when it is not UTF-8, as
{\"$base64\":\"...\"} holding its bytes in base64; the bytes are kept as they are.

Keys are non-empty and at most --max-key-bytes (default 512) bytes, values at
most --max-value-bytes (default 1 MiB) of compact JSON: kvserver's rules, which
set, incr and import apply.

Arguments are split at spaces; \"double quotes\" (with \\ escapes) and 'single
quotes' keep spaces, and a {...} or [...] JSON value may hold spaces as it is.
SECONDS may be fractional (0.001 to 315360000).

Import/export formats, chosen by extension or --format: json (one object),
jsonl (also .ndjson: {\"key\":...,\"value\":...} per line), csv (key,value header;
values read from CSV are strings). An import is all or nothing: a bad record
stops it, naming its line, before anything is written. TTLs are not exported.
",
    );
    out.push_str(match place {
        Place::CommandLine => {
            "
check, and count run alone, read the directory without writing to it (no lock,
no new journal): use them on a backup copy. A directory missing a file it must
hold opens only after it is restored, or after repair --accept-missing.

Exit status of one command: 0 done, 1 key not found (get, del, ttl, expire,
persist on a missing key; exists printing false), 2 error (message on stderr).
Piped (commands on stdin, one per line; # starts a comment): every line runs;
errors print as \"line N: error: ...\" and missing keys as \"line N: not found:
KEY\" on stderr; the exit status is 2 if any line failed, else 0 (a missing key
is not a failure).
"
        }
        Place::Repl => {
            "
Keys: Tab completes command names, key names after a command that takes a KEY,
and ttl after set KEY VALUE. Up and Down walk the history, Ctrl-R searches it.
Ctrl-C drops the line being typed; Ctrl-D or quit leaves. A line starting with a
space is kept out of the history. Every command is on disk before the next prompt.
"
        }
        Place::Script => {
            "
In a script every line runs, whatever happened before it; # starts a comment and
quit stops early. Errors print as \"line N: error: ...\" and missing keys as
\"line N: not found: KEY\" on stderr; the exit status is 2 if any line failed,
else 0 (a missing key is not a failure).
"
        }
    });
    out
}
