//! The interactive REPL: rustyline line editing, history and tab completion.
//!
//! The prompt is `kv> `. Each line is one command, run as in a script; results go to
//! stdout, `error: ...` and `not found: KEY` to stderr. `quit`, `exit` or Ctrl-D leave;
//! Ctrl-C abandons the line being edited.
//!
//! History is kept across sessions in the file [`history_path`] names, saved after
//! every line (lines starting with a space are not recorded, as in bash). Tab
//! completes command names at the start of a line, and the `ttl` keyword of `set`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::command::{COMMANDS, Command, split};
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
    editor.set_helper(Some(CommandHelper));
    if let Some(path) = history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("warning: cannot read history {}: {e}", path.display()),
        }
    }
    let mut history_warned = false;

    loop {
        let line = match editor.readline(PROMPT) {
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

/// Completes command names, and the `ttl` keyword after `set KEY VALUE`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandHelper;

/// The completions of the word ending at `pos` in `line`: where it starts, and the
/// candidates.
///
/// ```
/// use kvcli::repl::completions;
///
/// assert_eq!(completions("ex", 2), (0, vec!["exists ".to_string(), "expire ".to_string(), "export ".to_string()]));
/// assert_eq!(completions("  G", 3), (2, vec!["get ".to_string()]));
/// assert_eq!(completions("set k v t", 9), (8, vec!["ttl ".to_string()]));
/// assert_eq!(completions("get k", 5).1, Vec::<String>::new());
/// ```
pub fn completions(line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let word = before[start..].to_ascii_lowercase();
    let earlier = split(&before[..start]).unwrap_or_default();
    let candidates: Vec<String> = match earlier.as_slice() {
        [] => COMMANDS
            .iter()
            .map(|info| info.name)
            .filter(|name| name.starts_with(&word))
            .map(|name| format!("{name} "))
            .collect(),
        [cmd, _, _] if cmd.eq_ignore_ascii_case("set") && "ttl".starts_with(&word) => {
            vec!["ttl ".to_string()]
        }
        _ => Vec::new(),
    };
    (start, candidates)
}

impl Completer for CommandHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = completions(line, pos);
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
