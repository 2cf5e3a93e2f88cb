//! [`Local`]: the data in a kvcore store of this process.
//!
//! Reads run in place: a kvcore read takes one shard's read lock for a moment. Writes
//! run in place too, except under `--fsync always`, where a write waits for its
//! journal record to reach the disk and so runs on tokio's blocking pool instead of
//! stalling an async worker.
//!
//! Hit counters are bounded by `--max-counters`: a hit on a path already counted
//! always counts; a new path is refused (`507 counters_full`) once the bound is
//! reached. New paths are admitted one at a time under a lock, so the bound is never
//! exceeded; hits on counted paths take no such lock.
//!
//! Writes sent with an `Idempotency-Key` go through the in-process
//! [`Table`](crate::idempotency::Table): the write and the record of its outcome are
//! made by one closure, on the thread that runs the write, so that a request given up
//! by its client (or cut by `--request-timeout`) still records what it did.

use std::sync::Arc;
use std::time::Duration;

use kvcore::persist::{JournalStats, SnapshotInfo};
use kvcore::{
    Bytes, Expiry, Mode, Pages, Pattern, PersistentStore, ScanPage, SetOptions, SetOutcome, Stats,
    Store,
};
use parking_lot::Mutex;

use super::{Applied, Result, Written};
use crate::error::ApiError;
use crate::idempotency::{Begin, IdempotencyKey, Table};

/// A kvcore store and the hit counters, in this process.
#[derive(Debug)]
pub struct Local {
    store: Arc<dyn Store<Bytes>>,
    hits: Arc<dyn Store<i64>>,
    /// The persistent stores among the two, to flush at shutdown.
    durable: Vec<Durable>,
    /// Writes wait for the disk (`--fsync always`).
    blocking_writes: bool,
    /// The most paths that get a counter.
    max_counters: usize,
    /// Held while a new path gets its counter, so that two new paths at once cannot
    /// both take the last place. A plain mutex, held for a count and one write on a
    /// blocking or in-place call, never across an `.await`.
    new_counter: Arc<Mutex<()>>,
    /// Outcomes of writes sent with an `Idempotency-Key`.
    idempotency: Arc<Table>,
}

/// A persistent store, kept to flush it and to report on its files.
#[derive(Debug, Clone)]
pub enum Durable {
    /// The key-value store.
    Values(PersistentStore<Bytes>),
    /// The hit counters.
    Hits(PersistentStore<i64>),
}

impl Local {
    /// A backend over `store` and `hits`; `durable` lists those of them that persist.
    /// At most `max_counters` paths get a hit counter; `idempotency` keeps the outcomes
    /// of writes sent with an `Idempotency-Key`.
    pub fn new(
        store: Arc<dyn Store<Bytes>>,
        hits: Arc<dyn Store<i64>>,
        durable: Vec<Durable>,
        blocking_writes: bool,
        max_counters: usize,
        idempotency: Table,
    ) -> Local {
        Local {
            store,
            hits,
            durable,
            blocking_writes,
            max_counters,
            new_counter: Arc::new(Mutex::new(())),
            idempotency: Arc::new(idempotency),
        }
    }

    /// The key-value store.
    pub fn store(&self) -> &dyn Store<Bytes> {
        &*self.store
    }

    /// Journal and snapshot figures of the key-value store, when it persists.
    pub fn persistence(&self) -> Option<(JournalStats, SnapshotInfo)> {
        self.durable.iter().find_map(|d| match d {
            Durable::Values(s) => Some((s.journal_stats(), s.snapshot_info())),
            Durable::Hits(_) => None,
        })
    }

