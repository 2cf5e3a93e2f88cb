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
            .map(|i| (i, self.shards[i].table.write()))
            .collect()
    }

    pub(super) fn insert_all_absent(
        &self,
        pairs: Vec<(String, V)>,
        expiry: Expiry,
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
        let mut licence = self.capacity.map(|_| self.lru.lock());
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
            // Eviction locks other shards, so let go of ours first. While we hold the
            // LRU mutex nobody else can create keys, so ours stay absent meanwhile.
            drop(guards);
            self.make_room(lru, items.len(), now)?;
            guards = self.lock_shards(&items);
        }
        let ttl = self.resolve(expiry, None, |ttl| now.saturating_add(ttl));
        self.journal(|log| {
            for item in &items {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        for item in items {
            let table = guard_for(&mut guards, item.shard);
            self.insert(
                table,
                licence.as_deref_mut(),
                item.hash,
                &item.key,
                item.value,
                ttl,
            );
        }
        Ok(true)
    }

    /// Sets every pair. In an unbounded store a chunk at a time: each chunk's shards
    /// are locked together, its records journaled with one commit, and then applied.
    /// In a bounded store one pair at a time, since each new key may evict, and which
    /// key goes depends on the writes before it. Not all-or-nothing: the pairs before
    /// a failure stay written.
    pub(super) fn set_all(&self, pairs: Vec<(String, V)>, expiry: Expiry) -> Result<()> {
        check_expiry(expiry)?;
        self.log_ready()?;
        if self.capacity.is_some() {
            let opts = SetOptions {
                expiry,
                condition: Condition::Always,
            };
            for (key, value) in pairs {
                self.write(&key, Op::Set(value, opts))?;
            }
            return Ok(());
        }
        let mut items = self.items(pairs);
        while !items.is_empty() {
            let rest = items.split_off(SET_CHUNK.min(items.len()));
            self.set_chunk(items, expiry)?;
            items = rest;
        }
        Ok(())
    }

    /// Sets a chunk of distinct keys in an unbounded store.
    pub(super) fn set_chunk(&self, items: Vec<Item<V>>, expiry: Expiry) -> Result<()> {
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
        for ((item, old), ttl) in items.into_iter().zip(old).zip(ttls) {
            let table = guard_for(&mut guards, item.shard);
            if old.is_some() {
                let Table {
                    slots,
                    expiry: heap,
                } = table;
                if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                    self.overwrite(heap, item.hash, slot, item.value, ttl);
                }
            } else {
                self.insert(table, None, item.hash, &item.key, item.value, ttl);
            }
        }
        Ok(())
    }

    pub(super) fn update_all_present(
        &self,
        pairs: Vec<(String, V)>,
        expiry: Expiry,
    ) -> Result<bool> {
        check_expiry(expiry)?;
        let items = self.items(pairs);
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
        // Each key's new deadline and TTL, worked out before anything changes.
        let ttls: Vec<(u64, u64)> = items
            .iter()
            .map(|item| {
                let table = guard_for(&mut guards, item.shard);
                let old = table
                    .slots
                    .find(item.hash, |s| s.key.is(&item.key))
                    .map(|slot| (slot.deadline(), slot.ttl));
                self.resolve(expiry, old, |ttl| now.saturating_add(ttl))
            })
            .collect();
        self.journal(|log| {
            for (item, ttl) in items.iter().zip(&ttls) {
                log.put(&item.key, &item.value, ttl.0, ttl.1);
            }
        })?;
        for (item, ttl) in items.into_iter().zip(ttls) {
            let table = guard_for(&mut guards, item.shard);
            let Table {
                slots,
                expiry: heap,
            } = table;
            if let Some(slot) = slots.find_mut(item.hash, |s| s.key.is(&item.key)) {
                self.overwrite(heap, item.hash, slot, item.value, ttl);
            }
        }
        Ok(true)
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
