//! Tests of the dataset codecs: reading each format, errors with line numbers,
//! round trips through the writer, and streaming.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

use kvcore::dataset::{self, Format, Writer};
use kvcore::{Error, JsonText};

/// Reads `data` and returns every record as (key, compact JSON text).
fn collect(data: &[u8], format: Format) -> kvcore::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let n = dataset::read(data, format, "sample", |k, v, _| {
        out.push((k, v.as_str().to_string()));
        Ok(())
    })?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Reads `data`, expecting a dataset error; returns its line and reason, and the
/// records delivered before it.
fn dataset_err(data: &[u8], format: Format) -> (u64, String, Vec<String>) {
    let mut seen = Vec::new();
    let err = dataset::read(data, format, "bad-source", |k, _, _| {
        seen.push(k);
        Ok(())
    })
    .unwrap_err();
    match err {
        Error::Dataset {
            source_name,
            line,
            reason,
        } => {
            assert_eq!(source_name, "bad-source");
            (line, reason, seen)
        }
        other => panic!("expected a dataset error, got {other:?}"),
    }
}

// ------------------------------------------------------------------ reading samples

#[test]
fn reads_a_json_sample() {
    let data = r#"
{
  "fr": "Paris",
  "日本": {"首都": "東京", "list": [1, 2.50, -3e4, null, true]},
  "emoji 😀": "a \"quoted\" \\ string\n",
  "": 0,
  "esc\u00e9\"key": [ ],
  "fr": "Lyon"
}
"#;
    let got = collect(data.as_bytes(), Format::Json).unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("fr", r#""Paris""#),
            ("日本", r#"{"首都":"東京","list":[1,2.50,-3e4,null,true]}"#),
            ("emoji 😀", r#""a \"quoted\" \\ string\n""#),
            ("", "0"),
            ("esc\u{e9}\"key", "[]"),
            ("fr", r#""Lyon""#),
        ])
    );
}

#[test]
fn reads_an_empty_json_object() {
    assert!(collect(b" {\n}\n\n", Format::Json).unwrap().is_empty());
}

#[test]
fn reads_a_json_lines_sample() {
    let data = "{\"key\": \"fr\", \"value\": \"Paris\"}\r\n\
                \r\n\
                   \t \n\
                {\"value\": {\"a\": [1, {\"b\": null}]}, \"key\": \"日本\"}\n\
                {\"key\":\"emoji 😀\",\"value\":\"x \\\"y\\\"\"}\n\
                {\"key\": \"\", \"value\": 1.0e3}\n\
                {\"key\": \"esc\\u00e9\", \"value\": false}";
    let got = collect(data.as_bytes(), Format::JsonLines).unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("fr", r#""Paris""#),
            ("日本", r#"{"a":[1,{"b":null}]}"#),
            ("emoji 😀", r#""x \"y\"""#),
            ("", "1.0e3"),
            ("esc\u{e9}", "false"),
        ])
    );
}

#[test]
fn reads_a_csv_sample() {
    let data = " key , value \r\n\
                fr,Paris\r\n\
                \"a,b\",\"she said \"\"hi\"\"\"\n\
                日本,\"東京\n2nd line\"\n\
                emoji 😀,\n\
                ,empty key\n\
                n,42\n\
                j,\"{\"\"x\"\": 1}\"\n";
    let got = collect(data.as_bytes(), Format::Csv).unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("fr", r#""Paris""#),
            ("a,b", r#""she said \"hi\"""#),
            ("日本", r#""東京\n2nd line""#),
            ("emoji 😀", r#""""#),
            ("", r#""empty key""#),
            ("n", r#""42""#),
            ("j", r#""{\"x\": 1}""#),
        ])
    );
}

#[test]
fn reads_a_csv_with_only_a_header() {
    assert!(collect(b"key,value\n", Format::Csv).unwrap().is_empty());
    assert!(collect(b"key,value", Format::Csv).unwrap().is_empty());
}

// ------------------------------------------------------------------ errors

#[test]
fn json_error_in_the_middle_names_its_line() {
    let data = "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": tru,\n  \"d\": 4\n}\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Json);
    assert_eq!(line, 4, "{reason}");
    assert!(!reason.contains("line"), "{reason}");
    assert_eq!(seen, ["a", "b"]);

    let (line, _, _) = dataset_err(b"{\n\"a\": 1,\n\"b\" 2\n}", Format::Json);
    assert_eq!(line, 3);
    let (line, _, _) = dataset_err(b"{\"a\": 1,\n\n\n", Format::Json);
    assert_eq!(line, 4);
}

#[test]
fn json_top_level_must_be_an_object() {
    for data in ["[1, 2]", "\"text\"", "42", "null", "[{\"a\": 1}]"] {
        let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Json);
        assert_eq!(line, 1, "{data}");
        assert!(
            reason.contains("must be one JSON object"),
            "{data}: {reason}"
        );
        assert!(seen.is_empty());
    }
    for data in ["", "  \n", "oops"] {
        let (_, reason, _) = dataset_err(data.as_bytes(), Format::Json);
        assert!(
            reason.contains("must be one JSON object"),
            "{data:?}: {reason}"
        );
    }
}

#[test]
fn json_allows_only_whitespace_after_the_object() {
    assert_eq!(
        collect(b"{\"a\": 1}\n \t\r\n", Format::Json).unwrap().len(),
        1
    );
    let (line, reason, seen) = dataset_err(b"{\"a\": 1}\n\n{\"b\": 2}", Format::Json);
    assert_eq!(line, 3);
    assert!(reason.contains("trailing"), "{reason}");
    assert_eq!(seen, ["a"]);
}

#[test]
fn json_rejects_invalid_utf8() {
    let (line, _, _) = dataset_err(b"{\"a\": 1,\n\"b\": \"\xff\"}", Format::Json);
    assert_eq!(line, 2);
}

#[test]
fn json_lines_missing_value_names_line_3() {
    let data = "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\", \"value\": 2}\n{\"key\": \"c\"}\n{\"key\": \"d\", \"value\": 4}\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::JsonLines);
    assert_eq!(line, 3);
    assert!(reason.contains("missing \"value\""), "{reason}");
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn json_lines_errors_name_their_line() {
    let ok = "{\"key\": \"a\", \"value\": 1}\n\n";
    let cases: &[(&str, &str)] = &[
        ("{\"value\": 1}", "missing \"key\""),
        (
            "{\"key\": 7, \"value\": 1}",
            "must be a JSON string, found a number",
        ),
        ("{\"key\": [\"x\"], \"value\": 1}", "found an array"),
        (
            "{\"key\": \"x\", \"value\": 1, \"ttl\": 5}",
            "unexpected field \"ttl\"",
        ),
        (
            "{\"key\": \"x\", \"value\": 1, \"value\": 2}",
            "duplicate field \"value\"",
        ),
        ("{\"key\": \"x\", \"value\": }", "expected value"),
        ("{\"key\": \"x\", \"value\": 1} {}", "trailing"),
        ("[\"x\", 1]", "expected a JSON object"),
        ("\"x\"", "expected a JSON object"),
    ];
    for (bad, expected) in cases {
        let data = format!("{ok}{bad}\n{ok}");
        let (line, reason, seen) = dataset_err(data.as_bytes(), Format::JsonLines);
        assert_eq!(line, 3, "{bad}: {reason}");
        assert!(reason.contains(expected), "{bad}: {reason}");
        assert_eq!(seen, ["a"]);
    }
    let (line, reason, _) = dataset_err(
        b"\n\n\n{\"key\": \"\xc3\", \"value\": 1}\n",
        Format::JsonLines,
    );
    assert_eq!(line, 4);
    assert!(reason.contains("UTF-8"), "{reason}");
}

#[test]
fn csv_row_with_three_fields_names_line_4() {
    let data = "key,value\na,1\nb,2\nc,3,extra\nd,4\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Csv);
    assert_eq!(line, 4);
    assert!(reason.contains("expected 2 fields"), "{reason}");
    assert!(reason.contains("found 3"), "{reason}");
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn csv_line_numbers_count_quoted_line_breaks() {
    let data = "key,value\na,\"one\ntwo\nthree\"\nb\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Csv);
    assert_eq!(line, 5, "{reason}");
    assert!(reason.contains("found 1"), "{reason}");
    assert_eq!(seen, ["a"]);
}

#[test]
fn csv_unterminated_quote_names_its_line_and_passes_on_nothing_after_it() {
    let data = "key,value\na,1\nb,\"she said \"\"hi\nc,3\nd,4\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Csv);
    assert_eq!(line, 3, "{reason}");
    assert!(reason.starts_with("unterminated quote"), "{reason}");
    assert_eq!(seen, ["a"]);
}

#[test]
fn csv_lines_are_right_after_crlf_and_blank_lines() {
    let data = "key,value\r\na,1\r\n\r\nb,2\r\nc\r\n";
    let (line, reason, seen) = dataset_err(data.as_bytes(), Format::Csv);
    assert_eq!(line, 5, "{reason}");
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn csv_header_must_be_key_value() {
    for header in [
        "k,v",
        "Key,Value",
        "value,key",
        "key",
        "key,value,extra",
        "key;value",
    ] {
        let data = format!("{header}\na,1\n");
        let (line, reason, _) = dataset_err(data.as_bytes(), Format::Csv);
        assert_eq!(line, 1, "{header}");
        assert!(reason.contains("header"), "{header}: {reason}");
    }
    let (line, reason, _) = dataset_err(b"", Format::Csv);
    assert_eq!(line, 1);
    assert!(reason.contains("header"), "{reason}");
}

#[test]
fn csv_rejects_invalid_utf8_with_its_line() {
    let (line, reason, seen) = dataset_err(b"key,value\na,1\nb,\"x\xffy\"\n", Format::Csv);
    assert_eq!(line, 3);
    assert!(
        reason.contains("UTF-8") && reason.contains("value"),
        "{reason}"
    );
    assert_eq!(seen, ["a"]);
}

#[test]
fn an_error_from_each_comes_back_unchanged() {
    let samples: [(Format, &str); 3] = [
        (Format::Json, "{\"a\": 1, \"b\": 2, \"c\": 3}"),
        (
            Format::JsonLines,
            "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":2}\n{\"key\":\"c\",\"value\":3}\n",
        ),
        (Format::Csv, "key,value\na,1\nb,2\nc,3\n"),
    ];
    for (format, data) in samples {
        let mut calls = 0;
        let err = dataset::read(data.as_bytes(), format, "x", |key, _, _| {
            calls += 1;
            if key == "b" {
                Err(Error::ReadOnly)
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(matches!(err, Error::ReadOnly), "{format}: {err:?}");
        assert_eq!(calls, 2, "{format}");
    }
}

/// A reader that fails once its data is used up.
#[derive(Debug)]
struct Failing {
    data: io::Cursor<Vec<u8>>,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn read_failures_are_io_errors_named_by_source() {
    let samples: [(Format, &str); 3] = [
        (Format::Json, "{\"a\": 1, "),
        (Format::JsonLines, "{\"key\":\"a\",\"value\":1}\n{\"key\""),
        (Format::Csv, "key,value\na,1\nb,"),
    ];
    for (format, data) in samples {
        let reader = Failing {
            data: io::Cursor::new(data.as_bytes().to_vec()),
        };
        let err = dataset::read(reader, format, "remote.src", |_, _, _| Ok(())).unwrap_err();
        match err {
            Error::Io { path, source } => {
                assert_eq!(path, Path::new("remote.src"), "{format}");
                assert_eq!(source.to_string(), "disk on fire", "{format}");
            }
            other => panic!("{format}: expected an I/O error, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ round trips

/// Deterministic pseudo-random numbers (xorshift).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const PIECES: &[&str] = &[
    "a", "Z", "0", " ", ",", "\"", "\\", "\n", "\r\n", "\t", "é", "日本", "😀", "{", "}", ":", "'",
    "key", "value", "#", "\u{1}", "\u{7f}", "/",
];

fn text(rng: &mut Rng, max: u64) -> String {
    let len = rng.next() % (max + 1);
    (0..len)
        .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
        .collect()
}

fn json_value(rng: &mut Rng, depth: u32) -> String {
    match rng.next() % if depth > 2 { 5 } else { 7 } {
        0 => "null".to_string(),
        1 => rng.next().is_multiple_of(2).to_string(),
        2 => format!("{}", rng.next() as i64),
        3 => format!(
            "{}.{}e-{}",
            rng.next() % 1000,
            rng.next() % 100,
            rng.next() % 9
        ),
        4 => serde_json::to_string(&text(rng, 12)).unwrap(),
        5 => {
            let items: Vec<String> = (0..rng.next() % 4)
                .map(|_| json_value(rng, depth + 1))
                .collect();
            format!("[ {} ]", items.join(" , "))
        }
        _ => {
            let items: Vec<String> = (0..rng.next() % 4)
                .map(|_| {
                    let k = serde_json::to_string(&text(rng, 4)).unwrap();
                    format!("{k} : {}", json_value(rng, depth + 1))
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

fn records(n: usize, strings_only: bool) -> Vec<(String, JsonText)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let key = if i.is_multiple_of(7) {
                format!("plain-{i}")
            } else {
                format!("{}{i}", text(&mut rng, 6))
            };
            let value = if strings_only {
                JsonText::string(&text(&mut rng, 10))
            } else {
                JsonText::parse(&json_value(&mut rng, 0)).unwrap()
            };
            (key, value)
        })
        .collect()
}

fn write_all(format: Format, records: &[(String, JsonText)]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), format).unwrap();
    for (k, v) in records {
        writer.write(k, v).unwrap();
    }
    writer.finish().unwrap()
}

fn read_all(data: &[u8], format: Format) -> Vec<(String, JsonText)> {
    let mut out = Vec::new();
    let n = dataset::read(data, format, "round-trip", |k, v, _| {
        out.push((k, v));
        Ok(())
    })
    .unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

#[test]
fn json_round_trip_is_exact() {
    let recs = records(10_000, false);
    let bytes = write_all(Format::Json, &recs);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with("{\n") && text.ends_with("\n}\n"));
    assert_eq!(text.lines().count(), recs.len() + 2, "one entry per line");
    serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(read_all(&bytes, Format::Json), recs);
}

#[test]
fn json_lines_round_trip_is_exact() {
    let recs = records(10_000, false);
    let bytes = write_all(Format::JsonLines, &recs);
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), recs.len());
    assert_eq!(read_all(&bytes, Format::JsonLines), recs);
}

#[test]
fn csv_round_trip_keeps_strings_exact() {
    let recs = records(10_000, true);
    let bytes = write_all(Format::Csv, &recs);
    assert!(bytes.starts_with(b"key,value\n"));
    assert_eq!(read_all(&bytes, Format::Csv), recs);
}

#[test]
fn csv_round_trip_turns_other_values_into_their_text() {
    let recs = records(2_000, false);
    let bytes = write_all(Format::Csv, &recs);
    let back = read_all(&bytes, Format::Csv);
    assert_eq!(back.len(), recs.len());
    for ((k, v), (k2, v2)) in recs.iter().zip(&back) {
        assert_eq!(k, k2);
        let expected =
            serde_json::from_str::<String>(v.as_str()).unwrap_or_else(|_| v.as_str().to_string());
        assert_eq!(v2, &JsonText::string(&expected));
    }
}

#[test]
fn empty_files_round_trip() {
    for format in [Format::Json, Format::JsonLines, Format::Csv] {
        let bytes = write_all(format, &[]);
        assert!(read_all(&bytes, format).is_empty(), "{format}");
    }
}

/// A writer that accepts `room` bytes, then fails.
#[derive(Debug)]
struct Full {
    room: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::other("no space left"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_failures_are_io_errors() {
    for format in [Format::Json, Format::JsonLines, Format::Csv] {
        let result = (|| {
            let mut writer = Writer::new(Full { room: 100 }, format)?;
            for i in 0..10_000 {
                writer.write(&format!("key-{i}"), &JsonText::string("some value"))?;
            }
            writer.finish()
        })();
        match result {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.to_string(), "no space left", "{format}")
            }
            other => panic!("{format}: expected an I/O error, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ streaming

/// A reader over a byte vector that counts how many bytes have been pulled.
#[derive(Debug)]
struct Counting {
    data: io::Cursor<Vec<u8>>,
    pulled: Rc<Cell<usize>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        self.pulled.set(self.pulled.get() + n);
        Ok(n)
    }
}

/// Reads `data` and returns (bytes pulled when the first record arrived, records).
fn first_record_after(data: Vec<u8>, format: Format) -> (usize, u64) {
    let pulled = Rc::new(Cell::new(0));
    let reader = Counting {
        data: io::Cursor::new(data),
        pulled: Rc::clone(&pulled),
    };
    let mut at_first = None;
    let n = dataset::read(reader, format, "big", |_, _, _| {
        at_first.get_or_insert(pulled.get());
        Ok(())
    })
    .unwrap();
    (at_first.unwrap(), n)
}

const BIG: usize = 200_000;

#[test]
fn json_is_streamed() {
    let mut data = String::from("{\n");
    for i in 0..BIG {
        let sep = if i + 1 == BIG { "" } else { "," };
        data.push_str(&format!(
            "\"key-{i}\": {{\"n\": {i}, \"s\": \"value {i}\"}}{sep}\n"
        ));
    }
    data.push_str("}\n");
    let total = data.len();
    let (at_first, n) = first_record_after(data.into_bytes(), Format::Json);
    assert_eq!(n, BIG as u64);
    assert!(
        at_first < total / 2,
        "pulled {at_first} of {total} bytes before the first record"
    );
    assert!(
        at_first < 1 << 20,
        "pulled {at_first} bytes before the first record"
    );
}

#[test]
fn json_lines_are_streamed() {
    let mut data = String::new();
    for i in 0..BIG {
        data.push_str(&format!(
            "{{\"key\": \"key-{i}\", \"value\": [{i}, \"v\"]}}\n"
        ));
    }
    let total = data.len();
    let (at_first, n) = first_record_after(data.into_bytes(), Format::JsonLines);
    assert_eq!(n, BIG as u64);
    assert!(
        at_first < total / 2,
        "pulled {at_first} of {total} bytes before the first record"
    );
    assert!(
        at_first < 1 << 20,
        "pulled {at_first} bytes before the first record"
    );
}

#[test]
fn csv_is_streamed() {
    let mut data = String::from("key,value\n");
    for i in 0..BIG {
        data.push_str(&format!("key-{i},\"value, {i}\"\n"));
    }
    let total = data.len();
    let (at_first, n) = first_record_after(data.into_bytes(), Format::Csv);
    assert_eq!(n, BIG as u64);
    assert!(
        at_first < total / 2,
        "pulled {at_first} of {total} bytes before the first record"
    );
}

// ------------------------------------------------------------------ Format

#[test]
fn format_from_path() {
    let cases: &[(&str, Option<Format>)] = &[
        ("data.json", Some(Format::Json)),
        ("/tmp/x/DATA.JSON", Some(Format::Json)),
        ("a.b.jsonl", Some(Format::JsonLines)),
        ("a.JsonL", Some(Format::JsonLines)),
        ("a.ndjson", Some(Format::JsonLines)),
        ("cities.csv", Some(Format::Csv)),
        ("cities.CSV", Some(Format::Csv)),
        ("cities.tsv", None),
        ("cities.jsonlines", None),
        ("json", None),
        (".csv", None),
        ("csv.", None),
        ("", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Format::from_path(Path::new(path)), *expected, "{path:?}");
    }
}

#[test]
fn format_from_str_and_display() {
    let cases: &[(&str, Format)] = &[
        ("json", Format::Json),
        ("JSON", Format::Json),
        ("jsonl", Format::JsonLines),
        ("jsonlines", Format::JsonLines),
        ("ndjson", Format::JsonLines),
        ("csv", Format::Csv),
        ("Csv", Format::Csv),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Format>().unwrap(), *expected, "{text}");
    }
    for format in [Format::Json, Format::JsonLines, Format::Csv] {
        assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
    }
    assert_eq!(Format::Json.to_string(), "json");
    assert_eq!(Format::JsonLines.to_string(), "jsonl");
    assert_eq!(Format::Csv.to_string(), "csv");
    for bad in ["", "yaml", ".json", "json ", "tsv"] {
        match bad.parse::<Format>() {
            Err(Error::Config(message)) => {
                assert!(
                    message.contains("json")
                        && message.contains("jsonl")
                        && message.contains("csv"),
                    "{message}"
                );
            }
            other => panic!("{bad:?}: expected a config error, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ record lines

/// Reads `data` and returns every record as (key, line).
fn lines(data: &str, format: Format) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    dataset::read(data.as_bytes(), format, "lines", |k, _, line| {
        out.push((k, line));
        Ok(())
    })
    .unwrap();
    out
}

fn keyed(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|&(k, l)| (k.to_string(), l)).collect()
}

#[test]
fn each_record_is_told_the_line_it_starts_on() {
    // JSON: the line of the key, also after values spanning lines.
    let json = "{\n  \"a\": 1,\n  \"b\": {\n    \"x\": [1,\n 2]\n  },\n\n  \"c\"\n  : \"three\", \"d\": 4\n}\n";
    assert_eq!(
        lines(json, Format::Json),
        keyed(&[("a", 2), ("b", 3), ("c", 8), ("d", 9)])
    );
    // JSON Lines: blank lines count, and \r\n ends a line.
    let jsonl = "{\"key\":\"a\",\"value\":1}\r\n\n  \n{\"key\":\"b\",\"value\":2}\n";
    assert_eq!(
        lines(jsonl, Format::JsonLines),
        keyed(&[("a", 1), ("b", 4)])
    );
    // CSV: the header is line 1; a quoted line break makes a record span two lines.
    let csv = "key,value\na,\"one\ntwo\"\nb,2\n";
    assert_eq!(lines(csv, Format::Csv), keyed(&[("a", 2), ("b", 4)]));
}

#[test]
fn a_record_refused_by_the_caller_is_named_by_its_line() {
    let data = "{\"key\":\"ok\",\"value\":1}\n\n{\"key\":\"\",\"value\":2}\n";
    let err = dataset::read(
        data.as_bytes(),
        Format::JsonLines,
        "in.jsonl",
        |k, _, line| {
            if k.is_empty() {
                return Err(Error::dataset("in.jsonl", line, "keys must not be empty"));
            }
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "in.jsonl: line 3: keys must not be empty");
}
