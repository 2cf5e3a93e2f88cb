//! Multi-key writes: the all-or-nothing batches and `set_many`, each locking its
//! keys' shards in ascending order.

use super::*;

/// A batch entry with its hash and shard worked out once.
pub(super) struct Item<V> {
    pub(super) hash: u64,
    pub(super) shard: usize,
    pub(super) key: String,
    pub(super) value: V,
}

impl<V: Value> Shared<V> {
    /// Hashes, shards and de-duplicates a batch (the last pair for a key wins).
    pub(super) fn items(&self, pairs: Vec<(String, V)>) -> Vec<Item<V>> {
        let mut items: Vec<Item<V>> = Vec::with_capacity(pairs.len());
        let mut seen = HashTable::<usize>::with_capacity(pairs.len());
        for (key, value) in pairs {
            let hash = self.hash(&key);
            match seen.entry(hash, |&i| items[i].key == key, |&i| items[i].hash) {
                Entry::Occupied(e) => items[*e.get()].value = value,
                Entry::Vacant(e) => {
                    e.insert(items.len());
                    items.push(Item {
                        hash,
                        shard: self.shard_index(hash),
                        key,
                        value,
                    });
                }
            }
        }
        items
    }

    /// Write-locks the shards `items` live in, in ascending order.
    pub(super) fn lock_shards(
        &self,
        items: &[Item<V>],
    ) -> Vec<(usize, RwLockWriteGuard<'_, Table<V>>)> {
        let mut order: Vec<usize> = items.iter().map(|i| i.shard).collect();
        order.sort_unstable();
        order.dedup();
        order
            .into_iter()
            .map(|i| (i, self.shards[i].write()))
            .collect()
    }

    /// The weights of a batch's new values, weighed before any lock is taken, and
    /// their sum; a sum past the bound is refused.
    fn weigh_items(&self, items: &[Item<V>]) -> Result<(Vec<u64>, u64)> {
        if self.weigher.is_none() {
            return Ok((Vec::new(), 0));
        }
        let weights: Vec<u64> = items
            .iter()
            .map(|item| self.weigh(&item.key, &item.value))
            .collect();
        let total = weights.iter().fold(0u64, |t, w| t.saturating_add(*w));
        if total > self.max_weight {
            return Err(Error::BatchTooHeavy {
                weight: total,
                max_weight: self.max_weight,
            });
        }
        Ok((weights, total))
    }

