//! Parsing a command line into a [`Command`].
//!
//! The same grammar serves every mode: a one-shot command arrives already split into
//! arguments by the shell ([`Command::from_args`]), while the REPL and piped scripts
//! split each line themselves ([`split`], [`Command::parse_line`]). Splitting follows
//! the shell closely enough that a command pasted from one works in the other:
//!
//! - arguments are separated by whitespace;
//! - `"double quotes"` keep spaces and take backslash escapes (`\"`, `\\`, `\n`, `\t`,
//!   `\r`; any other backslash is kept as written);
//! - `'single quotes'` keep everything literally;
//! - an argument that starts with `{` or `[` runs to its matching bracket, so a JSON
//!   value may contain spaces and quotes without further quoting:
//!   `set user {"name": "Ada Lovelace"}`.
//!
//! Command names and the `ttl` keyword are case-insensitive. A line that is blank or
//! starts with `#` holds no command.

use std::fmt::Write as _;
use std::iter::Peekable;
use std::path::PathBuf;
use std::str::Chars;
use std::time::Duration;

use kvcore::dataset::Format;
use kvcore::{JsonText, MAX_TTL, Pattern};

use crate::Error;

/// One command, parsed and checked, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `set KEY VALUE [ttl SECONDS]`
    Set {
        /// The key.
        key: String,
        /// The value: the argument's JSON if it parses as JSON, else a JSON string.
        value: JsonText,
        /// The time-to-live, if one was given.
        ttl: Option<Duration>,
    },
    /// `get KEY`
    Get {
        /// The key.
        key: String,
    },
    /// `del KEY`
    Del {
        /// The key.
        key: String,
    },
    /// `exists KEY`
    Exists {
        /// The key.
        key: String,
    },
    /// `keys [PATTERN]`
    Keys {
        /// The glob the keys must match; every key when `None`.
        pattern: Option<Pattern>,
    },
    /// `ttl KEY`
    Ttl {
        /// The key.
        key: String,
    },
    /// `expire KEY SECONDS`
    Expire {
        /// The key.
        key: String,
        /// The new time-to-live.
        ttl: Duration,
    },
    /// `persist KEY`
    Persist {
        /// The key.
        key: String,
    },
    /// `incr KEY [BY]`
    Incr {
        /// The key.
        key: String,
        /// The increment (default 1; may be negative).
        by: i64,
    },
    /// `count`
    Count,
    /// `clear`
    Clear,
    /// `import FILE [--format F]`
    Import {
        /// The file to read; `-` is standard input.
        file: PathBuf,
        /// The format named with `--format`; otherwise chosen by the file's extension.
        format: Option<Format>,
    },
    /// `export FILE [--format F]`
    Export {
        /// The file to write; `-` is standard output.
        file: PathBuf,
        /// The format named with `--format`; otherwise chosen by the file's extension.
        format: Option<Format>,
    },
    /// `stats`
    Stats,
    /// `compact`
    Compact,
    /// `repair [--accept-missing]`
    Repair {
        /// Also rebuild a directory that lacks files it must hold from the files that
        /// are left (their keys are lost).
        accept_missing: bool,
    },
    /// `check`
    Check,
    /// `help`
    Help,
    /// `quit` (also `exit`)
    Quit,
}

/// A command's name, arguments and one-line description, for help and completion.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// The name, lower case.
    pub name: &'static str,
    /// The arguments, as shown in help.
    pub args: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// What it adds about the exit status, shown after `about` on the command line
    /// only: in the REPL and in a script a command sets no exit status of its own.
    pub status: &'static str,
}

