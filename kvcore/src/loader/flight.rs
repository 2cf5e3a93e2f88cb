//! Single flight: one load or compute per key at a time, the others waiting for it.
//!
//! A store keeps a table of flights, sharded by key hash, each shard under a
//! `parking_lot` mutex held only to look a key up, add a flight or remove one (never
//! while user code runs). The caller that adds a key's flight leads it; callers that
//! find it wait, on the flight's condition variable (threads) or with a waker (async
//! tasks). The leader ends the flight with an [`Outcome`]: a value or an error for
//! the waiters to take, or `Over` (a compute that finished, or a leader that
//! panicked or was dropped), after which each waiter reads the store again and, if
//! the key is still absent, tries to lead a flight of its own. A [`Lead`] dropped
//! without an outcome ends its flight with `Over`, so a panic or a cancelled future
//! never leaves a waiter stuck.
//!
//! Lock order: a table shard's mutex, then a flight's state mutex (ending a flight
//! holds both); waiters take the state mutex alone, joiners the table's alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use parking_lot::{Condvar, Mutex};

use super::Failed;
use crate::memory::Key;

/// How a flight ended.
pub(crate) enum Outcome<V> {
    /// The leader loaded this value (and stored it, or found it stored).
    Loaded(V),
    /// The leader's load, or the write of its value, failed.
    Failed(Failed),
    /// Nothing to hand on: read the store again.
    Over,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Loaded(v) => Outcome::Loaded(v.clone()),
            Outcome::Failed(f) => Outcome::Failed(f.clone()),
            Outcome::Over => Outcome::Over,
        }
    }
}

enum State<V> {
    /// The leader is at work; the wakers of the async waiters.
    Running(Vec<Waker>),
    Ended(Outcome<V>),
}

/// One key's flight.
pub(crate) struct Flight<V> {
    /// Inline when short, as a slot's: one allocation per flight.
    key: Key,
    hash: u64,
    state: Mutex<State<V>>,
    ended: Condvar,
}

impl<V: Clone> Flight<V> {
    fn new(key: &str, hash: u64) -> Arc<Flight<V>> {
        Arc::new(Flight {
            key: Key::new(key),
            hash,
            state: Mutex::new(State::Running(Vec::new())),
            ended: Condvar::new(),
        })
    }

    /// Blocks the thread until the flight ends.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut state = self.state.lock();
        loop {
            match &*state {
                State::Running(_) => self.ended.wait(&mut state),
                State::Ended(outcome) => return outcome.clone(),
            }
        }
    }
}

/// Waits for a flight without blocking the thread: ready once the flight ends.
pub(crate) struct Wait<V> {
    flight: Arc<Flight<V>>,
}

impl<V> Wait<V> {
    pub(crate) fn new(flight: Arc<Flight<V>>) -> Self {
        Wait { flight }
    }
}

impl<V: Clone> Future for Wait<V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let mut state = self.flight.state.lock();
        match &mut *state {
            State::Running(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Ended(outcome) => Poll::Ready(outcome.clone()),
        }
    }
}

/// One shard of the table: the flights running, and one ended flight kept for the
/// next, so that a miss nobody else waits on allocates nothing for its flight.
struct Table<V> {
    running: HashTable<Arc<Flight<V>>>,
    spare: Option<Arc<Flight<V>>>,
}

type Shard<V> = CachePadded<Mutex<Table<V>>>;

/// The flights of one store.
pub(crate) struct Flights<V> {
    shards: Box<[Shard<V>]>,
}

/// What [`Flights::join`] made of its caller.
pub(crate) enum Role<'f, V: Clone> {
    /// No flight was running: the caller leads a new one.
    Leader(Lead<'f, V>),
    /// A flight was running: wait for it.
    Waiter(Arc<Flight<V>>),
}

impl<V: Clone> Flights<V> {
    /// Flights spread over `shards` locks (a power of two).
    pub(crate) fn new(shards: usize) -> Self {
        Flights {
            shards: (0..shards.max(1))
                .map(|_| {
                    CachePadded::new(Mutex::new(Table {
                        running: HashTable::new(),
                        spare: None,
                    }))
                })
                .collect(),
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<Table<V>> {
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    /// Leads a new flight for `key` (whose hash is `hash`), or joins the running one.
    pub(crate) fn join(&self, hash: u64, key: &str) -> Role<'_, V> {
        let mut table = self.shard(hash).lock();
        if let Some(flight) = table.running.find(hash, |f| f.key.is(key)) {
            return Role::Waiter(Arc::clone(flight));
        }
        let flight = match table.spare.take() {
            // The spare is this table's alone (see `Lead::finish`): no handle to it
            // is left anywhere, so it can be made this key's flight.
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(reused) => {
                    reused.key = Key::new(key);
                    reused.hash = hash;
                    *reused.state.get_mut() = State::Running(Vec::new());
                    spare
                }
                None => Flight::new(key, hash),
            },
            None => Flight::new(key, hash),
        };
        table
            .running
            .insert_unique(hash, Arc::clone(&flight), |f| f.hash);
        Role::Leader(Lead {
            flights: self,
            flight: Some(flight),
        })
    }

    /// Callers waiting on the flights running now: each holds one handle beyond the
    /// table's and the leader's.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let table = s.lock();
                table
                    .running
                    .iter()
                    .map(|f| Arc::strong_count(f).saturating_sub(2))
                    .sum::<usize>()
            })
            .sum()
    }
}

/// The lead of a flight. Ending it hands the outcome to the waiters; dropping it
/// without ending it (a panic, a cancelled future) ends it with [`Outcome::Over`].
/// The outcome is made only if someone waits.
pub(crate) struct Lead<'f, V: Clone> {
    flights: &'f Flights<V>,
    flight: Option<Arc<Flight<V>>>,
}

impl<V: Clone> Lead<'_, V> {
    /// Ends the flight with `outcome()`, made only if someone waits.
    pub(crate) fn end(mut self, outcome: impl FnOnce() -> Outcome<V>) {
        self.finish(outcome);
    }

    /// Under the table's lock, so that nobody joins meanwhile: the outcome first, so
    /// that a waiter woken early takes it; then the flight leaves the table, so that
    /// later callers read the store; then, the lock released, the waiters wake. A
    /// flight nobody waits on (the table's handle and this one are all there are)
    /// just leaves.
    fn finish(&mut self, outcome: impl FnOnce() -> Outcome<V>) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        let mut table = self.flights.shard(flight.hash).lock();
        let waited = Arc::strong_count(&flight) > 2;
        let wakers = match waited {
            true => match std::mem::replace(&mut *flight.state.lock(), State::Ended(outcome())) {
                State::Running(wakers) => wakers,
                State::Ended(_) => Vec::new(),
            },
            false => Vec::new(),
        };
        if let Ok(entry) = table
            .running
            .find_entry(flight.hash, |f| Arc::ptr_eq(f, &flight))
        {
            entry.remove();
        }
        if !waited {
            // Nobody else has a handle now: keep the flight for the next one.
            table.spare = Some(flight);
            return;
        }
        drop(table);
        flight.ended.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }
}

impl<V: Clone> Drop for Lead<'_, V> {
    fn drop(&mut self) {
        self.finish(|| Outcome::Over);
    }
}
