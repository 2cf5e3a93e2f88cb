//! [`RedisCache`]: the data in Redis, a local kvcore LRU store in front of it.
//!
//! # Reads
//!
//! A read is answered from the local cache when it holds the key; otherwise from
//! Redis, and the answer is cached for at most `--cache-ttl` (never past the key's
//! own deadline). Concurrent misses on one key make one Redis request: the first
//! asks, the others wait for its answer (single flight). Misses are not cached, so a
//! key created elsewhere is seen at once; a key changed or deleted elsewhere is seen
//! within `--cache-ttl`.
//!
//! # Writes
//!
//! A write goes to Redis first, then to the local cache. Every change that needs more
//! than one Redis command runs as one Lua script, so it is atomic in Redis: the
//! all-or-nothing `/values` writes, conditional sets, `incr` on a new key (which gets
//! the default TTL), `DELETE /keys`. The Redis protocol's in-place changes (`APPEND`,
//! `SETRANGE`...) are a compare-and-set: read, decide, write only if the key still
//! holds what was read, else read again (`compute.rs`). A write also invalidates what a racing read may
//! be about to cache: each key maps to one of [`EPOCH_SLOTS`] counters, bumped under
//! a short lock by every write, and a read caches its answer only if its slot's
//! counter did not move while it asked Redis.
//!
//! # Layout in Redis
//!
//! Values are the stored bytes under the key itself (for a value written over HTTP,
//! its compact JSON text), with the TTL as the key's `PX` expiry. A value another
//! client wrote is served as it is, and the HTTP API shows it as every front door's
//! rule says (`body::StoredValue`); keys of other Redis types (hashes, lists...) are
//! not kvserver keys: reads do not see them and listings skip them. kvserver's own
//! keys start with the reserved
//! prefix [`RESERVED_PREFIX`] that `/keys` never lists and refuses to write: the hit
//! counters (a hash, path → count, at most `--max-counters` fields: the script that
//! counts refuses a new path beyond it); with `--sliding`, the TTL lengths of keys
//! written with a TTL other than the default (a hash, key → milliseconds), which a
//! sliding read restarts at, whose entries of keys that expired are swept now and
//! then; and the outcomes of writes sent with an `Idempotency-Key` (a hash, key →
//! `fingerprint:outcome`, and a sorted set of their deadlines by Redis's clock), each
//! written by the script that makes the write, and dropped a few at a time by the
//! next such script once `--idempotency-window` has passed. Over a Redis Cluster the
//! last two are kept per hash slot, in the slot of the keys they describe, so that
//! every script touches one slot (`layout.rs`).
//!
//! # A Redis Cluster
//!
//! With `redis+cluster://`, the connection (`conn.rs`) is the `redis` crate's
//! cluster client, which routes each script by its first key and follows redirects
//! and failovers. A multi-key read or `PUT /keys` runs one script per slot; an
//! all-or-nothing write across slots is refused before anything is sent; listing,
//! counting, `DELETE /keys` and readiness go to every master (`cluster.rs`).
//!
//! # Large values
//!
//! A value another client stored that is larger than `--max-value-bytes` is not
//! served: the read scripts compare its `STRLEN` to the limit before reading it, so
//! it never crosses the network, and the request fails with `502
//! stored_value_too_large`.
//!
//! # Sliding TTLs
//!
//! A read served by Redis restarts the key's TTL in the same script. A read served
//! by the local cache records the key, and the background upkeep sends the restarts
//! to Redis in batches (within about 0.1 s).
//!
//! # Failures
//!
//! Every Redis call is bounded by `--backend-timeout`. A call that could not be sent
//! (connection refused) or that Redis refused, and a read that fails or takes longer,
//! answer `503 unavailable` with `Retry-After: 1`: nothing was applied, a retry is
//! safe. A write that was sent (or may have been) and got no answer in time, or lost
//! its connection, answers `504 outcome_unknown` without `Retry-After`: Redis may
//! still apply it, so only a retry with the same `Idempotency-Key` is safe. The
//! connection manager (or cluster client) reconnects by itself, so service resumes
//! when Redis returns. `/readyz` pings Redis (over a cluster, asks every master for
//! `cluster_state:ok`). With `--backend-wait-replicas N` a write is answered once N
//! replicas have it (`WAIT`); fewer within the timeout is `504 outcome_unknown`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, UNIX_EPOCH};

