//! Writes: each goes to Redis first, as one script where it needs more than one
//! command, then to the local cache.

use futures_util::StreamExt;

use super::*;

/// Slots one `PUT /keys` writes to at once over a cluster.
const WRITES_IN_FLIGHT: usize = 32;

impl RedisCache {
    /// The (expiry kind, ttl ms) script arguments for `expiry`.
    pub(super) fn expiry_args(&self, expiry: Expiry) -> (&'static str, u64) {
        match expiry {
            Expiry::After(ttl) => ("ttl", millis(ttl)),
            Expiry::Never => ("ttl", 0),
            Expiry::Keep => ("keep", 0),
            _ => ("ttl", self.default_ms),
        }
    }

    pub(in crate::backend) async fn set(
        &self,
        key: &str,
        value: Bytes,
        opts: SetOptions,
    ) -> Result<SetOutcome> {
        refuse_reserved(key)?;
        let condition = match opts.condition {
            kvcore::Condition::IfAbsent => "nx",
            kvcore::Condition::IfPresent => "xx",
            _ => "",
        };
        let (kind, ttl) = self.expiry_args(opts.expiry);
        let books = self.books(key);
        let mut invocation = self.scripts.set.prepare_invoke();
        invocation
            .key(key)
            .key(&books.slide)
            .arg(value.as_bytes())
            .arg(condition)
            .arg(kind)
            .arg(ttl)
            .arg(self.default_ms)
            .arg(self.sliding_flag());
        let (code, pttl, slide): (i64, i64, i64) = self.run_write(key, invocation).await?;
        let outcome = match code {
            0 => return Ok(SetOutcome::NotSet),
            1 => SetOutcome::Created,
            _ => SetOutcome::Replaced,
        };
        self.written(key, Some(&Found { value, pttl, slide }));
        Ok(outcome)
    }

