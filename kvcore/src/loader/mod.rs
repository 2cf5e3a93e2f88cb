//! Loaders: get a key's value, or load it once however many callers miss at once.
//!
//! [`StoreExt::get_with`] returns the key's live value, or runs `init`, stores what it
//! returns and returns that. [`StoreExt::try_get_with`] does the same for an `init`
//! that can fail, and stores nothing when it does. The `_options` variants store the
//! value with [`SetOptions`] (a TTL, say), and the `_async` variants take a future
//! instead of a closure. Import the trait (`use kvcore::StoreExt`); it covers every
//! [`Store`], `Arc<dyn Store<V>>` included.
//!
//! # Single flight
//!
//! When many threads or tasks miss the same key at once, one of them (the first)
//! runs its `init`; the others wait for it and get the same value, or the same error
//! (an `Arc<E>`, shared). Loaders of different keys never wait for each other, and
//! no lock of the store is held while `init` runs: each key being loaded has a flight
//! of its own in a small table beside the store, and waiters wait on the flight.
//!
//! - A loader that **panics** ends its flight: the panic goes on to its caller, and
//!   each waiter reads the store again and, finding the key still absent, tries
//!   again, so one of them loads it. Nothing is poisoned and nobody is left waiting.
//! - A loading future that is **dropped** (a request cancelled, a `select!` that
//!   took another branch) ends its flight the same way: a waiter takes the load over
//!   with its own future.
//! - A waiter whose error type differs from the leader's, when the leader's load
//!   fails, runs its own `init` rather than receive an error it cannot name.
//! - The value is stored only where the key is absent: if another writer stored one
//!   while `init` ran, that value is kept and returned to every caller of the flight.
//!   A condition in the given `SetOptions` other than the default or `if_absent()` is
//!   an [`Error::Config`].
//! - If the store refuses the value ([`Error::TooHeavy`], [`Error::JournalUnavailable`]
//!   in a persistent store whose disk is full), the loader returns that error, as
//!   `E::from(error)` for `try_get_with`, and its waiters get the same.
//! - `init` must not load the same key from the same store: it would wait for itself.
//!
//! A call counts one hit or one miss in [`Stats`](crate::Stats), as a `get` does,
//! whichever caller loads. In a [`PersistentStore`](crate::PersistentStore) the loaded
//! value is journaled like any write; in a [`ReadOnlyStore`](crate::ReadOnlyStore) a
//! loader returns the value of a key the dataset has and refuses to load any other
//! with [`Error::ReadOnly`], without running `init`.
//!
//! The async loaders need no runtime: they wait with the task's waker, so they work
//! under tokio, async-std, smol or a hand-written executor. Their futures are `Send`
//! when `init` is.
//!
//! ```
//! use kvcore::{StoreExt, StoreBuilder};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::thread;
//!
//! let store = StoreBuilder::new().build::<String>()?;
//! let loads = AtomicUsize::new(0);
//! thread::scope(|s| {
//!     for _ in 0..8 {
//!         s.spawn(|| {
//!             let value = store.get_with("user:1", || {
//!                 loads.fetch_add(1, Ordering::SeqCst);
//!                 "alice".to_string() // a slow database call, once
//!             });
//!             assert_eq!(value.unwrap(), "alice");
//!         });
//!     }
//! });
//! assert_eq!(loads.into_inner(), 1);
//!
//! // A failed load is stored nowhere and shared with the waiters as an Arc.
//! let err = store
//!     .try_get_with("user:2", || Err(kvcore::Error::Config("no such user".into())))
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "invalid configuration: no such user");
//! assert!(!kvcore::Store::contains(&store, "user:2"));
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! The async loaders, here under tokio:
//!
//! ```
//! use kvcore::{SetOptions, StoreBuilder, StoreExt};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kvcore::Result<()> {
//! let cache = StoreBuilder::new().build::<String>()?;
//! let opts = SetOptions::new().ttl(Duration::from_secs(60));
//! let name = cache
//!     .get_with_options_async("user:1", opts, async {
//!         // a database query
//!         "alice".to_string()
//!     })
//!     .await?;
//! assert_eq!(name, "alice");
//! assert!(kvcore::Store::ttl(&cache, "user:1").flatten().is_some());
//! # Ok(())
//! # }
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::{Condition, SetOptions, Store};
use crate::{Error, Result, Value};

pub(crate) mod flight;

use self::flight::{Outcome, Role, Wait};

/// A failed load, as the loaders share it between the callers of one flight: the
/// error `init` returned (or the store's refusal, converted to `init`'s error type),
/// behind an `Arc`. The loaders of [`StoreExt`] turn it back into that type.
#[derive(Clone)]
pub struct Failed(Arc<dyn Any + Send + Sync>);