use kvcore::cursor::Cursor;
use kvcore::{
    Bytes, Clock, Expiry, MemoryStore, Mode, Pattern, ScanPage, SetOptions, SetOutcome, Stats,
    Store, StoreBuilder, Value,
};
use parking_lot::Mutex;
use redis::{RedisError, Script};
use tokio::sync::OnceCell;

use super::{Applied, Result, Written};

mod cache;
mod call;
mod cluster;
mod compute;
mod conn;
mod layout;
mod reads;
mod scripts;
mod upkeep;
mod writes;

use self::cache::{Cached, Flight, Found, Reply};
use self::conn::Con;
use self::layout::{Books, HITS_KEY, Layout};
pub use self::layout::{slot as hash_slot, slot_tag};
use self::scripts::Scripts;
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;

/// Keys starting with this are kvserver's own: never listed, never written by `/keys`.
pub const RESERVED_PREFIX: &str = "__kv__:";

/// Local cache entries when `--capacity` is not given.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// Keys one `SCAN` call asks for.
const SCAN_COUNT: usize = 1_000;
/// The tag of this backend's listing cursors: kvcore's cursor codec over Redis's
/// `SCAN` cursor and the last key already returned from that cursor's batch (keys of
/// a batch are returned in order).
const CURSOR_TAG: &str = "r2";
/// The tag of listing cursors over a Redis Cluster: the same codec, with the first
/// slot of the master being scanned in the top 16 bits of the number and that
/// master's `SCAN` cursor in the other 48.
const CLUSTER_CURSOR_TAG: &str = "c1";
/// Most `SCAN` calls one listing page makes; a page that reaches it ends early, with a
/// cursor to continue, so that a selective filter over a large keyspace cannot hold a
/// request for long.
const SCAN_CALLS_PER_PAGE: usize = 100;
/// Keys one sliding-restart script call carries.
const TOUCH_BATCH: usize = 1_000;
/// Keys whose restarts may wait for the upkeep; beyond it, restarts are dropped.
const TOUCH_MAX: usize = 100_000;
/// Counters that writes bump to stop racing reads from caching stale answers.
pub const EPOCH_SLOTS: usize = 64;
/// Upkeep rounds between two sweeps of the sliding-length hash.
const SWEEP_EVERY: usize = 600;

/// How to reach Redis and how the local cache behaves.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]HOST:PORT[/DB]`, or
    /// `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT...]` for a Redis Cluster.
    pub url: String,
    /// How long a local copy is trusted.
    pub cache_ttl: Duration,
    /// Most entries in the local cache (default 100 000).
    pub capacity: Option<usize>,
    /// Most bytes of keys and values in the local cache (`--max-memory`).
    pub max_memory: Option<u64>,
    /// How long one Redis call may take.
    pub timeout: Duration,
    /// The TTL written keys get when the request names none.
    pub default_ttl: Option<Duration>,
    /// Reads restart TTLs.
    pub sliding: bool,
    /// The clock of the local cache.
    pub clock: Arc<dyn Clock>,
    /// Largest value served, in bytes as stored.
    pub max_value_bytes: usize,
    /// Most paths with a hit counter.
    pub max_counters: usize,
    /// How long an `Idempotency-Key` outcome is kept.
    pub idempotency_window: Duration,
    /// Replicas a write must reach (Redis `WAIT`) before it is answered; 0: none.
    pub wait_replicas: usize,
}

