//! `--backend redis://...` against a real `redis-server` that each test starts on a
//! free port of its own (`.ci/run` installs the Debian package). The tests written
//! `over_redis_and_cluster!` run twice, as `NAME::single` and as `NAME::cluster` over a
//! Redis Cluster of their own (`--backend redis+cluster://...`, `util/cluster.rs`);
//! those that need one Redis (its `DEBUG SLEEP`, stopping it, writes of several keys
//! without a common hash tag) run over one only, and `cluster.rs` has their cluster
//! counterparts.
//!
//! Servers run in process: routers called with `oneshot` (each with a `ManualClock`,
//! so the local cache's `--cache-ttl` is passed by advancing time), and, for the
//! outage test, a bound server over real HTTP. What is checked:
//!
//! - read-through (a value written straight into Redis is served) and write-through
//!   (what the server writes is in Redis, as compact JSON, with its TTL in `PX`);
//! - values other clients wrote: non-JSON text reads as a JSON string, bytes that are
//!   not UTF-8 as `{"$base64": ...}` (and exactly, with `Accept:
//!   application/octet-stream`), keys of other Redis types are invisible, and the
//!   reserved keys are never listed or written;
//! - two servers sharing one Redis: a change through one is seen by the other once
//!   its cached copy is older than `--cache-ttl`, and not before; `incr` is atomic
//!   across servers; hit counters are shared;
//! - every route family over Redis, listing pages included;
//! - sliding TTLs restart in Redis, from Redis reads and from cache hits;
//! - concurrent misses on one key make one Redis request;
//! - Redis stopped under traffic gives `503` within the timeout, never a hang, and
//!   service resumes by itself when it is back.
//!
//! On a machine without `redis-server` each test says so on stderr and passes without
//! running; with `CI=true` or `KV_REQUIRE_REDIS=1` it fails instead (see
//! `util/redis.rs`).

use crate::util::redis::Redis;
use crate::util::{self, Reply};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use kvcore::ManualClock;
use kvserver::AppState;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------
// A kvserver in front of it, called through its router.

pub(crate) struct Node {
    app: Router,
    pub(crate) state: AppState,
    clock: ManualClock,
}

impl Node {
    /// A server over `redis` with these extra flags.
    pub(crate) fn new(redis: &dyn Redis, args: &[&str]) -> Node {
        let url = redis.url();
        let mut all = vec!["--no-persist", "--backend", url.as_str()];
        all.extend_from_slice(args);
        let clock = ManualClock::new();
        let state = AppState::build_with_clock(&util::config(&all), Arc::new(clock.clone()))
            .expect("building a server over Redis");
        Node {
            app: kvserver::app(state.clone()),
            state,
            clock,
        }
    }

    pub(crate) async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Reply {
        let body = body.map(|b| Bytes::from(b.to_owned()));
        let request = util::request(method, uri, body, &[("content-type", "application/json")]);
        tokio::time::timeout(Duration::from_secs(20), util::send(&self.app, request))
            .await
            .unwrap_or_else(|_| panic!("{method} {uri} hung"))
    }

    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.call("GET", uri, None).await
    }

    pub(crate) async fn put(&self, uri: &str, body: &str) -> Reply {
        self.call("PUT", uri, Some(body)).await
    }

    /// The value of `key` as this server sees it, or `None` on 404.
    pub(crate) async fn value(&self, key: &str) -> Option<Value> {
        let a = self.get(&format!("/keys/{key}")).await;
        match a.status.as_u16() {
            200 => Some(a.json()["value"].clone()),
            404 => None,
            other => panic!("GET /keys/{key}: {other} {}", a.text()),
        }
    }

    /// Moves the local cache's clock past `--cache-ttl` (default 5 s).
    pub(crate) fn outlive_cache(&self) {
        self.clock.advance(Duration::from_secs(6));
    }
}

// ---------------------------------------------------------------------------------
// Read-through, write-through, values of other clients.

