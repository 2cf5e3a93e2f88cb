//! `/values`, the hit counters of `/api`, `/stats` and `/test`, and `/get_value`.

use super::*;

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
