//! The store trait and the types its operations take and return.
//!
//! [`Store`] is object-safe: a server can hold an `Arc<dyn Store<V>>` and choose the
//! mode at run time. Both [`MemoryStore`](crate::MemoryStore) and
//! [`ReadOnlyStore`](crate::ReadOnlyStore) implement it.

use std::time::Duration;

use crate::compute::{Compute, Computed};
use crate::loader::{Failed, Load, LoadAsync, LoadFuture};
use crate::{Pattern, Result, Value};

/// How a write treats the key's time-to-live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Expiry {
    /// The store's default TTL (or none when the store has no default).
    #[default]
    Default,
    /// Expire this long after the write.
    After(Duration),
    /// Keep the TTL the key already has; a new key gets the default.
    Keep,
    /// No TTL: the key lives until deleted or evicted.
    Never,
}

/// When a write applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Condition {
    /// Always.
    #[default]
    Always,
    /// Only if the key does not exist (Redis `NX`).
    IfAbsent,
    /// Only if the key exists (Redis `XX`).
    IfPresent,
}

/// Options for [`Store::set`], built with noun methods.
///
/// ```
/// use kvcore::{Condition, Expiry, SetOptions};
/// use std::time::Duration;
///
/// let opts = SetOptions::new().ttl(Duration::from_secs(30)).if_absent();
/// assert_eq!(opts.expiry, Expiry::After(Duration::from_secs(30)));
/// assert_eq!(opts.condition, Condition::IfAbsent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SetOptions {
    /// What happens to the key's TTL.
    pub expiry: Expiry,
    /// When the write applies.
    pub condition: Condition,
}

impl SetOptions {
    /// An unconditional write with the store's default TTL.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expire `ttl` after the write: not before, and at most a thousandth of `ttl`
    /// after (see [`clock`](crate::clock)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.expiry = Expiry::After(ttl);
        self
    }

    /// Keep the key's current TTL.
    pub fn keep_ttl(mut self) -> Self {
        self.expiry = Expiry::Keep;
        self
    }

    /// Give the key no TTL, whatever the store's default.
    pub fn no_ttl(mut self) -> Self {
        self.expiry = Expiry::Never;
        self
    }

    /// Write only if the key does not exist.
    pub fn if_absent(mut self) -> Self {
        self.condition = Condition::IfAbsent;
        self
    }

    /// Write only if the key exists.
    pub fn if_present(mut self) -> Self {
        self.condition = Condition::IfPresent;
        self
    }
}

/// What [`Store::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The key was new.
    Created,
    /// The key existed and its value was replaced.
    Replaced,
    /// The condition did not hold; nothing changed.
    NotSet,
}

/// One page of a [`Store::scan`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPage<V> {
    /// Matching pairs, at most the `limit` asked for.
    pub items: Vec<(String, V)>,
    /// Pass this to the next `scan` to continue; `None` when the scan is complete.
    pub next_cursor: Option<String>,
}

/// Where a scan that pages to its end has got to: the cursor to ask the next page
/// with, or the end. Every page after the first is asked for with the cursor the one
/// before it returned; a page without one is the last.
///
/// [`Pages`] walks a [`Store`] with it. Code whose scan is not a `Store` call, such as
/// an async one, walks its pages the same way:
///
/// ```
/// use kvcore::{Paging, SetOptions, Store, StoreBuilder};
///
/// let store = StoreBuilder::new().build::<u64>()?;
/// for i in 0..250 {
///     store.set(&format!("k{i}"), i, SetOptions::new())?;
/// }
/// let (mut paging, mut pages, mut keys) = (Paging::new(), 0, 0);
/// while let Some(cursor) = paging.cursor() {
///     let page = store.scan(None, cursor, 100)?; // or `some_scan(cursor).await?`
///     paging.advance(&page);
///     pages += 1;
///     keys += page.items.len();
/// }
/// assert_eq!(keys, 250);
/// assert!(pages >= 3);
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// The cursor of the next page (`Some(None)`: the first); `None` once the scan
    /// is over.
    next: Option<Option<String>>,
}

impl Default for Paging {
    fn default() -> Self {
        Paging::new()
    }
}

impl Paging {
    /// A scan that has not asked for its first page yet.
    pub fn new() -> Paging {
        Paging { next: Some(None) }
    }

    /// What to ask the next page with: `Some(None)` for the first page, `Some(cursor)`
    /// for a later one; `None` once the last page is in (or the scan was stopped).
    pub fn cursor(&self) -> Option<Option<&str>> {
        self.next.as_ref().map(Option::as_deref)
    }

    /// Records the page just read: the next one is asked for with its cursor, and
    /// after a page without one the scan is over.
    pub fn advance<V>(&mut self, page: &ScanPage<V>) {
        self.next = page.next_cursor.clone().map(Some);
    }

    /// Ends the scan, as after an error: [`Paging::cursor`] is `None` from now on.
    pub fn stop(&mut self) {
        self.next = None;
    }
}

