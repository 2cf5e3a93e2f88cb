//! Hit and miss counts, kept per thread so that a read counts itself without a
//! locked instruction.
//!
//! An atomic add (`lock xadd` on x86) waits for the core's store buffer to drain;
//! on a read that finds its key in cache it costs as much as the rest of the read.
//! So each thread counts its reads of a store in a cell of its own, which only it
//! writes, with a plain load and store; [`Stats`](crate::Stats) sums the cells. The
//! counts stay exact: no two threads ever write the same cell.
//!
//! A store's [`Tally`] lists its cells under a mutex, taken only when a thread counts
//! its first read of the store and when the counts are summed. Each thread keeps the
//! cells it writes in a thread-local list, keyed by the store's id (ids are never
//! reused, unlike addresses), with the cell it used last in front. When a thread
//! exits, its list goes and its cells are owned by their tallies alone; the next
//! thread to join a tally folds such cells into the tally's `retired` counts, so a
//! tally holds one cell per thread alive, not per thread ever seen. When a store is
//! dropped, the threads' cells for it are owned by those threads alone, and each
//! thread drops them the next time it looks past the front of its list.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

/// The hit and miss counts of one store.
pub(crate) struct Tally {
    inner: Arc<Shared>,
}

struct Shared {
    id: u64,
    cells: Mutex<Cells>,
    /// Counted with atomic adds by reads that cannot reach their thread's list: a
    /// read from the destructor of another thread-local, say.
    fallback: Cell,
}

#[derive(Default)]
struct Cells {
    live: Vec<Arc<CachePadded<Cell>>>,
    /// The counts of cells whose threads have exited.
    retired: (u64, u64),
}

/// One thread's counts of one store's reads; only that thread writes them.
#[derive(Default)]
struct Cell {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Cell {
    fn counter(&self, hit: bool) -> &AtomicU64 {
        if hit { &self.hits } else { &self.misses }
    }

    /// Counts a read; the caller is the only thread that writes this cell.
    #[inline(always)]
    fn bump(&self, hit: bool) {
        let counter = self.counter(hit);
        counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
    }

    fn counts(&self) -> (u64, u64) {
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}

thread_local! {
    /// This thread's cells, by tally id, the one used last in front.
    static MINE: RefCell<Vec<(u64, Arc<CachePadded<Cell>>)>> = const { RefCell::new(Vec::new()) };
}

/// Tally ids, never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            inner: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Relaxed),
                cells: Mutex::new(Cells::default()),
                fallback: Cell::default(),
            }),
        }
    }

    /// Counts one read: a hit, or a miss.
    #[inline]
    pub(crate) fn count(&self, hit: bool) {
        let id = self.inner.id;
        let counted = MINE.try_with(|mine| match mine.try_borrow_mut() {
            Ok(mut mine) => match mine.first() {
                Some((first, cell)) if *first == id => cell.bump(hit),
                _ => self.count_elsewhere(&mut mine, hit),
            },
            Err(_) => {
                self.inner.fallback.counter(hit).fetch_add(1, Relaxed);
            }
        });
        if counted.is_err() {
            self.inner.fallback.counter(hit).fetch_add(1, Relaxed);
        }
    }

    /// A read whose cell is not at the front of the thread's list: brings it there,
    /// joining the tally if this thread has no cell in it yet, and drops the cells of
    /// tallies that are gone.
    #[cold]
    #[inline(never)]
    fn count_elsewhere(&self, mine: &mut Vec<(u64, Arc<CachePadded<Cell>>)>, hit: bool) {
        let id = self.inner.id;
        // A cell owned by this list alone belongs to a dropped store.
        mine.retain(|(other, cell)| *other == id || Arc::strong_count(cell) > 1);
        let at = match mine.iter().position(|(other, _)| *other == id) {
            Some(at) => at,
            None => {
                let cell = Arc::new(CachePadded::new(Cell::default()));
                self.inner.cells.lock().join(Arc::clone(&cell));
                mine.push((id, cell));
                mine.len() - 1
            }
        };
        mine.swap(0, at);
        mine[0].1.bump(hit);
    }

    /// Hits and misses counted so far.
    pub(crate) fn sums(&self) -> (u64, u64) {
        let cells = self.inner.cells.lock();
        let add = |(h, m): (u64, u64), (dh, dm): (u64, u64)| (h + dh, m + dm);
        let live = cells.live.iter().map(|c| c.counts()).fold((0, 0), add);
        add(add(cells.retired, live), self.inner.fallback.counts())
    }

    /// How many threads' cells the tally holds.
    #[cfg(test)]
    fn cells(&self) -> usize {
        self.inner.cells.lock().live.len()
    }
}

