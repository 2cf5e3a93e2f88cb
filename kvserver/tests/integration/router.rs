//! Router tests: every row of the HTTP API (`docs/http-api.md`), sent
//! through `kvserver::app` with `tower::ServiceExt::oneshot` — no socket — over a
//! state built with a `ManualClock`, so TTLs are tested by moving time, never by
//! sleeping.
//!
//! Each test builds its own server(s) from command-line flags. Responses are checked
//! for status, the exact JSON body (parsed, compared with `json!`), the JSON content
//! type, and, for errors, a body of exactly `error` and `message`.
//!
//! What needs a listening socket (a successful `/test/{n}`, shutdown, restart of a
//! real process) is in `server.rs`.

use crate::util;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use kvcore::ManualClock;
use kvserver::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// A server under test: its state, its router and the clock its TTLs follow.
struct Srv {
    state: AppState,
    app: Router,
    clock: ManualClock,
}

/// What a response body must be.
enum Want {
    /// This JSON, with `Content-Type: application/json`.
    Json(Value),
    /// An error body `{"error": code, "message": "..."}`, exactly those two fields.
    Error(&'static str),
    /// No body at all.
    Empty,
    /// Anything (only the status is checked).
    Any,
}

fn is(v: Value) -> Want {
    Want::Json(v)
}

fn err(code: &'static str) -> Want {
    Want::Error(code)
}

/// A response, read whole.
#[derive(Debug)]
struct Resp {
    label: String,
    status: StatusCode,
    headers: HeaderMap,
    bytes: Bytes,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.label, self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn assert_json_type(&self) {
        let ct = self.header("content-type").unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "{}: Content-Type is {ct:?}, not application/json",
            self.label
        );
    }

    fn check(&self, status: u16, want: Want) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: status (body {:?})",
            self.label,
            self.text()
        );
        match want {
            Want::Json(v) => {
                self.assert_json_type();
                assert_eq!(self.json(), v, "{}: body", self.label);
            }
            Want::Error(code) => self.assert_error(code),
            Want::Empty => assert!(
                self.bytes.is_empty(),
                "{}: expected no body, got {:?}",
                self.label,
                self.text()
            ),
            Want::Any => {}
        }
    }

    fn assert_error(&self, code: &str) {
        self.assert_json_type();
        let body = self.json();
        let obj = body
            .as_object()
            .unwrap_or_else(|| panic!("{}: error body is not an object: {body}", self.label));
        let fields: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["error", "message"]),
            "{}: error body fields: {body}",
            self.label
        );
        assert_eq!(obj["error"], code, "{}: error code in {body}", self.label);
        assert!(
            obj["message"]
                .as_str()
                .is_some_and(|m| !m.trim().is_empty()),
            "{}: message must be a non-empty string: {body}",
            self.label
        );
    }
}

impl Srv {
    /// A server with these flags (plus `--no-persist` unless a `--data-dir` is given).
    fn new(args: &[&str]) -> Srv {
        Self::try_new(args).unwrap_or_else(|e| panic!("building a server with {args:?}: {e:#}"))
    }

    fn try_new(args: &[&str]) -> anyhow::Result<Srv> {
        let mut all = Vec::new();
        if !args.contains(&"--data-dir") {
            all.push("--no-persist");
        }
        all.extend_from_slice(args);
        let clock = ManualClock::new();
        let state = AppState::build_with_clock(&util::config(&all), Arc::new(clock.clone()))?;
        Ok(Srv {
            app: kvserver::app(state.clone()),
            state,
            clock,
        })
    }

    fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    async fn send_raw(
        &self,
        method: &str,
        uri: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap_or_else(|e| panic!("building {method} {uri}: {e}"));
        let res = match self.app.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let bytes = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{method} {uri}: reading the body: {e}"))
            .to_bytes();
        Resp {
            label: format!("{method} {uri}"),
            status: parts.status,
            headers: parts.headers,
            bytes,
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut r = self
            .send_raw(
                method,
                uri,
                body.map(|b| Bytes::from(b.to_owned())),
                headers,
            )
            .await;
        if let Some(b) = body {
            let shown: String = b.chars().take(80).collect();
            r.label = format!("{method} {uri} with body {shown:?}");
        }
        r
    }

    async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Resp {
        self.send(method, uri, body, &[]).await
    }

    /// Sends a request and checks the response against `status` and `want`.
    async fn expect(
        &self,
        method: &str,
        uri: &str,
        body: Option<&str>,
        status: u16,
        want: Want,
    ) -> Resp {
        let r = self.call(method, uri, body).await;
        r.check(status, want);
        r
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, None).await
    }

    /// `PUT /keys/{key}` (key percent-encoded here); must succeed.
    async fn put_key(&self, key: &str, query: &str, body: &str) {
        let r = self
            .call("PUT", &format!("/keys/{}{query}", enc(key)), Some(body))
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CREATED,
            "{}: {} {}",
            r.label,
            r.status,
            r.text()
        );
    }

    /// Whether `HEAD /keys/{key}` finds the key (a look that is not a use).
    async fn alive(&self, key: &str) -> bool {
        let r = self
            .call("HEAD", &format!("/keys/{}", enc(key)), None)
            .await;
        match r.status.as_u16() {
            200 => true,
            404 => false,
            s => panic!("{}: unexpected {s}", r.label),
        }
    }

    /// `ttl_ms` from `GET /keys/{key}/ttl`; `None` when the key does not exist.
    async fn ttl_ms(&self, key: &str) -> Option<Value> {
        let r = self.get(&format!("/keys/{}/ttl", enc(key))).await;
        match r.status.as_u16() {
            200 => Some(r.json()["ttl_ms"].clone()),
            404 => {
                r.assert_error("not_found");
                None
            }
            s => panic!("{}: unexpected {s}: {}", r.label, r.text()),
        }
    }

    /// Every pair, through `GET /keys` (no paging expected).
    async fn all(&self) -> Value {
        let r = self.get("/keys").await;
        r.check(200, Want::Any);
        assert!(
            r.header("x-next-cursor").is_none(),
            "{}: unexpected cursor",
            r.label
        );
        r.json()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A temporary dataset file with this name and content.
fn dataset(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("creating a dataset file");
    f.write_all(content.as_bytes())
        .expect("writing a dataset file");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

const U1: &str = "0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f";
const U2: &str = "1c1d8b9f-6d5e-4a4b-8c3f-2b3c4d5e6f70";
const U3: &str = "2d2e9ca0-7e6f-4b5c-ad40-3c4d5e6f7081";
/// A UUID v4 that no dataset holds.
const U_UNKNOWN: &str = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";

const CSV: &str = "key,value\n\
    0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f,alpha\n\
    1c1d8b9f-6d5e-4a4b-8c3f-2b3c4d5e6f70,\"with,comma\"\n\
    2d2e9ca0-7e6f-4b5c-ad40-3c4d5e6f7081,42\n";

fn csv_pairs() -> Value {
    json!({U1: "alpha", U2: "with,comma", U3: "42"})
}

/// A read-only server over [`CSV`], plus `extra` flags.
fn read_only(dir: &tempfile::TempDir, extra: &[&str]) -> Srv {
    let file = dataset(dir, "data.csv", CSV);
    let mut args = vec!["--read-only", "--load", &file];
    args.extend_from_slice(extra);
    Srv::new(&args)
}

// ---------------------------------------------------------------------------------
// Conventions
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn conventions_invalid_json_body_is_400() {
    let s = Srv::new(&[]);
    s.put_key("k", "", "1").await;
    #[rustfmt::skip]
    let routes = [
        ("PUT", "/keys/k"),
        ("PUT", "/keys/new"),
        ("PUT", "/keys"),
        ("PUT", "/keys/k/ttl"),
        ("POST", "/values"),
        ("PATCH", "/values"),
        ("POST", "/get_value"),
    ];
    let bad = [
        "{oops",
        "",
        "nul",
        "[1,",
        "{\"a\":1}}",
        "1 2",
        "'x'",
        "{\"a\":}",
    ];
    for (m, uri) in routes {
        for body in bad {
            s.expect(m, uri, Some(body), 400, err("bad_request")).await;
        }
        // Not UTF-8 at all.
        let r = s
            .send_raw(m, uri, Some(Bytes::from_static(b"\"\xff\xfe\"")), &[])
            .await;
        r.check(400, err("bad_request"));
    }
    // Nothing was written by any of them.
    assert_eq!(s.all().await, json!({"k": 1}));
}

#[tokio::test]
async fn conventions_wrong_json_shape_is_400() {
    let s = Srv::new(&[]);
    s.put_key("k", "", "1").await;
    #[rustfmt::skip]
    let rows = [
        ("PUT", "/keys", "[1]"),
        ("PUT", "/keys", "\"x\""),
        ("PUT", "/keys", "1"),
        ("PUT", "/keys", "null"),
        ("PUT", "/keys", "{}"),
        ("PUT", "/keys/k/ttl", "{\"ttl\":\"5\"}"),
        ("PUT", "/keys/k/ttl", "{\"ttl\":null}"),
        ("PUT", "/keys/k/ttl", "5"),
        ("PUT", "/keys/k/ttl", "{}"),
        ("PUT", "/keys/k/ttl", "{\"ttl\":5,\"extra\":1}"),
        ("POST", "/values", "[1]"),
        ("POST", "/values", "\"x\""),
        ("POST", "/values", "{}"),
        ("PATCH", "/values", "[1]"),
        ("PATCH", "/values", "null"),
        ("PATCH", "/values", "{}"),
        ("POST", "/get_value", "[]"),
        ("POST", "/get_value", "\"x\""),
        ("POST", "/get_value", "{}"),
        ("POST", "/get_value", "{\"key\":5}"),
        ("POST", "/get_value", "{\"key\":null}"),
        ("POST", "/get_value", "{\"key\":[\"x\"]}"),
    ];
    for (m, uri, body) in rows {
        s.expect(m, uri, Some(body), 400, err("bad_request")).await;
    }
    assert_eq!(s.all().await, json!({"k": 1}));
    assert_eq!(s.ttl_ms("k").await, Some(Value::Null));
}

/// A JSON array where a route takes an object (`{"ttl": S}`, `{"key": "<uuid>"}`) is
/// the wrong shape, even when its elements line up with the object's fields.
#[tokio::test]
async fn conventions_array_in_place_of_an_object_is_400() {
    let s = Srv::new(&[]);
    s.put_key("k", "", "1").await;
    s.put_key(U1, "", "\"v\"").await;
    #[rustfmt::skip]
    let rows = [
        ("PUT", "/keys/k/ttl".to_string(), "[5]".to_string()),
        ("POST", "/get_value".into(), format!("[\"{U1}\"]")),
    ];
    let mut accepted = Vec::new();
    for (m, uri, body) in rows {
        let r = s.call(m, &uri, Some(&body)).await;
        if r.status == StatusCode::BAD_REQUEST {
            r.assert_error("bad_request");
        } else {
            accepted.push(format!("{} -> {} {}", r.label, r.status, r.text()));
        }
    }
    assert!(
        accepted.is_empty(),
        "array bodies accepted as objects: {accepted:#?}"
    );
    assert_eq!(s.ttl_ms("k").await, Some(Value::Null));
}

#[tokio::test]
async fn conventions_odd_input_is_never_a_500() {
    let s = Srv::new(&[]);
    s.put_key("k", "", "1").await;
    s.put_key("min", "", &i64::MIN.to_string()).await;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deep_obj = format!("{{\"a\":{}}}", deep(5000));
    let deep_key = format!("{{\"key\":{}}}", deep(5000));
    let long_pattern = format!("/keys?filter={}", "a".repeat(2000));
    let long_api = format!("/api/{}", "x/".repeat(2000));
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Option<String>)> = vec![
        ("PUT", "/keys/d".into(), Some(deep(5000))),
        ("PUT", "/keys/d".into(), Some(deep(100_000))),
        ("GET", "/keys/d".into(), None),
        ("PUT", "/keys".into(), Some(deep_obj.clone())),
        ("POST", "/values".into(), Some(deep_obj.clone())),
        ("PATCH", "/values".into(), Some(deep_obj)),
        ("POST", "/get_value".into(), Some(deep_key)),
        ("PUT", "/keys/k/ttl".into(), Some(format!("{{\"ttl\":{}}}", deep(5000)))),
        ("PUT", "/keys/k/ttl".into(), Some("{\"ttl\":1e309}".into())),
        ("PUT", "/keys/k/ttl".into(), Some("{\"ttl\":100000000000000000000}".into())),
        ("PUT", "/keys/k?ttl=1e308".into(), Some("1".into())),
        ("PUT", "/keys/k?ttl=1e-320".into(), Some("1".into())),
        ("GET", "/keys/%00".into(), None),
        ("GET", "/keys?filter=%FF".into(), None),
        ("GET", "/keys?filter=%".into(), None),
        ("GET", long_pattern, None),
        ("GET", "/keys?limit=18446744073709551615".into(), None),
        ("GET", "/stats?limit=18446744073709551615".into(), None),
        ("GET", "/values?keys=%FF".into(), None),
        ("POST", "/test/4294967296".into(), None),
        ("POST", "/keys/min/incr?by=-9223372036854775808".into(), None),
        ("POST", "/keys/k/incr?by=--1".into(), None),
        ("GET", long_api, None),
        ("GET", "/api/%00".into(), None),
    ];
    for (m, uri, body) in rows {
        let r = s.call(m, &uri, body.as_deref()).await;
        assert!(
            r.status.as_u16() < 500,
            "{}: {} {}",
            r.label,
            r.status,
            r.text()
        );
        if r.status.as_u16() >= 400 {
            r.assert_error(match r.status.as_u16() {
                400 => "bad_request",
                404 => "not_found",
                409 if r.label.contains("incr") => "not_an_integer",
                409 => "conflict",
                413 => "payload_too_large",
                other => panic!("{}: unexpected {other}", r.label),
            });
        }
    }
    s.expect(
        "GET",
        "/keys/k",
        None,
        200,
        is(json!({"key": "k", "value": 1, "ttl_ms": null})),
    )
    .await;
}

#[tokio::test]
async fn conventions_any_json_value_round_trips() {
    let s = Srv::new(&[]);
    let values = [
        json!({"a": [1, 2, {"b": null}]}),
        json!([1, "two", 3.5, false]),
        json!("a string with \"quotes\" and ünïcode"),
        json!(-42),
        json!(3.25),
        json!(true),
        json!(false),
        json!(null),
        json!({}),
        json!([]),
        json!(""),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("v{i}");
        s.expect(
            "PUT",
            &format!("/keys/{key}"),
            Some(&v.to_string()),
            201,
            is(json!({"key": key, "created": true})),
        )
        .await;
        s.expect(
            "GET",
            &format!("/keys/{key}"),
            None,
            200,
            is(json!({"key": key, "value": v, "ttl_ms": null})),
        )
        .await;
    }
    // Stored as compact JSON text: whitespace goes, number spelling stays.
    s.put_key(
        "n",
        "",
        " { \"x\" : [ 1.50 , 123456789012345678901234567890 ] } ",
    )
    .await;
    let r = s.get("/keys/n").await;
    assert_eq!(
        r.text(),
        r#"{"key":"n","value":{"x":[1.50,123456789012345678901234567890]},"ttl_ms":null}"#
    );
}

#[tokio::test]
async fn conventions_unknown_route_404_and_wrong_method_405() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let unknown = [
        ("GET", "/"),
        ("GET", "/nope"),
        ("DELETE", "/nope/deeper"),
        ("GET", "/keysx"),
        ("GET", "/keys/a/b"),
        ("GET", "/keys/k/ttl/x"),
        ("POST", "/keys/k/incr/x"),
        ("GET", "/value"),
        ("GET", "/stat"),
        ("POST", "/test"),
        ("GET", "/healthz/x"),
    ];
    for (m, uri) in unknown {
        s.expect(m, uri, None, 404, err("not_found")).await;
    }
    #[rustfmt::skip]
    let wrong_method = [
        ("POST", "/keys"),
        ("PATCH", "/keys"),
        ("POST", "/keys/k"),
        ("PATCH", "/keys/k"),
        ("GET", "/keys/k/incr"),
        ("PUT", "/keys/k/incr"),
        ("POST", "/keys/k/ttl"),
        ("PUT", "/values"),
        ("DELETE", "/values"),
        ("POST", "/api/x"),
        ("DELETE", "/api"),
        ("POST", "/stats"),
        ("GET", "/test/5"),
        ("GET", "/get_value"),
        ("PUT", "/healthz"),
        ("POST", "/readyz"),
        ("POST", "/metrics"),
        ("DELETE", "/info"),
    ];
    for (m, uri) in wrong_method {
        let r = s
            .expect(m, uri, Some("{}"), 405, err("method_not_allowed"))
            .await;
        let allow = r.header("allow").unwrap_or_default();
        assert!(
            !allow.is_empty() && !allow.contains(m),
            "{m} {uri}: Allow {allow:?}"
        );
    }
    // None of the refused requests wrote anything.
    assert_eq!(s.all().await, json!({}));
}

