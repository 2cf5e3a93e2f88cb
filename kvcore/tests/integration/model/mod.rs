//! Model-based property tests for every store mode.
//!
//! Random operation sequences, interleaved with clock advances, run against a store
//! and against a deliberately naive reference model. After every operation the test
//! compares the operation's result, the remaining TTL of every key (through `ttl`,
//! which has no side effects) and the hit, miss and eviction counters; expirations
//! are checked against bounds the model can prove, and exactly at the end when no
//! `clear` made them uncertain. At the end the whole contents are compared.
//!
//! The model is a `BTreeMap` of entries, each with an absolute deadline on the model's
//! own clock, the TTL length last written (where a sliding read restarts it) and a
//! last-use stamp from a counter (the least recently used live key has the smallest
//! stamp). It shares no code with the implementation: the semantics come from the
//! crate docs and the HTTP API reference (`docs/http-api.md`).
//!
//! Modes: plain, fixed TTL, sliding TTL, LRU, LRU + fixed TTL, LRU + sliding TTL and
//! read-only, each with a random shard count (1, a few, or the default).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kvcore::{Condition, Error, Expiry, SetOptions, SetOutcome, Store};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

mod cases;
mod runner;

/// A small alphabet, so that operations collide and patterns split it.
const KEYS: &[&str] = &["a", "b", "c", "ab", "ba", "a1", "b1", "c1"];

/// Values: non-integers (`+1` is not canonical decimal text), small integers and the
/// ends of `i64`, so that `incr` meets every outcome.
const VALUES: &[&str] = &[
    "v1",
    "v2",
    "0",
    "7",
    "-3",
    "+1",
    "9223372036854775807",
    "-9223372036854775808",
];

const INCREMENTS: &[i64] = &[0, 1, -1, 5, 100, i64::MAX, i64::MIN];

/// The longest TTL the HTTP API accepts: ten years.
const TEN_YEARS: Duration = Duration::from_secs(315_360_000);

const NANOS_PER_MS: u64 = 1_000_000;

/// Proptest cases per mode.
const CASES: u32 = 256;

/// The longest operation sequence.
const MAX_OPS: usize = 60;

// ---------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------

/// The scan patterns, each with a hand-written predicate for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pat {
    /// No pattern.
    All,
    /// `*`: matches everything.
    Star,
    /// `a*`
    StartsA,
    /// `?b`
    SecondB,
    /// `[ab]*`
    ClassAb,
    /// `*1`
    EndsOne,
}

impl Pat {
    fn text(self) -> Option<&'static str> {
        match self {
            Pat::All => None,
            Pat::Star => Some("*"),
            Pat::StartsA => Some("a*"),
            Pat::SecondB => Some("?b"),
            Pat::ClassAb => Some("[ab]*"),
            Pat::EndsOne => Some("*1"),
        }
    }

    fn matches(self, key: &str) -> bool {
        let chars: Vec<char> = key.chars().collect();
        match self {
            Pat::All | Pat::Star => true,
            Pat::StartsA => chars.first() == Some(&'a'),
            Pat::SecondB => chars.len() == 2 && chars[1] == 'b',
            Pat::ClassAb => matches!(chars.first(), Some('a' | 'b')),
            Pat::EndsOne => chars.last() == Some(&'1'),
        }
    }
}

type Pairs = Vec<(&'static str, &'static str)>;

