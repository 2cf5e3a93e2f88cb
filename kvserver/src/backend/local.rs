//! [`Local`]: the data in a kvcore store of this process.
//!
//! Reads run in place: a kvcore read takes one shard's read lock for a moment. Writes
//! run in place too, except under `--fsync always`, where a write waits for its
//! journal record to reach the disk and so runs on tokio's blocking pool instead of
//! stalling an async worker.

use std::sync::Arc;
use std::time::Duration;

use kvcore::persist::{JournalStats, SnapshotInfo};
use kvcore::{
    Expiry, JsonText, Mode, Pattern, PersistentStore, ScanPage, SetOptions, SetOutcome, Stats,
    Store,
};

use super::{Result, Written};
use crate::error::ApiError;

/// A kvcore store and the hit counters, in this process.
#[derive(Debug)]
pub struct Local {
    store: Arc<dyn Store<JsonText>>,
    hits: Arc<dyn Store<i64>>,
    /// The persistent stores among the two, to flush at shutdown.
    durable: Vec<Durable>,
    /// Writes wait for the disk (`--fsync always`).
    blocking_writes: bool,
}

/// A persistent store, kept to flush it and to report on its files.
#[derive(Debug, Clone)]
pub enum Durable {
    /// The key-value store.
    Values(PersistentStore<JsonText>),
    /// The hit counters.
    Hits(PersistentStore<i64>),
}

impl Local {
    /// A backend over `store` and `hits`; `durable` lists those of them that persist.
    pub fn new(
        store: Arc<dyn Store<JsonText>>,
        hits: Arc<dyn Store<i64>>,
        durable: Vec<Durable>,
        blocking_writes: bool,
    ) -> Local {
        Local {
            store,
            hits,
            durable,
            blocking_writes,
        }
    }

    /// The key-value store.
    pub fn store(&self) -> &dyn Store<JsonText> {
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
        f: impl FnOnce(&dyn Store<JsonText>) -> kvcore::Result<R> + Send + 'static,
    ) -> Result<R> {
        let store = Arc::clone(&self.store);
        self.run(move || f(&*store)).await
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> kvcore::Result<R> + Send + 'static,
    ) -> Result<R> {
        if self.blocking_writes {
            tokio::task::spawn_blocking(f)
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::from)
        } else {
            f().map_err(ApiError::from)
        }
    }

    pub(super) async fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(JsonText, Option<Duration>)>> {
        Ok(self.store.get_with_ttl(key))
    }

    pub(super) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<JsonText>>> {
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
        value: JsonText,
        opts: SetOptions,
    ) -> Result<SetOutcome> {
        let key = key.to_owned();
        self.write(move |s| s.set(&key, value, opts)).await
    }

    /// Writes every pair and counts the evictions it caused: the store's eviction count
    /// across the write, at most one per key the write created (only those need room).
    /// kvcore reports evictions as a running total, so a concurrent write that evicts
    /// at the same moment may be counted here too; the bound keeps the count within
    /// what this write can have caused.
    pub(super) async fn set_many(
        &self,
        items: Vec<(String, JsonText)>,
        expiry: Expiry,
    ) -> Result<Written> {
        if self.store.mode().capacity.is_none() {
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
        let evicted = evictions.min(u64::try_from(new).unwrap_or(u64::MAX));
        Ok(Written { stored, evicted })
    }

    pub(super) async fn insert_all_absent(&self, items: Vec<(String, JsonText)>) -> Result<bool> {
        self.write(move |s| s.insert_all_absent(items, Expiry::Default))
            .await
    }

    pub(super) async fn update_all_present(&self, items: Vec<(String, JsonText)>) -> Result<bool> {
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

    pub(super) async fn persist(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |s| s.persist(&key)).await
    }

    pub(super) async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let key = key.to_owned();
        self.write(move |s| s.incr(&key, by)).await
    }

    pub(super) async fn clear(&self) -> Result<usize> {
        self.write(|s| s.clear()).await
    }

    pub(super) async fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<JsonText>> {
        Ok(self.store.scan(pattern, cursor, limit)?)
    }

    pub(super) async fn hit(&self, path: &str) -> Result<i64> {
        let hits = Arc::clone(&self.hits);
        let path = path.to_owned();
        self.run(move || hits.incr(&path, 1)).await
    }

    pub(super) async fn hits(&self) -> Result<Vec<(String, i64)>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.hits.scan(None, cursor.as_deref(), 10_000)?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
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
