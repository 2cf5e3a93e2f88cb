//! Read-only mode, auth, the operations routes, load shedding, and the store modes
//! chosen by flags.

use super::*;

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
async fn max_memory_bounds_the_store_and_is_reported() {
    let s = Srv::new(&["--max-memory", "1kb"]);
    let value = format!("\"{}\"", "x".repeat(20)); // 22 bytes of JSON
    for i in 0..50 {
        s.put_key(&format!("k{i:02}"), "", &value).await;
    }
    let info = s.expect("GET", "/info", None, 200, Want::Any).await.json();
    let used = info["memory"]["used_bytes"]
        .as_u64()
        .expect("a number of bytes");
    assert_eq!(info["memory"]["max_bytes"], json!(1024), "{info}");
    assert!(used <= 1024, "{info}");
    // Each entry weighs its key, its value and the per-entry overhead.
    let entry = 3 + 22 + u64::from(kvcore::weight::ENTRY_OVERHEAD);
    let keys = info["keys"].as_u64().expect("a key count");
    assert_eq!(keys, 1024 / entry, "{info}");
    assert_eq!(used, keys * entry, "{info}");
    assert_eq!(info["evictions"].as_u64(), Some(50 - keys), "{info}");
    // The least recently used went: the last keys written are there.
    s.expect("GET", "/keys/k49", None, 200, Want::Any).await;
    s.expect("GET", "/keys/k00", None, 404, Want::Any).await;
    let text = s
        .expect("GET", "/metrics", None, 200, Want::Any)
        .await
        .text();
    assert_eq!(
        series(&text, "kv_memory_max_bytes", &[]),
        Some(1024.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "kv_memory_used_bytes", &[]),
        Some(used as f64),
        "{text}"
    );
    // A batch reports what it evicted: ten entries make room for themselves.
    let batch: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("n{i}"), json!("x".repeat(20))))
        .collect();
    let r = s
        .expect(
            "PUT",
            "/keys",
            Some(&Value::Object(batch).to_string()),
            200,
            Want::Any,
        )
        .await;
    assert_eq!(r.json(), json!({"stored": 10, "evicted": 10}));
    // A value that could never fit is refused, and evicts nothing.
    let big = format!("\"{}\"", "x".repeat(2000));
    s.expect(
        "PUT",
        "/keys/big",
        Some(&big),
        413,
        err("payload_too_large"),
    )
    .await;
    let batch = format!("{{\"p\":{big}}}");
    s.expect(
        "POST",
        "/values",
        Some(&batch),
        413,
        err("payload_too_large"),
    )
    .await;
    let after = s.expect("GET", "/info", None, 200, Want::Any).await.json();
    assert_eq!(after["keys"].as_u64(), Some(keys), "{after}");
    // Without the flag, nothing is counted.
    let plain = Srv::new(&[]);
    let info = plain
        .expect("GET", "/info", None, 200, Want::Any)
        .await
        .json();
    assert_eq!(
        info["memory"],
        json!({"used_bytes": null, "max_bytes": null}),
        "{info}"
    );
    let text = plain
        .expect("GET", "/metrics", None, 200, Want::Any)
        .await
        .text();
    assert!(!text.contains("kv_memory_max_bytes "), "{text}");
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
