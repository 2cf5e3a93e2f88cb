//! kvcli writes only what kvserver can serve: kvcore's key and value rules, with
//! kvserver's defaults, on `set`, `incr` and `import`; and `kvcli import` accepts and
//! refuses exactly the dataset files `kvserver --load` does, with the same message.

mod common;

use std::path::Path;

use clap::Parser;
use common::{kvcli, ok, run, script};
use kvcore::limits::Limits;
use kvcore::persist::PersistOptions;
use kvcore::{JsonText, SetOptions, Store, StoreBuilder};

#[test]
fn kvcli_and_kvserver_share_the_default_limits() {
    let server = kvserver::Config::parse_from(["kvserver"]);
    let cli = kvcli::Args::parse_from(["kvcli"]);
    assert_eq!(cli.limits(), Limits::default());
    assert_eq!(
        (server.max_key_bytes, server.max_value_bytes),
        (cli.max_key_bytes, cli.max_value_bytes)
    );
}

/// A limit of 0 bytes would refuse every key or value: both programs refuse the flag.
#[test]
fn zero_byte_limits_are_refused_by_both() {
    for flag in ["--max-key-bytes", "--max-value-bytes"] {
        let cli = kvcli::Args::try_parse_from(["kvcli", flag, "0"]);
        let server = kvserver::Config::try_parse_from(["kvserver", flag, "0"]);
        assert!(cli.is_err() && server.is_err(), "{flag} 0 was accepted");
        assert!(kvcli::Args::try_parse_from(["kvcli", flag, "1"]).is_ok());
    }
}

#[test]
fn set_and_incr_refuse_empty_and_long_keys_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let long = "k".repeat(513);
    for args in [
        &["set", "", "x"][..],
        &["incr", ""],
        &["set", &long, "1"],
        &["incr", &long, "2"],
    ] {
        let r = run(&d, args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(!d.exists(), "{args:?} created the directory");
    }
    assert_eq!(
        run(&d, &["set", "", "x"]).stderr,
        "error: keys must not be empty\n"
    );
    let r = run(&d, &["set", &long, "1"]);
    assert!(
        r.stderr.starts_with(
            "error: a key of 513 bytes is longer than the limit of 512 bytes (kvserver's"
        ),
        "{r:?}"
    );
    assert!(r.stderr.contains("--max-key-bytes"), "{r:?}");

    ok(&d, &["set", &long[1..], "1"]);
    assert_eq!(ok(&d, &["incr", &long[1..]]), "2\n");
    assert_eq!(ok(&d, &["count"]), "1\n");
}

#[test]
fn values_are_held_to_one_mebibyte_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    // A JSON string of n characters is n + 2 bytes.
    let fits = format!("set fits \"{}\"\n", "v".repeat((1 << 20) - 2));
    let over = format!("set over \"{}\"\n", "v".repeat((1 << 20) - 1));
    let r = script(&d, &format!("{fits}{over}count\n"));
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stdout, "1\n");
    assert!(
        r.stderr.starts_with(
            "line 2: error: a value of 1048577 bytes is larger than the limit of 1048576 bytes"
        ),
        "{r:?}"
    );
    assert_eq!(run(&d, &["exists", "over"]).code, 1);
}

#[test]
fn flags_and_variables_change_the_limits_as_kvservers_do() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let key = "k".repeat(600);
    let with = |args: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = kvcli();
        cmd.args(args);
        if let Some((name, value)) = env {
            cmd.env(name, value);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let dir = d.to_str().unwrap();
    assert_eq!(with(&[dir, "set", &key, "1"], None).0, Some(2));
    let flag = ["--max-key-bytes", "600", dir, "set", &key, "1"];
    assert_eq!(with(&flag, None), (Some(0), String::new()));
    let by_env = [dir, "incr", &key];
    assert_eq!(
        with(&by_env, Some(("KV_MAX_KEY_BYTES", "600"))),
        (Some(0), String::new())
    );

    let small = ["--max-value-bytes", "10", dir, "set", "v", "\"123456789\""];
    let (code, stderr) = with(&small, None);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("a value of 11 bytes is larger than the limit of 10 bytes"),
        "{stderr}"
    );
    let fits = ["--max-value-bytes", "10", dir, "set", "v", "12345678"];
    assert_eq!(with(&fits, None).0, Some(0));
}