    /// Runs a write of the key-value store (on the blocking pool when it waits for
    /// the disk).
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store<Bytes>) -> kvcore::Result<R> + Send + 'static,
    ) -> Result<R> {
        let store = Arc::clone(&self.store);
        self.run(move || f(&*store).map_err(ApiError::from)).await
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        super::write_starts();
        if self.blocking_writes {
            tokio::task::spawn_blocking(f)
                .await
                .map_err(ApiError::internal)?
        } else {
            f()
        }
    }

    /// Runs a write that is not idempotent; with `idem`, through the idempotency table.
    /// The outcome is recorded as text (`encode`), by the closure that writes.
    async fn once<R: Send + 'static>(
        &self,
        idem: Option<&IdempotencyKey>,
        f: impl FnOnce() -> Result<R> + Send + 'static,
        encode: fn(&R) -> String,
        decode: fn(&str) -> Option<R>,
    ) -> Result<Applied<R>> {
        let Some(idem) = idem else {
            return self.run(f).await.map(Applied::now);
        };
        match self.idempotency.begin(idem) {
            Begin::Run => {}
            Begin::Replay(outcome) => {
                let value = decode(&outcome).ok_or_else(|| {
                    ApiError::internal(format!("unreadable recorded outcome {outcome:?}"))
                })?;
                return Ok(Applied {
                    value,
                    replayed: true,
                });
            }
            Begin::InProgress => return Err(ApiError::idempotency_key_in_use()),
            Begin::Mismatch => return Err(ApiError::idempotency_key_reused()),
        }
        let table = Arc::clone(&self.idempotency);
        let idem = idem.clone();
        self.run(move || {
            let result = f();
            table.finish(&idem, result.as_ref().ok().map(encode).as_deref());
            result
        })
        .await
        .map(Applied::now)
    }

    pub(super) async fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<Duration>)>> {
        Ok(self.store.get_with_ttl(key))
    }

    pub(super) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(self.store.get_many(keys))
    }

    pub(super) async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.store.contains(key))
    }

    pub(super) async fn ttl(&self, key: &str) -> Result<Option<Option<Duration>>> {
        Ok(self.store.ttl(key))
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: Bytes,
        opts: SetOptions,
    ) -> Result<SetOutcome> {
        let key = key.to_owned();
        self.write(move |s| s.set(&key, value, opts)).await
    }

    /// Writes every pair and counts the evictions it caused: the store's eviction count
    /// across the write; under `--capacity` alone at most one per key the write created
    /// (only those need room), while under `--max-memory` one value may need several
    /// evicted. kvcore reports evictions as a running total, so a concurrent write that
    /// evicts at the same moment may be counted here too; the bound keeps the count
    /// within what this write can have caused.
    pub(super) async fn set_many(
        &self,
        items: Vec<(String, Bytes)>,
        expiry: Expiry,
    ) -> Result<Written> {
        let mode = self.store.mode();
        if mode.capacity.is_none() && mode.max_weight.is_none() {
            let stored = self.write(move |s| s.set_many(items, expiry)).await?;
            return Ok(Written { stored, evicted: 0 });
        }
        let new = items
            .iter()
            .filter(|(k, _)| !self.store.contains(k))
            .count();
        let before = self.store.stats().evictions;
        let stored = self.write(move |s| s.set_many(items, expiry)).await?;
        let evictions = self.store.stats().evictions.saturating_sub(before);
        let evicted = match mode.max_weight {
            Some(_) => evictions,
            None => evictions.min(u64::try_from(new).unwrap_or(u64::MAX)),
        };
        Ok(Written { stored, evicted })
    }

    pub(super) async fn insert_all_absent(
        &self,
        items: Vec<(String, Bytes)>,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<bool>> {
        let store = Arc::clone(&self.store);
        self.once(
            idem,
            move || Ok(store.insert_all_absent(items, Expiry::Default)?),
            |done| if *done { "1" } else { "0" }.to_owned(),
            |text| Some(text == "1"),
        )
        .await
    }

    pub(super) async fn update_all_present(&self, items: Vec<(String, Bytes)>) -> Result<bool> {
        self.write(move |s| s.update_all_present(items, Expiry::Default))
            .await
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |s| s.delete(&key)).await
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |s| s.expire(&key, ttl)).await
    }

    pub(super) async fn clear_ttl(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |s| s.clear_ttl(&key)).await
    }

    pub(super) async fn incr(
        &self,
        key: &str,
        by: i64,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<i64>> {
        let store = Arc::clone(&self.store);
        let key = key.to_owned();
        self.once(
            idem,
            move || Ok(store.incr(&key, by)?),
            i64::to_string,
            |text| text.parse().ok(),
        )
        .await
    }

    pub(super) async fn clear(&self) -> Result<usize> {
        self.write(|s| s.clear()).await
    }

    pub(super) async fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<Bytes>> {
        Ok(self.store.scan(pattern, cursor, limit)?)
    }

    pub(super) async fn hit(
        &self,
        path: &str,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<i64>> {
        let hits = Arc::clone(&self.hits);
        let new_counter = Arc::clone(&self.new_counter);
        let max = self.max_counters;
        let path = path.to_owned();
        self.once(
            idem,
            move || {
                // Counters are never removed, so a path counted now stays counted.
                if hits.contains(&path) {
                    return Ok(hits.incr(&path, 1)?);
                }
                let _one_new_path_at_a_time = new_counter.lock();
                if !hits.contains(&path) && hits.len() >= max {
                    return Err(ApiError::counters_full(max));
                }
                Ok(hits.incr(&path, 1)?)
            },
            i64::to_string,
            |text| text.parse().ok(),
        )
        .await
    }

    pub(super) async fn counters(&self) -> Result<usize> {
        Ok(self.hits.len())
    }

    pub(super) fn max_counters(&self) -> usize {
        self.max_counters
    }

    pub(super) async fn hits(&self) -> Result<Vec<(String, i64)>> {
        let mut all = Vec::new();
        for page in Pages::new(&*self.hits, None, 10_000) {
            all.extend(page?.items);
        }
        Ok(all)
    }

    pub(super) async fn len(&self) -> Result<usize> {
        Ok(self.store.len())
    }

    pub(super) fn stats(&self) -> Stats {
        self.store.stats()
    }

    pub(super) fn mode(&self) -> Mode {
        self.store.mode()
    }

    pub(super) fn weight(&self) -> Option<u64> {
        self.store.weight()
    }

    pub(super) async fn upkeep(&self, budget: usize) {
        self.store.purge_expired(budget);
    }

    /// `Ok` unless a journal cannot be written now (writes are refused meanwhile).
    pub(super) fn writable(&self) -> Result<()> {
        let failed = self.durable.iter().any(|d| match d {
            Durable::Values(s) => s.journal_stats().failed,
            Durable::Hits(s) => s.journal_stats().failed,
        });
        if failed {
            return Err(ApiError::unavailable(
                "the data directory cannot be written (is the disk full?): writes are \
                 refused until it can, reads are served",
                5,
            ));
        }
        Ok(())
    }

    pub(super) async fn sync(&self) -> anyhow::Result<()> {
        let durable = self.durable.clone();
        tokio::task::spawn_blocking(move || {
            for d in durable {
                match d {
                    Durable::Values(s) => s.sync()?,
                    Durable::Hits(s) => s.sync()?,
                }
            }
            Ok(())
        })
        .await?
    }
}
