//! Where a key's bucket is, asked for before the table's control bytes answer.
//!
//! A hit in a table too large for the caches waits on memory three times in a row:
//! for the table's control bytes (which bucket holds the key), then for the bucket
//! (the pointer to the slot), then for the slot. The second wait depends on the first
//! only through the bucket's index, and for most keys that index is a few buckets
//! past where the key's probe starts, which the hash alone gives. So a lookup asks
//! the CPU for the cache lines of the probe's first buckets as soon as it has the
//! hash, and the control bytes and the bucket arrive together.
//!
//! The addresses come from `hashbrown`'s layout: the buckets are stored below the
//! control bytes, in reverse, so bucket `i` is `i + 1` buckets below their end, and a
//! probe starts at the hash's low bits masked by the bucket count. `BucketEnd` learns
//! the end from the bucket a new slot went into, each time the table takes one
//! (`Table::insert`, the only time it can reallocate; removals and `drain` keep the
//! allocation); the bucket count the table itself gives. Were the
//! layout to change, or the table to move without `BucketEnd` learning of it, the
//! prefetch would ask for the wrong lines and only the time it saves would be lost:
//! a prefetch is a hint that reads nothing the program sees and never faults,
//! whatever the address. A unit test checks the layout against every bucket of a
//! growing table (`prefetched_buckets_are_where_the_table_keeps_them`, which also
//! runs under Miri).

use std::mem::size_of;

/// The address where a table's buckets end, as last learnt; zero before the table
/// has held a slot.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BucketEnd {
    end: usize,
}

impl BucketEnd {
    /// Learns the end from bucket `index` of a table of buckets of `T`, which is at
    /// `at`.
    pub(super) fn learn<T>(at: *const T, index: usize) -> BucketEnd {
        BucketEnd {
            end: at.addr() + (index + 1) * size_of::<T>(),
        }
    }

    /// The address bucket `index` has if the table has the layout learnt.
    pub(super) fn bucket<T>(self, index: usize) -> usize {
        self.end.wrapping_sub((index + 1) * size_of::<T>())
    }

    /// Where a probe for `hash` starts in a table of `buckets` buckets (a power of
    /// two): hashbrown's `h1(hash) & bucket_mask`, the hash's low bits (on 64-bit, all
    /// of them) masked.
    pub(super) fn probe_start(hash: u64, buckets: usize) -> usize {
        hash as usize & buckets.wrapping_sub(1)
    }

    /// Asks for the cache lines of the first buckets a probe for `hash` looks at in a
    /// table of `buckets` buckets: the line of the bucket where it starts and the line
    /// below, at least nine buckets.
    #[inline(always)]
    pub(super) fn prefetch<T>(self, hash: u64, buckets: usize) {
        if self.end == 0 {
            return;
        }
        let first = self.bucket::<T>(Self::probe_start(hash, buckets));
        prefetch(first);
        // The line below holds the next buckets of the probe.
        prefetch(first.wrapping_sub(64));
    }
}

#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = std::ptr::without_provenance::<i8>(addr);
        // SAFETY: `prefetch` is a hint: it reads nothing the program sees, writes
        // nothing, and never faults, whatever the address (Intel SDM, PREFETCHh:
        // "does not affect program behavior"). SSE, which it needs, is part of every
        // x86_64 target.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
