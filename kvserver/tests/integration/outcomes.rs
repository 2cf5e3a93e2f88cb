//! Bounded hit counters, value limits on Redis reads, the snapshot time after a
//! restart, and writes whose outcome is not known.
//!
//! Local servers are routers called with `oneshot`, each with a `ManualClock`. The
//! Redis tests start a `redis-server` of their own on a free port (as `redis.rs`
//! does) and pause it with SIGSTOP so that a write is sent and gets no answer; those
//! that need no pause run over a Redis Cluster too (`over_redis_and_cluster!`). On a
//! machine without `redis-server` those skip visibly (see `util/redis.rs`).

use crate::util::redis::Redis;
use crate::util::{self, Reply};

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use kvcore::persist::PersistOptions;
use kvcore::{JsonText, ManualClock, SetOptions, Store, StoreBuilder};
use kvserver::AppState;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------
// A server called through its router.

struct Node {
    app: Router,
    clock: ManualClock,
}

impl Reply {
    fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }
}

impl Node {
    fn new(args: &[&str]) -> Node {
        let clock = ManualClock::new();
        let state = AppState::build_with_clock(&util::config(args), Arc::new(clock.clone()))
            .expect("building a server");
        Node {
            app: kvserver::app(state),
            clock,
        }
    }

    /// A request with an optional body and `Idempotency-Key`.
    async fn send(&self, method: &str, uri: &str, body: &str, key: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let request = util::request(method, uri, Some(Bytes::from(body.to_owned())), &headers);
        tokio::time::timeout(Duration::from_secs(30), util::send(&self.app, request))
            .await
            .unwrap_or_else(|_| panic!("{method} {uri} hung"))
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, "", None).await
    }
}

/// The value of a gauge in a Prometheus exposition.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

// ---------------------------------------------------------------------------------
// Hit counters, in this process.

#[tokio::test]
async fn counter_paths_follow_the_key_length_limit() {
    let node = Node::new(&["--no-persist", "--max-key-bytes", "16"]);
    // The counted path is `/` and the rest: 16 bytes in all is the most.
    let fits = format!("/api/{}", "a".repeat(15));
    node.get(&fits).await.expect(200);
    let a = node.get(&format!("/api/{}", "a".repeat(16))).await;
    a.expect(413);
    assert_eq!(a.error_code(), "payload_too_large");
    assert!(a.json()["message"].as_str().unwrap().contains("16 bytes"));
    let a = node.get(&format!("/api/{}", "x".repeat(30_000))).await;
    assert_eq!(a.status.as_u16(), 413);
    let stats = node.get("/stats").await.expect(200).json();
    assert_eq!(
        stats,
        json!([{"path": format!("/{}", "a".repeat(15)), "hits": 1}])
    );
}

