//! The removals of one operation, collected under its locks and handed to the removal
//! listener once it has released them (see [`listener`](crate::listener)).
//!
//! An operation makes a `Notices` before it takes any lock and delivers it after its
//! last guard is gone. Without a listener every push drops what it is given at once,
//! as the store did before listeners existed, so a store without one pays a branch.
//! The first notice is kept inline: most writes remove at most one value, and then
//! nothing is allocated.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;

/// The key of a removed value: the slot's own, or the caller's for a value replaced
/// in place.
pub(super) enum NoticeKey<'a> {
    Slot(Key),
    Borrowed(&'a str),
    Owned(String),
}

impl NoticeKey<'_> {
    fn as_str(&self) -> &str {
        match self {
            NoticeKey::Slot(key) => key.as_str(),
            NoticeKey::Borrowed(key) => key,
            NoticeKey::Owned(key) => key,
        }
    }
}

struct Notice<'a, V> {
    key: NoticeKey<'a>,
    value: V,
    cause: RemovalCause,
}

pub(super) struct Notices<'a, V> {
    /// Whether the store has a listener.
    on: bool,
    first: Option<Notice<'a, V>>,
    rest: Vec<Notice<'a, V>>,
}

impl<'a, V: Value> Notices<'a, V> {
    #[inline]
    pub(super) fn new(shared: &Shared<V>) -> Self {
        Notices {
            on: shared.listener.get().is_some(),
            first: None,
            rest: Vec::new(),
        }
    }

    #[inline(never)]
    fn push(&mut self, notice: Notice<'a, V>) {
        if self.first.is_none() {
            self.first = Some(notice);
        } else {
            self.rest.push(notice);
        }
    }

    /// A slot that left its table. It comes boxed, as the table held it, and is only
    /// taken apart when there is a listener to hand it to.
    #[allow(clippy::boxed_local)]
    #[inline]
    pub(super) fn removed(&mut self, slot: Box<Slot<V>>, cause: RemovalCause) {
        if self.on {
            let Slot { key, value, .. } = *slot;
            self.push(Notice {
                key: NoticeKey::Slot(key),
                value,
                cause,
            });
        }
    }

    /// A live value overwritten by another.
    #[inline(always)]
    pub(super) fn replaced(&mut self, key: NoticeKey<'a>, old: V) {
        if self.on {
            self.push(Notice {
                key,
                value: old,
                cause: RemovalCause::Replaced,
            });
        }
    }

    /// Hands every notice to the listener, in order. Call it with no lock held.
    #[inline]
    pub(super) fn deliver(self, shared: &Shared<V>) {
        if self.on {
            self.deliver_all(shared);
        } else {
            // Without a listener nothing was kept (`first` is `None`, `rest` never
            // allocated): there is nothing to drop, so the drop glue need not run.
            std::mem::forget(self);
        }
    }

    #[inline(never)]
    fn deliver_all(self, shared: &Shared<V>) {
        let Some(listener) = shared.listener.get() else {
            return;
        };
        for notice in self.first.into_iter().chain(self.rest) {
            let Notice { key, value, cause } = notice;
            let call = AssertUnwindSafe(|| listener(key.as_str(), value, cause));
            if catch_unwind(call).is_err() {
                shared.listener_panics.fetch_add(1, Relaxed);
            }
        }
    }
}
