//! kvserver answers as Redis answers: the same commands sent to a `redis-server` of
//! the test's own and to kvserver, in the same order on one connection each, get
//! the same bytes back, errors included.
//!
//! The scripts avoid what differs by design (the README lists it): version and id
//! fields, times, and TTLs beyond the store's ten years. Skipped, visibly, without
//! `redis-server`; required under `CI=true`.

use super::{Kv, Raw, encode};
use crate::util::redis::RedisServer;

/// One step of a script: a command, or raw bytes (inline commands, broken frames).
pub enum Step<'a> {
    Cmd(&'a [&'a [u8]]),
    Raw(&'a [u8]),
}

/// Sends `script` to both servers, a step at a time, and compares every reply,
/// and whether each closed the connection at the end.
pub async fn same_replies(redis: &RedisServer, kv: &Kv, script: &[Step<'_>]) {
    let mut r = Raw::connect(([127, 0, 0, 1], redis.port).into()).await;
    let mut k = kv.raw().await;
    for step in script {
        let (bytes, label) = match step {
            Step::Cmd(args) => (
                encode(args),
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Step::Raw(bytes) => (bytes.to_vec(), format!("{:?}", String::from_utf8_lossy(bytes))),
        };
        r.send_raw(&bytes).await;
        k.send_raw(&bytes).await;
        let expected = r.reply().await;
        let got = k.reply().await;
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            expected.as_deref().map(String::from_utf8_lossy),
            "{label}"
        );
        if expected.is_none() {
            return;
        }
    }
}

/// A script of commands given as text words.
macro_rules! script {
    ($([$($word:expr),* $(,)?]),* $(,)?) => {
        &[$(Step::Cmd(&[$(AsRef::<[u8]>::as_ref($word)),*])),*]
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_server_commands_answer_as_redis() {
    let redis = redis_or_skip!();
    let kv = Kv::start(&[]).await;
    let long = "x".repeat(200);
    let script: &[Step] = script![
        ["PING"],
        ["ping", "hello"],
        ["PING", "a", "b"],
        ["ECHO"],
        ["ECHO", "x y"],
        ["NOPE"],
        ["nope", "a", "b\r\nc"],
        ["NoPe", &long, "tail"],
        ["CLIENT"],
        ["CLIENT", "NOPE"],
        ["config", "nope", "x"],
        ["COMMAND", "NOPE"],
        ["SELECT", "0"],
        ["SELECT", "x"],
        ["SELECT", "99999999999"],
        ["SELECT"],
        ["DBSIZE"],
        ["DBSIZE", "x"],
        ["FLUSHDB", "x"],
        ["FLUSHDB", "ASYNC"],
        ["flushall", "sync"],
        ["FLUSHALL", "a", "b"],
        ["AUTH"],
        ["AUTH", "x"],
        ["AUTH", "a", "b", "c"],
        ["HELLO", "4"],
        ["HELLO", "x"],
        ["HELLO", "3", "FOO"],
        ["HELLO", "2", "AUTH", "x"],
        ["CLIENT", "SETNAME", "a b"],
        ["CLIENT", "GETNAME"],
        ["CLIENT", "SETNAME", "worker"],
        ["CLIENT", "GETNAME"],
        ["CLIENT", "SETNAME", ""],
        ["CLIENT", "GETNAME"],
        ["CLIENT", "SETNAME"],
        ["CLIENT", "LIST", "TYPE", "foo"],
        ["CLIENT", "LIST", "ID", "x"],
        ["CLIENT", "LIST", "x"],
        ["CLIENT", "LIST", "TYPE", "pubsub"],
        ["CONFIG", "GET", "nothing-here"],
        ["CONFIG", "GET", "maxmemory"],
        ["CONFIG", "SET", "nope", "1"],
        ["CONFIG", "SET", "databases", "3"],
        ["CONFIG", "SET", "timeout", "x"],
        ["CONFIG", "SET", "timeout", "-1"],
        ["CONFIG", "SET", "timeout", "1", "maxclients"],
        ["CONFIG", "SET", "timeout", "0"],
        ["CONFIG", "GET", "timeout"],
        ["CONFIG", "RESETSTAT"],
        ["CONFIG", "GET"],
        ["COMMAND", "INFO", "nope"],
        ["COMMAND", "DOCS", "nope"],
        ["COMMAND", "GETKEYS"],
        ["INFO", "nosuchsection"],
        ["RESET"],
        ["QUIT"],
    ];
    same_replies(&redis, &kv, script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_commands_on_missing_keys_answer_as_redis() {
    let redis = redis_or_skip!();
    let kv = Kv::start(&[]).await;
    let script: &[Step] = script![
        ["EXISTS", "k"],
        ["EXISTS", "k", "k", "j"],
        ["EXISTS"],
        ["DEL", "k", "j"],
        ["UNLINK", "k"],
        ["TYPE", "k"],
        ["TTL", "k"],
        ["PTTL", "k"],
        ["EXPIRETIME", "k"],
        ["PEXPIRETIME", "k"],
        ["PERSIST", "k"],
        ["EXPIRE", "k", "10"],
        ["EXPIRE", "k"],
        ["EXPIRE", "k", "x"],
        ["EXPIRE", "k", "10", "NX", "XX"],
        ["EXPIRE", "k", "10", "GT", "LT"],
        ["EXPIRE", "k", "10", "FOO"],
        ["EXPIRE", "k", "9223372036854775807"],
        ["EXPIRE", "k", "-9223372036854775807"],
        ["PEXPIRE", "k", "9223372036854775807"],
        ["PEXPIREAT", "k", "9223372036854775807"],
        ["EXPIREAT", "k", "9223372036854775807"],
        ["KEYS", "*"],
        ["KEYS"],
        ["SCAN", "0"],
        ["SCAN", "x"],
        ["SCAN", "0", "COUNT", "0"],
        ["SCAN", "0", "COUNT", "x"],
        ["SCAN", "0", "MATCH"],
        ["SCAN", "0", "FOO", "bar"],
        ["SCAN", "0", "TYPE", "list"],
        ["RANDOMKEY"],
        ["RANDOMKEY", "x"],
    ];
    same_replies(&redis, &kv, script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_and_broken_frames_answer_as_redis() {
    let redis = redis_or_skip!();
    let kv = Kv::start(&[]).await;
    for script in [
        &[Step::Raw(b"PING\r\n"), Step::Raw(b"ECHO \"a\\tb\" 'c'\n"), Step::Raw(b"ECHO \"x\"y\r\n")][..],
        &[Step::Raw(b"*1\r\n:5\r\n")],
        &[Step::Raw(b"*x\r\n")],
        &[Step::Raw(b"*1\r\n$x\r\n")],
        &[Step::Raw(b"*1\r\n$-1\r\n")],
        &[Step::Raw(b"*2147483648\r\n")],
        &[Step::Raw(b"'unbalanced\r\n")],
        &[Step::Raw(b"*0\r\n*-1\r\nPING\r\n")],
    ] {
        same_replies(&redis, &kv, script).await;
    }
}
