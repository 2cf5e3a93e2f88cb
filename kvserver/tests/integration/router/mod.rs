//! Router tests: every row of the HTTP API (`docs/http-api.md`), sent
//! through `kvserver::app` with `tower::ServiceExt::oneshot` — no socket — over a
//! state built with a `ManualClock`, so TTLs are tested by moving time, never by
//! sleeping.
//!
//! Each test builds its own server(s) from command-line flags. Replyonses are checked
//! for status, the exact JSON body (parsed, compared with `json!`), the JSON content
//! type, and, for errors, a body of exactly `error` and `message`.
//!
//! What needs a listening socket (a successful `/test/{n}`, shutdown, restart of a
//! real process) is in the `server` module.

use crate::util::{self, Reply};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use kvcore::ManualClock;
use kvserver::AppState;
use serde_json::{Value, json};

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

// The router's own checks of a response.
impl Reply {
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
                self.body.is_empty(),
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
    ) -> Reply {
        util::send(&self.app, util::request(method, uri, body, headers)).await
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
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

    async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Reply {
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
    ) -> Reply {
        let r = self.call(method, uri, body).await;
        r.check(status, want);
        r
    }

    async fn get(&self, uri: &str) -> Reply {
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

// The tests, by subject; each module uses the harness above.
mod conventions;
mod keys;
mod ops;
mod stored;
mod time;
mod values;