impl Cells {
    /// Adds a thread's cell, first folding the cells of exited threads into
    /// `retired`.
    fn join(&mut self, cell: Arc<CachePadded<Cell>>) {
        let retired = &mut self.retired;
        self.live.retain_mut(|c| match Arc::get_mut(c) {
            // Unique: its thread's list is gone, and with it every write to it.
            // `get_mut` synchronizes with the list's drop, so the last writes show.
            Some(c) => {
                retired.0 += *c.hits.get_mut();
                retired.1 += *c.misses.get_mut();
                false
            }
            None => true,
        });
        self.live.push(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn counts_from_many_threads_are_exact() {
        let tally = Tally::new();
        thread::scope(|s| {
            for t in 0..8 {
                let tally = &tally;
                s.spawn(move || {
                    for i in 0..10_000 {
                        tally.count(i % (t + 2) != 0);
                    }
                });
            }
        });
        let misses: u64 = (0..8u64).map(|t| 10_000u64.div_ceil(t + 2)).sum();
        assert_eq!(tally.sums(), (80_000 - misses, misses));
    }

    #[test]
    fn exited_threads_keep_their_counts_and_leave_their_cells() {
        let tally = Arc::new(Tally::new());
        for _ in 0..50 {
            let tally = Arc::clone(&tally);
            thread::spawn(move || {
                tally.count(true);
                tally.count(false);
                tally.count(true);
            })
            .join()
            .unwrap();
        }
        assert_eq!(tally.sums(), (100, 50));
        // Each new thread folded the one before it: one cell is left, the last's.
        assert_eq!(tally.cells(), 1);
        thread::scope(|s| {
            s.spawn(|| {
                tally.count(true);
                // This thread's cell, and the last one folded.
                assert_eq!(tally.cells(), 1);
            });
        });
        assert_eq!(tally.sums(), (101, 50));
    }

    #[test]
    fn one_thread_counts_into_many_tallies_and_forgets_dropped_ones() {
        // On a thread of its own, whose list holds only this test's cells.
        thread::spawn(count_into_many_tallies).join().unwrap();
    }

    fn count_into_many_tallies() {
        let a = Tally::new();
        let mut others: Vec<Tally> = (0..5).map(|_| Tally::new()).collect();
        for round in 0..100 {
            a.count(true);
            others[round % 5].count(round % 2 == 0);
        }
        assert_eq!(a.sums(), (100, 0));
        for t in &others {
            assert_eq!(t.sums(), (10, 10));
        }
        others.clear();
        let b = Tally::new();
        b.count(false);
        a.count(true);
        assert_eq!((a.sums(), b.sums()), ((101, 0), (0, 1)));
        // The dropped tallies' cells are gone from this thread's list.
        assert_eq!(MINE.with_borrow(Vec::len), 2);
    }

    #[test]
    fn a_read_from_a_thread_local_destructor_is_counted() {
        struct CountsOnDrop(Arc<Tally>);
        impl Drop for CountsOnDrop {
            fn drop(&mut self) {
                self.0.count(true);
            }
        }
        thread_local! {
            static LATE: RefCell<Option<CountsOnDrop>> = const { RefCell::new(None) };
        }
        let tally = Arc::new(Tally::new());
        let t = Arc::clone(&tally);
        thread::spawn(move || {
            // Counted before and after this thread's list is gone, in whatever order
            // the destructors run.
            t.count(false);
            LATE.with_borrow_mut(|late| *late = Some(CountsOnDrop(t)));
        })
        .join()
        .unwrap();
        assert_eq!(tally.sums(), (1, 1));
    }
}
