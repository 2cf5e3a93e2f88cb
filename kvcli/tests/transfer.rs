//! `import` and `export` through the real binary: 100 000-record round trips in every
//! format, bad records, formats by flag, and standard streams.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{ok, run, run_with_input, script};
use kvcore::JsonText;
use kvcore::dataset::{self, Format, Writer};

const ROWS: usize = 100_000;

/// A value of a different JSON shape for each row; strings only for CSV, which has
/// no types.
fn value(i: usize, format: Format) -> JsonText {
    let text = match (format, i % 5) {
        (Format::Csv, _) | (_, 0) => {
            return JsonText::string(&format!("value, \"{i}\"\nline two"));
        }
        (_, 1) => i.to_string(),
        (_, 2) => format!(r#"{{"id":{i},"tags":["a","b"],"ok":true}}"#),
        (_, 3) => format!("[{i},null,-1.5e3]"),
        _ => format!(r#""üñí {i}""#),
    };
    JsonText::parse(&text).unwrap()
}

fn write_dataset(path: &Path, format: Format) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = Writer::new(file, format).unwrap();
    for i in 0..ROWS {
        let key = format!("key:{i:06}");
        let value = value(i, format);
        writer.write(&key, &value).unwrap();
        expected.insert(key, value.as_str().to_string());
    }
    writer.finish().unwrap();
    expected
}

fn read_dataset(path: &Path, format: Format) -> BTreeMap<String, String> {
    let mut records = BTreeMap::new();
    let file = std::fs::File::open(path).unwrap();
    dataset::read(file, format, "export", |key, value, _| {
        assert!(
            records.insert(key, value.as_str().to_string()).is_none(),
            "a key exported twice"
        );
        Ok(())
    })
    .unwrap();
    records
}

fn round_trip(format: Format, ext: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let input = tmp.path().join(format!("in.{ext}"));
    let output = tmp.path().join(format!("out.{ext}"));
    let expected = write_dataset(&input, format);

    let imported = ok(&d, &["import", input.to_str().unwrap()]);
    assert_eq!(imported, format!("imported {ROWS} records\n"));
    assert_eq!(ok(&d, &["count"]), format!("{ROWS}\n"));
    let probe = expected.keys().nth(ROWS / 2 + 2).unwrap();
    assert_eq!(
        ok(&d, &["get", probe]),
        format!("{}\n", expected[probe.as_str()])
    );

    let exported = ok(&d, &["export", output.to_str().unwrap()]);
    assert_eq!(exported, format!("exported {ROWS} records\n"));
    assert!(
        read_dataset(&output, format) == expected,
        "{format} round trip differs"
    );
}

#[test]
fn json_round_trip_of_100k_records() {
    round_trip(Format::Json, "json");
}

#[test]
fn json_lines_round_trip_of_100k_records() {
    round_trip(Format::JsonLines, "jsonl");
}

#[test]
fn csv_round_trip_of_100k_records() {
    round_trip(Format::Csv, "csv");
}

#[test]
fn a_bad_record_stops_the_import_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    ok(&d, &["set", "kept", "1"]);
    let file = tmp.path().join("bad.jsonl");
    // More than one batch of good records before the bad one.
    let mut content = String::new();
    for i in 0..10_001 {
        content.push_str(&format!("{{\"key\":\"k{i}\",\"value\":{i}}}\n"));
    }
    content.push_str("\n{\"key\":\"c\"}\n{\"key\":\"d\",\"value\":4}\n");
    std::fs::write(&file, &content).unwrap();
    let r = run(&d, &["import", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("bad.jsonl: line 10003: missing \"value\""),
        "{r:?}"
    );
    assert!(r.stderr.contains("(nothing was imported)"), "{r:?}");
    assert_eq!(ok(&d, &["keys"]), "kept\n");

    // The same from standard input, which is read once and kept for the second pass.
    let r = run_with_input(&d, &["import", "-"], content.as_bytes());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("(standard input): line 10003: missing \"value\""),
        "{r:?}"
    );
    assert_eq!(ok(&d, &["keys"]), "kept\n");

    // Without the bad record both import everything.
    let good: String = content
        .lines()
        .take(10_001)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, &good).unwrap();
    assert_eq!(
        ok(&d, &["import", file.to_str().unwrap()]),
        "imported 10001 records\n"
    );
    ok(&d, &["clear"]);
    let r = run_with_input(&d, &["import", "-"], good.as_bytes());
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "imported 10001 records\n"),
        "{r:?}"
    );
    assert_eq!(ok(&d, &["get", "k10000"]), "10000\n");

    let r = run(&d, &["import", "no-such-file.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: no-such-file.csv: "), "{r:?}");
}

#[test]
fn an_unterminated_csv_quote_names_its_line_and_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let file = tmp.path().join("quotes.csv");
    std::fs::write(
        &file,
        "key,value\nfr,Paris\nde,\"Berlin\nit,Rome\nes,Madrid\n",
    )
    .unwrap();
    let r = run(&d, &["import", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("quotes.csv: line 3: unterminated quote"),
        "{r:?}"
    );
    assert!(r.stderr.contains("nothing was imported"), "{r:?}");
    assert_eq!(ok(&d, &["count"]), "0\n");
}

#[test]
fn formats_by_flag_and_standard_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let txt = tmp.path().join("data.txt");
    std::fs::write(&txt, "key,value\nfr,Paris\nn,42\n").unwrap();
    let r = run(&d, &["import", txt.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--format json, jsonl or csv"), "{r:?}");
    assert!(!d.exists(), "a failed import created the directory");
    // --format after the file, or before the directory.
    ok(&d, &["import", txt.to_str().unwrap(), "--format", "csv"]);
    let r = common::kvcli()
        .args(["--format", "csv"])
        .arg(&d)
        .args(["import", txt.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    // CSV values are strings.
    assert_eq!(ok(&d, &["get", "n"]), "\"42\"\n");

    // import - reads standard input in one-shot mode.
    let r = run_with_input(&d, &["import", "-"], b"{\"key\":\"pi\",\"value\":3.14}\n");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "imported 1 records\n"),
        "{r:?}"
    );
    // export - writes JSON Lines (or the format named) to stdout, with no summary.
    let lines = ok(&d, &["export", "-"]);
    let mut lines: Vec<&str> = lines.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            r#"{"key":"fr","value":"Paris"}"#,
            r#"{"key":"n","value":"42"}"#,
            r#"{"key":"pi","value":3.14}"#,
        ]
    );
    assert!(ok(&d, &["export", "-", "--format", "csv"]).starts_with("key,value\n"));

    // A script cannot import from the stdin that carries it.
    let r = script(&d, "import -\ncount\n");
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "3\n");
    assert!(
        r.stderr
            .starts_with("line 1: error: import - reads standard input"),
        "{r:?}"
    );
}

/// A path that is a pipe cannot be read twice: it is kept for the second pass, like
/// standard input, instead of importing nothing the second time.
#[cfg(target_os = "linux")]
#[test]
fn a_pipe_named_by_path_is_imported_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let data = "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":2}\n";
    let r = run_with_input(
        &d,
        &["import", "/dev/stdin", "--format", "jsonl"],
        data.as_bytes(),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "imported 2 records\n"),
        "{r:?}"
    );
    assert_eq!(ok(&d, &["keys"]), "a\nb\n");
}