impl Failed {
    fn new<E: Any + Send + Sync>(error: E) -> Failed {
        Failed(Arc::new(error))
    }

    /// Whether the error is an `E`.
    pub fn is<E: Any>(&self) -> bool {
        self.0.is::<E>()
    }

    /// The error as an `E`, or itself if it is not one.
    pub fn downcast<E: Any + Send + Sync>(self) -> std::result::Result<Arc<E>, Failed> {
        self.0.downcast::<E>().map_err(Failed)
    }
}

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failed").finish_non_exhaustive()
    }
}

/// A loader's `init` and its error type, as [`Store::single_flight`] takes them.
/// [`StoreExt`] builds one; a store calls [`Load::run`] at most once, when it leads
/// the flight.
pub struct Load<'a, V> {
    init: &'a mut dyn FnMut() -> Option<std::result::Result<V, Failed>>,
    refuse: fn(Error) -> Failed,
    accepts: fn(&Failed) -> bool,
}

impl<V> fmt::Debug for Load<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Load").finish_non_exhaustive()
    }
}

impl<V> Load<'_, V> {
    /// Runs `init` (a second call runs nothing and fails).
    pub fn run(&mut self) -> std::result::Result<V, Failed> {
        (self.init)().unwrap_or_else(|| Err(self.refuse(ran_twice())))
    }

    /// The store's refusal of the value, as the caller's error type.
    pub fn refuse(&self, error: Error) -> Failed {
        (self.refuse)(error)
    }

    /// Whether `failed` is of the caller's error type, so it can take it.
    pub fn accepts(&self, failed: &Failed) -> bool {
        (self.accepts)(failed)
    }
}

/// The future a store's [`Store::single_flight_async`] returns.
pub type LoadFuture<'a, V> =
    Pin<Box<dyn Future<Output = std::result::Result<V, Failed>> + Send + 'a>>;

/// An async loader's `init` and its error type, as [`Store::single_flight_async`]
/// takes them.
pub struct LoadAsync<'a, V> {
    init: Option<LoadFuture<'a, V>>,
    refuse: fn(Error) -> Failed,
    accepts: fn(&Failed) -> bool,
}

impl<V> fmt::Debug for LoadAsync<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadAsync").finish_non_exhaustive()
    }
}

impl<V> LoadAsync<'_, V> {
    /// Awaits `init` (a second call awaits nothing and fails).
    pub async fn run(&mut self) -> std::result::Result<V, Failed> {
        match self.init.take() {
            Some(init) => init.await,
            None => Err(self.refuse(ran_twice())),
        }
    }

    /// The store's refusal of the value, as the caller's error type.
    pub fn refuse(&self, error: Error) -> Failed {
        (self.refuse)(error)
    }

    /// Whether `failed` is of the caller's error type, so it can take it.
    pub fn accepts(&self, failed: &Failed) -> bool {
        (self.accepts)(failed)
    }
}

fn ran_twice() -> Error {
    Error::Config("a loader's init was asked to run twice".into())
}

fn refuse_as<E: From<Error> + Send + Sync + 'static>(error: Error) -> Failed {
    Failed::new(E::from(error))
}

/// `failed` as an `E`: always one, since a store hands a caller only errors it
/// [accepts](Load::accepts).
fn shared<E: From<Error> + Send + Sync + 'static>(failed: Failed) -> Arc<E> {
    failed.downcast::<E>().unwrap_or_else(|_| {
        Arc::new(E::from(Error::Config(
            "a loader received an error of another type".into(),
        )))
    })
}

/// A `kvcore::Error` shared by a flight, owned again.
fn owned(error: Arc<Error>) -> Error {
    Arc::try_unwrap(error).unwrap_or_else(|shared| shared.share())
}

/// The loaders, for every [`Store`] (see the [module docs](self)).
pub trait StoreExt<V: Value>: Store<V> {
    /// The live value of `key`, or the value `init` returns, stored with the store's
    /// default TTL. When many callers miss `key` at once, `init` runs once.
    ///
    /// ```
    /// use kvcore::{StoreBuilder, StoreExt};
    ///
    /// let cache = StoreBuilder::new().capacity(1000).build::<u64>()?;
    /// assert_eq!(cache.get_with("answer", || 42)?, 42);
    /// assert_eq!(cache.get_with("answer", || unreachable!("a hit loads nothing"))?, 42);
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    fn get_with(&self, key: &str, init: impl FnOnce() -> V) -> Result<V> {
        match self.get(key) {
            Some(value) => Ok(value),
            None => load_missing(self, key, SetOptions::new(), || Ok(init())).map_err(owned),
        }
    }

    /// As [`get_with`](Self::get_with), storing the value as `opts` say (a TTL, say).
    fn get_with_options(&self, key: &str, opts: SetOptions, init: impl FnOnce() -> V) -> Result<V> {
        match self.get(key) {
            Some(value) => Ok(value),
            None => load_missing(self, key, opts, || Ok(init())).map_err(owned),
        }
    }