#[tokio::test]
async fn conventions_check_order() {
    // 1. auth (401) before route and method (404/405).
    let a = Srv::new(&["--auth-token", "s3cret"]);
    for (m, uri) in [
        ("GET", "/nope"),
        ("POST", "/keys"),
        ("GET", "/keys/k/incr"),
        ("PUT", "/keys/k"),
        ("GET", "/keys/k"),
    ] {
        a.expect(m, uri, Some("{oops"), 401, err("unauthorized"))
            .await;
    }
    let bearer = [("authorization", "Bearer s3cret")];
    a.send("GET", "/nope", None, &bearer)
        .await
        .check(404, err("not_found"));
    a.send("POST", "/keys", None, &bearer)
        .await
        .check(405, err("method_not_allowed"));

    // 2. route and method (404/405) before read-only (403).
    let dir = tempfile::tempdir().unwrap();
    // Limits just large enough for the dataset (36-byte keys, 12-byte values).
    let ro = read_only(
        &dir,
        &[
            "--max-key-bytes",
            "36",
            "--max-value-bytes",
            "12",
            "--max-body-bytes",
            "64",
        ],
    );
    let long_key = format!("/keys/{}", "k".repeat(37));
    ro.expect("PUT", "/nope", Some("1"), 404, err("not_found"))
        .await;
    ro.expect("POST", "/keys/k", Some("1"), 405, err("method_not_allowed"))
        .await;
    ro.expect("PATCH", "/keys", Some("{}"), 405, err("method_not_allowed"))
        .await;

    // 3. read-only (403) before request validation (400/413) and the operation (404/409).
    let big = format!("\"{}\"", "x".repeat(200));
    let post_existing = format!("{{\"{U1}\":1}}");
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Option<&str>)> = vec![
        ("PUT", "/keys/k".into(), Some(big.as_str())),
        ("PUT", "/keys/k".into(), Some("{oops")),
        ("PUT", "/keys/k".into(), Some("\"1234567890123\"")),
        ("PUT", long_key.clone(), Some("1")),
        ("POST", format!("{long_key}/incr"), None),
        ("PUT", "/keys/k?ttl=0".into(), Some("1")),
        ("PUT", "/keys/k?if=bogus".into(), Some("1")),
        ("PUT", format!("/keys/{U1}?if=absent"), Some("1")),
        ("PUT", "/keys/missing?if=present".into(), Some("1")),
        ("PUT", "/keys".into(), Some("[]")),
        ("PUT", "/keys?expire_in=0".into(), Some("{\"a\":1}")),
        ("POST", "/keys/k/incr?by=abc".into(), None),
        ("POST", format!("/keys/{U1}/incr"), None),
        ("PUT", "/keys/missing/ttl".into(), Some("{}")),
        ("DELETE", "/keys/missing".into(), None),
        ("DELETE", "/keys/missing/ttl".into(), None),
        ("POST", "/values".into(), Some("{}")),
        ("POST", "/values".into(), Some(big.as_str())),
        ("POST", "/values".into(), Some(post_existing.as_str())),
        ("PATCH", "/values".into(), Some("{oops")),
        ("PATCH", "/values".into(), Some("{\"missing\":1}")),
    ];
    for (m, uri, body) in rows {
        ro.expect(m, &uri, body, 403, err("read_only")).await;
    }

    // 4. request validation (400/413) before the operation (404/409).
    let s = Srv::new(&["--max-value-bytes", "10"]);
    s.put_key("word", "", "\"abc\"").await;
    s.expect(
        "PUT",
        "/keys/missing/ttl",
        Some("{\"ttl\":0}"),
        400,
        err("bad_request"),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/missing/ttl",
        Some("{oops"),
        400,
        err("bad_request"),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/missing?if=present&ttl=0",
        Some("1"),
        400,
        err("bad_request"),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/word?if=absent",
        Some("{oops"),
        400,
        err("bad_request"),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/word?if=absent",
        Some("\"123456789\""),
        413,
        err("payload_too_large"),
    )
    .await;
    s.expect(
        "POST",
        "/keys/word/incr?by=x",
        None,
        400,
        err("bad_request"),
    )
    .await;
    s.expect(
        "PATCH",
        "/values",
        Some("{\"missing\":\"123456789\"}"),
        413,
        err("payload_too_large"),
    )
    .await;
    s.expect(
        "POST",
        "/values",
        Some("{\"word\":\"123456789\"}"),
        413,
        err("payload_too_large"),
    )
    .await;
    assert_eq!(s.all().await, json!({"word": "abc"}));
}

#[tokio::test]
async fn conventions_size_limits_are_413() {
    let s = Srv::new(&[
        "--max-key-bytes",
        "4",
        "--max-value-bytes",
        "10",
        "--max-body-bytes",
        "64",
    ]);
    // Keys: at most 4 bytes (bytes, not characters).
    s.expect(
        "PUT",
        "/keys/abcd",
        Some("1"),
        201,
        is(json!({"key": "abcd", "created": true})),
    )
    .await;
    s.expect(
        "PUT",
        &format!("/keys/{}", enc("üü")),
        Some("1"),
        201,
        is(json!({"key": "üü", "created": true})),
    )
    .await;
    #[rustfmt::skip]
    let too_long = [
        ("PUT", "/keys/abcde".to_string(), Some("1".to_string())),
        ("PUT", format!("/keys/{}", enc("üüx")), Some("1".into())),
        ("GET", "/keys/abcde".into(), None),
        ("POST", "/keys/abcde/incr".into(), None),
        ("PUT", "/keys/abcde/ttl".into(), Some("{\"ttl\":5}".into())),
        ("PUT", "/keys".into(), Some("{\"abcde\":1}".into())),
        ("POST", "/values".into(), Some("{\"abcde\":1}".into())),
        ("PATCH", "/values".into(), Some("{\"abcd\":2,\"abcde\":1}".into())),
    ];
    for (m, uri, body) in &too_long {
        s.expect(m, uri, body.as_deref(), 413, err("payload_too_large"))
            .await;
    }
    // Empty keys are refused where a body can name them.
    s.expect("PUT", "/keys", Some("{\"\":1}"), 400, err("bad_request"))
        .await;
    s.expect("POST", "/values", Some("{\"\":1}"), 400, err("bad_request"))
        .await;

    // Values: at most 10 bytes of compact JSON.
    s.expect(
        "PUT",
        "/keys/k",
        Some("\"12345678\""),
        201,
        is(json!({"key": "k", "created": true})),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/k",
        Some("  [1, 2, 3, 4]  "),
        200,
        is(json!({"key": "k", "created": false})),
    )
    .await;
    #[rustfmt::skip]
    let too_big = [
        ("PUT", "/keys/k", "\"123456789\""),
        ("PUT", "/keys/k", " { \"a\" : 12345 } "),
        ("PUT", "/keys/k?if=present", "[1,2,3,4,5]"),
        ("PUT", "/keys", "{\"k\":\"123456789\",\"z\":1}"),
        ("POST", "/values", "{\"n\":\"123456789\"}"),
        ("PATCH", "/values", "{\"k\":\"123456789\"}"),
    ];
    for (m, uri, body) in too_big {
        s.expect(m, uri, Some(body), 413, err("payload_too_large"))
            .await;
    }
    // Bodies: at most 64 bytes, even when the value inside would be small.
    let padded = format!("{}1", " ".repeat(100));
    s.expect(
        "PUT",
        "/keys/k",
        Some(&padded),
        413,
        err("payload_too_large"),
    )
    .await;
    let wide = format!(
        "{{{}}}",
        (0..20)
            .map(|i| format!("\"{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    s.expect("PUT", "/keys", Some(&wide), 413, err("payload_too_large"))
        .await;

    assert_eq!(
        s.all().await,
        json!({"abcd": 1, "üü": 1, "k": [1, 2, 3, 4]})
    );
}

#[tokio::test]
async fn conventions_percent_encoded_keys() {
    let s = Srv::new(&[]);
    let keys = [
        "a/b",
        "ü✓",
        "a b",
        "100%",
        "a+b",
        "a?b#c",
        "日本語",
        "key:with:colons",
        "emoji😀",
        "..",
        "quote\"d",
    ];
    for (i, key) in keys.iter().enumerate() {
        let uri = format!("/keys/{}", enc(key));
        s.expect(
            "PUT",
            &uri,
            Some(&i.to_string()),
            201,
            is(json!({"key": key, "created": true})),
        )
        .await;
        s.expect(
            "GET",
            &uri,
            None,
            200,
            is(json!({"key": key, "value": i, "ttl_ms": null})),
        )
        .await;
    }
    let all: serde_json::Map<String, Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), json!(i)))
        .collect();
    assert_eq!(s.all().await, Value::Object(all));
    // Lower-case hex escapes name the same key.
    s.expect(
        "GET",
        "/keys/a%2fb",
        None,
        200,
        is(json!({"key": "a/b", "value": 0, "ttl_ms": null})),
    )
    .await;
    s.expect(
        "GET",
        "/keys/a%2Fb/ttl",
        None,
        200,
        is(json!({"ttl_ms": null})),
    )
    .await;
    s.expect(
        "POST",
        "/keys/a%2Fb/incr",
        None,
        200,
        is(json!({"key": "a/b", "value": 1})),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/a%2Fb/ttl",
        Some("{\"ttl\":5}"),
        200,
        is(json!({"ttl_ms": 5000})),
    )
    .await;
    s.expect("DELETE", "/keys/a%2Fb", None, 204, Want::Empty)
        .await;
    s.expect("GET", "/keys/a%2Fb", None, 404, err("not_found"))
        .await;
    // A path that does not decode to UTF-8 is a client mistake.
    s.expect("GET", "/keys/%FF", None, 400, err("bad_request"))
        .await;
    s.expect("PUT", "/keys/%C3", Some("1"), 400, err("bad_request"))
        .await;
}