/// Every command, in the order help lists them.
pub const COMMANDS: &[Info] = &[
    Info {
        name: "set",
        args: "KEY VALUE [ttl SECONDS]",
        about: "store VALUE (as JSON if it parses as JSON, else as a string)",
        status: "",
    },
    Info {
        name: "get",
        args: "KEY",
        about: "print the value as compact JSON",
        status: "",
    },
    Info {
        name: "del",
        args: "KEY",
        about: "remove the key",
        status: "",
    },
    Info {
        name: "exists",
        args: "KEY",
        about: "print true, or false",
        status: " (and exit 1)",
    },
    Info {
        name: "keys",
        args: "[PATTERN]",
        about: "list keys, sorted; PATTERN is a glob: * ? [a-z] [^a] \\x",
        status: "",
    },
    Info {
        name: "ttl",
        args: "KEY",
        about: "print the seconds left (like 12.345), or none",
        status: "",
    },
    Info {
        name: "expire",
        args: "KEY SECONDS",
        about: "make the key expire SECONDS from now",
        status: "",
    },
    Info {
        name: "persist",
        args: "KEY",
        about: "remove the key's TTL",
        status: "",
    },
    Info {
        name: "incr",
        args: "KEY [BY]",
        about: "add BY (default 1) to an integer value; print the result",
        status: "",
    },
    Info {
        name: "count",
        args: "",
        about: "print the number of keys",
        status: "",
    },
    Info {
        name: "clear",
        args: "",
        about: "remove every key; print how many there were",
        status: "",
    },
    Info {
        name: "import",
        args: "FILE [--format F]",
        about: "load records from FILE (- is stdin, one-shot only)",
        status: "",
    },
    Info {
        name: "export",
        args: "FILE [--format F]",
        about: "write every record to FILE (- is stdout, JSON Lines by default)",
        status: "",
    },
    Info {
        name: "stats",
        args: "",
        about: "print the key count, counters and file sizes",
        status: "",
    },
    Info {
        name: "compact",
        args: "",
        about: "write a snapshot and start a fresh journal",
        status: "",
    },
    Info {
        name: "check",
        args: "",
        about: "verify every file and record, writing nothing",
        status: "; exit 2 naming a problem",
    },
    Info {
        name: "repair",
        args: "[--accept-missing]",
        about: "cut damaged files at the last good record (and forget missing ones)",
        status: "",
    },
    Info {
        name: "help",
        args: "",
        about: "show this help",
        status: "",
    },
    Info {
        name: "quit",
        args: "",
        about: "leave (also exit, or Ctrl-D)",
        status: "",
    },
];

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
/// use kvcli::command::{Place, help_text};
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
one per line. To store the string \"42\", quote the quotes: '\"42\"'.

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

/// Names people bring from Redis and other tools, with the kvcli command that does
/// the job, as shown in the suggestion.
const SYNONYMS: &[(&str, &str)] = &[
    ("scan", "keys"),
    ("ls", "keys"),
    ("list", "keys"),
    ("delete", "del"),
    ("remove", "del"),
    ("rm", "del"),
    ("unlink", "del"),
    ("dbsize", "count"),
    ("size", "count"),
    ("len", "count"),
    ("flushdb", "clear"),
    ("flushall", "clear"),
    ("info", "stats"),
    ("put", "set"),
    ("setex", "set KEY VALUE ttl SECONDS"),
    ("psetex", "set KEY VALUE ttl SECONDS"),
    ("incrby", "incr KEY BY"),
    ("decr", "incr KEY -1"),
    ("decrby", "incr KEY -BY"),
    ("pexpire", "expire KEY SECONDS"),
    ("pttl", "ttl"),
    ("load", "import"),
    ("dump", "export"),
    ("save", "compact"),
    ("bgsave", "compact"),
    ("bgrewriteaof", "compact"),
    ("fsck", "repair"),
    ("?", "help"),
    ("q", "quit"),
];