#[tokio::test]
async fn counters_are_bounded_new_paths_refused_counted_paths_still_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    {
        let node = Node::new(&["--data-dir", data, "--max-counters", "3"]);
        for path in ["/api/a", "/api/b", "/api"] {
            node.get(path).await.expect(200);
        }
        let a = node.get("/api/d").await;
        a.expect(507);
        assert_eq!(a.error_code(), "counters_full");
        assert!(a.headers.get("retry-after").is_none());
        let a = node.get("/api/a").await;
        a.expect(200);
        assert_eq!(a.json()["hits"], 2);

        let info = node.get("/info").await.expect(200).json();
        assert_eq!(info["hit_counters"], json!({"count": 3, "max": 3}));
        let metrics = node.get("/metrics").await.expect(200).text();
        assert_eq!(gauge(&metrics, "kv_hit_counters"), Some(3.0));
        assert_eq!(gauge(&metrics, "kv_hit_counters_max"), Some(3.0));
    }
    // After a restart the bound still holds over the counters on disk.
    let node = Node::new(&["--data-dir", data, "--max-counters", "3"]);
    node.get("/api/e").await.expect(507);
    assert_eq!(node.get("/api/b").await.expect(200).json()["hits"], 2);
    let stats = node.get("/stats").await.expect(200).json();
    assert_eq!(stats.as_array().unwrap().len(), 3, "{stats}");
    // A larger bound admits new paths again.
    drop(node);
    let node = Node::new(&["--data-dir", data, "--max-counters", "4"]);
    node.get("/api/e").await.expect(200);
    node.get("/api/f").await.expect(507);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_new_paths_never_exceed_the_bound() {
    let node = Arc::new(Node::new(&["--no-persist", "--max-counters", "10"]));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = Arc::clone(&node);
        tasks.push(tokio::spawn(async move {
            node.get(&format!("/api/p{i}")).await.status.as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 507).count(), 30);
    let info = node.get("/info").await.expect(200).json();
    assert_eq!(info["hit_counters"]["count"], 10);
}

// ---------------------------------------------------------------------------------
// Idempotency keys, in this process.

#[tokio::test]
async fn a_retried_incr_with_the_same_key_applies_once() {
    let node = Node::new(&["--no-persist"]);
    let first = node
        .send("POST", "/keys/n/incr?by=5", "", Some("k-1"))
        .await;
    first.expect(200);
    assert_eq!(first.json(), json!({"key": "n", "value": 5}));
    assert!(!first.replayed());
    let again = node
        .send("POST", "/keys/n/incr?by=5", "", Some("k-1"))
        .await;
    again.expect(200);
    assert_eq!(again.text(), first.text());
    assert!(again.replayed());
    assert_eq!(node.get("/keys/n").await.expect(200).json()["value"], 5);

    // The same key with another request is refused and changes nothing.
    let other = node
        .send("POST", "/keys/n/incr?by=6", "", Some("k-1"))
        .await;
    other.expect(422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    let other = node
        .send("POST", "/keys/m/incr?by=5", "", Some("k-1"))
        .await;
    other.expect(422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    // Another key, or none, applies.
    node.send("POST", "/keys/n/incr?by=5", "", Some("k-2"))
        .await
        .expect(200);
    node.send("POST", "/keys/n/incr?by=5", "", None)
        .await
        .expect(200);
    assert_eq!(node.get("/keys/n").await.expect(200).json()["value"], 15);

    // A bad key is a clear 400.
    for bad in ["", "has space", &"x".repeat(256)] {
        let a = node.send("POST", "/keys/n/incr", "", Some(bad)).await;
        a.expect(400);
        assert!(
            a.json()["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key")
        );
    }
    // So are two keys: a retry could not know which one names it.
    let headers = [("idempotency-key", "k-1"), ("idempotency-key", "k-2")];
    let request = util::request("POST", "/keys/n/incr", None, &headers);
    let a = util::send(&node.app, request).await;
    a.expect(400);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("one Idempotency-Key header")
    );
    assert_eq!(node.get("/keys/n").await.expect(200).json()["value"], 15);
}

#[tokio::test]
async fn a_retried_insert_gets_its_first_outcome_not_a_conflict() {
    let node = Node::new(&["--no-persist"]);
    let body = r#"{"a": 1, "b": 2}"#;
    let first = node.send("POST", "/values", body, Some("v-1")).await;
    first.expect(201);
    let again = node.send("POST", "/values", body, Some("v-1")).await;
    again.expect(201);
    assert_eq!(again.text(), first.text());
    assert!(again.replayed());
    // Without the key, the same body finds the keys there.
    assert_eq!(
        node.send("POST", "/values", body, None)
            .await
            .expect(409)
            .error_code(),
        "conflict"
    );
    // A first outcome of 409 is replayed as such, even once the keys are gone.
    node.send("POST", "/values", body, Some("v-2"))
        .await
        .expect(409);
    node.send("DELETE", "/keys/a", "", None).await.expect(204);
    node.send("DELETE", "/keys/b", "", None).await.expect(204);
    let again = node.send("POST", "/values", body, Some("v-2")).await;
    again.expect(409);
    assert!(again.replayed());
    assert_eq!(node.get("/values").await.expect(200).json(), json!({}));
    // Another body under a used key is refused.
    let a = node
        .send("POST", "/values", r#"{"c": 3}"#, Some("v-1"))
        .await;
    a.expect(422);
    assert_eq!(a.error_code(), "idempotency_key_reused");
}

#[tokio::test]
async fn a_retried_hit_counts_once_and_outcomes_last_for_the_window() {
    let node = Node::new(&["--no-persist", "--idempotency-window", "60"]);
    node.send("GET", "/api/x", "", Some("h-1"))
        .await
        .expect(200);
    let again = node.send("GET", "/api/x", "", Some("h-1")).await;
    again.expect(200);
    assert!(again.replayed());
    assert_eq!(again.json()["hits"], 1);

    node.send("POST", "/keys/n/incr", "", Some("i-1"))
        .await
        .expect(200);
    node.clock.advance(Duration::from_secs(59));
    let a = node.send("POST", "/keys/n/incr", "", Some("i-1")).await;
    a.expect(200);
    assert!(a.replayed());
    assert_eq!(a.json()["value"], 1);
    node.clock.advance(Duration::from_secs(1));
    let a = node.send("POST", "/keys/n/incr", "", Some("i-1")).await;
    a.expect(200);
    assert!(!a.replayed(), "past the window the key is new");
    assert_eq!(a.json()["value"], 2);
}

#[tokio::test]
async fn a_failed_write_is_not_recorded_and_a_retry_runs() {
    let node = Node::new(&["--no-persist"]);
    node.send("PUT", "/keys/s", r#""text""#, None)
        .await
        .expect(201);
    let a = node.send("POST", "/keys/s/incr", "", Some("f-1")).await;
    a.expect(409);
    assert_eq!(a.error_code(), "not_an_integer");
    node.send("PUT", "/keys/s", "41", None).await.expect(200);
    let a = node.send("POST", "/keys/s/incr", "", Some("f-1")).await;
    a.expect(200);
    assert_eq!(a.json()["value"], 42);
}

/// A write still running on the blocking pool when `--request-timeout` fires answers
/// 504 without `Retry-After`; it completes anyway, and a retry with its key gets
/// its outcome. The timeout is 1 ms; reading the body alone (20 000 pairs) takes
/// longer, so the timeout fires as soon as the request waits for the write, which
/// journals and syncs every pair.
#[tokio::test]
async fn a_write_cut_by_the_request_timeout_is_504_and_its_retry_gets_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let node = Node::new(&[
        "--data-dir",
        data,
        "--fsync",
        "always",
        "--request-timeout",
        "0.001",
    ]);
    let pairs: serde_json::Map<String, Value> =
        (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let body = Value::Object(pairs).to_string();
    let cut = node.send("POST", "/values", &body, Some("t-1")).await;
    assert_eq!(cut.status.as_u16(), 504, "{}", cut.text());
    assert_eq!(cut.error_code(), "outcome_unknown");
    assert!(cut.headers.get("retry-after").is_none());
    assert!(cut.text().contains("may or may not"));

    // While the first runs, a retry is told so; once it is done, the retry gets 201.
    let started = Instant::now();
    let retry = loop {
        let a = node.send("POST", "/values", &body, Some("t-1")).await;
        if a.status.as_u16() != 409 {
            break a;
        }
        assert_eq!(a.error_code(), "idempotency_key_in_use");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the write never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The first attempt applied: its outcome, not a conflict with itself.
    let retry = retry;
    retry.expect(201);
    assert!(retry.replayed());
}

// ---------------------------------------------------------------------------------
// The snapshot's time after a restart.

#[tokio::test]
async fn info_reports_the_snapshot_found_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = StoreBuilder::new()
            .open::<JsonText>(dir.path(), PersistOptions::default())
            .unwrap();
        store
            .set("k", JsonText::parse("1").unwrap(), SetOptions::new())
            .unwrap();
        store.compact().unwrap();
    }
    let mtime = std::fs::metadata(dir.path().join("snapshot.kvs"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let node = Node::new(&["--data-dir", dir.path().to_str().unwrap()]);
    let info = node.get("/info").await.expect(200).json();
    assert_eq!(
        info["persistence"]["last_snapshot_unix_seconds"],
        json!(mtime)
    );
    assert!(info["persistence"]["snapshot_bytes"].as_u64().unwrap() > 0);
    let metrics = node.get("/metrics").await.expect(200).text();
    let at = gauge(&metrics, "kv_last_snapshot_timestamp_seconds").unwrap();
    assert_eq!(at.floor() as u64, mtime);

    // Without a snapshot there is no time to report.
    let empty = tempfile::tempdir().unwrap();
    let node = Node::new(&["--data-dir", empty.path().to_str().unwrap()]);
    let info = node.get("/info").await.expect(200).json();
    assert_eq!(
        info["persistence"]["last_snapshot_unix_seconds"],
        Value::Null
    );
}

fn over(redis: &dyn Redis, args: &[&str]) -> Node {
    let url = redis.url();
    let mut all = vec!["--no-persist", "--backend", url.as_str()];
    all.extend_from_slice(args);
    Node::new(&all)
}

// ---------------------------------------------------------------------------------
// Over Redis.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incr_unanswered_after_sending_is_504_and_its_retry_gets_the_first_outcome() {
    let redis = redis_or_skip!();
    let node = over(&redis, &["--backend-timeout", "0.5"]);
    // Connected, and the script loaded in Redis (a script Redis does not know yet is
    // sent again once Redis says so, which a request that timed out never does).
    node.send("POST", "/keys/warm/incr", "", None)
        .await
        .expect(200);

    redis.signal("STOP");
    let cut = node.send("POST", "/keys/n/incr", "", Some("r-1")).await;
    assert_eq!(cut.status.as_u16(), 504, "{}", cut.text());
    assert_eq!(cut.error_code(), "outcome_unknown");
    assert!(cut.headers.get("retry-after").is_none());
    assert!(cut.text().contains("may or may not"), "{}", cut.text());
    // A read that gets no answer applied nothing: 503, safe to retry.
    let read = node.get("/keys/other").await;
    read.expect(503);
    assert_eq!(read.error_code(), "unavailable");
    assert!(read.headers.get("retry-after").is_some());
    redis.signal("CONT");

    // Redis applies the first attempt when it wakes (it was sent); then the retry
    // gets its outcome instead of adding again.
    let started = Instant::now();
    while redis.cmd(&["GET", "n"]) != "1" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the first attempt never reached Redis"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let retry = node.send("POST", "/keys/n/incr", "", Some("r-1")).await;
    let retry = retry;
    retry.expect(200);
    assert!(retry.replayed());
    assert_eq!(retry.json(), json!({"key": "n", "value": 1}));
    let again = node.send("POST", "/keys/n/incr", "", Some("r-1")).await;
    again.expect(200);
    assert_eq!(again.text(), retry.text());
    assert_eq!(redis.cmd(&["GET", "n"]), "1", "the counter moved once");
    // The records are kvserver's own: not keys.
    let info = node.get("/info").await.expect(200).json();
    assert_eq!(info["keys"], 2);
    assert_eq!(
        node.get("/keys").await.expect(200).json(),
        json!({"n": 1, "warm": 1})
    );
}

over_redis_and_cluster! {
    async fn outcomes_recorded_in_redis_hold_across_servers(redis) {
        let a = over(&redis, &[]);
        let b = over(&redis, &[]);

        a.send("POST", "/keys/n/incr?by=3", "", Some("x-1"))
            .await
            .expect(200);
        let replay = b.send("POST", "/keys/n/incr?by=3", "", Some("x-1")).await;
        replay.expect(200);
        assert!(replay.replayed());
        assert_eq!(replay.json()["value"], 3);
        assert_eq!(redis.cmd(&["GET", "n"]), "3");
        let other = b.send("POST", "/keys/n/incr?by=4", "", Some("x-1")).await;
        other.expect(422);
        assert_eq!(other.error_code(), "idempotency_key_reused");

        let body = r#"{"p": 1}"#;
        a.send("POST", "/values", body, Some("x-2"))
            .await
            .expect(201);
        let replay = b.send("POST", "/values", body, Some("x-2")).await;
        replay.expect(201);
        assert!(replay.replayed());
        b.send("POST", "/values", body, None).await.expect(409);

        a.send("GET", "/api/z", "", Some("x-3")).await.expect(200);
        let replay = b.send("GET", "/api/z", "", Some("x-3")).await;
        replay.expect(200);
        assert!(replay.replayed());
        assert_eq!(replay.json()["hits"], 1);

        // A failed write is not recorded: the retry runs.
        redis.cmd(&["SET", "s", "\"text\""]);
        a.send("POST", "/keys/s/incr", "", Some("x-4"))
            .await
            .expect(409);
        redis.cmd(&["SET", "s", "9"]);
        let a2 = b.send("POST", "/keys/s/incr", "", Some("x-4")).await;
        a2.expect(200);
        assert_eq!(a2.json()["value"], 10);

        // DELETE /keys keeps the records; they never count as keys.
        a.send("DELETE", "/keys", "", None).await.expect(200);
        let replay = b.send("POST", "/keys/n/incr?by=3", "", Some("x-1")).await;
        replay.expect(200);
        assert!(replay.replayed());
        assert_eq!(b.get("/info").await.expect(200).json()["keys"], 0);
    }
}

over_redis_and_cluster! {
    async fn counters_in_redis_are_bounded(redis) {
        let node = over(&redis, &["--max-counters", "2", "--max-key-bytes", "8"]);
        node.get("/api/a").await.expect(200);
        node.get("/api/b").await.expect(200);
        let full = node.get("/api/c").await;
        full.expect(507);
        assert_eq!(full.error_code(), "counters_full");
        assert_eq!(node.get("/api/a").await.expect(200).json()["hits"], 2);
        assert_eq!(
            node.get("/api/abcdefgh").await.expect(413).error_code(),
            "payload_too_large"
        );
        assert_eq!(redis.cmd(&["HLEN", "__kv__:hits"]), ":2");
        let info = node.get("/info").await.expect(200).json();
        assert_eq!(info["hit_counters"], json!({"count": 2, "max": 2}));
        let metrics = node.get("/metrics").await.expect(200).text();
        assert_eq!(gauge(&metrics, "kv_hit_counters"), Some(2.0));
        assert_eq!(gauge(&metrics, "kv_hit_counters_max"), Some(2.0));
    }
}

over_redis_and_cluster! {
    async fn values_in_redis_beyond_the_value_limit_are_not_served(redis) {
        let node = over(&redis, &["--max-value-bytes", "100"]);
        let big = format!("\"{}\"", "x".repeat(200));
        redis.cmd(&["SET", "big", &big]);
        // The limit is on the stored bytes, not on the JSON they are served as: text that
        // is not JSON grows by its quotes when served, and 101 bytes are too many while
        // 99 bytes (served as 101) are not.
        redis.cmd(&["SET", "plain", &"y".repeat(101)]);
        redis.cmd(&["SET", "fits", &"z".repeat(99)]);
        redis.cmd(&["SET", "small", "[1,2]"]);
        assert_eq!(
            node.get("/keys/fits").await.expect(200).json()["value"],
            "z".repeat(99)
        );
        redis.cmd(&["DEL", "fits"]);

        for uri in [
            "/keys/big",
            "/values?keys=small,big",
            "/keys",
            "/values",
            "/keys/plain",
        ] {
            let a = node.get(uri).await;
            a.expect(502);
            assert_eq!(a.error_code(), "stored_value_too_large", "{uri}");
        }
        let a = node.get("/keys/big").await;
        a.expect(502);
        let message = a.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("\"big\"") && message.contains("202 bytes"),
            "{message}"
        );
        assert_eq!(
            node.get("/keys/small").await.expect(200).json()["value"],
            json!([1, 2])
        );
        // Once the value fits, it is served.
        redis.cmd(&["SET", "big", "\"short\""]);
        redis.cmd(&["DEL", "plain"]);
        assert_eq!(
            node.get("/keys/big").await.expect(200).json()["value"],
            "short"
        );
        assert_eq!(
            node.get("/keys").await.expect(200).json(),
            json!({"big": "short", "small": [1, 2]})
        );
    }
}

/// Over one Redis the bookkeeping keys keep the names earlier releases wrote (only a
/// cluster needs them per hash slot), so what an earlier release left there, a
/// sliding length of a key's own and an outcome recorded under an
/// `Idempotency-Key`, is read as it is: no migration.
#[tokio::test]
async fn a_redis_written_by_an_earlier_release_is_read_as_it_is() {
    let redis = redis_or_skip!();
    redis.cmd(&["SET", "s", "1", "PX", "1000"]);
    redis.cmd(&["HSET", "__kv__:ttl", "s", "40000"]);
    let fingerprint =
        kvserver::idempotency::IdempotencyKey::new("old-1", "POST", "/keys/n/incr", b"")
            .fingerprint()
            .to_owned();
    redis.cmd(&["SET", "n", "7"]);
    redis.cmd(&["HSET", "__kv__:idem", "old-1", &format!("{fingerprint}:7")]);
    redis.cmd(&["ZADD", "__kv__:idem:expiry", "99999999999999", "old-1"]);

    let node = over(&redis, &["--ttl", "300", "--sliding"]);
    node.get("/keys/s").await.expect(200);
    let pttl = redis.int(&["PTTL", "s"]);
    assert!((39_000..=40_000).contains(&pttl), "restarted at {pttl} ms");
    let replay = node.send("POST", "/keys/n/incr", "", Some("old-1")).await;
    replay.expect(200);
    assert!(replay.replayed());
    assert_eq!(replay.json()["value"], 7);
    assert_eq!(
        redis.cmd(&["GET", "n"]),
        "7",
        "the incr was not applied again"
    );
}
