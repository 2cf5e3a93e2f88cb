//! Atomic read-modify-write of one key: [`Store::compute`](crate::Store::compute).
//!
//! `compute(key, f)` calls `f` with the key's live value (or `None`) and applies what
//! `f` returns ([`Compute`]): a new value, a delete, or nothing. The step is atomic
//! against every other writer of the key: if anything else wrote the key's shard
//! between `f` looking and the change being applied, nothing is applied and `f` runs
//! again on what is there now. Computes and [loaders](crate::loader) of one key also
//! take turns (they share a per-key guard), so two computes on one key do not make
//! each other run again.
//!
//! `f` runs without any shard lock held, so it may take its time, but it may run more
//! than once (hence `FnMut`): keep side effects out of it, or make them idempotent.
//! It must not call `compute` or a loader for the same key on the same store (it
//! would wait for itself); other keys, and plain reads and writes, are fine.
//!
//! A value written by `compute` is journaled by a persistent store like any write,
//! reported to a removal listener when it replaces or deletes one, and counts toward
//! `capacity` and `max_weight`. `compute` counts no hit or miss. Read-only stores
//! refuse it with [`Error::ReadOnly`](crate::Error::ReadOnly).
//!
//! ```
//! use kvcore::{Compute, Computed, SetOptions, Store, StoreBuilder};
//!
//! let store = StoreBuilder::new().build::<String>()?;
//! // Redis's APPEND: create or extend, keeping the key's TTL.
//! let append = |suffix: &str| {
//!     store.compute("log", &mut |old: Option<&String>| {
//!         Compute::Set(format!("{}{suffix}", old.map_or("", |s| s.as_str())))
//!     })
//! };
//! assert_eq!(append("a")?, Computed::Created("a".to_string()));
//! assert_eq!(append("b")?, Computed::Replaced("ab".to_string()));
//!
//! // Delete only when the value says so; leave anything else alone.
//! let done = store.compute("log", &mut |old| match old.map(String::as_str) {
//!     Some("done") => Compute::Delete,
//!     _ => Compute::Keep,
//! })?;
//! assert_eq!(done, Computed::Unchanged(Some("ab".to_string())));
//! # Ok::<(), kvcore::Error>(())
//! ```

use crate::Expiry;

/// What a [`Store::compute`](crate::Store::compute) function asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compute<V> {
    /// Store this value. A key that was live keeps its TTL; a new key gets the
    /// store's default TTL (as `incr` does).
    Set(V),
    /// Store this value with this expiry (as [`SetOptions::expiry`](crate::SetOptions)
    /// says it).
    SetWith(V, Expiry),
    /// Remove the key (nothing happens if it is absent).
    Delete,
    /// Change nothing.
    Keep,
}

/// What a [`Store::compute`](crate::Store::compute) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Computed<V> {
    /// The key was absent (or expired) and now holds this value.
    Created(V),
    /// The key's live value was replaced by this one.
    Replaced(V),
    /// The key's live value was removed.
    Deleted,
    /// Nothing changed: the key's value, if it is live.
    Unchanged(Option<V>),
}

impl<V> Computed<V> {
    /// The key's value after the step, if it is live.
    ///
    /// ```
    /// use kvcore::Computed;
    /// assert_eq!(Computed::Replaced(3).value(), Some(&3));
    /// assert_eq!(Computed::<u8>::Deleted.value(), None);
    /// ```
    pub fn value(&self) -> Option<&V> {
        match self {
            Computed::Created(v) | Computed::Replaced(v) | Computed::Unchanged(Some(v)) => Some(v),
            Computed::Deleted | Computed::Unchanged(None) => None,
        }
    }

    /// The key's value after the step, if it is live.
    pub fn into_value(self) -> Option<V> {
        match self {
            Computed::Created(v) | Computed::Replaced(v) | Computed::Unchanged(Some(v)) => Some(v),
            Computed::Deleted | Computed::Unchanged(None) => None,
        }
    }
}
