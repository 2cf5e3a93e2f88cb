//! The interactive REPL: rustyline line editing, history and tab completion.
//!
//! The prompt is `kv> `. Each line is one command, run as in a script; results go to
//! stdout, `error: ...` and `not found: KEY` to stderr. `quit`, `exit` or Ctrl-D leave;
//! Ctrl-C abandons the line being edited.
//!
//! History is kept across sessions in the file [`history_path`] names, saved after
//! every line (lines starting with a space are not recorded, as in bash). Tab
//! completes command names at the start of a line, key names of the open store after
//! a command that takes a key (the first [`MAX_KEY_COMPLETIONS`] that start with what
//! was typed, quoted when they need it), and the `ttl` keyword of `set`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use kvcore::{Bytes, Pattern, PersistentStore, Store};

use crate::cmd::{COMMANDS, Command, Spec};
use crate::command::split;
use crate::exec::{Outcome, Session};
use crate::{Error, Status};

/// The prompt.
pub const PROMPT: &str = "kv> ";

/// Where the REPL keeps its history: `$KVCLI_HISTORY` if set (empty: keep none),
/// else `$XDG_STATE_HOME/kvcli/history`, else `$HOME/.kvcli_history`.
pub fn history_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = std::env::var_os("KVCLI_HISTORY") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    if let Some(state) = var("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return Some(state.join("kvcli").join("history"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".kvcli_history"))
}

/// Runs the REPL until `quit` or end of input. Returns [`Status::Done`] unless the
/// terminal itself failed.
pub fn run(session: &mut Session, history: Option<&Path>) -> Status {
    let config = Config::builder()
        .max_history_size(1000)
        .and_then(|c| c.history_ignore_dups(true))
        .map(|c| {
            c.history_ignore_space(true)
                .completion_type(CompletionType::List)
                .build()
        });
    let editor = config
        .map_err(|e| e.to_string())
        .and_then(|config| Editor::with_config(config).map_err(|e| e.to_string()));
    let mut editor: Editor<CommandHelper, DefaultHistory> = match editor {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return Status::Failed;
        }
    };
    editor.set_helper(Some(CommandHelper::default()));
    if let Some(path) = history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("warning: cannot read history {}: {e}", path.display()),
        }
    }
    let mut history_warned = false;

    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.set_store(session.store());
        }
        let read = editor.readline(PROMPT);
        // The helper's handle goes before the line runs, so that `repair` can close
        // the store.
        if let Some(helper) = editor.helper_mut() {
            helper.set_store(None);
        }
        let line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading the terminal: {e}");
                let _ = session.close();
                return Status::Failed;
            }
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
            if let Some(path) = history
                && let Err(e) = save_history(&mut editor, path)
                && !history_warned
            {
                eprintln!("warning: cannot save history to {}: {e}", path.display());
                history_warned = true;
            }
        }
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let result = match Command::parse_line(&line) {
            Ok(Some(cmd)) => session.execute(&cmd, &mut out),
            Ok(None) => Ok(Outcome::Done),
            Err(e) => Err(e),
        };
        let flushed = out.flush();
        drop(out);
        match result.and_then(|o| flushed.map(|()| o).map_err(Error::Output)) {
            Ok(Outcome::Done | Outcome::NotFound(None)) => {}
            Ok(Outcome::NotFound(Some(key))) => eprintln!("not found: {key}"),
            Ok(Outcome::Quit) => break,
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Err(e) = session.close() {
        eprintln!("error: {e}");
        return Status::Failed;
    }
    Status::Done
}

fn save_history(
    editor: &mut Editor<CommandHelper, DefaultHistory>,
    path: &Path,
) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    editor.save_history(path).map_err(|e| e.to_string())
}

/// Completes command names, key names after a command that takes a key, and the
/// `ttl` keyword after `set KEY VALUE`.
///
/// Key names come from the open store, which the REPL lends the helper while a line
/// is being edited and takes back before the line runs: a handle keeps the directory
/// locked, and `repair` must be able to close it.
#[derive(Debug, Default)]
pub struct CommandHelper {
    store: Option<PersistentStore<Bytes>>,
}

impl CommandHelper {
    /// Lends the helper the store to complete key names from (`None`: none).
    pub fn set_store(&mut self, store: Option<PersistentStore<Bytes>>) {
        self.store = store;
    }

    /// Up to [`MAX_KEY_COMPLETIONS`] live keys starting with `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        match &self.store {
            Some(store) => keys_with_prefix(store, prefix),
            None => Vec::new(),
        }
    }
}

/// The most key names one Tab offers.
pub const MAX_KEY_COMPLETIONS: usize = 100;

