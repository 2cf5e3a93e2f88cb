//! The [`Store`] trait over the shared state: each operation as the trait states it.

use super::*;

impl<V: Value> Store<V> for MemoryStore<V> {
    fn get(&self, key: &str) -> Option<V> {
        let s = &*self.shared;
        s.read(key, true, |slot, now| {
            s.touch_read(slot, || now);
            slot.value.clone()
        })
    }

    fn get_with_ttl(&self, key: &str) -> Option<(V, Option<Duration>)> {
        let s = &*self.shared;
        s.read(key, true, |slot, now| {
            s.touch_read(slot, || now);
            (slot.value.clone(), slot.remaining(now))
        })
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Option<V>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn contains(&self, key: &str) -> bool {
        self.shared.read(key, false, |_, _| ()).is_some()
    }

    fn ttl(&self, key: &str) -> Option<Option<Duration>> {
        self.shared
            .read(key, false, |slot, now| slot.remaining(now))
    }

    fn set(&self, key: &str, value: V, opts: SetOptions) -> Result<SetOutcome> {
        match self.shared.write(key, Op::Set(value, opts))? {
            Done::Set(outcome) => Ok(outcome),
            Done::Incr(_) => unreachable!("a set reports a set outcome"),
        }
    }

    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize> {
        let n = items.len();
        self.shared.set_all(items, expiry)?;
        Ok(n)
    }

    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.shared.insert_all_absent(items, expiry)
    }

    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        self.shared.update_all_present(items, expiry)
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let s = &*self.shared;
        let hash = s.hash(key);
        let mut table = s.shard(hash).table.write();
        let Ok(entry) = table.slots.find_entry(hash, |slot| slot.key.is(key)) else {
            return Ok(false);
        };
        let live = entry.get().is_live(s.now());
        if live {
            // An expired key needs no record: replay finds it expired too.
            s.journal(|log| log.delete(key))?;
        }
        let (slot, _) = entry.remove();
        s.removed(
            &slot,
            if live {
                Removal::Deleted
            } else {
                Removal::Expired
            },
        );
        Ok(live)
    }

    fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        check_ttl(ttl)?;
        let ttl = nanos(ttl);
        self.shared
            .with_live_slot(key, |s, heap, hash, slot, now| {
                let d = now.saturating_add(ttl);
                s.journal(|log| log.put(key, &slot.value, d, ttl))?;
                slot.expires_at.store(d, Relaxed);
                slot.ttl = ttl;
                s.file_deadline(heap, hash, slot);
                s.touch_lru(slot);
                Ok(())
            })
            .transpose()
            .map(|done| done.is_some())
    }

    fn clear_ttl(&self, key: &str) -> Result<bool> {
        self.shared
            .with_live_slot(key, |s, _, _, slot, _| {
                s.journal(|log| log.put(key, &slot.value, 0, 0))?;
                slot.expires_at.store(0, Relaxed);
                slot.ttl = 0;
                s.touch_lru(slot);
                Ok(())
            })
            .transpose()
            .map(|done| done.is_some())
    }

    fn incr(&self, key: &str, by: i64) -> Result<i64> {
        match self.shared.write(key, Op::Incr(by))? {
            Done::Incr(n) => Ok(n),
            Done::Set(_) => unreachable!("an incr reports a number"),
        }
    }

    fn len(&self) -> usize {
        let s = &*self.shared;
        s.purge_if_due(s.now());
        s.len.load(Relaxed)
    }

    fn clear(&self) -> Result<usize> {
        self.shared.clear()
    }

    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        self.shared.scan(pattern, cursor, limit)
    }

    fn stats(&self) -> Stats {
        let s = &*self.shared;
        let (hits, misses) = s.shards.iter().fold((0, 0), |(h, m), shard| {
            (h + shard.hits.load(Relaxed), m + shard.misses.load(Relaxed))
        });
        Stats {
            hits,
            misses,
            expirations: s.expirations.load(Relaxed),
            evictions: s.evictions.load(Relaxed),
        }
    }

    fn purge_expired(&self, budget: usize) -> usize {
        self.shared.purge_expired(budget)
    }

    fn mode(&self) -> Mode {
        self.shared.mode()
    }
}