/// The command to suggest for an unknown `name`: a synonym's, else the command name
/// closest to it by edit distance (letters added, dropped, changed or swapped), if
/// it is close enough — one edit for names of up to three letters, two for longer.
///
/// ```
/// use kvcli::command::suggest;
///
/// assert_eq!(suggest("scan"), Some("keys"));
/// assert_eq!(suggest("gett"), Some("get"));
/// assert_eq!(suggest("EPXIRE"), Some("expire"));
/// assert_eq!(suggest("decr"), Some("incr KEY -1"));
/// assert_eq!(suggest("frobnicate"), None);
/// ```
pub fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if let Some((_, command)) = SYNONYMS.iter().find(|(alias, _)| *alias == name) {
        return Some(command);
    }
    let allowed = if name.chars().count() <= 3 { 1 } else { 2 };
    COMMANDS
        .iter()
        .map(|info| info.name)
        .chain(["exit"])
        .map(|candidate| (edit_distance(&name, candidate), candidate))
        .filter(|&(d, _)| d <= allowed)
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: the fewest single-character insertions,
/// deletions, substitutions and swaps of neighbours that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the full table: two back for swaps, one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

impl Command {
    /// Parses one line of a REPL session or script; `Ok(None)` for a blank line or a
    /// `#` comment.
    ///
    /// ```
    /// use kvcli::command::Command;
    ///
    /// let cmd = Command::parse_line(r#"SET greeting "hello world""#)?.unwrap();
    /// assert_eq!(
    ///     cmd,
    ///     Command::Set {
    ///         key: "greeting".into(),
    ///         value: kvcore::JsonText::string("hello world"),
    ///         ttl: None,
    ///     }
    /// );
    /// assert_eq!(Command::parse_line("  # a comment")?, None);
    /// # Ok::<(), kvcli::Error>(())
    /// ```
    pub fn parse_line(line: &str) -> Result<Option<Command>, Error> {
        if line.trim_start().starts_with('#') {
            return Ok(None);
        }
        let args = split(line)?;
        if args.is_empty() {
            return Ok(None);
        }
        Command::from_args(&args).map(Some)
    }

    /// Parses a command from arguments already split (by the shell, or by [`split`]).
    ///
    /// ```
    /// use kvcli::command::Command;
    ///
    /// let cmd = Command::from_args(&["incr", "hits", "-5"])?;
    /// assert_eq!(cmd, Command::Incr { key: "hits".into(), by: -5 });
    /// assert!(Command::from_args(&["frobnicate"]).is_err());
    /// # Ok::<(), kvcli::Error>(())
    /// ```
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Command, Error> {
        let Some((name, rest)) = args.split_first() else {
            return Err(Error::Usage("no command given".into()));
        };
        let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
        let name = name.as_ref().to_ascii_lowercase();
        let info = COMMANDS
            .iter()
            .find(|info| info.name == name)
            .or_else(|| (name == "exit").then(|| info("quit")));
        let Some(info) = info else {
            let hint = match suggest(&name) {
                Some(command) => format!("did you mean `{command}`? "),
                None => String::new(),
            };
            return Err(Error::Usage(format!(
                "unknown command {:?}: {hint}run `help` (or kvcli --help) for the list",
                args[0].as_ref()
            )));
        };
        let usage = || {
            let usage = format!("usage: {} {}", info.name, info.args);
            Error::Usage(usage.trim_end().to_string())
        };
        let key = || rest.first().map(|k| k.to_string());
        let cmd = match (info.name, rest.as_slice()) {
            ("set", [key, value]) => Command::Set {
                key: key.to_string(),
                value: parse_value(value),
                ttl: None,
            },
            ("set", [key, value, word, seconds]) if word.eq_ignore_ascii_case("ttl") => {
                Command::Set {
                    key: key.to_string(),
                    value: parse_value(value),
                    ttl: Some(parse_seconds(seconds)?),
                }
            }
            ("get", [_]) => Command::Get {
                key: key().unwrap_or_default(),
            },
            ("del", [_]) => Command::Del {
                key: key().unwrap_or_default(),
            },
            ("exists", [_]) => Command::Exists {
                key: key().unwrap_or_default(),
            },
            ("ttl", [_]) => Command::Ttl {
                key: key().unwrap_or_default(),
            },
            ("persist", [_]) => Command::Persist {
                key: key().unwrap_or_default(),
            },
            ("keys", []) => Command::Keys { pattern: None },
            ("keys", [pattern]) => Command::Keys {
                pattern: Some(Pattern::new(pattern)?),
            },
            ("expire", [key, seconds]) => Command::Expire {
                key: key.to_string(),
                ttl: parse_seconds(seconds)?,
            },
            ("incr", [key]) => Command::Incr {
                key: key.to_string(),
                by: 1,
            },
            ("incr", [key, by]) => Command::Incr {
                key: key.to_string(),
                by: by.parse().map_err(|_| {
                    Error::Usage(format!("BY must be a 64-bit integer, not {by:?}"))
                })?,
            },
            ("import" | "export", _) => {
                let (file, format) = parse_transfer(&rest).ok_or_else(usage)??;
                if info.name == "import" {
                    Command::Import { file, format }
                } else {
                    Command::Export { file, format }
                }
            }
            ("count", []) => Command::Count,
            ("clear", []) => Command::Clear,
            ("stats", []) => Command::Stats,
            ("compact", []) => Command::Compact,
            ("repair", []) => Command::Repair {
                accept_missing: false,
            },
            ("repair", ["--accept-missing"]) => Command::Repair {
                accept_missing: true,
            },
            ("check", []) => Command::Check,
            ("help", _) => Command::Help,
            ("quit", []) => Command::Quit,
            _ => return Err(usage()),
        };
        Ok(cmd)
    }