#[derive(Debug, Clone)]
enum Op {
    Get(&'static str),
    GetWithTtl(&'static str),
    GetMany(Vec<&'static str>),
    Contains(&'static str),
    Ttl(&'static str),
    Set(&'static str, &'static str, Expiry, Condition),
    SetMany(Pairs, Expiry),
    InsertAllAbsent(Pairs, Expiry),
    UpdateAllPresent(Pairs, Expiry),
    Delete(&'static str),
    Expire(&'static str, Duration),
    Persist(&'static str),
    Incr(&'static str, i64),
    Len,
    IsEmpty,
    Clear,
    /// Scan to completion with pages of at most this many pairs.
    Scan(Pat, usize),
    /// A scan with a cursor no store issued.
    ScanBadCursor,
    /// `purge_expired` with this budget: must not change anything observable.
    Purge(usize),
    /// Advance the clock by this many milliseconds.
    Advance(u64),
}

fn key() -> impl Strategy<Value = &'static str> {
    select(KEYS)
}

fn value() -> impl Strategy<Value = &'static str> {
    select(VALUES)
}

/// Mostly valid TTLs on a 250 ms grid (so deadlines are often hit exactly), some
/// arbitrary milliseconds, and the edges: zero and over ten years are invalid, ten
/// years is valid.
fn ttl() -> impl Strategy<Value = Duration> {
    prop_oneof![
        10 => (1..=20u64).prop_map(|q| Duration::from_millis(q * 250)),
        3 => (1..=5000u64).prop_map(Duration::from_millis),
        1 => Just(Duration::ZERO),
        1 => Just(TEN_YEARS),
        1 => Just(TEN_YEARS + Duration::from_secs(1)),
    ]
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        3 => Just(Expiry::Default),
        3 => ttl().prop_map(Expiry::After),
        2 => Just(Expiry::Keep),
        1 => Just(Expiry::Never),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        3 => Just(Condition::Always),
        1 => Just(Condition::IfAbsent),
        1 => Just(Condition::IfPresent),
    ]
}

fn batch() -> impl Strategy<Value = Pairs> {
    vec((key(), value()), 0..=5)
}

const PATS: &[Pat] = &[
    Pat::All,
    Pat::Star,
    Pat::StartsA,
    Pat::SecondB,
    Pat::ClassAb,
    Pat::EndsOne,
];

fn pat() -> impl Strategy<Value = Pat> {
    select(PATS)
}

/// Clock steps: mostly on the 250 ms grid (0 to 3 s), sometimes arbitrary.
fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => (0..=12u64).prop_map(|q| q * 250),
        1 => 0..=3000u64,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Get),
        2 => key().prop_map(Op::GetWithTtl),
        2 => vec(key(), 0..=4).prop_map(Op::GetMany),
        2 => key().prop_map(Op::Contains),
        2 => key().prop_map(Op::Ttl),
        8 => (key(), value(), expiry(), condition()).prop_map(|(k, v, e, c)| Op::Set(k, v, e, c)),
        2 => (batch(), expiry()).prop_map(|(b, e)| Op::SetMany(b, e)),
        2 => (batch(), expiry()).prop_map(|(b, e)| Op::InsertAllAbsent(b, e)),
        2 => (batch(), expiry()).prop_map(|(b, e)| Op::UpdateAllPresent(b, e)),
        2 => key().prop_map(Op::Delete),
        2 => (key(), ttl()).prop_map(|(k, t)| Op::Expire(k, t)),
        1 => key().prop_map(Op::Persist),
        3 => (key(), select(INCREMENTS)).prop_map(|(k, by)| Op::Incr(k, by)),
        1 => Just(Op::Len),
        1 => Just(Op::IsEmpty),
        1 => Just(Op::Clear),
        3 => (pat(), 1..=5usize).prop_map(|(p, limit)| Op::Scan(p, limit)),
        1 => Just(Op::ScanBadCursor),
        2 => (0..=4usize).prop_map(Op::Purge),
        10 => advance().prop_map(Op::Advance),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec(op(), 1..=MAX_OPS)
}

// ---------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------

/// An [`Error`] reduced to what the model predicts (the real one has no `PartialEq`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fail {
    ReadOnly,
    NotAnInteger(String),
    Overflow(String, i64),
    BatchTooLarge { requested: usize, capacity: usize },
    InvalidTtl(Duration),
    InvalidCursor,
    Other(String),
}

fn fail(error: Error) -> Fail {
    match error {
        Error::ReadOnly => Fail::ReadOnly,
        Error::NotAnInteger { key } => Fail::NotAnInteger(key),
        Error::Overflow { key, by } => Fail::Overflow(key, by),
        Error::BatchTooLarge {
            requested,
            capacity,
        } => Fail::BatchTooLarge {
            requested,
            capacity,
        },
        Error::InvalidTtl { ttl } => Fail::InvalidTtl(ttl),
        Error::InvalidCursor { .. } => Fail::InvalidCursor,
        other => Fail::Other(other.to_string()),
    }
}

type Res<T> = Result<T, Fail>;

/// The result of one operation, from the store or from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Value(Option<String>),
    ValueTtl(Option<(String, Option<Duration>)>),
    Values(Vec<Option<String>>),
    Flag(bool),
    Ttl(Option<Option<Duration>>),
    Set(Res<SetOutcome>),
    Count(Res<usize>),
    Batch(Res<bool>),
    Incr(Res<i64>),
    Len(usize),
    Scan(Res<usize>),
}

fn owned(pairs: &Pairs) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn set_options(expiry: Expiry, condition: Condition) -> SetOptions {
    let opts = match expiry {
        Expiry::Default => SetOptions::new(),
        Expiry::After(ttl) => SetOptions::new().ttl(ttl),
        Expiry::Keep => SetOptions::new().keep_ttl(),
        Expiry::Never => SetOptions::new().no_ttl(),
        other => panic!("the test does not know {other:?}"),
    };
    let opts = match condition {
        Condition::Always => opts,
        Condition::IfAbsent => opts.if_absent(),
        Condition::IfPresent => opts.if_present(),
        other => panic!("the test does not know {other:?}"),
    };
    assert_eq!((opts.expiry, opts.condition), (expiry, condition));
    opts
}

/// Runs one operation (not a scan, purge or clock step) on the store.
fn run_on_store(store: &dyn Store<String>, op: &Op) -> Out {
    match op {
        Op::Get(k) => Out::Value(store.get(k)),
        Op::GetWithTtl(k) => Out::ValueTtl(store.get_with_ttl(k)),
        Op::GetMany(keys) => Out::Values(store.get_many(keys)),
        Op::Contains(k) => Out::Flag(store.contains(k)),
        Op::Ttl(k) => Out::Ttl(store.ttl(k)),
        Op::Set(k, v, e, c) => Out::Set(
            store
                .set(k, (*v).to_owned(), set_options(*e, *c))
                .map_err(fail),
        ),
        Op::SetMany(pairs, e) => Out::Count(store.set_many(owned(pairs), *e).map_err(fail)),
        Op::InsertAllAbsent(pairs, e) => {
            Out::Batch(store.insert_all_absent(owned(pairs), *e).map_err(fail))
        }
        Op::UpdateAllPresent(pairs, e) => {
            Out::Batch(store.update_all_present(owned(pairs), *e).map_err(fail))
        }
        Op::Delete(k) => Out::Batch(store.delete(k).map_err(fail)),
        Op::Expire(k, ttl) => Out::Batch(store.expire(k, *ttl).map_err(fail)),
        Op::Persist(k) => Out::Batch(store.clear_ttl(k).map_err(fail)),
        Op::Incr(k, by) => Out::Incr(store.incr(k, *by).map_err(fail)),
        Op::Len => Out::Len(store.len()),
        Op::IsEmpty => Out::Flag(store.is_empty()),
        Op::Clear => Out::Count(store.clear().map_err(fail)),
        Op::ScanBadCursor => Out::Scan(
            store
                .scan(None, Some("not-a-cursor"), 3)
                .map(|page| page.items.len())
                .map_err(fail),
        ),
        Op::Scan(..) | Op::Purge(_) | Op::Advance(_) => {
            unreachable!("handled by the runner")
        }
    }
}

// ---------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    /// Absolute deadline in nanoseconds on the model clock; `None`: no TTL.
    deadline: Option<u64>,
    /// The TTL length last written, where a sliding read restarts the deadline.
    ttl_len: Option<u64>,
    /// Last use, from `Model::tick`: the smallest live stamp is the LRU victim.
    used: u64,
}

#[derive(Debug)]
struct Model {
    /// Live and expired entries; expired ones stay until something replaces or removes
    /// them, only so that expirations can be counted.
    entries: BTreeMap<String, Entry>,
    now: u64,
    read_only: bool,
    default_ttl: Option<u64>,
    sliding: bool,
    capacity: Option<usize>,
    tick: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
    /// Expired entries replaced or deleted: the store has counted each exactly once
    /// (whenever it removed it).
    expired_removed: u64,
    /// Expired entries dropped by `clear`: the store counted those it had purged before.
    expired_cleared: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).expect("test durations fit in u64 nanoseconds")
}

