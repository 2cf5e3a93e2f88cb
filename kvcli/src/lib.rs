//! kvcli: the offline command tool of kv.
//!
//! `kvcli [DIR] [COMMAND ARGS...]` opens a data directory (default `./kvdata`)
//! through kvcore's persistence — the format kvserver keeps in its `--data-dir` — and
//!
//! - with a command, runs it and exits: 0 done, 1 key not found, 2 error;
//! - on a terminal without one, starts a REPL ([`repl`]);
//! - from a pipe, runs one command per line ([`script`]).
//!
//! A directory that a running kvserver (or another kvcli) holds is refused before
//! anything in it is touched: kvcore's directory lock is taken first, and its error
//! names the process. `check`, and `count` as a one-shot command, only read the
//! directory (kvcore's read-only `persist::check`), so they suit a backup copy.
//!
//! The pieces: [`cmd`] holds every command, one place each — its name, arguments,
//! help, whether it writes, its parser and what it does — and the registry that
//! parsing, help, completion and suggestions read; [`command`] splits a line into
//! arguments; [`exec`] keeps the [`Session`] a [`Command`] runs in; [`transfer`]
//! streams datasets in and out; and [`repl`] and [`script`] drive sessions. `main.rs` only sets up logging and calls [`run`].

#![warn(missing_docs)]

pub mod cmd;
pub mod command;
pub mod error;
pub mod exec;
pub mod repl;
pub mod script;
pub mod transfer;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use kvcore::dataset::Format;
use kvcore::limits::Limits;
use kvcore::persist::Fsync;

pub use cmd::{Command, Place};
pub use error::Error;
pub use exec::{Outcome, Session};

/// The data directory used when none is named.
pub const DEFAULT_DIR: &str = "./kvdata";

/// kvcli's own command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kvcli",
    version,
    about = "Offline REPL and scriptable commands over a kv data directory.",
    long_about = "Offline REPL and scriptable commands over a kv data directory \
                  (the format kvserver keeps in its --data-dir).\n\n\
                  With a COMMAND: run it and exit. Without one: a REPL on a terminal, \
                  or one command per line from a pipe.",
    max_term_width = 100
)]
pub struct Args {
    /// Dataset format for import and export: json, jsonl or csv [default: by the
    /// file's extension].
    #[arg(long, value_name = "F", value_parser = command::parse_format)]
    pub format: Option<Format>,

    /// Longest key set, incr and import accept, in bytes; kvserver's flag of the same
    /// name (and variable) sets its own.
    #[arg(long, value_name = "N", env = "KV_MAX_KEY_BYTES",
          default_value_t = kvcore::limits::DEFAULT_MAX_KEY_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_key_bytes: usize,

    /// Largest value set and import accept, in bytes of compact JSON; kvserver's flag
    /// of the same name (and variable) sets its own.
    #[arg(long, value_name = "N", env = "KV_MAX_VALUE_BYTES",
          default_value_t = kvcore::limits::DEFAULT_MAX_VALUE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_value_bytes: usize,

    /// The data directory [default: ./kvdata]. A command that writes, the REPL or a
    /// script creates it if missing. A first argument that is a command name and not
    /// an existing path is taken as the command: `kvcli count` counts ./kvdata.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The command and its arguments (see Commands below).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

impl Args {
    /// Parses the process's arguments, with the command list in `--help`; exits on
    /// `--help`, `--version` or a bad flag (status 2).
    pub fn parse_with_help() -> Args {
        let matches = Args::command()
            .after_help(cmd::help_text(Place::CommandLine))
            .get_matches();
        Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The key and value rules the flags ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        }
    }

    /// The data directory and the command words, telling a command name given in
    /// the directory's place (`kvcli get k`) from a directory.
    pub fn resolve(&self) -> (PathBuf, Vec<String>) {
        match &self.dir {
            Some(dir) if is_command_name(dir) && !dir.exists() => {
                let mut words = vec![dir.to_string_lossy().into_owned()];
                words.extend(self.command.iter().cloned());
                (PathBuf::from(DEFAULT_DIR), words)
            }
            Some(dir) => (dir.clone(), self.command.clone()),
            None => (PathBuf::from(DEFAULT_DIR), Vec::new()),
        }
    }
}

