//! [`StoreBuilder`]: configure a store with noun methods, then `build()`.

use std::any::{Any, type_name};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timer;
use crate::listener::{Listener, RemovalCause};
use crate::memory::{Config, MAX_TTL};
use crate::persist::{Faults, PersistOptions, ValueCodec};
use crate::weight::{Weigher, default_weight};
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
    max_weight: Option<u64>,
    /// A `Weigher<V>`, for the `V` it was given for.
    weigher: Option<Typed>,
    /// A `Listener<V>`, for the `V` it was given for.
    listener: Option<Typed>,
    clock: Timer,
    shards: Option<usize>,
}

/// A function over values of one type, kept until `build` names the store's type.
#[derive(Clone)]
struct Typed {
    function: Arc<dyn Any + Send + Sync>,
    values: &'static str,
}

impl fmt::Debug for Typed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fn(.., {})", self.values)
    }
}

impl Typed {
    fn new<V: 'static, F: Any + Send + Sync>(function: F) -> Typed {
        Typed {
            function: Arc::new(function),
            values: type_name::<V>(),
        }
    }

    /// The function, if it was given for values of type `V`.
    fn get<V: 'static, F: Any + Clone>(&self, what: &str) -> Result<F> {
        self.function.downcast_ref::<F>().cloned().ok_or_else(|| {
            Error::Config(format!(
                "the {what} takes values of type {} but the store is built for {}: build \
                 the store for the type the {what} takes",
                self.values,
                type_name::<V>()
            ))
        })
    }
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
            max_weight: None,
            weigher: None,
            listener: None,
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

    /// The most weight the store holds in all; writes beyond it evict the least
    /// recently used keys until the new weight fits (see [`weight`](crate::weight)).
    /// Entries weigh what the [`weigher`](Self::weigher) says, by default
    /// [`default_weight`]: key and value bytes plus the per-entry overhead, so that
    /// the bound is in bytes of memory. Combines with [`capacity`](Self::capacity).
    pub fn max_weight(mut self, max_weight: u64) -> Self {
        self.max_weight = Some(max_weight);
        self
    }

    /// How much each entry weighs (default: [`default_weight`]). It must give the
    /// same weight for the same key and value every time, be cheap, and not panic;
    /// see [`weight`](crate::weight) for when it runs. A weigher without a
    /// [`max_weight`](Self::max_weight) counts weights ([`Store::weight`](crate::Store::weight))
    /// without bounding them.
    ///
    /// The closure's value type must be the store's: annotate it
    /// (`|key: &str, value: &String| ...`) or name it (`.weigher::<String>(..)`).
    pub fn weigher<V: Value>(
        mut self,
        weigher: impl Fn(&str, &V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        let weigher: Weigher<V> = Arc::new(weigher);
        self.weigher = Some(Typed::new::<V, _>(weigher));
        self
    }

    /// A function told of every value that leaves the store: its key, the value and
    /// why ([`RemovalCause`]), after the store has released its locks, exactly once
    /// per removal (see [`listener`](crate::listener)).
    ///
    /// The closure's value type must be the store's: annotate it
    /// (`|key: &str, value: String, cause| ...`) or name it
    /// (`.removal_listener::<String>(..)`).
    pub fn removal_listener<V: Value>(
        mut self,
        listener: impl Fn(&str, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        let listener: Listener<V> = Arc::new(listener);
        self.listener = Some(Typed::new::<V, _>(listener));
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
    /// Fails with [`Error::Config`] on a zero capacity, weight bound or shard count,
    /// or a weigher or listener for another value type, and with
    /// [`Error::InvalidTtl`] on a zero or over-long default TTL.
    pub fn build<V: Value>(self) -> Result<MemoryStore<V>> {
        let listener = self.listener::<V>()?;
        let store = self.build_quiet()?;
        if let Some(listener) = listener {
            store.attach_listener(listener);
        }
        Ok(store)
    }

    fn listener<V: Value>(&self) -> Result<Option<Listener<V>>> {
        self.listener
            .as_ref()
            .map(|l| l.get::<V, Listener<V>>("removal listener"))
            .transpose()
    }

    /// Builds the store without its listener.
    fn build_quiet<V: Value>(self) -> Result<MemoryStore<V>> {
        if let Some(ttl) = self.default_ttl
            && (ttl.is_zero() || ttl > MAX_TTL)
        {
            return Err(Error::InvalidTtl { ttl });
        }
        if self.capacity == Some(0) {
            return Err(Error::Config("capacity must be at least 1".into()));
        }
        if self.max_weight == Some(0) {
            return Err(Error::Config("max_weight must be at least 1".into()));
        }
        let weigher = match (&self.weigher, self.max_weight) {
            (Some(weigher), _) => Some(weigher.get::<V, Weigher<V>>("weigher")?),
            (None, Some(_)) => Some(Arc::new(default_weight::<V>) as Weigher<V>),
            (None, None) => None,
        };
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
            max_weight: self.max_weight,
            weigher,
            listener: None,
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
        self.open_persistent(dir.as_ref(), options, None)
    }

    /// Opens the directory; the listener starts after recovery, which reports nothing.
    fn open_persistent<V: ValueCodec>(
        self,
        dir: &Path,
        options: PersistOptions,
        faults: Option<Faults>,
    ) -> Result<PersistentStore<V>> {
        let listener = self.listener::<V>()?;
        let store = crate::persist::open(self.build_quiet()?, dir, options, faults)?;
        if let Some(listener) = listener {
            store.store().attach_listener(listener);
        }
        Ok(store)
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
        self.open_persistent(dir.as_ref(), options, Some(faults))
    }

    /// Builds an immutable store over `pairs`. TTLs, bounds and listeners do not apply
    /// to a read-only store; setting them is an [`Error::Config`].
    pub fn build_read_only<V: Value>(
        self,
        pairs: impl IntoIterator<Item = (String, V)>,
    ) -> Result<ReadOnlyStore<V>> {
        if self.default_ttl.is_some() || self.sliding || self.capacity.is_some() {
            return Err(Error::Config(
                "a read-only store takes no TTL, sliding or capacity settings".into(),
            ));
        }
        if self.max_weight.is_some() || self.weigher.is_some() || self.listener.is_some() {
            return Err(Error::Config(
                "a read-only store takes no max_weight, weigher or removal listener: nothing \
                 is ever added to it or removed"
                    .into(),
            ));
        }
        Ok(ReadOnlyStore::new(pairs))
    }
}