    /// The live value of `key`, or the value `init` returns, stored; if `init` fails,
    /// nothing is stored and the error is returned to this caller and to every caller
    /// waiting for the same load, shared as an `Arc`. A store's refusal of the value
    /// comes back as `E::from(error)`.
    ///
    /// ```
    /// use kvcore::{StoreBuilder, StoreExt};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// enum DbError {
    ///     #[error("not found")]
    ///     NotFound,
    ///     #[error(transparent)]
    ///     Store(#[from] kvcore::Error),
    /// }
    ///
    /// let cache = StoreBuilder::new().build::<String>()?;
    /// let err = cache.try_get_with("user:9", || Err(DbError::NotFound)).unwrap_err();
    /// assert!(matches!(*err, DbError::NotFound));
    /// let name = cache.try_get_with("user:1", || Ok::<_, DbError>("alice".into())).unwrap();
    /// assert_eq!(name, "alice");
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    fn try_get_with<E>(
        &self,
        key: &str,
        init: impl FnOnce() -> std::result::Result<V, E>,
    ) -> std::result::Result<V, Arc<E>>
    where
        E: From<Error> + Send + Sync + 'static,
    {
        match self.get(key) {
            Some(value) => Ok(value),
            None => load_missing(self, key, SetOptions::new(), init),
        }
    }

    /// As [`try_get_with`](Self::try_get_with), storing the value as `opts` say.
    fn try_get_with_options<E>(
        &self,
        key: &str,
        opts: SetOptions,
        init: impl FnOnce() -> std::result::Result<V, E>,
    ) -> std::result::Result<V, Arc<E>>
    where
        E: From<Error> + Send + Sync + 'static,
    {
        match self.get(key) {
            Some(value) => Ok(value),
            None => load_missing(self, key, opts, init),
        }
    }

    /// As [`get_with`](Self::get_with), with a future: awaited once however many
    /// callers miss `key` at once.
    fn get_with_async<'a>(
        &'a self,
        key: &'a str,
        init: impl Future<Output = V> + Send + 'a,
    ) -> impl Future<Output = Result<V>> + Send + 'a {
        self.get_with_options_async(key, SetOptions::new(), init)
    }

    /// As [`get_with_async`](Self::get_with_async), storing the value as `opts` say.
    fn get_with_options_async<'a>(
        &'a self,
        key: &'a str,
        opts: SetOptions,
        init: impl Future<Output = V> + Send + 'a,
    ) -> impl Future<Output = Result<V>> + Send + 'a {
        let load = self.try_get_with_options_async(key, opts, async { Ok::<V, Error>(init.await) });
        async move { load.await.map_err(owned) }
    }

    /// As [`try_get_with`](Self::try_get_with), with a future.
    fn try_get_with_async<'a, E>(
        &'a self,
        key: &'a str,
        init: impl Future<Output = std::result::Result<V, E>> + Send + 'a,
    ) -> impl Future<Output = std::result::Result<V, Arc<E>>> + Send + 'a
    where
        E: From<Error> + Send + Sync + 'static,
    {
        self.try_get_with_options_async(key, SetOptions::new(), init)
    }

    /// As [`try_get_with_async`](Self::try_get_with_async), storing the value as
    /// `opts` say.
    fn try_get_with_options_async<'a, E>(
        &'a self,
        key: &'a str,
        opts: SetOptions,
        init: impl Future<Output = std::result::Result<V, E>> + Send + 'a,
    ) -> impl Future<Output = std::result::Result<V, Arc<E>>> + Send + 'a
    where
        E: From<Error> + Send + Sync + 'static,
    {
        async move {
            if let Some(value) = self.get(key) {
                return Ok(value);
            }
            let load = LoadAsync {
                init: Some(Box::pin(async { init.await.map_err(Failed::new) })),
                refuse: refuse_as::<E>,
                accepts: Failed::is::<E>,
            };
            self.single_flight_async(key, opts, load)
                .await
                .map_err(shared::<E>)
        }
    }
}

impl<V: Value, S: Store<V> + ?Sized> StoreExt<V> for S {}

/// The blocking loaders after their read missed: the key's single flight. Kept out
/// of line, so that a hit pays for nothing but its read.
#[inline(never)]
fn load_missing<V, S, E>(
    store: &S,
    key: &str,
    opts: SetOptions,
    init: impl FnOnce() -> std::result::Result<V, E>,
) -> std::result::Result<V, Arc<E>>
where
    V: Value,
    S: Store<V> + ?Sized,
    E: From<Error> + Send + Sync + 'static,
{
    let mut init = Some(init);
    let mut run = || init.take().map(|init| init().map_err(Failed::new));
    let mut load = Load {
        init: &mut run,
        refuse: refuse_as::<E>,
        accepts: Failed::is::<E>,
    };
    store
        .single_flight(key, opts, &mut load)
        .map_err(shared::<E>)
}