    /// Adds `items` (keys, then values) and their slide hash to a batch invocation;
    /// the keys share one slot.
    pub(super) fn batch<'a>(
        &self,
        invocation: &mut redis::ScriptInvocation<'a>,
        items: &[(String, Bytes)],
    ) -> Result<()> {
        for (key, _) in items {
            refuse_reserved(key)?;
            invocation.key(key.as_str());
        }
        let books = self.books(items.first().map_or("", |(k, _)| k.as_str()));
        invocation.key(&books.slide);
        for (_, value) in items {
            invocation.arg(value.as_bytes());
        }
        Ok(())
    }

    /// Forgets `items`' keys locally after a batch write.
    pub(super) fn written_all(&self, items: &[(String, Bytes)]) {
        for (key, _) in items {
            self.written(key, None);
        }
    }

    pub(in crate::backend) async fn set_many(
        &self,
        items: Vec<(String, Bytes)>,
        expiry: Expiry,
    ) -> Result<Written> {
        for (key, _) in &items {
            refuse_reserved(key)?;
        }
        let (_, ttl) = match expiry {
            Expiry::Keep => ("ttl", self.default_ms),
            other => self.expiry_args(other),
        };
        // Over a cluster, one script per slot: `PUT /keys` is not all-or-nothing.
        let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
        let groups: Vec<Vec<(String, Bytes)>> = self
            .by_slot(&keys)
            .into_iter()
            .map(|group| group.into_iter().map(|i| items[i].clone()).collect())
            .collect();
        let mut writes = Vec::with_capacity(groups.len());
        for group in &groups {
            writes.push(self.set_slot(group, ttl));
        }
        let results: Vec<Result<usize>> = futures_util::stream::iter(writes)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        let mut stored = 0;
        for r in results {
            stored += r?;
        }
        // The data lives in Redis; dropping a local copy evicts nothing from it.
        Ok(Written { stored, evicted: 0 })
    }

    /// Writes `group`, keys of one slot, with one script.
    async fn set_slot(&self, group: &[(String, Bytes)], ttl: u64) -> Result<usize> {
        let mut invocation = self.scripts.set_many.prepare_invoke();
        self.batch(&mut invocation, group)?;
        invocation
            .arg(ttl)
            .arg(self.default_ms)
            .arg(self.sliding_flag());
        let stored: usize = self.run_write(&group[0].0, invocation).await?;
        self.written_all(group);
        Ok(stored)
    }

    pub(in crate::backend) async fn insert_all_absent(
        &self,
        items: Vec<(String, Bytes)>,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<bool>> {
        self.one_slot(&items)?;
        let mut invocation = self.scripts.insert_absent.prepare_invoke();
        self.batch(&mut invocation, &items)?;
        invocation.arg(self.default_ms);
        let anchor = items.first().map_or("", |(k, _)| k.as_str());
        let outcome = self.run_once(anchor, invocation, idem).await?;
        let done = outcome.value == "1";
        if done {
            self.written_all(&items);
        }
        Ok(Applied {
            value: done,
            replayed: outcome.replayed,
        })
    }

    pub(in crate::backend) async fn update_all_present(
        &self,
        items: Vec<(String, Bytes)>,
    ) -> Result<bool> {
        self.one_slot(&items)?;
        let mut invocation = self.scripts.update_present.prepare_invoke();
        self.batch(&mut invocation, &items)?;
        invocation.arg(self.default_ms);
        let anchor = items.first().map_or("", |(k, _)| k.as_str());
        let done: i64 = self.run_write(anchor, invocation).await?;
        if done == 1 {
            self.written_all(&items);
        }
        Ok(done == 1)
    }

    /// Runs a single-key script over `key` and the slide hash; forgets the key locally.
    pub(super) async fn change(&self, script: &Script, key: &str, args: &[String]) -> Result<bool> {
        if reserved(key) {
            return Ok(false);
        }
        let books = self.books(key);
        let mut invocation = script.prepare_invoke();
        invocation.key(key).key(&books.slide);
        for arg in args {
            invocation.arg(arg.as_str());
        }
        let done: i64 = self.run_write(key, invocation).await?;
        self.written(key, None);
        Ok(done == 1)
    }

    pub(in crate::backend) async fn delete(&self, key: &str) -> Result<bool> {
        self.change(&self.scripts.delete, key, &[]).await
    }

    pub(in crate::backend) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let args = [
            millis(ttl).to_string(),
            self.default_ms.to_string(),
            self.sliding_flag().to_owned(),
        ];
        self.change(&self.scripts.expire, key, &args).await
    }

    pub(in crate::backend) async fn clear_ttl(&self, key: &str) -> Result<bool> {
        self.change(&self.scripts.persist, key, &[]).await
    }

    pub(in crate::backend) async fn incr(
        &self,
        key: &str,
        by: i64,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<i64>> {
        refuse_reserved(key)?;
        let books = self.books(key);
        let mut invocation = self.scripts.incr.prepare_invoke();
        invocation
            .key(key)
            .key(&books.slide)
            .arg(by)
            .arg(self.default_ms);
        let outcome = self.run_once(key, invocation, idem).await?;
        self.written(key, None);
        Ok(Applied {
            value: parse_outcome(&outcome.value)?,
            replayed: outcome.replayed,
        })
    }

    pub(in crate::backend) async fn clear(&self) -> Result<usize> {
        let n = if self.con.is_cluster() {
            self.cluster_clear().await?
        } else {
            let books = self.books(HITS_KEY);
            let mut invocation = self.scripts.clear.prepare_invoke();
            invocation
                .key(HITS_KEY)
                .key(&books.slide)
                .key(&books.idem)
                .key(&books.idem_expiry);
            let n: i64 = self.run_write(HITS_KEY, invocation).await?;
            n.max(0).unsigned_abs() as usize
        };
        // Every slot is bumped, so no read in flight caches what was there before.
        let mut slots: Vec<_> = self.epochs.iter().map(|s| s.lock()).collect();
        for slot in &mut slots {
            **slot += 1;
        }
        let _ = self.cache.clear();
        drop(slots);
        self.touches.lock().clear();
        Ok(n)
    }
}