over_redis_and_cluster! {
    async fn writes_go_to_redis_as_compact_json_and_reads_come_back_through(redis) {
        let node = Node::new(&redis, &[]);

        node.put("/keys/user", r#"{ "name" : "Ada", "n": 1.50 }"#)
            .await
            .expect(201);
        assert_eq!(redis.cmd(&["GET", "user"]), r#"{"name":"Ada","n":1.50}"#);
        assert_eq!(redis.int(&["PTTL", "user"]), -1, "no TTL without --ttl");

        // Read-through: written straight into Redis, served by the server.
        redis.cmd(&["SET", "direct", "[1, 2]"]);
        let a = node.get("/keys/direct").await;
        a.expect(200);
        assert_eq!(
            a.json(),
            json!({"key": "direct", "value": [1, 2], "ttl_ms": null})
        );

        // Replacing reports created=false; delete removes it from Redis.
        node.put("/keys/user", "2").await.expect(200);
        assert_eq!(redis.cmd(&["GET", "user"]), "2");
        node.call("DELETE", "/keys/user", None).await.expect(204);
        assert_eq!(redis.int(&["EXISTS", "user"]), 0);
        node.get("/keys/user").await.expect(404);
        node.call("DELETE", "/keys/user", None).await.expect(404);
    }
}

over_redis_and_cluster! {
    async fn values_other_clients_wrote_and_keys_of_other_types(redis) {
        let node = Node::new(&redis, &[]);
        redis.cmd(&["SET", "text", "hello world"]);
        redis.cmd(&["SET", "number", "42"]);
        redis.cmd(&["HSET", "a-hash", "f", "v"]);

        assert_eq!(node.value("text").await, Some(json!("hello world")));
        assert_eq!(node.value("number").await, Some(json!(42)));
        // Keys of other Redis types are not kvserver keys.
        assert_eq!(node.value("a-hash").await, None);
        node.call("HEAD", "/keys/a-hash", None).await.expect(404);
        node.get("/keys/a-hash/ttl").await.expect(404);
        let listed = node.get("/keys").await.expect(200).json();
        assert_eq!(listed, json!({"text": "hello world", "number": 42}));
        // incr on text or on a hash is not_an_integer; on "42" it counts.
        let a = node.call("POST", "/keys/text/incr", None).await;
        a.expect(409);
        assert_eq!(a.error_code(), "not_an_integer");
        let a = node.call("POST", "/keys/a-hash/incr", None).await;
        a.expect(409);
        assert_eq!(a.error_code(), "not_an_integer");
        let a = node.call("POST", "/keys/number/incr?by=8", None).await;
        a.expect(200);
        assert_eq!(a.json(), json!({"key": "number", "value": 50}));
    }
}

#[tokio::test]
async fn binary_values_are_served_as_base64_and_kept_byte_for_byte() {
    let redis = redis_or_skip!();
    let node = Node::new(&redis, &[]);
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let binary: &[u8] = b"\x00\xff\r\nz";
    let (): () = ::redis::cmd("SET")
        .arg("bin")
        .arg(binary)
        .query(&mut con)
        .unwrap();

    let shown = json!({"$base64": "AP8NCno="});
    assert_eq!(node.value("bin").await, Some(shown.clone()));
    assert_eq!(
        node.get("/keys").await.expect(200).json(),
        json!({"bin": shown})
    );
    let raw = util::request(
        "GET",
        "/keys/bin",
        None,
        &[("accept", "application/octet-stream")],
    );
    let raw = util::send(&node.app, raw).await;
    raw.expect(200);
    assert_eq!(&raw.body[..], binary);
    // Served from the local cache now: the same bytes.
    let again = util::send(
        &node.app,
        util::request(
            "GET",
            "/keys/bin",
            None,
            &[("accept", "application/octet-stream")],
        ),
    )
    .await;
    assert_eq!(&again.body[..], binary);

    // Reading changed nothing in Redis; an HTTP write stores its compact JSON text.
    let stored: Vec<u8> = ::redis::cmd("GET").arg("bin").query(&mut con).unwrap();
    assert_eq!(stored, binary);
    node.put("/keys/bin", r#"{"b": "\u00ff"}"#)
        .await
        .expect(200);
    let stored: Vec<u8> = ::redis::cmd("GET").arg("bin").query(&mut con).unwrap();
    assert_eq!(stored, br#"{"b":"\u00ff"}"#);
}

over_redis_and_cluster! {
    async fn reserved_keys_are_never_listed_or_written(redis) {
        let node = Node::new(&redis, &["--ttl", "60", "--sliding"]);
        node.get("/api/x").await.expect(200);
        node.put("/keys/k?ttl=5", "1").await.expect(201); // a sliding length of its own
        assert_eq!(redis.int(&["EXISTS", "__kv__:hits"]), 1);
        assert_eq!(redis.int(&["EXISTS", &redis.slide_hash("k")]), 1);

        assert_eq!(node.get("/keys").await.expect(200).json(), json!({"k": 1}));
        assert_eq!(
            node.get("/values").await.expect(200).json(),
            json!({"k": 1})
        );
        for (method, uri, body) in [
            ("PUT", "/keys/__kv__:hits", Some("1")),
            ("PUT", "/keys", Some(r#"{"__kv__:x": 1}"#)),
            ("POST", "/values", Some(r#"{"ok": 1, "__kv__:x": 1}"#)),
            ("POST", "/keys/__kv__:hits/incr", None),
        ] {
            let a = node.call(method, uri, body).await;
            a.expect(400);
            assert_eq!(a.error_code(), "bad_request", "{method} {uri}");
        }
        node.get("/keys/__kv__:hits").await.expect(404);
        node.call("DELETE", "/keys/__kv__:hits", None)
            .await
            .expect(404);
        assert_eq!(redis.cmd(&["HGET", "__kv__:hits", "/x"]), "1");
        assert_eq!(
            redis.int(&["EXISTS", "ok"]),
            0,
            "nothing of the refused batch"
        );
    }
}

// ---------------------------------------------------------------------------------
// TTLs in Redis.

over_redis_and_cluster! {
    async fn ttls_live_in_redis(redis) {
        let node = Node::new(&redis, &["--ttl", "300"]);

        node.put("/keys/default", "1").await.expect(201);
        let pttl = redis.int(&["PTTL", "default"]);
        assert!((299_000..=300_000).contains(&pttl), "{pttl}");

        node.put("/keys/own?ttl=2.5", "1").await.expect(201);
        let pttl = redis.int(&["PTTL", "own"]);
        assert!((2_000..=2_500).contains(&pttl), "{pttl}");

        // keepttl keeps it; a write without a TTL gives the default again.
        redis.cmd(&["PEXPIRE", "own", "100000"]);
        node.put("/keys/own?keepttl=true", "2").await.expect(200);
        assert!(redis.int(&["PTTL", "own"]) > 99_000);
        node.put("/keys/own", "3").await.expect(200);
        assert!(redis.int(&["PTTL", "own"]) > 299_000);

        // PUT, GET and DELETE of /ttl.
        let a = node
            .call("PUT", "/keys/own/ttl", Some(r#"{"ttl": 20}"#))
            .await;
        a.expect(200);
        assert_eq!(a.json(), json!({"ttl_ms": 20000}));
        assert!((19_000..=20_000).contains(&redis.int(&["PTTL", "own"])));
        let ttl = node.get("/keys/own/ttl").await.expect(200).json()["ttl_ms"].as_i64();
        assert!(
            ttl.is_some_and(|t| (19_000..=20_000).contains(&t)),
            "{ttl:?}"
        );
        node.call("DELETE", "/keys/own/ttl", None).await.expect(200);
        assert_eq!(redis.int(&["PTTL", "own"]), -1);
        assert_eq!(
            node.get("/keys/own/ttl").await.expect(200).json(),
            json!({"ttl_ms": null})
        );
        node.call("PUT", "/keys/nothing/ttl", Some(r#"{"ttl": 20}"#))
            .await
            .expect(404);

        // incr keeps a TTL; a key incr creates gets the default.
        redis.cmd(&["SET", "counter", "1", "PX", "50000"]);
        node.call("POST", "/keys/counter/incr", None)
            .await
            .expect(200);
        assert!((40_000..=50_000).contains(&redis.int(&["PTTL", "counter"])));
        node.call("POST", "/keys/fresh/incr", None)
            .await
            .expect(200);
        assert!(redis.int(&["PTTL", "fresh"]) > 299_000);

        // PUT /keys with expire_in, and a key expired in Redis is gone for the server.
        node.put("/keys?expire_in=0.05", r#"{"a": 1, "b": 2}"#)
            .await
            .expect(200);
        assert!(redis.int(&["PTTL", "a"]) <= 50);
        redis.cmd(&["PEXPIRE", "default", "1"]);
        let started = Instant::now();
        while redis.int(&["EXISTS", "default"]) == 1 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        node.outlive_cache();
        assert_eq!(node.value("default").await, None);
    }
}

over_redis_and_cluster! {
    async fn sliding_reads_restart_the_ttl_in_redis(redis) {
        let node = Node::new(&redis, &["--ttl", "300", "--sliding"]);
        node.put("/keys/k", "1").await.expect(201);
        node.put("/keys/own?ttl=40", "2").await.expect(201);

        // A read served by Redis restarts the TTL at the length last written with.
        node.outlive_cache();
        redis.cmd(&["PEXPIRE", "k", "1000"]);
        redis.cmd(&["PEXPIRE", "own", "1000"]);
        let a = node.get("/keys/k").await;
        a.expect(200);
        assert_eq!(a.json()["ttl_ms"], json!(300000));
        assert!(redis.int(&["PTTL", "k"]) > 299_000);
        node.get("/values?keys=own").await.expect(200);
        let pttl = redis.int(&["PTTL", "own"]);
        assert!((39_000..=40_000).contains(&pttl), "{pttl}");

        // A read served by the cache restarts it too, once the upkeep has run.
        redis.cmd(&["PEXPIRE", "k", "1000"]);
        redis.cmd(&["PEXPIRE", "own", "1000"]);
        let evals = {
            redis.reset_stats();
            node.get("/keys/k").await.expect(200);
            node.get("/keys/own").await.expect(200);
            redis.evalsha_calls()
        };
        assert_eq!(evals, 0, "both reads were cache hits");
        assert!(redis.int(&["PTTL", "k"]) <= 1000, "not restarted yet");
        node.state.backend().upkeep(100).await;
        assert!(redis.int(&["PTTL", "k"]) > 299_000);
        assert!(redis.int(&["PTTL", "own"]) > 39_000);

        // HEAD and GET .../ttl only look.
        redis.cmd(&["PEXPIRE", "k", "5000"]);
        node.call("HEAD", "/keys/k", None).await.expect(200);
        node.get("/keys/k/ttl").await.expect(200);
        node.state.backend().upkeep(100).await;
        assert!(redis.int(&["PTTL", "k"]) <= 5000);
    }
}

// ---------------------------------------------------------------------------------
// Several servers, one Redis.

over_redis_and_cluster! {
    async fn a_change_through_one_server_reaches_the_other_within_the_cache_ttl(redis) {
        let a = Node::new(&redis, &["--cache-ttl", "5"]);
        let b = Node::new(&redis, &["--cache-ttl", "5"]);

        a.put("/keys/k", "1").await.expect(201);
        assert_eq!(
            b.value("k").await,
            Some(json!(1)),
            "a new key is seen at once"
        );

        // b has cached k: a's change is not seen until b's copy is 5 s old...
        a.put("/keys/k", "2").await.expect(200);
        b.clock.advance(Duration::from_secs(4));
        assert_eq!(b.value("k").await, Some(json!(1)));
        // ...and then it is.
        b.clock.advance(Duration::from_millis(1001));
        assert_eq!(b.value("k").await, Some(json!(2)));

        // The writer's own cache is updated by its write.
        a.put("/keys/k", "3").await.expect(200);
        assert_eq!(a.value("k").await, Some(json!(3)));

        // Deletes likewise.
        a.call("DELETE", "/keys/k", None).await.expect(204);
        assert_eq!(a.value("k").await, None);
        b.outlive_cache();
        assert_eq!(b.value("k").await, None);
    }
}

over_redis_and_cluster! {
    async fn incr_is_atomic_across_servers(redis) {
        let nodes: Vec<Arc<Node>> = (0..3).map(|_| Arc::new(Node::new(&redis, &[]))).collect();
        let mut tasks = Vec::new();
        for node in &nodes {
            for _ in 0..4 {
                let node = Arc::clone(node);
                tasks.push(tokio::spawn(async move {
                    for _ in 0..50 {
                        node.call("POST", "/keys/total/incr?by=2", None)
                            .await
                            .expect(200);
                    }
                }));
            }
        }
        for t in tasks {
            t.await.expect("an incr task");
        }
        assert_eq!(redis.cmd(&["GET", "total"]), "1200");
        for node in &nodes {
            node.outlive_cache();
            assert_eq!(node.value("total").await, Some(json!(1200)));
        }
    }
}

over_redis_and_cluster! {
    async fn hit_counters_are_shared_and_survive_delete_keys(redis) {
        let a = Node::new(&redis, &[]);
        let b = Node::new(&redis, &[]);
        a.get("/api/hello").await.expect(200);
        let hit = b.get("/api/hello").await;
        hit.expect(200);
        assert_eq!(hit.json(), json!({"path": "/hello", "hits": 2}));
        b.get("/api/").await.expect(200);
        let stats = a.get("/stats").await.expect(200).json();
        assert_eq!(
            stats,
            json!([{"path": "/hello", "hits": 2}, {"path": "/", "hits": 1}])
        );

        // DELETE /keys empties the database but for the counters.
        a.put("/keys", r#"{"x": 1, "y": 2}"#).await.expect(200);
        redis.cmd(&["HSET", "foreign-hash", "f", "v"]);
        let deleted = a.call("DELETE", "/keys", None).await.expect(200).json();
        assert_eq!(deleted, json!({"deleted": 3}));
        assert_eq!(redis.dbsize(), 1);
        assert_eq!(
            a.value("x").await,
            None,
            "the deleting server forgot its copies"
        );
        let stats = b.get("/stats").await.expect(200).json();
        assert_eq!(stats[0], json!({"path": "/hello", "hits": 2}));
        let info = a.get("/info").await.expect(200).json();
        assert_eq!(info["keys"], json!(0));
        assert_eq!(info["backend"]["kind"], json!("redis"));
        assert_eq!(info["backend"]["url"], json!(redis.url()));
        assert_eq!(info["data_dir"], json!(null));
    }
}

// ---------------------------------------------------------------------------------
// Every route family over Redis.

#[tokio::test]
async fn values_are_all_or_nothing_in_redis() {
    let redis = redis_or_skip!();
    let node = Node::new(&redis, &["--ttl", "300", "--sliding"]);
    node.call("POST", "/values", Some(r#"{"a": 1, "b": 2}"#))
        .await
        .expect(201);
    assert!(redis.int(&["PTTL", "a"]) > 299_000);

    let a = node
        .call("POST", "/values", Some(r#"{"b": 20, "c": 30}"#))
        .await;

    a.expect(409);
    assert_eq!(a.error_code(), "conflict");
    assert_eq!(redis.int(&["EXISTS", "c"]), 0);
    assert_eq!(redis.cmd(&["GET", "b"]), "2");

    let a = node
        .call("PATCH", "/values", Some(r#"{"a": 10, "z": 0}"#))
        .await;

    a.expect(404);
    assert_eq!(a.error_code(), "not_found");
    assert_eq!(redis.cmd(&["GET", "a"]), "1");
    redis.cmd(&["PEXPIRE", "a", "1000"]);
    node.call("PATCH", "/values", Some(r#"{"a": 10, "b": 20}"#))
        .await
        .expect(204);
    assert_eq!(redis.cmd(&["GET", "a"]), "10");
    assert!(
        redis.int(&["PTTL", "a"]) > 299_000,
        "PATCH restarts the TTL"
    );

    let some = node.get("/values?keys=a,zz,b").await.expect(200).json();
    assert_eq!(some, json!({"a": 10, "b": 20}));
    node.get("/values?keys=zz").await.expect(404);
    assert_eq!(
        node.get("/values").await.expect(200).json(),
        json!({"a": 10, "b": 20})
    );
}

over_redis_and_cluster! {
    /// Rounds of two POSTs sharing one key: exactly one may win each round. The keys
    /// of a round share a hash tag, so that over a cluster they share a slot.
    async fn racing_all_or_nothing_posts_never_half_apply(redis) {
        let nodes: Vec<Arc<Node>> = (0..2).map(|_| Arc::new(Node::new(&redis, &[]))).collect();
        for round in 0..20 {
            let tag = format!("{{race{round}}}");
            let bodies =
                [0, 1].map(|i| format!(r#"{{"{tag}shared": {i}, "{tag}own-{i}": {i}}}"#));
            let mut tasks = Vec::new();
            for (i, body) in bodies.into_iter().enumerate() {
                let node = Arc::clone(&nodes[i]);
                tasks.push(tokio::spawn(async move {
                    node.call("POST", "/values", Some(&body))
                        .await
                        .status
                        .as_u16()
                }));
            }
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.expect("a post"));
            }
            statuses.sort_unstable();
            assert_eq!(statuses, [201, 409], "round {round}");
            let winner: i64 = redis
                .cmd(&["GET", &format!("{tag}shared")])
                .parse()
                .expect("0 or 1");
            let own = |i: i64| redis.int(&["EXISTS", &format!("{tag}own-{i}")]);
            assert_eq!((own(winner), own(1 - winner)), (1, 0), "round {round}");
        }
    }
}

over_redis_and_cluster! {
    async fn conditional_writes_and_uuid_lookup(redis) {
        let node = Node::new(&redis, &[]);
        node.put("/keys/k?if=present", "1").await.expect(404);
        assert_eq!(redis.int(&["EXISTS", "k"]), 0);
        node.put("/keys/k?if=absent", "1").await.expect(201);
        let a = node.put("/keys/k?if=absent", "2").await;
        a.expect(409);
        assert_eq!(a.error_code(), "conflict");
        node.put("/keys/k?if=present", "3").await.expect(200);
        assert_eq!(redis.cmd(&["GET", "k"]), "3");

        let uuid = "0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f";
        redis.cmd(&["SET", uuid, r#""found""#]);
        let body = format!(r#"{{"key": "{}"}}"#, uuid.to_uppercase());
        let a = node.call("POST", "/get_value", Some(&body)).await;
        a.expect(200);
        assert_eq!(a.json(), json!({"value": "found"}));
        let missing = r#"{"key": "1b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f"}"#;
        node.call("POST", "/get_value", Some(missing))
            .await
            .expect(404);
    }
}

over_redis_and_cluster! {
    async fn listing_pages_return_every_key_once(redis) {
        let node = Node::new(&redis, &[]);
        let mut body = serde_json::Map::new();
        for i in 0..2_500 {
            body.insert(format!("k{i:04}"), json!(i));
        }
        body.insert("other".into(), json!("x"));
        node.put("/keys", &Value::Object(body).to_string())
            .await
            .expect(200);

        let mut seen = std::collections::BTreeMap::new();
        let mut uri = "/keys?filter=k*&limit=700".to_string();
        let mut pages = 0;
        loop {
            let a = node.get(&uri).await;
            a.expect(200);
            pages += 1;
            let page = a.json();
            let page = page.as_object().expect("an object");
            assert!(page.len() <= 700, "a page of {}", page.len());
            for (k, v) in page {
                assert!(seen.insert(k.clone(), v.clone()).is_none(), "{k} twice");
            }
            match a.headers.get("x-next-cursor") {
                Some(c) => uri = format!("/keys?filter=k*&limit=700&cursor={}", c.to_str().unwrap()),
                None => break,
            }
            assert!(pages < 100, "the listing does not end");
        }
        assert_eq!(seen.len(), 2_500);
        assert!(
            seen.iter()
                .all(|(k, v)| k[1..].parse::<i64>().ok() == v.as_i64())
        );

        for bad in ["x", "r12", "rzzzzzzzzzzzzzzzz"] {
            let a = node.get(&format!("/keys?cursor={bad}")).await;
            a.expect(400);
            assert_eq!(a.error_code(), "bad_request");
        }
        let info = node.get("/info").await.expect(200).json();
        assert_eq!(info["keys"], json!(2_501));
    }
}

// ---------------------------------------------------------------------------------
// Single flight.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_key_make_one_redis_request() {
    let redis = redis_or_skip!();
    let node = Arc::new(Node::new(&redis, &[]));
    redis.cmd(&["SET", "hot", "1"]);
    node.get("/keys/warm-up").await.expect(404); // loads the read script

    redis.cmd(&["CONFIG", "RESETSTAT"]);
    // Redis is single-threaded: while it sleeps, every read below is waiting on it.
    let sleeper = {
        let port = redis.port;
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.5\r\n")
                .expect("send");
            let mut reply = [0u8; 5];
            s.read_exact(&mut reply).expect("+OK");
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let node = Arc::clone(&node);
        tasks.push(tokio::spawn(
            async move { node.get("/keys/hot").await.status },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.expect("a read"), StatusCode::OK);
    }
    sleeper.join().expect("the sleeper");
    assert_eq!(
        redis.evalsha_calls(),
        1,
        "20 concurrent misses, one Redis read"
    );
}

// ---------------------------------------------------------------------------------
// Redis going away and coming back.

/// One HTTP/1.1 request over a fresh connection: the status, or `None` if the
/// connection failed.
pub(crate) fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_under_traffic() {
    let mut redis = redis_or_skip!();
    let url = redis.url();
    let server = crate::util::Running::start(&["--backend", &url, "--backend-timeout", "1"]).await;
    let addr = server.addr;
    let request = move |method: &'static str, path: &'static str, body: &'static str| {
        tokio::task::spawn_blocking(move || http(addr, method, path, body))
    };

    assert_eq!(request("PUT", "/keys/k", "1").await.unwrap(), Some(201));
    assert_eq!(request("GET", "/readyz", "").await.unwrap(), Some(200));

    // Traffic while Redis is down: every answer is a clean 503, in bounded time; a
    // write that meets the connection Redis dropped may have been sent, and is 504.
    redis.stop();
    let started = Instant::now();
    for (method, path, body) in [
        ("PUT", "/keys/k", "2"),
        ("GET", "/keys/other", ""),
        ("POST", "/keys/n/incr", ""),
        ("GET", "/keys", ""),
        ("GET", "/api/x", ""),
        ("GET", "/readyz", ""),
    ] {
        let t = Instant::now();
        let status = request(method, path, body).await.unwrap();
        let write = method != "GET" || path.starts_with("/api/");
        let expected: &[u16] = if write { &[503, 504] } else { &[503] };
        assert!(
            status.is_some_and(|s| expected.contains(&s)),
            "{method} {path}: {status:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{method} {path} took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(request("GET", "/healthz", "").await.unwrap(), Some(200));
    assert!(started.elapsed() < Duration::from_secs(30));

    // Redis returns (empty: it keeps nothing on disk); service resumes by itself.
    redis.run();
    let started = Instant::now();
    while request("GET", "/readyz", "").await.unwrap() != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "service did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(request("PUT", "/keys/k", "3").await.unwrap(), Some(201));
    assert_eq!(request("GET", "/keys/k", "").await.unwrap(), Some(200));
    assert_eq!(redis.cmd(&["GET", "k"]), "3");

    server.stop(Duration::from_secs(30)).await;
}

// ---------------------------------------------------------------------------------
// --max-memory bounds the local cache, not the data.

#[tokio::test]
async fn max_memory_bounds_the_local_cache_and_not_the_data() {
    let redis = redis_or_skip!();
    let node = Node::new(&redis, &["--max-memory", "1kb"]);
    let value = format!("\"{}\"", "x".repeat(20));
    for i in 0..50 {
        node.put(&format!("/keys/k{i:02}"), &value)
            .await
            .expect(201);
    }
    let info = node.get("/info").await.expect(200).json();
    assert_eq!(info["memory"]["max_bytes"], json!(1024), "{info}");
    let used = info["memory"]["used_bytes"]
        .as_u64()
        .expect("a number of bytes");
    assert!(used <= 1024, "{info}");
    assert!(info["evictions"].as_u64() > Some(0), "{info}");
    assert_eq!(info["keys"], json!(50), "Redis holds every key: {info}");
    for i in 0..50 {
        assert_eq!(
            node.value(&format!("k{i:02}")).await,
            Some(json!("x".repeat(20)))
        );
    }
    // A value too large for the local cache is still stored, in Redis, and served.
    let big = format!("\"{}\"", "y".repeat(2000));
    node.put("/keys/big", &big).await.expect(201);
    assert_eq!(node.value("big").await, Some(json!("y".repeat(2000))));
    let info = node.get("/info").await.expect(200).json();
    assert!(
        info["memory"]["used_bytes"].as_u64() <= Some(1024),
        "{info}"
    );
    let metrics = node.get("/metrics").await.expect(200).text();
    assert!(metrics.contains("kv_memory_max_bytes 1024"), "{metrics}");
}
