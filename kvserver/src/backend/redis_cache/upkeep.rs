//! Background upkeep: the local cache's expired entries, the sliding TTL restarts
//! that cache hits owe Redis, and the sweep of sliding lengths whose keys are gone.

use futures_util::{StreamExt, stream};

use super::layout::SLOTS;
use super::*;

/// Script calls of one upkeep that may be in flight at once.
const IN_FLIGHT: usize = 32;
/// Slots one sweep round may look at over a cluster: a pass over the 16 384 slots
/// takes about 100 s of upkeep rounds (10 a second).
const SWEEP_SLOTS: usize = 16;

impl RedisCache {
    pub(in crate::backend) async fn upkeep(&self, budget: usize) {
        self.cache.purge_expired(budget);
        if !self.sliding {
            return;
        }
        if let Err(e) = self.flush_touches().await {
            tracing::debug!(error = %e, "sliding TTL restarts not sent");
        }
        // Over a cluster each sweep reads one slot's lengths, so it runs every round;
        // over one Redis it reads a batch of the one hash, now and then.
        let every = if self.con.is_cluster() {
            1
        } else {
            SWEEP_EVERY
        };
        if self.upkeeps.fetch_add(1, Relaxed).is_multiple_of(every)
            && let Err(e) = self.sweep().await
        {
            tracing::debug!(error = %e, "sliding-length sweep not done");
        }
    }

    /// Sends the sliding TTL restarts owed for cache hits: one script call per batch
    /// of keys that share their bookkeeping keys (over a cluster, their slot).
    async fn flush_touches(&self) -> Result<()> {
        let keys: Vec<String> = std::mem::take(&mut *self.touches.lock())
            .into_iter()
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let batches: Vec<Vec<&str>> = self
            .by_slot(&refs)
            .into_iter()
            .flat_map(|group| {
                group
                    .chunks(TOUCH_BATCH)
                    .map(|c| c.iter().map(|&i| refs[i]).collect())
                    .collect::<Vec<Vec<&str>>>()
            })
            .collect();
        let mut calls = Vec::with_capacity(batches.len());
        for batch in batches {
            calls.push(self.touch_slot(batch));
        }
        let results: Vec<Result<()>> = stream::iter(calls)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Restarts the sliding TTLs of `batch`, keys of one slot.
    async fn touch_slot(&self, batch: Vec<&str>) -> Result<()> {
        let books = self.books(batch[0]);
        let mut invocation = self.scripts.touch.prepare_invoke();
        for key in &batch {
            invocation.key(*key);
        }
        invocation.key(&books.slide).arg(self.default_ms);
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    /// Drops one batch of sliding lengths whose keys are gone. Over a cluster the
    /// cursor names a slot (top 16 bits) and a place in its hash; a slot whose hash is
    /// done (or missing, as most are) moves the sweep to the next slot, up to
    /// [`SWEEP_SLOTS`] slots a round, so that a pass over every slot takes minutes.
    async fn sweep(&self) -> Result<()> {
        let rounds = if self.con.is_cluster() {
            SWEEP_SLOTS
        } else {
            1
        };
        for _ in 0..rounds {
            if self.sweep_step().await? {
                break;
            }
        }
        Ok(())
    }

    /// One `HSCAN` batch of the sweep; returns whether it found lengths.
    async fn sweep_step(&self) -> Result<bool> {
        let at = self.sweep_cursor.load(Relaxed);
        let (slot, from) = if self.con.is_cluster() {
            ((at >> 48) as u16 % SLOTS, at & ((1 << 48) - 1))
        } else {
            (0, at)
        };
        let books = self.layout.books_of_slot(slot);
        let mut cmd = redis::cmd("HSCAN");
        cmd.arg(&books.slide).arg(from).arg("COUNT").arg(SCAN_COUNT);
        let mut con = self.con.clone();
        let (next, fields): (u64, Vec<(String, String)>) = self
            .call(async move { cmd.query_async(&mut con).await })
            .await?;
        let next = match (self.con.is_cluster(), next) {
            (false, next) => next,
            (true, 0) => u64::from((slot + 1) % SLOTS) << 48,
            (true, next) if next < 1 << 48 => u64::from(slot) << 48 | next,
            // A hash too large for the cursor's 48 bits: start the slot again.
            (true, _) => u64::from(slot) << 48,
        };
        self.sweep_cursor.store(next, Relaxed);
        if fields.is_empty() {
            return Ok(false);
        }
        let mut invocation = self.scripts.sweep.prepare_invoke();
        invocation.key(&books.slide);
        for (key, _) in &fields {
            invocation.key(key.as_str());
        }
        let _: i64 = self.run(invocation).await?;
        Ok(true)
    }

    pub(in crate::backend) async fn sync(&self) -> anyhow::Result<()> {
        if self.sliding {
            self.flush_touches().await?;
        }
        Ok(())
    }
}
