//! The one error type of kvcli: what a command could not do, said so that the reader
//! knows what to do next.

use std::io;
use std::path::PathBuf;

/// Why a command failed. Every variant means exit status 2 for a one-shot command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line could not be parsed; the message shows the usage.
    #[error("{0}")]
    Usage(String),

    /// The store refused: a locked or damaged directory, a bad pattern, a value that
    /// is not an integer, a bad dataset record...
    #[error(transparent)]
    Store(#[from] kvcore::Error),

    /// A key or value that kvcore's rules ([`kvcore::limits`]) refuse, the rules
    /// kvserver applies too; nothing was written.
    #[error("{0}{hint}", hint = limit_hint(.0))]
    Refused(#[from] kvcore::limits::LimitError),

    /// A command that only reads was pointed at a directory that does not exist.
    #[error(
        "data directory {} does not exist: check the path (a command that writes creates it)",
        .0.display()
    )]
    NoDir(PathBuf),

    /// Reading or writing a file named on the command line failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// An import stopped: at a bad record, found before anything was written, or at
    /// a failed write, when the batches before it are imported.
    #[error("{source} ({})", imported_before(*.imported))]
    Import {
        /// What was wrong.
        #[source]
        source: kvcore::Error,
        /// How many records were written before the failure.
        imported: u64,
    },

    /// Writing to standard output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

fn limit_hint(e: &kvcore::limits::LimitError) -> &'static str {
    use kvcore::limits::LimitError;
    match e {
        LimitError::KeyTooLong { .. } => {
            " (kvserver's limit too; both take --max-key-bytes to change it)"
        }
        LimitError::ValueTooLarge { .. } => {
            " (kvserver's limit too; both take --max-value-bytes to change it)"
        }
        _ => "",
    }
}

fn imported_before(imported: u64) -> String {
    match imported {
        0 => "nothing was imported".into(),
        1 => "the 1 record before it was imported".into(),
        n => format!("the {n} records before it were imported"),
    }
}

impl Error {
    /// Whether this is a closed standard output (`kvcli DIR keys | head`): not worth a
    /// message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
