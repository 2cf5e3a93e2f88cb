//! Commands through the `redis` crate, as a program would call them: round trips,
//! binary values, a pipeline of 1 000 commands, TTLs on the manual clock, sliding
//! TTLs, capacity, read-only mode, and errors that leave the connection usable.

use std::time::Duration;

use redis::AsyncCommands;

use super::Kv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_byte_for_byte() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, b'\r', b'\n']).collect();
    let _: () = con.set("bin", &binary).await.unwrap();
    let back: Vec<u8> = con.get("bin").await.unwrap();
    assert_eq!(back, binary);
    let _: () = con.set("empty", "").await.unwrap();
    let back: Vec<u8> = con.get("empty").await.unwrap();
    assert!(back.is_empty());
    let exists: bool = con.exists("empty").await.unwrap();
    assert!(exists);
    let _: () = con.set("text", "héllo").await.unwrap();
    let back: String = con.get("text").await.unwrap();
    assert_eq!(back, "héllo");
    let missing: Option<Vec<u8>> = con.get("missing").await.unwrap();
    assert_eq!(missing, None);
    let values: Vec<Option<Vec<u8>>> = con.mget(&["bin", "missing", "text"]).await.unwrap();
    assert_eq!(
        values,
        [
            Some(binary.clone()),
            None,
            Some("héllo".as_bytes().to_vec())
        ]
    );
    let len: usize = con.strlen("bin").await.unwrap();
    assert_eq!(len, binary.len());
    let n: i64 = con.append("bin", &[0u8, 0xff][..]).await.unwrap();
    assert_eq!(n as usize, binary.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_a_thousand_commands_round_trips() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("k{i}"), i).ignore();
    }
    for i in 0..500 {
        pipe.get(format!("k{i}"));
    }
    let values: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(values, (0..500).collect::<Vec<i64>>());
    let n: usize = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 500);
    // Errors inside a pipeline answer in their place; the rest run.
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg("x")
        .arg("1")
        .cmd("INCRBY")
        .arg("x")
        .arg("nope")
        .cmd("GET")
        .arg("x");
    let err = pipe.query_async::<Vec<String>>(&mut con).await.unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let x: String = con.get("x").await.unwrap();
    assert_eq!(x, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_the_connection_usable() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    let _: () = con.set("s", "text").await.unwrap();
    let err = con.incr::<_, _, i64>("s", 1).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("value is not an integer or out of range"),
        "{err}"
    );
    let err = redis::cmd("SET")
        .arg("s")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'set' command"),
        "{err}"
    );
    let err = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown command 'HSET'"), "{err}");
    let v: String = con.get("s").await.unwrap();
    assert_eq!(v, "text");
    // Keys this server cannot hold: refused for writes, absent for reads.
    let err = con.set::<_, _, ()>(&b"\xff"[..], "x").await.unwrap_err();
    assert!(err.to_string().contains("keys must be UTF-8"), "{err}");
    let err = con.set::<_, _, ()>("", "x").await.unwrap_err();
    assert!(err.to_string().contains("keys must not be empty"), "{err}");
    let none: Option<String> = con.get(&b"\xff"[..]).await.unwrap();
    assert_eq!(none, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_follow_the_server_clock() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = con.ttl("k").await.unwrap();
    assert_eq!(ttl, 10);
    let pttl: i64 = con.pttl("k").await.unwrap();
    assert_eq!(pttl, 10_000);
    kv.clock.advance(Duration::from_millis(9_400));
    let ttl: i64 = con.ttl("k").await.unwrap();
    assert_eq!(ttl, 1, "rounded to the nearest second");
    kv.clock.advance(Duration::from_millis(600));
    let v: Option<String> = con.get("k").await.unwrap();
    assert_eq!(v, None);
    let ttl: i64 = con.ttl("k").await.unwrap();
    assert_eq!(ttl, -2);
    // EXPIREAT and EXPIRETIME read the same clock.
    let _: () = con.set("at", "v").await.unwrap();
    let now = {
        use kvcore::Clock;
        kv.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let done: i64 = redis::cmd("EXPIREAT")
        .arg("at")
        .arg(now + 100)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(done, 1);
    let at: u64 = redis::cmd("EXPIRETIME")
        .arg("at")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(at, now + 100);
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("1")
        .arg("PX")
        .arg(5000)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("2")
        .arg("KEEPTTL")
        .query_async(&mut con)
        .await
        .unwrap();
    kv.clock.advance(Duration::from_secs(5));
    let gone: Option<String> = con.get("keep").await.unwrap();
    assert_eq!(gone, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_sliding_ttls_apply_as_over_http() {
    let kv = Kv::start(&["--ttl", "10", "--sliding"]).await;
    let mut con = kv.con().await;
    let _: () = con.set("s", "v").await.unwrap();
    let ttl: i64 = con.ttl("s").await.unwrap();
    assert_eq!(ttl, 10, "a write without a TTL gets --ttl");
    for _ in 0..5 {
        kv.clock.advance(Duration::from_secs(8));
        // Each read restarts the TTL at its length.
        let v: Option<String> = con.get("s").await.unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
    // TTL only looks.
    kv.clock.advance(Duration::from_secs(8));
    let ttl: i64 = con.ttl("s").await.unwrap();
    assert_eq!(ttl, 2);
    kv.clock.advance(Duration::from_secs(2));
    let v: Option<String> = con.get("s").await.unwrap();
    assert_eq!(v, None);
    // PERSIST takes the key out of the default TTL.
    let _: () = con.set("p", "v").await.unwrap();
    let done: bool = con.persist("p").await.unwrap();
    assert!(done);
    kv.clock.advance(Duration::from_secs(100));
    let v: Option<String> = con.get("p").await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_evicts_the_least_recently_used() {
    let kv = Kv::start(&["--capacity", "3"]).await;
    let mut con = kv.con().await;
    for k in ["a", "b", "c"] {
        let _: () = con.set(k, k).await.unwrap();
    }
    let _: Option<String> = con.get("a").await.unwrap();
    let _: () = con.set("d", "d").await.unwrap();
    let left: Vec<Option<String>> = con.mget(&["a", "b", "c", "d"]).await.unwrap();
    assert_eq!(
        left,
        [Some("a".into()), None, Some("c".into()), Some("d".into())]
    );
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains("evicted_keys:1\r\n"), "{info}");
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(policy, ["maxmemory-policy", "allkeys-lru"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_refuses_writes_as_a_replica_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(&data, r#"{"greeting": "hello", "n": 41}"#).unwrap();
    let kv = Kv::start(&["--read-only", "--load", data.to_str().unwrap()]).await;
    let mut con = kv.con().await;
    let v: String = con.get("greeting").await.unwrap();
    assert_eq!(v, "\"hello\"");
    let n: i64 = con.get("n").await.unwrap();
    assert_eq!(n, 41);
    for err in [
        con.set::<_, _, ()>("k", "v").await.unwrap_err(),
        con.incr::<_, _, i64>("n", 1).await.unwrap_err(),
        con.del::<_, i64>("greeting").await.unwrap_err(),
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut con)
            .await
            .unwrap_err(),
        con.expire::<_, i64>("n", 10).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), Some("READONLY"), "{err}");
        assert!(
            err.to_string()
                .contains("You can't write against a read only replica."),
            "{err}"
        );
    }
    let n: usize = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_pages_through_every_key_once() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    for i in 0..250 {
        let _: () = con.set(format!("user:{i}"), i).await.unwrap();
    }
    let _: () = con.set("other", 1).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: u64 = 0;
    let mut pages = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(20)
            .query_async(&mut con)
            .await
            .unwrap();
        pages += 1;
        assert!(keys.len() <= 20);
        for key in keys {
            assert!(seen.insert(key.clone()), "{key} twice");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 250);
    assert!(pages >= 13, "{pages}");
    let all: Vec<String> = con.keys("user:1?").await.unwrap();
    assert_eq!(all.len(), 10);
    let err = redis::cmd("SCAN")
        .arg(12345)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid cursor"), "{err}");
    let key: String = redis::cmd("RANDOMKEY").query_async(&mut con).await.unwrap();
    assert!(key.starts_with("user:") || key == "other", "{key}");
}
