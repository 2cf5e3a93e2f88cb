//! Time and capacity: TTL deadlines, `keepttl`, sliding TTLs, and eviction of the
//! least recently used key.

use super::*;

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
