//! `/keys`: single keys, conditional and bulk writes, listing and paging, `incr`
//! and the TTL routes.

use super::*;

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
