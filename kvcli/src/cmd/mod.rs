//! Every kvcli command, one place each.
//!
//! A command is a struct in one of this folder's modules (grouped in small families:
//! [`value`], [`ttl`], [`keys`], [`dataset`], [`disk`], [`help`]) together with its
//! [`Spec`]: its name, arguments, help line, whether it writes, how it parses its
//! arguments, and — in the struct's `run` — what it does in a [`Session`].
//!
//! The `registry!` call below lists every command once. It makes the [`Command`]
//! enum and [`COMMANDS`], the table that the parser, the help text, the REPL's
//! completion and the `did you mean` suggestions all read. Adding a command means
//! writing its struct, `run` and `Spec` in a module here and naming it in that call.

use std::io::Write;

use crate::Error;
use crate::command::split;
use crate::exec::{Outcome, Session};

pub mod dataset;
pub mod disk;
pub mod help;
pub mod keys;
pub mod ttl;
pub mod value;

pub use help::{Place, help_text};

/// A command's name, arguments, help line, what it touches, and its parser.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name, lower case.
    pub name: &'static str,
    /// Other names it answers to (`exit` for `quit`).
    pub aliases: &'static [&'static str],
    /// The arguments, as shown in help.
    pub args: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// What it adds about the exit status, shown after `about` on the command line
    /// only: in the REPL and in a script a command sets no exit status of its own.
    pub status: &'static str,
    /// Whether it changes the data directory (and so may create it).
    pub writes: bool,
    /// Whether, run alone, it needs the data directory to exist already unless it
    /// writes (`help` and `quit` touch none; `repair` says so itself).
    pub needs_dir: bool,
    /// Whether kvcli's own `--format` flag applies to it.
    pub takes_format: bool,
    /// Names people bring from Redis and other tools for which this command does the
    /// job, each with the suggestion to show.
    pub synonyms: &'static [(&'static str, &'static str)],
    /// Parses the arguments after the name.
    pub parse: fn(&[&str]) -> Result<Command, Error>,
}

impl Spec {
    /// The usage error for arguments of the wrong shape: `usage: NAME ARGS`.
    pub fn usage(&self) -> Error {
        let usage = format!("usage: {} {}", self.name, self.args);
        Error::Usage(usage.trim_end().to_string())
    }

    /// Whether it takes a key as its first argument.
    pub fn takes_key(&self) -> bool {
        self.args.starts_with("KEY")
    }

    /// The spec whose name or alias is `name` (any case).
    pub fn find(name: &str) -> Option<&'static Spec> {
        let name = name.to_ascii_lowercase();
        COMMANDS
            .iter()
            .find(|spec| spec.name == name || spec.aliases.contains(&name.as_str()))
    }
}

/// Makes the [`Command`] enum, [`COMMANDS`] and the dispatch from a list of
/// `Variant(Type) = SPEC` entries, in the order help lists them.
macro_rules! registry {
    ($($variant:ident($ty:ty) = $spec:expr),* $(,)?) => {
        /// One command, parsed and checked, ready to run: one variant per command,
        /// each holding its module's struct.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $(
                #[doc = concat!("See [`", stringify!($ty), "`].")]
                $variant($ty),
            )*
        }

        /// Every command, in the order help lists them.
        pub const COMMANDS: &[Spec] = &[$($spec),*];

        impl Command {
            /// The command's [`Spec`].
            pub fn spec(&self) -> &'static Spec {
                match self {
                    $(Command::$variant(_) => &$spec,)*
                }
            }

            /// Runs the command in `session`, writing what it prints to `out`.
            pub(crate) fn run(
                &self,
                session: &mut Session,
                out: &mut dyn Write,
            ) -> Result<Outcome, Error> {
                match self {
                    $(Command::$variant(c) => c.run(session, out),)*
                }
            }
        }

        $(
            impl From<$ty> for Command {
                fn from(c: $ty) -> Command {
                    Command::$variant(c)
                }
            }
        )*
    };
}

registry! {
    Set(value::Set) = value::SET,
    Get(value::Get) = value::GET,
    Del(value::Del) = value::DEL,
    Exists(value::Exists) = value::EXISTS,
    Keys(keys::Keys) = keys::KEYS,
    Ttl(ttl::Ttl) = ttl::TTL,
    Expire(ttl::Expire) = ttl::EXPIRE,
    Persist(ttl::Persist) = ttl::PERSIST,
    Incr(value::Incr) = value::INCR,
    Count(keys::Count) = keys::COUNT,
    Clear(keys::Clear) = keys::CLEAR,
    Import(dataset::Import) = dataset::IMPORT,
    Export(dataset::Export) = dataset::EXPORT,
    Stats(disk::Stats) = disk::STATS,
    Compact(disk::Compact) = disk::COMPACT,
    Check(disk::Check) = disk::CHECK,
    Repair(disk::Repair) = disk::REPAIR,
    Help(help::Help) = help::HELP,
    Quit(help::Quit) = help::QUIT,
}

