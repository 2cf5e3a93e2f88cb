//! Values are bytes at the backend: what the HTTP routes show of bytes another front
//! door stored (written here straight into the server's store), `incr` on them, the
//! raw read with `Accept: application/octet-stream`, and a data directory written by
//! the release whose values were JSON text.

use super::*;

use kvcore::{Bytes, SetOptions};

/// Stores `value` under `key` as it is, as a Redis client would.
fn store_bytes(s: &Srv, key: &str, value: &[u8]) {
    let local = s.state.backend().local().expect("a local backend");
    local
        .store()
        .set(key, Bytes::from(value), SetOptions::new())
        .expect("storing bytes");
}

/// Every value the rule tells apart: (key, stored bytes, the JSON it reads as).
fn samples() -> Vec<(&'static str, &'static [u8], Value)> {
    vec![
        ("json", br#"{ "a" : [1, 2.50] }"#, json!({"a": [1, 2.50]})),
        ("int", b"42", json!(42)),
        ("quoted", br#""hello""#, json!("hello")),
        ("text", b"hello world", json!("hello world")),
        ("empty", b"", json!("")),
        ("almost", b"{oops", json!("{oops")),
        ("binary", b"\x00\xffab", json!({"$base64": "AP9hYg=="})),
    ]
}

#[tokio::test]
async fn bytes_read_as_their_json_else_as_a_string_else_as_base64() {
    let s = Srv::new(&[]);
    let mut all = serde_json::Map::new();
    for (key, bytes, shown) in samples() {
        store_bytes(&s, key, bytes);
        s.expect(
            "GET",
            &format!("/keys/{key}"),
            None,
            200,
            is(json!({"key": key, "value": shown, "ttl_ms": null})),
        )
        .await;
        all.insert(key.to_owned(), shown);
    }
    assert_eq!(s.all().await, Value::Object(all.clone()));
    s.expect("GET", "/values", None, 200, is(Value::Object(all)))
        .await;
    s.expect(
        "GET",
        "/values?keys=binary,text,nope",
        None,
        200,
        is(json!({"binary": {"$base64": "AP9hYg=="}, "text": "hello world"})),
    )
    .await;

    // Compact JSON is what an HTTP write stores: its bytes come back as sent.
    s.put_key("sent", "", r#"{"x": [1, "a b"], "n": 1.50}"#)
        .await;
    let local = s.state.backend().local().unwrap();
    assert_eq!(
        local.store().get("sent").unwrap().as_bytes(),
        br#"{"x":[1,"a b"],"n":1.50}"#
    );

    // /get_value shows a value by the same rule.
    store_bytes(&s, U1, b"\xfe");
    s.expect(
        "POST",
        "/get_value",
        Some(&format!(r#"{{"key": "{U1}"}}"#)),
        200,
        is(json!({"value": {"$base64": "/g=="}})),
    )
    .await;
}

#[tokio::test]
async fn incr_counts_on_integer_text_whoever_wrote_it() {
    let s = Srv::new(&[]);
    store_bytes(&s, "n", b"41");
    s.expect(
        "POST",
        "/keys/n/incr",
        None,
        200,
        is(json!({"key": "n", "value": 42})),
    )
    .await;
    let local = s.state.backend().local().unwrap();
    assert_eq!(local.store().get("n").unwrap().as_bytes(), b"42");
    // Integers are canonical decimal text, as Redis reads them.
    for (key, bytes) in [
        ("lead", &b"007"[..]),
        ("plus", b"+1"),
        ("space", b" 1"),
        ("neg0", b"-0"),
        ("bin", b"\xff"),
    ] {
        store_bytes(&s, key, bytes);
        s.expect(
            "POST",
            &format!("/keys/{key}/incr"),
            None,
            409,
            err("not_an_integer"),
        )
        .await;
        assert_eq!(local.store().get(key).unwrap().as_bytes(), bytes, "{key}");
    }
}

#[tokio::test]
async fn octet_stream_reads_the_stored_bytes_exactly() {
    let s = Srv::new(&[]);
    store_bytes(&s, "bin", b"\x00\xff\r\n");
    s.put_key("doc", "", r#"{ "a": 1 }"#).await;
    for (key, bytes) in [("bin", &b"\x00\xff\r\n"[..]), ("doc", br#"{"a":1}"#)] {
        for accept in [
            "application/octet-stream",
            "text/plain, Application/Octet-Stream;q=0.5",
        ] {
            let r = s
                .send("GET", &format!("/keys/{key}"), None, &[("accept", accept)])
                .await;
            r.expect(200);
            assert_eq!(r.header("content-type"), Some("application/octet-stream"));
            assert_eq!(&r.body[..], bytes, "{key} with {accept}");
        }
    }
    // JSON whenever JSON is acceptable too, or octet-stream is refused.
    for accept in [
        "application/json, application/octet-stream",
        "application/octet-stream;q=0",
        "*/*",
    ] {
        let r = s
            .send("GET", "/keys/bin", None, &[("accept", accept)])
            .await;
        r.check(
            200,
            is(json!({"key": "bin", "value": {"$base64": "AP8NCg=="}, "ttl_ms": null})),
        );
    }
    // A missing key is the usual JSON error, whatever was asked for.
    let r = s
        .send(
            "GET",
            "/keys/nope",
            None,
            &[("accept", "application/octet-stream")],
        )
        .await;
    r.check(404, err("not_found"));
}

/// The directory in `tests/fixtures/release-0.1-data`, copied to `to`.
fn copy_fixture(to: &std::path::Path) {
    let from =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0.1-data");
    for dir in ["", "hits"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for entry in std::fs::read_dir(from.join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(dir).join(entry.file_name())).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_data_directory_of_the_json_text_release_opens_and_serves() {
    // Written by the release that stored values as JSON text (kvserver, then kvcli
    // compact, set and del): a snapshot, a journal that continues it, a manifest, and
    // the hit counters.
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let s = Srv::new(&["--data-dir", dir]);
    assert_eq!(
        s.all().await,
        json!({
            "greeting": "hello again",
            "n": 42,
            "obj": {"a": [1, 2.50], "s": "x y"},
            "café": "thé",
            "later": [true, null],
        })
    );
    let r = s
        .send(
            "GET",
            "/keys/obj",
            None,
            &[("accept", "application/octet-stream")],
        )
        .await;
    assert_eq!(&r.body[..], br#"{"a":[1,2.50],"s":"x y"}"#);
    s.expect("GET", "/keys/gone", None, 404, err("not_found"))
        .await;
    s.expect(
        "POST",
        "/keys/n/incr",
        None,
        200,
        is(json!({"key": "n", "value": 43})),
    )
    .await;
    s.expect(
        "GET",
        "/api/hello",
        None,
        200,
        is(json!({"path": "/hello", "hits": 2})),
    )
    .await;
    // What it writes now survives a restart beside what it read.
    store_bytes(&s, "bin", b"\xff");
    s.state.sync().await.unwrap();
    drop(s);
    let again = Srv::new(&["--data-dir", dir]);
    assert_eq!(
        again.get("/keys/bin").await.json()["value"],
        json!({"$base64": "/w=="})
    );
    assert_eq!(again.get("/keys/n").await.json()["value"], json!(43));
}
