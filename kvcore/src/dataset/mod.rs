//! Dataset codecs: reading and writing files of `key → JSON value` records.
//!
//! A dataset is what `kvserver --load` preloads and what `kvcli` imports and exports:
//! a sequence of records, each a string key and a [`JsonText`] value. Three
//! [`Format`]s are understood:
//!
//! - **JSON** (`.json`): one top-level object, one entry per record. Duplicate keys
//!   are passed on in file order (a store fed from them keeps the last).
//!
//!   ```json
//!   {"fr": "Paris", "pi": 3.14, "tags": ["a", "b"]}
//!   ```
//!
//! - **JSON Lines** (`.jsonl`, also `.ndjson`): one object with exactly the fields
//!   `key` (a string) and `value` (any JSON) per line. Blank lines are skipped and
//!   lines may end in `\r\n`.
//!
//!   ```json
//!   {"key": "fr", "value": "Paris"}
//!   {"key": "pi", "value": 3.14}
//!   ```
//!
//! - **CSV** (`.csv`): a header row `key,value`, then one row of exactly two fields per
//!   record, quoted as usual when a field holds commas, quotes or line breaks.
//!
//!   ```text
//!   key,value
//!   fr,Paris
//!   "a,b","she said ""hi"""
//!   ```
//!
//! # The CSV string rule
//!
//! CSV has no types, so a value read from CSV is always a JSON **string** holding the
//! field's text (`fr,Paris` gives the value `"Paris"`, and `n,42` gives `"42"`, not
//! `42`). When writing CSV, a string value is written as its content and any other
//! value as its compact JSON text, so a CSV round trip turns non-string values into
//! strings. JSON and JSON Lines round-trip every value exactly.
//!
//! # Streaming
//!
//! [`read`] never holds more than one record (plus a small read buffer) in memory: the
//! JSON object is parsed entry by entry, JSON Lines line by line and CSV row by row,
//! and each record is handed to the caller's closure as soon as it is parsed. A file
//! of any size can therefore be loaded, and a bad record is reported without reading
//! the rest of the file. [`Writer`] streams the same way.
//!
//! # Errors and line numbers
//!
//! A bad record stops the read with [`Error::Dataset`], which names the source and the
//! 1-based line of the problem: for JSON Lines and CSV the line where the bad record
//! starts (a CSV record with quoted line breaks spans several lines), for JSON the
//! line where the parser found the problem. Blank lines are counted, and lines may end
//! in `\n` or `\r\n`. A CSV quoted field that is never closed is an error too, at the
//! line of its record, not a value running to the end of the file. I/O failures are [`Error::Io`] with the
//! source name as the path. An error returned by the caller's closure stops the read
//! and comes back unchanged.
//!
//! The closure is also told each record's line — for JSON the line of its key — so
//! that a caller refusing a record for reasons of its own can name the place, with
//! [`Error::dataset`] for instance.
//!
//! ```
//! use kvcore::dataset::{self, Format};
//!
//! let data = "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\"}\n";
//! let err = dataset::read(data.as_bytes(), Format::JsonLines, "data.jsonl", |_, _, _| Ok(()))
//!     .unwrap_err();
//! assert!(matches!(err, kvcore::Error::Dataset { line: 2, .. }), "{err}");
//! ```

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Error, JsonText, Result};

mod csv;
mod json;
mod jsonl;
mod writer;

pub use self::writer::Writer;

/// A dataset file format.
///
/// ```
/// use kvcore::dataset::Format;
/// use std::path::Path;
///
/// assert_eq!(Format::from_path(Path::new("data/cities.JSONL")), Some(Format::JsonLines));
/// assert_eq!("csv".parse::<Format>()?, Format::Csv);
/// assert_eq!(Format::Json.to_string(), "json");
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object `{"key": value, ...}` (`.json`).
    Json,
    /// One `{"key": "...", "value": ...}` object per line (`.jsonl`, `.ndjson`).
    JsonLines,
    /// A `key,value` header, then one row per record; values are strings (`.csv`).
    Csv,
}

