//! Reads: one key under its shard's read lock, and scans page by page.

use super::*;

impl<V: Value> Shared<V> {
    /// Calls `f` with the live slot of `key` and a time to act on (0 for a slot
    /// without deadline), under the shard's read lock; counts the read as a hit
    /// or a miss when `count` is set.
    pub(super) fn read<R>(
        &self,
        key: &str,
        count: bool,
        f: impl FnOnce(&Slot<V>, u64) -> R,
    ) -> Option<R> {
        let hash = self.hash(key);
        let found = {
            let table = self.shard(hash).table.read();
            self.live(&table, hash, key).map(|(slot, now)| f(slot, now))
        };
        if count {
            self.reads.count(found.is_some());
        }
        found
    }

    /// The live slot of `key` in `table`, with a time to act on: 0 when the slot
    /// has no deadline (only keys with one need the time).
    #[inline(always)]
    fn live<'t>(&self, table: &'t Table<V>, hash: u64, key: &str) -> Option<(&'t Slot<V>, u64)> {
        table.prefetch(hash);
        let slot = table.slots.find(hash, |s| s.key.is(key))?;
        let now = match slot.deadline() {
            0 => 0,
            _ => self.live_at(slot)?,
        };
        Some((slot, now))
    }

    /// A read's use of a live slot: restarts a sliding TTL, refreshes the LRU order,
    /// and copies the value out.
    pub(super) fn use_value(&self, slot: &Slot<V>, now: u64) -> V {
        self.touch_read(slot, || now);
        slot.value.clone()
    }

    /// A loader's read after its `get` missed: the live value, read as a use but
    /// counted as neither hit nor miss, or the key's flight, joined under the shard's
    /// read lock. A write of the key takes the write lock, so a flight that stored
    /// the key has either stored it before this read (which then finds it) or not
    /// yet ended (and this read joins it).
    pub(super) fn read_or_join(&self, key: &str) -> Joined<'_, V> {
        let hash = self.hash(key);
        let table = self.shard(hash).table.read();
        match self.live(&table, hash, key) {
            Some((slot, now)) => Joined::Live(self.use_value(slot, now)),
            None => Joined::Absent(self.flights.join(hash, key)),
        }
    }

    pub(super) fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        let shards = self.shards.len();
        let (mut shard, mut after) = match cursor {
            None => (0, None),
            Some(text) => Cursor::decode(text, MEMORY_TAG)
                .and_then(|c| Some((usize::try_from(c.at).ok()?, c.after)))
                .filter(|(shard, _)| *shard < shards)
                .ok_or_else(|| Cursor::invalid(text))?,
        };
        let pattern = pattern.filter(|p| !p.matches_all());
        let mut items = Vec::new();
        let now = self.now();
        while shard < shards && items.len() < limit {
            let want = limit - items.len();
            let table = self.shards[shard].table.read();
            let mut found: Vec<&Slot<V>> = table
                .slots
                .iter()
                .map(|s| &**s)
                .filter(|s| {
                    let after = after.as_deref();
                    after.is_none_or(|after| s.key.as_bytes() > after.as_bytes())
                })
                .filter(|s| s.is_live(now))
                .filter(|s| pattern.is_none_or(|p| p.matches(s.key.as_str())))
                .collect();
            let complete = found.len() <= want;
            // Byte order is str order.
            let by_key = |a: &&Slot<V>, b: &&Slot<V>| a.key.as_bytes().cmp(b.key.as_bytes());
            if !complete {
                found.select_nth_unstable_by(want - 1, by_key);
                found.truncate(want);
            }
            found.sort_unstable_by(by_key);
            for slot in &found {
                self.touch_read(slot, || now);
                items.push((slot.key.as_str().to_owned(), slot.value.clone()));
            }
            if complete {
                shard += 1;
                after = None;
            } else {
                after = found.last().map(|s| s.key.as_str().to_owned());
            }
        }
        let next_cursor = (shard < shards).then(|| {
            let at = u64::try_from(shard).unwrap_or(u64::MAX);
            Cursor { at, after }.encode(MEMORY_TAG)
        });
        Ok(ScanPage { items, next_cursor })
    }
}