#[test]
fn a_key_written_before_the_rules_can_still_be_read_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    {
        let store = StoreBuilder::new()
            .open::<JsonText>(&d, PersistOptions::default())
            .unwrap();
        store
            .set("", JsonText::string("old"), SetOptions::new())
            .unwrap();
        store.sync().unwrap();
    }
    assert_eq!(ok(&d, &["get", ""]), "\"old\"\n");
    ok(&d, &["expire", "", "100"]);
    ok(&d, &["persist", ""]);
    ok(&d, &["del", ""]);
    assert_eq!(ok(&d, &["count"]), "0\n");
}

/// Dataset files, good and bad in each format, named as their format needs.
fn datasets() -> Vec<(&'static str, String)> {
    let long_key = "k".repeat(513);
    let max_key = "k".repeat(512);
    let big = "v".repeat((1 << 20) - 1);
    let max = "v".repeat((1 << 20) - 2);
    vec![
        ("good.json", r#"{"a": 1, "b": [true, null]}"#.into()),
        (
            "good.jsonl",
            "{\"key\": \"a\", \"value\": 1}\n\n{\"key\": \"b\", \"value\": {}}\n".into(),
        ),
        (
            "good.csv",
            "key,value\r\na,1\r\n\"b,c\",\"x\"\"y\"\r\n".into(),
        ),
        ("empty-key.json", r#"{"a": 1, "": 2}"#.into()),
        (
            "empty-key.jsonl",
            "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"\", \"value\": 2}\n".into(),
        ),
        ("empty-key.csv", "key,value\na,1\n,2\n".into()),
        ("long-key.csv", format!("key,value\na,1\n{long_key},2\n")),
        ("max-key.csv", format!("key,value\n{max_key},2\n")),
        ("big-value.csv", format!("key,value\na,{big}\n")),
        ("max-value.csv", format!("key,value\na,{max}\n")),
        (
            "big-value.jsonl",
            format!("{{\"key\": \"a\", \"value\": \"{big}\"}}\n"),
        ),
        ("unterminated.csv", "key,value\na,1\nb,\"2\nc,3\n".into()),
        ("three-fields.csv", "key,value\na,1,x\n".into()),
        ("no-value.jsonl", "{\"key\": \"a\"}\n".into()),
        ("not-an-object.json", "[1, 2]".into()),
    ]
}

/// What `kvserver --load` makes of `path`: the keys it loaded, or its error.
fn server_load(path: &Path) -> Result<usize, String> {
    let config = kvserver::Config::parse_from(["kvserver"]);
    let limits = kvserver::state::Limits {
        max_key_bytes: config.max_key_bytes,
        max_value_bytes: config.max_value_bytes,
        list_limit: 1,
        max_body_bytes: config.max_body_bytes,
        max_concurrency: 1,
        request_timeout: config.request_timeout,
    };
    let store = StoreBuilder::new().build::<kvcore::Bytes>().unwrap();
    kvserver::load::import(path, &store, &limits)
        .map(|_| store.len())
        .map_err(|e| e.to_string())
}

#[test]
fn kvcli_import_accepts_and_refuses_the_files_kvserver_load_does() {
    let tmp = tempfile::tempdir().unwrap();
    let mut refused = Vec::new();
    for (i, (name, content)) in datasets().into_iter().enumerate() {
        let path = tmp.path().join(name);
        std::fs::write(&path, content).unwrap();
        let d = tmp.path().join(format!("data{i}"));
        let cli = run(&d, &["import", path.to_str().unwrap()]);
        match server_load(&path) {
            Ok(keys) => {
                assert_eq!(cli.code, 0, "{name}: kvserver loaded it, kvcli: {cli:?}");
                assert_eq!(cli.stdout, format!("imported {keys} records\n"), "{name}");
                assert_eq!(ok(&d, &["count"]), format!("{keys}\n"), "{name}");
            }
            Err(message) => {
                refused.push(name);
                assert_eq!(
                    cli.code, 2,
                    "{name}: kvserver refused it ({message}), kvcli: {cli:?}"
                );
                assert_eq!(
                    cli.stderr,
                    format!("error: {message} (nothing was imported)\n"),
                    "{name}"
                );
                assert!(message.contains(": line "), "{name}: {message}");
                assert_eq!(ok(&d, &["count"]), "0\n", "{name}");
            }
        }
    }
    let accepted = [
        "good.json",
        "good.jsonl",
        "good.csv",
        "max-key.csv",
        "max-value.csv",
    ];
    let bad: Vec<&str> = datasets()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !accepted.contains(name))
        .collect();
    assert_eq!(refused, bad, "every bad file is refused, and only those");
}
