//! The [`Store`] trait over the shared state: each operation as the trait states it.
//!
//! An operation that may remove values makes its [`Notices`] before it takes a lock
//! and delivers them once it holds none (see [`listener`](crate::listener)).

use super::*;

impl<V: Value> Shared<V> {
    /// Runs `op` with the notices of its removals, then hands them to the listener.
    fn notifying<'a, R>(&self, op: impl FnOnce(&mut Notices<'a, V>) -> R) -> R {
        let mut notices = Notices::new(self);
        let result = op(&mut notices);
        notices.deliver(self);
        result
    }
}

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
        let s = &*self.shared;
        let mut notices = Notices::new(s);
        let done = match &s.weigher {
            None => s.set_unweighed(key, value, opts, &mut notices),
            Some(_) => s
                .write(key, Op::Set(value, opts), &mut notices)
                .map(|done| match done {
                    Done::Set(outcome) => outcome,
                    _ => unreachable!("a set reports a set outcome"),
                }),
        };
        notices.deliver(s);
        done
    }

    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize> {
        let n = items.len();
        let s = &*self.shared;
        s.notifying(|notices| s.set_all(items, expiry, notices))?;
        Ok(n)
    }

    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        let s = &*self.shared;
        s.notifying(|n| s.insert_all_absent(items, expiry, n))
    }

    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool> {
        let s = &*self.shared;
        s.notifying(|n| s.update_all_present(items, expiry, n))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        let s = &*self.shared;
        s.notifying(|notices| {
            let hash = s.hash(key);
            let mut table = s.shard(hash).write();
            let Ok(entry) = table.slots.find_entry(hash, |slot| slot.key.is(key)) else {
                return Ok(false);
            };
            // Only a key with a deadline needs the time.
            let live = match entry.get().deadline() {
                0 => true,
                d => d > s.now(),
            };
            if live {
                // An expired key needs no record: replay finds it expired too.
                s.journal(|log| log.delete(key))?;
            }
            let (slot, _) = entry.remove();
            let cause = if live {
                RemovalCause::Deleted
            } else {
                RemovalCause::Expired
            };
            s.removed(slot, cause, notices);
            Ok(live)
        })
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
        let s = &*self.shared;
        match s.notifying(|n| s.write(key, Op::Incr(by), n))? {
            Done::Incr(n) => Ok(n),
            _ => unreachable!("an incr reports a number"),
        }
    }

    fn len(&self) -> usize {
        let s = &*self.shared;
        s.notifying(|n| s.purge_if_due(s.now(), n));
        s.slots()
    }

    fn clear(&self) -> Result<usize> {
        let s = &*self.shared;
        s.notifying(|n| s.clear(n))
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
        let (hits, misses) = s.reads.sums();
        Stats {
            hits,
            misses,
            expirations: s.expirations.load(Relaxed),
            evictions: s.evictions.load(Relaxed),
            listener_panics: s.listener_panics.load(Relaxed),
        }
    }

    fn purge_expired(&self, budget: usize) -> usize {
        let s = &*self.shared;
        s.notifying(|n| s.purge_expired(budget, n))
    }

    fn mode(&self) -> Mode {
        self.shared.mode()
    }

    fn weight(&self) -> Option<u64> {
        let s = &*self.shared;
        s.weigher.is_some().then(|| s.weight.load(Relaxed))
    }

    fn compute(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<&V>) -> Compute<V>,
    ) -> Result<Computed<V>> {
        let s = &*self.shared;
        s.notifying(|n| s.compute(key, f, n))
    }

    fn single_flight(
        &self,
        key: &str,
        opts: SetOptions,
        load: &mut Load<'_, V>,
    ) -> std::result::Result<V, Failed> {
        crate::loader::single_flight(self, key, opts, load)
    }

    fn single_flight_async<'a>(
        &'a self,
        key: &'a str,
        opts: SetOptions,
        load: LoadAsync<'a, V>,
    ) -> LoadFuture<'a, V> {
        crate::loader::single_flight_async(self, key, opts, load)
    }
}

impl<V: Value> Loadable<V> for MemoryStore<V> {
    fn read_or_join(&self, key: &str) -> Joined<'_, V> {
        self.shared.read_or_join(key)
    }

    fn store_loaded(&self, key: &str, value: V, opts: SetOptions) -> Result<V> {
        let s = &*self.shared;
        let peek = || s.read(key, false, |slot, now| s.use_value(slot, now));
        crate::loader::store_absent(self, peek, key, value, opts)
    }
}
