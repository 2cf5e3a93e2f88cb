//! The one error type of kvcore.
//!
//! Every fallible operation returns [`Result<T>`](crate::Result). The enum is
//! `#[non_exhaustive]` so new failure kinds can be added without breaking callers;
//! match the variants you handle and keep a catch-all arm.

use std::path::PathBuf;

/// What went wrong, with a message that says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A write was sent to a store built read-only.
    #[error(
        "the store is read-only: build it with `StoreBuilder::build` instead of `build_read_only` to accept writes"
    )]
    ReadOnly,

    /// `incr` met a value that does not hold an integer.
    #[error("the value of key {key:?} is not an integer: only integer values can be incremented")]
    NotAnInteger {
        /// The key whose value is not an integer.
        key: String,
    },

    /// `incr` would have carried the value outside the range of `i64`.
    #[error("incrementing key {key:?} by {by} would overflow a 64-bit signed integer")]
    Overflow {
        /// The key being incremented.
        key: String,
        /// The increment that was asked for.
        by: i64,
    },

    /// The value type cannot represent an integer, so `incr` cannot create one.
    #[error("this store's value type cannot hold integers, so `incr` is not available")]
    IncrUnsupported,

    /// A glob pattern could not be parsed.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: String,
    },

    /// A scan cursor was not one this store issued.
    #[error("invalid cursor {cursor:?}: pass back exactly the cursor a previous scan returned")]
    InvalidCursor {
        /// The cursor as given.
        cursor: String,
    },

    /// Text that should have been one JSON value was not.
    #[error("invalid JSON: {reason}")]
    InvalidJson {
        /// What the parser said.
        reason: String,
    },

    /// A scan asked for zero items per page.
    #[error("a scan limit must be at least 1")]
    InvalidLimit,

    /// A time-to-live was zero or too long to represent.
    #[error("invalid time-to-live {ttl:?}: it must be longer than zero and at most ten years")]
    InvalidTtl {
        /// The duration that was refused.
        ttl: std::time::Duration,
    },

    /// Text that should have been a TTL in seconds was not.
    #[error(
        "{text:?} is not a TTL: give seconds, fractional allowed, from 0.001 to 315360000 (ten years)"
    )]
    InvalidSeconds {
        /// The text as given.
        text: String,
    },
    /// An all-or-nothing batch asked for more keys than the store can ever hold.
    #[error(
        "a batch of {requested} new keys cannot fit in a store with capacity {capacity}: split the batch or raise the capacity"
    )]
    BatchTooLarge {
        /// Keys in the batch.
        requested: usize,
        /// The store's capacity.
        capacity: usize,
    },

    /// A value heavier than a weight-bounded store's whole bound: it could never be
    /// held, so the write was refused and nothing changed.
    #[error(
        "the entry for key {key:?} weighs {weight}, more than the store's whole max_weight of {max_weight}: store a smaller value or raise max_weight"
    )]
    TooHeavy {
        /// The key written.
        key: String,
        /// The entry's weight, as the store's weigher gave it.
        weight: u64,
        /// The store's bound.
        max_weight: u64,
    },

    /// An all-or-nothing batch weighs more than a weight-bounded store can ever hold.
    #[error(
        "a batch weighing {weight} cannot fit in a store with max_weight {max_weight}: split the batch or raise max_weight"
    )]
    BatchTooHeavy {
        /// The batch's total weight.
        weight: u64,
        /// The store's bound.
        max_weight: u64,
    },

    /// The store was configured inconsistently.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The journal cannot be written (a full disk, or an I/O error): the write was
    /// refused and changed nothing. Reads keep working, and the store takes writes
    /// again by itself once its directory can be written (see the `persist` module,
    /// "When the disk fails").
    #[error(
        "the write was not applied: {dir} cannot be written ({reason}); writes are refused until it can, reads keep working"
    )]
    JournalUnavailable {
        /// The data directory.
        dir: PathBuf,
        /// The operating system's error kind: `StorageFull` for a full disk.
        kind: std::io::ErrorKind,
        /// What failed, as the operating system put it.
        reason: String,
    },
    /// A data directory is already open in another process.
    #[error(
        "data directory {path} is in use{}; stop that process or choose another directory",
        match pid { Some(pid) => format!(" by process {pid}"), None => String::new() }
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The process holding it, when known.
        pid: Option<u32>,
    },

    /// A persisted file failed its integrity checks.
    #[error("{path}: corrupt at byte offset {offset}: {reason}; {hint}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad data starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
        /// What to do about it.
        hint: String,
    },

    /// A data directory lacks files it must hold: ones its `MANIFEST` lists, or the
    /// `MANIFEST` itself. Nothing was changed.
    #[error(
        "data directory {dir} is missing {}; {hint}",
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    MissingFiles {
        /// The directory.
        dir: PathBuf,
        /// The files that are not there (at most a few dozen are named).
        files: Vec<PathBuf>,
        /// What to do about it.
        hint: String,
    },

    /// A dataset record could not be read.
    #[error("{source_name}: line {line}: {reason}")]
    Dataset {
        /// The file or stream being read.
        source_name: String,
        /// The 1-based line where the bad record starts.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Dataset`]: the record of `source_name` starting on `line` is refused
    /// because of `reason`.
    ///
    /// ```
    /// let err = kvcore::Error::dataset("users.csv", 7, "keys must not be empty");
    /// assert_eq!(err.to_string(), "users.csv: line 7: keys must not be empty");
    /// ```
    pub fn dataset(source_name: &str, line: u64, reason: impl Into<String>) -> Error {
        Error::Dataset {
            source_name: source_name.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

impl Error {
    /// The same error again, for each caller waiting on one load: every variant with
    /// the same fields; an I/O error with its kind and message (its source chain is
    /// not kept).
    pub(crate) fn share(&self) -> Error {
        match self {
            Error::ReadOnly => Error::ReadOnly,
            Error::NotAnInteger { key } => Error::NotAnInteger { key: key.clone() },
            Error::Overflow { key, by } => Error::Overflow {
                key: key.clone(),
                by: *by,
            },
            Error::IncrUnsupported => Error::IncrUnsupported,
            Error::InvalidPattern { pattern, reason } => Error::InvalidPattern {
                pattern: pattern.clone(),
                reason: reason.clone(),
            },
            Error::InvalidCursor { cursor } => Error::InvalidCursor {
                cursor: cursor.clone(),
            },
            Error::InvalidJson { reason } => Error::InvalidJson {
                reason: reason.clone(),
            },
            Error::InvalidLimit => Error::InvalidLimit,
            Error::InvalidTtl { ttl } => Error::InvalidTtl { ttl: *ttl },
            Error::InvalidSeconds { text } => Error::InvalidSeconds { text: text.clone() },
            Error::BatchTooLarge {
                requested,
                capacity,
            } => Error::BatchTooLarge {
                requested: *requested,
                capacity: *capacity,
            },
            Error::TooHeavy {
                key,
                weight,
                max_weight,
            } => Error::TooHeavy {
                key: key.clone(),
                weight: *weight,
                max_weight: *max_weight,
            },
            Error::BatchTooHeavy { weight, max_weight } => Error::BatchTooHeavy {
                weight: *weight,
                max_weight: *max_weight,
            },
            Error::Config(reason) => Error::Config(reason.clone()),
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::JournalUnavailable { dir, kind, reason } => Error::JournalUnavailable {
                dir: dir.clone(),
                kind: *kind,
                reason: reason.clone(),
            },
            Error::Locked { path, pid } => Error::Locked {
                path: path.clone(),
                pid: *pid,
            },
            Error::Corrupt {
                path,
                offset,
                reason,
                hint,
            } => Error::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
                hint: hint.clone(),
            },
            Error::MissingFiles { dir, files, hint } => Error::MissingFiles {
                dir: dir.clone(),
                files: files.clone(),
                hint: hint.clone(),
            },
            Error::Dataset {
                source_name,
                line,
                reason,
            } => Error::Dataset {
                source_name: source_name.clone(),
                line: *line,
                reason: reason.clone(),
            },
        }
    }
}

/// The result type of kvcore operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