/// The data in Redis, with a local read-through cache.
pub struct RedisCache {
    con: Con,
    /// Where the bookkeeping keys are (see `layout.rs`).
    layout: Layout,
    /// The URL without its password, for logs and `/info`.
    url: String,
    cache: MemoryStore<Cached>,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    capacity: usize,
    timeout: Duration,
    /// The default TTL in ms (0: none).
    default_ms: u64,
    sliding: bool,
    /// Reads in progress, by key: later readers of the key wait on the first.
    flights: Mutex<HashMap<String, Flight>>,
    /// Write counters; see the module docs. A plain mutex: held for a counter bump and
    /// one cache update, never across an `.await`.
    epochs: Box<[Mutex<u64>]>,
    /// Turns for `compute`: this server's computes of keys that share a turn run one
    /// at a time, so that they do not make each other read again (`compute.rs`).
    turns: Box<[tokio::sync::Mutex<()>]>,
    hasher: RandomState,
    /// Keys read from the cache whose sliding TTL Redis has yet to restart.
    touches: Mutex<HashSet<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Whether the last Redis call failed, to log outages once, not per request.
    down: AtomicBool,
    upkeeps: AtomicUsize,
    /// Where the next sweep of the sliding-length hash starts.
    sweep_cursor: AtomicU64,
    scripts: Scripts,
    max_value_bytes: usize,
    max_counters: usize,
    /// How long an `Idempotency-Key` outcome is kept, in ms.
    idempotency_ms: u64,
    /// Replicas a write must reach before it is answered (0: none).
    wait_replicas: usize,
}

