//! Model-based tests of the string commands: random sequences of commands (and of
//! clock advances) go to kvserver over the Redis protocol and to a reference model
//! written from Redis's documentation, and every reply must agree.
//!
//! The model is a map of byte values with deadlines in milliseconds on the test's
//! manual clock, small enough to check by reading. One server serves every case;
//! `FLUSHALL` separates them, and deadlines are relative, so the clock's absolute
//! reading does not matter. One suite runs the plain store, one a store with a
//! capacity larger than the key space (LRU bookkeeping must not change replies), one
//! a persistent store with `--fsync always`.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use redis::Value;

use super::Kv;

const KEYS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone, Copy)]
enum Cond {
    Always,
    Nx,
    Xx,
}

#[derive(Debug, Clone, Copy)]
enum Ttl {
    None,
    Ex(u8),
    Px(u16),
    Keep,
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, Vec<u8>, Cond, Ttl, bool),
    Get(usize),
    Append(usize, Vec<u8>),
    SetRange(usize, u8, Vec<u8>),
    GetRange(usize, i8, i8),
    Strlen(usize),
    IncrBy(usize, i64),
    GetDel(usize),
    GetSet(usize, Vec<u8>),
    GetExPersist(usize),
    GetExPx(usize, u16),
    MSet(Vec<(usize, Vec<u8>)>),
    MGet(Vec<usize>),
    MSetNx(Vec<(usize, Vec<u8>)>),
    SetBit(usize, u8, bool),
    GetBit(usize, u8),
    BitCount(usize),
    Del(usize),
    Exists(usize),
    Pttl(usize),
    Pexpire(usize, i16),
    Persist(usize),
    Advance(u16),
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![Just(b'x'), Just(0u8), Just(0xffu8), Just(b'7')],
            0..5
        ),
        (-20i64..20).prop_map(|n| n.to_string().into_bytes()),
        Just(b"9223372036854775807".to_vec()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let cond = prop_oneof![Just(Cond::Always), Just(Cond::Nx), Just(Cond::Xx)];
    let ttl = prop_oneof![
        Just(Ttl::None),
        (1..5u8).prop_map(Ttl::Ex),
        (1..3000u16).prop_map(Ttl::Px),
        Just(Ttl::Keep),
    ];
    prop_oneof![
        4 => (key(), value(), cond, ttl, any::<bool>()).prop_map(|(k, v, c, t, g)| Op::Set(k, v, c, t, g)),
        3 => key().prop_map(Op::Get),
        2 => (key(), value()).prop_map(|(k, v)| Op::Append(k, v)),
        2 => (key(), 0..8u8, value()).prop_map(|(k, o, v)| Op::SetRange(k, o, v)),
        2 => (key(), -8..8i8, -8..8i8).prop_map(|(k, s, e)| Op::GetRange(k, s, e)),
        1 => key().prop_map(Op::Strlen),
        2 => (key(), prop_oneof![-3..3i64, Just(i64::MAX), Just(i64::MIN)]).prop_map(|(k, by)| Op::IncrBy(k, by)),
        1 => key().prop_map(Op::GetDel),
        1 => (key(), value()).prop_map(|(k, v)| Op::GetSet(k, v)),
        1 => key().prop_map(Op::GetExPersist),
        1 => (key(), 1..3000u16).prop_map(|(k, ms)| Op::GetExPx(k, ms)),
        1 => prop::collection::vec((key(), value()), 1..4).prop_map(Op::MSet),
        1 => prop::collection::vec(key(), 1..4).prop_map(Op::MGet),
        1 => prop::collection::vec((key(), value()), 1..4).prop_map(Op::MSetNx),
        1 => (key(), 0..24u8, any::<bool>()).prop_map(|(k, o, b)| Op::SetBit(k, o, b)),
        1 => (key(), 0..24u8).prop_map(|(k, o)| Op::GetBit(k, o)),
        1 => key().prop_map(Op::BitCount),
        1 => key().prop_map(Op::Del),
        1 => key().prop_map(Op::Exists),
        1 => key().prop_map(Op::Pttl),
        1 => (key(), -10..3000i16).prop_map(|(k, ms)| Op::Pexpire(k, ms)),
        1 => key().prop_map(Op::Persist),
        2 => (1..2000u16).prop_map(Op::Advance),
    ]
}

/// A reply, as the model predicts it and the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum R {
    Nil,
    Ok,
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<R>),
    /// An error's text after its code.
    Err(String),
}