#[tokio::test]
async fn conventions_ttl_bounds() {
    let s = Srv::new(&[]);
    s.put_key("k", "", "1").await;
    let bad = [
        "0",
        "0.0009",
        "315360001",
        "abc",
        "-1",
        "",
        "NaN",
        "inf",
        "1e10",
        "0x10",
        "-0.5",
    ];
    for t in bad {
        let t = enc(t);
        s.expect(
            "PUT",
            &format!("/keys/k?ttl={t}"),
            Some("2"),
            400,
            err("bad_request"),
        )
        .await;
        s.expect(
            "PUT",
            &format!("/keys/new?ttl={t}"),
            Some("2"),
            400,
            err("bad_request"),
        )
        .await;
        s.expect(
            "PUT",
            &format!("/keys?expire_in={t}"),
            Some("{\"b\":1}"),
            400,
            err("bad_request"),
        )
        .await;
        s.expect(
            "PUT",
            &format!("/keys?ttl={t}"),
            Some("{\"b\":1}"),
            400,
            err("bad_request"),
        )
        .await;
    }
    for t in ["0", "0.0009", "315360001", "-1", "1e10", "-0.5", "0.0"] {
        s.expect(
            "PUT",
            "/keys/k/ttl",
            Some(&format!("{{\"ttl\":{t}}}")),
            400,
            err("bad_request"),
        )
        .await;
    }
    // Nothing changed.
    assert_eq!(s.all().await, json!({"k": 1}));
    assert_eq!(s.ttl_ms("k").await, Some(Value::Null));

    // The bounds themselves are fine.
    s.expect(
        "PUT",
        "/keys/a?ttl=0.001",
        Some("1"),
        201,
        is(json!({"key": "a", "created": true})),
    )
    .await;
    assert_eq!(s.ttl_ms("a").await, Some(json!(1)));
    s.expect(
        "PUT",
        "/keys/b?ttl=315360000",
        Some("1"),
        201,
        is(json!({"key": "b", "created": true})),
    )
    .await;
    assert_eq!(s.ttl_ms("b").await, Some(json!(315_360_000_000u64)));
    s.expect("PUT", "/keys/c?ttl=1.5", Some("1"), 201, Want::Any)
        .await;
    assert_eq!(s.ttl_ms("c").await, Some(json!(1500)));
    s.expect(
        "PUT",
        "/keys?expire_in=0.001",
        Some("{\"d\":1}"),
        200,
        is(json!({"stored": 1, "evicted": 0})),
    )
    .await;
    assert_eq!(s.ttl_ms("d").await, Some(json!(1)));
    s.expect(
        "PUT",
        "/keys/k/ttl",
        Some("{\"ttl\":0.001}"),
        200,
        is(json!({"ttl_ms": 1})),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/k/ttl",
        Some("{\"ttl\":315360000}"),
        200,
        is(json!({"ttl_ms": 315_360_000_000u64})),
    )
    .await;
    s.expect(
        "PUT",
        "/keys/k/ttl",
        Some("{\"ttl\":2.5}"),
        200,
        is(json!({"ttl_ms": 2500})),
    )
    .await;
}

