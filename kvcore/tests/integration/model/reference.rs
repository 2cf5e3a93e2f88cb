//! The reference model: a deliberately naive `BTreeMap` of entries, sharing no code
//! with the store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kvcore::{Computed, Condition, Expiry, RemovalCause, SetOutcome};

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: String,
    /// Absolute deadline in nanoseconds on the model clock; `None`: no TTL.
    pub(super) deadline: Option<u64>,
    /// The TTL length last written, where a sliding read restarts the deadline.
    pub(super) ttl_len: Option<u64>,
    /// Last use, from `Model::tick`: the smallest live stamp is the LRU victim.
    pub(super) used: u64,
}

#[derive(Debug)]
pub(super) struct Model {
    /// Live and expired entries; expired ones stay until something replaces or removes
    /// them, only so that expirations can be counted.
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) now: u64,
    pub(super) read_only: bool,
    pub(super) default_ttl: Option<u64>,
    pub(super) sliding: bool,
    pub(super) capacity: Option<usize>,
    pub(super) tick: u64,
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
    /// Expired entries replaced or deleted: the store has counted each exactly once
    /// (whenever it removed it).
    pub(super) expired_removed: u64,
    /// Expired entries dropped by `clear`: the store counted those it had purged before.
    pub(super) expired_cleared: u64,
    /// At most this much weight in live entries, each weighing `weight(key, value)`.
    pub(super) max_weight: Option<u64>,
    /// Removals the listener must have been told of, except expirations: (key, value,
    /// cause), in order.
    pub(super) log: Vec<(String, String, RemovalCause)>,
    /// Expired entries the model dropped (replaced, deleted, cleared): the store has
    /// reported each as expired by then, exactly once.
    pub(super) expired_gone: BTreeMap<(String, String), u64>,
}

/// An entry's weight in the stores with a weight bound: the store's weigher is the
/// same function.
pub(super) fn weight(key: &str, value: &str) -> u64 {
    (key.len() + value.len()) as u64
}

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).expect("test durations fit in u64 nanoseconds")
}

/// Canonical decimal integer text: `-?[0-9]+` within the range of `i64`.
pub(super) fn integer(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let canonical = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    if canonical { text.parse().ok() } else { None }
}

pub(super) fn check_ttl(ttl: Duration) -> Res<()> {
    if ttl.is_zero() || ttl > TEN_YEARS {
        Err(Fail::InvalidTtl(ttl))
    } else {
        Ok(())
    }
}

pub(super) fn check_expiry(expiry: Expiry) -> Res<()> {
    match expiry {
        Expiry::After(ttl) => check_ttl(ttl),
        _ => Ok(()),
    }
}

