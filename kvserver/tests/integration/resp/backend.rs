//! The Redis protocol over `--backend`: the commands work as over a local store and
//! answer as Redis answers (the compatibility scripts, against a `redis-server` of
//! the test's own), values are the bytes under the key in Redis, and the commands
//! that change a value in place are atomic across servers. Most suites run over one
//! Redis and over a Redis Cluster (keys that share a hash tag, where a multi-key
//! command needs one slot). Skipped, visibly, without `redis-server`;
//! required under `CI=true`.

use redis::AsyncCommands;

use super::{Kv, compat};
use crate::util::redis::Redis;

async fn over(redis: &dyn Redis) -> Kv {
    Kv::start(&["--backend", &redis.url()]).await
}

over_redis_and_cluster! {
    async fn string_and_key_commands_work_over_redis(redis) {
        commands_over(redis).await;
    }
}

async fn commands_over(redis: &dyn Redis) {
    let kv = over(redis).await;
    let mut con = kv.con().await;
    let _: () = con.set("{t}k", &b"\x00\xffv"[..]).await.unwrap();
    let v: Vec<u8> = con.get("{t}k").await.unwrap();
    assert_eq!(v, b"\x00\xffv");
    // The bytes are the value in Redis, for any Redis client to read.
    assert_eq!(redis.cmd(&["STRLEN", "{t}k"]), ":3");
    let done: bool = con.set_nx("{t}k", "other").await.unwrap();
    assert!(!done);
    let _: () = redis::cmd("SET")
        .arg("{t}t")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = con.ttl("{t}t").await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    let pttl = redis.int(&["PTTL", "{t}t"]);
    assert!(pttl > 99_000, "{pttl}");
    let _: () = con.mset(&[("{t}a", "1"), ("{t}b", "2")]).await.unwrap();
    let both: Vec<String> = con.mget(&["{t}a", "{t}b"]).await.unwrap();
    assert_eq!(both, ["1", "2"]);
    let set: bool = con.mset_nx(&[("{t}a", "9"), ("{t}c", "3")]).await.unwrap();
    assert!(!set);
    // Keys of two slots: all-or-nothing only over one Redis.
    let across: redis::RedisResult<bool> = con.mset_nx(&[("x", "1"), ("q", "2")]).await;
    if redis.url().starts_with("redis+cluster://") {
        let e = across.unwrap_err();
        assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
        assert!(e.to_string().contains("MSET, which is not"), "{e}");
        assert_eq!(redis.int(&["EXISTS", "x"]), 0);
    } else {
        assert!(across.unwrap());
        let _: () = con.del(&["x", "q"]).await.unwrap();
    }
    let n: i64 = con.incr("{t}a", 41).await.unwrap();
    assert_eq!(n, 42);
    assert_eq!(redis.cmd(&["GET", "{t}a"]), "42");
    let range: String = con.getrange("{t}t", 0, 0).await.unwrap();
    assert_eq!(range, "v");
    let expired: bool = con.expire("{t}b", 50).await.unwrap();
    assert!(expired);
    let persisted: bool = con.persist("{t}b").await.unwrap();
    assert!(persisted);
    assert_eq!(redis.int(&["TTL", "{t}b"]), -1);
    let _: () = con.rename("{t}b", "{t}b2").await.unwrap();
    assert_eq!(redis.cmd(&["GET", "{t}b2"]), "2");
    assert_eq!(redis.int(&["EXISTS", "{t}b"]), 0);
    let copied: bool = redis::cmd("COPY")
        .arg("{t}b2")
        .arg("{t}b3")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(copied);
    let keys: Vec<String> = con.keys("{t}b*").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let n: usize = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 5, "k, t, a, b2, b3");
    let deleted: i64 = con.del(&["{t}a", "{t}b2", "{t}nope"]).await.unwrap();
    assert_eq!(deleted, 2);
    let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
    assert_eq!(redis.dbsize(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_commands_answer_as_redis_over_redis() {
    let backend = redis_or_skip!();
    let reference = redis_or_skip!();
    compat::string_commands(&reference, &over(&backend).await).await;
}

over_redis_and_cluster! {
    async fn commands_that_change_values_in_place_answer_as_redis(redis) {
        let reference = redis_or_skip!();
        compat::random_string_commands(&reference, &over(redis).await).await;
    }
}

over_redis_and_cluster! {
    async fn in_place_changes_keep_ttls_and_refresh_the_local_cache(redis) {
        let kv = over(redis).await;
        let mut c = kv.raw().await;
        assert_eq!(c.call(&["SET", "{t}k", "v", "EX", "100"]).await, "+OK\r\n");
        // Cached locally by the read, then changed in place: the next read sees it.
        assert_eq!(c.call(&["GET", "{t}k"]).await, "$1\r\nv\r\n");
        assert_eq!(c.call(&["APPEND", "{t}k", "w"]).await, ":2\r\n");
        assert_eq!(c.call(&["GET", "{t}k"]).await, "$2\r\nvw\r\n");
        assert_eq!(redis.cmd(&["GET", "{t}k"]), "vw");
        let pttl = redis.int(&["PTTL", "{t}k"]);
        assert!((90_000..=100_000).contains(&pttl), "APPEND kept the TTL: {pttl}");
        assert_eq!(c.call(&["SETRANGE", "{t}k", "1", "xyz"]).await, ":4\r\n");
        assert_eq!(c.call(&["INCRBYFLOAT", "{t}n", "1.5"]).await, "$3\r\n1.5\r\n");
        assert_eq!(redis.cmd(&["GET", "{t}n"]), "1.5");
        assert_eq!(
            c.call(&["GETEX", "{t}k", "PERSIST"]).await,
            "$4\r\nvxyz\r\n"
        );
        assert_eq!(redis.int(&["PTTL", "{t}k"]), -1);
        assert_eq!(
            c.call(&["SET", "{t}k", "new", "PX", "50000", "GET"]).await,
            "$4\r\nvxyz\r\n"
        );
        let pttl = redis.int(&["PTTL", "{t}k"]);
        assert!((40_000..=50_000).contains(&pttl), "{pttl}");
        assert_eq!(c.call(&["GETDEL", "{t}k"]).await, "$3\r\nnew\r\n");
        assert_eq!(redis.int(&["EXISTS", "{t}k"]), 0);
        assert_eq!(c.call(&["GET", "{t}k"]).await, "$-1\r\n");
        // A value written by another Redis client is changed as it stands in Redis,
        // not as the local cache last saw it.
        assert_eq!(c.call(&["SET", "{t}o", "a"]).await, "+OK\r\n");
        assert_eq!(c.call(&["GET", "{t}o"]).await, "$1\r\na\r\n");
        redis.cmd(&["SET", "{t}o", "elsewhere"]);
        assert_eq!(c.call(&["APPEND", "{t}o", "!"]).await, ":10\r\n");
        assert_eq!(redis.cmd(&["GET", "{t}o"]), "elsewhere!");
    }
}

over_redis_and_cluster! {
    async fn racing_appends_from_two_servers_are_all_kept(redis) {
        let one = over(redis).await;
        let two = over(redis).await;
        // Sixteen clients, eight on each server, append to one key at once.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let kv = if i % 2 == 0 { &one } else { &two };
            let mut con = kv.client().get_multiplexed_async_connection().await.unwrap();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    let _: usize = con.append("log", format!("{i:x}")).await.unwrap();
                    let _: f64 = redis::cmd("INCRBYFLOAT")
                        .arg("sum")
                        .arg("0.5")
                        .query_async(&mut con)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let log = redis.cmd(&["GET", "log"]);
        assert_eq!(log.len(), 400, "{log}");
        for i in 0..16 {
            let n = log.chars().filter(|&c| c == char::from_digit(i, 16).unwrap()).count();
            assert_eq!(n, 25, "{log}");
        }
        assert_eq!(redis.cmd(&["GET", "sum"]), "200");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_redis_see_each_others_keys() {
    let redis = redis_or_skip!();
    let one = over(&redis).await;
    let two = over(&redis).await;
    let mut a = one.con().await;
    let mut b = two.con().await;
    let _: () = a.set("shared", "from one").await.unwrap();
    let v: String = b.get("shared").await.unwrap();
    assert_eq!(v, "from one");
    let n: i64 = b.incr("counter", 5).await.unwrap();
    assert_eq!(n, 5);
    let n: i64 = a.incr("counter", 5).await.unwrap();
    assert_eq!(n, 10);
}