/// What a Redis call does, for the error a failure becomes.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// A read of these keys (named in a `stored_value_too_large` error by position).
    Read(&'a [&'a str]),
    /// A write, or anything else that changes Redis.
    Write,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.url)
            .field("cache_ttl", &self.cache_ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

fn refuse_reserved(key: &str) -> Result<()> {
    if reserved(key) {
        return Err(ApiError::bad_request(format!(
            "keys starting with {RESERVED_PREFIX} are reserved for the server's own use"
        )));
    }
    Ok(())
}

/// Whole milliseconds, rounded up so that a TTL of 0.0005 s is not 0.
fn millis(d: Duration) -> u64 {
    kvcore::ttl::millis(d).max(1)
}

/// An integer outcome of a script, as Redis printed it.
fn parse_outcome(text: &str) -> Result<i64> {
    text.parse()
        .map_err(|_| ApiError::internal(format!("Redis returned {text:?}, not an integer")))
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl RedisCache {
    /// A cache in front of the Redis (or Redis Cluster) at `options.url`. Nothing is
    /// sent yet: the connection is made by the first request, so the server starts
    /// (and answers `503`) while Redis is down. Must be called within a tokio runtime.
    pub fn new(options: RedisOptions) -> anyhow::Result<RedisCache> {
        let (con, layout) = Con::open(&options.url, options.timeout)?;
        let capacity = options.capacity.unwrap_or(DEFAULT_CACHE_CAPACITY);
        let mut builder = StoreBuilder::new()
            .capacity(capacity)
            .clock(Arc::clone(&options.clock));
        if let Some(bytes) = options.max_memory {
            builder = builder.max_weight(bytes);
        }
        let cache = builder.build::<Cached>()?;
        Ok(RedisCache {
            con,
            layout,
            url: redact(&options.url),
            cache,
            clock: options.clock,
            cache_ttl: options.cache_ttl,
            capacity,
            timeout: options.timeout,
            default_ms: options.default_ttl.map_or(0, millis),
            sliding: options.sliding,
            flights: Mutex::new(HashMap::new()),
            epochs: (0..EPOCH_SLOTS).map(|_| Mutex::new(0)).collect(),
            turns: (0..compute::TURNS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: RandomState::new(),
            touches: Mutex::new(HashSet::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            down: AtomicBool::new(false),
            upkeeps: AtomicUsize::new(0),
            sweep_cursor: AtomicU64::new(0),
            scripts: Scripts::new(),
            max_value_bytes: options.max_value_bytes,
            max_counters: options.max_counters,
            idempotency_ms: millis(options.idempotency_window),
            wait_replicas: options.wait_replicas,
        })
    }

    /// The Redis URL, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the data is in a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.con.is_cluster()
    }

    /// The bookkeeping keys beside `key`.
    fn books(&self, key: &str) -> Books {
        self.layout.books(key)
    }

    /// How long a local copy is trusted.
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// Most entries the local cache holds.
    pub fn cache_capacity(&self) -> usize {
        self.capacity
    }

    /// Entries in the local cache now.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Local cache counts: hits (answered locally), misses (Redis asked), evictions.
    pub fn cache_stats(&self) -> Stats {
        self.cache.stats()
    }

    /// Bytes the local cache holds, with `--max-memory`.
    pub(super) fn weight(&self) -> Option<u64> {
        self.cache.weight()
    }

    fn now_ms(&self) -> u64 {
        let since = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    fn sliding_flag(&self) -> &'static str {
        if self.sliding { "1" } else { "0" }
    }

    pub(super) async fn hit(
        &self,
        path: &str,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<i64>> {
        let mut invocation = self.scripts.hit.prepare_invoke();
        invocation.key(HITS_KEY).arg(path).arg(self.max_counters);
        let outcome = self.run_once(HITS_KEY, invocation, idem).await?;
        Ok(Applied {
            value: parse_outcome(&outcome.value)?,
            replayed: outcome.replayed,
        })
    }

    pub(super) async fn counters(&self) -> Result<usize> {
        let mut con = self.con.clone();
        self.call(async move { redis::cmd("HLEN").arg(HITS_KEY).query_async(&mut con).await })
            .await
    }

    pub(super) fn max_counters(&self) -> usize {
        self.max_counters
    }

    pub(super) async fn hits(&self) -> Result<Vec<(String, i64)>> {
        let mut con = self.con.clone();
        self.call(async move {
            redis::cmd("HGETALL")
                .arg(HITS_KEY)
                .query_async(&mut con)
                .await
        })
        .await
    }

    pub(super) async fn len(&self) -> Result<usize> {
        if self.con.is_cluster() {
            return self.cluster_len().await;
        }
        let books = self.books(HITS_KEY);
        let mut invocation = self.scripts.len.prepare_invoke();
        invocation
            .key(HITS_KEY)
            .key(&books.slide)
            .key(&books.idem)
            .key(&books.idem_expiry);
        let n: i64 = self.run(invocation).await?;
        Ok(n.max(0).unsigned_abs() as usize)
    }

    pub(super) fn stats(&self) -> Stats {
        let local = self.cache.stats();
        let mut stats = Stats::default();
        stats.hits = self.hits.load(Relaxed);
        stats.misses = self.misses.load(Relaxed);
        stats.evictions = local.evictions;
        stats.expirations = local.expirations;
        stats
    }

    pub(super) fn mode(&self) -> Mode {
        let mut mode = Mode::default();
        mode.capacity = Some(self.capacity);
        mode.max_weight = self.cache.mode().max_weight;
        mode.default_ttl = (self.default_ms != 0).then(|| Duration::from_millis(self.default_ms));
        mode.sliding = self.sliding;
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for c in [
            Cursor { at: 0, after: None },
            Cursor {
                at: u64::MAX,
                after: Some("user:42/ü".into()),
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode(CURSOR_TAG), CURSOR_TAG), Some(c));
        }
        let memory = Cursor { at: 0, after: None }.encode("k2");
        for bad in ["", "r2", "r2000000000000000g00", &memory] {
            assert_eq!(Cursor::decode(bad, CURSOR_TAG), None, "{bad:?}");
        }
    }

    #[test]
    fn ttls_round_up_to_whole_milliseconds() {
        assert_eq!(millis(Duration::from_micros(500)), 1);
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(1_000_001)), 1001);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://:s3cret@db:6379/2"), "redis://***@db:6379/2");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