    pub(super) fn insert_all_absent(
        &self,
        pairs: Vec<(String, V)>,
        expiry: Expiry,
        notices: &mut Notices<'_, V>,
    ) -> Result<bool> {
        check_expiry(expiry)?;
        self.log_ready()?;
        let items = self.items(pairs);
        if let Some(capacity) = self.capacity
            && items.len() > capacity
        {
            return Err(Error::BatchTooLarge {
                requested: items.len(),
                capacity,
            });
        }
        let (_, weight) = self.weigh_items(&items)?;
        let mut licence = self.bounded.then(|| self.lru.lock());
        let now = self.now();
        let mut guards = self.lock_shards(&items);
        let any_live = items.iter().any(|item| {
            let table = guard_for(&mut guards, item.shard);
            table
                .slots
                .find(item.hash, |s| s.key.is(&item.key))
                .is_some_and(|s| s.is_live(now))
        });
        if any_live {
            return Ok(false);
        }
        if let Some(lru) = licence.as_deref_mut() {
            // While we hold the LRU mutex nobody else can create keys, so ours stay
            // absent while room is made; others may still take room by growing
            // values, so look again after each round.
            loop {
                let fits = self
                    .capacity
                    .is_none_or(|c| self.len.load(Relaxed) + items.len() <= c);
                if fits && self.try_reserve(weight) {
                    break;
                }
                // Eviction locks other shards, so let go of ours first.
                drop(guards);
                self.make_room(lru, items.len(), weight, now, &[], notices)?;
                guards = self.lock_shards(&items);
            }
        } else if self.weigher.is_some() {
            self.weight.fetch_add(weight, Relaxed);
        }
        let ttl = self.resolve(expiry, None, |ttl| now.saturating_add(ttl));
        let logged = self.journal(|log| {
            for item in &items {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        });
        if let Err(e) = logged {
            self.release(weight);
            return Err(e);
        }
        for item in items {
            let table = guard_for(&mut guards, item.shard);
            self.insert(
                table,
                licence.as_deref_mut(),
                item.hash,
                &item.key,
                item.value,
                ttl,
                notices,
            );
        }
        Ok(true)
    }

    /// Sets every pair. In an unbounded store a chunk at a time: each chunk's shards
    /// are locked together, its records journaled with one commit, and then applied.
    /// In a bounded store one pair at a time, since each new key may evict, and which
    /// key goes depends on the writes before it. Not all-or-nothing: the pairs before
    /// a failure stay written.
    pub(super) fn set_all(
        &self,
        pairs: Vec<(String, V)>,
        expiry: Expiry,
        notices: &mut Notices<'_, V>,
    ) -> Result<()> {
        check_expiry(expiry)?;
        self.log_ready()?;
        if self.bounded {
            let opts = SetOptions {
                expiry,
                condition: Condition::Always,
            };
            for (key, value) in pairs {
                // Each write's removals are reported as it returns.
                let mut own = Notices::new(self);
                let written = self.write(&key, Op::Set(value, opts), &mut own);
                own.deliver(self);
                written?;
            }
            return Ok(());
        }
        let mut items = self.items(pairs);
        while !items.is_empty() {
            let rest = items.split_off(SET_CHUNK.min(items.len()));
            self.set_chunk(items, expiry, notices)?;
            items = rest;
        }
        Ok(())
    }

    /// Sets a chunk of distinct keys in an unbounded store.
    pub(super) fn set_chunk(
        &self,
        items: Vec<Item<V>>,
        expiry: Expiry,
        notices: &mut Notices<'_, V>,
    ) -> Result<()> {
        let (_, weight) = self.weigh_items(&items)?;
        let now = self.now();
        let mut guards = self.lock_shards(&items);
        let old: Vec<Option<(u64, u64)>> = items
            .iter()
            .map(|item| {
                guard_for(&mut guards, item.shard)
                    .slots
                    .find(item.hash, |s| s.key.is(&item.key))
                    .filter(|s| s.is_live(now))
                    .map(|s| (s.deadline(), s.ttl))
            })
            .collect();
        let ttls: Vec<(u64, u64)> = old
            .iter()
            .map(|&old| self.resolve(expiry, old, |ttl| now.saturating_add(ttl)))
            .collect();
        self.journal(|log| {
            for (item, ttl) in items.iter().zip(&ttls) {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        // The new values' weight in, the replaced ones' out (weights are counted
        // here, not bounded).
        if self.weigher.is_some() {
            self.weight.fetch_add(weight, Relaxed);
        }
        for ((item, old), ttl) in items.into_iter().zip(old).zip(ttls) {
            let table = guard_for(&mut guards, item.shard);
            if old.is_some() {
                let Table {
                    slots,
                    expiry: heap,
                    ..
                } = table;
                if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                    if self.weigher.is_some() {
                        self.release(self.weigh(&item.key, &slot.value));
                    }
                    let key = NoticeKey::Owned(item.key);
                    self.overwrite(heap, item.hash, slot, item.value, ttl, key, notices);
                }
            } else {
                self.insert(table, None, item.hash, &item.key, item.value, ttl, notices);
            }
        }
        Ok(())
    }

    pub(super) fn update_all_present(
        &self,
        pairs: Vec<(String, V)>,
        expiry: Expiry,
        notices: &mut Notices<'_, V>,
    ) -> Result<bool> {
        check_expiry(expiry)?;
        let items = self.items(pairs);
        let (weights, _) = self.weigh_items(&items)?;
        // Growing values in a store bounded by weight may need room, made under the
        // licence (taken before the shard locks, so the round starts again).
        let mut licence: Option<MutexGuard<'_, LruIndex>> = None;
        loop {
            let now = self.now();
            let mut guards = self.lock_shards(&items);
            let all_live = items.iter().all(|item| {
                let table = guard_for(&mut guards, item.shard);
                table
                    .slots
                    .find(item.hash, |s| s.key.is(&item.key))
                    .is_some_and(|s| s.is_live(now))
            });
            if !all_live {
                return Ok(false);
            }
            // Each key's new deadline and TTL, and the weight it had, worked out
            // before anything changes.
            let mut old_weight = 0u64;
            let mut refs = Vec::new();
            let ttls: Vec<(u64, u64)> = items
                .iter()
                .map(|item| {
                    let table = guard_for(&mut guards, item.shard);
                    let slot = table.slots.find(item.hash, |s| s.key.is(&item.key));
                    if self.weigher.is_some()
                        && let Some(slot) = slot
                    {
                        old_weight += self.weigh(&item.key, &slot.value);
                        refs.push(SlotRef::new(item.hash, slot));
                    }
                    let old = slot.map(|slot| (slot.deadline(), slot.ttl));
                    self.resolve(expiry, old, |ttl| now.saturating_add(ttl))
                })
                .collect();
            let new_weight: u64 = weights.iter().sum();
            let grow = new_weight.saturating_sub(old_weight);
            if !self.try_reserve(grow) {
                drop(guards);
                match licence.as_deref_mut() {
                    None => licence = Some(self.lru.lock()),
                    Some(lru) => self.make_room(lru, 0, grow, now, &refs, notices)?,
                }
                continue;
            }
            let logged = self.journal(|log| {
                for (item, ttl) in items.iter().zip(&ttls) {
                    log.put(&item.key, &item.value, ttl.0, ttl.1);
                }
            });
            if let Err(e) = logged {
                self.release(grow);
                return Err(e);
            }
            for (item, ttl) in items.into_iter().zip(ttls) {
                let table = guard_for(&mut guards, item.shard);
                let Table {
                    slots,
                    expiry: heap,
                    ..
                } = table;
                if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                    let key = NoticeKey::Owned(item.key);
                    self.overwrite(heap, item.hash, slot, item.value, ttl, key, notices);
                }
            }
            self.release(old_weight.saturating_sub(new_weight));
            return Ok(true);
        }
    }
}

/// The guard for shard `index` among guards sorted by index.
pub(super) fn guard_for<'a, 'g, V>(
    guards: &'a mut [(usize, RwLockWriteGuard<'g, Table<V>>)],
    index: usize,
) -> &'a mut Table<V> {
    let pos = guards
        .binary_search_by_key(&index, |(i, _)| *i)
        .unwrap_or_else(|_| unreachable!("every item's shard is locked"));
    &mut guards[pos].1
}
