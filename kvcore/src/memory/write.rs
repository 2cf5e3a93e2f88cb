//! Writes of one key (set, incr, and recovery's restore), what they share with the
//! multi-key writes (overwriting and inserting a slot), and `clear`.

use super::*;

/// A single-key write.
pub(super) enum Op<V> {
    Set(V, SetOptions),
    Incr(i64),
    /// Recovery: the key's state as a log recorded it.
    Restore(V, u64, u64),
}

pub(super) enum Done {
    Set(SetOutcome),
    Incr(i64),
}

impl<V: Value> Shared<V> {
    /// Replaces the value and TTL of a live slot. The caller has journaled the change.
    pub(super) fn overwrite(
        &self,
        heap: &mut DeadlineHeap,
        hash: u64,
        slot: &mut Slot<V>,
        value: V,
        (d, ttl): (u64, u64),
    ) {
        slot.value = value;
        slot.expires_at.store(d, Relaxed);
        slot.ttl = ttl;
        self.file_deadline(heap, hash, slot);
        self.touch_lru(slot);
    }

    /// Inserts a key known to have no live slot, removing an expired one in the way.
    /// The caller has journaled the change.
    pub(super) fn insert(
        &self,
        table: &mut Table<V>,
        lru: Option<&mut LruIndex>,
        hash: u64,
        key: &str,
        value: V,
        (d, ttl): (u64, u64),
    ) {
        if let Ok(old) = table.slots.find_entry(hash, |s| s.key.is(key)) {
            let (old, _) = old.remove();
            self.removed(&old, Removal::Expired);
        }
        let stamp = if self.capacity.is_some() {
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
        table.slots.insert_unique(hash, slot, self.rehasher());
        self.len.fetch_add(1, Relaxed);
    }

    /// One single-key write: a set or an incr.
    pub(super) fn write(&self, key: &str, op: Op<V>) -> Result<Done> {
        if let Op::Set(_, opts) = &op {
            check_expiry(opts.expiry)?;
        }
        self.log_ready()?;
        let hash = self.hash(key);
        let shard = self.shard(hash);
        // In a bounded store, creating a key needs the LRU mutex (taken before the
        // shard lock, per the lock order), so a create goes round the loop once more.
        let mut licence: Option<MutexGuard<'_, LruIndex>> = None;
        loop {
            // Read the clock only if the write needs it: replacing a key that has no
            // deadline with a value that gets none does not.
            let time = WriteTime::new(&self.clock);
            let mut guard = shard.table.write();
            let table = &mut *guard;
            if let Some(slot) = table.slots.find_mut(hash, |s| s.key.is(key))
                && time.is_live(slot.deadline())
            {
                return match op {
                    Op::Set(_, opts) if opts.condition == Condition::IfAbsent => {
                        Ok(Done::Set(SetOutcome::NotSet))
                    }
                    Op::Set(value, opts) => {
                        let old = Some((slot.deadline(), slot.ttl));
                        let ttl = self.resolve(opts.expiry, old, |ttl| time.deadline(ttl));
                        self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
                        self.overwrite(&mut table.expiry, hash, slot, value, ttl);
                        Ok(Done::Set(SetOutcome::Replaced))
                    }
                    Op::Incr(by) => {
                        let n = incremented(key, slot.value.to_i64(), by)?;
                        let value = V::from_i64(n).ok_or(Error::IncrUnsupported)?;
                        let (d, ttl) = (slot.deadline(), slot.ttl);
                        self.journal(|log| log.put(key, &value, d, ttl))?;
                        slot.value = value;
                        self.touch_lru(slot);
                        Ok(Done::Incr(n))
                    }
                    Op::Restore(value, d, ttl) => {
                        self.overwrite(&mut table.expiry, hash, slot, value, (d, ttl));
                        Ok(Done::Set(SetOutcome::Replaced))
                    }
                };
            }
            // The key is absent (or only expired).
            match &op {
                Op::Set(_, opts) if opts.condition == Condition::IfPresent => {
                    return Ok(Done::Set(SetOutcome::NotSet));
                }
                Op::Incr(by) if V::from_i64(*by).is_none() => return Err(Error::IncrUnsupported),
                _ => {}
            }
            // Recovery replays a log whose states never exceeded the capacity but
            // whose order may briefly do so; it inserts freely and trims at the end.
            let bounded = self.capacity.is_some() && !matches!(op, Op::Restore(..));
            if bounded && licence.is_none() {
                // Take the licence, then look at the key again: another writer may
                // have created it meanwhile, and then no room is needed.
                drop(guard);
                licence = Some(self.lru.lock());
                continue;
            }
            if let Some(lru) = licence.as_deref_mut().filter(|_| bounded) {
                // Eviction locks other shards, so ours is released while room is
                // made. Holding the licence, nobody else can create this key meanwhile.
                drop(guard);
                self.make_room(lru, 1, time.precise())?;
                guard = shard.table.write();
            }
            let table = &mut *guard;
            let (value, ttl, done) = match op {
                Op::Set(value, opts) => (
                    value,
                    self.resolve(opts.expiry, None, |ttl| time.deadline(ttl)),
                    Done::Set(SetOutcome::Created),
                ),
                Op::Incr(by) => {
                    let value = V::from_i64(by).ok_or(Error::IncrUnsupported)?;
                    (
                        value,
                        self.resolve(Expiry::Default, None, |ttl| time.deadline(ttl)),
                        Done::Incr(by),
                    )
                }
                Op::Restore(value, d, ttl) => (value, (d, ttl), Done::Set(SetOutcome::Created)),
            };
            self.journal(|log| log.put(key, &value, ttl.0, ttl.1))?;
            self.insert(table, licence.as_deref_mut(), hash, key, value, ttl);
            if !table.expiry.is_empty() {
                self.purge_table(table, time.earliest(), PURGE_ON_WRITE);
            }
            if let Some(lru) = licence.as_deref_mut() {
                drop(guard);
                self.maybe_compact_lru(lru);
            }
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
        let mut guard = self.shard(hash).table.write();
        let now = self.now();
        let Table { slots, expiry } = &mut *guard;
        let slot = slots.find_mut(hash, |s| s.key.is(key))?;
        slot.is_live(now).then(|| f(self, expiry, hash, slot, now))
    }

    pub(super) fn clear(&self) -> Result<usize> {
        // All shards are locked at once (in order, after the LRU mutex) so that the
        // log's CLEAR falls between the same two writes in every shard.
        let mut lru = self.lru.lock();
        let mut tables: Vec<_> = self.shards.iter().map(|s| s.table.write()).collect();
        self.journal(|log| log.clear())?;
        let now = self.now();
        let mut live = 0;
        for table in &mut tables {
            for slot in table.slots.drain() {
                live += usize::from(slot.is_live(now));
                self.removed(&slot, Removal::Cleared);
            }
            table.expiry.clear();
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
