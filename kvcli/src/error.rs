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

    /// An import stopped at a bad record; the records before it were imported.
    #[error("{source} (the {imported} records before it were imported)")]
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

impl Error {
    /// Whether this is a closed standard output (`kvcli DIR keys | head`): not worth a
    /// message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