/// Canonical decimal integer text: `-?[0-9]+` within the range of `i64`.
fn integer(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let canonical = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    if canonical { text.parse().ok() } else { None }
}

fn check_ttl(ttl: Duration) -> Res<()> {
    if ttl.is_zero() || ttl > TEN_YEARS {
        Err(Fail::InvalidTtl(ttl))
    } else {
        Ok(())
    }
}

fn check_expiry(expiry: Expiry) -> Res<()> {
    match expiry {
        Expiry::After(ttl) => check_ttl(ttl),
        _ => Ok(()),
    }
}

/// A batch with duplicates collapsed: first-occurrence order, last value.
fn dedup(pairs: &Pairs) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for &(k, v) in pairs {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_owned(),
            None => out.push((k.to_owned(), v.to_owned())),
        }
    }
    out
}

impl Model {
    fn new(now: u64) -> Self {
        Model {
            entries: BTreeMap::new(),
            now,
            read_only: false,
            default_ttl: None,
            sliding: false,
            capacity: None,
            tick: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
            expired_removed: 0,
            expired_cleared: 0,
        }
    }

    fn alive(&self, entry: &Entry) -> bool {
        entry.deadline.is_none_or(|d| d > self.now)
    }

    fn live(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| self.alive(e))
    }

    fn live_count(&self) -> usize {
        self.entries.values().filter(|e| self.alive(e)).count()
    }

    fn dead_count(&self) -> u64 {
        self.entries.values().filter(|e| !self.alive(e)).count() as u64
    }

    fn remaining(&self, entry: &Entry) -> Option<Duration> {
        entry.deadline.map(|d| Duration::from_nanos(d - self.now))
    }

    fn stamp(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn writable(&self) -> Res<()> {
        if self.read_only {
            Err(Fail::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// A read that counts as use: restarts a sliding TTL and refreshes LRU order.
    fn use_for_read(&mut self, key: &str) -> Option<Entry> {
        self.live(key)?;
        let (now, sliding, stamp) = (self.now, self.sliding, self.stamp());
        let entry = self.entries.get_mut(key)?;
        if sliding && let Some(len) = entry.ttl_len {
            entry.deadline = Some(now + len);
        }
        entry.used = stamp;
        Some(entry.clone())
    }

    /// A read counted in the hit and miss statistics.
    fn counted_read(&mut self, key: &str) -> Option<Entry> {
        let found = self.use_for_read(key);
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// The (deadline, ttl length) a write gives a key.
    fn resolve(
        &self,
        expiry: Expiry,
        old: Option<(Option<u64>, Option<u64>)>,
    ) -> (Option<u64>, Option<u64>) {
        let after = |len: u64| (Some(self.now + len), Some(len));
        let default = self.default_ttl.map_or((None, None), after);
        match expiry {
            Expiry::After(ttl) => after(nanos(ttl)),
            Expiry::Never => (None, None),
            Expiry::Keep => old.unwrap_or(default),
            Expiry::Default => default,
            other => panic!("the model does not know {other:?}"),
        }
    }

    /// Makes room for `needed` new keys: expired keys do not count, and while the live
    /// keys would not fit, the least recently used live key goes.
    fn make_room(&mut self, needed: usize) {
        let Some(capacity) = self.capacity else {
            return;
        };
        while self.live_count() + needed > capacity {
            let victim = self
                .entries
                .iter()
                .filter(|(_, e)| self.alive(e))
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
                .expect("a full store has a live key to evict");
            self.entries.remove(&victim);
            self.evictions += 1;
        }
    }

    /// Creates a key that is not live (an expired entry in the way is replaced).
    fn create(
        &mut self,
        key: &str,
        value: String,
        (deadline, ttl_len): (Option<u64>, Option<u64>),
    ) {
        let used = self.stamp();
        let entry = Entry {
            value,
            deadline,
            ttl_len,
            used,
        };
        if let Some(old) = self.entries.insert(key.to_owned(), entry) {
            assert!(!self.alive(&old), "model bug: created over a live key");
            self.expired_removed += 1;
        }
    }

    /// Replaces the value (and TTL, per `expiry`) of a live key.
    fn overwrite(&mut self, key: &str, value: String, expiry: Expiry) {
        let old = self.live(key).expect("overwrite of a live key");
        let (deadline, ttl_len) = self.resolve(expiry, Some((old.deadline, old.ttl_len)));
        let used = self.stamp();
        let entry = self.entries.get_mut(key).expect("live");
        entry.value = value;
        entry.deadline = deadline;
        entry.ttl_len = ttl_len;
        entry.used = used;
    }

    fn set(
        &mut self,
        key: &str,
        value: &str,
        expiry: Expiry,
        condition: Condition,
    ) -> Res<SetOutcome> {
        self.writable()?;
        check_expiry(expiry)?;
        if self.live(key).is_some() {
            if condition == Condition::IfAbsent {
                return Ok(SetOutcome::NotSet);
            }
            self.overwrite(key, value.to_owned(), expiry);
            Ok(SetOutcome::Replaced)
        } else {
            if condition == Condition::IfPresent {
                return Ok(SetOutcome::NotSet);
            }
            self.make_room(1);
            let ttl = self.resolve(expiry, None);
            self.create(key, value.to_owned(), ttl);
            Ok(SetOutcome::Created)
        }
    }

    fn incr(&mut self, key: &str, by: i64) -> Res<i64> {
        self.writable()?;
        if let Some(entry) = self.live(key) {
            let current =
                integer(&entry.value).ok_or_else(|| Fail::NotAnInteger(key.to_owned()))?;
            let n = current
                .checked_add(by)
                .ok_or_else(|| Fail::Overflow(key.to_owned(), by))?;
            let used = self.stamp();
            let entry = self.entries.get_mut(key).expect("live");
            entry.value = n.to_string();
            entry.used = used;
            Ok(n)
        } else {
            self.make_room(1);
            let ttl = self.resolve(Expiry::Default, None);
            self.create(key, by.to_string(), ttl);
            Ok(by)
        }
    }

    fn set_many(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<usize> {
        self.writable()?;
        check_expiry(expiry)?;
        for &(k, v) in pairs {
            self.set(k, v, expiry, Condition::Always)?;
        }
        Ok(pairs.len())
    }

    fn insert_all_absent(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<bool> {
        self.writable()?;
        check_expiry(expiry)?;
        let items = dedup(pairs);
        if let Some(capacity) = self.capacity
            && items.len() > capacity
        {
            return Err(Fail::BatchTooLarge {
                requested: items.len(),
                capacity,
            });
        }
        if items.iter().any(|(k, _)| self.live(k).is_some()) {
            return Ok(false);
        }
        self.make_room(items.len());
        for (k, v) in items {
            let ttl = self.resolve(expiry, None);
            self.create(&k, v, ttl);
        }
        Ok(true)
    }

    fn update_all_present(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<bool> {
        self.writable()?;
        check_expiry(expiry)?;
        let items = dedup(pairs);
        if !items.iter().all(|(k, _)| self.live(k).is_some()) {
            return Ok(false);
        }
        for (k, v) in items {
            self.overwrite(&k, v, expiry);
        }
        Ok(true)
    }

    fn delete(&mut self, key: &str) -> Res<bool> {
        self.writable()?;
        match self.entries.remove(key) {
            Some(entry) if self.alive(&entry) => Ok(true),
            Some(_) => {
                self.expired_removed += 1;
                Ok(false)
            }
            None => Ok(false),
        }
    }

    fn expire(&mut self, key: &str, ttl: Duration) -> Res<bool> {
        self.writable()?;
        check_ttl(ttl)?;
        if self.live(key).is_none() {
            return Ok(false);
        }
        let (now, len, used) = (self.now, nanos(ttl), self.stamp());
        let entry = self.entries.get_mut(key).expect("live");
        entry.deadline = Some(now + len);
        entry.ttl_len = Some(len);
        entry.used = used; // a write is a use
        Ok(true)
    }

    fn persist(&mut self, key: &str) -> Res<bool> {
        self.writable()?;
        if self.live(key).is_none() {
            return Ok(false);
        }
        let used = self.stamp();
        let entry = self.entries.get_mut(key).expect("live");
        entry.deadline = None;
        entry.ttl_len = None;
        entry.used = used; // a write is a use
        Ok(true)
    }

    fn clear(&mut self) -> Res<usize> {
        self.writable()?;
        let live = self.live_count();
        self.expired_cleared += self.dead_count();
        self.entries.clear();
        Ok(live)
    }

    fn apply(&mut self, op: &Op) -> Out {
        match op {
            Op::Get(k) => Out::Value(self.counted_read(k).map(|e| e.value)),
            Op::GetWithTtl(k) => Out::ValueTtl(self.counted_read(k).map(|e| {
                let ttl = self.remaining(&e);
                (e.value, ttl)
            })),
            Op::GetMany(keys) => Out::Values(
                keys.iter()
                    .map(|k| self.counted_read(k).map(|e| e.value))
                    .collect(),
            ),
            Op::Contains(k) => Out::Flag(self.live(k).is_some()),
            Op::Ttl(k) => Out::Ttl(self.live(k).map(|e| self.remaining(e))),
            Op::Set(k, v, e, c) => Out::Set(self.set(k, v, *e, *c)),
            Op::SetMany(pairs, e) => Out::Count(self.set_many(pairs, *e)),
            Op::InsertAllAbsent(pairs, e) => Out::Batch(self.insert_all_absent(pairs, *e)),
            Op::UpdateAllPresent(pairs, e) => Out::Batch(self.update_all_present(pairs, *e)),
            Op::Delete(k) => Out::Batch(self.delete(k)),
            Op::Expire(k, ttl) => Out::Batch(self.expire(k, *ttl)),
            Op::Persist(k) => Out::Batch(self.persist(k)),
            Op::Incr(k, by) => Out::Incr(self.incr(k, *by)),
            Op::Len => Out::Len(self.live_count()),
            Op::IsEmpty => Out::Flag(self.live_count() == 0),
            Op::Clear => Out::Count(self.clear()),
            Op::ScanBadCursor => Out::Scan(Err(Fail::InvalidCursor)),
            Op::Scan(..) | Op::Purge(_) | Op::Advance(_) => {
                unreachable!("handled by the runner")
            }
        }
    }

    /// Checks what a complete scan returned, then records the reads it made, in the
    /// order the store returned the keys (that order is observable, so LRU may use it).
    fn scan(&mut self, pat: Pat, returned: &[(String, String)]) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (k, _) in returned {
            if !seen.insert(k.as_str()) {
                return Err(format!("scan returned {k:?} twice: {returned:?}"));
            }
        }
        let got: BTreeMap<&str, &str> = returned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let want: BTreeMap<&str, &str> = self
            .entries
            .iter()
            .filter(|(k, e)| self.alive(e) && pat.matches(k))
            .map(|(k, e)| (k.as_str(), e.value.as_str()))
            .collect();
        if got != want {
            return Err(format!(
                "scan {:?} returned {got:?}, the model expects {want:?}",
                pat.text()
            ));
        }
        for (k, _) in returned {
            self.use_for_read(k);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