/// The pages of a scan from the first to the last, each asked for with the cursor the
/// one before it returned ([`Paging`]). Ends after the last page, or after the first
/// error.
///
/// ```
/// use kvcore::{Pages, SetOptions, Store, StoreBuilder};
///
/// let store = StoreBuilder::new().build::<u64>()?;
/// for i in 0..250 {
///     store.set(&format!("k{i}"), i, SetOptions::new())?;
/// }
/// let mut keys = 0;
/// for page in Pages::new(&store, None, 100) {
///     keys += page?.items.len();
/// }
/// assert_eq!(keys, 250);
/// # Ok::<(), kvcore::Error>(())
/// ```
pub struct Pages<'a, V> {
    store: &'a dyn Store<V>,
    pattern: Option<&'a Pattern>,
    limit: usize,
    paging: Paging,
}

impl<'a, V: Value> Pages<'a, V> {
    /// The pages of `store`'s keys matching `pattern` (all keys if `None`), at most
    /// `limit` pairs each.
    pub fn new(store: &'a dyn Store<V>, pattern: Option<&'a Pattern>, limit: usize) -> Self {
        Pages {
            store,
            pattern,
            limit,
            paging: Paging::new(),
        }
    }
}

impl<V: Value> Iterator for Pages<'_, V> {
    type Item = Result<ScanPage<V>>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.paging.cursor()?;
        let page = self.store.scan(self.pattern, cursor, self.limit);
        match &page {
            Ok(page) => self.paging.advance(page),
            Err(_) => self.paging.stop(),
        }
        Some(page)
    }
}

impl<V> std::fmt::Debug for Pages<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("limit", &self.limit)
            .field("paging", &self.paging)
            .finish_non_exhaustive()
    }
}

/// Counters since the store was built.
///
/// Hits and misses count the reads that return values: [`Store::get`],
/// [`Store::get_with_ttl`], and [`Store::get_many`] once per key. `contains`, `ttl` and
/// `scan` only look and count nothing.
///
/// # Expirations count removals, not reads
///
/// A read that finds a key whose TTL has passed returns `None` and counts a miss, but
/// does not count an expiration: the key is still in memory. It counts when it is
/// removed, which happens in [`Store::purge_expired`] (call it on a timer), in the
/// little purging that writes and [`Store::len`] do on their way, when a write or
/// delete meets the dead key, or when a bounded store needs room. [`Store::clear`]
/// removes expired keys without counting them.
///
/// Counting at the read instead would count a key twice, once when a read finds it
/// dead and again when it is removed, unless each such read also marked the entry as
/// counted: a write added to the read path, and a shared counter for reads on every
/// core to contend over. So a test that advances a [`ManualClock`](crate::ManualClock)
/// and expects an expiration purges first:
///
/// ```
/// use kvcore::{ManualClock, SetOptions, Store, StoreBuilder};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let store = StoreBuilder::new().clock(clock.clone()).build::<String>()?;
/// store.set("token", "t0k3n".into(), SetOptions::new().ttl(Duration::from_secs(60)))?;
/// clock.advance(Duration::from_secs(61));
///
/// assert_eq!(store.get("token"), None); // dead, so never returned...
/// let stats = store.stats();
/// assert_eq!((stats.misses, stats.expirations), (1, 0)); // ...but not removed yet
///
/// assert_eq!(store.purge_expired(100), 1); // the purge removes it and counts it
/// assert_eq!(store.stats().expirations, 1);
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found a live key.
    pub hits: u64,
    /// Reads that found nothing, or only a key whose TTL had passed.
    pub misses: u64,
    /// Keys removed from memory after their TTL passed (see above: not counted by
    /// the read that first finds a key dead).
    pub expirations: u64,
    /// Live keys removed to make room under the capacity or weight bound.
    pub evictions: u64,
    /// Calls of the removal listener that panicked (see [`listener`](crate::listener)).
    pub listener_panics: u64,
}

/// How a store was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Mode {
    /// Writes are refused.
    pub read_only: bool,
    /// At most this many live keys.
    pub capacity: Option<usize>,
    /// The TTL given to keys written without one.
    pub default_ttl: Option<Duration>,
    /// Reads restart a key's TTL.
    pub sliding: bool,
    /// At most this much weight in all (see [`weight`](crate::weight)).
    pub max_weight: Option<u64>,
}

