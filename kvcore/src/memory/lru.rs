//! The LRU index of a bounded store, and eviction: making room for new keys.

use super::*;

/// Items `(stamp, slot)`, popped smallest stamp first.
///
/// Stamps come from one counter that only goes up, so an item filed now is never
/// older than the last one popped: the index is a monotone priority queue. A radix
/// heap serves one in O(1) per push and amortized O(log distance) per pop, by
/// sequential passes over a few vectors, where a binary heap of a million items
/// takes a cache miss for each level it sifts through.
#[derive(Default)]
pub(super) struct LruIndex {
    pub(super) heap: RadixHeapMap<Reverse<u64>, SlotRef>,
}

impl LruIndex {
    /// Files `at` at `stamp`. A stamp older than the last one popped (two reads of a
    /// key raced, and the older stamp was stored last) is filed at that one instead:
    /// the slot was used at least that recently.
    pub(super) fn push(&mut self, stamp: u64, at: SlotRef) {
        let floor = self.heap.top().map_or(0, |Reverse(top)| top);
        self.heap.push(Reverse(stamp.max(floor)), at);
    }

    pub(super) fn pop(&mut self) -> Option<(u64, SlotRef)> {
        self.heap.pop().map(|(Reverse(stamp), at)| (stamp, at))
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn clear(&mut self) {
        self.heap.clear();
    }
}

impl<V: Value> Shared<V> {
    /// Makes room in a bounded store for `keys` new keys and `weight` more weight:
    /// expired keys go first, then the least recently used, never one of `keep` (the
    /// slots a write is about to grow). The caller holds the LRU mutex and no shard
    /// lock, and reserves the weight itself afterwards (writers that hold no mutex may
    /// take room too, so it looks again).
    pub(super) fn make_room(
        &self,
        lru: &mut LruIndex,
        keys: usize,
        weight: u64,
        now: u64,
        keep: &[SlotRef],
        notices: &mut Notices<'_, V>,
    ) -> Result<()> {
        if let Some(capacity) = self.capacity
            && keys > capacity
        {
            return Err(Error::BatchTooLarge {
                requested: keys,
                capacity,
            });
        }
        if weight > self.max_weight {
            return Err(Error::BatchTooHeavy {
                weight,
                max_weight: self.max_weight,
            });
        }
        let over = || {
            self.capacity
                .is_some_and(|c| self.len.load(Relaxed) + keys > c)
                || self.weight.load(Relaxed).saturating_add(weight) > self.max_weight
        };
        if over() {
            self.purge_if_due(now, notices);
        }
        while over() {
            if !self.evict_one(lru, now, keep, notices) {
                self.rebuild_lru(lru);
                if !self.evict_one(lru, now, keep, notices) {
                    break; // nothing left to evict; the count is settling elsewhere
                }
            }
        }
        Ok(())
    }

    /// Removes the least recently used key that is not one of `keep`. Returns false
    /// if there is none: the index is empty, or holds only `keep` and keys used since
    /// this call began.
    pub(super) fn evict_one(
        &self,
        lru: &mut LruIndex,
        now: u64,
        keep: &[SlotRef],
        notices: &mut Notices<'_, V>,
    ) -> bool {
        let began = self.tick.load(Relaxed);
        while let Some((stamp, at)) = lru.pop() {
            let mut table = self.shard(at.hash).write();
            let Ok(mut entry) = table.slots.find_entry(at.hash, |s| at.is(s)) else {
                continue; // deleted or re-created since it was filed
            };
            let used = entry.get().used.load(Relaxed);
            if used != stamp {
                lru.push(used, at);
                continue;
            }
            if keep.contains(&at) {
                if stamp >= began {
                    lru.push(stamp, at);
                    return false; // everything older is gone
                }
                // The write that grows it is a use: file it as the most recent.
                let fresh = self.tick.fetch_add(1, Relaxed);
                entry.get_mut().used.store(fresh, Relaxed);
                lru.push(fresh, at);
                continue;
            }
            let live = entry.get().is_live(now);
            let (slot, _) = entry.remove();
            let cause = if live {
                RemovalCause::Evicted
            } else {
                RemovalCause::Expired
            };
            self.removed(slot, cause, notices);
            return true;
        }
        false
    }

    /// Refiles every slot at its current stamp, dropping stale items.
    pub(super) fn rebuild_lru(&self, lru: &mut LruIndex) {
        lru.clear();
        for shard in self.shards.iter() {
            let table = shard.table.read();
            for s in table.slots.iter() {
                lru.push(
                    s.used.load(Relaxed),
                    SlotRef::new(self.hash(s.key.as_str()), s),
                );
            }
        }
    }

    /// Drops stale LRU items once they outnumber the keys.
    pub(super) fn maybe_compact_lru(&self, lru: &mut LruIndex) {
        if lru.len() > 2 * self.len.load(Relaxed) + 1024 {
            self.rebuild_lru(lru);
        }
    }
}
