//! `compute`: read a key, let the caller's function decide, apply its change only if
//! nobody else wrote the key's shard meanwhile, else look again.
//!
//! The function runs with no shard lock held. Atomicity comes from the shard's
//! `changes` count (the write locks taken on it): the key's value is copied out under
//! the read lock together with the count, and the change is applied under the write
//! lock only if the count shows no other writer in between (see `Op::Cas`). Computes
//! and loaders of one key also take turns on the key's flight, so that they do not
//! make each other look again.

use super::*;

impl<V: Value> Shared<V> {
    pub(super) fn compute<'a>(
        &self,
        key: &'a str,
        f: &mut dyn FnMut(Option<&V>) -> Compute<V>,
        notices: &mut Notices<'a, V>,
    ) -> Result<Computed<V>> {
        let hash = self.hash(key);
        // The key's flight: wait for loads and computes of the key to end, then lead.
        let _lead = loop {
            match self.flights.join(hash, key) {
                Role::Leader(lead) => break lead,
                Role::Waiter(flight) => {
                    flight.wait();
                }
            }
        };
        loop {
            let (seen, current) = self.look(key, hash);
            let (change, new) = match f(current.as_ref()) {
                Compute::Keep => return Ok(Computed::Unchanged(current)),
                Compute::Delete if current.is_none() => return Ok(Computed::Unchanged(None)),
                Compute::Delete => (Change::Delete, None),
                Compute::Set(value) => (Change::Set(value.clone(), Expiry::Keep), Some(value)),
                Compute::SetWith(value, expiry) => {
                    (Change::Set(value.clone(), expiry), Some(value))
                }
            };
            let op = Op::Cas {
                seen,
                live: current.is_some(),
                change,
            };
            return Ok(match (self.write(key, op, notices)?, new) {
                (Done::Conflict, _) => continue,
                (Done::Deleted, _) => Computed::Deleted,
                (Done::Set(SetOutcome::Created), Some(value)) => Computed::Created(value),
                (Done::Set(SetOutcome::Replaced), Some(value)) => Computed::Replaced(value),
                (Done::Set(_), _) => Computed::Unchanged(None),
                (Done::Incr(_), _) => unreachable!("a compute reports what it did"),
            });
        }
    }

    /// The shard's `changes` count and a copy of the key's live value, read together
    /// under the read lock.
    fn look(&self, key: &str, hash: u64) -> (u64, Option<V>) {
        let table = self.shard(hash).table.read();
        let value = table
            .slots
            .find(hash, |s| s.key.is(key))
            .filter(|slot| slot.deadline() == 0 || self.live_at(slot).is_some())
            .map(|slot| slot.value.clone());
        (table.changes, value)
    }
}