/// Up to [`MAX_KEY_COMPLETIONS`] live keys of `store` starting with `prefix`, sorted:
/// one scan page, so that a Tab costs one bounded scan however large the store.
///
/// ```
/// use kvcore::{Bytes, SetOptions, Store, StoreBuilder};
/// use kvcli::repl::keys_with_prefix;
///
/// let store = StoreBuilder::new().build::<Bytes>()?;
/// for key in ["user:2", "user:1", "u*x", "other"] {
///     store.set(key, Bytes::from("v"), SetOptions::new())?;
/// }
/// assert_eq!(keys_with_prefix(&store, "user:"), ["user:1", "user:2"]);
/// assert_eq!(keys_with_prefix(&store, "u*"), ["u*x"]);
/// # Ok::<(), kvcore::Error>(())
/// ```
pub fn keys_with_prefix(store: &dyn Store<Bytes>, prefix: &str) -> Vec<String> {
    let mut glob = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '$' | '?' | '[' | ']' | '\\') {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob.push('*');
    let Ok(pattern) = Pattern::new(&glob) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = match store.scan(Some(&pattern), None, MAX_KEY_COMPLETIONS) {
        Ok(page) => page.items.into_iter().map(|(key, _)| key).collect(),
        Err(_) => Vec::new(),
    };
    keys.sort_unstable();
    keys
}

/// Where the argument being typed at the end of `before` starts, and its text so far
/// with quotes removed: the same rules as [`split`], for one unfinished argument.
fn last_argument(before: &str) -> (usize, String) {
    let mut start = before.len();
    let mut text = String::new();
    let mut quote = None;
    let mut in_arg = false;
    let mut chars = before.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('"') if c == '"' => quote = None,
            Some('"') if c == '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, 'r')) => text.push('\r'),
                Some((_, e @ ('"' | '\\'))) => text.push(e),
                Some((_, e)) => {
                    text.push('\\');
                    text.push(e);
                }
                None => {}
            },
            Some(_) => text.push(c),
            None if c.is_whitespace() => {
                in_arg = false;
                start = before.len();
                text.clear();
            }
            None => {
                if !in_arg {
                    in_arg = true;
                    start = i;
                }
                match c {
                    '"' | '\'' => quote = Some(c),
                    c => text.push(c),
                }
            }
        }
    }
    (start, text)
}

/// `key` written so that [`split`] reads it back as one argument: as it is when it
/// can be, else in single quotes, else in double quotes with escapes.
///
/// ```
/// use kvcli::repl::quote_argument;
///
/// assert_eq!(quote_argument("user:1"), "user:1");
/// assert_eq!(quote_argument("a b"), "'a b'");
/// assert_eq!(quote_argument("it's here"), r#""it's here""#);
/// assert_eq!(quote_argument("{x"), "'{x'");
/// ```
pub fn quote_argument(key: &str) -> String {
    let plain = !key.is_empty()
        && !key.starts_with(['{', '[', '#'])
        && !key.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if plain {
        return key.to_string();
    }
    if !key.contains('\'') && !key.contains(['\n', '\r', '\t']) {
        return format!("'{key}'");
    }
    let mut out = String::from("\"");
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The completions of the argument ending at `pos` in `line`: where it starts, and
/// the candidates, each followed by a space. `keys(prefix)` lists the key names to
/// offer after a command that takes a key.
///
/// ```
/// use kvcli::repl::completions;
///
/// let none = |_: &str| Vec::new();
/// assert_eq!(completions("ex", 2, &none), (0, vec!["exists ".to_string(), "expire ".to_string(), "export ".to_string()]));
/// assert_eq!(completions("  G", 3, &none), (2, vec!["get ".to_string()]));
/// assert_eq!(completions("set k v t", 9, &none), (8, vec!["ttl ".to_string()]));
///
/// let keys = |prefix: &str| {
///     ["user:1", "user 2"].iter().filter(|k| k.starts_with(prefix)).map(|k| k.to_string()).collect()
/// };
/// assert_eq!(completions("get us", 6, &keys), (4, vec!["user:1 ".to_string(), "'user 2' ".to_string()]));
/// assert_eq!(completions("DEL 'user ", 10, &keys), (4, vec!["'user 2' ".to_string()]));
/// assert_eq!(completions("count u", 7, &keys).1, Vec::<String>::new());
/// assert_eq!(completions("get user:1 u", 12, &keys).1, Vec::<String>::new());
/// ```
pub fn completions(
    line: &str,
    pos: usize,
    keys: &dyn Fn(&str) -> Vec<String>,
) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let (start, word) = last_argument(before);
    let earlier = split(&before[..start]).unwrap_or_default();
    let lower = word.to_ascii_lowercase();
    let candidates: Vec<String> = match earlier.as_slice() {
        [] => COMMANDS
            .iter()
            .map(|info| info.name)
            .filter(|name| name.starts_with(&lower))
            .map(|name| format!("{name} "))
            .collect(),
        [cmd] if takes_key(cmd) => keys(&word)
            .iter()
            .map(|key| format!("{} ", quote_argument(key)))
            .collect(),
        [cmd, _, _] if cmd.eq_ignore_ascii_case("set") && "ttl".starts_with(&lower) => {
            vec!["ttl ".to_string()]
        }
        _ => Vec::new(),
    };
    (start, candidates)
}

/// Whether the command named `name` takes a key as its first argument.
fn takes_key(name: &str) -> bool {
    Spec::find(name).is_some_and(Spec::takes_key)
}

impl Completer for CommandHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = completions(line, pos, &|prefix| self.keys(prefix));
        let pairs = words
            .into_iter()
            .map(|word| Pair {
                display: word.trim_end().to_string(),
                replacement: word,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for CommandHelper {
    type Hint = String;
}

impl Highlighter for CommandHelper {}

impl Validator for CommandHelper {}

impl Helper for CommandHelper {}