/// What the single-flight algorithm needs from a writable store.
pub(crate) trait Loadable<V: Value>: Sync {
    /// The live value of `key`, read as a use but counted as neither hit nor miss;
    /// or, where the key is absent, the key's flight, joined while the key is seen
    /// absent (under the lock that a store of the key takes), so that a flight that
    /// stored the key and ended just before is never missed.
    fn read_or_join(&self, key: &str) -> Joined<'_, V>;
    /// Stores a loaded value where `key` is absent; returns the value then live.
    fn store_loaded(&self, key: &str, value: V, opts: SetOptions) -> Result<V>;
}

/// What [`Loadable::read_or_join`] found.
pub(crate) enum Joined<'f, V: Clone> {
    /// The key's live value.
    Live(V),
    /// The key is absent: lead its flight, or wait for the one running.
    Absent(Role<'f, V>),
}

/// The options a loader stores its value with: the caller's, written only where the
/// key is absent.
fn loader_options(opts: SetOptions) -> Result<SetOptions> {
    match opts.condition {
        Condition::IfPresent => Err(Error::Config(
            "a loader stores its value only where the key is absent: give it SetOptions \
             without if_present()"
                .into(),
        )),
        _ => Ok(opts.if_absent()),
    }
}

/// Stores a loaded value where the key is absent, keeping a value another writer
/// stored meanwhile: the value to hand to every caller of the flight.
pub(crate) fn store_absent<V: Value>(
    store: &dyn Store<V>,
    peek: impl Fn() -> Option<V>,
    key: &str,
    value: V,
    opts: SetOptions,
) -> Result<V> {
    match store.set(key, value.clone(), opts)? {
        crate::SetOutcome::NotSet => Ok(peek().unwrap_or(value)),
        crate::SetOutcome::Created | crate::SetOutcome::Replaced => Ok(value),
    }
}

/// The single flight of a blocking loader: lead the key's flight and load, or wait
/// for the one running; a flight that ends without a value sends its waiters back to
/// the store, and to a flight of their own if the key is still absent.
pub(crate) fn single_flight<V: Value>(
    store: &impl Loadable<V>,
    key: &str,
    opts: SetOptions,
    load: &mut Load<'_, V>,
) -> std::result::Result<V, Failed> {
    let opts = loader_options(opts).map_err(|e| load.refuse(e))?;
    loop {
        match store.read_or_join(key) {
            Joined::Live(value) => return Ok(value),
            Joined::Absent(Role::Waiter(flight)) => match flight.wait() {
                Outcome::Loaded(value) => return Ok(value),
                Outcome::Failed(failed) if load.accepts(&failed) => return Err(failed),
                Outcome::Failed(_) | Outcome::Over => {}
            },
            Joined::Absent(Role::Leader(lead)) => {
                let result = load.run().and_then(|value| {
                    store
                        .store_loaded(key, value, opts)
                        .map_err(|e| load.refuse(e))
                });
                lead.end(|| match &result {
                    Ok(value) => Outcome::Loaded(value.clone()),
                    Err(failed) => Outcome::Failed(failed.clone()),
                });
                return result;
            }
        }
    }
}

/// [`single_flight`] for an async loader: waits with the task's waker, and a leader
/// dropped while it awaits `init` ends its flight for a waiter to take over.
pub(crate) fn single_flight_async<'a, V: Value>(
    store: &'a impl Loadable<V>,
    key: &'a str,
    opts: SetOptions,
    mut load: LoadAsync<'a, V>,
) -> LoadFuture<'a, V> {
    Box::pin(async move {
        let opts = loader_options(opts).map_err(|e| load.refuse(e))?;
        loop {
            match store.read_or_join(key) {
                Joined::Live(value) => return Ok(value),
                Joined::Absent(Role::Waiter(flight)) => match Wait::new(flight).await {
                    Outcome::Loaded(value) => return Ok(value),
                    Outcome::Failed(failed) if load.accepts(&failed) => return Err(failed),
                    Outcome::Failed(_) | Outcome::Over => {}
                },
                Joined::Absent(Role::Leader(lead)) => {
                    let result = match load.run().await {
                        Ok(value) => store
                            .store_loaded(key, value, opts)
                            .map_err(|e| load.refuse(e)),
                        Err(failed) => Err(failed),
                    };
                    lead.end(|| match &result {
                        Ok(value) => Outcome::Loaded(value.clone()),
                        Err(failed) => Outcome::Failed(failed.clone()),
                    });
                    return result;
                }
            }
        }
    })
}
