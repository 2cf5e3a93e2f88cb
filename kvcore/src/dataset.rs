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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{Error, JsonText, Result};

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
        Format::Json => read_json(reader, source_name, &mut each),
        Format::JsonLines => read_json_lines(reader, source_name, &mut each),
        Format::Csv => read_csv(reader, source_name, &mut each),
    }
}

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

// ---------------------------------------------------------------- JSON

const JSON_SHAPE: &str = "a .json dataset must be one JSON object of key: value pairs";

/// Counts the line breaks read through it, so that the JSON reader knows its line.
/// serde_json reads a byte at a time (with one byte of look-ahead), so the count is
/// the line the parser has reached.
struct LineCounter<R> {
    inner: R,
    breaks: Rc<Cell<u64>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let breaks = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.breaks.set(self.breaks.get() + breaks);
        Ok(n)
    }
}

/// Visits the top-level object, handing each entry to `each` as it is parsed.
struct ObjectVisitor<'a, 'b> {
    each: &'a mut Each<'b>,
    /// Line breaks read so far.
    breaks: Rc<Cell<u64>>,
    /// Set once the top-level value turned out to be an object.
    entered: &'a mut bool,
    /// The error `each` returned, carried past serde.
    stopped: &'a mut Option<Error>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of key: value pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<u64, A::Error> {
        *self.entered = true;
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            let line = self.breaks.get() + 1;
            let raw = map.next_value::<Box<RawValue>>()?;
            if let Err(e) = (self.each)(key, JsonText::from_valid(raw.get()), line) {
                *self.stopped = Some(e);
                return Err(de::Error::custom("stopped by the record callback"));
            }
            count += 1;
        }
        Ok(count)
    }
}

fn read_json<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
    let breaks = Rc::new(Cell::new(0));
    let counted = LineCounter {
        inner: BufReader::new(reader),
        breaks: Rc::clone(&breaks),
    };
    let mut de = serde_json::Deserializer::from_reader(counted);
    let mut entered = false;
    let mut stopped = None;
    let visitor = ObjectVisitor {
        each,
        breaks,
        entered: &mut entered,
        stopped: &mut stopped,
    };
    let result = de
        .deserialize_map(visitor)
        .and_then(|n| de.end().map(|()| n));
    if let Some(e) = stopped {
        return Err(e);
    }
    result.map_err(|e| {
        if e.is_io() {
            return io_error(source_name, io::Error::from(e));
        }
        let reason = if entered {
            serde_reason(&e)
        } else if e.is_data() {
            JSON_SHAPE.to_string()
        } else if e.is_eof() {
            format!("{JSON_SHAPE}, but the input is empty")
        } else {
            format!("{JSON_SHAPE}: {}", serde_reason(&e))
        };
        dataset_error(source_name, e.line() as u64, reason)
    })
}

// ---------------------------------------------------------------- JSON Lines

const LINE_SHAPE: &str = r#"each line must be {"key": "...", "value": ...}"#;

/// Visits one JSON Lines object, collecting its two fields.
struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = (Option<&'de RawValue>, Option<&'de RawValue>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a JSON object {"key": "...", "value": ...}"#)
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let (mut key, mut value) = (None, None);
        while let Some(field) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let slot = match &*field {
                "key" => &mut key,
                "value" => &mut value,
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unexpected field {other:?}: {LINE_SHAPE} and nothing else"
                    )));
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field {field:?}")));
            }
            *slot = Some(map.next_value::<&'de RawValue>()?);
        }
        Ok((key, value))
    }
}

