//! Mistakes that explain themselves: each common client mistake gets an answer that
//! says what to do instead.
//!
//! - a query parameter the route does not declare is `400`, naming it and the ones the
//!   route accepts (taken from the OpenAPI document, so the two cannot drift);
//! - a `/` inside a key, sent unencoded, gets a `404` that says to send it as `%2F`;
//! - a bare word where a JSON value is expected is told how a string is sent;
//! - `401` carries `WWW-Authenticate: Bearer`;
//! - `GET /values` reads keys with commas through repeated `key=`;
//! - `PUT /keys` says how many keys it evicted;
//! - logs on a pipe carry no colour codes; `/metrics` describes every metric; `--help`
//!   shows the backend URL form the README shows.
//!
//! Requests go through `kvserver::app` with `oneshot`, except the logs and `--help`,
//! which run the binary.

use crate::util::{self, Reply};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use kvcore::ManualClock;
use kvserver::AppState;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret";

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A router over a fresh memory-only state built from `args`, on a clock that stands
/// still.
fn server(args: &[&str]) -> Router {
    let mut all = vec!["--no-persist"];
    all.extend_from_slice(args);
    let clock = Arc::new(ManualClock::new());
    let state = AppState::build_with_clock(&util::config(&all), clock).expect("building the state");
    kvserver::app(state)
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Reply {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let body = body.map(|b| Bytes::from(b.to_owned()));
    util::send(app, util::request(method, uri, body, &headers)).await
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Reply {
    send(app, method, uri, body, None).await
}

/// The OpenAPI document the server serves.
fn document() -> Value {
    serde_json::to_value(kvserver::openapi::document()).expect("the document as JSON")
}

/// Every (method, path template, declared query parameters) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().expect("a parameter name").to_owned())
                .collect();
            out.push((method.to_ascii_uppercase(), path.clone(), query));
        }
    }
    out
}

/// A path of `template` that its route serves.
fn concrete(template: &str) -> String {
    template
        .replace("{key}", "k")
        .replace("{n}", "5")
        .replace("{path}", "x")
}

// ---------------------------------------------------------------------------------
// Unknown query parameters
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_misspelt_query_parameter_is_refused_and_changes_nothing() {
    let app = server(&["--ttl", "100"]);
    let r = call(&app, "PUT", "/keys/greeting?tll=5", Some("\"hi\"")).await;
    let message = r.expect_error(400, "bad_request");
    assert!(message.contains("\"tll\""), "{message}");
    assert!(
        message.contains("PUT /keys/{key} accepts: ttl, keepttl, if"),
        "{message}"
    );
    call(&app, "GET", "/keys/greeting", None)
        .await
        .expect_error(404, "not_found");

    // Spelt right, it is taken.
    call(&app, "PUT", "/keys/greeting?ttl=5", Some("\"hi\""))
        .await
        .expect(201);
    let ttl = call(&app, "GET", "/keys/greeting/ttl", None).await;
    assert_eq!(ttl.expect(200).json()["ttl_ms"], 5000);

    // Several unknown names are all named; known ones beside them are not.
    let r = call(&app, "GET", "/keys?limit=5&colour=red&size=2", None).await;
    let message = r.expect_error(400, "bad_request");
    assert!(
        message.starts_with("unknown query parameters \"colour\", \"size\";"),
        "{message}"
    );
    assert!(
        message.ends_with("GET /keys accepts: filter, limit, cursor"),
        "{message}"
    );
}

#[tokio::test]
async fn every_route_refuses_query_parameters_it_does_not_declare() {
    let doc = document();
    for (method, template, declared) in operations(&doc) {
        let app = server(&[]);
        call(&app, "PUT", "/keys/k", Some("1")).await.expect(201);
        let uri = format!("{}?zz_unknown=1", concrete(&template));
        let r = call(&app, &method, &uri, Some("{\"k\": 1}")).await;
        r.expect(400);
        if method == "HEAD" {
            continue; // no body to read the message from
        }
        let message = r.expect_error(400, "bad_request");
        assert!(
            message.contains("\"zz_unknown\""),
            "{method} {uri}: {message}"
        );
        assert!(
            message.contains(&format!("{method} {template} ")),
            "{method} {uri}: {message}"
        );
        // The names offered are those the document declares, in its order.
        if declared.is_empty() {
            assert!(message.ends_with("takes no query parameters"), "{message}");
        } else {
            let offered = format!("accepts: {}", declared.join(", "));
            assert!(message.ends_with(&offered), "{method} {uri}: {message}");
        }
        // Nothing was written: the key is as it was and nothing else exists.
        let all = call(&app, "GET", "/keys", None).await;
        assert_eq!(
            all.expect(200).json(),
            json!({"k": 1}),
            "after {method} {uri}"
        );
    }
}

