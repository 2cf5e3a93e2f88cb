//! [`StoreBuilder`]: configure a store with noun methods, then `build()`.

use std::path::Path;
use std::time::Duration;

use crate::clock::Timer;
use crate::memory::{Config, MAX_TTL};
use crate::persist::{Faults, PersistOptions, ValueCodec};
use crate::{
    Clock, Error, MemoryStore, PersistentStore, ReadOnlyStore, Result, SystemClock, Value,
};

/// Configures and builds a store.
///
/// Modes combine: a default TTL (fixed, or sliding so that reads restart it) with a
/// capacity bound (exact LRU eviction). A read-only store takes none of them.
///
/// ```
/// use kvcore::{Store, StoreBuilder};
/// use std::time::Duration;
///
/// // A 5-minute sliding session store holding at most 10 000 sessions.
/// let sessions = StoreBuilder::new()
///     .default_ttl(Duration::from_secs(300))
///     .sliding(true)
///     .capacity(10_000)
///     .build::<String>()?;
/// assert!(sessions.mode().sliding);
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoreBuilder {
    default_ttl: Option<Duration>,
    sliding: bool,
    capacity: Option<usize>,
    clock: Timer,
    shards: Option<usize>,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreBuilder {
    /// A builder for an unbounded store without TTLs, on the system clock.
    pub fn new() -> Self {
        StoreBuilder {
            default_ttl: None,
            sliding: false,
            capacity: None,
            clock: Timer::new(SystemClock),
            shards: None,
        }
    }

    /// The TTL given to keys written without one (at most [`MAX_TTL`]).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Whether reads restart a key's TTL at the length it was last written with.
    pub fn sliding(mut self, sliding: bool) -> Self {
        self.sliding = sliding;
        self
    }

    /// The most live keys the store holds; writes beyond it evict the least recently
    /// used key of the whole store.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// The clock expiry decisions use (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Timer::new(clock);
        self
    }

    /// How many shards the keys are spread over, rounded up to a power of two
    /// (default: 16 per available core, at least 64).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Builds a writable in-memory store.
    ///
    /// Fails with [`Error::Config`] on a zero capacity or shard count, and with
    /// [`Error::InvalidTtl`] on a zero or over-long default TTL.
    pub fn build<V: Value>(self) -> Result<MemoryStore<V>> {
        if let Some(ttl) = self.default_ttl
            && (ttl.is_zero() || ttl > MAX_TTL)
        {
            return Err(Error::InvalidTtl { ttl });
        }
        if self.capacity == Some(0) {
            return Err(Error::Config("capacity must be at least 1".into()));
        }
        let shards = match self.shards {
            Some(0) => return Err(Error::Config("shards must be at least 1".into())),
            Some(n) if n > 1 << 16 => {
                return Err(Error::Config("shards must be at most 65536".into()));
            }
            Some(n) => n.next_power_of_two(),
            None => {
                let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
                (cores * 16).next_power_of_two().max(64)
            }
        };
        Ok(MemoryStore::new(Config {
            shards,
            clock: self.clock,
            default_ttl: self.default_ttl,
            sliding: self.sliding,
            capacity: self.capacity,
        }))
    }

    /// Builds a writable store kept in the data directory `dir`: recovers what the
    /// directory holds, then journals every change (see [`persist`](crate::persist)).
    ///
    /// Fails with [`Error::Locked`] if another process has the directory open, with
    /// [`Error::MissingFiles`] if a file it must hold is gone, and with
    /// [`Error::Corrupt`] if its files are damaged anywhere but a torn journal tail.
    pub fn open<V: ValueCodec>(
        self,
        dir: impl AsRef<Path>,
        options: PersistOptions,
    ) -> Result<PersistentStore<V>> {
        let store = self.build()?;
        crate::persist::open(store, dir.as_ref(), options, None)
    }

    /// As [`StoreBuilder::open`], with every file operation of the store asking
    /// `faults` first whether it should fail: the seam through which tests make a
    /// disk fill up or fail at a chosen step (see [`Faults`]).
    pub fn open_with_faults<V: ValueCodec>(
        self,
        dir: impl AsRef<Path>,
        options: PersistOptions,
        faults: Faults,
    ) -> Result<PersistentStore<V>> {
        let store = self.build()?;
        crate::persist::open(store, dir.as_ref(), options, Some(faults))
    }

    /// Builds an immutable store over `pairs`. TTLs and capacity do not apply to a
    /// read-only store; setting them is an [`Error::Config`].
    pub fn build_read_only<V: Value>(
        self,
        pairs: impl IntoIterator<Item = (String, V)>,
    ) -> Result<ReadOnlyStore<V>> {
        if self.default_ttl.is_some() || self.sliding || self.capacity.is_some() {
            return Err(Error::Config(
                "a read-only store takes no TTL, sliding or capacity settings".into(),
            ));
        }
        Ok(ReadOnlyStore::new(pairs))
    }
}