    /// Whether the command changes the data directory (and so may create it).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Command::Set { .. }
                | Command::Del { .. }
                | Command::Expire { .. }
                | Command::Persist { .. }
                | Command::Incr { .. }
                | Command::Clear
                | Command::Import { .. }
                | Command::Compact
        )
    }
}

fn info(name: &str) -> &'static Info {
    COMMANDS
        .iter()
        .find(|i| i.name == name)
        .unwrap_or(&COMMANDS[0])
}

/// The value a `set` argument stands for: its JSON if it is JSON, else a string.
pub fn parse_value(text: &str) -> JsonText {
    JsonText::parse(text).unwrap_or_else(|_| JsonText::string(text))
}

/// Seconds, fractional allowed, from 0.001 up to kvcore's [`MAX_TTL`]
/// ([`kvcore::ttl::parse_seconds`], as kvserver reads them).
pub fn parse_seconds(text: &str) -> Result<Duration, Error> {
    kvcore::ttl::parse_seconds(text).map_err(|_| {
        Error::Usage(format!(
            "SECONDS must be a number from 0.001 to {}, not {text:?}",
            MAX_TTL.as_secs_f64()
        ))
    })
}

/// A dataset format name: json, jsonl (also jsonlines, ndjson) or csv.
pub fn parse_format(name: &str) -> Result<Format, String> {
    name.parse().map_err(|e| match e {
        kvcore::Error::Config(message) => message,
        other => other.to_string(),
    })
}

/// `FILE [--format F]` (the flag may come first, and as `--format=F`). `None` when
/// the arguments do not have that shape.
fn parse_transfer(args: &[&str]) -> Option<Result<(PathBuf, Option<Format>), Error>> {
    let mut file = None;
    let mut format = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = if *arg == "--format" {
            Some(*args.next()?)
        } else {
            arg.strip_prefix("--format=")
        };
        match value {
            Some(_) if format.is_some() => return None,
            Some(name) => match parse_format(name) {
                Ok(f) => format = Some(f),
                Err(e) => return Some(Err(Error::Usage(e))),
            },
            None if file.is_some() => return None,
            None => file = Some(PathBuf::from(arg)),
        }
    }
    Some(Ok((file?, format)))
}