/// A concurrent key-value store.
///
/// Keys are strings; values are any [`Value`]. Every method takes `&self`: stores are
/// shared between threads by cloning a handle (or through `Arc<dyn Store<V>>`).
///
/// Reads (`get`, `get_many`, `get_with_ttl`, `scan`) count as use: they restart a
/// sliding TTL and refresh the key's place in LRU order. Writes that change a key
/// (`set`, `incr`, `expire`, `persist`, the batch writes) refresh its LRU place too but
/// do not restart a sliding TTL beyond what they set; a write whose condition fails
/// changes nothing, LRU order included. `contains` and `ttl` only look.
///
/// ```
/// use kvcore::{SetOptions, SetOutcome, Store, StoreBuilder};
/// use std::sync::Arc;
///
/// let store: Arc<dyn Store<String>> = Arc::new(StoreBuilder::new().build()?);
/// assert_eq!(store.set("a", "1".into(), SetOptions::new())?, SetOutcome::Created);
/// assert_eq!(store.incr("a", 41)?, 42);
/// assert_eq!(store.get("a").as_deref(), Some("42"));
/// assert_eq!(store.set("a", "x".into(), SetOptions::new().if_absent())?, SetOutcome::NotSet);
/// # Ok::<(), kvcore::Error>(())
/// ```
pub trait Store<V: Value>: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if it is live.
    fn get(&self, key: &str) -> Option<V>;

    /// The value of `key` and its remaining TTL (`None`: no TTL), if it is live.
    fn get_with_ttl(&self, key: &str) -> Option<(V, Option<Duration>)>;

    /// The values of `keys`, in order, `None` where a key is not live.
    fn get_many(&self, keys: &[&str]) -> Vec<Option<V>>;

    /// Whether `key` is live. Does not count as use.
    fn contains(&self, key: &str) -> bool;

    /// The remaining TTL of `key`: `None` if the key is not live, `Some(None)` if it
    /// has no TTL. Does not count as use.
    fn ttl(&self, key: &str) -> Option<Option<Duration>>;

    /// Writes `value` under `key` as `opts` say.
    fn set(&self, key: &str, value: V, opts: SetOptions) -> Result<SetOutcome>;

    /// Writes every pair, overwriting, each with `expiry`. Returns how many were written.
    fn set_many(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<usize>;

    /// Inserts every pair if none of the keys is live; otherwise changes nothing and
    /// returns `false`. Duplicate keys in `items`: the last one wins.
    fn insert_all_absent(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool>;

    /// Replaces every pair if all of the keys are live; otherwise changes nothing and
    /// returns `false`. Duplicate keys in `items`: the last one wins.
    fn update_all_present(&self, items: Vec<(String, V)>, expiry: Expiry) -> Result<bool>;

    /// Removes `key`. Returns whether it was live.
    fn delete(&self, key: &str) -> Result<bool>;

    /// Gives `key` a TTL of `ttl` from now (a sliding key slides by `ttl` from then on).
    /// Returns whether the key was live.
    fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// Removes the TTL of `key`, so that it lives until deleted (Redis calls this
    /// `PERSIST`; kvcli and the HTTP API keep that name). Returns whether the key was
    /// live.
    fn clear_ttl(&self, key: &str) -> Result<bool>;

    /// Adds `by` to the integer under `key` (a missing key counts as 0 and gets the
    /// default TTL; an existing key keeps its TTL). Returns the new value.
    fn incr(&self, key: &str, by: i64) -> Result<i64>;

    /// The number of live keys.
    fn len(&self) -> usize;

    /// Whether there are no live keys.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every key. Returns how many live keys there were.
    fn clear(&self) -> Result<usize>;

    /// Up to `limit` live pairs whose keys match `pattern` (all keys when `None`),
    /// continuing from `cursor` (from the start when `None`).
    ///
    /// A key that is live for the whole scan is returned exactly once across the
    /// pages; keys written or deleted meanwhile may or may not appear. A `limit` of
    /// zero is [`Error::InvalidLimit`](crate::Error::InvalidLimit); a cursor this store
    /// did not issue is [`Error::InvalidCursor`](crate::Error::InvalidCursor).
    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>>;

    /// Hit, miss, expiration and eviction counts (see [`Stats`] for what each counts).
    fn stats(&self) -> Stats;

    /// Removes up to `budget` expired keys and counts them in [`Stats::expirations`];
    /// returns how many it removed. Call it on a timer so memory does not fill with
    /// keys nobody reads again.
    fn purge_expired(&self, budget: usize) -> usize;

    /// How the store was configured.
    fn mode(&self) -> Mode;

    /// The total weight of the entries in memory (expired ones not yet removed
    /// included), or `None` if the store was built without a weigher or a
    /// `max_weight` and does not count weights (see [`weight`](crate::weight)).
    fn weight(&self) -> Option<u64>;

    /// Calls `f` with the live value of `key` (or `None`) and applies what it returns,
    /// atomically against every other writer of the key: `f` runs without any lock
    /// held, and runs again if another write got in between. See
    /// [`compute`](crate::compute) for the details and an example.
    fn compute(
        &self,
        key: &str,
        f: &mut dyn FnMut(Option<&V>) -> Compute<V>,
    ) -> Result<Computed<V>>;

    /// The single flight under the loaders of [`StoreExt`](crate::StoreExt): returns
    /// the value of `key` that a caller already loading it hands on, or leads the
    /// load, running `load` once and storing its value where the key is absent. The
    /// loaders check for a live value first; call them instead of this.
    fn single_flight(
        &self,
        key: &str,
        opts: SetOptions,
        load: &mut Load<'_, V>,
    ) -> std::result::Result<V, Failed>;

    /// [`single_flight`](Self::single_flight) for the async loaders.
    fn single_flight_async<'a>(
        &'a self,
        key: &'a str,
        opts: SetOptions,
        load: LoadAsync<'a, V>,
    ) -> LoadFuture<'a, V>;
}
