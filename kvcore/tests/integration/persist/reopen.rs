//! Model-based: reopen and compact at random points.

use std::fmt::Debug;
use std::time::Duration;

use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{Expiry, ManualClock, SetOptions, Store, StoreBuilder};
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

// ---------------------------------------------------------------------------------
// 11. Model-based: reopen and compact at random points.

#[derive(Debug, Clone)]
enum Step {
    Set(&'static str, &'static str, Option<u64>),
    SetIfAbsent(&'static str, &'static str),
    SetKeepTtl(&'static str, &'static str),
    Delete(&'static str),
    Expire(&'static str, u64),
    Persist(&'static str),
    Incr(&'static str, i64),
    Clear,
    SetMany(Vec<(&'static str, &'static str)>, Option<u64>),
    InsertAllAbsent(Vec<(&'static str, &'static str)>),
    UpdateAllPresent(Vec<(&'static str, &'static str)>),
    Advance(u64),
    Purge,
    Reopen,
    Compact,
}

const KEYS: &[&str] = &["a", "b", "c", "d", "ключ"];
const VALUES: &[&str] = &["x", "y", "0", "41", "значение"];

fn step() -> impl Strategy<Value = Step> {
    let key = || select(KEYS);
    let value = || select(VALUES);
    let ttl = || prop_oneof![Just(None), (1..30u64).prop_map(Some)];
    let pairs = || proptest::collection::vec((select(KEYS), select(VALUES)), 1..4);
    prop_oneof![
        4 => (key(), value(), ttl()).prop_map(|(k, v, t)| Step::Set(k, v, t)),
        1 => (key(), value()).prop_map(|(k, v)| Step::SetIfAbsent(k, v)),
        1 => (key(), value()).prop_map(|(k, v)| Step::SetKeepTtl(k, v)),
        2 => key().prop_map(Step::Delete),
        1 => (key(), 1..30u64).prop_map(|(k, t)| Step::Expire(k, t)),
        1 => key().prop_map(Step::Persist),
        2 => (key(), -5..5i64).prop_map(|(k, by)| Step::Incr(k, by)),
        1 => Just(Step::Clear),
        1 => (pairs(), ttl()).prop_map(|(p, t)| Step::SetMany(p, t)),
        1 => pairs().prop_map(Step::InsertAllAbsent),
        1 => pairs().prop_map(Step::UpdateAllPresent),
        2 => (1..15u64).prop_map(Step::Advance),
        1 => Just(Step::Purge),
        2 => Just(Step::Reopen),
        1 => Just(Step::Compact),
    ]
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// Runs a write on a store; returns its result as text so two stores can be compared.
fn run_step(store: &dyn Store<String>, step: &Step) -> String {
    let expiry =
        |t: &Option<u64>| t.map_or(Expiry::Never, |t| Expiry::After(Duration::from_secs(t)));
    match step {
        Step::Set(k, v, t) => {
            let opts = t.map_or(SetOptions::new().no_ttl(), |t| {
                SetOptions::new().ttl(Duration::from_secs(t))
            });
            format!("{:?}", store.set(k, s(v), opts).map_err(|e| e.to_string()))
        }
        Step::SetIfAbsent(k, v) => format!(
            "{:?}",
            store.set(k, s(v), SetOptions::new().if_absent()).ok()
        ),
        Step::SetKeepTtl(k, v) => format!(
            "{:?}",
            store.set(k, s(v), SetOptions::new().keep_ttl()).ok()
        ),
        Step::Delete(k) => format!("{:?}", store.delete(k).ok()),
        Step::Expire(k, t) => format!("{:?}", store.expire(k, Duration::from_secs(*t)).ok()),
        Step::Persist(k) => format!("{:?}", store.clear_ttl(k).ok()),
        Step::Incr(k, by) => format!("{:?}", store.incr(k, *by).map_err(|e| e.to_string())),
        Step::Clear => format!("{:?}", store.clear().ok()),
        Step::SetMany(p, t) => format!("{:?}", store.set_many(owned(p), expiry(t)).ok()),
        Step::InsertAllAbsent(p) => format!(
            "{:?}",
            store.insert_all_absent(owned(p), Expiry::Default).ok()
        ),
        Step::UpdateAllPresent(p) => format!(
            "{:?}",
            store.update_all_present(owned(p), Expiry::Keep).ok()
        ),
        Step::Purge => {
            store.purge_expired(100);
            String::new()
        }
        Step::Advance(_) | Step::Reopen | Step::Compact => String::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A persistent store and an in-memory twin on the same clock agree after every
    /// step, however often the persistent one is reopened or compacted in between.
    #[test]
    fn reopening_and_compacting_anywhere_changes_nothing(
        steps in proptest::collection::vec(step(), 1..40),
        policy in select(&[Fsync::Always, Fsync::EverySec, Fsync::No][..]),
    ) {
        let clock = ManualClock::new();
        let dir = tempfile::tempdir().unwrap();
        let opts = PersistOptions::default().fsync(policy);
        let twin = StoreBuilder::new().clock(clock.clone()).build::<String>().unwrap();
        let mut store = open::<String>(dir.path(), &clock, opts);
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Advance(secs) => clock.advance(Duration::from_secs(*secs)),
                Step::Reopen => {
                    drop(store); // the lock is released before the directory is opened again
                    store = open::<String>(dir.path(), &clock, opts);
                    prop_assert_eq!(&store.recovery().torn_tail, &None);
                }
                Step::Compact => store.compact().unwrap(),
                _ => {}
            }
            let st = &store;
            prop_assert_eq!(run_step(st, step), run_step(&twin, step), "step {} {:?}", i, step);
            prop_assert_eq!(dump_ttl(st), dump_ttl(&twin), "after step {} {:?}", i, step);
        }
        drop(store);
        let st = open::<String>(dir.path(), &clock, opts);
        prop_assert_eq!(dump_ttl(&st), dump_ttl(&twin), "after the final reopen");
    }
}
