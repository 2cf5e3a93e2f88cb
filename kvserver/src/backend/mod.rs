//! Where the data lives: the [`Backend`] every route goes through.
//!
//! Two implementations, chosen at start-up:
//!
//! - [`Local`]: a kvcore store in this process — in memory, persisted in the data
//!   directory, or a read-only dataset — with the hit counters in a store of their own.
//! - [`RedisCache`]: the data in Redis, one server (`--backend redis://...`) or a
//!   Redis Cluster (`--backend redis+cluster://...`), with a local kvcore LRU store in
//!   front of it as a read-through cache.
//!
//! Values are bytes here ([`kvcore::Bytes`]), kept exactly as written: an HTTP write
//! stores its compact JSON text, and each front door renders what it reads (the HTTP
//! routes through `body::StoredValue`).
//!
//! The operations are the server's vocabulary: what the routes need, each `async`
//! and failing with the [`ApiError`] the client should see (`503 unavailable` when
//! Redis does not answer before anything was sent, `504 outcome_unknown` when a write
//! was sent and its answer did not come in time, for instance). The writes that are
//! not idempotent (`incr`, `insert_all_absent`, `hit`) take an [`IdempotencyKey`] and
//! say whether their outcome is a replay. An enum rather than a trait object:
//! there are exactly two implementations, and `async fn` dispatch through an enum
//! needs no boxing.

mod local;
mod redis_cache;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kvcore::{Bytes, Expiry, Mode, Paging, Pattern, ScanPage, SetOptions, SetOutcome, Stats};

pub use local::{Durable, Local};
pub use redis_cache::{
    DEFAULT_CACHE_CAPACITY, RESERVED_PREFIX, RedisCache, RedisOptions, hash_slot, slot_tag,
};

use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;

/// Pairs per page when [`Backend::all`] reads every pair.
const ALL_PAGE: usize = 10_000;

/// A result of a backend operation.
pub type Result<T> = std::result::Result<T, ApiError>;

/// What [`Backend::set_many`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// How many pairs were written.
    pub stored: usize,
    /// How many live keys the store evicted to make room for them under `--capacity`
    /// or `--max-memory`: the store's eviction count across the write (under
    /// `--capacity` alone, at most one per key the write created), so a concurrent
    /// evicting write may be counted too. Always 0 over Redis, where the data is not
    /// evicted by kvserver.
    pub evicted: u64,
}

tokio::task_local! {
    /// Set once the request running in this task has started a write.
    static WRITE_STARTED: Arc<AtomicBool>;
}

/// Runs `request` (a request's handler) recording in `started` whether it started
/// a write: sent it to Redis, or began it on the local store. A request cut short
/// before that applied nothing; after it, the write may complete anyway.
pub async fn track_writes<F: Future>(started: Arc<AtomicBool>, request: F) -> F::Output {
    WRITE_STARTED.scope(started, request).await
}

/// Records that the current request starts a write (see [`track_writes`]).
fn write_starts() {
    let _ = WRITE_STARTED.try_with(|started| started.store(true, Ordering::Relaxed));
}

/// The outcome of a write that is not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied<T> {
    /// What the write returned (the first time, for a replay).
    pub value: T,
    /// Whether this is the recorded outcome of an earlier request with the same
    /// `Idempotency-Key`, rather than a write made now.
    pub replayed: bool,
}

impl<T> Applied<T> {
    /// A write made now.
    pub fn now(value: T) -> Applied<T> {
        Applied {
            value,
            replayed: false,
        }
    }
}

/// The store behind the routes.
#[derive(Debug)]
pub enum Backend {
    /// A kvcore store in this process.
    Local(Local),
    /// Redis, with a local read-through cache (boxed: it is much the larger).
    Redis(Box<RedisCache>),
}

/// Dispatches a call to whichever backend this is.
macro_rules! each {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            Backend::Local($b) => $call,
            Backend::Redis($b) => $call,
        }
    };
}