#[tokio::test]
async fn unknown_query_parameters_come_after_auth_routing_and_read_only() {
    // 401 first.
    let app = server(&["--auth-token", TOKEN]);
    call(&app, "PUT", "/keys/k?tll=5", Some("1"))
        .await
        .expect_error(401, "unauthorized");
    send(&app, "PUT", "/keys/k?tll=5", Some("1"), Some(TOKEN))
        .await
        .expect_error(400, "bad_request");

    // Then 404 and 405.
    let app = server(&[]);
    let message = call(&app, "GET", "/nope?x=1", None)
        .await
        .expect_error(404, "not_found")
        .to_owned();
    assert_eq!(message, "no such route");
    call(&app, "POST", "/keys?x=1", Some("{}"))
        .await
        .expect_error(405, "method_not_allowed");

    // Then 403 on a read-only server; reads there still check their parameters.
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("d.json");
    std::fs::write(&data, r#"{"a": 1}"#).expect("writing a dataset");
    let data = data.to_str().expect("a UTF-8 path");
    let app = server(&["--read-only", "--load", data]);
    call(&app, "PUT", "/keys/k?tll=5", Some("1"))
        .await
        .expect_error(403, "read_only");
    call(&app, "PUT", "/keys?tll=5", Some("{\"k\":1}"))
        .await
        .expect_error(403, "read_only");
    call(&app, "GET", "/keys/a?verbose=1", None)
        .await
        .expect_error(400, "bad_request");
    call(&app, "GET", "/keys/a", None).await.expect(200);
    // Every operation: the writes (those documenting 403) answer 403, the rest 400.
    let doc = document();
    for (method, template, _) in operations(&doc) {
        let op = &doc["paths"][&template][method.to_ascii_lowercase()];
        let write = op["responses"].get("403").is_some();
        let uri = format!("{}?zz_unknown=1", concrete(&template));
        let r = call(&app, &method, &uri, Some("{\"k\": 1}")).await;
        r.expect(if write { 403 } else { 400 });
    }
    assert_eq!(
        call(&app, "GET", "/keys", None).await.json(),
        json!({"a": 1})
    );
}

#[tokio::test]
async fn the_document_says_unknown_query_parameters_are_refused() {
    let doc = document();
    for (method, template, _) in operations(&doc) {
        let op = &doc["paths"][&template][method.to_ascii_lowercase()];
        let description = op["responses"]["400"]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {template}: no 400 documented"));
        assert!(
            description.contains("a query parameter this operation does not declare"),
            "{method} {template}: {description}"
        );
    }
}

// ---------------------------------------------------------------------------------
// A `/` inside a key
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_slash_inside_a_key_gets_a_hint_under_keys_only() {
    let app = server(&[]);
    call(&app, "PUT", "/keys/a%2Fb", Some("1"))
        .await
        .expect(201);
    for (method, uri) in [
        ("GET", "/keys/a/b"),
        ("GET", "/keys/greeting/"),
        ("GET", "/keys/"),
        ("PUT", "/keys/a/b"),
        ("DELETE", "/keys/x/y/z"),
    ] {
        let r = call(&app, method, uri, None).await;
        let message = r.expect_error(404, "not_found");
        assert!(
            message.starts_with("no such route") && message.contains("%2F"),
            "{method} {uri}: {message}"
        );
    }
    let message = call(&app, "GET", "/keys/a/b", None)
        .await
        .expect_error(404, "not_found")
        .to_owned();
    assert!(message.contains("/keys/a%2Fb"), "{message}");
    let message = call(&app, "GET", "/keys/greeting/", None)
        .await
        .expect_error(404, "not_found")
        .to_owned();
    assert!(
        message.ends_with(r#"the key "greeting" is /keys/greeting"#),
        "{message}"
    );
    // The encoded form it suggests is the key.
    assert_eq!(
        call(&app, "GET", "/keys/a%2Fb", None)
            .await
            .expect(200)
            .json()["value"],
        1
    );
    // Other unknown routes keep the plain message.
    for uri in ["/nope", "/keysx/a", "/value/a/b", "/api"] {
        let r = call(&app, "POST", uri, None).await;
        if r.status == StatusCode::NOT_FOUND {
            assert_eq!(r.json()["message"], "no such route", "{uri}");
        }
    }
    assert_eq!(
        call(&app, "GET", "/nope/a/b", None).await.json()["message"],
        "no such route"
    );
}

// ---------------------------------------------------------------------------------
// Bodies that are not JSON
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_bare_word_body_is_told_how_strings_are_sent() {
    let app = server(&[]);
    let message = call(&app, "PUT", "/keys/k", Some("hello"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains(r#"as "hello""#), "{message}");
    assert!(message.contains("line 1 column 1"), "{message}");

    let message = call(&app, "PUT", "/keys/k", Some("hello world\n"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains(r#"as "hello world""#), "{message}");

    let message = call(&app, "PUT", "/keys/k", Some("'hi'"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains(r#"as "hi""#), "{message}");

    let message = call(&app, "PUT", "/keys/k", Some("True"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains("true"), "{message}");

    // Other bad JSON keeps the parser's position and gets no string hint.
    let message = call(&app, "PUT", "/keys/k", Some("{\"a\": 1,\n \"b\": }"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains("line 2 column"), "{message}");
    assert!(!message.contains("double quotes"), "{message}");

    // None of them wrote anything; the quoted form is taken.
    call(&app, "GET", "/keys/k", None)
        .await
        .expect_error(404, "not_found");
    call(&app, "PUT", "/keys/k", Some("\"hello\""))
        .await
        .expect(201);
    assert_eq!(
        call(&app, "GET", "/keys/k", None).await.json()["value"],
        "hello"
    );
}

/// The same hint for a bare word as one of the values of a batch body.
#[tokio::test]
async fn a_bare_word_value_in_a_batch_is_told_how_strings_are_sent() {
    let app = server(&[]);
    for (method, path) in [("PUT", "/keys"), ("POST", "/values"), ("PATCH", "/values")] {
        let label = format!("{method} {path}");
        let message = call(&app, method, path, Some("{\"a\": 1, \"b\": hello}"))
            .await
            .expect_error(400, "bad_request")
            .to_owned();
        assert!(message.contains(r#"as "hello""#), "{label}: {message}");
        assert!(message.contains("line 1 column 15"), "{label}: {message}");

        let message = call(&app, method, path, Some("{\"a\":\n  True}"))
            .await
            .expect_error(400, "bad_request")
            .to_owned();
        assert!(message.contains("spells it true"), "{label}: {message}");

        // A bad value that is not a bare word gets no string hint.
        let message = call(&app, method, path, Some("{\"a\": }"))
            .await
            .expect_error(400, "bad_request")
            .to_owned();
        assert!(!message.contains("double quotes"), "{label}: {message}");
    }
    assert_eq!(call(&app, "GET", "/values", None).await.json(), json!({}));
}

/// A body of the wrong shape is answered with the shape the route takes.
#[tokio::test]
async fn a_body_of_the_wrong_shape_is_told_the_shape() {
    let app = server(&[]);
    call(&app, "PUT", "/keys/k", Some("1")).await.expect(201);
    for (method, path, body, shape) in [
        ("PUT", "/keys/k/ttl", "5", r#"{"ttl": SECONDS}"#),
        (
            "PUT",
            "/keys/k/ttl",
            r#"{"ttl": "5"}"#,
            r#"{"ttl": SECONDS}"#,
        ),
        ("PUT", "/keys/k/ttl", r#"{"tll": 5}"#, r#"{"ttl": SECONDS}"#),
        (
            "POST",
            "/get_value",
            r#""0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f""#,
            r#"{"key": "UUID"}"#,
        ),
        ("PUT", "/keys", "[1, 2]", r#"{"KEY": VALUE, ...}"#),
        ("POST", "/values", "hello", r#"{"KEY": VALUE, ...}"#),
    ] {
        let label = format!("{method} {path} {body}");
        let message = call(&app, method, path, Some(body))
            .await
            .expect_error(400, "bad_request")
            .to_owned();
        assert!(message.contains(shape), "{label}: {message}");
    }
    assert_eq!(
        call(&app, "GET", "/keys/k/ttl", None).await.json(),
        json!({"ttl_ms": null})
    );
}

/// `incr` takes its amount in the query: an amount sent as the body is refused, not
/// ignored in favour of the default of 1.
#[tokio::test]
async fn an_incr_amount_sent_as_the_body_is_refused() {
    let app = server(&[]);
    let message = call(&app, "POST", "/keys/visits/incr", Some("5"))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains("?by=5"), "{message}");
    let message = call(&app, "POST", "/keys/visits/incr", Some(r#"{"by": 5}"#))
        .await
        .expect_error(400, "bad_request")
        .to_owned();
    assert!(message.contains("?by="), "{message}");
    call(&app, "GET", "/keys/visits", None)
        .await
        .expect_error(404, "not_found");
    // No body, or an empty one, adds `by`.
    call(&app, "POST", "/keys/visits/incr?by=5", Some(""))
        .await
        .expect(200);
    let reply = call(&app, "POST", "/keys/visits/incr", None).await;
    assert_eq!(
        reply.expect(200).json(),
        json!({"key": "visits", "value": 6})
    );
}

// ---------------------------------------------------------------------------------
// 401 challenges
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_responses_carry_a_bearer_challenge() {
    let app = server(&["--auth-token", TOKEN]);
    let none = call(&app, "GET", "/keys", None).await;
    none.expect_error(401, "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));

    let wrong = send(&app, "GET", "/keys", None, Some("nope")).await;
    wrong.expect_error(401, "unauthorized");
    assert_eq!(
        wrong.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );

    let right = send(&app, "GET", "/keys", None, Some(TOKEN)).await;
    right.expect(200);
    assert_eq!(right.header("www-authenticate"), None);

    // The document says so.
    let doc = document();
    let header = &doc["paths"]["/keys"]["get"]["responses"]["401"]["headers"]["WWW-Authenticate"];
    assert!(
        header.is_object(),
        "401 documents no WWW-Authenticate: {doc}"
    );
}

// ---------------------------------------------------------------------------------
// Keys with commas in GET /values
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn values_reads_keys_with_commas_through_repeated_key_parameters() {
    let app = server(&[]);
    call(
        &app,
        "POST",
        "/values",
        Some(r#"{"x,y": 1, "z": 2, "x": 3, "y": 4}"#),
    )
    .await
    .expect(201);
    let cases = [
        ("/values?key=x,y&key=z", json!({"x,y": 1, "z": 2})),
        ("/values?key=x%2Cy", json!({"x,y": 1})),
        ("/values?keys=x,y", json!({"x": 3, "y": 4})),
        ("/values?keys=z&key=x,y", json!({"x,y": 1, "z": 2})),
        ("/values?key=x,y&key=&key=nope", json!({"x,y": 1})),
        ("/values?key=x,y&key=x,y", json!({"x,y": 1})),
    ];
    for (uri, want) in cases {
        assert_eq!(
            call(&app, "GET", uri, None).await.expect(200).json(),
            want,
            "{uri}"
        );
    }
    call(&app, "GET", "/values?key=", None)
        .await
        .expect_error(400, "bad_request");
    call(&app, "GET", "/values?key=nope", None)
        .await
        .expect_error(404, "not_found");

    // Documented: a repeatable query parameter of GET /values.
    let doc = document();
    let params = doc["paths"]["/values"]["get"]["parameters"]
        .as_array()
        .expect("GET /values parameters")
        .clone();
    let key = params
        .iter()
        .find(|p| p["name"] == "key")
        .expect("GET /values documents `key`");
    assert_eq!(key["in"], "query");
    assert_eq!(key["explode"], true, "{key}");
    assert_eq!(key["schema"]["type"], "array", "{key}");
    assert!(params.iter().any(|p| p["name"] == "keys"));
}

// ---------------------------------------------------------------------------------
// Evictions reported by PUT /keys
// ---------------------------------------------------------------------------------

async fn evictions(app: &Router) -> u64 {
    call(app, "GET", "/info", None).await.expect(200).json()["evictions"]
        .as_u64()
        .expect("evictions")
}

#[tokio::test]
async fn bulk_writes_say_how_many_keys_they_evicted() {
    let app = server(&["--capacity", "3"]);
    let put = |body: &'static str| {
        let app = app.clone();
        async move {
            call(&app, "PUT", "/keys", Some(body))
                .await
                .expect(200)
                .json()
                .clone()
        }
    };
    assert_eq!(
        put(r#"{"a":1,"b":2,"c":3}"#).await,
        json!({"stored": 3, "evicted": 0})
    );
    // Overwriting needs no room.
    assert_eq!(put(r#"{"a":10}"#).await, json!({"stored": 1, "evicted": 0}));
    // Two new keys: the two least recently used go (b and c).
    assert_eq!(
        put(r#"{"d":4,"e":5}"#).await,
        json!({"stored": 2, "evicted": 2})
    );
    assert_eq!(evictions(&app).await, 2);
    assert_eq!(
        call(&app, "GET", "/keys", None).await.json(),
        json!({"a": 10, "d": 4, "e": 5})
    );
    // More new keys than the capacity: the three old ones and two of its own go.
    let body = put(r#"{"f":1,"g":2,"h":3,"i":4,"j":5}"#).await;
    assert_eq!(body, json!({"stored": 5, "evicted": 5}));
    assert_eq!(evictions(&app).await, 7);

    // Without a capacity nothing is evicted.
    let app = server(&[]);
    let r = call(&app, "PUT", "/keys", Some(r#"{"a":1,"b":2,"c":3,"d":4}"#)).await;
    assert_eq!(r.expect(200).json(), json!({"stored": 4, "evicted": 0}));

    // The document says what `evicted` counts.
    let doc = document();
    let evicted = &doc["components"]["schemas"]["Stored"]["properties"]["evicted"];
    let description = evicted["description"].as_str().unwrap_or_default();
    assert!(description.contains("--capacity"), "{evicted}");
    assert_eq!(
        doc["components"]["schemas"]["Stored"]["required"],
        json!(["stored", "evicted"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bulk_writes_count_no_more_than_they_can_have_caused() {
    // Eight writers evict each other's keys; each write reports at most one eviction
    // per pair it holds, however many the others cause meanwhile.
    let app = server(&["--capacity", "50"]);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let app = app.clone();
        writers.spawn(async move {
            let mut reported = 0;
            for round in 0..20 {
                // Ten keys, half of them new to this writer each round.
                let pairs: BTreeMap<String, u32> = (0..10)
                    .map(|i| (format!("w{w}-{}", round * 5 + i), i))
                    .collect();
                let body = serde_json::to_string(&pairs).unwrap();
                let r = call(&app, "PUT", "/keys", Some(&body)).await;
                let evicted = r.expect(200).json()["evicted"].as_u64().expect("evicted");
                assert!(evicted <= 10, "{evicted} evicted by a write of 10 keys");
                reported += evicted;
            }
            reported
        });
    }
    let mut reported = 0;
    while let Some(done) = writers.join_next().await {
        reported += done.expect("a writer");
    }
    assert!(
        reported > 0 && evictions(&app).await > 0,
        "nothing was evicted"
    );
    let live = call(&app, "GET", "/info", None).await.json()["keys"].as_u64();
    assert_eq!(live, Some(50));
}

// ---------------------------------------------------------------------------------
// /metrics
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_metric_has_help_and_type_and_routes_are_spelt_as_documented() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().to_str().expect("a UTF-8 path");
    let state = AppState::build(&util::config(&["--data-dir", data, "--capacity", "1"]))
        .expect("building the state");
    let app = kvserver::app(state);
    call(&app, "GET", "/api/hello/world", None)
        .await
        .expect(200);
    call(&app, "PUT", "/keys", Some(r#"{"a":1}"#))
        .await
        .expect(200);
    call(&app, "PUT", "/keys", Some(r#"{"b":2}"#))
        .await
        .expect(200);
    call(&app, "GET", "/keys/b", None).await.expect(200);
    call(&app, "GET", "/keys/zz", None).await.expect(404);
    call(&app, "GET", "/nope", None).await.expect(404);
    call(&app, "GET", "/metrics", None).await.expect(200);
    let text = call(&app, "GET", "/metrics", None)
        .await
        .expect(200)
        .text()
        .clone();

    let mut help = BTreeSet::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("#"), Some("HELP"), Some(name), Some(_)) => {
                help.insert(name.to_owned());
            }
            (Some("#"), Some("TYPE"), Some(name), Some(kind)) => {
                types.insert(name.to_owned(), kind.to_owned());
            }
            _ => {}
        }
    }
    let mut families = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name = line.split(['{', ' ']).next().expect("a sample name");
        let family = [
            name,
            name.trim_end_matches("_bucket"),
            name.trim_end_matches("_sum"),
            name.trim_end_matches("_count"),
        ]
        .into_iter()
        .find(|f| types.contains_key(*f))
        .unwrap_or_else(|| panic!("{name} has no # TYPE line:\n{text}"));
        families.insert(family.to_owned());
    }
    for family in &families {
        assert!(
            help.contains(family),
            "{family} has no # HELP line:\n{text}"
        );
    }
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "kv_keys",
        "kv_hits_total",
        "kv_misses_total",
        "kv_evictions_total",
        "kv_expirations_total",
        "kv_journal_bytes",
        "request_count",
        "request_latency_seconds",
        "internal_error_count",
    ] {
        assert!(families.contains(name), "{name} missing:\n{text}");
    }

    // The hit-counter route is labelled as the OpenAPI document spells it.
    let doc = document();
    assert!(doc["paths"].get("/api/{path}").is_some());
    assert!(
        text.contains(r#"route="/api/{path}""#),
        "no /api/{{path}} label:\n{text}"
    );
    assert!(
        !text.contains("{*"),
        "a catch-all spelt as axum does:\n{text}"
    );
}

// ---------------------------------------------------------------------------------
// The binary: logs and --help
// ---------------------------------------------------------------------------------

#[test]
fn logs_on_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .args(["--listen", "127.0.0.1:0", "--no-persist"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("KV_LISTEN")
        .env_remove("KV_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning kvserver");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match received.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let done = line.contains("kvserver listening");
                seen.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(listening, "no listening line on stderr: {seen:#?}");
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "colour codes on a pipe: {line:?}");
    }
}

#[test]
fn help_shows_the_backend_url_form_of_the_readme() {
    const FORM: &str = "redis://[:PASSWORD@]HOST:PORT[/DB]";
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("running kvserver --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains(FORM), "--help lacks {FORM}:\n{help}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    assert!(readme.contains(FORM), "README.md lacks {FORM}");
}

/// A `--backend` URL Redis cannot read is refused with the form it takes.
#[tokio::test]
async fn a_backend_url_that_does_not_parse_is_told_the_form() {
    for url in [
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis://:6379:x",
        "redis+cluster://",
        "redis+cluster://127.0.0.1",
        "redis+cluster://a:1,,b:2",
        "redis+cluster://a:1/2",
        "redis+cluster://:pw@a:notaport",
    ] {
        let config = util::config(&["--no-persist", "--backend", url]);
        let clock = Arc::new(ManualClock::new());
        let Err(e) = AppState::build_with_clock(&config, clock) else {
            panic!("--backend {url} was accepted");
        };
        let message = format!("{e:#}");
        assert!(
            message.contains("redis://[:PASSWORD@]HOST:PORT[/DB]")
                && message.contains("redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]"),
            "{url}: {message}"
        );
        assert!(
            !message.contains("pw@"),
            "{url}: the password shown: {message}"
        );
    }
}

/// The two timeouts answer `503` before a write starts and `504 outcome_unknown`
/// once one has, as the README's flag table and *Retrying* say; `--help` says so too.
#[test]
fn help_tells_the_timeouts_504_as_the_readme_does() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .arg("--help")
        .output()
        .expect("running kvserver --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--backend-timeout", "--request-timeout"] {
        let start = help
            .find(&format!("      {flag} <"))
            .expect("the flag in --help");
        let entry = help[start..].split("\n\n").next().unwrap_or_default();
        assert!(
            entry.contains("503") && entry.contains("504"),
            "--help on {flag} should say when it is 503 and when 504:\n{entry}"
        );
    }
}