/// What kind of JSON value `raw` is, for messages.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Parses one non-blank JSON Lines line into its key and value.
fn parse_line(line: &str) -> std::result::Result<(String, JsonText), String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let (key, value) = de
        .deserialize_map(LineVisitor)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| serde_reason(&e))?;
    let key = key.ok_or_else(|| format!(r#"missing "key": {LINE_SHAPE}"#))?;
    let value = value.ok_or_else(|| format!(r#"missing "value": {LINE_SHAPE}"#))?;
    let key: String = serde_json::from_str(key.get())
        .map_err(|_| format!(r#""key" must be a JSON string, found {}"#, json_kind(key)))?;
    Ok((key, JsonText::from_valid(value.get())))
}

fn read_json_lines<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut count = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(source_name, e))?;
        if n == 0 {
            return Ok(count);
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|e| {
            dataset_error(
                source_name,
                line_no,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1),
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) =
            parse_line(line).map_err(|reason| dataset_error(source_name, line_no, reason))?;
        each(key, value, line_no)?;
        count += 1;
    }
}

// ---------------------------------------------------------------- CSV

fn csv_error(e: csv::Error, source_name: &str, line: u64) -> Error {
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("expected 2 fields (key,value), found {len}")
        }
        _ => e.to_string(),
    };
    match e.into_kind() {
        csv::ErrorKind::Io(source) => io_error(source_name, source),
        _ => dataset_error(source_name, line, reason),
    }
}

fn utf8_field<'a>(field: &'a [u8], name: &str, source_name: &str, line: u64) -> Result<&'a str> {
    std::str::from_utf8(field).map_err(|e| {
        dataset_error(
            source_name,
            line,
            format!(
                "invalid UTF-8 in the {name} field at byte {}",
                e.valid_up_to() + 1
            ),
        )
    })
}

/// Where the CSV lexer stands after the bytes seen so far. It follows the csv
/// crate's default dialect (`,` delimiter, `"` quotes doubled inside quoted fields,
/// any of `\r`, `\n`, `\r\n` ending a record), in which a quote opens a quoted field
/// only at the start of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexer {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: it closed the field, or doubles the
    /// next quote.
    QuoteInQuoted,
}

/// What [`QuoteTracker`] has seen.
#[derive(Debug)]
struct QuoteState {
    lexer: Lexer,
    /// Bytes read so far.
    offset: u64,
    /// Line breaks read so far.
    breaks: u64,
    /// The byte offset and 1-based line of the quote that opened the current quoted
    /// field.
    opened: (u64, u64),
    /// Whether the input has ended.
    eof: bool,
    /// Whether the next byte starts a record, unless it ends a blank line.
    at_record_start: bool,
    /// The byte offset and 1-based line of each record start read, and not yet
    /// passed by the csv reader, in order.
    starts: VecDeque<(u64, u64)>,
}

/// Follows the quoting of the CSV read through it, so that a quoted field the input
/// never closes — which the csv reader would take as running to the end of the file
/// — is found and reported by the line of its opening quote. It also notes where
/// records start, for [`QuoteState::record_line`].
struct QuoteTracker<R> {
    inner: R,
    state: Rc<RefCell<QuoteState>>,
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.borrow_mut();
        if n == 0 && !buf.is_empty() {
            s.eof = true;
        }
        for &b in &buf[..n] {
            s.lexer = match (s.lexer, b) {
                (Lexer::FieldStart, b'"') => {
                    s.opened = (s.offset, s.breaks + 1);
                    Lexer::Quoted
                }
                (Lexer::Quoted, b'"') => Lexer::QuoteInQuoted,
                (Lexer::Quoted, _) => Lexer::Quoted,
                (Lexer::QuoteInQuoted, b'"') => Lexer::Quoted,
                (_, b',' | b'\r' | b'\n') => Lexer::FieldStart,
                _ => Lexer::Unquoted,
            };
            let ends_line = b == b'\r' || b == b'\n';
            if s.at_record_start && !ends_line {
                let start = (s.offset, s.breaks + 1);
                s.starts.push_back(start);
            }
            s.at_record_start = ends_line && s.lexer == Lexer::FieldStart;
            if b == b'\n' {
                s.breaks += 1;
            }
            s.offset += 1;
        }
        Ok(n)
    }
}

impl QuoteState {
    /// The line of a quote that opened a field the input ended inside, if one did
    /// and the reader has consumed past it (`consumed` bytes).
    fn unterminated(&self, consumed: u64) -> Option<u64> {
        (self.eof && self.lexer == Lexer::Quoted && consumed > self.opened.0)
            .then_some(self.opened.1)
    }

    /// The line of the record the csv reader reads from `position` on. The csv
    /// reader places a record where the previous one ended, which is before any
    /// blank lines and, after a `\r\n`, before its `\n`; the record's line is that of
    /// its first byte. Records must be asked about in order.
    fn record_line(&mut self, position: &csv::Position) -> u64 {
        while self
            .starts
            .front()
            .is_some_and(|&(at, _)| at < position.byte())
        {
            self.starts.pop_front();
        }
        self.starts
            .front()
            .map_or(position.line(), |&(_, line)| line)
    }
}

