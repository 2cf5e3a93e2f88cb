//! `--backend redis+cluster://...` against a real Redis Cluster of three masters and
//! three replicas that each test starts (`util/cluster.rs`). The contract tests that
//! hold over one Redis run over a cluster too (`redis.rs` and `outcomes.rs`, each a
//! `single` and a `cluster` test); this module has what only a cluster has. Tests
//! that keep to keys of their own share one cluster (`cluster_or_skip!(shared)`);
//! those that list, count or empty the keyspace, or kill a node, have their own:
//!
//! - key slots as Redis computes them, hash tags and their edge cases included;
//! - keys spread over the three masters, listed across them, counted and deleted on
//!   every master;
//! - an all-or-nothing write across slots refused before anything is written, and
//!   within one slot (a hash tag) atomic under servers racing;
//! - hit counters exact with servers counting at once; sliding lengths of keys gone
//!   swept slot by slot;
//! - a master killed (`kill -9`) under traffic: `200` or `503` (a write in flight to the
//!   dead master: `504`, its outcome unknown), none slower than the timeout, service
//!   back by itself once its replica takes over, and with `--backend-wait-replicas 1`
//!   no acknowledged write lost.
//!
//! Skipped visibly without `redis-server`, and required under CI (see `util/redis.rs`).

use crate::redis::{Node, http};
use crate::util::redis::Redis;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_and_bookkeeping_keys_are_where_redis_puts_them() {
    let cluster = cluster_or_skip!(shared);
    for key in [
        "k",
        "user:1",
        "{user:1}:cart",
        "a{user:1}b",
        "{}a",
        "a{}",
        "a{b",
        "a}b",
        "}{a}",
        "{a{b}c}",
        "x{}{y}",
        "{{}}",
        "ключ{é}",
        "{",
        "}",
    ] {
        let redis_slot = cluster.int(&["CLUSTER", "KEYSLOT", key]);
        assert_eq!(
            i64::from(kvserver::backend::hash_slot(key)),
            redis_slot,
            "{key:?}"
        );
        let books = cluster.slide_hash(key);
        assert_eq!(
            cluster.int(&["CLUSTER", "KEYSLOT", &books]),
            redis_slot,
            "{books:?} beside {key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_every_master_and_are_listed_counted_and_deleted_there() {
    let cluster = cluster_or_skip!();
    let node = Node::new(&cluster, &[]);
    let mut body = serde_json::Map::new();
    for i in 0..600 {
        body.insert(format!("k{i:03}"), json!(i));
    }
    let a = node.put("/keys", &Value::Object(body).to_string()).await;
    a.expect(200);
    assert_eq!(a.json(), json!({"stored": 600, "evicted": 0}));
    node.get("/api/hello").await.expect(200);

    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for port in &masters {
        let n = crate::util::redis::command_at(*port, &["DBSIZE"]).unwrap_or_default();
        let n: i64 = n.trim_start_matches(':').parse().unwrap_or(0);
        assert!(n > 100, "master {port} holds {n} keys");
    }
    assert_eq!(
        node.get("/info").await.expect(200).json()["keys"],
        json!(600)
    );

    // Pages of 70 go through every master; every key comes once.
    let mut seen = BTreeMap::new();
    let mut uri = "/keys?limit=70".to_owned();
    let mut cursors = HashSet::new();
    for pages in 0.. {
        assert!(pages < 50, "the listing does not end");
        let a = node.get(&uri).await;
        a.expect(200);
        let page = a.json();
        let page = page.as_object().expect("an object");
        assert!(page.len() <= 70);
        for (k, v) in page {
            assert!(seen.insert(k.clone(), v.clone()).is_none(), "{k} twice");
        }
        match a.header("x-next-cursor") {
            Some(c) => {
                assert!(c.starts_with("c1"), "{c}");
                cursors.insert(c.get(2..6).unwrap_or_default().to_owned());
                uri = format!("/keys?limit=70&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 600);
    assert!(
        cursors.len() >= 3,
        "cursors named {cursors:?}, not every master"
    );
    // A cursor of one Redis is not a cluster's.
    let a = node.get("/keys?cursor=r20000000000000000000").await;
    a.expect_error(400, "bad_request");

    // DELETE /keys empties every master but keeps the hit counters.
    let a = node.call("DELETE", "/keys", None).await;
    assert_eq!(a.expect(200).json(), json!({"deleted": 600}));
    assert_eq!(cluster.dbsize(), 1);
    assert_eq!(cluster.cmd(&["HGET", "__kv__:hits", "/hello"]), "1");
    assert_eq!(node.get("/info").await.expect(200).json()["keys"], json!(0));
    assert_eq!(node.value("k001").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_across_slots_are_refused_before_anything_is_written() {
    let cluster = cluster_or_skip!(shared);
    let node = Node::new(&*cluster, &[]);
    // Keys of this test's own, "xs:a" and "xs:b" in two slots.
    assert_ne!(
        cluster.int(&["CLUSTER", "KEYSLOT", "xs:a"]),
        cluster.int(&["CLUSTER", "KEYSLOT", "xs:b"])
    );
    node.put("/keys/xs:b", "0").await.expect(201);
    for (method, body) in [
        ("POST", r#"{"xs:a": 1, "xs:b": 2}"#),
        ("PATCH", r#"{"xs:a": 1, "xs:b": 2}"#),
    ] {
        let a = node.call(method, "/values", Some(body)).await;
        let message = a.expect_error(400, "cross_slot");
        assert!(
            message.contains("hash tag") && message.contains("{user:1}"),
            "{message}"
        );
        assert_eq!(cluster.int(&["EXISTS", "xs:a"]), 0, "{method}");
        assert_eq!(cluster.cmd(&["GET", "xs:b"]), "0", "{method}");
    }

    // With a common hash tag the keys share a slot: all-or-nothing again.
    let tagged = r#"{"{xs}:a": 1, "{xs}:b": 2}"#;
    node.call("POST", "/values", Some(tagged)).await.expect(201);
    assert_eq!(cluster.cmd(&["GET", "{xs}:b"]), "2");
    let a = node
        .call("POST", "/values", Some(r#"{"{xs}:b": 20, "{xs}:c": 30}"#))
        .await;
    a.expect_error(409, "conflict");
    assert_eq!(cluster.int(&["EXISTS", "{xs}:c"]), 0);
    node.call("PATCH", "/values", Some(r#"{"{xs}:a": 10, "{xs}:b": 20}"#))
        .await
        .expect(204);
    let some = node
        .get("/values?keys=%7Bxs%7D:a,%7Bxs%7D:b,xs:a,xs:b")
        .await
        .expect(200)
        .json();
    assert_eq!(some, json!({"{xs}:a": 10, "{xs}:b": 20, "xs:b": 0}));

    // PUT /keys is not all-or-nothing: split by slot, every pair stored.
    let a = node
        .put("/keys", r#"{"xs:a": 1, "xs:b": 2, "xs:c": 3}"#)
        .await;
    assert_eq!(a.expect(200).json(), json!({"stored": 3, "evicted": 0}));
    assert_eq!(cluster.cmd(&["GET", "xs:c"]), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_from_servers_counting_at_once_all_count() {
    let cluster = cluster_or_skip!(shared);
    let nodes: Vec<Arc<Node>> = (0..2)
        .map(|_| Arc::new(Node::new(&*cluster, &[])))
        .collect();
    let mut tasks = Vec::new();
    for node in &nodes {
        for _ in 0..4 {
            let node = Arc::clone(node);
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    node.get("/api/counted-at-once").await.expect(200);
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("a hit task");
    }
    assert_eq!(
        cluster.cmd(&["HGET", "__kv__:hits", "/counted-at-once"]),
        "200"
    );
    let stats = nodes[1].get("/stats").await.expect(200).json();
    let counted = stats
        .as_array()
        .and_then(|s| s.iter().find(|c| c["path"] == "/counted-at-once"));
    assert_eq!(
        counted,
        Some(&json!({"path": "/counted-at-once", "hits": 200}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_lengths_of_keys_gone_are_swept_slot_by_slot() {
    let cluster = cluster_or_skip!(shared);
    let node = Node::new(&*cluster, &["--ttl", "300", "--sliding"]);
    node.put("/keys/sweep:k?ttl=50", "1").await.expect(201);
    let books = cluster.slide_hash("sweep:k");
    assert_eq!(cluster.cmd(&["HGET", &books, "sweep:k"]), "50000");
    // Another client deletes the key; the upkeep sweeps its length away within one
    // pass over the slots.
    cluster.cmd(&["DEL", "sweep:k"]);
    let mut rounds = 0;
    while cluster.cmd(&["HEXISTS", &books, "sweep:k"]) == ":1" {
        rounds += 1;
        assert!(rounds <= 16_384 / 16 + 1, "not swept after a pass");
        node.state.backend().upkeep(100).await;
    }
}

/// One request's outcome in the failover test.
struct Answer {
    write: bool,
    status: Option<u16>,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_traffic_fails_over_without_losing_acknowledged_writes() {
    let mut cluster = cluster_or_skip!();
    let url = cluster.url_with_seeds(3);
    let server = crate::util::Running::start(&[
        "--backend",
        &url,
        "--backend-timeout",
        "1",
        "--backend-wait-replicas",
        "1",
        "--cache-ttl",
        "0.001",
    ])
    .await;
    let addr = server.addr;
    let request = move |method: &'static str, path: String, body: String| {
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let status = http(addr, method, &path, &body);
            (status, t.elapsed())
        })
    };
    assert_eq!(
        request("GET", "/readyz".into(), String::new())
            .await
            .unwrap()
            .0,
        Some(200)
    );

    // Writers: each its own key, values 1, 2, 3... in order; the last acknowledged
    // value of each is kept. Readers read the same keys.
    let writers = 6;
    let running = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let running = Arc::clone(&running);
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut acked = 0u64;
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let (status, took) = request("PUT", format!("/keys/w{w}"), n.to_string())
                    .await
                    .unwrap();
                if matches!(status, Some(200 | 201)) {
                    acked = n;
                }
                answers.push(Answer {
                    write: true,
                    status,
                    took,
                });
                let (status, took) = request("GET", format!("/keys/w{w}"), String::new())
                    .await
                    .unwrap();
                answers.push(Answer {
                    write: false,
                    status,
                    took,
                });
            }
            (acked, answers)
        }));
    }

    // Traffic flows; then the master of w0 dies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = cluster.master_of("w0");
    cluster.kill(victim);
    let killed = Instant::now();

    // Service comes back by itself once the replica has taken over: /readyz, and
    // reads of the dead master's keys.
    let mut was_unready = false;
    loop {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "service did not come back"
        );
        let ready = request("GET", "/readyz".into(), String::new())
            .await
            .unwrap()
            .0;
        was_unready |= ready == Some(503);
        let read = request("GET", "/keys/w0".into(), String::new())
            .await
            .unwrap()
            .0;
        if ready == Some(200) && read == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(was_unready, "/readyz never reported the failed master");
    // The new master has no replica, so writes to it cannot reach one: they are
    // answered 504 until the old master rejoins, as its replica.
    cluster.restart(victim);
    let rejoined = Instant::now();
    while request("PUT", "/keys/w0-after".into(), "1".into())
        .await
        .unwrap()
        .0
        != Some(201)
    {
        assert!(
            rejoined.elapsed() < Duration::from_secs(30),
            "writes did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);

    let mut unknown = 0;
    let mut unavailable = 0;
    for (w, task) in tasks.into_iter().enumerate() {
        let (acked, answers) = task.await.expect("a writer");
        for a in &answers {
            let ok: &[u16] = if a.write {
                &[200, 201, 503, 504]
            } else {
                &[200, 503]
            };
            assert!(
                a.status.is_some_and(|s| ok.contains(&s)),
                "w{w}: {} answered {:?}",
                if a.write { "PUT" } else { "GET" },
                a.status
            );
            // The timeout plus room for a busy two-core machine to schedule.
            assert!(a.took < Duration::from_secs(2), "w{w}: took {:?}", a.took);
            unknown += usize::from(a.status == Some(504));
            unavailable += usize::from(a.status == Some(503));
        }
        assert!(acked > 0, "w{w} never wrote");
        // Acknowledged means on a replica: the promoted one has it (or a later value
        // from a write whose answer was lost).
        let stored: u64 = cluster.cmd(&["GET", &format!("w{w}")]).parse().unwrap_or(0);
        assert!(
            stored >= acked,
            "w{w}: acknowledged {acked}, stored {stored}"
        );
    }
    assert!(unavailable > 0, "no request met the dead master");
    // 504: a write sent to the master as it died, or one no replica confirmed while
    // the new master had none.
    assert!(unknown < unavailable, "{unknown} writes of unknown outcome");

    server.stop(Duration::from_secs(30)).await;
}
