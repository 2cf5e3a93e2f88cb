//! Expiry: the time as a write sees it, deciding whether a deadline has passed,
//! filing deadlines in the shards' heaps, and purging due keys in bounded steps.

use super::*;

/// The time as one single-key write sees it: read only if the write needs it, and
/// the cheap reading first, as reads do (see the module docs).
pub(super) struct WriteTime<'c> {
    pub(super) clock: &'c Timer,
    pub(super) coarse: OnceCell<(u64, u64)>,
    pub(super) precise: OnceCell<u64>,
}

impl<'c> WriteTime<'c> {
    pub(super) fn new(clock: &'c Timer) -> Self {
        WriteTime {
            clock,
            coarse: OnceCell::new(),
            precise: OnceCell::new(),
        }
    }

    /// The cheap reading: the earliest the time can be, and how much later it may be.
    pub(super) fn coarse(&self) -> (u64, u64) {
        *self.coarse.get_or_init(|| self.clock.coarse_now())
    }

    pub(super) fn precise(&self) -> u64 {
        *self.precise.get_or_init(|| self.clock.now())
    }

    /// A time no later than now: what has expired by it has surely expired.
    pub(super) fn earliest(&self) -> u64 {
        self.coarse().0
    }

    /// Whether deadline `d` (0: none) has not passed; a precise reading decides only
    /// when `d` falls within the cheap reading's slack.
    pub(super) fn is_live(&self, d: u64) -> bool {
        d == 0 || before_deadline(self.coarse(), || d, || self.precise()).is_some()
    }

    /// The deadline of a TTL of `ttl` nanoseconds that starts now. It counts from the
    /// cheap reading's upper bound when the slack is at most a thousandth of the TTL,
    /// so that it ends no earlier than a precise start would and at most a thousandth
    /// of the TTL later; a shorter TTL counts from a precise reading.
    pub(super) fn deadline(&self, ttl: u64) -> u64 {
        let (earliest, slack) = self.coarse();
        let start = if slack <= ttl / 1000 {
            earliest.saturating_add(slack)
        } else {
            self.precise()
        };
        start.saturating_add(ttl)
    }
}

/// Decides whether a deadline (non-zero) has passed: `None` if it has, else a time no
/// earlier than now and before the deadline. The cheap reading `(earliest, slack)`
/// decides unless the deadline falls within its slack; then `precise()` does.
/// `deadline()` is loaded after each reading, so that a sliding restart that
/// happened before a reading is seen.
#[inline]
pub(super) fn before_deadline(
    (earliest, slack): (u64, u64),
    deadline: impl Fn() -> u64,
    precise: impl FnOnce() -> u64,
) -> Option<u64> {
    let latest = earliest.saturating_add(slack);
    let d = deadline();
    if latest < d {
        return Some(latest);
    }
    if earliest >= d {
        return None;
    }
    let now = precise();
    let d = deadline();
    (d == 0 || d > now).then_some(now)
}

impl<V: Value> Shared<V> {
    /// Files `slot`'s deadline `d` in the shard's expiry heap unless an item no later
    /// than `d` is already there. `hash` is the slot's key's.
    #[inline(always)]
    pub(super) fn file_deadline(&self, heap: &mut DeadlineHeap, hash: u64, slot: &mut Slot<V>) {
        let d = slot.deadline();
        if d != 0 && (slot.filed_deadline == 0 || d < slot.filed_deadline) {
            heap.push(Reverse((d, SlotRef::new(hash, slot))));
            slot.filed_deadline = d;
            self.next_deadline.fetch_min(d, Relaxed);
        }
    }

    /// Works through due items of one shard's expiry heap, at most `budget` of them.
    /// Returns how many keys it removed.
    pub(super) fn purge_table(
        &self,
        table: &mut Table<V>,
        now: u64,
        budget: usize,
        notices: &mut Notices<'_, V>,
    ) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            match table.expiry.peek() {
                Some(Reverse((d, _))) if *d <= now => {}
                _ => break,
            }
            let Some(Reverse((d, at))) = table.expiry.pop() else {
                break;
            };
            let Ok(mut entry) = table.slots.find_entry(at.hash, |s| at.is(s)) else {
                continue; // the key was deleted or re-created since it was filed
            };
            let slot = entry.get_mut();
            if slot.filed_deadline != d {
                continue; // superseded by an earlier item
            }
            match slot.deadline() {
                0 => slot.filed_deadline = 0,
                real if real > now => {
                    // Slid or extended since filing: file it at its real deadline.
                    slot.filed_deadline = real;
                    table.expiry.push(Reverse((real, at)));
                }
                _ => {
                    let (slot, _) = entry.remove();
                    self.removed(slot, RemovalCause::Expired, notices);
                    removed += 1;
                }
            }
        }
        // Deleted keys leave their items behind; rebuild when they dominate.
        if table.expiry.len() > 2 * table.slots.len() + 64 {
            table.expiry = table
                .slots
                .iter()
                .filter(|s| s.filed_deadline != 0)
                .map(|s| {
                    let at = SlotRef::new(self.hash(s.key.as_str()), s);
                    Reverse((s.filed_deadline, at))
                })
                .collect();
        }
        removed
    }

    /// Purges every due key in every shard and recomputes `next_deadline`.
    pub(super) fn purge_all(&self, now: u64, notices: &mut Notices<'_, V>) -> usize {
        // Reset first: deadlines filed while the pass runs lower it again themselves.
        self.next_deadline.store(u64::MAX, Relaxed);
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut table = shard.write();
            removed += self.purge_table(&mut table, now, usize::MAX, notices);
            if let Some(Reverse((d, _))) = table.expiry.peek() {
                self.next_deadline.fetch_min(*d, Relaxed);
            }
        }
        removed
    }

    /// Purges due keys everywhere if any might exist.
    pub(super) fn purge_if_due(&self, now: u64, notices: &mut Notices<'_, V>) {
        if self.next_deadline.load(Relaxed) <= now {
            self.purge_all(now, notices);
        }
    }

    pub(super) fn purge_expired(&self, budget: usize, notices: &mut Notices<'_, V>) -> usize {
        let now = self.now();
        let n = self.shards.len();
        let start = self.purge_next.fetch_add(1, Relaxed);
        let mut removed = 0;
        let mut left = budget;
        for i in 0..n {
            if left == 0 {
                break;
            }
            let mut table = self.shards[(start + i) % n].write();
            let before = table.expiry.len();
            removed += self.purge_table(&mut table, now, left, notices);
            left = left.saturating_sub(before.saturating_sub(table.expiry.len()).max(1));
        }
        removed
    }
}
