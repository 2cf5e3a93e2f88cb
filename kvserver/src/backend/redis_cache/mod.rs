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
//! the default TTL), `DELETE /keys`. A write also invalidates what a racing read may
//! be about to cache: each key maps to one of [`EPOCH_SLOTS`] counters, bumped under
//! a short lock by every write, and a read caches its answer only if its slot's
//! counter did not move while it asked Redis.
//!
//! # Layout in Redis
//!
//! Values are compact JSON text under the key itself, with the TTL as the key's
//! `PX` expiry. A value another client wrote that is not JSON reads as a JSON string;
//! keys of other Redis types (hashes, lists...) are not kvserver keys: reads do not
//! see them and listings skip them. Two keys are kvserver's own, under the reserved
//! prefix [`RESERVED_PREFIX`] that `/keys` never lists and refuses to write: the hit
//! counters (a hash, path → count, at most `--max-counters` fields: the script that
//! counts refuses a new path beyond it); with `--sliding`, the TTL lengths of keys
//! written with a TTL other than the default (a hash, key → milliseconds), which a
//! sliding read restarts at, whose entries of keys that expired are swept now and
//! then; and the outcomes of writes sent with an `Idempotency-Key` (a hash, key →
//! `fingerprint:outcome`, and a sorted set of their deadlines by Redis's clock), each
//! written by the script that makes the write, and dropped a few at a time by the
//! next such script once `--idempotency-window` has passed.
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
//! connection manager reconnects by itself, so service resumes when Redis returns.
//! `/readyz` pings Redis.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, UNIX_EPOCH};

use kvcore::cursor::Cursor;
use kvcore::{
    Clock, Expiry, JsonText, MemoryStore, Mode, Pattern, ScanPage, SetOptions, SetOutcome, Stats,
    Store, StoreBuilder, Value,
};
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::sync::OnceCell;

use super::{Applied, Result, Written};

mod cache;
mod call;
mod reads;
mod scripts;
mod writes;

use self::cache::{Cached, Flight, Found, Reply};
use self::scripts::Scripts;
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;

/// Keys starting with this are kvserver's own: never listed, never written by `/keys`.
pub const RESERVED_PREFIX: &str = "__kv__:";
/// The hit counters: a hash of path → count.
const HITS_KEY: &str = "__kv__:hits";
/// With `--sliding`: a hash of key → the TTL length (ms) a read restarts it at, for
/// keys written with a TTL other than the default.
const SLIDE_KEY: &str = "__kv__:ttl";

/// Outcomes of writes sent with an `Idempotency-Key`: a hash of key →
/// `fingerprint:outcome`.
const IDEM_KEY: &str = "__kv__:idem";
/// The deadlines of those outcomes: a sorted set of key → ms since the Unix epoch.
const IDEM_EXPIRY_KEY: &str = "__kv__:idem:expiry";

/// Local cache entries when `--capacity` is not given.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// Keys one `SCAN` call asks for.
const SCAN_COUNT: usize = 1_000;
/// The tag of this backend's listing cursors: kvcore's cursor codec over Redis's
/// `SCAN` cursor and the last key already returned from that cursor's batch (keys of
/// a batch are returned in order).
const CURSOR_TAG: &str = "r2";
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
    /// `redis://[user:password@]HOST:PORT[/DB]`.
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
    /// Largest value served, in bytes of compact JSON.
    pub max_value_bytes: usize,
    /// Most paths with a hit counter.
    pub max_counters: usize,
    /// How long an `Idempotency-Key` outcome is kept.
    pub idempotency_window: Duration,
}

/// The data in Redis, with a local read-through cache.
pub struct RedisCache {
    con: ConnectionManager,
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

/// A value as Redis holds it: JSON text, or (written by another client) anything
/// else, which reads as a JSON string.
fn decode_value(bytes: Vec<u8>) -> JsonText {
    match String::from_utf8(bytes) {
        Ok(text) => JsonText::parse(&text).unwrap_or_else(|_| JsonText::string(&text)),
        Err(e) => JsonText::string(&String::from_utf8_lossy(e.as_bytes())),
    }
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
    /// A cache in front of the Redis at `options.url`. Nothing is sent yet: the
    /// connection is made by the first request, so the server starts (and answers
    /// `503`) while Redis is down. Must be called within a tokio runtime.
    pub fn new(options: RedisOptions) -> anyhow::Result<RedisCache> {
        let client = redis::Client::open(options.url.as_str()).map_err(|e| {
            anyhow::anyhow!(
                "--backend {}: {e}; give it as redis://[:PASSWORD@]HOST:PORT[/DB]",
                redact(&options.url)
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            // A failed connection is retried by the next request, not in a loop
            // that would outlast the request's timeout.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let con = client.get_connection_manager_lazy(config)?;
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
        })
    }

    /// The Redis URL, password removed.
    pub fn url(&self) -> &str {
        &self.url
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
        let outcome = self.run_once(invocation, idem).await?;
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
        let mut invocation = self.scripts.len.prepare_invoke();
        invocation
            .key(HITS_KEY)
            .key(SLIDE_KEY)
            .key(IDEM_KEY)
            .key(IDEM_EXPIRY_KEY);
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

    pub(super) async fn upkeep(&self, budget: usize) {
        self.cache.purge_expired(budget);
        if !self.sliding {
            return;
        }
        if let Err(e) = self.flush_touches().await {
            tracing::debug!(error = %e, "sliding TTL restarts not sent");
        }
        if self
            .upkeeps
            .fetch_add(1, Relaxed)
            .is_multiple_of(SWEEP_EVERY)
            && let Err(e) = self.sweep().await
        {
            tracing::debug!(error = %e, "sliding-length sweep not done");
        }
    }

    /// Sends the sliding TTL restarts owed for cache hits.
    async fn flush_touches(&self) -> Result<()> {
        let keys: Vec<String> = std::mem::take(&mut *self.touches.lock())
            .into_iter()
            .collect();
        for chunk in keys.chunks(TOUCH_BATCH) {
            let mut invocation = self.scripts.touch.prepare_invoke();
            for key in chunk {
                invocation.key(key.as_str());
            }
            invocation.key(SLIDE_KEY).arg(self.default_ms);
            let _: i64 = self.run(invocation).await?;
        }
        Ok(())
    }

    /// Drops one batch of sliding lengths whose keys are gone.
    async fn sweep(&self) -> Result<()> {
        let mut con = self.con.clone();
        let from = self.sweep_cursor.load(Relaxed);
        let (next, fields): (u64, Vec<(String, String)>) = self
            .call(async move {
                redis::cmd("HSCAN")
                    .arg(SLIDE_KEY)
                    .arg(from)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut con)
                    .await
            })
            .await?;
        self.sweep_cursor.store(next, Relaxed);
        if fields.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.sweep.prepare_invoke();
        invocation.key(SLIDE_KEY);
        for (key, _) in &fields {
            invocation.key(key.as_str());
        }
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    pub(super) async fn sync(&self) -> anyhow::Result<()> {
        if self.sliding {
            self.flush_touches().await?;
        }
        Ok(())
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
    fn values_other_clients_wrote_read_as_json_strings() {
        assert_eq!(
            decode_value(b"{\"a\": [1, 2.50]}".to_vec()).as_str(),
            "{\"a\":[1,2.50]}"
        );
        assert_eq!(
            decode_value(b"hello world".to_vec()).as_str(),
            "\"hello world\""
        );
        assert_eq!(decode_value(b"42".to_vec()).as_str(), "42");
        assert_eq!(decode_value(vec![0xff, b'a']).as_str(), "\"\u{fffd}a\"");
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