fn unterminated_quote(source_name: &str, record_line: u64, quote_line: u64) -> Error {
    let place = if quote_line == record_line {
        String::new()
    } else {
        format!(" (opened on line {quote_line})")
    };
    dataset_error(
        source_name,
        record_line,
        format!(
            "unterminated quote: a quoted field{place} is never closed, so it would run to \
             the end of the file; close it with a \", and write a \" inside it as \"\""
        ),
    )
}

fn read_csv<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
    let tracker = Rc::new(RefCell::new(QuoteState {
        lexer: Lexer::FieldStart,
        offset: 0,
        breaks: 0,
        opened: (0, 0),
        eof: false,
        at_record_start: true,
        starts: VecDeque::new(),
    }));
    let tracked = QuoteTracker {
        inner: reader,
        state: Rc::clone(&tracker),
    };
    // The header is read as an ordinary record so that its position is known; the
    // csv reader still holds every later row to the header's field count.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(tracked);
    let mut record = csv::ByteRecord::new();
    // Reads a record and returns its line. A record that holds a never-closed quote
    // is reported as such, whatever else the csv reader thought of it (one field
    // instead of two, say).
    let read = |reader: &mut csv::Reader<QuoteTracker<R>>, record: &mut csv::ByteRecord| {
        let start = reader.position().clone();
        let result = reader.read_byte_record(record);
        let consumed = reader.position().byte();
        let mut state = tracker.borrow_mut();
        let line = state.record_line(&start);
        if let Some(quote_line) = state.unterminated(consumed) {
            return Err(unterminated_quote(source_name, line, quote_line));
        }
        match result {
            Ok(true) => Ok(Some(line)),
            Ok(false) => Ok(None),
            Err(e) => Err(csv_error(e, source_name, line)),
        }
    };

    let Some(line) = read(&mut reader, &mut record)? else {
        return Err(dataset_error(
            source_name,
            1,
            "the file is empty: a .csv dataset starts with the header row key,value",
        ));
    };
    let header: Vec<String> = record
        .iter()
        .map(|name| String::from_utf8_lossy(name).trim().to_string())
        .collect();
    if header != ["key", "value"] {
        return Err(dataset_error(
            source_name,
            line,
            format!(
                "the header row must be exactly key,value; found {}",
                header.join(",")
            ),
        ));
    }

    let mut count = 0;
    while let Some(line) = read(&mut reader, &mut record)? {
        let key = utf8_field(&record[0], "key", source_name, line)?;
        let value = utf8_field(&record[1], "value", source_name, line)?;
        each(key.to_string(), JsonText::string(value), line)?;
        count += 1;
    }
    Ok(count)
}

// ---------------------------------------------------------------- Writer

/// The path named in I/O errors of a [`Writer`], which has no file name of its own.
const WRITER_PATH: &str = "(dataset output)";

/// Writes records in a [`Format`], streaming: each record goes out (through an
/// internal buffer) as it is written, and [`finish`](Writer::finish) completes the
/// file.
///
/// Keys are escaped as the format needs (JSON string escapes, CSV quoting). For CSV,
/// a string value is written as its content and any other value as its compact JSON
/// text, so reading the file back gives every value as a string (see the
/// [module docs](self)). I/O errors are [`Error::Io`] with the path
/// `(dataset output)`.
///
/// ```
/// use kvcore::JsonText;
/// use kvcore::dataset::{self, Format, Writer};
///
/// let mut writer = Writer::new(Vec::new(), Format::Json)?;
/// writer.write("a", &JsonText::parse("1")?)?;
/// writer.write("b", &JsonText::parse(r#"{"x": [true, null]}"#)?)?;
/// let bytes = writer.finish()?;
/// assert_eq!(String::from_utf8_lossy(&bytes), "{\n\"a\":1,\n\"b\":{\"x\":[true,null]}\n}\n");
///
/// let mut back = Vec::new();
/// dataset::read(&bytes[..], Format::Json, "out.json", |k, v, line| {
///     back.push(format!("line {line}: {k}={v}"));
///     Ok(())
/// })?;
/// assert_eq!(back, ["line 2: a=1", r#"line 3: b={"x":[true,null]}"#]);
/// # Ok::<(), kvcore::Error>(())
/// ```
pub struct Writer<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Json { out: BufWriter<W>, first: bool },
    JsonLines { out: BufWriter<W> },
    Csv { out: Box<csv::Writer<W>> },
}

