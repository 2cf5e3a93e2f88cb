//! A slot: one entry of a shard's table, with its key inline when short, and how
//! index items find it.

use super::*;

/// Keys up to this many bytes live inside their slot; longer ones get a box of their
/// own. With it, a key is 24 bytes in the slot.
pub(super) const INLINE_KEY: usize = 22;

/// A key as its slot holds it: short keys inline, so that a typical entry is a single
/// allocation.
pub(crate) enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<str>),
}

impl Key {
    pub(crate) fn new(key: &str) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Boxed(key.into()),
        }
    }

    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Boxed(key) => key.as_bytes(),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            Key::Inline { .. } => match std::str::from_utf8(self.as_bytes()) {
                Ok(key) => key,
                Err(_) => unreachable!("inline keys are copied whole from a str"),
            },
            Key::Boxed(key) => key,
        }
    }

    // Inlined into every lookup, which is compiled in the caller's crate (generic over V).
    #[inline]
    pub(crate) fn is(&self, key: &str) -> bool {
        self.as_bytes() == key.as_bytes()
    }
}

/// How an index item (expiry heap, LRU index) finds its slot: the key's hash, to find
/// the shard and bucket, and the address of the slot's box, to tell it from others
/// there. A box does not move while its slot lives, but a new slot may get the address
/// of a removed one, so an item can come to name a slot it was not filed for. Every
/// decision an item leads to is therefore checked against the slot's own state (its
/// filed deadline, its stamp, its real deadline), which makes such an item merely
/// stale, as if its slot had been used since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SlotRef {
    pub(super) hash: u64,
    pub(super) addr: usize,
}

impl SlotRef {
    pub(super) fn new<V>(hash: u64, slot: &Slot<V>) -> SlotRef {
        SlotRef {
            hash,
            addr: std::ptr::from_ref(slot).addr(),
        }
    }

    pub(super) fn is<V>(self, slot: &Slot<V>) -> bool {
        std::ptr::from_ref(slot).addr() == self.addr
    }
}

pub(super) struct Slot<V> {
    pub(super) key: Key,
    pub(super) value: V,
    /// Deadline in nanoseconds since the Unix epoch; 0 for none. Sliding reads move it
    /// forward under the shard's read lock.
    pub(super) expires_at: AtomicU64,
    /// The TTL the key was last written with, in nanoseconds (0: none); a sliding read
    /// restarts the deadline at this length.
    pub(super) ttl: u64,
    /// The deadline of this slot's current item in the expiry heap (0: none filed).
    pub(super) filed_deadline: u64,
    /// LRU stamp of the last use.
    pub(super) used: AtomicU64,
}

impl<V> Slot<V> {
    pub(super) fn deadline(&self) -> u64 {
        self.expires_at.load(Relaxed)
    }

    pub(super) fn is_live(&self, now: u64) -> bool {
        let d = self.deadline();
        d == 0 || d > now
    }

    pub(super) fn remaining(&self, now: u64) -> Option<Duration> {
        match self.deadline() {
            0 => None,
            d => Some(Duration::from_nanos(d.saturating_sub(now))),
        }
    }
}