/// Splits a line into arguments (see the [module docs](self) for the rules).
///
/// ```
/// use kvcli::command::split;
///
/// assert_eq!(
///     split(r#"set "a key" {"x": [1, 2]} ttl 10"#)?,
///     ["set", "a key", r#"{"x": [1, 2]}"#, "ttl", "10"]
/// );
/// assert_eq!(split(r#"set k 'it''s' "say \"hi\"""#)?, ["set", "k", "its", r#"say "hi""#]);
/// assert!(split(r#"get "open"#).is_err());
/// # Ok::<(), kvcli::Error>(())
/// ```
pub fn split(line: &str) -> Result<Vec<String>, Error> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut arg = String::new();
        if first == '{' || first == '[' {
            take_json(&mut chars, &mut arg);
        }
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '"' => take_double_quoted(&mut chars, &mut arg)?,
                '\'' => take_single_quoted(&mut chars, &mut arg)?,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
}

/// Takes a bracketed JSON-like run up to its matching close bracket (or the end of
/// the line), leaving strings inside it as written.
fn take_json(chars: &mut Peekable<Chars<'_>>, arg: &mut String) {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in chars.by_ref() {
        arg.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

fn take_double_quoted(chars: &mut Peekable<Chars<'_>>, arg: &mut String) -> Result<(), Error> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match chars.next() {
                Some('n') => arg.push('\n'),
                Some('t') => arg.push('\t'),
                Some('r') => arg.push('\r'),
                Some(c @ ('"' | '\\')) => arg.push(c),
                Some(c) => {
                    arg.push('\\');
                    arg.push(c);
                }
                None => break,
            },
            c => arg.push(c),
        }
    }
    Err(Error::Usage("unterminated double quote".into()))
}