impl Backend {
    /// The value of `key` and its remaining TTL, if the key is live. A read: restarts
    /// a sliding TTL.
    pub async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        each!(self, b => b.get_with_ttl(key).await)
    }

    /// The values of `keys`, in order. A read: restarts sliding TTLs.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        each!(self, b => b.get_many(keys).await)
    }

    /// Whether `key` is live. Not a read: restarts nothing.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        each!(self, b => b.contains(key).await)
    }

    /// The remaining TTL of `key`: `None` if it is not live, `Some(None)` if it has no
    /// TTL. Restarts nothing.
    pub async fn ttl(&self, key: &str) -> Result<Option<Option<Duration>>> {
        each!(self, b => b.ttl(key).await)
    }

    /// Writes `value` under `key` as `opts` say.
    pub async fn set(&self, key: &str, value: Bytes, opts: SetOptions) -> Result<SetOutcome> {
        each!(self, b => b.set(key, value, opts).await)
    }

    /// Writes every pair, overwriting; says how many were written and how many keys
    /// were evicted to make room.
    pub async fn set_many(&self, items: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Written> {
        each!(self, b => b.set_many(items, expiry).await)
    }

    /// Inserts every pair if no key exists, else nothing; returns whether it did.
    /// With `idem`, a retry of the same request gets the first outcome.
    pub async fn insert_all_absent(
        &self,
        items: Vec<(String, Bytes)>,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<bool>> {
        each!(self, b => b.insert_all_absent(items, idem).await)
    }

    /// Replaces every pair, with the default TTL, if every key exists, else nothing;
    /// returns whether it did.
    pub async fn update_all_present(&self, items: Vec<(String, Bytes)>) -> Result<bool> {
        each!(self, b => b.update_all_present(items).await)
    }

    /// Removes `key`; returns whether it was live.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        each!(self, b => b.delete(key).await)
    }

    /// Gives `key` a TTL; returns whether it was live.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        each!(self, b => b.expire(key, ttl).await)
    }

    /// Removes the TTL of `key`; returns whether it was live.
    pub async fn clear_ttl(&self, key: &str) -> Result<bool> {
        each!(self, b => b.clear_ttl(key).await)
    }

    /// Adds `by` to the integer under `key` (a missing key counts as 0). With `idem`,
    /// a retry of the same request gets the first outcome.
    pub async fn incr(
        &self,
        key: &str,
        by: i64,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<i64>> {
        each!(self, b => b.incr(key, by, idem).await)
    }

    /// Removes every key; returns how many there were.
    pub async fn clear(&self) -> Result<usize> {
        each!(self, b => b.clear().await)
    }

    /// One page of live pairs whose keys match `pattern`. A read: restarts sliding TTLs.
    pub async fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<Bytes>> {
        each!(self, b => b.scan(pattern, cursor, limit).await)
    }

    /// Every live pair, page by page. A read: restarts sliding TTLs.
    pub async fn all(&self) -> Result<Vec<(String, Bytes)>> {
        let mut pairs = Vec::new();
        let mut paging = Paging::new();
        while let Some(cursor) = paging.cursor() {
            let page = self.scan(None, cursor, ALL_PAGE).await?;
            paging.advance(&page);
            pairs.extend(page.items);
        }
        Ok(pairs)
    }

    /// Adds one hit to the counter of `path`; returns the new count. A new path when
    /// `--max-counters` counters exist is `507 counters_full`. With `idem`, a retry of
    /// the same request gets the first outcome.
    pub async fn hit(&self, path: &str, idem: Option<&IdempotencyKey>) -> Result<Applied<i64>> {
        each!(self, b => b.hit(path, idem).await)
    }

    /// How many paths have a hit counter.
    pub async fn counters(&self) -> Result<usize> {
        each!(self, b => b.counters().await)
    }

    /// The most paths that get a hit counter (`--max-counters`).
    pub fn max_counters(&self) -> usize {
        each!(self, b => b.max_counters())
    }

    /// Every hit counter, in no particular order.
    pub async fn hits(&self) -> Result<Vec<(String, i64)>> {
        each!(self, b => b.hits().await)
    }

    /// The number of live keys.
    pub async fn len(&self) -> Result<usize> {
        each!(self, b => b.len().await)
    }

    /// Hit, miss, eviction and expiration counts (see the README for what each counts
    /// with `--backend`).
    pub fn stats(&self) -> Stats {
        each!(self, b => b.stats())
    }

    /// How the store is configured.
    pub fn mode(&self) -> Mode {
        each!(self, b => b.mode())
    }

    /// Bytes of keys and values held under `--max-memory` (the local cache's with
    /// `--backend`); `None` without it.
    pub fn weight(&self) -> Option<u64> {
        each!(self, b => b.weight())
    }

    /// `Ok` when the backend can serve: for a local store, when its data directory
    /// can be written; for Redis, when it answers a `PING` in time (a cluster: when
    /// every master reports `cluster_state:ok`).
    pub async fn ready(&self) -> Result<()> {
        match self {
            Backend::Local(b) => b.writable(),
            Backend::Redis(b) => b.ping().await,
        }
    }

    /// Background upkeep, called on a timer: purges expired keys, and with Redis
    /// sends the TTL restarts that local cache hits owe it.
    pub async fn upkeep(&self, budget: usize) {
        each!(self, b => b.upkeep(budget).await)
    }

    /// Makes what was written durable: fsyncs the journals of a local store, sends
    /// outstanding TTL restarts to Redis. Called at shutdown.
    pub async fn sync(&self) -> anyhow::Result<()> {
        each!(self, b => b.sync().await)
    }

    /// The Redis cache, when this is one.
    pub fn redis(&self) -> Option<&RedisCache> {
        match self {
            Backend::Redis(b) => Some(b),
            Backend::Local(_) => None,
        }
    }

    /// The local store, when this is one.
    pub fn local(&self) -> Option<&Local> {
        match self {
            Backend::Local(b) => Some(b),
            Backend::Redis(_) => None,
        }
    }
}