impl<W: Write> fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.inner {
            Inner::Json { .. } => Format::Json,
            Inner::JsonLines { .. } => Format::JsonLines,
            Inner::Csv { .. } => Format::Csv,
        };
        f.debug_struct("Writer")
            .field("format", &format)
            .finish_non_exhaustive()
    }
}

fn write_io(e: io::Error) -> Error {
    io_error(WRITER_PATH, e)
}

fn write_csv(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => write_io(source),
        kind => write_io(io::Error::other(format!("CSV writer: {kind:?}"))),
    }
}

impl<W: Write> Writer<W> {
    /// Starts a file in `format` on `out`: CSV writes the `key,value` header, JSON
    /// writes `{`, JSON Lines writes nothing yet.
    ///
    /// ```
    /// use kvcore::dataset::{Format, Writer};
    ///
    /// let out = Writer::new(Vec::new(), Format::Csv)?.finish()?;
    /// assert_eq!(out, b"key,value\n");
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn new(out: W, format: Format) -> Result<Self> {
        let inner = match format {
            Format::Json => {
                let mut out = BufWriter::new(out);
                out.write_all(b"{").map_err(write_io)?;
                Inner::Json { out, first: true }
            }
            Format::JsonLines => Inner::JsonLines {
                out: BufWriter::new(out),
            },
            Format::Csv => {
                let mut out = Box::new(csv::Writer::from_writer(out));
                out.write_record(["key", "value"]).map_err(write_csv)?;
                Inner::Csv { out }
            }
        };
        Ok(Writer { inner })
    }