/// A batch with duplicates collapsed: first-occurrence order, last value.
pub(super) fn dedup(pairs: &Pairs) -> Vec<(String, String)> {
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
    pub(super) fn new(now: u64) -> Self {
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
            max_weight: None,
            log: Vec::new(),
            expired_gone: BTreeMap::new(),
        }
    }

    pub(super) fn live_weight(&self) -> u64 {
        self.entries
            .iter()
            .filter(|(_, e)| self.alive(e))
            .map(|(k, e)| weight(k, &e.value))
            .sum()
    }

    pub(super) fn dead_weight(&self) -> u64 {
        self.entries
            .iter()
            .filter(|(_, e)| !self.alive(e))
            .map(|(k, e)| weight(k, &e.value))
            .sum()
    }

    /// The expired entries the model still holds, which the store may or may not
    /// have reported yet.
    pub(super) fn dead(&self) -> BTreeMap<(String, String), u64> {
        let mut dead = BTreeMap::new();
        for (k, e) in &self.entries {
            if !self.alive(e) {
                *dead.entry((k.clone(), e.value.clone())).or_default() += 1;
            }
        }
        dead
    }

    /// Drops an entry that is dead: reported as expired.
    fn gone_dead(&mut self, key: &str, entry: Entry) {
        self.expired_removed += 1;
        *self
            .expired_gone
            .entry((key.to_owned(), entry.value))
            .or_default() += 1;
    }

    /// Refuses a value heavier than the whole bound.
    fn check_weight(&self, key: &str, value: &str) -> Res<()> {
        match self.max_weight {
            Some(max) if weight(key, value) > max => Err(Fail::TooHeavy {
                key: key.to_owned(),
                weight: weight(key, value),
                max,
            }),
            _ => Ok(()),
        }
    }

    fn bounded(&self) -> bool {
        self.capacity.is_some() || self.max_weight.is_some()
    }

    pub(super) fn alive(&self, entry: &Entry) -> bool {
        entry.deadline.is_none_or(|d| d > self.now)
    }

    pub(super) fn live(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| self.alive(e))
    }

    pub(super) fn live_count(&self) -> usize {
        self.entries.values().filter(|e| self.alive(e)).count()
    }

    pub(super) fn dead_count(&self) -> u64 {
        self.entries.values().filter(|e| !self.alive(e)).count() as u64
    }

    pub(super) fn remaining(&self, entry: &Entry) -> Option<Duration> {
        entry.deadline.map(|d| Duration::from_nanos(d - self.now))
    }

    pub(super) fn stamp(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub(super) fn writable(&self) -> Res<()> {
        if self.read_only {
            Err(Fail::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// A read that counts as use: restarts a sliding TTL and refreshes LRU order.
    pub(super) fn use_for_read(&mut self, key: &str) -> Option<Entry> {
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
    pub(super) fn counted_read(&mut self, key: &str) -> Option<Entry> {
        let found = self.use_for_read(key);
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// The (deadline, ttl length) a write gives a key.
    pub(super) fn resolve(
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

    /// Makes room for `keys` new keys and `grow` more weight: expired keys do not
    /// count, and while the live keys would not fit, the least recently used live key
    /// not in `keep` goes.
    pub(super) fn make_room(&mut self, keys: usize, grow: u64, keep: &[&str]) {
        loop {
            let over = self.capacity.is_some_and(|c| self.live_count() + keys > c)
                || self
                    .max_weight
                    .is_some_and(|m| self.live_weight() + grow > m);
            if !over {
                return;
            }
            let victim = self
                .entries
                .iter()
                .filter(|(k, e)| self.alive(e) && !keep.contains(&k.as_str()))
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
                .expect("a full store has a live key to evict");
            let entry = self.entries.remove(&victim).expect("the victim is there");
            self.evictions += 1;
            self.log.push((victim, entry.value, RemovalCause::Evicted));
        }
    }

    /// Creates a key that is not live (an expired entry in the way is replaced).
    pub(super) fn create(
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
            self.gone_dead(key, old);
        }
    }

    /// Replaces the value (and TTL, per `expiry`) of a live key.
    pub(super) fn overwrite(&mut self, key: &str, value: String, expiry: Expiry) {
        let old = self.live(key).expect("overwrite of a live key");
        let (deadline, ttl_len) = self.resolve(expiry, Some((old.deadline, old.ttl_len)));
        let used = self.stamp();
        let entry = self.entries.get_mut(key).expect("live");
        let old = std::mem::replace(&mut entry.value, value);
        entry.deadline = deadline;
        entry.ttl_len = ttl_len;
        entry.used = used;
        self.log.push((key.to_owned(), old, RemovalCause::Replaced));
    }

    /// The weight a live key's new value adds.
    fn growth(&self, key: &str, value: &str) -> u64 {
        let old = self.live(key).map_or(0, |e| weight(key, &e.value));
        weight(key, value).saturating_sub(old)
    }

    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        expiry: Expiry,
        condition: Condition,
    ) -> Res<SetOutcome> {
        self.writable()?;
        check_expiry(expiry)?;
        self.check_weight(key, value)?;
        if self.live(key).is_some() {
            if condition == Condition::IfAbsent {
                return Ok(SetOutcome::NotSet);
            }
            self.make_room(0, self.growth(key, value), &[key]);
            self.overwrite(key, value.to_owned(), expiry);
            Ok(SetOutcome::Replaced)
        } else {
            if condition == Condition::IfPresent {
                return Ok(SetOutcome::NotSet);
            }
            self.make_room(1, weight(key, value), &[]);
            let ttl = self.resolve(expiry, None);
            self.create(key, value.to_owned(), ttl);
            Ok(SetOutcome::Created)
        }
    }

    pub(super) fn incr(&mut self, key: &str, by: i64) -> Res<i64> {
        self.writable()?;
        if let Some(entry) = self.live(key) {
            let current =
                integer(&entry.value).ok_or_else(|| Fail::NotAnInteger(key.to_owned()))?;
            let n = current
                .checked_add(by)
                .ok_or_else(|| Fail::Overflow(key.to_owned(), by))?;
            let text = n.to_string();
            self.check_weight(key, &text)?;
            self.make_room(0, self.growth(key, &text), &[key]);
            let used = self.stamp();
            let entry = self.entries.get_mut(key).expect("live");
            let old = std::mem::replace(&mut entry.value, text);
            entry.used = used;
            self.log.push((key.to_owned(), old, RemovalCause::Replaced));
            Ok(n)
        } else {
            let text = by.to_string();
            self.check_weight(key, &text)?;
            self.make_room(1, weight(key, &text), &[]);
            let ttl = self.resolve(Expiry::Default, None);
            self.create(key, text, ttl);
            Ok(by)
        }
    }

    pub(super) fn set_many(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<usize> {
        self.writable()?;
        check_expiry(expiry)?;
        // A bounded store writes the pairs one by one; an unbounded one collapses
        // duplicates first, so an intermediate value is never stored (nor reported).
        let writes: Vec<(String, String)> = if self.bounded() {
            owned(pairs)
        } else {
            dedup(pairs)
        };
        for (k, v) in &writes {
            self.set(k, v, expiry, Condition::Always)?;
        }
        Ok(pairs.len())
    }

    fn batch_weight(&self, items: &[(String, String)]) -> Res<u64> {
        let total = items.iter().map(|(k, v)| weight(k, v)).sum();
        match self.max_weight {
            Some(max) if total > max => Err(Fail::BatchTooHeavy { weight: total, max }),
            _ => Ok(total),
        }
    }

    pub(super) fn insert_all_absent(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<bool> {
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
        let total = self.batch_weight(&items)?;
        if items.iter().any(|(k, _)| self.live(k).is_some()) {
            return Ok(false);
        }
        self.make_room(items.len(), total, &[]);
        for (k, v) in items {
            let ttl = self.resolve(expiry, None);
            self.create(&k, v, ttl);
        }
        Ok(true)
    }

    pub(super) fn update_all_present(&mut self, pairs: &Pairs, expiry: Expiry) -> Res<bool> {
        self.writable()?;
        check_expiry(expiry)?;
        let items = dedup(pairs);
        let total = self.batch_weight(&items)?;
        if !items.iter().all(|(k, _)| self.live(k).is_some()) {
            return Ok(false);
        }
        let old: u64 = items
            .iter()
            .map(|(k, _)| weight(k, &self.live(k).expect("live").value))
            .sum();
        let keep: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
        self.make_room(0, total.saturating_sub(old), &keep);
        for (k, v) in items {
            self.overwrite(&k, v, expiry);
        }
        Ok(true)
    }

    pub(super) fn delete(&mut self, key: &str) -> Res<bool> {
        self.writable()?;
        match self.entries.remove(key) {
            Some(entry) if self.alive(&entry) => {
                self.log
                    .push((key.to_owned(), entry.value, RemovalCause::Deleted));
                Ok(true)
            }
            Some(entry) => {
                self.gone_dead(key, entry);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// `compute` with a function that answers `act`.
    pub(super) fn compute(&mut self, key: &str, act: &Act) -> Res<Computed<String>> {
        self.writable()?;
        let current = self.live(key).map(|e| e.value.clone());
        let (value, expiry) = match (act, &current) {
            (Act::Keep, _) | (Act::Delete, None) => return Ok(Computed::Unchanged(current)),
            (Act::Delete, Some(_)) => {
                self.delete(key)?;
                return Ok(Computed::Deleted);
            }
            (Act::Append(suffix), _) => (
                format!("{}{suffix}", current.as_deref().unwrap_or("")),
                Expiry::Keep,
            ),
            (Act::SetWith(value, expiry), _) => ((*value).to_owned(), *expiry),
        };
        Ok(match self.set(key, &value, expiry, Condition::Always)? {
            SetOutcome::Created => Computed::Created(value),
            _ => Computed::Replaced(value),
        })
    }

    /// `get_with_options(key, expiry, || value)`: a counted read, else a load stored
    /// where the key is absent.
    pub(super) fn get_with(&mut self, key: &str, value: &str, expiry: Expiry) -> Res<String> {
        if let Some(entry) = self.counted_read(key) {
            return Ok(entry.value);
        }
        self.set(key, value, expiry, Condition::IfAbsent)?;
        Ok(value.to_owned())
    }

    pub(super) fn expire(&mut self, key: &str, ttl: Duration) -> Res<bool> {
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

    pub(super) fn persist(&mut self, key: &str) -> Res<bool> {
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

    pub(super) fn clear(&mut self) -> Res<usize> {
        self.writable()?;
        let live = self.live_count();
        self.expired_cleared += self.dead_count();
        for (k, e) in std::mem::take(&mut self.entries) {
            if self.alive(&e) {
                self.log.push((k, e.value, RemovalCause::Cleared));
            } else {
                // Reported as expired; not counted as an expiration (see `Stats`).
                *self.expired_gone.entry((k, e.value)).or_default() += 1;
            }
        }
        Ok(live)
    }

    pub(super) fn apply(&mut self, op: &Op) -> Out {
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
            Op::Compute(k, act) => Out::Computed(self.compute(k, act)),
            Op::GetWith(k, v, e) => Out::Loaded(self.get_with(k, v, *e)),
            Op::ScanBadCursor => Out::Scan(Err(Fail::InvalidCursor)),
            Op::Scan(..) | Op::Purge(_) | Op::Advance(_) => {
                unreachable!("handled by the runner")
            }
        }
    }

    /// Checks what a complete scan returned, then records the reads it made, in the
    /// order the store returned the keys (that order is observable, so LRU may use it).
    pub(super) fn scan(&mut self, pat: Pat, returned: &[(String, String)]) -> Result<(), String> {
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