impl Command {
    /// Parses one line of a REPL session or script; `Ok(None)` for a blank line or a
    /// `#` comment.
    ///
    /// ```
    /// use kvcli::Command;
    /// use kvcli::cmd::value::Set;
    ///
    /// let cmd = Command::parse_line(r#"SET greeting "hello world""#)?.unwrap();
    /// assert_eq!(
    ///     cmd,
    ///     Command::Set(Set {
    ///         key: "greeting".into(),
    ///         value: kvcore::JsonText::string("hello world"),
    ///         ttl: None,
    ///     })
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
    /// use kvcli::Command;
    /// use kvcli::cmd::value::Incr;
    ///
    /// let cmd = Command::from_args(&["incr", "hits", "-5"])?;
    /// assert_eq!(cmd, Command::Incr(Incr { key: "hits".into(), by: -5 }));
    /// assert!(Command::from_args(&["frobnicate"]).is_err());
    /// # Ok::<(), kvcli::Error>(())
    /// ```
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Command, Error> {
        let Some((name, rest)) = args.split_first() else {
            return Err(Error::Usage("no command given".into()));
        };
        let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
        let Some(spec) = Spec::find(name.as_ref()) else {
            let hint = match suggest(name.as_ref()) {
                Some(command) => format!("did you mean `{command}`? "),
                None => String::new(),
            };
            return Err(Error::Usage(format!(
                "unknown command {:?}: {hint}run `help` (or kvcli --help) for the list",
                name.as_ref()
            )));
        };
        (spec.parse)(&rest)
    }

    /// Whether the command changes the data directory (and so may create it).
    pub fn writes(&self) -> bool {
        self.spec().writes
    }
}

/// The command to suggest for an unknown `name`: a synonym's, else the command name
/// (or alias) closest to it by edit distance (letters added, dropped, changed or
/// swapped), if it is close enough — one edit for names of up to three letters, two
/// for longer.
///
/// ```
/// use kvcli::cmd::suggest;
///
/// assert_eq!(suggest("scan"), Some("keys"));
/// assert_eq!(suggest("gett"), Some("get"));
/// assert_eq!(suggest("EPXIRE"), Some("expire"));
/// assert_eq!(suggest("decr"), Some("incr KEY -1"));
/// assert_eq!(suggest("frobnicate"), None);
/// ```
pub fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let synonym = COMMANDS
        .iter()
        .flat_map(|spec| spec.synonyms)
        .find(|(alias, _)| *alias == name);
    if let Some((_, command)) = synonym {
        return Some(command);
    }
    let allowed = if name.chars().count() <= 3 { 1 } else { 2 };
    COMMANDS
        .iter()
        .flat_map(|spec| std::iter::once(&spec.name).chain(spec.aliases))
        .map(|candidate| (edit_distance(&name, candidate), *candidate))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kvcore::JsonText;
    use kvcore::dataset::Format;

    use super::*;

    fn parse(line: &str) -> Command {
        Command::parse_line(line).unwrap().unwrap()
    }

    fn usage_error(line: &str) -> String {
        Command::parse_line(line).unwrap_err().to_string()
    }

    #[test]
    fn values_are_json_when_they_parse() {
        let value = |line: &str| match parse(line) {
            Command::Set(value::Set { value, .. }) => value.as_str().to_string(),
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
            Command::Set(value::Set {
                key: "k".into(),
                value: JsonText::string("v"),
                ttl: Some(Duration::from_millis(1500)),
            })
        );
        assert_eq!(parse("GET K"), Command::Get(value::Get { key: "K".into() }));
        assert_eq!(parse("Exit"), Command::Quit(help::Quit));
        assert_eq!(parse("help set"), Command::Help(help::Help));
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
        assert_eq!(parse("CHECK"), Command::Check(disk::Check));
        assert_eq!(
            parse("repair"),
            Command::Repair(disk::Repair {
                accept_missing: false
            })
        );
        assert_eq!(
            parse("repair --accept-missing"),
            Command::Repair(disk::Repair {
                accept_missing: true
            })
        );
    }

    #[test]
    fn transfer_arguments() {
        assert_eq!(
            parse("import data.json"),
            Command::Import(dataset::Import {
                file: "data.json".into(),
                format: None
            })
        );
        assert_eq!(
            parse("export --format csv out.txt"),
            Command::Export(dataset::Export {
                file: "out.txt".into(),
                format: Some(Format::Csv)
            })
        );
        assert_eq!(
            parse("export out.txt --format=NDJSON"),
            Command::Export(dataset::Export {
                file: "out.txt".into(),
                format: Some(Format::JsonLines)
            })
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

    #[test]
    fn the_registry_is_consistent() {
        // Names, aliases and synonyms are all distinct.
        let mut names = std::collections::HashSet::new();
        for spec in COMMANDS {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(names.insert(*name), "{name} twice");
            }
        }
        for spec in COMMANDS {
            for (synonym, suggestion) in spec.synonyms {
                assert!(names.insert(*synonym), "{synonym} twice");
                let first = suggestion.split(' ').next().unwrap();
                assert_eq!(Spec::find(first).map(|s| s.name), Some(spec.name));
            }
        }
        // Each spec's parser makes a command of that spec.
        let lines = [
            "set k v",
            "get k",
            "del k",
            "exists k",
            "keys",
            "ttl k",
            "expire k 1",
            "persist k",
            "incr k",
            "count",
            "clear",
            "import f.json",
            "export f.json",
            "stats",
            "compact",
            "check",
            "repair",
            "help",
            "quit",
        ];
        assert_eq!(lines.len(), COMMANDS.len());
        for (line, spec) in lines.iter().zip(COMMANDS) {
            assert_eq!(parse(line).spec().name, spec.name, "{line}");
        }
        let writers: Vec<&str> = COMMANDS
            .iter()
            .filter(|spec| spec.writes)
            .map(|spec| spec.name)
            .collect();
        assert_eq!(
            writers,
            [
                "set", "del", "expire", "persist", "incr", "clear", "import", "compact"
            ]
        );
        let touch_nothing: Vec<&str> = COMMANDS
            .iter()
            .filter(|spec| !spec.needs_dir)
            .map(|spec| spec.name)
            .collect();
        assert_eq!(touch_nothing, ["repair", "help", "quit"]);
        assert!(parse("import f.json").spec().takes_format);
        assert!(parse("export f.json").spec().takes_format);
        assert!(!parse("get k").spec().takes_format);
    }
}