// ---------------------------------------------------------------------------------
// /keys
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn keys_get_head_put_delete() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Option<&str>, u16, Want)> = vec![
        ("GET", "/keys/k", None, 404, err("not_found")),
        ("HEAD", "/keys/k", None, 404, Want::Empty),
        ("DELETE", "/keys/k", None, 404, err("not_found")),
        ("PUT", "/keys/k", Some("{\"a\":[1,2]}"), 201, is(json!({"key": "k", "created": true}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": {"a": [1, 2]}, "ttl_ms": null}))),
        ("HEAD", "/keys/k", None, 200, Want::Empty),
        ("PUT", "/keys/k", Some("\"x\""), 200, is(json!({"key": "k", "created": false}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": "x", "ttl_ms": null}))),
        ("PUT", "/keys/k?ttl=5", Some("null"), 200, is(json!({"key": "k", "created": false}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": null, "ttl_ms": 5000}))),
        ("PUT", "/keys/t?ttl=2", Some("7"), 201, is(json!({"key": "t", "created": true}))),
        ("GET", "/keys/t", None, 200, is(json!({"key": "t", "value": 7, "ttl_ms": 2000}))),
        ("DELETE", "/keys/k", None, 204, Want::Empty),
        ("DELETE", "/keys/k", None, 404, err("not_found")),
        ("GET", "/keys/k", None, 404, err("not_found")),
        ("HEAD", "/keys/k", None, 404, Want::Empty),
        ("PUT", "/keys/k", Some("1"), 201, is(json!({"key": "k", "created": true}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": 1, "ttl_ms": null}))),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, uri, body, status, want).await;
    }
    assert_eq!(s.all().await, json!({"k": 1, "t": 7}));
}

#[tokio::test]
async fn keys_conditional_put_and_keepttl() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Option<&str>, u16, Want)> = vec![
        ("PUT", "/keys/k?if=absent", Some("1"), 201, is(json!({"key": "k", "created": true}))),
        ("PUT", "/keys/k?if=absent", Some("2"), 409, err("conflict")),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": 1, "ttl_ms": null}))),
        ("PUT", "/keys/m?if=present", Some("1"), 404, err("not_found")),
        ("GET", "/keys/m", None, 404, err("not_found")),
        ("PUT", "/keys/k?if=present", Some("3"), 200, is(json!({"key": "k", "created": false}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": 3, "ttl_ms": null}))),
        ("PUT", "/keys/k?if=bogus", Some("4"), 400, err("bad_request")),
        ("PUT", "/keys/k?keepttl=yes", Some("4"), 400, err("bad_request")),
        ("PUT", "/keys/k?ttl=5&keepttl=true", Some("4"), 400, err("bad_request")),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": 3, "ttl_ms": null}))),
        ("PUT", "/keys/n?if=absent&ttl=5", Some("1"), 201, is(json!({"key": "n", "created": true}))),
        ("GET", "/keys/n", None, 200, is(json!({"key": "n", "value": 1, "ttl_ms": 5000}))),
        ("PUT", "/keys/n?if=present&ttl=9", Some("2"), 200, is(json!({"key": "n", "created": false}))),
        ("GET", "/keys/n", None, 200, is(json!({"key": "n", "value": 2, "ttl_ms": 9000}))),
        ("PUT", "/keys/n?if=present&keepttl=true", Some("3"), 200, is(json!({"key": "n", "created": false}))),
        ("GET", "/keys/n", None, 200, is(json!({"key": "n", "value": 3, "ttl_ms": 9000}))),
        ("PUT", "/keys/n?keepttl=false", Some("4"), 200, is(json!({"key": "n", "created": false}))),
        ("GET", "/keys/n", None, 200, is(json!({"key": "n", "value": 4, "ttl_ms": null}))),
        ("PUT", "/keys/fresh?keepttl=true", Some("1"), 201, is(json!({"key": "fresh", "created": true}))),
        ("GET", "/keys/fresh", None, 200, is(json!({"key": "fresh", "value": 1, "ttl_ms": null}))),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, uri, body, status, want).await;
    }
}

#[tokio::test]
async fn keys_bulk_put_and_delete_all() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Option<&str>, u16, Want)> = vec![
        ("PUT", "/keys", Some("{\"a\":1,\"b\":\"two\",\"c\":[3]}"), 200, is(json!({"stored": 3, "evicted": 0}))),
        ("GET", "/keys/c", None, 200, is(json!({"key": "c", "value": [3], "ttl_ms": null}))),
        ("PUT", "/keys", Some("{\"a\":10,\"d\":{\"x\":null}}"), 200, is(json!({"stored": 2, "evicted": 0}))),
        ("GET", "/keys/a", None, 200, is(json!({"key": "a", "value": 10, "ttl_ms": null}))),
        ("PUT", "/keys?expire_in=5", Some("{\"e\":5}"), 200, is(json!({"stored": 1, "evicted": 0}))),
        ("GET", "/keys/e", None, 200, is(json!({"key": "e", "value": 5, "ttl_ms": 5000}))),
        ("PUT", "/keys?ttl=7", Some("{\"f\":6,\"a\":11}"), 200, is(json!({"stored": 2, "evicted": 0}))),
        ("GET", "/keys/f", None, 200, is(json!({"key": "f", "value": 6, "ttl_ms": 7000}))),
        ("GET", "/keys/a", None, 200, is(json!({"key": "a", "value": 11, "ttl_ms": 7000}))),
        // A bulk write without expire_in replaces the TTL with the default (none).
        ("PUT", "/keys", Some("{\"a\":12}"), 200, is(json!({"stored": 1, "evicted": 0}))),
        ("GET", "/keys/a", None, 200, is(json!({"key": "a", "value": 12, "ttl_ms": null}))),
        ("PUT", "/keys", Some("{\"a/b\":1,\"ü\":2}"), 200, is(json!({"stored": 2, "evicted": 0}))),
        ("GET", "/keys/a%2Fb", None, 200, is(json!({"key": "a/b", "value": 1, "ttl_ms": null}))),
        ("PUT", "/keys", Some("[]"), 400, err("bad_request")),
        ("PUT", "/keys", Some("{}"), 400, err("bad_request")),
        ("PUT", "/keys", Some("[[\"x\",1]]"), 400, err("bad_request")),
        ("PUT", "/keys", Some("\"x\""), 400, err("bad_request")),
        ("PUT", "/keys", Some("null"), 400, err("bad_request")),
        ("PUT", "/keys", Some("{oops"), 400, err("bad_request")),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, uri, body, status, want).await;
    }
    let expected =
        json!({"a": 12, "b": "two", "c": [3], "d": {"x": null}, "e": 5, "f": 6, "a/b": 1, "ü": 2});
    assert_eq!(s.all().await, expected);
    s.expect("DELETE", "/keys", None, 200, is(json!({"deleted": 8})))
        .await;
    assert_eq!(s.all().await, json!({}));
    s.expect("DELETE", "/keys", None, 200, is(json!({"deleted": 0})))
        .await;

    // Expired keys are not counted.
    s.put_key("x", "?ttl=1", "1").await;
    s.put_key("y", "", "1").await;
    s.advance_ms(1000);
    s.expect("DELETE", "/keys", None, 200, is(json!({"deleted": 1})))
        .await;
    assert_eq!(s.all().await, json!({}));
}

#[tokio::test]
async fn keys_list_filter_patterns() {
    let s = Srv::new(&[]);
    let keys = [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "word", "world", "wod", "wd", "sword",
        "a*b", "a?b", "a[b", "a\\b", "a$b", "user:1", "user:22", "über", "-x", "]",
    ];
    for (i, k) in keys.iter().enumerate() {
        s.put_key(k, "", &i.to_string()).await;
    }
    let pick = |names: &[&str]| -> Value {
        Value::Object(
            names
                .iter()
                .map(|n| {
                    let i = keys.iter().position(|k| k == n).expect("a known key");
                    (n.to_string(), json!(i))
                })
                .collect(),
        )
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<&str>)> = vec![
        ("h?llo", vec!["hello", "hallo", "hxllo"]),
        ("h*llo", vec!["hello", "hallo", "hxllo", "hllo", "heeeello"]),
        ("h$llo", vec!["hello", "hallo", "hxllo", "hllo", "heeeello"]),
        ("h[ae]llo", vec!["hello", "hallo"]),
        ("h[a-e]llo", vec!["hello", "hallo"]),
        ("h[^e]llo", vec!["hallo", "hxllo"]),
        ("h[!e]llo", vec!["hallo", "hxllo"]),
        ("h[^a-e]llo", vec!["hxllo"]),
        ("wo$d", vec!["word", "world", "wod"]),
        ("w*d", vec!["word", "world", "wod", "wd"]),
        ("*word", vec!["word", "sword"]),
        ("a\\*b", vec!["a*b"]),
        ("a\\?b", vec!["a?b"]),
        ("a\\[b", vec!["a[b"]),
        ("a\\\\b", vec!["a\\b"]),
        ("a\\$b", vec!["a$b"]),
        ("a?b", vec!["a*b", "a?b", "a[b", "a\\b", "a$b"]),
        ("user:*", vec!["user:1", "user:22"]),
        ("user:?", vec!["user:1"]),
        ("user:[0-9][0-9]", vec!["user:22"]),
        ("?ber", vec!["über"]),
        ("[-]x", vec!["-x"]),
        ("[\\]]", vec!["]"]),
        ("hello", vec!["hello"]),
        ("zzz*", vec![]),
        ("*", keys.to_vec()),
        ("$", keys.to_vec()),
    ];
    for (pattern, want) in rows {
        let r = s.get(&format!("/keys?filter={}", enc(pattern))).await;
        r.check(200, is(pick(&want)));
        assert!(r.header("x-next-cursor").is_none(), "filter {pattern}");
    }
    for bad in ["[abc", "abc\\", "[]", "[^]", "[!]", "a[b-"] {
        s.expect(
            "GET",
            &format!("/keys?filter={}", enc(bad)),
            None,
            400,
            err("bad_request"),
        )
        .await;
    }
    // Unfiltered: every pair.
    assert_eq!(s.all().await, pick(&keys));
}

/// Follows `X-Next-Cursor` from `first` (a `/keys?...` URI) to the end; returns the
/// pages' pairs in order. Checks each page holds at most `page_max` pairs.
async fn walk(s: &Srv, first: &str, page_max: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut uri = first.to_string();
    for _ in 0..1000 {
        let r = s.get(&uri).await;
        r.check(200, Want::Any);
        r.assert_json_type();
        let page = r.json();
        let page = page.as_object().expect("a page is an object");
        assert!(page.len() <= page_max, "{uri}: {} pairs", page.len());
        out.extend(page.iter().map(|(k, v)| (k.clone(), v.clone())));
        match r.header("x-next-cursor") {
            None => return out,
            Some(c) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                uri = format!("{first}{sep}cursor={}", enc(c));
            }
        }
    }
    panic!("{first}: paging never ended");
}

#[tokio::test]
async fn keys_list_limit_and_cursor_paging() {
    let s = Srv::new(&[]);
    let all: Vec<String> = (0..50).map(|i| format!("k{i:02}")).collect();
    for (i, k) in all.iter().enumerate() {
        s.put_key(k, "", &i.to_string()).await;
    }
    // limit=7: every key exactly once, with its value.
    let pairs = walk(&s, "/keys?limit=7", 7).await;
    let mut got: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, all.iter().map(String::as_str).collect::<Vec<_>>());
    for (k, v) in &pairs {
        assert_eq!(*v, json!(k[1..].parse::<u64>().unwrap()));
    }
    // limit=1 and a filter: k10..k19, each once.
    let pairs = walk(&s, "/keys?filter=k1%3F&limit=1", 1).await;
    let mut got: Vec<String> = pairs.into_iter().map(|(k, _)| k).collect();
    got.sort_unstable();
    assert_eq!(got, all[10..20].to_vec());
    // A limit larger than everything: one page, no cursor.
    let r = s.get("/keys?limit=10000").await;
    assert!(r.header("x-next-cursor").is_none());
    assert_eq!(r.json().as_object().unwrap().len(), 50);
    // A page smaller than the store says there is more.
    let r = s.get("/keys?limit=3").await;
    r.check(200, Want::Any);
    assert_eq!(r.json().as_object().unwrap().len(), 3);
    assert!(r.header("x-next-cursor").is_some_and(|c| !c.is_empty()));

    for bad in ["0", "-1", "abc", "1.5", "", "99999999999999999999999"] {
        s.expect(
            "GET",
            &format!("/keys?limit={}", enc(bad)),
            None,
            400,
            err("bad_request"),
        )
        .await;
    }
    for bad in [
        "bogus",
        "k1zz",
        "k1",
        "12345",
        "0",
        "k1ffffffff00",
        "k100000000ff",
    ] {
        s.expect(
            "GET",
            &format!("/keys?cursor={}", enc(bad)),
            None,
            400,
            err("bad_request"),
        )
        .await;
    }

    // Keys written or deleted during the scan may or may not appear; the others
    // appear exactly once.
    let first = s.get("/keys?limit=4").await;
    let mut seen: Vec<String> = first.json().as_object().unwrap().keys().cloned().collect();
    let mut cursor = first.header("x-next-cursor").map(str::to_owned);
    let victim = all.iter().find(|k| !seen.contains(k)).unwrap().clone();
    s.expect("DELETE", &format!("/keys/{victim}"), None, 204, Want::Empty)
        .await;
    for i in 0..10 {
        s.put_key(&format!("new{i}"), "", "0").await;
    }
    while let Some(c) = cursor {
        let r = s.get(&format!("/keys?limit=4&cursor={}", enc(&c))).await;
        r.check(200, Want::Any);
        seen.extend(r.json().as_object().unwrap().keys().cloned());
        cursor = r.header("x-next-cursor").map(str::to_owned);
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a key came back twice: {seen:?}");
    for k in all.iter().filter(|k| **k != victim) {
        assert!(unique.contains(k), "{k} missing from the scan");
    }
    assert!(!unique.contains(&victim), "a deleted key came back");
}

#[tokio::test]
async fn keys_list_limit_is_capped_by_list_limit_flag() {
    let s = Srv::new(&["--list-limit", "10"]);
    for i in 0..25 {
        s.put_key(&format!("k{i}"), "", "1").await;
    }
    let r = s.get("/keys").await;
    r.check(200, Want::Any);
    assert_eq!(r.json().as_object().unwrap().len(), 10);
    assert!(r.header("x-next-cursor").is_some());
    let r = s.get("/keys?limit=100").await;
    assert_eq!(r.json().as_object().unwrap().len(), 10);
    let pairs = walk(&s, "/keys", 10).await;
    let got: BTreeSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(got.len(), 25);
    assert_eq!(pairs.len(), 25);
}

#[tokio::test]
async fn keys_incr() {
    let s = Srv::new(&[]);
    let max = i64::MAX.to_string();
    let min = i64::MIN.to_string();
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Option<&str>, u16, Want)> = vec![
        ("POST", "/keys/n/incr".into(), None, 200, is(json!({"key": "n", "value": 1}))),
        ("POST", "/keys/n/incr".into(), None, 200, is(json!({"key": "n", "value": 2}))),
        ("POST", "/keys/n/incr?by=10".into(), None, 200, is(json!({"key": "n", "value": 12}))),
        ("POST", "/keys/n/incr?by=-20".into(), None, 200, is(json!({"key": "n", "value": -8}))),
        ("POST", "/keys/n/incr?by=0".into(), None, 200, is(json!({"key": "n", "value": -8}))),
        ("GET", "/keys/n".into(), None, 200, is(json!({"key": "n", "value": -8, "ttl_ms": null}))),
        ("POST", "/keys/m/incr?by=-5".into(), None, 200, is(json!({"key": "m", "value": -5}))),
        ("POST", format!("/keys/big/incr?by={max}"), None, 200, is(json!({"key": "big", "value": i64::MAX}))),
        ("POST", "/keys/big/incr".into(), None, 409, err("not_an_integer")),
        ("GET", "/keys/big".into(), None, 200, is(json!({"key": "big", "value": i64::MAX, "ttl_ms": null}))),
        ("POST", format!("/keys/small/incr?by={}", enc(&min)), None, 200, is(json!({"key": "small", "value": i64::MIN}))),
        ("POST", "/keys/small/incr?by=-1".into(), None, 409, err("not_an_integer")),
        ("PUT", "/keys/s".into(), Some("\"abc\""), 201, Want::Any),
        ("POST", "/keys/s/incr".into(), None, 409, err("not_an_integer")),
        ("GET", "/keys/s".into(), None, 200, is(json!({"key": "s", "value": "abc", "ttl_ms": null}))),
        ("PUT", "/keys/f".into(), Some("1.5"), 201, Want::Any),
        ("POST", "/keys/f/incr".into(), None, 409, err("not_an_integer")),
        ("PUT", "/keys/o".into(), Some("{\"a\":1}"), 201, Want::Any),
        ("POST", "/keys/o/incr".into(), None, 409, err("not_an_integer")),
        ("PUT", "/keys/nul".into(), Some("null"), 201, Want::Any),
        ("POST", "/keys/nul/incr".into(), None, 409, err("not_an_integer")),
        ("PUT", "/keys/i".into(), Some("41"), 201, Want::Any),
        ("POST", "/keys/i/incr".into(), None, 200, is(json!({"key": "i", "value": 42}))),
        ("POST", "/keys/i/incr?by=abc".into(), None, 400, err("bad_request")),
        ("POST", "/keys/i/incr?by=1.5".into(), None, 400, err("bad_request")),
        ("POST", "/keys/i/incr?by=".into(), None, 400, err("bad_request")),
        ("POST", "/keys/i/incr?by=9223372036854775808".into(), None, 400, err("bad_request")),
        ("GET", "/keys/i".into(), None, 200, is(json!({"key": "i", "value": 42, "ttl_ms": null}))),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, &uri, body, status, want).await;
    }
}

#[tokio::test]
async fn keys_ttl_routes() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Option<&str>, u16, Want)> = vec![
        ("GET", "/keys/none/ttl", None, 404, err("not_found")),
        ("PUT", "/keys/none/ttl", Some("{\"ttl\":5}"), 404, err("not_found")),
        ("DELETE", "/keys/none/ttl", None, 404, err("not_found")),
        ("GET", "/keys/none", None, 404, err("not_found")),
        ("PUT", "/keys/k", Some("1"), 201, Want::Any),
        ("GET", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": null}))),
        ("DELETE", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": null}))),
        ("PUT", "/keys/k/ttl", Some("{\"ttl\":5}"), 200, is(json!({"ttl_ms": 5000}))),
        ("GET", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": 5000}))),
        ("GET", "/keys/k", None, 200, is(json!({"key": "k", "value": 1, "ttl_ms": 5000}))),
        ("PUT", "/keys/k/ttl", Some("{\"ttl\":0}"), 400, err("bad_request")),
        ("PUT", "/keys/k/ttl", Some("{\"ttl\":-1}"), 400, err("bad_request")),
        ("PUT", "/keys/k/ttl", Some("{\"ttl\":315360001}"), 400, err("bad_request")),
        ("PUT", "/keys/k/ttl", Some("{\"ttl\":\"5\"}"), 400, err("bad_request")),
        ("PUT", "/keys/k/ttl", Some("{}"), 400, err("bad_request")),
        ("PUT", "/keys/k/ttl", Some("{oops"), 400, err("bad_request")),
        ("GET", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": 5000}))),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, uri, body, status, want).await;
    }
    s.advance_ms(1500);
    s.expect("GET", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": 3500})))
        .await;
    s.expect(
        "PUT",
        "/keys/k/ttl",
        Some("{\"ttl\":2.5}"),
        200,
        is(json!({"ttl_ms": 2500})),
    )
    .await;
    s.advance_ms(2499);
    s.expect("GET", "/keys/k/ttl", None, 200, is(json!({"ttl_ms": 1})))
        .await;
    s.expect(
        "DELETE",
        "/keys/k/ttl",
        None,
        200,
        is(json!({"ttl_ms": null})),
    )
    .await;
    s.advance_ms(100_000);
    s.expect(
        "GET",
        "/keys/k",
        None,
        200,
        is(json!({"key": "k", "value": 1, "ttl_ms": null})),
    )
    .await;
}

// ---------------------------------------------------------------------------------
// Time: expiry, default TTL, keepttl, incr, sliding
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn ttl_expires_exactly_at_the_deadline() {
    let s = Srv::new(&[]);
    s.put_key("k", "?ttl=1.5", "1").await;
    s.advance_ms(1499);
    s.expect(
        "GET",
        "/keys/k",
        None,
        200,
        is(json!({"key": "k", "value": 1, "ttl_ms": 1})),
    )
    .await;
    s.advance_ms(1);
    s.expect("GET", "/keys/k", None, 404, err("not_found"))
        .await;
    s.expect("HEAD", "/keys/k", None, 404, Want::Empty).await;
}

#[tokio::test]
async fn ttl_expired_key_does_not_exist_for_any_route() {
    let s = Srv::new(&[]);
    let k = U1;
    let kk = format!("/keys/{k}");
    s.put_key(k, "?ttl=1", "\"old\"").await;
    s.put_key("keep", "", "1").await;
    s.advance_ms(1000);
    // No purge has run (there is no purge task without a socket): still gone.
    #[rustfmt::skip]
    let gone: Vec<(&str, String, Option<String>, u16, Want)> = vec![
        ("GET", kk.clone(), None, 404, err("not_found")),
        ("HEAD", kk.clone(), None, 404, Want::Empty),
        ("GET", format!("{kk}/ttl"), None, 404, err("not_found")),
        ("PUT", format!("{kk}/ttl"), Some("{\"ttl\":5}".into()), 404, err("not_found")),
        ("DELETE", format!("{kk}/ttl"), None, 404, err("not_found")),
        ("DELETE", kk.clone(), None, 404, err("not_found")),
        ("PUT", format!("{kk}?if=present"), Some("2".into()), 404, err("not_found")),
        ("PUT", format!("{kk}?keepttl=true&if=present"), Some("2".into()), 404, err("not_found")),
        ("GET", "/keys".into(), None, 200, is(json!({"keep": 1}))),
        ("GET", format!("/keys?filter={}", enc("*-*")), None, 200, is(json!({}))),
        ("GET", "/values".into(), None, 200, is(json!({"keep": 1}))),
        ("GET", format!("/values?keys={k}"), None, 404, err("not_found")),
        ("GET", format!("/values?keys={k},keep"), None, 200, is(json!({"keep": 1}))),
        ("PATCH", "/values".into(), Some(format!("{{\"{k}\":2}}")), 404, err("not_found")),
        ("POST", "/get_value".into(), Some(format!("{{\"key\":\"{k}\"}}")), 404, err("not_found")),
    ];
    for (m, uri, body, status, want) in gone {
        s.expect(m, &uri, body.as_deref(), status, want).await;
    }
    let info = s.get("/info").await.json();
    assert_eq!(
        info["keys"],
        json!(1),
        "/info counts an expired key: {info}"
    );

    // Writes see it as absent too.
    s.expect(
        "POST",
        "/values",
        Some(&format!("{{\"{k}\":2}}")),
        201,
        is(json!({"message": "Items successfully added"})),
    )
    .await;
    s.expect(
        "PUT",
        &format!("{kk}?ttl=1"),
        Some("3"),
        200,
        is(json!({"key": k, "created": false})),
    )
    .await;
    s.advance_ms(1000);
    s.expect(
        "PUT",
        &format!("{kk}?if=absent"),
        Some("4"),
        201,
        is(json!({"key": k, "created": true})),
    )
    .await;
    s.put_key("c", "?ttl=1", "41").await;
    s.advance_ms(1000);
    s.expect(
        "POST",
        "/keys/c/incr",
        None,
        200,
        is(json!({"key": "c", "value": 1})),
    )
    .await;
    s.put_key("d", "?ttl=1", "1").await;
    s.advance_ms(1000);
    s.expect(
        "PUT",
        "/keys/d",
        Some("2"),
        201,
        is(json!({"key": "d", "created": true})),
    )
    .await;
}

#[tokio::test]
async fn ttl_default_replaces_keepttl_keeps_incr_keeps() {
    let s = Srv::new(&["--ttl", "10"]);
    s.expect("PUT", "/keys/a", Some("1"), 201, Want::Any).await;
    assert_eq!(s.ttl_ms("a").await, Some(json!(10_000)));
    s.put_key("b", "?ttl=100", "1").await;
    assert_eq!(s.ttl_ms("b").await, Some(json!(100_000)));
    s.put_key("c", "?ttl=100", "5").await;
    s.advance_ms(1000);
    // A write without a TTL gives the default, replacing the TTL the key had.
    s.put_key("b", "", "2").await;
    assert_eq!(s.ttl_ms("b").await, Some(json!(10_000)));
    // keepttl keeps the deadline.
    s.expect(
        "PUT",
        "/keys/a?keepttl=true",
        Some("3"),
        200,
        is(json!({"key": "a", "created": false})),
    )
    .await;
    assert_eq!(s.ttl_ms("a").await, Some(json!(9_000)));
    // keepttl on a new key: the default.
    s.put_key("fresh", "?keepttl=true", "1").await;
    assert_eq!(s.ttl_ms("fresh").await, Some(json!(10_000)));
    // Bulk writes and /values writes follow the same rule.
    s.put_key("e", "?ttl=100", "1").await;
    s.expect("PUT", "/keys", Some("{\"e\":2}"), 200, Want::Any)
        .await;
    assert_eq!(s.ttl_ms("e").await, Some(json!(10_000)));
    s.expect(
        "PUT",
        "/keys?expire_in=50",
        Some("{\"e\":3}"),
        200,
        Want::Any,
    )
    .await;
    assert_eq!(s.ttl_ms("e").await, Some(json!(50_000)));
    s.expect("POST", "/values", Some("{\"v\":1}"), 201, Want::Any)
        .await;
    assert_eq!(s.ttl_ms("v").await, Some(json!(10_000)));
    s.put_key("w", "?ttl=100", "1").await;
    s.expect("PATCH", "/values", Some("{\"w\":2}"), 204, Want::Empty)
        .await;
    assert_eq!(s.ttl_ms("w").await, Some(json!(10_000)));
    // incr keeps the TTL; a key incr creates gets the default.
    s.expect(
        "POST",
        "/keys/c/incr",
        None,
        200,
        is(json!({"key": "c", "value": 6})),
    )
    .await;
    assert_eq!(s.ttl_ms("c").await, Some(json!(99_000)));
    s.expect(
        "POST",
        "/keys/made/incr",
        None,
        200,
        is(json!({"key": "made", "value": 1})),
    )
    .await;
    assert_eq!(s.ttl_ms("made").await, Some(json!(10_000)));
    // a's deadline is still its first write's: 10 s after the start.
    s.advance_ms(8_999);
    assert!(s.alive("a").await);
    s.advance_ms(1);
    assert!(!s.alive("a").await);
    assert!(s.alive("b").await);

    // Without a default TTL, a plain write removes the TTL; incr still keeps it.
    let s = Srv::new(&[]);
    s.put_key("b", "?ttl=100", "1").await;
    s.put_key("b", "", "2").await;
    assert_eq!(s.ttl_ms("b").await, Some(Value::Null));
    s.put_key("c", "?ttl=100", "1").await;
    s.advance_ms(1000);
    s.expect(
        "POST",
        "/keys/c/incr?by=2",
        None,
        200,
        is(json!({"key": "c", "value": 3})),
    )
    .await;
    assert_eq!(s.ttl_ms("c").await, Some(json!(99_000)));
    s.expect("POST", "/keys/made/incr", None, 200, Want::Any)
        .await;
    assert_eq!(s.ttl_ms("made").await, Some(Value::Null));
}

#[tokio::test]
async fn sliding_reads_restart_the_ttl() {
    let body = format!("{{\"key\":\"{U1}\"}}");
    let upper = format!("{{\"key\":\"{}\"}}", U1.to_uppercase());
    #[rustfmt::skip]
    let touches: Vec<(&str, String, Option<&str>)> = vec![
        ("GET", format!("/keys/{U1}"), None),
        ("GET", "/keys".into(), None),
        ("GET", "/keys?filter=*&limit=5".into(), None),
        ("GET", "/values".into(), None),
        ("GET", format!("/values?keys={U1}"), None),
        ("POST", "/get_value".into(), Some(&body)),
        ("POST", "/get_value".into(), Some(&upper)),
    ];
    for (m, uri, b) in touches {
        let s = Srv::new(&["--ttl", "10", "--sliding"]);
        s.put_key(U1, "", "\"v\"").await;
        s.advance_ms(6000);
        s.expect(m, &uri, b, 200, Want::Any).await;
        s.advance_ms(6000);
        assert_eq!(
            s.ttl_ms(U1).await,
            Some(json!(4000)),
            "{m} {uri} should restart a sliding TTL"
        );
    }
    #[rustfmt::skip]
    let looks: Vec<(&str, String)> = vec![
        ("HEAD", format!("/keys/{U1}")),
        ("GET", format!("/keys/{U1}/ttl")),
    ];
    for (m, uri) in looks {
        let s = Srv::new(&["--ttl", "10", "--sliding"]);
        s.put_key(U1, "", "\"v\"").await;
        s.advance_ms(6000);
        s.expect(m, &uri, None, 200, Want::Any).await;
        s.advance_ms(6000);
        assert_eq!(
            s.ttl_ms(U1).await,
            None,
            "{m} {uri} must not restart a sliding TTL"
        );
    }
}

#[tokio::test]
async fn sliding_restarts_at_the_length_last_written() {
    let s = Srv::new(&["--ttl", "10", "--sliding"]);
    // A GET reports the restarted TTL.
    s.put_key("d", "", "1").await;
    s.advance_ms(6000);
    s.expect(
        "GET",
        "/keys/d",
        None,
        200,
        is(json!({"key": "d", "value": 1, "ttl_ms": 10_000})),
    )
    .await;
    // A write's own ttl is the sliding length.
    s.put_key("k", "?ttl=4", "1").await;
    s.advance_ms(3000);
    s.expect(
        "GET",
        "/keys/k",
        None,
        200,
        is(json!({"key": "k", "value": 1, "ttl_ms": 4000})),
    )
    .await;
    s.advance_ms(3999);
    assert!(s.alive("k").await);
    s.advance_ms(1);
    assert!(!s.alive("k").await);
    // PUT /keys/{key}/ttl sets the sliding length from then on.
    s.put_key("e", "", "1").await;
    s.expect(
        "PUT",
        "/keys/e/ttl",
        Some("{\"ttl\":3}"),
        200,
        is(json!({"ttl_ms": 3000})),
    )
    .await;
    s.advance_ms(2000);
    s.expect(
        "GET",
        "/keys/e",
        None,
        200,
        is(json!({"key": "e", "value": 1, "ttl_ms": 3000})),
    )
    .await;
    // Keys without a TTL are unaffected.
    let s = Srv::new(&["--sliding"]);
    s.put_key("p", "", "1").await;
    s.advance_ms(60_000);
    s.expect(
        "GET",
        "/keys/p",
        None,
        200,
        is(json!({"key": "p", "value": 1, "ttl_ms": null})),
    )
    .await;
    assert_eq!(s.ttl_ms("p").await, Some(Value::Null));
}

// ---------------------------------------------------------------------------------
// Capacity
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn capacity_evicts_the_least_recently_used() {
    let s = Srv::new(&["--capacity", "3"]);
    for k in ["a", "b", "c"] {
        s.put_key(k, "", "1").await;
    }
    s.expect("GET", "/keys/a", None, 200, Want::Any).await;
    s.expect("PUT", "/keys/d", Some("1"), 201, Want::Any).await;
    s.expect("GET", "/keys/b", None, 404, err("not_found"))
        .await;
    for k in ["a", "c", "d"] {
        s.expect("GET", &format!("/keys/{k}"), None, 200, Want::Any)
            .await;
    }
    assert_eq!(s.all().await, json!({"a": 1, "c": 1, "d": 1}));

    // Writes count as use too; HEAD does not.
    let s = Srv::new(&["--capacity", "3"]);
    for k in ["a", "b", "c"] {
        s.put_key(k, "", "1").await;
    }
    s.put_key("a", "", "2").await;
    assert!(s.alive("b").await);
    s.put_key("d", "", "1").await;
    assert!(!s.alive("b").await);
    assert!(s.alive("a").await && s.alive("c").await && s.alive("d").await);
    let info = s.get("/info").await.json();
    assert_eq!(info["evictions"], json!(1), "{info}");
    assert_eq!(info["keys"], json!(3), "{info}");
}

#[tokio::test]
async fn capacity_does_not_count_expired_keys() {
    let s = Srv::new(&["--capacity", "3"]);
    s.put_key("a", "?ttl=1", "1").await;
    s.put_key("b", "", "1").await;
    s.put_key("c", "", "1").await;
    s.advance_ms(1000);
    s.put_key("d", "", "1").await;
    // (HEAD looks without using: LRU order stays b, c, d.)
    assert!(s.alive("b").await && s.alive("c").await && s.alive("d").await);
    assert!(!s.alive("a").await);
    let info = s.get("/info").await.json();
    assert_eq!(info["evictions"], json!(0), "{info}");
    // The store is full now: the next new key evicts the least recently used (b).
    s.put_key("e", "", "1").await;
    assert!(!s.alive("b").await);
    assert!(s.alive("c").await && s.alive("d").await && s.alive("e").await);
    assert_eq!(s.all().await, json!({"c": 1, "d": 1, "e": 1}));
    // POST /values of more keys than room: still at most 3.
    s.expect("POST", "/values", Some("{\"x\":1,\"y\":1}"), 201, Want::Any)
        .await;
    assert_eq!(s.all().await.as_object().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------
// /values
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn values_table() {
    let s = Srv::new(&[]);
    let added = || is(json!({"message": "Items successfully added"}));
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Option<&str>, u16, Want)> = vec![
        ("GET", "/values", None, 200, is(json!({}))),
        ("GET", "/values?keys=a", None, 404, err("not_found")),
        ("POST", "/values", Some("{\"a\":1,\"b\":\"x\",\"c\":[1]}"), 201, added()),
        ("GET", "/values", None, 200, is(json!({"a": 1, "b": "x", "c": [1]}))),
        ("GET", "/values?keys=a,b", None, 200, is(json!({"a": 1, "b": "x"}))),
        ("GET", "/values?keys=a,,b", None, 200, is(json!({"a": 1, "b": "x"}))),
        ("GET", "/values?keys=,a,", None, 200, is(json!({"a": 1}))),
        ("GET", "/values?keys=a,a", None, 200, is(json!({"a": 1}))),
        ("GET", "/values?keys=a,zz", None, 200, is(json!({"a": 1}))),
        ("GET", "/values?keys=zz,yy", None, 404, err("not_found")),
        ("GET", "/values?keys=zz", None, 404, err("not_found")),
        ("GET", "/values?keys=", None, 400, err("bad_request")),
        ("GET", "/values?keys=,,", None, 400, err("bad_request")),
        ("GET", "/values?keys=,", None, 400, err("bad_request")),
        ("POST", "/values", Some("{\"a\":9,\"new\":1}"), 409, err("conflict")),
        ("GET", "/values", None, 200, is(json!({"a": 1, "b": "x", "c": [1]}))),
        ("POST", "/values", Some("{\"d\":null}"), 201, added()),
        ("PATCH", "/values", Some("{\"a\":2,\"b\":{\"y\":true}}"), 204, Want::Empty),
        ("GET", "/values?keys=a,b", None, 200, is(json!({"a": 2, "b": {"y": true}}))),
        ("PATCH", "/values", Some("{\"a\":5,\"missing\":1}"), 404, err("not_found")),
        ("GET", "/values", None, 200, is(json!({"a": 2, "b": {"y": true}, "c": [1], "d": null}))),
        ("POST", "/values", Some("{}"), 400, err("bad_request")),
        ("POST", "/values", Some("[1]"), 400, err("bad_request")),
        ("POST", "/values", Some("1"), 400, err("bad_request")),
        ("POST", "/values", Some("{oops"), 400, err("bad_request")),
        ("PATCH", "/values", Some("{}"), 400, err("bad_request")),
        ("PATCH", "/values", Some("[{\"a\":1}]"), 400, err("bad_request")),
        ("PATCH", "/values", Some("\"a\""), 400, err("bad_request")),
        ("PATCH", "/values", Some("{oops"), 400, err("bad_request")),
        ("GET", "/values", None, 200, is(json!({"a": 2, "b": {"y": true}, "c": [1], "d": null}))),
    ];
    for (m, uri, body, status, want) in rows {
        s.expect(m, uri, body, status, want).await;
    }
    // The /values keys are the /keys keys.
    s.expect(
        "GET",
        "/keys/a",
        None,
        200,
        is(json!({"key": "a", "value": 2, "ttl_ms": null})),
    )
    .await;
}

#[tokio::test]
async fn values_follow_ttl_and_sliding() {
    let s = Srv::new(&["--ttl", "300", "--sliding"]);
    s.expect(
        "POST",
        "/values",
        Some("{\"a\":1,\"b\":2,\"c\":3}"),
        201,
        Want::Any,
    )
    .await;
    assert_eq!(s.ttl_ms("a").await, Some(json!(300_000)));
    s.advance_ms(200_000);
    // A subset read restarts only the subset; PATCH restarts what it writes.
    s.expect("GET", "/values?keys=a", None, 200, is(json!({"a": 1})))
        .await;
    s.expect("PATCH", "/values", Some("{\"c\":30}"), 204, Want::Empty)
        .await;
    s.advance_ms(200_000);
    s.expect("GET", "/values", None, 200, is(json!({"a": 1, "c": 30})))
        .await;
    // That full read restarted both.
    s.advance_ms(299_999);
    assert_eq!(s.ttl_ms("a").await, Some(json!(1)));
    assert_eq!(s.ttl_ms("c").await, Some(json!(1)));
    s.advance_ms(1);
    s.expect("GET", "/values", None, 200, is(json!({}))).await;
    // 409 and 404 leave TTLs alone too.
    s.expect("POST", "/values", Some("{\"x\":1}"), 201, Want::Any)
        .await;
    s.advance_ms(100_000);
    s.expect(
        "POST",
        "/values",
        Some("{\"x\":2,\"y\":2}"),
        409,
        err("conflict"),
    )
    .await;
    s.expect(
        "PATCH",
        "/values",
        Some("{\"x\":2,\"y\":2}"),
        404,
        err("not_found"),
    )
    .await;
    assert_eq!(s.ttl_ms("x").await, Some(json!(200_000)));
    assert_eq!(s.ttl_ms("y").await, None);
}

/// POST and PATCH are all-or-nothing also when clients race on the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_all_or_nothing_under_concurrent_writers() {
    let s = Arc::new(Srv::new(&[]));
    for round in 0..20 {
        let keys = [
            format!("x{round}"),
            format!("y{round}"),
            format!("z{round}"),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let s = Arc::clone(&s);
            // Writers overlap on one or two keys of three.
            let body = match i % 3 {
                0 => json!({&keys[0]: i, &keys[1]: i}),
                1 => json!({&keys[1]: i, &keys[2]: i}),
                _ => json!({&keys[0]: i, &keys[1]: i, &keys[2]: i}),
            }
            .to_string();
            tasks.spawn(async move { (i, s.call("POST", "/values", Some(&body)).await) });
        }
        let mut winners = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (i, r) = done.expect("a writer task");
            match r.status.as_u16() {
                201 => winners.push(i),
                409 => r.assert_error("conflict"),
                other => panic!("{}: {other} {}", r.label, r.text()),
            }
        }
        // Every pair of writers overlaps, so exactly one wins, and all of its keys
        // hold its value while no loser's value is anywhere.
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let w = winners[0];
        let got = s
            .get(&format!("/values?keys={}", keys.join(",")))
            .await
            .json();
        let got = got.as_object().expect("an object");
        assert!(!got.is_empty());
        assert!(
            got.values().all(|v| *v == json!(w)),
            "round {round}: {got:?} (winner {w})"
        );

        // PATCH: racing updates of all three keys leave them equal.
        s.expect(
            "PUT",
            "/keys",
            Some(&json!({&keys[0]: 0, &keys[1]: 0, &keys[2]: 0}).to_string()),
            200,
            Want::Any,
        )
        .await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 1..=8 {
            let s = Arc::clone(&s);
            let body = json!({&keys[0]: i, &keys[1]: i, &keys[2]: i}).to_string();
            tasks.spawn(async move { s.call("PATCH", "/values", Some(&body)).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a writer task").check(204, Want::Empty);
        }
        let got = s
            .get(&format!("/values?keys={}", keys.join(",")))
            .await
            .json();
        let vals: BTreeSet<String> = got
            .as_object()
            .unwrap()
            .values()
            .map(Value::to_string)
            .collect();
        assert_eq!(vals.len(), 1, "round {round}: PATCH mixed writers: {got}");
    }
}

// ---------------------------------------------------------------------------------
// /api, /stats, /test
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn hits_api_paths_and_counts() {
    let s = Srv::new(&[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, Value)> = vec![
        ("/api", json!({"path": "/", "hits": 1})),
        ("/api/", json!({"path": "/", "hits": 2})),
        ("/api", json!({"path": "/", "hits": 3})),
        ("/api/hello", json!({"path": "/hello", "hits": 1})),
        ("/api/hello/", json!({"path": "/hello/", "hits": 1})),
        ("/api/hello/world/", json!({"path": "/hello/world/", "hits": 1})),
        ("/api/hello/world/", json!({"path": "/hello/world/", "hits": 2})),
        ("/api/hello/world", json!({"path": "/hello/world", "hits": 1})),
        ("/api/a/b/c/d/e/f/", json!({"path": "/a/b/c/d/e/f/", "hits": 1})),
        ("/api/a%20b", json!({"path": "/a b", "hits": 1})),
        ("/api/a%20b", json!({"path": "/a b", "hits": 2})),
        ("/api/%C3%BC", json!({"path": "/ü", "hits": 1})),
        ("/api/x%2Fy", json!({"path": "/x/y", "hits": 1})),
        ("/api/x/y", json!({"path": "/x/y", "hits": 2})),
        ("/api/hello", json!({"path": "/hello", "hits": 2})),
    ];
    for (uri, want) in rows {
        s.expect("GET", uri, None, 200, is(want)).await;
    }
    // The route takes no query parameters: refused, and not counted.
    s.expect("GET", "/api/hello?q=1", None, 400, err("bad_request"))
        .await;
    s.expect(
        "GET",
        "/api/hello",
        None,
        200,
        is(json!({"path": "/hello", "hits": 3})),
    )
    .await;
    s.expect("GET", "/api/%FF", None, 400, err("bad_request"))
        .await;
}

#[tokio::test]
async fn hits_stats_ordering_and_limit() {
    let s = Srv::new(&[]);
    for (path, n) in [("/b", 3), ("/a", 3), ("", 2), ("/c", 1), ("/c/", 5)] {
        for _ in 0..n {
            s.expect("GET", &format!("/api{path}"), None, 200, Want::Any)
                .await;
        }
    }
    let all = json!([
        {"path": "/c/", "hits": 5},
        {"path": "/a", "hits": 3},
        {"path": "/b", "hits": 3},
        {"path": "/", "hits": 2},
        {"path": "/c", "hits": 1},
    ]);
    s.expect("GET", "/stats", None, 200, is(all.clone())).await;
    s.expect("GET", "/stats/", None, 200, is(all.clone())).await;
    s.expect(
        "GET",
        "/stats?limit=2",
        None,
        200,
        is(json!([{"path": "/c/", "hits": 5}, {"path": "/a", "hits": 3}])),
    )
    .await;
    s.expect(
        "GET",
        "/stats/?limit=1",
        None,
        200,
        is(json!([{"path": "/c/", "hits": 5}])),
    )
    .await;
    s.expect("GET", "/stats?limit=100", None, 200, is(all))
        .await;
    for bad in ["abc", "-1", "1.5", "", "99999999999999999999999"] {
        s.expect(
            "GET",
            &format!("/stats?limit={bad}"),
            None,
            400,
            err("bad_request"),
        )
        .await;
        s.expect(
            "GET",
            &format!("/stats/?limit={bad}"),
            None,
            400,
            err("bad_request"),
        )
        .await;
    }
    // /stats itself counts nothing.
    s.expect(
        "GET",
        "/stats?limit=1",
        None,
        200,
        is(json!([{"path": "/c/", "hits": 5}])),
    )
    .await;
    let empty = Srv::new(&[]);
    empty
        .expect("GET", "/stats", None, 200, is(json!([])))
        .await;
}

#[tokio::test]
async fn hits_are_apart_from_the_keyspace() {
    // A default TTL of 1 s and a capacity of 1 would expire or evict anything in
    // the key space.
    let s = Srv::new(&["--ttl", "1", "--capacity", "1"]);
    for uri in ["/api/x", "/api/x", "/api/y", "/api"] {
        s.expect("GET", uri, None, 200, Want::Any).await;
    }
    assert_eq!(s.all().await, json!({}));
    s.expect("GET", "/values", None, 200, is(json!({}))).await;
    s.put_key("k", "", "1").await;
    s.put_key("j", "", "1").await;
    s.expect("DELETE", "/keys", None, 200, is(json!({"deleted": 1})))
        .await;
    s.advance_ms(60_000);
    let stats = json!([
        {"path": "/x", "hits": 2},
        {"path": "/", "hits": 1},
        {"path": "/y", "hits": 1},
    ]);
    s.expect("GET", "/stats", None, 200, is(stats)).await;
    s.expect(
        "GET",
        "/api/x",
        None,
        200,
        is(json!({"path": "/x", "hits": 3})),
    )
    .await;
    s.expect("GET", "/keys?filter=*x*", None, 200, is(json!({})))
        .await;
}

#[tokio::test]
async fn hits_test_route_bounds() {
    let s = Srv::new(&[]);
    for n in ["0", "100001", "abc", "-1", "1.5", "99999999999"] {
        s.expect("POST", &format!("/test/{n}"), None, 400, err("bad_request"))
            .await;
        s.expect(
            "POST",
            &format!("/test/{n}/"),
            None,
            400,
            err("bad_request"),
        )
        .await;
    }
    // In range, but the router alone has no socket to send the requests to.
    for uri in ["/test/5", "/test/5/", "/test/1", "/test/100000"] {
        let r = s.expect("POST", uri, None, 503, err("unavailable")).await;
        assert!(r.header("retry-after").is_some(), "{uri}: no Retry-After");
    }
    s.expect("GET", "/stats", None, 200, is(json!([]))).await;
}

// ---------------------------------------------------------------------------------
// /get_value
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn get_value_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let s = read_only(&dir, &[]);
    let q = |k: &str| format!("{{\"key\":\"{k}\"}}");
    let mixed: String = U1
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    #[rustfmt::skip]
    let rows: Vec<(String, u16, Want)> = vec![
        (q(U1), 200, is(json!({"value": "alpha"}))),
        (q(&U1.to_uppercase()), 200, is(json!({"value": "alpha"}))),
        (q(&mixed), 200, is(json!({"value": "alpha"}))),
        (q(U2), 200, is(json!({"value": "with,comma"}))),
        (q(U3), 200, is(json!({"value": "42"}))),
        (q(U_UNKNOWN), 404, err("not_found")),
        (q(&U_UNKNOWN.to_uppercase()), 404, err("not_found")),
        (q("not-a-uuid"), 400, err("bad_request")),
        (q(""), 400, err("bad_request")),
        // Version 1, and a v4 with the wrong variant.
        (q("0b0c7a8e-5c4d-1f3a-9b2e-1a2b3c4d5e6f"), 400, err("bad_request")),
        (q("0b0c7a8e-5c4d-4f3a-7b2e-1a2b3c4d5e6f"), 400, err("bad_request")),
        (q(&format!("{U1}0")), 400, err("bad_request")),
        (q(&U1[1..]), 400, err("bad_request")),
        (q("0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6g"), 400, err("bad_request")),
        ("{}".into(), 400, err("bad_request")),
        ("{\"other\":\"x\"}".into(), 400, err("bad_request")),
        ("{\"key\":5}".into(), 400, err("bad_request")),
        ("{\"key\":null}".into(), 400, err("bad_request")),
        ("{\"key\":{}}".into(), 400, err("bad_request")),
        ("[]".into(), 400, err("bad_request")),
        ("{oops".into(), 400, err("bad_request")),
    ];
    for (body, status, want) in rows {
        s.expect("POST", "/get_value", Some(&body), status, want)
            .await;
    }
    // Writable stores answer too, with any JSON value.
    let w = Srv::new(&[]);
    w.put_key(U1, "", "{\"n\":[1,2]}").await;
    w.expect(
        "POST",
        "/get_value",
        Some(&q(U1)),
        200,
        is(json!({"value": {"n": [1, 2]}})),
    )
    .await;
    w.expect(
        "POST",
        "/get_value",
        Some(&q(&U1.to_uppercase())),
        200,
        is(json!({"value": {"n": [1, 2]}})),
    )
    .await;
    w.expect("POST", "/get_value", Some(&q(U2)), 404, err("not_found"))
        .await;
}

// ---------------------------------------------------------------------------------
// Read-only, auth, operations, load shedding
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn read_only_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("never-created");
    let data_dir = data_dir.to_str().unwrap();
    let s = read_only(&dir, &["--data-dir", data_dir]);
    let u = format!("/keys/{U1}");
    #[rustfmt::skip]
    let writes: Vec<(&str, String, Option<String>)> = vec![
        ("PUT", "/keys/k".into(), Some("1".into())),
        ("PUT", u.clone(), Some("1".into())),
        ("PUT", format!("{u}?if=present"), Some("1".into())),
        ("DELETE", u.clone(), None),
        ("DELETE", "/keys/missing".into(), None),
        ("PUT", "/keys".into(), Some("{\"k\":1}".into())),
        ("DELETE", "/keys".into(), None),
        ("POST", "/keys/n/incr".into(), None),
        ("POST", format!("{u}/incr?by=2"), None),
        ("PUT", format!("{u}/ttl"), Some("{\"ttl\":5}".into())),
        ("DELETE", format!("{u}/ttl"), None),
        ("POST", "/values".into(), Some("{\"k\":1}".into())),
        ("PATCH", "/values".into(), Some(format!("{{\"{U1}\":1}}"))),
    ];
    for (m, uri, body) in writes {
        s.expect(m, &uri, body.as_deref(), 403, err("read_only"))
            .await;
    }
    // Reads work and see the dataset unchanged.
    #[rustfmt::skip]
    let reads: Vec<(&str, String, Option<String>, u16, Want)> = vec![
        ("GET", "/keys".into(), None, 200, is(csv_pairs())),
        ("GET", u.clone(), None, 200, is(json!({"key": U1, "value": "alpha", "ttl_ms": null}))),
        ("HEAD", u.clone(), None, 200, Want::Empty),
        ("HEAD", "/keys/missing".into(), None, 404, Want::Empty),
        ("GET", "/keys/missing".into(), None, 404, err("not_found")),
        ("GET", format!("{u}/ttl"), None, 200, is(json!({"ttl_ms": null}))),
        ("GET", "/keys?filter=0*".into(), None, 200, is(json!({U1: "alpha"}))),
        ("GET", "/values".into(), None, 200, is(csv_pairs())),
        ("GET", format!("/values?keys={U1},{U3},nope"), None, 200, is(json!({U1: "alpha", U3: "42"}))),
        ("POST", "/get_value".into(), Some(format!("{{\"key\":\"{U2}\"}}")), 200, is(json!({"value": "with,comma"}))),
        ("GET", "/healthz".into(), None, 200, is(json!({"status": "ok"}))),
        ("GET", "/readyz".into(), None, 200, Want::Any),
    ];
    for (m, uri, body, status, want) in reads {
        s.expect(m, &uri, body.as_deref(), status, want).await;
    }
    let pairs = walk(&s, "/keys?limit=1", 1).await;
    assert_eq!(pairs.len(), 3);
    // The hit counters still count, in memory.
    s.expect(
        "GET",
        "/api/x",
        None,
        200,
        is(json!({"path": "/x", "hits": 1})),
    )
    .await;
    s.expect(
        "GET",
        "/api/x",
        None,
        200,
        is(json!({"path": "/x", "hits": 2})),
    )
    .await;
    s.expect(
        "GET",
        "/stats",
        None,
        200,
        is(json!([{"path": "/x", "hits": 2}])),
    )
    .await;
    // A read-only server writes no data directory.
    assert!(!std::path::Path::new(data_dir).exists());
}

#[tokio::test]
async fn auth_token_required_except_probes() {
    let s = Srv::new(&["--auth-token", "s3cret"]);
    #[rustfmt::skip]
    let routes: Vec<(&str, &str, Option<&str>)> = vec![
        ("GET", "/keys", None),
        ("DELETE", "/keys", None),
        ("PUT", "/keys", Some("{\"a\":1}")),
        ("GET", "/keys/k", None),
        ("HEAD", "/keys/k", None),
        ("PUT", "/keys/k", Some("1")),
        ("POST", "/keys/k/incr", None),
        ("GET", "/keys/k/ttl", None),
        ("GET", "/values", None),
        ("POST", "/values", Some("{\"a\":1}")),
        ("GET", "/api/x", None),
        ("GET", "/stats", None),
        ("POST", "/test/5", None),
        ("POST", "/get_value", Some("{\"key\":\"0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f\"}")),
        ("GET", "/metrics", None),
        ("GET", "/info", None),
        ("GET", "/openapi.json", None),
    ];
    let wrong = [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Bearer s3cret2"),
        Some("Bearer s3cret "),
        Some("Bearer  s3cret"),
        Some("Basic czNjcmV0"),
        Some("Basic s3cret"),
        Some("s3cret"),
        Some("Bearer"),
        Some("Bearer "),
        Some(""),
    ];
    for (m, uri, body) in &routes {
        for auth in wrong {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let r = s.send(m, uri, *body, &headers).await;
            if *m == "HEAD" {
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{m} {uri} with {auth:?}"
                );
            } else {
                r.check(401, err("unauthorized"));
            }
        }
    }
    let ok = [("authorization", "Bearer s3cret")];
    // Nothing got through.
    s.send("GET", "/keys", None, &ok)
        .await
        .check(200, is(json!({})));
    s.send("GET", "/stats", None, &ok)
        .await
        .check(200, is(json!([])));
    // The right token works everywhere.
    s.send("PUT", "/keys/k", Some("1"), &ok)
        .await
        .check(201, is(json!({"key": "k", "created": true})));
    s.send("GET", "/keys/k", None, &ok)
        .await
        .check(200, is(json!({"key": "k", "value": 1, "ttl_ms": null})));
    s.send("GET", "/api/x", None, &ok)
        .await
        .check(200, is(json!({"path": "/x", "hits": 1})));
    s.send("GET", "/info", None, &ok)
        .await
        .check(200, Want::Any);
    // Probes are open, with or without a token, right or wrong.
    for auth in [None, Some("Bearer wrong"), Some("Bearer s3cret")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        s.send("GET", "/healthz", None, &headers)
            .await
            .check(200, is(json!({"status": "ok"})));
        s.send("GET", "/readyz", None, &headers)
            .await
            .check(200, Want::Any);
    }
}

/// RFC 9110 §11.1: the authentication scheme is a case-insensitive token, so
/// `bearer TOKEN` is the same credential as `Bearer TOKEN`.
#[tokio::test]
async fn auth_scheme_is_case_insensitive() {
    let s = Srv::new(&["--auth-token", "s3cret"]);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} s3cret");
        s.send("GET", "/keys", None, &[("authorization", &value)])
            .await
            .check(200, is(json!({})));
    }
}

#[tokio::test]
async fn ops_healthz_readyz() {
    let s = Srv::new(&[]);
    s.expect("GET", "/healthz", None, 200, is(json!({"status": "ok"})))
        .await;
    s.expect("GET", "/readyz", None, 200, is(json!({"status": "ready"})))
        .await
        .assert_json_type();
}

#[tokio::test]
async fn ops_metrics() {
    let s = Srv::new(&["--capacity", "1"]);
    s.put_key("a", "", "1").await;
    s.put_key("b", "?ttl=1", "1").await; // evicts a
    s.advance_ms(1000);
    s.expect("GET", "/keys/b", None, 404, Want::Any).await; // a miss, expired
    s.put_key("c", "", "1").await;
    s.expect("GET", "/keys/c", None, 200, Want::Any).await; // a hit
    let r = s.expect("GET", "/metrics", None, 200, Want::Any).await;
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "metrics Content-Type {ct:?}");
    let text = r.text();
    for name in [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "kv_keys 1",
        "kv_hits_total 1",
        "kv_misses_total 1",
        "kv_evictions_total 1",
        "kv_expirations_total",
        "request_count{",
        "request_latency_seconds_bucket{",
        "internal_error_count 0",
    ] {
        assert!(text.contains(name), "/metrics lacks {name:?}:\n{text}");
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("http_requests_total{") && l.contains("status=\"404\""))
        .unwrap_or_else(|| panic!("no 404 series:\n{text}"));
    assert!(
        line.contains("method=\"GET\"") && line.contains("route=\"/keys/{key}\""),
        "{line}"
    );
}

/// The value of the series `name{labels}` (labels in any order) in Prometheus text.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (head, value) = line.rsplit_once(' ')?;
        let rest = head.strip_prefix(name)?;
        let inner = match rest {
            "" => "",
            _ => rest.strip_prefix('{')?.strip_suffix('}')?,
        };
        let mut have: Vec<&str> = inner.split(',').filter(|l| !l.is_empty()).collect();
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        have.sort_unstable();
        want.sort_unstable();
        (have == want).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn ops_metrics_count_known_traffic_exactly() {
    let s = Srv::new(&[]);
    for key in ["a", "b", "c"] {
        s.put_key(key, "", "1").await;
    }
    s.expect("GET", "/keys/a", None, 200, Want::Any).await;
    s.expect("GET", "/keys/b", None, 200, Want::Any).await;
    s.expect("GET", "/keys/zz", None, 404, Want::Any).await;
    s.expect("DELETE", "/keys/c", None, 204, Want::Empty).await;
    s.expect("GET", "/no/such/route", None, 404, Want::Any)
        .await;
    // Invented methods share one label, so they cannot grow the registry.
    for method in ["PURGE", "BREW"] {
        let r = s.call(method, "/keys/a", None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let text = s
        .expect("GET", "/metrics", None, 200, Want::Any)
        .await
        .text();

    let count = |name: &str, labels: &[(&str, &str)]| {
        series(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{text}"))
    };
    let key = ("route", "/keys/{key}");
    for name in ["http_requests_total", "request_count"] {
        assert_eq!(
            count(name, &[("method", "PUT"), key, ("status", "201")]),
            3.0
        );
        assert_eq!(
            count(name, &[("method", "GET"), key, ("status", "200")]),
            2.0
        );
        assert_eq!(
            count(name, &[("method", "GET"), key, ("status", "404")]),
            1.0
        );
        assert_eq!(
            count(name, &[("method", "DELETE"), key, ("status", "204")]),
            1.0
        );
        let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
        assert_eq!(count(name, &unmatched), 1.0);
        let other = [("method", "other"), key, ("status", "405")];
        assert_eq!(count(name, &other), 2.0);
    }
    assert!(
        !text.contains("PURGE"),
        "an invented method became a label:\n{text}"
    );
    for name in [
        "http_request_duration_seconds_count",
        "request_latency_seconds_count",
    ] {
        assert_eq!(count(name, &[("method", "PUT"), key]), 3.0);
        assert_eq!(count(name, &[("method", "GET"), key]), 3.0);
        assert_eq!(count(name, &[("method", "DELETE"), key]), 1.0);
    }
    // Every request falls in the last bucket; no raw path is ever a label.
    let inf = [("method", "GET"), key, ("le", "+Inf")];
    assert_eq!(count("http_request_duration_seconds_bucket", &inf), 3.0);
    assert!(
        !text.contains("/keys/a\""),
        "a raw key became a label:\n{text}"
    );
    assert_eq!(count("kv_keys", &[]), 2.0);
    assert_eq!(count("kv_hits_total", &[]), 2.0);
    assert_eq!(count("kv_misses_total", &[]), 1.0);
}

#[tokio::test]
async fn ops_info() {
    let s = Srv::new(&[]);
    s.put_key("a", "", "1").await;
    s.put_key("b", "?ttl=1", "1").await;
    s.advance_ms(1000);
    s.expect("GET", "/keys/a", None, 200, Want::Any).await;
    s.expect("GET", "/keys/zz", None, 404, Want::Any).await;
    let r = s.expect("GET", "/info", None, 200, Want::Any).await;
    r.assert_json_type();
    let info = r.json();
    for field in [
        "keys",
        "hits",
        "misses",
        "evictions",
        "expirations",
        "uptime_seconds",
    ] {
        assert!(
            info[field].is_u64(),
            "/info {field} is not a plain integer: {info}"
        );
    }
    assert!(
        info["version"].is_string() && info["mode"].is_string(),
        "{info}"
    );
    assert_eq!(info["keys"], json!(1), "{info}");
    assert!(info["hits"].as_u64() >= Some(1), "{info}");
    assert!(info["misses"].as_u64() >= Some(1), "{info}");
    assert_eq!(info["evictions"], json!(0), "{info}");
}

#[tokio::test]
async fn ops_openapi_document() {
    let s = Srv::new(&[]);
    let r = s.get("/openapi.json").await;
    r.check(200, Want::Any);
    r.assert_json_type();
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not an OpenAPI 3 document: {doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    #[rustfmt::skip]
    let routes: [(&str, &[&str]); 15] = [
        ("/keys", &["get", "put", "delete"]),
        ("/keys/{key}", &["get", "head", "put", "delete"]),
        ("/keys/{key}/incr", &["post"]),
        ("/keys/{key}/ttl", &["get", "put", "delete"]),
        ("/values", &["get", "post", "patch"]),
        ("/api", &["get"]),
        ("/api/{path}", &["get"]),
        ("/stats", &["get"]),
        ("/test/{n}", &["post"]),
        ("/get_value", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/info", &["get"]),
        ("/openapi.json", &["get"]),
    ];
    for (path, methods) in routes {
        let ops = paths
            .get(path)
            .unwrap_or_else(|| panic!("openapi.json lacks {path}"));
        for m in methods {
            assert!(ops.get(*m).is_some(), "openapi.json lacks {m} {path}");
        }
    }
}

#[tokio::test]
async fn concurrency_limit_sheds_with_retry_after() {
    let s = Srv::new(&["--max-concurrency", "1"]);
    let held = Arc::clone(s.state.slots())
        .try_acquire_owned()
        .expect("a free slot");
    for (m, uri, body) in [
        ("GET", "/keys", None),
        ("PUT", "/keys/k", Some("1")),
        ("GET", "/nope", None),
        ("GET", "/api/x", None),
    ] {
        let r = s.expect(m, uri, body, 503, err("unavailable")).await;
        let retry = r
            .header("retry-after")
            .unwrap_or_else(|| panic!("{m} {uri}: no Retry-After"));
        assert!(retry.parse::<u64>().is_ok(), "Retry-After {retry:?}");
    }
    // Probes are never shed.
    s.expect("GET", "/healthz", None, 200, is(json!({"status": "ok"})))
        .await;
    s.expect("GET", "/readyz", None, 200, Want::Any).await;
    drop(held);
    s.expect("GET", "/keys", None, 200, is(json!({}))).await;
    s.expect("GET", "/stats", None, 200, is(json!([]))).await;
    s.expect("PUT", "/keys/k", Some("1"), 201, Want::Any).await;
    // The slot is given back after each request.
    s.expect("GET", "/keys/k", None, 200, Want::Any).await;
    assert_eq!(s.state.slots().available_permits(), 1);
}

// ---------------------------------------------------------------------------------
// Store modes (flags)
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn store_modes_flags_and_load() {
    use clap::Parser as _;
    // --read-only without --load is a start-up error; bad values are refused.
    for args in [
        vec!["kvserver", "--read-only"],
        vec!["kvserver", "--ttl", "0"],
        vec!["kvserver", "--ttl", "315360001"],
        vec!["kvserver", "--capacity", "0"],
        vec!["kvserver", "--fsync", "sometimes"],
        vec!["kvserver", "--listen", "nowhere"],
    ] {
        assert!(
            kvserver::Config::try_parse_from(args.clone()).is_err(),
            "{args:?} accepted"
        );
    }
    for fsync in ["always", "everysec", "no"] {
        assert!(kvserver::Config::try_parse_from(["kvserver", "--fsync", fsync]).is_ok());
    }

    // --load without --read-only imports into a writable store.
    let dir = tempfile::tempdir().unwrap();
    #[rustfmt::skip]
    let files = [
        ("d.json", "{\"a\": 1, \"b\": {\"x\": [true]}, \"c\": \"s\"}"),
        ("d.jsonl", "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\", \"value\": {\"x\": [true]}}\n\n{\"key\": \"c\", \"value\": \"s\"}\n"),
    ];
    for (name, content) in files {
        let path = dataset(&dir, name, content);
        let s = Srv::new(&["--load", &path]);
        assert_eq!(
            s.all().await,
            json!({"a": 1, "b": {"x": [true]}, "c": "s"}),
            "{name}"
        );
        s.expect(
            "PUT",
            "/keys/a",
            Some("2"),
            200,
            is(json!({"key": "a", "created": false})),
        )
        .await;
        s.expect("PUT", "/keys/d", Some("3"), 201, Want::Any).await;
        s.expect("DELETE", "/keys/b", None, 204, Want::Empty).await;
    }
    let csv = dataset(&dir, "d.csv", CSV);
    let s = Srv::new(&["--load", &csv]);
    assert_eq!(s.all().await, csv_pairs());
    s.expect(
        "POST",
        &format!("/keys/{U3}/incr"),
        None,
        409,
        err("not_an_integer"),
    )
    .await;

    // A malformed record: the server does not start, and the error names the line.
    let bad = dataset(
        &dir,
        "bad.jsonl",
        "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\", \"value\": }\n",
    );
    let e = Srv::try_new(&["--load", &bad])
        .err()
        .expect("a malformed dataset must fail");
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    let e = Srv::try_new(&["--read-only", "--load", &bad])
        .err()
        .expect("a malformed dataset must fail");
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    let unknown = dataset(&dir, "d.txt", "a,b\n");
    assert!(Srv::try_new(&["--load", &unknown]).is_err());
}

#[tokio::test]
async fn store_modes_data_dir_persists_keys_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    {
        let s = Srv::new(&["--data-dir", data]);
        s.put_key("k", "", "{\"v\":1}").await;
        s.put_key("gone", "", "1").await;
        s.expect("DELETE", "/keys/gone", None, 204, Want::Empty)
            .await;
        s.expect(
            "GET",
            "/api/x",
            None,
            200,
            is(json!({"path": "/x", "hits": 1})),
        )
        .await;
        s.state.sync().await.expect("flushing the journal");
    }
    let s = Srv::new(&["--data-dir", data]);
    assert_eq!(s.all().await, json!({"k": {"v": 1}}));
    s.expect(
        "GET",
        "/api/x",
        None,
        200,
        is(json!({"path": "/x", "hits": 2})),
    )
    .await;
    s.expect(
        "GET",
        "/stats",
        None,
        200,
        is(json!([{"path": "/x", "hits": 2}])),
    )
    .await;
}

/// `--backend redis://...` with Redis unreachable: `503 unavailable` within a few
/// seconds, and `/readyz` says so. (Port 1 on localhost has no Redis.)
#[tokio::test]
async fn backend_redis_unreachable_is_503() {
    let s = match Srv::try_new(&["--backend", "redis://127.0.0.1:1/0"]) {
        Ok(s) => s,
        // Refusing to start at all is not what the API describes, but it is not a
        // silent fallback either; report it.
        Err(e) => panic!("the server should start and answer 503 while Redis is down: {e:#}"),
    };
    let within = Duration::from_secs(5);
    let r = tokio::time::timeout(within, s.get("/readyz"))
        .await
        .expect("/readyz must answer within a few seconds");
    r.check(503, err("unavailable"));
    let r = tokio::time::timeout(within, s.call("PUT", "/keys/k", Some("1")))
        .await
        .expect("a write must answer within a few seconds");
    r.check(503, err("unavailable"));
    s.expect("GET", "/healthz", None, 200, is(json!({"status": "ok"})))
        .await;
}
