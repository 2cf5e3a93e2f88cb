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
            Step::Raw(bytes) => (
                bytes.to_vec(),
                format!("{:?}", String::from_utf8_lossy(bytes)),
            ),
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
        &[
            Step::Raw(b"PING\r\n"),
            Step::Raw(b"ECHO \"a\\tb\" 'c'\n"),
            Step::Raw(b"ECHO \"x\"y\r\n"),
        ][..],
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_commands_answer_as_redis() {
    let redis = redis_or_skip!();
    string_commands(&redis, &Kv::start(&[]).await).await;
}

/// The string and key commands, errors included, sent to `redis` and to `kv`.
pub async fn string_commands(redis: &RedisServer, kv: &Kv) {
    let script: &[Step] = script![
        ["GET", "k"],
        ["SET", "k", "v"],
        ["GET", "k"],
        ["SET", "k", b"\x00\xff\r\n"],
        ["GET", "k"],
        ["SET", "k"],
        ["SET", "k", "v", "NX"],
        ["SET", "k", "w", "XX"],
        ["SET", "new", "w", "XX"],
        ["SET", "k", "v", "NX", "XX"],
        ["SET", "k", "v", "XX", "NX"],
        ["SET", "k", "v", "FOO"],
        ["SET", "k", "v", "EX"],
        ["SET", "k", "v", "EX", "x"],
        ["SET", "k", "v", "EX", "0"],
        ["SET", "k", "v", "EX", "-5"],
        ["SET", "k", "v", "PX", "0"],
        ["SET", "k", "v", "EX", "9223372036854775807"],
        ["SET", "k", "v", "EX", "10", "PX", "10"],
        ["SET", "k", "v", "EX", "10", "KEEPTTL"],
        ["SET", "k", "v", "KEEPTTL", "PX", "10"],
        ["SET", "k", "v", "KEEPTTL", "EXAT", "10"],
        ["SET", "k", "v", "EXAT", "0"],
        ["SET", "k", "v", "PERSIST"],
        ["SET", "k", "v2", "GET"],
        ["SET", "k", "v3", "NX", "GET"],
        ["SET", "fresh", "v", "NX", "GET"],
        ["SET", "nothere", "v", "XX", "GET"],
        ["GET", "nothere"],
        ["SET", "k", "v", "EX", "100"],
        ["TTL", "k"],
        ["SET", "k", "v", "KEEPTTL"],
        ["TTL", "k"],
        ["SET", "k", "v"],
        ["TTL", "k"],
        ["SET", "k", "v", "EXAT", "1"],
        ["GET", "k"],
        ["EXISTS", "k"],
        ["SET", "k", "v", "GET", "PXAT", "1"],
        ["SETNX", "k", "a"],
        ["SETNX", "k", "b"],
        ["GET", "k"],
        ["SETNX", "k"],
        ["SETEX", "k", "100", "v"],
        ["TTL", "k"],
        ["SETEX", "k", "0", "v"],
        ["SETEX", "k", "x", "v"],
        ["SETEX", "k", "-1", "v"],
        ["PSETEX", "k", "100000", "v"],
        ["TTL", "k"],
        ["PSETEX", "k", "0", "v"],
        ["GETEX", "k"],
        ["GETEX", "k", "PERSIST"],
        ["TTL", "k"],
        ["GETEX", "k", "EX", "50"],
        ["TTL", "k"],
        ["GETEX", "k", "EX", "0"],
        ["GETEX", "k", "EX", "1", "PX", "1"],
        ["GETEX", "k", "KEEPTTL"],
        ["GETEX", "k", "PERSIST", "EX", "5"],
        ["GETEX", "k", "FOO"],
        ["GETEX", "missing", "EX", "5"],
        ["GETEX", "k", "PXAT", "1"],
        ["GET", "k"],
        ["SET", "k", "v", "EX", "100"],
        ["GETSET", "k", "w"],
        ["TTL", "k"],
        ["GETSET", "missing2", "x"],
        ["GETDEL", "k"],
        ["GETDEL", "k"],
        ["MSET", "a", "1", "b", "2"],
        ["MSET", "a", "1", "b"],
        ["MSET"],
        ["MGET", "a", "b", "nope", "a"],
        ["MSETNX", "a", "9", "c", "3"],
        ["MSETNX", "c", "3", "d", "4"],
        ["MGET", "a", "c", "d"],
        ["MSETNX", "e"],
        ["STRLEN", "a"],
        ["STRLEN", "nope"],
        ["SET", "s", "Hello World"],
        ["APPEND", "s", "!!"],
        ["APPEND", "fresh2", "abc"],
        ["GET", "s"],
        ["GETRANGE", "s", "0", "4"],
        ["GETRANGE", "s", "-3", "-1"],
        ["GETRANGE", "s", "-1", "-3"],
        ["GETRANGE", "s", "5", "1"],
        ["GETRANGE", "s", "0", "-100"],
        ["GETRANGE", "s", "-100", "100"],
        ["GETRANGE", "s", "x", "1"],
        ["GETRANGE", "nope", "0", "-1"],
        ["SUBSTR", "s", "6", "10"],
        ["SETRANGE", "s", "6", "Redis"],
        ["GET", "s"],
        ["SETRANGE", "s", "20", "x"],
        ["GET", "s"],
        ["SETRANGE", "s", "-1", "x"],
        ["SETRANGE", "s", "x", "x"],
        ["SETRANGE", "s", "3", ""],
        ["SETRANGE", "nope2", "3", ""],
        ["EXISTS", "nope2"],
        ["SETRANGE", "nope3", "3", "ab"],
        ["GET", "nope3"],
        ["INCR", "n"],
        ["INCRBY", "n", "10"],
        ["DECR", "n"],
        ["DECRBY", "n", "5"],
        ["INCRBY", "n", "x"],
        ["DECRBY", "n", "-9223372036854775808"],
        ["SET", "n", "9223372036854775807"],
        ["INCR", "n"],
        ["SET", "n", "-9223372036854775808"],
        ["DECR", "n"],
        ["SET", "n", " 1"],
        ["INCR", "n"],
        ["SET", "n", "01"],
        ["INCR", "n"],
        ["SET", "n", "abc"],
        ["INCR", "n"],
        ["INCRBYFLOAT", "n", "1"],
        ["SET", "f", "10.50"],
        ["INCRBYFLOAT", "f", "0.1"],
        ["INCRBYFLOAT", "f", "-5.0e1"],
        ["INCRBYFLOAT", "f", "x"],
        ["INCRBYFLOAT", "f", "inf"],
        ["INCRBYFLOAT", "ff", "0.1"],
        ["INCRBYFLOAT", "ff", "0.2"],
        ["INCRBYFLOAT", "ff", "3"],
        ["INCRBYFLOAT", "ff", "1e3"],
        ["INCRBYFLOAT", "ff", "-1003.3"],
        ["SET", "bits", "foobar"],
        ["BITCOUNT", "bits"],
        ["BITCOUNT", "bits", "0", "0"],
        ["BITCOUNT", "bits", "1", "1"],
        ["BITCOUNT", "bits", "1", "1", "BYTE"],
        ["BITCOUNT", "bits", "5", "30", "BIT"],
        ["BITCOUNT", "bits", "-5", "-1", "BIT"],
        ["BITCOUNT", "bits", "1"],
        ["BITCOUNT", "bits", "1", "2", "FOO"],
        ["BITCOUNT", "nope", "0", "1"],
        ["BITCOUNT", "nope", "x", "1"],
        ["SETBIT", "b", "7", "1"],
        ["SETBIT", "b", "7", "0"],
        ["SETBIT", "b", "7", "1"],
        ["SETBIT", "b", "100", "1"],
        ["SETBIT", "b", "-1", "1"],
        ["SETBIT", "b", "1", "2"],
        ["SETBIT", "b", "x", "1"],
        ["GET", "b"],
        ["GETBIT", "b", "7"],
        ["GETBIT", "b", "6"],
        ["GETBIT", "b", "1000"],
        ["GETBIT", "nope", "0"],
        ["GETBIT", "b", "-1"],
        ["SET", "p", b"\xff\xf0\x00"],
        ["BITPOS", "p", "0"],
        ["BITPOS", "p", "1"],
        ["BITPOS", "p", "0", "2"],
        ["BITPOS", "p", "1", "2"],
        ["BITPOS", "p", "1", "2", "-1", "BYTE"],
        ["BITPOS", "p", "0", "7", "15", "BIT"],
        ["BITPOS", "p", "0", "0", "1"],
        ["BITPOS", "p", "0", "0", "-1"],
        ["BITPOS", "p", "2"],
        ["BITPOS", "p", "x"],
        ["BITPOS", "nope", "1"],
        ["BITPOS", "nope", "0"],
        ["SET", "allones", b"\xff\xff"],
        ["BITPOS", "allones", "0"],
        ["BITPOS", "allones", "0", "0", "-1"],
        ["SET", "empty", ""],
        ["BITPOS", "empty", "0"],
        ["BITCOUNT", "empty"],
        ["STRLEN", "empty"],
        ["GET", "empty"],
        ["SET", "key1", "ohmytext"],
        ["SET", "key2", "mynewtext"],
        ["LCS", "key1", "key2"],
        ["LCS", "key1", "key2", "LEN"],
        ["LCS", "key1", "key2", "IDX"],
        ["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
        [
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN"
        ],
        ["LCS", "key1", "key2", "IDX", "LEN"],
        ["LCS", "key1", "key2", "FOO"],
        ["LCS", "key1", "nope"],
        ["LCS", "key1", "key2", "MINMATCHLEN"],
        ["TYPE", "key1"],
        ["RENAME", "key1", "key3"],
        ["GET", "key1"],
        ["GET", "key3"],
        ["RENAME", "nope", "x"],
        ["RENAME", "key3", "key3"],
        ["RENAMENX", "key3", "key2"],
        ["RENAMENX", "key3", "key4"],
        ["RENAMENX", "key4", "key4"],
        ["SET", "t", "v", "EX", "100"],
        ["RENAME", "t", "t2"],
        ["TTL", "t2"],
        ["COPY", "t2", "t3"],
        ["TTL", "t3"],
        ["COPY", "t2", "t3"],
        ["COPY", "t2", "t3", "REPLACE"],
        ["COPY", "t2", "t2"],
        ["COPY", "nope", "t4"],
        ["COPY", "t2", "t4", "DB", "x"],
        ["COPY", "t2", "t4", "FOO"],
        ["COPY", "t2", "t4", "DB", "0"],
        ["GET", "t4"],
        ["DEL", "t2", "t3", "t4", "nope"],
        ["DBSIZE"],
        ["EXPIRE", "a", "100"],
        ["TTL", "a"],
        ["EXPIRE", "a", "50", "GT"],
        ["EXPIRE", "a", "500", "GT"],
        ["EXPIRE", "a", "50", "LT"],
        ["EXPIRE", "a", "100", "NX"],
        ["PERSIST", "a"],
        ["PERSIST", "a"],
        ["EXPIRE", "a", "100", "XX"],
        ["EXPIRE", "a", "100", "LT"],
        ["TTL", "a"],
        ["PEXPIRE", "a", "-1"],
        ["EXISTS", "a"],
        ["EXPIREAT", "b", "1"],
        ["EXISTS", "b"],
        ["FLUSHALL"],
        ["DBSIZE"],
    ];
    same_replies(redis, kv, script).await;
}

/// A small deterministic generator, so that a failing sequence can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// A small integer, often negative or out of the value's range.
    fn int(&mut self) -> String {
        (self.below(41) as i64 - 20).to_string()
    }

    /// A short value of a few bytes from a small alphabet, with binary ones.
    fn value(&mut self) -> Vec<u8> {
        let len = self.below(7) as usize;
        (0..len)
            .map(|_| [b'a', b'b', b'c', 0x00, 0xff, b'1', b'0'][self.below(7) as usize])
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_string_commands_answer_as_redis() {
    let redis = redis_or_skip!();
    random_string_commands(&redis, &Kv::start(&[]).await).await;
}

/// Random sequences of the string commands, most of them changing values in place,
/// over three keys, sent to `redis` and to `kv`.
pub async fn random_string_commands(redis: &RedisServer, kv: &Kv) {
    let mut r = Raw::connect(([127, 0, 0, 1], redis.port).into()).await;
    let mut k = kv.raw().await;
    let keys = ["a", "b", "c"];
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 7, 0xdead_beef] {
        let mut rng = Xorshift(seed);
        for step in 0..3000 {
            let key = rng.pick(&keys).as_bytes().to_vec();
            let other = rng.pick(&keys).as_bytes().to_vec();
            let value = rng.value();
            let (i, j) = (rng.int(), rng.int());
            let bit = rng.below(40).to_string();
            let args: Vec<Vec<u8>> = match rng.below(17) {
                0 => vec![b"SET".to_vec(), key, value],
                1 => vec![b"APPEND".to_vec(), key, value],
                2 => vec![b"GETRANGE".to_vec(), key, i.into(), j.into()],
                3 => vec![
                    b"SETRANGE".to_vec(),
                    key,
                    rng.below(8).to_string().into(),
                    value,
                ],
                4 => vec![
                    b"BITCOUNT".to_vec(),
                    key,
                    i.into(),
                    j.into(),
                    rng.pick(&["BYTE", "BIT"]).into(),
                ],
                5 => vec![b"BITCOUNT".to_vec(), key],
                6 => vec![
                    b"BITPOS".to_vec(),
                    key,
                    rng.pick(&["0", "1"]).into(),
                    i.into(),
                ],
                7 => vec![
                    b"BITPOS".to_vec(),
                    key,
                    rng.pick(&["0", "1"]).into(),
                    i.into(),
                    j.into(),
                    rng.pick(&["BYTE", "BIT"]).into(),
                ],
                8 => vec![
                    b"SETBIT".to_vec(),
                    key,
                    bit.into(),
                    rng.pick(&["0", "1"]).into(),
                ],
                9 => vec![b"GETBIT".to_vec(), key, bit.into()],
                10 => vec![
                    b"LCS".to_vec(),
                    key,
                    other,
                    rng.pick(&["IDX", "LEN", "WITHMATCHLEN"]).into(),
                ],
                11 => vec![
                    b"LCS".to_vec(),
                    key,
                    other,
                    b"IDX".to_vec(),
                    b"MINMATCHLEN".to_vec(),
                    rng.below(3).to_string().into(),
                    b"WITHMATCHLEN".to_vec(),
                ],
                12 => vec![b"INCRBY".to_vec(), key, i.into()],
                13 => vec![b"STRLEN".to_vec(), key],
                14 => vec![b"GETDEL".to_vec(), key],
                15 => vec![b"RENAME".to_vec(), key, other],
                _ => vec![b"GETSET".to_vec(), key, value],
            };
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let request = encode(&args);
            r.send_raw(&request).await;
            k.send_raw(&request).await;
            let expected = r
                .reply()
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let got = k
                .reply()
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let label: Vec<String> = args
                .iter()
                .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
                .collect();
            assert_eq!(
                got,
                expected,
                "seed {seed} step {step}: {}",
                label.join(" ")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incrbyfloat_adds_as_redis_adds() {
    let redis = redis_or_skip!();
    let kv = Kv::start(&[]).await;
    let mut r = Raw::connect(([127, 0, 0, 1], redis.port).into()).await;
    let mut k = kv.raw().await;
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    for step in 0..2000 {
        // Decimals of up to 12 digits, the point anywhere, sometimes an exponent.
        let digits: String = (0..1 + rng.below(12))
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        let point = rng.below(digits.len() as u64 + 1) as usize;
        let mut number = format!("{}.{}", &digits[..point], &digits[point..]);
        if rng.below(2) == 0 {
            number.insert(0, '-');
        }
        if rng.below(5) == 0 {
            number.push_str(&format!("e{}", rng.below(11) as i64 - 5));
        }
        if step % 50 == 0 {
            for c in [&mut r, &mut k] {
                c.call(&["SET", "f", &number]).await;
            }
            continue;
        }
        let request = encode(&[b"INCRBYFLOAT", b"f", number.as_bytes()]);
        r.send_raw(&request).await;
        k.send_raw(&request).await;
        let expected = r.text().await;
        let got = k.text().await;
        assert_eq!(got, expected, "step {step}: INCRBYFLOAT f {number}");
    }
}
