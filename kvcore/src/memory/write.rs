//! Writes of one key (set, incr, and recovery's restore), what they share with the
//! multi-key writes (overwriting and inserting a slot), and `clear`.

use super::*;

/// A single-key write.
pub(super) enum Op<V> {
    Set(V, SetOptions),
    Incr(i64),
    /// Recovery: the key's state as a log recorded it.
    Restore(V, u64, u64),
    /// A compute's change, applied only if nobody took the shard's write lock since
    /// its function looked (`seen` is what `changes` was then) and the key is live
    /// exactly when it was then (`live`).
    Cas {
        seen: u64,
        live: bool,
        change: Change<V>,
    },
}

/// What a compute changes.
pub(super) enum Change<V> {
    Set(V, Expiry),
    Delete,
}

/// What a write did: a set's outcome (a compute's change too: `NotSet` when it
/// deleted an absent key), an incr's number, a compute's delete, or, for a compute
/// whose shard changed since its function looked, nothing.
pub(super) enum Done {
    Set(SetOutcome),
    Incr(i64),
    Deleted,
    Conflict,
}

impl<V: Value> Shared<V> {
    /// Replaces the value and TTL of a live slot, handing the old value to the
    /// listener under `key`. The caller has journaled the change and settled the
    /// weight.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn overwrite<'a>(
        &self,
        heap: &mut DeadlineHeap,
        hash: u64,
        slot: &mut Slot<V>,
        value: V,
        (d, ttl): (u64, u64),
        key: NoticeKey<'a>,
        notices: &mut Notices<'a, V>,
    ) {
        let old = std::mem::replace(&mut slot.value, value);
        notices.replaced(key, old);
        slot.expires_at.store(d, Relaxed);
        slot.ttl = ttl;
        self.file_deadline(heap, hash, slot);
        self.touch_lru(slot);
    }

    /// Creates a key in its write-locked shard, as a single-key write does once it has
    /// made room and journaled the change: inserts it, purges a few of the shard's
    /// expired keys, then lets go of the shard and tidies the LRU index.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn create<'a>(
        &self,
        mut guard: RwLockWriteGuard<'_, Table<V>>,
        mut lru: Option<&mut LruIndex>,
        hash: u64,
        key: &'a str,
        value: V,
        ttl: (u64, u64),
        time: &WriteTime<'_>,
        notices: &mut Notices<'a, V>,
    ) {
        let table = &mut *guard;
        self.insert(table, lru.as_deref_mut(), hash, key, value, ttl, notices);
        if !table.expiry.is_empty() {
            self.purge_table(table, time.earliest(), PURGE_ON_WRITE, notices);
        }
        if let Some(lru) = lru {
            drop(guard);
            self.maybe_compact_lru(lru);
        }
    }

    /// Inserts a key known to have no live slot, removing an expired one in the way.
    /// The caller has journaled the change and reserved the weight.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert(
        &self,
        table: &mut Table<V>,
        lru: Option<&mut LruIndex>,
        hash: u64,
        key: &str,
        value: V,
        (d, ttl): (u64, u64),
        notices: &mut Notices<'_, V>,
    ) {
        if let Ok(old) = table.slots.find_entry(hash, |s| s.key.is(key)) {
            let (old, _) = old.remove();
            self.removed(old, RemovalCause::Expired, notices);
        }
        let stamp = if self.bounded {
            self.tick.fetch_add(1, Relaxed)
        } else {
            0
        };
        let mut slot = Box::new(Slot {
            key: Key::new(key),
            value,
            expires_at: AtomicU64::new(d),
            ttl,
            filed_deadline: 0,
            used: AtomicU64::new(stamp),
        });
        self.file_deadline(&mut table.expiry, hash, &mut slot);
        if let Some(lru) = lru {
            lru.push(stamp, SlotRef::new(hash, &slot));
        }
        table.insert(hash, slot, self.rehasher());
        if self.bounded {
            self.len.fetch_add(1, Relaxed);
        }
    }

    fn too_heavy(&self, key: &str, weight: u64) -> Error {
        Error::TooHeavy {
            key: key.to_owned(),
            weight,
            max_weight: self.max_weight,
        }
    }

    /// `set` in a store without a weigher: [`Shared::write`] for a set, without what
    /// only weights and computes need. Every write of a cache's hot path comes here,
    /// so it pays for nothing it does not use; it must behave exactly as `write` does
    /// for `Op::Set` (the model test checks both).
    pub(super) fn set_unweighed<'a>(
        &self,
        key: &'a str,
        value: V,
        opts: SetOptions,
        notices: &mut Notices<'a, V>,
    ) -> Result<SetOutcome> {
        check_expiry(opts.expiry)?;
        self.log_ready()?;
        let hash = self.hash(key);
        let shard = self.shard(hash);
        // Without a weigher, a bound is a capacity: creating a key needs the licence.
        let mut licence: Option<MutexGuard<'_, LruIndex>> = None;
        loop {
            let time = WriteTime::new(&self.clock);
            let mut guard = shard.write();
            let table = &mut *guard;
            if let Some(slot) = table.slots.find_mut(hash, |s| s.key.is(key))
                && time.is_live(slot.deadline())
            {
                if opts.condition == Condition::IfAbsent {
                    return Ok(SetOutcome::NotSet);
                }
                let old = Some((slot.deadline(), slot.ttl));
                let ttl = self.resolve(opts.expiry, old, |ttl| time.deadline(ttl));
                self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
                let key = NoticeKey::Borrowed(key);
                self.overwrite(&mut table.expiry, hash, slot, value, ttl, key, notices);
                return Ok(SetOutcome::Replaced);
            }
            if opts.condition == Condition::IfPresent {
                return Ok(SetOutcome::NotSet);
            }
            if self.bounded {
                let Some(lru) = licence.as_deref_mut() else {
                    drop(guard);
                    licence = Some(self.lru.lock());
                    continue;
                };
                // Eviction locks other shards, so ours is released while room is
                // made. Holding the licence, nobody else can create this key meanwhile.
                drop(guard);
                self.make_room(lru, 1, 0, time.precise(), &[], notices)?;
                guard = shard.write();
            }
            let ttl = self.resolve(opts.expiry, None, |ttl| time.deadline(ttl));
            self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
            let lru = licence.as_deref_mut();
            self.create(guard, lru, hash, key, value, ttl, &time, notices);
            return Ok(SetOutcome::Created);
        }
    }

    /// One single-key write: a set, an incr, a restore or a compute's change.
    pub(super) fn write<'a>(
        &self,
        key: &'a str,
        op: Op<V>,
        notices: &mut Notices<'a, V>,
    ) -> Result<Done> {
        match &op {
            Op::Set(_, opts) => check_expiry(opts.expiry)?,
            Op::Cas {
                change: Change::Set(_, expiry),
                ..
            } => check_expiry(*expiry)?,
            _ => {}
        }
        self.log_ready()?;
        // Recovery replays a log whose states never exceeded the bounds but whose
        // order may briefly do so; it inserts freely and trims at the end.
        let restore = matches!(op, Op::Restore(..));
        // The new value's weight, weighed before any lock is taken (an incr's new
        // value is only known under the lock).
        let weight = match &op {
            Op::Set(v, _)
            | Op::Restore(v, ..)
            | Op::Cas {
                change: Change::Set(v, _),
                ..
            } => self.weigh(key, v),
            Op::Incr(_)
            | Op::Cas {
                change: Change::Delete,
                ..
            } => 0,
        };
        if weight > self.max_weight && !restore {
            return Err(self.too_heavy(key, weight));
        }
        let hash = self.hash(key);
        let shard = self.shard(hash);
        // Creating a key in a bounded store, or growing one when the bound leaves no
        // room, needs the LRU mutex (taken before the shard lock, per the lock order),
        // so such a write goes round the loop once more.
        let mut licence: Option<MutexGuard<'_, LruIndex>> = None;
        // Write locks this write took on the shard: a compute's own are not changes
        // by others.
        let mut locks: u64 = 0;
        loop {
            // Read the clock only if the write needs it: replacing a key that has no
            // deadline with a value that gets none does not.
            let time = WriteTime::new(&self.clock);
            let mut guard = shard.write();
            locks += 1;
            if let Op::Cas { seen, .. } = op
                && guard.changes != seen.wrapping_add(locks)
            {
                return Ok(Done::Conflict);
            }
            let table = &mut *guard;
            table.prefetch(hash);
            let found = table
                .slots
                .find_mut(hash, |s| s.key.is(key))
                .filter(|slot| time.is_live(slot.deadline()));
            if let Op::Cas { live, .. } = op
                && live != found.is_some()
            {
                return Ok(Done::Conflict);
            }
            let Some(slot) = found else {
                // The key is absent (or only expired).
                match &op {
                    Op::Set(_, opts) if opts.condition == Condition::IfPresent => {
                        return Ok(Done::Set(SetOutcome::NotSet));
                    }
                    Op::Cas {
                        change: Change::Delete,
                        ..
                    } => return Ok(Done::Set(SetOutcome::NotSet)),
                    Op::Incr(by) if V::from_i64(*by).is_none() => {
                        return Err(Error::IncrUnsupported);
                    }
                    _ => {}
                }
                let weight = match &op {
                    Op::Incr(by) if self.weigher.is_some() => {
                        let weight = V::from_i64(*by).map_or(0, |v| self.weigh(key, &v));
                        if weight > self.max_weight {
                            return Err(self.too_heavy(key, weight));
                        }
                        weight
                    }
                    _ => weight,
                };
                if self.bounded && !restore {
                    let Some(lru) = licence.as_deref_mut() else {
                        // Take the licence, then look at the key again: another writer
                        // may have created it meanwhile, and then no room is needed.
                        drop(guard);
                        licence = Some(self.lru.lock());
                        continue;
                    };
                    // Holding the licence, nobody else creates keys, this one included.
                    let fits = self.capacity.is_none_or(|c| self.len.load(Relaxed) < c);
                    if !(fits && self.try_reserve(weight)) {
                        // Eviction locks other shards, so ours is released while room
                        // is made; then the key is looked at again.
                        drop(guard);
                        self.make_room(lru, 1, weight, time.precise(), &[], notices)?;
                        continue;
                    }
                } else if self.weigher.is_some() {
                    self.weight.fetch_add(weight, Relaxed);
                }
                let (value, ttl, done) = match op {
                    Op::Set(value, opts) => (
                        value,
                        self.resolve(opts.expiry, None, |ttl| time.deadline(ttl)),
                        Done::Set(SetOutcome::Created),
                    ),
                    Op::Incr(by) => {
                        let value = V::from_i64(by).ok_or(Error::IncrUnsupported)?;
                        let ttl = self.resolve(Expiry::Default, None, |ttl| time.deadline(ttl));
                        (value, ttl, Done::Incr(by))
                    }
                    Op::Restore(value, d, ttl) => (value, (d, ttl), Done::Set(SetOutcome::Created)),
                    Op::Cas {
                        change: Change::Set(value, expiry),
                        ..
                    } => {
                        let ttl = self.resolve(expiry, None, |ttl| time.deadline(ttl));
                        (value, ttl, Done::Set(SetOutcome::Created))
                    }
                    Op::Cas { .. } => unreachable!("a delete of an absent key returned above"),
                };
                if let Err(e) = self.journal(|log| log.put(key, &value, ttl.0, ttl.1)) {
                    self.release(weight);
                    return Err(e);
                }
                let lru = licence.as_deref_mut();
                self.create(guard, lru, hash, key, value, ttl, &time, notices);
                return Ok(done);
            };
            // The key is live.
            match &op {
                Op::Set(_, opts) if opts.condition == Condition::IfAbsent => {
                    return Ok(Done::Set(SetOutcome::NotSet));
                }
                Op::Cas {
                    change: Change::Delete,
                    ..
                } => {
                    self.journal(|log| log.delete(key))?;
                    if let Ok(entry) = table.slots.find_entry(hash, |s| s.key.is(key)) {
                        let (slot, _) = entry.remove();
                        self.removed(slot, RemovalCause::Deleted, notices);
                    }
                    return Ok(Done::Deleted);
                }
                _ => {}
            }
            // An incr's new value, worked out from the old one.
            let counted = match op {
                Op::Incr(by) => {
                    let n = incremented(key, slot.value.to_i64(), by)?;
                    Some((V::from_i64(n).ok_or(Error::IncrUnsupported)?, n))
                }
                _ => None,
            };
            // Settle the weight first: a heavier value reserves the difference, after
            // making room under the licence when the bound leaves none.
            let (grow, shrink) = if self.weigher.is_some() {
                let new = match &counted {
                    Some((value, _)) => self.weigh(key, value),
                    None => weight,
                };
                if new > self.max_weight && !restore {
                    return Err(self.too_heavy(key, new));
                }
                let old = self.weigh(key, &slot.value);
                (new.saturating_sub(old), old.saturating_sub(new))
            } else {
                (0, 0)
            };
            if restore {
                self.weight.fetch_add(grow, Relaxed);
            } else if !self.try_reserve(grow) {
                let at = SlotRef::new(hash, slot);
                drop(guard);
                match licence.as_deref_mut() {
                    None => licence = Some(self.lru.lock()),
                    Some(lru) => self.make_room(lru, 0, grow, time.precise(), &[at], notices)?,
                }
                continue;
            }
            let done = match op {
                Op::Incr(_) => {
                    let Some((value, n)) = counted else {
                        unreachable!("an incr worked out its value above")
                    };
                    let (d, ttl) = (slot.deadline(), slot.ttl);
                    if let Err(e) = self.journal(|log| log.put(key, &value, d, ttl)) {
                        self.release(grow);
                        return Err(e);
                    }
                    let old = std::mem::replace(&mut slot.value, value);
                    notices.replaced(NoticeKey::Borrowed(key), old);
                    self.touch_lru(slot);
                    Done::Incr(n)
                }
                Op::Restore(value, d, ttl) => {
                    let key = NoticeKey::Borrowed(key);
                    self.overwrite(&mut table.expiry, hash, slot, value, (d, ttl), key, notices);
                    Done::Set(SetOutcome::Replaced)
                }
                Op::Set(value, SetOptions { expiry, .. })
                | Op::Cas {
                    change: Change::Set(value, expiry),
                    ..
                } => {
                    let old = Some((slot.deadline(), slot.ttl));
                    let ttl = self.resolve(expiry, old, |ttl| time.deadline(ttl));
                    if let Err(e) = self.journal(|log| log.put(key, &value, ttl.0, ttl.1)) {
                        self.release(grow);
                        return Err(e);
                    }
                    let key = NoticeKey::Borrowed(key);
                    self.overwrite(&mut table.expiry, hash, slot, value, ttl, key, notices);
                    Done::Set(SetOutcome::Replaced)
                }
                Op::Cas { .. } => unreachable!("a delete returned above"),
            };
            self.release(shrink);
            return Ok(done);
        }
    }

    /// Runs `f` on the live slot of `key` (and its hash) under the shard's write lock.
    pub(super) fn with_live_slot<R>(
        &self,
        key: &str,
        f: impl FnOnce(&Self, &mut DeadlineHeap, u64, &mut Slot<V>, u64) -> R,
    ) -> Option<R> {
        let hash = self.hash(key);
        let mut guard = self.shard(hash).write();
        let now = self.now();
        let Table { slots, expiry, .. } = &mut *guard;
        let slot = slots.find_mut(hash, |s| s.key.is(key))?;
        slot.is_live(now).then(|| f(self, expiry, hash, slot, now))
    }

    pub(super) fn clear(&self, notices: &mut Notices<'_, V>) -> Result<usize> {
        // All shards are locked at once (in order, after the LRU mutex) so that the
        // log's CLEAR falls between the same two writes in every shard.
        let mut lru = self.lru.lock();
        let mut tables: Vec<_> = self.shards.iter().map(|s| s.write()).collect();
        self.journal(|log| log.clear())?;
        let now = self.now();
        let mut live = 0;
        for table in &mut tables {
            for slot in table.slots.drain() {
                let is_live = slot.is_live(now);
                live += usize::from(is_live);
                // Expired keys are not counted as expirations here (see `Stats`),
                // but the listener learns that they had expired.
                self.forget(&slot, RemovalCause::Cleared);
                let cause = if is_live {
                    RemovalCause::Cleared
                } else {
                    RemovalCause::Expired
                };
                notices.removed(slot, cause);
            }
            table.expiry.clear();
        }
        // Weight is only ever reserved under a shard lock, and every one is held: the
        // total is exactly that of the slots just removed.
        if self.weigher.is_some() {
            self.weight.store(0, Relaxed);
        }
        lru.clear();
        Ok(live)
    }
}

pub(super) fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::InvalidTtl { ttl });
    }
    Ok(())
}

pub(super) fn check_expiry(expiry: Expiry) -> Result<()> {
    match expiry {
        Expiry::After(ttl) => check_ttl(ttl),
        _ => Ok(()),
    }
}

pub(super) fn incremented(key: &str, current: Option<i64>, by: i64) -> Result<i64> {
    let current = current.ok_or_else(|| Error::NotAnInteger {
        key: key.to_owned(),
    })?;
    current.checked_add(by).ok_or_else(|| Error::Overflow {
        key: key.to_owned(),
        by,
    })
}