    /// Writes one record.
    ///
    /// ```
    /// use kvcore::JsonText;
    /// use kvcore::dataset::{Format, Writer};
    ///
    /// let mut writer = Writer::new(Vec::new(), Format::JsonLines)?;
    /// writer.write("k\"1", &JsonText::parse("[1, 2]")?)?;
    /// assert_eq!(writer.finish()?, b"{\"key\":\"k\\\"1\",\"value\":[1,2]}\n");
    ///
    /// let mut writer = Writer::new(Vec::new(), Format::Csv)?;
    /// writer.write("a,b", &JsonText::string("x\"y"))?;
    /// writer.write("n", &JsonText::parse("42")?)?;
    /// assert_eq!(writer.finish()?, b"key,value\n\"a,b\",\"x\"\"y\"\nn,42\n");
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn write(&mut self, key: &str, value: &JsonText) -> Result<()> {
        match &mut self.inner {
            Inner::Json { out, first } => {
                let separator: &[u8] = if *first { b"\n" } else { b",\n" };
                *first = false;
                out.write_all(separator).map_err(write_io)?;
                write_json_string(out, key)?;
                out.write_all(b":").map_err(write_io)?;
                out.write_all(value.as_str().as_bytes()).map_err(write_io)
            }
            Inner::JsonLines { out } => {
                out.write_all(br#"{"key":"#).map_err(write_io)?;
                write_json_string(out, key)?;
                out.write_all(br#","value":"#).map_err(write_io)?;
                out.write_all(value.as_str().as_bytes()).map_err(write_io)?;
                out.write_all(b"}\n").map_err(write_io)
            }
            Inner::Csv { out } => {
                let text = value.as_str();
                let content = if text.starts_with('"') {
                    serde_json::from_str::<String>(text).ok()
                } else {
                    None
                };
                let field = content.as_deref().unwrap_or(text);
                out.write_record([key, field]).map_err(write_csv)
            }
        }
    }

    /// Finishes the file (JSON writes `}` and a newline), flushes, and returns the
    /// inner writer.
    ///
    /// ```
    /// use kvcore::dataset::{Format, Writer};
    ///
    /// assert_eq!(Writer::new(Vec::new(), Format::Json)?.finish()?, b"{\n}\n");
    /// assert_eq!(Writer::new(Vec::new(), Format::JsonLines)?.finish()?, b"");
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn finish(self) -> Result<W> {
        let mut out = match self.inner {
            Inner::Json { mut out, .. } => {
                out.write_all(b"\n}\n").map_err(write_io)?;
                out.into_inner().map_err(|e| write_io(e.into_error()))?
            }
            Inner::JsonLines { out } => out.into_inner().map_err(|e| write_io(e.into_error()))?,
            Inner::Csv { out } => (*out).into_inner().map_err(|e| write_io(e.into_error()))?,
        };
        out.flush().map_err(write_io)?;
        Ok(out)
    }
}

fn write_json_string(out: &mut impl Write, s: &str) -> Result<()> {
    serde_json::to_writer(out, s).map_err(|e| write_io(io::Error::from(e)))
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

    #[test]
    fn line_shapes() {
        assert!(parse_line(r#"{"value": 1, "key": "k"}"#).is_ok());
        assert!(
            parse_line(r#"{"key": "k", "key": "j", "value": 1}"#)
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(
            parse_line(r#"{"key": null, "value": 1}"#)
                .unwrap_err()
                .contains("found null")
        );
        assert!(
            parse_line(r#"[1]"#)
                .unwrap_err()
                .contains("expected a JSON object")
        );
        assert!(
            parse_line(r#"{"key": "k", "value": 1} 2"#)
                .unwrap_err()
                .contains("trailing")
        );
        let (key, value) = parse_line("{\"key\": \"\\u00e9\", \"value\": null}\r\n").unwrap();
        assert_eq!((key.as_str(), value.as_str()), ("é", "null"));
    }

    /// Reads CSV, returning the keys passed on and the result.
    fn read_csv_text(text: &str) -> (Vec<String>, Result<u64>) {
        let mut keys = Vec::new();
        let result = read(text.as_bytes(), Format::Csv, "d.csv", |key, _, _| {
            keys.push(key);
            Ok(())
        });
        (keys, result)
    }

    fn dataset_line(result: Result<u64>) -> (u64, String) {
        match result {
            Err(Error::Dataset { line, reason, .. }) => (line, reason),
            other => panic!("expected a dataset error, got {other:?}"),
        }
    }

    #[test]
    fn an_unterminated_quote_is_an_error_naming_its_line() {
        // Far more than the csv reader's buffer before it, so that the reader has
        // seen the end of the input long before it parses the bad record.
        let mut text = String::from("key,value\n");
        for i in 0..2000 {
            text.push_str(&format!("k{i},\"v,{i}\"\n"));
        }
        text.push_str("bad,\"never closed\nnext,row\nlast,x\n");
        let (keys, result) = read_csv_text(&text);
        let (line, reason) = dataset_line(result);
        assert_eq!(line, 2002);
        assert!(reason.starts_with("unterminated quote"), "{reason}");
        assert_eq!(keys.len(), 2000, "the bad record is never passed on");

        // One field only: still reported as the quote, not as a field count.
        let (line, reason) = dataset_line(read_csv_text("key,value\na,1\n\"b,2\n").1);
        assert_eq!(line, 3);
        assert!(reason.starts_with("unterminated quote"), "{reason}");

        // In the header; and a quote opened on a later line than its record's start.
        assert_eq!(dataset_line(read_csv_text("\"key,value\na,1\n").1).0, 1);
        let (line, reason) = dataset_line(read_csv_text("key,value\n\"a\nb\",\"c\n").1);
        assert_eq!(line, 2);
        assert!(reason.contains("opened on line 3"), "{reason}");

        // A doubled quote at the very end leaves the field open.
        let (line, _) = dataset_line(read_csv_text("key,value\na,\"b\"\"").1);
        assert_eq!(line, 2);
    }

    #[test]
    fn lines_count_crlf_and_blank_lines() {
        let text = "key,value\r\na,1\r\n\r\n\nb,\"2\r\n\"\r\n\n\nc,3\nd\r\n";
        let mut lines = Vec::new();
        let err = read(text.as_bytes(), Format::Csv, "d.csv", |_, _, line| {
            lines.push(line);
            Ok(())
        })
        .unwrap_err();
        assert_eq!(lines, [2, 5, 9]);
        assert_eq!(
            err.to_string(),
            "d.csv: line 10: expected 2 fields (key,value), found 1"
        );
    }

    #[test]
    fn closed_and_literal_quotes_are_accepted() {
        let text =
            "key,value\n\"a,\"\"b\"\"\",\"multi\nline\"\nc\"d,e\"f\"\n\"g\"h,\"\"\r\nlast,\"x\"";
        let mut records = Vec::new();
        let n = read(text.as_bytes(), Format::Csv, "d.csv", |key, value, line| {
            records.push((key, value.as_str().to_string(), line));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            records,
            [
                ("a,\"b\"".into(), r#""multi\nline""#.into(), 2),
                ("c\"d".into(), r#""e\"f\"""#.into(), 4),
                ("gh".into(), r#""""#.into(), 5),
                ("last".into(), r#""x""#.into(), 6),
            ]
        );
    }
}