impl Format {
    /// The format named by a file name's extension: `.json`, `.jsonl` (also `.ndjson`)
    /// or `.csv`, in any letter case; `None` for anything else.
    ///
    /// ```
    /// use kvcore::dataset::Format;
    /// use std::path::Path;
    ///
    /// assert_eq!(Format::from_path(Path::new("x.json")), Some(Format::Json));
    /// assert_eq!(Format::from_path(Path::new("x.ndjson")), Some(Format::JsonLines));
    /// assert_eq!(Format::from_path(Path::new("x.Csv")), Some(Format::Csv));
    /// assert_eq!(Format::from_path(Path::new("x.txt")), None);
    /// assert_eq!(Format::from_path(Path::new("json")), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// Parses `json`, `jsonl` (also `jsonlines`, `ndjson`) or `csv`, in any letter case.
/// Anything else is [`Error::Config`] listing the choices.
///
/// ```
/// use kvcore::dataset::Format;
///
/// assert_eq!("ndjson".parse::<Format>()?, Format::JsonLines);
/// assert!(matches!("yaml".parse::<Format>(), Err(kvcore::Error::Config(_))));
/// # Ok::<(), kvcore::Error>(())
/// ```
impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "jsonl" | "jsonlines" | "ndjson" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            _ => Err(Error::Config(format!(
                "unknown dataset format {s:?}: choose json, jsonl (also jsonlines, ndjson) or csv"
            ))),
        }
    }
}

/// Writes `json`, `jsonl` or `csv`, the names [`FromStr`] accepts.
impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::JsonLines => "jsonl",
            Format::Csv => "csv",
        })
    }
}

/// Streams the records of `reader` to `each(key, value, line)`, in file order, and
/// returns how many records were read. `line` is the 1-based line where the record
/// starts (for JSON, the line of its key).
///
/// The reader is buffered internally; pass it as is. At most one record is held in
/// memory at a time (see the [module docs](self)).
///
/// # Errors
///
/// - [`Error::Dataset`] at the first bad record, naming `source_name` and the 1-based
///   line where that record starts (for JSON: the line where the parser found the
///   problem). Records before it have already been passed to `each`.
/// - [`Error::Io`] with `source_name` as the path when reading fails.
/// - Whatever `each` returns: an error from `each` stops the read and comes back
///   unchanged.
///
/// ```
/// use kvcore::dataset::{self, Format};
///
/// let data = br#"{"key": "fr", "value": "Paris"}
///
/// {"key": "pi", "value": [3, 14]}
/// "#;
/// let mut records = Vec::new();
/// let n = dataset::read(&data[..], Format::JsonLines, "cities.jsonl", |key, value, line| {
///     records.push((key, value.as_str().to_string(), line));
///     Ok(())
/// })?;
/// assert_eq!(n, 2);
/// assert_eq!(
///     records,
///     [("fr".into(), r#""Paris""#.into(), 1), ("pi".into(), "[3,14]".into(), 3)]
/// );
///
/// // CSV values are always JSON strings.
/// let csv = "key,value\nanswer,42\n";
/// dataset::read(csv.as_bytes(), Format::Csv, "answers.csv", |key, value, line| {
///     assert_eq!((key.as_str(), value.as_str(), line), ("answer", r#""42""#, 2));
///     Ok(())
/// })?;
///
/// // A record the caller refuses, named by its line.
/// let err = dataset::read(csv.as_bytes(), Format::Csv, "answers.csv", |_, _, line| {
///     Err(kvcore::Error::dataset("answers.csv", line, "no answers wanted"))
/// })
/// .unwrap_err();
/// assert_eq!(err.to_string(), "answers.csv: line 2: no answers wanted");
/// # Ok::<(), kvcore::Error>(())
/// ```
pub fn read<R: Read>(
    reader: R,
    format: Format,
    source_name: &str,
    mut each: impl FnMut(String, JsonText, u64) -> Result<()>,
) -> Result<u64> {
    match format {
        Format::Json => json::read(reader, source_name, &mut each),
        Format::JsonLines => jsonl::read(reader, source_name, &mut each),
        Format::Csv => self::csv::read(reader, source_name, &mut each),
    }
}

/// The caller's record callback, as the format readers take it.
type Each<'a> = dyn FnMut(String, JsonText, u64) -> Result<()> + 'a;

fn dataset_error(source_name: &str, line: u64, reason: impl Into<String>) -> Error {
    Error::dataset(source_name, line, reason)
}

fn io_error(path: &str, source: io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(path),
        source,
    }
}

/// serde_json's message without its " at line L column C" suffix, with the column.
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.column() > 0 => format!("{message} (column {})", e.column()),
        Some(message) => message.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_reason_drops_the_position() {
        let e = serde_json::from_str::<serde_json::Value>("[1,\n  x]").unwrap_err();
        assert_eq!(e.line(), 2);
        assert_eq!(serde_reason(&e), "expected value (column 3)");
    }
}
