//! The CSV format: a `key,value` header, then two fields per record; values are
//! always JSON strings (see the module docs, "The CSV string rule").

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

use super::{Each, dataset_error, io_error};
use crate::{Error, JsonText, Result};

fn csv_error(e: ::csv::Error, source_name: &str, line: u64) -> Error {
    let reason = match e.kind() {
        ::csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("expected 2 fields (key,value), found {len}")
        }
        _ => e.to_string(),
    };
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => io_error(source_name, source),
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
    fn record_line(&mut self, position: &::csv::Position) -> u64 {
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

pub(super) fn read<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
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
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(tracked);
    let mut record = ::csv::ByteRecord::new();
    // Reads a record and returns its line. A record that holds a never-closed quote
    // is reported as such, whatever else the csv reader thought of it (one field
    // instead of two, say).
    let read = |reader: &mut ::csv::Reader<QuoteTracker<R>>, record: &mut ::csv::ByteRecord| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Format, read};

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
