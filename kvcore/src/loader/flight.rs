//! Single flight: one load or compute per key at a time, the others waiting for it.
//!
//! A store keeps a table of flights, sharded by key hash, each shard under a
//! `parking_lot` mutex held only to look a key up, add a flight or remove one (never
//! while user code runs). The caller that adds a key's flight leads it; callers that
//! find it wait, on a condition variable (threads) or with a waker (async tasks). The
//! leader ends the flight with an [`Outcome`]: a value or an error for the waiters to
//! take, or `Over` (a compute that finished, or a leader that panicked or was
//! dropped), after which each waiter reads the store again and, if the key is still
//! absent, tries to lead a flight of its own. A [`Lead`] dropped without an outcome
//! ends its flight with `Over`, so a panic or a cancelled future never leaves a
//! waiter stuck.
//!
//! Most flights are never waited on, so a flight is an entry of the table and
//! nothing more: the first waiter gives it the shared state the waiters wait on (a
//! [`Flight`]). A flight nobody waits on costs its leader the table's lock twice and
//! no allocation.
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

/// What the waiters of a flight share: its state, and a condition variable.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    ended: Condvar,
}

impl<V: Clone> Flight<V> {
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

/// A flight in the table: its key, and the waiters' state once one waits.
struct Entry<V> {
    /// Inline when short, as a slot's.
    key: Key,
    hash: u64,
    /// Tells this flight from the key's earlier and later ones.
    id: u64,
    waiters: Option<Arc<Flight<V>>>,
}

/// One shard of the table: the flights running.
struct Table<V> {
    running: HashTable<Entry<V>>,
    /// The id of the next flight.
    next: u64,
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
                        next: 0,
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
        if let Some(entry) = table.running.find_mut(hash, |e| e.key.is(key)) {
            let flight = entry.waiters.get_or_insert_with(|| {
                Arc::new(Flight {
                    state: Mutex::new(State::Running(Vec::new())),
                    ended: Condvar::new(),
                })
            });
            return Role::Waiter(Arc::clone(flight));
        }
        let id = table.next;
        table.next = id.wrapping_add(1);
        let entry = Entry {
            key: Key::new(key),
            hash,
            id,
            waiters: None,
        };
        table.running.insert_unique(hash, entry, |e| e.hash);
        Role::Leader(Lead {
            flights: self,
            at: Some((hash, id)),
        })
    }

    /// Callers waiting on the flights running now: each holds one handle beyond the
    /// table's.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let table = s.lock();
                table
                    .running
                    .iter()
                    .filter_map(|e| e.waiters.as_ref())
                    .map(|f| Arc::strong_count(f) - 1)
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
    /// The flight's hash and id; `None` once ended.
    at: Option<(u64, u64)>,
}

impl<V: Clone> Lead<'_, V> {
    /// Ends the flight with `outcome()`, made only if someone waits.
    pub(crate) fn end(mut self, outcome: impl FnOnce() -> Outcome<V>) {
        self.finish(outcome);
    }

    /// Under the table's lock, so that nobody joins meanwhile: the outcome first, so
    /// that a waiter woken early takes it; then the flight leaves the table, so that
    /// later callers read the store; then, the lock released, the waiters wake. A
    /// flight nobody waits on just leaves.
    fn finish(&mut self, outcome: impl FnOnce() -> Outcome<V>) {
        let Some((hash, id)) = self.at.take() else {
            return;
        };
        let mut table = self.flights.shard(hash).lock();
        let Ok(entry) = table.running.find_entry(hash, |e| e.id == id) else {
            unreachable!("a flight stays in the table until its lead ends it");
        };
        let (entry, _) = entry.remove();
        let Some(flight) = entry.waiters else {
            return;
        };
        let wakers = match std::mem::replace(&mut *flight.state.lock(), State::Ended(outcome())) {
            State::Running(wakers) => wakers,
            State::Ended(_) => Vec::new(),
        };
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