fn from_value(v: Value) -> R {
    match v {
        Value::Nil => R::Nil,
        Value::Okay => R::Ok,
        Value::SimpleString(s) if s == "OK" => R::Ok,
        Value::Int(n) => R::Int(n),
        Value::BulkString(b) => R::Bulk(b),
        Value::Array(items) => R::Array(items.into_iter().map(from_value).collect()),
        other => R::Err(format!("unexpected reply {other:?}")),
    }
}

/// The reference: values and deadlines (ms on the case's clock).
#[derive(Debug, Default)]
struct Model {
    now: u64,
    keys: HashMap<usize, (Vec<u8>, Option<u64>)>,
}

const NOT_INT: &str = "value is not an integer or out of range";

fn canonical_int(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let ok = match digits.as_bytes() {
        [b'0'] => s.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if ok { s.parse().ok() } else { None }
}

impl Model {
    fn live(&mut self, k: usize) -> Option<&mut (Vec<u8>, Option<u64>)> {
        let now = self.now;
        if self
            .keys
            .get(&k)
            .is_some_and(|(_, d)| d.is_some_and(|d| d <= now))
        {
            self.keys.remove(&k);
        }
        self.keys.get_mut(&k)
    }

    fn value(&mut self, k: usize) -> Option<Vec<u8>> {
        self.live(k).map(|(v, _)| v.clone())
    }

    fn apply(&mut self, op: &Op) -> R {
        let now = self.now;
        match op {
            Op::Set(k, v, cond, ttl, get) => {
                let old = self.live(*k).cloned();
                let applies = match cond {
                    Cond::Always => true,
                    Cond::Nx => old.is_none(),
                    Cond::Xx => old.is_some(),
                };
                if applies {
                    let deadline = match ttl {
                        Ttl::None => None,
                        Ttl::Ex(s) => Some(now + u64::from(*s) * 1000),
                        Ttl::Px(ms) => Some(now + u64::from(*ms)),
                        Ttl::Keep => old.as_ref().and_then(|(_, d)| *d),
                    };
                    self.keys.insert(*k, (v.clone(), deadline));
                }
                match (get, applies) {
                    (true, _) => old.map_or(R::Nil, |(v, _)| R::Bulk(v)),
                    (false, true) => R::Ok,
                    (false, false) => R::Nil,
                }
            }
            Op::Get(k) => self.value(*k).map_or(R::Nil, R::Bulk),
            Op::Append(k, v) => {
                let entry = self.live(*k).cloned().unwrap_or((Vec::new(), None));
                let mut value = entry.0;
                value.extend_from_slice(v);
                let len = value.len();
                self.keys.insert(*k, (value, entry.1));
                R::Int(len as i64)
            }
            Op::SetRange(k, offset, v) => {
                let offset = usize::from(*offset);
                let Some(entry) = self.live(*k).cloned() else {
                    if v.is_empty() {
                        return R::Int(0);
                    }
                    let mut value = vec![0; offset];
                    value.extend_from_slice(v);
                    let len = value.len();
                    self.keys.insert(*k, (value, None));
                    return R::Int(len as i64);
                };
                let mut value = entry.0;
                if !v.is_empty() {
                    if value.len() < offset + v.len() {
                        value.resize(offset + v.len(), 0);
                    }
                    value[offset..offset + v.len()].copy_from_slice(v);
                }
                let len = value.len();
                self.keys.insert(*k, (value, entry.1));
                R::Int(len as i64)
            }
            Op::GetRange(k, s, e) => {
                let value = self.value(*k).unwrap_or_default();
                let len = value.len() as i64;
                let (mut s, mut e) = (i64::from(*s), i64::from(*e));
                if s < 0 && e < 0 && s > e {
                    return R::Bulk(Vec::new());
                }
                if s < 0 {
                    s += len;
                }
                if e < 0 {
                    e += len;
                }
                let (s, e) = (s.max(0), e.max(0).min(len - 1));
                if s > e || len == 0 {
                    R::Bulk(Vec::new())
                } else {
                    R::Bulk(value[s as usize..=e as usize].to_vec())
                }
            }
            Op::Strlen(k) => R::Int(self.value(*k).map_or(0, |v| v.len() as i64)),
            Op::IncrBy(k, by) => {
                let entry = self.live(*k).cloned().unwrap_or((b"0".to_vec(), None));
                let Some(n) = canonical_int(&entry.0) else {
                    return R::Err(NOT_INT.into());
                };
                let Some(sum) = n.checked_add(*by) else {
                    return R::Err("increment or decrement would overflow".into());
                };
                self.keys
                    .insert(*k, (sum.to_string().into_bytes(), entry.1));
                R::Int(sum)
            }
            Op::GetDel(k) => {
                let old = self.value(*k);
                self.keys.remove(k);
                old.map_or(R::Nil, R::Bulk)
            }
            Op::GetSet(k, v) => {
                let old = self.value(*k);
                self.keys.insert(*k, (v.clone(), None));
                old.map_or(R::Nil, R::Bulk)
            }
            Op::GetExPersist(k) => match self.live(*k) {
                Some((v, d)) => {
                    *d = None;
                    R::Bulk(v.clone())
                }
                None => R::Nil,
            },
            Op::GetExPx(k, ms) => match self.live(*k) {
                Some((v, d)) => {
                    *d = Some(now + u64::from(*ms));
                    R::Bulk(v.clone())
                }
                None => R::Nil,
            },
            Op::MSet(pairs) => {
                for (k, v) in pairs {
                    self.keys.insert(*k, (v.clone(), None));
                }
                R::Ok
            }
            Op::MGet(keys) => R::Array(
                keys.iter()
                    .map(|k| self.value(*k).map_or(R::Nil, R::Bulk))
                    .collect(),
            ),
            Op::MSetNx(pairs) => {
                if pairs.iter().any(|(k, _)| self.live(*k).is_some()) {
                    return R::Int(0);
                }
                for (k, v) in pairs {
                    self.keys.insert(*k, (v.clone(), None));
                }
                R::Int(1)
            }
            Op::SetBit(k, offset, on) => {
                let entry = self.live(*k).cloned().unwrap_or((Vec::new(), None));
                let mut value = entry.0;
                let (byte, mask) = (usize::from(*offset) / 8, 0x80u8 >> (offset % 8));
                if value.len() <= byte {
                    value.resize(byte + 1, 0);
                }
                let was = value[byte] & mask != 0;
                if *on {
                    value[byte] |= mask;
                } else {
                    value[byte] &= !mask;
                }
                self.keys.insert(*k, (value, entry.1));
                R::Int(i64::from(was))
            }
            Op::GetBit(k, offset) => {
                let value = self.value(*k).unwrap_or_default();
                let (byte, mask) = (usize::from(*offset) / 8, 0x80u8 >> (offset % 8));
                R::Int(i64::from(value.get(byte).is_some_and(|b| b & mask != 0)))
            }
            Op::BitCount(k) => R::Int(
                self.value(*k)
                    .map_or(0, |v| v.iter().map(|b| i64::from(b.count_ones())).sum()),
            ),
            Op::Del(k) => {
                let existed = self.live(*k).is_some();
                self.keys.remove(k);
                R::Int(i64::from(existed))
            }
            Op::Exists(k) => R::Int(i64::from(self.live(*k).is_some())),
            Op::Pttl(k) => match self.live(*k) {
                None => R::Int(-2),
                Some((_, None)) => R::Int(-1),
                Some((_, Some(d))) => R::Int((*d - now) as i64),
            },
            Op::Pexpire(k, ms) => {
                if self.live(*k).is_none() {
                    return R::Int(0);
                }
                if *ms <= 0 {
                    self.keys.remove(k);
                } else if let Some((_, d)) = self.live(*k) {
                    *d = Some(now + ms.unsigned_abs() as u64);
                }
                R::Int(1)
            }
            Op::Persist(k) => match self.live(*k) {
                Some((_, d)) if d.is_some() => {
                    *d = None;
                    R::Int(1)
                }
                _ => R::Int(0),
            },
            Op::Advance(ms) => {
                self.now += u64::from(*ms);
                R::Ok
            }
        }
    }
}

/// The command that `op` sends.
fn command(op: &Op) -> redis::Cmd {
    let k = |i: &usize| KEYS[*i];
    let mut c;
    match op {
        Op::Set(key, v, cond, ttl, get) => {
            c = redis::cmd("SET");
            c.arg(k(key)).arg(v);
            match cond {
                Cond::Always => {}
                Cond::Nx => {
                    c.arg("NX");
                }
                Cond::Xx => {
                    c.arg("XX");
                }
            }
            match ttl {
                Ttl::None => {}
                Ttl::Ex(s) => {
                    c.arg("EX").arg(*s);
                }
                Ttl::Px(ms) => {
                    c.arg("PX").arg(*ms);
                }
                Ttl::Keep => {
                    c.arg("KEEPTTL");
                }
            }
            if *get {
                c.arg("GET");
            }
        }
        Op::Get(key) => c = redis::cmd("GET").arg(k(key)).clone(),
        Op::Append(key, v) => c = redis::cmd("APPEND").arg(k(key)).arg(v).clone(),
        Op::SetRange(key, o, v) => c = redis::cmd("SETRANGE").arg(k(key)).arg(*o).arg(v).clone(),
        Op::GetRange(key, s, e) => c = redis::cmd("GETRANGE").arg(k(key)).arg(*s).arg(*e).clone(),
        Op::Strlen(key) => c = redis::cmd("STRLEN").arg(k(key)).clone(),
        Op::IncrBy(key, by) => c = redis::cmd("INCRBY").arg(k(key)).arg(*by).clone(),
        Op::GetDel(key) => c = redis::cmd("GETDEL").arg(k(key)).clone(),
        Op::GetSet(key, v) => c = redis::cmd("GETSET").arg(k(key)).arg(v).clone(),
        Op::GetExPersist(key) => c = redis::cmd("GETEX").arg(k(key)).arg("PERSIST").clone(),
        Op::GetExPx(key, ms) => c = redis::cmd("GETEX").arg(k(key)).arg("PX").arg(*ms).clone(),
        Op::MSet(pairs) | Op::MSetNx(pairs) => {
            c = redis::cmd(if matches!(op, Op::MSet(_)) {
                "MSET"
            } else {
                "MSETNX"
            });
            for (key, v) in pairs {
                c.arg(k(key)).arg(v);
            }
        }
        Op::MGet(keys) => {
            c = redis::cmd("MGET");
            for key in keys {
                c.arg(k(key));
            }
        }
        Op::SetBit(key, o, on) => {
            c = redis::cmd("SETBIT")
                .arg(k(key))
                .arg(*o)
                .arg(u8::from(*on))
                .clone()
        }
        Op::GetBit(key, o) => c = redis::cmd("GETBIT").arg(k(key)).arg(*o).clone(),
        Op::BitCount(key) => c = redis::cmd("BITCOUNT").arg(k(key)).clone(),
        Op::Del(key) => c = redis::cmd("DEL").arg(k(key)).clone(),
        Op::Exists(key) => c = redis::cmd("EXISTS").arg(k(key)).clone(),
        Op::Pttl(key) => c = redis::cmd("PTTL").arg(k(key)).clone(),
        Op::Pexpire(key, ms) => c = redis::cmd("PEXPIRE").arg(k(key)).arg(*ms).clone(),
        Op::Persist(key) => c = redis::cmd("PERSIST").arg(k(key)).clone(),
        Op::Advance(_) => c = redis::cmd("PING"),
    }
    c
}

/// Runs `ops` on a flushed server and the model; the first disagreement fails.
async fn run(
    kv: &Kv,
    con: &mut redis::aio::MultiplexedConnection,
    ops: &[Op],
) -> Result<(), String> {
    let _: () = redis::cmd("FLUSHALL")
        .query_async(con)
        .await
        .map_err(|e| e.to_string())?;
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let expected = model.apply(op);
        if let Op::Advance(ms) = op {
            kv.clock.advance(Duration::from_millis(u64::from(*ms)));
            continue;
        }
        let got = match command(op).query_async::<Value>(con).await {
            Ok(v) => from_value(v),
            Err(e) => R::Err(e.detail().unwrap_or_default().to_owned()),
        };
        if got != expected {
            return Err(format!(
                "op {i} {op:?}: got {got:?}, the model says {expected:?}"
            ));
        }
    }
    Ok(())
}

fn suite(flags: &[&str], on_disk: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (kv, con) = rt.block_on(async {
        let kv = if on_disk {
            let data = dir.path().to_str().unwrap();
            let mut argv = vec!["--listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0"];
            argv.extend_from_slice(&["--data-dir", data, "--fsync", "always"]);
            argv.extend_from_slice(flags);
            Kv::start_with(crate::util::config(&argv)).await
        } else {
            Kv::start(flags).await
        };
        let con = kv.con().await;
        (kv, con)
    });
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..60))| {
        // A clone shares the one connection.
        let mut con = con.clone();
        let outcome = rt.block_on(run(&kv, &mut con, &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    });
    drop(con);
    drop(kv);
}

#[test]
fn string_commands_follow_the_model() {
    suite(&[], false);
}

#[test]
fn string_commands_follow_the_model_under_a_capacity() {
    suite(&["--capacity", "10"], false);
}

#[test]
fn string_commands_follow_the_model_on_disk() {
    suite(&[], true);
}
