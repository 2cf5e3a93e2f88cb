//! [`Writer`]: streaming records out in any of the three formats.

use std::fmt;
use std::io::{self, BufWriter, Write};

use super::{Format, io_error};
use crate::{Error, JsonText, Result};

/// The path named in I/O errors of a [`Writer`], which has no file name of its own.
const WRITER_PATH: &str = "(dataset output)";

/// Writes records in a [`Format`], streaming: each record goes out (through an
/// internal buffer) as it is written, and [`finish`](Writer::finish) completes the
/// file.
///
/// Keys are escaped as the format needs (JSON string escapes, CSV quoting). For CSV,
/// a string value is written as its content and any other value as its compact JSON
/// text, so reading the file back gives every value as a string (see the
/// [module docs](crate::dataset)). I/O errors are [`Error::Io`] with the path
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
    Csv { out: Box<::csv::Writer<W>> },
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

fn write_csv(e: ::csv::Error) -> Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => write_io(source),
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
                let mut out = Box::new(::csv::Writer::from_writer(out));
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
