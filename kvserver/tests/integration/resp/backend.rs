//! The Redis protocol over `--backend`: the commands that map onto the backend's
//! operations work, values are the bytes under the key in Redis, and the commands
//! that change a value in place say they are not available. The first suite runs
//! over one Redis and over a Redis Cluster (its keys share a hash tag, so that the
//! multi-key commands stay in one slot). Skipped, visibly, without `redis-server`;
//! required under `CI=true`.

use redis::AsyncCommands;

use super::Kv;
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
async fn in_place_changes_say_they_are_not_available_over_redis() {
    let redis = redis_or_skip!();
    let kv = over(&redis).await;
    let mut c = kv.raw().await;
    c.call(&["SET", "k", "v"]).await;
    for (args, name) in [
        (&["APPEND", "k", "x"][..], "append"),
        (&["SETRANGE", "k", "0", "x"], "setrange"),
        (&["SETBIT", "k", "0", "1"], "setbit"),
        (&["INCRBYFLOAT", "k", "1"], "incrbyfloat"),
        (&["GETSET", "k", "x"], "getset"),
        (&["GETDEL", "k"], "getdel"),
        (&["GETEX", "k", "EX", "5"], "getex"),
        (&["SET", "k", "x", "GET"], "set"),
    ] {
        assert_eq!(
            c.call(args).await,
            format!(
                "-ERR '{name}' is not available with --backend: it changes a value in \
                 place, which kvserver does only over its own store\r\n"
            ),
            "{args:?}"
        );
    }
    // Nothing was changed, and the connection goes on.
    assert_eq!(c.call(&["GET", "k"]).await, "$1\r\nv\r\n");
    assert_eq!(c.call(&["GETEX", "k"]).await, "$1\r\nv\r\n");
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