fn is_command_name(path: &Path) -> bool {
    let Some(name) = path.to_str() else {
        return false;
    };
    cmd::Spec::find(name).is_some()
}

/// How kvcli ends: its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: done.
    Done,
    /// 1: the key a one-shot command was about is not there.
    NotFound,
    /// 2: an error (the message went to stderr), or a script line failed.
    Failed,
}

impl Status {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::NotFound => 1,
            Status::Failed => 2,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// Runs kvcli: one command, a REPL or a script, as [`Args`] and the terminal say.
pub fn run(args: &Args) -> Status {
    let (dir, words) = args.resolve();
    let progress = io::stderr().is_terminal();
    if !words.is_empty() {
        return one_shot(&dir, &words, args, progress);
    }
    let interactive = io::stdin().is_terminal();
    // The REPL makes every command durable before the next prompt; a script syncs at
    // its end (and about once a second), so a long script is not an fsync per line.
    let fsync = if interactive {
        Fsync::Always
    } else {
        Fsync::EverySec
    };
    let mut session = Session::new(&dir, fsync)
        .progress(progress)
        .default_format(args.format)
        .limits(args.limits())
        .place(if interactive {
            Place::Repl
        } else {
            Place::Script
        });
    // Open now, so that a held directory is refused before the first command. A
    // damaged one (or one missing files) stays closed: `repair` works on it, and
    // other commands report it.
    match session.open() {
        Ok(_) => {}
        Err(Error::Store(kvcore::Error::Corrupt { .. } | kvcore::Error::MissingFiles { .. }))
            if !interactive => {}
        Err(
            e @ Error::Store(kvcore::Error::Corrupt { .. } | kvcore::Error::MissingFiles { .. }),
        ) => eprintln!("error: {e}"),
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Failed;
        }
    }
    if interactive {
        if let Ok(store) = session.open() {
            use kvcore::Store;
            println!(
                "kvcli {}: {} ({} keys). Type help for the commands; quit or Ctrl-D leaves.",
                env!("CARGO_PKG_VERSION"),
                dir.display(),
                store.len()
            );
        }
        let history = repl::history_path();
        repl::run(&mut session, history.as_deref())
    } else {
        let stdin = io::stdin();
        let stdout = io::stdout();
        let stderr = io::stderr();
        script::run(
            &mut session,
            stdin.lock(),
            &mut stdout.lock(),
            &mut stderr.lock(),
        )
    }
}

/// Runs one command given on kvcli's command line.
fn one_shot(dir: &Path, words: &[String], args: &Args, progress: bool) -> Status {
    let format = args.format;
    let fail = |e: Error| {
        if !e.is_broken_pipe() {
            eprintln!("error: {e}");
            return Status::Failed;
        }
        Status::Done
    };
    let cmd = match Command::from_args(words) {
        Ok(cmd) => cmd,
        Err(e) => return fail(e),
    };
    let spec = cmd.spec();
    if format.is_some() && !spec.takes_format {
        return fail(Error::Usage(
            "--format applies only to import and export".into(),
        ));
    }
    if spec.needs_dir && !spec.writes && !dir.exists() {
        return fail(Error::NoDir(dir.to_path_buf()));
    }
    let mut session = Session::new(dir, Fsync::Always)
        .progress(progress)
        .default_format(format)
        .limits(args.limits())
        .stdin_free(true);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = session.execute(&cmd, &mut out);
    let flushed = out.flush().map_err(Error::Output);
    let closed = session.close();
    match result.and_then(|o| flushed.and(closed).map(|()| o)) {
        Ok(Outcome::Done | Outcome::Quit) => Status::Done,
        Ok(Outcome::NotFound(key)) => {
            if let Some(key) = key {
                eprintln!("not found: {key}");
            }
            Status::NotFound
        }
        Err(e) => fail(e),
    }
}
