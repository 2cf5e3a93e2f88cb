//! The local cache in front of Redis: cached entries, the epoch slots that keep a
//! racing read from caching a stale answer, and the single flight of concurrent misses.

use super::*;

/// A cached value: what Redis said, and when it was asked.
#[derive(Clone)]
pub(super) struct Cached(Arc<Entry>);

pub(super) struct Entry {
    pub(super) value: Bytes,
    /// The key's deadline in Redis, in ms since the Unix epoch (0: none). A sliding
    /// read served from the cache moves it.
    pub(super) deadline_ms: AtomicU64,
    /// The TTL length a sliding read restarts the key at (0: none).
    pub(super) slide_ms: u64,
}

/// Weighs what it holds for `--max-memory`: the JSON text and the entry around it.
impl Value for Cached {
    fn size_in_bytes(&self) -> usize {
        self.0.value.len() + size_of::<Entry>()
    }
}

/// A key's state as a Redis script reports it: value, `PTTL` (-1: none), and the
/// TTL length a sliding read restarts it at (0: none).
pub(super) type Reply = (Vec<u8>, i64, i64);

/// What one read found, shared with the readers waiting on it.
#[derive(Clone)]
pub(super) struct Found {
    pub(super) value: Bytes,
    pub(super) pttl: i64,
    pub(super) slide: i64,
}

pub(super) type Flight = Arc<OnceCell<Result<Option<Found>>>>;

impl RedisCache {
    pub(super) fn slot(&self, key: &str) -> &Mutex<u64> {
        let i = self.hasher.hash_one(key) as usize % EPOCH_SLOTS;
        &self.epochs[i]
    }

    /// Caches what Redis said of `key`, for at most the cache TTL and never past the
    /// key's deadline.
    pub(super) fn cache_put(&self, key: &str, found: &Found) {
        let keep = if found.pttl > 0 {
            self.cache_ttl
                .min(Duration::from_millis(found.pttl.unsigned_abs()))
        } else {
            self.cache_ttl
        };
        let deadline_ms = if found.pttl > 0 {
            self.now_ms().saturating_add(found.pttl.unsigned_abs())
        } else {
            0
        };
        let entry = Cached(Arc::new(Entry {
            value: found.value.clone(),
            deadline_ms: AtomicU64::new(deadline_ms),
            slide_ms: found.slide.max(0).unsigned_abs(),
        }));
        if let Err(e) = self.cache.set(key, entry, SetOptions::new().ttl(keep)) {
            tracing::debug!(error = %e, "not cached");
        }
    }

    /// Caches a read's answer unless a write to the key's slot happened since `epoch`.
    pub(super) fn cache_if_unchanged(&self, key: &str, epoch: u64, found: &Found) {
        let slot = self.slot(key).lock();
        if *slot == epoch {
            self.cache_put(key, found);
        }
    }

    /// After a write to Redis: stops racing reads from caching, then caches the key's
    /// new state (or forgets the key when it is not known).
    pub(super) fn written(&self, key: &str, now: Option<&Found>) {
        let mut slot = self.slot(key).lock();
        *slot += 1;
        match now {
            Some(found) => self.cache_put(key, found),
            None => {
                let _ = self.cache.delete(key);
            }
        }
    }

    /// A cache hit: the value and remaining TTL; with `--sliding`, the TTL restarts
    /// here and in Redis (by the upkeep).
    pub(super) fn cached(&self, key: &str) -> Option<(Bytes, Option<Duration>)> {
        let Cached(entry) = self.cache.get(key)?;
        let now = self.now_ms();
        let mut deadline = entry.deadline_ms.load(Relaxed);
        if self.sliding && entry.slide_ms > 0 && deadline != 0 {
            deadline = now.saturating_add(entry.slide_ms);
            entry.deadline_ms.store(deadline, Relaxed);
            self.touch(key);
        }
        let ttl =
            (deadline != 0).then(|| Duration::from_millis(deadline.saturating_sub(now).max(1)));
        Some((entry.value.clone(), ttl))
    }

    /// Records that `key`'s sliding TTL must restart in Redis.
    pub(super) fn touch(&self, key: &str) {
        let mut touches = self.touches.lock();
        if touches.len() < TOUCH_MAX {
            touches.insert(key.to_owned());
        }
    }

    pub(super) fn count(&self, found: bool) {
        if found {
            self.hits.fetch_add(1, Relaxed);
        } else {
            self.misses.fetch_add(1, Relaxed);
        }
    }

    /// Reads `key` from Redis, one request however many readers ask at once.
    pub(super) async fn fetch(&self, key: &str) -> Result<Option<Found>> {
        let (flight, leader) = {
            let mut flights = self.flights.lock();
            match flights.get(key) {
                Some(f) => (Arc::clone(f), false),
                None => {
                    let f: Flight = Arc::new(OnceCell::new());
                    flights.insert(key.to_owned(), Arc::clone(&f));
                    (f, true)
                }
            }
        };
        // The first reader removes the flight when done, or when its request is
        // dropped; readers still waiting keep their handle and are answered.
        let _done = leader.then(|| FlightDone {
            flights: &self.flights,
            key,
            flight: &flight,
        });
        flight
            .get_or_init(|| async {
                let epoch = *self.slot(key).lock();
                let found = self.read_now(key, self.sliding).await?;
                if let Some(f) = &found {
                    self.cache_if_unchanged(key, epoch, f);
                }
                Ok(found)
            })
            .await
            .clone()
    }

    /// The value of `key` in Redis and its TTL, asked now (not from the cache);
    /// restarts a sliding TTL when `restart` is true.
    pub(super) async fn read_now(&self, key: &str, restart: bool) -> Result<Option<Found>> {
        let books = self.books(key);
        let mut invocation = self.scripts.read.prepare_invoke();
        invocation
            .key(key)
            .key(&books.slide)
            .arg(if restart { "1" } else { "0" })
            .arg(self.default_ms)
            .arg(self.max_value_bytes);
        let reply: Option<Reply> = self.run_as(Op::Read(&[key]), invocation).await?;
        match reply {
            Some((v, pttl, slide)) => Ok(Some(Found {
                value: self.checked_value(key, v)?,
                pttl,
                slide,
            })),
            None => Ok(None),
        }
    }
}

/// Removes a finished (or abandoned) flight, unless a newer one took its place.
pub(super) struct FlightDone<'a> {
    flights: &'a Mutex<HashMap<String, Flight>>,
    key: &'a str,
    flight: &'a Flight,
}

impl Drop for FlightDone<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock();
        if flights
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            flights.remove(self.key);
        }
    }
}