fn take_single_quoted(chars: &mut Peekable<Chars<'_>>, arg: &mut String) -> Result<(), Error> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        arg.push(c);
    }
    Err(Error::Usage("unterminated single quote".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        Command::parse_line(line).unwrap().unwrap()
    }

    fn usage_error(line: &str) -> String {
        Command::parse_line(line).unwrap_err().to_string()
    }

    #[test]
    fn splits_like_a_shell_with_json_runs() {
        assert_eq!(split("  a\tb  ").unwrap(), ["a", "b"]);
        assert_eq!(split(r#""""#).unwrap(), [""]);
        assert_eq!(split(r#"a"b c"d"#).unwrap(), ["ab cd"]);
        assert_eq!(split(r#""\n\t\\\x""#).unwrap(), ["\n\t\\\\x"]);
        assert_eq!(split("'a \"b\" \\n'").unwrap(), ["a \"b\" \\n"]);
        assert_eq!(
            split(r#"{"a}": "x \" ]", "b": [1, {}]} next"#).unwrap(),
            [r#"{"a}": "x \" ]", "b": [1, {}]}"#, "next"]
        );
        assert_eq!(split("[1, 2").unwrap(), ["[1, 2"]);
        assert_eq!(split("x{ y").unwrap(), ["x{", "y"]);
        assert!(split("'open").is_err());
        assert!(split("\"open\\").is_err());
    }

    #[test]
    fn values_are_json_when_they_parse() {
        let value = |line: &str| match parse(line) {
            Command::Set { value, .. } => value.as_str().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value("set k hello"), r#""hello""#);
        assert_eq!(value("set k 42"), "42");
        assert_eq!(value("set k \"42\""), "42");
        assert_eq!(value("set k '\"42\"'"), r#""42""#);
        assert_eq!(value(r#"set k {"a": [1, 2]}"#), r#"{"a":[1,2]}"#);
        assert_eq!(value("set k {oops"), r#""{oops""#);
        assert_eq!(value("set k \"hello world\""), r#""hello world""#);
    }

    #[test]
    fn names_and_keywords_are_case_insensitive() {
        assert_eq!(
            parse("SeT k v TTL 1.5"),
            Command::Set {
                key: "k".into(),
                value: JsonText::string("v"),
                ttl: Some(Duration::from_millis(1500)),
            }
        );
        assert_eq!(parse("GET K"), Command::Get { key: "K".into() });
        assert_eq!(parse("Exit"), Command::Quit);
        assert_eq!(parse("help set"), Command::Help);
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(usage_error("get"), "usage: get KEY");
        assert_eq!(
            usage_error("set k v ttl"),
            "usage: set KEY VALUE [ttl SECONDS]"
        );
        assert_eq!(
            usage_error("set k v for 10"),
            "usage: set KEY VALUE [ttl SECONDS]"
        );
        assert!(usage_error("set k v ttl 0").contains("0.001"));
        assert!(usage_error("expire k -1").contains("SECONDS"));
        assert!(usage_error("expire k 1e12").contains("SECONDS"));
        assert!(usage_error("incr k 1.5").contains("BY"));
        assert!(usage_error("keys [").contains("pattern"));
        assert!(usage_error("count 1").contains("usage: count"));
        assert!(usage_error("nope").contains("unknown command \"nope\""));
        assert_eq!(usage_error("check now"), "usage: check");
        assert_eq!(
            usage_error("repair --all"),
            "usage: repair [--accept-missing]"
        );
        assert_eq!(parse("CHECK"), Command::Check);
        assert_eq!(
            parse("repair"),
            Command::Repair {
                accept_missing: false
            }
        );
        assert_eq!(
            parse("repair --accept-missing"),
            Command::Repair {
                accept_missing: true
            }
        );
    }

    #[test]
    fn transfer_arguments() {
        assert_eq!(
            parse("import data.json"),
            Command::Import {
                file: "data.json".into(),
                format: None
            }
        );
        assert_eq!(
            parse("export --format csv out.txt"),
            Command::Export {
                file: "out.txt".into(),
                format: Some(Format::Csv)
            }
        );
        assert_eq!(
            parse("export out.txt --format=NDJSON"),
            Command::Export {
                file: "out.txt".into(),
                format: Some(Format::JsonLines)
            }
        );
        assert!(usage_error("import").contains("usage: import FILE"));
        assert!(usage_error("import a b").contains("usage"));
        assert!(usage_error("import a --format").contains("usage"));
        assert!(usage_error("import a --format yaml").contains("unknown dataset format"));
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_text(Place::CommandLine);
        for info in COMMANDS {
            assert!(
                help.contains(&format!("\n  {} ", info.name)),
                "{}",
                info.name
            );
        }
        assert!(help.contains("Exit status"));
        assert!(help.contains("Piped"));
        for place in [Place::Repl, Place::Script] {
            let help = help_text(place);
            assert!(help.contains("\n  repair "), "{place:?}");
            assert!(!help.contains("Exit status"), "{place:?}");
            assert!(!help.contains("Piped"), "{place:?}");
            // Per-command exit statuses are the command line's too.
            assert!(!help.contains("exit 1"), "{place:?}: {help}");
            assert!(!help.contains("exit 2"), "{place:?}: {help}");
        }
        assert!(help.contains("print true, or false (and exit 1)"));
        assert!(help.contains("writing nothing; exit 2 naming a problem"));
        assert!(help_text(Place::Repl).contains("Ctrl-R"));
        assert!(!help_text(Place::Script).contains("Ctrl-R"));
        assert!(help_text(Place::Script).contains("line N: error:"));
    }

    #[test]
    fn unknown_commands_suggest_the_nearest_one() {
        assert_eq!(
            usage_error("scan 0"),
            "unknown command \"scan\": did you mean `keys`? run `help` (or kvcli --help) \
             for the list"
        );
        assert!(usage_error("GETT k").contains("did you mean `get`?"));
        assert!(usage_error("sett k v").contains("did you mean `set`?"));
        assert!(usage_error("delete k").contains("did you mean `del`?"));
        assert!(usage_error("FLUSHALL").contains("did you mean `clear`?"));
        assert!(usage_error("exti").contains("did you mean `exit`?"));
        assert!(usage_error("frobnicate").ends_with(": run `help` (or kvcli --help) for the list"));
        // Short names get one edit, no more: `xy` is not `ttl`.
        assert_eq!(suggest("xy"), None);
        assert_eq!(suggest("cnt"), None);
        assert_eq!(suggest("cout"), Some("count"));
        assert_eq!(suggest("stast"), Some("stats"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("get", "get"), 0);
        assert_eq!(edit_distance("gte", "get"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }
}
