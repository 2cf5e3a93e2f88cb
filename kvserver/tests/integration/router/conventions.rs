//! Conventions every route follows: JSON bodies, odd input, unknown routes and
//! methods, the order of checks, size limits, key encoding and TTL bounds.

use super::*;

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
