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

use std::time::Duration;

use kvcore::{
    Compute, Computed, Condition, Error, Expiry, SetOptions, SetOutcome, Store, StoreExt,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

mod cases;
mod reference;
mod runner;

use reference::{Entry, Model, nanos};

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

/// What a `compute` function answers.
#[derive(Debug, Clone)]
enum Act {
    /// `Compute::Set` of the old value (or nothing) followed by this text.
    Append(&'static str),
    SetWith(&'static str, Expiry),
    Delete,
    Keep,
}

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
    Compute(&'static str, Act),
    /// `get_with_options` loading this value, stored with this expiry.
    GetWith(&'static str, &'static str, Expiry),
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

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => value().prop_map(Act::Append),
        2 => (value(), expiry()).prop_map(|(v, e)| Act::SetWith(v, e)),
        1 => Just(Act::Delete),
        1 => Just(Act::Keep),
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
        3 => (key(), act()).prop_map(|(k, a)| Op::Compute(k, a)),
        3 => (key(), value(), expiry()).prop_map(|(k, v, e)| Op::GetWith(k, v, e)),
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
    TooHeavy { key: String, weight: u64, max: u64 },
    BatchTooHeavy { weight: u64, max: u64 },
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
        Error::TooHeavy {
            key,
            weight,
            max_weight,
        } => Fail::TooHeavy {
            key,
            weight,
            max: max_weight,
        },
        Error::BatchTooHeavy { weight, max_weight } => Fail::BatchTooHeavy {
            weight,
            max: max_weight,
        },
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
    Computed(Res<Computed<String>>),
    Loaded(Res<String>),
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
        Op::Compute(k, act) => Out::Computed(
            store
                .compute(k, &mut |old| match act {
                    Act::Append(suffix) => {
                        Compute::Set(format!("{}{suffix}", old.map_or("", String::as_str)))
                    }
                    Act::SetWith(v, e) => Compute::SetWith((*v).to_owned(), *e),
                    Act::Delete => Compute::Delete,
                    Act::Keep => Compute::Keep,
                })
                .map_err(fail),
        ),
        Op::GetWith(k, v, e) => Out::Loaded(
            store
                .get_with_options(k, set_options(*e, Condition::Always), || (*v).to_owned())
                .map_err(fail),
        ),
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
