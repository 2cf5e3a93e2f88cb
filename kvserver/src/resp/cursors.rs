//! [`Cursors`]: `SCAN`'s numeric cursors, each standing for a store cursor.
//!
//! Redis clients read a `SCAN` cursor as an unsigned integer, while the store's
//! cursors are text (a shard and the last key returned, which no integer can hold).
//! So each page's store cursor is kept here under a number that `SCAN` hands out; a
//! number can be used from any connection, and again (a retried page is the same
//! page). The table keeps the 65 536 most recent cursors: an older one, or one from
//! before a restart, is refused with `ERR invalid cursor` rather than silently
//! restarting the scan.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use parking_lot::Mutex;

/// Most cursors kept.
pub const MAX_CURSORS: usize = 65_536;

/// Numbered store cursors.
#[derive(Debug)]
pub struct Cursors {
    /// A plain mutex: held to insert or look up one entry.
    inner: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    by_number: HashMap<u64, String>,
    order: VecDeque<u64>,
    next: u64,
}

impl Default for Cursors {
    fn default() -> Self {
        // Numbers start at a random point, so that one from before a restart is
        // unlikely to name a cursor of this run.
        let start = RandomState::new().hash_one(0u8) >> 34;
        Cursors {
            inner: Mutex::new(Table {
                by_number: HashMap::new(),
                order: VecDeque::new(),
                next: start.max(1),
            }),
        }
    }
}

impl Cursors {
    /// The number that stands for `cursor` from now on (never 0, below 2^53 so
    /// that clients reading it as a double keep it exact).
    pub fn issue(&self, cursor: String) -> u64 {
        let mut t = self.inner.lock();
        let number = t.next;
        t.next = if t.next >= (1 << 53) - 1 {
            1
        } else {
            t.next + 1
        };
        if t.order.len() == MAX_CURSORS
            && let Some(oldest) = t.order.pop_front()
        {
            t.by_number.remove(&oldest);
        }
        t.order.push_back(number);
        t.by_number.insert(number, cursor);
        number
    }

    /// The store cursor `number` stands for.
    pub fn get(&self, number: u64) -> Option<String> {
        self.inner.lock().by_number.get(&number).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stand_for_their_cursor_until_pushed_out() {
        let c = Cursors::default();
        let first = c.issue("a".into());
        assert_ne!(first, 0);
        assert_eq!(c.get(first).as_deref(), Some("a"));
        assert_eq!(c.get(first).as_deref(), Some("a"));
        for i in 0..MAX_CURSORS {
            c.issue(i.to_string());
        }
        assert_eq!(c.get(first), None);
        assert_eq!(c.inner.lock().by_number.len(), MAX_CURSORS);
    }
}
